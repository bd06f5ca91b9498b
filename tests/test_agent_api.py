"""What an agent drives the lab with: the knob menu, the typed schema of create_experiment,
JSON values from `lab.apply(..., actor="agent")`, and the reads (not logged).

Every training here is tiny (an MLP 4, 8, 1 on 32 samples for 30 steps).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_actions import CASES, TINY, snapshot, tiny, trained

import featurelab as fl
from featurelab.actions import ACTIONS, action_from_dict
from featurelab.actions.json_values import json_value
from featurelab.actions.sweeps import knob_paths
from featurelab.engine.activations import ACTIVATIONS
from featurelab.engine.data import TASKS
from featurelab.engine.optim import OPTIMIZERS

MODULAR = {"model": {"kind": "embed_mlp", "widths": [16, 64, 97]},
           "data": {"task": "modular", "p": 97}, "loss": "cross_entropy"}


def as_json(value: Any) -> Any:
    """The value as JSON gives it back; fails on NaN, infinity or any non-JSON type."""
    return json.loads(json.dumps(value, allow_nan=False))


def with_knob(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    config = copy.deepcopy(base or {})
    section, _, name = path.rpartition(".")
    (config.setdefault(section, {}) if section else config)[name] = value
    return config


def lookup(config: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


# -- 1. the knob menu ---------------------------------------------------------------------

def test_knobs_are_json_one_per_path_as_a_sweep_names_them():
    knobs = fl.knobs()
    assert as_json(knobs) == knobs
    paths = [k["path"] for k in knobs]
    assert len(set(paths)) == len(paths)
    assert {"optimizer.lr", "model.widths", "model.activation", "data.n_train",
            "seed"} <= set(paths)
    assert "name" not in paths  # free text, not a knob
    assert paths == knob_paths(fl.ExperimentConfig().to_dict())  # what a sweep can vary
    for knob in knobs:
        assert knob["description"] and "\n" not in knob["description"], knob
        assert knob["type"] in ("integer", "number", "string", "boolean", "list[integer]",
                                "list[string]", "list[[integer, integer]]"), knob
    lr = next(k for k in knobs if k["path"] == "optimizer.lr")
    assert lr == {"path": "optimizer.lr", "type": "number", "default": 0.001, "min": 0,
                  "max": 100, "min_exclusive": True, "max_exclusive": False,
                  "description": "peak learning rate"}


def test_every_knob_default_is_the_configs_and_validates():
    defaults = fl.ExperimentConfig().to_dict()
    for knob in fl.knobs():
        assert lookup(defaults, knob["path"]) == knob["default"], knob["path"]
        fl.ExperimentConfig.from_dict(with_knob(knob["path"], knob["default"]))


def outside(knob: dict[str, Any]) -> list[Any]:
    """Values just outside what the knob allows."""
    bad: list[Any] = []
    if "enum" in knob:
        return ["no-such-" + knob["path"], 3]
    kind = knob["type"]
    if kind == "boolean":
        return ["yes", 1]
    if kind == "string":
        return [5] + (["x" * (knob["max_length"] + 1)] if "max_length" in knob else [])
    if "min" in knob:
        step = 1 if kind != "number" else max(1.0, abs(knob["min"]) * 1e-3)
        below = knob["min"] if knob["min_exclusive"] else knob["min"] - step
        above = knob["max"] + (1 if kind != "number" else max(1.0, abs(knob["max"]) * 1e-3))
        bad += [below, above]
    if kind == "list[integer]":
        n = max(knob["min_items"], 1)
        bad = [[v] * n for v in bad] + ["1, 2"]
        if knob["min_items"] > 1:
            bad.append([knob["default"][0]] * (knob["min_items"] - 1))
        if "max_items" in knob:
            bad.append([knob["default"][0]] * (knob["max_items"] + 1))
    elif kind == "list[[integer, integer]]":
        bad = [[[knob["min"] - 1, 1]], [[0, knob["max"] + 1]], [[0, 1, 2]], [[5, 1], [0, 1]]]
    elif kind == "list[string]":
        bad = ["train_loss", ["train_loss", ""]]
    elif kind in ("integer", "number"):
        bad += ["1", True, math.nan] if kind == "number" else ["1", True, 2.5]
    if "max_path" in knob:
        bad.append(lookup(fl.ExperimentConfig().to_dict(), knob["max_path"]) + 1)
    return bad


@pytest.mark.parametrize("knob", fl.knobs(), ids=[k["path"] for k in fl.knobs()])
def test_a_value_outside_a_knobs_range_is_refused_naming_its_path(knob: dict[str, Any]):
    bad = outside(knob)
    assert bad, knob
    for value in bad:
        with pytest.raises(fl.ConfigError) as error:
            fl.ExperimentConfig.from_dict(with_knob(knob["path"], value))
        field = error.value.field
        assert field == knob["path"] or field.startswith(knob["path"] + "["), (value, field)


def test_enums_are_the_registries_and_each_value_validates():
    enums = {k["path"]: k["enum"] for k in fl.knobs() if "enum" in k}
    assert enums["model.activation"] == list(ACTIVATIONS)
    assert enums["data.task"] == list(TASKS)
    assert enums["optimizer.name"] == list(OPTIMIZERS)
    assert enums["loss"] == ["mse", "cross_entropy"]
    sections = {"model": fl.ModelConfig, "data": fl.DataConfig, "optimizer": fl.OptimizerConfig,
                "snapshots": fl.SnapshotConfig, "stop": fl.StopConfig}
    for path, values in enums.items():
        section, _, name = path.rpartition(".")
        for value in values:
            if section:  # a value may need others (embed_mlp, the modular task): its own
                needs = {"formula": "sum(x)"} if value == "formula" else {}  # section takes it
                sections[section](**{name: value, **needs})
            else:
                base = MODULAR if value == "cross_entropy" else {}
                fl.ExperimentConfig.from_dict(with_knob(path, value, base))


# -- 2. create_experiment's schema is typed from the same rules ----------------------------

def create_params_schema() -> dict[str, Any]:
    schema = fl.action_schema()
    variant = next(v for v in schema["oneOf"] if v["title"] == "create_experiment")
    return {**variant["properties"]["params"], "$schema": schema["$schema"]}


def test_create_experiment_schema_has_the_knobs_types_ranges_and_defaults():
    params = create_params_schema()["properties"]
    optimizer = params["optimizer"]["anyOf"][0]
    assert optimizer["additionalProperties"] is False
    assert optimizer["properties"]["lr"] == {"type": "number", "exclusiveMinimum": 0,
                                             "maximum": 100, "default": 0.001,
                                             "description": "peak learning rate"}
    model = params["model"]["anyOf"][0]["properties"]
    assert model["activation"]["enum"] == list(ACTIVATIONS)
    assert model["widths"]["items"] == {"type": "integer", "minimum": 1, "maximum": 65536}
    assert params["seed"]["anyOf"][0]["type"] == "integer"
    assert params["loss"]["anyOf"][0]["enum"] == ["mse", "cross_entropy"]
    assert params["model"]["anyOf"][1] == {"type": "null"} and params["model"]["default"] is None
    knobs = {k["path"]: k for k in fl.knobs()}
    for path, knob in knobs.items():
        section, _, name = path.rpartition(".")
        field = (params[section]["anyOf"][0]["properties"][name] if section
                 else params[name]["anyOf"][0])
        assert field["default"] == knob["default"] and field["description"] == \
            knob["description"], path


def test_create_experiment_schema_refuses_what_the_config_refuses():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(create_params_schema())
    jsonschema.Draft202012Validator.check_schema(fl.action_schema())
    validator.validate(TINY)
    validator.validate({"based_on": "exp_0", "optimizer": {"lr": 0.01}})
    defaults = fl.ExperimentConfig().to_dict()
    for knob in fl.knobs():
        validator.validate(with_knob(knob["path"], knob["default"]))
        # Relations between values are the config's to check, not a schema's: warmup
        # beyond steps, a schedule whose from_step goes back.
        related = [lookup(defaults, knob["max_path"]) + 1] if "max_path" in knob else []
        related += [[[5, 1], [0, 1]]] if knob["type"] == "list[[integer, integer]]" else []
        for value in outside(knob):
            if value in related:
                continue
            if isinstance(value, float) and math.isnan(value):
                continue  # not JSON: an agent cannot send it
            assert not validator.is_valid(with_knob(knob["path"], value)), (knob["path"], value)
    assert not validator.is_valid({"optimizer": {"learning_rate": 0.1}})


# -- 3. an empty create_experiment is refused ----------------------------------------------

@pytest.mark.parametrize("params", [None, {}, {"name": "just a name"}])
def test_create_experiment_with_nothing_set_is_refused(params: dict[str, Any] | None):
    lab = fl.Lab(":memory:")
    before = snapshot(lab)
    action = {"type": "create_experiment"} if params is None else \
        {"type": "create_experiment", "params": params}
    with pytest.raises(fl.ConfigError) as error:
        lab.apply(action, actor="agent")
    assert error.value.field == "based_on"
    assert "fl.knobs()" in str(error.value) and "optimizer" in str(error.value)
    with pytest.raises(fl.ConfigError):
        lab.create_experiment()
    assert snapshot(lab) == before and not lab.experiments


def test_create_experiment_with_one_knob_or_a_base_is_fine():
    lab = fl.Lab(":memory:")
    made = lab.apply({"type": "create_experiment", "params": {"seed": 3}}, actor="agent")
    assert made["config"]["seed"] == 3 and made["config"]["model"]["widths"] == [10, 100, 100, 1]
    again = lab.apply({"type": "create_experiment", "params": {"based_on": "exp_0"}},
                      actor="agent")
    assert again["based_on"] == "exp_0" and again["config"] == made["config"]


# -- 4. agents get JSON --------------------------------------------------------------------

class ConvertingLab(fl.Lab):
    """A lab that converts every value its verbs return as the agent's apply would: every
    action of every Case session checked for JSON, at the state it was returned in."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.converted: list[tuple[str, Any]] = []

    def apply(self, action: Any, actor: str = "code") -> Any:
        value = super().apply(action, actor)
        parsed = action_from_dict(action)
        with self._lock:
            self.converted.append((parsed.type, parsed.to_json(value, self.state)))
        return value


@pytest.mark.parametrize("case", CASES, ids=[f"{c.type}-{c.id}" for c in CASES])
def test_every_actions_agent_value_is_json(case: Any, tmp_path: Path):
    lab = ConvertingLab()
    case.session(lab, tmp_path)
    assert lab.converted[-1][0] == case.type
    for kind, value in lab.converted:
        assert as_json(value) == value, kind


def test_agent_values_have_one_shape_per_kind():
    lab = fl.Lab(":memory:")
    made = lab.apply({"type": "create_experiment", "params": {**TINY, "name": "tiny"}},
                     actor="agent")
    assert made["id"] == "exp_0" and made["name"] == "tiny" and made["status"] == "not run"
    assert made["config"] == lab.experiments["exp_0"].config.to_dict() and made["run"] is None
    ran = lab.apply({"type": "run", "params": {"experiment": "exp_0"}}, actor="agent")
    run = lab.results("exp_0")
    assert ran == {"run": run.id, "experiment": "exp_0", "status": "finished",
                   "steps_done": 30, "error": None,
                   "final": {"train_loss": float(run.series("train_loss")[-1]),
                             "test_loss": float(run.series("test_loss")[-1])}}
    fitted = lab.apply({"type": "fit", "params": {"experiment": "exp_0", "metric": "train_loss",
                                                  "families": ["exponential", "linear"]}},
                       actor="agent")
    table = lab.fits["fit_0"].table
    assert as_json(fitted) == fitted and [r["family"] for r in fitted["rows"]] == \
        [r.family for r in table.rows]
    assert fitted["rows"][0]["r2"] == pytest.approx(table.rows[0].r2)
    chart = lab.apply({"type": "zoom", "params": {"metric": "train_loss", "x_range": [0, 9]}},
                      actor="agent")
    assert chart["metric"] == "train_loss" and chart["x_range"] == [0.0, 9.0]
    assert lab.apply({"type": "note", "params": {"text": "hi"}}, actor="agent") == "hi"
    # code keeps its Python objects
    assert isinstance(lab.apply({"type": "run", "params": {"experiment": "exp_0"}}), fl.Run)


def test_json_value_has_no_nan_or_numpy():
    value = {"a": np.float32(np.nan), "b": [np.int64(3), math.inf, (1.5, None)],
             "c": np.arange(3), 4: Path("x/y")}
    assert json_value(value, None) == {"a": None, "b": [3, None, [1.5, None]], "c": [0, 1, 2],
                                       "4": "x/y"}


# -- 5. reads: typed actions, JSON values, never logged ------------------------------------

READS = ("list_experiments", "run_metrics", "sweep_table", "exploration_metrics")


def test_reads_are_actions_in_the_schema_and_read_only():
    titles = [v["title"] for v in fl.action_schema()["oneOf"]]
    for kind in READS:
        assert kind in titles and ACTIONS[kind].read_only
    assert not any(cls.read_only for kind, cls in ACTIONS.items() if kind not in READS)


@pytest.fixture
def lab() -> fl.Lab:
    lab = fl.Lab(":memory:")
    trained(lab, name="base")
    tiny(lab, seed=1)
    lab.tag("exp_0", add="baseline")
    return lab


def test_list_experiments(lab: fl.Lab):
    before = snapshot(lab)
    listed = lab.list_experiments()
    assert snapshot(lab) == before
    assert as_json(listed) == listed == lab.apply({"type": "list_experiments"}, actor="agent")
    first, second = listed
    run = lab.results("exp_0")
    assert first["id"] == "exp_0" and first["name"] == "base" and first["tags"] == ["baseline"]
    assert first["status"] == "finished" and first["run"] == run.id and first["steps_done"] == 30
    assert first["final"] == {"train_loss": float(run.series("train_loss")[-1]),
                              "test_loss": float(run.series("test_loss")[-1])}
    assert first["config"] == lab.experiments["exp_0"].config.to_dict()
    assert second["status"] == "not run" and second["run"] is None and second["final"] == {}
    assert second["config"]["seed"] == 1


def test_run_metrics_summaries_step_and_downsampled_series(lab: fl.Lab):
    values = lab.results("exp_0").series("train_loss")
    read = lab.run_metrics("exp_0", "train_loss", step=7, points=5)
    assert as_json(read) == read
    assert read["final"] == float(values[-1]) and read["min"] == float(values.min())
    assert read["argmin"] == int(values.argmin()) and read["points_recorded"] == 30
    assert (read["first_step"], read["last_step"]) == (0, 29)
    assert read["at_step"] == {"step": 7, "value": float(values[7])}
    series = read["series"]
    assert len(series) == 5 and series[0] == [0, float(values[0])] and \
        series[-1] == [29, float(values[29])]
    assert all(v == float(values[s]) for s, v in series)  # picked, not averaged
    plain = lab.run_metrics("exp_0", "test_loss")
    assert plain["at_step"] is None and plain["series"] is None
    assert len(lab.run_metrics("exp_0", "train_loss", points=100)["series"]) == 30


def test_run_metrics_of_a_reused_run_reads_its_stored_series(lab: fl.Lab):
    trained(lab, name="twin")  # exp_2: the same config as exp_0, its run reused
    assert lab.log[-1].result["reused"]
    original, reused = (lab.run_metrics(e, "train_loss", points=10) for e in ("exp_0", "exp_2"))
    assert reused["experiment"] == "exp_2" and reused["run"] == original["run"]
    assert {k: v for k, v in reused.items() if k != "experiment"} == \
        {k: v for k, v in original.items() if k != "experiment"}


@pytest.mark.parametrize("call, error, message", [
    (lambda lab: lab.run_metrics("exp_0", "train_loss", step=30), fl.ConfigError,
     "step: got 30; allowed: a recorded step, 0 to 29"),
    (lambda lab: lab.run_metrics("exp_0", "train_loss", points=1), fl.ConfigError,
     "points: got 1; allowed: an integer from 2 to 10000"),
    (lambda lab: lab.run_metrics("exp_0", "active_rate", layer="layers.0.pre"), fl.ConfigError,
     "has one per neuron"),
    (lambda lab: lab.run_metrics("exp_0", "accuracy"), fl.FeaturelabError,
     "no series 'accuracy' in this run; recorded: "),
    (lambda lab: lab.run_metrics("exp_1", "train_loss"), fl.FeaturelabError,
     "exp_1 has not been run"),
    (lambda lab: lab.run_metrics("exp_9", "train_loss"), fl.ConfigError,
     "an existing experiment (exp_0, exp_1)"),
    (lambda lab: lab.sweep_table("sweep_3"), fl.ConfigError, "an existing sweep (none yet)"),
    (lambda lab: lab.apply({"type": "run_metrics", "params": {"experiment": "exp_0"}},
                           actor="agent"), fl.ActionError, "metric: Field required"),
])
def test_bad_reads_name_the_problem_and_change_nothing(lab: fl.Lab, call, error, message):
    before = snapshot(lab)
    with pytest.raises(error) as raised:
        call(lab)
    assert message in str(raised.value)
    assert snapshot(lab) == before


def test_run_metrics_of_a_statistic_on_snapshots_names_the_nearest_step():
    lab = fl.Lab(":memory:")
    trained(lab, snapshots={"schedule": [[0, 5]]})
    lab.define_statistic("spread", on="active_rate",  # one value per layer and step
                         source="def spread(tensor, dim, keepdim=False):\n"
                         "    return tensor.float().std(dim=dim, keepdim=keepdim)\n")
    read = lab.run_metrics("exp_0", "spread", layer="layers.0.pre", step=10, points=3)
    assert read["first_step"] == 0 and read["last_step"] == 29 and read["points_recorded"] == 7
    assert read["at_step"]["step"] == 10 and [s for s, _ in read["series"]] == [0, 15, 29]
    with pytest.raises(fl.ConfigError, match="a step it was measured at \\(the nearest is 10\\)"):
        lab.run_metrics("exp_0", "spread", layer="layers.0.pre", step=11)


def test_sweep_table_rows_are_lab_tables_as_json():
    lab = fl.Lab(":memory:")
    tiny(lab)
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 0.02]}, seeds=[0, 1])
    lab.run(sweep.members[0])
    read = lab.sweep_table(sweep.id)
    assert as_json(read) == read == lab.apply({"type": "sweep_table",
                                               "params": {"sweep": sweep.id}}, actor="agent")
    assert (read["sweep"], read["base"], read["knobs"]) == (sweep.id, "exp_0",
                                                            ["optimizer.lr", "seed"])
    rows = read["rows"]
    assert [r["id"] for r in rows] == list(sweep.members)
    table = lab.table().set_index("id")
    first = rows[0]
    assert first["status"] == "finished" and first["optimizer.lr"] == 0.01
    assert first["train_loss.final"] == table.loc[first["id"], "train_loss.final"]
    assert first["train_loss.argmin"] == table.loc[first["id"], "train_loss.argmin"]
    assert first["model.widths"] == [4, 8, 1] and first["group"] == "optimizer.lr=0.01"
    assert rows[1]["status"] == "not run" and "train_loss.final" not in rows[1]


def test_reads_see_what_another_lab_on_the_store_logged(tmp_path: Path):
    mine = fl.Lab("shared", root=tmp_path)
    other = fl.Lab("shared", root=tmp_path)
    tiny(other, name="from the other kernel")
    stored = len(mine.store.actions_after(0))
    assert [e["name"] for e in mine.list_experiments()] == ["from the other kernel"]
    assert len(mine.store.actions_after(0)) == stored  # read, not logged


def test_a_read_in_a_log_is_skipped_by_replay(tmp_path: Path):
    lab = fl.Lab(":memory:")
    lab.note("before")
    path = lab.log.to_jsonl(tmp_path / "log.jsonl")
    line = {**lab.log[0].to_dict(), "id": "read0", "type": "list_experiments", "params": {},
            "result": {}}
    path.write_text(path.read_text() + json.dumps(line) + "\n")
    report = fl.replay(path)
    assert [e.type for e in report.lab.log] == ["note"] and not report.differences
