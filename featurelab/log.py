"""The action log: every event with its actor, time, duration and result summary."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from featurelab import signatures
from featurelab.actions import Action, action_from_dict
from featurelab.errors import FeaturelabError


@dataclass
class LogEntry:
    id: str  # unique across processes; cells use it to avoid duplicates
    type: str
    version: int
    params: dict[str, Any]
    actor: str  # human | code | agent
    time: float  # unix seconds
    duration: float | None = None  # seconds; a run's lasts until it ends
    result: dict[str, Any] | None = None
    seq: int = 0  # position in the lab's store
    cell: str | None = None  # the notebook cell that executed it (actor "code" in a kernel)
    signature: str | None = None  # an action that runs code: who may run it (signatures.py)

    def action_dict(self) -> dict[str, Any]:
        return {"type": self.type, "version": self.version, "params": self.params}

    @functools.cached_property
    def action(self) -> Action:
        """The logged action, parsed once (it is immutable); ActionError if this featurelab
        cannot read it."""
        return action_from_dict(self.action_dict())

    def describe(self) -> str:
        return self.action.describe(self.result)

    def trusted(self) -> bool:
        """Whether its code may run: it carries none, or this user's featurelab signed it."""
        return not self.action.runs_code or signatures.verify(self.action_dict(),
                                                              self.signature)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogEntry:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ActionLog:
    entries: list[LogEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self.entries.append(entry)

    def __iter__(self) -> Iterator[LogEntry]:
        with self._lock:
            return iter(list(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> LogEntry:
        return self.entries[index]

    def __repr__(self) -> str:
        lines = [f"{i:3d} [{e.actor}] {e.describe()}" for i, e in enumerate(self)]
        return "\n".join(lines) or "(empty log)"

    def sentences(self) -> list[str]:
        return [e.describe() for e in self]

    def to_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for entry in self:
                f.write(json.dumps(entry.to_dict(), allow_nan=False) + "\n")
        return path

    @classmethod
    def from_jsonl(cls, path: str | Path) -> ActionLog:
        log = cls()
        with Path(path).open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    log.append(LogEntry.from_dict(json.loads(line)))
                except (json.JSONDecodeError, TypeError) as exc:
                    raise FeaturelabError(
                        f"{path}, line {number}: not a log entry ({exc})") from None
        return log


def untrusted_code(code: str) -> str:
    """The code of an action from elsewhere as comments: shown to read, never run by a
    cell, a notebook or a script made from the log (that would trust it unread)."""
    lines = "\n".join(f"# {line}" for line in code.splitlines())
    return ("# Not run: code from elsewhere, not signed by you. Read it, then trust it "
            "(lab.trust(), featurelab trust PATH).\n" + lines)
