"""Neuron statistics, built-in and DIY, and how they are computed.

A statistic is a function `(tensor, dim, keepdim=False) -> tensor` that reduces
one axis. It is defined `on` the activations of a hook point (reducing the sample
axis: one value per neuron), on the weights of a layer or embedding, or on another
statistic (reducing the neuron axis: one value per layer). Statistics are always
computed on a stack of steps, so the same code serves the online path (a chunk of
recent steps) and snapshots of a finished run:

    activations (K, S, N) --stat on "activations"--> (K, N) --stat on a stat--> (K,)
    weights (K, cols, rows) --stat on "weights"--> (K, n) or (K,) --on a stat--> (K,)

A weight W (rows, cols) is handed over transposed (featurelab.engine.weight_stats), so
axis 1 runs along a row. A statistic on weights may return any number of values per
step (one per row, one per frequency), the same number every step, or one value per
step (`scalar`, found on the probe at definition): nothing chains on that one.

A DIY statistic is checked on a small probe tensor when it is defined, so most
mistakes show at once; one that still fails during a run is switched off for the
rest of that run with its error recorded, and nothing else is affected. User code is
contained: it gets a copy of its input (changing it in place cannot reach the other
statistics or the snapshots on disk), runs under a time budget (engine/deadlines.py),
and SystemExit from it is an error of the statistic, not the end of the process. A
statistic whose code is not trusted (featurelab.signatures) keeps its source and
name but never runs.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import math
import textwrap
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from featurelab.engine import deadlines
from featurelab.engine.weight_stats import fourier_power, inverse_participation, row_norm
from featurelab.errors import ConfigError, StatisticError

ACTIVATIONS = "activations"
WEIGHTS = "weights"
# Built-ins added after labs could define DIY statistics of these names: a lab that did
# keeps its own when reopened (StatisticRegistry.define(restoring=True)).
LATER_BUILTINS = ("row_norm", "fourier_power", "fourier_ipr")
INPUTS = (ACTIVATIONS, WEIGHTS)  # what a chain of statistics starts from
StatFn = Callable[..., Tensor]


@dataclass(frozen=True)
class Statistic:
    name: str
    fn: StatFn
    on: str  # "activations", "weights" or the name of the statistic it reduces
    source: str  # the function's source text, kept for replay and the blog
    builtin: bool = False
    description: str = ""
    trusted: bool = True  # False: from elsewhere, unsigned; shown, never run
    scalar: bool = False  # on weights: one value per step, not a row of them


UNTRUSTED = ("its code came from elsewhere (not signed by you), so it is disabled: read "
             "its source, then trust it with lab.trust(), fl.trust(path) or "
             "`featurelab trust PATH`")


def _disabled(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    raise RuntimeError("an untrusted statistic's code never runs")  # call_statistic says why


def _active_rate(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    # Equals (t > 0).float().mean(...) exactly, but comparisons that make bool
    # tensors are ~4x slower on CPU than float clamp/ceil, and this runs every step.
    return t.float().clamp(0, 1).ceil_().mean(dim=dim, keepdim=keepdim)


def _mean(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    return t.float().mean(dim=dim, keepdim=keepdim)


def _std(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    return t.float().std(dim=dim, keepdim=keepdim, correction=0)


def _max(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    return t.float().amax(dim=dim, keepdim=keepdim)


def _dead_fraction(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    return (t == 0).float().mean(dim=dim, keepdim=keepdim)


def _nonlinear_fraction(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    return ((t > 0) & (t < 1)).float().mean(dim=dim, keepdim=keepdim)


BUILTIN_STATISTICS: dict[str, Statistic] = {
    s.name: s for s in (
        Statistic("active_rate", _active_rate, ACTIVATIONS, "", True,
                  "fraction of samples with activation > 0, per neuron"),
        Statistic("mean", _mean, ACTIVATIONS, "", True, "mean over samples, per neuron"),
        Statistic("std", _std, ACTIVATIONS, "", True, "std over samples, per neuron"),
        Statistic("max", _max, ACTIVATIONS, "", True, "max over samples, per neuron"),
        Statistic("dead_fraction", _dead_fraction, "active_rate", "", True,
                  "fraction of neurons never active"),
        Statistic("nonlinear_fraction", _nonlinear_fraction, "active_rate", "", True,
                  "fraction of neurons active on some samples but not all"),
        Statistic("row_norm", row_norm, WEIGHTS, "", True,
                  "L2 norm of each row of a weight: a neuron's incoming weights, a token's "
                  "embedding"),
        Statistic("fourier_power", fourier_power, WEIGHTS, "", True,
                  "power spectrum over tokens of a modular embedding (embed.weight), summed "
                  "over its dimensions: the share of power at each frequency k = 0..p//2"),
        Statistic("fourier_ipr", inverse_participation, "fourier_power", "", True,
                  "inverse participation ratio of the Fourier spectrum, sum_k P_k^2: 1 when "
                  "all power sits at one frequency (the sparse periodic embedding of a "
                  "network that groks), 1/(p//2+1) when spread evenly; its inverse is the "
                  "number of frequencies in use"),
    )
}


def function_source(fn: Callable) -> str:
    """The source text of a function, dedented; '' when Python cannot find it."""
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return ""


def function_from_source(name: str, source: str) -> StatFn:
    """Executes DIY source text (the researcher's own code, in their own kernel) and
    returns the one function it defines. It runs on its own, so that replay needs
    nothing but the log: torch, np and math are there, the notebook's globals not."""
    namespace: dict = {"torch": torch, "np": np, "math": math}
    try:  # its top level runs too: bounded in time, and SystemExit is only an error
        deadlines.run_with_budget(
            lambda: exec(compile(source, f"<statistic {name}>", "exec"), namespace),  # noqa: S102
            deadlines.DEFAULT_SECONDS)
    except deadlines.OverBudget:
        raise StatisticError(name, f"source did not finish running within "
                             f"{deadlines.DEFAULT_SECONDS:g} s") from None
    except BaseException as exc:  # a syntax error, any error, even SystemExit
        raise StatisticError(name, f"source does not run: {type(exc).__name__}: {exc}") from None
    fns = [v for k, v in namespace.items()
           if inspect.isfunction(v) and k != "torch" and v.__module__ != "torch"]
    if len(fns) != 1:
        raise StatisticError(name, f"source must define exactly one function, found {len(fns)}")
    return fns[0]


class StatisticRegistry:
    """The statistics a lab knows: the built-ins plus those defined by the researcher."""

    def __init__(self) -> None:
        self._stats: dict[str, Statistic] = dict(BUILTIN_STATISTICS)
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self._stats

    def __getitem__(self, name: str) -> Statistic:
        if name not in self._stats:
            raise ConfigError("statistic", name, "one of " + ", ".join(self._stats))
        return self._stats[name]

    def names(self) -> list[str]:
        return list(self._stats)

    def frozen(self) -> StatisticRegistry:
        """A copy that later definitions do not change: what a run records with, so a
        statistic redefined while it trains cannot change its series part-way (a
        Statistic itself is immutable, so copying the mapping is enough)."""
        copy = StatisticRegistry()
        with self._lock:
            copy._stats = dict(self._stats)
        return copy

    def level(self, name: str) -> int:
        """1: one value per neuron (or row, or frequency); 2: one value per layer."""
        stat = self[name]
        if stat.on in INPUTS:
            return 2 if stat.scalar else 1
        return self.level(stat.on) + 1

    def chain(self, name: str) -> list[str]:
        """The statistics `name` depends on, innermost first, ending with `name`."""
        stat = self[name]
        return ([] if stat.on in INPUTS else self.chain(stat.on)) + [name]

    def base(self, name: str) -> str:
        """What the chain of `name` starts from: "activations" or "weights"."""
        return self[self.chain(name)[0]].on

    def define(self, name: str, fn: StatFn | None = None, on: str = ACTIVATIONS,
               source: str = "", trusted: bool = True, scalar: bool = False,
               restoring: bool = False) -> Statistic:
        """Defines (or redefines) a DIY statistic; checks it on a probe tensor first.
        An untrusted one (source from elsewhere) is kept without running anything;
        `scalar` says what its author's probe found (one value per step, on weights).
        `restoring` a logged definition, a name that became a built-in later stays the
        lab's own statistic (its runs were recorded with it)."""
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigError("statistic.name", name,
                              "a Python identifier such as 'nonlinear_rate'")
        if (name in BUILTIN_STATISTICS or name in INPUTS) and not (
                restoring and name in LATER_BUILTINS):
            raise ConfigError("statistic.name", name, "a name that is not a built-in statistic",
                              hint=f"built-ins: {', '.join(BUILTIN_STATISTICS)}; and not "
                                   f"{ACTIVATIONS!r} or {WEIGHTS!r}")
        if on not in INPUTS and on not in self._stats:
            raise ConfigError("statistic.on", on,
                              f"{ACTIVATIONS!r}, {WEIGHTS!r} or an existing statistic: "
                              + ", ".join(self._stats))
        if on not in INPUTS and self.level(on) >= 2:
            raise ConfigError("statistic.on", on, "a statistic with one value per neuron",
                              hint=f"{on!r} already has one value per layer")
        if not trusted:
            stat = Statistic(name, _disabled, on, source, trusted=False,
                             scalar=scalar and on == WEIGHTS)
            with self._lock:
                self._stats[name] = stat
            return stat
        if fn is None:
            fn = function_from_source(name, source)
        if not callable(fn):
            raise StatisticError(name, f"expected a function, got {type(fn).__name__}")
        source = source or function_source(fn)
        stat = Statistic(name, fn, on, source)
        probe_level = 0 if on in INPUTS else self.level(on)
        probe = torch.randn((3, 5, 4) if probe_level == 0 else (3, 4)).abs()  # (K, S, N) / (K, N)
        # On a thread of its own: a function that hangs (even in a sleep) is refused
        # within the budget, and the lab's write lock is not held forever.
        try:
            stat = deadlines.run_with_budget(lambda: _probe(stat, probe),
                                             deadlines.DEFAULT_SECONDS)
        except deadlines.OverBudget:
            raise StatisticError(name, f"did not return within {deadlines.DEFAULT_SECONDS:g} s "
                                 f"on a probe of shape {tuple(probe.shape)}") from None
        with self._lock:
            self._stats[name] = stat
        return stat


def _probe(stat: Statistic, probe: Tensor) -> Statistic:
    """The statistic once its output on the probe is right; on weights, one value per
    step (K,) makes it `scalar`."""
    # On its own thread (see define): even KeyboardInterrupt can only come from the code.
    try:
        out = stat.fn(probe, dim=1, keepdim=False)
    except deadlines.OverBudget:
        raise
    except BaseException as exc:
        raise StatisticError(stat.name, f"raised {type(exc).__name__}: {exc} (input shape "
                             f"{tuple(probe.shape)}, dim=1)") from None
    if stat.on == WEIGHTS and isinstance(out, Tensor) and tuple(out.shape) == probe.shape[:1]:
        stat = dataclasses.replace(stat, scalar=True)
    check_output(stat, out, tuple(probe.shape))
    return stat


def call_statistic(stat: Statistic, values: Tensor) -> Tensor:
    """Runs the function on a stack of steps, reducing axis 1; unchecked output."""
    if stat.builtin:
        return stat.fn(values, dim=1, keepdim=False)
    if not stat.trusted:
        raise StatisticError(stat.name, UNTRUSTED)
    try:  # a copy: `t.mul_(0)` must not zero the other statistics or a snapshot file
        return deadlines.call_with_budget(deadlines.DEFAULT_SECONDS, stat.fn, values.clone(),
                                       dim=1, keepdim=False)
    except deadlines.OverBudget:
        raise StatisticError(stat.name, f"ran longer than {deadlines.DEFAULT_SECONDS:g} s "
                             f"(input shape {tuple(values.shape)}); switched off") from None
    except (Exception, SystemExit) as exc:  # SystemExit: user code cannot end the kernel
        raise StatisticError(stat.name, f"raised {type(exc).__name__}: {exc} "
                             f"(input shape {tuple(values.shape)}, dim=1)") from None


def check_output(stat: Statistic, out: object, input_shape: tuple[int, ...],
                 width: int | None = None) -> Tensor:
    """The output as float if it has the shape and values a statistic must have. On
    weights a row's width is free (one value per row, per frequency...) unless given."""
    if not isinstance(out, Tensor):
        raise StatisticError(stat.name, f"returned {type(out).__name__}, expected a tensor")
    shape, k = tuple(out.shape), input_shape[0]
    if stat.on == WEIGHTS and not stat.scalar:
        if len(shape) != 2 or shape[0] != k or not shape[1] or width not in (None, shape[1]):
            n = "n" if width is None else str(width)
            raise StatisticError(stat.name, f"returned shape {shape} for weights {input_shape} "
                                 f"with dim=1; expected ({k}, {n}): the same number of values "
                                 "every step (or one value per step)")
    elif shape != (expected := (k,) if stat.scalar else (k, *input_shape[2:])):
        raise StatisticError(stat.name, f"returned shape {shape} for input "
                             f"{input_shape} with dim=1; expected {expected}")
    out = out.float()
    bad = ~torch.isfinite(out)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise StatisticError(stat.name, f"returned {out[index].item()} at index {index} "
                             f"(shape {tuple(out.shape)})")
    return out


def apply_statistic(stat: Statistic, values: Tensor) -> Tensor:
    """Reduces axis 1 of a stack of steps: (K, S, N) -> (K, N) or (K, N) -> (K,).

    Raises StatisticError naming the statistic and the offending shape or value.
    """
    return check_output(stat, call_statistic(stat, values), tuple(values.shape))


def compute_statistics(registry: StatisticRegistry, names: Iterable[str], acts: Tensor | None,
                       failed: dict[str, str] | None = None,
                       known: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Every statistic in `names` (and what it depends on) on activations (K, S, N)
    or weights (K, cols, rows) (`acts`: a chain starts from one or the other), reusing
    the values in `known`.

    A statistic that fails is left out and its error stored in `failed` (its
    dependents fail with it); without `failed` the error is raised.
    """
    values: dict[str, Tensor] = dict(known or {})
    for name in names:
        for link in registry.chain(name):
            if link in values or (failed is not None and link in failed):
                continue
            stat = registry[link]
            source = acts if stat.on in INPUTS else values.get(stat.on)
            if source is None:  # what it depends on failed (or is not among `known`)
                error = StatisticError(link, f"depends on {stat.on!r}, which has no values")
                if failed is None:
                    raise error
                failed[link] = str(error)
                continue
            try:
                values[link] = apply_statistic(stat, source)
            except StatisticError as exc:
                if failed is None:
                    raise
                failed[link] = str(exc)
    return values
