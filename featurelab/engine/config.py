"""Experiment configuration: frozen dataclasses, one per concern.

Every field has a commented default. Validation happens at construction, so an
invalid config never exists; its error names the field, the value and what is
allowed. `to_dict` / `from_dict` round-trip through JSON, and `content_hash` is
stable across processes (floats normalised, the free-text name left out) so a
finished run can be found again from its config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

# One registry per kind: validation reads the names of the registries the engine builds
# from (these modules import config for types only).
from featurelab.engine.activations import ACTIVATIONS
from featurelab.engine.data import TASKS
from featurelab.engine.optim import OPTIMIZERS
from featurelab.errors import ConfigError

MODEL_KINDS = ("mlp", "embed_mlp")
MODULAR_OPS = ("+", "-", "*", "/")
SCHEDULES = ("constant", "cosine")
LOSSES = ("mse", "cross_entropy")

MAX_WIDTH = 65_536  # beyond this a CPU lab bench would only run out of memory
MAX_DEPTH = 64
MAX_STEPS = 1_000_000  # a sanity cap: a typo like steps=2e9 should fail fast, not hang
MAX_SAMPLES = 10_000_000


def _check_int(path: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(path, value, f"an integer from {lo} to {hi}")
    return value


def _check_float(path: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and -math.inf < value < math.inf)  # not isfinite(): it overflows on huge ints
    if ok:
        ok = (lo < value if lo_open else lo <= value) and value <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ConfigError(path, value, f"a number in {bracket}{lo:g}, {hi:g}]")
    return float(value)


def _check_choice(path: str, value: Any, choices: Collection[str]) -> str:
    # A list or dict given is not a name (and `in` a registry dict would raise TypeError)
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(path, value, "one of " + ", ".join(map(repr, choices)))
    return value


def _int_tuple(path: str, value: Any, allowed: str = "a list of positive integers"
               ) -> tuple[Any, ...]:
    """A list as a tuple, numpy integers as ints; other items are left for the range check."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(path, value, allowed)
    out = []
    for item in value:
        try:
            out.append(item if isinstance(item, bool) else operator.index(item))
        except TypeError:
            out.append(item)  # a float or string: _check_int names it with its index
    return tuple(out)


def _number(value: float) -> str:
    """10.0 -> '10', 1.23456789 -> '1.23456789': short, but exact."""
    return str(int(value)) if value.is_integer() else repr(value)


def _set(obj: Any, name: str, value: Any) -> None:
    # Frozen dataclasses normalise their own fields (lists -> tuples, ints -> floats).
    object.__setattr__(obj, name, value)


class _ConfigBase:
    """to_dict / from_dict shared by every config dataclass."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, _ConfigBase):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | Any, path: str = "") -> Any:
        if isinstance(data, cls):
            return data
        where = path or cls.__name__
        if not isinstance(data, dict):
            raise ConfigError(where, data, f"a dict with keys {_field_names(cls)}")
        unknown = sorted(set(data) - set(_field_names(cls)), key=repr)  # keys of any type
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", data[unknown[0]],
                              f"known keys are {', '.join(_field_names(cls))}",
                              hint="unknown key")
        return cls(**data)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelConfig(_ConfigBase):
    kind: str = "mlp"  # "mlp" on vectors; "embed_mlp" embeds two tokens (modular task)
    widths: tuple[int, ...] = (10, 100, 100, 1)  # input, hidden..., output
    activation: str = "relu"  # nonlinearity after every hidden layer
    bias: bool = True  # biases in every linear layer
    init_scale: float = 1.0  # multiplies PyTorch's default init; >1 helps grokking

    def __post_init__(self) -> None:
        _check_choice("model.kind", self.kind, MODEL_KINDS)
        widths = _int_tuple("model.widths", self.widths)
        if not 2 <= len(widths) <= MAX_DEPTH:
            raise ConfigError("model.widths", list(widths),
                              f"a list of 2 to {MAX_DEPTH} widths: input, hidden..., output")
        for i, w in enumerate(widths):
            _check_int(f"model.widths[{i}]", w, 1, MAX_WIDTH)
        _set(self, "widths", widths)
        _check_choice("model.activation", self.activation, ACTIVATIONS)
        if not isinstance(self.bias, bool):
            raise ConfigError("model.bias", self.bias, "True or False")
        _set(self, "init_scale", _check_float("model.init_scale", self.init_scale, 0, 100, True))

    @property
    def label(self) -> str:
        kind = {"mlp": "MLP", "embed_mlp": "Embed+MLP"}[self.kind]
        return f"{kind} {', '.join(map(str, self.widths))}, {self.activation}"


@dataclass(frozen=True)
class DataConfig(_ConfigBase):
    task: str = "sin2"  # sin2 | formula | modular | teacher
    dim: int = 10  # input dimension of x (sin2, formula, teacher)
    freq: float = 10.0  # sin2: y = sum_i sin^2(freq * x_i)
    formula: str = ""  # formula: y as an expression in x, e.g. "sum(sin(10*x)**2)"
    noise: float = 0.0  # regression: std of Gaussian noise added to train targets
    n_train: int = 500  # regression: training samples, x ~ N(0, I)
    n_test: int = 200  # regression: test samples
    p: int = 97  # modular: the modulus (a prime for "/")
    op: str = "+"  # modular: a op b mod p
    train_frac: float = 0.5  # modular: fraction of the p*p pairs used for training
    teacher_widths: tuple[int, ...] = (32,)  # teacher: hidden widths of the random teacher MLP

    def __post_init__(self) -> None:
        _check_choice("data.task", self.task, TASKS)
        _check_int("data.dim", self.dim, 1, MAX_WIDTH)
        _set(self, "freq", _check_float("data.freq", self.freq, -1e6, 1e6))
        _set(self, "noise", _check_float("data.noise", self.noise, 0, 1e6))
        _check_int("data.n_train", self.n_train, 1, MAX_SAMPLES)
        _check_int("data.n_test", self.n_test, 0, MAX_SAMPLES)
        _check_int("data.p", self.p, 2, 2_000)
        _check_choice("data.op", self.op, MODULAR_OPS)
        _set(self, "train_frac",
             _check_float("data.train_frac", self.train_frac, 0, 1, lo_open=True))
        widths = _int_tuple("data.teacher_widths", self.teacher_widths)
        for i, w in enumerate(widths):
            _check_int(f"data.teacher_widths[{i}]", w, 1, MAX_WIDTH)
        _set(self, "teacher_widths", widths)
        if not isinstance(self.formula, str):
            raise ConfigError("data.formula", self.formula, "a string")
        if self.task == "formula":
            from featurelab.engine.formula import parse_formula

            if not self.formula.strip():
                raise ConfigError("data.formula", self.formula,
                                  "an expression in x, e.g. 'sum(sin(10*x)**2)'",
                                  hint="task 'formula' needs a formula")
            parse_formula(self.formula, self.dim)  # raises ConfigError naming data.formula
        if self.task == "modular" and self.op == "/" and not _is_prime(self.p):
            raise ConfigError("data.p", self.p, "a prime when op is '/'",
                              hint="division mod p needs every nonzero b invertible")

    @property
    def target_formula(self) -> str:
        """The regression target as formula text (sin2 is a formula with a name)."""
        if self.task == "sin2":
            return f"sum(sin({_number(self.freq)}*x)**2)"
        return self.formula

    @property
    def is_classification(self) -> bool:
        return self.task == "modular"

    @property
    def label(self) -> str:
        if self.task == "modular":
            return f"modular a {self.op} b mod {self.p}, train_frac={self.train_frac:g}"
        if self.task == "teacher":
            hidden = ", ".join(map(str, self.teacher_widths))
            return f"teacher MLP {self.dim}, {hidden}, 1, train={self.n_train}, test={self.n_test}"
        return f"{self.task}, train={self.n_train}, test={self.n_test}, y = {self.target_formula}"


@dataclass(frozen=True)
class OptimizerConfig(_ConfigBase):
    name: str = "adam"  # sgd | adam | adamw | muon
    lr: float = 1e-3  # peak learning rate
    steps: int = 2000  # optimizer steps in a run
    batch_size: int = 0  # 0 means full batch; otherwise minibatches reshuffled every epoch
    momentum: float = 0.9  # sgd and muon momentum
    beta2: float = 0.999  # adam/adamw/muon-adamw second-moment decay (beta1 = momentum)
    weight_decay: float = 0.0  # decoupled for adamw and muon, L2 for sgd and adam
    warmup_steps: int = 0  # linear warmup from 0 to lr over this many steps
    schedule: str = "constant"  # after warmup: constant, or cosine decay to 0 at the last step

    def __post_init__(self) -> None:
        _check_choice("optimizer.name", self.name, OPTIMIZERS)
        _set(self, "lr", _check_float("optimizer.lr", self.lr, 0, 100, lo_open=True))
        _check_int("optimizer.steps", self.steps, 1, MAX_STEPS)
        _check_int("optimizer.batch_size", self.batch_size, 0, MAX_SAMPLES)
        _set(self, "momentum", _check_float("optimizer.momentum", self.momentum, 0, 0.9999))
        _set(self, "beta2", _check_float("optimizer.beta2", self.beta2, 0, 0.99999))
        _set(self, "weight_decay",
             _check_float("optimizer.weight_decay", self.weight_decay, 0, 100))
        _check_int("optimizer.warmup_steps", self.warmup_steps, 0, self.steps)
        _check_choice("optimizer.schedule", self.schedule, SCHEDULES)

    @property
    def label(self) -> str:
        parts = [self.name, f"lr={self.lr:g}", f"steps={self.steps}"]
        if self.weight_decay:
            parts.append(f"wd={self.weight_decay:g}")
        if self.batch_size:
            parts.append(f"batch={self.batch_size}")
        if self.warmup_steps:
            parts.append(f"warmup={self.warmup_steps}")
        if self.schedule != "constant":
            parts.append(self.schedule)
        return ", ".join(parts)


# Dense early (where the reference post's phase transitions happen), sparser later:
# 100 + 45 + 10 snapshots for a 2000-step run, about 62 MB for two 500 x 100 layers.
DEFAULT_SNAPSHOT_SCHEDULE = ((0, 1), (100, 20), (1000, 100))


@dataclass(frozen=True)
class SnapshotConfig(_ConfigBase):
    # (from_step, every): from from_step on, keep a snapshot every `every` steps
    schedule: tuple[tuple[int, int], ...] = DEFAULT_SNAPSHOT_SCHEDULE
    points: str = "pre"  # which hook points to keep: "pre", "post" or "all"
    max_samples: int = 0  # keep at most this many samples per snapshot; 0 keeps all

    def __post_init__(self) -> None:
        pairs = "a list of [from_step, every] pairs of integers"
        if isinstance(self.schedule, (str, bytes)) or not hasattr(self.schedule, "__iter__"):
            raise ConfigError("snapshots.schedule", self.schedule, pairs)
        schedule = tuple(_int_tuple("snapshots.schedule", p, pairs) for p in self.schedule)
        if any(len(p) != 2 for p in schedule):
            raise ConfigError("snapshots.schedule", self.schedule, pairs)
        for i, (start, every) in enumerate(schedule):
            _check_int(f"snapshots.schedule[{i}][0]", start, 0, MAX_STEPS)
            _check_int(f"snapshots.schedule[{i}][1]", every, 1, MAX_STEPS)
        starts = [s for s, _ in schedule]
        if starts != sorted(set(starts)):
            raise ConfigError("snapshots.schedule", [list(p) for p in schedule],
                              "pairs with strictly increasing from_step")
        _set(self, "schedule", schedule)
        _check_choice("snapshots.points", self.points, ("pre", "post", "all"))
        _check_int("snapshots.max_samples", self.max_samples, 0, MAX_SAMPLES)

    def steps(self, n_steps: int) -> list[int]:
        """The steps (0 .. n_steps-1, plus the last) at which a snapshot is taken."""
        out: list[int] = []
        bounds = [s for s, _ in self.schedule[1:]] + [n_steps]
        for (start, every), stop in zip(self.schedule, bounds):
            out.extend(range(start, min(stop, n_steps), every))
        if n_steps and (not out or out[-1] != n_steps - 1):
            out.append(n_steps - 1)
        return out


DEFAULT_OBSERVABLES = ("train_loss", "test_loss", "weight_l2_norm", "hidden_activations")


@dataclass(frozen=True)
class ExperimentConfig(_ConfigBase):
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: str = "mse"  # mse for regression, cross_entropy for classification
    observables: tuple[str, ...] = DEFAULT_OBSERVABLES  # what is recorded; see observables.py
    seed: int = 0  # seeds data, init and minibatch order
    snapshots: SnapshotConfig = field(default_factory=SnapshotConfig)
    name: str = ""  # free text for people; not part of the content hash

    def __post_init__(self) -> None:
        for key, cls in (("model", ModelConfig), ("data", DataConfig),
                         ("optimizer", OptimizerConfig), ("snapshots", SnapshotConfig)):
            _set(self, key, cls.from_dict(getattr(self, key), path=key))
        _check_choice("loss", self.loss, LOSSES)
        if isinstance(self.observables, str) or not hasattr(self.observables, "__iter__"):
            raise ConfigError("observables", self.observables, "a list of observable names")
        observables = tuple(self.observables)
        for i, name in enumerate(observables):
            if not isinstance(name, str) or not name:
                raise ConfigError(f"observables[{i}]", name, "a non-empty string")
        _set(self, "observables", tuple(dict.fromkeys(observables)))  # drop repeats
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if not isinstance(self.name, str) or len(self.name) > 500:
            raise ConfigError("name", self.name, "a string of at most 500 characters")
        self._check_consistency()

    def _check_consistency(self) -> None:
        m, d = self.model, self.data
        if d.is_classification:
            if m.kind != "embed_mlp":
                raise ConfigError("model.kind", m.kind, "'embed_mlp' for the modular task")
            if self.loss != "cross_entropy":
                raise ConfigError("loss", self.loss, "'cross_entropy' for the modular task")
            if m.widths[-1] != d.p:
                raise ConfigError("model.widths[-1]", m.widths[-1],
                                  f"{d.p} (one logit per residue mod p={d.p})")
            return
        if m.kind != "mlp":
            raise ConfigError("model.kind", m.kind, f"'mlp' for the {d.task} task")
        if self.loss != "mse":
            raise ConfigError("loss", self.loss, f"'mse' for the {d.task} task")
        if m.widths[0] != d.dim:
            raise ConfigError("model.widths[0]", m.widths[0],
                              f"{d.dim}, the input dimension data.dim")
        if m.widths[-1] != 1:
            raise ConfigError("model.widths[-1]", m.widths[-1], "1 for a scalar regression target")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | Any, path: str = "") -> ExperimentConfig:
        return super().from_dict(data, path)

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields changed; nested configs accept partial dicts."""
        merged = self.to_dict()
        for key, value in changes.items():
            if key not in merged:
                raise ConfigError(key, value, f"known keys are {', '.join(merged)}",
                                  hint="unknown key")
            if isinstance(value, dict) and isinstance(merged[key], dict):
                merged[key] = {**merged[key], **value}
            elif isinstance(value, _ConfigBase):
                merged[key] = value.to_dict()
            else:
                merged[key] = value
        return ExperimentConfig.from_dict(merged)

    def content_hash(self) -> str:
        payload = self.to_dict()
        payload.pop("name")
        text = json.dumps(_normalise(payload), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.model.label}; {self.data.label}; {self.optimizer.label}"


def _normalise(value: Any) -> Any:
    # 1e-3 and 0.001 are the same float; repr of a float is the shortest round-trip
    # text, so it is the same in every process.
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, math.isqrt(n) + 1))
