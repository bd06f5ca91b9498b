"""Actions: the language of research. One class per action type, one registry."""

from featurelab.actions import (
    analysis,
    catalog,
    experiments,
    explore,
    laws,
    phases,
    reads,
    sweep_runs,
    sweeps,
    views,
)
from featurelab.actions.base import (
    ACTIONS,
    ACTORS,
    Action,
    ActionError,
    action_from_dict,
    action_schema,
)

__all__ = ["ACTIONS", "ACTORS", "Action", "ActionError", "action_from_dict", "action_schema",
           "analysis", "catalog", "experiments", "explore", "laws", "phases", "reads",
           "sweep_runs", "sweeps", "views"]
