"""Statistics on weights: the Fourier spectrum of a modular embedding and its inverse
participation ratio, row norms, DIY statistics on weights (chained, contained, untrusted),
their series in real runs, the panel's weight points, and the one-hot model."""

import math

import numpy as np
import pytest
import torch

import featurelab as fl
from featurelab import ConfigError, StatisticError, StatisticRegistry, Trainer
from featurelab.engine import deadlines
from featurelab.engine.config import ExperimentConfig, ModelConfig
from featurelab.engine.models import build_model, point_label, weight_shapes
from featurelab.engine.stats import compute_statistics
from featurelab.engine.weight_stats import weight_stack
from featurelab.errors import FeaturelabError, FeaturelabWarning
from featurelab.signatures import SECRET_ENV, secret_file
from featurelab.ui.widget import lab_state
from featurelab.workers.jobs import portable_statistics, registry_of

P = 11
MODULAR = {
    "model": {"kind": "embed_mlp", "widths": [8, 32, P]},
    "data": {"task": "modular", "p": P, "train_frac": 0.5},
    "loss": "cross_entropy",
    "optimizer": {"lr": 1e-2, "steps": 40},
}
ONEHOT = {**MODULAR, "model": {"kind": "onehot_mlp", "widths": [2 * P, 32, P],
                               "activation": "square"}}


def modular(**changes) -> ExperimentConfig:
    return ExperimentConfig.from_dict({**MODULAR, **changes})


def spectrum(embedding: torch.Tensor) -> tuple[np.ndarray, float]:
    """fourier_power and fourier_ipr of one embedding (p, d), through the registry."""
    values = compute_statistics(StatisticRegistry(), ["fourier_ipr"], weight_stack(embedding))
    return values["fourier_power"][0].numpy(), float(values["fourier_ipr"][0])


# -- the built-ins on known matrices ------------------------------------------------------

@pytest.mark.parametrize("p, k", [(13, 3), (13, 6), (12, 5), (12, 6), (12, 0)])
def test_an_embedding_of_one_frequency_has_all_its_power_there(p, k):
    a = torch.arange(p, dtype=torch.float64)
    # every dimension a cosine of frequency k, each with its own phase and amplitude
    embedding = torch.stack([(1 + j) * torch.cos(2 * math.pi * k * a / p + 0.7 * j)
                             for j in range(5)], 1).float()  # (p, 5)
    if k == 0:
        embedding = torch.ones(p, 3)  # frequency 0: a constant
    power, ipr = spectrum(embedding)
    assert power.shape == (p // 2 + 1,)
    expected = np.zeros(p // 2 + 1)
    expected[k] = 1.0
    np.testing.assert_allclose(power, expected, atol=1e-6)
    assert ipr == pytest.approx(1.0, abs=1e-5)


def test_a_mix_of_frequencies_shares_power_by_energy():
    p = 11
    a = torch.arange(p, dtype=torch.float64)
    # energies sum_a E^2: 2^2 p/2 at k=2, 1^2 p/2 at k=5, 0.5^2 p for the constant
    embedding = torch.stack([2 * torch.cos(2 * math.pi * 2 * a / p),
                             torch.sin(2 * math.pi * 5 * a / p + 0.3),
                             torch.full((p,), 0.5, dtype=torch.float64)], 1).float()
    power, ipr = spectrum(embedding)
    energy = np.zeros(p // 2 + 1)
    energy[2], energy[5], energy[0] = 4 * p / 2, p / 2, 0.25 * p
    shares = energy / energy.sum()  # 8/11, 2/11, 1/11
    np.testing.assert_allclose(power, shares, atol=1e-6)
    assert ipr == pytest.approx(float((shares ** 2).sum()), abs=1e-6)
    # the same as numpy's FFT, with each pair k, p - k counted once
    full = (np.abs(np.fft.fft(embedding.double().numpy(), axis=0)) ** 2).sum(1)
    folded = np.array([full[0]] + [full[j] + full[p - j] for j in range(1, p // 2 + 1)])
    np.testing.assert_allclose(power, folded / folded.sum(), atol=1e-6)


def test_white_noise_spreads_power_and_its_ipr_is_low():
    torch.manual_seed(0)
    power, ipr = spectrum(torch.randn(97, 64))
    assert power.sum() == pytest.approx(1.0, abs=1e-5)
    assert power.max() < 0.05 and ipr < 2.0 / len(power)


def test_row_norm_is_per_row_of_the_weight_as_stored():
    weight = torch.tensor([[3.0, 4.0, 0.0], [1.0, 0.0, 0.0]])  # (rows 2, cols 3)
    values = compute_statistics(StatisticRegistry(), ["row_norm"], weight_stack(weight))
    assert values["row_norm"].tolist() == [[5.0, 1.0]]


# -- DIY statistics on weights ------------------------------------------------------------

def col_max(tensor, dim, keepdim=False):
    return tensor.float().abs().amax(dim=dim, keepdim=keepdim)


def frobenius(tensor, dim, keepdim=False):
    return tensor.float().flatten(1).norm(dim=1)


def test_a_diy_weight_statistic_per_row_or_per_step_and_chains():
    reg = StatisticRegistry()
    reg.define("row_max", col_max, on="weights")
    reg.define("frob", frobenius, on="weights")  # one value per step: found on the probe
    reg.define("widest_row", col_max, on="row_norm")
    assert (reg.level("row_max"), reg.level("frob"), reg.level("widest_row")) == (1, 2, 2)
    assert reg.base("widest_row") == "weights" and reg.base("nonlinear_fraction") == "activations"
    assert reg.chain("widest_row") == ["row_norm", "widest_row"]
    weight = torch.tensor([[3.0, -4.0], [0.0, 1.0], [2.0, 0.0]])  # (3, 2)
    values = compute_statistics(reg, ["row_max", "frob", "widest_row"], weight_stack(weight))
    assert values["row_max"].tolist() == [[4.0, 1.0, 2.0]]
    assert values["frob"].tolist() == [pytest.approx(math.sqrt(30))]
    assert values["widest_row"].tolist() == [5.0]
    with pytest.raises(ConfigError, match="statistic.on: got 'frob'.*already has one value"):
        reg.define("x", col_max, on="frob")
    with pytest.raises(ConfigError, match="statistic.name: got 'weights'"):
        reg.define("weights", col_max)


def test_a_weight_statistic_must_give_rows_or_one_value_per_step():
    reg = StatisticRegistry()
    with pytest.raises(StatisticError, match=r"'cube': returned shape \(3, 5, 4\) for weights "
                                             r"\(3, 5, 4\) with dim=1; expected \(3, n\)"):
        reg.define("cube", lambda tensor, dim, keepdim=False: tensor, on="weights")
    calls = []

    def grows(tensor, dim, keepdim=False):  # one more value each step from step 10
        calls.append(1)
        return tensor.float().norm(dim=dim)[:, :1].repeat(1, max(1, len(calls) - 10))

    reg.define("grows", grows, on="weights")
    trainer = Trainer(modular(observables=["train_loss", "grows@embed.weight"]), reg,
                      flush_every=7)
    assert trainer.run() == "finished"
    result = trainer.result()
    assert result.stat_errors["grows@embed.weight"] == (
        "statistic 'grows': returned shape (1, 2) for weights (1, 8, 11) with dim=1; "
        "expected (1, 1): the same number of values every step (or one value per step) "
        "(at step 10)")
    series = result.series("grows", layer="embed.weight")
    assert np.isfinite(series[:10]).all() and np.isnan(series[10:]).all()


def zeroes_its_input(tensor, dim, keepdim=False):
    out = tensor.float().norm(dim=dim)
    tensor.mul_(0)  # on the weights themselves, this would stop training
    return out


def test_a_statistic_changing_the_weights_cannot_change_training():
    reg = StatisticRegistry()
    reg.define("vandal", zeroes_its_input, on="weights")
    observed = ["train_loss", "fourier_power@embed.weight", "row_norm@layers.1.weight"]
    plain = Trainer(modular(observables=observed), reg)
    plain.run()
    vandal = Trainer(modular(observables=[*observed, "vandal"]), reg)
    vandal.run()
    for name in observed:  # the series' keys
        np.testing.assert_array_equal(vandal.result().arrays[name], plain.result().arrays[name])
    for point in ("embed.weight", "layers.0.weight", "layers.1.weight"):
        assert np.isfinite(vandal.result().series("vandal", layer=point)).all()
    assert not vandal.result().stat_errors


def test_a_weight_statistic_that_hangs_is_switched_off_within_its_budget(monkeypatch):
    monkeypatch.setattr(deadlines, "DEFAULT_SECONDS", 0.3)
    calls = []

    def hangs_later(tensor, dim, keepdim=False):
        calls.append(1)
        while len(calls) > 3:  # the probe and steps 0-1 return; step 2 never does
            pass
        return tensor.float().norm(dim=dim)

    reg = StatisticRegistry()
    reg.define("slow", hangs_later, on="weights")
    trainer = Trainer(modular(observables=["train_loss", "slow@embed.weight"]), reg)
    assert trainer.run() == "finished"
    result = trainer.result()
    assert result.stat_errors["slow@embed.weight"].startswith(
        "statistic 'slow': ran longer than 0.3 s (input shape (1, 8, 11)); switched off")
    assert np.isfinite(result.series("train_loss")).all()
    assert np.isfinite(result.series("slow", layer="embed.weight")[:2]).all()


FROB_SOURCE = ("def frob(tensor, dim, keepdim=False):\n"
               "    return tensor.float().flatten(1).norm(dim=1)\n")


def test_a_weight_statistic_travels_to_a_worker_as_its_source():
    reg = StatisticRegistry()
    reg.define("frob", source=FROB_SOURCE, on="weights")
    shipped = portable_statistics(reg, modular(observables=["frob@embed.weight"]))
    assert shipped == [("frob", "weights", FROB_SOURCE, True)]
    worker = registry_of(shipped)  # the worker's probe finds one value per step again
    assert worker["frob"].scalar and worker.level("frob") == 2


# -- real runs ----------------------------------------------------------------------------

def test_weight_statistics_in_a_short_modular_run():
    cfg = modular(observables=["train_loss", "fourier_power@embed.weight",
                               "fourier_ipr@embed.weight", "row_norm@layers.0.weight"])
    trainer = Trainer(cfg, flush_every=15)
    initial = trainer.model.embed.weight.detach().clone()  # (p, d): theta_0
    assert trainer.plan.capture == frozenset()  # no activation is handed over for weights
    assert trainer.run() == "finished"
    result = trainer.result()
    power = result.series("fourier_power", layer="embed.weight")
    assert power.shape == (40, P // 2 + 1)
    np.testing.assert_allclose(power.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(power[0], spectrum(initial)[0], atol=1e-6)  # step 0: init
    assert not np.array_equal(power[0], power[-1])  # measured every step as it trains
    np.testing.assert_allclose(result.series("fourier_ipr", layer="embed.weight"),
                               (power ** 2).sum(1), rtol=1e-5)
    assert result.series("row_norm", layer="layers.0.weight").shape == (40, 32)
    assert not result.stat_errors


def test_weight_points_are_named_listed_and_checked():
    shapes = {"embed.weight": (P, 8), "layers.0.weight": (32, 16), "layers.1.weight": (P, 32)}
    assert weight_shapes(modular()) == shapes
    for config in (modular(), ExperimentConfig.from_dict(ONEHOT), ExperimentConfig()):
        model = build_model(config.model, vocab=P)
        assert weight_shapes(config) == {k: tuple(w.shape)
                                         for k, w in model.weight_points().items()}
    assert point_label("embed.weight", (P, 8)) == "Embedding (11 x 8)"
    assert point_label("layers.1.weight", (P, 32)) == "Layer 1 weight (11 x 32)"
    # without a point: every weight of the model; a point must be a weight
    trainer = Trainer(modular(observables=["row_norm"]))
    assert set(trainer.plan.stats) == set(shapes) == trainer.plan.weights
    with pytest.raises(ConfigError, match=r"observables\[0\].*'fourier_power' is on weights; "
                                          "'layers.0.pre' is not a weight"):
        Trainer(modular(observables=["fourier_power@layers.0.pre"]))
    with pytest.raises(ConfigError, match=r"'embed.weight' is not a weight of this model"):
        fl.Lab(":memory:").create_experiment(observables=["row_norm@embed.weight"])
    with pytest.raises(ConfigError, match="unknown hook point 'layers.0.weight'"):
        Trainer(modular(observables=["active_rate@layers.0.weight"]))


def test_a_lab_records_lists_charts_and_fits_weight_statistics():
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**MODULAR, observables=["train_loss", "fourier_ipr"])
    assert lab.weight_points() == weight_shapes(exp.config)
    run = lab.run(exp.id)
    ipr = run.series("fourier_ipr", layer="embed.weight")
    assert ipr.shape == (40,) and ((ipr > 0) & (ipr <= 1)).all()
    lab.choose_layer("fourier_ipr", "embed.weight")
    assert lab.log.sentences()[-1] == "Chose Embedding (11 x 8) for fourier_ipr."
    with pytest.raises(ConfigError, match="layer: got 'layers.0.pre'.*statistic on weights"):
        lab.choose_layer("fourier_ipr", "layers.0.pre")
    with pytest.raises(ConfigError, match="stat: got 'row_norm'.*on weights"):
        lab.add_neuron_stat("row_norm", layer="layers.0.pre")
    table = lab.fit(exp.id, "fourier_ipr", layer="embed.weight", families=["linear"])
    assert table.rows[0].family == "linear"
    with pytest.raises(FeaturelabError, match="'row_norm' is a statistic on weights"):
        lab.metric_series(exp.id, "row_norm", "layers.0.weight")  # not recorded
    # what the panel receives: the weight points, and what each statistic is measured on
    state = lab_state(lab)
    row = state["experiments"][0]
    assert row["weight_points"] == {k: list(v) for k, v in weight_shapes(exp.config).items()}
    assert row["weight_labels"]["embed.weight"] == "Embedding (11 x 8)"
    bases = {s["name"]: s["base"] for s in state["statistics"]}
    assert bases["fourier_ipr"] == bases["row_norm"] == "weights"
    assert bases["active_rate"] == "activations"
    graph = lab.graph()  # the knowledge graph: the chain starts from the weights
    assert graph.nodes["weights"]["kind"] == "weights"
    assert graph.has_edge("statistic:fourier_power", "weights")
    assert graph.has_edge("statistic:fourier_ipr", "statistic:fourier_power")


# -- trust: a weight statistic from elsewhere is disabled ----------------------------------

SNEAKY = ("def sneaky_norm(t, dim, keepdim=False, _=open({marker!r}, 'w').write('ran')):\n"
          "    return t.flatten(1).norm(dim=1)\n")


def test_an_untrusted_weight_statistic_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    mine = secret_file()
    monkeypatch.setenv(SECRET_ENV, str(tmp_path / "other-secret"))  # another user's lab
    other = fl.Lab("received", root=tmp_path / "shared")
    other.define_statistic("sneaky_norm", source=SNEAKY.format(marker=str(marker)),
                           on="weights")
    exp = other.create_experiment(**MODULAR, observables=["train_loss", "sneaky_norm"])
    authored = other.run(exp.id)
    series = authored.series("sneaky_norm", layer="embed.weight").copy()
    losses = authored.series("train_loss").copy()
    other.store.close()
    marker.unlink()
    monkeypatch.setenv(SECRET_ENV, str(mine))

    with pytest.warns(FeaturelabWarning, match="disabled"):
        lab = fl.Lab("received", root=tmp_path / "shared")
    assert not marker.exists() and not lab.statistics["sneaky_norm"].trusted
    assert lab.statistics.level("sneaky_norm") == 2  # one value per step, as its author's
    np.testing.assert_array_equal(lab.results(exp.id).series("sneaky_norm", "embed.weight"),
                                  series)
    again = lab.run(exp.id, force=True)
    assert again.status == "finished" and not marker.exists()
    assert "not signed by you" in again.result().stat_errors["sneaky_norm@embed.weight"]
    np.testing.assert_array_equal(again.series("train_loss"), losses)
    lab.store.close()


# -- the one-hot model --------------------------------------------------------------------

def test_the_onehot_model_sums_a_column_for_a_and_one_for_b():
    model = build_model(ModelConfig(kind="onehot_mlp", widths=(2 * P, 16, P),
                                    activation="square"), vocab=P)
    x = torch.tensor([[3, 7], [0, 10]])
    _, acts = model(x, frozenset({"layers.0.pre", "layers.0.post"}))
    w, b = model.layers[0].weight, model.layers[0].bias
    expected = torch.stack([w[:, 3] + w[:, P + 7], w[:, 0] + w[:, P + 10]]) + b
    torch.testing.assert_close(acts["layers.0.pre"], expected)
    torch.testing.assert_close(acts["layers.0.post"], expected.square())


def test_the_onehot_model_is_configured_and_trains_on_the_modular_task():
    cfg = ExperimentConfig.from_dict({**ONEHOT, "observables": ["train_loss", "train_accuracy",
                                                               "row_norm"]})
    assert cfg.model.label == "One-hot MLP 22, 32, 11, square"
    with pytest.raises(ConfigError, match=r"model.widths\[0\]: got 8; allowed: 22: a and b "
                                          "one-hot"):
        ExperimentConfig.from_dict({**MODULAR, "model": {"kind": "onehot_mlp",
                                                         "widths": [8, 32, P]}})
    with pytest.raises(ConfigError, match="model.kind: got 'onehot_mlp'.*'mlp' for the sin2"):
        ExperimentConfig(model={"kind": "onehot_mlp"})
    trainer = Trainer(cfg)
    assert trainer.run() == "finished"
    result = trainer.result()
    assert result.series("train_accuracy")[0] < 0.2  # chance is 1/11
    assert result.series("train_accuracy")[-1] == 1.0  # it fits its training pairs
    assert result.series("row_norm", layer="layers.0.weight").shape == (40, 32)


def test_a_lab_whose_diy_statistic_took_a_later_built_ins_name_reopens_with_it(tmp_path):
    """row_norm, fourier_power and fourier_ipr became built-ins after labs could define DIY
    statistics so named: such a lab reopens with its own statistic (its runs were recorded
    with it), while defining one of these names now is refused."""
    import time
    import uuid

    from featurelab import signatures
    from featurelab.log import LogEntry
    from featurelab.store import Store

    source = ("def row_norm(tensor, dim, keepdim=False):\n"
              "    return tensor.float().abs().mean(dim=dim, keepdim=keepdim)\n")
    params = {"name": "row_norm", "source": source, "on": "activations"}
    lab = fl.Lab("old", root=tmp_path)
    with pytest.raises(fl.ConfigError, match="built-in"):
        lab.define_statistic("row_norm", source=source)
    entry = LogEntry(id=uuid.uuid4().hex[:16], type="define_statistic", version=1,
                     params=params, actor="code", time=time.time(), duration=0.0,
                     result={"level": 1},
                     signature=signatures.sign({"type": "define_statistic", "version": 1,
                                                "params": params}))
    with lab.store.transaction() as db:  # as a lab written before row_norm was built in
        Store.insert_action(db, entry.to_dict(), lab.session)
    again = fl.Lab("old", root=tmp_path)
    assert again.restore_errors == []
    stat = again.statistics["row_norm"]
    assert not stat.builtin and stat.on == "activations" and stat.source == source
