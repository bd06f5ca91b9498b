"""Reading a recorded notebook: its markdown cells as the researcher's notes, anchored
in the log, and the lab it works on (found in its code, opened or rebuilt).

A markdown cell goes after the last log entry made by any code cell above it: an
entry knows its cell from `entry.cell` (the cell that executed it) or from the cell's
metadata `{"featurelab": {"action_ids": [...]}}` (a cell the panel inserted). Notebooks
are read as plain JSON, so reading one needs neither nbformat nor a kernel.
"""

from __future__ import annotations

import ast
import contextlib
import json
import linecache
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurelab.cells import cell_context
from featurelab.errors import FeaturelabError

if TYPE_CHECKING:
    from featurelab.lab import Lab
    from featurelab.log import LogEntry

METADATA_KEY = "featurelab"
DEFAULT_NAME, DEFAULT_ROOT = "lab", ".featurelab"  # Lab()'s defaults
MEMORY = ":memory:"


@dataclass
class NotebookNotes:
    title: str | None = None  # the notebook's leading "# Title", taken out of its cell
    start: list[str] = field(default_factory=list)  # notes before the first action
    after: dict[str, list[str]] = field(default_factory=dict)  # entry id -> notes after it


@dataclass(frozen=True)
class LabCall:
    """The literal arguments of the notebook's `fl.Lab(...)` call."""

    name: str = DEFAULT_NAME
    root: str = DEFAULT_ROOT
    variable: str | None = None  # the name it is assigned to

    def store_path(self, directory: Path) -> Path | None:
        if MEMORY in (self.name, self.root):
            return None
        return directory / self.root / f"{self.name}.sqlite"


def read_notebook(notebook: Any) -> dict[str, Any]:
    """A notebook as a dict: from a path, JSON text, or a dict (nbformat's node is one)."""
    if isinstance(notebook, dict):
        return notebook
    if isinstance(notebook, (str, Path)) and Path(notebook).suffix == ".ipynb":
        return json.loads(Path(notebook).read_text(encoding="utf-8"))
    raise FeaturelabError(f"notebook: expected a .ipynb path or a notebook dict, "
                          f"got {notebook!r}")


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _cell_action_ids(cell: dict[str, Any]) -> set[str]:
    meta = (cell.get("metadata") or {}).get(METADATA_KEY) or {}
    ids = set(meta.get("action_ids") or [])
    if meta.get("action_id"):
        ids.add(meta["action_id"])
    return ids


def _split_title(text: str) -> tuple[str | None, str]:
    lines = text.strip("\n").splitlines()
    if lines and lines[0].startswith("# "):
        return lines[0][2:].strip() or None, "\n".join(lines[1:]).strip("\n")
    return None, text


def notebook_notes(notebook: dict[str, Any], entries: list[LogEntry],
                   take_title: bool = True) -> NotebookNotes:
    index = {e.id: i for i, e in enumerate(entries)}
    by_cell: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        cell = getattr(entry, "cell", None)  # older logs have no cell field
        if cell:
            by_cell.setdefault(cell, []).append(i)
    notes = NotebookNotes()
    last = -1  # index of the last entry made by the code cells seen so far
    seen_code = False
    for cell in notebook.get("cells", []):
        kind = cell.get("cell_type")
        if kind == "code":
            seen_code = True
            mine = by_cell.get(cell.get("id") or "", []) + \
                [index[a] for a in _cell_action_ids(cell) if a in index]
            if not mine:
                mine = _matching_code(cell_source(cell), entries, last + 1)
            last = max([last, *mine])
        elif kind == "markdown":
            text = cell_source(cell).strip("\n")
            if take_title and notes.title is None and not seen_code:
                title, text = _split_title(text)
                notes.title = title
            if not text.strip():
                continue
            if last < 0:
                notes.start.append(text)
            else:
                notes.after.setdefault(entries[last].id, []).append(text)
    return notes


def _matching_code(source: str, entries: list[LogEntry], start: int) -> list[int]:
    """The entries from `start` on whose code the cell holds, in order: a notebook run
    without cell ids (nbval, a plain Jupyter client) still anchors its notes."""

    found = []
    for i in range(start, len(entries)):
        if getattr(entries[i], "cell", None):
            break
        try:
            code = entries[i].action.to_code()
        except FeaturelabError:
            break
        if code not in source:
            break
        found.append(i)
    return found


# -- the notebook's lab -----------------------------------------------------------------

def _code_lines(source: str) -> str:
    """A code cell without IPython syntax (magics, shell escapes), as plain Python."""
    if source.lstrip().startswith("%%"):
        return ""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _literal(node: ast.AST | None) -> str | None:
    try:
        value = ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _is_lab_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "Lab") or \
        (isinstance(func, ast.Attribute) and func.attr == "Lab")


def find_lab(notebook: dict[str, Any]) -> LabCall | None:
    """The first `Lab(...)`/`fl.Lab(...)` call in the code cells whose name and root are
    literals (other arguments, such as fresh=, are not needed to open it)."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_code_lines(cell_source(cell)))
        except SyntaxError:
            continue
        targets = {id(n.value): n.targets[0].id for n in ast.walk(tree)
                   if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
        for node in ast.walk(tree):
            if not _is_lab_call(node):
                continue
            assert isinstance(node, ast.Call)
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            args = [*node.args, None, None]
            name_node = kw.get("name", args[0])
            root_node = kw.get("root", args[1])
            name = DEFAULT_NAME if name_node is None else _literal(name_node)
            root = DEFAULT_ROOT if root_node is None else _literal(root_node)
            if name is not None and root is not None:
                return LabCall(name, root, targets.get(id(node)))
    return None


@contextlib.contextmanager
def _working_directory(directory: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def run_notebook(notebook: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Executes the code cells in order in one fresh namespace, in the notebook's
    directory, as Restart & Run All would (without a kernel: magics are skipped)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with _working_directory(directory):
        for number, cell in enumerate(notebook.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            code = _code_lines(cell_source(cell))
            # In linecache, like IPython's cells: inspect.getsource then finds the source
            # of a statistic defined with the decorator.
            filename = f"<notebook cell {number}>"
            linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True),
                                         filename)
            # What cells print goes to stderr: stdout may be the exported draft.
            try:
                with cell_context(cell.get("id")), contextlib.redirect_stdout(sys.stderr):
                    exec(compile(code, filename, "exec"), namespace)  # noqa: S102
            except (Exception, SystemExit) as exc:  # exit() in a cell ends the cell only
                raise FeaturelabError(f"notebook cell {number} failed: "
                                      f"{type(exc).__name__}: {exc}") from exc
    return namespace


def notebook_trusted(notebook: dict[str, Any]) -> bool:
    """Whether the user trusted exactly this notebook's code (`featurelab trust NB`
    signs its code cells into its metadata). Jupyter's own signature is not enough: a
    notebook without outputs is signed on every save, read or not."""
    from featurelab import signatures

    meta = (notebook.get("metadata") or {}).get("featurelab") or {}
    return isinstance(meta, dict) and signatures.verify(signatures.notebook_code(notebook),
                                                        meta.get("signature"))


def open_notebook_lab(notebook: dict[str, Any], directory: str | Path,
                      execute: bool = False) -> Lab:
    """The notebook's lab, opened from its store beside the notebook; when there is no
    store yet (or the lab lives in memory), the notebook is run to build it, but only if
    the caller says so (`execute`) or the user trusted the notebook (`featurelab trust`):
    a notebook received from elsewhere never runs because it was exported."""
    from featurelab.lab import Lab

    directory = Path(directory or ".").resolve()
    call = find_lab(notebook)
    if call is None:
        raise FeaturelabError("the notebook opens no lab: no fl.Lab(name, root) call with "
                              "literal arguments in its code cells")
    store = call.store_path(directory)
    if store is None or not store.exists():
        if not (execute or notebook_trusted(notebook)):
            where = "lives in memory" if store is None else f"has no store at {store}"
            raise FeaturelabError(
                f"the notebook's lab {call.name!r} {where}, so exporting means running the "
                "notebook's code cells, and the notebook is not trusted (not signed by you)."
                " Read it, then run it with --BlogExporter.execute=True, or trust "
                "it: featurelab trust NOTEBOOK")
        namespace = run_notebook(notebook, directory)
        if store is None:  # an in-memory lab lives only in the namespace that made it
            labs = [v for v in namespace.values() if isinstance(v, Lab)]
            named = namespace.get(call.variable) if call.variable else None
            if isinstance(named, Lab) or labs:
                return named if isinstance(named, Lab) else labs[0]
            raise FeaturelabError("running the notebook made no lab")
        if not store.exists():
            raise FeaturelabError(f"running the notebook made no lab at {store}")
    # Opened again from an absolute path: the notebook's Lab may hold a path relative to
    # the notebook's directory, and reading snapshots later would look elsewhere.
    return Lab(call.name, root=directory / call.root)
