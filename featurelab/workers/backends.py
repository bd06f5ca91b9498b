"""The places a sweep's members can train, by name (the one registry of backends).

"processes": the local pool, one worker process per core, one intra-op thread each.
"ray": Ray actors on the cluster `ray.init(address=...)` connected to (a local one if
none), one per CPU it has; the `featurelab[ray]` extra installs Ray.
"kernel": one member after another in the kernel itself, as a single run trains (for a
statistic whose source a worker cannot run, or to debug).
"""

from __future__ import annotations

from collections.abc import Callable

from featurelab.errors import ConfigError
from featurelab.workers.remote import Scheduler

DEFAULT = "processes"


def _processes(workers: int | None) -> Scheduler:
    from featurelab.workers.processes import local_pool
    return local_pool(workers)


def _ray(workers: int | None) -> Scheduler:
    from featurelab.workers.ray_actors import ray_pool
    return ray_pool(workers)


BACKENDS: dict[str, Callable[[int | None], Scheduler | None]] = {
    "processes": _processes,
    "ray": _ray,
    "kernel": lambda workers: None,
}


def scheduler(backend: str | None, workers: int | None) -> Scheduler | None:
    """The pool of a backend (None: the kernel trains), checked."""
    backend = backend or DEFAULT
    if backend not in BACKENDS:
        raise ConfigError("backend", backend, "one of " + ", ".join(BACKENDS))
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or workers < 1):
        raise ConfigError("workers", workers, "a number of workers, 1 or more")
    return BACKENDS[backend](workers)
