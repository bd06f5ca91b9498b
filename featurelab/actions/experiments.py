"""Actions on experiments: create, select, run, cancel."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import field_validator
from pydantic_core import PydanticCustomError

from featurelab.actions.base import Action, BlogPart, Context, GraphLike, action, call
from featurelab.actions.compare import Comparison, compare_series
from featurelab.engine.config import STOP_SPELLING, ExperimentConfig
from featurelab.engine.data import probe_targets
from featurelab.engine.knobs import config_schemas
from featurelab.engine.models import hook_shapes, weight_shapes
from featurelab.engine.observables import plan_observables
from featurelab.engine.resources import check_resources
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.runs import Run
from featurelab.state import LabState
from featurelab.store import Store


def _number(experiment: str) -> str:
    return experiment.removeprefix("exp_")


MAX_ERRORS = 12  # at most this many errors of one request are looked for


def _drop(request: dict[str, Any], field: str) -> bool:
    """Takes the knob an error named ("model.widths[1]", "seed") out of a request;
    False when the request does not hold it (an error about the combination)."""
    path = field.split("[", 1)[0].split(".")
    if len(path) == 1 and path[0] in request:
        del request[path[0]]
        return True
    if len(path) == 2 and isinstance(request.get(path[0]), dict) and path[1] in request[path[0]]:
        del request[path[0]][path[1]]
        if not request[path[0]]:
            del request[path[0]]
        return True
    return False


@action
class CreateExperiment(Action):
    """Creates an experiment from a config, or based on another with some changes."""

    type: ClassVar[str] = "create_experiment"
    model: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    loss: str | None = None
    observables: list[str] | None = None
    seed: int | None = None
    name: str | None = None
    snapshots: dict[str, Any] | None = None
    based_on: str | None = None
    observables_add: list[str] | None = None
    observables_remove: list[str] | None = None
    eval_every: int | None = None
    stop: dict[str, Any] | str | None = None  # or its short spelling, "test_loss < 0.1 for 50"

    @classmethod
    def field_schemas(cls) -> dict[str, dict[str, Any]]:
        # The config's own schemas (types, ranges, enums, defaults), each optional: left
        # out (null), it keeps its default, or the value of the experiment based on.
        out = {name: {"anyOf": [schema, {"type": "null"}],
                      "description": schema.get("description", "")}
               for name, schema in config_schemas().items()}
        out["stop"]["anyOf"].insert(1, {"type": "string", "description": STOP_SPELLING})
        return out

    @field_validator("seed", "eval_every", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        # pydantic's lax int would pass seed=True, 1.0 or "1" on as 1, which the config
        # itself refuses (a seed is an integer); an integer of numpy's (np.arange) is one.
        if value is None:
            return None
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return operator.index(value)

    def config(self, state: LabState) -> ExperimentConfig:
        given = {k: getattr(self, k) for k in ("model", "data", "optimizer", "loss",
                                               "observables", "seed", "name", "snapshots",
                                               "eval_every", "stop")}
        given = {k: v for k, v in given.items() if v is not None}
        try:
            return self._config(state, given)
        except ConfigError as first:
            first.others = self._other_errors(state, given, first.field)
            raise

    def _other_errors(self, state: LabState, given: dict[str, Any], first: str
                      ) -> list[ConfigError]:
        """What else is wrong in the request, so a form shows every error at once: the
        request again without the knob each error named (its base value instead), until
        it builds or names nothing new. Errors come in context (a knob wrong only with
        another one given still shows)."""
        out: list[ConfigError] = []
        request = {k: dict(v) if isinstance(v, dict) else v for k, v in given.items()}
        dropped: set[str] = set()
        field = first
        for _ in range(MAX_ERRORS):
            if not _drop(request, field):
                break
            if self.based_on is None and not set(request) - {"name"}:
                break  # nothing of the request left to check
            dropped.add(field.split("[", 1)[0])
            try:
                self._config(state, request)
                break
            except ConfigError as exc:
                # about a knob taken out: the base value put in its place, not the request
                if exc.field.split("[", 1)[0] in dropped:
                    break
                out.append(exc)
                field = exc.field
            except FeaturelabError:
                break
        return out

    def _config(self, state: LabState, given: dict[str, Any]) -> ExperimentConfig:
        if self.based_on is None and not set(given) - {"name"}:
            # Every default at once is rarely what was meant (an agent's empty action):
            # say what can be given instead of creating the reference config silently.
            raise ConfigError("based_on", None, "an experiment to start from, or a config",
                              hint="give model, data, optimizer, loss, observables, seed, "
                                   "snapshots, eval_every or stop (fl.knobs() lists every "
                                   "knob and its default)")
        if self.based_on is None:
            if self.observables_add or self.observables_remove:
                raise ConfigError("observables_add", self.observables_add,
                                  "only together with based_on",
                                  hint="from scratch, list all observables")
            config = ExperimentConfig.from_dict(given)
        else:
            config = state.experiment(self.based_on).config.replace(**{"name": "", **given})
        observables = list(config.observables)
        for name in self.observables_remove or []:
            if name not in observables:
                raise ConfigError("observables_remove", name,
                                  "one of " + ", ".join(observables))
            observables.remove(name)
        config = config.replace(observables=observables + list(self.observables_add or []))
        plan_observables(config.observables, state.statistics, hook_shapes(config),
                         config.data.is_classification,
                         weight_shapes(config))  # raises on unknown names
        return config

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        config = self.config(state)
        if recorded is None:  # not when restoring a log: it stays readable on any machine
            # A formula giving NaN/inf targets, and a run too big for this machine's
            # memory or disk, are refused here, next to the field, not met mid-run.
            check_resources(config, ctx.store.snapshot_root)
            probe_targets(config.data, config.seed)
        experiment = state.add_experiment(config, self.based_on)
        summary = {"experiment": experiment.id, "label": config.label,
                   "config_hash": config.content_hash()}
        return summary, experiment

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        exp = state.experiments.get(result.get("experiment", ""))
        if exp is None:
            return None
        graph.node(exp.id, "experiment", label=exp.id, name=exp.name or None,
                   config=exp.config.label, config_hash=exp.config.content_hash())
        if exp.based_on:
            graph.edge(exp.id, exp.based_on, "based_on")
        for spec in exp.config.observables:
            name, _, layer = spec.partition("@")
            graph.edge(exp.id, graph.metric(name), "measured_by", layer=layer or None)
        return exp.id

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        parts = super().blog(result, state)
        experiment = state.experiments.get((result or {}).get("experiment", ""))
        return parts if experiment is None else [*parts, ("config", experiment)]

    def to_code(self) -> str:
        return call("lab.create_experiment", **self.params())

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if not result:
            return "Created an experiment."
        named = f", {self.name!r}" if self.name else ""
        based = f" based on {self.based_on}" if self.based_on else ""
        return f"Created experiment {_number(result['experiment'])}{named}{based}."


@action
class SelectExperiments(Action):
    """Selects the experiments the panel shows and compares."""

    type: ClassVar[str] = "select_experiments"
    view: ClassVar[bool] = True
    experiments: list[str]

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        for experiment in self.experiments:
            state.experiment(experiment)
        state.view.selected = list(self.experiments)
        return {"selected": list(self.experiments)}, list(self.experiments)

    def to_code(self) -> str:
        return call("lab.select", self.experiments)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Selected {', '.join(self.experiments)}." if self.experiments else \
            "Cleared the selection."

    def coalesce_key(self) -> str | None:
        return "selection"


@action
class RunExperiment(Action):
    """Trains an experiment; reuses a finished run of the same config and code. stop_at
    ends the run cancelled after that many steps (how a cancelled run's cell reruns it);
    resume continues the experiment's cancelled run from its checkpoint, in a new run."""

    type: ClassVar[str] = "run"
    experiment: str
    force: bool = False
    background: bool = False  # the panel trains in the background; code waits
    stop_at: int | None = None
    resume: bool = False
    sweep: str | None = None  # a member's run started by `lab.run(sweep)`: its cell's

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        config = state.experiment(self.experiment).config
        if recorded is not None:  # restoring: bind to the recorded run, train nothing
            run_id = recorded.get("run")
            if not run_id:
                raise FeaturelabError(f"the log has no run id for {self.experiment}")
            # one Run per stored run: two experiments may share it (reused)
            run = Run(run_id, self.experiment, ctx.store, state.statistics)
            return recorded, state.bind_run(self.experiment, run)
        if self.experiment in state.latest and not state.runs[state.latest[self.experiment]].done:
            raise FeaturelabError(f"{self.experiment} is already running; "
                                  f"lab.cancel({self.experiment!r}) stops it")
        stop = self._stop(config)
        # The run records with the statistics as they are now (a frozen copy), and is
        # cached under the key of that copy, whatever is redefined while it trains.
        statistics = state.statistics.frozen()
        key = state.cache_key(config, statistics)
        # A statistic not trusted here runs no code when its author's run is reused, so
        # that run is looked up too; a new run is recorded under the untrusted key.
        authored = state.cache_key(config, statistics, as_trusted=True)
        reuse = None if self.force else (self._cached(ctx.store, authored, stop)
                                         or self._cached(ctx.store, key, stop))
        if reuse:  # the same Run object: an in-memory lab keeps its snapshots on it
            run = state.bind_run(self.experiment, Run(reuse, self.experiment, ctx.store,
                                                      state.statistics))
            return {"run": reuse, "reused": True, **_ended_summary(run)}, run
        summary: dict[str, Any] = {}
        if self.resume:
            partial = self._to_continue(state, ctx.store, key, stop)
            summary = {"resumed_from": partial.id, "from_step": partial.steps_done}
        run = state.bind_run(self.experiment, Run(uuid.uuid4().hex[:16], self.experiment,
                                                  ctx.store, statistics))
        return {"run": run.id, "status": "running", "cache_key": key, **summary}, run

    def _stop(self, config: ExperimentConfig) -> int | None:
        """The step count the run stops at; None: it trains to the end."""
        if self.resume and self.force:
            raise ConfigError("force", self.force, "False together with resume=True",
                              hint="resume continues the cancelled run; force starts over")
        if self.stop_at is None:
            return None
        if self.stop_at < 0:
            raise ConfigError("stop_at", self.stop_at, "a step count, 0 or more")
        return self.stop_at if self.stop_at < config.optimizer.steps else None

    @staticmethod
    def _cached(store: Store, key: str, stop: int | None) -> str | None:
        # A run stopped at `stop` is the run a cancelled run's cell asks for; a run to the
        # end (also one continued from a checkpoint) is the same as any finished one.
        if stop is None:
            return store.finished_run(key)
        return store.cancelled_run(key, stop)

    def _to_continue(self, state: LabState, store: Store, key: str, stop: int | None) -> Any:
        """The cancelled run a resume continues: the experiment's latest, with a
        checkpoint, of the same config and code."""
        start_over = f"lab.run({self.experiment!r}, force=True) starts it over"
        if self.experiment not in state.latest:
            raise FeaturelabError(f"{self.experiment} has no run to continue; "
                                  f"lab.run({self.experiment!r}) trains it")
        run = state.runs[state.latest[self.experiment]]
        if run.status != "cancelled" or not run.has_checkpoint:
            why = {"interrupted": "it was interrupted (its kernel stopped or was killed), "
                                  "which leaves no checkpoint",
                   "cancelled": "it was stopped inside a step (the notebook's stop "
                                "button), or its checkpoint could not be saved"}.get(
                run.status, f"it {run.status}; only a cancelled run keeps one")
            raise FeaturelabError(f"cannot continue {self.experiment}: its latest run "
                                  f"{run.id} has no checkpoint ({why}); {start_over}")
        row = store.run_row(run.id) or {}
        if row.get("cache_key") != key:
            raise FeaturelabError(f"cannot continue {self.experiment}: its config or code "
                                  f"(a statistic's source) changed since run {run.id} "
                                  f"stopped; {start_over}")
        if stop is not None and stop <= run.steps_done:
            raise ConfigError("stop_at", self.stop_at, f"a step after {run.steps_done}, "
                              "where the run to continue stopped")
        return run

    def after(self, state: LabState, ctx: Context, entry: Any) -> Any:
        run = state.runs[entry.result["run"]]
        if entry.result.get("reused"):
            return run.of(self.experiment)
        config = state.experiment(self.experiment).config
        partial = entry.result.get("resumed_from")
        return run.train(config, entry.result["cache_key"], self.background, ctx.run_ended,
                         on_start=ctx.run_started,
                         stop_at=self._stop(config),
                         resume_from=state.runs[partial] if partial else None,
                         executor=ctx.executor,
                         thread_plan=getattr(self, "_thread_plan", None))

    def stopped_at(self, step: int) -> RunExperiment:
        """This run as a rerun of it must go once a cancel stopped it at `step`."""
        return self.but(stop_at=step)

    def rerun(self, result: dict[str, Any] | None, stops: dict[str, int]) -> RunExperiment:
        # A rerun waits for its run (in the foreground), and a cancelled run stops where
        # it was. A sweep's member reruns as a run of its own (the sweep's run is not
        # rerun: its members' entries say how each went).
        again = self.but(background=False, sweep=None)
        at = stops.get((result or {}).get("run", ""))
        again = again if at is None else again.stopped_at(at)
        # ... with the threads the logged run had at each step (engine/threads.py), not
        # those this machine's load would choose: a plan is how it ran, not a parameter
        # of the action (its code stays lab.run(...)), so it rides on this one object.
        plan = _thread_plan((result or {}).get("info") or {})
        if plan:
            object.__setattr__(again, "_thread_plan", plan)
        return again

    def compare(self, recorded: dict[str, Any], replayed: dict[str, Any],
                state: LabState) -> Comparison:
        if "series" not in recorded:
            return [], []  # a reused run: its own log entry has them
        arrays = state.results(self.experiment).result().arrays
        return compare_series(self.experiment, recorded, replayed, arrays)

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        run = state.runs.get(result.get("run", ""))
        if run is None:
            return None
        node = graph.node(f"run:{run.id}", "run", label=f"run of {run.experiment}",
                          status=run.status, steps=run.steps_done,
                          reused=bool(result.get("reused")))
        graph.edge(node, run.experiment, "run_of")
        graph.latest_run[run.experiment] = node
        return node

    def to_code(self) -> str:
        code = call("lab.run", self.experiment, force=self.force or None,
                    stop_at=self.stop_at, resume=self.resume or None)
        if self.sweep is not None:  # the sweep's own code trains it
            return f"# {code}: trained by {call('lab.run', self.sweep)}"
        # A cell waits for its run, so Restart & Run All replays in order.
        return code

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if not result:
            return f"Continued {self.experiment}." if self.resume else f"Ran {self.experiment}."
        status, steps = result.get("status"), result.get("steps")
        if result.get("reused"):
            if status == "cancelled":
                return f"Reused the run of {self.experiment} cancelled at step {steps}."
            return f"Reused the finished run of {self.experiment}."
        start = result.get("from_step")
        if status == "running":
            return (f"Started running {self.experiment}." if start is None else
                    f"Started continuing {self.experiment} from step {start}.")
        ran = f"Ran {self.experiment}" if start is None else \
            f"Continued {self.experiment} from step {start}"
        if status == "finished":
            stop = (result.get("info") or {}).get("stopped_early")
            if stop:
                return (f"{ran} ({steps} steps): stopped early at step {stop['step']}, "
                        f"{stop['reason']}.")
            return f"{ran} ({steps} steps)."
        if status == "cancelled" and self.stop_at is not None and steps == self.stop_at:
            return f"{ran} until step {steps} (cancelled at that step)."
        why = f": {result['error']}" if result.get("error") else ""
        plural = "" if steps == 1 else "s"
        return f"{ran}: {status} after {steps} step{plural}{why}."


def _ended_summary(run: Any) -> dict[str, Any]:
    result = run.result()
    return {"status": result.status, "steps": result.steps_done, "info": result.info}


@action
class CancelRun(Action):
    """Stops a running experiment; the steps it recorded and a checkpoint are kept."""

    type: ClassVar[str] = "cancel"
    # Its run's cell and replay rerun the run stopped at the recorded step instead.
    not_replayed: ClassVar[str | None] = "its run reruns stopped at the step it recorded"
    experiment: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        run = state.results(self.experiment)
        if recorded is not None:
            return recorded, run
        if run.done:
            raise FeaturelabError(f"{self.experiment} is not running ({run.status})")
        trainer = run.trainer  # read once: a run that ends lets its trainer go
        if trainer is None:  # its trainer lives in another Lab or process
            raise FeaturelabError(f"{self.experiment} is running in another lab session "
                                  "(another kernel or Lab object); cancel it there")
        at = trainer.cancel()  # the exact step count it ends at
        if at is None or at >= trainer.n_steps:  # too late: it finishes anyway
            raise FeaturelabError(f"{self.experiment} is not running "
                                  f"({trainer.status if at is None else 'finishing'})")
        return {"run": run.id, "at_step": at}, run

    @staticmethod
    def stops(entries: Iterable[Any]) -> dict[str, int]:
        """Run id -> the step a logged cancel stopped it at, for the log's entries."""
        return {e.result["run"]: e.result["at_step"] for e in entries
                if e.type == "cancel" and e.result and "at_step" in e.result}

    def to_code(self) -> str:
        return call("lab.cancel", self.experiment)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        at = f" at step {result['at_step']}" if result else ""
        return f"Cancelled the run of {self.experiment}{at}."


@action
class Reset(Action):
    """Starts a new, empty session of the lab; the earlier one stays in the store."""

    type: ClassVar[str] = "reset"

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if recorded is not None:  # folding the session it begins: it is empty already
            return recorded, recorded.get("message", "")
        left = ctx.start_session()
        message = (f"Started session {ctx.session} of lab {ctx.name!r}; session {left} "
                   f"stays in the store (fl.Lab({ctx.name!r}, session={left}) opens it)")
        return {"left": left, "session": ctx.session, "message": message}, message

    def to_code(self) -> str:
        return call("lab.reset")

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return "Started the lab over (a new session)."


def _thread_plan(info: dict[str, Any]) -> list[list[int]] | None:
    """The [step, threads] plan a logged run trained with: its own, or for a log from
    before runs kept one, its thread count from the start; None for anything else (a
    hand-edited count that is not a whole number of threads is not followed)."""
    plan = info.get("thread_plan")
    if plan is None and info.get("threads") is not None:
        plan = [[0, info["threads"]]]
    if not isinstance(plan, list) or not plan:
        return None
    for pair in plan:
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
                and pair[0] >= 0 and pair[1] >= 1):
            return None
    return plan
