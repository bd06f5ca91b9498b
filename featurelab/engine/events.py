"""Named events and their subscribers: the one observer mechanism of featurelab.

The trainer announces its steps and flushes with it (on_step_end, on_eval, on_flush,
on_finish: observables, progress and the store subscribe), the Lab its actions and runs
(action, run_started, run_ended: the panel and the cell recorder subscribe) and the
cell bridge whether a front end has the extension (status).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any

Subscriber = Callable[..., Any]


class Events:
    """subscribe(name, fn) -> a function that unsubscribes; emit(name, *args).

    With `isolate`, a subscriber that raises is reported as a warning of `warning` and
    the others still hear the event: a panel that fails must not stop an action that
    is already logged. Without it, the error goes to whoever emitted (a trainer's store
    that cannot write ends the run with that error).
    """

    def __init__(self, names: Iterable[str], isolate: bool = False,
                 warning: type[Warning] = UserWarning) -> None:
        self.names = tuple(names)
        self.isolate = isolate
        self.warning = warning
        self._subscribers: dict[str, list[Subscriber]] = {name: [] for name in self.names}
        self._lock = threading.Lock()  # subscribing from one thread while another emits

    def subscribe(self, name: str, fn: Subscriber) -> Callable[[], None]:
        if name not in self._subscribers:
            raise ValueError(f"unknown event {name!r}; events are {', '.join(self.names)}")
        with self._lock:
            self._subscribers[name].append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers[name]:
                    self._subscribers[name].remove(fn)
        return unsubscribe

    def subscribers(self, name: str) -> int:
        return len(self._subscribers[name])

    def emit(self, name: str, *args: Any) -> None:
        with self._lock:
            subscribers = list(self._subscribers[name])
        for fn in subscribers:
            if not self.isolate:
                fn(*args)
                continue
            try:
                fn(*args)
            except Exception as exc:
                warnings.warn(f"{fn!r} failed on {name!r}: {type(exc).__name__}: {exc}",
                              self.warning, stacklevel=3)
