"""The Ray backend: the same jobs, trained by Ray actors on a cluster.

`ray.init(address=...)` connects the kernel to a cluster (without it, `ray.init()` starts
or finds a local one). There is one actor per CPU of the cluster, each training one job
at a time with one intra-op thread, and a job streams its messages back through a
streaming generator method, so the kernel stores a member's series while it trains, as
with the local pool. The actor is threaded (two calls at once) so that a cancel reaches
a job that is training, and is as exact as the kernel's. The cluster's nodes need
featurelab installed (or a `runtime_env` given to `ray.init`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from featurelab.errors import FeaturelabError
from featurelab.workers.jobs import Job, JobRunner, Message
from featurelab.workers.remote import Worker, WorkerLost

try:
    import ray
    import ray.exceptions
except ImportError:  # the optional extra
    ray = None


class TrainerActor:
    """The job runner of one Ray actor (the class Ray makes remote)."""

    def __init__(self) -> None:
        import torch
        torch.set_num_threads(1)
        self._lock = threading.Lock()
        self._runner: JobRunner | None = None
        self._cancelled: set[int] = set()

    def run(self, job: Job) -> Iterator[Message]:
        try:
            runner = JobRunner(job)
        except Exception as exc:  # said to the kernel, which ends the run
            yield ("failed", f"the run could not start: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            if job.id in self._cancelled:
                self._cancelled.discard(job.id)
                runner.cancel()
            self._runner = runner
        try:
            yield from runner.messages()
        finally:
            with self._lock:
                self._runner = None

    def cancel(self, job_id: int) -> int | None:
        with self._lock:
            runner = self._runner
            if runner is not None and runner.job.id == job_id:
                return runner.cancel()
            self._cancelled.add(job_id)  # not started yet: it stops before its first step
            return 0


class RayWorker:
    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def run(self, job: Job) -> Iterator[Message]:
        assert ray is not None
        refs = self.actor.run.options(num_returns="streaming").remote(job)
        try:
            for ref in refs:
                yield ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise WorkerLost(f"{type(exc).__name__}: {exc}") from None

    def cancel(self, job_id: int) -> int | None:
        assert ray is not None
        try:
            return ray.get(self.actor.cancel.remote(job_id), timeout=30)
        except ray.exceptions.RayError:
            return None


class RayPool:
    """Up to `size` actors (the cluster's CPUs by default), first come, first served."""

    where = "ray"

    def __init__(self, size: int | None = None) -> None:
        if ray is None:
            raise FeaturelabError("backend='ray' needs Ray: pip install 'featurelab[ray]'")
        if not ray.is_initialized():
            ray.init(log_to_driver=False)
        self.size = max(1, size or int(ray.cluster_resources().get("CPU", 1)))
        # Threaded (two calls at once): a cancel reaches the job it trains.
        self._remote = ray.remote(TrainerActor).options(num_cpus=1, max_concurrency=2)
        self._idle: list[RayWorker] = []
        self._count = 0
        self._waiting: list[object] = []
        self._cond = threading.Condition()

    def acquire(self) -> RayWorker:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while True:
                    if self._waiting[0] is ticket:
                        if self._idle:
                            return self._idle.pop()
                        if self._count < self.size:
                            self._count += 1
                            return RayWorker(self._remote.remote())
                    self._cond.wait()
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def release(self, worker: Worker, broken: bool = False) -> None:
        assert isinstance(worker, RayWorker)
        with self._cond:
            if broken:
                self._count -= 1
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(worker.actor)  # type: ignore[union-attr]
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            for worker in self._idle:
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(worker.actor)  # type: ignore[union-attr]
            self._count -= len(self._idle)
            self._idle = []


_POOLS: dict[str, RayPool] = {}


def ray_pool(workers: int | None = None) -> RayPool:
    """The pool of actors on the cluster Ray is connected to now: one per connection
    (a new `ray.init` gets new actors), as large as the cluster has CPUs, since an
    actor holds its CPU while it lives and a second pool's actors would wait for them
    forever. `workers` only limits how many jobs a sweep gives it at once (the caller's
    business), so it is not used here."""
    if ray is None:
        raise FeaturelabError("backend='ray' needs Ray: pip install 'featurelab[ray]'")
    if not ray.is_initialized():
        ray.init(log_to_driver=False)
    key = ray.get_runtime_context().get_job_id()
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = RayPool()
    return pool
