"""How a rerun's results compare with the logged ones (replay asks each action).

Series are compared by digest when the run was computed the same way (torch version,
threads and where they changed, step and optimizer implementation): then they must be
bitwise equal.
Otherwise the sampled values kept in the log are compared within REL_TOL, and the
comparison says which way it went.
"""

from __future__ import annotations

import math
from typing import Any

from featurelab.engine.fit import FitTable
from featurelab.runs import fingerprint

REL_TOL = 1e-3  # between different builds or thread counts; same build: exact
FIT_TOL = 1e-6  # fits of identical data agree to the optimizer's tolerance
ENVIRONMENT = ("torch", "threads", "step_impl", "optimizer_impl")

# (what matched and how, [(what differs, how)])
Comparison = tuple[list[str], list[tuple[str, str]]]


def compare_series(experiment: str, recorded: dict[str, Any], replayed: dict[str, Any],
                   arrays: dict[str, Any]) -> Comparison:
    """A run's logged fingerprints against the arrays its rerun recorded."""
    info_then, info_now = recorded.get("info", {}), replayed.get("info", {})
    # a log from before runs kept their thread plan compares on "threads" alone
    keys = ENVIRONMENT + (("thread_plan",) if "thread_plan" in info_then else ())
    exact = all(info_then.get(k) == info_now.get(k) for k in keys)
    changed = ", ".join(f"{k} {info_then.get(k)} -> {info_now.get(k)}" for k in keys
                        if info_then.get(k) != info_now.get(k))
    how = "bitwise" if exact else f"within rel. tol. {REL_TOL:g} ({changed})"
    same: list[str] = []
    differ: list[tuple[str, str]] = []
    for key, then in recorded["series"].items():
        what = f"{experiment} {key}"
        if key not in arrays:
            differ.append((what, "not recorded in the replay"))
            continue
        now = fingerprint(arrays[key][: then["steps"]])
        if exact and now["digest"] != then["digest"]:
            differ.append((what, "values differ (digest)"))
        elif not exact and not samples_close(then["samples"], now["samples"]):
            differ.append((what, f"sampled values differ: {then['samples']} vs "
                                 f"{now['samples']}"))
        else:
            same.append(f"{what}: {how}")
    return same, differ


def samples_close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for step, x in a.items():
        y = b.get(step)
        if x is None or y is None:
            if x is not y:
                return False
        elif not math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-9):
            return False
    return True


def compare_fits(what: str, recorded: dict[str, Any], replayed: dict[str, Any]
                 ) -> Comparison:
    then, now = FitTable.from_dict(recorded["table"]), FitTable.from_dict(replayed["table"])
    order_then = [r.family for r in then.rows]
    order_now = [r.family for r in now.rows]
    if order_then != order_now:
        return [], [(what, f"ranking {order_then} -> {order_now}")]
    for a, b in zip(then.rows, now.rows):
        values_a = [a.r2, *a.coefficients]
        values_b = [b.r2, *b.coefficients]
        if a.ok != b.ok or not all(
                (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=FIT_TOL,
                                                                  abs_tol=1e-12)
                for x, y in zip(values_a, values_b)):
            return [], [(f"{what} {a.family}", f"R^2/coefficients {values_a} -> {values_b}")]
    return [f"{what}: same table"], []
