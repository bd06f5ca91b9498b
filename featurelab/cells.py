"""Action cells: the session as notebook code cells.

Each action becomes the code that repeats it (`Action.to_code`). View actions on one
chart in a row share a cell (their `coalesce_key`): a cell holds the latest action of
each kind, so re-running it gives the chart's last state while the log keeps every
event. The panel's clicks reach the notebook through `cell_bridge`; `Lab.cells()` and
`Lab.to_notebook()` give the same cells where no extension can insert them.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurelab.actions import Action, action_from_dict
from featurelab.log import LogEntry

METADATA_KEY = "featurelab"  # cell metadata: {"featurelab": {"action_id": ..., ...}}
_CELL: contextvars.ContextVar[str | None] = contextvars.ContextVar("featurelab_cell",
                                                                  default=None)


@contextlib.contextmanager
def cell_context(cell_id: str | None) -> Iterator[None]:
    """Marks the actions applied inside as executed by the notebook cell `cell_id`
    (for runners that execute cells without a kernel, like the blog exporter)."""
    token = _CELL.set(cell_id)
    try:
        yield
    finally:
        _CELL.reset(token)


def executing_cell() -> str | None:
    """The id of the notebook cell being executed, if any: JupyterLab sends it with every
    execute request, so the log can tell which cell an action came from."""
    cell = _CELL.get()
    if cell is not None:
        return cell
    ipython = sys.modules.get("IPython")  # never import it: outside a kernel there is no cell
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent("shell")
    except Exception:  # an ipykernel without get_parent(channel): no cell ids
        return None
    metadata = (parent or {}).get("metadata") or {}
    cell = metadata.get("cellId")
    return cell if isinstance(cell, str) else None


def _slot(action: Action) -> tuple[str, tuple[str, ...]]:
    # A later action replaces an earlier one in a cell only if it sets the same things:
    # set_axes(log_x=...) and set_axes(log_y=...) both stay, two zooms keep the last.
    given = tuple(sorted(k for k, v in action.params().items() if v is not None))
    return action.type, given


def _code(action: Action) -> str:
    code = action.to_code()
    if action.not_replayed is None:
        return code
    return "\n".join(f"# {line}" for line in code.splitlines()) + \
        f"  # not replayed: {action.not_replayed}"


@dataclass
class ActionCell:
    """One code cell: the actions it repeats and the code that repeats them."""

    action_ids: list[str] = field(default_factory=list)
    coalesce_key: str | None = None
    parts: list[tuple[tuple[str, tuple[str, ...]], str]] = field(default_factory=list)

    @property
    def source(self) -> str:
        return "\n".join(code for _, code in self.parts)

    @property
    def metadata(self) -> dict[str, Any]:
        return {METADATA_KEY: {"action_id": self.action_ids[-1],
                               "action_ids": list(self.action_ids),
                               "coalesce_key": self.coalesce_key}}

    def add(self, entry_id: str, action: Action) -> None:
        slot = _slot(action)
        self.parts = [(s, code) for s, code in self.parts if s != slot]
        self.parts.append((slot, _code(action)))
        self.action_ids.append(entry_id)

    def __repr__(self) -> str:
        return f"<ActionCell {self.action_ids[-1]}>\n{self.source}"


class CellBuilder:
    """Groups actions into cells as they happen. An action joins the previous cell when
    both have the same coalesce key and nothing else happened in between."""

    def __init__(self) -> None:
        self.cells: list[ActionCell] = []
        self._open: ActionCell | None = None  # the cell the next action may join

    def add(self, entry_id: str, action: Action) -> tuple[ActionCell, str | None]:
        """Adds an action; returns its cell and, when it joined an existing cell, the id
        of that cell's previous action (what the notebook knows the cell by)."""
        key = action.coalesce_key()
        cell = self._open
        if cell is not None and key is not None and cell.coalesce_key == key:
            previous: str | None = cell.action_ids[-1]
        else:
            cell, previous = ActionCell(coalesce_key=key), None
            self.cells.append(cell)
        cell.add(entry_id, action)
        self._open = cell
        return cell, previous

    def interrupt(self) -> None:
        """Something not in these cells happened: the next action starts a new cell."""
        self._open = None


def action_cells(entries: Iterable[LogEntry]) -> list[ActionCell]:
    builder = CellBuilder()
    for entry in entries:
        builder.add(entry.id, action_from_dict(entry.action_dict()))
    return builder.cells


def write_notebook(path: str | Path, opening_code: str, cells: list[ActionCell]) -> Path:
    import nbformat  # only needed to write notebooks

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(opening_code)] + [
        nbformat.v4.new_code_cell(cell.source, metadata=cell.metadata) for cell in cells]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path
