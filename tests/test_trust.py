"""Trust: code from elsewhere (a store, a log, a notebook, an agent) runs only when the
user trusts it; user code cannot end the process, hang a run or change other data."""

import json
import os
import subprocess
import sys
import time

import nbformat
import numpy as np
import pytest
from conftest import TINY_LAB
from nbformat.v4 import new_code_cell, new_notebook

import featurelab as fl
from featurelab import signatures
from featurelab.engine import deadlines
from featurelab.errors import FeaturelabWarning
from featurelab.replay import replay

MEAN = "def mean_of(t, dim, keepdim=False):\n    return t.mean(dim=dim, keepdim=keepdim)\n"


def hidden_effect(marker):
    """A statistic whose side effect hides in a default argument: it runs at `def`."""
    return (f"def sneaky(t, dim, keepdim=False, _=open({str(marker)!r}, 'w').write('ran')):\n"
            "    return t.mean(dim=dim, keepdim=keepdim)\n")


@pytest.fixture
def other_user(tmp_path, monkeypatch):
    """Switches the signing secret to another user's while the block runs."""
    mine = signatures.secret_file()

    class Switch:
        def __enter__(self):
            monkeypatch.setenv(signatures.SECRET_ENV, str(tmp_path / "other-secret"))

        def __exit__(self, *exc):
            monkeypatch.setenv(signatures.SECRET_ENV, str(mine))

    return Switch()


def received_lab(tmp_path, other_user, marker):
    """A lab another user made: a DIY statistic (with a hidden side effect) and a run."""
    with other_user:
        lab = fl.Lab("received", root=tmp_path / "shared")
        lab.define_statistic("sneaky", source=hidden_effect(marker))
        exp = lab.create_experiment(**{**TINY_LAB,
                                       "observables": [*TINY_LAB["observables"], "sneaky"]})
        run = lab.run(exp.id)
        series = run.series("sneaky", "layers.1.pre").copy()
        lab.log.to_jsonl(tmp_path / "received.jsonl")
        lab.store.close()
    marker.unlink()  # it ran for its author, who trusted it
    return exp.id, series


def test_a_store_from_elsewhere_opens_with_its_code_disabled_until_trusted(tmp_path,
                                                                          other_user):
    marker = tmp_path / "ran.txt"
    exp_id, series = received_lab(tmp_path, other_user, marker)

    with pytest.warns(FeaturelabWarning, match="code not signed by you .* disabled"):
        lab = fl.Lab("received", root=tmp_path / "shared")
    assert not marker.exists()  # opening it ran nothing
    stat = lab.statistics["sneaky"]
    assert not stat.trusted and "open(" in stat.source  # shown as source
    # ... and as the data already stored
    np.testing.assert_array_equal(lab.results(exp_id).series("sneaky", "layers.1.pre"), series)
    # nothing new is computed with it: a new run records without it, and says why
    again = lab.run(exp_id, force=True)
    assert again.status == "finished" and not marker.exists()
    errors = again.result().stat_errors
    assert "not signed by you" in errors["sneaky@layers.1.pre"]
    assert "lab.trust()" in errors["sneaky@layers.1.pre"]

    assert lab.trust() == 1  # read it, then trust it
    assert marker.exists() and lab.statistics["sneaky"].trusted
    # the run recorded without it is not reused now that it runs: the author's run is
    assert lab.run(exp_id).series("sneaky", "layers.1.pre").shape == series.shape
    marker.unlink()
    lab.store.close()
    reopened = fl.Lab("received", root=tmp_path / "shared")  # signed now: no warning
    assert reopened.statistics["sneaky"].trusted and marker.exists()


def test_fl_trust_signs_a_store_folder_and_the_cli_signs_a_log(tmp_path, other_user):
    marker = tmp_path / "ran.txt"
    received_lab(tmp_path, other_user, marker)
    assert "1 actions with code signed" in fl.trust(tmp_path / "shared")
    fl.Lab("received", root=tmp_path / "shared")  # no warning (they are errors here)
    assert marker.exists()
    marker.unlink()

    log = tmp_path / "received.jsonl"
    done = subprocess.run([sys.executable, "-m", "featurelab.cli", "trust", str(log)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = replay(log)
    assert not report.untrusted and marker.exists()

    done = subprocess.run([sys.executable, "-m", "featurelab.cli", "trust",
                           str(tmp_path / "nothing.sqlite")], capture_output=True, text=True)
    assert done.returncode == 2 and "no such file" in done.stderr


def test_replay_runs_a_received_logs_code_only_with_trust(tmp_path, other_user):
    marker = tmp_path / "ran.txt"
    received_lab(tmp_path, other_user, marker)
    log = tmp_path / "received.jsonl"

    report = replay(log)
    assert not marker.exists()
    assert report.untrusted == ["action 0: Defined the DIY statistic sneaky."]
    assert "not run (not signed by you; --trust runs it)" in str(report)

    report = replay(log, trust=True)
    assert marker.exists() and not report.untrusted and report.ok


def test_an_agent_may_not_define_code_unless_the_lab_allows_it(tmp_path):
    action = {"type": "define_statistic", "params": {"name": "mean_of", "source": MEAN}}
    lab = fl.Lab("agents", root=tmp_path)
    with pytest.raises(fl.ActionError, match="agent_code='allow'"):
        lab.apply(action, actor="agent")
    assert "mean_of" not in lab.statistics and not len(lab.log)
    lab.define_statistic("mean_of", source=MEAN)  # the user's own code is fine
    with pytest.raises(fl.ConfigError, match="agent_code"):
        fl.Lab("agents", root=tmp_path, agent_code="yes")

    allowed = fl.Lab("allowed", root=tmp_path, agent_code="allow")
    allowed.apply(action, actor="agent")
    assert allowed.statistics["mean_of"].trusted
    allowed.store.close()
    assert fl.Lab("allowed", root=tmp_path).statistics["mean_of"].trusted  # signed


def test_system_exit_and_keyboard_interrupt_from_user_code_are_contained(tmp_path):
    lab = fl.Lab("exits", root=tmp_path)
    with pytest.raises(fl.StatisticError, match="SystemExit"):
        lab.define_statistic("quit_now", source="raise SystemExit(0)\n")
    with pytest.raises(fl.StatisticError, match="KeyboardInterrupt"):
        lab.define_statistic("interrupt", source="def interrupt(t, dim, keepdim=False):\n"
                                                 "    raise KeyboardInterrupt\n")
    # one that exits only on real data: switched off during the run, which goes on
    lab.define_statistic("late_exit", source=(
        "def late_exit(t, dim, keepdim=False):\n"
        "    if t.shape[1] > 5:\n"
        "        raise SystemExit(0)\n"
        "    return t.mean(dim=dim, keepdim=keepdim)\n"))
    exp = lab.create_experiment(**{**TINY_LAB,
                                   "observables": [*TINY_LAB["observables"], "late_exit"]})
    run = lab.run(exp.id)
    assert run.status == "finished"
    assert "raised SystemExit" in run.result().stat_errors["late_exit@layers.1.pre"]


def test_a_statistic_that_hangs_is_refused_or_switched_off_within_its_budget(
        tmp_path, monkeypatch):
    monkeypatch.setattr(deadlines, "DEFAULT_SECONDS", 0.5)
    lab = fl.Lab("hangs", root=tmp_path)
    started = time.monotonic()
    with pytest.raises(fl.StatisticError, match="did not return within 0.5 s"):
        lab.define_statistic("loops", source="def loops(t, dim, keepdim=False):\n"
                                              "    while True:\n        pass\n")
    with pytest.raises(fl.StatisticError, match="did not return within 0.5 s"):
        lab.define_statistic("sleeps", source="import time\n"
                                               "def sleeps(t, dim, keepdim=False):\n"
                                               "    time.sleep(3600)\n")
    with pytest.raises(fl.StatisticError, match="did not finish running"):
        lab.define_statistic("top", source="while True:\n    pass\n")
    assert time.monotonic() - started < 10
    lab.note("the lab is not locked")  # the write lock was let go

    # Passes the probe, hangs on real data (even catching everything): switched off.
    lab.define_statistic("late_loop", source=(
        "def late_loop(t, dim, keepdim=False):\n"
        "    while t.shape[1] > 5:\n"
        "        try:\n"
        "            pass\n"
        "        except BaseException:\n"
        "            pass\n"
        "    return t.mean(dim=dim, keepdim=keepdim)\n"))
    exp = lab.create_experiment(**{**TINY_LAB,
                                   "observables": [*TINY_LAB["observables"], "late_loop"]})
    run = lab.run(exp.id)
    assert run.status == "finished"
    assert "ran longer than 0.5 s" in run.result().stat_errors["late_loop@layers.1.pre"]
    assert len(run.series("train_loss")) == TINY_LAB["optimizer"]["steps"]


def test_a_statistic_that_changes_its_input_cannot_change_other_data(tmp_path):
    plain = fl.Lab("plain", root=tmp_path)
    exp = plain.create_experiment(**TINY_LAB)
    expected = plain.run(exp.id).series("active_rate", "layers.1.pre")

    lab = fl.Lab("mutates", root=tmp_path)
    lab.define_statistic("zeroes", source="def zeroes(t, dim, keepdim=False):\n"
                                           "    t.mul_(0)\n"
                                           "    return t.mean(dim=dim, keepdim=keepdim)\n")
    exp = lab.create_experiment(**{**TINY_LAB, "observables": [
        "zeroes", *TINY_LAB["observables"]]})
    run = lab.run(exp.id)
    np.testing.assert_array_equal(run.series("active_rate", "layers.1.pre"), expected)
    result = run.result()
    before = result.statistic_on_snapshots(lab.statistics, "active_rate", "layers.1.pre")[1]
    result.statistic_on_snapshots(lab.statistics, "zeroes", "layers.1.pre")  # on the files
    after = result.statistic_on_snapshots(lab.statistics, "active_rate", "layers.1.pre")[1]
    np.testing.assert_array_equal(after, before)
    assert np.any(before > 0)


def test_the_exporter_runs_a_notebook_only_if_trusted_or_told_to(tmp_path):
    marker = tmp_path / "ran.txt"
    cells = [new_code_cell(f'import featurelab as fl\nopen({str(marker)!r}, "w").write("x")\n'
                           f'lab = fl.Lab("nb", root="labs")\n'
                           f'lab.create_experiment(**{TINY_LAB!r})')]
    path = tmp_path / "received.ipynb"
    nbformat.write(new_notebook(cells=cells), str(path))
    env = {**__import__("os").environ, "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data")}

    def export(*args):
        return subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to",
                               "featurelab_blog", "--stdout", str(path), *args],
                              capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=600)

    refused = export()
    assert refused.returncode != 0 and not marker.exists()
    assert "not trusted" in refused.stderr and "execute=True" in refused.stderr

    signed = subprocess.run([sys.executable, "-m", "featurelab.cli", "trust", str(path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert signed.returncode == 0, signed.stderr
    done = export()
    assert done.returncode == 0, done.stderr[-2000:]
    assert marker.exists() and "Created experiment 0" in done.stdout


def test_signatures_cover_the_whole_action(tmp_path):
    action = {"type": "define_statistic", "version": 1,
              "params": {"name": "m", "source": MEAN, "on": "activations"}}
    signature = signatures.sign(action)
    assert signatures.verify(action, signature)
    for changed in ({**action, "params": {**action["params"], "source": MEAN + "# x\n"}},
                    {**action, "params": {**action["params"], "on": "active_rate"}},
                    {**action, "version": 2}):
        assert not signatures.verify(changed, signature)
    assert not signatures.verify(action, None) and not signatures.verify(action, 42)
    assert json.dumps(signature)  # a plain string in the log


# -- fixes from an adversarial review ---------------------------------------------------


def test_an_untrusted_action_stays_untrusted_while_other_labs_actions_fold_in(tmp_path):
    marker = tmp_path / "ran.txt"
    mine, other = (fl.Lab("shared", root=tmp_path) for _ in range(2))
    other.note("folded into the next action of mine")
    action = fl.actions.ACTIONS["define_statistic"](name="sneaky",
                                                    source=hidden_effect(marker))
    mine.apply_logged(action, trusted=False)
    assert not marker.exists() and not mine.statistics["sneaky"].trusted


def test_lab_trust_signs_only_what_the_lab_has_shown(tmp_path, other_user):
    marker = tmp_path / "ran.txt"
    received_lab(tmp_path, other_user, marker)
    with pytest.warns(FeaturelabWarning, match="disabled"):
        lab = fl.Lab("received", root=tmp_path / "shared")
    with other_user:  # meanwhile, another writer adds code
        writer = fl.Lab("received", root=tmp_path / "shared")
        writer.define_statistic("later", source=MEAN.replace("mean_of", "later"))
    assert lab.trust() == 1  # sneaky, read; not `later`, never shown
    with pytest.warns(FeaturelabWarning, match="later"):
        fl.Lab("received", root=tmp_path / "shared")


def test_a_notebook_jupyter_signed_on_save_is_not_trusted_to_run(tmp_path):
    from nbformat.sign import NotebookNotary

    marker = tmp_path / "ran.txt"
    cells = [new_code_cell(f'open({str(marker)!r}, "w").write("x")\n'
                           'import featurelab as fl\nlab = fl.Lab("nb", root="labs")')]
    notebook = new_notebook(cells=cells)
    (tmp_path / "jupyter").mkdir()
    NotebookNotary(data_dir=str(tmp_path / "jupyter")).sign(notebook)  # as a save does
    from featurelab.export.notebook import notebook_trusted, open_notebook_lab

    with pytest.raises(fl.FeaturelabError, match="not trusted"):
        open_notebook_lab(dict(notebook), tmp_path)
    assert not marker.exists()
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, str(path))
    fl.trust(path)
    signed = nbformat.read(str(path), as_version=4)
    assert notebook_trusted(signed)
    signed.cells[0].source += "\nprint('changed')"  # a changed cell is untrusted again
    assert not notebook_trusted(signed)


def test_exports_of_an_untrusted_lab_keep_its_code_as_comments(tmp_path, other_user):
    marker = tmp_path / "ran.txt"
    received_lab(tmp_path, other_user, marker)
    with pytest.warns(FeaturelabWarning):
        lab = fl.Lab("received", root=tmp_path / "shared")
    script = lab.export_script(tmp_path / "script.py").read_text()
    assert "# Not run: code from elsewhere" in script
    assert "\ndef sneaky" not in script and "\n@lab.statistic" not in script
    done = subprocess.run([sys.executable, str(tmp_path / "script.py")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert not marker.exists(), done.stderr[-2000:]
    cells = "\n".join(c.source for c in lab.cells())
    assert "# Not run: code from elsewhere" in cells and "\ndef sneaky" not in cells


def test_replaying_an_unsigned_log_is_not_verified_rather_than_different(tmp_path,
                                                                          other_user):
    marker = tmp_path / "ran.txt"
    received_lab(tmp_path, other_user, marker)
    report = replay(tmp_path / "received.jsonl")
    assert report.ok and not report.verified
    assert any("not signed by you" in u for u in report.unverified)
    done = subprocess.run([sys.executable, "-m", "featurelab.cli", "replay",
                           str(tmp_path / "received.jsonl")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr


def test_trusting_a_log_signs_its_code_lines_and_keeps_the_rest(tmp_path, other_user):
    marker = tmp_path / "ran.txt"
    received_lab(tmp_path, other_user, marker)
    log = tmp_path / "received.jsonl"
    lines = log.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "extra": "kept"})
    log.write_text("\n".join(lines) + "\n")
    fl.trust(log)
    after = log.read_text().splitlines()
    assert after[1:] == lines[1:] and json.loads(after[0])["signature"]
    log.write_text("[1, 2]\n")
    with pytest.raises(fl.FeaturelabError, match="line 1: not a log entry"):
        fl.trust(log)
    assert not (tmp_path / "received.jsonl.partial").exists()


def test_a_secret_that_cannot_be_made_or_is_damaged_is_named(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    monkeypatch.setenv(signatures.SECRET_ENV, str(blocked / "secret"))  # under a file
    lab = fl.Lab(":memory:")
    with pytest.raises(fl.FeaturelabError, match="signing secret cannot be read or made"):
        lab.define_statistic("mean_of", source=MEAN)
    with pytest.warns(FeaturelabWarning, match="FEATURELAB_SECRET_FILE"):
        assert not signatures.verify({"type": "x", "version": 1, "params": {}}, "sha256:0")
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    monkeypatch.setenv(signatures.SECRET_ENV, str(short))
    with pytest.raises(fl.FeaturelabError, match="secret is damaged"):
        signatures.sign({"type": "x", "version": 1, "params": {}})


def test_a_bad_statistic_budget_is_named():
    # said when the engine is first used (featurelab imports its names on first use)
    done = subprocess.run([sys.executable, "-c", "import featurelab; featurelab.Lab"],
                          capture_output=True, text=True,
                          env={**os.environ, "FEATURELAB_STATISTIC_BUDGET": "nan"})
    assert "FEATURELAB_STATISTIC_BUDGET='nan'" in done.stderr


def test_tag_sentences_keep_the_tags_case():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**TINY_LAB)
    lab.tag("exp_0", add=["Baseline", "LR-Sweep"])
    assert lab.log[-1].describe() == "Tagged exp_0 'Baseline', 'LR-Sweep'."
