"""featurelab: a Jupyter-native lab bench for the physics of feature learning."""

from featurelab.actions import ActionError, action_schema
from featurelab.actions.laws import GroupFit, LawFit
from featurelab.engine.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimizerConfig,
    SnapshotConfig,
    StopConfig,
)
from featurelab.engine.fit import FitRow, FitTable, fit_curves
from featurelab.engine.knobs import knobs
from featurelab.engine.phases import Phase, label_phases, phases_text
from featurelab.engine.results import RunResult
from featurelab.engine.stats import Statistic, StatisticRegistry
from featurelab.engine.train import Trainer
from featurelab.errors import (
    ConfigError,
    FeaturelabError,
    FeaturelabWarning,
    StatisticError,
    StoreError,
)
from featurelab.lab import Lab
from featurelab.log import ActionLog, LogEntry
from featurelab.replay import ReplayReport, replay
from featurelab.runs import Run
from featurelab.state import Experiment, Fit, LabState, PhaseLabels, Sweep
from featurelab.trust import trust

__all__ = [
    "ActionError",
    "ActionLog",
    "ConfigError",
    "DataConfig",
    "Experiment",
    "ExperimentConfig",
    "FeaturelabError",
    "FeaturelabWarning",
    "Fit",
    "FitRow",
    "FitTable",
    "GroupFit",
    "Lab",
    "LabState",
    "LawFit",
    "LogEntry",
    "ModelConfig",
    "OptimizerConfig",
    "Phase",
    "PhaseLabels",
    "ReplayReport",
    "Run",
    "RunResult",
    "SnapshotConfig",
    "Statistic",
    "StatisticError",
    "StatisticRegistry",
    "StopConfig",
    "StoreError",
    "Sweep",
    "Trainer",
    "action_schema",
    "fit_curves",
    "knobs",
    "label_phases",
    "phases_text",
    "replay",
    "trust",
]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where `jupyter labextension develop .` finds the built labextension (a wheel
    installs it into share/jupyter/labextensions instead)."""
    return [{"src": "labextension", "dest": "featurelab-cells"}]
