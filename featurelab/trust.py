"""`fl.trust(path)` and `featurelab trust PATH`: the user says code from elsewhere may run.

What can hold code featurelab would run: a lab's store (its DIY statistics), a JSONL
log (replayed), a notebook (run by the blog exporter when its lab has no store). A
store and a log are signed with this user's secret (featurelab.signatures); a notebook
with Jupyter's own notary, as `jupyter trust` does, so Jupyter and featurelab agree on
which notebooks are trusted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from featurelab import signatures
from featurelab.actions import ACTIONS
from featurelab.errors import FeaturelabError
from featurelab.log import ActionLog
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
    log = ActionLog.from_jsonl(path)  # names the line of anything that is not an entry
    types = _code_types()
    count = 0
    for entry in log:
        if entry.type in types:
            entry.signature = signatures.sign(entry.action_dict())
            count += 1
    # Written beside, then moved over it: a failure half-way leaves the log as it was.
    partial = path.with_name(path.name + ".partial")
    log.to_jsonl(partial)
    os.replace(partial, path)
    return f"{path}: trusted ({count} actions with code signed)"


def _trust_notebook(path: Path) -> str:
    import nbformat
    from nbformat.sign import NotebookNotary

    try:
        notebook = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise FeaturelabError(f"{path}: not a notebook ({exc})") from None
    NotebookNotary().sign(notebook)
    return f"{path}: trusted (signed in Jupyter's notebook signature database)"
