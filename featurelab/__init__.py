"""featurelab: a Jupyter-native lab bench for the physics of feature learning."""

# The names below are imported on first use (PEP 562), not with the package: every module
# under featurelab imports this file first, and a worker process of the local pool
# (featurelab.workers.child) needs the engine alone. Importing the whole package there
# (scipy for fits, pandas, the actions, the store) made a worker's start 3.1-3.6 s
# instead of 1.6 s on two cores. The names are listed three times, for type checkers,
# for the lookup and in __all__; tests/test_packaging.py checks that they agree.

import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
import types as _types
from typing import TYPE_CHECKING
from typing import Any as _Any

if TYPE_CHECKING:
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

# name -> the module that defines it
_MODULES: dict[str, str] = {
    "ActionError": "featurelab.actions",
    "action_schema": "featurelab.actions",
    "GroupFit": "featurelab.actions.laws",
    "LawFit": "featurelab.actions.laws",
    "DataConfig": "featurelab.engine.config",
    "ExperimentConfig": "featurelab.engine.config",
    "ModelConfig": "featurelab.engine.config",
    "OptimizerConfig": "featurelab.engine.config",
    "SnapshotConfig": "featurelab.engine.config",
    "StopConfig": "featurelab.engine.config",
    "FitRow": "featurelab.engine.fit",
    "FitTable": "featurelab.engine.fit",
    "fit_curves": "featurelab.engine.fit",
    "knobs": "featurelab.engine.knobs",
    "Phase": "featurelab.engine.phases",
    "label_phases": "featurelab.engine.phases",
    "phases_text": "featurelab.engine.phases",
    "RunResult": "featurelab.engine.results",
    "Statistic": "featurelab.engine.stats",
    "StatisticRegistry": "featurelab.engine.stats",
    "Trainer": "featurelab.engine.train",
    "ConfigError": "featurelab.errors",
    "FeaturelabError": "featurelab.errors",
    "FeaturelabWarning": "featurelab.errors",
    "StatisticError": "featurelab.errors",
    "StoreError": "featurelab.errors",
    "Lab": "featurelab.lab",
    "ActionLog": "featurelab.log",
    "LogEntry": "featurelab.log",
    "ReplayReport": "featurelab.replay",
    "replay": "featurelab.replay",
    "Run": "featurelab.runs",
    "Experiment": "featurelab.state",
    "Fit": "featurelab.state",
    "LabState": "featurelab.state",
    "PhaseLabels": "featurelab.state",
    "Sweep": "featurelab.state",
    "trust": "featurelab.trust",
}


class _Package(_types.ModuleType):
    """featurelab.replay and featurelab.trust are functions named like the modules that
    define them. Importing such a module sets it as an attribute of its package, which
    would hide the function from then on: those attributes stay the functions (as they
    were when this file imported every name at once)."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, _types.ModuleType) and name in _MODULES:
            return  # the module stays reachable as sys.modules["featurelab.<name>"]
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> _Any:
    module = _MODULES.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(module), name)
        globals()[name] = value  # the next access is a plain lookup
        return value
    # a submodule (fl.actions, fl.engine...), as an eager import of everything made them
    if not name.startswith("_") and _importlib_util.find_spec(f"{__name__}.{name}"):
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {n for n in globals() if n[:1] != "_"} - {"TYPE_CHECKING"})


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
