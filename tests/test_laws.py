"""Laws across runs: a law fitted to a sweep group's mean curve (lab.fit_group) and a
summary fitted against a knob (lab.fit_across); known laws recovered, numbers checked
against numpy and lab.bands, errors that change nothing, restoring without fitting again,
and the sweep's section of the blog draft.

Every training here is tiny (TINY_LAB with 20 to 40 steps).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY_LAB, exec_cell

import featurelab as fl
from featurelab.actions import laws
from featurelab.actions.laws import fit_law, parse_summary, summarize
from featurelab.export.blog import (
    ChartBlock,
    CrossFitsBlock,
    LawBlock,
    SweepBlock,
    build_document,
)

STEPS = 20
BASE: dict[str, Any] = {**TINY_LAB, "optimizer": {"lr": 0.01, "steps": STEPS}}
LRS = [0.003, 0.01, 0.03]
GROUPS = [f"optimizer.lr={lr}" for lr in LRS]


def run_members(lab: fl.Lab, sweep: fl.Sweep) -> None:
    for member in sweep.members:
        lab.run(member)


def snapshot(lab: fl.Lab) -> dict[str, Any]:
    """What a fit that fails must leave as it was (the store included)."""
    return {"log": len(lab.log), "stored": len(lab.store.actions_after(0)),
            "fits": dict(lab.fits), "sweeps": dict(lab.sweeps),
            "sentences": lab.log.sentences()}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[fl.Lab, Path, list[Any]]:
    """A stored lab: three learning rates times three seeds, all run, then fitted; with
    the values the verbs returned."""
    root = tmp_path_factory.mktemp("laws")
    lab = fl.Lab("laws", root=root)
    lab.create_experiment(**BASE)
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": LRS}, seeds=[0, 1, 2],
                      name="lr")
    run_members(lab, sweep)
    values = [lab.fit_group(sweep.id, "optimizer.lr=0.01", "train_loss"),
              lab.fit_across(sweep.id, "train_loss", "optimizer.lr"),
              lab.fit_across(sweep.id, "train_loss", "optimizer.lr",
                             summary="first_below:2.5", law="linear"),
              lab.fit_group(sweep.id, "optimizer.lr=0.03", "test_loss",
                            families=["exponential"], x_range=(0, 10))]
    return lab, root, values


@pytest.fixture
def swept(fitted) -> tuple[fl.Lab, Path]:
    return fitted[0], fitted[1]


def entry_of(lab: fl.Lab, kind: str, index: int = 0) -> Any:
    return [e for e in lab.log if e.type == kind][index]


# -- the fitting function on numpy arrays ---------------------------------------------------

@pytest.mark.parametrize("law, a, b", [("power", 2.5, -0.7), ("power", 0.03, 1.3),
                                       ("exponential", 3.0, -1.5), ("exponential", -0.2, 0.4),
                                       ("linear", 1.0, -2.0)])
def test_fit_law_recovers_an_exact_law(law: str, a: float, b: float):
    x = np.geomspace(1e-3, 1e-1, 7) if law == "power" else np.linspace(0.0, 2.0, 7)
    y = {"power": lambda: a * x ** b, "exponential": lambda: a * np.exp(b * x),
         "linear": lambda: a + b * x}[law]()
    fit = fit_law(x, y, law)
    assert math.isclose(fit.a, a, rel_tol=1e-7) and math.isclose(fit.b, b, rel_tol=1e-7)
    assert math.isclose(fit.r2, 1.0, abs_tol=1e-12) and fit.n_points == 7
    np.testing.assert_allclose(fit.predict(x), y, rtol=1e-7)


def test_fit_law_is_the_least_squares_line_numpy_finds():
    rng = np.random.default_rng(0)
    x = np.geomspace(10, 1000, 9)
    y = 4.0 * x ** -0.5 * np.exp(rng.normal(0, 0.1, len(x)))
    power = fit_law(x, y, "power")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    assert math.isclose(power.b, slope, rel_tol=1e-10)
    assert math.isclose(power.a, math.exp(intercept), rel_tol=1e-10)
    line = np.log(y) - (intercept + slope * np.log(x))
    r2 = 1 - np.sum(line ** 2) / np.sum((np.log(y) - np.log(y).mean()) ** 2)
    assert math.isclose(power.r2, r2, rel_tol=1e-10) and 0.9 < power.r2 < 1
    linear = fit_law(x, y, "linear")
    slope, intercept = np.polyfit(x, y, 1)
    assert math.isclose(linear.b, slope, rel_tol=1e-9)
    assert math.isclose(linear.a, intercept, rel_tol=1e-9)
    assert power.equation == f"y = {power.a:.4g} x^({power.b:.4g})"


@pytest.mark.parametrize("x, y, law, message", [
    ([1, 2, 3], [1, -2, 3], "power", "positive values"),
    ([0, 2, 3], [1, 2, 3], "power", "x: got [0.0, 2.0, 3.0]"),
    ([1, 1, 1], [1, 2, 3], "linear", "at least two distinct values"),
    ([1, 2], [1, 2, 3], "linear", "the shape of x"),
    ([1, 2, 3], [1, np.nan, 3], "linear", "finite numbers"),
    ([1, 2, 3], [1, 2, 3], "cubic", "law: got 'cubic'; allowed: power, exponential, linear"),
])
def test_fit_law_names_what_is_wrong(x, y, law, message):
    with pytest.raises(fl.ConfigError) as raised:
        fit_law(x, y, law)
    assert message in str(raised.value)


def test_summaries_of_one_run_match_numpy():
    steps = np.arange(8)
    values = np.array([5.0, 4.0, 2.0, np.nan, 1.5, 1.0, 1.2, 1.1])
    assert summarize(steps, values, "final") == 1.1
    assert summarize(steps, values, "min") == 1.0
    assert summarize(steps, values, "argmin") == 5.0  # NaN steps passed over
    assert summarize(steps, values, "first_below:2") == 4.0  # strictly below
    assert summarize(steps, values, "first_below:2.0000001") == 2.0
    assert summarize(steps, values, "first_above:4.5") == 0.0
    assert summarize(steps, values, "first_below:0.5") is None  # never
    assert summarize(steps * 10, values, "argmin") == 50.0  # the step, not the index
    assert parse_summary("first_above:1e-3") == ("first_above", (1e-3,))
    for bad in ("last", "first_below", "first_below:", "first_below:x", "first_below:nan",
                "first_after:1"):
        with pytest.raises(fl.ConfigError, match="summary: got .*first_below:<x>"):
            parse_summary(bad)


# -- on a sweep: the numbers --------------------------------------------------------------------

def test_fit_group_fits_the_mean_of_lab_bands(swept):
    lab, _ = swept
    entry = entry_of(lab, "fit_group")
    assert entry.result["n"] == 3 and entry.result["members"] == ["exp_0", "exp_4", "exp_5"]
    bands = lab.bands("train_loss", sweep="sweep_0")
    part = bands[bands["group"] == "optimizer.lr=0.01"]
    expected = fl.fit_curves(part["step"].to_numpy(), part["mean"].to_numpy())
    assert entry.result["table"] == expected.to_dict()
    assert [r["family"] for r in entry.result["table"]["rows"]] != []
    stack = np.stack([lab.results(m).series("train_loss") for m in ("exp_0", "exp_4", "exp_5")])
    np.testing.assert_allclose(part["mean"], stack.mean(axis=0), rtol=1e-12)



def test_the_verbs_return_the_fits(fitted):
    lab, _, (group, law, _, narrow) = fitted
    assert group.table.to_dict() == entry_of(lab, "fit_group").result["table"]
    assert group.n == 3 and group.best is group.table.best and "(n = 3 runs)" in str(group)
    assert narrow.table.x_range == (0.0, 10.0) and narrow.members == ("exp_6", "exp_7", "exp_8")
    assert [r.family for r in narrow.rows] == ["exponential"]
    assert narrow.table.rows[0].n_points == 11
    result = entry_of(lab, "fit_across").result
    assert law.to_dict() == result and law.law == "power"
    assert (law.a, law.b, law.r2) == (result["params"]["a"], result["params"]["b"], result["r2"])
    np.testing.assert_allclose(law.predict(LRS), [law.a * lr ** law.b for lr in LRS])
    assert law.equation in str(law) and "(of the log-log line)" in str(law)


def test_fit_across_takes_group_means_of_per_run_summaries(swept):
    lab, _ = swept
    result = entry_of(lab, "fit_across").result
    sweep = lab.sweeps["sweep_0"]
    assert [p["group"] for p in result["points"]] == GROUPS and result["left_out"] == []
    means = []
    for point, lr in zip(result["points"], LRS):
        finals = np.array([lab.results(m).series("train_loss")[-1]
                           for m in sweep.groups[f"optimizer.lr={lr}"]], dtype=float)
        assert point["x"] == lr and point["n"] == 3 and point["missed"] == []
        assert math.isclose(point["mean"], finals.mean(), rel_tol=1e-12)
        assert math.isclose(point["std"], finals.std(ddof=1), rel_tol=1e-12)
        means.append(finals.mean())
    slope, intercept = np.polyfit(np.log(LRS), np.log(means), 1)
    assert math.isclose(result["params"]["b"], slope, rel_tol=1e-9)
    assert math.isclose(result["params"]["a"], math.exp(intercept), rel_tol=1e-9)
    assert result["law"] == "power" and result["equation"].startswith("y = ")
    # the same final values as lab.table()
    table = lab.table().set_index("id")
    members = list(sweep.groups[GROUPS[0]])
    assert math.isclose(result["points"][0]["mean"],
                        float(table.loc[members, "train_loss.final"].mean()), rel_tol=1e-6)


def test_groups_that_never_cross_are_reported_and_left_out(swept):
    lab, _ = swept
    result = entry_of(lab, "fit_across", 1).result
    finals = {g: min(lab.results(m).series("train_loss").min()
                     for m in lab.sweeps["sweep_0"].groups[g]) for g in GROUPS}
    never = [g for g in GROUPS if finals[g] >= 2.5]
    assert never, "the threshold should leave a group out"
    assert [o["group"] for o in result["left_out"]] == never
    assert all(o["why"] == "never below 2.5" for o in result["left_out"])
    assert [p["group"] for p in result["points"]] == [g for g in GROUPS if g not in never]
    for point in result["points"]:
        firsts, missed = [], []
        for member in lab.sweeps["sweep_0"].groups[point["group"]]:
            below = np.flatnonzero(lab.results(member).series("train_loss") < 2.5)
            if len(below):
                firsts.append(below[0])
            else:
                missed.append(member)
        assert point["n"] == len(firsts) and point["mean"] == pytest.approx(np.mean(firsts))
        assert point["missed"] == missed
    assert "left out (never below 2.5)" in entry_of(lab, "fit_across", 1).describe()


def test_a_law_known_exactly_from_real_runs():
    """The step of the minimum of a loss that falls at every step is the last step:
    argmin = steps - 1, a line with a = -1, b = 1 exactly."""
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**TINY_LAB, "optimizer": {"lr": 1e-3, "steps": 40}})
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.steps": [10, 20, 40]}, seeds=[0, 1])
    run_members(lab, sweep)
    for member in sweep.members:  # the premise
        assert np.all(np.diff(lab.results(member).series("train_loss")) < 0)
    law = lab.fit_across(sweep.id, "train_loss", "optimizer.steps", summary="argmin",
                         law="linear")
    assert [(p.x, p.mean, p.std, p.n) for p in law.points] == \
        [(10.0, 9.0, 0.0, 2), (20.0, 19.0, 0.0, 2), (40.0, 39.0, 0.0, 2)]
    assert law.a == pytest.approx(-1.0, abs=1e-12) and law.b == pytest.approx(1.0, rel=1e-12)
    assert law.r2 == pytest.approx(1.0, abs=1e-12)
    assert law.equation == "y = -1 + 1 x"


def test_only_finished_runs_count_and_where_fixes_other_knobs():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**BASE)
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 0.03],
                                              "model.widths": [[4, 8, 8, 1], [4, 16, 1]]},
                      seeds=[0, 1])
    for member in sweep.members:
        if member == "exp_1":
            lab.run(member, stop_at=5)  # cancelled: not counted
        else:
            lab.run(member)
    group = "optimizer.lr=0.01, model.widths=[4, 8, 8, 1]"
    assert sweep.groups[group] == ("exp_0", "exp_1")
    fit = lab.fit_group(sweep.id, group, "test_loss")
    assert fit.members == ("exp_0",) and fit.n == 1  # exp_1 was cancelled
    with pytest.raises(fl.ConfigError, match=r"where: got None; allowed: values fixing "
                                             r"model.widths too"):
        lab.fit_across(sweep.id, "test_loss", "optimizer.lr", law="linear")
    law = lab.fit_across(sweep.id, "test_loss", "optimizer.lr", law="linear",
                         where={"model.widths": [4, 16, 1]})
    assert [p.group for p in law.points] == ["optimizer.lr=0.01, model.widths=[4, 16, 1]",
                                             "optimizer.lr=0.03, model.widths=[4, 16, 1]"]
    narrow = lab.fit_across(sweep.id, "test_loss", "optimizer.lr", law="linear",
                            where={"model.widths": [4, 8, 8, 1]})
    assert [p.n for p in narrow.points] == [1, 2]
    assert lab.log[-1].action.to_code() == (
        "lab.fit_across(\n    'sweep_0',\n    'test_loss',\n    'optimizer.lr',\n"
        "    law='linear',\n    where={'model.widths': [4, 8, 8, 1]},\n)")


# -- errors ------------------------------------------------------------------------------------

ERRORS = [
    ("unknown sweep", lambda lab: lab.fit_group("sweep_9", GROUPS[0], "train_loss"),
     fl.ConfigError, "sweep: got 'sweep_9'; allowed: an existing sweep (sweep_0)"),
    ("unknown group", lambda lab: lab.fit_group("sweep_0", "lr=1", "train_loss"),
     fl.ConfigError, "group: got 'lr=1'; allowed: a group of sweep_0: 'optimizer.lr=0.003'"),
    ("unknown metric", lambda lab: lab.fit_group("sweep_0", GROUPS[0], "loss"),
     fl.FeaturelabError, "no series 'loss'"),
    ("per-neuron metric",
     lambda lab: lab.fit_group("sweep_0", GROUPS[0], "active_rate", layer="layers.0.pre"),
     fl.ConfigError, "active_rate@layers.0.pre has one per neuron"),
    ("unknown family",
     lambda lab: lab.fit_group("sweep_0", GROUPS[0], "train_loss", families=["cubic"]),
     fl.ConfigError, "families: got 'cubic'"),
    ("across an unknown metric", lambda lab: lab.fit_across("sweep_0", "loss", "optimizer.lr"),
     fl.FeaturelabError, "no series 'loss'"),
    ("the seed as the knob", lambda lab: lab.fit_across("sweep_0", "train_loss", "seed"),
     fl.ConfigError, "knob: got 'seed'; allowed: a knob sweep_0 varies besides the seed: "
                     "optimizer.lr"),
    ("a knob not varied",
     lambda lab: lab.fit_across("sweep_0", "train_loss", "data.n_train"),
     fl.ConfigError, "knob: got 'data.n_train'"),
    ("a bad summary",
     lambda lab: lab.fit_across("sweep_0", "train_loss", "optimizer.lr", summary="last"),
     fl.ConfigError, "summary: got 'last'"),
    ("a bad law",
     lambda lab: lab.fit_across("sweep_0", "train_loss", "optimizer.lr", law="cubic"),
     fl.ConfigError, "law: got 'cubic'; allowed: power, exponential, linear"),
    ("a where on no knob",
     lambda lab: lab.fit_across("sweep_0", "train_loss", "optimizer.lr",
                                where={"model.widths": [4]}),
     fl.ConfigError, "where: got {'model.widths': [4]}"),
    ("a power law of a step that can be 0",
     lambda lab: lab.fit_across("sweep_0", "train_loss", "optimizer.lr",
                                summary="first_below:100"),
     fl.ConfigError, "a power law needs positive knob values and means"),
    ("a threshold no group crosses",
     lambda lab: lab.fit_across("sweep_0", "train_loss", "optimizer.lr",
                                summary="first_below:-1", law="linear"),
     fl.FeaturelabError, "has 0 (left out: optimizer.lr=0.003: never below -1"),
]


@pytest.mark.parametrize("what, act, error, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_problem_and_change_nothing(swept, what, act, error, message):
    lab, _ = swept
    before = snapshot(lab)
    with pytest.raises(error) as raised:
        act(lab)
    assert message in str(raised.value)
    assert snapshot(lab) == before


def test_a_sweep_not_run_yet_has_nothing_to_fit():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**BASE)
    lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 0.03]}, seeds=[1, 2])
    before = snapshot(lab)
    with pytest.raises(fl.FeaturelabError,
                       match=r"group 'optimizer.lr=0.01' of sweep_0 has no finished run yet "
                             r"\(exp_1, exp_2\); lab.run\('sweep_0'\)"):
        lab.fit_group("sweep_0", "optimizer.lr=0.01", "train_loss")
    with pytest.raises(fl.FeaturelabError, match=r"has 0 .*no finished run.*lab.run"):
        lab.fit_across("sweep_0", "train_loss", "optimizer.lr")
    assert snapshot(lab) == before


# -- restored, replayed, rebuilt ---------------------------------------------------------------

def test_a_reopened_lab_reads_the_fits_without_fitting_again(swept, monkeypatch):
    lab, root = swept

    def refit(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a restored lab fitted again")

    monkeypatch.setattr(laws, "fit_curves", refit)
    monkeypatch.setattr(laws, "fit_law", refit)
    monkeypatch.setattr(laws, "curve_fit", refit)
    again = fl.Lab("laws", root=root, session=lab.session)
    assert again.restore_errors == []
    kinds = ("fit_group", "fit_across")
    assert [(e.type, e.params, e.result) for e in again.log if e.type in kinds] == \
        [(e.type, e.params, e.result) for e in lab.log if e.type in kinds]
    assert again.log.sentences() == lab.log.sentences()
    # the verb's value, as a restored action gives it
    entry = entry_of(again, "fit_across")
    _, law = entry.action.apply(again.state, again, entry.result)
    assert (law.a, law.b) == (entry.result["params"]["a"], entry.result["params"]["b"])
    assert [p.to_dict() for p in law.points] == entry.result["points"]


def test_replay_refits_and_finds_the_same_laws(swept):
    lab, _ = swept
    report = fl.replay(lab)
    assert report.ok, str(report)
    assert any("group fit of sweep_0" in c and "same table" in c for c in report.compared)
    assert sum("same law" in c for c in report.compared) == 2
    assert sum("same table" in c for c in report.compared) == 2


def test_the_cells_rebuild_the_same_fits(swept):
    lab, _ = swept
    namespace: dict[str, Any] = {"lab": fl.Lab(":memory:")}
    for cell in lab.cells():
        exec_cell(cell.source, namespace)
    copy = namespace["lab"]
    kinds = ("fit_group", "fit_across")
    assert [e.result for e in copy.log if e.type in kinds] == \
        [e.result for e in lab.log if e.type in kinds]


# -- the blog and the knowledge graph ----------------------------------------------------------

def test_the_blog_has_a_section_per_sweep_with_its_picture(swept, tmp_path):
    lab, _ = swept
    document = build_document(lab)
    [head] = [b for b in document.blocks if isinstance(b, SweepBlock)]
    assert head.title == "Sweep 0, 'lr'" and head.metrics == ("train_loss", "test_loss")
    assert head.knobs == (("optimizer.lr", ("0.003", "0.01", "0.03")), ("seed", ("0", "1", "2")))
    bands = lab.bands("train_loss", sweep="sweep_0")
    for group in head.groups:
        last = bands[bands["group"] == group.group].iloc[-1]
        assert group.seeds == (0, 1, 2) and group.n == 3
        assert group.finals[0] == (float(last["mean"]), float(last["std"]), 3)
    index = document.blocks.index(head)
    after = document.blocks[index + 1:]
    charts = [b for b in after if isinstance(b, ChartBlock)]
    assert len(charts) == 2 and "band one standard deviation" in charts[0].picture.caption
    assert charts[0].picture.axes[0].title == "train_loss of sweep_0"
    [fits] = [b for b in after if isinstance(b, CrossFitsBlock)]
    assert [row[0] for row in fits.rows] == ["Sigmoid (best of 4)", "Power law", "Linear law",
                                             "Exponential (best of 1)"]
    laws_shown = [b for b in document.blocks if isinstance(b, LawBlock)]
    assert len(laws_shown) == 2 and laws_shown[0].r2_of == "the log-log line"

    path = lab.export_blog(tmp_path / "post.md")
    text = path.read_text()
    assert "## Sweep 0, 'lr'" in text
    assert "| optimizer.lr | 0.003, 0.01, 0.03 |" in text
    assert re.search(r"\| optimizer\.lr=0\.01 \| exp_0, exp_4, exp_5 \| 0, 1, 2 \| 3 \| "
                     r"[0-9.]+ ± [0-9.e-]+ \|", text)
    result = entry_of(lab, "fit_across").result
    assert f"$${result['latex']}$$" in text and f"$R^2 = {result['r2']:.4f}$" in text
    pictures = re.findall(r"!\[[^\]]*\]\((post_files/chart-\d+\.png)\)", text)
    assert len(pictures) == 4  # two laws, two banded charts
    for picture in pictures:
        assert (tmp_path / picture).read_bytes().startswith(b"\x89PNG")
    html = lab.export_blog(tmp_path / "post.html").read_text()
    assert "Sweep 0, &#x27;lr&#x27;" in html or "Sweep 0, 'lr'" in html


def test_the_knowledge_graph_has_the_fits_across_runs(swept):
    lab, _ = swept
    graph = lab.graph()
    fits = {n: d for n, d in graph.nodes(data=True) if d["kind"] == "fit"}
    assert {d.get("knob") for d in fits.values()} == {None, "optimizer.lr"}
    group_fit = next(n for n, d in fits.items() if d.get("group"))
    runs = {t for _, t, r in graph.out_edges(group_fit, data="relation") if r == "fitted_to"}
    assert len(runs) == 4  # three runs and the metric
