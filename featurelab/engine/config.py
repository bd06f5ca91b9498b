"""Experiment configuration: frozen dataclasses, one per concern.

Every field is declared with its default, the rule that validates it and one line of
description (`knob`, featurelab.engine.rules): the knob menu and the JSON Schema agents
read are derived from the same declaration (featurelab.engine.knobs). Validation
happens at construction, so an invalid config never exists; its error names the field,
the value and what is allowed. `to_dict` / `from_dict` round-trip through JSON, and
`content_hash` is stable across processes (floats normalised, the free-text name left
out) so a finished run can be found again from its config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

# One registry per kind: validation reads the names of the registries the engine builds
# from (these modules import config for types only).
from featurelab.engine.activations import ACTIVATIONS
from featurelab.engine.data import TASKS
from featurelab.engine.optim import OPTIMIZERS
from featurelab.engine.rules import (
    Choice,
    Flag,
    Integer,
    IntList,
    NameList,
    Number,
    StepSchedule,
    Text,
    knob,
    section,
)
from featurelab.errors import ConfigError

MODEL_KINDS = ("mlp", "embed_mlp", "onehot_mlp")
TOKEN_MODELS = ("embed_mlp", "onehot_mlp")  # the models of the modular task
MODULAR_OPS = ("+", "-", "*", "/")
SCHEDULES = ("constant", "cosine")
LOSSES = ("mse", "cross_entropy")

MAX_WIDTH = 65_536  # beyond this a CPU lab bench would only run out of memory
MAX_DEPTH = 64
MAX_STEPS = 1_000_000  # a sanity cap: a typo like steps=2e9 should fail fast, not hang
MAX_SAMPLES = 10_000_000


def _number(value: float) -> str:
    """10.0 -> '10', 1.23456789 -> '1.23456789': short, but exact."""
    return str(int(value)) if value.is_integer() else repr(value)


def _set(obj: Any, name: str, value: Any) -> None:
    # Frozen dataclasses normalise their own fields (lists -> tuples, ints -> floats).
    object.__setattr__(obj, name, value)


class _ConfigBase:
    """Validation by the fields' rules, to_dict / from_dict, shared by every config."""

    path: ClassVar[str] = ""  # where its fields sit in an ExperimentConfig ("model")

    def _check_fields(self) -> None:
        """Every field by its rule (featurelab.engine.rules), in declaration order: a rule
        may read the fields before it (warmup_steps is at most steps)."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            rule = f.metadata.get("rule")
            if rule is not None:
                path = f"{self.path}.{f.name}" if self.path else f.name
                _set(self, f.name, rule.check(path, getattr(self, f.name), self))

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
    path: ClassVar[str] = "model"
    kind: str = knob("mlp", Choice(MODEL_KINDS),
                     "mlp on vectors; embed_mlp embeds two tokens (the modular task); "
                     "onehot_mlp feeds them one-hot (widths[0] = 2p)")
    widths: tuple[int, ...] = knob(
        (10, 100, 100, 1),
        IntList(1, MAX_WIDTH, 2, MAX_DEPTH,
                f"a list of 2 to {MAX_DEPTH} widths: input, hidden..., output"),
        "layer widths: input (= data.dim), hidden..., output (1; p for modular)")
    activation: str = knob("relu", Choice(ACTIVATIONS), "nonlinearity after every hidden layer")
    bias: bool = knob(True, Flag(), "biases in every linear layer")
    init_scale: float = knob(1.0, Number(0, 100, lo_open=True),
                             "multiplies PyTorch's default init; >1 helps grokking")

    def __post_init__(self) -> None:
        self._check_fields()

    @property
    def label(self) -> str:
        kind = {"mlp": "MLP", "embed_mlp": "Embed+MLP", "onehot_mlp": "One-hot MLP"}[self.kind]
        return f"{kind} {', '.join(map(str, self.widths))}, {self.activation}"


@dataclass(frozen=True)
class DataConfig(_ConfigBase):
    path: ClassVar[str] = "data"
    task: str = knob("sin2", Choice(TASKS),
                     "sin2: y = sum sin^2(freq x); formula: y from data.formula; "
                     "modular: a op b mod p (classification); teacher: a random MLP")
    dim: int = knob(10, Integer(1, MAX_WIDTH), "input dimension of x (sin2, formula, teacher)")
    freq: float = knob(10.0, Number(-1e6, 1e6), "sin2: y = sum_i sin^2(freq * x_i)")
    formula: str = knob("", Text(),
                        "formula task: y as an expression in x, e.g. 'sum(sin(10*x)**2)'")
    noise: float = knob(0.0, Number(0, 1e6),
                        "regression: std of Gaussian noise added to train targets")
    n_train: int = knob(500, Integer(1, MAX_SAMPLES), "regression: training samples, x ~ N(0, I)")
    n_test: int = knob(200, Integer(0, MAX_SAMPLES), "regression: test samples")
    p: int = knob(97, Integer(2, 2_000), "modular: the modulus (a prime for '/')")
    op: str = knob("+", Choice(MODULAR_OPS), "modular: a op b mod p")
    train_frac: float = knob(0.5, Number(0, 1, lo_open=True),
                             "modular: fraction of the p*p pairs used for training")
    teacher_widths: tuple[int, ...] = knob((32,), IntList(1, MAX_WIDTH),
                                           "teacher: hidden widths of the random teacher MLP")

    def __post_init__(self) -> None:
        self._check_fields()
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


# Fields added after runs were stored under content hashes, by path (a field of a section,
# a top-level field, or a whole section, whose default is then its to_dict()): at their
# default they are left out of the hash, so every config written before them finds its
# runs again.
ADDED_LATER: dict[tuple[str, ...], Any] = {("optimizer", "adamw_lr"): 0.0, ("eval_every",): 1}


@dataclass(frozen=True)
class OptimizerConfig(_ConfigBase):
    path: ClassVar[str] = "optimizer"
    name: str = knob("adam", Choice(OPTIMIZERS),
                     "muon: orthogonalised momentum on hidden 2-D weights, adamw on the rest")
    lr: float = knob(1e-3, Number(0, 100, lo_open=True), "peak learning rate")
    adamw_lr: float = knob(0.0, Number(0, 100),
                           "muon only: the peak learning rate of its AdamW group (embeddings, "
                           "input layer, readout, biases); 0: the same as lr")
    steps: int = knob(2000, Integer(1, MAX_STEPS), "optimizer steps in a run")
    batch_size: int = knob(0, Integer(0, MAX_SAMPLES),
                           "0: full batch; else minibatches reshuffled every epoch")
    momentum: float = knob(0.9, Number(0, 0.9999),
                           "sgd and muon momentum; adam's beta1")
    beta2: float = knob(0.999, Number(0, 0.99999),
                        "adam/adamw/muon-adamw second-moment decay")
    weight_decay: float = knob(0.0, Number(0, 100),
                               "decoupled for adamw and muon, L2 for sgd and adam")
    warmup_steps: int = knob(0, Integer(0, MAX_STEPS, at_most="steps"),
                             "linear warmup from 0 to lr over this many steps (<= steps)")
    schedule: str = knob("constant", Choice(SCHEDULES),
                         "after warmup: constant, or cosine decay to 0 at the last step")

    def __post_init__(self) -> None:
        self._check_fields()

    @property
    def label(self) -> str:
        parts = [self.name, f"lr={self.lr:g}", f"steps={self.steps}"]
        if self.adamw_lr:
            parts.append(f"adamw_lr={self.adamw_lr:g}")
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
    path: ClassVar[str] = "snapshots"
    schedule: tuple[tuple[int, int], ...] = knob(
        DEFAULT_SNAPSHOT_SCHEDULE, StepSchedule(MAX_STEPS),
        "activations kept: [from_step, every] pairs (every >= 1), "
        "from_step strictly increasing")
    points: str = knob("pre", Choice(("pre", "post", "all")),
                       "hook points kept: pre (before the nonlinearity), "
                       "post (after it) or all")
    max_samples: int = knob(0, Integer(0, MAX_SAMPLES),
                            "keep at most this many samples per snapshot; 0 keeps all")

    def __post_init__(self) -> None:
        self._check_fields()

    def steps(self, n_steps: int) -> list[int]:
        """The steps (0 .. n_steps-1, plus the last) at which a snapshot is taken."""
        out: list[int] = []
        bounds = [s for s, _ in self.schedule[1:]] + [n_steps]
        for (start, every), stop in zip(self.schedule, bounds):
            out.extend(range(start, min(stop, n_steps), every))
        if n_steps and (not out or out[-1] != n_steps - 1):
            out.append(n_steps - 1)
        return out


# The series early stopping can watch: those known as soon as their step is measured
# (weight norms and statistics wait for a flush).
STOP_METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
STOP_WHEN = {"above": ">", "below": "<"}
_STOP_TEXT = re.compile(r"\s*(?P<metric>\w+)\s*(?P<op>[<>])\s*(?P<value>\S+)"
                        r"(?:\s+for\s+(?P<steps>\S+)(?:\s+steps?)?)?\s*")
STOP_SPELLING = ("'<metric> > <value> for <steps>' (or <), e.g. 'test_accuracy > 0.99 for 100'"
                 ", or a dict of metric, when, value, for_steps")


@dataclass(frozen=True)
class StopConfig(_ConfigBase):
    """Early stopping: the run ends at the step where `metric` has been strictly above
    (or below) `value` at every check over `for_steps` steps (featurelab.engine.stopping)."""

    path: ClassVar[str] = "stop"
    metric: str = knob("", Choice(("", *STOP_METRICS)),
                       "early stopping watches this series (one the experiment records); "
                       "'': no early stop (the other stop knobs do nothing then)")
    when: str = knob("above", Choice(tuple(STOP_WHEN)),
                     "stop once stop.metric is strictly above, or below, stop.value")
    value: float = knob(0.0, Number(-1e30, 1e30), "the threshold of stop.metric")
    for_steps: int = knob(1, Integer(1, MAX_STEPS),
                          "the condition must hold at every check over this many steps "
                          "(test metrics are checked every eval_every steps)")

    def __post_init__(self) -> None:
        self._check_fields()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | Any, path: str = "") -> Any:
        if isinstance(data, str):  # the short spelling, "test_accuracy > 0.99 for 100"
            return cls.parse(data, path or "stop")
        return super().from_dict(data, path)

    @classmethod
    def parse(cls, text: str, path: str = "stop") -> StopConfig:
        if not text.strip():
            return cls()
        match = _STOP_TEXT.fullmatch(text)
        if match is None:
            raise ConfigError(path, text, STOP_SPELLING)
        try:
            value = float(match["value"])
            steps = int(match["steps"]) if match["steps"] is not None else 1
        except ValueError:
            raise ConfigError(path, text, STOP_SPELLING) from None
        when = "above" if match["op"] == ">" else "below"
        return cls(metric=match["metric"], when=when, value=value, for_steps=steps)

    @property
    def text(self) -> str:
        """'test_accuracy > 0.99 for 100 steps'; '' when it never stops early."""
        if not self.metric:
            return ""
        steps = "" if self.for_steps == 1 else f" for {self.for_steps} steps"
        return f"{self.metric} {STOP_WHEN[self.when]} {self.value:g}{steps}"


DEFAULT_OBSERVABLES = ("train_loss", "test_loss", "weight_l2_norm", "hidden_activations")


@dataclass(frozen=True)
class ExperimentConfig(_ConfigBase):
    model: ModelConfig = field(default_factory=ModelConfig,
                               metadata=section(ModelConfig, "the network"))
    data: DataConfig = field(default_factory=DataConfig,
                             metadata=section(DataConfig, "the task and its samples"))
    optimizer: OptimizerConfig = field(
        default_factory=OptimizerConfig,
        metadata=section(OptimizerConfig, "the optimizer and its schedule"))
    loss: str = knob("mse", Choice(LOSSES),
                     "mse for regression, cross_entropy for classification (modular)")
    observables: tuple[str, ...] = knob(
        DEFAULT_OBSERVABLES, NameList("observable names"),
        "what is recorded: train_loss, test_loss, weight_l2_norm, hidden_activations, "
        "or a statistic's name (name@layers.i.pre for one hook point)")
    eval_every: int = knob(1, Integer(1, MAX_STEPS),
                           "test metrics (test_loss, test_accuracy) every this many steps, "
                           "and at step 0 and the last step; NaN in between")
    seed: int = knob(0, Integer(0, 2**63 - 1), "seeds data, init and minibatch order")
    snapshots: SnapshotConfig = field(
        default_factory=SnapshotConfig,
        metadata=section(SnapshotConfig, "which activations are kept"))
    stop: StopConfig = field(
        default_factory=StopConfig,
        metadata=section(StopConfig, "early stopping: the run ends once a metric is past a "
                                     "threshold for long enough"))
    name: str = knob("", Text(500), "free text for people; not part of the content hash",
                     menu=False)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            cls = f.metadata.get("section")
            if cls is not None:
                _set(self, f.name, cls.from_dict(getattr(self, f.name), path=f.name))
        self._check_fields()
        self._check_consistency()
        if self.stop.metric and self.stop.metric not in self.observables:
            raise ConfigError("stop.metric", self.stop.metric,
                              "a series the experiment records: "
                              + ", ".join(m for m in STOP_METRICS if m in self.observables),
                              hint="add it to observables")

    def _check_consistency(self) -> None:
        m, d = self.model, self.data
        if d.is_classification:
            if m.kind not in TOKEN_MODELS:
                raise ConfigError("model.kind", m.kind,
                                  "'embed_mlp' for the modular task, or 'onehot_mlp'")
            if m.kind == "onehot_mlp" and m.widths[0] != 2 * d.p:
                raise ConfigError("model.widths[0]", m.widths[0],
                                  f"{2 * d.p}: a and b one-hot, p={d.p} each, concatenated")
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
        for path, default in ADDED_LATER.items():
            *sections, key = path
            part = payload
            for name in sections:
                part = part[name]
            if part.get(key) == default:  # as configs hashed before it existed
                part.pop(key)
        text = json.dumps(_normalise(payload), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        parts = [self.model.label, self.data.label, self.optimizer.label]
        if self.eval_every != 1:
            parts.append(f"test metrics every {self.eval_every} steps")
        if self.stop.metric:
            parts.append(f"stop when {self.stop.text}")
        return "; ".join(parts)


ADDED_LATER[("stop",)] = StopConfig().to_dict()


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
