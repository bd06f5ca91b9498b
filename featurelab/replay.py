"""Replay: rebuild a fresh lab from a log, retrain, and report what differs.

Each action says how it reruns (`Action.rerun`: a run waits for its training, a
cancelled run stops where it was) and how its results compare (`Action.compare`:
series bitwise or within a tolerance, fit tables; see actions/compare.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from featurelab.actions import ACTIONS
from featurelab.actions.experiments import CancelRun
from featurelab.lab import MEMORY, Lab
from featurelab.log import ActionLog, LogEntry


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
        action = entry.action.rerun(entry.result, stops)
        made, _ = lab.apply_logged(action, actor=entry.actor)
        if verify and entry.result:  # each action knows what its results are
            same, differ = action.compare(entry.result, made.result or {}, lab.state)
            report.compared += same
            report.differences += [Difference(index, what, how) for what, how in differ]
    if progress is not None:
        progress(len(entries), len(entries), entries[-1] if entries else None)  # type: ignore
    return report
