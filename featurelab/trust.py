"""`fl.trust(path)` and `featurelab trust PATH`: the user says code from elsewhere may run.

What can hold code featurelab would run: a lab's store (its DIY statistics), a JSONL
log (replayed), a notebook (run by the blog exporter when its lab has no store). Each is
signed with this user's secret (featurelab.signatures): a store's and a log's actions
that carry code, a notebook's code cells (in its metadata; Jupyter's own signature is no
consent to run: it signs any notebook without outputs on save).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from featurelab import signatures
from featurelab.actions import ACTIONS
from featurelab.errors import FeaturelabError
from featurelab.store import Store


def _code_types() -> set[str]:
    return {t for t, kind in ACTIONS.items() if kind.runs_code}


def trust(path: str | Path) -> str:
    """Trusts the code in a lab store (`.sqlite`, or a folder of them such as
    `.featurelab`), a JSONL log or a notebook: read it first, it will run. Returns what
    was done, in words. A Lab already open on a store picks it up with `lab.trust()`."""
    path = Path(path)
    if not path.exists():
        raise FeaturelabError(f"{path}: no such file or folder to trust")
    if path.is_dir():
        stores = sorted(path.glob("*.sqlite"))
        if not stores:
            raise FeaturelabError(f"{path}: a folder with no lab store (*.sqlite) in it")
        return "\n".join(trust(store) for store in stores)
    if path.suffix == ".sqlite":
        store = Store(path)
        try:
            count = store.sign_actions(_code_types(), signatures.sign)
        finally:
            store.close()
        return f"{path}: trusted ({count} actions with code signed)"
    if path.suffix == ".jsonl":
        return _trust_log(path)
    if path.suffix == ".ipynb":
        return _trust_notebook(path)
    raise FeaturelabError(f"{path}: not something featurelab trusts; give a lab store "
                          "(.sqlite or its folder), a log (.jsonl) or a notebook (.ipynb)")


def _trust_log(path: Path) -> str:
    """Signs each line that carries code; every other line (and field) stays as it was."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeaturelabError(f"{path}: cannot be read as a log ({exc})") from None
    types = _code_types()
    lines, count = [], 0
    for number, line in enumerate(text.split("\n"), 1):
        try:
            data = json.loads(line) if line.strip() else None
        except ValueError as exc:
            raise FeaturelabError(f"{path}, line {number}: not a log entry ({exc})") from None
        if data is not None and not isinstance(data, dict):
            raise FeaturelabError(f"{path}, line {number}: not a log entry (not an object)")
        if data is not None and data.get("type") in types:
            if not {"version", "params"} <= data.keys():
                raise FeaturelabError(f"{path}, line {number}: a {data['type']} entry "
                                      "without version or params")
            data["signature"] = signatures.sign(data)
            line = json.dumps(data)
            count += 1
        lines.append(line)
    # Written beside, then moved over it: a failure half-way leaves the log as it was.
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text("\n".join(lines), encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return f"{path}: trusted ({count} actions with code signed)"


def _trust_notebook(path: Path) -> str:
    import nbformat

    try:
        notebook = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise FeaturelabError(f"{path}: not a notebook ({exc})") from None
    code = signatures.notebook_code(notebook)
    notebook.metadata.setdefault("featurelab", {})["signature"] = signatures.sign(code)
    partial = path.with_name(path.name + ".partial")
    nbformat.write(notebook, str(partial))
    os.replace(partial, path)
    cells = len(code["params"]["code_cells"])
    return f"{path}: trusted ({cells} code cells signed; a changed cell is untrusted again)"
