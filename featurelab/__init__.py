"""featurelab: a Jupyter-native lab bench for the physics of feature learning."""

from featurelab.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimizerConfig,
    SnapshotConfig,
)
from featurelab.errors import ConfigError, FeaturelabError, StatisticError
from featurelab.fit import FitRow, FitTable, fit_curves
from featurelab.results import RunResult
from featurelab.stats import Statistic, StatisticRegistry
from featurelab.train import Trainer

__all__ = [
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "FeaturelabError",
    "FitRow",
    "FitTable",
    "ModelConfig",
    "OptimizerConfig",
    "RunResult",
    "SnapshotConfig",
    "Statistic",
    "StatisticError",
    "StatisticRegistry",
    "Trainer",
    "fit_curves",
]
