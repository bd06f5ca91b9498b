"""The package version, and the engine version that keys the run cache."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__version__ = "0.1.0"

# The modules whose code decides what a run computes. A finished run is reused only
# when these are byte-for-byte the code that produced it.
ENGINE_MODULES = ("config", "data", "formula", "models", "steps", "optim", "fused_adam",
                  "observables", "stats", "snapshots", "train")


@functools.cache
def engine_version() -> str:
    digest = hashlib.sha256(__version__.encode())
    here = Path(__file__).parent
    for name in ENGINE_MODULES:
        digest.update((here / f"{name}.py").read_bytes())
    return digest.hexdigest()[:12]
