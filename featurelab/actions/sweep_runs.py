"""Training a sweep: one logged action (one cell, `lab.run("sweep_0")`) that hands its
members to free workers, each member's run a logged run action of its own.

A member's run is applied only when a worker is free for it, so a sweep stopped half-way
logs the runs that started (cancelled exactly, each at its step) and nothing for the
members that never did: `lab.run(sweep)` again trains those and continues the cancelled
ones from their checkpoints. The members' run entries are what replays and restores
(each reuses its run like any run action); the sweep's own entry says what was asked.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

from featurelab.actions import experiments as _experiments
from featurelab.actions.base import Action, Context, action, call
from featurelab.errors import ConfigError, FeaturelabError, FeaturelabWarning
from featurelab.runs import Run
from featurelab.state import LabState
from featurelab.workers.backends import BACKENDS, scheduler
from featurelab.workers.remote import Scheduler

# A member whose run ended so is not trained again (the same config and code diverge
# again); cancelled, failed and interrupted runs are trained again.
DONE = ("finished", "diverged")
POLL = 0.05  # seconds between looks at the running members
SWEEP_PREFIX = "sweep_"  # lab.run(id) trains a sweep's members when the id has it


class SweepRun:
    """One `lab.run(sweep)`: at most `capacity` members training at once."""

    def __init__(self, lab: Context, state: LabState, sweep: str,
                 executor: Scheduler | None, actor: str = "code",
                 workers: int | None = None) -> None:
        self.lab = lab
        self.state = state
        self.sweep = sweep
        self.executor = executor
        self.actor = actor
        self.workers = workers
        self.use(executor)
        members = state.sweep(sweep).members
        self.todo = [m for m in members if m not in state.latest
                     or state.runs[state.latest[m]].status not in DONE]
        running = [m for m in self.todo if m in state.latest
                   and not state.runs[state.latest[m]].done]
        if running:
            raise FeaturelabError(f"{', '.join(running)} of {sweep} still running; wait for "
                                  f"it or lab.cancel({running[0]!r})")
        self.started: dict[str, Run] = {}
        self.errors: dict[str, str] = {}  # members that could not start, and why
        self.stopped = threading.Event()
        self.finished = threading.Event()  # dispatch returned
        # Between "may this member start" and "it is registered", and a stop's look at
        # what runs: a member started as Stop is pressed is cancelled too.
        self._lock = threading.RLock()
        self.thread: threading.Thread | None = None
        self.on_progress: Callable[[int, str], None] | None = None

    @property
    def ended(self) -> int:
        with self._lock:
            runs = list(self.started.values())
        return sum(run.done for run in runs)

    @property
    def done(self) -> bool:
        """Dispatched all it will and no member of it still trains."""
        return self.finished.is_set() and not self._running()

    def use(self, executor: Scheduler | None) -> None:
        """Where its members train, as many at once as the pool has workers (`workers`
        caps it)."""
        self.executor = executor
        self.capacity = 1 if executor is None else min(self.workers or executor.size,
                                                       executor.size)

    def _resume(self, member: str) -> bool:
        """Whether the member's latest run is a cancelled one to continue."""
        state = self.state
        run_id = state.latest.get(member)
        if run_id is None:
            return False
        run = state.runs[run_id]
        return run.status == "cancelled" and run.has_checkpoint

    def _start(self, member: str) -> Run:
        background = self.executor is not None or self.thread is not None
        action = _experiments.RunExperiment(experiment=member, background=background,
                                            resume=self._resume(member), sweep=self.sweep)
        with self.lab.with_executor(self.executor):
            return self.lab.apply(action, self.actor)

    def _running(self) -> list[str]:
        with self._lock:
            runs = list(self.started.items())
        return [m for m, run in runs if not run.done]

    def dispatch(self) -> None:
        """Starts members as workers free up, then waits for the last; starts no more
        once stopped (the running members are cancelled by `stop`). A member that
        cannot start (its run refused: already running, its checkpoint unreadable) is
        reported (`problems`) and the others go on."""
        try:
            for member in self.todo:
                while len(self._running()) >= self.capacity and not self.stopped.is_set():
                    self._tick()
                    time.sleep(POLL)
                with self._lock:
                    if self.stopped.is_set():
                        break
                    try:
                        run = self._start(member)
                    except Exception as exc:  # its run refused or could not start
                        self.errors[member] = f"{type(exc).__name__}: {exc}" \
                            if not isinstance(exc, FeaturelabError) else str(exc)
                        continue
                    self.started[member] = run
                if run.status == "cancelled" and self.executor is None \
                        and self.thread is None:  # the stop button during a run here
                    self.stopped.set()
                    break
            while self._running():
                self._tick()
                time.sleep(POLL)
            self._tick()
        finally:
            self.finished.set()

    def _tick(self) -> None:
        if self.on_progress is not None:
            running = self._running()
            self.on_progress(self.ended, running[0] if running else "")

    def problems(self) -> list[str]:
        """What went wrong with members started here, one line each (a cancel asked for
        is not a problem)."""
        lines = [f"{member} did not start: {error}" for member, error in self.errors.items()]
        for member, run in list(self.started.items()):
            status = run.status
            if status in ("finished", "cancelled", "running"):
                continue
            error = run.result().error
            lines.append(f"{member} {status} after {run.steps_done} steps"
                         + (f": {error}" if error else ""))
        return lines

    def stop(self, actor: str | None = None) -> list[str]:
        """Starts no more members and cancels the running ones (each a logged cancel at
        its exact step, by `actor`: the sweep's by default); returns them."""
        with self._lock:
            self.stopped.set()
            running = self._running()
        cancelled = []
        for member in running:
            try:
                self.lab.apply(_experiments.CancelRun(experiment=member), actor or self.actor)
                cancelled.append(member)
            except FeaturelabError:  # it ended meanwhile
                pass
        return cancelled

    def start_background(self) -> None:
        self.thread = threading.Thread(target=self.dispatch, daemon=True,
                                       name=f"featurelab-{self.sweep}")
        self.thread.start()

    def wait(self, timeout: float | None = None) -> SweepRun:
        if self.thread is not None:
            self.thread.join(timeout)
        return self


@action
class RunSweep(Action):
    """Trains the members of a sweep without a finished run, as many at once as the
    backend has workers; continues cancelled members from their checkpoints."""

    type: ClassVar[str] = "run_sweep"
    not_replayed: ClassVar[str | None] = "its members' run actions rerun them, each as it went"
    runs_in_cells: ClassVar[bool] = True
    sweep: str
    backend: str | None = None  # processes (default) | ray | kernel
    workers: int | None = None
    background: bool = False  # the panel's: code waits

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict[str, Any], Any]:
        if recorded is not None:
            return recorded, None
        state.sweep(self.sweep)
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError("backend", self.backend, "one of " + ", ".join(BACKENDS))
        running = state.sweep_runs.get(self.sweep)
        if running is not None and not running.done:
            raise FeaturelabError(f"{self.sweep} is already running; "
                                  f"lab.cancel({self.sweep!r}) stops it")
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 1):
            raise ConfigError("workers", self.workers, "a number of workers, 1 or more")
        job = SweepRun(ctx, state, self.sweep, None, workers=self.workers)
        state.sweep_runs[self.sweep] = job
        return {"sweep": self.sweep, "todo": list(job.todo)}, job

    def after(self, state: LabState, ctx: Context, entry: Any) -> Any:
        job = state.sweep_runs.get(self.sweep)
        if job is None or (entry.result or {}).get("todo") is None:
            return None
        job.actor = entry.actor  # its members' runs are the same actor's
        try:  # here, not in apply: starting a pool (ray.init) is no business of the store's
            job.use(scheduler(self.backend, self.workers))
        except BaseException:
            job.finished.set()
            raise
        if self.background:
            job.start_background()
            return job
        run_in_foreground(job)
        members = state.sweep(self.sweep).members
        return {m: state.results(m) for m in members if m in state.latest}

    def to_json(self, value: Any, state: LabState) -> Any:
        # In the background the value is the SweepRun (a thread): what an agent can
        # follow of it; in the foreground {member: its latest run}, as any value.
        if isinstance(value, SweepRun):
            with value._lock:
                started = {m: run.id for m, run in value.started.items()}
            return {"sweep": value.sweep, "todo": list(value.todo), "started": started,
                    "done": value.done, "problems": value.problems()}
        return super().to_json(value, state)

    def to_code(self) -> str:
        # A cell waits for its sweep, so Restart & Run All replays in order. lab.run
        # knows a sweep by its id's prefix; run_sweep takes any id (a log's, checked).
        verb = "lab.run" if self.sweep.startswith(SWEEP_PREFIX) else "lab.run_sweep"
        return call(verb, self.sweep, backend=self.backend, workers=self.workers)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        todo = (result or {}).get("todo")
        if todo is None:
            return f"Ran {self.sweep}."
        where = f" on {self.backend}" if self.backend else ""
        if not todo:
            return f"Ran {self.sweep}{where}: every member had a finished run."
        plural = "" if len(todo) == 1 else "s"
        return f"Ran {self.sweep}{where}: {len(todo)} member{plural} to train."


def run_in_foreground(job: SweepRun) -> None:
    """Dispatches with a progress bar; Ctrl-C (the notebook's stop button) stops it."""
    from tqdm.auto import tqdm  # a widget bar in a notebook, text elsewhere

    with tqdm(total=len(job.todo), desc=job.sweep, unit="run", disable=not job.todo) as bar:
        def progress(ended: int, member: str) -> None:
            if ended != bar.n:
                bar.update(ended - bar.n)
            bar.set_postfix_str(member, refresh=False)
        job.on_progress = progress
        try:
            job.dispatch()
        except KeyboardInterrupt:  # keep what ran
            cancelled = job.stop()
            job.dispatch()  # waits for the cancelled ones to end
            print(f"featurelab: {job.sweep} stopped; {len(cancelled)} running members "
                  f"cancelled, {len(job.todo) - len(job.started)} not started; "
                  f"lab.run({job.sweep!r}) continues")
    problems = job.problems()
    if problems and (job.executor is not None or job.errors):  # the kernel's runs say so
        warnings.warn(f"{job.sweep}: " + "; ".join(problems) + "; the steps before are kept",
                      FeaturelabWarning, stacklevel=5)
