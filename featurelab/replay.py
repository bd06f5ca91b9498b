"""Replay: rebuild a fresh lab from a log, retrain, and report what differs.

Series are compared by digest when the run was computed the same way (torch
version, threads, step and optimizer implementation): then they must be
bitwise equal. Otherwise the sampled values kept in the log are compared
within REL_TOL, and the report says which way it compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurelab.actions import ACTIONS
from featurelab.actions.experiments import CancelRun
from featurelab.fit import FitTable
from featurelab.lab import MEMORY, Lab
from featurelab.log import ActionLog, LogEntry
from featurelab.runs import fingerprint

REL_TOL = 1e-3  # between different builds or thread counts; same build: exact
FIT_TOL = 1e-6  # fits of identical data agree to the optimizer's tolerance
ENVIRONMENT = ("torch", "threads", "step_impl", "optimizer_impl")


@dataclass
class Difference:
    action: int  # index in the log
    what: str  # "exp_1 nonlinear_rate@layers.1.pre", "fit_0 sigmoid"
    detail: str

    def __str__(self) -> str:
        return f"action {self.action}: {self.what}: {self.detail}"


@dataclass
class ReplayReport:
    lab: Lab
    compared: list[str] = field(default_factory=list)  # what matched, and how
    differences: list[Difference] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def __str__(self) -> str:
        lines = [f"replayed {len(self.lab.log)} actions: "
                 f"{len(self.compared)} results match, {len(self.differences)} differ"]
        lines += [f"  differs: {d}" for d in self.differences]
        lines += [f"  skipped: {s}" for s in self.skipped]
        return "\n".join(lines)


def _entries(log: str | Path | ActionLog | Lab | Iterable[LogEntry]) -> list[LogEntry]:
    if isinstance(log, (str, Path)):
        return list(ActionLog.from_jsonl(log))
    if isinstance(log, Lab):
        return list(log.log)
    return list(log)


def replay(log: str | Path | ActionLog | Lab | Iterable[LogEntry], verify: bool = True,
           root: str | Path = MEMORY, name: str = "replay",
           progress: Callable[[int, int, LogEntry], None] | None = None) -> ReplayReport:
    """A fresh lab rebuilt from a log (a JSONL path, an ActionLog or a Lab); with verify,
    every run's series and every fit is compared with what the log recorded."""
    entries = _entries(log)
    stops = CancelRun.stops(entries)  # a cancelled run replays stopped where it was
    lab = Lab(name, root=root)
    report = ReplayReport(lab)
    for index, entry in enumerate(entries):
        if progress is not None:
            progress(index, len(entries), entry)
        kind = ACTIONS.get(entry.type)
        if kind is not None and kind.not_replayed is not None:
            report.skipped.append(f"action {index}: {entry.type} is not replayed "
                                  f"({kind.not_replayed})")
            continue
        params = dict(entry.params)
        if entry.type == "run":
            params["background"] = False
            at = stops.get((entry.result or {}).get("run", ""))
            if at is not None:
                params["stop_at"] = at
        lab.apply({"type": entry.type, "version": entry.version, "params": params},
                  actor=entry.actor)
        if verify and entry.result:
            replayed = lab.log[len(lab.log) - 1].result or {}
            _compare(index, entry, replayed, report)
    if progress is not None:
        progress(len(entries), len(entries), entries[-1] if entries else None)  # type: ignore
    return report


def _compare(index: int, entry: LogEntry, replayed: dict[str, Any], report: ReplayReport
             ) -> None:
    if entry.type == "run" and "series" in entry.result:
        _compare_run(index, entry, replayed, report)
    elif entry.type == "fit" and "table" in entry.result:
        _compare_fit(index, entry, replayed, report)


def _compare_run(index: int, entry: LogEntry, replayed: dict[str, Any], report: ReplayReport
                 ) -> None:
    experiment = entry.params["experiment"]
    info_then, info_now = entry.result.get("info", {}), replayed.get("info", {})
    exact = all(info_then.get(k) == info_now.get(k) for k in ENVIRONMENT)
    changed = ", ".join(f"{k} {info_then.get(k)} -> {info_now.get(k)}" for k in ENVIRONMENT
                        if info_then.get(k) != info_now.get(k))
    how = "bitwise" if exact else f"within rel. tol. {REL_TOL:g} ({changed})"
    run = report.lab.results(experiment).result()
    for key, then in entry.result["series"].items():
        what = f"{experiment} {key}"
        if key not in run.arrays:
            report.differences.append(Difference(index, what, "not recorded in the replay"))
            continue
        now = fingerprint(run.arrays[key][: then["steps"]])
        if exact and now["digest"] != then["digest"]:
            report.differences.append(Difference(index, what, "values differ (digest)"))
        elif not exact and not _samples_close(then["samples"], now["samples"]):
            report.differences.append(Difference(index, what, f"sampled values differ: "
                                                 f"{then['samples']} vs {now['samples']}"))
        else:
            report.compared.append(f"{what}: {how}")


def _samples_close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for step, x in a.items():
        y = b.get(step)
        if x is None or y is None:
            if x is not y:
                return False
        elif not math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-9):
            return False
    return True


def _compare_fit(index: int, entry: LogEntry, replayed: dict[str, Any], report: ReplayReport
                 ) -> None:
    then, now = FitTable.from_dict(entry.result["table"]), FitTable.from_dict(replayed["table"])
    what = f"{entry.result.get('fit', 'fit')} of {entry.params['experiment']} " \
           f"{entry.params['metric']}"
    order_then = [r.family for r in then.rows]
    order_now = [r.family for r in now.rows]
    if order_then != order_now:
        report.differences.append(Difference(index, what, f"ranking {order_then} -> {order_now}"))
        return
    for a, b in zip(then.rows, now.rows):
        values_a = [a.r2, *a.coefficients]
        values_b = [b.r2, *b.coefficients]
        if a.ok != b.ok or not all(
                (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=FIT_TOL,
                                                                  abs_tol=1e-12)
                for x, y in zip(values_a, values_b)):
            report.differences.append(Difference(index, f"{what} {a.family}",
                                                 f"R^2/coefficients {values_a} -> {values_b}"))
            return
    report.compared.append(f"{what}: same table")
