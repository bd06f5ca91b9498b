"""Runs as the Lab sees them: a handle that trains (in the foreground or a
background thread), streams every flushed chunk to the store, and afterwards
reads its results back from there.

A run that ends cancelled keeps a checkpoint (the trainer's state at its last step)
beside its snapshots, `<snapshot_root>/<run id>/checkpoint.pt`, or on the Run object in
an in-memory lab: a new run continues from it (`train(..., resume_from=run)`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featurelab.engine.config import ExperimentConfig
from featurelab.engine.results import RunResult
from featurelab.engine.snapshots import STEPS_FILE, Snapshots
from featurelab.engine.stats import StatisticRegistry
from featurelab.engine.threads import ThreadGovernor
from featurelab.engine.train import FINAL_STATUSES, Trainer
from featurelab.errors import FeaturelabError, FeaturelabWarning, disk_full
from featurelab.store import Store
from featurelab.workers.jobs import Job, new_job_id, portable_statistics
from featurelab.workers.remote import RemoteTrainer, Scheduler

ENDED = (*FINAL_STATUSES, "interrupted")
CHECKPOINT_FILE = "checkpoint.pt"


def fingerprint(array: np.ndarray) -> dict[str, Any]:
    """A digest for exact comparison and a few sampled values for comparison within
    a tolerance, small enough to keep in a JSONL log."""
    steps = len(array)
    picks = sorted({round(v) for v in np.geomspace(1, max(steps, 1), 12) - 1} | {steps - 1})
    values = array if array.ndim == 1 else np.nanmean(array, axis=1)
    samples = {str(s): (None if not math.isfinite(float(values[s])) else float(values[s]))
               for s in picks if 0 <= s < steps}
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]
    return {"digest": digest, "steps": steps, "samples": samples}


class _Training:
    """How many runs train in background threads of this process: the load a foreground
    run's ThreadGovernor cannot see in /proc (it leaves this process's own time out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0

    def enter(self) -> None:
        with self._lock:
            self._n += 1

    def leave(self) -> None:
        with self._lock:
            self._n -= 1

    def count(self) -> int:
        return self._n


_BACKGROUND = _Training()


class Run:
    """One run of an experiment. `series()` works while it trains and after."""

    def __init__(self, run_id: str, experiment: str, store: Store,
                 statistics: StatisticRegistry) -> None:
        self.id = run_id
        self.experiment = experiment
        self.store = store
        self.statistics = statistics
        self.trainer: Trainer | RemoteTrainer | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        # Set once the store holds everything the run recorded (its last rows, status,
        # info, snapshots): only then is a result complete enough to keep.
        self._recorded = threading.Event()
        self._result: RunResult | None = None
        self._snapshots: Snapshots | None = None  # in-memory labs keep them here
        self._checkpoint: dict[str, Any] | None = None  # ... and the checkpoint
        self._origin: dict[str, Any] = {}  # the run it continues, if it does
        # How the run ended when the store could not be told (a full disk): its row
        # would say "running" for ever, and wait() and the panel would believe it.
        self._ended: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<Run {self.id} of {self.experiment}: {self.status}, {self.steps_done} steps>"

    @property
    def _recording(self) -> bool:
        """Trained here and not yet all in the store: its trainer has the last word."""
        return self.trainer is not None and not self._recorded.is_set()

    def of(self, experiment: str) -> Run:
        """This run as the result of `experiment`: a run is reused by every experiment
        of the same config and code, and each reports itself as the experiment asked."""
        if experiment == self.experiment:
            return self
        return RunOf(self, experiment)  # type: ignore[return-value]

    # -- state --------------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        row = self.store.run_row(self.id)
        if self._ended is not None and (row is None or row["status"] == "running"):
            return {**(row or _NO_ROW), **self._ended}
        if row is None:  # logged, but its process has not created it yet
            return dict(_NO_ROW)
        return row

    def _record_end(self, status: str, info: dict[str, Any], error: str) -> bool:
        """Tells the store how the run ended, and keeps it here too: a store that cannot
        be written (a full disk) must not leave the run "running" for ever (this shows
        only while the store has no row or says "running"). False if the store failed."""
        self._ended = {"status": status, "info": info, "error": error}
        try:
            self.store.finish_run(self.id, status, info, error, {}, {})
            return True
        except Exception:
            return False

    def _store_rows(self, start: int, stop: int, series: dict[str, np.ndarray]) -> None:
        """One flush of the trainer into the store; no room there is a DiskFullError
        naming the database, which ends the run failed with the rows before it kept."""
        try:
            self.store.append_series(self.id, start, stop,
                                     {k: v[start:stop] for k, v in series.items()})
        except Exception as exc:
            full = disk_full(exc, self.store.path)
            if full is None:
                raise
            raise full from exc

    @property
    def status(self) -> str:
        if self._recording:  # ended but not yet recorded: still running, as the store says
            return "running"
        return self._row()["status"]

    @property
    def steps_done(self) -> int:
        trainer = self.trainer
        if trainer is not None and not self._recorded.is_set():
            return trainer.step_count
        return self._row()["steps_done"]

    @property
    def progress(self) -> float:
        trainer = self.trainer
        if trainer is not None:
            return trainer.progress
        row = self._row()
        if row["status"] == "finished":  # an early stop ends it before n_steps
            return 1.0
        return row["steps_done"] / row["n_steps"] if row["n_steps"] else 0.0

    @property
    def done(self) -> bool:
        return self.status in ENDED

    def wait(self, timeout: float | None = None) -> Run:
        """Blocks until a background run ends (or the timeout passes)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)  # all of it: the trainer let go, its connection closed
        return self

    def cancel(self) -> int | None:
        """Stops the run after the steps begun; returns the step count it ends at (None
        if it is not training here)."""
        trainer = self.trainer  # read once: a run that ends lets its trainer go
        return None if trainer is None else trainer.cancel()

    # -- checkpoint ---------------------------------------------------------------------

    def _checkpoint_path(self) -> Path | None:
        root = self.store.snapshot_root
        return None if root is None else Path(root) / self.id / CHECKPOINT_FILE

    @property
    def has_checkpoint(self) -> bool:
        """Whether this run can be continued: it ended cancelled and kept its state."""
        if self._checkpoint is not None:
            return True
        path = self._checkpoint_path()
        return path is not None and path.exists()

    def checkpoint(self) -> dict[str, Any]:
        """The trainer's state where this cancelled run stopped."""
        if self._checkpoint is not None:
            return self._checkpoint
        path = self._checkpoint_path()
        if path is None or not path.exists():
            raise FeaturelabError(f"run {self.id} of {self.experiment} has no checkpoint "
                                  f"({self.status}): only a run that ended cancelled keeps one")
        return torch.load(path, weights_only=True)

    def _save_checkpoint(self, trainer: Trainer | RemoteTrainer) -> None:
        path = self._checkpoint_path()
        try:  # the run must end whatever happens here; it just cannot be continued then
            state = trainer.checkpoint()
            if state is None:
                return
            if path is None:
                self._checkpoint = state
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")  # written whole or not at all
            torch.save(state, tmp)
            os.replace(tmp, path)
        except Exception as exc:
            warnings.warn(f"{self.experiment}: could not save the checkpoint of run {self.id} "
                          f"({exc}); it cannot be continued", FeaturelabWarning, stacklevel=2)

    # -- results ------------------------------------------------------------------------

    def snapshots_so_far(self) -> Snapshots | None:
        """The snapshots (activations, predictions) taken so far: a trainer's here, a
        worker's from its flushed files, the stored ones once the run has ended."""
        trainer = self.trainer  # read once: a run that ends lets its trainer go
        if trainer is None or self._recorded.is_set():
            return self.result().snapshots
        if isinstance(trainer, RemoteTrainer):
            return trainer.snapshots_so_far()
        return trainer.snapshots

    def result(self) -> RunResult:
        """What is recorded: complete once the run has ended, the flushed steps before."""
        if self._result is not None:
            return self._result
        trainer = self.trainer  # read once: a run that ends lets its trainer go
        if trainer is not None and not self._recorded.is_set():
            # Training here: from memory, not every series reloaded from the store on
            # every chart request.
            return dataclasses.replace(trainer.recorded(), status=self.status)
        row = self._row()
        config = ExperimentConfig.from_dict(row["config"]) if row["config"] else None
        snapshots = self._snapshots
        root = self.store.snapshot_root
        if snapshots is None and root is not None and (root / self.id / STEPS_FILE).exists():
            snapshots = Snapshots.load(root / self.id)
        result = RunResult(
            config=config,  # type: ignore[arg-type]
            status=self.status,
            steps_done=row["steps_done"],
            arrays=self.store.load_series(self.id, row["steps_done"]),
            info=row["info"],
            error=row["error"],
            stat_errors=row["stat_errors"],
            snapshots=snapshots,
        )
        if result.status in ENDED:  # not while it is still being recorded (status running)
            self._result = result
        return result

    def series(self, name: str, layer: str | None = None) -> np.ndarray:
        return self.result().series(name, layer)

    # -- training -----------------------------------------------------------------------

    def train(self, config: ExperimentConfig, cache_key: str, background: bool,
              on_end: Callable[[Run, dict[str, Any]], None],
              on_start: Callable[[Run], None] | None = None, stop_at: int | None = None,
              resume_from: Run | None = None, executor: Scheduler | None = None,
              thread_plan: list[list[int]] | None = None) -> Run:
        """Trains `config`, persisting as it goes: `stop_at` steps at most (it then ends
        cancelled), from the checkpoint of `resume_from` if given. on_start gets the run
        once its trainer exists (to subscribe to its events), on_end the result summary.
        With an `executor` (a pool of worker processes, Ray actors) a worker trains it
        and this process stores what it sends; background is then implied. A
        `thread_plan` (a logged run's info["thread_plan"]) is followed in the foreground
        instead of the machine's load: how replay trains a run as it was trained."""
        if resume_from is not None:  # the log's summary says where it continued from
            self._origin = {"resumed_from": resume_from.id, "from_step": resume_from.steps_done}
        try:
            self.store.create_run(self.id, self.experiment, cache_key, config.to_dict(),
                                  config.optimizer.steps)
            trainer = self._trainer(config, stop_at, resume_from, executor)
        except BaseException as exc:  # e.g. out of memory: end the run, do not leave it live
            full = disk_full(exc, self.store.path) if isinstance(exc, Exception) else None
            why = str(full) if full is not None else f"{type(exc).__name__}: {exc}"
            error = f"the run could not start: {why}"
            self._record_end("failed", {}, error)
            self._recorded.set()
            self._done.set()
            self._ended_with(on_end, {"run": self.id, "status": "failed", "steps": 0,
                                      "seconds": 0.0, "info": {}, "error": error,
                                      "stat_errors": {}, "series": {}, **self._origin})
            if full is not None and full is not exc:  # a FeaturelabError for the caller
                raise full from exc
            raise
        self.trainer = trainer
        if on_start is not None:
            on_start(self)
        started = time.time()

        def work() -> None:
            threads = torch.get_num_threads()
            counted = False
            try:
                try:
                    if isinstance(trainer, RemoteTrainer):
                        pass  # the worker has its own
                    elif threading.current_thread() is not threading.main_thread():
                        # Once the main thread has used OpenMP (any torch op in a cell), a
                        # second OpenMP team started from another thread runs small ops ~4x
                        # slower here (2 cores, libgomp: 3.9 s instead of 0.8 s for the
                        # reference run). One intra-op thread avoids that; the setting is
                        # this thread's own.
                        torch.set_num_threads(1)
                        _BACKGROUND.enter()
                        counted = True  # left in the finally below, whatever happens
                    else:  # the kernel's thread: as many as the model's size and load allow
                        local = trainer
                        governor = ThreadGovernor(config, threads, follow=thread_plan,
                                                  busy_here=_BACKGROUND.count,
                                                  timer=lambda: local.compute_seconds)
                        trainer.events.subscribe("on_flush", governor.on_flush)
                        trainer.info["thread_plan"] = governor.plan  # filled in as it changes
                        governor.start(trainer.step_count)
                    trainer.run()
                except KeyboardInterrupt:  # the notebook's stop button: keep what ran
                    trainer.interrupt()
                    trainer.run()
            finally:
                try:
                    summary = self._finish(trainer, time.time() - started)
                except BaseException as exc:  # a second Ctrl-C, a database error: the run
                    summary = self._failed_to_finish(trainer, exc)  # must still end
                self._recorded.set()
                try:  # before _done: wait() returns once the log and listeners know
                    self._ended_with(on_end, summary)
                finally:
                    self._done.set()
                    # A finished run needs nothing of its trainer (data, model, optimizer,
                    # snapshot maps): let it go, and the training thread's own database
                    # connection with it (three file descriptors a run otherwise).
                    self.trainer = None
                    if counted:
                        _BACKGROUND.leave()
                    if threading.current_thread() is not threading.main_thread():
                        self.store.close()
                    else:
                        torch.set_num_threads(threads)  # the notebook's own, as it was

        if background or isinstance(trainer, RemoteTrainer):
            self._thread = threading.Thread(target=work, name=f"featurelab-{self.id}",
                                            daemon=True)
            self._thread.start()
        else:
            work()
            asked = trainer.status == "cancelled" and trainer.step_count == stop_at
            if trainer.status != "finished" and not asked:  # asked: stopped at stop_at
                warnings.warn(f"{self.experiment} {trainer.status} after {trainer.step_count} "
                              f"steps: {trainer.error or 'cancelled'}; the steps before are "
                              "kept", FeaturelabWarning, stacklevel=4)
        return self

    def _trainer(self, config: ExperimentConfig, stop_at: int | None,
                 resume_from: Run | None, executor: Scheduler | None = None
                 ) -> Trainer | RemoteTrainer:
        """A trainer persisting to the store, at the checkpoint of `resume_from` if given
        (whose series before it become this run's first rows)."""
        root = self.store.snapshot_root
        snapshot_dir = None if root is None else Path(root) / self.id
        statistics = None if executor is None else portable_statistics(self.statistics, config)
        if executor is not None and statistics is None:
            warnings.warn(f"{self.experiment}: a statistic it records has no source text "
                          "a worker could run, so it trains in the kernel",
                          FeaturelabWarning, stacklevel=4)
        if executor is not None and statistics is not None:
            # A worker on this machine writes the snapshots where a run here would; one
            # that may be on another (Ray) sends them back with its end, and gets those
            # of a run it continues by value.
            local = executor.where == "process" and root is not None
            resume = None
            if resume_from is not None:
                state = resume_from.checkpoint()
                before = resume_from.result()
                resume = {"checkpoint": state,
                          "arrays": self.store.load_series(resume_from.id, state["step"]),
                          "snapshots": None if local else before.snapshots,
                          "snapshot_dir": str(Path(root) / resume_from.id)
                          if root is not None and local and before.snapshots is not None
                          else None}
            job = Job(config=config.to_dict(), statistics=statistics,
                      snapshot_dir=str(snapshot_dir) if local and snapshot_dir else None,
                      stop_at=stop_at, resume=resume, id=new_job_id())
            remote = RemoteTrainer(config, job, executor)
            remote.events.subscribe("on_flush", self._store_rows)
            return remote
        trainer = Trainer(config, self.statistics, stop_at=stop_at, snapshot_dir=snapshot_dir)
        trainer.events.subscribe("on_flush", self._store_rows)
        if resume_from is not None:
            state = resume_from.checkpoint()
            before = resume_from.result()
            trainer.restore(state, self.store.load_series(resume_from.id, state["step"]),
                            before.snapshots)
        return trainer

    def _failed_to_finish(self, trainer: Trainer | RemoteTrainer, exc: BaseException
                          ) -> dict[str, Any]:
        """The run's end could not be recorded: say so in the store if it can be written
        at all, so no one waits for a run that is not running (its rows stay readable)."""
        full = disk_full(exc, self.store.path) if isinstance(exc, Exception) else None
        why = str(full) if full is not None else f"{type(exc).__name__}: {exc}"
        error = f"its end could not be recorded: {why}"
        if trainer.status == "failed" and trainer.error.startswith("disk full"):
            error = trainer.error  # the same full disk: its first word says it all
        elif trainer.status == "failed" and trainer.error:
            error = f"{trainer.error}; {error}"
        if not self._record_end("failed", dict(trainer.info), error):
            warnings.warn(f"{self.experiment}: run {self.id} failed ({error}); the store "
                          "could not be told, so only this session knows it ended",
                          FeaturelabWarning, stacklevel=3)
        return {"run": self.id, "status": "failed", "steps": trainer.step_count,
                "seconds": 0.0, "info": dict(trainer.info), "error": error,
                "stat_errors": {}, "series": {}, **self._origin}

    def _ended_with(self, on_end: Callable[[Run, dict[str, Any]], None],
                    summary: dict[str, Any]) -> None:
        """Hands the summary to the lab (its log entry, listeners). With the disk full the
        entry cannot be updated: a warning says so, and the run's end stands."""
        try:
            on_end(self, summary)
        except Exception as exc:
            full = disk_full(exc, self.store.path)
            if full is None:
                raise
            warnings.warn(f"{self.experiment}: run {self.id} {summary['status']}, but its log "
                          f"entry could not say so: disk full: could not write {full.path} "
                          f"({full.problem})", FeaturelabWarning, stacklevel=3)

    def _finish(self, trainer: Trainer | RemoteTrainer, seconds: float) -> dict[str, Any]:
        root = self.store.snapshot_root
        snapshots = trainer.snapshots
        if snapshots is not None and snapshots.directory is None and root is not None:
            trainer.snapshots = snapshots.saved_to(Path(root) / self.id)  # sent back
        self._save_checkpoint(trainer)  # before the store says "cancelled": then it exists
        result = trainer.result()
        if result.status == "failed":  # rows of a flush the store refused (a full disk)
            kept = (self.store.run_row(self.id) or {}).get("steps_done", result.steps_done)
            if kept < result.steps_done:  # are lost: say what can be read back
                result = dataclasses.replace(result, steps_done=kept, arrays={
                    k: v[:kept] for k, v in result.arrays.items()})
        prints = {k: fingerprint(v) for k, v in result.arrays.items()}
        self.store.finish_run(self.id, result.status, result.info, result.error,
                              result.stat_errors, prints)
        if self.store.snapshot_root is None:
            self._snapshots = trainer.snapshots
        return {"run": self.id, "status": result.status, "steps": result.steps_done,
                "seconds": round(seconds, 3), "info": result.info, "error": result.error,
                "stat_errors": result.stat_errors, "series": prints, **self._origin}


_NO_ROW: dict[str, Any] = {"status": "starting", "steps_done": 0, "n_steps": 0, "info": {},
                           "error": "", "stat_errors": {}, "digests": {}, "config": None}


class RunOf:
    """A run as the result of another experiment with the same config and code (the run
    cache reused it): everything is the run's, except the experiment it reports."""

    def __init__(self, run: Run, experiment: str) -> None:
        self._run = run
        self.experiment = experiment

    def __getattr__(self, name: str) -> Any:
        if name == "_run" or name.startswith("__"):  # copy/pickle probe before _run is set
            raise AttributeError(name)
        return getattr(self._run, name)

    def wait(self, timeout: float | None = None) -> RunOf:
        self._run.wait(timeout)
        return self

    def __repr__(self) -> str:
        return (f"<Run {self._run.id} of {self.experiment}: {self._run.status}, "
                f"{self._run.steps_done} steps>")

    def of(self, experiment: str) -> Run:
        return self._run.of(experiment)
