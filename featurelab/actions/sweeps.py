"""Many runs: a sweep makes its member experiments from a base and knob values.

A knob is a config path as the config's dicts spell it ("optimizer.lr", "model.widths",
"data.n_train", "seed"). The members are the product of the grid's value lists, the
zipped lists (advanced together), a deterministic random sample of another product, and
the seeds, in that order (the seed varies fastest, so a group's members sit together).
One action makes them all, so one cell rebuilds the sweep and the log says what it was.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from featurelab.actions.base import Action, Context, GraphLike, action, call
from featurelab.engine.config import ExperimentConfig
from featurelab.engine.models import hook_shapes, weight_shapes
from featurelab.engine.observables import plan_observables
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.state import LabState

SEED = "seed"
# A typo (a grid of 1000 x 1000 values) should fail at once, not make a million experiments.
MAX_MEMBERS = 10_000
NAME_LENGTH = 500  # what ExperimentConfig.name allows
Values = dict[str, Any]  # knob path -> value, in the order the sweep names them


def as_json(value: Any) -> Any:
    """Knob values as the JSON an action holds: numpy numbers become Python numbers,
    tuples, ranges and arrays become lists (so `np.logspace(...)` and `range(8)` work)."""
    if hasattr(value, "tolist"):  # a numpy array or number
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, range)):
        return [as_json(v) for v in value]
    return value


# -- the knob values of every member --------------------------------------------------------

def _value_lists(where: str, knobs: dict[str, list[Any]] | None) -> dict[str, list[Any]]:
    knobs = knobs or {}
    for path, values in knobs.items():
        if not values:
            raise ConfigError(path, values, "a non-empty list of values", hint=f"in {where}")
    return knobs


def _product(knobs: dict[str, list[Any]]) -> list[Values]:
    return [dict(zip(knobs, combo)) for combo in itertools.product(*knobs.values())]


def _zipped(knobs: dict[str, list[Any]]) -> list[Values]:
    if not knobs:
        return [{}]
    first, length = next(iter(knobs)), len(next(iter(knobs.values())))
    for path, values in knobs.items():
        if len(values) != length:
            raise ConfigError(path, values, f"a list of {length} values, as long as "
                              f"zip's {first!r}", hint="zip advances its lists together")
    return [dict(zip(knobs, row)) for row in zip(*knobs.values())]


def _sampled(knobs: dict[str, list[Any]], n: int | None, seed: int | None) -> list[Values]:
    """n points of the knobs' product, drawn without replacement, in the product's order;
    the same for the same seed (each point is decoded from its index: the product is
    never built)."""
    if not knobs:
        for name, given in (("n", n), ("sample_seed", seed)):
            if given is not None:
                raise ConfigError(name, given, "None without sample",
                                  hint="sample= gives the values to draw from")
        return [{}]
    sizes = [len(v) for v in knobs.values()]
    total = math.prod(sizes)
    if n is None or not 1 <= n <= total:
        raise ConfigError("n", n, f"an integer from 1 to {total}, the points of sample's "
                          "product", hint="how many points to draw")
    rng = random.Random(0 if seed is None else seed)  # noqa: S311  # not cryptographic
    points = []
    for index in sorted(rng.sample(range(total), n)):
        digits = []
        for size in reversed(sizes):  # the first knob varies slowest, as in a product
            index, digit = divmod(index, size)
            digits.append(digit)
        points.append({path: values[d] for (path, values), d
                       in zip(knobs.items(), reversed(digits))})
    return points


def expand(grid: dict[str, list[Any]] | None, zipped: dict[str, list[Any]] | None,
           sample: dict[str, list[Any]] | None, n: int | None, sample_seed: int | None,
           seeds: list[int] | None) -> tuple[tuple[str, ...], list[Values]]:
    """(the knob paths, each member's knob values) of a sweep's parameters."""
    grid, zipped = _value_lists("grid", grid), _value_lists("zip", zipped)
    sample = _value_lists("sample", sample)
    paths = [*grid, *zipped, *sample]
    for path in paths:
        if paths.count(path) > 1 or (seeds is not None and path == SEED):
            raise ConfigError(path, "given twice", "each knob in only one of grid, zip, "
                              "sample and seeds")
    if seeds is not None:
        if not seeds:
            raise ConfigError("seeds", seeds, "a non-empty list of seeds")
        paths.append(SEED)
    if not paths:
        raise ConfigError("grid", grid, "knobs to vary", hint="give grid, zip, sample or seeds")
    factors = [_product(grid), _zipped(zipped), _sampled(sample, n, sample_seed),
               [{SEED: s} for s in seeds] if seeds is not None else [{}]]
    count = math.prod(len(f) for f in factors)
    if count > MAX_MEMBERS:
        raise ConfigError("grid", f"{count} members", f"at most {MAX_MEMBERS} members")
    members = [{k: v for part in parts for k, v in part.items()}
               for parts in itertools.product(*factors)]
    return tuple(paths), members


# -- members as configs ----------------------------------------------------------------------

def knob_paths(config: dict[str, Any], prefix: str = "") -> list[str]:
    """Every path a sweep can vary: the config's leaves, but its free-text name."""
    paths = []
    for key, value in config.items():
        path = prefix + key
        if isinstance(value, dict):
            paths += knob_paths(value, path + ".")
        elif path != "name":
            paths.append(path)
    return paths


def _show(value: Any) -> str:
    """A knob value as people read it: 0.001, [10, 50, 50, 1], relu."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(map(_show, value)) + "]"
    return repr(value)


def label(values: Values, without: Iterable[str] = ()) -> str:
    """'optimizer.lr=0.001, model.widths=[10, 50, 50, 1], seed=3'."""
    return ", ".join(f"{path}={_show(v)}" for path, v in values.items() if path not in without)


def member_name(prefix: str, values: Values) -> str:
    name = f"{prefix}: {label(values)}"
    return name if len(name) <= NAME_LENGTH else name[:NAME_LENGTH - 3] + "..."


def member_config(base: ExperimentConfig, values: Values, name: str) -> ExperimentConfig:
    """The base with the knob values applied (paths checked by the caller)."""
    merged = copy.deepcopy(base.to_dict())
    for path, value in values.items():
        *sections, leaf = path.split(".")
        target = merged
        for section in sections:
            target = target[section]
        target[leaf] = copy.deepcopy(value)
    merged["name"] = name
    return ExperimentConfig.from_dict(merged)


def groups(values: dict[str, Values], fallback: str) -> dict[str, tuple[str, ...]]:
    """Members that differ only by seed, under the label of their other knob values
    (`fallback`, the sweep's name, where the seed is all that varies)."""
    out: dict[str, list[str]] = {}
    for member, knobs in values.items():
        out.setdefault(label(knobs, without=(SEED,)) or fallback, []).append(member)
    return {key: tuple(members) for key, members in out.items()}


def _in_member(error: ConfigError, where: str) -> ConfigError:
    """The same error, also saying which member has it (after its own hint, if any)."""
    plain = f"{error.field}: got {error.value!r}; allowed: {error.allowed}"
    own = str(error)[len(plain) + 2:-1]  # its hint, without the brackets
    return ConfigError(error.field, error.value, error.allowed,
                       hint=f"{own}; {where}" if own else where)


@action
class CreateSweep(Action):
    """Creates the member experiments of a sweep: a base with knob paths (such as
    "optimizer.lr") set from a grid, zipped lists, a random sample and seeds; members
    equal to an existing experiment reuse it."""

    type: ClassVar[str] = "sweep"
    based_on: str
    grid: dict[str, list[Any]] | None = None
    zip: dict[str, list[Any]] | None = None
    sample: dict[str, list[Any]] | None = None
    n: int | None = None
    sample_seed: int | None = None
    seeds: list[int] | None = None
    name: str | None = None

    def _members(self, state: LabState, sweep_id: str
                 ) -> tuple[tuple[str, ...], list[tuple[Values, ExperimentConfig]]]:
        """The knob paths and every member's (values, config); raises before any change."""
        base = state.experiment(self.based_on).config
        paths, points = expand(self.grid, self.zip, self.sample, self.n, self.sample_seed,
                               self.seeds)
        known = knob_paths(base.to_dict())
        given = {**(self.grid or {}), **(self.zip or {}), **(self.sample or {})}
        for path in paths:
            if path not in known:
                raise ConfigError(path, given.get(path),
                                  "a knob path of the config: " + ", ".join(known),
                                  hint="unknown path; every member has it, e.g. "
                                       f"sweep member 0: {label(points[0])}")
        members: list[tuple[Values, ExperimentConfig]] = []
        seen: dict[str, int] = {}
        for i, values in enumerate(points):
            where = f"sweep member {i}: {label(values)}"
            try:
                config = member_config(base, values, member_name(self.name or sweep_id, values))
                plan_observables(config.observables, state.statistics, hook_shapes(config),
                                 config.data.is_classification, weight_shapes(config))
            except ConfigError as exc:
                raise _in_member(exc, where) from None
            digest = config.content_hash()
            if digest in seen:
                raise ConfigError("members", label(values), "values that make different "
                                  "configs", hint=f"{where} repeats member {seen[digest]}")
            seen[digest] = i
            members.append((values, config))
        return paths, members

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict[str, Any], Any]:
        sweep_id = f"sweep_{len(state.sweeps)}"
        if recorded is not None:
            return recorded, self._restore(state, sweep_id, recorded)
        paths, members = self._members(state, sweep_id)
        existing: dict[str, str] = {}
        for experiment in state.experiments.values():
            existing.setdefault(experiment.config.content_hash(), experiment.id)
        # Checked and built: only now does the state change.
        values: dict[str, Values] = {}
        reused = []
        for knobs, config in members:
            found = existing.get(config.content_hash())
            if found is None:
                found = state.add_experiment(config, self.based_on).id
            else:
                reused.append(found)
            values[found] = knobs
        sweep = state.add_sweep(self.name or "", self.based_on, paths, values,
                                groups(values, self.name or sweep_id))
        summary = {"sweep": sweep.id, "knobs": list(paths), "reused": reused,
                   "members": [{"experiment": e, "values": v} for e, v in values.items()]}
        return summary, sweep

    def _restore(self, state: LabState, sweep_id: str, recorded: dict[str, Any]) -> Any:
        """The sweep as the log recorded it: the members' knob values and which were
        reused are read, not drawn or matched again. All or nothing, like a new one."""
        if recorded.get("sweep") != sweep_id or "members" not in recorded \
                or "knobs" not in recorded:
            raise FeaturelabError(f"the log has no members of {sweep_id}")
        base = state.experiment(self.based_on).config
        reused = set(recorded.get("reused", []))
        values: dict[str, Values] = {}
        made: list[ExperimentConfig] = []
        for member in recorded["members"]:
            experiment, knobs = member["experiment"], member["values"]
            if experiment in reused:
                state.experiment(experiment)
            else:  # made in the same order as when it was recorded: the same ids
                expected = f"exp_{state.experiments_made + len(made)}"
                if experiment != expected:
                    raise FeaturelabError(f"{sweep_id}: member {experiment} would come back "
                                          f"as {expected}")
                made.append(member_config(base, knobs,
                                          member_name(self.name or sweep_id, knobs)))
            values[experiment] = knobs
        for config in made:
            state.add_experiment(config, self.based_on)
        return state.add_sweep(self.name or "", self.based_on, tuple(recorded["knobs"]), values,
                               groups(values, self.name or sweep_id))

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        # The experiments it made, as create_experiment adds them (reused ones are there).
        reused = set(result.get("reused", []))
        for member in result.get("members", []):
            exp = state.experiments.get(member["experiment"])
            if exp is None or exp.id in reused:
                continue
            graph.node(exp.id, "experiment", label=exp.id, name=exp.name or None,
                       config=exp.config.label, config_hash=exp.config.content_hash(),
                       sweep=result.get("sweep"))
            graph.edge(exp.id, self.based_on, "based_on")
            for spec in exp.config.observables:
                metric, _, layer = spec.partition("@")
                graph.edge(exp.id, graph.metric(metric), "measured_by", layer=layer or None)
        return None

    def to_code(self) -> str:
        return call("lab.sweep", **self.params())

    def describe(self, result: dict[str, Any] | None = None) -> str:
        paths = [*(self.grid or {}), *(self.zip or {}), *(self.sample or {})]
        paths += [SEED] if self.seeds is not None else []
        varying = paths[0] if len(paths) == 1 else \
            f"{', '.join(paths[:-1])} and {paths[-1]}"
        if not result or "members" not in result:
            return f"Created a sweep based on {self.based_on} varying {varying}."
        number = result["sweep"].removeprefix("sweep_")
        named = f", {self.name!r}" if self.name else ""
        count = len(result["members"])
        reused = len(result.get("reused", []))
        again = f" ({reused} reused)" if reused else ""
        plural = "" if count == 1 else "s"
        return (f"Created sweep {number}{named}: {count} experiment{plural}{again} based on "
                f"{self.based_on} varying {varying}.")
