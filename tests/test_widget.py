"""The panel's Python side: messages in, actions and synced state out."""

import threading
import time

import numpy as np
import pytest
from conftest import REFERENCE_SOURCE

import featurelab as fl
from featurelab.ui.widget import PUSH_HZ, Panel

TINY = {"model": {"widths": [4, 8, 8, 1]}, "data": {"dim": 4, "n_train": 32, "n_test": 16},
        "optimizer": {"steps": 40}}


class Front:
    """Stands in for the JavaScript: sends messages, keeps the replies."""

    def __init__(self, panel: Panel) -> None:
        self.panel = panel
        self.replies: list[tuple[dict, list]] = []
        self.lock = threading.Lock()
        panel.send = self._receive
        self.n = 0

    def _receive(self, content, buffers=None):
        with self.lock:
            self.replies.append((content, list(buffers or [])))

    def ask(self, **content):
        self.n += 1
        content["request"] = f"r{self.n}"
        self.panel._on_message(self.panel, content, [])
        reply, buffers = next((c, b) for c, b in reversed(self.replies)
                              if c.get("request") == content["request"])
        return reply, buffers

    def act(self, type_, **params):
        reply, _ = self.ask(kind="action", action={"type": type_, "params": params})
        return reply


@pytest.fixture
def lab():
    return fl.Lab(":memory:")


def test_a_click_becomes_a_human_action_and_the_state_follows(lab):
    front = Front(lab.panel)
    reply = front.act("create_experiment", **TINY, name="first")
    assert reply == {"kind": "ack", "request": "r1", "result": {
        "experiment": "exp_0", "label": lab.experiments["exp_0"].config.label,
        "config_hash": lab.experiments["exp_0"].config.content_hash()}}
    assert lab.log[-1].actor == "human" and lab.log[-1].type == "create_experiment"
    state = lab.panel.state
    assert [e["id"] for e in state["experiments"]] == ["exp_0"]
    row = state["experiments"][0]
    assert row["name"] == "first" and row["status"] == "new"
    assert row["point_labels"]["layers.1.pre"] == "Layer 1 pre (32 x 8)"
    front.act("select_experiments", experiments=["exp_0"])
    assert lab.panel.state["view"]["selected"] == ["exp_0"]
    assert lab.panel.state["cells"][-1]["code"] == "lab.select(['exp_0'])"


def test_bad_input_is_named_next_to_its_field_and_nothing_is_lost(lab):
    front = Front(lab.panel)
    front.act("create_experiment", **TINY)
    before = (len(lab.log), dict(lab.panel.state))
    bad = front.act("create_experiment", model={"widths": [4, 0, 1]})
    assert bad == {"kind": "error", "request": "r2", "field": "model.widths[1]",
                   "message": "model.widths[1]: got 0; allowed: an integer from 1 to 65536"}
    unknown = front.act("run", experiment="exp_9")
    assert unknown["field"] == "experiment" and "exp_0" in unknown["message"]
    junk, _ = front.ask(kind="action", action={"type": "zoom", "params": {"metric": "x",
                                                                          "bogus": 1}})
    assert junk["kind"] == "error" and "Allowed fields" in junk["message"]
    odd, _ = front.ask(kind="dance")
    assert odd["message"] == "unknown panel message kind 'dance'"
    for reply, _ in front.replies:
        assert "Traceback" not in str(reply)
    assert (len(lab.log), lab.panel.state) == before


def test_the_panel_labels_phases_as_a_human_action_and_ships_them(lab):
    front = Front(lab.panel)
    front.act("create_experiment", **TINY)
    front.act("run", experiment="exp_0")
    reply = front.act("label_phases", experiment="exp_0", metric="train_loss")
    assert reply["kind"] == "ack", reply
    assert lab.log[-1].actor == "human" and lab.log[-1].type == "label_phases"
    shipped = lab.panel.state["phases"]
    assert [p["id"] for p in shipped] == ["phases_0"]
    assert shipped[0]["phases"] == reply["result"]["phases"] == [
        p.to_dict() for p in lab.state.phases["phases_0"].phases]
    assert shipped[0]["phases"][0]["start"] == 0 and shipped[0]["phases"][-1]["end"] == 39
    assert lab.panel.state["cells"][-1]["code"] == "lab.phases('exp_0', 'train_loss')"
    bad = front.act("label_phases", experiment="exp_0", metric="train_loss", scale="cubic")
    assert bad["kind"] == "error" and bad["field"] == "scale"
    assert len(lab.panel.state["phases"]) == 1


def test_series_travel_as_binary_buffers(lab):
    front = Front(lab.panel)
    front.act("create_experiment", **TINY,
              observables=["train_loss", "hidden_activations", "active_rate"])
    front.act("run", experiment="exp_0")
    reply, buffers = front.ask(kind="series", experiments=["exp_0", "exp_7"],
                               metric="active_rate", layer="layers.1.pre")
    clock = reply["series"][0].pop("clock")  # [step, seconds] of the run (the time x axis)
    assert clock[0] == [0.0, 0.0] and clock[-1][0] == 40.0
    assert reply["series"][0] == {"experiment": "exp_0", "shape": [40, 8], "error": None}
    assert reply["series"][1]["error"].startswith("experiment: got 'exp_7'")
    steps = np.frombuffer(buffers[0], dtype=np.float64)
    values = np.frombuffer(buffers[1], dtype=np.float32).reshape(40, 8)
    assert steps.tolist() == list(range(40))
    np.testing.assert_array_equal(values, lab.results("exp_0").series("active_rate",
                                                                       "layers.1.pre"))


def test_a_chart_downloads_as_svg_drawn_as_the_view_shows_it(lab):
    """The panel's SVG download: the kernel draws the chart (matplotlib, as the blog does)
    at the view's layer, axes and zoom, with the visible fits; the same chart gives the
    same file; a chart not open or with nothing to draw is a message, not a traceback."""
    import xml.etree.ElementTree as ET

    front = Front(lab.panel)
    missing, _ = front.ask(kind="svg", metric="train_loss")
    assert missing["kind"] == "error" and "open_chart('train_loss')" in missing["message"]
    front.act("create_experiment", **TINY)
    front.act("run", experiment="exp_0")
    front.act("view_results", experiments=["exp_0"])
    front.act("open_chart", metric="train_loss")
    front.act("set_axes", metric="train_loss", log_y=True)
    front.act("zoom", metric="train_loss", x_range=[0, 30])
    front.act("fit", experiment="exp_0", metric="train_loss", x_range=[0, 30])
    reply, buffers = front.ask(kind="svg", metric="train_loss")
    assert reply["kind"] == "svg" and not buffers
    svg = reply["svg"]
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg")
    assert "train_loss" in svg and "exp_0" in svg  # text stays text (svg.fonttype none)
    assert "Sigmoid" in svg or "Exponential" in svg  # the fitted curves' legend
    assert front.ask(kind="svg", metric="train_loss")[0]["svg"] == svg  # reproducible
    assert lab.chart_svg("train_loss") == svg
    bad, _ = front.ask(kind="svg", metric=3)
    assert bad["kind"] == "error" and "names its metric" in bad["message"]
    assert [e.type for e in lab.log][-1] == "fit"  # a download changes nothing


def test_a_statistic_defined_after_the_run_is_served_from_snapshots(lab):
    front = Front(lab.panel)
    front.act("create_experiment", **TINY)
    front.act("run", experiment="exp_0")
    front.act("define_statistic", name="nonlinear_rate", source=REFERENCE_SOURCE,
              on="active_rate")
    reply, buffers = front.ask(kind="series", experiments=["exp_0"], metric="nonlinear_rate",
                               layer="layers.0.pre")
    steps = np.frombuffer(buffers[0], dtype=np.float64)
    assert steps.tolist() == lab.results("exp_0").result().snapshots.steps.tolist()
    assert reply["series"][0]["shape"] == [len(steps)]


def test_activations_at_the_nearest_snapshot(lab):
    front = Front(lab.panel)
    front.act("create_experiment", **TINY)
    front.act("run", experiment="exp_0")
    reply, buffers = front.ask(kind="activations", experiment="exp_0", layer="layers.1.pre",
                               step=39)
    assert reply["step"] == 39 and reply["shape"] == [32, 8]
    snapshot = lab.results("exp_0").result().snapshots.at("layers.1.pre", 39)
    np.testing.assert_array_equal(np.frombuffer(buffers[0], np.float32).reshape(32, 8),
                                  snapshot)
    missing, _ = front.ask(kind="activations", experiment="exp_0", layer="layers.1.post",
                           step=0)
    assert "no activation snapshots of 'layers.1.post'" in missing["message"]


def test_every_display_of_a_lab_stays_in_sync(lab):
    assert lab.panel is lab.panel
    other = Panel(lab)
    Front(lab.panel).act("create_experiment", **TINY)
    lab.note("from code")
    assert other.state == lab.panel.state
    assert other.state["notes"] == ["from code"]
    bundle = lab._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == lab.panel.model_id


def test_a_background_run_pushes_live_progress_at_a_bounded_rate(lab):
    front = Front(lab.panel)
    front.act("create_experiment", model={"widths": [4, 64, 64, 1]},
              data={"dim": 4, "n_train": 256, "n_test": 16}, optimizer={"steps": 3000})
    seen = []
    lab.panel.observe(lambda change: seen.append(
        (time.monotonic(), change["new"]["experiments"][0]["status"],
         change["new"]["experiments"][0]["steps_done"])), names="state")
    front.act("run", experiment="exp_0", background=True)
    assert lab.results("exp_0").wait(timeout=120).status == "finished"
    time.sleep(0.05)
    live = [s for s in seen if s[1] == "running" and s[2] > 0]
    assert len(live) >= 2, seen  # progress arrived while it trained
    assert [s[2] for s in live] == sorted(s[2] for s in live)
    gaps = np.diff([s[0] for s in live])
    assert gaps.min() >= 1 / PUSH_HZ * 0.9
    assert seen[-1][1:] == ("finished", 3000)


def test_the_reference_session_through_panel_messages_only(lab):
    front = Front(lab.panel)
    assert front.act("create_experiment",
                     model={"kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"},
                     data={"task": "sin2", "dim": 10, "freq": 10, "n_train": 500,
                           "n_test": 200},
                     optimizer={"name": "adam", "lr": 1e-3, "steps": 2000}, loss="mse",
                     observables=["train_loss", "test_loss", "weight_l2_norm",
                                  "hidden_activations"], seed=0)["kind"] == "ack"
    front.act("select_experiments", experiments=["exp_0"])
    front.act("run", experiment="exp_0", background=True)
    lab.results("exp_0").wait(timeout=300)
    for type_, params in [
        ("view_results", {"experiments": ["exp_0"]}),
        ("open_chart", {"metric": "hidden_activations"}),
        ("enlarge_chart", {"metric": "hidden_activations"}),
        ("choose_layer", {"metric": "hidden_activations", "layer": "layers.1.pre"}),
        ("choose_method", {"metric": "hidden_activations", "method": "neuron_stats"}),
        ("add_neuron_stat", {"stat": "active_rate", "layer": "layers.1.pre"}),
        ("define_statistic", {"name": "nonlinear_rate", "source": REFERENCE_SOURCE,
                              "on": "active_rate"}),
        ("create_experiment", {"based_on": "exp_0", "observables_add": ["nonlinear_rate"]}),
        ("select_experiments", {"experiments": ["exp_1"]}),
    ]:
        assert front.act(type_, **params)["kind"] == "ack", (type_, front.replies[-1])
    front.act("run", experiment="exp_1", background=True)
    lab.results("exp_1").wait(timeout=300)
    front.act("open_chart", metric="nonlinear_rate")
    front.act("choose_layer", metric="nonlinear_rate", layer="layers.1.pre")
    front.act("zoom", metric="nonlinear_rate", x_range=[0, 100])
    fit = front.act("fit", experiment="exp_1", metric="nonlinear_rate", layer="layers.1.pre",
                    x_range=[0, 100])
    front.act("show_fits", metric="nonlinear_rate", visible=False)
    state = lab.panel.state
    assert [e["status"] for e in state["experiments"]] == ["finished", "finished"]
    assert "nonlinear_rate" in [s["name"] for s in state["statistics"]]
    best = fit["result"]["table"]["rows"][0]
    assert best["family"] == "sigmoid" and best["r2"] >= 0.99
    assert state["fits"][0]["table"]["rows"][0]["family"] == "sigmoid"
    assert state["view"]["charts"]["nonlinear_rate"]["fits_visible"] is False
    assert {e.actor for e in lab.log} == {"human"}


def test_a_closed_panel_stops_listening_and_the_lab_shows_a_new_one(lab):
    """Issue 11: the Panel never unsubscribed from the Lab or the kernel's cell bridge."""
    from featurelab.ui.cell_bridge import CellBridge

    bridge = CellBridge()
    bridge.start = lambda: None  # no kernel here
    before = {kind: lab.events.subscribers(kind) for kind in ("action", "run_ended")}
    panel = Panel(lab, bridge=bridge)
    assert lab.events.subscribers("action") == before["action"] + 2  # panel + recorder
    assert bridge.events.subscribers("status") == 1
    panel.close()
    assert {kind: lab.events.subscribers(kind) for kind in ("action", "run_ended")} == before
    assert bridge.events.subscribers("status") == 0
    lab.note("after the close")  # nothing pushes to the closed panel
    shown = lab.panel
    assert shown is not panel and lab.panel is shown
    shown.close()
    assert lab.panel is not shown


def test_a_failing_listener_is_reported_and_the_others_still_hear():
    from featurelab.engine.events import Events
    from featurelab.errors import FeaturelabWarning

    heard = []
    events = Events(("x",), isolate=True, warning=FeaturelabWarning)
    events.subscribe("x", lambda v: 1 / 0)
    off = events.subscribe("x", heard.append)
    with pytest.warns(FeaturelabWarning, match="failed on 'x': ZeroDivisionError"):
        events.emit("x", 1)
    off()
    with pytest.warns(FeaturelabWarning):
        events.emit("x", 2)
    assert heard == [1]
    with pytest.raises(ValueError, match="unknown event 'y'"):
        events.subscribe("y", print)
    strict = Events(("x",))
    strict.subscribe("x", lambda v: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a trainer's store that cannot write: it fails
        strict.emit("x", 1)


def test_a_form_with_several_mistakes_gets_every_error_at_once(lab):
    """The create form shows every error at once: the first as before (field and
    message), the others in `errors`, each at its own field; none about a knob the
    request got right, and nothing is created."""
    front = Front(lab.panel)
    reply = front.act("create_experiment", model={"widths": [4, 0, 1]},
                      data={"dim": 4, "n_train": -3, "n_test": 8},
                      optimizer={"steps": 10, "lr": 500}, seed=-1)
    assert reply["kind"] == "error" and reply["field"] == "model.widths[1]"
    assert [e["field"] for e in reply["errors"]] == ["data.n_train", "optimizer.lr", "seed"]
    assert reply["errors"][1]["message"] == "optimizer.lr: got 500; allowed: a number in (0, 100]"
    assert not lab.experiments and not lab.log
    one = front.act("create_experiment", model={"widths": [4, 8, 1]},
                    data={"dim": 4, "n_train": 16, "n_test": 8}, optimizer={"steps": 0})
    assert one["field"] == "optimizer.steps" and "errors" not in one
