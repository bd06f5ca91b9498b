"""Data tasks: a registry of seeded builders that make data locally, never download.

Every builder takes a DataConfig and a torch.Generator and returns a Dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from featurelab.engine.formula import parse_formula
from featurelab.errors import ConfigError

if TYPE_CHECKING:  # a type only: config validates task names against TASKS below
    from featurelab.engine.config import DataConfig


@dataclass(frozen=True)
class Dataset:
    x_train: Tensor  # (n_train, dim) float, or (n_train, 2) long tokens
    y_train: Tensor  # (n_train, 1) float targets, or (n_train,) long classes
    x_test: Tensor
    y_test: Tensor
    n_classes: int = 0  # 0 for regression

    @property
    def classification(self) -> bool:
        return self.n_classes > 0


def seed_for(seed: int, purpose: str) -> int:
    """Independent streams from one seed: data, init and batch order must not share one."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _gaussian_inputs(cfg: DataConfig, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    x = torch.randn(cfg.n_train + cfg.n_test, cfg.dim, generator=gen)  # (N, dim)
    return x[: cfg.n_train], x[cfg.n_train:]


def _regression(cfg: DataConfig, gen: torch.Generator, target: Callable[[Tensor], Tensor]
                ) -> Dataset:
    x_train, x_test = _gaussian_inputs(cfg, gen)
    y_train = target(x_train).reshape(-1, 1)  # (n_train, 1)
    y_test = target(x_test).reshape(-1, 1)
    check_targets(cfg, torch.cat([x_train, x_test]), torch.cat([y_train, y_test]))
    if cfg.noise:
        y_train = y_train + cfg.noise * torch.randn(y_train.shape, generator=gen)
    return Dataset(x_train, y_train, x_test, y_test)


def check_targets(cfg: DataConfig, x: Tensor, y: Tensor) -> None:
    """Refuses targets that are NaN/inf, or too large to square in float32 (the MSE would
    be inf): training on them would "diverge" at step 0 and blame the learning rate."""
    bad = ~torch.isfinite(y.reshape(-1) * y.reshape(-1))  # (N,) True where y*y is not finite
    count = int(bad.sum())
    if not count:
        return
    i = int(bad.nonzero()[0, 0])
    value = float(y.reshape(-1)[i])
    coords = ", ".join(f"x{j}={float(v):.3g}" for j, v in enumerate(x[i, :4].tolist()))
    more = ", ..." if x.shape[1] > 4 else ""
    kind = "not finite" if not torch.isfinite(y.reshape(-1)[i]) else \
        "too large to square in float32 (the loss would be inf)"
    field = "data.formula" if cfg.task == "formula" else "data.task"
    raise ConfigError(field, cfg.formula if cfg.task == "formula" else cfg.task,
                      "an expression with finite values (|y| < 1e19) for x ~ N(0, I)",
                      hint=f"{count} of {len(y)} targets are {kind}, e.g. y = {value:g} at "
                           f"{coords}{more}")


def _formula_task(cfg: DataConfig, gen: torch.Generator) -> Dataset:
    # sin2 is the reference task; it is the formula sum(sin(freq*x)**2) under a name.
    formula = parse_formula(cfg.target_formula, cfg.dim)
    return _regression(cfg, gen, formula.evaluate)


def _teacher_task(cfg: DataConfig, gen: torch.Generator) -> Dataset:
    widths = (cfg.dim, *cfg.teacher_widths, 1)
    weights = [torch.randn(a, b, generator=gen) / a**0.5 for a, b in itertools.pairwise(widths)]

    def teacher(x: Tensor) -> Tensor:
        for w in weights[:-1]:
            x = torch.relu(x @ w)
        return x @ weights[-1]

    data = _regression(cfg, gen, teacher)
    # Unit-variance targets make losses comparable across teacher sizes (a single
    # sample, or a constant teacher, has no spread to divide by: keep it as it is).
    std = data.y_train.std(correction=0).item()
    scale = std if std > 1e-12 else 1.0
    return Dataset(data.x_train, data.y_train / scale, data.x_test, data.y_test / scale)


def _modular_task(cfg: DataConfig, gen: torch.Generator) -> Dataset:
    p = cfg.p
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    if cfg.op == "/":
        keep = b != 0
        a, b = a[keep], b[keep]
        # a / b = a * b^(p-2) mod p (Fermat), for prime p
        y = (a * torch.tensor([pow(int(v), p - 2, p) for v in b])) % p
    else:
        y = {"+": a + b, "-": a - b, "*": a * b}[cfg.op] % p
    x = torch.stack([a, b], dim=1)  # (N, 2) tokens
    order = torch.randperm(len(x), generator=gen)
    n_train = max(1, min(len(x) - 1, round(cfg.train_frac * len(x))))
    train, test = order[:n_train], order[n_train:]
    return Dataset(x[train], y[train], x[test], y[test], n_classes=p)


TASKS: dict[str, Callable[[DataConfig, torch.Generator], Dataset]] = {
    "sin2": _formula_task,
    "formula": _formula_task,
    "modular": _modular_task,
    "teacher": _teacher_task,
}


def probe_targets(cfg: DataConfig, seed: int, rows: int = 1024) -> None:
    """check_targets on the first `rows` samples only: what validating a config at
    creation can afford (the trainer checks all of them before its first step)."""
    if cfg.task != "formula":  # sin2 and a teacher are finite; modular data are tokens
        return
    rows = max(16, min(rows, (1 << 22) // cfg.dim))  # a few MB however wide x is
    small = dataclasses.replace(cfg, n_train=min(cfg.n_train, rows), n_test=0)
    build_dataset(small, seed)


def build_dataset(cfg: DataConfig, seed: int) -> Dataset:
    if cfg.task not in TASKS:
        raise ConfigError("data.task", cfg.task, "one of " + ", ".join(TASKS))
    gen = torch.Generator().manual_seed(seed_for(seed, "data"))
    return TASKS[cfg.task](cfg, gen)
