"""The kernel's side of a run trained elsewhere: a trainer-shaped proxy.

A Run drives a RemoteTrainer exactly as it drives a Trainer (run, cancel, interrupt,
recorded, result, checkpoint, events): the worker's messages become the same on_flush
events, so the Run writes them into the lab's store from the kernel, the one process
that writes it. `run()` is where the job waits for a free worker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from featurelab.engine.config import ExperimentConfig
from featurelab.engine.events import Events
from featurelab.engine.results import RunResult
from featurelab.engine.snapshots import STEPS_FILE, Snapshots
from featurelab.engine.train import FINAL_STATUSES
from featurelab.workers.jobs import Job, Message

EVENTS = ("on_flush", "on_finish")
CANCEL_TIMEOUT = 30.0  # seconds a cancel waits for the worker to say where it stops


class WorkerLost(Exception):
    """The worker process (or Ray actor) died during the job."""


class Worker(Protocol):
    """One place jobs run, one at a time."""

    def run(self, job: Job) -> Iterator[Message]:
        """Starts the job and yields its messages, up to its "end"."""
        ...

    def cancel(self, job_id: int) -> int | None:
        """Stops the job after the steps begun; the step count it ends at (None when
        it has ended). Called from another thread than run's."""
        ...


class Scheduler(Protocol):
    """A pool of workers: how many, and one for each job in turn."""

    where: str  # "process", "ray": said in errors and recorded with the run
    size: int  # jobs it trains at once

    def acquire(self) -> Worker:
        """A free worker, waiting (first come, first served) until one is."""
        ...

    def release(self, worker: Worker, broken: bool = False) -> None:
        ...


class RemoteTrainer:
    def __init__(self, config: ExperimentConfig, job: Job, scheduler: Scheduler) -> None:
        self.config = config
        self.job = job
        self.where = where = scheduler.where
        self.n_steps = config.optimizer.steps
        self.events = Events(EVENTS)
        self.status = "ready"
        self.error = ""
        self.info: dict[str, Any] = {"backend": where}
        self.stat_errors: dict[str, str] = {}
        self.snapshots: Snapshots | None = None
        self.series: dict[str, np.ndarray] = {}
        self.step_count = 0  # rows received: the flushed steps
        self._scheduler = scheduler
        self._checkpoint: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._worker: Worker | None = None
        self._messages: Iterator[Message] | None = None

    def snapshots_so_far(self) -> Snapshots | None:
        """The snapshots taken so far: sent at the end, or read from the files the worker
        flushes into the lab's folder while it trains (a worker on this machine)."""
        if self.snapshots is not None or self.job.snapshot_dir is None:
            return self.snapshots
        directory = Path(self.job.snapshot_dir)
        if not (directory / STEPS_FILE).exists():
            return None
        return Snapshots.load(directory)

    @property
    def stop_at(self) -> int | None:
        return self.job.stop_at

    @property
    def progress(self) -> float:
        if self.status == "finished":  # an early stop ends it before n_steps
            return 1.0
        return self.step_count / self.n_steps if self.n_steps else 1.0

    # -- driving it ---------------------------------------------------------------------

    def run(self) -> str:
        """Waits for a worker, then receives until the job ends (again after an
        interrupt: the receiving goes on where it was). Whatever goes wrong here (the
        worker dies, a chunk cannot be stored, a listener fails) ends the run as failed
        with the steps received so far, and the worker is let go: never a run that
        stays "running"."""
        if self.status in FINAL_STATUSES:
            return self.status
        broken = False
        try:
            if self._messages is None:
                worker = self._scheduler.acquire()
                with self._lock:
                    self._worker = worker
                    self._messages = iter(worker.run(self.job))
            for message in self._messages:
                self._receive(message)
                if self.status in FINAL_STATUSES:
                    break
            else:
                raise WorkerLost("it ended without a word")
        except WorkerLost as exc:
            broken = True
            self._lost(f"the {self.where} worker training it stopped ({exc})")
        except Exception as exc:  # the worker is mid-job and unread: it goes too
            broken = True
            self._lost(f"{type(exc).__name__}: {exc}")
        finally:
            if self.status in FINAL_STATUSES:
                self._let_go(broken)
        return self.status

    def _let_go(self, broken: bool) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._scheduler.release(worker, broken)

    def _receive(self, message: Message) -> None:
        kind = message[0]
        if kind == "started":
            self.info.update(message[1])
            self.status = "running"
        elif kind == "flush":
            _, start, stop, chunk = message
            for key, rows in chunk.items():
                array = self.series.get(key)
                if array is None:
                    array = np.full((self.n_steps, *rows.shape[1:]), np.nan, dtype=rows.dtype)
                    self.series[key] = array
                array[start:stop] = rows
            self.step_count = stop
            self.events.emit("on_flush", start, stop, self.series)
        elif kind == "end":
            ending = message[1]
            self.info.update(ending["info"])
            self.info["backend"] = self.where
            self.error = ending["error"]
            self.stat_errors = ending["stat_errors"]
            self._checkpoint = ending["checkpoint"]
            if ending.get("snapshots") is not None:
                self.snapshots = ending["snapshots"]
            elif self.job.snapshot_dir is not None:
                directory = Path(self.job.snapshot_dir)
                if (directory / STEPS_FILE).exists():
                    self.snapshots = Snapshots.load(directory)
            self.status = ending["status"]
            self.events.emit("on_finish", self.status)
        elif kind == "failed":  # the job could not start (its config, a statistic)
            self.error = message[1]
            self.status = "failed"
            self.events.emit("on_finish", self.status)

    def _lost(self, why: str) -> None:
        self.error = f"{why}; the {self.step_count} steps received are kept"
        self.status = "failed"
        try:
            self.events.emit("on_finish", self.status)
        except Exception:  # noqa: S110  # the run ends failed whoever listens
            pass

    # -- from other threads -------------------------------------------------------------

    def cancel(self) -> int | None:
        """Stops the run after the steps begun; the exact step count it ends at. A job
        still waiting for a worker ends at step 0 when it gets one."""
        start = self.job.start_step
        with self._lock:
            if self.status in FINAL_STATUSES:
                return None
            worker = self._worker
            if worker is None:  # it stops where it starts: step 0, or its checkpoint's
                self.job.stop_at = 0
                return start
        at = worker.cancel(self.job.id)
        # A cancel that reached the job before its first step stops it where it
        # starts, which for a continued run is its checkpoint's step, not 0.
        return None if at is None else max(at, start)

    def interrupt(self) -> None:
        """The notebook's stop button: the same exact cancel, as it reaches the worker."""
        self.cancel()

    # -- what it recorded ---------------------------------------------------------------

    def recorded(self) -> RunResult:
        done = self.step_count
        series = dict(self.series)
        return RunResult(config=self.config,
                         status="running" if self.status == "ready" else self.status,
                         steps_done=done, arrays={k: v[:done] for k, v in series.items()},
                         info=dict(self.info), error=self.error,
                         stat_errors=dict(self.stat_errors), snapshots=self.snapshots)

    def result(self) -> RunResult:
        result = self.recorded()
        result.status = self.status
        return result

    def checkpoint(self) -> dict[str, Any] | None:
        return self._checkpoint
