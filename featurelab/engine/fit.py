"""Curve fits of a training-curve series y(t) over steps t.

Each family is a small frozen record (equation text, LaTeX, model function and a
function proposing starting points) held in the ``FAMILIES`` registry.
``fit_curves`` fits several families to one series and returns a ``FitTable`` whose
rows are ranked by R^2. A fit that cannot be done becomes a row with ``ok=False``
and a ``reason``; only a malformed call raises ``ConfigError``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from featurelab.errors import ConfigError

MAXFEV = 5000
MAX_RESTARTS = 4


def _sigmoid(t, c1, c2, c3, c4):
    return c1 / (1.0 + np.exp(c2 * t + c3)) + c4


def _exponential(t, c1, c2, c3):
    return c1 * np.exp(-c2 * t) + c3


def _power(t, c1, c2, c3):
    return c1 * (t + 1.0) ** c2 + c3


def _log_power(t, c1, c2, c3):
    return c1 * np.log(t + 1.0) ** c2 + c3


def _linear(t, c1, c2):
    return c1 * t + c2


def _ranked(x, y, column: Callable, grid: Iterable[tuple]) -> list[tuple[float, ...]]:
    """Starting points for models ``a * column(x, *nl) + b``, best first.

    For fixed nonlinear parameters the amplitude and offset are a linear least-squares
    problem, so a coarse grid over the nonlinear ones gives starting points that adapt
    to the scale of y for free; the grid itself is built from the span of x.
    """
    scored = []
    for nl in grid:
        with np.errstate(all="ignore"):
            col = column(x, *nl)
        if not np.all(np.isfinite(col)) or np.ptp(col) == 0:
            continue
        design = np.column_stack([col, np.ones_like(col)])
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        rss = float(np.sum((design @ (a, b) - y) ** 2))
        if math.isfinite(rss):
            scored.append((rss, (float(a), *map(float, nl), float(b))))
    scored.sort(key=lambda item: item[0])
    return [p for _, p in scored]


def _span(x) -> float:
    span = float(np.ptp(x))
    return span if span > 0 else 1.0


def _sigmoid_guesses(x, y):
    span, quantiles = _span(x), np.quantile(x, [0.1, 0.3, 0.5, 0.7, 0.9])
    grid = [(-1.0 / w, m / w) for w in span * np.array([0.02, 0.05, 0.1, 0.2, 0.5])
            for m in quantiles]
    return _ranked(x, y, lambda t, c2, c3: 1.0 / (1.0 + np.exp(c2 * t + c3)), grid)


def _exponential_guesses(x, y):
    rates = np.array([-3.0, -1.0, -0.3, 0.3, 1.0, 3.0, 10.0, 30.0]) / _span(x)
    return _ranked(x, y, lambda t, c2: np.exp(-c2 * t), [(r,) for r in rates])


def _power_guesses(x, y):
    exps = [-3.0, -2.0, -1.0, -0.5, -0.25, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    return _ranked(x, y, lambda t, c2: (t + 1.0) ** c2, [(e,) for e in exps])


def _log_power_guesses(x, y):
    exps = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    return _ranked(x, y, lambda t, c2: np.log(t + 1.0) ** c2, [(e,) for e in exps])


def _linear_guesses(x, y):
    slope, intercept = np.polyfit(x, y, 1)
    return [(float(slope), float(intercept))]


def _sigmoid_canonical(p: tuple[float, ...]) -> tuple[float, ...]:
    # The sigmoid is symmetric under (c1, c2, c3, c4) -> (-c1, -c2, -c3, c1 + c4);
    # the published table uses c2 < 0, so coefficients are reported in that branch.
    c1, c2, c3, c4 = p
    return (-c1, -c2, -c3, c1 + c4) if c2 > 0 else p


@dataclass(frozen=True)
class FitFamily:
    """One fittable curve family: f(t) with coefficients c1..ck in equation order."""

    name: str
    label: str
    equation: str
    latex: str
    func: Callable[..., Any]
    guesses: Callable[[np.ndarray, np.ndarray], list[tuple[float, ...]]]
    n_params: int
    bounds: tuple[Sequence[float], Sequence[float]] | None = None
    canonical: Callable[[tuple[float, ...]], tuple[float, ...]] | None = None


FAMILIES: dict[str, FitFamily] = {f.name: f for f in (
    FitFamily("sigmoid", "Sigmoid", "f(t) = c1/(1+e^(c2 t + c3)) + c4",
              r"f(t) = \frac{c_1}{1+e^{c_2 t + c_3}} + c_4",
              _sigmoid, _sigmoid_guesses, 4, canonical=_sigmoid_canonical),
    FitFamily("exponential", "Exponential", "f(t) = c1 e^(-c2 t) + c3",
              r"f(t) = c_1 \cdot e^{-c_2 t} + c_3", _exponential, _exponential_guesses, 3),
    FitFamily("power", "Power", "f(t) = c1 (t+1)^c2 + c3",
              r"f(t) = c_1 \cdot (t+1)^{c_2} + c_3", _power, _power_guesses, 3),
    # c2 > 0 keeps log(1)**c2 = 0 finite at t = 0 instead of 0**negative = inf.
    FitFamily("log_power", "Log-power", "f(t) = c1 log(t+1)^c2 + c3",
              r"f(t) = c_1 \cdot \log(t+1)^{c_2} + c_3", _log_power, _log_power_guesses, 3,
              bounds=((-np.inf, 1e-8, -np.inf), (np.inf, np.inf, np.inf))),
    FitFamily("linear", "Linear", "f(t) = c1 t + c2", r"f(t) = c_1 t + c_2",
              _linear, _linear_guesses, 2),
)}
DEFAULT_FAMILIES = ("sigmoid", "exponential", "power", "log_power")


def _fmt_coef(c: float) -> str:
    if not math.isfinite(c):
        return "nan"
    mantissa, exponent = f"{c:.2e}".split("e")
    return f"{mantissa}e{int(exponent):+d}"


def _json_float(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _from_json(v: float | None) -> float:
    return float("nan") if v is None else float(v)


@dataclass(frozen=True)
class FitRow:
    """One family's fit; ``ok=False`` rows carry NaN numbers and a ``reason``."""

    family: str
    label: str
    equation: str
    latex: str
    ok: bool
    r2: float
    rmse: float
    aic: float
    coefficients: tuple[float, ...]
    stderr: tuple[float, ...]
    n_points: int
    reason: str | None = None

    @property
    def name(self) -> str:
        """The family's name ("sigmoid"), as the public API calls it."""
        return self.family

    def predict(self, x) -> np.ndarray:
        """The fitted curve at x (NaN everywhere for a failed row)."""
        fam = _family(self.family)
        with np.errstate(all="ignore"):
            return np.asarray(fam.func(np.asarray(x, dtype=float), *self.coefficients))

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "label": self.label, "equation": self.equation,
                "latex": self.latex, "ok": self.ok, "r2": _json_float(self.r2),
                "rmse": _json_float(self.rmse), "aic": _json_float(self.aic),
                "coefficients": [_json_float(c) for c in self.coefficients],
                "stderr": [_json_float(s) for s in self.stderr],
                "n_points": self.n_points, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitRow:
        return cls(d["family"], d["label"], d["equation"], d["latex"], bool(d["ok"]),
                   _from_json(d["r2"]), _from_json(d["rmse"]), _from_json(d["aic"]),
                   tuple(_from_json(c) for c in d["coefficients"]),
                   tuple(_from_json(s) for s in d["stderr"]), int(d["n_points"]),
                   d.get("reason"))


@dataclass(frozen=True)
class FitTable:
    """Rows ranked by R^2 (failed rows last) and the (lo, hi) range of x that was fitted."""

    rows: tuple[FitRow, ...]
    x_range: tuple[float, float] | None = None
    # "log_y": fitted by least squares on log10 y (R^2 and RMSE of log10 y)
    space: str = "linear"

    @property
    def best(self) -> FitRow | None:
        return next((r for r in self.rows if r.ok), None)

    def row(self, name: str) -> FitRow:
        for r in self.rows:
            if r.family == name:
                return r
        raise ConfigError("name", name, ", ".join(r.family for r in self.rows))

    def to_dict(self) -> dict[str, Any]:
        xr = None if self.x_range is None else [float(v) for v in self.x_range]
        out: dict[str, Any] = {"x_range": xr, "rows": [r.to_dict() for r in self.rows]}
        if self.space != "linear":  # left out at the default: logged tables stay as they were
            out["space"] = self.space
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitTable:
        xr = d.get("x_range")
        return cls(tuple(FitRow.from_dict(r) for r in d["rows"]),
                   None if xr is None else (float(xr[0]), float(xr[1])),
                   d.get("space", "linear"))

    def to_markdown(self) -> str:
        lines = ["| Type | R^2 | Equation | Coefficients |", "|---|---|---|---|"]
        for r in self.rows:
            r2 = f"{r.r2:.4f}" if r.ok else "failed"
            coefs = ", ".join(map(_fmt_coef, r.coefficients)) if r.ok else str(r.reason)
            lines.append(f"| {r.label} | {r2} | ${r.latex}$ | {coefs.replace('|', '/')} |")
        return "\n".join(lines)

    def __str__(self) -> str:
        head = ("Type", "R^2", "RMSE", "AIC", "n", "Equation", "Coefficients")
        body = [(r.label, f"{r.r2:.4f}", f"{r.rmse:.3g}", f"{r.aic:.1f}", str(r.n_points),
                 r.equation, ", ".join(map(_fmt_coef, r.coefficients)))
                if r.ok else (r.label, "failed", "-", "-", str(r.n_points), r.equation,
                              str(r.reason)) for r in self.rows]
        widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        out += [fmt.format(*line) for line in body]
        if self.x_range is not None:
            out.append(f"x range: {self.x_range[0]:g} to {self.x_range[1]:g}")
        if self.space == "log_y":
            out.append("fitted on log10 y: R^2 and RMSE are of log10 y")
        return "\n".join(line.rstrip() for line in out)


def _family(name: str) -> FitFamily:
    if name not in FAMILIES:
        raise ConfigError("families", name, ", ".join(FAMILIES))
    return FAMILIES[name]


def _failed(fam: FitFamily, n: int, reason: str) -> FitRow:
    nans = (float("nan"),) * fam.n_params
    return FitRow(fam.name, fam.label, fam.equation, fam.latex, False, float("nan"),
                  float("nan"), float("nan"), nans, nans, n, reason)


def _guarded(fam: FitFamily, big: float) -> Callable[..., np.ndarray]:
    # An overflowing trial step must look merely bad to the optimiser, not poison
    # the whole run with inf/NaN residuals.
    def model(t, *p):
        return np.nan_to_num(fam.func(t, *p), nan=big, posinf=big, neginf=-big)
    return model


def _in_log10(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """log10 of a model (a curve at or below 0 counts as the tiniest float, a bad fit)."""
    tiny = np.finfo(float).tiny

    def logged(t, *p):
        return np.log10(np.maximum(fn(t, *p), tiny))
    return logged


def _fit_family(fam: FitFamily, x: np.ndarray, y: np.ndarray, bad: str | None,
                maxfev: int = MAXFEV, log_y: bool = False) -> FitRow:
    n, k = len(y), fam.n_params
    if bad:
        return _failed(fam, n, bad)
    if log_y and np.any(y <= 0):
        return _failed(fam, n, f"log y needs every value above 0; {int(np.sum(y <= 0))} "
                               "are not")
    if n < k + 1:
        return _failed(fam, n, f"too short: {n} point(s) for {k} coefficients "
                               f"(need at least {k + 1})")
    if np.ptp(y) == 0:
        return _failed(fam, n, "y is flat (zero variance): there is no curve to fit")
    starts = fam.guesses(x, y)[:MAX_RESTARTS]
    if not starts:
        return _failed(fam, n, "no usable starting point: "
                       "the family is non-finite or constant on this x")
    model = _guarded(fam, 1e12 * (1.0 + float(np.max(np.abs(y)))))
    curve: Callable[..., np.ndarray] = fam.func
    target = y
    if log_y:
        # Least squares on log10 y: on a loss that falls over decades every decade counts
        # alike (in linear space the first few steps decide everything). R^2 and RMSE are
        # then of log10 y too.
        model, curve, target = _in_log10(model), _in_log10(fam.func), np.log10(y)
    kw: dict[str, Any] = {"maxfev": maxfev}
    if fam.bounds is not None:
        kw["bounds"] = fam.bounds
    best, last_error, overflowed = None, "no start converged", 0
    for p0 in starts:
        try:
            popt, pcov = curve_fit(model, x, target, p0=p0, **kw)
            if fam.canonical is not None and fam.canonical(tuple(popt)) != tuple(popt):
                # Refit from the mirrored point so pcov belongs to the reported branch.
                popt, pcov = curve_fit(model, x, target, p0=fam.canonical(tuple(popt)), **kw)
        except (RuntimeError, ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            text = str(exc).strip().removeprefix("Optimal parameters not found: ")
            last_error = text.splitlines()[0] if text else type(exc).__name__
            continue
        rss = float(np.sum((curve(x, *popt) - target) ** 2))
        if not math.isfinite(rss):
            overflowed += 1
        elif best is None or rss < best[0]:
            best = (rss, popt, pcov)
    if best is None and overflowed:
        return _failed(fam, n, "the fit overflowed: the fitted curve is not finite on x")
    if best is None:
        return _failed(fam, n, f"curve_fit did not converge from {len(starts)} starting "
                               f"point(s): {last_error}")
    rss, popt, pcov = best
    tss = float(np.sum((target - target.mean()) ** 2))
    if not tss > 0:  # a spread that underflows to zero: as flat as a constant
        return _failed(fam, n, "y is flat (its variance underflows to zero): there is no "
                               "curve to fit")
    # A noise-free series can give RSS == 0; clamping keeps AIC finite and JSON-safe.
    aic = n * math.log(max(rss, np.finfo(float).tiny) / n) + 2 * k
    with np.errstate(invalid="ignore"):
        diag = np.diag(np.asarray(pcov, dtype=float))
        err = np.where(np.isfinite(diag) & (diag >= 0), np.sqrt(np.abs(diag)), np.nan)
    return FitRow(fam.name, fam.label, fam.equation, fam.latex, True, 1.0 - rss / tss,
                  math.sqrt(rss / n), aic, tuple(map(float, popt)), tuple(map(float, err)),
                  n, None)


def _as_1d(name: str, values) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, type(values).__name__, "a 1-D array of numbers",
                          str(exc)) from None
    if arr.ndim != 1:
        raise ConfigError(name, f"shape {arr.shape}", "a 1-D array of numbers")
    return arr


def fit_curves(x, y, x_range: tuple[float, float] | None = None,
               families: Iterable[str] | None = None, *, maxfev: int = MAXFEV,
               log_y: bool = False) -> FitTable:
    """Fit each family to y(x) and return the rows ranked by R^2 (failed rows last).

    ``x_range=(lo, hi)`` keeps points with lo <= x <= hi. ``families`` defaults to the
    four reference families; "linear" is opt-in. R^2 does not penalise coefficients:
    the sigmoid holds the exponential as a limit and power/exponential/sigmoid hold the
    line, so on such data a larger family can tie or edge ahead by noise (see ``aic``).
    ``log_y=True`` fits log10 y (every value must be above 0), as a loss on a log axis is
    read. ``maxfev`` caps the model evaluations of each start (a family that does not fit the
    data can otherwise spend seconds finding so).
    """
    xa, ya = _as_1d("x", x), _as_1d("y", y)
    if len(xa) != len(ya):
        raise ConfigError("y", f"{len(ya)} values", f"exactly {len(xa)} values (one per x)",
                          f"x has {len(xa)} points, y has {len(ya)}")
    names = (DEFAULT_FAMILIES if families is None
             else (families,) if isinstance(families, str) else tuple(families))
    if not names:
        raise ConfigError("families", [], ", ".join(FAMILIES), "name at least one family")
    fams = [_family(nm) for nm in dict.fromkeys(names)]
    if x_range is None:
        finite_x = xa[np.isfinite(xa)]
        used = (float(finite_x.min()), float(finite_x.max())) if finite_x.size else None
        keep = np.ones(len(xa), dtype=bool)
    else:
        try:
            lo, hi = (float(v) for v in x_range)
        except (TypeError, ValueError):
            raise ConfigError("x_range", x_range, "a pair (lo, hi) of numbers") from None
        if not lo <= hi:
            raise ConfigError("x_range", x_range, "a pair (lo, hi) with lo <= hi")
        used, keep = (lo, hi), (xa >= lo) & (xa <= hi)
    xs, ys = xa[keep], ya[keep]
    bad_x, bad_y = (int(np.count_nonzero(~np.isfinite(a))) for a in (xs, ys))
    bad = "; ".join(f"{name} has {count} non-finite value(s) (NaN/inf) in the range"
                    for name, count in (("x", bad_x), ("y", bad_y)) if count) or None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = [_fit_family(f, xs, ys, bad, maxfev, log_y) for f in fams]
    rows.sort(key=lambda r: (not r.ok, -r.r2 if r.ok else 0.0))
    return FitTable(tuple(rows), used, "log_y" if log_y else "linear")
