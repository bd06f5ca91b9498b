"""A session as a standalone Python script: every action's code in log order, each under
its sentence as a comment, in a fresh in-memory lab, then the fit tables printed.

Actions a rerun cannot repeat (an export writes a file) are kept as comments, as
`featurelab replay` skips them. A cancel is too: its run's code stops at the step the
cancel recorded instead (`stop_at`), as its notebook cell does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from featurelab.actions.experiments import CancelRun

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
    return "\n".join(f"# {line}".rstrip() for line in text.splitlines() or [""])


def script_source(lab: Lab) -> str:
    entries = list(lab.log)
    lines = [
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
    for entry in entries:
        # as a rerun applies it: a cancelled run stops where it was
        action = entry.action.rerun(entry.result, stops)
        lines += ["", _comment(action.describe(entry.result))]
        code = action.to_code()  # every user string in it went through repr
        why = action.not_replayed
        lines.append(code if why is None else _comment(f"{code}  (not rerun: {why})"))
    return "\n".join(lines) + "\n" + PRINT_FITS


def export_script(lab: Lab, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script_source(lab), encoding="utf-8")
    return path
