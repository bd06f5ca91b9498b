"""Tests for featurelab.engine.config: validation messages, JSON round trips, hashing, labels."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from featurelab.engine.config import (
    ACTIVATIONS,
    DEFAULT_SNAPSHOT_SCHEDULE,
    MAX_STEPS,
    MAX_WIDTH,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimizerConfig,
    SnapshotConfig,
)
from featurelab.errors import ConfigError, FeaturelabError

REPO = Path(__file__).resolve().parents[1]

MODULAR = dict(
    model={"kind": "embed_mlp", "widths": [16, 64, 97]},
    data={"task": "modular", "p": 97, "op": "+"},
    loss="cross_entropy",
)


def modular(**overrides) -> ExperimentConfig:
    kw = {key: dict(value) if isinstance(value, dict) else value
          for key, value in MODULAR.items()}
    for key, value in overrides.items():
        if isinstance(value, dict):
            kw[key] = {**kw.get(key, {}), **value}
        else:
            kw[key] = value
    return ExperimentConfig(**kw)


def raises(make) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make()
    return info.value


# --- validation: every error names the field, the value and what is allowed ----------------

# (id, constructor, field, value as given back, a fragment of what is allowed)
CASES = [
    # model
    ("width-zero", lambda: ModelConfig(widths=(10, 0, 1)),
     "model.widths[1]", 0, f"an integer from 1 to {MAX_WIDTH}"),
    ("width-too-big", lambda: ModelConfig(widths=(10, MAX_WIDTH + 1, 1)),
     "model.widths[1]", MAX_WIDTH + 1, f"an integer from 1 to {MAX_WIDTH}"),
    ("width-float", lambda: ModelConfig(widths=(10, 2.5, 1)),
     "model.widths[1]", 2.5, "an integer from 1"),
    ("width-bool", lambda: ModelConfig(widths=(10, True, 1)),
     "model.widths[1]", True, "an integer from 1"),
    ("width-negative-last", lambda: ModelConfig(widths=(10, 5, -1)),
     "model.widths[2]", -1, "an integer from 1"),
    ("widths-string", lambda: ModelConfig(widths="10,100,1"),
     "model.widths", "10,100,1", "a list of positive integers"),
    ("widths-int", lambda: ModelConfig(widths=10),
     "model.widths", 10, "a list of positive integers"),
    ("widths-too-short", lambda: ModelConfig(widths=(10,)),
     "model.widths", [10], "a list of 2 to 64 widths: input, hidden..., output"),
    ("kind", lambda: ModelConfig(kind="cnn"),
     "model.kind", "cnn", "one of 'mlp', 'embed_mlp'"),
    ("activation", lambda: ModelConfig(activation="sigmoid"),
     "model.activation", "sigmoid", "one of " + ", ".join(map(repr, ACTIVATIONS))),
    ("activation-case", lambda: ModelConfig(activation="ReLU"),
     "model.activation", "ReLU", "'relu'"),
    ("bias", lambda: ModelConfig(bias="yes"), "model.bias", "yes", "True or False"),
    ("init-scale-zero", lambda: ModelConfig(init_scale=0),
     "model.init_scale", 0, "a number in (0, 100]"),
    ("init-scale-nan", lambda: ModelConfig(init_scale=math.nan),
     "model.init_scale", math.nan, "a number in (0, 100]"),
    # data
    ("task", lambda: DataConfig(task="mnist"),
     "data.task", "mnist", "one of 'sin2', 'formula', 'modular', 'teacher'"),
    ("dim", lambda: DataConfig(dim=0), "data.dim", 0, f"an integer from 1 to {MAX_WIDTH}"),
    ("freq-inf", lambda: DataConfig(freq=math.inf), "data.freq", math.inf, "a number in [-1e+06"),
    ("noise", lambda: DataConfig(noise=-0.1), "data.noise", -0.1, "a number in [0, 1e+06]"),
    ("n-train", lambda: DataConfig(n_train=0), "data.n_train", 0, "an integer from 1 to"),
    ("n-test", lambda: DataConfig(n_test=-1), "data.n_test", -1, "an integer from 0 to"),
    ("p-small", lambda: DataConfig(p=1), "data.p", 1, "an integer from 2 to 2000"),
    ("op", lambda: DataConfig(op="%"), "data.op", "%", "one of '+', '-', '*', '/'"),
    ("train-frac-zero", lambda: DataConfig(train_frac=0),
     "data.train_frac", 0, "a number in (0, 1]"),
    ("train-frac-big", lambda: DataConfig(train_frac=1.5),
     "data.train_frac", 1.5, "a number in (0, 1]"),
    ("teacher-width", lambda: DataConfig(teacher_widths=(32, 0)),
     "data.teacher_widths[1]", 0, "an integer from 1"),
    ("formula-type", lambda: DataConfig(formula=3), "data.formula", 3, "a string"),
    ("formula-empty", lambda: DataConfig(task="formula"),
     "data.formula", "", "an expression in x"),
    ("formula-syntax", lambda: DataConfig(task="formula", formula="sum(sin(x)"),
     "data.formula", "sum(sin(x)", "an expression in x"),
    ("formula-unknown-fn", lambda: DataConfig(task="formula", formula="sum(sinh(x))"),
     "data.formula", "sum(sinh(x))", "an expression in x"),
    ("formula-index", lambda: DataConfig(task="formula", dim=3, formula="x[3]"),
     "data.formula", "x[3]", "x0..x2"),
    ("divide-composite-p", lambda: DataConfig(task="modular", op="/", p=91),
     "data.p", 91, "a prime when op is '/'"),
    # optimizer
    ("optimizer-name", lambda: OptimizerConfig(name="rmsprop"),
     "optimizer.name", "rmsprop", "one of 'sgd', 'adam', 'adamw', 'muon'"),
    ("lr-zero", lambda: OptimizerConfig(lr=0), "optimizer.lr", 0, "a number in (0, 100]"),
    ("lr-negative", lambda: OptimizerConfig(lr=-1e-3),
     "optimizer.lr", -1e-3, "a number in (0, 100]"),
    ("lr-nan", lambda: OptimizerConfig(lr=math.nan), "optimizer.lr", math.nan, "(0, 100]"),
    ("lr-string", lambda: OptimizerConfig(lr="0.001"), "optimizer.lr", "0.001", "(0, 100]"),
    ("lr-bool", lambda: OptimizerConfig(lr=True), "optimizer.lr", True, "(0, 100]"),
    ("steps-cap", lambda: OptimizerConfig(steps=MAX_STEPS + 1),
     "optimizer.steps", MAX_STEPS + 1, f"an integer from 1 to {MAX_STEPS}"),
    ("steps-float-typo", lambda: OptimizerConfig(steps=2e9),
     "optimizer.steps", 2e9, f"an integer from 1 to {MAX_STEPS}"),
    ("steps-zero", lambda: OptimizerConfig(steps=0), "optimizer.steps", 0, "an integer from 1"),
    ("batch-size", lambda: OptimizerConfig(batch_size=-1),
     "optimizer.batch_size", -1, "an integer from 0"),
    ("momentum", lambda: OptimizerConfig(momentum=1.0),
     "optimizer.momentum", 1.0, "a number in [0, 0.9999]"),
    ("beta2", lambda: OptimizerConfig(beta2=1), "optimizer.beta2", 1, "a number in [0, 0.99999]"),
    ("weight-decay", lambda: OptimizerConfig(weight_decay=-0.1),
     "optimizer.weight_decay", -0.1, "a number in [0, 100]"),
    ("warmup-beyond-steps", lambda: OptimizerConfig(steps=100, warmup_steps=101),
     "optimizer.warmup_steps", 101, "an integer from 0 to 100"),
    ("lr-schedule", lambda: OptimizerConfig(schedule="linear"),
     "optimizer.schedule", "linear", "one of 'constant', 'cosine'"),
    # snapshots
    ("snapshot-every-zero", lambda: SnapshotConfig(schedule=((0, 0),)),
     "snapshots.schedule[0][1]", 0, "an integer from 1"),
    ("snapshot-negative-start", lambda: SnapshotConfig(schedule=((0, 1), (-5, 2))),
     "snapshots.schedule[1][0]", -5, "an integer from 0"),
    ("snapshot-decreasing", lambda: SnapshotConfig(schedule=((100, 5), (0, 1))),
     "snapshots.schedule", [[100, 5], [0, 1]], "pairs with strictly increasing from_step"),
    ("snapshot-repeated", lambda: SnapshotConfig(schedule=((0, 1), (0, 2))),
     "snapshots.schedule", [[0, 1], [0, 2]], "strictly increasing from_step"),
    ("snapshot-not-pairs", lambda: SnapshotConfig(schedule=((0, 1, 2),)),
     "snapshots.schedule", ((0, 1, 2),), "a list of [from_step, every] pairs of integers"),
    ("snapshot-not-list", lambda: SnapshotConfig(schedule=5),
     "snapshots.schedule", 5, "a list of [from_step, every] pairs"),
    ("snapshot-text", lambda: SnapshotConfig(schedule=(("start", 1),)),
     "snapshots.schedule[0][0]", "start", "an integer from 0 to 1000000"),
    ("snapshot-not-pairs", lambda: SnapshotConfig(schedule=((0, 1, 2),)),
     "snapshots.schedule", ((0, 1, 2),), "pairs of integers"),
    ("snapshot-points", lambda: SnapshotConfig(points="both"),
     "snapshots.points", "both", "one of 'pre', 'post', 'all'"),
    ("snapshot-max-samples", lambda: SnapshotConfig(max_samples=-1),
     "snapshots.max_samples", -1, "an integer from 0"),
    # experiment
    ("loss", lambda: ExperimentConfig(loss="hinge"),
     "loss", "hinge", "one of 'mse', 'cross_entropy'"),
    ("observables-string", lambda: ExperimentConfig(observables="train_loss"),
     "observables", "train_loss", "a list of observable names"),
    ("observable-empty", lambda: ExperimentConfig(observables=("train_loss", "")),
     "observables[1]", "", "a non-empty string"),
    ("seed", lambda: ExperimentConfig(seed=-1), "seed", -1, "an integer from 0"),
    ("name-long", lambda: ExperimentConfig(name="n" * 501),
     "name", "n" * 501, "a string of at most 500 characters"),
    # consistency between sections
    ("modular-mlp", lambda: modular(model={"kind": "mlp"}),
     "model.kind", "mlp", "'embed_mlp' for the modular task"),
    ("modular-mse", lambda: modular(loss="mse"),
     "loss", "mse", "'cross_entropy' for the modular task"),
    ("modular-last-width", lambda: modular(model={"widths": [16, 64, 96]}),
     "model.widths[-1]", 96, "97 (one logit per residue mod p=97)"),
    ("modular-last-width-p", lambda: modular(data={"p": 11}),
     "model.widths[-1]", 97, "11 (one logit per residue mod p=11)"),
    ("regression-dim", lambda: ExperimentConfig(model={"widths": [5, 100, 1]}),
     "model.widths[0]", 5, "10, the input dimension data.dim"),
    ("regression-dim-data", lambda: ExperimentConfig(data={"dim": 3}),
     "model.widths[0]", 10, "3, the input dimension data.dim"),
    ("regression-last-width", lambda: ExperimentConfig(model={"widths": [10, 100, 2]}),
     "model.widths[-1]", 2, "1 for a scalar regression target"),
    ("regression-embed", lambda: ExperimentConfig(model={"kind": "embed_mlp"}),
     "model.kind", "embed_mlp", "'mlp' for the sin2 task"),
    ("teacher-cross-entropy",
     lambda: ExperimentConfig(data={"task": "teacher"}, loss="cross_entropy"),
     "loss", "cross_entropy", "'mse' for the teacher task"),
    # nested values that are not dicts
    ("nested-not-dict", lambda: ExperimentConfig(model=5),
     "model", 5, "a dict with keys ['kind', 'widths', 'activation', 'bias', 'init_scale']"),
    ("top-not-dict", lambda: ExperimentConfig.from_dict([1, 2]),
     "ExperimentConfig", [1, 2], "a dict with keys ['model', 'data'"),
    ("widths-string-from-dict",
     lambda: ExperimentConfig.from_dict({"model": {"widths": "10, 100, 1"}}),
     "model.widths", "10, 100, 1", "a list of positive integers"),
]


@pytest.mark.parametrize(("make", "field", "value", "allowed"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_field_value_and_allowed(make, field, value, allowed):
    err = raises(make)
    message = str(err)
    assert message.startswith(f"{field}: got {value!r}; allowed: "), message
    assert allowed in message, message
    assert err.field == field
    assert allowed in err.allowed
    if not (isinstance(value, float) and math.isnan(value)):
        assert err.value == value
    # A ConfigError is both a featurelab error and a ValueError, so either can be caught.
    assert isinstance(err, FeaturelabError) and isinstance(err, ValueError)


def test_formula_error_points_at_the_problem():
    message = str(raises(lambda: DataConfig(task="formula", formula="sum(sinh(x))")))
    assert "unknown function 'sinh'" in message
    message = str(raises(lambda: DataConfig(task="formula", formula="sum(sin(x)")))
    assert "syntax error" in message
    message = str(raises(lambda: DataConfig(task="formula", formula="   ")))
    assert "task 'formula' needs a formula" in message


def test_formula_is_checked_against_dim():
    DataConfig(task="formula", dim=3, formula="x[2]")  # fine
    assert "dim is 3" in str(raises(lambda: DataConfig(task="formula", dim=3, formula="x[3]")))


def test_divide_needs_prime_only_for_division():
    DataConfig(task="modular", op="/", p=97)
    DataConfig(task="modular", op="*", p=91)  # composite p is fine without division
    err = raises(lambda: DataConfig(task="modular", op="/", p=4))
    assert "division mod p needs every nonzero b invertible" in str(err)


@pytest.mark.parametrize(("make", "where", "key", "known"), [
    (lambda: ExperimentConfig.from_dict({"modle": {}}), "ExperimentConfig", "modle",
     "model, data, optimizer, loss, observables, eval_every, seed, snapshots, stop, name"),
    (lambda: ExperimentConfig.from_dict({"model": {"width": [10, 1]}}), "model", "width",
     "kind, widths, activation, bias, init_scale"),
    (lambda: ExperimentConfig.from_dict({"optimizer": {"learning_rate": 0.1}}), "optimizer",
     "learning_rate", "name, lr, adamw_lr, steps, batch_size"),
    (lambda: DataConfig.from_dict({"tsk": "sin2"}), "DataConfig", "tsk", "task, dim, freq"),
    (lambda: ExperimentConfig().replace(modle={}), "", "modle",
     "model, data, optimizer, loss"),
    (lambda: ExperimentConfig().replace(model={"actvation": "tanh"}), "model", "actvation",
     "kind, widths, activation"),
])
def test_unknown_key_names_key_and_known_keys(make, where, key, known):
    err = raises(make)
    message = str(err)
    assert err.field == (f"{where}.{key}" if where else key)
    assert message.startswith(f"{err.field}: got "), message
    assert f"known keys are {known}" in message, message
    assert "(unknown key)" in message


def test_unknown_keys_reported_alphabetically_first():
    err = raises(lambda: ModelConfig.from_dict({"zzz": 1, "aaa": 2}))
    assert err.field == "ModelConfig.aaa"


# --- JSON round trip -----------------------------------------------------------------------

def json_round_trip(cfg: ExperimentConfig) -> ExperimentConfig:
    return ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))


NON_DEFAULT = [
    ExperimentConfig(),
    ExperimentConfig(
        model={"widths": [4, 32, 16, 8, 1], "activation": "gelu", "bias": False,
               "init_scale": 2.5},
        data={"task": "formula", "dim": 4, "formula": "x[0]*x[1] + mean(cos(x))",
              "noise": 0.1, "n_train": 64, "n_test": 0},
        optimizer={"name": "muon", "lr": 0.02, "steps": 300, "batch_size": 16,
                   "momentum": 0.95, "weight_decay": 1e-4, "warmup_steps": 30,
                   "schedule": "cosine"},
        observables=["train_loss", "weight_l2_norm"],
        seed=12345,
        snapshots={"schedule": [[0, 5], [50, 25]], "points": "all", "max_samples": 100},
        name="a formula run",
    ),
    modular(data={"op": "/", "train_frac": 0.3}, optimizer={"name": "adamw", "weight_decay": 1.0}),
    ExperimentConfig(model={"widths": [6, 50, 1], "activation": "square"},
                     data={"task": "teacher", "dim": 6, "teacher_widths": [8, 8]}),
]


@pytest.mark.parametrize("cfg", NON_DEFAULT, ids=["default", "formula", "modular", "teacher"])
def test_json_round_trip(cfg):
    back = json_round_trip(cfg)
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()
    assert back.content_hash() == cfg.content_hash()
    assert back.label == cfg.label
    # to_dict holds only JSON types: lists, not tuples.
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()


@settings(max_examples=40, deadline=None)
@given(
    lr=st.floats(min_value=1e-8, max_value=100, allow_nan=False),
    steps=st.integers(min_value=1, max_value=MAX_STEPS),
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    init_scale=st.floats(min_value=1e-6, max_value=100),
    noise=st.floats(min_value=0, max_value=10),
    hidden=st.lists(st.integers(min_value=1, max_value=MAX_WIDTH), min_size=0, max_size=4),
)
def test_json_round_trip_numeric_fields(lr, steps, seed, init_scale, noise, hidden):
    cfg = ExperimentConfig(model={"widths": [10, *hidden, 1], "init_scale": init_scale},
                           data={"noise": noise}, optimizer={"lr": lr, "steps": steps},
                           seed=seed)
    back = json_round_trip(cfg)
    assert back == cfg
    assert back.content_hash() == cfg.content_hash()
    assert back.optimizer.lr == lr and back.model.init_scale == init_scale


def test_fields_are_normalised():
    cfg = ExperimentConfig(model={"widths": [10, 3, 1], "init_scale": 2},
                           optimizer={"lr": 1}, observables=["a", "b", "a"])
    assert cfg.model.widths == (10, 3, 1)
    assert isinstance(cfg.model.init_scale, float) and isinstance(cfg.optimizer.lr, float)
    assert cfg.observables == ("a", "b")  # repeats dropped, order kept
    assert SnapshotConfig(schedule=[[0, 2]]).schedule == ((0, 2),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]


def test_config_objects_accepted_in_place_of_dicts():
    model = ModelConfig(widths=(10, 7, 1), activation="tanh")
    cfg = ExperimentConfig(model=model)
    assert cfg.model is model
    assert cfg == ExperimentConfig(model=model.to_dict())


# --- content hash --------------------------------------------------------------------------

# The hash finds finished runs again, so it must not drift between versions or processes.
DEFAULT_HASH = "42b9e6d886dd3b1c"


def test_default_hash_is_pinned():
    assert ExperimentConfig().content_hash() == DEFAULT_HASH, (
        "the content hash of the default config changed: stored runs will not be found "
        "again; update DEFAULT_HASH only if that is intended")


def test_hash_same_in_another_process():
    cfg = NON_DEFAULT[1]
    code = (
        "import json, sys\n"
        "from featurelab.engine.config import ExperimentConfig\n"
        "cfg = ExperimentConfig.from_dict(json.loads(sys.argv[1]))\n"
        "print(cfg.content_hash())\n"
        "print(ExperimentConfig().content_hash())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cfg.to_dict())], env=env,
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == [cfg.content_hash(), DEFAULT_HASH]


def test_hash_is_hex16():
    h = ExperimentConfig().content_hash()
    assert len(h) == 16 and int(h, 16) >= 0


@pytest.mark.parametrize(("a", "b"), [
    ({"optimizer": {"lr": 1e-3}}, {"optimizer": {"lr": 0.001}}),
    ({"optimizer": {"lr": 1}}, {"optimizer": {"lr": 1.0}}),
    ({"model": {"init_scale": 2}}, {"model": {"init_scale": 2.0}}),
    ({"data": {"freq": 10}}, {"data": {"freq": 10.0}}),
    ({"data": {"noise": 0}}, {"data": {"noise": 0.0}}),
    ({"name": ""}, {"name": "a different name"}),
    ({"model": {"widths": (10, 100, 100, 1)}}, {"model": {"widths": [10, 100, 100, 1]}}),
    ({"observables": ["train_loss"]}, {"observables": ("train_loss", "train_loss")}),
])
def test_hash_equal_for_equal_content(a, b):
    assert ExperimentConfig(**a).content_hash() == ExperimentConfig(**b).content_hash()


CHANGES = [
    {"model": {"activation": "tanh"}},
    {"model": {"bias": False}},
    {"model": {"init_scale": 1.5}},
    {"model": {"widths": [10, 100, 1]}},
    {"data": {"dim": 4}, "model": {"widths": [4, 100, 100, 1]}},
    {"data": {"freq": 9.0}},
    {"data": {"noise": 0.01}},
    {"data": {"n_train": 501}},
    {"data": {"n_test": 0}},
    {"data": {"p": 89}},
    {"data": {"op": "*"}},
    {"data": {"train_frac": 0.4}},
    {"data": {"teacher_widths": [16]}},
    {"data": {"task": "teacher"}},
    {"data": {"formula": "sum(x)"}},
    {"optimizer": {"name": "sgd"}},
    {"optimizer": {"lr": 1.0000000000000002e-3}},
    {"optimizer": {"adamw_lr": 1e-4}},
    {"optimizer": {"steps": 2001}},
    {"optimizer": {"batch_size": 32}},
    {"optimizer": {"momentum": 0.95}},
    {"optimizer": {"beta2": 0.99}},
    {"optimizer": {"weight_decay": 0.1}},
    {"optimizer": {"warmup_steps": 10}},
    {"optimizer": {"schedule": "cosine"}},
    {"observables": ["train_loss"]},
    {"observables": list(reversed(ExperimentConfig().observables))},
    {"seed": 1},
    {"snapshots": {"schedule": [[0, 2]]}},
    {"snapshots": {"points": "all"}},
    {"snapshots": {"max_samples": 10}},
    {"eval_every": 10},
    {"stop": {"metric": "train_loss"}},
    {"stop": {"metric": "train_loss", "when": "below"}},
    {"stop": {"metric": "train_loss", "value": 0.5}},
    {"stop": {"metric": "train_loss", "for_steps": 5}},
]


def test_every_field_except_name_is_covered_by_changes():
    covered = {(key, sub) for change in CHANGES for key, value in change.items()
               for sub in (value if isinstance(value, dict) else [None])}
    expected = set()
    for f in dataclasses.fields(ExperimentConfig):
        value = getattr(ExperimentConfig(), f.name)
        if dataclasses.is_dataclass(value):
            expected |= {(f.name, g.name) for g in dataclasses.fields(value)}
        elif f.name != "name":
            expected.add((f.name, None))
    expected.discard(("model", "kind"))  # cannot change alone; covered by the modular test
    expected.discard(("loss", None))
    assert expected <= covered, expected - covered


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: json.dumps(c))
def test_hash_changes_with_any_other_field(change):
    base = ExperimentConfig()
    assert base.replace(**change).content_hash() != base.content_hash()


def test_hash_differs_between_tasks_and_kinds():
    hashes = {cfg.content_hash() for cfg in NON_DEFAULT}
    assert len(hashes) == len(NON_DEFAULT)
    assert modular().content_hash() != modular(loss="cross_entropy", seed=1).content_hash()


# --- labels --------------------------------------------------------------------------------

def test_default_labels():
    cfg = ExperimentConfig()
    assert cfg.model.label == "MLP 10, 100, 100, 1, relu"
    assert cfg.optimizer.label == "adam, lr=0.001, steps=2000"
    assert cfg.data.label == "sin2, train=500, test=200, y = sum(sin(10*x)**2)"
    assert cfg.label == "; ".join([cfg.model.label, cfg.data.label, cfg.optimizer.label])


def test_non_default_labels():
    cfg = NON_DEFAULT[1]
    assert cfg.model.label == "MLP 4, 32, 16, 8, 1, gelu"
    assert cfg.optimizer.label == (
        "muon, lr=0.02, steps=300, wd=0.0001, batch=16, warmup=30, cosine")
    assert cfg.data.label == "formula, train=64, test=0, y = x[0]*x[1] + mean(cos(x))"
    mod = modular(data={"op": "/", "train_frac": 0.3})
    assert mod.model.label == "Embed+MLP 16, 64, 97, relu"
    assert mod.data.label == "modular a / b mod 97, train_frac=0.3"
    assert NON_DEFAULT[3].data.label == "teacher MLP 6, 8, 8, 1, train=500, test=200"


def test_target_formula_and_task_kind():
    assert DataConfig(freq=3).target_formula == "sum(sin(3*x)**2)"
    assert DataConfig(task="formula", formula="sum(x)").target_formula == "sum(x)"
    assert DataConfig(task="modular").is_classification
    assert not DataConfig().is_classification


def test_sin2_target_keeps_full_frequency():
    from featurelab.engine.formula import parse_formula

    freq = 1.23456789
    text = DataConfig(freq=freq).target_formula
    assert text == "sum(sin(1.23456789*x)**2)"
    x = torch.randn(4, 10, dtype=torch.float64)
    torch.testing.assert_close(parse_formula(text, 10).evaluate(x),
                               (torch.sin(freq * x) ** 2).sum(1))
    assert DataConfig().target_formula == "sum(sin(10*x)**2)"


# --- replace -------------------------------------------------------------------------------

def test_replace_with_partial_nested_dict():
    base = ExperimentConfig(name="base")
    cfg = base.replace(model={"activation": "tanh"}, optimizer={"lr": 0.01}, seed=3)
    assert cfg.model == ModelConfig(activation="tanh")
    assert cfg.optimizer == OptimizerConfig(lr=0.01)
    assert cfg.data == base.data and cfg.snapshots == base.snapshots
    assert cfg.seed == 3 and cfg.name == "base"
    assert base == ExperimentConfig(name="base")  # the original is untouched


def test_replace_with_config_object_and_across_sections():
    base = ExperimentConfig()
    cfg = base.replace(optimizer=OptimizerConfig(name="sgd"))
    assert cfg.optimizer == OptimizerConfig(name="sgd")  # a whole object replaces, not merges
    cfg = base.replace(model={"widths": [4, 8, 1]}, data={"dim": 4})
    assert cfg.model.widths == (4, 8, 1) and cfg.data.dim == 4
    mod = base.replace(**MODULAR)
    assert mod == modular()
    assert mod.replace(data={"p": 7}, model={"widths": [16, 64, 7]}).data.p == 7


def test_replace_validates():
    base = ExperimentConfig()
    err = raises(lambda: base.replace(data={"dim": 4}))  # model.widths[0] is still 10
    assert err.field == "model.widths[0]"
    err = raises(lambda: base.replace(optimizer={"lr": -1}))
    assert err.field == "optimizer.lr"


def test_replace_name_keeps_hash():
    base = ExperimentConfig()
    assert base.replace(name="renamed").content_hash() == base.content_hash()


# --- snapshots -----------------------------------------------------------------------------

def test_default_snapshot_steps_dense_early_sparse_later():
    steps = SnapshotConfig().steps(2000)
    assert SnapshotConfig().schedule == DEFAULT_SNAPSHOT_SCHEDULE
    assert steps[:100] == list(range(100))
    assert steps[100:145] == list(range(100, 1000, 20))
    assert steps[145:155] == list(range(1000, 2000, 100))
    assert steps[-1] == 1999
    assert len(steps) == 156 <= 200
    assert steps == sorted(set(steps))
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    assert gaps[:-1] == sorted(gaps[:-1])  # never denser later (the final step aside)


@pytest.mark.parametrize(("n_steps", "expected"), [
    (0, []),
    (1, [0]),
    (50, list(range(50))),
    (101, list(range(101))),
    (150, [*range(100), 100, 120, 140, 149]),
])
def test_snapshot_steps_short_runs(n_steps, expected):
    assert SnapshotConfig().steps(n_steps) == expected


def test_snapshot_steps_custom_schedule():
    cfg = SnapshotConfig(schedule=[[10, 7]])
    assert cfg.steps(30) == [10, 17, 24, 29]
    assert SnapshotConfig(schedule=[]).steps(5) == [4]
    assert SnapshotConfig(schedule=[[0, 10]]).steps(21) == [0, 10, 20]


@pytest.mark.parametrize("every", [1.5, "3", True])
def test_snapshot_schedule_rejects_non_integers(every):
    raises(lambda: SnapshotConfig(schedule=((0, every),)))


def test_teacher_widths_not_a_list():
    err = raises(lambda: DataConfig(teacher_widths=32))
    assert err.field == "data.teacher_widths"


def test_huge_int_is_a_config_error():
    err = raises(lambda: OptimizerConfig(lr=10**400))
    assert err.field == "optimizer.lr"
