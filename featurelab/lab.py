"""The Lab: the one facade, and the single choke point for state changes.

Every public verb builds an action and runs it through `Lab.apply`, which
validates it, executes it, appends it to the log (the store's `actions` table)
and notifies listeners (the panel, the cell recorder). A Lab is the fold of
its log: opening a lab replays the stored actions, taking runs and fits from
the store instead of computing them again, and before each new action a Lab
folds in whatever other Labs on the same store appended, inside the same write
transaction, so ids never collide and every Lab sees one linear history.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featurelab import signatures
from featurelab.actions import ACTIONS, ACTORS, Action, ActionError, action_from_dict
from featurelab.actions import analysis as _analysis
from featurelab.actions import catalog as _catalog
from featurelab.actions import experiments as _experiments
from featurelab.actions import explore as _explore
from featurelab.actions import laws as _laws
from featurelab.actions import phases as _phases
from featurelab.actions import reads as _reads
from featurelab.actions import sweep_runs as _sweep_runs
from featurelab.actions import sweeps as _sweeps
from featurelab.actions import views as _views
from featurelab.actions.files import check_write
from featurelab.cells import ActionCell, action_cells, executing_cell, write_notebook
from featurelab.engine.config import ExperimentConfig
from featurelab.engine.events import Events
from featurelab.engine.fit import FitTable
from featurelab.engine.stats import ACTIVATIONS, StatisticRegistry
from featurelab.errors import ConfigError, FeaturelabError, FeaturelabWarning
from featurelab.log import ActionLog, LogEntry
from featurelab.runs import Run
from featurelab.state import Experiment, LabState, Sweep
from featurelab.store import Store
from featurelab.workers.remote import Scheduler

if TYPE_CHECKING:  # pandas is imported on first use (featurelab.frames)
    import pandas as pd

LAB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MEMORY = ":memory:"
SWEEP_PREFIX = _sweep_runs.SWEEP_PREFIX
Listener = Callable[[str, Any], None]
LAB_EVENTS = ("action", "run_started", "run_ended")
AGENT_CODE = ("refuse", "allow")  # may an agent's action run Python in this kernel?
# Labs this process opened with fresh=True, by store file: a notebook's opening cell run
# again in the same kernel re-attaches to its lab instead of starting it over.
_NOTEBOOK_LABS: weakref.WeakValueDictionary[Path, Lab] = weakref.WeakValueDictionary()


def _store_file(name: str, root: str | Path) -> Path | None:
    if MEMORY in (name, str(root)):
        return None
    if not isinstance(name, str) or not LAB_NAME.fullmatch(name):
        raise ConfigError("name", name, "letters, digits, '_', '-' and '.', starting "
                          "with a letter or digit (it names the lab's file)")
    return (Path(root) / f"{name}.sqlite").absolute()


class Lab:
    """A lab bench: experiments, their runs, statistics, fits, notes and the log."""

    def __new__(cls, name: str = "lab", root: str | Path = ".featurelab",
                fresh: bool = False, session: int | None = None,
                agent_code: str = "refuse") -> Lab:
        if fresh and session is None:
            path = _store_file(name, root)
            live = _NOTEBOOK_LABS.get(path) if path is not None else None
            if live is not None and path is not None and path.exists():
                return live  # __init__ sees it is open and says so
            # (a store deleted since, say to start clean, is opened anew, not written into)
        return super().__new__(cls)

    def __init__(self, name: str = "lab", root: str | Path = ".featurelab",
                 fresh: bool = False, session: int | None = None,
                 agent_code: str = "refuse") -> None:
        """Opens (or creates) the lab `name` stored under `root`.

        A lab's store keeps sessions: logs, each a history of its own. By default the
        Lab continues the latest session; `session=n` opens an earlier one.
        fresh=True is for a notebook's opening cell, because a notebook's cells are its
        log: the first time this process (kernel) opens the lab, it starts a new, empty
        session, so Restart & Run All rebuilds the same lab from the cells, reusing
        finished runs instead of training again; run again in the same kernel, it
        re-attaches to that session, as the kernel left it. `lab.reset()` starts over
        explicitly. Earlier sessions stay in the store (`store.sessions()`).

        Code runs only where the user asked for it: a DIY statistic stored by someone
        else (not signed with this user's secret) opens disabled until `lab.trust()`,
        and an agent's action that would run Python is refused unless
        agent_code="allow".
        """
        if agent_code not in AGENT_CODE:
            raise ConfigError("agent_code", agent_code, " or ".join(map(repr, AGENT_CODE)))
        self.agent_code = agent_code
        if getattr(self, "_opened", False):  # a re-attached notebook lab
            print(f"featurelab: re-attached to lab {self.name!r} as this kernel left it "
                  f"(session {self.session}: {len(self.experiments)} experiments, "
                  f"{len(self.log)} actions); lab.reset() starts over")
            return
        path = _store_file(name, root)
        if path is None:
            self.name = "memory" if name == MEMORY else name
            self.store = Store(MEMORY)
        else:
            self.name = name
            self.store = Store(Path(root) / f"{name}.sqlite")
        self._lock = threading.RLock()
        # A failing listener (a panel, a recorder) must not stop the action it hears
        # about: the action is already logged, and a run would never start.
        self.events = Events(LAB_EVENTS, isolate=True, warning=FeaturelabWarning)
        self._panel: Any = None
        self._executors = threading.local()  # see with_executor
        self._trusted = True  # whether the action being applied may run its code
        self.restore_errors: list[str] = []
        self._clear()
        with self._lock, self.store.transaction() as db:
            if session is not None:
                known = self.store.sessions()
                if session not in known and session != Store.latest_session(db):
                    raise ConfigError("session", session, "one of the lab's sessions ("
                                      + (", ".join(map(str, known)) or "none yet") + ")")
                self.session = session
            elif fresh:
                self.session = Store.new_session(db)
            else:
                self.session = Store.latest_session(db)
            self._sync()
        if fresh and path is not None and session is None:
            _NOTEBOOK_LABS[path] = self
        self._opened = True

    def _clear(self) -> None:
        """The state of an empty session."""
        self.state = LabState()
        self.log = ActionLog()
        self._run_entries: dict[str, LogEntry] = {}  # run id -> the entry that started it
        self._seq = 0

    # The state, as the public API has always named it (lab.experiments, lab.view, ...).
    experiments = property(lambda self: self.state.experiments)
    runs = property(lambda self: self.state.runs)
    latest = property(lambda self: self.state.latest)
    statistics = property(lambda self: self.state.statistics)
    neuron_stats = property(lambda self: self.state.neuron_stats)
    fits = property(lambda self: self.state.fits)
    sweeps = property(lambda self: self.state.sweeps)
    explorations = property(lambda self: self.state.explorations)
    notes = property(lambda self: self.state.notes)
    view = property(lambda self: self.state.view)

    # -- the context actions are applied in (actions.base.Context) ----------------------

    def start_session(self) -> int:
        """Empties this Lab into a new session of its store (inside Lab.apply's
        transaction); returns the number of the session it leaves."""
        running = [r.experiment for r in self.runs.values()
                   if r.trainer is not None and not r.done]
        if running:
            raise FeaturelabError(f"{', '.join(running)} still running; cancel first "
                                  f"(lab.cancel({running[0]!r}))")
        left = self.session
        self._clear()
        self.session = Store.new_session(self.store.db)
        return left

    def __repr__(self) -> str:
        return (f"<Lab {self.name!r}: {len(self.experiments)} experiments, "
                f"{len(self.log)} actions>")

    @property
    def panel(self) -> Any:
        """The panel (an anywidget) of this lab; every display of it stays in sync."""
        if self._panel is None or self._panel.comm is None:  # none yet, or closed
            from featurelab.ui.widget import Panel  # the engine and the Lab never need it

            self._panel = Panel(self)
        return self._panel

    @property
    def trusted(self) -> bool:
        return self._trusted

    @contextlib.contextmanager
    def _trusting(self, trusted: bool) -> Iterator[None]:
        # Under self._lock: one action is applied at a time; but _sync folds in other
        # Labs' actions inside apply_logged's, so the outer value comes back after.
        before, self._trusted = self._trusted, trusted
        try:
            yield
        finally:
            self._trusted = before

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.panel._repr_mimebundle_(**kwargs)

    # -- the choke point ----------------------------------------------------------------

    def apply(self, action: Action | dict[str, Any], actor: str = "code") -> Any:
        """Validates, executes and logs one action; returns the verb's value.

        A JSON action (a dict, as an agent sends) that does not validate raises
        ActionError listing the allowed fields; nothing is logged or changed. For actor
        "agent" the value is JSON (dicts, lists, numbers, strings; no NaN), not Python
        objects: an Experiment as {id, name, config, status, ...}, a Run as {run,
        experiment, status, steps_done, final}, ... (featurelab.actions.json_values).
        """
        if actor != "agent":
            return self.apply_logged(action, actor)[1]
        action = action_from_dict(action)
        value = self.apply_logged(action, actor)[1]
        with self._lock:  # it reads the state, which another thread may be changing
            return action.to_json(value, self.state)

    def apply_logged(self, action: Action | dict[str, Any], actor: str = "code",
                     trusted: bool | None = None) -> tuple[LogEntry | None, Any]:
        """`apply`, also returning the log entry it made: its own result, whatever other
        threads or processes log meanwhile (the panel's reply and replay read it). A
        read (`Action.read_only`) changes nothing and is not logged: its entry is None.

        `trusted` is for actions that come from a file (replay): False applies an
        action's code disabled. By default what is applied now is trusted (the user
        runs it), except code from an agent in a lab that does not allow it."""
        if actor not in ACTORS:
            raise ActionError(f"actor {actor!r}; allowed: {', '.join(ACTORS)}")
        action = action_from_dict(action)
        try:  # before anything changes: a value JSON cannot hold (a numpy array) is an error
            params = action.params()
        except (TypeError, ValueError) as exc:
            raise ActionError(f"action {action.type!r}: parameters must be JSON values "
                              f"(lists, not arrays): {exc}") from None
        action.permit(actor, self)  # what this actor may not do (an agent's file writes)
        if action.read_only:  # nothing to log, no listener to tell: only its value
            with self._lock:
                with self.store.transaction():
                    self._sync()  # what other Labs logged is part of what it reads
                return None, action.apply(self.state, self, None)[1]
        signature = None
        if action.runs_code:
            if trusted is None and actor == "agent" and self.agent_code != "allow":
                raise ActionError(
                    f"action {action.type!r} from an agent runs Python in this kernel, and "
                    f"lab {self.name!r} does not allow agent code; open it with "
                    f"fl.Lab({self.name!r}, agent_code='allow') to let agents do that")
            if trusted is not False:
                signature = signatures.sign({"type": action.type, "version": action.version,
                                             "params": params})
        with self._lock:
            with self.store.transaction() as db, self._trusting(trusted is not False):
                self._sync()
                started = time.time()
                summary, value = action.apply(self.state, self, None)
                entry = LogEntry(id=uuid.uuid4().hex[:16], type=action.type,
                                 version=action.version, params=params, actor=actor,
                                 time=started, duration=round(time.time() - started, 6),
                                 result=summary, signature=signature,
                                 cell=executing_cell() if actor == "code" else None)
                entry.seq = Store.insert_action(db, entry.to_dict(), self.session)
                self._append(entry)
        self._notify("action", (entry, action))
        after = action.after(self.state, self, entry)
        return entry, (value if after is None else after)

    def _append(self, entry: LogEntry) -> None:
        self.log.append(entry)
        self._seq = entry.seq
        run = (entry.result or {}).get("run") if entry.type == "run" else None
        if run:
            self._run_entries[run] = entry

    def _sync(self) -> None:
        """Folds in the actions stored after the last one this Lab has seen."""
        untrusted = []
        for row in self.store.actions_after(self._seq, self.session):
            entry = LogEntry.from_dict(row)
            try:
                trusted = not entry.action.runs_code or signatures.verify(
                    entry.action_dict(), entry.signature)
                if not trusted:
                    untrusted.append(f"action {entry.seq}: {entry.describe().rstrip('.')}")
                with self._trusting(trusted):
                    entry.action.apply(self.state, self, entry.result or {})
            except FeaturelabError as exc:  # keep the rest of the lab usable
                message = f"action {entry.seq} ({entry.type}) could not be restored: {exc}"
                self.restore_errors.append(message)
                warnings.warn(message, FeaturelabWarning, stacklevel=3)
            self._append(entry)
        if untrusted:
            warnings.warn(
                f"lab {self.name!r}: code not signed by you (from elsewhere) is disabled: "
                + "; ".join(untrusted) + ". Its stored results stay readable; read the "
                "source (lab.statistics[name].source), then lab.trust() runs it",
                FeaturelabWarning, stacklevel=3)

    def trust(self) -> int:
        """Trusts the code this lab shows (this session's log as this Lab has it): signs
        it with this user's secret and defines its statistics for real. Read it first
        (`lab.statistics[name].source`): it runs in this kernel. Returns how many actions
        were signed."""
        types = {t for t, kind in ACTIONS.items() if kind.runs_code}
        with self._lock:
            # Only what this Lab has folded in (and so shown): an action another writer
            # stored since is not signed unseen.
            shown = [e.id for e in self.log if e.type in types]
            signed = self.store.sign_actions(types, signatures.sign, ids=set(shown))
            for entry in self.log:
                if entry.type in types:
                    entry.signature = signatures.sign(entry.action_dict())
                    try:  # in log order: a later definition of a name wins, as it did
                        entry.action.apply(self.state, self, entry.result or {})
                    except FeaturelabError as exc:
                        warnings.warn(f"action {entry.seq} ({entry.type}) is trusted now "
                                      f"but fails: {exc}", FeaturelabWarning, stacklevel=2)
        return signed

    def refresh(self) -> Lab:
        """Picks up actions other Labs (threads, processes) stored since."""
        with self._lock, self.store.transaction():
            self._sync()
        return self

    def on_change(self, listener: Listener) -> Callable[[], None]:
        """listener(kind, payload) after every action ("action", (entry, action)), when a
        run's trainer starts ("run_started", run: subscribe to run.trainer.events there)
        and when a run ends ("run_ended", run). Returns a function that unsubscribes.
        (`lab.events` has them by name.)"""
        offs = [self.events.subscribe(kind, listener) for kind in LAB_EVENTS]

        def unsubscribe() -> None:
            for off in offs:
                off()
        return unsubscribe

    def _notify(self, kind: str, payload: Any) -> None:
        self.events.emit(kind, kind, payload)

    def run_started(self, run: Run) -> None:
        self._notify("run_started", run)

    def run_ended(self, run: Run, summary: dict[str, Any]) -> None:
        entry = self._run_entries.get(run.id)
        if entry is not None:
            duration = round(time.time() - entry.time, 3)
            self.store.update_action_result(entry.id, summary, duration)
            entry.result, entry.duration = summary, duration
        self._notify("run_ended", run)

    # -- look-ups ------------------------------------------------------------------------

    def experiment(self, experiment: str) -> Experiment:
        return self.state.experiment(experiment)

    def results(self, experiment: str) -> Run:
        """The latest run of an experiment."""
        return self.state.results(experiment)

    def runs_of(self, experiment: str) -> list[Run]:
        """Every run of an experiment in this session, oldest first; `results` is the
        latest. A cancelled run stays here once a later run continues it."""
        self.experiment(experiment)
        ids = [e.result["run"] for e in self.log if e.type == "run" and e.result
               and e.params.get("experiment") == experiment and e.result.get("run")]
        return [self.runs[i].of(experiment) for i in dict.fromkeys(ids) if i in self.runs]

    def hook_points(self) -> dict[str, tuple[int, int]]:
        """Hook points of every experiment, with their shapes on the training set."""
        return self.state.hook_points()

    def weight_points(self) -> dict[str, tuple[int, int]]:
        """Weight points of every experiment ('embed.weight', 'layers.1.weight'), with
        their shapes as PyTorch stores them: where statistics on weights are measured."""
        return self.state.weight_points()

    def cache_key(self, config: ExperimentConfig,
                  statistics: StatisticRegistry | None = None) -> str:
        """The run-cache key of a config (see LabState.cache_key)."""
        return self.state.cache_key(config, statistics)

    def metric_series(self, experiment: str, metric: str, layer: str | None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a metric (see LabState.metric_series)."""
        return self.state.metric_series(experiment, metric, layer)

    # -- verbs: experiments -------------------------------------------------------------

    def create_experiment(self, model: Any = None, data: Any = None, optimizer: Any = None,
                          loss: str | None = None, observables: list[str] | None = None,
                          seed: int | None = None, name: str | None = None,
                          snapshots: Any = None, based_on: str | None = None,
                          observables_add: list[str] | None = None,
                          observables_remove: list[str] | None = None,
                          config: ExperimentConfig | None = None,
                          eval_every: int | None = None, stop: Any = None) -> Experiment:
        """A new experiment, from scratch or `based_on` another with some changes.
        Typed configs (ModelConfig, ..., or a whole ExperimentConfig) are accepted.
        `eval_every`: test metrics every this many steps (NaN between); `stop`: an
        early-stop condition, "test_accuracy > 0.99 for 100" or a StopConfig / dict."""
        if config is not None:
            if not isinstance(config, ExperimentConfig):
                raise ConfigError("config", config, "an ExperimentConfig (or None)")
            fields = config.to_dict()
            model, data, optimizer = fields["model"], fields["data"], fields["optimizer"]
            loss, observables, seed = fields["loss"], fields["observables"], fields["seed"]
            snapshots, name = fields["snapshots"], name or fields["name"] or None
            eval_every = None if config.eval_every == 1 else config.eval_every
            stop = fields["stop"] if config.stop.metric else None
        return self.apply(_experiments.CreateExperiment(
            model=_plain(model), data=_plain(data), optimizer=_plain(optimizer), loss=loss,
            observables=_listed(observables), seed=seed, name=name, snapshots=_plain(snapshots),
            based_on=based_on, observables_add=_listed(observables_add),
            observables_remove=_listed(observables_remove), eval_every=eval_every,
            stop=_plain(stop)))

    def select(self, *experiments: str | list[str]) -> list[str]:
        ids = [e for item in experiments for e in _listed(item)]
        return self.apply(_experiments.SelectExperiments(experiments=ids))

    def rename(self, experiment: str, name: str) -> Experiment:
        """Gives an experiment another name; its id, config and runs stay."""
        return self.apply(_catalog.RenameExperiment(experiment=experiment, name=name))

    def tag(self, experiments: str | list[str], add: str | list[str] | None = None,
            remove: str | list[str] | None = None) -> dict[str, list[str]]:
        """Adds and removes tags on one or more experiments; returns each one's tags."""
        return self.apply(_catalog.TagExperiments(experiments=_listed(experiments),
                                                  add=_listed(add),
                                                  remove=_listed(remove)))

    def delete(self, experiment: str) -> None:
        """Takes an experiment out of the lab (the table, the charts, `lab.experiments`);
        its runs stay in the store and the log keeps its history. A sweep's member or a
        running experiment cannot be deleted."""
        return self.apply(_catalog.DeleteExperiment(experiment=experiment))

    def run(self, experiment: str, force: bool = False, background: bool = False,
            stop_at: int | None = None, resume: bool = False, backend: str | None = None,
            workers: int | None = None) -> Run | dict[str, Run]:
        """Trains an experiment (blocking unless background=True). A finished run with
        the same config and code is reused unless force=True.

        stop_at=N trains the first N steps only and ends the run "cancelled" there (the
        cell of a run cancelled in the panel says so, and reruns reuse that run).
        resume=True continues the experiment's cancelled run from its checkpoint, in a new
        run, as if it had never stopped; the cancelled run stays (`runs_of`).

        A sweep's id ("sweep_0") trains its members without a finished run on `backend`
        ("processes", the default: one worker process per core; "ray"; "kernel") and
        returns {member: its latest run} (see `run_sweep`)."""
        if isinstance(experiment, str) and experiment.startswith(SWEEP_PREFIX):
            options = {"force": force, "stop_at": stop_at, "resume": resume}
            for option, value in options.items():
                if value not in (False, None):
                    raise ConfigError(option, value, "its default for a sweep",
                                      hint="lab.run(sweep_id) trains the members without "
                                           "a finished run and continues cancelled ones")
            return self.run_sweep(experiment, backend=backend, workers=workers,
                                  background=background)
        for option, value in {"backend": backend, "workers": workers}.items():
            if value is not None:
                raise ConfigError(option, value, "None for a single experiment",
                                  hint="a sweep's members train on a backend; a single "
                                       "run trains in the kernel")
        return self.apply(_experiments.RunExperiment(experiment=experiment, force=force,
                                                     background=background, stop_at=stop_at,
                                                     resume=resume))

    def cancel(self, experiment: str) -> Run | list[str]:
        """Stops a running experiment after the step it is in; the log records that step,
        and `lab.run(experiment, resume=True)` continues from it. A sweep's id stops the
        sweep: no member starts any more, and the running ones are cancelled (returns
        them)."""
        if isinstance(experiment, str) and experiment.startswith(SWEEP_PREFIX):
            self.state.sweep(experiment)
            running = self.state.sweep_runs.get(experiment)
            if running is None or running.done:
                raise FeaturelabError(f"{experiment} is not running")
            return running.stop("code")
        return self.apply(_experiments.CancelRun(experiment=experiment))

    # -- verbs: many runs ----------------------------------------------------------------

    def sweep(self, based_on: str, grid: dict[str, Any] | None = None,
              zip: dict[str, Any] | None = None,  # DESIGN.md's name; builtin zip unused here
              sample: dict[str, Any] | None = None, n: int | None = None,
              sample_seed: int | None = None, seeds: Any = None,
              name: str | None = None) -> Sweep:
        """Member experiments of `based_on` with knob paths ("optimizer.lr",
        "model.widths", "data.n_train", "seed", ...) set to every combination of the
        `grid` lists, the `zip` lists taken together, `n` points drawn from the product of
        the `sample` lists (without replacement; `sample_seed` picks them) and `seeds`.
        A member equal to an existing experiment (its config, whatever its name) reuses
        it. Members that differ only by seed form a group (`Sweep.groups`)."""
        return self.apply(_sweeps.CreateSweep(
            based_on=based_on, grid=_sweeps.as_json(grid), zip=_sweeps.as_json(zip),
            sample=_sweeps.as_json(sample), n=n, sample_seed=sample_seed,
            seeds=_sweeps.as_json(seeds), name=name))

    def run_sweep(self, sweep: str, backend: str | None = None, workers: int | None = None,
                  background: bool = False) -> dict[str, Run]:
        """Trains the members of a sweep without a finished run in this session, each as
        its own run action (so each reuses a cached run, logs and restores like
        `lab.run(member)`), as many at once as the backend has workers: "processes" (the
        default; `workers` processes, one per core), "ray" (actors on the Ray cluster
        `ray.init` connected to) or "kernel" (one after another, here). A member's run is
        logged when a worker starts it. Running it again trains only what is left and
        continues cancelled members from their checkpoints (a diverged member is left as
        it is: training it again diverges again). Ctrl-C or `lab.cancel(sweep)` stops it.
        Returns {member: its latest run}; in the background, the SweepRun (`.wait()`)."""
        return self.apply(_sweep_runs.RunSweep(sweep=sweep, backend=backend, workers=workers,
                                               background=background))

    # -- verbs: exploring ----------------------------------------------------------------

    def explore(self, base: str, menu: dict[str, list[Any]], metric: str = "test_loss",
                goal: str = "min", budget: dict[str, float] | None = None, rail: bool = True,
                name: str | None = None) -> _explore.Explorer:
        """An exploration from `base`: each proposal changes the best configuration so far
        with values from `menu` (knob path -> values), is trained, and is kept when
        `metric` (a scalar series, its final value) improves toward `goal` ("min" or
        "max"); `budget` caps iterations, steps and seconds. With `rail` (block_repeat) a
        proposal repeating a (knob, value) pair or a whole configuration already
        evaluated is refused (RepeatBlocked) unless replicate=True. Returns an Explorer:
        `.propose(changes, reason=...)`, `.run(proposer, iterations)`, `.metrics()`,
        `.to_tsv(path)`; its metrics are rewritten beside the store after every
        iteration (<lab>.s<session>.<exploration>.json)."""
        return self.apply(_explore.Explore(base=base, menu=_sweeps.as_json(menu),
                                           metric=metric, goal=goal, budget=budget,
                                           rail=rail, name=name))

    def propose(self, exploration: str, changes: dict[str, Any], reason: str = "",
                replicate: bool = False, train: bool = True) -> Any:
        """One proposal of an exploration (see `explore`): trained and judged at once;
        returns the judged iteration (train=False only creates its experiment)."""
        return self.apply(_explore.Propose(exploration=exploration,
                                           changes=_sweeps.as_json(changes), reason=reason,
                                           replicate=replicate, train=train))

    def judge(self, exploration: str, iteration: int) -> dict[str, Any]:
        """Keeps or discards an iteration by its run's metric (`propose` does it itself)."""
        return self.apply(_explore.Judge(exploration=exploration, iteration=iteration))

    def explorer(self, exploration: str) -> _explore.Explorer:
        """The Explorer of an existing exploration ("explore_0")."""
        self.state.exploration(exploration)
        return _explore.Explorer(self, exploration)

    @property
    def executor(self) -> Scheduler | None:
        """Where a run applied now, by this thread, trains: a worker pool while a sweep
        starts a member (`with_executor`), else None (the kernel)."""
        return getattr(self._executors, "executor", None)

    @contextlib.contextmanager
    def with_executor(self, executor: Scheduler | None) -> Iterator[None]:
        # This thread's own: a run another thread applies meanwhile (a cell's lab.run
        # while the panel's sweep dispatches) trains in the kernel as asked.
        self._executors.executor = executor
        try:
            yield
        finally:
            self._executors.executor = None

    # -- verbs: views -------------------------------------------------------------------

    def view_results(self, experiments: list[str] | None = None) -> dict[str, list[str]]:
        return self.apply(_views.ViewResults(experiments=_listed(experiments)))

    def open_chart(self, metric: str) -> Any:
        return self.apply(_views.OpenChart(metric=metric))

    def enlarge_chart(self, metric: str, enlarged: bool = True) -> Any:
        return self.apply(_views.EnlargeChart(metric=metric, enlarged=enlarged))

    def hide_chart(self, metric: str) -> Any:
        return self.apply(_views.HideChart(metric=metric))

    def choose_layer(self, metric: str, layer: str) -> Any:
        return self.apply(_views.ChooseLayer(metric=metric, layer=layer))

    def choose_method(self, metric: str, method: str) -> Any:
        return self.apply(_views.ChooseMethod(metric=metric, method=method))

    def zoom(self, metric: str, x_range: tuple[float, float] | None = None,
             y_range: tuple[float, float] | None = None) -> Any:
        return self.apply(_views.Zoom(metric=metric, x_range=x_range, y_range=y_range))

    def set_axes(self, metric: str, log_x: bool | None = None, log_y: bool | None = None,
                 x: str | None = None) -> Any:
        """Log or linear axes; `x="time"` draws the curves against wall-clock seconds
        since each run's first step (as each run recorded them), `x="step"` against
        steps (fits and phases are drawn on a step axis only)."""
        return self.apply(_views.SetAxes(metric=metric, log_x=log_x, log_y=log_y, x=x))

    def set_smoothing(self, metric: str, window: int) -> Any:
        return self.apply(_views.SetSmoothing(metric=metric, window=window))

    def set_band(self, metric: str, band: str | None = "std") -> Any:
        """Draws the chart's sweep groups as mean and band ("std" or "minmax"; None:
        every run on its own)."""
        return self.apply(_views.SetBand(metric=metric, band=band))

    def show_fits(self, metric: str, visible: bool = True) -> Any:
        return self.apply(_views.ShowFits(metric=metric, visible=visible))

    def overlay(self, metric: str, also: list[str] | str) -> Any:
        """Draws other series on the chart of `metric`: other metrics with one value per
        step (`lab.overlay("train_loss", ["test_loss"])`) or other layers of a per-layer
        statistic (`["nonlinear_rate@layers.0.pre"]`); [] draws it alone."""
        return self.apply(_views.Overlay(metric=metric, also=_listed(also) or []))

    # -- verbs: statistics, fits, notes -------------------------------------------------

    def add_neuron_stat(self, stat: str, layer: str, chart: str = "hidden_activations") -> Any:
        return self.apply(_analysis.AddNeuronStat(stat=stat, layer=layer, chart=chart))

    def define_statistic(self, name: str, fn: Callable | None = None, on: str = ACTIVATIONS,
                         source: str | None = None) -> Any:
        """A DIY statistic `(tensor, dim, keepdim=False) -> tensor` from a function or its
        source text. It must be self-contained: torch, np and math are available."""
        if source is None:
            if fn is None:
                raise ConfigError("source", None, "a function or its source text")
            source = _analysis.statistic_source(fn)
        return self.apply(_analysis.DefineStatistic(name=name, source=source, on=on))

    def statistic(self, name: str, on: str = ACTIVATIONS) -> Callable[[Callable], Callable]:
        """Decorator form of define_statistic; returns the function unchanged."""
        def decorate(fn: Callable) -> Callable:
            self.define_statistic(name, fn, on=on)
            return fn
        return decorate

    def fit(self, experiment: str, metric: str, layer: str | None = None,
            x_range: tuple[float, float] | None = None,
            families: list[str] | None = None, log_y: bool = False) -> FitTable:
        """Fits the families to a metric (its steps in `x_range`); `log_y=True` fits log10
        of it, as a loss on a log axis is read (R^2 of log10 y then)."""
        return self.apply(_analysis.FitCurves(experiment=experiment, metric=metric, layer=layer,
                                              x_range=x_range, families=_listed(families),
                                              log_y=log_y))

    def phases(self, experiment: str, metric: str, layer: str | None = None,
               scale: str = "auto") -> list[dict[str, Any]]:
        """Splits a metric's curve into phases (drop, plateau, rise, exponential decay,
        decay, spike, flat) as JSON: [{start, end (steps; each ends where the next
        starts), kind, primitive (the best fit family of a moving phase), r2, mean, low,
        high}]. `scale`: "auto" (log10 for a positive curve over two decades or more),
        "log" or "linear"."""
        return self.apply(_phases.LabelPhases(experiment=experiment, metric=metric,
                                              layer=layer, scale=scale))

    def note(self, text: str) -> str:
        return self.apply(_analysis.Note(text=text))

    def reset(self) -> None:
        """Starts over: a new, empty session of this lab, with its own log and ids from
        exp_0. The earlier session stays in the store (`fl.Lab(name, session=n)` opens
        it) and finished runs stay in the run cache. Logged as the new session's first
        action, so a notebook's cells replay it where it happened. Says what it did (an
        agent's apply gets the same sentence as its value)."""
        print(self.apply(_experiments.Reset()))

    def export_log(self, path: str | Path) -> Path:
        return self.apply(_analysis.ExportLog(path=str(path)))

    # -- verbs: reads (JSON, as an agent gets them; not logged: they change nothing) -----

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment as JSON: [{id, name, tags, based_on, config, label, status
        ("not run" before a run), run (its latest run's id or None), steps_done, final
        ({train_loss, test_loss, ...: last value})}]."""
        return self.apply(_reads.ListExperiments())

    def run_metrics(self, experiment: str, metric: str, layer: str | None = None,
                    step: int | None = None, points: int | None = None) -> dict[str, Any]:
        """One scalar metric of an experiment's latest run (a reused one too) as JSON:
        {experiment, run, status, metric, layer, points_recorded, first_step, last_step,
        final, min, argmin (the step of the minimum), at_step ({step, value} if `step`
        is given), series (at most `points` [step, value] pairs if given)}; NaN is None."""
        return self.apply(_reads.RunMetrics(experiment=experiment, metric=metric, layer=layer,
                                            step=step, points=points))

    def sweep_table(self, sweep: str) -> dict[str, Any]:
        """A sweep's members as JSON: {sweep, name, base, knobs (the paths varied), rows
        (one per member, as `lab.table()` has it, plus its group)}."""
        return self.apply(_reads.SweepTable(sweep=sweep))

    def exploration_metrics(self, exploration: str, iterations: bool = False) -> dict[str, Any]:
        """An exploration's trajectory metrics as JSON ({"metrics": ...}), and with
        iterations=True every iteration too (what `Explorer.metrics()` computes)."""
        return self.apply(_reads.ExplorationMetrics(exploration=exploration,
                                                    iterations=iterations))

    # -- data out (pandas; reads the lab, changes nothing) -------------------------------

    def table(self, measures: str | list[str] | None = None) -> pd.DataFrame:
        """A pandas DataFrame, one row per experiment: id, name, sweep, seed, every config
        knob by path, the status of its latest run, and per scalar metric its last finite
        value, minimum and the step of the minimum (`train_loss.final`, `.min`,
        `.argmin`); then one column per measure, named as given: "<metric>:<summary>" with
        a summary of fit_across ("test_accuracy:first_above:0.9",
        "test_loss:in_band:0.1:1"; NaN where a run has no value)."""
        from featurelab import frames

        return frames.table(self.state, _listed(measures))

    def series_frame(self, metric: str, layer: str | None = None,
                     experiments: list[str] | None = None) -> pd.DataFrame:
        """One scalar metric in long format (experiment, step, value): of `experiments`,
        or of every experiment whose latest run has it."""
        from featurelab import frames

        return frames.series_frame(self.state, metric, layer, _listed(experiments))

    def predictions(self, experiment: str, step: int | None = None) -> pd.DataFrame:
        """What the network of an experiment's latest run predicts (record the observable
        "predictions"), at the snapshot step nearest `step` at or before it (the last when
        None; `.attrs["step"]` says which): one row per training and test sample and per
        point of a grid over a 1- or 2-D input, with split, inputs, target, prediction."""
        from featurelab import frames

        return frames.predictions(self.state, experiment, step)

    def bands(self, metric: str, sweep: str, layer: str | None = None) -> pd.DataFrame:
        """Per group of the sweep (members differing only by seed) and step: mean, std
        (ddof=1), min, max and n over the group's finished runs."""
        from featurelab import frames

        return frames.bands(self.state, metric, sweep, layer)

    def fit_group(self, sweep: str, group: str, metric: str, layer: str | None = None,
                  families: list[str] | None = None,
                  x_range: tuple[float, float] | None = None) -> _laws.GroupFit:
        """Fits laws (those of `lab.fit`: sigmoid, exponential, power, log-power by default)
        to the mean curve of a group of the sweep (a key of `Sweep.groups`: the `mean` of
        `lab.bands` over its finished runs). Returns a GroupFit (`.table`, `.best`, `.n`)."""
        return self.apply(_laws.FitGroup(sweep=sweep, group=group, metric=metric, layer=layer,
                                         families=_listed(families), x_range=x_range))

    def fit_across(self, sweep: str, metric: str, knob: str, summary: str = "final",
                   law: str = "power", layer: str | None = None,
                   where: dict[str, Any] | None = None) -> _laws.LawFit:
        """Fits a law of a knob of the sweep ("power": y = a x^b, "exponential": y = a e^(b x),
        "linear": y = a + b x) to a summary of each finished run ("final", "min",
        "argmin", "first_below:<x>", "first_above:<x>", "in_band:<lo>:<hi>": steps with
        lo <= value <= hi), its mean over each group; `where`
        fixes the sweep's other knobs. Returns a LawFit (`.points`, `.a`, `.b`, `.r2`,
        `.equation`)."""
        return self.apply(_laws.FitAcross(sweep=sweep, metric=metric, knob=knob,
                                          summary=summary, law=law, layer=layer,
                                          where=_sweeps.as_json(where)))

    # -- the session as notebook cells --------------------------------------------------

    def cells(self) -> list[ActionCell]:
        """The log as action cells: the code of every action, one cell each, view actions
        on one chart merged into one cell, as the panel inserts them."""
        return action_cells(self.log)

    def to_notebook(self, path: str | Path) -> Path:
        """Writes a notebook that opens this lab fresh, shows the panel and holds
        `cells()`: running it rebuilds the session (reusing finished runs)."""
        check_write(path, self.store, "code")  # never over the lab's own store
        return write_notebook(path, self.opening_code(), self.cells())

    def opening_code(self) -> str:
        """The code that opens this lab fresh in a notebook and shows its panel."""
        root = self.store.path.parent if self.store.path is not None else None
        args = [repr(self.name if root is not None else MEMORY)]
        if root is not None and root != Path(".featurelab"):
            args.append(f"root={str(root)!r}")
        if root is not None:
            args.append("fresh=True")
        return f"import featurelab as fl\n\nlab = fl.Lab({', '.join(args)})\nlab"

    # -- publishing (reads the lab; changes nothing) ------------------------------------
    # Not actions: nothing in the lab changes. featurelab.export pulls in matplotlib and
    # networkx, so it is imported here, on first use, not with the engine.

    def export_blog(self, path: str | Path, detail: str = "full", title: str | None = None,
                    notebook: str | Path | None = None) -> Path:
        """Writes the session as a blog draft: `.md` (Jekyll front matter, pictures in
        `<stem>_files/` beside it) or `.html` (one standalone page). detail="full" tells
        every event, "condensed" merges consecutive view events; `notebook` (a .ipynb
        path) adds its markdown cells where they were written, as the researcher's notes.
        Logged (the panel's Publish section does the same), but the draft leaves
        exports out: every export of one lab writes the same text."""
        return self.apply(_analysis.ExportBlog(
            path=str(path), detail=detail, title=title,
            notebook=None if notebook is None else str(notebook)))

    def chart_svg(self, metric: str, experiment: str | None = None,
                  step: int | None = None) -> str:
        """The chart of `metric` as the view shows it now, drawn as SVG by matplotlib (as
        the blog draws its pictures): the panel's vector download, for papers. Reads the
        lab, changes nothing. The predictions chart draws `experiment` at `step` (as its
        card shows them; default: the first viewed, its last snapshot)."""
        from featurelab.export.charts import chart_svg

        return chart_svg(self, metric, experiment, step)

    def write_blog(self, path: str, detail: str, title: str | None,
                   notebook: str | None) -> Path:
        # Context.write_blog: the export layer sits above the Lab, brought in on use.
        from featurelab.export.blog import export_blog

        return export_blog(self, path, detail=detail, title=title, notebook=notebook)

    def graph(self) -> Any:
        """The knowledge graph (a networkx DiGraph): experiments, runs, statistics, fits,
        notes; relations based_on, run_of, measured_by, defined_on, fitted_to, about."""
        from featurelab.export.graph import build_graph

        return build_graph(self)

    def export_graph(self, path: str | Path) -> Path:
        """Writes the knowledge graph as `<path>.json` (node-link) and `<path>.png`."""
        from featurelab.export.graph import export_graph

        check_write(path, self.store, "code")  # never over the lab's own store
        return export_graph(self, path)

    def export_script(self, path: str | Path) -> Path:
        """Writes a standalone .py that reruns the session and prints the fit tables."""
        from featurelab.export.script import export_script

        check_write(path, self.store, "code")  # never over the lab's own store
        return export_script(self, path)


def _plain(value: Any) -> Any:
    """Typed configs become the dicts a JSON action holds."""
    return value.to_dict() if hasattr(value, "to_dict") else value


def _listed(value: Any) -> Any:
    """A verb's "one or several": a string as a list of one, a tuple or set as a list;
    anything else as given, for the action's validation to name (`lab.select(5)`)."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, set, frozenset, range)) or hasattr(value, "tolist"):
        return list(value)
    return [value] if not hasattr(value, "__iter__") else value
