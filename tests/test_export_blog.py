"""The blog draft: its document (sentences, tables, code, pictures in session order), the
Markdown written from it, and the chart pictures at the recorded view."""

import re
import struct

import numpy as np
import pytest
from conftest import REFERENCE_SOURCE
from conftest import TINY_LAB as TINY

import featurelab as fl
from featurelab.actions import action_from_dict
from featurelab.export.blog import (
    ChartBlock,
    Code,
    ConfigTable,
    FitTableBlock,
    GraphBlock,
    Note,
    Sentence,
    build_document,
    export_blog,
    merge_sentences,
)
from featurelab.export.charts import moving_average
from featurelab.export.markdown import escape, escape_html

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG, "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def full(reference_lab):
    return build_document(reference_lab)


@pytest.fixture(scope="module")
def exported(reference_lab, tmp_path_factory):
    # The export function itself: Lab.export_blog would log an export in the shared lab.
    path = export_blog(reference_lab, tmp_path_factory.mktemp("blog") / "post.md")
    return path, path.read_text()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny lab whose session uses every kind of view and a note."""
    lab = fl.Lab("small", root=tmp_path_factory.mktemp("small"))
    lab.create_experiment(**TINY, name="tiny *one*")
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    lab.open_chart("train_loss")
    lab.set_axes("train_loss", log_x=True, log_y=True)
    lab.set_smoothing("train_loss", 5)
    lab.zoom("train_loss", x_range=(1, 80), y_range=(0.01, 20))
    lab.note("The loss falls *fast*; is it a power law?")
    lab.open_chart("hidden_activations")
    lab.choose_layer("hidden_activations", "layers.0.pre")
    lab.choose_method("hidden_activations", "heatmap")
    lab.choose_method("hidden_activations", "histogram")
    lab.fit("exp_0", "train_loss", x_range=(0, 100))
    return lab


def test_every_action_is_one_sentence_from_describe_in_session_order(reference_lab, full):
    expected = [action_from_dict(e.action_dict()).describe(e.result) for e in reference_lab.log]
    assert full.sentences() == expected
    assert len(expected) == len(reference_lab.log) == 19
    assert [b.entries for b in full.blocks if isinstance(b, Sentence)] == \
        [(e.id,) for e in reference_lab.log]


def test_the_draft_starts_with_the_graph_and_has_both_config_tables(full):
    assert isinstance(full.blocks[0], GraphBlock)
    assert png_size(full.blocks[0].png)[0] > 600
    tables = [b for b in full.blocks if isinstance(b, ConfigTable)]
    assert [t.experiment for t in tables] == ["exp_0", "exp_1"]
    rows = dict((k, (v, latex)) for k, v, latex in tables[1].rows)
    assert rows["Model"][0] == "MLP 10, 100, 100, 1, relu"
    assert rows["Data"] == ("sin2, train=500, test=200", r"y = \sum_{i=1}^{10} \sin^2(10 x_i)")
    assert rows["Optimizer"][0] == "adam, lr=0.001, steps=2000"
    assert rows["Loss"][0] == "mse"
    assert rows["Observables"][0].endswith("hidden_activations, nonlinear_rate")
    # each table right after the sentence of its creation
    index = full.blocks.index(tables[0])
    assert full.blocks[index - 1].text == "Created experiment 0."


def test_the_diy_statistic_source_and_the_fit_table(reference_lab, full):
    code = [b for b in full.blocks if isinstance(b, Code)]
    assert [c.source for c in code] == [REFERENCE_SOURCE.rstrip("\n")]
    (fit,) = [b for b in full.blocks if isinstance(b, FitTableBlock)]
    table = reference_lab.fits["fit_0"].table
    assert [r.family for r in fit.rows] == [r.family for r in table.rows]
    assert len(fit.rows) == 4 and fit.rows[0].family == "sigmoid"
    assert fit.rows[0].r2 == pytest.approx(table.best.r2)
    assert fit.caption == "fit_0: nonlinear_rate (layers.1.pre) of exp_1, steps 0–100"


def test_charts_appear_where_they_were_looked_at_with_the_recorded_view(full):
    kinds = [type(b).__name__ if not isinstance(b, Sentence) else b.text for b in full.blocks]
    charts = full.charts()
    assert len(charts) >= 3
    # one picture after the run of five events on hidden_activations, not five
    first = full.blocks.index(charts[0])
    assert kinds[first - 1] == "Added neuron stat active_rate on layers.1.pre."
    assert kinds[first - 5] == "Opened the hidden_activations chart."
    assert charts[0].picture.caption.startswith("hidden_activations; Layer 1 pre (500 x 100)")
    (stats_axes,) = charts[0].picture.axes
    assert stats_axes.xlim == (0.0, 1999.0)  # every snapshot step, no zoom recorded
    # after the zoom: nonlinear_rate of exp_1 on steps 0-100, fitted curves not yet there
    zoomed = full.blocks.index(charts[1])
    assert kinds[zoomed - 1] == "Zoomed the nonlinear_rate chart to steps 0-100."
    assert charts[1].picture.axes[0].xlim == (0.0, 100.0)
    assert "fitted curves" not in charts[1].picture.caption
    # right after the fit: the same zoom with the fitted curves
    assert isinstance(full.blocks[full.blocks.index(charts[2]) - 1], FitTableBlock)
    assert charts[2].picture.axes[0].xlim == (0.0, 100.0)
    assert "fitted curves dashed" in charts[2].picture.caption
    # after "hid the fitted curves": the curves are gone again
    assert kinds[-2] == "Hid the fitted curves on the nonlinear_rate chart."
    assert charts[-1].picture.png == charts[1].picture.png
    for chart in charts:
        width, height = png_size(chart.picture.png)
        assert 600 <= width <= 1000 and 300 <= height <= 1000


def test_the_zoomed_y_range_fits_the_data_inside_the_x_range(reference_lab, full):
    steps, values = reference_lab.metric_series("exp_1", "nonlinear_rate", "layers.1.pre")
    inside = values[(steps >= 0) & (steps <= 100)]
    lo, hi = full.charts()[1].picture.axes[0].ylim
    assert inside.min() - 0.1 < lo < inside.min() and inside.max() < hi < inside.max() + 0.1


def test_exporting_changes_nothing_in_the_lab(reference_lab, tmp_path):
    before = (len(reference_lab.log), reference_lab.view.to_dict(), list(reference_lab.fits),
              list(reference_lab.neuron_stats))
    export_blog(reference_lab, tmp_path / "a.md", detail="condensed")
    reference_lab.export_graph(tmp_path / "g")
    reference_lab.export_script(tmp_path / "s.py")
    assert before == (len(reference_lab.log), reference_lab.view.to_dict(),
                      list(reference_lab.fits), list(reference_lab.neuron_stats))
    assert reference_lab.store.actions_after(reference_lab._seq) == []


def test_an_export_is_logged_as_its_cell_but_left_out_of_every_draft(tmp_path):
    """The panel's Publish section and lab.export_blog are one action: logged (a click is a
    cell), written after the lock is let go, and never part of a draft, so an export from
    the panel and one from code of the same lab write the same text."""
    lab = fl.Lab("exports", root=tmp_path / "labs")
    lab.create_experiment(**TINY)
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    lab.open_chart("train_loss")
    first = lab.apply({"type": "export_blog", "params": {"path": str(tmp_path / "a.md")}},
                      actor="human")
    lab.zoom("train_loss", x_range=(0, 30))
    lab.export_blog(tmp_path / "b.md", detail="condensed")
    lab.zoom("train_loss", x_range=(0, 20))  # after an export: still one chart's views
    third = lab.export_blog(tmp_path / "c.md")
    assert first == tmp_path / "a.md" and third == tmp_path / "c.md"
    exports = [e for e in lab.log if e.type == "export_blog"]
    assert [(e.actor, e.result) for e in exports] == [
        ("human", {"path": str(tmp_path / "a.md"), "detail": "full"}),
        ("code", {"path": str(tmp_path / "b.md"), "detail": "condensed"}),
        ("code", {"path": str(tmp_path / "c.md"), "detail": "full"})]
    assert "lab.export_blog(" in lab.cells()[-1].source  # runs in cells: not a comment
    assert not lab.cells()[-1].source.lstrip().startswith("#")
    # The third draft equals a draft of the same log without its exports.
    without = fl.Lab("without", root=tmp_path / "labs2")
    for entry in lab.log:
        if entry.type != "export_blog":
            without.apply(entry.action)
    again = export_blog(without, tmp_path / "c2.md")
    text = (tmp_path / "c.md").read_text()
    assert "export" not in text.lower().replace("exports", "")
    assert _body(text) == _body(again.read_text())
    assert lab.export_blog(tmp_path / "c.md").read_text() == text  # exporting again: same
    # A bad file kind or detail is refused before anything is logged.
    n = len(lab.log)
    with pytest.raises(fl.ConfigError, match="path"):
        lab.export_blog(tmp_path / "x.pdf")
    with pytest.raises(fl.ConfigError, match="detail"):
        lab.export_blog(tmp_path / "x.md", detail="short")
    assert len(lab.log) == n


def _body(markdown: str) -> str:
    # The front matter names the lab (another name in the second lab) and the pictures'
    # folder is named after the file.
    body = markdown.split("\n---\n", 1)[1]
    return re.sub(r"\w+_files/", "F/", body).replace("without", "exports")


def test_the_markdown_file_has_front_matter_every_sentence_tables_code_and_pictures(
        reference_lab, exported):
    path, text = exported
    front = text.split("---\n")[1]
    assert 'title: "feature-learning-1"' in front and re.search(r"date: \d{4}-\d\d-\d\d", front)
    for sentence in reference_lab.log.sentences():
        assert escape(sentence) + "\n" in text
    assert text.count("| Config | Value |") == 2
    assert r"$y = \sum_{i=1}^{10} \sin^2(10 x_i)$" in text
    assert "~~~python\n" + REFERENCE_SOURCE + "~~~" in text
    rows = re.findall(r"^\| (Sigmoid|Exponential|Power|Log-power) \| (0\.\d{4}) \| \$\$", text,
                      re.M)
    assert rows[0][0] == "Sigmoid" and len(rows) == 4
    assert float(rows[0][1]) == pytest.approx(reference_lab.fits["fit_0"].table.best.r2,
                                              abs=5e-5)
    pictures = re.findall(r"!\[[^\]]*\]\((post_files/[^)]+\.png)\)", text)
    assert pictures[0] == "post_files/knowledge-graph.png" and len(pictures) >= 4
    for picture in pictures:
        png_size((path.parent / picture).read_bytes())


def test_condensed_detail_merges_each_run_of_view_events(reference_lab):
    doc = build_document(reference_lab, detail="condensed")
    log = list(reference_lab.log)
    said = [action_from_dict(e.action_dict()).describe(e.result) for e in log]
    # events 3-8: view results, open, enlarge, layer, method, add stat -> one sentence
    assert merge_sentences(said[3:9]) in doc.sentences()
    assert merge_sentences(said[3:9]).startswith("Viewed results for exp_0 (metrics: train_loss")
    assert "; opened the hidden_activations chart; enlarged the" in merge_sentences(said[3:9])
    assert len(doc.sentences()) == 19 - 5 - 3  # two runs of 6 and 4 view events
    covered = [i for b in doc.blocks if isinstance(b, Sentence) for i in b.entries]
    assert covered == [e.id for e in log]  # every event told once, in order
    assert len(doc.charts()) == 4


def test_a_note_is_the_researchers_words_where_it_was_written(small):
    doc = build_document(small)
    notes = [b for b in doc.blocks if isinstance(b, Note)]
    assert [(n.text, n.origin) for n in notes] == [
        ("The loss falls *fast*; is it a power law?", "lab.note")]
    assert not any(s.startswith("Noted") for s in doc.sentences())
    at = doc.blocks.index(notes[0])
    # the zoomed chart was pictured before the note that speaks of it
    assert isinstance(doc.blocks[at - 1], ChartBlock)
    assert doc.blocks[at - 2].text.startswith("Zoomed the train_loss chart")
    text = small.export_blog(small.store.path.parent / "small.md").read_text()
    assert "> **Researcher's note**\n>\n> The loss falls *fast*; is it a power law?\n" in text


def test_log_axes_smoothing_and_both_ranges_are_drawn_as_recorded(small):
    chart = build_document(small).charts()[0]
    (axes,) = chart.picture.axes
    assert (axes.xscale, axes.yscale) == ("log", "log")
    assert axes.xlim == pytest.approx((1.0, 80.0)) and axes.ylim == pytest.approx((0.01, 20.0))
    assert "smoothed over 5 steps" in chart.picture.caption


def test_snapshot_methods_draw_the_last_snapshot_and_one_picture_per_run(small):
    doc = build_document(small)
    heat = [c for c in doc.charts() if "hidden_activations" in c.picture.caption]
    assert len(heat) == 1  # heatmap then histogram in one run: the last state only
    assert heat[0].picture.caption.endswith("histogram at step 119 (the last snapshot)")
    assert heat[0].picture.axes[0].title == "layers.0.pre of exp_0 at step 119"


def test_a_heatmap_is_samples_by_neurons(small):
    from featurelab.export.charts import draw_chart
    from featurelab.view import Chart

    picture = draw_chart(small, Chart("hidden_activations", layer="layers.1.pre",
                                      method="heatmap"), ["exp_0"])
    (axes,) = picture.axes
    assert axes.xlim == (-0.5, 7.5) and axes.ylim == (31.5, -0.5)  # 8 neurons, 32 samples


def test_nothing_to_draw_gives_no_picture(small):
    from featurelab.export.charts import draw_chart
    from featurelab.view import Chart

    assert draw_chart(small, Chart("active_rate"), ["exp_0"]) is None  # no layer chosen
    assert draw_chart(small, Chart("train_loss"), []) is None  # nothing viewed


def test_moving_average_is_the_trailing_mean_over_the_window():
    x = np.arange(6.0)
    y = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0])
    assert np.allclose(moving_average(x, y, 3), [1.0, 1.5, 2.0, np.nan, 4.0, 5.5],
                       equal_nan=True)
    assert np.array_equal(moving_average(x, y, 0), y, equal_nan=True)


def test_session_text_is_escaped_in_markdown_and_notes_lose_raw_html():
    assert escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escape("a *b* | `c` $d$ [e](f)\nnew line") == \
        r"a \*b\* \| \`c\` \$d\$ \[e\](f) new line"
    assert escape("exp_0 and _x_") == r"exp_0 and \_x\_"
    assert escape("# not a heading") == r"\# not a heading"
    note = "<img src=x onerror=alert(1)> `<b>` <https://a.org>\n```\n<div>\n```"
    assert escape_html(note) == "&lt;img src=x onerror=alert(1)> `<b>` <https://a.org>\n" \
        "```\n<div>\n```"


def test_a_bad_detail_or_suffix_says_what_is_allowed(small, tmp_path):
    with pytest.raises(fl.ConfigError, match="'full' or 'condensed'"):
        small.export_blog(tmp_path / "x.md", detail="short")
    with pytest.raises(fl.ConfigError, match=r"\.md or \.html"):
        small.export_blog(tmp_path / "x.pdf")
