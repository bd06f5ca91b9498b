"""Replay: rebuild a fresh lab from a log, retrain, and report what differs.

Each action says how it reruns (`Action.rerun`: a run waits for its training, a
cancelled run stops where it was) and how its results compare (`Action.compare`:
series bitwise or within a tolerance, fit tables; see actions/compare.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurelab import signatures
from featurelab.actions import ACTIONS, ACTORS, Action
from featurelab.actions.experiments import CancelRun
from featurelab.errors import FeaturelabError
from featurelab.lab import MEMORY, Lab
from featurelab.log import ActionLog, LogEntry


class LogError(FeaturelabError):
    """A log that cannot be replayed: not JSON lines, an unknown action, invalid params, a
    result no featurelab writes, an action that fails. Names the file and line."""


@dataclass
class Difference:
    action: int  # index in the log
    what: str  # "exp_1 nonlinear_rate@layers.1.pre", "fit_0 sigmoid"
    detail: str
    where: str = ""  # "session.jsonl, line 5"; "" for "action <index>"

    def __str__(self) -> str:
        return f"{self.where or f'action {self.action}'}: {self.what}: {self.detail}"


@dataclass
class ReplayReport:
    lab: Lab
    compared: list[str] = field(default_factory=list)  # what matched, and how
    differences: list[Difference] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    untrusted: list[str] = field(default_factory=list)  # code applied disabled
    # Actions that compute results (runs, fits) whose entry records none to compare.
    unverified: list[str] = field(default_factory=list)
    entries: int = 0  # in the log, skipped ones included
    verify: bool = True

    @property
    def ok(self) -> bool:
        """Nothing differs (which an empty log satisfies too: see `verified`)."""
        return not self.differences

    @property
    def verified(self) -> bool:
        """Results were compared, all match, and none were left out: the only outcome
        that says the log reproduces (`featurelab replay` exits 0 for it)."""
        return (self.verify and bool(self.compared) and not self.differences
                and not self.unverified and not self.untrusted)

    def __str__(self) -> str:
        if not self.entries:
            return "the log has no actions: nothing was replayed, nothing is verified"
        lines = [f"replayed {len(self.lab.log)} actions: "
                 f"{len(self.compared)} results match, {len(self.differences)} differ"]
        if self.verify and not self.compared and not self.differences:
            lines.append("  nothing verified: the log records no results to compare (runs' "
                         "series, fit tables); was it stripped of them?")
        elif not self.verify:
            lines.append("  not verified: replayed without comparing (--no-verify)")
        lines += [f"  not verified: {u}" for u in self.unverified]
        lines += [f"  differs: {d}" for d in self.differences]
        lines += [f"  skipped: {s}" for s in self.skipped]
        lines += [f"  not run (not signed by you; --trust runs it): {u}"
                  for u in self.untrusted]
        return "\n".join(lines)


# The fields of a log entry and the JSON types each may hold (bool is no int here).
_REQUIRED: dict[str, tuple[type, ...]] = {
    "id": (str,), "type": (str,), "version": (int,), "params": (dict,), "actor": (str,),
    "time": (int, float)}
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "duration": (int, float, type(None)), "result": (dict, type(None)), "seq": (int,),
    "cell": (str, type(None)), "signature": (str, type(None))}


_JSON_TYPES = {dict: "an object", str: "a string", int: "an integer", float: "a number",
               type(None): "null"}


def _entry(data: Any, where: str) -> LogEntry:
    """One line of a log as an entry whose action this featurelab reads, or LogError."""
    if not isinstance(data, dict):
        raise LogError(f"{where}: not a log entry: a JSON object is expected, got "
                       f"{json.dumps(data)[:60]}")
    for key, kinds in [*_REQUIRED.items(), *_OPTIONAL.items()]:
        if key not in data:
            if key in _REQUIRED:
                raise LogError(f"{where}: not a log entry: no {key!r}; an entry has "
                               + ", ".join(_REQUIRED))
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            allowed = " or ".join(_JSON_TYPES[k] for k in kinds
                                  if not (k is int and float in kinds))
            raise LogError(f"{where}: {key!r} is {json.dumps(value)[:60]}; allowed: {allowed}")
    if data["actor"] not in ACTORS:
        raise LogError(f"{where}: actor {data['actor']!r}; allowed: {', '.join(ACTORS)}")
    entry = LogEntry.from_dict(data)
    try:
        entry.action  # noqa: B018  # parsed (and cached) here: an unknown type, bad params
    except FeaturelabError as exc:
        raise LogError(f"{where}: {exc}") from None
    return entry


def _read_jsonl(path: str | Path) -> tuple[list[LogEntry], list[str]]:
    """The entries of a JSONL log and where each is ("<path>, line <n>")."""
    try:  # utf-8-sig: a byte order mark an editor put first is no error
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LogError(f"{path}: not a log: not UTF-8 text ({exc.reason} at byte "
                       f"{exc.start})") from None
    except OSError as exc:
        raise LogError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    entries, places = [], []
    for number, line in enumerate(text.split("\n"), 1):  # JSON escapes any other newline
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise LogError(f"{where}: not a log entry (not JSON: {exc})") from None
        entries.append(_entry(data, where))
        places.append(where)
    return entries, places


def _entries(log: str | Path | ActionLog | Lab | Iterable[LogEntry]
             ) -> tuple[list[LogEntry], list[str]]:
    """The log's entries, and where each is: its file and line, or its index."""
    if isinstance(log, (str, Path)):
        return _read_jsonl(log)
    entries = list(log.log) if isinstance(log, Lab) else list(log)
    places = [f"action {index}" for index in range(len(entries))]
    for entry, where in zip(entries, places):
        try:
            entry.action  # noqa: B018
        except FeaturelabError as exc:
            raise LogError(f"{where}: {exc}") from None
    return entries, places


def _stops(entries: list[LogEntry], places: list[str]) -> dict[str, int]:
    """CancelRun.stops, naming the entry whose result lacks what a cancel records."""
    stops: dict[str, int] = {}
    for entry, where in zip(entries, places):
        try:
            stops.update(CancelRun.stops([entry]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise LogError(f"{where}: a cancel whose result {json.dumps(entry.result)[:80]} "
                           f"lacks what a cancel records ({exc})") from None
    return stops


def _computes(action: Action) -> bool:
    """Whether an action has results replay compares (a run, a fit)."""
    return type(action).compare is not Action.compare


def _needs_untrusted(what: str, lab: Lab) -> bool:
    """Whether a compared result ("exp_1 nonlinear_rate@layers.1.pre") is a statistic
    whose code, or the code of one it is defined on, was not trusted."""
    name = what.partition(" ")[2].partition("@")[0]
    registry = lab.statistics
    return name in registry and any(not registry[link].trusted
                                    for link in registry.chain(name))


def replay(log: str | Path | ActionLog | Lab | Iterable[LogEntry], verify: bool = True,
           root: str | Path = MEMORY, name: str = "replay",
           progress: Callable[[int, int, LogEntry], None] | None = None,
           trust: bool = False) -> ReplayReport:
    """A fresh lab rebuilt from a log (a JSONL path, an ActionLog or a Lab); with verify,
    every run's series and every fit is compared with what the log recorded.

    Code in the log (a DIY statistic) runs only if this user's featurelab signed it, or
    with trust=True; otherwise it is defined disabled and what needs it is not computed
    (`ReplayReport.untrusted`)."""
    entries, places = _entries(log)  # LogError for a log that cannot be read
    stops = _stops(entries, places)  # a cancelled run replays stopped where it was
    lab = Lab(name, root=root)
    report = ReplayReport(lab, entries=len(entries), verify=verify)
    for index, entry in enumerate(entries):
        if progress is not None:
            progress(index, len(entries), entry)
        where = places[index]
        kind = ACTIONS.get(entry.type)
        if kind is not None and kind.not_replayed is not None:
            report.skipped.append(f"{where}: {entry.type} is not replayed "
                                  f"({kind.not_replayed})")
            continue
        try:
            action = entry.action.rerun(entry.result, stops)
            trusted = None
            if action.runs_code:
                trusted = trust or signatures.verify(entry.action_dict(), entry.signature)
                if not trusted:
                    report.untrusted.append(f"action {index}: {entry.describe()}")
            made, _ = lab.apply_logged(action, actor=entry.actor, trusted=trusted)
            if made is None:  # a read (never logged by a Lab; a hand-written log's)
                continue
            if verify and entry.result:  # each action knows what its results are
                same, differ = action.compare(entry.result, made.result or {}, lab.state)
                report.compared += same
                for what, how in differ:
                    if _needs_untrusted(what, lab):  # its code did not run: not a difference
                        report.unverified.append(f"{where}: {what}: computed by code not "
                                                 "signed by you (--trust runs it)")
                    else:
                        report.differences.append(Difference(index, what, how, where))
                if not same and not differ and entry.result.get("status") == "running":
                    report.unverified.append(f"{where}: {entry.type} was still running when "
                                             "the log was written: nothing to compare")
            elif verify and _computes(action):
                report.unverified.append(f"{where}: {entry.type} records no result to "
                                         "compare")
        except FeaturelabError as exc:  # the action fails here as it did not when logged
            raise LogError(f"{where} ({entry.type}): {exc}") from exc
        except Exception as exc:  # e.g. a recorded result in a shape no featurelab writes
            raise LogError(f"{where} ({entry.type}): cannot be replayed "
                           f"({type(exc).__name__}: {exc}); was its recorded result "
                           "edited?") from exc
    if progress is not None:
        progress(len(entries), len(entries), entries[-1] if entries else None)  # type: ignore
    return report
