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

from featurelab.engine.observables import NAMED_OBSERVABLES
from featurelab.engine.stats import INPUTS
from featurelab.export.text import clean_data, plain_texts

if TYPE_CHECKING:
    from featurelab.lab import Lab

# Left to right: the researcher's words, results, experiments, what they measure.
COLUMNS = ("note", "fit", "run", "experiment", "observable", "statistic", "activations",
           "weights")
KIND_COLORS = {"experiment": "#3b82f6", "run": "#60a5fa", "observable": "#10b981",
               "statistic": "#f97316", "activations": "#64748b", "weights": "#64748b",
               "fit": "#d946ef", "note": "#ca8a04"}
KIND_FILLS = {"experiment": "#dbeafe", "run": "#eff6ff", "observable": "#d1fae5",
              "statistic": "#ffedd5", "activations": "#f1f5f9", "weights": "#f1f5f9",
              "fit": "#fae8ff", "note": "#fef9c3"}
RELATION_COLORS = {"based_on": "#1d4ed8", "run_of": "#60a5fa", "measured_by": "#059669",
                   "defined_on": "#ea580c", "fitted_to": "#a21caf", "about": "#78716c"}


class _Graph:
    """The knowledge graph as actions add to it (actions.base.GraphLike), on networkx."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.nx = nx.DiGraph(lab=lab.name)
        self.latest_run: dict[str, str] = {}  # experiment -> its run at this point of the log
        self.subject: str | None = None  # the node the last action that made one made

    def node(self, node: str, kind: str, **attrs: Any) -> str:
        self.nx.add_node(node, kind=kind, **attrs)
        return node

    def edge(self, source: str, target: str, relation: str, **attrs: Any) -> None:
        if source not in self.nx or target not in self.nx:
            return  # a deleted experiment has no node: what pointed at it points nowhere
        self.nx.add_edge(source, target, relation=relation, **attrs)

    def count(self, kind: str) -> int:
        return sum(1 for _, k in self.nx.nodes(data="kind") if k == kind)

    def metric(self, name: str) -> str:
        """The node of an observable or statistic, added (with what it is defined on)."""
        statistics = self.lab.statistics
        if name in statistics:
            node = f"statistic:{name}"
            if node not in self.nx:
                stat = statistics[name]
                self.node(node, "statistic", label=name, builtin=stat.builtin,
                          level=statistics.level(name), on=stat.on, source=stat.source or None)
                target = stat.on if stat.on in INPUTS else self.metric(stat.on)
                if target in INPUTS and target not in self.nx:  # what a chain starts from
                    self.node(target, target, label=target)
                self.edge(node, target, "defined_on")
            return node
        node = f"observable:{name}"
        if node not in self.nx:
            self.node(node, "observable", label=name,
                      description=NAMED_OBSERVABLES.get(name, ""))
        return node


def build_graph(lab: Lab) -> nx.DiGraph:
    """The session's knowledge graph: each action adds its part (Action.graph)."""
    graph = _Graph(lab)
    for entry in lab.log:
        action = entry.action
        made = action.graph(graph, entry.result or {}, lab.state)
        if made is not None:
            graph.subject = made
    return graph.nx


def graph_json(graph: nx.DiGraph) -> dict[str, Any]:
    # cleaned: a lone surrogate in a name would be written as "\\ud800", which strict
    # JSON readers reject
    return clean_data(nx.node_link_data(graph, edges="edges"))


def graph_summary(graph: nx.DiGraph) -> str:
    counts: dict[str, int] = {}
    for _, kind in graph.nodes(data="kind"):
        counts[str(kind)] = counts.get(str(kind), 0) + 1
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
        columns[str(kind)].append(node)
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
    # Arrows are clipped to the boxes they join, which have their size only once drawn;
    # names and notes in the boxes are text, never mathtext ("$" in a note).
    plain_texts(fig)
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
    plain_texts(fig)
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
