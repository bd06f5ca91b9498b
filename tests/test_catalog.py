"""Rename, tag and delete experiments: logged actions that lose no work."""

import pytest
from conftest import TINY_LAB

import featurelab as fl


def test_rename_tag_and_delete_keep_runs_ids_and_history(tmp_path):
    lab = fl.Lab("catalog", root=tmp_path)
    first = lab.create_experiment(**TINY_LAB)
    run = lab.run(first.id)
    lab.create_experiment(**{**TINY_LAB, "seed": 1})

    lab.rename(first.id, "baseline")
    assert lab.experiments[first.id].name == "baseline"
    assert lab.run(first.id).id == run.id  # the name is a label: its run is reused

    assert lab.tag(["exp_0", "exp_1"], add=["small", "seed sweep"]) == {
        "exp_0": ["small", "seed sweep"], "exp_1": ["small", "seed sweep"]}
    assert lab.tag("exp_1", remove="small", add="second") == {"exp_1": ["seed sweep", "second"]}
    assert list(lab.table()["tags"]) == ["small, seed sweep", "seed sweep, second"]

    lab.select("exp_0", "exp_1")
    lab.delete("exp_0")
    assert list(lab.experiments) == ["exp_1"] and lab.view.selected == ["exp_1"]
    assert lab.create_experiment(**TINY_LAB).id == "exp_2"  # ids are never given twice
    assert lab.store.run_row(run.id)["status"] == "finished"  # the run stays stored

    lab.store.close()
    again = fl.Lab("catalog", root=tmp_path)  # the same lab, folded from its log
    assert list(again.experiments) == ["exp_1", "exp_2"]
    assert again.experiments["exp_1"].tags == ("seed sweep", "second")
    # same config as the deleted one: its stored run is found again
    assert again.run("exp_2").id == run.id


def test_a_running_experiment_or_a_sweep_member_is_not_deleted(tmp_path):
    lab = fl.Lab("keep", root=tmp_path)
    base = lab.create_experiment(**{**TINY_LAB, "optimizer": {"lr": 1e-2, "steps": 4000}})
    running = lab.run(base.id, background=True)
    with pytest.raises(fl.FeaturelabError, match="is running; cancel it first"):
        lab.delete(base.id)
    lab.cancel(base.id)
    running.wait()
    sweep = lab.sweep(based_on=base.id, seeds=[5, 6])
    with pytest.raises(fl.FeaturelabError, match="member of sweep_0"):
        lab.delete(sweep.members[0])
    lab.delete(base.id)  # the sweep's base is not a member
    assert base.id not in lab.experiments


def test_a_lab_with_a_deleted_experiment_exports_and_replays(tmp_path):
    lab = fl.Lab("exports", root=tmp_path)
    for seed in (0, 1):
        lab.run(lab.create_experiment(**{**TINY_LAB, "seed": seed}).id)
    lab.view_results(["exp_0", "exp_1"])
    lab.fit("exp_0", "train_loss")
    lab.rename("exp_1", "kept")
    lab.tag("exp_1", add="x")
    lab.delete("exp_0")
    post = lab.export_blog(tmp_path / "post.md").read_text()
    assert "Deleted exp_0 (its runs stay in the store)." in post
    assert "Renamed exp_1 to 'kept'." in post
    lab.export_graph(tmp_path / "graph.json")
    script = lab.export_script(tmp_path / "script.py").read_text()
    assert "lab.delete('exp_0')" in script
    report = fl.replay(lab.log)
    assert report.ok and list(report.lab.experiments) == ["exp_1"]
    assert report.lab.experiments["exp_1"].tags == ("x",)
