"""Laws across runs: a law fitted to the mean curve of a sweep's group (`fit_group`), and a
summary of every group fitted against a knob the sweep varies (`fit_across`).

A group is the members of a sweep that differ only by seed; only their finished runs
count, as in `lab.bands`. `fit_group` fits the families of `lab.fit` to the group's
`mean` column of `lab.bands` (the same numbers, read through the lab: the frames sit a
layer above the actions). `fit_across` reduces each finished run to one number (its
final value, minimum, step of the minimum, the first step below or above a threshold,
or the steps spent in a band: featurelab.engine.summaries), takes the mean and standard
deviation (ddof=1) over each group, and fits one law of the knob to the means with
scipy: a power law as the straight line of the log-log plot (least squares on log x,
log y), a line, or an exponential (curve_fit from the line of log y). A restored lab
reads both from the log instead of fitting again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy import stats as _stats
from scipy.optimize import OptimizeWarning, curve_fit

from featurelab.actions.base import Action, BlogPart, Context, GraphLike, action, call
from featurelab.actions.compare import FIT_TOL, Comparison, compare_fits
from featurelab.engine.fit import DEFAULT_FAMILIES, FAMILIES, FitTable, fit_curves
from featurelab.engine.summaries import (
    measured,
    never,
    parse_summary,
    summarize,
    summary_label,
)
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.state import LabState, Sweep

if TYPE_CHECKING:  # pandas comes with the lab's frames, on first use
    pass

SEED = "seed"
FINISHED = "finished"  # the runs a group's numbers are taken from, as lab.bands takes them
NOT_RUN = "no finished run"
MAXFEV = 10_000


# -- the laws -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Law:
    """y(x) with two coefficients a, b."""

    name: str
    label: str
    equation: str  # as text, with a and b
    func: Callable[..., Any]


def _power(x: Any, a: float, b: float) -> Any:
    return a * np.power(x, b)


def _exponential(x: Any, a: float, b: float) -> Any:
    return a * np.exp(b * x)


def _linear(x: Any, a: float, b: float) -> Any:
    return a + b * x


LAWS: dict[str, Law] = {law.name: law for law in (
    Law("power", "Power law", "y = a x^b", _power),
    Law("exponential", "Exponential law", "y = a e^(b x)", _exponential),
    Law("linear", "Linear law", "y = a + b x", _linear),
)}


@dataclass(frozen=True)
class LawParams:
    """A law fitted to points: y = law(x; a, b). For the power law, R^2 is that of the
    straight line in log-log (the line that was fitted); otherwise that of y."""

    law: str
    a: float
    b: float
    r2: float
    n_points: int

    @property
    def equation(self) -> str:
        return law_equation(self.law, self.a, self.b)

    @property
    def latex(self) -> str:
        return law_latex(self.law, self.a, self.b)

    def predict(self, x: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(LAWS[self.law].func(np.asarray(x, dtype=float), self.a, self.b))


def _number(v: float) -> str:
    return f"{v:.4g}"


def law_equation(law: str, a: float, b: float) -> str:
    """'y = 0.0123 x^(-0.5)', 'y = 2 e^(-3 x)', 'y = 1 - 2 x'."""
    if law == "power":
        return f"y = {_number(a)} x^{_number(b) if b >= 0 else f'({_number(b)})'}"
    if law == "exponential":
        return f"y = {_number(a)} e^({_number(b)} x)"
    sign = "+" if b >= 0 else "-"
    return f"y = {_number(a)} {sign} {_number(abs(b))} x"


def _latex_number(v: float) -> str:
    text = _number(v)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"


def law_latex(law: str, a: float, b: float) -> str:
    if law == "power":
        return rf"y = {_latex_number(a)} \, x^{{{_latex_number(b)}}}"
    if law == "exponential":
        return rf"y = {_latex_number(a)} \, e^{{{_latex_number(b)} x}}"
    sign = "+" if b >= 0 else "-"
    return rf"y = {_latex_number(a)} {sign} {_latex_number(abs(b))} \, x"


def _r2(y: np.ndarray, fitted: np.ndarray) -> float:
    tss = float(np.sum((y - y.mean()) ** 2))
    rss = float(np.sum((y - fitted) ** 2))
    return 1.0 - rss / tss if tss > 0 else float("nan")


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through the points (scipy)."""
    line: Any = _stats.linregress(x, y)
    return float(line.intercept), float(line.slope)


def fit_law(x: Any, y: Any, law: str = "power") -> LawParams:
    """Fits y = law(x; a, b) to points with scipy: "power" (y = a x^b) by least squares
    on the straight line log y = log a + b log x (x and y must be positive), "linear"
    (y = a + b x) by least squares, "exponential" (y = a e^(b x)) by curve_fit, started
    from the line of log |y|. Needs two points or more with two distinct x values."""
    if law not in LAWS:
        raise ConfigError("law", law, ", ".join(LAWS))
    try:
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("x", type(x).__name__, "1-D arrays of numbers") from None
    if xs.ndim != 1 or xs.shape != ys.shape:
        raise ConfigError("y", f"shape {ys.shape}", f"the shape of x, {xs.shape}, 1-D")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ConfigError("y", "NaN or inf", "finite numbers")
    if len(np.unique(xs)) < 2:
        raise ConfigError("x", xs.tolist(), "at least two distinct values",
                          hint="a law needs two points or more")
    if law == "power":
        if np.any(xs <= 0) or np.any(ys <= 0):
            raise ConfigError("y" if np.all(xs > 0) else "x",
                              (ys if np.all(xs > 0) else xs).tolist(), "positive values",
                              hint="a power law is a straight line in log-log; fit "
                                   "law='linear' or 'exponential' instead")
        log_a, b = _line(np.log(xs), np.log(ys))
        r2 = _r2(np.log(ys), log_a + b * np.log(xs))
        return LawParams(law, math.exp(log_a), b, r2, len(xs))
    if law == "linear":
        a, b = _line(xs, ys)
        return LawParams(law, a, b, _r2(ys, a + b * xs), len(xs))
    # exponential: the line of log |y| starts curve_fit where y keeps one sign
    if np.all(ys > 0) or np.all(ys < 0):
        sign = 1.0 if ys[0] > 0 else -1.0
        log_a, b = _line(xs, np.log(sign * ys))
        p0 = (sign * math.exp(log_a), b)
    else:
        p0 = (float(ys.mean()), 0.0)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", OptimizeWarning)
            popt, _ = curve_fit(_exponential, xs, ys, p0=p0, maxfev=MAXFEV)
    except (RuntimeError, ValueError) as exc:
        raise FeaturelabError(f"the exponential law did not converge: {exc}") from None
    a, b = float(popt[0]), float(popt[1])
    fitted = _exponential(xs, a, b)
    if not (math.isfinite(a) and math.isfinite(b) and np.all(np.isfinite(fitted))):
        raise FeaturelabError("the exponential law did not converge: it overflows on x")
    return LawParams(law, a, b, _r2(ys, fitted), len(xs))


# -- what a verb returns --------------------------------------------------------------------

@dataclass(frozen=True)
class GroupFit:
    """The fit table of a group's mean curve (`table.rows` ranked by R^2)."""

    sweep: str
    group: str
    metric: str
    layer: str | None
    members: tuple[str, ...]  # the finished runs the mean is over
    table: FitTable

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def best(self) -> Any:
        return self.table.best

    @property
    def rows(self) -> Any:
        return self.table.rows

    def __str__(self) -> str:
        layer = f" ({self.layer})" if self.layer else ""
        return (f"mean {self.metric}{layer} of {self.sweep} group {self.group} "
                f"(n = {self.n} runs)\n{self.table}")


@dataclass(frozen=True)
class LawPoint:
    """One group: its knob value, and the mean, std (ddof=1; NaN for one run) and number
    of the summaries of its finished runs."""

    group: str
    x: float
    mean: float
    std: float
    n: int
    missed: tuple[str, ...] = ()  # finished runs that never reach a threshold: not counted

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "x": self.x, "mean": self.mean,
                "std": self.std if math.isfinite(self.std) else None, "n": self.n,
                "missed": list(self.missed)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LawPoint:
        std = d.get("std")
        return cls(d["group"], float(d["x"]), float(d["mean"]),
                   float("nan") if std is None else float(std), int(d["n"]),
                   tuple(d.get("missed", [])))


@dataclass(frozen=True)
class LawFit:
    """A law of a knob fitted to the groups' mean summaries."""

    sweep: str
    metric: str
    layer: str | None
    knob: str
    summary: str
    points: tuple[LawPoint, ...]  # by knob value
    left_out: tuple[tuple[str, str], ...]  # (group, why): no finished run, never crossed
    fit: LawParams

    @property
    def law(self) -> str:
        return self.fit.law

    @property
    def a(self) -> float:
        return self.fit.a

    @property
    def b(self) -> float:
        return self.fit.b

    @property
    def r2(self) -> float:
        return self.fit.r2

    @property
    def equation(self) -> str:
        return self.fit.equation

    @property
    def latex(self) -> str:
        return self.fit.latex

    def predict(self, x: Any) -> np.ndarray:
        return self.fit.predict(x)

    def to_dict(self) -> dict[str, Any]:
        r2 = self.fit.r2 if math.isfinite(self.fit.r2) else None
        return {"points": [p.to_dict() for p in self.points],
                "left_out": [{"group": g, "why": why} for g, why in self.left_out],
                "law": self.fit.law, "params": {"a": self.fit.a, "b": self.fit.b},
                "r2": r2, "equation": self.fit.equation, "latex": self.fit.latex}

    @classmethod
    def from_dict(cls, action: FitAcross, d: dict[str, Any]) -> LawFit:
        points = tuple(LawPoint.from_dict(p) for p in d["points"])
        r2 = float("nan") if d.get("r2") is None else float(d["r2"])
        params = LawParams(d["law"], float(d["params"]["a"]), float(d["params"]["b"]), r2,
                           len(points))
        return cls(action.sweep, action.metric, action.layer, action.knob, action.summary,
                   points, tuple((o["group"], o["why"]) for o in d.get("left_out", [])),
                   params)

    def __str__(self) -> str:
        layer = f" ({self.layer})" if self.layer else ""
        head = (f"{LAWS[self.law].label} of {self.metric}{layer} "
                f"({summary_label(self.summary)}) against {self.knob} across {self.sweep}: "
                f"{self.equation}, R^2 = {self.r2:.4f}"
                + (" (of the log-log line)" if self.law == "power" else ""))
        lines = [head, f"{'x':>12}  {'mean':>12}  {'std':>12}  n  group"]
        lines += [f"{p.x:>12.6g}  {p.mean:>12.6g}  {p.std:>12.6g}  {p.n}  {p.group}"
                  for p in self.points]
        lines += [f"left out: {g} ({why})" for g, why in self.left_out]
        return "\n".join(lines)


# -- reading a sweep ------------------------------------------------------------------------

def finished(state: LabState, members: tuple[str, ...]) -> list[str]:
    """The members whose latest run finished (what lab.bands takes)."""
    return [m for m in members if m in state.latest
            and state.runs[state.latest[m]].status == FINISHED]


def _group(sweep: Sweep, group: str) -> tuple[str, ...]:
    if group not in sweep.groups:
        raise ConfigError("group", group, "a group of " + sweep.id + ": "
                          + ", ".join(repr(g) for g in sweep.groups))
    return sweep.groups[group]


def _scalar_series(state: LabState, member: str, metric: str, layer: str | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    steps, values = state.metric_series(member, metric, layer)
    if values.ndim != 1:
        key = f"{metric}@{layer}" if layer else metric
        raise ConfigError("metric", key, "a series with one value per step",
                          hint=f"{key} has one per neuron; define a statistic that reduces it")
    return steps, values


def _knob_value(sweep: Sweep, group: str, knob: str) -> float:
    value = sweep.values[sweep.groups[group][0]][knob]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("knob", knob, "a knob with numbers for values",
                          hint=f"{knob} is {value!r} in group {group!r}")
    return float(value)


def _chosen_groups(sweep: Sweep, knob: str, where: dict[str, Any] | None) -> list[str]:
    """The groups whose values match `where`; they must differ in `knob` alone."""
    varied = [k for k in sweep.knobs if k != SEED]
    if knob not in varied:
        raise ConfigError("knob", knob, "a knob " + sweep.id + " varies besides the seed: "
                          + (", ".join(varied) or "none"))
    where = where or {}
    for path in where:
        if path not in varied or path == knob:
            others = [k for k in varied if k != knob]
            raise ConfigError("where", where, "values of the other knobs of " + sweep.id
                              + (": " + ", ".join(others) if others else " (it has none)"))
    chosen = [g for g, members in sweep.groups.items()
              if all(sweep.values[members[0]].get(p) == v for p, v in where.items())]
    if not chosen:
        raise ConfigError("where", where, "values some group of " + sweep.id + " has")
    for other in varied:
        if other == knob or other in where:
            continue
        seen = {repr(sweep.values[sweep.groups[g][0]][other]) for g in chosen}
        if len(seen) > 1:
            raise ConfigError("where", where or None, f"values fixing {other} too",
                              hint=f"{sweep.id} also varies {other} ({', '.join(sorted(seen))}); "
                                   f"a law of {knob} is fitted with the others fixed, e.g. "
                                   f"where={{{other!r}: ...}}")
    return chosen


def _families(families: list[str] | None) -> None:
    unknown = [f for f in families or [] if f not in FAMILIES]
    if unknown:
        raise ConfigError("families", unknown[0], "some of " + ", ".join(FAMILIES))
    if families is not None and not families:
        raise ConfigError("families", [], "some of " + ", ".join(FAMILIES))


def _families_text(families: list[str] | None) -> str:
    names = [FAMILIES[f].label.lower() if f in FAMILIES else f
             for f in (DEFAULT_FAMILIES if families is None else families)]
    if not names:
        return "no family"
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _of(metric: str, layer: str | None) -> str:
    return f"{metric} ({layer})" if layer else metric


# -- the actions ----------------------------------------------------------------------------

@action
class FitGroup(Action):
    """Fits laws (sigmoid, exponential, power, log-power, linear) to the mean curve of a
    sweep's group (its members' finished runs, as lab.bands averages them)."""

    type: ClassVar[str] = "fit_group"
    sweep: str
    group: str
    metric: str
    layer: str | None = None
    families: list[str] | None = None
    x_range: tuple[float, float] | None = None

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict[str, Any], Any]:
        if recorded is not None and "table" in recorded:  # restored: read, not fitted
            fit = GroupFit(self.sweep, self.group, self.metric, self.layer,
                           tuple(recorded.get("members", [])),
                           FitTable.from_dict(recorded["table"]))
            return recorded, fit
        _families(self.families)
        members = _group(state.sweep(self.sweep), self.group)
        done = finished(state, members)
        if not done:
            raise FeaturelabError(f"group {self.group!r} of {self.sweep} has no finished run "
                                  f"yet ({', '.join(members)}); lab.run({self.sweep!r}) "
                                  "trains its members")
        from featurelab import frames  # pandas, on first use

        bands = frames.bands(state, self.metric, self.sweep, self.layer)  # as lab.bands
        rows = bands[bands["group"] == self.group]
        steps, mean = measured(np.asarray(rows["step"], dtype=float),
                               np.asarray(rows["mean"], dtype=float))
        table = fit_curves(steps, mean, x_range=self.x_range, families=self.families)
        fit = GroupFit(self.sweep, self.group, self.metric, self.layer, tuple(done), table)
        return {"sweep": self.sweep, "group": self.group, "members": list(done),
                "n": len(done), "table": table.to_dict()}, fit

    def compare(self, recorded: dict[str, Any], replayed: dict[str, Any],
                state: LabState) -> Comparison:
        if "table" not in recorded or "table" not in replayed:
            return [], []
        what = f"group fit of {self.sweep} {self.group!r} {self.metric}"
        if recorded.get("members") != replayed.get("members"):
            return [], [(what, f"runs {recorded.get('members')} -> {replayed.get('members')}")]
        return compare_fits(what, recorded, replayed)

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        if "table" not in result:
            return None
        best = FitTable.from_dict(result["table"]).best
        node = graph.node(f"fit_group_{graph.count('fit')}", "fit",
                          label=f"{self.sweep} group fit", sweep=self.sweep,
                          group=self.group, metric=self.metric, layer=self.layer,
                          best=best.family if best else None, r2=best.r2 if best else None)
        for member in result.get("members", []):
            if member in graph.latest_run:
                graph.edge(node, graph.latest_run[member], "fitted_to", layer=self.layer)
        graph.edge(node, graph.metric(self.metric), "fitted_to", layer=self.layer)
        return node

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        parts = super().blog(result, state)
        return [*parts, ("group_fit", result)] if result and "table" in result else parts

    def to_code(self) -> str:
        return call("lab.fit_group", self.sweep, self.group, self.metric, layer=self.layer,
                    families=self.families, x_range=self.x_range)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        span = (f" on steps {self.x_range[0]:g}-{self.x_range[1]:g}"
                if self.x_range is not None else "")
        sentence = (f"Fitted {_families_text(self.families)} to the mean "
                    f"{_of(self.metric, self.layer)} of group {self.group} of "
                    f"{self.sweep}{span}")
        if result and "table" in result:
            n = result.get("n", len(result.get("members", [])))
            sentence += f" ({n} run{'' if n == 1 else 's'})"
            best = FitTable.from_dict(result["table"]).best
            if best is not None:
                sentence += f"; best: {best.label.lower()}, R^2 = {best.r2:.3f}"
        return sentence + "."


@action
class FitAcross(Action):
    """Fits a law (power, exponential, linear) of a sweep's knob to a summary of a metric
    (final, min, argmin, first_below:<x>, first_above:<x>, in_band:<lo>:<hi>), its mean
    over each group."""

    type: ClassVar[str] = "fit_across"
    sweep: str
    metric: str
    knob: str
    summary: str = "final"
    law: str = "power"
    layer: str | None = None
    where: dict[str, Any] | None = None

    def points(self, state: LabState) -> tuple[list[LawPoint], list[tuple[str, str]]]:
        """Each chosen group's point and the groups left out, with why; changes nothing."""
        parse_summary(self.summary)
        if self.law not in LAWS:
            raise ConfigError("law", self.law, ", ".join(LAWS))
        sweep = state.sweep(self.sweep)
        chosen = _chosen_groups(sweep, self.knob, self.where)
        points: list[LawPoint] = []
        left_out: list[tuple[str, str]] = []
        for group in chosen:
            x = _knob_value(sweep, group, self.knob)
            done = finished(state, sweep.groups[group])
            if not done:
                left_out.append((group, NOT_RUN))
                continue
            values = [summarize(*_scalar_series(state, m, self.metric, self.layer),
                                self.summary) for m in done]
            kept = np.array([v for v in values if v is not None], dtype=float)
            if not len(kept):
                left_out.append((group, never(self.summary)))
                continue
            missed = tuple(m for m, v in zip(done, values) if v is None)
            std = float(kept.std(ddof=1)) if len(kept) > 1 else float("nan")
            points.append(LawPoint(group, x, float(kept.mean()), std, len(kept), missed))
        points.sort(key=lambda p: p.x)
        return points, left_out

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict[str, Any], Any]:
        if recorded is not None and "points" in recorded:  # restored: read, not fitted
            return recorded, LawFit.from_dict(self, recorded)
        points, left_out = self.points(state)
        if len({p.x for p in points}) < 2:
            why = "; ".join(f"{g}: {w}" for g, w in left_out)
            untrained = any(w == NOT_RUN for _, w in left_out)
            raise FeaturelabError(
                f"a law of {self.knob} needs two groups or more with values; {self.sweep} "
                f"has {len(points)}" + (f" (left out: {why})" if why else "")
                + (f"; lab.run({self.sweep!r}) trains its members" if untrained else ""))
        x = np.array([p.x for p in points])
        y = np.array([p.mean for p in points])
        if self.law == "power":
            bad = [p for p in points if p.x <= 0 or p.mean <= 0]
            if bad:
                raise ConfigError("law", self.law, "a law that allows the values "
                                  "(linear or exponential)",
                                  hint=f"a power law needs positive knob values and means; "
                                       f"group {bad[0].group} has {self.knob} = {bad[0].x:g}, "
                                       f"mean {bad[0].mean:g}")
        params = fit_law(x, y, self.law)
        fit = LawFit(self.sweep, self.metric, self.layer, self.knob, self.summary,
                     tuple(points), tuple(left_out), params)
        return fit.to_dict(), fit

    def compare(self, recorded: dict[str, Any], replayed: dict[str, Any],
                state: LabState) -> Comparison:
        if "points" not in recorded or "points" not in replayed:
            return [], []
        what = f"{self.law} law of {self.metric} against {self.knob} across {self.sweep}"
        then = [recorded["params"]["a"], recorded["params"]["b"], recorded.get("r2")]
        now = [replayed["params"]["a"], replayed["params"]["b"], replayed.get("r2")]
        groups = ([p["group"] for p in recorded["points"]],
                  [p["group"] for p in replayed["points"]])
        if groups[0] != groups[1]:
            return [], [(what, f"groups {groups[0]} -> {groups[1]}")]
        means = ([p["mean"] for p in recorded["points"]],
                 [p["mean"] for p in replayed["points"]])
        for a, b in zip([*then, *means[0]], [*now, *means[1]]):
            if (a is None) != (b is None) or (
                    a is not None and b is not None
                    and not math.isclose(a, b, rel_tol=FIT_TOL, abs_tol=1e-12)):
                return [], [(what, f"a, b, R^2 {then} -> {now}")]
        return [f"{what}: same law"], []

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        if "points" not in result:
            return None
        node = graph.node(f"fit_across_{graph.count('fit')}", "fit",
                          label=f"{self.sweep} {self.knob}", sweep=self.sweep,
                          metric=self.metric, layer=self.layer, knob=self.knob,
                          summary=self.summary, best=result.get("law"), r2=result.get("r2"),
                          equation=result.get("equation"))
        sweep = state.sweeps.get(self.sweep)
        groups = [p["group"] for p in result["points"]]
        for group in groups:
            for member in sweep.groups.get(group, ()) if sweep is not None else ():
                if member in graph.latest_run:
                    graph.edge(node, graph.latest_run[member], "fitted_to", layer=self.layer)
        graph.edge(node, graph.metric(self.metric), "fitted_to", layer=self.layer)
        return node

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        parts = super().blog(result, state)
        return [*parts, ("law", result)] if result and "points" in result else parts

    def to_code(self) -> str:
        return call("lab.fit_across", self.sweep, self.metric, self.knob,
                    summary=None if self.summary == "final" else self.summary,
                    law=None if self.law == "power" else self.law, layer=self.layer,
                    where=self.where)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        law = LAWS[self.law].label.lower() if self.law in LAWS else f"{self.law} law"
        try:
            summary = summary_label(self.summary)
        except ConfigError:
            summary = self.summary
        where = (" with " + ", ".join(f"{k}={v!r}" for k, v in self.where.items())
                 if self.where else "")
        sentence = (f"Fitted a {law} of {self.knob} to the {summary} of "
                    f"{_of(self.metric, self.layer)} across {self.sweep}{where}")
        if result and "points" in result:
            n = len(result["points"])
            sentence += f" ({n} group{'' if n == 1 else 's'}): {result['equation']}"
            if result.get("r2") is not None:
                sentence += f", R^2 = {result['r2']:.3f}"
            out = result.get("left_out", [])
            if out:
                whys = ", ".join(dict.fromkeys(o["why"] for o in out))
                sentence += f"; {len(out)} group{'' if len(out) == 1 else 's'} left out ({whys})"
            missed = sum(len(p.get("missed", [])) for p in result["points"])
            if missed:
                sentence += (f"; {missed} run{'' if missed == 1 else 's'} "
                             f"{never(self.summary)}, left out of the means")
        return sentence + "."
