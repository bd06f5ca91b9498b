"""A notebook's lab lifecycle: sessions, re-attaching, resets, and two kernels on one lab.

A lab's store keeps sessions (logs). fl.Lab(name, fresh=True), a notebook's opening
cell, starts a new session the first time a kernel runs it and re-attaches after that;
lab.reset() starts over explicitly and is itself a cell; a Lab folds only its own
session, so another kernel's fresh start never renumbers its experiments.
"""

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from conftest import TINY_LAB as TINY
from test_cells import RecordingBridge

import featurelab as fl
from featurelab.cells import cell_context
from featurelab.errors import ConfigError
from featurelab.store import SCHEMA_VERSION
from featurelab.ui.cell_bridge import CellRecorder


def kernel(tmp_path, code: str) -> dict:
    """Runs `code` in another Python process (another kernel); returns what it printed."""
    script = "import json\nimport featurelab as fl\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_running_the_opening_cell_again_re_attaches(tmp_path, capsys):
    lab = fl.Lab("nb", root=tmp_path, fresh=True)
    exp = lab.create_experiment(**TINY)
    run = lab.run(exp.id)
    panel_state = (dict(lab.experiments), len(lab.log))
    again = fl.Lab("nb", root=tmp_path, fresh=True)  # the same cell, run again
    assert again is lab
    assert (dict(again.experiments), len(again.log)) == panel_state
    assert again.results("exp_0") is run
    said = capsys.readouterr().out
    assert "re-attached to lab 'nb'" in said and "1 experiments" in said
    assert "lab.reset() starts over" in said
    assert again.create_experiment(**TINY).id == "exp_1"  # numbering goes on


def test_the_first_fresh_open_in_a_kernel_starts_a_new_session(tmp_path):
    lab = fl.Lab("nb", root=tmp_path, fresh=True)
    lab.create_experiment(**TINY)
    other = kernel(tmp_path, f"""
        lab = fl.Lab("nb", root={str(tmp_path)!r}, fresh=True)
        print(json.dumps([lab.session, list(lab.experiments)]))""")
    assert other == [lab.session + 1, []]


def test_reset_starts_over_keeps_the_old_session_and_reuses_runs(tmp_path, capsys):
    lab = fl.Lab("nb", root=tmp_path, fresh=True)
    lab.create_experiment(**TINY)
    first_run = lab.run("exp_0")
    lab.note("before")
    old = lab.session
    lab.reset()
    message = capsys.readouterr().out
    assert f"Started session {old + 1} of lab 'nb'; session {old} stays in the store" in message
    assert lab.session == old + 1 and not lab.experiments and not lab.notes
    assert [e.type for e in lab.log] == ["reset"]
    assert lab.log.sentences() == ["Started the lab over (a new session)."]
    assert lab.create_experiment(**TINY).id == "exp_0"  # ids start again
    assert lab.run("exp_0").id == first_run.id  # the run cache survives a reset
    assert lab.store.sessions() == {old: 3, old + 1: 3}
    # the earlier session opens as it was
    before = fl.Lab("nb", root=tmp_path, session=old)
    assert before.notes == ["before"] and before.results("exp_0").id == first_run.id
    assert fl.Lab("nb", root=tmp_path).session == lab.session  # plain open: the latest
    with pytest.raises(ConfigError, match="session"):
        fl.Lab("nb", root=tmp_path, session=99)


def test_reset_waits_for_no_run(tmp_path):
    lab = fl.Lab("nb", root=tmp_path)
    lab.create_experiment(**{**TINY, "optimizer": {"lr": 1e-2, "steps": 100_000}})
    run = lab.run("exp_0", background=True)
    try:
        with pytest.raises(fl.FeaturelabError, match="exp_0 still running; cancel first"):
            lab.reset()
        assert "exp_0" in lab.experiments  # nothing changed
    finally:
        lab.cancel("exp_0")
        run.wait(60)


def test_two_kernels_never_renumber_each_others_experiments(tmp_path):
    first = fl.Lab("shared", root=tmp_path, fresh=True)
    first.create_experiment(**TINY, name="mine")
    run = first.run("exp_0")
    # another kernel opens the same lab fresh and creates its own experiments
    other = kernel(tmp_path, f"""
        lab = fl.Lab("shared", root={str(tmp_path)!r}, fresh=True)
        lab.create_experiment(**{TINY!r}, name="theirs")
        lab.create_experiment(**{TINY!r}, name="theirs too")
        print(json.dumps({{e: x.name for e, x in lab.experiments.items()}}))""")
    assert other == {"exp_0": "theirs", "exp_1": "theirs too"}
    first.refresh()
    assert {e: x.name for e, x in first.experiments.items()} == {"exp_0": "mine"}
    assert first.create_experiment(**TINY).id == "exp_1"
    assert first.results("exp_0").id == run.id
    # a third reader sees the latest session; the first kernel's stays reachable
    assert [x.name for x in fl.Lab("shared", root=tmp_path).experiments.values()] == \
        ["theirs", "theirs too"]
    mine = fl.Lab("shared", root=tmp_path, session=first.session)
    assert mine.experiments["exp_0"].name == "mine"
    assert mine.results("exp_0").result().status == "finished"


def test_cells_with_a_reset_replay_to_the_state_the_panel_showed(tmp_path):
    """What the notebook holds: the first session's cells, the reset cell, then the
    second's; Restart & Run All runs them in a new kernel."""
    lab = fl.Lab("nb", root=tmp_path, fresh=True)
    lab.create_experiment(**TINY)
    lab.run("exp_0")
    lab.create_experiment(based_on="exp_0", seed=3)
    before_reset = [c.source for c in lab.cells()]
    lab.reset()
    lab.create_experiment(based_on=None, **{**TINY, "seed": 7})
    lab.run("exp_0")
    lab.note("after the reset")
    after_reset = [c.source for c in lab.cells()]
    cells = [lab.opening_code().removesuffix("\nlab"), *before_reset, *after_reset]
    replayed = kernel(tmp_path, "\n".join(cells) + """
print(json.dumps({"experiments": {e: x.config.to_dict() for e, x in lab.experiments.items()},
                  "runs": {e: lab.latest.get(e) for e in lab.experiments},
                  "notes": lab.notes, "log": [e.type for e in lab.log]}))""")
    # the same runs: reused from the cache, not trained again
    assert replayed == json.loads(json.dumps({
        "experiments": {e: x.config.to_dict() for e, x in lab.experiments.items()},
        "runs": {e: lab.latest.get(e) for e in lab.experiments},
        "notes": lab.notes, "log": [e.type for e in lab.log]}))


def test_a_click_after_running_code_is_placed_after_that_code(tmp_path):
    lab = fl.Lab("nb", root=tmp_path)
    bridge = RecordingBridge()
    CellRecorder(lab, "model-1", bridge)
    lab.apply({"type": "create_experiment", "params": TINY}, actor="human")
    with cell_context("cell-reset"):
        lab.reset()
    lab.apply({"type": "create_experiment", "params": TINY}, actor="human")
    lab.apply({"type": "note", "params": {"text": "x"}}, actor="human")
    assert [r["after_cell"] for r in bridge.requests] == [None, "cell-reset", "cell-reset"]


def test_a_store_with_archived_logs_becomes_sessions(tmp_path):
    """A lab written before sessions (schema 2: fresh starts moved the log into
    archived_actions) opens with each archive as a session, the current log the latest."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    columns = ("seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, type TEXT "
               "NOT NULL, version INTEGER NOT NULL, params TEXT NOT NULL, actor TEXT NOT NULL, "
               "time REAL NOT NULL, duration REAL, result TEXT, cell TEXT")
    db.execute(f"CREATE TABLE actions ({columns})")
    db.execute("CREATE TABLE archived_actions (archive INTEGER NOT NULL, seq INTEGER NOT NULL, "
               "id TEXT NOT NULL, type TEXT NOT NULL, version INTEGER NOT NULL, params TEXT "
               "NOT NULL, actor TEXT NOT NULL, time REAL NOT NULL, duration REAL, result TEXT, "
               "cell TEXT)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    note = """('{}', 'note', 1, '{{"text": "{}"}}', 'code', 0, 0, '"{}"', NULL)"""
    db.execute("INSERT INTO archived_actions VALUES (1, 1, " + note.format("a", "one", "one")[1:])
    db.execute("INSERT INTO archived_actions VALUES (2, 2, " + note.format("b", "two", "two")[1:])
    # seq is AUTOINCREMENT: the current log's numbers continue after the archived ones
    db.execute("INSERT INTO actions VALUES (3, " + note.format("c", "three", "three")[1:])
    db.commit()
    db.close()
    lab = fl.Lab("old", root=tmp_path)
    assert lab.notes == ["three"] and lab.session == 2
    assert lab.store.schema_version() == SCHEMA_VERSION
    assert lab.store.sessions() == {0: 1, 1: 1, 2: 1}
    assert fl.Lab("old", root=tmp_path, session=0).notes == ["one"]
    assert {k: [r["id"] for r in v] for k, v in lab.store.archived_logs().items()} == \
        {0: ["a"], 1: ["b"]}
    fresh = fl.Lab("old", root=tmp_path, fresh=True)
    assert fresh.session == 3 and not fresh.notes
