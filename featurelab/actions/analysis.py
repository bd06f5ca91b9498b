"""Actions that add knowledge: neuron stats, DIY statistics, fits, notes, exports."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from featurelab.actions.base import Action, BlogPart, Context, GraphLike, action, call
from featurelab.actions.compare import Comparison, compare_fits
from featurelab.actions.files import check_read, check_write
from featurelab.actions.views import chart_metrics
from featurelab.engine.fit import DEFAULT_FAMILIES, FAMILIES, FitTable, fit_curves
from featurelab.engine.stats import ACTIVATIONS, WEIGHTS
from featurelab.engine.summaries import measured
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.state import LabState


def statistic_source(fn: Callable) -> str:
    """A function's source without its decorators, for the log and replay."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise FeaturelabError(f"the source of {getattr(fn, '__name__', fn)!r} cannot be found; "
                              "pass source= as text") from None
    lines = source.splitlines(keepends=True)
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. a lambda's line: strip one-line decorators only
        tree = None
    if tree is not None and tree.body and isinstance(tree.body[0], ast.FunctionDef):
        # Decorators may span lines (@lab.statistic(\n "name")): drop up to where the
        # last one ends, keeping any comment between it and `def`.
        decorators = tree.body[0].decorator_list
        return "".join(lines[decorators[-1].end_lineno:]) if decorators else source
    while lines and lines[0].lstrip().startswith("@"):
        lines.pop(0)
    return "".join(lines)


def _function_name(source: str) -> str | None:
    """The name if the source is exactly one plain function definition."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef) \
            and not tree.body[0].decorator_list:
        return tree.body[0].name
    return None


def ended_series(state: LabState, experiment: str, metric: str, layer: str | None,
                 verb: str) -> tuple[Any, Any]:
    """(steps, values) of a metric with one value per step of an ended run: what a fit or
    a phase labelling reads; an error naming what is wrong otherwise."""
    run = state.results(experiment)
    if not run.done:
        raise FeaturelabError(f"{experiment} is still {run.status}; {verb} it once it has "
                              "ended")
    steps, values = state.metric_series(experiment, metric, layer)
    if values.ndim != 1:
        raise ConfigError("metric", metric, "a metric with one value per step",
                          hint=f"it has {values.shape[1]} values per step (one per neuron); "
                          f"{verb} a per-layer statistic")
    return steps, values


@action
class AddNeuronStat(Action):
    """Shows a neuron statistic of one layer (computed on snapshots if not recorded)."""

    type: ClassVar[str] = "add_neuron_stat"
    view: ClassVar[bool] = True
    stat: str
    layer: str
    chart: str = "hidden_activations"

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        state.statistics[self.stat]  # raises naming the known statistics
        if state.statistics.base(self.stat) == WEIGHTS:
            raise ConfigError("stat", self.stat, "a statistic on activations",
                              hint=f"{self.stat!r} is on weights: record it as an observable "
                                   f"('{self.stat}@embed.weight') and open its chart")
        if self.chart not in state.view.charts and self.chart not in chart_metrics(state):
            raise ConfigError("chart", self.chart, "one of " + ", ".join(chart_metrics(state)))
        points = state.hook_points()
        if self.layer not in points:
            raise ConfigError("layer", self.layer, "one of " + ", ".join(points))
        chart = state.view.chart(self.chart)
        if self.stat not in chart.stats:
            chart.stats.append(self.stat)
        if (self.stat, self.layer) not in state.neuron_stats:
            state.neuron_stats.append((self.stat, self.layer))
        return {}, chart

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        if self.stat in state.statistics:
            graph.metric(self.stat)
        return None

    def to_code(self) -> str:
        chart = None if self.chart == "hidden_activations" else self.chart
        return call("lab.add_neuron_stat", self.stat, layer=self.layer, chart=chart)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Added neuron stat {self.stat} on {self.layer}."

    def chart_changed(self) -> str | None:
        return self.chart


@action
class DefineStatistic(Action):
    """Defines a DIY statistic from source text, on activations or on another statistic."""

    type: ClassVar[str] = "define_statistic"
    runs_code: ClassVar[bool] = True
    name: str
    source: str
    on: str = ACTIVATIONS

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        # An untrusted one never runs, so its probe cannot say whether it gives one value
        # per step: what its author's probe found (the recorded level) says it.
        stat = state.statistics.define(self.name, source=self.source, on=self.on,
                                       trusted=ctx.trusted,
                                       scalar=(recorded or {}).get("level") == 2,
                                       restoring=recorded is not None)
        result: dict[str, Any] = {"level": state.statistics.level(self.name)}
        if not stat.trusted:
            result["disabled"] = "not signed by this user: its code does not run"
        return result, stat

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        return graph.metric(self.name) if self.name in state.statistics else None

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        return [*super().blog(result, state),
                ("code", (f"DIY statistic {self.name}", self.source.rstrip("\n")))]

    def to_code(self) -> str:
        on = None if self.on == ACTIVATIONS else self.on
        fn = _function_name(self.source)
        if fn is None or fn == "lab":  # not one plain function (or one that would
            # rebind `lab` for the cells after it): keep it a string
            return call("lab.define_statistic", self.name, source=self.source, on=on)
        # The researcher's own function, as they would write it in a cell.
        decorator = call("lab.statistic", self.name, on=on)
        return f"@{decorator}\n{self.source.rstrip()}\n"

    def describe(self, result: dict[str, Any] | None = None) -> str:
        on = "" if self.on == ACTIVATIONS else f" on {self.on}"
        return f"Defined the DIY statistic {self.name}{on}."


@action
class FitCurves(Action):
    """Fits laws (sigmoid, exponential, power, log-power, linear) to a metric."""

    type: ClassVar[str] = "fit"
    experiment: str
    metric: str
    layer: str | None = None
    x_range: tuple[float, float] | None = None
    families: list[str] | None = None
    log_y: bool = False  # True: least squares on log10 y (a loss on a log axis)

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if recorded is not None and "table" in recorded:
            table = FitTable.from_dict(recorded["table"])
        else:
            unknown = [f for f in self.families or [] if f not in FAMILIES]
            if unknown:
                raise ConfigError("families", unknown[0], "some of " + ", ".join(FAMILIES))
            steps, values = ended_series(state, self.experiment, self.metric, self.layer,
                                         "fit")
            # test metrics measured every eval_every steps are NaN between: fitted on
            # the steps they were measured at
            steps, values = measured(steps, values)
            table = fit_curves(steps, values, x_range=self.x_range, families=self.families,
                               log_y=bool(self.log_y))
        fit = state.add_fit(self.experiment, self.metric, self.layer, table)
        return {"fit": fit.id, "table": table.to_dict()}, table

    def compare(self, recorded: dict[str, Any], replayed: dict[str, Any],
                state: LabState) -> Comparison:
        if "table" not in recorded:
            return [], []
        what = f"{recorded.get('fit', 'fit')} of {self.experiment} {self.metric}"
        return compare_fits(what, recorded, replayed)

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        fit = state.fits.get(result.get("fit", ""))
        if fit is None:
            return None
        best = fit.table.best
        graph.node(fit.id, "fit", label=fit.id, metric=fit.metric, layer=fit.layer,
                   best=best.family if best else None, r2=best.r2 if best else None)
        edge = {"layer": fit.layer,
                "x_range": list(fit.table.x_range) if fit.table.x_range else None}
        if fit.experiment in graph.latest_run:
            graph.edge(fit.id, graph.latest_run[fit.experiment], "fitted_to", **edge)
        graph.edge(fit.id, graph.metric(fit.metric), "fitted_to", **edge)
        return fit.id

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        parts = super().blog(result, state)
        return [*parts, ("fit", result)] if result and "table" in result else parts

    def to_code(self) -> str:
        return call("lab.fit", self.experiment, self.metric, layer=self.layer,
                    x_range=self.x_range, families=self.families, log_y=self.log_y or None)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        names = [FAMILIES[f].label.lower() for f in self.families or DEFAULT_FAMILIES]
        families = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        layer = f" ({self.layer})" if self.layer else ""
        span = (f" on steps {self.x_range[0]:g}-{self.x_range[1]:g}"
                if self.x_range is not None else "")
        space = " in log y" if self.log_y else ""
        sentence = (f"Fitted {families} to {self.metric}{layer} of {self.experiment}{span}"
                    f"{space}")
        if result and "table" in result:
            best = FitTable.from_dict(result["table"]).best
            if best is not None:
                sentence += f"; best: {best.label.lower()}, R^2{space} = {best.r2:.3f}"
        return sentence + "."


@action
class Note(Action):
    """The researcher's own words, kept in the log and the blog."""

    type: ClassVar[str] = "note"
    text: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        state.notes.append(self.text)
        return {}, self.text

    def graph(self, graph: GraphLike, result: dict[str, Any], state: LabState) -> str | None:
        node = graph.node(f"note_{graph.count('note')}", "note", label=self.text)
        if graph.subject is not None:
            graph.edge(node, graph.subject, "about")
        return None  # a note is about what came before it, not a subject itself

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        return [("note", self.text)]  # the researcher's words, not a sentence about them

    def to_code(self) -> str:
        return call("lab.note", self.text)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Noted: {self.text}"


@action
class ExportLog(Action):
    """Writes the action log as JSONL (one action per line) for replay and analysis.

    An agent writes it only inside the lab's folder (the store's directory; the working
    directory for an in-memory lab), and no one over the lab's store (actions/files.py)."""

    type: ClassVar[str] = "export_log"
    not_replayed: ClassVar[str | None] = "it writes a file"
    path: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if recorded is not None:  # restoring: the file was written back then
            return recorded, Path(self.path)
        try:
            path = ctx.log.to_jsonl(self.path)
        except OSError as exc:
            raise FeaturelabError(f"the log cannot be written to {self.path}: "
                                  f"{exc.strerror or exc}") from None
        return {"actions": len(ctx.log)}, path

    def permit(self, actor: str, ctx: Context) -> None:
        check_write(self.path, ctx.store, actor, suffix=".jsonl")

    def to_code(self) -> str:
        return call("lab.export_log", self.path)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Exported the action log to {self.path}."


BLOG_SUFFIXES = (".md", ".markdown", ".html", ".htm")
BLOG_DETAILS = ("full", "condensed")


@action
class ExportBlog(Action):
    """Writes the session as a blog draft (`.md` with its pictures beside it, or one
    `.html` page): step 7 of the reference session, from a cell or the panel's Write-up
    section.

    It is logged so that a click is a cell like any other, but it is not an event of the
    research: the draft leaves it out, so two exports of one lab write the same text. The
    draft is written while the action is applied: an export that fails (a folder that is
    a file, a full disk, a damaged notebook) is an error and logs nothing, so the log
    never says a draft was written when none was."""

    type: ClassVar[str] = "export_blog"
    not_replayed: ClassVar[str | None] = "it writes a file"
    # Restart & Run All writes the draft again, from the lab as the cells rebuilt it.
    runs_in_cells: ClassVar[bool] = True
    in_draft: ClassVar[bool] = False
    path: str
    detail: str = "full"
    title: str | None = None
    notebook: str | None = None

    def _check(self) -> None:
        if not self.path.strip():
            raise ConfigError("path", self.path, "a .md or .html file")
        if Path(self.path).suffix.lower() not in BLOG_SUFFIXES:
            raise ConfigError("path", self.path, "a .md or .html file",
                              hint="Markdown (pictures in <name>_files/ beside it) or one "
                              "standalone HTML page")
        if self.detail not in BLOG_DETAILS:
            raise ConfigError("detail", self.detail, " or ".join(map(repr, BLOG_DETAILS)),
                              hint="full tells every event; condensed merges consecutive "
                              "view events")
        if self.notebook is not None:
            import nbformat

            try:
                nbformat.read(self.notebook, as_version=4)
            except (OSError, ValueError, nbformat.reader.NotJSONError) as exc:
                raise ConfigError("notebook", self.notebook, "a readable .ipynb notebook",
                                  hint=f"its markdown cells become the draft's notes; "
                                  f"reading it failed: {exc}") from None

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if recorded is not None:  # restoring: the file was written back then
            return recorded, Path(self.path)
        self._check()
        try:
            path = ctx.write_blog(self.path, self.detail, self.title, self.notebook)
        except OSError as exc:
            where = exc.filename or self.path
            raise FeaturelabError(f"the blog draft cannot be written to {self.path}: "
                                  f"{exc.strerror or exc} ({where})") from None
        return {"path": self.path, "detail": self.detail}, path

    def permit(self, actor: str, ctx: Context) -> None:
        check_write(self.path, ctx.store, actor, suffix=BLOG_SUFFIXES)
        # its pictures go into <stem>_files/ beside it: the same rules (a symlink named so
        # must not lead an agent's export out of the lab's folder)
        path = Path(self.path)
        if path.suffix.lower() in (".md", ".markdown"):
            check_write(path.parent / f"{path.stem}_files", ctx.store, actor)
        if actor == "agent" and self.notebook is not None:
            check_read(self.notebook, ctx.store, "notebook")

    def to_code(self) -> str:
        kwargs: dict[str, Any] = {}
        if self.detail != "full":
            kwargs["detail"] = self.detail
        if self.title is not None:
            kwargs["title"] = self.title
        if self.notebook is not None:
            kwargs["notebook"] = self.notebook
        return call("lab.export_blog", self.path, **kwargs)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Exported the blog draft to {self.path}."
