"""The kernel's side of the action cells: asks the labextension to insert them.

The panel's clicks (actor "human") become code cells below the panel's cell
(js/labextension). Actions executed from cells insert nothing, so Restart & Run
All replays a notebook without growing it.

Protocol on comm target "featurelab.cells":
  kernel -> {"op": "hello"}, on one comm kept open; a client with the extension
            answers {"op": "ready"}, a client without it closes the comm.
  kernel -> {"op": "insert_cell", "model_id", "action_id", "action_ids", "source",
            "coalesce_key", "replaces"}, each on a comm of its own (opened with it
            and closed at once): comm_open reaches every client of the kernel, also
            a browser tab opened after the hello, and each inserts at most once
            (by action id; `replaces` names the cell a coalesced action updates).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from featurelab.cells import CellBuilder
from featurelab.engine.events import Events

if TYPE_CHECKING:
    from featurelab.lab import Lab

TARGET = "featurelab.cells"
# Statuses: "unknown" until a client answers; "extension" once one has; "none" when the
# hello was closed unanswered, or nothing answered it within ANSWER_S (a front end that
# ignores unknown comm targets).
ANSWER_S = 5.0


class CellBridge:
    """One per kernel: whether a client has the extension, and the requests to it."""

    def __init__(self) -> None:
        self.status = "unknown"
        self._hello: Any = None
        self._hello_time = 0.0
        self.events = Events(("status",))
        self._lock = threading.Lock()

    def start(self) -> None:
        """Says hello to the front ends (once per kernel)."""
        with self._lock:
            if self._hello is not None or self.status == "extension":
                return
            from comm import create_comm  # ipykernel's comms; a no-op outside a kernel

            self._hello = create_comm(target_name=TARGET, data={"op": "hello"})
            self._hello_time = time.monotonic()
        self._hello.on_msg(self._on_message)
        self._hello.on_close(self._on_close)

    def on_status(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """listener(status) when it changes; returns a function that unsubscribes."""
        return self.events.subscribe("status", listener)

    def _set(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.events.emit("status", status)

    def _on_message(self, message: dict[str, Any]) -> None:
        if (message.get("content", {}).get("data") or {}).get("op") == "ready":
            self._set("extension")

    def _on_close(self, _message: dict[str, Any]) -> None:
        # With several clients, one without the extension may close before another
        # answers: "ready" arriving later still wins.
        if self.status != "extension":
            self._set("none")

    def request(self, data: dict[str, Any]) -> bool:
        """Sends one request to every client; False when no client can take it."""
        if self.status == "unknown" and time.monotonic() - self._hello_time > ANSWER_S:
            self._set("none")
        if self.status == "none":
            return False
        from comm import create_comm

        create_comm(target_name=TARGET, data=data).close()
        return True


_BRIDGE: CellBridge | None = None


def kernel_bridge() -> CellBridge:
    global _BRIDGE
    if _BRIDGE is None:
        _BRIDGE = CellBridge()
    return _BRIDGE


class CellRecorder:
    """Turns the panel's actions into action cells below the panel's own cell."""

    def __init__(self, lab: Lab, model_id: str, bridge: CellBridge) -> None:
        self.model_id = model_id
        self.bridge = bridge
        self.builder = CellBuilder()
        self.after_cell: str | None = None  # the cell of the latest code action since a click
        self.unsubscribe = lab.on_change(self._heard)

    def _heard(self, kind: str, payload: Any) -> None:
        if kind != "action":
            return
        entry, action = payload
        if self.builder.absorbs(action):  # a sweep's member run: its sweep's cell has it
            self.builder.add(entry.id, action, entry.result, entry.actor, entry.trusted())
            return
        if entry.actor != "human":  # a cell's own action: the notebook already has it
            self.builder.interrupt()
            if entry.cell is not None:  # the next click goes after that cell
                self.after_cell = entry.cell
            return
        cell, replaces = self.builder.add(entry.id, action, entry.result, entry.actor,
                                          entry.trusted())
        request = {"op": "insert_cell", "model_id": self.model_id, "action_id": entry.id,
                   "action_ids": list(cell.action_ids), "source": cell.source,
                   "coalesce_key": cell.coalesce_key, "replaces": replaces,
                   "after_cell": self.after_cell}
        self.bridge.request(request)
