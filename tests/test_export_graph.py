"""The knowledge graph: nodes and relations of the reference session, JSON, PNG."""

import json
import struct

import networkx as nx
from conftest import TINY_LAB as TINY

import featurelab as fl


def relations(graph, relation):
    return {(a, b) for a, b, r in graph.edges(data="relation") if r == relation}


def test_the_reference_session_as_a_graph(reference_lab):
    graph = reference_lab.graph()
    assert isinstance(graph, nx.DiGraph)
    kinds = {}
    for node, kind in graph.nodes(data="kind"):
        kinds.setdefault(kind, set()).add(node)
    runs = {f"run:{reference_lab.latest[e]}" for e in ("exp_0", "exp_1")}
    assert kinds["experiment"] == {"exp_0", "exp_1"}
    assert kinds["run"] == runs
    assert kinds["statistic"] == {"statistic:active_rate", "statistic:nonlinear_rate"}
    assert kinds["fit"] == {"fit_0"}
    assert kinds["observable"] == {f"observable:{o}" for o in (
        "train_loss", "test_loss", "weight_l2_norm", "hidden_activations")}
    assert relations(graph, "based_on") == {("exp_1", "exp_0")}
    assert relations(graph, "run_of") == {(f"run:{reference_lab.latest[e]}", e)
                                          for e in ("exp_0", "exp_1")}
    assert relations(graph, "defined_on") == {
        ("statistic:nonlinear_rate", "statistic:active_rate"),
        ("statistic:active_rate", "activations")}
    assert relations(graph, "fitted_to") == {
        ("fit_0", f"run:{reference_lab.latest['exp_1']}"), ("fit_0", "statistic:nonlinear_rate")}
    measured = {b for a, b in relations(graph, "measured_by") if a == "exp_1"}
    assert "statistic:nonlinear_rate" in measured and len(measured) == 5
    assert graph.nodes["fit_0"]["best"] == "sigmoid"
    assert graph.edges["fit_0", "statistic:nonlinear_rate"]["layer"] == "layers.1.pre"
    assert graph.edges["fit_0", "statistic:nonlinear_rate"]["x_range"] == [0.0, 100.0]
    assert "t < 1" in graph.nodes["statistic:nonlinear_rate"]["source"]


def test_a_note_is_about_what_was_made_just_before(tmp_path):
    lab = fl.Lab(":memory:")
    lab.note("before anything")
    lab.create_experiment(**TINY)
    lab.select("exp_0")  # a view: the note is still about the experiment
    lab.note("a tiny one")
    graph = lab.graph()
    assert graph.nodes["note_0"]["label"] == "before anything"
    assert list(graph.successors("note_0")) == []
    assert relations(graph, "about") == {("note_1", "exp_0")}


def test_json_round_trips_and_the_png_is_a_picture(reference_lab, tmp_path):
    path = reference_lab.export_graph(tmp_path / "graph.json")
    assert path == tmp_path / "graph.json"
    data = json.loads(path.read_text())
    again = nx.node_link_graph(data, edges="edges")
    graph = reference_lab.graph()
    assert set(again.nodes) == set(graph.nodes)
    assert {(a, b, r) for a, b, r in again.edges(data="relation")} == \
        {(a, b, r) for a, b, r in graph.edges(data="relation")}
    png = (tmp_path / "graph.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 900 and 300 <= height <= width


def test_an_empty_lab_has_an_empty_graph_and_still_a_picture(tmp_path):
    lab = fl.Lab(":memory:")
    assert lab.graph().number_of_nodes() == 0
    lab.export_graph(tmp_path / "empty")
    assert (tmp_path / "empty.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "empty.json").read_text())["nodes"] == []
