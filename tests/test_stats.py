import numpy as np
import pytest
import torch

from featurelab import ConfigError, StatisticError, StatisticRegistry, Trainer
from featurelab.engine.stats import BUILTIN_STATISTICS, apply_statistic, compute_statistics


def compute_nonlinear_rate(tensor, dim, keepdim=False):
    t = tensor.float()
    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)


@pytest.fixture
def registry():
    reg = StatisticRegistry()
    reg.define("nonlinear_rate", compute_nonlinear_rate, on="active_rate")
    return reg


def test_builtin_statistics_on_a_known_tensor():
    acts = torch.tensor([[[1.0, -1.0, 0.5], [2.0, -3.0, -0.5]]])  # (K=1, S=2, N=3)
    values = compute_statistics(StatisticRegistry(), list(BUILTIN_STATISTICS), acts)
    assert values["active_rate"].tolist() == [[1.0, 0.0, 0.5]]
    assert values["mean"].tolist() == [[1.5, -2.0, 0.0]]
    assert values["max"].tolist() == [[2.0, -1.0, 0.5]]
    torch.testing.assert_close(values["std"], torch.tensor([[0.5, 1.0, 0.5]]))
    assert values["dead_fraction"].tolist() == pytest.approx([1 / 3])
    assert values["nonlinear_fraction"].tolist() == pytest.approx([1 / 3])


def test_a_diy_statistic_keeps_its_source_and_chains_on_another(registry):
    stat = registry["nonlinear_rate"]
    assert stat.on == "active_rate" and not stat.builtin
    assert stat.source.startswith("def compute_nonlinear_rate(tensor, dim, keepdim=False):")
    assert registry.level("nonlinear_rate") == 2
    assert registry.chain("nonlinear_rate") == ["active_rate", "nonlinear_rate"]
    acts = torch.tensor([[[1.0, -1.0, 0.5], [2.0, -3.0, -0.5]]])
    assert compute_statistics(registry, ["nonlinear_rate"], acts)["nonlinear_rate"].tolist() == \
        pytest.approx([1 / 3])


def test_a_diy_statistic_from_source_text():
    reg = StatisticRegistry()
    source = ("def frac_big(tensor, dim, keepdim=False):\n"
              "    return (tensor > 1).float().mean(dim)\n")
    stat = reg.define("frac_big", source=source)
    assert stat.source == source and reg.level("frac_big") == 1
    with pytest.raises(StatisticError,
                       match="statistic 'broken': source does not run: SyntaxError"):
        reg.define("broken", source="def f(tensor, dim:\n")
    with pytest.raises(StatisticError, match="exactly one function, found 0"):
        reg.define("empty", source="x = 1\n")


def test_bad_diy_statistics_are_named_with_the_problem():
    reg = StatisticRegistry()

    def raises(tensor, dim, keepdim=False):
        raise RuntimeError("boom")

    def keeps_dim(tensor, dim, keepdim=False):
        return tensor.mean(dim, keepdim=True)

    def nan(tensor, dim, keepdim=False):
        return tensor.mean(dim) * float("nan")

    with pytest.raises(StatisticError, match=r"statistic 'bad': raised RuntimeError: boom "
                                             r"\(input shape \(3, 5, 4\), dim=1\)"):
        reg.define("bad", raises)
    with pytest.raises(StatisticError, match=r"returned shape \(3, 1, 4\) for input \(3, 5, 4\) "
                                             r"with dim=1; expected \(3, 4\)"):
        reg.define("bad", keeps_dim)
    with pytest.raises(StatisticError, match=r"'bad': returned nan at index \(0, 0\)"):
        reg.define("bad", nan)
    with pytest.raises(StatisticError, match="returned int, expected a tensor"):
        reg.define("bad", lambda tensor, dim, keepdim=False: 3)
    assert "bad" not in reg


def test_bad_definitions_name_the_field():
    reg = StatisticRegistry()
    with pytest.raises(ConfigError, match="statistic.name: got 'my rate'; allowed: a Python ident"):
        reg.define("my rate", compute_nonlinear_rate)
    with pytest.raises(ConfigError, match="statistic.name: got 'active_rate'.*not a built-in"):
        reg.define("active_rate", compute_nonlinear_rate)
    with pytest.raises(ConfigError, match="statistic.on: got 'activ_rate'.*active_rate"):
        reg.define("x", compute_nonlinear_rate, on="activ_rate")
    with pytest.raises(ConfigError, match="already has one value per layer"):
        reg.define("x", compute_nonlinear_rate, on="nonlinear_fraction")


def test_a_statistic_failing_mid_run_is_switched_off_alone(tiny, registry):
    calls = []

    def flaky(tensor, dim, keepdim=False):
        calls.append(1)
        if len(calls) > 1 + 2 * 25:  # the probe, then two layers a step: breaks at step 25
            return tensor.mean(dim)[..., :1]
        return tensor.mean(dim)

    registry.define("flaky", flaky)
    trainer = Trainer(tiny(observables=["train_loss", "flaky", "nonlinear_rate"]), registry,
                      flush_every=20)
    assert trainer.run() == "finished"
    result = trainer.result()
    error = result.stat_errors["flaky@layers.0.pre"]
    assert error == ("statistic 'flaky': returned shape (1, 1) for input (1, 64, 16) with dim=1;"
                     " expected (1, 16) (at step 25)")
    flaky0 = result.series("flaky", layer="layers.0.pre")
    assert np.isfinite(flaky0[:25]).all() and np.isnan(flaky0[25:]).all()
    assert np.isfinite(result.series("nonlinear_rate", layer="layers.1.pre")).all()
    assert np.isfinite(result.series("train_loss")).all()


def test_a_statistic_raising_or_giving_nan_mid_run_names_the_step(tiny, registry):
    steps, chunks = [], []

    def raises_late(tensor, dim, keepdim=False):
        steps.append(1)
        if len(steps) > 1 + 30:  # the probe, then one call a step: raises at step 30
            raise ValueError("too big")
        return tensor.mean(dim)

    def nan_late(tensor, dim, keepdim=False):
        chunks.append(1)
        rate = (tensor > 0.5).float().mean(dim)
        return rate if len(chunks) < 3 else rate / 0 * 0  # probe, chunk 1, then NaN

    registry.define("raises_late", raises_late)
    registry.define("nan_late", nan_late, on="active_rate")
    trainer = Trainer(tiny(observables=["raises_late@layers.1.pre", "nan_late@layers.0.pre"]),
                      registry, flush_every=20)
    assert trainer.run() == "finished"
    result = trainer.result()
    assert result.stat_errors == {
        "raises_late@layers.1.pre": "statistic 'raises_late': raised ValueError: too big "
                                    "(input shape (1, 64, 12), dim=1) (at step 30)",
        "nan_late@layers.0.pre": "statistic 'nan_late': returned nan at index (0,) "
                                 "(shape (20,)) (at steps 20-39)",
    }
    raised = result.series("raises_late", layer="layers.1.pre")
    assert np.isfinite(raised[:30]).all() and np.isnan(raised[30:]).all()
    nan = result.series("nan_late", layer="layers.0.pre")
    assert np.isfinite(nan[:20]).all() and np.isnan(nan[20:]).all()
    assert np.isfinite(result.series("active_rate", layer="layers.0.pre")).all()


def test_a_statistic_defined_after_the_run_is_computed_on_the_snapshots(tiny, registry):
    trainer = Trainer(tiny(observables=["train_loss", "hidden_activations", "active_rate"]),
                      registry)
    trainer.run()
    result = trainer.result()
    steps, values = result.statistic_on_snapshots(registry, "nonlinear_rate", "layers.1.pre")
    assert steps.tolist() == result.snapshots.steps.tolist() and values.shape == (len(steps),)
    online = compute_nonlinear_rate(
        torch.from_numpy(result.series("active_rate", layer="layers.1.pre")[steps]), dim=1)
    np.testing.assert_array_equal(values, online.numpy())


def test_apply_statistic_reduces_axis_one():
    stat = BUILTIN_STATISTICS["mean"]
    assert apply_statistic(stat, torch.ones(4, 7, 3)).shape == (4, 3)
    assert apply_statistic(stat, torch.ones(4, 3)).shape == (4,)


def test_a_statistic_whose_input_is_missing_is_named(registry):
    with pytest.raises(StatisticError, match="'active_rate': depends on 'activations', "
                                             "which has no values"):
        compute_statistics(registry, ["nonlinear_rate"], None)
    failed = {}
    assert compute_statistics(registry, ["nonlinear_rate"], None, failed) == {}
    assert "depends on 'activations'" in failed["active_rate"]
    assert "depends on 'active_rate'" in failed["nonlinear_rate"]
