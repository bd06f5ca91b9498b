"""What a run records, and the recorder that subscribes to the trainer's events.

An experiment lists observables by name: the scalar observables below, or a
statistic (built-in or DIY). A statistic is computed on every hidden layer's
pre-activation point, or on one point with `"name@layers.1.post"`; a statistic on
weights on every weight of the model, or on one with `"fourier_power@embed.weight"`.
Weights are measured every step, like activations, and only for the statistics asked
for: a weight statistic costs nothing in a run that does not record one.

Series are keyed "name" or "name@point" and hold one row per step. Per-step
work is kept small: losses are floats, parameter norms one foreach op, and the
per-neuron statistics run on the live activation while it is still in cache
(a stack of one step, so DIY functions see the same (K, S, N) layout as on
snapshots). Checking their outputs, and the per-layer statistics built on them,
wait for the flush every `flush_every` steps, where they cost a few ops for the
whole chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from featurelab.engine.models import parse_hook_point
from featurelab.engine.stats import (
    INPUTS,
    WEIGHTS,
    Statistic,
    StatisticRegistry,
    call_statistic,
    check_output,
    compute_statistics,
)
from featurelab.engine.weight_stats import weight_stack
from featurelab.errors import ConfigError, StatisticError

# The observables asked for by name alone (not statistics): the scalar series, the
# activation snapshots (hidden_activations) and the outputs at the same steps (predictions).
NAMED_OBSERVABLES: dict[str, str] = {
    "train_loss": "training loss at each step",
    "test_loss": "test loss at each step, at the same parameters",
    "train_accuracy": "training accuracy (classification)",
    "test_accuracy": "test accuracy (classification)",
    "weight_l2_norm": "L2 norm of all parameters; per layer with layer='layers.i'",
    "grad_norm": "L2 norm of the whole gradient",
    "hidden_activations": "activation snapshots of the hook points on a schedule",
    "predictions": "the network's output on every sample (and on a grid over a 1- or 2-D "
                   "input) at the snapshot steps",
}
CLASSIFICATION_ONLY = ("train_accuracy", "test_accuracy")
SNAPSHOT_OBSERVABLES = ("hidden_activations", "predictions")  # kept at the snapshot steps


def key(name: str, point: str = "") -> str:
    return f"{name}@{point}" if point else name


@dataclass(frozen=True)
class ObservablePlan:
    scalars: tuple[str, ...]
    stats: dict[str, tuple[str, ...]]  # hook or weight point -> statistics requested there
    snapshots: bool  # the activations at the snapshot steps
    predictions: bool = False  # the outputs at the snapshot steps

    @property
    def capture(self) -> frozenset[str]:
        """Hook points the step must hand over every step."""
        return frozenset(p for p in self.stats if parse_hook_point(p))

    @property
    def weights(self) -> frozenset[str]:
        """Weight points measured every step."""
        return frozenset(p for p in self.stats if not parse_hook_point(p))

    @property
    def needs_eval(self) -> bool:
        return any(s in self.scalars for s in ("test_loss", "test_accuracy"))


def plan_observables(observables: Iterable[str], registry: StatisticRegistry,
                     points: Iterable[str], classification: bool,
                     weights: Iterable[str] = ()) -> ObservablePlan:
    """Checks every name and resolves where each statistic is computed: `points` are
    the model's hook points, `weights` its weight points (models.weight_shapes)."""
    points, weights = list(points), list(weights)
    pre_points = [p for p in points if (parse_hook_point(p) or (0, ""))[1] == "pre"]
    allowed = (f"{', '.join(NAMED_OBSERVABLES)}, a statistic ({', '.join(registry.names())}),"
               " or 'statistic@point' with a point among " + ", ".join(points))
    if weights:
        allowed += " (a weight among " + ", ".join(weights) + " for a statistic on weights)"
    scalars: list[str] = []
    stats: dict[str, list[str]] = {}
    for i, spec in enumerate(observables):
        name, _, point = spec.partition("@")
        if name in NAMED_OBSERVABLES and not point:
            if name in CLASSIFICATION_ONLY and not classification:
                raise ConfigError(f"observables[{i}]", spec, allowed,
                                  hint="accuracy needs a classification task")
            scalars.append(name)
        elif name in registry:
            on_weights = registry.base(name) == WEIGHTS
            where = weights if on_weights else points
            if point and point not in where:
                raise ConfigError(f"observables[{i}]", spec, allowed,
                                  hint=f"{name!r} is on weights; {point!r} is not a weight of "
                                       "this model" if on_weights
                                  else f"unknown hook point {point!r}")
            if on_weights and not where:
                raise ConfigError(f"observables[{i}]", spec, allowed,
                                  hint=f"{name!r} is on weights, and no weights were given")
            for p in [point] if point else weights if on_weights else pre_points:
                stats.setdefault(p, [])
                if name not in stats[p]:
                    stats[p].append(name)
        else:
            raise ConfigError(f"observables[{i}]", spec, allowed)
    return ObservablePlan(tuple(scalars), {p: tuple(s) for p, s in stats.items()},
                          "hidden_activations" in scalars, "predictions" in scalars)


class Recorder:
    """Fills the series of one run; subscribed to on_step_end and on_eval."""

    def __init__(self, plan: ObservablePlan, registry: StatisticRegistry, n_steps: int,
                 layer_params: dict[str, list[Tensor]], flush_every: int = 50,
                 on_flush: Callable[[int, int, dict[str, np.ndarray]], None] | None = None,
                 weights: Callable[[], dict[str, Tensor]] | None = None) -> None:
        self.on_flush = on_flush
        self.plan = plan
        self.registry = registry
        self.n_steps = n_steps
        self.flush_every = flush_every
        self.layer_params = layer_params  # "layers.i" -> its parameters
        # weight point -> its live (rows, cols) weight; asked each step, so a parameter
        # replaced (a checkpoint loaded) is still the one measured
        self.weights = weights if plan.weights else None
        self.params = [p for ps in layer_params.values() for p in ps]
        self.series: dict[str, np.ndarray] = {}
        self.stat_errors: dict[str, str] = {}  # series key -> the error that stopped it
        self.steps_done = 0  # steps whose every series is filled in
        self._steps_seen = 0
        self._norms: list[Sequence[Tensor]] = []
        self._input_shapes: dict[str, tuple[int, ...]] = {}
        # point -> per-neuron statistic -> its outputs since the last flush, one per step
        self._live: dict[str, dict[str, tuple[Statistic, list[Tensor]]]] = {}
        for point, names in plan.stats.items():
            chains = [link for name in names for link in registry.chain(name)]
            self._live[point] = {link: (registry[link], []) for link in dict.fromkeys(chains)
                                 if registry[link].on in INPUTS}
        for name in plan.scalars:
            if name == "weight_l2_norm":
                self._alloc(key(name))
                for layer in layer_params:
                    self._alloc(key(name, layer))
            elif name not in SNAPSHOT_OBSERVABLES:
                self._alloc(key(name))

    def _alloc(self, k: str, width: int = 0) -> np.ndarray:
        shape = (self.n_steps, width) if width else (self.n_steps,)
        self.series[k] = np.full(shape, np.nan, dtype=np.float32)
        return self.series[k]

    def on_step_end(self, step: int, loss: float, acts: dict[str, Tensor],
                    accuracy: float | None = None) -> None:
        # A step's statistics are a few elementwise ops and reductions over one
        # activation: at two threads each op over more than 32K values pays an OpenMP
        # fork and join that costs more than it saves (active_rate of a 500 x 100 layer:
        # 34 us at two threads, 17 at one), so they run at one, whatever the run's.
        threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
        try:
            self._record(step, loss, acts, accuracy)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        # after the restore: a flush's listeners may set the threads (engine/threads.py)
        if self._steps_seen - self.steps_done >= self.flush_every:
            self.flush()

    @torch.no_grad()
    def _record(self, step: int, loss: float, acts: dict[str, Tensor],
                accuracy: float | None) -> None:
        scalars = self.plan.scalars
        if "train_loss" in scalars:
            self.series["train_loss"][step] = loss
        if "train_accuracy" in scalars and accuracy is not None:
            self.series["train_accuracy"][step] = accuracy
        if "weight_l2_norm" in scalars:
            self._norms.append(torch._foreach_norm(self.params))  # P scalars, stacked at flush
        if "grad_norm" in scalars:
            grads = [p.grad for p in self.params if p.grad is not None]
            self.series["grad_norm"][step] = float(torch.stack(torch._foreach_norm(grads)).norm())
        weights = self.weights() if self.weights is not None else {}
        for point, live in self._live.items():
            if point in weights:
                a = weight_stack(weights[point])  # (1, cols, rows): a view, no copy
            else:
                a = acts[point].unsqueeze(0)  # (1, S, N): a stack of one step
            self._input_shapes[point] = tuple(a.shape)
            for name, (stat, chunk) in live.items():
                if key(name, point) in self.stat_errors:
                    continue
                try:
                    chunk.append(call_statistic(stat, a))
                except StatisticError as exc:
                    self._fail(name, point, str(exc), step)
        self._steps_seen = step + 1

    def restore(self, step: int, arrays: dict[str, np.ndarray],
                stat_errors: dict[str, str]) -> None:
        """Takes over the first `step` rows of an earlier run of the same plan (a
        cancelled run being continued), as if it had recorded them itself."""
        for k, values in arrays.items():
            array = self.series.get(k)
            if array is None:  # a statistic's series, allocated on its first values
                array = self._alloc(k, *values.shape[1:])
            array[:step] = values[:step]
        self.stat_errors.update(stat_errors)
        self.steps_done = self._steps_seen = step

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if name in self.series:
                self.series[name][step] = value

    @torch.no_grad()
    def flush(self) -> None:
        """Computes what was deferred for the steps seen since the last flush."""
        start, stop = self.steps_done, self._steps_seen
        if stop == start:
            return
        if self._norms:
            self._write_norms(start, stop, torch.tensor(self._norms))  # (K, P)
            self._norms = []
        for point, live in self._live.items():
            known = {}
            for name, (stat, chunk) in live.items():
                if chunk:
                    known[name] = self._checked(stat, point, chunk, start)
                    chunk.clear()
            self._write(point, known, start)
            # per-layer statistics: a few ops on the (K, N) values of the whole chunk
            names = [n for n in self.plan.stats[point] if key(n, point) not in self.stat_errors
                     and n not in known]
            failed: dict[str, str] = {}
            values = compute_statistics(self.registry, names, None, failed, known)
            self._write(point, {n: v for n, v in values.items() if n not in known}, start)
            for name, error in failed.items():
                self._fail(name, point, f"{error} (at steps {start}-{stop - 1})")
        self.steps_done = stop
        if self.on_flush is not None:
            self.on_flush(start, stop, self.series)

    def _checked(self, stat: Statistic, point: str, chunk: list[Tensor], start: int) -> Tensor:
        """The per-step outputs as (K, N), up to the first bad one, whose step is named."""
        shape = self._input_shapes[point]
        expected = self._expected(stat, point, chunk[0], shape)
        good = len(chunk)
        for j, out in enumerate(chunk):  # cheap Python checks first, one op for the values
            if not isinstance(out, Tensor) or tuple(out.shape) != expected:
                good = j
                break
        values = torch.cat(chunk[:good]).float() if good else torch.empty(0, *expected[1:])
        finite = torch.isfinite(values).reshape(len(values), -1).all(1)  # (K,)
        if not finite.all():
            good = int((~finite).nonzero()[0])
        if good < len(chunk):
            try:
                check_output(stat, chunk[good], shape,
                             expected[1] if len(expected) == 2 else None)
            except StatisticError as exc:
                self._fail(stat.name, point, str(exc), start + good)
        return values[:good]

    def _expected(self, stat: Statistic, point: str, first: object,
                  shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one step's output: (1, N) on activations; on weights (1,) for a
        scalar, else (1, n) with n as recorded so far, or as the first output has it."""
        if stat.on != WEIGHTS:
            return (1, *shape[2:])
        if stat.scalar:
            return (1,)
        recorded = self.series.get(key(stat.name, point))
        if recorded is not None:
            return (1, *recorded.shape[1:])
        if isinstance(first, Tensor) and first.ndim == 2 and first.shape[1]:
            return (1, first.shape[1])
        return (1, 0)  # matches no output: check_output names what is wrong

    def _write(self, point: str, values: dict[str, Tensor], start: int) -> None:
        for name, value in values.items():
            if not len(value):
                continue
            k = key(name, point)
            array = self.series.get(k)
            if array is None:
                array = self._alloc(k, *value.shape[1:])
            array[start:start + len(value)] = value.numpy()

    def _fail(self, name: str, point: str, error: str, step: int | None = None) -> None:
        where = "" if step is None else f" (at step {step})"
        self.stat_errors.setdefault(key(name, point), error + where)

    def _write_norms(self, start: int, stop: int, norms: Tensor) -> None:
        squares = norms.double().square()  # (K, P)
        self.series["weight_l2_norm"][start:stop] = squares.sum(1).sqrt().numpy()
        col = 0
        for layer, params in self.layer_params.items():
            width = len(params)
            layer_norm = squares[:, col:col + width].sum(1).sqrt()
            self.series[key("weight_l2_norm", layer)][start:stop] = layer_norm.numpy()
            col += width
