"""The reference experiment of DESIGN.md reproduces the published science."""

import numpy as np
import pytest

from featurelab import ExperimentConfig, StatisticRegistry, Trainer, fit_curves


def compute_nonlinear_rate(tensor, dim, keepdim=False):
    t = tensor.float()
    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)


@pytest.fixture(scope="module")
def reference():
    stats = StatisticRegistry()
    stats.define("nonlinear_rate", compute_nonlinear_rate, on="active_rate")
    config = ExperimentConfig(
        model={"kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"},
        data={"task": "sin2", "dim": 10, "freq": 10, "n_train": 500, "n_test": 200},
        optimizer={"name": "adam", "lr": 1e-3, "steps": 2000},
        loss="mse",
        observables=["train_loss", "test_loss", "weight_l2_norm", "hidden_activations",
                     "nonlinear_rate"],
        seed=0,
    )
    trainer = Trainer(config, stats)
    assert trainer.run() == "finished"
    return trainer.result()


def test_first_hidden_layer_stays_nonlinear(reference):
    assert reference.series("nonlinear_rate", layer="layers.0.pre").min() >= 0.95


def test_second_hidden_layer_drops_plateaus_and_recovers(reference):
    rate = reference.series("nonlinear_rate", layer="layers.1.pre")
    assert rate[0] >= 0.9  # at initialisation nearly every neuron is nonlinear
    assert rate[150] <= 0.35  # phase I: most neurons become linear (always on or off)
    assert rate[1999] >= 0.6  # phase III: they come back as the loss falls


def test_loss_plateaus_then_decays(reference):
    loss = reference.series("train_loss")
    assert 0.5 <= loss[300] <= 3
    assert loss[1999] < 1e-2


def test_sigmoid_fits_the_early_drop_best(reference):
    rate = reference.series("nonlinear_rate", layer="layers.1.pre")
    table = fit_curves(np.arange(len(rate)), rate, x_range=(0, 100))
    assert table.rows[0].family == "sigmoid"
    assert table.best.r2 >= 0.99
    assert {row.family for row in table.rows} == {"sigmoid", "exponential", "power", "log_power"}
