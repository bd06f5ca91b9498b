"""Defects a review of the eval_every / early stop / export / weight statistics change
found, each pinned: a failed export logs nothing, an agent's export stays in the lab's
folder (pictures and notebook too), an agent reads a test metric at the steps it was
measured at, and a sweep's bands keep the steps of members that stopped later."""

import os

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

import featurelab as fl

SMALL = {"model": {"widths": [4, 16, 1]}, "data": {"dim": 4, "n_train": 32, "n_test": 16},
         "optimizer": {"steps": 40}}


def test_a_failed_export_logs_nothing_and_names_the_problem(tmp_path):
    lab = fl.Lab("x", root=tmp_path)
    lab.create_experiment(**SMALL)
    (tmp_path / "afile").write_text("not a folder")
    n = len(lab.log)
    with pytest.raises(fl.FeaturelabError, match="afile"):
        lab.export_blog(tmp_path / "afile" / "post.md")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    with pytest.raises(fl.ConfigError, match="readable .ipynb"):
        lab.export_blog(tmp_path / "post.md", notebook=broken)
    assert len(lab.log) == n and len(fl.Lab("x", root=tmp_path).log) == n
    assert not (tmp_path / "post.md").exists()
    notes = tmp_path / "notes.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("A note of mine.")]), str(notes))
    assert "A note of mine." in lab.export_blog(tmp_path / "post.md", notebook=notes).read_text()
    assert [e.type for e in lab.log][-1] == "export_blog"


def test_an_agents_export_writes_and_reads_only_inside_the_labs_folder(tmp_path):
    lab = fl.Lab("x", root=tmp_path / "lab")
    lab.create_experiment(**SMALL)
    lab.run("exp_0")
    folder = lab.store.folder
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, folder / "c_files")  # the pictures' folder of c.md
    secret = outside / "secret.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("SECRET")]), str(secret))

    def export(**params):
        return lab.apply({"type": "export_blog", "params": params}, actor="agent")

    with pytest.raises(fl.ConfigError, match="c_files"):
        export(path=str(folder / "c.md"))
    with pytest.raises(fl.ConfigError, match="notebook"):
        export(path=str(folder / "n.md"), notebook=str(secret))
    assert list(outside.iterdir()) == [secret]
    assert export(path=str(folder / "ok.md")).endswith("ok.md")


def test_an_agent_reads_a_test_metric_at_the_steps_it_was_measured_at(tmp_path):
    lab = fl.Lab("x", root=tmp_path)
    e = lab.create_experiment(**{**SMALL, "optimizer": {"steps": 200}}, eval_every=10)
    lab.run(e.id)

    def read(**params):
        return lab.apply({"type": "run_metrics", "params": {"experiment": e.id,
                                                           "metric": "test_loss", **params}},
                         actor="agent")

    out = read(points=20)
    assert all(v is not None for _, v in out["series"])
    _, values = lab.metric_series(e.id, "test_loss", None)
    measured = {int(s) for s in np.flatnonzero(~np.isnan(values))}
    assert measured == {*range(0, 200, 10), 199}
    picked = [s for s, _ in out["series"]]
    assert len(picked) == 20 and set(picked) <= measured and picked[-1] == 199
    last = values[~np.isnan(values)][-1]
    assert out["final"] == pytest.approx(float(last))
    assert read(step=20)["at_step"]["value"] == pytest.approx(float(values[20]))
    with pytest.raises(fl.ConfigError, match="nearest is 10"):
        read(step=15)
    assert lab.apply({"type": "list_experiments", "params": {}}, actor="agent")[0]["final"][
        "test_loss"] == pytest.approx(float(last))


def test_bands_keep_the_steps_of_members_that_stopped_later(tmp_path):
    lab = fl.Lab("x", root=tmp_path)
    base = lab.create_experiment(**{**SMALL, "optimizer": {"steps": 200, "lr": 1e-2}}, eval_every=7,
                                 stop="test_loss < 3.5 for 20")
    sweep = lab.sweep(based_on=base.id, seeds=[0, 1, 2, 3])
    lab.run(sweep.id, backend="kernel")
    lengths = {m: len(lab.results(m).series("train_loss")) for m in sweep.members}
    frame = lab.bands("train_loss", sweep=sweep.id)
    assert frame["step"].max() == max(lengths.values()) - 1
    assert frame["n"].max() == len(sweep.members)
    tail = frame[frame["step"] >= min(lengths.values())]
    expected = sum(1 for n in lengths.values() if n > min(lengths.values()))
    assert (tail["n"] <= expected).all()
    assert max(lengths.values()) > min(lengths.values())  # seeds stop at different steps
    last = frame.iloc[-1]
    longest = max(lengths, key=lengths.get)
    assert last["mean"] == pytest.approx(float(lab.results(longest).series("train_loss")[-1]))
