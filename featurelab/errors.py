"""The errors featurelab raises on bad input.

Every message names the thing that was wrong, the value given and what would be
accepted, so a researcher (or an agent reading the message) can fix it in one go.
"""

from __future__ import annotations

from typing import Any


class FeaturelabError(Exception):
    """Base class: everything featurelab raises on purpose derives from it."""


class ConfigError(FeaturelabError, ValueError):
    """A config field holds a value outside what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str, hint: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        message = f"{field}: got {value!r}; allowed: {allowed}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class StatisticError(FeaturelabError):
    """A statistic raised, returned the wrong shape, or returned NaN/inf."""

    field = "source"  # what the panel marks: the function's source is what must change

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"statistic {name!r}: {problem}")


class FeaturelabWarning(UserWarning):
    """Warnings of featurelab's own; the test suite turns them into errors."""
