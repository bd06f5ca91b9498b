"""featurelab's verbs as agent tools: one per action type, plus the knobs.

The tools are generated from the action registry (`action_schema()`), so an action added
there is a tool without a line here. Each calls `lab.apply(..., actor="agent")`: the
rails the choke point applies to agents (the trust policy for code, file writes kept in
the lab's folder) hold for every tool, and the log records who acted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from featurelab.actions import ACTIONS, ActionError, action_schema
from featurelab.engine.knobs import knobs
from featurelab.errors import FeaturelabError
from featurelab.lab import Lab

logger = logging.getLogger(__name__)

NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {},
                                "additionalProperties": False}


@dataclass(frozen=True)
class AgentTool:
    name: str
    description: str
    input_schema: dict[str, Any]  # JSON Schema of the arguments, an object at its root
    call: Callable[[Lab, dict[str, Any]], Any]
    read_only: bool = False


def agent_tools() -> dict[str, AgentTool]:
    """Tool name -> tool: every registered action, then `knobs`."""
    tools: dict[str, AgentTool] = {}
    for variant in action_schema()["oneOf"]:
        kind = variant["properties"]["type"]["const"]
        params = variant["properties"]["params"]
        # The params' own description is the action's whole docstring, the variant's
        # only its first line: an agent choosing a tool reads the whole.
        text = params.get("description") or variant.get("description") or kind
        text = "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))  # unwrap
        tools[kind] = AgentTool(kind, text, params, partial(_apply, kind),
                                read_only=ACTIONS[kind].read_only)
    # Not an action (it reads no lab and is not logged): the menu an agent picks from.
    tools.setdefault("knobs", AgentTool(
        "knobs", "Every config knob by path (e.g. optimizer.lr): type, default, what is "
        "allowed (enum or range) and description; the paths a sweep's grid and "
        "create_experiment's sections accept.", NO_ARGUMENTS, _knobs, read_only=True))
    return tools


def _apply(kind: str, lab: Lab, arguments: dict[str, Any]) -> Any:
    return lab.apply({"type": kind, "params": arguments}, actor="agent")


def _knobs(lab: Lab, arguments: dict[str, Any]) -> Any:
    if arguments:
        raise ActionError(f"knobs takes no arguments; got {sorted(arguments)}")
    return knobs()


def call_tool(lab: Lab, tool: AgentTool, arguments: dict[str, Any] | None
              ) -> tuple[bool, Any]:
    """(is_error, JSON value or error message). Never raises an Exception: a server that
    serves an agent must answer every call, and the agent fixes its call from the message."""
    try:
        return False, jsonable(tool.call(lab, dict(arguments or {})))
    except FeaturelabError as exc:  # ActionError, ConfigError, RepeatBlocked...: said on purpose
        return True, str(exc)
    except Exception as exc:  # a bug: keep serving, but leave the traceback for whoever reads it
        logger.exception("featurelab tool %r failed", tool.name)
        return True, f"{tool.name} failed unexpectedly: {type(exc).__name__}: {exc}"


def jsonable(value: Any) -> Any:
    """`value` as JSON values. For actor "agent" the lab already returns JSON; this keeps
    the reply valid JSON whatever a verb returns (NaN and inf, which JSON lacks, as null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    for convert in ("tolist", "to_dict"):  # numpy values and arrays; configs, frames
        method = getattr(value, convert, None)
        if callable(method):
            return jsonable(method())
    return repr(value)
