"""The panel's state as a typed model: exactly what `lab_state(lab)` sends to js/src.

`PanelState` and the TypedDicts under it describe the JSON mirror of a lab that the
panel renders (the anywidget trait `state`). `lab_state` builds one and validates it
through `PANEL_STATE` (strict types, no unknown keys), so a field added on one side
without the other fails, and `panel_state_schema()` is its JSON Schema (the vitest
fixtures in js/test/fixtures are generated from real labs and checked against it by
tests/test_panel_state.py).

It also holds the facts the panel needs from Python, shipped in the state instead of
re-typed in JavaScript:

* each fit family's curve as an expression tree (`FAMILY_EXPRESSIONS`: the JavaScript
  evaluates it to draw fitted curves; tests check it against the engine's function)
  and its equation as MathML generated from that tree; which families are the default;
* the ranking of fit rows: the panel shows them in the order the engine sends (by R^2);
* each metric's kind (`metric_kind`): a per-step scalar, a statistic with one value per
  neuron or per layer, or the activation snapshots;
* the colours of experiments and fit families (featurelab/view.py, where the blog's
  chart pictures take them from too);
* the method labels, model kinds and the other choices of the panel's selects.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import NotRequired, TypeAliasType, TypedDict

from featurelab.engine.fit import DEFAULT_FAMILIES, FAMILIES
from featurelab.engine.observables import NAMED_OBSERVABLES
from featurelab.engine.predictions import PREDICTIONS
from featurelab.view import FAMILY_COLORS

# Strict: a value of another type is an error, not converted; forbid: so is a key the
# model does not know (a field added to lab_state without the model).
_STRICT = ConfigDict(strict=True, extra="forbid")

ACTIVATIONS_METRIC = "hidden_activations"  # the activation snapshots, drawn per layer
if ACTIVATIONS_METRIC not in NAMED_OBSERVABLES:  # pragma: no cover - a renamed observable
    raise RuntimeError(f"{ACTIVATIONS_METRIC!r} is no longer a named observable")


# -- fit families as expression trees ---------------------------------------------------
#
# An expression is a number, "t" (the step), ["c", i] (coefficient c_i, 1-based) or
# [op, operand...] with op one of "+", "*", "/", "^" (two operands), "neg", "exp", "log"
# (one). js/src/series.js evaluates it; tests/test_panel_state.py checks each against
# FAMILIES[name].func.

Expression = TypeAliasType("Expression", "int | float | str | list[Expression]")
MathML = TypeAliasType("MathML", "list[str | MathML]")  # [tag, child...]; text as str

_C1, _C2, _C3, _C4 = (["c", i] for i in range(1, 5))
FAMILY_EXPRESSIONS: dict[str, list[Any]] = {
    "sigmoid": ["+", ["/", _C1, ["+", 1, ["exp", ["+", ["*", _C2, "t"], _C3]]]], _C4],
    "exponential": ["+", ["*", _C1, ["exp", ["neg", ["*", _C2, "t"]]]], _C3],
    "power": ["+", ["*", _C1, ["^", ["+", "t", 1], _C2]], _C3],
    "log_power": ["+", ["*", _C1, ["^", ["log", ["+", "t", 1]], _C2]], _C3],
    "linear": ["+", ["*", _C1, "t"], _C2],
}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _group(items: list[Any]) -> Any:
    return items[0] if len(items) == 1 else ["mrow", *items]


def _is_sum(expr: Any) -> bool:
    return isinstance(expr, list) and expr[0] == "+"


def _mathml_items(expr: Any) -> list[Any]:
    """The MathML of an expression as the items of a row."""
    if isinstance(expr, (int, float)):
        return [["mn", _number(expr)]]
    if expr == "t":
        return [["mi", "t"]]
    op, *args = expr
    if op == "c":
        return [["msub", ["mi", "c"], ["mn", str(args[0])]]]
    if op == "+":
        return [*_mathml_items(args[0]), ["mo", "+"], *_mathml_items(args[1])]
    if op == "neg":
        return [["mo", "−"], *_mathml_items(args[0])]
    if op == "*":
        parts = [_paren(_mathml_items(a)) if _is_sum(a) else _mathml_items(a) for a in args]
        dot = [] if args[1] == "t" else [["mo", "·"]]  # c t, but c · e^(...)
        return [*parts[0], *dot, *parts[1]]
    if op == "/":
        return [["mfrac", _group(_mathml_items(args[0])), _group(_mathml_items(args[1]))]]
    if op == "exp":
        return [["msup", ["mi", "e"], _group(_mathml_items(args[0]))]]
    if op == "^":
        base = _mathml_items(args[0])
        return [["msup", _group(_paren(base) if _is_sum(args[0]) else base),
                 _group(_mathml_items(args[1]))]]
    if op == "log":
        return [["mi", "log"], *_paren(_mathml_items(args[0]))]
    raise ValueError(f"unknown operator {op!r} in a fit expression")


def _paren(items: list[Any]) -> list[Any]:
    return [["mo", "("], *items, ["mo", ")"]]


def equation_mathml(expr: Any) -> list[Any]:
    """f(t) = expr as presentation MathML, [tag, child...]; the panel wraps it in <math>."""
    return ["mrow", ["mi", "f"], *_paren([["mi", "t"]]), ["mo", "="], *_mathml_items(expr)]


def evaluate(expr: Any, c: Sequence[float], t: Any) -> Any:
    """The value of an expression for coefficients c (c[0] is c_1) at t (numpy-friendly):
    what js/src/series.js computes, kept here to test the trees against the engine."""
    import numpy as np

    if isinstance(expr, (int, float)):
        return expr
    if expr == "t":
        return t
    op, *args = expr
    if op == "c":
        return c[args[0] - 1]
    vals = [evaluate(a, c, t) for a in args]
    with np.errstate(all="ignore"):
        if op == "+":
            return vals[0] + vals[1]
        if op == "*":
            return vals[0] * vals[1]
        if op == "/":
            return vals[0] / vals[1]
        if op == "^":
            return vals[0] ** vals[1]
        if op == "neg":
            return -vals[0]
        if op == "exp":
            return np.exp(vals[0])
        if op == "log":
            return np.log(vals[0])
    raise ValueError(f"unknown operator {op!r} in a fit expression")


# -- the model ------------------------------------------------------------------------

MetricKind = Literal["scalar", "per_neuron", "per_layer", "activations", "predictions"]
# (lo, hi) of a zoom: the view keeps a tuple, sent as a list (lax: a tuple is fine)
Range = Annotated[list[float], Field(min_length=2, max_length=2, strict=False)] | None
Pair = Annotated[list[str], Field(min_length=2, max_length=2)]
ScheduleStep = Annotated[list[int], Field(min_length=2, max_length=2)]


@with_config(_STRICT)
class ModelConfigState(TypedDict):
    kind: str
    widths: list[int]
    activation: str
    bias: bool
    init_scale: float


@with_config(_STRICT)
class DataConfigState(TypedDict):
    task: str
    dim: int
    freq: float
    formula: str
    noise: float
    n_train: int
    n_test: int
    p: int
    op: str
    train_frac: float
    teacher_widths: list[int]


@with_config(_STRICT)
class OptimizerConfigState(TypedDict):
    name: str
    lr: float
    adamw_lr: float  # muon's AdamW group; 0: the same as lr
    steps: int
    batch_size: int
    momentum: float
    beta2: float
    weight_decay: float
    warmup_steps: int
    schedule: str


@with_config(_STRICT)
class SnapshotConfigState(TypedDict):
    schedule: list[ScheduleStep]
    points: str
    max_samples: int


@with_config(_STRICT)
class StopConfigState(TypedDict):
    metric: str  # "": no early stop
    when: Literal["above", "below"]
    value: float
    for_steps: int


@with_config(_STRICT)
class ExperimentConfigState(TypedDict):
    """ExperimentConfig.to_dict()."""

    model: ModelConfigState
    data: DataConfigState
    optimizer: OptimizerConfigState
    loss: str
    observables: list[str]
    eval_every: int  # test metrics every this many steps (their series hold those steps)
    seed: int
    snapshots: SnapshotConfigState
    stop: StopConfigState
    name: str


@with_config(_STRICT)
class FinalLosses(TypedDict, total=False):
    """The last finite losses (null when not finite), of those the run records."""

    train_loss: float | None
    test_loss: float | None


@with_config(_STRICT)
class RunRow(TypedDict):
    id: str
    status: str
    steps_done: int


@with_config(_STRICT)
class ExperimentRow(TypedDict):
    id: str
    name: str
    tags: list[str]
    based_on: str | None
    label: str
    data_label: str
    optimizer_label: str
    config: ExperimentConfigState
    observables: list[str]
    hook_points: dict[str, list[int]]  # hook point -> activation shape
    point_labels: dict[str, str]  # hook point -> "Layer 1 pre (500 x 100)"
    # the layer picker of a statistic on weights (StatisticRow.base "weights") offers these
    weight_points: dict[str, list[int]]  # weight point -> its shape (rows, cols)
    weight_labels: dict[str, str]  # "embed.weight" -> "Embedding (97 x 128)"
    color: str  # its series' colour, in the panel and in the blog's pictures
    status: str  # "new" before its first run, then its latest run's
    progress: float
    steps_done: int
    final: FinalLosses
    error: str
    checkpoint_step: int | None  # a cancelled run that can continue: from this step
    runs: list[RunRow]  # oldest first
    stat_errors: NotRequired[dict[str, str]]  # once its latest run is done
    # "stopped early at step 1234: test_accuracy > 0.99 for 100 steps", once it has
    stopped_early: NotRequired[str]


@with_config(_STRICT)
class ChartState(TypedDict):
    """featurelab.view.Chart as a dict."""

    metric: str
    enlarged: bool
    layer: str | None
    method: str
    stats: list[str]
    x_range: Range
    y_range: Range
    log_x: bool
    log_y: bool
    smoothing: int
    fits_visible: bool
    band: Literal["std", "minmax"] | None
    also: list[str]  # other series on its axes: "metric" or "metric@layer"
    x: Literal["step", "time"]  # time: wall-clock seconds since each run's first step


@with_config(_STRICT)
class ViewState(TypedDict):
    selected: list[str]
    viewed: list[str]
    charts: dict[str, ChartState]  # metric -> chart, in opening order


@with_config(_STRICT)
class StatisticRow(TypedDict):
    name: str
    on: str
    level: int  # 1: one value per neuron; 2: one value per layer
    base: Literal["activations", "weights"]  # what its chain starts from: where it is measured
    builtin: bool
    source: str
    description: str
    trusted: bool  # False: from elsewhere, not signed by this user; its code never runs


@with_config(_STRICT)
class FitRowState(TypedDict):
    """FitRow.to_dict(): numbers that are not finite are null."""

    family: str
    label: str
    equation: str
    latex: str
    ok: bool
    r2: float | None
    rmse: float | None
    aic: float | None
    coefficients: list[float | None]
    stderr: list[float | None]
    n_points: int
    reason: str | None


@with_config(_STRICT)
class FitTableState(TypedDict):
    x_range: list[float] | None
    rows: list[FitRowState]  # ranked as the engine ranks them: by R^2, failed rows last
    space: NotRequired[str]  # "log_y": fitted on log10 y (R^2 of log10 y)


@with_config(_STRICT)
class FitState(TypedDict):
    id: str
    experiment: str
    metric: str
    layer: str | None
    table: FitTableState


# featurelab.engine.phases.KINDS (tests/test_phases.py checks they agree)
PhaseKind = Literal["drop", "exponential decay", "decay", "rise", "spike", "plateau", "flat"]


@with_config(_STRICT)
class PhaseState(TypedDict):
    """Phase.to_dict(): one phase, steps start to end; a curve's phases tile it in order
    (each ends where the next starts)."""

    start: float
    end: float
    kind: PhaseKind
    primitive: str | None  # the best fit family of a moving phase; null for levels, spikes
    r2: float | None
    mean: float  # of the values inside
    low: float
    high: float


@with_config(_STRICT)
class PhaseLabelsState(TypedDict):
    """One `lab.phases` labelling (featurelab.state.PhaseLabels): a chart shades the
    latest of its (metric, layer) for each experiment it shows."""

    id: str  # "phases_0", ...
    experiment: str
    metric: str
    layer: str | None
    phases: list[PhaseState]


@with_config(_STRICT)
class FamilyState(TypedDict):
    name: str
    label: str
    equation: str
    latex: str
    expression: Expression  # the curve, evaluated by the panel (see FAMILY_EXPRESSIONS)
    mathml: MathML  # the equation f(t) = ... as MathML, from the expression
    color: str
    default: bool  # fitted when the panel's Fit names no families


@with_config(_STRICT)
class Options(TypedDict):
    """The choices of the panel's selects, from the engine's registries."""

    model_kinds: list[str]
    activations: list[str]
    tasks: list[str]
    optimizers: list[str]
    losses: list[str]
    schedules: list[str]
    modular_ops: list[str]
    observables: list[str]
    methods: dict[str, str]  # hidden_activations methods -> label


@with_config(_STRICT)
class Cell(TypedDict):
    action_id: str
    actor: str
    sentence: str
    code: str


@with_config(_STRICT)
class SweepState(TypedDict):
    """A sweep (featurelab.state.Sweep) and where its members' runs stand."""

    id: str
    name: str
    base: str
    knobs: list[str]
    members: list[str]
    groups: dict[str, list[str]]  # label (knob values but the seed) -> members
    counts: dict[str, int]  # latest run status ("not run" without one) -> members
    running: bool  # a lab.run of it is dispatching members now


@with_config(_STRICT)
class KnobCoverage(TypedDict):
    knob: str
    tried: int  # of its menu values, how many some iteration evaluated
    values: int  # in the menu


@with_config(_STRICT)
class IterationState(TypedDict):
    iteration: int
    changes: str  # "optimizer.lr=0.003"
    value: float | None
    decision: str | None  # keep | discard | failed; None until judged
    best: float | None  # the best so far after it
    repeat: bool  # it repeated a (knob, value) pair or a configuration


@with_config(_STRICT)
class ExplorationState(TypedDict):
    """An exploration (featurelab.trajectory) with its live trajectory metrics."""

    id: str
    name: str
    base: str
    metric: str
    goal: str
    rail: bool
    iterations: list[IterationState]
    coverage: list[KnobCoverage]
    knob_coverage: float | None
    pair_coverage: float | None
    repeat_rate: float | None
    recent_repeat_rate: float | None
    mean_repeat_lag: float | None
    refused: int  # proposals the rail refused (this session)
    keeps: int
    keep_rate: float | None
    time_to_first_keep: int | None
    time_to_best_keep: int | None
    longest_plateau: int
    best: float | None
    best_experiment: str


@with_config(_STRICT)
class PanelState(TypedDict):
    """Everything the panel shows: the trait `state` of featurelab.ui.widget.Panel."""

    lab: str
    experiments: list[ExperimentRow]
    view: ViewState
    statistics: list[StatisticRow]
    neuron_stats: list[Pair]  # (statistic, hook point) shown on the activations chart
    fits: list[FitState]
    phases: list[PhaseLabelsState]  # every labelling, oldest first
    phase_colors: dict[str, str]  # phase kind -> the colour of its shaded span
    families: list[FamilyState]
    metric_kinds: dict[str, MetricKind]  # every named observable and statistic
    options: Options
    defaults: ExperimentConfigState
    cells: list[Cell]
    notes: list[str]
    sweeps: list[SweepState]
    explorations: list[ExplorationState]


PANEL_STATE: TypeAdapter[PanelState] = TypeAdapter(PanelState)


# A lone surrogate (half of a UTF-16 pair, e.g. from a "\\ud800" JSON escape) cannot be
# sent: the kernel's comm encodes its messages as UTF-8. NUL is kept out too.
_UNSENDABLE = re.compile("[\ud800-\udfff\x00]")


def _sendable(value: Any) -> Any:
    """Every string (and key) with each lone surrogate and NUL as U+FFFD, a surrogate pair
    written as two code points joined (as featurelab/export/text.py cleans exported text;
    ui may not import export)."""
    if isinstance(value, str):
        if not _UNSENDABLE.search(value):
            return value
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_sendable(k): _sendable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_sendable(v) for v in value)
    return value


def validate_panel_state(state: PanelState) -> PanelState:
    """The state checked against the model (a ValidationError names the bad field), with
    any text typed into the lab made sendable."""
    return PANEL_STATE.validate_python(_sendable(state))


def panel_state_schema() -> dict[str, Any]:
    """The JSON Schema of the panel's state."""
    schema = PANEL_STATE.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# -- the facts ------------------------------------------------------------------------


def metric_kind(metric: str, statistic_level: int | None) -> MetricKind:
    """How a metric is drawn: the activation snapshots, the predictions on the data, a
    statistic with one value per neuron (level 1) or per layer (level 2 and up), or a
    per-step scalar."""
    if metric == ACTIVATIONS_METRIC:
        return "activations"
    if metric == PREDICTIONS:
        return "predictions"
    if statistic_level is not None:
        return "per_neuron" if statistic_level == 1 else "per_layer"
    return "scalar"


@functools.cache
def _families() -> tuple[FamilyState, ...]:
    missing = sorted(set(FAMILIES) - set(FAMILY_EXPRESSIONS))
    if missing:
        raise RuntimeError(f"fit families without an expression for the panel: {missing}")
    return tuple(FamilyState(name=f.name, label=f.label, equation=f.equation, latex=f.latex,
                             expression=FAMILY_EXPRESSIONS[f.name],
                             mathml=equation_mathml(FAMILY_EXPRESSIONS[f.name]),
                             color=FAMILY_COLORS[f.name], default=f.name in DEFAULT_FAMILIES)
                 for f in FAMILIES.values())


def families() -> list[FamilyState]:
    """Every fit family the engine knows, in its order."""
    return list(_families())
