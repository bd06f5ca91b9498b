"""A session as a standalone Python script: every action's code in log order, each under
its sentence as a comment, in a fresh in-memory lab, then the fit tables printed.

Actions a rerun cannot repeat (an export writes a file) are kept as comments, as
`featurelab replay` skips them. A cancel is too: its run's code stops at the step the
cancel recorded instead (`stop_at`), as its notebook cell does.

User text reaches the script only through repr (which escapes everything) or in comments,
cleaned of what Python source cannot hold (NUL, lone surrogates). A DIY statistic is the
researcher's own `def`, unless its name is one the script uses (`print`, `fl`, `range`):
that one is defined from its source as text, so the name is never rebound.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path
from typing import TYPE_CHECKING

from featurelab.actions.analysis import DefineStatistic
from featurelab.actions.base import call
from featurelab.actions.experiments import CancelRun
from featurelab.engine.stats import ACTIVATIONS
from featurelab.export.text import clean
from featurelab.log import untrusted_code

if TYPE_CHECKING:
    from featurelab.lab import Lab

PRINT_FITS = '''
# The fit tables, as `print(table)` shows them.
for fit in lab.fits.values():
    layer = f" ({fit.layer})" if fit.layer else ""
    print(f"{fit.id}: {fit.metric}{layer} of {fit.experiment}")
    print(fit.table)
    print()
'''


def _comment(text: str) -> str:
    # splitlines() breaks at every character Python ends a line at (and more)
    return "\n".join(f"# {line}".rstrip() for line in clean(text).splitlines() or [""])


def _names(code: str, defined: bool) -> set[str]:
    """The names code binds at module level by `def` or `class` (`defined`), or every
    name it uses outside function bodies (what a module-level `def` would rebind)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    if defined:
        return {node.name for node in tree.body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    names: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            # a body's names are its own; its decorators and defaults run at module level
            stack += [*getattr(node, "decorator_list", []), *node.args.defaults,
                      *(d for d in node.args.kw_defaults if d is not None)]
            continue
        if isinstance(node, ast.Name):
            names.add(node.id)
        stack += ast.iter_child_nodes(node)
    return names


def _as_text(action: DefineStatistic) -> str:
    """A DIY statistic defined from its source as a string: it binds no name here."""
    on = None if action.on == ACTIVATIONS else action.on
    return call("lab.define_statistic", action.name, source=action.source, on=on)


def script_source(lab: Lab) -> str:
    entries = list(lab.log)
    head = [
        "#!/usr/bin/env python",
        _comment(f"Reruns the featurelab session of lab {lab.name!r} ({len(entries)} actions) "
                 "in a fresh in-memory lab\nand prints its fit tables. Written by "
                 "lab.export_script(); run it with `python <this file>`."),
        "",
        "import featurelab as fl",
        "",
        'lab = fl.Lab(":memory:")',
    ]
    stops = CancelRun.stops(entries)
    # as a rerun applies each: a cancelled run stops where it was
    actions = [(entry, entry.action.rerun(entry.result, stops)) for entry in entries]
    codes = [action.to_code() for _, action in actions]  # user strings went through repr
    used = set(dir(builtins)).union(*(_names(code, defined=False)
                                      for code in ["\n".join(head), *codes, PRINT_FITS]))
    lines = head
    for (entry, action), code in zip(actions, codes):
        if not entry.trusted():  # running the script would trust it unread
            code = untrusted_code(code)
        elif isinstance(action, DefineStatistic) and any(
                name in used or name.startswith("__") for name in _names(code, defined=True)):
            code = _as_text(action)  # `def print(...)` would be the print the script calls
        lines += ["", _comment(action.describe(entry.result))]
        why = action.not_replayed
        lines.append(code if why is None else _comment(f"{code}  (not rerun: {why})"))
    return "\n".join(lines) + "\n" + PRINT_FITS


def export_script(lab: Lab, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script_source(lab), encoding="utf-8")
    return path
