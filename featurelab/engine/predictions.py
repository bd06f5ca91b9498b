"""The network's predictions at the snapshot steps: the view of the data and the fit that
TensorFlow Playground gives, for tasks small enough to look at.

With the observable `predictions`, a run keeps, at every snapshot step, the output on
each training and test sample and, for a 1- or 2-D input, on a grid over the inputs'
range (the function the network has learned between the samples). A classification
task keeps the predicted class (a float holding an integer), not the p logits: the
modular view colours each pair (a, b) by whether it is right. The values are stored
with the activation snapshots as one more "point", PREDICTIONS, of shape (rows, 1),
so a cancelled run continues them and a worker ships them back like the others.

Row order, which the readers rebuild from the data alone (prediction_rows): the first
training samples, the first test samples (ROWS_KEPT of the two together; kept_rows), then
the grid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from featurelab.engine.config import DataConfig, ExperimentConfig
from featurelab.engine.data import Dataset, build_dataset
from featurelab.engine.snapshots import Snapshots
from featurelab.errors import FeaturelabError

PREDICTIONS = "predictions"
ROWS_KEPT = 32_768  # samples of both splits: every pair of a modular task up to p = 181
CHUNK = 4096  # rows a prediction's forward pass takes at once (its activations' memory)
GRID_1D = 256  # points of the curve over a 1-D input
GRID_2D = 48  # points per axis of the plane over a 2-D input
MARGIN = 0.05  # the grid reaches this fraction of the inputs' range beyond them


@dataclass(frozen=True)
class PredictionRows:
    """The inputs a run predicts on, and how to read its stored rows back."""

    x: Tensor  # (rows, dim) float inputs, or (rows, 2) long tokens
    n_train: int
    n_test: int
    grid: tuple[int, ...]  # () none, (G,) a curve, (G, G) a plane (row-major, x0 fastest)
    extent: tuple[float, ...]  # (lo, hi) per input dimension of the grid

    @property
    def n_grid(self) -> int:
        return int(np.prod(self.grid)) if self.grid else 0

    @property
    def rows(self) -> int:
        return self.n_train + self.n_test + self.n_grid


def kept_rows(n_train: int, n_test: int) -> tuple[int, int]:
    """How many training and test samples are kept: all, or ROWS_KEPT shared fairly (a
    split smaller than half keeps all of its own and leaves the rest to the other)."""
    half = ROWS_KEPT // 2
    train = min(n_train, max(half, ROWS_KEPT - n_test))
    return train, min(n_test, ROWS_KEPT - train)


def view_kind(data: Dataset) -> str:
    """How the predictions are drawn: "pairs" (a modular task's p x p table), "curve"
    (1-D input), "plane" (2-D input) or "scatter" (prediction against target)."""
    if data.classification:
        return "pairs"
    dim = data.x_train.shape[1]
    return {1: "curve", 2: "plane"}.get(dim, "scatter")


def _grid(x: Tensor) -> tuple[Tensor, tuple[int, ...], tuple[float, ...]]:
    dim = x.shape[1]
    if dim > 2 or not len(x):
        return x[:0], (), ()
    lo, hi = x.min(0).values.double(), x.max(0).values.double()  # (dim,)
    # one sample (or one value) spans nothing: then the grid reaches its size, at least
    # 1, either side of it
    span = torch.where(hi > lo, hi - lo, torch.maximum(hi.abs(), torch.ones_like(hi)) * 20)
    pad = span * MARGIN
    lo, hi = lo - pad, hi + pad
    n = GRID_1D if dim == 1 else GRID_2D
    axes = [torch.linspace(float(lo[i]), float(hi[i]), n) for i in range(dim)]
    if dim == 1:
        grid = axes[0].reshape(-1, 1)  # (G, 1)
    else:
        x1, x0 = torch.meshgrid(axes[1], axes[0], indexing="ij")  # rows: x1, columns: x0
        grid = torch.stack([x0.flatten(), x1.flatten()], dim=1)  # (G*G, 2)
    extent = tuple(float(v) for pair in zip(lo.tolist(), hi.tolist()) for v in pair)
    return grid.to(x.dtype), (n,) * dim, extent


def prediction_rows(data: Dataset) -> PredictionRows:
    n_train, n_test = kept_rows(len(data.x_train), len(data.x_test))
    train, test = data.x_train[:n_train], data.x_test[:n_test]
    if data.classification:
        return PredictionRows(torch.cat([train, test]), len(train), len(test), (), ())
    grid, shape, extent = _grid(torch.cat([data.x_train, data.x_test]))
    return PredictionRows(torch.cat([train, test, grid]), len(train), len(test), shape, extent)


@torch.no_grad()
def predict(model: nn.Module, rows: PredictionRows, classification: bool) -> Tensor:
    """The model's prediction on every row, (rows, 1): the output (a regression's single
    output), or the class of the largest logit."""
    parts = []
    for start in range(0, rows.rows, CHUNK):  # a chunk's activations at a time
        out, _ = model(rows.x[start:start + CHUNK])  # (chunk, d_out)
        parts.append(out.argmax(1, keepdim=True).float() if classification
                     else out[:, :1].float())
    return torch.cat(parts) if parts else torch.empty(0, 1)


def targets(data: Dataset, rows: PredictionRows) -> np.ndarray:
    """The target of every sample row (train, then test), as floats: (n_train + n_test,)."""
    y = torch.cat([data.y_train[:rows.n_train], data.y_test[:rows.n_test]])
    return y.reshape(len(y), -1)[:, 0].double().numpy()


@functools.lru_cache(maxsize=4)
def _dataset(data: DataConfig, seed: int) -> Dataset:
    # The panel's play asks for one step after another of the same run: build its data once
    return build_dataset(data, seed)


@dataclass(frozen=True)
class PredictionsAt:
    """What a run predicted at one snapshot step, with the data it predicted on."""

    kind: str  # view_kind: pairs | curve | plane | scatter
    step: int  # the snapshot step shown: the last at or before the step asked for
    steps: np.ndarray  # (K,) every snapshot step taken so far
    rows: PredictionRows
    inputs: np.ndarray  # (n_train + n_test, dim) the samples' inputs (tokens as floats)
    target: np.ndarray  # (n_train + n_test,) float
    prediction: np.ndarray  # (rows,) float: samples, then the grid
    n_classes: int  # 0 for regression
    left_out: int = 0  # samples not kept (past ROWS_KEPT)

    @property
    def samples(self) -> int:
        return self.rows.n_train + self.rows.n_test

    def error(self, split: str) -> float:
        """Mean squared error of a split (regression), or its accuracy (classification)."""
        part = slice(0, self.rows.n_train) if split == "train" else \
            slice(self.rows.n_train, self.samples)
        y, p = self.target[part], self.prediction[part]
        if not len(y):
            return float("nan")
        if self.n_classes:
            return float(np.mean(p == y))
        return float(np.mean((p - y) ** 2))


def predictions_at(config: ExperimentConfig, snapshots: Snapshots | None,
                   step: int | None = None) -> PredictionsAt:
    """The predictions a run kept, at the snapshot nearest `step` at or before it (the
    last when None; the first for a step before it). Raises FeaturelabError naming what
    is missing."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                             or not np.isfinite(step)):
        raise FeaturelabError(f"step is a step number or None (the last snapshot); got "
                              f"{step!r}")
    if snapshots is None or PREDICTIONS not in snapshots.points:
        raise FeaturelabError("this run kept no predictions; add the observable "
                              "'predictions' and run the experiment")
    steps = snapshots.steps
    if not len(steps):
        raise FeaturelabError("no snapshot step has been reached yet")
    at = int(steps[-1]) if step is None else int(step)
    k = max(0, int(np.searchsorted(steps, at, side="right")) - 1)
    data = _dataset(config.data, config.seed)
    rows = prediction_rows(data)
    values = np.asarray(snapshots.arrays[PREDICTIONS][k], dtype=np.float64)[:, 0]  # (rows,)
    if len(values) != rows.rows:
        raise FeaturelabError(f"the stored predictions have {len(values)} rows, not the "
                              f"{rows.rows} this run's data and grid make")
    inputs = rows.x[:rows.n_train + rows.n_test].double().numpy()
    left_out = len(data.x_train) + len(data.x_test) - rows.n_train - rows.n_test
    return PredictionsAt(view_kind(data), int(steps[k]), steps, rows, inputs,
                         targets(data, rows), values, data.n_classes, left_out)
