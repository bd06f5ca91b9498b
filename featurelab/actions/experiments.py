"""Actions on experiments: create, select, run, cancel."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from featurelab.actions.base import Action, action, call
from featurelab.config import ExperimentConfig
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.models import hook_shapes
from featurelab.observables import plan_observables

if TYPE_CHECKING:
    from featurelab.lab import Lab


def _number(experiment: str) -> str:
    return experiment.removeprefix("exp_")


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

    def config(self, lab: Lab) -> ExperimentConfig:
        given = {k: getattr(self, k) for k in ("model", "data", "optimizer", "loss",
                                               "observables", "seed", "name", "snapshots")}
        given = {k: v for k, v in given.items() if v is not None}
        if self.based_on is None:
            if self.observables_add or self.observables_remove:
                raise ConfigError("observables_add", self.observables_add,
                                  "only together with based_on",
                                  hint="from scratch, list all observables")
            config = ExperimentConfig.from_dict(given)
        else:
            config = lab.experiment(self.based_on).config.replace(**{"name": "", **given})
        observables = list(config.observables)
        for name in self.observables_remove or []:
            if name not in observables:
                raise ConfigError("observables_remove", name,
                                  "one of " + ", ".join(observables))
            observables.remove(name)
        config = config.replace(observables=observables + list(self.observables_add or []))
        plan_observables(config.observables, lab.statistics, hook_shapes(config),
                         config.data.is_classification)  # raises on unknown names
        return config

    def apply(self, lab: Lab, recorded: dict[str, Any] | None) -> tuple[dict, Any]:
        from featurelab.lab import Experiment

        config = self.config(lab)
        experiment = Experiment(f"exp_{len(lab.experiments)}", config, self.based_on)
        lab.experiments[experiment.id] = experiment
        summary = {"experiment": experiment.id, "label": config.label,
                   "config_hash": config.content_hash()}
        return summary, experiment

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

    def apply(self, lab: Lab, recorded: dict[str, Any] | None) -> tuple[dict, Any]:
        for experiment in self.experiments:
            lab.experiment(experiment)
        lab.view.selected = list(self.experiments)
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
    """Trains an experiment; reuses a finished run of the same config and code."""

    type: ClassVar[str] = "run"
    experiment: str
    force: bool = False
    background: bool = False  # the panel trains in the background; code waits

    def apply(self, lab: Lab, recorded: dict[str, Any] | None) -> tuple[dict, Any]:
        from featurelab.runs import Run

        config = lab.experiment(self.experiment).config
        if recorded is not None:  # restoring: bind to the recorded run, train nothing
            run_id = recorded.get("run")
            if not run_id:
                raise FeaturelabError(f"the log has no run id for {self.experiment}")
            self._bind(lab, Run(run_id, self.experiment, lab.store, lab.statistics))
            return recorded, lab.runs[run_id]
        if self.experiment in lab.latest and not lab.runs[lab.latest[self.experiment]].done:
            raise FeaturelabError(f"{self.experiment} is already running; "
                                  f"lab.cancel({self.experiment!r}) stops it")
        key = lab.cache_key(config)
        reuse = None if self.force else lab.store.finished_run(key)
        if reuse:  # the same Run object: an in-memory lab keeps its snapshots on it
            run = lab.runs.get(reuse) or Run(reuse, self.experiment, lab.store, lab.statistics)
            lab.runs[run.id] = run
            lab.latest[self.experiment] = run.id
            return {"run": reuse, "reused": True, **_ended_summary(run)}, run
        run = Run(uuid.uuid4().hex[:16], self.experiment, lab.store, lab.statistics)
        self._bind(lab, run)
        return {"run": run.id, "status": "running", "cache_key": key}, run

    @staticmethod
    def _bind(lab: Lab, run: Any) -> None:
        lab.runs[run.id] = run
        lab.latest[run.experiment] = run.id

    def after(self, lab: Lab, entry: Any) -> Any:
        run = lab.runs[entry.result["run"]]
        if entry.result.get("reused"):
            return run
        config = lab.experiment(self.experiment).config
        return run.train(config, entry.result["cache_key"], self.background, lab._run_ended,
                         on_start=lambda r: lab._notify("run_started", r))

    def to_code(self) -> str:
        # A cell waits for its run, so Restart & Run All replays in order.
        return call("lab.run", self.experiment, force=self.force or None)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if not result:
            return f"Ran {self.experiment}."
        if result.get("reused"):
            return f"Reused the finished run of {self.experiment}."
        status, steps = result.get("status"), result.get("steps")
        if status == "running":
            return f"Started running {self.experiment}."
        if status == "finished":
            return f"Ran {self.experiment} ({steps} steps)."
        why = f": {result['error']}" if result.get("error") else ""
        plural = "" if steps == 1 else "s"
        return f"Ran {self.experiment}: {status} after {steps} step{plural}{why}."


def _ended_summary(run: Any) -> dict[str, Any]:
    result = run.result()
    return {"status": result.status, "steps": result.steps_done, "info": result.info}


@action
class CancelRun(Action):
    """Stops a running experiment; the steps it recorded are kept."""

    type: ClassVar[str] = "cancel"
    not_replayed: ClassVar[str | None] = "a rerun trains to the end"
    experiment: str

    def apply(self, lab: Lab, recorded: dict[str, Any] | None) -> tuple[dict, Any]:
        run = lab.results(self.experiment)
        if recorded is None:
            if run.done:
                raise FeaturelabError(f"{self.experiment} is not running ({run.status})")
            if run.trainer is None:  # its trainer lives in another Lab or process
                raise FeaturelabError(f"{self.experiment} is running in another lab session "
                                      "(another kernel or Lab object); cancel it there")
            run.cancel()
        return {"run": run.id, "at_step": run.steps_done}, run

    def to_code(self) -> str:
        return call("lab.cancel", self.experiment)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        at = f" at step {result['at_step']}" if result else ""
        return f"Cancelled the run of {self.experiment}{at}."
