"""Action cells: grouping, coalescing, the executing cell, fresh labs and notebooks."""

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import REFERENCE_SOURCE, exec_cell
from conftest import TINY_LAB as TINY

import featurelab as fl
from featurelab.actions import action_from_dict
from featurelab.cells import action_cells, cell_context
from featurelab.ui.cell_bridge import CellBridge, CellRecorder


@pytest.fixture
def lab(tmp_path):
    return fl.Lab("cells", root=tmp_path)


def test_every_action_gets_a_cell_in_order(lab):
    exp = lab.create_experiment(**TINY)
    lab.run(exp.id)
    lab.note("a note")
    cells = lab.cells()
    assert [c.source for c in cells] == [
        action_from_dict(e.action_dict()).to_code() for e in lab.log]
    assert [c.action_ids for c in cells] == [[e.id] for e in lab.log]
    meta = cells[0].metadata["featurelab"]
    assert meta == {"action_id": lab.log.entries[0].id,
                    "action_ids": [lab.log.entries[0].id], "coalesce_key": None}


def test_view_actions_on_one_chart_share_a_cell_holding_the_last_of_each(lab):
    exp = lab.create_experiment(**TINY)
    lab.run(exp.id)
    lab.open_chart("train_loss")
    lab.enlarge_chart("train_loss")
    lab.zoom("train_loss", x_range=(0, 50))
    lab.set_axes("train_loss", log_y=True)
    lab.set_axes("train_loss", log_x=True)
    lab.zoom("train_loss", x_range=(10, 20))
    lab.open_chart("test_loss")  # another chart: a new cell
    lab.zoom("train_loss", x_range=(0, 5))  # not next to its cell: a new cell again
    cells = lab.cells()
    assert len(lab.log) == 10 and len(cells) == 5
    chart = cells[2]
    assert chart.source.splitlines() == [
        "lab.open_chart('train_loss')",
        "lab.enlarge_chart('train_loss')",
        "lab.set_axes('train_loss', log_y=True)",
        "lab.set_axes('train_loss', log_x=True)",
        "lab.zoom('train_loss', x_range=(10.0, 20.0))",
    ]
    assert chart.action_ids == [e.id for e in lab.log.entries[2:8]]
    assert chart.metadata["featurelab"]["coalesce_key"] == "chart:train_loss"
    assert cells[4].source == "lab.zoom('train_loss', x_range=(0.0, 5.0))"


def test_a_later_open_after_hide_keeps_the_chart_open(lab):
    lab.create_experiment(**TINY)
    lab.open_chart("train_loss")
    lab.hide_chart("train_loss")
    lab.open_chart("train_loss")
    (cell,) = lab.cells()[1:]
    assert cell.source.splitlines() == ["lab.hide_chart('train_loss')",
                                        "lab.open_chart('train_loss')"]


def test_a_cancel_has_no_cell_of_its_own_but_stops_its_runs_cell(lab):
    exp = lab.create_experiment(**{**TINY, "optimizer": {"lr": 0.01, "steps": 100_000}})
    run = lab.run(exp.id, background=True)
    lab.note("between")
    lab.cancel(exp.id)
    run.wait()
    at = lab.log[-1].result["at_step"]
    cells = lab.cells()
    assert [c.source for c in cells[1:]] == [
        f"# Cancelled at step {at}: a rerun stops there too.\nlab.run('exp_0', stop_at={at})",
        "lab.note('between')"]
    assert cells[1].action_ids == [lab.log.entries[1].id, lab.log.entries[3].id]
    compile(cells[1].source, "cell", "exec")


def test_cells_replay_to_the_same_state(lab, tmp_path):
    exp = lab.create_experiment(**TINY)
    lab.define_statistic("nonlinear_rate", source=REFERENCE_SOURCE, on="active_rate")
    lab.run(exp.id)
    lab.view_results([exp.id])
    lab.open_chart("nonlinear_rate")
    lab.choose_layer("nonlinear_rate", "layers.1.pre")
    lab.zoom("nonlinear_rate", x_range=(0, 60))
    lab.fit(exp.id, "train_loss", families=["exponential"])
    again = fl.Lab("cells", root=tmp_path, fresh=True)
    assert len(again.log) == 0 and not again.experiments
    namespace = {"lab": again}
    for cell in lab.cells():
        exec_cell(cell.source, namespace)
    assert again.view.to_dict() == lab.view.to_dict()
    assert [e.config for e in again.experiments.values()] == \
        [e.config for e in lab.experiments.values()]
    assert again.results(exp.id).id == lab.results(exp.id).id  # reused, not retrained
    assert [f.table.rows[0].r2 for f in again.fits.values()] == \
        [f.table.rows[0].r2 for f in lab.fits.values()]


def test_fresh_archives_the_old_log_and_keeps_runs(tmp_path):
    first = fl.Lab("fresh", root=tmp_path)
    exp = first.create_experiment(**TINY)
    first.run(exp.id)
    ids = [e.id for e in first.log]
    second = fl.Lab("fresh", root=tmp_path, fresh=True)
    assert not second.experiments and len(second.log) == 0
    second.create_experiment(**TINY)
    assert second.run("exp_0").id == first.results("exp_0").id  # the run cache survives
    archived = second.store.archived_logs()
    assert [[row["id"] for row in rows] for rows in archived.values()] == [ids]
    third = fl.Lab("fresh", root=tmp_path)  # not fresh: the current log, not the archive
    assert [e.seq for e in third.log] == [e.seq for e in second.log]
    assert min(e.seq for e in third.log) > max(e.seq for e in first.log)


def test_an_old_store_without_the_cell_column_opens(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE actions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE "
               "NOT NULL, type TEXT NOT NULL, version INTEGER NOT NULL, params TEXT NOT NULL, "
               "actor TEXT NOT NULL, time REAL NOT NULL, duration REAL, result TEXT)")
    db.execute("INSERT INTO actions (id, type, version, params, actor, time, result) VALUES "
               "('a1', 'note', 1, ?, 'code', 0, '{}')", (json.dumps({"text": "old"}),))
    db.commit()
    db.close()
    lab = fl.Lab("old", root=tmp_path)
    assert lab.notes == ["old"] and lab.log.entries[0].cell is None
    lab.note("new")
    assert fl.Lab("old", root=tmp_path).log.entries[-1].cell is None


def test_the_executing_cell_is_logged_for_code_actions_only(lab):
    with cell_context("cell-1"):
        lab.note("from a cell")
        lab.apply({"type": "note", "params": {"text": "from an agent"}}, actor="agent")
    lab.note("outside")
    assert [e.cell for e in lab.log] == ["cell-1", None, None]
    assert [e.cell for e in fl.Lab("cells", root=lab.store.path.parent).log] == \
        ["cell-1", None, None]


def test_an_action_from_a_background_thread_has_no_cell(lab, monkeypatch):
    """A kernel's current request belongs to the cell running now; an action applied by
    a background thread (a sweep dispatching members) is not that cell's."""
    import threading
    import types

    class Kernel:
        def get_parent(self, channel):
            return {"metadata": {"cellId": "cell-running-now"}}

    shell = types.SimpleNamespace(kernel=Kernel())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    lab.note("in the cell")
    thread = threading.Thread(target=lambda: lab.note("from a thread"))
    thread.start()
    thread.join()
    assert [e.cell for e in lab.log] == ["cell-running-now", None]


def test_to_notebook_writes_a_notebook_that_rebuilds_the_lab(lab, tmp_path):
    exp = lab.create_experiment(**TINY, name='quote " and \n newline')
    lab.run(exp.id)
    lab.open_chart("train_loss")
    lab.zoom("train_loss", y_range=(0.001, 1))
    path = lab.to_notebook(tmp_path / "out" / "session.ipynb")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    sources = [c.source for c in notebook.cells]
    assert sources[0].endswith("fresh=True)\nlab")
    assert sources[1:] == [c.source for c in lab.cells()]
    assert notebook.cells[1].metadata["featurelab"]["action_id"] == lab.log.entries[0].id
    script = "\n".join(sources)  # what Restart & Run All does, in a fresh interpreter
    done = subprocess.run([sys.executable, "-c", script + "\nprint(lab.view.to_dict())"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "'y_range': (0.001, 1.0)" in done.stdout


def test_cells_of_a_memory_lab_open_a_memory_lab():
    lab = fl.Lab(":memory:")
    lab.note("x")
    assert lab.opening_code() == "import featurelab as fl\n\nlab = fl.Lab(':memory:')\nlab"
    assert action_cells(lab.log)[0].source == "lab.note('x')"


class RecordingBridge(CellBridge):
    """A bridge whose requests are kept instead of sent to a front end."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def start(self):
        pass

    def request(self, data):
        self.requests.append(data)
        return True


def test_only_the_panels_actions_become_requests_and_a_view_click_replaces(lab):
    bridge = RecordingBridge()
    recorder = CellRecorder(lab, "model-1", bridge)
    lab.apply({"type": "create_experiment", "params": TINY}, actor="human")
    lab.apply({"type": "open_chart", "params": {"metric": "train_loss"}}, actor="human")
    lab.apply({"type": "enlarge_chart", "params": {"metric": "train_loss"}}, actor="human")
    lab.note("from a cell")  # actor "code": the notebook has it; it also ends the chart cell
    lab.apply({"type": "zoom", "params": {"metric": "train_loss", "x_range": [0, 5]}},
              actor="human")
    ids = [e.id for e in lab.log]
    assert [(r["action_id"], r["replaces"], r["action_ids"]) for r in bridge.requests] == [
        (ids[0], None, [ids[0]]),
        (ids[1], None, [ids[1]]),
        (ids[2], ids[1], [ids[1], ids[2]]),
        (ids[4], None, [ids[4]]),
    ]
    assert {r["model_id"] for r in bridge.requests} == {"model-1"}
    assert bridge.requests[2]["source"] == \
        "lab.open_chart('train_loss')\nlab.enlarge_chart('train_loss')"
    assert bridge.requests[2]["coalesce_key"] == "chart:train_loss"
    recorder.unsubscribe()
    lab.apply({"type": "note", "params": {"text": "later"}}, actor="human")
    assert len(bridge.requests) == 4


def test_the_bridge_knows_whether_a_front_end_has_the_extension():
    bridge = CellBridge()
    heard = []
    bridge.on_status(heard.append)
    bridge._on_close({})  # a client without the extension closed the hello
    assert bridge.status == "none" and not bridge.request({"op": "insert_cell"})
    bridge._on_message({"content": {"data": {"op": "ready"}}})  # another one answered
    assert bridge.status == "extension"
    bridge._on_close({})  # a close after an answer changes nothing
    assert heard == ["none", "extension"]


def test_the_panel_records_its_clicks_as_cells(lab):
    from featurelab.ui.widget import Panel

    bridge = RecordingBridge()
    panel = Panel(lab, bridge=bridge)
    panel._on_message(panel, {"kind": "action", "request": 1,
                              "action": {"type": "note", "params": {"text": "clicked"}}}, [])
    (request,) = bridge.requests
    assert request["model_id"] == panel.model_id and request["source"] == "lab.note('clicked')"
    bridge._on_close({})
    assert panel.cells == "none"  # the panel shows its notice
