"""The panel's state model (featurelab/ui/panel_state.py) and the vitest fixtures made from it.

js/test/fixtures holds what the JavaScript tests render, generated here from real labs:

  empty-state.json        lab_state of a fresh lab
  reference-state.json    lab_state after a reference-like session (below)
  family-values.json      each fit family's curve at a few points, by the engine
  panel-state.schema.json panel_state_schema()

The tests fail when Python's state no longer matches the committed files. After a
deliberate change, regenerate them and commit them with the change:

  FEATURELAB_WRITE_FIXTURES=1 .venv/bin/python -m pytest -q tests/test_panel_state.py

(or `npm run fixtures --prefix js`). Volatile values are normalised: run ids become
run0, run1, ... and action ids action_0, action_1, ... in order of appearance; numbers
are compared with a relative tolerance, as training may differ in the last digits
between machines.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from conftest import REFERENCE_SOURCE
from pydantic import ValidationError

import featurelab as fl
from featurelab.engine.fit import DEFAULT_FAMILIES, FAMILIES
from featurelab.export import charts
from featurelab.ui.panel_state import (
    FAMILY_EXPRESSIONS,
    PANEL_STATE,
    equation_mathml,
    evaluate,
    panel_state_schema,
    validate_panel_state,
)
from featurelab.ui.widget import lab_state
from featurelab.view import FAMILY_COLORS, METHOD_LABELS

FIXTURES = Path(__file__).parent.parent / "js" / "test" / "fixtures"
WRITE = os.environ.get("FEATURELAB_WRITE_FIXTURES") == "1"
REL_TOL = 1e-3  # numbers from training: the same on one machine, close across machines
STEPS = 150  # the reference session's runs are 2000 steps; its fit uses steps 0 to 100


def reference_like_lab() -> fl.Lab:
    """The reference session of DESIGN.md with short runs, as the panel's tests know it:
    exp_0 and exp_1 selected and viewed; the hidden_activations chart (enlarged, layer 1
    pre, active_rate), train_loss on a log y axis, nonlinear_rate zoomed to steps 0-100
    with fit_0, and its phases (phases_0)."""
    lab = fl.Lab(":memory:")
    lab.create_experiment(
        model={"kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"},
        data={"task": "sin2", "dim": 10, "freq": 10, "n_train": 500, "n_test": 200},
        optimizer={"name": "adam", "lr": 1e-3, "steps": STEPS},
        loss="mse",
        observables=["train_loss", "test_loss", "weight_l2_norm", "hidden_activations"],
        seed=0,
    )
    lab.select("exp_0")
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    lab.open_chart("hidden_activations")
    lab.enlarge_chart("hidden_activations")
    lab.choose_layer("hidden_activations", "layers.1.pre")
    lab.choose_method("hidden_activations", "neuron_stats")
    lab.add_neuron_stat("active_rate", layer="layers.1.pre")
    lab.open_chart("train_loss")
    lab.set_axes("train_loss", log_y=True)
    lab.define_statistic("nonlinear_rate", source=REFERENCE_SOURCE, on="active_rate")
    lab.create_experiment(based_on="exp_0", observables_add=["nonlinear_rate"])
    lab.select("exp_0", "exp_1")
    lab.run("exp_1")
    lab.view_results(["exp_0", "exp_1"])
    lab.open_chart("nonlinear_rate")
    lab.choose_layer("nonlinear_rate", "layers.1.pre")
    lab.zoom("nonlinear_rate", x_range=(0, 100))
    lab.fit("exp_1", "nonlinear_rate", layer="layers.1.pre", x_range=(0, 100))
    lab.phases("exp_1", "nonlinear_rate", layer="layers.1.pre")
    return lab


def normalised(state: Any) -> dict[str, Any]:
    """The state as JSON, with run and action ids renamed in order of appearance."""
    out = json.loads(json.dumps(state))
    names: dict[str, str] = {}
    for exp in out["experiments"]:
        for run in exp["runs"]:
            names.setdefault(run["id"], f"run{len(names)}")
    for i, cell in enumerate(out["cells"]):
        names[cell["action_id"]] = f"action_{i}"

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in names.items():
                value = value.replace(old, new)
            return value
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, dict):
            return {rename(k): rename(v) for k, v in value.items()}
        return value

    return rename(out)


def assert_same(got: Any, want: Any, path: str = "$") -> None:
    """Equal JSON (key order included), numbers within REL_TOL."""
    if isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=REL_TOL, abs_tol=1e-12), f"{path}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: {got!r} is not an object"
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), \
            f"{path}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
    else:  # strings, ints, booleans, null: exactly (and of the same JSON type)
        assert type(got) is type(want) and got == want, f"{path}: {got!r} != {want!r}"


def check_fixture(name: str, value: Any) -> None:
    """Compares a generated fixture with the committed file (rewrites it when asked)."""
    path = FIXTURES / name
    if WRITE:
        path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert path.exists(), f"{path} is missing; {__doc__}"
    committed = json.loads(path.read_text(encoding="utf-8"))
    try:
        assert_same(value, committed)
    except AssertionError as exc:
        raise AssertionError(f"js/test/fixtures/{name} is not what Python generates now: "
                             f"{exc}. Regenerate it: FEATURELAB_WRITE_FIXTURES=1 .venv/bin/"
                             "python -m pytest -q tests/test_panel_state.py") from None


@pytest.fixture(scope="module")
def short_reference_lab() -> fl.Lab:
    return reference_like_lab()


@pytest.fixture(scope="module")
def reference_state(short_reference_lab) -> dict[str, Any]:
    return normalised(lab_state(short_reference_lab))


@pytest.fixture(scope="module")
def empty_state() -> dict[str, Any]:
    return normalised(lab_state(fl.Lab(":memory:")))


# -- the fixtures ---------------------------------------------------------------------


def test_the_schema_fixture_is_panel_state_schema():
    check_fixture("panel-state.schema.json", panel_state_schema())


def test_the_empty_state_fixture_is_a_fresh_labs_state(empty_state):
    check_fixture("empty-state.json", empty_state)


def test_the_reference_state_fixture_is_the_reference_sessions_state(reference_state):
    state = reference_state
    assert [e["id"] for e in state["experiments"]] == ["exp_0", "exp_1"]
    assert [e["runs"][0]["id"] for e in state["experiments"]] == ["run0", "run1"]
    assert state["view"]["viewed"] == ["exp_0", "exp_1"]
    assert list(state["view"]["charts"]) == ["hidden_activations", "train_loss",
                                             "nonlinear_rate"]
    assert [r["family"] for r in state["fits"][0]["table"]["rows"]] == [
        "sigmoid", "exponential", "log_power", "power"]
    check_fixture("reference-state.json", state)


def test_family_values_fixture_is_the_engines_curves():
    """What js/test checks its evaluation of each family's expression against."""
    t = [0.0, 0.5, 3.0, 10.0, 99.0]
    coefficients = {"sigmoid": [-0.77, -0.235, 4.5, 1.01], "exponential": [1.0, 0.054, 0.21],
                    "power": [2.0, -0.5, 0.1], "log_power": [-0.17, 1.22, 1.22],
                    "linear": [0.5, -2.0]}
    assert set(coefficients) == set(FAMILIES)
    values = {name: {"coefficients": c, "t": t,
                     "values": [float(v) for v in FAMILIES[name].func(np.array(t), *c)]}
              for name, c in coefficients.items()}
    check_fixture("family-values.json", values)


@pytest.mark.parametrize("name", ["empty-state.json", "reference-state.json"])
def test_the_fixtures_validate_against_the_schema(name):
    text = (FIXTURES / name).read_text(encoding="utf-8")
    schema = json.loads((FIXTURES / "panel-state.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(text))
    PANEL_STATE.validate_json(text)


# -- the model ------------------------------------------------------------------------


def test_lab_state_is_validated_and_knows_every_field(reference_state):
    state = PANEL_STATE.validate_python(json.loads(json.dumps(reference_state)),
                                        strict=False)
    with pytest.raises(ValidationError, match="surprise"):
        validate_panel_state({**state, "surprise": 1})
    row = {**state["experiments"][0], "surprise": 1}
    with pytest.raises(ValidationError, match="surprise"):
        validate_panel_state({**state, "experiments": [row]})
    missing = {k: v for k, v in state["experiments"][0].items() if k != "color"}
    with pytest.raises(ValidationError, match="color"):
        validate_panel_state({**state, "experiments": [missing]})
    wrong = {**state["experiments"][0], "steps_done": "150"}
    with pytest.raises(ValidationError, match="steps_done"):
        validate_panel_state({**state, "experiments": [wrong]})


def test_the_state_is_plain_json(short_reference_lab):
    state = lab_state(short_reference_lab)
    assert json.loads(json.dumps(state)) == state  # no tuples, no numpy numbers
    assert state["view"]["charts"]["nonlinear_rate"]["x_range"] == [0.0, 100.0]


# -- the facts the panel reads from the state -----------------------------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_expression_is_the_engines_function(name):
    family = FAMILIES[name]
    expr = FAMILY_EXPRESSIONS[name]
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 200.0, 41)
    for _ in range(20):
        c = list(rng.uniform(0.05, 1.5, family.n_params) * rng.choice([-1, 1], family.n_params))
        if name == "log_power":
            c[1] = abs(c[1])  # the engine bounds c2 > 0 (log(1)**c2 at t = 0)
        want = family.func(t, *c)
        got = evaluate(expr, c, t)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300, err_msg=name)
    used = set()

    def coefficients(node: Any) -> None:
        if isinstance(node, list):
            if node[0] == "c":
                used.add(node[1])
            else:
                for child in node[1:]:
                    coefficients(child)

    coefficients(expr)
    assert used == set(range(1, family.n_params + 1))


def test_the_families_are_shipped_with_equations_colours_and_defaults(empty_state):
    families = empty_state["families"]
    assert [f["name"] for f in families] == list(FAMILIES)
    assert [f["name"] for f in families if f["default"]] == [
        n for n in FAMILIES if n in DEFAULT_FAMILIES]
    assert set(DEFAULT_FAMILIES) <= set(FAMILIES)
    for f in families:
        fam = FAMILIES[f["name"]]
        assert (f["label"], f["equation"], f["latex"]) == (fam.label, fam.equation, fam.latex)
        assert f["color"] == FAMILY_COLORS[f["name"]]
        assert f["mathml"] == equation_mathml(f["expression"])
    # the MathML the panel showed before it came from Python (js/src/fits.js, by hand)
    exponential = next(f for f in families if f["name"] == "exponential")["mathml"]
    c = lambda i: ["msub", ["mi", "c"], ["mn", str(i)]]  # noqa: E731
    assert exponential == ["mrow", ["mi", "f"], ["mo", "("], ["mi", "t"], ["mo", ")"],
                           ["mo", "="], c(1), ["mo", "·"],
                           ["msup", ["mi", "e"], ["mrow", ["mo", "−"], c(2), ["mi", "t"]]],
                           ["mo", "+"], c(3)]


def test_every_fit_family_has_a_colour():
    assert set(FAMILY_COLORS) == set(FAMILIES)


def test_experiment_colours_and_metric_kinds_are_the_blog_pictures(short_reference_lab):
    lab = short_reference_lab
    state = lab_state(lab)
    for exp in state["experiments"]:
        assert exp["color"] == charts.experiment_color(lab, exp["id"])
    metrics = {o.split("@")[0] for e in lab.experiments.values() for o in e.config.observables}
    metrics |= set(lab.statistics.names())
    for metric in metrics:
        assert state["metric_kinds"][metric] == charts.metric_kind(lab, metric), metric
    assert state["metric_kinds"]["nonlinear_rate"] == "per_layer"
    assert state["metric_kinds"]["active_rate"] == "per_neuron"
    assert state["metric_kinds"]["hidden_activations"] == "activations"
    assert state["metric_kinds"]["train_loss"] == "scalar"


def test_fit_rows_come_ranked_by_the_engine(reference_state):
    rows = reference_state["fits"][0]["table"]["rows"]
    ok = [r["r2"] for r in rows if r["ok"]]
    assert ok == sorted(ok, reverse=True)
    assert all(r["ok"] for r in rows[: len(ok)])


def test_the_phases_of_a_curve_are_shipped_for_shaded_spans(short_reference_lab,
                                                            reference_state):
    from typing import get_args

    from featurelab.engine.phases import KINDS
    from featurelab.ui.panel_state import PhaseKind
    from featurelab.view import PHASE_COLORS

    assert set(get_args(PhaseKind)) == set(KINDS) == set(reference_state["phase_colors"])
    assert reference_state["phase_colors"] == PHASE_COLORS
    [shipped] = reference_state["phases"]
    labels = short_reference_lab.state.phases["phases_0"]
    assert (shipped["id"], shipped["experiment"], shipped["metric"], shipped["layer"]) == (
        "phases_0", "exp_1", "nonlinear_rate", "layers.1.pre")
    assert shipped["phases"] == [p.to_dict() for p in labels.phases]
    spans = [(p["start"], p["end"]) for p in shipped["phases"]]
    assert spans[0][0] == 0 and spans[-1][1] == STEPS - 1
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # they tile the curve
    kinds = [p["kind"] for p in shipped["phases"]]
    assert "drop" in kinds and kinds[-1] == "flat"  # 150 steps: the drop, then flat


def test_the_options_are_the_engines_registries(empty_state):
    from featurelab.engine.config import MODEL_KINDS

    assert empty_state["options"]["methods"] == METHOD_LABELS
    assert empty_state["options"]["model_kinds"] == list(MODEL_KINDS)
