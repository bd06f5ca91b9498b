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
from pathlib import Path
from typing import Any

from featurelab.errors import FeaturelabError

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
            _secrets[path] = _read_or_create(path)
        return _secrets[path]


def _read_or_create(path: Path) -> bytes:
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
        raise FeaturelabError(f"{path}: featurelab's signing secret is damaged "
                              f"({len(secret)} bytes); delete it to make a new one "
                              "(what you signed before is then untrusted)")
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32).hex().encode()
    try:  # O_EXCL: two kernels starting at once agree on the first one written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
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
    """Whether this user's featurelab signed exactly this action."""
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(sign(action), signature)
