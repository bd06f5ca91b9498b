"""Keeping many experiments in order: rename, tag and delete, each a logged action.

A name and tags are labels for people (the run cache ignores the name: a renamed
experiment keeps its runs). Deleting takes an experiment out of the lab's list, the
table and the charts; its runs stay in the store and the log keeps everything, so a
delete loses no work (the experiment id is never given to another one).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from featurelab.actions.base import Action, Context, action, call
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.state import LabState

MAX_LABEL = 200  # characters: a name or a tag is a label, not a note


def _label(field: str, text: str) -> str:
    clean = " ".join(text.split())  # one line: it is shown in a table cell
    if not clean or len(clean) > MAX_LABEL:
        raise ConfigError(field, text, f"1 to {MAX_LABEL} characters, not only spaces")
    return clean


@action
class RenameExperiment(Action):
    """Gives an experiment another name (its id, config and runs stay)."""

    type: ClassVar[str] = "rename_experiment"
    experiment: str
    name: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        experiment = state.experiment(self.experiment)
        name = _label("name", self.name)
        renamed = dataclasses.replace(experiment, config=experiment.config.replace(name=name))
        state.experiments[experiment.id] = renamed
        return {"before": experiment.name}, renamed

    def to_code(self) -> str:
        return call("lab.rename", self.experiment, self.name)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Renamed {self.experiment} to {' '.join(self.name.split())!r}."


@action
class TagExperiments(Action):
    """Adds and removes tags on experiments ("baseline", "diverges", ...)."""

    type: ClassVar[str] = "tag_experiments"
    experiments: list[str]
    add: list[str] | None = None
    remove: list[str] | None = None

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        found = [state.experiment(e) for e in self.experiments]  # all known, or nothing
        add = [_label("add", t) for t in self.add or []]
        remove = {" ".join(t.split()) for t in self.remove or []}
        if not add and not remove:
            raise ConfigError("add", self.add, "at least one tag to add or remove")
        tags = {}
        for experiment in found:
            kept = [t for t in experiment.tags if t not in remove]
            new = tuple(dict.fromkeys([*kept, *add]))
            state.experiments[experiment.id] = dataclasses.replace(experiment, tags=new)
            tags[experiment.id] = list(new)
        return {"tags": tags}, tags

    def to_code(self) -> str:
        return call("lab.tag", self.experiments, add=self.add, remove=self.remove)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        ids = ", ".join(self.experiments)
        parts = []
        if self.add:
            parts.append(f"tagged {ids} {', '.join(map(repr, self.add))}")
        if self.remove:
            parts.append(f"removed the tag{'s' if len(self.remove) > 1 else ''} "
                         f"{', '.join(map(repr, self.remove))} from {ids}")
        sentence = "; ".join(parts)
        return sentence[:1].upper() + sentence[1:] + "."  # not capitalize(): it lowers tags


@action
class DeleteExperiment(Action):
    """Takes an experiment out of the lab; its runs stay in the store."""

    type: ClassVar[str] = "delete_experiment"
    experiment: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        experiment = state.experiment(self.experiment)
        latest = state.latest.get(experiment.id)
        if latest is not None and not state.runs[latest].done:
            raise FeaturelabError(f"{experiment.id} is running; cancel it first "
                                  f"(lab.cancel({experiment.id!r}))")
        sweeps = [s.id for s in state.sweeps.values() if experiment.id in s.members]
        if sweeps:
            raise FeaturelabError(f"{experiment.id} is a member of {', '.join(sweeps)}: a "
                                  "sweep keeps its members (its groups and bands need them)")
        explorations = [e.id for e in state.explorations.values() if experiment.id == e.base
                        or any(it.experiment == experiment.id for it in e.iterations)]
        if explorations:
            raise FeaturelabError(f"{experiment.id} is part of {', '.join(explorations)}: an "
                                  "exploration keeps its base and its proposals")
        del state.experiments[experiment.id]
        state.latest.pop(experiment.id, None)
        view = state.view
        view.selected = [e for e in view.selected if e != experiment.id]
        view.viewed = [e for e in view.viewed if e != experiment.id]
        return {"runs": latest}, None

    def to_code(self) -> str:
        return call("lab.delete", self.experiment)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Deleted {self.experiment} (its runs stay in the store)."
