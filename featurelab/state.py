"""The lab as data: experiments, runs, statistics, fits, sweeps, notes and the view.

Actions change a LabState through its narrow methods (and the dicts it holds); the Lab
owns one per session and exporters read it. It knows nothing of the log, the store's
transactions or listeners: those are the Lab's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featurelab.engine.config import ExperimentConfig
from featurelab.engine.fit import FitTable
from featurelab.engine.models import hook_shapes, weight_shapes
from featurelab.engine.phases import Phase
from featurelab.engine.stats import StatisticRegistry
from featurelab.engine.version import engine_version
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.runs import Run
from featurelab.trajectory import Exploration
from featurelab.view import ViewState


@dataclass(frozen=True)
class Experiment:
    id: str  # "exp_0", "exp_1", ... in creation order
    config: ExperimentConfig
    based_on: str | None = None
    tags: tuple[str, ...] = ()  # labels for people (actions/catalog.py)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def label(self) -> str:
        return self.config.model.label

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<Experiment {self.id}{name}: {self.config.label}>"


@dataclass(frozen=True)
class Fit:
    id: str  # "fit_0", ...
    experiment: str
    metric: str
    layer: str | None
    table: FitTable


@dataclass(frozen=True)
class PhaseLabels:
    """A metric's curve split into phases (featurelab.engine.phases) by `lab.phases`."""

    id: str  # "phases_0", ...
    experiment: str
    metric: str
    layer: str | None
    phases: tuple[Phase, ...]


@dataclass(frozen=True)
class Sweep:
    """Experiments made from one base by varying knobs (config paths such as
    "optimizer.lr"); members that differ only by seed form a group."""

    id: str  # "sweep_0", ...
    name: str
    base: str  # the experiment the members are based on
    knobs: tuple[str, ...]  # the config paths varied, "seed" last when seeds were given
    members: tuple[str, ...]  # experiment ids, in expansion order (some may be reused)
    values: dict[str, dict[str, Any]]  # member -> its knob values (path -> JSON value)
    groups: dict[str, tuple[str, ...]]  # group key (knob values but the seed) -> members

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return (f"<Sweep {self.id}{name}: {len(self.members)} members in "
                f"{len(self.groups)} groups, based on {self.base}>")


@dataclass
class LabState:
    experiments: dict[str, Experiment] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)  # run id -> run
    latest: dict[str, str] = field(default_factory=dict)  # experiment -> its latest run id
    statistics: StatisticRegistry = field(default_factory=StatisticRegistry)
    neuron_stats: list[tuple[str, str]] = field(default_factory=list)  # (stat, layer) shown
    fits: dict[str, Fit] = field(default_factory=dict)
    phases: dict[str, PhaseLabels] = field(default_factory=dict)
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    sweep_runs: dict[str, Any] = field(default_factory=dict)  # sweep -> its latest SweepRun
    notes: list[str] = field(default_factory=list)
    view: ViewState = field(default_factory=ViewState)
    explorations: dict[str, Exploration] = field(default_factory=dict)
    # Experiments ever made, deleted ones too: ids are never given twice.
    experiments_made: int = 0

    # -- changes ------------------------------------------------------------------------

    def add_experiment(self, config: ExperimentConfig, based_on: str | None) -> Experiment:
        experiment = Experiment(f"exp_{self.experiments_made}", config, based_on)
        self.experiments[experiment.id] = experiment
        self.experiments_made += 1
        return experiment

    def bind_run(self, experiment: str, run: Run) -> Run:
        """`run` is now the latest of `experiment` (one Run per stored run: experiments
        of the same config and code share it); returns it as that experiment's."""
        run = self.runs.setdefault(run.id, run)
        self.latest[experiment] = run.id
        return run.of(experiment)

    def add_sweep(self, name: str, base: str, knobs: tuple[str, ...],
                  members: dict[str, dict[str, Any]],
                  groups: dict[str, tuple[str, ...]]) -> Sweep:
        """A sweep over experiments already in the state (`members`: id -> knob values)."""
        sweep = Sweep(f"sweep_{len(self.sweeps)}", name, base, knobs, tuple(members),
                      dict(members), dict(groups))
        self.sweeps[sweep.id] = sweep
        return sweep

    def add_fit(self, experiment: str, metric: str, layer: str | None,
                table: FitTable) -> Fit:
        fit = Fit(f"fit_{len(self.fits)}", experiment, metric, layer, table)
        self.fits[fit.id] = fit
        return fit

    def add_phases(self, experiment: str, metric: str, layer: str | None,
                   phases: tuple[Phase, ...]) -> PhaseLabels:
        labels = PhaseLabels(f"phases_{len(self.phases)}", experiment, metric, layer, phases)
        self.phases[labels.id] = labels
        return labels

    # -- look-ups -----------------------------------------------------------------------

    def experiment(self, experiment: str) -> Experiment:
        if experiment not in self.experiments:
            known = ", ".join(self.experiments) or "none yet"
            raise ConfigError("experiment", experiment, f"an existing experiment ({known})")
        return self.experiments[experiment]

    def exploration(self, exploration: str) -> Exploration:
        if exploration not in self.explorations:
            known = ", ".join(self.explorations) or "none yet"
            raise ConfigError("exploration", exploration, f"an existing exploration ({known})")
        return self.explorations[exploration]

    def sweep(self, sweep: str) -> Sweep:
        if sweep not in self.sweeps:
            known = ", ".join(self.sweeps) or "none yet"
            raise ConfigError("sweep", sweep, f"an existing sweep ({known})")
        return self.sweeps[sweep]

    def results(self, experiment: str) -> Run:
        """The latest run of an experiment."""
        self.experiment(experiment)
        if experiment not in self.latest:
            raise FeaturelabError(f"{experiment} has not been run; lab.run({experiment!r})")
        return self.runs[self.latest[experiment]].of(experiment)

    def hook_points(self) -> dict[str, tuple[int, int]]:
        """Hook points of every experiment, with their shapes on the training set."""
        points: dict[str, tuple[int, int]] = {}
        for exp in self.experiments.values():
            points.update(hook_shapes(exp.config))
        return points

    def weight_points(self) -> dict[str, tuple[int, int]]:
        """Weight points of every experiment, with their shapes (rows, cols)."""
        points: dict[str, tuple[int, int]] = {}
        for exp in self.experiments.values():
            points.update(weight_shapes(exp.config))
        return points

    def cache_key(self, config: ExperimentConfig,
                  statistics: StatisticRegistry | None = None, as_trusted: bool = False) -> str:
        """Config, engine code and the source of every DIY statistic it records, as
        `statistics` (a run's frozen copy; the lab's by default) defines them.
        as_trusted: the key its author recorded it under, as if every statistic ran."""
        statistics = statistics or self.statistics
        parts = [config.content_hash(), engine_version()]
        for spec in config.observables:
            name = spec.partition("@")[0]
            if name in statistics:
                # A run recorded while a statistic was disabled (untrusted) lacks it:
                # once trusted, the statistic's runs must not be taken from that one.
                parts += [statistics[link].source + ("" if statistics[link].trusted
                                                     or as_trusted else "\0untrusted")
                          for link in statistics.chain(name)]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]

    def metric_series(self, experiment: str, metric: str, layer: str | None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a metric: recorded every step, or computed on the snapshots
        for a statistic the run did not record."""
        result = self.results(experiment).result()
        key = f"{metric}@{layer}" if layer else metric
        if key in result.arrays or metric not in self.statistics:
            values = result.series(metric, layer)
            return np.arange(len(values)), values
        if layer is None:
            raise ConfigError("layer", layer, "a hook point such as 'layers.1.pre'",
                              hint=f"{metric!r} is computed per layer")
        return result.statistic_on_snapshots(self.statistics, metric, layer)
