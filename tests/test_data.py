"""Tests for featurelab.engine.data: shapes, seeding, targets and the modular split."""

from __future__ import annotations

import pytest
import torch

from featurelab.engine.config import TASKS as CONFIG_TASKS
from featurelab.engine.config import DataConfig
from featurelab.engine.data import TASKS, Dataset, build_dataset, seed_for

SMALL = {
    "sin2": DataConfig(dim=6, n_train=40, n_test=15),
    "formula": DataConfig(task="formula", dim=3, formula="x[0]*x[1] - 2*mean(x)",
                          n_train=40, n_test=15),
    "modular": DataConfig(task="modular", p=11, train_frac=0.4),
    "teacher": DataConfig(task="teacher", dim=5, teacher_widths=(8, 4), n_train=40, n_test=15),
}


def test_every_config_task_has_a_builder():
    assert set(TASKS) == set(CONFIG_TASKS) == set(SMALL)


@pytest.mark.parametrize("task", list(TASKS))
def test_shapes_and_dtypes(task):
    cfg = SMALL[task]
    d = build_dataset(cfg, seed=0)
    assert isinstance(d, Dataset)
    if task == "modular":
        n = cfg.p * cfg.p
        n_train = round(cfg.train_frac * n)
        assert d.x_train.shape == (n_train, 2) and d.x_test.shape == (n - n_train, 2)
        assert d.y_train.shape == (n_train,) and d.y_test.shape == (n - n_train,)
        for t in (d.x_train, d.y_train, d.x_test, d.y_test):
            assert t.dtype == torch.int64
            assert 0 <= int(t.min()) and int(t.max()) < cfg.p
        assert d.n_classes == cfg.p and d.classification
    else:
        assert d.x_train.shape == (cfg.n_train, cfg.dim)
        assert d.x_test.shape == (cfg.n_test, cfg.dim)
        assert d.y_train.shape == (cfg.n_train, 1) and d.y_test.shape == (cfg.n_test, 1)
        for t in (d.x_train, d.y_train, d.x_test, d.y_test):
            assert t.dtype == torch.float32
            assert torch.isfinite(t).all()
        assert d.n_classes == 0 and not d.classification


def _tensors(d: Dataset) -> list[torch.Tensor]:
    return [d.x_train, d.y_train, d.x_test, d.y_test]


@pytest.mark.parametrize("task", list(TASKS))
def test_same_seed_same_data_different_seed_different_data(task):
    cfg = SMALL[task]
    a, b, c = build_dataset(cfg, 7), build_dataset(cfg, 7), build_dataset(cfg, 8)
    assert all(torch.equal(s, t) for s, t in zip(_tensors(a), _tensors(b)))
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.y_train, c.y_train)


def test_seed_does_not_depend_on_global_rng():
    cfg = SMALL["sin2"]
    torch.manual_seed(1)
    a = build_dataset(cfg, 0)
    torch.manual_seed(2)
    torch.randn(10)
    b = build_dataset(cfg, 0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_seed_for_streams_are_independent_and_stable():
    assert seed_for(0, "data") == seed_for(0, "data")
    assert len({seed_for(0, "data"), seed_for(0, "init"), seed_for(1, "data")}) == 3
    assert all(0 <= seed_for(s, "data") < 2**63 for s in range(20))


@pytest.mark.parametrize("freq", [10.0, 3.0, -0.5])
def test_sin2_targets(freq):
    cfg = DataConfig(dim=6, freq=freq, n_train=50, n_test=20)
    d = build_dataset(cfg, 0)
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        expected = (torch.sin(freq * x.double()) ** 2).sum(1, keepdim=True)
        torch.testing.assert_close(y.double(), expected, rtol=1e-5, atol=1e-5)


def test_inputs_are_standard_normal():
    d = build_dataset(DataConfig(dim=4, n_train=4000, n_test=0), 0)
    assert abs(float(d.x_train.mean())) < 0.05
    assert abs(float(d.x_train.std()) - 1.0) < 0.05


def test_formula_task_uses_the_formula():
    cfg = SMALL["formula"]
    d = build_dataset(cfg, 3)
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        torch.testing.assert_close(y[:, 0], x[:, 0] * x[:, 1] - 2 * x.mean(1))
    # the same formula written as sin2 gives the sin2 data
    sin2 = DataConfig(dim=6, n_train=40, n_test=15)
    as_formula = DataConfig(task="formula", dim=6, formula="sum(sin(10*x)**2)",
                            n_train=40, n_test=15)
    a, b = build_dataset(sin2, 0), build_dataset(as_formula, 0)
    assert all(torch.equal(s, t) for s, t in zip(_tensors(a), _tensors(b)))


@pytest.mark.parametrize("task", ["sin2", "formula", "teacher"])
def test_noise_only_on_train_targets(task):
    cfg = SMALL[task]
    clean = build_dataset(cfg, 0)
    noisy = build_dataset(DataConfig(**{**cfg.to_dict(), "noise": 0.5}), 0)
    assert torch.equal(clean.x_train, noisy.x_train)
    assert torch.equal(clean.x_test, noisy.x_test)
    assert not torch.equal(clean.y_train, noisy.y_train)
    if task == "teacher":
        # teacher targets are rescaled by the (noisy) train std, so test targets only
        # change by one common factor
        factor = noisy.y_test.norm() / clean.y_test.norm()
        torch.testing.assert_close(noisy.y_test, clean.y_test * factor)
    else:
        assert torch.equal(clean.y_test, noisy.y_test)


def test_noise_has_the_configured_std():
    cfg = DataConfig(dim=3, n_train=4000, n_test=10)
    clean = build_dataset(cfg, 0)
    noisy = build_dataset(DataConfig(dim=3, n_train=4000, n_test=10, noise=0.3), 0)
    diff = noisy.y_train - clean.y_train
    assert abs(float(diff.std()) - 0.3) < 0.02
    assert abs(float(diff.mean())) < 0.02


def _pairs(t: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(row) for row in t.tolist()]


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
@pytest.mark.parametrize("p", [7, 13])
def test_modular_covers_all_pairs_once(op, p):
    d = build_dataset(DataConfig(task="modular", p=p, op=op, train_frac=0.5), 0)
    train, test = _pairs(d.x_train), _pairs(d.x_test)
    everything = train + test
    assert len(everything) == len(set(everything))  # no pair twice, no train/test overlap
    if op == "/":
        expected = {(a, b) for a in range(p) for b in range(1, p)}
        assert len(everything) == p * (p - 1)
    else:
        expected = {(a, b) for a in range(p) for b in range(p)}
        assert len(everything) == p * p
    assert set(everything) == expected


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_modular_labels(op):
    p = 13
    d = build_dataset(DataConfig(task="modular", p=p, op=op), 1)
    x = torch.cat([d.x_train, d.x_test])
    y = torch.cat([d.y_train, d.y_test])
    for (a, b), c in zip(x.tolist(), y.tolist()):
        assert 0 <= c < p
        if op == "+":
            assert c == (a + b) % p
        elif op == "-":
            assert c == (a - b) % p
        elif op == "*":
            assert c == (a * b) % p
        else:
            assert b != 0 and (b * c) % p == a


def test_modular_default_size_and_division_labels():
    cfg = DataConfig(task="modular", op="/")  # p = 97
    d = build_dataset(cfg, 0)
    assert len(d.x_train) + len(d.x_test) == 97 * 96
    a, b = torch.cat([d.x_train, d.x_test]).T
    y = torch.cat([d.y_train, d.y_test])
    assert torch.equal((b * y) % 97, a)


@pytest.mark.parametrize(("frac", "n_train"), [(0.3, 36), (0.5, 60), (1e-9, 1), (1.0, 120)])
def test_modular_train_fraction(frac, n_train):
    d = build_dataset(DataConfig(task="modular", p=11, train_frac=frac), 0)
    assert len(d.x_train) + len(d.x_test) == 121
    # round(frac * N), but at least one pair on each side
    assert len(d.x_train) == n_train
    assert len(d.x_test) == 121 - n_train >= 1


def test_modular_split_is_shuffled():
    d = build_dataset(DataConfig(task="modular", p=11), 0)
    a = d.x_train[:, 0]
    assert not torch.equal(a, a.sort().values)  # not the meshgrid order


def test_teacher_targets_have_unit_std_on_train():
    for widths in [(32,), (8, 4), ()]:
        cfg = DataConfig(task="teacher", dim=5, teacher_widths=widths, n_train=300, n_test=50)
        d = build_dataset(cfg, 0)
        torch.testing.assert_close(d.y_train.std(correction=0), torch.tensor(1.0))
        assert 0.5 < float(d.y_test.std()) < 2.0  # same scale, not normalised separately


def test_teacher_without_hidden_layers_is_linear():
    # With no hidden layers the teacher is y = x @ w: a least-squares fit on the train
    # set recovers w exactly and predicts the test set.
    cfg = DataConfig(task="teacher", dim=4, teacher_widths=(), n_train=30, n_test=10)
    d = build_dataset(cfg, 0)
    w = torch.linalg.lstsq(d.x_train.double(), d.y_train.double()).solution
    torch.testing.assert_close(d.x_train.double() @ w, d.y_train.double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(d.x_test.double() @ w, d.y_test.double(), atol=1e-5, rtol=0)


def test_teacher_with_hidden_layers_is_nonlinear():
    # a relu teacher is not a linear function of x: a linear fit leaves a residual
    cfg = DataConfig(task="teacher", dim=4, teacher_widths=(16,), n_train=200, n_test=0)
    d = build_dataset(cfg, 0)
    w = torch.linalg.lstsq(d.x_train, d.y_train).solution
    assert float((d.x_train @ w - d.y_train).std()) > 0.05


def test_empty_test_set():
    d = build_dataset(DataConfig(dim=2, n_train=5, n_test=0), 0)
    assert d.x_test.shape == (0, 2) and d.y_test.shape == (0, 1)


def test_teacher_single_training_sample_is_finite():
    d = build_dataset(DataConfig(task="teacher", dim=3, n_train=1, n_test=4), 0)
    assert torch.isfinite(d.y_train).all() and torch.isfinite(d.y_test).all()
