"""The rule each config field is validated by, and how it reads as a knob.

One owner per fact: a field's type, range or allowed values live in its rule, declared
beside the field in config.py with its default and one line of description (`knob`).
Validation (`Rule.check`), the knob menu (`fl.knobs()`) and the JSON Schema agents read
(`fl.action_schema()`) all come from the rule, so the menu can never promise a value
that validation refuses. Every error names the field's path, the value and what is
allowed, in the same words as the rest of featurelab.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

from featurelab.errors import ConfigError


def check_int(path: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(path, value, f"an integer from {lo} to {hi}")
    return value


def check_float(path: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and -math.inf < value < math.inf)  # not isfinite(): it overflows on huge ints
    if ok:
        ok = (lo < value if lo_open else lo <= value) and value <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ConfigError(path, value, f"a number in {bracket}{lo:g}, {hi:g}]")
    return float(value)


def check_choice(path: str, value: Any, choices: Collection[str]) -> str:
    # A list or dict given is not a name (and `in` a registry dict would raise TypeError)
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(path, value, "one of " + ", ".join(map(repr, choices)))
    return value


def int_tuple(path: str, value: Any, allowed: str = "a list of positive integers"
              ) -> tuple[Any, ...]:
    """A list as a tuple, numpy integers as ints; other items are left for the range check."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(path, value, allowed)
    out = []
    for item in value:
        try:
            out.append(item if isinstance(item, bool) else operator.index(item))
        except TypeError:
            out.append(item)  # a float or string: check_int names it with its index
    return tuple(out)


class Rule:
    """How one field is checked, and how the menu and the schema describe it."""

    type: ClassVar[str]  # the knob's type as fl.knobs() names it

    def check(self, path: str, value: Any, owner: Any) -> Any:
        """The value as the config keeps it (normalised), or a ConfigError naming `path`.
        `owner` is the config being built (its earlier fields are checked already)."""
        raise NotImplementedError

    def bounds(self, section: str) -> dict[str, Any]:
        """What is allowed, for the menu: {"enum": [...]} or {"min", "max", ...}."""
        return {}

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Integer(Rule):
    lo: int
    hi: int
    at_most: str | None = None  # a field of the same section that caps it (warmup <= steps)
    type: ClassVar[str] = "integer"

    def check(self, path: str, value: Any, owner: Any) -> int:
        hi = self.hi if self.at_most is None else min(self.hi, getattr(owner, self.at_most))
        return check_int(path, value, self.lo, hi)

    def bounds(self, section: str) -> dict[str, Any]:
        out: dict[str, Any] = {"min": self.lo, "max": self.hi, "min_exclusive": False,
                               "max_exclusive": False}
        if self.at_most is not None:
            out["max_path"] = f"{section}.{self.at_most}" if section else self.at_most
        return out

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}


@dataclass(frozen=True)
class Number(Rule):
    lo: float
    hi: float
    lo_open: bool = False  # (lo, hi] instead of [lo, hi]
    type: ClassVar[str] = "number"

    def check(self, path: str, value: Any, owner: Any) -> float:
        return check_float(path, value, self.lo, self.hi, self.lo_open)

    def bounds(self, section: str) -> dict[str, Any]:
        return {"min": self.lo, "max": self.hi, "min_exclusive": self.lo_open,
                "max_exclusive": False}

    def json_schema(self) -> dict[str, Any]:
        low = "exclusiveMinimum" if self.lo_open else "minimum"
        return {"type": "number", low: self.lo, "maximum": self.hi}


@dataclass(frozen=True)
class Choice(Rule):
    choices: Collection[str]  # a registry (dict) is read live: what it holds is allowed
    type: ClassVar[str] = "string"

    def check(self, path: str, value: Any, owner: Any) -> str:
        return check_choice(path, value, self.choices)

    def bounds(self, section: str) -> dict[str, Any]:
        return {"enum": list(self.choices)}

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


@dataclass(frozen=True)
class Flag(Rule):
    type: ClassVar[str] = "boolean"

    def check(self, path: str, value: Any, owner: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(path, value, "True or False")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Text(Rule):
    max_length: int | None = None
    type: ClassVar[str] = "string"

    def check(self, path: str, value: Any, owner: Any) -> str:
        if not isinstance(value, str) or (self.max_length is not None
                                          and len(value) > self.max_length):
            at_most = "" if self.max_length is None else \
                f" of at most {self.max_length} characters"
            raise ConfigError(path, value, f"a string{at_most}")
        return value

    def bounds(self, section: str) -> dict[str, Any]:
        return {} if self.max_length is None else {"max_length": self.max_length}

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        return out


@dataclass(frozen=True)
class IntList(Rule):
    """A list of integers, each in [lo, hi]; min/max in the menu bound each item."""

    lo: int
    hi: int
    min_items: int = 0
    max_items: int | None = None
    length: str = ""  # how a wrong length is told ("a list of 2 to 64 widths: ...")
    type: ClassVar[str] = "list[integer]"

    def check(self, path: str, value: Any, owner: Any) -> tuple[int, ...]:
        items = int_tuple(path, value)
        if len(items) < self.min_items or (self.max_items is not None
                                           and len(items) > self.max_items):
            raise ConfigError(path, list(items), self.length)
        for i, item in enumerate(items):
            check_int(f"{path}[{i}]", item, self.lo, self.hi)
        return items

    def bounds(self, section: str) -> dict[str, Any]:
        out: dict[str, Any] = {"min": self.lo, "max": self.hi, "min_exclusive": False,
                               "max_exclusive": False, "min_items": self.min_items}
        if self.max_items is not None:
            out["max_items"] = self.max_items
        return out

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": {"type": "integer", "minimum": self.lo,
                                                          "maximum": self.hi}}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.max_items is not None:
            out["maxItems"] = self.max_items
        return out


@dataclass(frozen=True)
class NameList(Rule):
    """A list of non-empty names; repeats are dropped (the first place stays)."""

    what: str = "names"
    type: ClassVar[str] = "list[string]"

    def check(self, path: str, value: Any, owner: Any) -> tuple[str, ...]:
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            raise ConfigError(path, value, f"a list of {self.what}")
        names = tuple(value)
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{path}[{i}]", name, "a non-empty string")
        return tuple(dict.fromkeys(names))

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "minLength": 1}}


@dataclass(frozen=True)
class StepSchedule(Rule):
    """[from_step, every] pairs with strictly increasing from_step (snapshot schedules)."""

    max_step: int
    type: ClassVar[str] = "list[[integer, integer]]"
    pairs: ClassVar[str] = "a list of [from_step, every] pairs of integers"

    def check(self, path: str, value: Any, owner: Any) -> tuple[tuple[int, int], ...]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(path, value, self.pairs)
        schedule = tuple(int_tuple(path, p, self.pairs) for p in value)
        if any(len(p) != 2 for p in schedule):
            raise ConfigError(path, value, self.pairs)
        for i, (start, every) in enumerate(schedule):
            check_int(f"{path}[{i}][0]", start, 0, self.max_step)
            check_int(f"{path}[{i}][1]", every, 1, self.max_step)
        starts = [s for s, _ in schedule]
        if starts != sorted(set(starts)):
            raise ConfigError(path, [list(p) for p in schedule],
                              "pairs with strictly increasing from_step")
        return schedule  # type: ignore[return-value]  # pairs, checked above

    def bounds(self, section: str) -> dict[str, Any]:
        return {"min": 0, "max": self.max_step, "min_exclusive": False,
                "max_exclusive": False}

    def json_schema(self) -> dict[str, Any]:
        pair = {"type": "array", "minItems": 2, "maxItems": 2,
                "prefixItems": [{"type": "integer", "minimum": 0, "maximum": self.max_step},
                                {"type": "integer", "minimum": 1, "maximum": self.max_step}]}
        return {"type": "array", "items": pair}


def knob(default: Any, rule: Rule, doc: str, menu: bool = True) -> Any:
    """A config field: its default, the rule that validates it and one line for the knob
    menu (menu=False: a field that is not a knob, like the free-text name)."""
    return field(default=default, metadata={"rule": rule, "doc": doc, "menu": menu})


def section(cls: type, doc: str) -> dict[str, Any]:
    """The metadata of a config field holding a section (ModelConfig, ...), whose own
    fields are knobs too: `field(default_factory=cls, metadata=section(cls, doc))`."""
    return {"section": cls, "doc": doc}
