"""Damaged files and files where they should not go (issue 13): a damaged store or
snapshot names the file and keeps everything else readable; an agent's file writes stay
in the lab's folder; nobody writes over the lab's own store; a run whose pid now
belongs to another process is recognised as interrupted."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import TINY_LAB as TINY

import featurelab as fl
from featurelab.errors import ConfigError, FeaturelabError, StoreError
from featurelab.store import Store

# -- an agent's files ------------------------------------------------------------------


def _export(lab, path, actor):
    return lab.apply({"type": "export_log", "params": {"path": str(path)}}, actor=actor)


@pytest.fixture
def lab(tmp_path):
    lab = fl.Lab("lab", root=tmp_path / "labs")
    lab.note("something to export")
    return lab


def test_an_agent_exports_the_log_inside_the_labs_folder(lab, tmp_path):
    _export(lab, tmp_path / "labs" / "exports" / "log.jsonl", "agent")
    assert (tmp_path / "labs" / "exports" / "log.jsonl").read_text().count("\n") == 1


@pytest.mark.parametrize("where", ["labs/../outside.jsonl", "/abs", "labs/link/x.jsonl",
                                   "labs/other.sqlite", "labs/lab.snapshots/x.jsonl", "labs"])
def test_an_agent_writes_nowhere_else(lab, tmp_path, where):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "labs" / "link").symlink_to(outside, target_is_directory=True)
    path = outside / "abs.jsonl" if where == "/abs" else tmp_path / where
    before = len(lab.log)
    with pytest.raises(ConfigError, match="path: got .*allowed: ") as caught:
        _export(lab, path, "agent")
    assert str(path) in str(caught.value)
    assert not list(outside.iterdir()) and not (tmp_path / "outside.jsonl").exists()
    assert len(lab.log) == before  # refused before anything was logged


@pytest.mark.parametrize("actor", ["agent", "code", "human"])
@pytest.mark.parametrize("name", ["lab.sqlite", "lab.sqlite-wal", "alias", "hardlink"])
def test_nobody_writes_over_the_labs_own_store(lab, tmp_path, actor, name):
    store = tmp_path / "labs" / "lab.sqlite"
    (tmp_path / "labs" / "alias").symlink_to(store)
    os.link(store, tmp_path / "labs" / "hardlink")
    with pytest.raises(ConfigError, match="the lab's own store"):
        _export(lab, tmp_path / "labs" / name, actor)
    assert fl.Lab("lab", root=tmp_path / "labs").notes == ["something to export"]


def test_the_labs_exports_never_write_over_its_store(lab, tmp_path):
    store = tmp_path / "labs" / "lab.sqlite"
    for export in (lab.export_script, lab.export_graph, lab.to_notebook):
        with pytest.raises(ConfigError, match="the lab's own store"):
            export(store)
    assert lab.store.integrity_check() == "ok"


def test_an_in_memory_labs_folder_is_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab = fl.Lab(":memory:")
    _export(lab, "log.jsonl", "agent")
    assert (tmp_path / "log.jsonl").exists()
    with pytest.raises(ConfigError, match=f"lab's folder {tmp_path}"):
        _export(lab, "../elsewhere.jsonl", "agent")


# -- a damaged store -------------------------------------------------------------------


def _damaged_copies(tmp_path):
    """name -> bytes: a real lab's store, damaged in the ways files get damaged."""
    good = fl.Lab("good", root=tmp_path)
    good.create_experiment(**TINY)
    good.note("a note")
    good.store.close()
    data = (tmp_path / "good.sqlite").read_bytes()
    return {"empty": b"", "random": np.random.default_rng(0).bytes(8192),
            "truncated": data[: len(data) // 2], "header-only": data[:60],
            "pages-zeroed": data[:4096] + bytes(len(data) - 4096)}


def test_a_damaged_store_is_named_and_never_taken_for_a_new_lab(tmp_path):
    for name, content in _damaged_copies(tmp_path).items():
        path = tmp_path / f"{name}.sqlite"
        path.write_bytes(content)
        with pytest.raises(StoreError) as caught:
            fl.Lab(name, root=tmp_path)
        message = str(caught.value)
        assert str(path) in message and "move it away" in message, message
        assert path.read_bytes() == content, name  # left as it was


def test_only_a_missing_store_is_a_new_lab_even_opened_at_once(tmp_path):
    path = tmp_path / "new.sqlite"
    errors = []

    def open_it():
        try:
            Store(path).close()
        except Exception as exc:  # an empty file seen half-made would be "damaged"
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Store(path).integrity_check() == "ok"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".new")]


# -- a damaged snapshot ----------------------------------------------------------------


@pytest.fixture
def snapshot_lab(tmp_path):
    lab = fl.Lab("snaps", root=tmp_path)
    run = lab.run(lab.create_experiment(**TINY).id)
    return tmp_path, lab.store.snapshot_root / run.id


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_snapshot_file_costs_only_its_layer(snapshot_lab, damage):
    root, directory = snapshot_lab
    path = directory / "layers.1.pre.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else bytes(len(data)))
    lab = fl.Lab("snaps", root=root)
    result = lab.results("exp_0").result()
    assert result.series("train_loss").shape == (120,)
    assert result.series("active_rate", layer="layers.1.pre").shape == (120, 8)
    steps, values = result.statistic_on_snapshots(lab.statistics, "mean", "layers.0.pre")
    assert len(steps) == len(values) > 10  # every 10 steps, and the last
    with pytest.raises(StoreError, match="layers.1.pre.npy: is damaged") as caught:
        result.statistic_on_snapshots(lab.statistics, "mean", "layers.1.pre")
    assert str(path) in str(caught.value)
    with pytest.raises(StoreError, match="layers.1.pre.npy"):
        result.snapshots.at("layers.1.pre", 50)


def test_a_damaged_steps_file_keeps_the_series_and_names_itself(snapshot_lab):
    root, directory = snapshot_lab
    (directory / "steps.npy").write_bytes(b"\x93NUMPY")
    run = fl.Lab("snaps", root=root).results("exp_0")
    assert np.isfinite(run.series("test_loss")).all()
    snapshots = run.result().snapshots
    for read in (lambda: snapshots.stack("layers.0.pre"), lambda: snapshots.at("layers.0.pre", 5)):
        with pytest.raises(FeaturelabError, match="steps.npy: is damaged"):
            read()


# -- a stale run whose pid was reused --------------------------------------------------


def test_a_run_whose_pid_now_belongs_to_another_process_is_interrupted(tmp_path):
    lab = fl.Lab("stale", root=tmp_path)
    exp = lab.create_experiment(**TINY)
    run = lab.run(exp.id)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # As a kernel killed mid-run leaves it, but its pid is now another live process's
        # (the test's own start time stays recorded: the process that ran it).
        with lab.store.transaction() as db:
            db.execute("UPDATE runs SET status = 'running', pid = ? WHERE id = ?",
                       (other.pid, run.id))
        again = fl.Lab("stale", root=tmp_path)
        assert again.results(exp.id).status == "interrupted"
        assert again.run(exp.id, force=True).status == "finished"
    finally:
        other.kill()
        other.wait()


def test_a_live_run_of_this_process_stays_running(tmp_path):
    store = Store(tmp_path / "live.sqlite")
    store.create_run("r", "exp_0", "key", {}, 10)
    assert Store(tmp_path / "live.sqlite").run_row("r")["status"] == "running"
