"""The action base class, the registry, JSON validation and code rendering.

An action is a frozen pydantic dataclass of its parameters with four things
attached: `type` and `version` (class constants), `apply` (what it does to a
Lab), `to_code` (Python calling the public API that does the same) and
`describe` (one past-tense sentence for the log and the blog). Pydantic gives
the validation of JSON actions from agents and the JSON Schema for free.

Adding an action: one class with `@action`, plus its tests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass

from featurelab.errors import FeaturelabError

if TYPE_CHECKING:
    from featurelab.lab import Lab

ACTORS = ("human", "code", "agent")
# Unknown keys are errors, not ignored; NaN has no Python literal for to_code.
PARAMS = ConfigDict(extra="forbid", allow_inf_nan=False)


def params(cls: type) -> type:
    """Makes a class a frozen, validated dataclass of its parameters (also for shared
    bases, whose fields a dataclass only inherits when the base is one too)."""
    return _pydantic_dataclass(frozen=True, config=PARAMS)(cls)


def action(cls: type) -> type:
    """An Action subclass as a dataclass of its parameters, in the registry."""
    cls = params(cls)
    ACTIONS[cls.type] = cls
    return cls


class ActionError(FeaturelabError, ValueError):
    """A JSON action that does not validate; nothing was logged or changed."""


class Action:
    type: ClassVar[str]
    version: ClassVar[int] = 1
    # View actions on one chart share a coalesce key: cells update one cell for them.
    view: ClassVar[bool] = False
    # Why a rerun leaves this action out, if it does (a cancel depends on timing): replay
    # skips it, cells and scripts keep its code as a comment.
    not_replayed: ClassVar[str | None] = None

    def apply(self, lab: Lab, recorded: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
        """Changes the lab; returns (a JSON result summary for the log, the verb's value).

        `recorded` is the result of this action in a log being restored: use it
        instead of recomputing (runs are loaded, not retrained). Validate before
        changing anything: an exception must leave the lab as it was.
        """
        raise NotImplementedError

    def after(self, lab: Lab, entry: Any) -> Any:
        """Work done after the action is logged and the lock released (training)."""
        return None

    def to_code(self) -> str:
        raise NotImplementedError

    def describe(self, result: dict[str, Any] | None = None) -> str:
        raise NotImplementedError

    def coalesce_key(self) -> str | None:
        """Actions with the same key replace each other's cell; None: a cell each."""
        return None

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
    version = data.get("version", cls.version)
    if version != cls.version:
        raise ActionError(f"action {kind!r} version {version!r}; this featurelab reads "
                          f"version {cls.version}")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ActionError(f"action {kind!r}: params must be a dict; got {params!r}")
    try:
        return TypeAdapter(cls).validate_python(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}"
            + (f" (got {e['input']!r})" if e["type"] != "missing" else "")
            for e in exc.errors())
        raise ActionError(f"action {kind!r}: {problems}. Allowed fields: "
                          f"{_field_list(cls)}") from None


def action_schema() -> dict[str, Any]:
    """A JSON Schema of every action, for agents that emit them."""
    variants = []
    for name, cls in ACTIONS.items():
        params = TypeAdapter(cls).json_schema()
        params.pop("title", None)
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
