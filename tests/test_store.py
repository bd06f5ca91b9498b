"""The store: a killed process leaves a consistent database with its flushed steps,
concurrent Labs (threads and processes) share one linear history, and series chunks
are reassembled (NaN before a series' first chunk)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_LAB as TINY

import featurelab as fl
from featurelab.store import Store

LONG = {
    "model": {"widths": [4, 64, 64, 1]},
    "data": {"dim": 4, "freq": 2.0, "n_train": 256, "n_test": 16},
    "optimizer": {"lr": 1e-3, "steps": 100_000},
    "observables": ["train_loss", "test_loss", "weight_l2_norm", "active_rate"],
}


def _python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The child's next stdout line, or fail (killing it) after timeout seconds."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        proc.kill()
        proc.wait()
        raise AssertionError(f"no line from the child in {timeout} s: {proc.stderr.read()}")
    if not box[0]:  # end of output: the child died; say how
        proc.wait()
        raise AssertionError(f"the child exited ({proc.returncode}) without a line: "
                             f"{proc.stderr.read()}")
    return box[0].strip()


# -- a killed process ------------------------------------------------------------------

KILLED_CHILD = textwrap.dedent("""
    import time
    import featurelab as fl

    lab = fl.Lab("killed", root={root!r})
    small = lab.create_experiment(**{tiny!r})
    lab.run(small.id)
    big = lab.create_experiment(**{long!r})
    run = lab.run(big.id, background=True)
    while run.steps_done < 120:  # two flushes (steps 0-49, 50-99) are committed
        time.sleep(0.005)
    print("READY", run.id, flush=True)
    run.wait()
""")


def test_sigkill_mid_run_leaves_a_consistent_store(tmp_path):
    child = _python(KILLED_CHILD.format(root=str(tmp_path), tiny=TINY, long=LONG))
    try:
        line = _read_line(child, timeout=120)
        assert line.startswith("READY"), line
        killed_run = line.split()[1]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()

    lab = fl.Lab("killed", root=tmp_path)
    assert lab.restore_errors == []
    assert lab.store.integrity_check() == "ok"

    small = lab.results("exp_0")
    assert small.status == "finished"
    assert small.steps_done == 120
    names = small.result().names()
    assert "active_rate@layers.1.pre" in names
    for name in names:
        values = small.result().arrays[name]
        assert len(values) == 120 and np.isfinite(values).all(), name

    big = lab.results("exp_1")
    assert big.id == killed_run
    assert big.status == "interrupted"
    assert big.done
    assert "kill" in big.result().error
    done = big.steps_done
    assert 100 <= done < 100_000 and done % 50 == 0
    for name, values in big.result().arrays.items():
        assert len(values) == done, name
        assert np.isfinite(values).all(), name
    assert big.series("active_rate", "layers.1.pre").shape == (done, 64)
    assert lab.log.sentences()[-1] == "Started running exp_1."  # it never ended

    # the lab goes on: new actions, a new run (the interrupted one is not reused)
    lab.note("after the kill")
    assert lab.run("exp_0").id == small.id  # reused
    extra = lab.create_experiment(**{**TINY, "seed": 1})
    assert lab.run(extra.id).status == "finished"
    again = fl.Lab("killed", root=tmp_path)
    assert len(again.log) == len(lab.log) == 8
    assert again.notes == ["after the kill"]
    assert again.results("exp_1").status == "interrupted"
    assert again.store.integrity_check() == "ok"


def test_runs_of_dead_processes_are_marked_interrupted_on_open(tmp_path):
    path = tmp_path / "lab.sqlite"
    store = Store(path)
    for run_id in ("dead", "alive", "elsewhere"):
        store.create_run(run_id, "exp_0", "key", {}, 100)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with store.transaction() as db:
        db.execute("UPDATE runs SET pid = ? WHERE id = 'dead'", (gone.pid,))
        db.execute("UPDATE runs SET host = 'another-machine' WHERE id = 'elsewhere'")
    store.close()

    reopened = Store(path)
    status = dict(reopened.read("SELECT id, status FROM runs"))
    assert status == {"dead": "interrupted", "alive": "running", "elsewhere": "running"}
    assert reopened.run_row("dead")["error"].startswith("the process running it stopped")


# -- concurrent Labs -------------------------------------------------------------------


def _check_history(root: Path, name: str, n_notes: int, n_experiments: int,
                   created: list[str]) -> fl.Lab:
    lab = fl.Lab(name, root=root)
    assert lab.restore_errors == []
    assert len(lab.log) == n_notes + n_experiments
    assert len(lab.notes) == len(set(lab.notes)) == n_notes
    ids = [f"exp_{i}" for i in range(n_experiments)]
    assert list(lab.experiments) == ids  # unique and contiguous
    assert sorted(created, key=lambda e: int(e[4:])) == ids  # what each creator got back
    seqs = [e.seq for e in lab.log]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len({e.id for e in lab.log}) == len(lab.log)
    assert lab.store.integrity_check() == "ok"
    return lab


def test_two_labs_in_threads_share_one_history(tmp_path):
    labs = [fl.Lab("shared", root=tmp_path), fl.Lab("shared", root=tmp_path)]
    barrier = threading.Barrier(4)
    created: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            lab = labs[worker % 2]
            barrier.wait()
            for i in range(25):
                lab.note(f"worker {worker} note {i}")
                if i in (5, 15):
                    seed = 100 * worker + i
                    exp = lab.create_experiment(**{**TINY, "seed": seed})
                    created[exp.id] = seed
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    fresh = _check_history(tmp_path, "shared", 100, 8, list(created))
    for exp_id, seed in created.items():
        assert fresh.experiments[exp_id].config.seed == seed
    # both Labs, brought up to date, hold the same linear history as a fresh one
    for lab in labs:
        lab.refresh()
        assert [e.id for e in lab.log] == [e.id for e in fresh.log]
        assert lab.notes == fresh.notes
        assert {k: e.config for k, e in lab.experiments.items()} == \
            {k: e.config for k, e in fresh.experiments.items()}


CONCURRENT_CHILD = textwrap.dedent("""
    import json, os, time
    import featurelab as fl

    lab = fl.Lab("shared", root={root!r})
    print("UP", flush=True)
    while not os.path.exists({go!r}):
        time.sleep(0.002)
    created = {{}}
    for i in range(25):
        lab.note(f"process {worker} note {{i}}")
        if i in (5, 15):
            seed = 100 * {worker} + i
            created[lab.create_experiment(**{tiny!r}, seed=seed).id] = seed
    print(json.dumps(created), flush=True)
""")


def test_two_processes_share_one_history(tmp_path):
    go = tmp_path / "go"
    children = [_python(CONCURRENT_CHILD.format(root=str(tmp_path), go=str(go), worker=w,
                                                tiny=TINY))
                for w in range(2)]
    try:
        for child in children:
            assert _read_line(child, timeout=120) == "UP"
        go.touch()  # both start writing at once
        created: dict[str, int] = {}
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            assert "Traceback" not in err, err
            created.update(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert len(created) == 4
    fresh = _check_history(tmp_path, "shared", 50, 4, list(created))
    for exp_id, seed in created.items():
        assert fresh.experiments[exp_id].config.seed == seed


# -- series chunks ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "chunks.sqlite")
    store.create_run("r", "exp_0", "key", {}, 200)
    return store


def test_load_series_pads_a_series_that_starts_later_with_nan(store):
    rng = np.random.default_rng(0)
    loss = rng.random(150).astype(np.float32)
    stat = rng.random((100, 3)).astype(np.float32)
    store.append_series("r", 0, 50, {"train_loss": loss[:50]})
    store.append_series("r", 50, 100, {"train_loss": loss[50:100], "stat@p": stat[:50]})
    store.append_series("r", 100, 150, {"train_loss": loss[100:], "stat@p": stat[50:]})
    assert store.run_row("r")["steps_done"] == 150

    series = store.load_series("r", 150)
    assert sorted(series) == ["stat@p", "train_loss"]
    np.testing.assert_array_equal(series["train_loss"], loss)
    assert series["train_loss"].dtype == np.float32
    assert series["stat@p"].shape == (150, 3) and series["stat@p"].dtype == np.float32
    assert np.isnan(series["stat@p"][:50]).all()
    np.testing.assert_array_equal(series["stat@p"][50:], stat)


def test_load_series_is_cut_to_the_steps_known_complete(store):
    values = np.arange(100, dtype=np.float32)
    store.append_series("r", 0, 50, {"a": values[:50]})
    store.append_series("r", 50, 100, {"a": values[50:], "late": values[50:]})
    cut = store.load_series("r", 70)
    np.testing.assert_array_equal(cut["a"], values[:70])
    assert np.isnan(cut["late"][:50]).all()
    np.testing.assert_array_equal(cut["late"][50:], values[50:70])
    # a chunk entirely beyond steps_done leaves only NaN
    assert np.isnan(store.load_series("r", 40)["late"]).all()
    assert store.load_series("r", 0)["a"].shape == (0,)
    # a rewritten chunk (the same flush stored again) replaces the old one
    store.append_series("r", 50, 100, {"a": -values[50:]})
    np.testing.assert_array_equal(store.load_series("r", 100)["a"][50:], -values[50:])


def test_wal_mode_and_integrity(store):
    assert store.read("PRAGMA journal_mode")[0][0] == "wal"
    assert store.integrity_check() == "ok"
    assert Store(":memory:").integrity_check() == "ok"


def test_a_failed_transaction_changes_nothing(store):
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("UPDATE runs SET status = 'finished' WHERE id = 'r'")
        raise RuntimeError("boom")
    assert store.run_row("r")["status"] == "running"
    # the connection is usable afterwards
    store.append_series("r", 0, 1, {"a": np.zeros(1, dtype=np.float32)})
    assert store.run_row("r")["steps_done"] == 1


def test_memory_lab_runs_in_the_background():
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**TINY)
    run = lab.run(exp.id, background=True).wait(timeout=60)
    assert run.status == "finished"
    assert len(run.series("train_loss")) == 120
    steps, values = lab.metric_series(exp.id, "nonlinear_fraction", "layers.1.pre")
    assert len(steps) == len(values) == 13
    assert lab.store.path is None and lab.store.snapshot_root is None
