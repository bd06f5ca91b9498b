"""Signatures of the code a lab runs: Jupyter's notebook-trust rule, for featurelab.

A DIY statistic is Python that runs in the kernel. Code the user typed (a cell, the
panel) runs because the user ran it; code that arrives in a file (a log, a store on a
shared drive, a notebook) must not run just because the file was opened. So every
logged action that carries code is signed with a secret only this user's featurelab
knows (an HMAC, as Jupyter signs notebooks with `notebook_secret`), and on reopening
or replaying only actions whose signature checks out run their code. Anything else
opens with its code disabled until the user trusts it (`fl.trust(path)`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from featurelab.errors import FeaturelabError, FeaturelabWarning

SECRET_ENV = "FEATURELAB_SECRET_FILE"  # noqa: S105 -- a variable's name. Tests (and shared accounts) point it elsewhere
_ALGORITHM = "sha256"
_secrets: dict[Path, bytes] = {}
_lock = threading.Lock()


def secret_file() -> Path:
    """Where this user's secret lives: beside Jupyter's own (its data directory)."""
    override = os.environ.get(SECRET_ENV)
    if override:
        return Path(override)
    from jupyter_core.paths import jupyter_data_dir  # nbformat's dependency, hence ours

    return Path(jupyter_data_dir()) / "featurelab" / "secret"


def _secret() -> bytes:
    path = secret_file()
    with _lock:
        if path not in _secrets:
            try:
                _secrets[path] = _read_or_create(path)
            except OSError as exc:  # a read-only home, a bad FEATURELAB_SECRET_FILE
                raise FeaturelabError(
                    f"{path}: featurelab's signing secret cannot be read or made ({exc}); "
                    f"point {SECRET_ENV} at a file you can write") from None
        return _secrets[path]


SECRET_BYTES = 64  # hex digits of 32 random bytes


def _read_or_create(path: Path) -> bytes:
    try:
        return _checked(path, path.read_bytes())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a name of its own, then linked into place: another kernel
    # starting at once sees no file or the whole secret, never a part of it.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(SECRET_BYTES // 2).hex().encode())
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(partial, path)
    except FileExistsError:
        pass  # the other kernel's came first: everyone uses that one
    finally:
        partial.unlink(missing_ok=True)
    return _checked(path, path.read_bytes())


def _checked(path: Path, secret: bytes) -> bytes:
    if len(secret) < SECRET_BYTES:
        raise FeaturelabError(f"{path}: featurelab's signing secret is damaged "
                              f"({len(secret)} bytes, not {SECRET_BYTES}); delete it to make "
                              "a new one (what you signed before is then untrusted)")
    return secret


def _message(action: dict[str, Any]) -> bytes:
    # The action as logged (type, version, params), in one canonical spelling; text
    # that is not valid UTF-8 (a lone surrogate) is signed as the bytes Python holds.
    text = json.dumps({k: action.get(k) for k in ("type", "version", "params")},
                      sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


def sign(action: dict[str, Any]) -> str:
    """The signature of a logged action ({"type", "version", "params"})."""
    digest = hmac.new(_secret(), _message(action), hashlib.sha256).hexdigest()
    return f"{_ALGORITHM}:{digest}"


def verify(action: dict[str, Any], signature: object) -> bool:
    """Whether this user's featurelab signed exactly this action (False, with a warning,
    when there is no secret to check with: nothing runs that cannot be checked)."""
    if not isinstance(signature, str):
        return False
    try:
        return hmac.compare_digest(sign(action), signature)
    except FeaturelabError as exc:
        warnings.warn(str(exc), FeaturelabWarning, stacklevel=2)
        return False


def notebook_code(notebook: dict[str, Any]) -> dict[str, Any]:
    """What of a notebook runs when it is run, its code cells' sources, as a signable
    action-shaped dict (`featurelab trust NB` signs it into the notebook's metadata)."""
    sources = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append(source if isinstance(source, str) else "".join(source))
    return {"type": "notebook", "version": 1, "params": {"code_cells": sources}}
