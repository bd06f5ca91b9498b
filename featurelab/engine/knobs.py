"""The knob menu and the config's JSON Schemas, read off the config classes.

`knobs()` is what an agent (or a person) may set, by the path a sweep and `lab.table()`
use ("optimizer.lr"); `config_schemas()` is the same facts as JSON Schema for the
params of create_experiment. Both come from the rules that validate the fields
(featurelab.engine.rules), so neither can drift from what ExperimentConfig accepts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from featurelab.engine.config import ExperimentConfig


def _json(value: Any) -> Any:
    """A default as JSON holds it (tuples as lists)."""
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return value


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return _json(f.default)
    return f.default_factory().to_dict()  # type: ignore[misc]  # a section


def _knob(path: str, section: str, f: dataclasses.Field) -> dict[str, Any]:
    rule = f.metadata["rule"]
    return {"path": path, "type": rule.type, "default": _default(f), **rule.bounds(section),
            "description": f.metadata["doc"]}


def knobs() -> list[dict[str, Any]]:
    """Every config knob by path, in the config's order: {path, type, default, then what
    is allowed (enum: the allowed values; or min, max, min_exclusive, max_exclusive, and
    for a list min/max of each item and min_items/max_items; max_path: a knob that caps
    it), description}. Every default validates; a value outside is a ConfigError naming
    the same path. The free-text name is not a knob."""
    out = []
    for f in dataclasses.fields(ExperimentConfig):
        cls = f.metadata.get("section")
        if cls is not None:
            out += [_knob(f"{f.name}.{g.name}", f.name, g) for g in dataclasses.fields(cls)]
        elif f.metadata.get("menu", True):
            out.append(_knob(f.name, "", f))
    return out


def field_schema(f: dataclasses.Field) -> dict[str, Any]:
    """The JSON Schema of one config field: its rule's, with default and description."""
    cls = f.metadata.get("section")
    if cls is not None:
        return {"type": "object", "description": f.metadata["doc"],
                "properties": {g.name: field_schema(g) for g in dataclasses.fields(cls)},
                "additionalProperties": False}
    return {**f.metadata["rule"].json_schema(), "default": _default(f),
            "description": f.metadata["doc"]}


def config_schemas() -> dict[str, dict[str, Any]]:
    """Field of ExperimentConfig -> its JSON Schema (a section as an object whose keys
    are all optional: what is left out keeps its default, or the base's value)."""
    return {f.name: field_schema(f) for f in dataclasses.fields(ExperimentConfig)}
