"""Action cells: the session as notebook code cells.

Each action becomes the code that repeats it (`Action.to_code`). View actions on one
chart in a row share a cell (their `coalesce_key`): a cell holds the latest action of
each kind, so re-running it gives the chart's last state while the log keeps every
event. A cancel has no cell of its own: it rewrites its run's cell, wherever that is, to
stop at the step it recorded (`lab.run(e, stop_at=N)`), so Restart & Run All reproduces
the cancelled run (reusing it) instead of training to the end. The panel's clicks reach
the notebook through `cell_bridge`; `Lab.cells()` and `Lab.to_notebook()` give the same
cells where no extension can insert them.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from featurelab.actions import Action
from featurelab.actions.experiments import CancelRun, RunExperiment
from featurelab.actions.explore import Judge, Propose
from featurelab.actions.sweep_runs import RunSweep
from featurelab.log import LogEntry, untrusted_code

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
    if threading.current_thread() is not threading.main_thread():
        # A background thread (a sweep dispatching its members) executes no cell: the
        # kernel's current request is whatever cell runs meanwhile, not its.
        return None
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
    if action.not_replayed is None or action.runs_in_cells:
        return code
    return "\n".join(f"# {line}" for line in code.splitlines()) + \
        f"  # not replayed: {action.not_replayed}"


@dataclass
class ActionCell:
    """One code cell: the actions it repeats and the code that repeats them."""

    action_ids: list[str] = field(default_factory=list)
    coalesce_key: str | None = None
    parts: list[tuple[tuple[str, tuple[str, ...]], str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # above the code: what happened since

    @property
    def source(self) -> str:
        return "\n".join([*(f"# {c}" for c in self.comments), *(code for _, code in self.parts)])

    @property
    def metadata(self) -> dict[str, Any]:
        return {METADATA_KEY: {"action_id": self.action_ids[-1],
                               "action_ids": list(self.action_ids),
                               "coalesce_key": self.coalesce_key}}

    def add(self, entry_id: str, action: Action, code: str | None = None) -> None:
        slot = _slot(action)
        self.parts = [(s, c) for s, c in self.parts if s != slot]
        self.parts.append((slot, _code(action) if code is None else code))
        self.action_ids.append(entry_id)

    def rewrite(self, entry_id: str, code: str) -> None:
        """A later action changes what this cell's one action does (a cancel stops its
        run): the cell holds the new code, and the action among its own."""
        self.parts = [(slot, code) for slot, _ in self.parts]
        self.action_ids.append(entry_id)

    def __repr__(self) -> str:
        return f"<ActionCell {self.action_ids[-1]}>\n{self.source}"


def _stopped_run_code(run: RunExperiment, at_step: int, actor: str | None) -> str:
    """The code of a run that a cancel stopped at `at_step`."""
    where = " in the panel" if actor == "human" else ""
    return (f"# Cancelled{where} at step {at_step}: a rerun stops there too.\n"
            f"{run.stopped_at(at_step).to_code()}")


def _lone_cancel_code(cancel: CancelRun, at_step: int | None) -> str:
    # The run is not in these cells (a cell of the user's own started it): say how to
    # rerun it stopped there instead of training to the end.
    code = f"# {cancel.to_code()}  # not replayed: "
    if at_step is None:
        return code + cancel.not_replayed
    return code + (f"cancelled at step {at_step}; lab.run({cancel.experiment!r}, "
                   f"stop_at={at_step}) reruns its run stopped there")


class CellBuilder:
    """Groups actions into cells as they happen. An action joins the previous cell when
    both have the same coalesce key and nothing else happened in between."""

    def __init__(self) -> None:
        self.cells: list[ActionCell] = []
        self._open: ActionCell | None = None  # the cell the next action may join
        self._runs: dict[str, tuple[ActionCell, RunExperiment]] = {}  # run id -> its cell
        self._sweeps: dict[str, ActionCell] = {}  # sweep id -> the cell that ran it last
        # The last proposal that trains and judges itself: (its cell, its experiment,
        # exploration, iteration). Its run and judgement are that cell's, not cells of
        # their own (running them again would train and judge twice).
        self._proposal: tuple[ActionCell, str, str, int] | None = None

    def add(self, entry_id: str, action: Action, result: dict[str, Any] | None = None,
            actor: str | None = None, trusted: bool = True) -> tuple[ActionCell, str | None]:
        """Adds an action (with its logged result and actor, which a run and a cancel
        need); returns its cell and, when it went into an existing cell, the id of that
        cell's previous action (what the notebook knows the cell by)."""
        if isinstance(action, CancelRun):
            stopped = self._stop(entry_id, action, result or {}, actor)
            if stopped is not None:
                return stopped
        if self._proposal is not None and self._in_proposal(action):
            cell = self._proposal[0]
            if isinstance(action, Judge):
                self._proposal = None
            return cell, None
        if self.absorbs(action):  # a sweep's member: the sweep's cell runs it
            member = cast(RunExperiment, action)
            cell = self._sweeps[str(member.sweep)]
            if result and result.get("run"):
                self._runs[result["run"]] = (cell, member)
            return cell, None
        key = action.coalesce_key()
        cell = self._open
        if cell is not None and key is not None and cell.coalesce_key == key:
            previous: str | None = cell.action_ids[-1]
        else:
            cell, previous = ActionCell(coalesce_key=key), None
            self.cells.append(cell)
        code = None  # a cancel whose run is not here gets a cell of its own, explained
        if isinstance(action, CancelRun):
            code = _lone_cancel_code(action, (result or {}).get("at_step"))
        if not trusted:
            code = untrusted_code(_code(action))
        cell.add(entry_id, action, code)
        if isinstance(action, RunExperiment) and result and result.get("run"):
            self._runs[result["run"]] = (cell, action)
        if isinstance(action, RunSweep):
            self._sweeps[cast(RunSweep, action).sweep] = cell
        proposal = cast(Propose, action) if isinstance(action, Propose) else None
        if proposal is not None and proposal.train and result and "iteration" in result:
            self._proposal = (cell, result["experiment"], proposal.exploration,
                              result["iteration"])
        self._open = cell
        return cell, previous

    def _in_proposal(self, action: Action) -> bool:
        assert self._proposal is not None
        _, experiment, exploration, iteration = self._proposal
        if isinstance(action, RunExperiment):
            run = cast(RunExperiment, action)
            return run.experiment == experiment and run.sweep is None
        if isinstance(action, Judge):
            judge = cast(Judge, action)
            return (judge.exploration, judge.iteration) == (exploration, iteration)
        return False

    def _stop(self, entry_id: str, cancel: CancelRun, result: dict[str, Any],
              actor: str | None) -> tuple[ActionCell, str | None] | None:
        """A cancel rewrites the cell of the run it stopped, even with other cells after
        it; None when that run is not in these cells. The open cell stays open: the
        cancel adds no cell below it."""
        found = self._runs.get(result.get("run", ""))
        if found is None or "at_step" not in result:
            return None
        cell, run = found
        previous = cell.action_ids[-1]
        if run.sweep is not None and self._sweeps.get(run.sweep) is cell:
            # One member of the sweep the cell runs: it says so, and a rerun of the cell
            # continues the member (a sweep trains what has no finished run).
            where = " in the panel" if actor == "human" else ""
            cell.comments.append(f"{run.experiment} cancelled{where} at step "
                                 f"{result['at_step']}; running this again continues it")
            cell.action_ids.append(entry_id)
            return cell, previous
        cell.rewrite(entry_id, _stopped_run_code(run, result["at_step"], actor))
        return cell, previous

    def absorbs(self, action: Action) -> bool:
        """Whether an action is part of a cell already here (a member's run of a sweep
        these cells ran), so it adds no cell or code of its own."""
        if self._proposal is not None and self._in_proposal(action):
            return True
        sweep = getattr(action, "sweep", None) if isinstance(action, RunExperiment) else None
        return sweep is not None and sweep in self._sweeps

    def interrupt(self) -> None:
        """Something not in these cells happened: the next action starts a new cell."""
        self._open = None


def action_cells(entries: Iterable[LogEntry]) -> list[ActionCell]:
    builder = CellBuilder()
    for entry in entries:
        builder.add(entry.id, entry.action, entry.result, entry.actor, entry.trusted())
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
