"""featurelab: a Jupyter-native lab bench for the physics of feature learning."""

from featurelab.actions import ActionError, action_schema
from featurelab.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimizerConfig,
    SnapshotConfig,
)
from featurelab.errors import ConfigError, FeaturelabError, StatisticError
from featurelab.fit import FitRow, FitTable, fit_curves
from featurelab.lab import Experiment, Fit, Lab
from featurelab.log import ActionLog, LogEntry
from featurelab.replay import ReplayReport, replay
from featurelab.results import RunResult
from featurelab.runs import Run
from featurelab.stats import Statistic, StatisticRegistry
from featurelab.train import Trainer

__all__ = [
    "ActionError",
    "ActionLog",
    "ConfigError",
    "DataConfig",
    "Experiment",
    "ExperimentConfig",
    "FeaturelabError",
    "Fit",
    "FitRow",
    "FitTable",
    "Lab",
    "LogEntry",
    "ModelConfig",
    "OptimizerConfig",
    "ReplayReport",
    "Run",
    "RunResult",
    "SnapshotConfig",
    "Statistic",
    "StatisticError",
    "StatisticRegistry",
    "Trainer",
    "action_schema",
    "fit_curves",
    "replay",
]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where `jupyter labextension develop .` finds the built labextension (a wheel
    installs it into share/jupyter/labextensions instead)."""
    return [{"src": "labextension", "dest": "featurelab-cells"}]
