"""An exploration's trajectory: what was proposed, what came of it, and how well the
search covers its menu.

An agent (or a person, or a built-in proposer) explores by proposing changes to the
best configuration so far; each proposal is trained and then kept (it beats the best) or
discarded. The analysis behind this module (an agent's overnight loop: 46% of its knobs
touched, 72% of proposals repeating a (knob, value) pair already tried, a 41-iteration
plateau) is why the history is kept whole, why a repeat is refused by name (`repeat_of`,
the block_repeat rail), and why the metrics below are recomputed after every iteration.
Everything here is plain data and arithmetic: the actions (actions/explore.py) change it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from featurelab.errors import FeaturelabError

GOALS = ("min", "max")
# cancelled: stopped before its end (Ctrl-C, lab.cancel): not evaluated, so its ground is
# still open, unlike a failed (diverged) one
DECISIONS = ("keep", "discard", "failed", "cancelled")
BUDGETS = ("iterations", "steps", "seconds")
RECENT = 10  # the window of the recent repeat rate: a proposer that forgets shows here


class RepeatBlocked(FeaturelabError):
    """A proposal repeats ground the exploration already covered (the block_repeat rail).
    Says which iteration covered it; `replicate=True` makes a deliberate repeat."""

    def __init__(self, exploration: str, what: str, iteration: int) -> None:
        self.exploration = exploration
        self.iteration = iteration
        super().__init__(f"{exploration}: {what} was already evaluated in iteration "
                         f"{iteration}; propose something new, or pass replicate=True for "
                         "a deliberate repeat")


class BudgetSpent(FeaturelabError):
    """The exploration has used its budget of iterations, steps or seconds."""


def pair_key(knob: str, value: Any) -> str:
    """A (knob, value) pair as one hashable key: values may be lists ([10, 50, 1])."""
    return json.dumps([knob, value], sort_keys=True)


@dataclass
class Iteration:
    index: int  # 1-based, in proposal order
    changes: dict[str, Any]  # knob path -> value, applied to the best config so far
    reason: str
    experiment: str
    config_hash: str
    replicate: bool = False
    repeat_of: int | None = None  # the latest earlier iteration it repeats, if any
    steps: int = 0
    started: float = 0.0  # unix seconds
    value: float | None = None  # the metric's final value, once judged
    decision: str | None = None  # keep | discard | failed, once judged

    def to_dict(self) -> dict[str, Any]:
        return {"iteration": self.index, "changes": self.changes, "reason": self.reason,
                "experiment": self.experiment, "replicate": self.replicate,
                "repeat_of": self.repeat_of, "value": self.value, "decision": self.decision}


@dataclass
class Exploration:
    id: str  # "explore_0", ...
    name: str
    base: str  # the experiment the first proposals change
    menu: dict[str, list[Any]]  # knob path -> the values it may take
    metric: str
    goal: str  # min | max
    budget: dict[str, float]  # iterations / steps / seconds -> the most it may use
    rail: bool  # block_repeat: refuse repeats unless replicate=True
    baseline: float | None  # the base's value when the exploration started
    started: float  # unix seconds
    base_hash: str = ""  # the base's configuration: evaluated before any proposal
    base_values: dict[str, Any] = field(default_factory=dict)  # menu knob -> base's value
    iterations: list[Iteration] = field(default_factory=list)
    # Proposals the rail refused: not actions (nothing changed), so not in the log; kept
    # for this session's metrics and sidecar, because how often an agent *tries* to
    # repeat itself is what the rail hides from the repeat rate.
    refused: list[dict[str, Any]] = field(default_factory=list)

    # -- the search -----------------------------------------------------------------

    def best(self) -> tuple[float | None, str, int | None]:
        """(value, experiment, iteration) of the best so far: the baseline, then keeps."""
        value, experiment, index = self.baseline, self.base, None
        for it in self.iterations:
            if it.decision == "keep":
                value, experiment, index = it.value, it.experiment, it.index
        return value, experiment, index

    def better(self, value: float) -> bool:
        best = self.best()[0]
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value < best if self.goal == "min" else value > best

    def repeat_of(self, changes: dict[str, Any], config_hash: str) -> tuple[str, int] | None:
        """(what, iteration) of the latest earlier iteration that evaluated one of these
        (knob, value) pairs or this whole config; None for new ground."""
        keys = {pair_key(k, v): f"{k}={json.dumps(v)}" for k, v in changes.items()}
        evaluated = [it for it in self.iterations if it.decision != "cancelled"]
        for it in reversed(evaluated):  # the pair first: it is what the agent chose
            for k, v in it.changes.items():
                if pair_key(k, v) in keys:
                    return keys[pair_key(k, v)], it.index
        for it in reversed(evaluated):
            if it.config_hash == config_hash:
                return "this configuration", it.index
        if config_hash == self.base_hash:
            return f"this configuration (the base's, {self.base})", 0
        return None

    def spent(self, now: float) -> str | None:
        """Which budget is used up, in words; None while there is budget left."""
        used = {"iterations": len(self.iterations),
                "steps": sum(it.steps for it in self.iterations),
                "seconds": now - self.started}
        for kind, limit in self.budget.items():
            if used[kind] >= limit:
                return f"{kind}: {used[kind]:g} of {limit:g} used"
        return None

    def pending(self) -> Iteration | None:
        """The latest iteration, if it has not been judged yet."""
        last = self.iterations[-1] if self.iterations else None
        return last if last is not None and last.decision is None else None

    def menu_pairs(self) -> set[str]:
        return {pair_key(k, v) for k, values in self.menu.items() for v in values}


def metrics(exploration: Exploration) -> dict[str, Any]:
    """The trajectory's health, recomputed from the whole history: coverage of the menu,
    repeats (overall and lately), how long it took to keep and to find the best, the
    longest plateau and the keep rate. Times are in iterations (1-based)."""
    its = exploration.iterations
    n = len(its)
    knobs = {k for it in its for k in it.changes if k in exploration.menu}
    menu_pairs = exploration.menu_pairs()
    # the base evaluated its own values: a menu that lists them has them covered
    pairs = ({pair_key(k, v) for it in its for k, v in it.changes.items()}
             | {pair_key(k, v) for k, v in exploration.base_values.items()}) & menu_pairs
    repeats = [it for it in its if it.repeat_of is not None]
    recent = its[-RECENT:]
    judged = [it for it in its if it.decision is not None]
    keeps = [it for it in judged if it.decision == "keep"]
    value, experiment, best_index = exploration.best()
    plateau = longest = 0
    for it in judged:
        plateau = 0 if it.decision == "keep" else plateau + 1
        longest = max(longest, plateau)
    return {
        "exploration": exploration.id,
        "iterations": n,
        "knobs_in_menu": len(exploration.menu),
        "knobs_touched": sorted(knobs),
        "knob_coverage": _ratio(len(knobs), len(exploration.menu)),
        "pair_coverage": _ratio(len(pairs), len(menu_pairs)),
        "repeats": len(repeats),
        "replicates": sum(1 for it in repeats if it.replicate),
        "repeat_rate": _ratio(len(repeats), n),
        "refused": len(exploration.refused),
        "attempted_repeat_rate": _ratio(len(repeats) + len(exploration.refused),
                                        n + len(exploration.refused)),
        f"repeat_rate_last_{RECENT}": _ratio(sum(1 for it in recent if it.repeat_of), len(recent)),
        "mean_repeat_lag": (sum(it.index - (it.repeat_of or 0) for it in repeats) / len(repeats)
                            if repeats else None),
        "keeps": len(keeps),
        "keep_rate": _ratio(len(keeps), len(judged)),
        "time_to_first_keep": keeps[0].index if keeps else None,
        "time_to_best_keep": best_index,
        "longest_plateau": longest,
        "best": {"value": value, "experiment": experiment, "iteration": best_index},
        "metric": exploration.metric,
        "goal": exploration.goal,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None
