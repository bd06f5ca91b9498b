"""The blog draft as a document: a list of blocks built from the log in session order.

Every action gives its `describe()` sentence; a created experiment adds its config
table, a DIY statistic its source, a fit its table (a group fit its table, a law across
runs its points, equation and picture). Chart pictures come where a chart
was looked at: the log's view actions are replayed onto a fresh ViewState, so each
picture shows the chart as it was then (zoom, layer, axes, smoothing, fits shown).
In "full" detail every event is a sentence and a run of view events on one chart ends
in one picture; in "condensed" detail a run of view events is one sentence and one
picture per chart it changed. The researcher's words (`lab.note`, and markdown cells of
the notebook anchored after the actions of the code cells above them) are Note blocks,
never run through describe(). After the session, each sweep has a section: its grid,
its groups with their final values (mean ± std over the seeds, n), a banded chart per
metric drawn from `lab.bands`, and the laws fitted across its runs.

`markdown.py` writes a Document as Markdown, `html_page.py` as a standalone page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurelab.actions import Action
from featurelab.actions.laws import LAWS, LawFit, LawPoint, summary_label
from featurelab.engine.fit import FitRow, FitTable, _fmt_coef
from featurelab.engine.formula import parse_formula
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.export.charts import Picture, draw_bands, draw_chart, draw_law
from featurelab.export.graph import build_graph, graph_png, graph_summary
from featurelab.export.notebook import NotebookNotes, notebook_notes, read_notebook
from featurelab.trajectory import RECENT, Exploration, metrics
from featurelab.view import Chart, ViewState

if TYPE_CHECKING:
    from featurelab.lab import Experiment, Lab
    from featurelab.log import LogEntry
    from featurelab.state import PhaseLabels

DETAILS = ("full", "condensed")
SWEEP_METRICS = 3  # at most this many metrics in a sweep's section: the fitted ones first


# -- blocks -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Sentence:
    text: str
    entries: tuple[str, ...]  # the log entries it tells of (several when condensed)


@dataclass(frozen=True)
class Note:
    text: str  # the researcher's own Markdown
    origin: str  # "notebook" (a markdown cell) or "lab.note"


@dataclass(frozen=True)
class ConfigTable:
    experiment: str
    rows: tuple[tuple[str, str, str | None], ...]  # (key, text, LaTeX shown after the text)


@dataclass(frozen=True)
class Code:
    title: str
    source: str
    language: str = "python"


@dataclass(frozen=True)
class FitTableBlock:
    fit: str
    caption: str
    rows: tuple[FitRow, ...]


@dataclass(frozen=True)
class LawBlock:
    """A law fitted across runs: its points (one per group), its equation and R^2."""

    caption: str
    knob: str
    summary: str  # what each point is: "final value of test_loss"
    points: tuple[LawPoint, ...]
    left_out: tuple[tuple[str, str], ...]  # (group, why)
    law: str  # "Power law"
    latex: str
    r2: float
    r2_of: str  # what R^2 measures: "the log-log line" or "y"


@dataclass(frozen=True)
class SweepGroup:
    group: str
    members: tuple[str, ...]
    seeds: tuple[int, ...]
    n: int  # finished runs
    finals: tuple[tuple[float, float, int] | None, ...]  # per metric: (mean, std, n) at its end


@dataclass(frozen=True)
class SweepBlock:
    """The head of a sweep's section: its grid and its groups' final values."""

    sweep: str
    title: str  # "Sweep 0, 'lr'"
    summary: str
    knobs: tuple[tuple[str, tuple[str, ...]], ...]  # (path, its values as text)
    metrics: tuple[str, ...]  # the columns of final values
    groups: tuple[SweepGroup, ...]


@dataclass(frozen=True)
class ExplorationBlock:
    """An exploration's section: its trajectory metrics and every iteration."""

    exploration: str
    title: str  # "Exploration 0"
    summary: str
    metrics: tuple[tuple[str, str], ...]  # (what, value as text)
    iterations: tuple[tuple[str, ...], ...]  # (iteration, changes, value, decision, reason)


@dataclass(frozen=True)
class CrossFitsBlock:
    """The fits across a sweep's runs, one row each: (fit, of what, R^2, LaTeX, coefficients)."""

    sweep: str
    rows: tuple[tuple[str, str, float, str, str], ...]


@dataclass(frozen=True)
class ChartBlock:
    name: str  # file stem of the picture: "chart-1"
    picture: Picture


@dataclass(frozen=True)
class GraphBlock:
    png: bytes
    summary: str


Block = (Sentence | Note | ConfigTable | Code | FitTableBlock | ChartBlock | GraphBlock
         | LawBlock | SweepBlock | CrossFitsBlock | ExplorationBlock)


@dataclass
class Document:
    title: str
    date: str  # ISO date of the session's first action
    lab: str
    detail: str
    blocks: list[Block] = field(default_factory=list)

    def sentences(self) -> list[str]:
        return [b.text for b in self.blocks if isinstance(b, Sentence)]

    def charts(self) -> list[ChartBlock]:
        return [b for b in self.blocks if isinstance(b, ChartBlock)]


# -- the lab at a moment of the session -------------------------------------------------

class _Moment:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        # The lab as a view action sees it, with a ViewState of its own: replaying the
        # log's view actions onto it gives the charts as they were at each moment, and the
        # Lab's own view is never touched.
        self.replay = dataclasses.replace(lab.state, view=ViewState(), neuron_stats=[])
        self.fit_ids: list[str] = []  # fits made so far
        self.phase_ids: list[str] = []  # phase labellings made so far

    def apply(self, entry: LogEntry, action: Action) -> None:
        if action.view:
            try:
                action.apply(self.replay, self.lab, entry.result)
            except FeaturelabError:  # an action that raises has changed nothing
                pass
        elif (entry.result or {}).get("fit") in self.lab.fits:  # a fit made here
            self.fit_ids.append(entry.result["fit"])  # type: ignore[index]
        elif (entry.result or {}).get("phases_id") in self.lab.state.phases:
            self.phase_ids.append(entry.result["phases_id"])  # type: ignore[index]

    def phases(self) -> list[PhaseLabels]:
        return [self.lab.state.phases[p] for p in self.phase_ids if p in self.lab.state.phases]

    def phases_picture(self, entry: LogEntry) -> Picture | None:
        """The whole curve just labelled, its phases shaded: the chart of the metric as it
        is open now, unzoomed (a plain chart of it if none is)."""
        params = entry.params
        chart = self.replay.view.charts.get(params["metric"])
        chart = Chart(metric=params["metric"]) if chart is None else dataclasses.replace(
            chart, stats=list(chart.stats))
        chart = dataclasses.replace(chart, layer=params.get("layer") or chart.layer,
                                    x_range=None, y_range=None, fits_visible=False)
        return draw_chart(self.lab, chart, [params["experiment"]], phases=self.phases())

    def shows_fit(self, entry: LogEntry) -> bool:
        """Whether the panel drew this fit's curves on an open chart right away."""
        chart = self.replay.view.charts.get(entry.params["metric"])
        return (chart is not None and chart.fits_visible
                and entry.params["experiment"] in self.replay.view.viewed
                and (entry.params.get("layer") is None or chart.layer == entry.params["layer"]))

    def picture(self, metric: str) -> Picture | None:
        chart = self.replay.view.charts.get(metric)
        if chart is None:  # closed again
            return None
        fits = [self.lab.fits[f] for f in self.fit_ids if f in self.lab.fits]
        return draw_chart(self.lab, chart, list(self.replay.view.viewed), fits,
                          phases=self.phases())


# -- building ---------------------------------------------------------------------------


def config_table(experiment: Experiment) -> ConfigTable:
    config = experiment.config
    data = config.data
    if data.task in ("sin2", "formula"):
        text = f"{data.task}, train={data.n_train}, test={data.n_test}"
        if data.noise:
            text += f", noise={data.noise:g}"
        try:
            latex: str | None = "y = " + parse_formula(data.target_formula, data.dim).to_latex()
        except ConfigError:  # validated at creation; an older formula grammar may differ
            latex, text = None, f"{text}, y = {data.target_formula}"
    else:
        text, latex = data.label, None
    rows: list[tuple[str, str, str | None]] = []
    if config.name:
        rows.append(("Name", config.name, None))
    rows += [("Model", config.model.label, None), ("Data", text, latex),
             ("Optimizer", config.optimizer.label, None), ("Loss", config.loss, None),
             ("Observables", ", ".join(config.observables), None),
             ("Seed", str(config.seed), None)]
    if config.eval_every != 1:
        rows.append(("Test metrics", f"every {config.eval_every} steps", None))
    if config.stop.metric:
        rows.append(("Early stop", f"when {config.stop.text}", None))
    return ConfigTable(experiment.id, tuple(rows))


def fit_block(entry: LogEntry) -> FitTableBlock:
    result = entry.result or {}
    table = FitTable.from_dict(result["table"])
    params = entry.params
    layer = f" ({params['layer']})" if params.get("layer") else ""
    span = (f", steps {table.x_range[0]:g}–{table.x_range[1]:g}"
            if table.x_range is not None else "")
    fit = result.get("fit", "fit")
    caption = f"{fit}: {params['metric']}{layer} of {params['experiment']}{span}"
    if table.space == "log_y":
        caption += "; fitted on log10 y (R² and RMSE of log10 y)"
    return FitTableBlock(fit, caption, table.rows)


def _of(params: dict[str, Any]) -> str:
    return f"{params['metric']} ({params['layer']})" if params.get("layer") else params["metric"]


def group_fit_block(entry: LogEntry) -> FitTableBlock:
    result = entry.result or {}
    table = FitTable.from_dict(result["table"])
    params = entry.params
    span = (f", steps {table.x_range[0]:g}–{table.x_range[1]:g}"
            if table.x_range is not None else "")
    n = result.get("n", len(result.get("members", [])))
    caption = (f"mean {_of(params)} of group {params['group']} of {params['sweep']} "
               f"({n} run{'' if n == 1 else 's'}){span}")
    return FitTableBlock("fit_group", caption, table.rows)


def law_of(entry: LogEntry) -> LawFit:
    return LawFit.from_dict(entry.action, entry.result or {})  # type: ignore[arg-type]


def law_block(entry: LogEntry) -> LawBlock:
    fit = law_of(entry)
    summary = f"{summary_label(fit.summary)} of {_of(entry.params)}"
    caption = (f"{LAWS[fit.law].label.lower()} of {fit.knob} across {fit.sweep}: {summary}, "
               "mean over each group")
    r2_of = "the log-log line" if fit.law == "power" else "y"
    return LawBlock(caption, fit.knob, summary, fit.points, fit.left_out,
                    LAWS[fit.law].label, fit.latex, fit.r2, r2_of)


def law_picture(entry: LogEntry) -> Picture:
    fit = law_of(entry)
    points = fit.points
    r2 = f"R² = {fit.r2:.4f}" if math.isfinite(fit.r2) else "R² undefined"
    return draw_law([p.x for p in points], [p.mean for p in points],
                    [p.std for p in points], fit.fit,
                    title=f"{_of(entry.params)} across {fit.sweep}", xlabel=fit.knob,
                    ylabel=f"{summary_label(fit.summary)} of {_of(entry.params)}",
                    label=f"{LAWS[fit.law].label.lower()} {fit.equation}, {r2}")


def _shown(value: Any) -> str:
    """A knob value as people read it: 0.001, [10, 50, 50, 1], relu."""
    if isinstance(value, list):
        return "[" + ", ".join(map(_shown, value)) + "]"
    return value if isinstance(value, str) else repr(value)


class _Builder:
    def __init__(self, lab: Lab, detail: str, notes: NotebookNotes) -> None:
        self.lab = lab
        self.detail = detail
        self.notes = notes
        self.moment = _Moment(lab)
        self.blocks: list[Block] = []
        self.pending: list[str] = []  # charts changed since their last picture

    def picture(self, metric: str) -> None:
        picture = self.moment.picture(metric)
        charts = [b for b in self.blocks if isinstance(b, ChartBlock)]
        if picture is None or (charts and charts[-1].picture.png == picture.png):
            return  # nothing to draw, or the same picture as the one just shown
        self.add_picture(picture)

    def add_picture(self, picture: Picture) -> None:
        charts = sum(1 for b in self.blocks if isinstance(b, ChartBlock))
        self.blocks.append(ChartBlock(f"chart-{charts + 1}", picture))

    def flush(self) -> None:
        for metric in self.pending:
            self.picture(metric)
        self.pending = []

    def entry(self, entry: LogEntry, action: Action) -> None:
        """One non-view action (or any action in full detail) and what it adds: each
        action says which parts it has (Action.blog), this draws them."""
        parts = action.blog(entry.result, self.lab.state)
        self.moment.apply(entry, action)
        for kind, value in parts:
            if kind == "sentence":
                self.blocks.append(Sentence(value, (entry.id,)))
            elif kind == "note":
                self.blocks.append(Note(value, "lab.note"))
            elif kind == "config":
                self.blocks.append(config_table(value))
            elif kind == "code":
                self.blocks.append(Code(*value))
            elif kind == "fit":
                self.blocks.append(fit_block(entry))
                if self.moment.shows_fit(entry):  # the chart with its fitted curves
                    self.picture(entry.params["metric"])
            elif kind == "group_fit":
                self.blocks.append(group_fit_block(entry))
            elif kind == "law":
                self.blocks.append(law_block(entry))
                self.add_picture(law_picture(entry))
            elif kind == "phases":  # the sentence tells them; the picture shows them
                picture = self.moment.phases_picture(entry)
                if picture is not None:
                    self.add_picture(picture)
            else:
                raise ValueError(f"{action.type}: a blog part of unknown kind {kind!r}")

    def view_group(self, group: list[tuple[LogEntry, Action]]) -> None:
        """Condensed: consecutive view events as one sentence, then their charts."""
        sentences = [action.describe(entry.result) for entry, action in group]
        self.blocks.append(Sentence(merge_sentences(sentences),
                                    tuple(entry.id for entry, _ in group)))
        for entry, action in group:
            self.moment.apply(entry, action)
            chart = action.chart_changed()
            if chart is not None and chart not in self.pending:
                self.pending.append(chart)
        self.flush()

    def add_notes(self, texts: list[str]) -> None:
        if texts:
            self.flush()  # the note speaks of what was just looked at
            self.blocks += [Note(text, "notebook") for text in texts]

    def build(self, entries: list[LogEntry]) -> list[Block]:
        self.add_notes(self.notes.start)
        for group in _groups(entries, self.detail, self.notes):
            entry, action = group[0]
            if self.detail == "condensed" and action.view:
                self.view_group(group)
            else:  # full detail keeps a run of events on one chart pending
                chart = action.chart_changed()
                if self.pending and chart not in self.pending:
                    self.flush()
                self.entry(entry, action)
                if chart is not None and chart not in self.pending:
                    self.pending.append(chart)
            self.add_notes(self.notes.after.get(group[-1][0].id, []))
        self.flush()
        for sweep in self.lab.sweeps:
            self.sweep_section(sweep, entries)
        for exploration in self.lab.explorations.values():
            self.blocks.append(exploration_block(exploration))
        return self.blocks

    # -- a section per sweep ------------------------------------------------------------

    def sweep_section(self, sweep_id: str, entries: list[LogEntry]) -> None:
        """The sweep's grid and groups with their final values, a banded chart per metric
        (from lab.bands, the panel's numbers) and the fits across its runs."""
        lab, sweep = self.lab, self.lab.sweeps[sweep_id]
        fits = [e for e in entries if e.type in ("fit_group", "fit_across")
                and e.params.get("sweep") == sweep_id and e.result
                and ("table" in e.result or "points" in e.result)]
        metrics = list(dict.fromkeys((e.params["metric"], e.params.get("layer"))
                                     for e in fits))
        base = lab.experiments.get(sweep.base)
        observables = base.config.observables if base is not None else ()
        metrics += [(m, None) for m in ("train_loss", "test_loss")
                    if m in observables and (m, None) not in metrics]
        frames = {}
        for metric, layer in metrics[:SWEEP_METRICS]:
            try:
                frames[(metric, layer)] = lab.bands(metric, sweep_id, layer)
            except FeaturelabError:  # no finished run, or no such series: no column
                continue
        groups = []
        for group, members in sweep.groups.items():
            finals: list[tuple[float, float, int] | None] = []
            for frame in frames.values():
                part = frame[frame["group"] == group]
                last = part.iloc[-1] if len(part) else None
                finals.append(None if last is None else
                              (float(last["mean"]), float(last["std"]), int(last["n"])))
            seeds = tuple(int(sweep.values[m].get("seed", lab.experiments[m].config.seed))
                          for m in members)
            done = sum(1 for m in members if m in lab.latest
                       and lab.runs[lab.latest[m]].status == "finished")
            groups.append(SweepGroup(group, members, seeds, done, tuple(finals)))
        knobs = tuple((path, tuple(dict.fromkeys(_shown(v.get(path))
                                                 for v in sweep.values.values())))
                      for path in sweep.knobs)
        number = sweep_id.removeprefix("sweep_")
        title = f"Sweep {number}" + (f", {sweep.name!r}" if sweep.name else "")
        plural = "" if len(sweep.members) == 1 else "s"
        summary = (f"{sweep_id}: {len(sweep.members)} experiment{plural} based on "
                   f"{sweep.base}, in {len(sweep.groups)} group"
                   f"{'' if len(sweep.groups) == 1 else 's'} of runs that differ only by seed"
                   + ("" if frames else "; no finished run yet"))
        columns = tuple(f"{m} ({layer})" if layer else m for m, layer in frames)
        self.blocks.append(SweepBlock(sweep_id, title, summary, knobs, columns,
                                      tuple(groups)))
        for (metric, layer), frame in frames.items():
            shown = {}
            for entry in fits:  # the latest group fit of each group on this metric
                if entry.type == "fit_group" and entry.params["metric"] == metric \
                        and entry.params.get("layer") == layer:
                    table = FitTable.from_dict(entry.result["table"])  # type: ignore[index]
                    if table.best is not None:
                        shown[entry.params["group"]] = (table.best, table.x_range)
            name = f"{metric} ({layer})" if layer else metric
            picture = draw_bands(frame, f"{name} of {sweep_id}", name, shown)
            if picture is not None:
                self.add_picture(picture)
        rows = []
        for entry in fits:
            result = entry.result or {}
            if entry.type == "fit_group":
                table = FitTable.from_dict(result["table"])
                best = table.best
                if best is None:
                    continue
                n = result.get("n", len(result.get("members", [])))
                rows.append((f"{best.label} (best of {len(table.rows)})",
                             f"mean {_of(entry.params)} of {entry.params['group']}, "
                             f"{n} run{'' if n == 1 else 's'}",
                             best.r2, best.latex,
                             ", ".join(map(_fmt_coef, best.coefficients))))
            else:
                law = law_of(entry)
                rows.append((LAWS[law.law].label,
                             f"{summary_label(law.summary)} of {_of(entry.params)} against "
                             f"{law.knob}, {len(law.points)} groups", law.r2, law.latex,
                             f"a = {_fmt_coef(law.a)}, b = {_fmt_coef(law.b)}"))
        if rows:
            self.blocks.append(CrossFitsBlock(sweep_id, tuple(rows)))


def exploration_block(exploration: Exploration) -> ExplorationBlock:
    """The metrics people read first (coverage, repeats, time to keep, plateau), then
    one row per iteration."""
    m = metrics(exploration)

    def share(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    best = m["best"]
    rows = (
        ("iterations", str(m["iterations"])),
        ("budget", ", ".join(f"{k} {v:g}" for k, v in exploration.budget.items()) or "none"),
        ("knob coverage", f"{share(m['knob_coverage'])} ({len(m['knobs_touched'])} of "
                          f"{m['knobs_in_menu']} knobs)"),
        ("(knob, value) pair coverage", share(m["pair_coverage"])),
        ("repeat rate", f"{share(m['repeat_rate'])} ({m['repeats']} repeats, "
                        f"{m['replicates']} deliberate)"),
        ("repeats refused by the rail", f"{m['refused']} (attempted repeat rate "
                                        f"{share(m['attempted_repeat_rate'])})"),
        (f"repeat rate, last {RECENT}", share(m[f"repeat_rate_last_{RECENT}"])),
        ("mean repeat lag", "-" if m["mean_repeat_lag"] is None else
         f"{m['mean_repeat_lag']:.1f} iterations"),
        ("keeps", f"{m['keeps']} ({share(m['keep_rate'])} of judged iterations)"),
        ("time to first keep", _iteration(m["time_to_first_keep"])),
        ("time to best keep", _iteration(m["time_to_best_keep"])),
        ("longest plateau", _iterations(m["longest_plateau"])),
        (f"best {exploration.metric}", "-" if best["value"] is None else
         f"{best['value']:.4g} ({best['experiment']})"),
    )
    iterations = tuple(
        (str(it.index), ", ".join(f"{k}={_shown(v)}" for k, v in it.changes.items()),
         "-" if it.value is None else f"{it.value:.4g}", it.decision or "not judged",
         it.reason) for it in exploration.iterations)
    number = exploration.id.removeprefix("explore_")
    title = f"Exploration {number}" + (f", {exploration.name!r}" if exploration.name else "")
    summary = (f"{exploration.id}: {exploration.goal}imise {exploration.metric} from "
               f"{exploration.base} over {len(exploration.menu)} knobs"
               + (", repeats refused (block_repeat)" if exploration.rail else ""))
    return ExplorationBlock(exploration.id, title, summary, rows, iterations)


def _iterations(n: int) -> str:
    return f"{n} iteration{'' if n == 1 else 's'}"


def _iteration(index: int | None) -> str:
    return "-" if index is None else f"iteration {index}"


def _groups(entries: list[LogEntry], detail: str, notes: NotebookNotes
            ) -> Iterator[list[tuple[LogEntry, Action]]]:
    """Full: one entry each. Condensed: runs of view entries, broken by notes."""
    group: list[tuple[LogEntry, Action]] = []
    for entry in entries:
        action = entry.action
        if detail == "condensed" and action.view:
            group.append((entry, action))
            if entry.id in notes.after:
                yield group
                group = []
            continue
        if group:
            yield group
            group = []
        yield [(entry, action)]
    if group:
        yield group


def merge_sentences(sentences: list[str]) -> str:
    """"Opened the x chart." + "Zoomed ..." -> "Opened the x chart; zoomed ..."."""
    parts = [s.strip().rstrip(".") for s in sentences if s.strip()]
    if not parts:
        return ""
    parts = [parts[0]] + [p[:1].lower() + p[1:] if p[1:2].islower() else p for p in parts[1:]]
    return "; ".join(parts) + "."


def session_date(entries: list[LogEntry]) -> str:
    when = entries[0].time if entries else dt.datetime.now(dt.timezone.utc).timestamp()
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).date().isoformat()


def _drafted(entries: list[LogEntry], notes: NotebookNotes) -> list[LogEntry]:
    """The entries the draft tells of (Action.in_draft: not its own exports); a note
    written after a left-out one goes after the entry before it."""
    kept: list[LogEntry] = []
    for entry in entries:
        if entry.action.in_draft:
            kept.append(entry)
            continue
        moved = notes.after.pop(entry.id, [])
        if moved:
            target = notes.after.setdefault(kept[-1].id, []) if kept else notes.start
            target.extend(moved)
    return kept


def build_document(lab: Lab, detail: str = "full", title: str | None = None,
                   notebook: Any = None) -> Document:
    """The blog draft of a lab's session, with the markdown cells of `notebook` (a path
    or a notebook dict) as the researcher's notes."""
    if detail not in DETAILS:
        raise ConfigError("detail", detail, " or ".join(repr(d) for d in DETAILS))
    entries = list(lab.log)
    notes = notebook_notes(read_notebook(notebook), entries, take_title=title is None) \
        if notebook is not None else NotebookNotes()
    entries = _drafted(entries, notes)
    graph = build_graph(lab)
    document = Document(title or notes.title or lab.name, session_date(entries), lab.name,
                        detail)
    document.blocks.append(GraphBlock(graph_png(graph), graph_summary(graph)))
    document.blocks += _Builder(lab, detail, notes).build(entries)
    return document


def export_blog(lab: Lab, path: str | Path, detail: str = "full", title: str | None = None,
                notebook: Any = None) -> Path:
    """Writes the draft: `.md` (Jekyll front matter, pictures in `<stem>_files/` beside
    it) or `.html` (one standalone page, pictures and math inside)."""
    from featurelab.export.markdown import render_markdown

    path = Path(path)
    if path.suffix.lower() not in (".md", ".markdown", ".html", ".htm"):
        raise ConfigError("path", str(path), "a .md or .html file")
    document = build_document(lab, detail=detail, title=title, notebook=notebook)
    files_dir = f"{path.stem}_files"
    text, files = render_markdown(document, files_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".html", ".htm"):
        from featurelab.export.html_page import render_html

        path.write_text(render_html(document, text, files), encoding="utf-8")
        return path
    for name, data in files.items():
        target = path.parent / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    path.write_text(text, encoding="utf-8")
    return path
