"""The reference experiment of DESIGN.md reproduces the published science."""

import numpy as np

from featurelab import fit_curves


def rate(lab, layer):
    return lab.results("exp_1").series("nonlinear_rate", layer=layer)


def test_first_hidden_layer_stays_nonlinear(reference_lab):
    assert rate(reference_lab, "layers.0.pre").min() >= 0.95


def test_second_hidden_layer_drops_plateaus_and_recovers(reference_lab):
    second = rate(reference_lab, "layers.1.pre")
    assert second[0] >= 0.9  # at initialisation nearly every neuron is nonlinear
    assert second[150] <= 0.35  # phase I: most neurons become linear (always on or off)
    assert second[1999] >= 0.6  # phase III: they come back as the loss falls


def test_loss_plateaus_then_decays(reference_lab):
    loss = reference_lab.results("exp_1").series("train_loss")
    assert 0.5 <= loss[300] <= 3
    assert loss[1999] < 1e-2


def test_sigmoid_fits_the_early_drop_best(reference_lab):
    second = rate(reference_lab, "layers.1.pre")
    table = fit_curves(np.arange(len(second)), second, x_range=(0, 100))
    assert table.rows[0].family == "sigmoid"
    assert table.best.r2 >= 0.99
    assert {row.family for row in table.rows} == {"sigmoid", "exponential", "power", "log_power"}
    logged = reference_lab.fits["fit_0"].table
    assert logged.best.family == "sigmoid" and logged.best.r2 == table.best.r2


def test_exp_0_sees_the_diy_statistic_on_its_snapshots(reference_lab):
    """nonlinear_rate was defined after exp_0 ran: computed at once on its snapshots."""
    steps, values = reference_lab.metric_series("exp_0", "nonlinear_rate", "layers.1.pre")
    online = rate(reference_lab, "layers.1.pre")
    assert steps[:100].tolist() == list(range(100))
    np.testing.assert_array_equal(values, online[steps])  # same init, data and code
