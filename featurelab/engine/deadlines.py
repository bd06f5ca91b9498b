"""Time budgets for user code: a DIY statistic that never returns must not hang a run.

Python cannot kill a thread, but it can raise an exception in one at its next bytecode
(`PyThreadState_SetAsyncExc`). A statistic is called per step, so arming a budget must
cost next to nothing: a call writes its deadline into a table, and one watchdog thread
(started on first use, waking a few times a second) raises `OverBudget` in the thread
of any call past its deadline, again and again until the call gives up (so one bare
`except:` in the loop does not save it). That stops loops in Python, which is how
user code hangs; a call blocked inside C (a sleep) is stopped only when it returns,
which is why a statistic's first call, on a probe at definition, runs on a thread of
its own that is abandoned if it does not return (`run_with_budget`). What it cannot
stop: code that catches every exception in a loop around a loop (it can always catch
the next one); a run then waits on it, as it would on any Python that never returns.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
# Seconds one call of a DIY statistic may take (on one step's activations, or on a
# snapshot stack); FEATURELAB_STATISTIC_BUDGET overrides it, for big data sets.
def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"FEATURELAB_STATISTIC_BUDGET={text!r}: allowed: a number of "
                         "seconds above 0")
    return seconds


DEFAULT_SECONDS = _seconds(os.environ.get("FEATURELAB_STATISTIC_BUDGET", "10"))
_POLL = 0.1


class OverBudget(BaseException):
    """Raised inside user code that ran past its budget (not an Exception, so that the
    user code's own `except Exception` does not eat it)."""


class _Watchdog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[int, tuple[int, float]] = {}  # token -> (thread id, deadline)
        self.fired: set[int] = set()
        self.tokens = itertools.count()
        self.thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        with self.lock:
            token = next(self.tokens)
            self.calls[token] = (threading.get_ident(), time.monotonic() + seconds)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._watch, daemon=True,
                                               name="featurelab-deadlines")
                self.thread.start()
            return token

    def disarm(self, token: int) -> bool:
        """Ends a call's budget; True if it was exceeded. After this no exception is
        raised for the call, and one raised but not yet delivered is withdrawn."""
        with self.lock:
            call = self.calls.pop(token, None)
            fired = token in self.fired
            self.fired.discard(token)
            if fired and call is not None:
                _raise_in(call[0], None)
            return fired

    def _watch(self) -> None:
        while True:
            time.sleep(_POLL)
            now = time.monotonic()
            with self.lock:
                for token, (thread, deadline) in self.calls.items():
                    if now > deadline:
                        self.fired.add(token)
                        _raise_in(thread, OverBudget)


def _raise_in(thread: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), ctypes.py_object(exc) if exc is not None else None)


_WATCHDOG = _Watchdog()


def call_with_budget(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs), raising OverBudget if it runs longer than `seconds`.

    Written so that no path leaves the call armed (the watchdog would then raise in
    whatever this thread does next): the disarm loop catches a delivery that lands in
    it, and the deadline lies ahead when the try is entered.
    """
    token = _WATCHDOG.arm(seconds)
    over = False
    value: Any = None
    try:
        value = fn(*args, **kwargs)
    except OverBudget:
        over = True
    finally:
        while True:
            try:
                over = _WATCHDOG.disarm(token) or over
                break
            except OverBudget:
                over = True
    if over:
        raise OverBudget
    return value


def run_with_budget(fn: Callable[[], T], seconds: float) -> T:
    """fn() on a thread of its own; OverBudget if it does not return in time (the
    thread is left behind, stopped if it loops in Python)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call_with_budget(seconds, fn)
        except BaseException as exc:  # handed to the caller as is
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="featurelab-user-code")
    thread.start()
    thread.join(seconds + 2 * _POLL)
    if thread.is_alive():
        raise OverBudget
    if "error" in box:
        raise box["error"]
    return box["value"]
