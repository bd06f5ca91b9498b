"""The action base class, the registry, JSON validation and code rendering.

An action is a frozen pydantic dataclass of its parameters with four things
attached: `type` and `version` (class constants), `apply` (what it does to the
lab's state, with a small context for what lies outside it), `to_code` (Python
calling the public API that does the same) and `describe` (one past-tense sentence
for the log and the blog). Pydantic gives the validation of JSON actions from agents
and the JSON Schema for free.

Adding an action: one class with `@action`, plus its tests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass
from typing_extensions import Self

from featurelab.actions.json_values import json_value
from featurelab.actions.validation import raise_config_errors
from featurelab.errors import FeaturelabError
from featurelab.runs import Run
from featurelab.state import LabState
from featurelab.store import Store
from featurelab.workers.remote import Scheduler

ACTORS = ("human", "code", "agent")
# Unknown keys are errors, not ignored; NaN has no Python literal for to_code.
PARAMS = ConfigDict(extra="forbid", allow_inf_nan=False)


def params(cls: type) -> type:
    """Makes a class a frozen, validated dataclass of its parameters (also for shared
    bases, whose fields a dataclass only inherits when the base is one too)."""
    # raise_config_errors: a wrong type from Python is a ConfigError, not pydantic's own
    return raise_config_errors(_pydantic_dataclass(frozen=True, config=PARAMS)(cls))


def action(cls: type) -> type:
    """An Action subclass as a dataclass of its parameters, in the registry."""
    cls = params(cls)
    ACTIONS[cls.type] = cls
    return cls


class ActionError(FeaturelabError, ValueError):
    """A JSON action that does not validate; nothing was logged or changed."""


class LogLike(Protocol):
    """The session's log as an action sees it (featurelab.log, a layer above, has it)."""

    def __len__(self) -> int: ...

    def to_jsonl(self, path: str | Path) -> Path: ...


class Context(Protocol):
    """What an action may use beyond the state it changes: the session it is applied in
    (the Lab implements this)."""

    @property
    def name(self) -> str:
        """The lab's name."""
        ...

    @property
    def session(self) -> int:
        """The session (log) the action is applied in."""
        ...

    @property
    def store(self) -> Store:
        """For run look-ups and new runs."""
        ...

    @property
    def log(self) -> LogLike: ...

    def start_session(self) -> int:
        """Empties the state into a new session; returns the number of the one left."""
        ...

    @property
    def executor(self) -> Scheduler | None:
        """Where a run applied now trains: None for the kernel, a pool of workers while
        a sweep starts a member."""
        ...

    def with_executor(self, executor: Scheduler | None) -> AbstractContextManager[None]:
        """Runs applied inside (by this thread) train on `executor`."""
        ...

    @property
    def trusted(self) -> bool:
        """Whether the code of the action being applied may run: True for what the user
        does now, and for a logged action only if this user's featurelab signed it."""
        ...

    def apply(self, action: Action, actor: str = "code") -> Any:
        """Applies another action through the lab's choke point (a sweep its members'
        runs), logged as any."""
        ...

    def run_started(self, run: Run) -> None:
        """A run's trainer exists (listeners subscribe to its events)."""
        ...

    def run_ended(self, run: Run, summary: dict[str, Any]) -> None:
        """A run ended: its log entry gets the summary; listeners hear of it."""
        ...

    def write_blog(self, path: str, detail: str, title: str | None,
                   notebook: str | None) -> Path:
        """Writes the blog draft of the lab as it is now (featurelab.export.blog, a
        layer above the actions: the Lab brings it in)."""
        ...


class GraphLike(Protocol):
    """The knowledge graph as an action adds to it (featurelab.export.graph has it)."""

    def node(self, node: str, kind: str, **attrs: Any) -> str: ...

    def edge(self, source: str, target: str, relation: str, **attrs: Any) -> None: ...

    def metric(self, name: str) -> str:
        """The node of an observable or statistic (with what it is defined on)."""
        ...

    def count(self, kind: str) -> int:
        """How many nodes of a kind the graph has."""
        ...

    @property
    def latest_run(self) -> dict[str, str]:
        """Experiment -> the node of its run so far in the log."""
        ...

    @property
    def subject(self) -> str | None:
        """The node the last action that made one made."""
        ...


# What an action adds to the blog draft, in order: ("sentence", text), ("note", text),
# ("config", Experiment), ("code", (title, source)), ("fit", entry_result). The export
# draws each kind; an action only says which it has.
BlogPart = tuple[str, Any]


class Action:
    type: ClassVar[str]
    version: ClassVar[int] = 1
    # The log is the source of truth, so an action's older versions stay readable:
    # upgraders[v] turns the params of version v into those of version v + 1.
    upgraders: ClassVar[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}
    # View actions on one chart share a coalesce key: cells update one cell for them.
    view: ClassVar[bool] = False
    # Why a rerun leaves this action out, if it does (a cancel depends on timing): replay
    # skips it, cells and scripts keep its code as a comment.
    not_replayed: ClassVar[str | None] = None
    # ... except in a notebook cell, which runs it even so: a sweep's run, whose members'
    # own run entries are what a rerun of the log replays, each exactly (stopped where it
    # was cancelled), while Restart & Run All trains the sweep again from its one cell.
    runs_in_cells: ClassVar[bool] = False
    # An act on the draft itself (exporting it), not an event of the research: the blog
    # leaves it out, so a draft is the same whenever and however often it is exported.
    in_draft: ClassVar[bool] = True
    # Whether its params hold Python that it runs (a DIY statistic's source): such an
    # action is signed when logged, refused from an agent unless the lab allows it, and
    # applied with its code disabled when it comes from elsewhere (featurelab.signatures).
    runs_code: ClassVar[bool] = False
    # A read (an agent's look at the lab): it changes nothing, so Lab.apply neither logs
    # it nor tells listeners (no cell, no panel update, nothing to replay); its value is
    # all it gives, the same JSON to code and to agents.
    read_only: ClassVar[bool] = False

    @classmethod
    def field_schemas(cls) -> dict[str, dict[str, Any]]:
        """JSON Schemas of parameters richer than their Python types say (the knobs of a
        config section, with ranges and defaults): they replace pydantic's in
        `action_schema()`. The parameter's own validation stays where it is."""
        return {}

    def to_json(self, value: Any, state: LabState) -> Any:
        """The verb's value as an agent gets it: JSON only (featurelab.actions.json_values)."""
        return json_value(value, state)

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict[str, Any], Any]:
        """Changes the state; returns (a JSON result summary for the log, the verb's value).

        `recorded` is the result of this action in a log being restored: use it
        instead of recomputing (runs are loaded, not retrained). Validate before
        changing anything: an exception must leave the lab as it was.
        """
        raise NotImplementedError

    def after(self, state: LabState, ctx: Context, entry: Any) -> Any:
        """Work done after the action is logged and the lock released (training)."""
        return None

    def permit(self, actor: str, ctx: Context) -> None:
        """Raises if `actor` may not apply this action, before anything changes (an
        agent's file writes stay in the lab's folder: actions/files.py)."""

    def rerun(self, result: dict[str, Any] | None, stops: dict[str, int]) -> Action:
        """This action as a rerun of its log applies it (replay, the script export);
        `stops`: run id -> the step a logged cancel stopped it at."""
        return self

    def compare(self, recorded: dict[str, Any], replayed: dict[str, Any],
                state: LabState) -> tuple[list[str], list[tuple[str, str]]]:
        """A rerun's result against the logged one: (what matched and how, [(what
        differs, how)]). Only actions that compute something have anything to say."""
        return [], []

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        """Adds this action's nodes and relations to the knowledge graph; returns the node
        it made (what a note after it is about), or None."""
        return None

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        """This action's part of the blog draft: its sentence, and what goes with it."""
        return [("sentence", self.describe(result))]

    def to_code(self) -> str:
        raise NotImplementedError

    def describe(self, result: dict[str, Any] | None = None) -> str:
        raise NotImplementedError

    def chart_changed(self) -> str | None:
        """The chart (its metric) whose look this action changes, if any: a cell holds
        the actions on one chart in a row, and the blog draws it after them."""
        return None

    def coalesce_key(self) -> str | None:
        """Actions with the same key replace each other's cell; None: a cell each."""
        chart = self.chart_changed()
        return None if chart is None else f"chart:{chart}"

    def but(self, **changes: Any) -> Self:
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]  # a pydantic dataclass

    def params(self) -> dict[str, Any]:
        """The parameters as JSON values (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))  # type: ignore[call-overload]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "version": self.version, "params": self.params()}


ACTIONS: dict[str, type[Action]] = {}


def _field_list(cls: type[Action]) -> str:
    parts = []
    for f in fields(cls):  # type: ignore[arg-type]
        kind = getattr(f.type, "__name__", None) or str(f.type)
        parts.append(f"{f.name} ({kind})")
    return ", ".join(parts)


def action_from_dict(data: Any) -> Action:
    """A JSON action {"type": ..., "params": {...}} as an Action, or ActionError."""
    if isinstance(data, Action):
        return data
    if not isinstance(data, dict):
        raise ActionError(f"an action is a dict with 'type' and 'params'; got {data!r}")
    extra = sorted(set(data) - {"type", "params", "version"})
    if extra:
        raise ActionError(f"unknown key {extra[0]!r}; an action has keys type, params, version")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in ACTIONS:  # a list or dict is unhashable
        raise ActionError(f"unknown action type {kind!r}; allowed: {', '.join(ACTIONS)}")
    cls = ACTIONS[kind]
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ActionError(f"action {kind!r}: params must be a dict; got {params!r}")
    params = upgrade(cls, data.get("version", cls.version), params)
    try:
        return TypeAdapter(cls).validate_python(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}"
            + (f" (got {e['input']!r})" if e["type"] != "missing" else "")
            for e in exc.errors())
        raise ActionError(f"action {kind!r}: {problems}. Allowed fields: "
                          f"{_field_list(cls)}") from None


def upgrade(cls: type[Action], version: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The params of an older version of an action, as the current version has them."""
    kind = cls.type
    if isinstance(version, bool) or not isinstance(version, int) or version > cls.version:
        older = " and the versions before it" if cls.upgraders else ""
        raise ActionError(f"action {kind!r} version {version!r}; this featurelab reads "
                          f"version {cls.version}{older} (was it written by a newer one?)")
    for v in range(version, cls.version):
        if v not in cls.upgraders:
            raise ActionError(f"action {kind!r} version {version!r}: no upgrader from "
                              f"version {v} to {v + 1}; this featurelab reads version "
                              f"{cls.version}")
        params = cls.upgraders[v](dict(params))
    return params


def action_schema() -> dict[str, Any]:
    """A JSON Schema of every action, for agents that emit them."""
    variants = []
    for name, cls in ACTIONS.items():
        params = TypeAdapter(cls).json_schema()
        params.pop("title", None)
        for field_name, schema in cls.field_schemas().items():
            generated = params["properties"][field_name]
            params["properties"][field_name] = {
                "title": generated.get("title", field_name), **schema,
                **({"default": generated["default"]} if "default" in generated else {})}
        variants.append({
            "title": name,
            "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "type": "object",
            "properties": {"type": {"const": name}, "version": {"const": cls.version},
                           "params": params},
            "required": ["type", "params"],
            "additionalProperties": False,
        })
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "featurelab action", "oneOf": variants}


LINE = 88  # longer calls are written one argument per line


def call(function: str, *args: Any, **kwargs: Any) -> str:
    """Python source of a call; every value goes through repr, so no user string can
    become code. Keyword arguments equal to None are left out."""
    parts = [repr(a) for a in args]
    parts += [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    line = f"{function}({', '.join(parts)})"
    if len(line) <= LINE or len(parts) < 2:
        return line
    # A long call (a whole config) reads better in a cell one argument per line.
    return f"{function}(\n" + "".join(f"    {part},\n" for part in parts) + ")"
