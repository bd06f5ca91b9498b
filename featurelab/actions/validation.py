"""Wrong Python types given to an action's constructor, as a ConfigError.

Every Lab verb builds its action from the caller's arguments (`lab.create_experiment(
seed=1.5)` builds CreateExperiment(seed=1.5)). Pydantic checks them and raises its own
ValidationError, which `except fl.FeaturelabError` misses and whose text is pydantic's.
`raise_config_errors` makes a constructor raise a ConfigError instead (a FeaturelabError
and a ValueError, as ValidationError is one): the parameter's path, the value given and
what is allowed, as every other config error says it. (JSON actions from agents are
checked by action_from_dict, which has its own ActionError listing all the fields.)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from pydantic import ValidationError

from featurelab.errors import ConfigError

# What pydantic's error types ask for, in the words of featurelab's other errors.
ALLOWED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "string_type": "a string", "bool_type": "True or False", "bool_parsing": "True or False",
    "dict_type": "a dict", "list_type": "a list", "tuple_type": "a list",
    "missing": "a value (it is required)",
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed(error: Any) -> str:  # a pydantic ErrorDetails
    if error["type"] in ALLOWED:
        return ALLOWED[error["type"]]
    # pydantic's own words, or a validator's of ours ("Value error, an integer")
    return str(error["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")


def config_error(cls: type, exc: ValidationError) -> ConfigError:
    """The first problem of `exc` as a ConfigError; the other fields at fault in its hint."""
    errors = exc.errors()
    first = errors[0]
    names = [f.name for f in dataclasses.fields(cls)]
    loc = tuple(first["loc"])
    if first["type"] == "unexpected_keyword_argument":
        return ConfigError(_path(loc), first["input"], "one of " + ", ".join(names),
                           hint="unknown parameter")
    allowed = _allowed(first)
    default = {f.name: f.default for f in dataclasses.fields(cls)}.get(str(loc[0]))
    if len(loc) == 1 and default is None:  # an optional parameter: None leaves it out
        allowed += " or None (left out)"
    value = None if first["type"] == "missing" else first["input"]
    others = sorted({_path(tuple(e["loc"])[:1]) for e in errors} - {_path(loc[:1])})
    hint = f"also wrong: {', '.join(others)}" if others else ""
    return ConfigError(_path(loc), value, allowed, hint=hint)


def raise_config_errors(cls: type) -> type:
    """Makes the constructor of a pydantic dataclass raise ConfigError, not
    ValidationError (dataclasses.replace, and so Action.but, goes through it too)."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(cls, exc) from None

    cls.__init__ = __init__  # type: ignore[misc]
    return cls
