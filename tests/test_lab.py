"""The Lab facade: persistence across Lab objects and processes, run reuse, background
runs, cancel, divergence, listeners and lab names. Tiny configs keep it light on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_LAB as TINY

import featurelab as fl
import featurelab.runs
from featurelab.errors import ConfigError, FeaturelabError, FeaturelabWarning

# Long enough to be watched and cancelled; no snapshots (nothing big on disk).
LONG = {
    "model": {"widths": [4, 64, 64, 1]},
    "data": {"dim": 4, "freq": 2.0, "n_train": 256, "n_test": 16},
    "optimizer": {"lr": 1e-3, "steps": 100_000},
    "observables": ["train_loss", "test_loss"],
}

NONLINEAR = '''\
def compute_nonlinear_rate(tensor, dim, keepdim=False):
    t = tensor.float()
    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)
'''
NONLINEAR_2 = NONLINEAR.replace("(t < 1)", "(t < 0.5)")


def _no_training(*args, **kwargs):
    raise AssertionError("a reopened lab must not train")


def _run_rows(lab: fl.Lab) -> list[tuple]:
    return lab.store.read("SELECT id, status, steps_done FROM runs ORDER BY id")


def _wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _session(root) -> fl.Lab:
    """A small session touching every kind of state a lab holds."""
    lab = fl.Lab("session", root=root)
    exp0 = lab.create_experiment(**TINY, name="baseline")
    lab.run(exp0.id)
    lab.view_results([exp0.id])
    lab.enlarge_chart("hidden_activations")
    lab.choose_layer("hidden_activations", "layers.1.pre")
    lab.add_neuron_stat("active_rate", layer="layers.1.pre")
    lab.define_statistic("nonlinear_rate", on="active_rate", source=NONLINEAR)
    exp1 = lab.create_experiment(based_on=exp0.id, observables_add=["nonlinear_rate"])
    lab.run(exp1.id)
    lab.zoom("nonlinear_rate", x_range=(0, 60))
    lab.set_axes("train_loss", log_y=True)
    lab.fit(exp1.id, "nonlinear_rate", layer="layers.1.pre", x_range=(0, 100))
    lab.note("Phase I removes features? 'quotes' and\nnewlines")
    lab.select([exp0.id, exp1.id])
    return lab


def _state(lab: fl.Lab) -> dict:
    """Everything comparable about a lab, as JSON values."""
    return {
        "experiments": {k: [e.config.to_dict(), e.based_on] for k, e in lab.experiments.items()},
        "latest": dict(lab.latest),
        "runs": {e: [lab.results(e).status, lab.results(e).steps_done] for e in lab.latest},
        "statistics": {n: [lab.statistics[n].on, lab.statistics[n].source]
                       for n in lab.statistics.names() if not lab.statistics[n].builtin},
        "neuron_stats": [list(p) for p in lab.neuron_stats],
        "fits": {k: [f.experiment, f.metric, f.layer, f.table.to_dict()]
                 for k, f in lab.fits.items()},
        "notes": list(lab.notes),
        "view": json.loads(json.dumps(lab.view.to_dict())),
        "log": [[e.id, e.type, e.actor] for e in lab.log],
        "sentences": lab.log.sentences(),
    }


def _arrays(lab: fl.Lab) -> dict[str, np.ndarray]:
    out = {}
    for exp in lab.latest:
        result = lab.results(exp).result()
        for key, values in result.arrays.items():
            out[f"{exp}/{key}"] = values
    return out


def _assert_same_arrays(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key, values in want.items():
        np.testing.assert_array_equal(got[key], values, err_msg=key)
        assert got[key].dtype == values.dtype, key


@pytest.fixture
def session(tmp_path):
    lab = _session(tmp_path)
    return lab, _state(lab), _arrays(lab)


# -- reopening -------------------------------------------------------------------------


def test_reopen_in_same_process_restores_everything_without_training(session, tmp_path,
                                                                     monkeypatch):
    lab, state, arrays = session
    rows = _run_rows(lab)
    assert [r[1] for r in rows] == ["finished", "finished"]
    assert state["sentences"][1] == "Ran exp_0 (120 steps)."
    assert "nonlinear_rate@layers.1.pre" in {k.split("/")[1] for k in arrays}

    monkeypatch.setattr(featurelab.runs, "Trainer", _no_training)
    again = fl.Lab("session", root=tmp_path)
    assert again.restore_errors == []
    assert _state(again) == state
    _assert_same_arrays(_arrays(again), arrays)
    assert _run_rows(again) == rows  # no new run rows
    # results of a reopened lab are usable: a statistic on the stored snapshots, a new fit
    steps, values = again.metric_series("exp_0", "nonlinear_rate", "layers.1.pre")
    assert list(steps) == [*range(0, 120, 10), 119]  # the snapshot schedule and the last step
    assert len(values) == len(steps)
    table = again.fit("exp_1", "nonlinear_rate", layer="layers.1.pre", x_range=(0, 100))
    assert table.to_dict() == lab.fits["fit_0"].table.to_dict()
    # re-running from the reopened lab reuses the stored run instead of training
    run = again.run("exp_0")
    assert run.id == state["latest"]["exp_0"]
    assert again.log[-1].describe() == "Reused the finished run of exp_0."


REOPEN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import featurelab as fl
    import featurelab.runs

    def no_training(*args, **kwargs):
        raise AssertionError("a reopened lab must not train")

    featurelab.runs.Trainer = no_training
    sys.path.insert(0, {tests!r})
    from test_lab import _arrays, _state

    lab = fl.Lab("session", root={root!r})
    assert not lab.restore_errors, lab.restore_errors
    np.savez({out!r}, **_arrays(lab))
    print(json.dumps(_state(lab)))
""")


def test_reopen_in_fresh_process_restores_everything_without_training(session, tmp_path):
    lab, state, arrays = session
    rows = _run_rows(lab)
    out = tmp_path / "arrays.npz"
    code = REOPEN.format(tests=str(Path(__file__).parent),
                         root=str(tmp_path), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == json.loads(json.dumps(state))
    with np.load(out) as stored:
        _assert_same_arrays({k: stored[k] for k in stored.files}, arrays)
    assert _run_rows(fl.Lab("session", root=tmp_path)) == rows


# -- run reuse and the cache key -------------------------------------------------------


def test_rerun_reuses_a_finished_run_unless_forced(tmp_path):
    lab = fl.Lab("reuse", root=tmp_path)
    exp = lab.create_experiment(**TINY)
    first = lab.run(exp.id)
    loss = first.series("train_loss")

    again = lab.run(exp.id)
    assert again.id == first.id
    assert lab.log[-1].result["reused"] is True
    assert lab.log[-1].describe() == f"Reused the finished run of {exp.id}."
    assert len(_run_rows(lab)) == 1
    np.testing.assert_array_equal(again.series("train_loss"), loss)

    # another experiment with the same config reuses it too (the key is the config)
    twin = lab.create_experiment(**TINY, name="same config, other name")
    assert lab.run(twin.id).id == first.id

    forced = lab.run(exp.id, force=True)
    assert forced.id != first.id
    assert not lab.log[-1].result.get("reused")
    assert lab.log[-1].describe() == f"Ran {exp.id} (120 steps)."
    assert forced.status == "finished"
    assert len(_run_rows(lab)) == 2
    np.testing.assert_array_equal(forced.series("train_loss"), loss)  # deterministic
    assert lab.results(exp.id).id == forced.id


def test_changing_a_statistic_source_changes_the_cache_key(tmp_path):
    lab = fl.Lab("stat-key", root=tmp_path)
    lab.define_statistic("nonlinear_rate", on="active_rate", source=NONLINEAR)
    exp = lab.create_experiment(**{**TINY, "observables": [*TINY["observables"],
                                                           "nonlinear_rate"]})
    key = lab.cache_key(exp.config)
    first = lab.run(exp.id)
    assert lab.run(exp.id).id == first.id  # same source: reused

    lab.define_statistic("nonlinear_rate", on="active_rate", source=NONLINEAR_2)
    assert lab.cache_key(exp.config) != key
    second = lab.run(exp.id)
    assert second.id != first.id
    assert not lab.log[-1].result.get("reused")
    assert second.status == "finished"
    assert not np.array_equal(second.series("nonlinear_rate", "layers.1.pre"),
                              first.series("nonlinear_rate", "layers.1.pre"))
    # a statistic the experiment does not record leaves its key alone
    lab.define_statistic("other", source="def other(t, dim, keepdim=False):\n"
                                        "    return t.mean(dim=dim, keepdim=keepdim)\n")
    plain = lab.create_experiment(**TINY)
    before = lab.cache_key(plain.config)
    lab.define_statistic("other", source="def other(t, dim, keepdim=False):\n"
                                        "    return t.amax(dim=dim, keepdim=keepdim)\n")
    assert lab.cache_key(plain.config) == before


# -- background runs, cancel, divergence -------------------------------------------------


def test_background_run_returns_at_once_and_can_be_watched(tmp_path):
    lab = fl.Lab("bg", root=tmp_path)
    exp = lab.create_experiment(**TINY)
    started = time.monotonic()
    run = lab.run(exp.id, background=True)
    assert time.monotonic() - started < 5
    assert isinstance(run, fl.Run)
    assert lab.log[-1].describe() in (f"Started running {exp.id}.",
                                      f"Ran {exp.id} (120 steps).")  # a tiny run may be done
    seen = []
    while not run.done:
        seen.append(run.progress)
        time.sleep(0.002)
    assert run.wait(timeout=60) is run
    assert run.status == "finished"
    assert run.progress == 1.0
    assert all(0.0 <= p <= 1.0 for p in seen)
    assert seen == sorted(seen)
    assert len(run.series("train_loss")) == 120
    # wait() returns once the log knows how the run ended
    assert lab.log[-1].describe() == f"Ran {exp.id} (120 steps)."
    assert lab.log[-1].result["status"] == "finished"


def test_cancel_a_long_background_run_keeps_its_recorded_steps(tmp_path):
    lab = fl.Lab("cancel", root=tmp_path)
    exp = lab.create_experiment(**LONG)
    started = time.monotonic()
    run = lab.run(exp.id, background=True)
    assert time.monotonic() - started < 5  # returned at once
    try:
        assert not run.done
        with pytest.raises(FeaturelabError, match="already running"):
            lab.run(exp.id)
        _wait_for(lambda: run.result().steps_done >= 100, what="two flushes")
        progress = [run.progress]
        partial = run.series("train_loss")  # readable while it runs
        assert len(partial) >= 100 and len(partial) % 50 == 0
        assert np.isfinite(partial).all()
        assert run.status == "running"
        time.sleep(0.05)
        progress.append(run.progress)
        assert 0 < progress[0] <= progress[1] < 1
        # a second Lab on the same store sees the run as running, with its flushed steps
        other = fl.Lab("cancel", root=tmp_path)
        assert other.results(exp.id).status == "running"
        assert len(other.results(exp.id).series("train_loss")) >= len(partial)
        n_log = len(lab.log)
        assert lab.cancel(exp.id) is run
    finally:
        run.cancel()  # never leave a 100000-step run behind
        run.wait(timeout=60)
    assert len(lab.log) == n_log + 1
    assert lab.log[-1].type == "cancel"
    assert lab.log[-1].describe().startswith(f"Cancelled the run of {exp.id} at step ")
    assert run.status == "cancelled"
    done = run.steps_done
    assert 100 <= done < 100_000
    loss = run.series("train_loss")
    assert len(loss) == done and np.isfinite(loss).all()
    np.testing.assert_array_equal(loss[: len(partial)], partial)
    run_entry = next(e for e in lab.log if e.type == "run")
    assert run_entry.describe() == f"Ran {exp.id}: cancelled after {done} steps."
    # a finished (here: cancelled) run cannot be cancelled; nothing is logged
    with pytest.raises(FeaturelabError, match="not running"):
        lab.cancel(exp.id)
    assert len(lab.log) == n_log + 1
    # reopened: still cancelled, same steps
    again = fl.Lab("cancel", root=tmp_path)
    assert again.results(exp.id).status == "cancelled"
    np.testing.assert_array_equal(again.results(exp.id).series("train_loss"), loss)
    assert again.log.sentences() == lab.log.sentences()


def test_cancel_a_finished_run_raises(tmp_path):
    lab = fl.Lab("cancel-finished", root=tmp_path)
    exp = lab.create_experiment(**TINY)
    with pytest.raises(FeaturelabError, match="has not been run"):
        lab.cancel(exp.id)
    lab.run(exp.id)
    n = len(lab.log)
    with pytest.raises(FeaturelabError, match="not running"):
        lab.cancel(exp.id)
    assert len(lab.log) == n
    assert lab.results(exp.id).status == "finished"


def test_diverging_run_warns_and_keeps_its_steps(tmp_path):
    lab = fl.Lab("diverge", root=tmp_path)
    exp = lab.create_experiment(**{**TINY, "optimizer": {"name": "sgd", "lr": 50.0,
                                                         "steps": 200}})
    with pytest.warns(FeaturelabWarning, match="diverged"):
        run = lab.run(exp.id)
    assert run.status == "diverged"
    done = run.steps_done
    assert 0 < done < 200
    loss = run.series("train_loss")
    assert len(loss) == done
    assert not np.isfinite(loss[-1])  # the step where it blew up
    assert np.isfinite(loss[0])
    entry = lab.log[-1]
    assert entry.result["status"] == "diverged"
    assert entry.describe().startswith(f"Ran {exp.id}: diverged after {done} steps: loss became")
    # a diverged run is not reused: running again trains again
    with pytest.warns(FeaturelabWarning, match="diverged"):
        again = lab.run(exp.id)
    assert again.id != run.id
    reopened = fl.Lab("diverge", root=tmp_path)
    np.testing.assert_array_equal(reopened.runs[run.id].series("train_loss"), loss)
    assert reopened.runs[run.id].status == "diverged"


def test_a_run_that_cannot_start_ends_failed_and_can_be_retried(tmp_path, monkeypatch):
    """Regression: a Trainer that raised on construction (e.g. out of memory) left the
    run logged as running with no row, so the experiment was 'already running' forever."""
    lab = fl.Lab("no-start", root=tmp_path)
    exp = lab.create_experiment(**TINY)
    real = featurelab.runs.Trainer

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("not enough memory (simulated)")

    monkeypatch.setattr(featurelab.runs, "Trainer", out_of_memory)
    with pytest.raises(RuntimeError, match="simulated"):
        lab.run(exp.id)
    failed = lab.results(exp.id)
    assert failed.status == "failed" and failed.done
    assert "could not start" in failed.result().error
    assert lab.log[-1].describe() == (f"Ran {exp.id}: failed after 0 steps: the run could "
                                      "not start: RuntimeError: not enough memory (simulated).")
    assert fl.Lab("no-start", root=tmp_path).results(exp.id).status == "failed"

    monkeypatch.setattr(featurelab.runs, "Trainer", real)
    run = lab.run(exp.id)  # not "already running", and the failed run is not reused
    assert run.id != failed.id and run.status == "finished"


def test_cancel_from_another_lab_stops_the_run_or_refuses(tmp_path):
    owner = fl.Lab("cross-cancel", root=tmp_path)
    exp = owner.create_experiment(**LONG)
    run = owner.run(exp.id, background=True)
    try:
        _wait_for(lambda: run.result().steps_done >= 50, what="a flush")
        other = fl.Lab("cross-cancel", root=tmp_path)
        try:
            other.cancel(exp.id)
        except FeaturelabError:
            assert other.log[-1].type == "run"  # refused, nothing logged: fine
            return
        owner.refresh()  # the owner folds in the cancel action
        run.wait(timeout=1)
        assert run.status == "cancelled"
    finally:
        run.cancel()
        run.wait(timeout=60)


# -- listeners -------------------------------------------------------------------------


def test_on_change_gets_actions_and_run_ends(tmp_path):
    lab = fl.Lab("listen", root=tmp_path)
    events: list[tuple[str, object]] = []
    threads: set[str] = set()
    trainers: list[object] = []  # what a run_started listener finds on the run

    def listener(kind, payload):
        events.append((kind, payload))
        threads.add(threading.current_thread().name)
        if kind == "run_started":
            trainers.append(payload.trainer)

    unsubscribe = lab.on_change(listener)
    exp = lab.create_experiment(**TINY)
    lab.note("hello")
    run = lab.run(exp.id, background=True)
    run.wait(timeout=60)
    kinds = [k for k, _ in events]
    assert kinds == ["action", "action", "action", "run_started", "run_ended"]
    for (kind, payload), want in zip(events[:3], ["create_experiment", "note", "run"]):
        entry, action = payload
        assert entry.type == action.type == want
        assert isinstance(action, fl.actions.Action)
    assert all(p[0] is e for (_, p), e in zip(events[:3], lab.log))
    assert events[3][1] is run and events[4][1] is run
    assert trainers[0] is not None  # run_started: its trainer's events are there
    assert f"featurelab-{run.id}" in threads  # the run ended in its own thread

    lab.run(exp.id)  # reused: one action, no run_started or run_ended
    assert [k for k, _ in events[5:]] == ["action"]
    foreground = lab.run(exp.id, force=True)
    assert [k for k, _ in events[6:]] == ["action", "run_started", "run_ended"]
    assert events[-1][1] is foreground

    unsubscribe()
    lab.note("unheard")
    assert len(events) == 9  # nothing after unsubscribing


def test_a_failing_listener_does_not_stop_the_action(tmp_path):
    """Regression: a listener that raised on the "run" action stopped Lab.apply after the
    action was logged, so the run never started and the experiment stayed 'already
    running' forever."""
    lab = fl.Lab("bad-listener", root=tmp_path)
    exp = lab.create_experiment(**TINY)
    heard = []

    def broken(kind, payload):
        raise ValueError("a bug in the panel")

    lab.on_change(broken)
    lab.on_change(lambda kind, payload: heard.append(kind))
    with pytest.warns(FeaturelabWarning) as record:
        run = lab.run(exp.id)
    assert [str(w.message).split(" failed on ")[1] for w in record] == [
        "'action': ValueError: a bug in the panel",
        "'run_started': ValueError: a bug in the panel",
        "'run_ended': ValueError: a bug in the panel"]
    assert run.status == "finished"
    assert heard == ["action", "run_started", "run_ended"]
    assert lab.log[-1].describe() == f"Ran {exp.id} (120 steps)."


# -- lab names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a/b", "../escape", "a\\b", "/abs", ".hidden", "-x",
                                  "with space", "x" * 101, None, 3])
def test_bad_lab_names_raise_config_error(tmp_path, name):
    with pytest.raises(ConfigError, match="^name: ") as info:
        fl.Lab(name, root=tmp_path)
    assert info.value.field == "name"
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize("name", ["a", "feature-learning-1", "v1.2_x", "A" * 100])
def test_good_lab_names(tmp_path, name):
    fl.Lab(name, root=tmp_path)
    assert (tmp_path / f"{name}.sqlite").exists()


def test_a_reused_run_reports_the_experiment_asked_for_also_after_reopening(tmp_path):
    """Issue 11, bug 2: after reopening, lab.run("exp_1") returned <Run ... of exp_7>."""
    lab = fl.Lab("reuse", root=tmp_path)
    for seed in (0, 0, 1, 0):
        lab.create_experiment(**{**TINY, "seed": seed})
    for exp in ("exp_0", "exp_1", "exp_2", "exp_3"):
        assert lab.run(exp).experiment == exp
    assert lab.results("exp_1").id == lab.results("exp_0").id == lab.results("exp_3").id
    again = fl.Lab("reuse", root=tmp_path)
    for exp in ("exp_0", "exp_1", "exp_2", "exp_3"):
        assert again.results(exp).experiment == exp
        assert again.run(exp).experiment == exp
        assert again.runs_of(exp)[-1].experiment == exp
    assert again.results("exp_0").status == again.results("exp_3").status == "finished"
