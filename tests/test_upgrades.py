"""Old logs and stores stay readable: action upgraders, and a lab written by today's
version (schema 3, kept as an SQL dump in tests/data) opening without retraining."""

import json
import sqlite3
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import featurelab as fl
from featurelab.actions import base
from featurelab.actions.base import Action, action, call
from featurelab.errors import FeaturelabWarning
from featurelab.store import SCHEMA_VERSION

DATA = Path(__file__).parent / "data"


@pytest.fixture
def greeting():
    """A test action at version 3 whose params changed twice: registered for one test."""

    @action
    class Greet(Action):
        type: ClassVar[str] = "greet_for_test"
        version: ClassVar[int] = 3
        upgraders: ClassVar = {
            1: lambda p: {"words": p.pop("text").split()},  # 1 -> 2: text became words
            2: lambda p: {**p, "loud": False},  # 2 -> 3: a new field, default False
        }
        words: list[str]
        loud: bool

        def apply(self, state, ctx, recorded):
            state.notes.append(" ".join(self.words).upper() if self.loud else
                               " ".join(self.words))
            return {}, None

        def to_code(self):
            return call("lab.greet", self.words)

        def describe(self, result=None):
            return "Greeted."

    yield Greet
    del base.ACTIONS["greet_for_test"]


def test_an_old_action_is_upgraded_step_by_step(greeting):
    lab = fl.Lab(":memory:")
    lab.apply({"type": "greet_for_test", "version": 1, "params": {"text": "hello old log"}})
    lab.apply({"type": "greet_for_test", "version": 2, "params": {"words": ["two"]}})
    lab.apply({"type": "greet_for_test", "params": {"words": ["now"], "loud": True}})
    assert lab.notes == ["hello old log", "two", "NOW"]
    # the log keeps what was applied, at the current version
    assert [(e.version, e.params) for e in lab.log] == [
        (3, {"words": ["hello", "old", "log"], "loud": False}),
        (3, {"words": ["two"], "loud": False}), (3, {"words": ["now"], "loud": True})]


def test_a_version_without_an_upgrader_or_from_the_future_is_refused(greeting):
    lab = fl.Lab(":memory:")
    with pytest.raises(fl.ActionError, match="version 4; this featurelab reads version 3 "
                       "and the versions before it"):
        lab.apply({"type": "greet_for_test", "version": 4, "params": {"words": []}})
    del greeting.upgraders[1]
    with pytest.raises(fl.ActionError, match="no upgrader from version 1 to 2"):
        lab.apply({"type": "greet_for_test", "version": 1, "params": {"text": "x"}})
    assert len(lab.log) == 0


def test_a_lab_written_by_schema_3_opens_with_everything(tmp_path):
    """Written by tests/data (see the .json beside it for what it held): experiments, a
    DIY statistic, a finished run, a view, a fit and a note come back without training."""
    path = tmp_path / "today.sqlite"
    db = sqlite3.connect(path)
    db.executescript((DATA / "lab-schema-3.sql").read_text())
    db.close()
    held = json.loads((DATA / "lab-schema-3.json").read_text())
    # Written before code was signed: its statistic opens disabled until trusted (the
    # upgrade step, once per store: `featurelab trust .featurelab`).
    with pytest.warns(FeaturelabWarning, match="nonlinear_rate on active_rate"):
        lab = fl.Lab("today", root=tmp_path)
    assert not lab.statistics["nonlinear_rate"].trusted
    assert lab.trust() == 1 and lab.statistics["nonlinear_rate"].trusted
    assert lab.store.schema_version() == SCHEMA_VERSION == 3
    assert not lab.restore_errors
    assert list(lab.experiments) == ["exp_0", "exp_1"]
    assert lab.experiments["exp_0"].name == "written by schema 3"
    assert "nonlinear_rate" in lab.experiments["exp_1"].config.observables
    assert lab.statistics["nonlinear_rate"].on == "active_rate"
    run = lab.results("exp_1")
    assert run.status == "finished" and run.steps_done == 120
    np.testing.assert_array_equal(run.series("train_loss")[-3:], held["train_loss"])
    assert run.series("nonlinear_rate", layer="layers.1.pre").shape == (120,)
    assert lab.view.charts["nonlinear_rate"].layer == "layers.1.pre"
    assert lab.fits["fit_0"].table.best.family == held["best"]
    assert lab.fits["fit_0"].table.best.r2 == held["r2"]
    assert lab.notes == ["a note"]
    assert lab.log.sentences() == held["sentences"]
