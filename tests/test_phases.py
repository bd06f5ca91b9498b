"""Phase labels (featurelab.engine.phases, the label_phases action): synthetic curves with
known change points, bad and broken input, the action's log, replay, panel and blog, and
the reference session's nonlinear_rate on five seeds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import REFERENCE_SOURCE, TINY_LAB

import featurelab as fl
from featurelab.engine.phases import KINDS, Phase, label_phases, phases_text
from featurelab.export.blog import build_document
from featurelab.view import PHASE_COLORS

T = 2000
STEPS = np.arange(T, dtype=float)
# A logistic of width w is 10% of its way ln(9) w before its middle and 95% ln(19) w after:
# where a move starts (a rise time's 10%) and ends (settled within 5%).
LN9, LN19 = math.log(9.0), math.log(19.0)


def logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


def kinds(phases):
    return [p.kind for p in phases]


def drop_plateau_rise(rng):
    """The reference's shape with random timing and noise: (values, drop end, rise start,
    rise end, rise width), the boundaries where each logistic is 10% or 95% of its way."""
    w1 = rng.uniform(3, 10)
    c1 = w1 * LN19 + rng.uniform(0, 5)  # the drop starts at step 0
    c2, w2 = rng.uniform(600, 1200), rng.uniform(40, 120)
    y = (0.25 + 0.75 * logistic((c1 - STEPS) / w1) + 0.5 * logistic((STEPS - c2) / w2)
         + rng.normal(0, rng.uniform(0.003, 0.02), T))
    return y, c1 + w1 * LN19, c2 - w2 * LN9, c2 + w2 * LN19, w2 * (LN9 + LN19)


# -- synthetic curves ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_drop_plateau_rise_come_out_at_their_change_points(seed):
    y, drop_end, rise_start, rise_end, width = drop_plateau_rise(np.random.default_rng(seed))
    phases = label_phases(STEPS, y)
    assert kinds(phases) == ["drop", "plateau", "rise", "flat"]
    assert abs(phases[0].end - drop_end) <= 8
    assert abs(phases[2].start - rise_start) <= 0.15 * width + 5
    assert abs(phases[2].end - rise_end) <= 0.15 * width + 5
    assert phases[0].primitive == "sigmoid" and phases[0].r2 >= 0.98
    assert phases[2].primitive is not None and phases[2].r2 >= 0.95
    assert phases[1].primitive is None and abs(phases[1].mean - 0.25) < 0.02
    assert [p.start for p in phases[1:]] == [p.end for p in phases[:-1]]  # they tile
    assert (phases[0].start, phases[-1].end) == (0, T - 1)


@pytest.mark.parametrize("seed", range(4))
def test_a_loss_plateau_then_exponential_decay_is_segmented_in_log10(seed):
    rng = np.random.default_rng(seed)
    knee, tau = rng.uniform(200, 800), rng.uniform(100, 250)
    loss = np.where(STEPS < knee, 1.0, np.exp(-(STEPS - knee) / tau)) * 10 ** rng.normal(
        0, 0.02, T)
    phases = label_phases(STEPS, loss)
    assert kinds(phases) == ["plateau", "exponential decay"]
    assert abs(phases[1].start - knee) <= 0.01 * T
    assert phases[1].primitive in ("exponential", "sigmoid") and phases[1].r2 >= 0.95
    # on a linear scale the same curve is a drop into a flat tail
    assert kinds(label_phases(STEPS, loss, scale="linear"))[-1] == "flat"


@pytest.mark.parametrize("seed", range(4))
def test_a_spike_is_its_own_phase_and_cuts_the_one_it_falls_in(seed):
    rng = np.random.default_rng(seed)
    at, width = int(rng.uniform(300, 1700)), int(rng.integers(2, 9))
    y = 1.0 + rng.normal(0, 0.01, T)
    y[at:at + width] += rng.choice([-1, 1]) * rng.uniform(0.3, 1.0)
    phases = label_phases(STEPS, y)
    assert kinds(phases) == ["flat", "spike", "flat"]
    assert phases[1].start == at - 1 and phases[1].end == at + width
    assert phases[1].primitive is None


def test_a_spike_on_a_plateau_leaves_the_other_boundaries_alone():
    y, *_ = drop_plateau_rise(np.random.default_rng(0))
    spiked = y.copy()
    spiked[300:305] += 0.5
    plain, cut = label_phases(STEPS, y, fit=False), label_phases(STEPS, spiked, fit=False)
    assert kinds(cut) == ["drop", "plateau", "spike", "plateau", "rise", "flat"]
    assert (cut[2].start, cut[2].end) == (299, 305)
    assert [(p.start, p.end) for p in cut[4:]] == [(p.start, p.end) for p in plain[2:]]


@pytest.mark.parametrize("noise", ["gaussian", "heavy-tailed", "quantized"])
def test_noise_alone_is_one_flat_phase(noise):
    rng = np.random.default_rng(1)
    y = {"gaussian": rng.normal(0, 1, T), "heavy-tailed": rng.standard_t(3, T),
         "quantized": np.round(rng.normal(0.5, 0.05, T), 2)}[noise]
    assert kinds(label_phases(STEPS, y)) == ["flat"]


def test_nan_gaps_sparse_evaluation_and_a_missing_tail_keep_the_boundaries():
    rng = np.random.default_rng(3)
    y, drop_end, rise_start, rise_end, width = drop_plateau_rise(rng)
    gappy = y.copy()
    gappy[rng.random(T) < 0.3] = np.nan  # a metric missing at random steps
    every = STEPS[::10], y[::10]  # a test metric evaluated every 10 steps
    tail = y.copy()
    tail[1700:] = np.nan
    for steps, values in [(STEPS, gappy), every, (STEPS, tail)]:
        phases = label_phases(steps, values, fit=False)
        assert kinds(phases) == ["drop", "plateau", "rise", "flat"]
        assert abs(phases[0].end - drop_end) <= 12
        assert abs(phases[2].start - rise_start) <= 0.15 * width + 10
        assert abs(phases[2].end - rise_end) <= 0.15 * width + 10
        finite = steps[np.isfinite(values)]
        assert (phases[0].start, phases[-1].end) == (finite[0], finite[-1])


def test_a_diverged_run_ends_in_a_rise_where_its_values_stop_being_finite():
    rng = np.random.default_rng(0)
    loss = np.exp(-STEPS / 300) * 10 ** rng.normal(0, 0.02, T)
    with np.errstate(over="ignore"):
        loss[1200:] = loss[1199] * np.exp((STEPS[1200:] - 1200) / 20)  # inf from ~1340
    loss[1450:] = np.nan
    phases = label_phases(STEPS, loss)
    assert kinds(phases) == ["exponential decay", "rise"]
    assert abs(phases[1].start - 1200) <= 10
    assert phases[-1].end == STEPS[np.isfinite(loss)][-1]


# -- sudden changes: a jump between two pieces is a move of its own, placed on the points ----

def assert_jump(phases, move, before, after):
    """Three phases: a level, `move` from step `before` (the last one at the first level,
    give or take) to `after` (the first at the next), a level."""
    assert kinds(phases) == ["plateau", move, "flat"], phases_text(phases)
    assert before - 2 <= phases[1].start <= before, phases_text(phases)
    assert after <= phases[1].end <= after + 2, phases_text(phases)


@pytest.mark.parametrize("noise", [0.0, 0.01])
@pytest.mark.parametrize("move", ["drop", "rise"])
def test_a_step_is_a_drop_or_a_rise_between_two_levels(move, noise):
    """The review's steps: 1 -> 0 (0 -> 1) at step 100 of 200 came back as one flat phase."""
    t = np.arange(200.0)
    y = np.where(t < 100, 1.0, 0.0) if move == "drop" else np.where(t < 100, 0.0, 1.0)
    y = y + noise * np.random.default_rng(0).standard_normal(200)
    phases = label_phases(t, y)
    assert_jump(phases, move, 99, 100)
    assert abs(phases[0].mean - y[:100].mean()) < 0.01
    assert abs(phases[2].mean - y[100:].mean()) < 0.01


def test_a_loss_falling_from_2_to_0_1_within_20_steps_is_a_drop():
    """The review's loss: 2 -> 0.1, a logistic of width 4 at step 5000 of 10000."""
    t = np.arange(10000.0)
    loss = 0.1 + 1.9 * logistic(np.clip((5000 - t) / 4, -50, 50))
    phases = label_phases(t, loss)
    assert kinds(phases) == ["plateau", "drop", "flat"]
    assert abs(phases[1].start - (5000 - 4 * LN9)) <= 2
    assert abs(phases[1].end - (5000 + 4 * LN19)) <= 2
    assert phases[1].primitive == "sigmoid" and phases[1].r2 >= 0.99


@pytest.mark.parametrize("width", [1, 3, 5, 10, 20])
def test_a_grokking_like_jump_in_accuracy_is_a_rise_at_any_sharpness(width):
    """The review's accuracy 0.01 -> 1 at step 6000 of 10000, over `width` steps (1: one
    came back flat). It spans two decades: segmented in log10, where the rise starts
    earlier (10% of the way in log10 is 0.6% of it in accuracy)."""
    t = np.arange(10000.0)
    acc = 0.01 + 0.99 * logistic(np.clip((t - 6000) / width, -50, 50))
    noisy = acc + 0.005 * np.random.default_rng(width).standard_normal(10000)
    for y in (acc, noisy):
        phases = label_phases(t, y, fit=False)
        assert kinds(phases) == ["plateau", "rise", "flat"], phases_text(phases)
        rise = phases[1]
        assert 6000 - 6 * width - 3 <= rise.start < 6000 < rise.end <= 6000 + 3 * width + 3
        assert abs(phases[0].mean - 0.01) < 0.001 and phases[2].mean > 0.99


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("at", "steps"), [(37, 2000), (500, 2000), (1001, 2000),
                                           (1999, 2000), (5000, 10000)])
@pytest.mark.parametrize("move", ["rise", "drop"])
def test_a_noisy_jump_is_found_wherever_it_falls_against_the_bins(move, at, steps, seed):
    """A jump of 1 in noise of 0.02 at steps 37 (early, where bins widen), 500 and 1001
    (on and off a bin edge), 1999 (the last point alone) and 5000 of 10000 (bins of ~67)."""
    rng = np.random.default_rng(seed)
    t = np.arange(float(steps))
    y = (t >= at) * (1.0 if move == "rise" else -1.0) + rng.normal(0, 0.02, steps)
    phases = label_phases(t, y, fit=False)
    assert_jump(phases, move, at - 1, at)
    assert phases[-1].end == steps - 1  # at 1999, the last flat is that one point
    assert abs(phases[0].mean) < 0.01 and abs(abs(phases[-1].mean) - 1) < 0.05


@pytest.mark.parametrize("seed", range(2))
def test_levels_at_different_heights_never_merge(seed):
    """A staircase 1 -> 0.6 -> 0.2: three levels, not one flat phase across them."""
    y = np.select([STEPS < 500, STEPS < 1200], [1.0, 0.6], 0.2)
    y = y + np.random.default_rng(seed).normal(0, 0.02, T)
    phases = label_phases(STEPS, y, fit=False)
    assert kinds(phases) == ["plateau", "drop", "plateau", "drop", "flat"]
    assert [(p.start, p.end) for p in phases[1::2]] == [(499, 500), (1199, 1200)]
    assert [round(p.mean, 1) for p in phases[::2]] == [1.0, 0.6, 0.2]


def test_jumps_beside_moves_are_moves_of_their_own():
    """A jump up into a fast decay (a warm restart) is a rise, not a spike; a step down
    in the middle of a decay is a drop."""
    rng = np.random.default_rng(0)
    restarts = np.exp(-(STEPS % 500) / 100) + rng.normal(0, 0.01, T)
    phases = label_phases(STEPS, restarts, fit=False)
    assert "spike" not in kinds(phases)
    assert [(p.start, p.end) for p in phases if p.kind == "rise"] == [
        (499, 500), (999, 1000), (1499, 1500)]
    steps_down = (0.3 + 0.7 * np.exp(-STEPS / 300) - 0.2 * (STEPS >= 600)
                  + rng.normal(0, 0.01, T))
    phases = label_phases(STEPS, steps_down, fit=False)
    assert kinds(phases)[-2:] == ["drop", "flat"]
    assert (phases[-2].start, phases[-2].end) == (599, 600)


def test_constant_short_and_empty_series():
    assert label_phases([], []) == []
    assert label_phases([1, 2], [np.nan, np.inf]) == []
    [one] = label_phases([5], [2.0])
    assert (one.start, one.end, one.kind, one.mean) == (5, 5, "flat", 2.0)
    [flat] = label_phases(STEPS, np.full(T, 3.0))
    assert (flat.kind, flat.low, flat.high, flat.primitive) == ("flat", 3.0, 3.0, None)
    [short] = label_phases([0, 1, 2], [3.0, 2.0, 1.0])
    assert short.kind == "decay" and (short.start, short.end) == (0, 2)
    assert [p.kind for p in label_phases(range(6), [0, 0, 0, 1, 1, 1])] == ["rise"]


def test_bad_input_names_its_field():
    with pytest.raises(fl.ConfigError, match="^values:"):
        label_phases(STEPS, np.ones((T, 2)))
    with pytest.raises(fl.ConfigError, match="^values:"):
        label_phases([0, 1, 2], [1.0, 2.0])
    with pytest.raises(fl.ConfigError, match="^values:"):
        label_phases([0, 1], ["a", "b"])
    with pytest.raises(fl.ConfigError, match="^scale: got 'cubic'; allowed: auto, linear, log"):
        label_phases(STEPS, STEPS, scale="cubic")
    with pytest.raises(fl.ConfigError, match="^scale: got 'log'"):
        label_phases(STEPS, STEPS - 5, scale="log")


def test_phases_as_json_and_as_a_sentence():
    y, *_ = drop_plateau_rise(np.random.default_rng(2))
    phases = label_phases(STEPS, y)
    text = json.dumps([p.to_dict() for p in phases], allow_nan=False)
    assert [Phase.from_dict(d) for d in json.loads(text)] == phases
    assert set(KINDS) == set(PHASE_COLORS)
    issue = [Phase(0, 44, "drop", "sigmoid", 0.9981, 0.6, 0.25, 1.0),
             Phase(44, 420, "plateau", None, None, 0.25, 0.2, 0.3),
             Phase(420, 1200, "rise", "log_power", 0.97, 0.5, 0.25, 0.7),
             Phase(1200, 1999, "flat", None, None, 0.7, 0.68, 0.72)]
    assert phases_text(issue) == ("drop over steps 0-44, sigmoid R^2 = 0.998; plateau 44-420; "
                                  "rise 420-1200, log-power R^2 = 0.970; flat after")


# -- the action -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A stored lab with a short run whose train_loss was labelled."""
    root = tmp_path_factory.mktemp("labs")
    lab = fl.Lab("phases", root=root)
    lab.create_experiment(**TINY_LAB)
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    lab.open_chart("train_loss")
    lab.phases("exp_0", "train_loss")
    return lab, root


def test_the_verb_returns_json_and_keeps_the_labels_on_the_state(labelled):
    lab, _ = labelled
    value = lab.log[-1].result["phases"]
    assert json.loads(json.dumps(value, allow_nan=False)) == value
    steps, values = lab.metric_series("exp_0", "train_loss", None)
    assert value == [p.to_dict() for p in label_phases(steps, values)]
    stored = lab.state.phases["phases_0"]
    assert (stored.experiment, stored.metric, stored.layer) == ("exp_0", "train_loss", None)
    assert [p.to_dict() for p in stored.phases] == value
    by_agent = lab.apply({"type": "label_phases", "params": {"experiment": "exp_0",
                                                             "metric": "train_loss"}},
                         actor="agent")
    assert by_agent == value and list(lab.state.phases) == ["phases_0", "phases_1"]


def test_a_reopened_lab_reads_the_labels_from_its_log(labelled, monkeypatch):
    lab, root = labelled
    import featurelab.actions.phases as action

    def never(*args, **kwargs):
        raise AssertionError("a restored lab labels nothing again")

    monkeypatch.setattr(action, "label_phases", never)
    again = fl.Lab("phases", root=root)
    assert again.state.phases.keys() == lab.state.phases.keys()
    assert again.state.phases["phases_0"] == lab.state.phases["phases_0"]


def test_replay_labels_again_and_compares(labelled):
    lab, _ = labelled
    report = fl.replay(lab)
    assert report.ok, str(report)
    assert any("phases of train_loss of exp_0: same phases" in c for c in report.compared)
    entries = list(lab.log)
    entry = next(e for e in entries if e.type == "label_phases")
    tampered = json.loads(json.dumps(entry.to_dict()))
    tampered["result"]["phases"][0]["end"] += 7  # a boundary the replay cannot reproduce
    report = fl.replay([e if e is not entry else fl.LogEntry.from_dict(tampered)
                        for e in entries])
    assert [d.what for d in report.differences] == ["phases of train_loss of exp_0"]


def test_the_blog_tells_the_phases_and_shades_them_on_the_chart(labelled):
    lab, _ = labelled
    document = build_document(lab)
    labels = lab.state.phases["phases_0"].phases
    sentence = f"Labelled the phases of train_loss of exp_0: {phases_text(labels)}."
    assert sentence in document.sentences()
    shaded = [c.picture for c in document.charts() if c.picture.axes[0].spans]
    assert shaded, "no chart with shaded phases"
    picture = shaded[0]
    assert picture.axes[0].spans == tuple((p.start, p.end, p.kind) for p in labels)
    assert "phases of exp_0 shaded" in picture.caption
    assert picture.axes[0].xlim[1] >= labels[-1].end  # the whole curve, not a zoom


# -- the reference session on five seeds -----------------------------------------------------

SEEDS = range(5)


@pytest.fixture(scope="module")
def reference_seeds():
    """exp_i: the reference experiment (DESIGN.md) with nonlinear_rate, seed i."""
    lab = fl.Lab(":memory:")
    lab.define_statistic("nonlinear_rate", source=REFERENCE_SOURCE, on="active_rate")
    for seed in SEEDS:
        lab.create_experiment(
            model={"kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"},
            data={"task": "sin2", "dim": 10, "freq": 10, "n_train": 500, "n_test": 200},
            optimizer={"name": "adam", "lr": 1e-3, "steps": 2000}, loss="mse",
            observables=["train_loss", "test_loss", "nonlinear_rate"], seed=seed)
        lab.run(f"exp_{seed}")
    return lab


def rise_of(lab, seed):
    phases = [Phase.from_dict(p) for p in lab.phases(f"exp_{seed}", "nonlinear_rate",
                                                       layer="layers.1.pre")]
    assert phases[0].kind == "drop" and phases[-1].kind == "flat", phases_text(phases)
    [rise] = [i for i, p in enumerate(phases) if p.kind == "rise"]
    assert phases[rise - 1].kind == "plateau" and phases[rise + 1].kind == "flat"
    return phases, phases[rise]


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_phases_drop_by_30_44_and_rise_from_370_500(reference_seeds, seed):
    """The issue's boundaries: drop by steps 30-44, rise from ~370-500 (~: 10% either way)."""
    phases, rise = rise_of(reference_seeds, seed)
    assert 30 <= phases[0].end <= 44
    assert phases[0].primitive == "sigmoid" and phases[0].r2 >= 0.99
    assert 370 * 0.9 <= rise.start <= 500 * 1.1
    [layer0] = reference_seeds.phases(f"exp_{seed}", "nonlinear_rate", layer="layers.0.pre")
    assert layer0["kind"] == "flat" and layer0["low"] >= 0.95  # fully nonlinear throughout
    loss = reference_seeds.phases(f"exp_{seed}", "train_loss")
    # exponential loss decay after the rise (the loss is segmented in log10)
    assert loss[-1]["kind"] == "exponential decay" and loss[-1]["start"] <= rise.end
    assert loss[-1]["end"] == T - 1


@pytest.mark.parametrize("seed", [pytest.param(s, marks=pytest.mark.xfail(
    strict=True, reason="seed 3's nonlinear_rate settles by ~815 (its curve is 95% of the "
    "way to its final level there, see below): earlier than the issue's ~1030")) if s == 3
    else s for s in SEEDS])
def test_reference_phases_rise_until_1030_1360(reference_seeds, seed):
    """The issue's boundary: the rise ends at ~1030-1360 (~: 10% either way)."""
    _, rise = rise_of(reference_seeds, seed)
    assert 1030 * 0.9 <= rise.end <= 1360 * 1.1


def test_seed_3_settles_before_the_issues_range_by_any_measure(reference_seeds):
    """Seed 3's curve itself is 95% of the way from its plateau to its final level (the
    median of its last 900 steps, smoothed over 51 steps) before ~1030: the labels end
    its rise at the level it reaches first, earlier still."""
    _, rise = rise_of(reference_seeds, 3)
    rate = reference_seeds.results("exp_3").series("nonlinear_rate", layer="layers.1.pre")
    smooth = np.convolve(rate, np.ones(51) / 51, mode="same")
    plateau, final = np.median(rate[150:300]), np.median(rate[1000:1900])
    way = (smooth - plateau) / (final - plateau)
    settled = int(np.flatnonzero(way[400:1900] >= 0.95)[0]) + 400
    assert settled < 1030 * 0.9 and 0.8 * settled <= rise.end <= settled
