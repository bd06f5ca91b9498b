"""Notes from a notebook's markdown cells, the lab found in its code, and the nbconvert
exporter `--to featurelab_blog`, which gives the same draft as lab.export_blog."""

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import TINY_LAB as TINY
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import featurelab as fl
from featurelab.export.blog import Note, Sentence, build_document
from featurelab.export.markdown import escape
from featurelab.export.notebook import find_lab, notebook_notes, run_notebook
from featurelab.log import LogEntry

REFERENCE_CELLS = [
    new_markdown_cell("# Feature learning 1, reproduced\n\nWhy: *structure* over readability."),
    new_code_cell('import featurelab as fl\n\nlab = fl.Lab("reference", fresh=True)\nlab'),
    new_code_cell('''lab.create_experiment(
    model={"kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"},
    data={"task": "sin2", "dim": 10, "freq": 10, "n_train": 500, "n_test": 200},
    optimizer={"name": "adam", "lr": 1e-3, "steps": 2000},
    loss="mse",
    observables=["train_loss", "test_loss", "weight_l2_norm", "hidden_activations"],
    seed=0,
)
lab.select("exp_0")
lab.run("exp_0")'''),
    new_markdown_cell(r"Does the loss plateau near 1 on $y = \sum_i \sin^2(10 x_i)$?"),
    new_code_cell('''lab.view_results(["exp_0"])
lab.open_chart("hidden_activations")
lab.enlarge_chart("hidden_activations")
lab.choose_layer("hidden_activations", "layers.1.pre")
lab.choose_method("hidden_activations", "neuron_stats")
lab.add_neuron_stat("active_rate", layer="layers.1.pre")'''),
    new_code_cell('''%matplotlib inline
@lab.statistic("nonlinear_rate", on="active_rate")
def compute_nonlinear_rate(tensor, dim, keepdim=False):
    t = tensor.float()
    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)'''),
    new_code_cell('''lab.create_experiment(based_on="exp_0", observables_add=["nonlinear_rate"])
lab.select("exp_0", "exp_1")
lab.run("exp_1")
lab.view_results(["exp_1"])
lab.open_chart("nonlinear_rate")
lab.choose_layer("nonlinear_rate", "layers.1.pre")
lab.zoom("nonlinear_rate", x_range=(0, 100))'''),
    new_markdown_cell("Phase I removes features?"),
    new_code_cell('''table = lab.fit("exp_1", "nonlinear_rate", layer="layers.1.pre",
              x_range=(0, 100))
print(table)
lab.show_fits("nonlinear_rate", visible=False)'''),
]


def nbconvert(notebook, *args):
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to",
                           "featurelab_blog", str(notebook), *args],
                          capture_output=True, text=True, cwd=notebook.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def entry(i, cell=None):
    return LogEntry(id=f"e{i}", type="note", version=1, params={"text": str(i)}, actor="code",
                    time=0.0, cell=cell)


def test_find_lab_reads_the_literal_call_whatever_its_spelling():
    def nb(source):
        return {"cells": [{"cell_type": "code", "source": source}]}

    assert find_lab(nb('import featurelab as fl\nlab = fl.Lab("a", fresh=True)')).name == "a"
    call = find_lab(nb('%time x = 1\nfrom featurelab import Lab\nmy = Lab(root="r", name="b")'))
    assert (call.name, call.root, call.variable) == ("b", "r", "my")
    assert find_lab(nb("import featurelab\nfeaturelab.Lab('c', '.labs')")).root == ".labs"
    assert find_lab(nb("lab = fl.Lab()")).name == "lab"  # Lab()'s defaults
    assert find_lab(nb("lab = fl.Lab(name)")) is None  # not a literal: cannot open it
    assert find_lab({"cells": [{"cell_type": "markdown", "source": "fl.Lab('x')"}]}) is None


def test_a_markdown_cell_goes_after_the_last_action_of_the_code_cells_above_it():
    entries = [entry(0, "c1"), entry(1, "c1"), entry(2), entry(3, "c3"), entry(4)]
    notebook = {"cells": [
        {"cell_type": "markdown", "source": ["# Title\n", "\n", "intro"]},
        {"cell_type": "code", "id": "c1", "source": ""},
        {"cell_type": "markdown", "source": "after c1"},
        # a cell the panel inserted: its actions by id (actor human, no cell recorded)
        {"cell_type": "code", "id": "c2", "source": "",
         "metadata": {"featurelab": {"action_id": "e2", "action_ids": ["e2"]}}},
        {"cell_type": "code", "id": "c3", "source": ""},
        {"cell_type": "code", "id": "c4", "source": ""},  # made nothing
        {"cell_type": "markdown", "source": "after c3"},
        {"cell_type": "markdown", "source": "  \n"},  # empty: dropped
    ]}
    notes = notebook_notes(notebook, entries)
    assert notes.title == "Title"
    assert notes.start == ["intro"]
    assert notes.after == {"e1": ["after c1"], "e3": ["after c3"]}
    kept = notebook_notes(notebook, entries, take_title=False)
    assert kept.title is None and kept.start == ["# Title\n\nintro"]


def test_without_cell_ids_a_cell_claims_the_entries_whose_code_it_holds():
    # a lab built by a client that sends no cell ids (nbval, a plain Jupyter client)
    entries = [entry(0), entry(1), entry(2)]
    notebook = {"cells": [
        {"cell_type": "code", "id": "c1", "source": "lab.note('0')\nlab.note('1')"},
        {"cell_type": "markdown", "source": "after two notes"},
        {"cell_type": "code", "id": "c2", "source": "print('no action')"},
        {"cell_type": "markdown", "source": "still after two"},
        {"cell_type": "code", "id": "c3", "source": "lab.note('2')"},
        {"cell_type": "markdown", "source": "after three"},
    ]}
    assert notebook_notes(notebook, entries).after == {
        "e1": ["after two notes", "still after two"], "e2": ["after three"]}


def test_running_a_notebook_records_its_cells_and_places_its_notes(tmp_path):
    cells = [
        new_code_cell(f'import featurelab as fl\nlab = fl.Lab("tiny", root="labs")\n'
                      f'TINY = {TINY!r}'),
        new_code_cell('lab.create_experiment(**TINY)\nlab.run("exp_0")\nprint("trained")'),
        new_markdown_cell("It *trained*."),
        new_code_cell('lab.note("a note from code")\nlab.view_results(["exp_0"])\n'
                      'lab.open_chart("train_loss")\nlab.zoom("train_loss", x_range=(0, 50))'),
        new_markdown_cell("Zoomed in."),
    ]
    notebook = json.loads(nbformat.writes(new_notebook(cells=cells)))
    run_notebook(notebook, tmp_path)
    lab = fl.Lab("tiny", root=tmp_path / "labs")
    assert [e.cell for e in lab.log] == [cells[1].id] * 2 + [cells[3].id] * 4
    doc = build_document(lab, notebook=notebook)
    story = [b.text if isinstance(b, (Sentence, Note)) else type(b).__name__
             for b in doc.blocks]
    assert story == ["GraphBlock", "Created experiment 0.", "ConfigTable", "Ran exp_0 (120 steps).",
                     "It *trained*.", "a note from code",
                     "Viewed results for exp_0 (metrics: train_loss, test_loss, weight_l2_norm, "
                     "hidden_activations, active_rate).", "Opened the train_loss chart.",
                     "Zoomed the train_loss chart to steps 0-50.", "ChartBlock", "Zoomed in."]
    assert [b.origin for b in doc.blocks if isinstance(b, Note)] == \
        ["notebook", "lab.note", "notebook"]


def test_nbconvert_gives_the_same_draft_as_export_blog_for_the_reference_notebook(tmp_path):
    path = tmp_path / "reference.ipynb"
    nbformat.write(new_notebook(cells=REFERENCE_CELLS), str(path))
    done = nbconvert(path, "--BlogExporter.execute=True")  # no store yet: runs it first
    assert "Sigmoid" in done.stderr  # what the cells printed went to stderr
    converted = (tmp_path / "reference.md").read_text()
    pictures = {p.name: p.read_bytes() for p in (tmp_path / "reference_files").iterdir()}

    lab = fl.Lab("reference", root=tmp_path / ".featurelab")  # made by the notebook
    out = tmp_path / "direct"
    exported = lab.export_blog(out / "reference.md", notebook=path).read_text()
    assert converted == exported
    assert pictures == {p.name: p.read_bytes() for p in (out / "reference_files").iterdir()}
    assert len(pictures) >= 4  # the graph and three charts at least

    assert converted.count("> **Researcher's note**") == 3
    assert 'title: "Feature learning 1, reproduced"' in converted
    plateau = converted.index("Does the loss plateau")
    assert converted.index("Ran exp_0") < plateau < converted.index("Viewed results for exp_0")
    assert converted.index("Zoomed the nonlinear_rate") < converted.index("Phase I removes") \
        < converted.index("Fitted sigmoid")
    for entry in lab.log:  # every event of the research (the draft leaves exports out)
        assert escape(entry.describe()) in converted or not entry.action.in_draft

    again = nbconvert(path, "--stdout")  # the store exists now: opened, not rerun
    assert again.stdout.strip() == converted.strip()
    assert "Sigmoid" not in again.stderr


def test_the_exporter_takes_detail_and_title_options(tmp_path):
    cells = [new_code_cell(f'import featurelab as fl\nlab = fl.Lab("t", root="labs")\n'
                           f'lab.create_experiment(**{TINY!r})\nlab.run("exp_0")\n'
                           'lab.view_results(["exp_0"])\nlab.open_chart("test_loss")\n'
                           'lab.set_axes("test_loss", log_y=True)')]
    path = tmp_path / "t.ipynb"
    nbformat.write(new_notebook(cells=cells), str(path))
    text = nbconvert(path, "--stdout", "--BlogExporter.execute=True",
                     "--BlogExporter.detail=condensed",
                     "--BlogExporter.title=A <b>tiny</b> run").stdout
    assert 'title: "A <b>tiny</b> run"' in text
    assert "Viewed results for exp_0 (metrics: train_loss, test_loss, weight_l2_norm, " \
        "hidden_activations, active_rate); opened the test_loss chart; set the y axis to log " \
        "scale on the test_loss chart." in text.replace("\\", "")
    with pytest.raises(AssertionError, match="detail"):
        nbconvert(path, "--stdout", "--BlogExporter.detail=short")
