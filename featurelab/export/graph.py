"""The knowledge graph of a session: what was made and how the things relate.

Nodes (attribute `kind`): experiment, run, observable, statistic, activations, fit,
note. Edges (attribute `relation`):

    exp_1 --based_on--> exp_0              run --run_of--> experiment
    experiment --measured_by--> observable or statistic (attribute layer if one)
    statistic --defined_on--> statistic or activations
    fit --fitted_to--> the run and the metric it fitted (attributes layer, x_range)
    note --about--> what the action before it made (experiment, run, statistic, fit)

It is a networkx DiGraph; JSON is networkx's node-link format.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from featurelab.observables import SCALAR_OBSERVABLES
from featurelab.stats import ACTIVATIONS

if TYPE_CHECKING:
    from featurelab.lab import Lab

# Left to right: the researcher's words, results, experiments, what they measure.
COLUMNS = ("note", "fit", "run", "experiment", "observable", "statistic", "activations")
KIND_COLORS = {"experiment": "#3b82f6", "run": "#60a5fa", "observable": "#10b981",
               "statistic": "#f97316", "activations": "#64748b", "fit": "#d946ef",
               "note": "#ca8a04"}
KIND_FILLS = {"experiment": "#dbeafe", "run": "#eff6ff", "observable": "#d1fae5",
              "statistic": "#ffedd5", "activations": "#f1f5f9", "fit": "#fae8ff",
              "note": "#fef9c3"}
RELATION_COLORS = {"based_on": "#1d4ed8", "run_of": "#60a5fa", "measured_by": "#059669",
                   "defined_on": "#ea580c", "fitted_to": "#a21caf", "about": "#78716c"}


def _metric_node(lab: Lab, graph: nx.DiGraph, name: str) -> str:
    """The node of an observable or statistic, added (with what it is defined on)."""
    if name in lab.statistics:
        node = f"statistic:{name}"
        if node not in graph:
            stat = lab.statistics[name]
            graph.add_node(node, kind="statistic", label=name, builtin=stat.builtin,
                           level=lab.statistics.level(name), on=stat.on,
                           source=stat.source or None)
            target = ACTIVATIONS if stat.on == ACTIVATIONS else _metric_node(lab, graph,
                                                                              stat.on)
            if target == ACTIVATIONS and target not in graph:
                graph.add_node(ACTIVATIONS, kind="activations", label="activations")
            graph.add_edge(node, target, relation="defined_on")
        return node
    node = f"observable:{name}"
    if node not in graph:
        graph.add_node(node, kind="observable", label=name,
                       description=SCALAR_OBSERVABLES.get(name, ""))
    return node


def build_graph(lab: Lab) -> nx.DiGraph:
    graph = nx.DiGraph(lab=lab.name)
    latest_run: dict[str, str] = {}  # experiment -> its run at this point of the log
    subject: str | None = None  # the node the last non-view action made
    notes = 0
    for entry in lab.log:
        result = entry.result or {}
        if entry.type == "create_experiment" and result.get("experiment") in lab.experiments:
            exp = lab.experiments[result["experiment"]]
            graph.add_node(exp.id, kind="experiment", label=exp.id, name=exp.name or None,
                           config=exp.config.label, config_hash=exp.config.content_hash())
            if exp.based_on:
                graph.add_edge(exp.id, exp.based_on, relation="based_on")
            for spec in exp.config.observables:
                name, _, layer = spec.partition("@")
                graph.add_edge(exp.id, _metric_node(lab, graph, name), relation="measured_by",
                               layer=layer or None)
            subject = exp.id
        elif entry.type == "run" and result.get("run") in lab.runs:
            run = lab.runs[result["run"]]
            node = f"run:{run.id}"
            graph.add_node(node, kind="run", label=f"run of {run.experiment}",
                           status=run.status, steps=run.steps_done,
                           reused=bool(result.get("reused")))
            graph.add_edge(node, run.experiment, relation="run_of")
            latest_run[run.experiment] = node
            subject = node
        elif entry.type == "define_statistic" and entry.params["name"] in lab.statistics:
            subject = _metric_node(lab, graph, entry.params["name"])
        elif entry.type == "add_neuron_stat" and entry.params["stat"] in lab.statistics:
            _metric_node(lab, graph, entry.params["stat"])
        elif entry.type == "fit" and result.get("fit") in lab.fits:
            fit = lab.fits[result["fit"]]
            best = fit.table.best
            graph.add_node(fit.id, kind="fit", label=fit.id, metric=fit.metric,
                           layer=fit.layer, best=best.family if best else None,
                           r2=best.r2 if best else None)
            edge = {"relation": "fitted_to", "layer": fit.layer,
                    "x_range": list(fit.table.x_range) if fit.table.x_range else None}
            if fit.experiment in latest_run:
                graph.add_edge(fit.id, latest_run[fit.experiment], **edge)
            graph.add_edge(fit.id, _metric_node(lab, graph, fit.metric), **edge)
            subject = fit.id
        elif entry.type == "note":
            node = f"note_{notes}"
            notes += 1
            graph.add_node(node, kind="note", label=entry.params.get("text", ""))
            if subject is not None:
                graph.add_edge(node, subject, relation="about")
    return graph


def graph_json(graph: nx.DiGraph) -> dict[str, Any]:
    return nx.node_link_data(graph, edges="edges")


def graph_summary(graph: nx.DiGraph) -> str:
    counts: dict[str, int] = {}
    for _, kind in graph.nodes(data="kind"):
        counts[kind] = counts.get(kind, 0) + 1
    parts = [f"{counts[k]} {k}{'s' if counts[k] != 1 and k != 'activations' else ''}"
             for k in ("experiment", "run", "observable", "statistic", "fit", "note")
             if counts.get(k)]
    return ", ".join(parts) + f"; {graph.number_of_edges()} relations" if parts else "empty"


def _label(data: dict[str, Any]) -> str:
    kind, label = data.get("kind"), str(data.get("label", ""))
    if kind == "experiment":
        extra = data.get("name") or data.get("config", "").split(";")[0]
        return f"{label}\n{textwrap.shorten(str(extra), 28)}"
    if kind == "run":
        return f"{label}\n{data.get('status')}, {data.get('steps')} steps"
    if kind == "fit":
        best = data.get("best")
        r2 = data.get("r2")
        return f"{label}\n{best} R²={r2:.3f}" if best and r2 is not None else label
    if kind == "statistic" and not data.get("builtin"):
        return f"{label}\n(DIY)"
    if kind == "note":
        return "\n".join(textwrap.wrap(textwrap.shorten(label, 60), 22))
    return label


def _layout(graph: nx.DiGraph, kinds: list[str]) -> dict[str, tuple[float, float]]:
    """Columns by kind (COLUMNS order); within one, the order the session made them."""
    columns: dict[str, list[str]] = {k: [] for k in kinds}
    for node, kind in graph.nodes(data="kind"):
        columns[kind].append(node)
    return {n: (float(x), (len(nodes) - 1) / 2 - i)
            for x, nodes in enumerate(columns.values()) for i, n in enumerate(nodes)}


def _bend(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Curvature of an arrow: slight between neighbouring columns; more where it would
    run through the boxes of the columns between, or along its own column."""
    span = abs(a[0] - b[0])
    return 0.5 if span == 0 else 0.08 if span == 1 else 0.3


def _draw(fig: Any, ax: Any, graph: nx.DiGraph, kinds: list[str]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    where = _layout(graph, kinds)
    boxes = {}
    for node, (x, y) in where.items():
        kind = graph.nodes[node]["kind"]
        boxes[node] = ax.text(x, y, _label(graph.nodes[node]), ha="center", va="center",
                              fontsize=8, zorder=3,
                              bbox={"boxstyle": "round,pad=0.45", "linewidth": 1.2,
                                    "facecolor": KIND_FILLS[kind],
                                    "edgecolor": KIND_COLORS[kind]})
    ax.set_xlim(-0.6, len(kinds) - 0.4)
    half = max(abs(y) for _, y in where.values()) + 0.7
    ax.set_ylim(-half, half)
    # Arrows are clipped to the boxes they join, which have their size only once drawn.
    fig.canvas.draw()
    for a, b, relation in graph.edges(data="relation"):
        ax.annotate("", xy=where[b], xytext=where[a], zorder=2, arrowprops={
            "arrowstyle": "-|>", "color": RELATION_COLORS.get(relation, "#999999"),
            "linewidth": 1.2, "mutation_scale": 12, "shrinkA": 1, "shrinkB": 1,
            "patchA": boxes[a].get_bbox_patch(), "patchB": boxes[b].get_bbox_patch(),
            "connectionstyle": f"arc3,rad={_bend(where[a], where[b])}"})
    relations = sorted({r for _, _, r in graph.edges(data="relation")})
    handles = [Line2D([0], [0], color=RELATION_COLORS.get(r, "#999"), label=r)
               for r in relations]
    handles += [Patch(facecolor=KIND_FILLS[k], edgecolor=KIND_COLORS[k], label=k)
                for k in kinds]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False)


def graph_png(graph: nx.DiGraph) -> bytes:
    """The graph left to right by kind, each node a labelled box, each edge an arrow
    coloured by its relation."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kinds = [k for k in COLUMNS if any(d == k for _, d in graph.nodes(data="kind"))]
    tallest = max((sum(1 for _, d in graph.nodes(data="kind") if d == k) for k in kinds),
                  default=1)
    fig = Figure(figsize=(1.9 * max(len(kinds), 3) + 1.6, 0.7 * tallest + 1.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 0.86, 1.0))
    ax.set_axis_off()
    if kinds:
        _draw(fig, ax, graph, kinds)
    else:
        ax.text(0.5, 0.5, "nothing recorded yet", ha="center", va="center")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def export_graph(lab: Lab, path: str | Path) -> Path:
    """Writes `<path>.json` (node-link) and `<path>.png` beside it; returns the JSON path."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".png"):
        path = path.with_suffix("")
    graph = build_graph(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(path.name + ".json")
    target.write_text(json.dumps(graph_json(graph), indent=1, allow_nan=False) + "\n",
                      encoding="utf-8")
    path.with_name(path.name + ".png").write_bytes(graph_png(graph))
    return target
