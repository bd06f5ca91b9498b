"""The result of a run: its series, how it ended, and its activation snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featurelab.engine.config import ExperimentConfig
from featurelab.engine.predictions import PREDICTIONS
from featurelab.engine.snapshots import Snapshots
from featurelab.engine.stats import WEIGHTS, StatisticRegistry, apply_statistic
from featurelab.errors import FeaturelabError


@dataclass
class RunResult:
    config: ExperimentConfig
    status: str  # finished | cancelled | diverged | failed | running | ready
    steps_done: int  # steps whose series are complete
    arrays: dict[str, np.ndarray]  # "name" or "name@point" -> (steps,) or (steps, neurons)
    info: dict[str, Any] = field(default_factory=dict)  # torch version, threads, step impl...
    error: str = ""  # why the run stopped early, if it did
    stat_errors: dict[str, str] = field(default_factory=dict)  # series key -> error
    snapshots: Snapshots | None = None

    @property
    def stopped_early(self) -> str:
        """'stopped early at step 1234: test_accuracy > 0.99 for 100 steps', or '' when
        the run did not stop on its early-stop condition."""
        stop = self.info.get("stopped_early")
        return f"stopped early at step {stop['step']}: {stop['reason']}" if stop else ""

    @property
    def stop_step(self) -> int | None:
        """The step an early stop ended the run at (its last recorded step), or None."""
        stop = self.info.get("stopped_early")
        return int(stop["step"]) if stop else None

    def evaluated_steps(self, name: str = "test_loss") -> np.ndarray:
        """The steps a series holds a value at: every step, or for test metrics those of
        `eval_every` (and the last), NaN between."""
        values = self.series(name)
        return np.flatnonzero(~np.isnan(values).reshape(len(values), -1).all(axis=1))

    def names(self) -> list[str]:
        return sorted(self.arrays)

    def series(self, name: str, layer: str | None = None) -> np.ndarray:
        """One recorded series: (steps,) or (steps, neurons)."""
        k = f"{name}@{layer}" if layer else name
        if k in self.arrays:
            return self.arrays[k]
        if layer is None:
            layers = [s.partition("@")[2] for s in self.arrays if s.startswith(name + "@")]
            if layers:
                raise FeaturelabError(f"{name!r} is recorded per layer; pass layer= one of "
                                      + ", ".join(layers))
        if k in self.stat_errors:
            raise FeaturelabError(f"{k!r} was not recorded: {self.stat_errors[k]}")
        raise FeaturelabError(f"no series {k!r} in this run; recorded: "
                              + ", ".join(self.names()))

    def statistic_on_snapshots(self, registry: StatisticRegistry, name: str, layer: str
                               ) -> tuple[np.ndarray, np.ndarray]:
        """A statistic (possibly defined after the run) on the stored snapshots:
        (steps (K,), values (K,) or (K, neurons))."""
        if registry.base(name) == WEIGHTS:  # snapshots hold activations only
            raise FeaturelabError(f"{name!r} is a statistic on weights: it is measured while "
                                  f"a run trains; record it with the observable "
                                  f"'{name}@{layer}' and run the experiment")
        if self.snapshots is None or set(self.snapshots.points) <= {PREDICTIONS}:
            raise FeaturelabError("this run kept no activation snapshots; add the observable "
                                  "'hidden_activations' to keep them")
        if layer == PREDICTIONS:  # kept with the snapshots, but outputs, not a layer
            raise FeaturelabError(f"{PREDICTIONS!r} is not a layer; statistics are computed "
                                  "on hook points")
        values = self.snapshots.stack(layer)  # (K, S, N)
        for link in registry.chain(name):
            values = apply_statistic(registry[link], values)
        return self.snapshots.steps, values.numpy()
