"""The errors featurelab raises on bad input.

Every message names the thing that was wrong, the value given and what would be
accepted, so a researcher (or an agent reading the message) can fix it in one go.
"""

from __future__ import annotations

import errno
from typing import Any

# errno values that mean "no room to write": the disk, the user's quota, or the file-size
# limit (ulimit -f). A run meeting one of them has filled its disk, not found a bug.
NO_ROOM = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG")
                    if hasattr(errno, name))
# SQLite's codes for the same: SQLITE_FULL on ENOSPC; on EDQUOT or EFBIG it only knows that
# a write failed (SQLITE_IOERR_WRITE) and keeps the errno to itself.
SQLITE_FULL = 13
SQLITE_IOERR_WRITE = 778


class FeaturelabError(Exception):
    """Base class: everything featurelab raises on purpose derives from it."""


class ConfigError(FeaturelabError, ValueError):
    """A config field holds a value outside what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str, hint: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        # what else is wrong in the same request, each on its own (a form shows them all)
        self.others: list[ConfigError] = []
        message = f"{field}: got {value!r}; allowed: {allowed}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class StatisticError(FeaturelabError):
    """A statistic raised, returned the wrong shape, or returned NaN/inf."""

    field = "source"  # what the panel marks: the function's source is what must change

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"statistic {name!r}: {problem}")


class StoreError(FeaturelabError):
    """A lab's files are damaged or cannot be read: names the file and what is wrong."""

    def __init__(self, path: object, problem: str, hint: str = "") -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" + (f"; {hint}" if hint else ""))


class DiskFullError(FeaturelabError):
    """Writing a run's files (snapshots, series, the lab's database) found no room.
    The run ends failed with this message; what was written before stays readable."""

    def __init__(self, path: Any, problem: str, when: str = "") -> None:
        self.path = path
        self.problem = problem
        self.when = when  # "at step 49": where in the run it happened, if known
        at = f" {when}" if when else ""
        super().__init__(f"disk full: could not write {path} ({problem}){at}; free space on "
                         "its disk (or raise the quota or file-size limit), then run it again")

    def at(self, when: str) -> DiskFullError:
        return DiskFullError(self.path, self.problem, when)


def disk_full(exc: BaseException, path: Any = None) -> DiskFullError | None:
    """`exc` as a DiskFullError about `path` (else the file the error names) when it says
    there is no room to write; None for any other error."""
    if isinstance(exc, DiskFullError):
        return exc
    if isinstance(exc, OSError) and exc.errno in NO_ROOM:
        return DiskFullError(path or exc.filename or "a file", exc.strerror or str(exc))
    code = getattr(exc, "sqlite_errorcode", None)  # sqlite3.Error, without importing it
    if code == SQLITE_FULL:
        return DiskFullError(path or "the lab's database", str(exc))
    if code == SQLITE_IOERR_WRITE:
        return DiskFullError(path or "the lab's database",
                             f"{exc}: a write failed, as on a full disk or quota")
    return None


class FeaturelabWarning(UserWarning):
    """Warnings of featurelab's own; the test suite turns them into errors."""
