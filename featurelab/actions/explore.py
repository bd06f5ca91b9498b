"""Exploring: an agent (or a proposer) changes the best configuration so far, one
proposal at a time; each is trained, then kept or discarded against the best.

Three logged actions, so the blog, the cells and replay have every step:
`explore` sets up the search (base, menu of knob values, metric, goal, budget, rail),
`propose` applies the block_repeat rail and the budget and creates the candidate (its
training is an ordinary logged run, started by the proposal), and `judge` reads the
candidate's metric and keeps or discards it. A replay reruns each as logged: the
proposal without training (its run entry follows), the judgement from the replayed run.
`Explorer` is what `lab.explore` returns: the proposal loop in Python, with built-in
proposers (random without replacement, grid), metrics, a sidecar JSON and a TSV.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from featurelab.actions import experiments as _experiments
from featurelab.actions.base import Action, Context, action, call
from featurelab.actions.sweeps import knob_paths, label, member_config
from featurelab.engine.config import ExperimentConfig
from featurelab.engine.models import hook_shapes, weight_shapes
from featurelab.engine.observables import SNAPSHOT_OBSERVABLES, plan_observables
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.state import LabState
from featurelab.trajectory import (
    BUDGETS,
    GOALS,
    BudgetSpent,
    Exploration,
    Iteration,
    RepeatBlocked,
    metrics,
    pair_key,
)

EXPLORE_PREFIX = "explore_"


def _value_at(config: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


def normalised(base: ExperimentConfig, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes as the config holds them (1 -> 1.0 for a float knob, a tuple as a
    list): a pair is the same pair however it was typed. ConfigError if one is invalid."""
    config = member_config(base, changes, "").to_dict()
    return {path: _value_at(config, path) for path in changes}


def _final(state: LabState, experiment: str, metric: str) -> float | None:
    """The metric's last recorded value in the experiment's latest run (None: no run, or
    no finite value: a diverged or failed run)."""
    if experiment not in state.latest:
        return None
    run = state.runs[state.latest[experiment]]
    if not run.done or run.status not in ("finished", "diverged"):
        return None
    try:
        values = run.result().series(metric)
    except FeaturelabError:
        return None
    finite = [float(v) for v in values if math.isfinite(float(v))]
    return finite[-1] if finite and run.status == "finished" else None


@action
class Explore(Action):
    """Starts an exploration: proposals change `base` (then the best so far) with values
    from `menu`, and are kept when `metric` improves toward `goal`."""

    type: ClassVar[str] = "explore"
    base: str
    menu: dict[str, list[Any]]
    metric: str = "test_loss"
    goal: str = "min"
    budget: dict[str, Any] | None = None  # iterations / steps / seconds -> a number
    rail: bool = True  # block_repeat
    name: str | None = None

    @classmethod
    def field_schemas(cls) -> dict[str, dict[str, Any]]:
        # What an agent sees (the MCP tool's input schema): the goals, and the budgets by
        # name, as apply checks them.
        return {
            "goal": {"enum": list(GOALS), "default": "min",
                     "description": "min: lower metric is better; max: higher is better"},
            "budget": {"anyOf": [{"type": "object", "additionalProperties": False,
                                  "properties": {kind: {"type": "number",
                                                        "exclusiveMinimum": 0}
                                                 for kind in BUDGETS}},
                                 {"type": "null"}],
                       "default": None,
                       "description": "the most the exploration may use: iterations, steps "
                                      "(trained, summed), seconds (wall time)"},
        }

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        base = state.experiment(self.base)
        if self.goal not in GOALS:
            raise ConfigError("goal", self.goal, " or ".join(GOALS))
        if not self.menu:
            raise ConfigError("menu", self.menu, "at least one knob with its values",
                              hint='e.g. {"optimizer.lr": [0.001, 0.003, 0.01]}')
        known = knob_paths(base.config.to_dict())
        menu: dict[str, list[Any]] = {}
        for knob, values in self.menu.items():
            if knob not in known:
                raise ConfigError("menu", knob, "a knob path of the config: " + ", ".join(known))
            if not values:
                raise ConfigError(f"menu.{knob}", values, "a non-empty list of values")
            # each value must make a valid config, now, not mid-loop; kept as the config
            # spells it, once
            menu[knob] = list({json.dumps(v, sort_keys=True): v for v in (
                normalised(base.config, {knob: value})[knob] for value in values)}.values())
        scalars = plan_observables(base.config.observables, state.statistics,
                                   hook_shapes(base.config),
                                   base.config.data.is_classification,
                                   weight_shapes(base.config)).scalars
        scalars = tuple(s for s in scalars if s not in SNAPSHOT_OBSERVABLES)  # not series
        if self.metric not in scalars:
            raise ConfigError("metric", self.metric, "a scalar series the base records: "
                              + ", ".join(scalars))
        for kind, limit in (self.budget or {}).items():
            if kind not in BUDGETS or isinstance(limit, bool) or not (
                    isinstance(limit, (int, float)) and math.isfinite(limit) and limit > 0):
                raise ConfigError(f"budget.{kind}", limit,
                                  f"a number above 0 for one of {', '.join(BUDGETS)}")
        number = sum(1 for k in state.explorations if k.startswith(EXPLORE_PREFIX))
        baseline = (recorded or {}).get("baseline") if recorded is not None else \
            _final(state, self.base, self.metric)
        if recorded is None and baseline is None:  # every proposal is judged against it
            raise FeaturelabError(f"{self.base} has no finished run with a finite "
                                  f"{self.metric} to compare proposals with: "
                                  f"lab.run({self.base!r}) first")
        started = (recorded or {}).get("started") or time.time()
        exploration = Exploration(
            id=f"{EXPLORE_PREFIX}{number}", name=self.name or "", base=self.base,
            menu=menu, metric=self.metric,
            goal=self.goal, budget=dict(self.budget or {}), rail=self.rail,
            baseline=baseline, started=started, base_hash=base.config.content_hash(),
            base_values={k: _value_at(base.config.to_dict(), k) for k in menu})
        state.explorations[exploration.id] = exploration
        return ({"exploration": exploration.id, "baseline": baseline, "started": started},
                exploration)

    def after(self, state: LabState, ctx: Context, entry: Any) -> Any:
        return Explorer(ctx, entry.result["exploration"])  # what lab.explore returns

    def to_code(self) -> str:
        # the verb's defaults left out: a cell reads like what was typed
        return call("lab.explore", self.base, self.menu,
                    metric=None if self.metric == "test_loss" else self.metric,
                    goal=None if self.goal == "min" else self.goal, budget=self.budget,
                    rail=None if self.rail else False, name=self.name)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        knobs = ", ".join(f"{k} ({len(v)})" for k, v in self.menu.items())
        baseline = (result or {}).get("baseline")
        from_base = f"; {self.base} gives {baseline:.4g}" if baseline is not None else ""
        return (f"Started exploring from {self.base}: {self.goal}imise {self.metric} over "
                f"{knobs}{from_base}.")


@action
class Propose(Action):
    """One proposal of an exploration: `changes` (knob -> value) to the best so far,
    trained at once; refused if it repeats what was evaluated (unless `replicate`)."""

    type: ClassVar[str] = "propose"
    exploration: str
    changes: dict[str, Any]
    reason: str = ""
    replicate: bool = False
    train: bool = True  # False: a replay, whose logged run and judgement follow

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        exploration = state.exploration(self.exploration)
        pending = exploration.pending()
        if pending is not None:
            raise FeaturelabError(f"{exploration.id}: iteration {pending.index} is not judged "
                                  f"yet (lab.judge({exploration.id!r}, {pending.index}))")
        current = exploration.best()[1]  # proposals change the best so far
        base = state.experiment(current).config
        for knob in self.changes:
            if knob not in exploration.menu:
                raise ConfigError("changes", knob, "a knob of the menu: "
                                  + ", ".join(exploration.menu))
        if not self.changes:
            raise ConfigError("changes", self.changes, "at least one knob and its value")
        changes = normalised(base, self.changes)
        config = member_config(base, changes, f"{exploration.id}: {label(changes)}")
        digest = config.content_hash()
        repeat = exploration.repeat_of(changes, digest)
        if recorded is None:
            if repeat is not None and exploration.rail and not self.replicate:
                exploration.refused.append({"after_iteration": len(exploration.iterations),
                                            "changes": changes, "repeats": repeat[1]})
                write_sidecar(exploration, ctx)
                raise RepeatBlocked(exploration.id, repeat[0], repeat[1])
            # Iterations and steps count the same in a replay; wall time does not.
            spent = exploration.spent(time.time() if self.train else exploration.started)
            if spent is not None:
                raise BudgetSpent(f"{exploration.id}: its budget is spent ({spent})")
        existing = next((e.id for e in state.experiments.values()
                         if e.config.content_hash() == digest), None)
        experiment = existing or state.add_experiment(config, current).id
        iteration = Iteration(
            index=len(exploration.iterations) + 1, changes=changes,
            reason=self.reason, experiment=experiment, config_hash=digest,
            replicate=self.replicate, repeat_of=repeat[1] if repeat else None,
            steps=config.optimizer.steps, started=time.time())
        exploration.iterations.append(iteration)
        return ({"iteration": iteration.index, "experiment": experiment,
                 "reused": existing is not None, "repeat_of": iteration.repeat_of}, iteration)

    def after(self, state: LabState, ctx: Context, entry: Any) -> Any:
        if not self.train:
            return None
        iteration = state.exploration(self.exploration).iterations[-1]
        ctx.apply(_experiments.RunExperiment(experiment=iteration.experiment), entry.actor)
        return ctx.apply(Judge(exploration=self.exploration, iteration=iteration.index),
                         entry.actor)

    def rerun(self, result: dict[str, Any] | None, stops: dict[str, int]) -> Action:
        return self.but(train=False)  # the log's own run and judgement follow it

    def to_code(self) -> str:
        return call("lab.propose", self.exploration, self.changes, reason=self.reason or None,
                    replicate=self.replicate or None, train=None if self.train else False)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        why = f" ({self.reason})" if self.reason else ""
        head = f"Proposed {label(self.changes)} for {self.exploration}{why}"
        if not result:
            return head + "."
        repeat = (f"; repeats iteration {result['repeat_of']} on purpose"
                  if result.get("repeat_of") else "")
        return f"{head}: iteration {result['iteration']}, {result['experiment']}{repeat}."


@action
class Judge(Action):
    """Keeps a proposal if its metric beats the best so far, else discards it."""

    type: ClassVar[str] = "judge"
    exploration: str
    iteration: int

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        exploration = state.exploration(self.exploration)
        if not 1 <= self.iteration <= len(exploration.iterations):
            raise ConfigError("iteration", self.iteration,
                              f"1 to {len(exploration.iterations)}")
        it = exploration.iterations[self.iteration - 1]
        if recorded is not None and "decision" in recorded:
            value, decision = recorded.get("value"), recorded["decision"]
        else:
            if it.decision is not None:  # against a best that may be itself: never again
                raise FeaturelabError(f"{exploration.id}: iteration {it.index} is judged "
                                      f"already ({it.decision})")
            run = state.runs.get(state.latest.get(it.experiment, ""))
            if run is not None and not run.done:
                raise FeaturelabError(f"{it.experiment} is still training: judge it after")
            value = _final(state, it.experiment, exploration.metric)
            decision = ("cancelled" if run is not None and run.status == "cancelled" else
                        "failed" if value is None else
                        "keep" if exploration.better(value) else "discard")
        it.value, it.decision = value, decision
        best = exploration.best()
        return ({"value": value, "decision": decision, "best": best[0],
                 "best_experiment": best[1]}, it.to_dict())

    def after(self, state: LabState, ctx: Context, entry: Any) -> Any:
        write_sidecar(state.exploration(self.exploration), ctx)
        return None

    def compare(self, recorded: dict[str, Any], replayed: dict[str, Any], state: LabState
                ) -> tuple[list[str], list[tuple[str, str]]]:
        what = f"{self.exploration} iteration {self.iteration}"
        if recorded.get("decision") == replayed.get("decision"):
            return [f"{what}: {recorded.get('decision')}"], []
        return [], [(what, f"{recorded.get('decision')} -> {replayed.get('decision')}")]

    def to_code(self) -> str:
        return call("lab.judge", self.exploration, self.iteration)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        head = f"Judged iteration {self.iteration} of {self.exploration}"
        if not result:
            return head + "."
        value = result.get("value")
        shown = "no value" if value is None else f"{value:.4g}"
        verdict = {"keep": "kept (the best so far)", "discard": "discarded",
                   "failed": "failed (no finite value)",
                   "cancelled": "cancelled (not evaluated)"}[result["decision"]]
        return f"{head}: {shown}, {verdict}."


# -- the sidecar and the table -------------------------------------------------------------

def sidecar_path(exploration: Exploration, ctx: Context) -> Path | None:
    """<lab>.s<session>.<exploration>.json beside the lab's store (None for an in-memory
    lab): each session has its own explore_0."""
    store = ctx.store.path
    if store is None:
        return None
    return store.with_name(f"{store.stem}.s{ctx.session}.{exploration.id}.json")


def write_sidecar(exploration: Exploration, ctx: Context) -> Path | None:
    """The metrics and the history, rewritten after every judgement (atomically: a
    reader mid-loop sees the previous file or the new one, never half of one)."""
    path = sidecar_path(exploration, ctx)
    if path is None:
        return None
    document = {"metrics": metrics(exploration), "menu": exploration.menu,
                "iterations": [it.to_dict() for it in exploration.iterations],
                "refused": exploration.refused,
                "written": time.time()}
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # two kernels: two
    partial.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    os.replace(partial, path)
    return path


# -- proposers and the loop ----------------------------------------------------------------

Proposal = tuple[dict[str, Any], str]  # (changes, reason)
Proposer = Callable[["Explorer"], "Proposal | dict[str, Any] | None"]


def random_proposer(seed: int = 0) -> Proposer:
    """One knob at a time, a (knob, value) pair not tried yet, drawn without replacement."""
    rng = random.Random(seed)  # noqa: S311 -- a reproducible search, not a secret

    def propose(explorer: Explorer) -> Proposal | None:
        fresh = explorer.untried()
        if not fresh:
            return None
        knob, value = fresh[rng.randrange(len(fresh))]
        return {knob: value}, f"random: {knob}={json.dumps(value)} not tried yet"
    return propose


def grid_proposer() -> Proposer:
    """One knob at a time, in menu order: every value of the first knob, then the next."""
    def propose(explorer: Explorer) -> Proposal | None:
        fresh = explorer.untried()
        if not fresh:
            return None
        knob, value = fresh[0]
        return {knob: value}, f"grid: {knob}={json.dumps(value)}"
    return propose


PROPOSERS: dict[str, Callable[..., Proposer]] = {"random": random_proposer,
                                                  "grid": grid_proposer}


class Explorer:
    """An exploration as `lab.explore` returns it: propose, run a proposer, read metrics."""

    def __init__(self, lab: Any, exploration: str) -> None:  # the Lab
        self.lab = lab
        self.id = exploration
        self.blocked: list[str] = []  # refusals of run(): repeats, changes that do not fit
        self.infeasible: set[str] = set()  # pairs the best so far cannot take

    @property
    def exploration(self) -> Exploration:
        return self.lab.state.exploration(self.id)

    def __repr__(self) -> str:
        m = self.metrics()
        return (f"<Explorer {self.id}: {m['iterations']} iterations, best "
                f"{m['best']['value']} ({m['best']['experiment']})>")

    def propose(self, changes: dict[str, Any], reason: str = "",
                replicate: bool = False) -> dict[str, Any]:
        """Trains `changes` to the best so far and judges it; returns the iteration."""
        return self.lab.apply(Propose(exploration=self.id, changes=changes, reason=reason,
                                      replicate=replicate))

    def untried(self) -> list[tuple[str, Any]]:
        """The menu's (knob, value) pairs worth proposing now, in menu order: not
        evaluated yet, not what the best so far already has (a no-op), not making a
        configuration evaluated before, not found invalid by this Explorer."""
        exploration = self.exploration
        state = self.lab.state
        best = state.experiment(exploration.best()[1]).config
        current = best.to_dict()
        tried = {pair_key(k, v) for it in exploration.iterations
                 if it.decision != "cancelled" for k, v in it.changes.items()}
        hashes = {it.config_hash for it in exploration.iterations
                  if it.decision != "cancelled"} | {exploration.base_hash}
        fresh = []
        for knob, values in exploration.menu.items():
            for value in values:
                key = pair_key(knob, value)
                if key in tried or key in self.infeasible or _value_at(current, knob) == value:
                    continue
                try:
                    digest = member_config(best, {knob: value}, "").content_hash()
                except ConfigError:  # valid for the base, not for the best so far
                    self.infeasible.add(key)
                    continue
                if digest not in hashes:
                    fresh.append((knob, value))
        return fresh

    def run(self, proposer: str | Proposer = "random", iterations: int = 10,
            seed: int = 0) -> dict[str, Any]:
        """Asks `proposer` (a name in PROPOSERS, or any callable taking this Explorer and
        returning (changes, reason), a changes dict, or None to stop) for up to
        `iterations` proposals. A repeat the rail refuses (`.blocked`) or a change the
        best so far cannot take (`.infeasible`) is counted, not trained; the loop ends
        early when the proposer has nothing left, the budget is spent, or a proposal's
        run was cancelled (Ctrl-C). An iteration left unjudged (a kernel stopped
        between its run and its judgement) is judged first. Returns the metrics."""
        if isinstance(proposer, str):
            if proposer not in PROPOSERS:
                raise ConfigError("proposer", proposer, " or ".join(PROPOSERS) +
                                  " or a callable")
            ask = PROPOSERS[proposer](seed) if proposer == "random" else PROPOSERS[proposer]()
        else:
            ask = proposer
        self.judge_pending()
        for _ in range(iterations):
            proposal = ask(self)
            if proposal is None:
                break
            changes, reason = proposal if isinstance(proposal, tuple) else (proposal, "")
            try:
                judged = self.propose(changes, reason)
            except RepeatBlocked as exc:
                self.blocked.append(str(exc))
                continue
            except BudgetSpent:
                break
            except ConfigError as exc:  # e.g. a warmup longer than the best's steps
                self.infeasible.update(pair_key(k, v) for k, v in changes.items())
                self.blocked.append(str(exc))
                continue
            if isinstance(judged, dict) and judged.get("decision") == "cancelled":
                break  # the run was stopped (Ctrl-C): so is the loop
        return self.metrics()

    def judge_pending(self) -> dict[str, Any] | None:
        """Judges the latest iteration if it was left unjudged and its run has ended
        (or never started: it is then trained first)."""
        pending = self.exploration.pending()
        if pending is None:
            return None
        state = self.lab.state
        if pending.experiment not in state.latest:
            self.lab.run(pending.experiment)
        return self.lab.judge(self.id, pending.index)

    def metrics(self) -> dict[str, Any]:
        return metrics(self.exploration)

    def to_json(self) -> dict[str, Any]:
        """What an agent gets back for it: its id and metrics."""
        return {"exploration": self.id, "metrics": self.metrics()}

    def to_tsv(self, path: str | Path) -> Path:
        """One row per iteration (iteration, changes, metric, decision, reason), like the
        results.tsv autoresearch-style loops keep."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["iteration", "changes", self.exploration.metric, "decision",
                             "reason"])
            for it in self.exploration.iterations:
                writer.writerow([it.index, json.dumps(it.changes, sort_keys=True),
                                 "" if it.value is None else repr(it.value),
                                 it.decision or "", " ".join(it.reason.split())])
        return path
