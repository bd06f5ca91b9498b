"""The panel: an anywidget that mirrors a Lab and turns clicks into Lab actions.

It holds no logic of its own. Its JavaScript (js/src, bundled into
featurelab/static) renders `state`, a JSON mirror of the lab (`lab_state`: a PanelState,
typed and validated in featurelab/ui/panel_state.py, which also ships the facts the
panel would otherwise re-type: fit families, colours, metric kinds, labels), and sends:

  {"kind": "action", "request": id, "action": {"type": ..., "params": {...}}}
      -> lab.apply(action, actor="human"); answered by
         {"kind": "ack", "request": id, "result": {...}} or
         {"kind": "error", "request": id, "field": "model.widths[1]" | null, "message": ...,
          "errors": [{"field", "message"}, ...] (what else is wrong, when known)}
  {"kind": "series", "request": id, "experiments": [...], "metric": m, "layer": l | null}
      -> {"kind": "series", "request": id, "metric": m, "layer": l,
          "series": [{"experiment": e, "shape": [...], "error": str | null,
                      "clock": [[step, seconds], ...]}, ...]}
         with two binary buffers per series without an error: steps (float64) and values
         (float32, row-major (steps,) or (steps, neurons)); arrays never travel as JSON.
         A scalar series has only the steps it was measured at (a test metric with
         eval_every > 1: steps 0, k, 2k, ..., and the last).
  {"kind": "stop_sweep", "request": id, "sweep": s}
      -> the sweep starts no more members and its running ones are cancelled (logged);
         answered by an ack {"cancelled": [members]} or an error
  {"kind": "svg", "request": id, "metric": m, "experiment": e?, "step": s?}
      -> {"kind": "svg", "request": id, "svg": "<svg ...>"}: the chart as the view shows
         it, drawn by matplotlib (Lab.chart_svg; the predictions chart at the card's
         experiment and step)
  {"kind": "activations", "request": id, "experiment": e, "layer": l, "step": s}
      -> {"kind": "activations", "request": id, "experiment": e, "layer": l,
          "step": nearest snapshot step, "steps": [snapshot steps], "shape": [S, N]}
         + one float32 buffer (S, N)
  {"kind": "predictions", "request": id, "experiment": e, "step": s}
      -> {"kind": "predictions", "request": id, "experiment": e, "step": nearest snapshot
          step, "steps": [...], "view": "curve" | "plane" | "pairs" | "scatter",
          "n_train", "n_test", "grid": [G] | [G, G] | [], "extent": [lo, hi, ...],
          "dim", "n_classes", "train": error, "test": error, "left_out": samples not
          kept, "arrays": [names]}
         + one float32 buffer per name in "arrays": inputs (samples x dim), target
         (samples), prediction (samples, then the grid)

While a run trains, `state` is refreshed at most PUSH_HZ times a second (progress,
status, final losses); the JavaScript re-requests the series it shows.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import anywidget
import numpy as np
import traitlets

from featurelab.engine.config import (
    ACTIVATIONS,
    LOSSES,
    MODEL_KINDS,
    MODULAR_OPS,
    OPTIMIZERS,
    SCHEDULES,
    TASKS,
    ExperimentConfig,
)
from featurelab.engine.models import hook_shapes, point_label, weight_shapes
from featurelab.engine.observables import NAMED_OBSERVABLES
from featurelab.engine.predictions import PREDICTIONS
from featurelab.errors import FeaturelabError
from featurelab.log import untrusted_code
from featurelab.trajectory import RECENT, Exploration, pair_key
from featurelab.trajectory import metrics as trajectory_metrics
from featurelab.ui.cell_bridge import CellBridge, CellRecorder, kernel_bridge
from featurelab.ui.panel_state import (
    Cell,
    ExperimentConfigState,
    ExperimentRow,
    ExplorationState,
    FinalLosses,
    FitState,
    FitTableState,
    IterationState,
    KnobCoverage,
    Options,
    PanelState,
    PhaseLabelsState,
    PhaseState,
    RunRow,
    StatisticRow,
    SweepState,
    ViewState,
    families,
    metric_kind,
    validate_panel_state,
)
from featurelab.view import METHOD_LABELS, PHASE_COLORS, experiment_color

if TYPE_CHECKING:
    from featurelab.lab import Lab
    from featurelab.state import Experiment, Sweep

STATIC = Path(__file__).parent.parent / "static"  # built by js/ (esbuild)
PUSH_HZ = 4  # live updates a second while a run trains
LOSS_COLUMNS: tuple[Literal["train_loss", "test_loss"], ...] = ("train_loss", "test_loss")


NOT_BUILT = """
export default { render({ el }) {
  el.textContent = "featurelab: the panel's JavaScript is not built; run " +
    "`npm ci --prefix js && npm run build --prefix js`, then restart the kernel.";
} };
"""


def _bundle(name: str, missing: str) -> Path | str:
    path = STATIC / name
    return path if path.exists() else missing


def _request_id(request: Any) -> Any:
    """The id a reply carries back: a JSON scalar as given, else None (a reply must be
    JSON, and the front end matches ids it made, which are scalars)."""
    if request is None or isinstance(request, (str, int)):
        return request
    return request if isinstance(request, float) and math.isfinite(request) else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_step(step: Any, what: str) -> None:
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                             or not math.isfinite(step)):
        raise FeaturelabError(f"{what}'s step is a number or null; got {_short(step)}")


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _last_measured(values: np.ndarray) -> float | None:
    """The value at the last step a series was measured at (test metrics with eval_every
    > 1 are NaN between), if finite."""
    measured = np.flatnonzero(~np.isnan(values))
    return _finite(values[measured[-1]]) if len(measured) else None


class Panel(anywidget.AnyWidget):
    _esm = _bundle("widget.js", NOT_BUILT)
    _css = _bundle("widget.css", "")
    state = traitlets.Dict().tag(sync=True)
    # Whether clicks become notebook cells: "extension", "none" (the panel says so and
    # points to its Code section) or "unknown" (no client has answered yet).
    cells = traitlets.Unicode("unknown").tag(sync=True)

    def __init__(self, lab: Lab, bridge: CellBridge | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lab = lab
        self._last_push = 0.0
        self._push_lock = threading.Lock()
        self._unsubscribe = [lab.on_change(self._on_lab_change)]
        self.on_msg(self._on_message)
        self.bridge = bridge or kernel_bridge()
        self.recorder = CellRecorder(lab, self.model_id, self.bridge)
        self._unsubscribe += [self.recorder.unsubscribe,
                              self.bridge.on_status(self._on_cells_status)]
        self.bridge.start()
        self.cells = self.bridge.status
        self.refresh()

    def close(self) -> None:
        """Closes the panel and stops listening: to the lab (state pushes, the cell
        recorder) and to the kernel's cell bridge. The lab shows a new panel after."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        super().close()

    def _on_cells_status(self, status: str) -> None:
        self.cells = status

    # -- lab -> panel -------------------------------------------------------------------

    def refresh(self) -> None:
        """Mirrors the lab into `state` (one trait: the front end re-renders from it)."""
        with self._push_lock:
            self.state = lab_state(self.lab)
            self._last_push = time.monotonic()

    def _on_lab_change(self, kind: str, payload: Any) -> None:
        if kind == "run_started":  # live progress: on the training thread, throttled
            payload.trainer.events.subscribe("on_flush", lambda *_: self._throttled_refresh())
        self.refresh()

    def _throttled_refresh(self) -> None:
        if time.monotonic() - self._last_push >= 1.0 / PUSH_HZ:
            self.refresh()

    # -- panel -> lab -------------------------------------------------------------------

    def _on_message(self, _widget: Any, content: Any, _buffers: list) -> None:
        # Anything may arrive here (a front end of another version, a hand-made message):
        # it gets an error reply, never an exception in the kernel.
        is_dict = isinstance(content, dict)
        kind = content.get("kind") if is_dict else None
        request = _request_id(content.get("request")) if is_dict else None
        try:
            if not is_dict:
                raise FeaturelabError(f"a panel message is a dict with 'kind' and 'request'; "
                                      f"got {_short(content)}")
            if not isinstance(kind, str):
                raise FeaturelabError(f"a panel message's kind is a string; got {_short(kind)}")
            if kind == "action":
                result = self._apply(content.get("action"))
                self.send({"kind": "ack", "request": request, "result": result})
            elif kind == "series":
                reply, buffers = self._series(content)
                self.send({"kind": "series", "request": request, **reply}, buffers)
            elif kind == "activations":
                reply, buffers = self._activations(content)
                self.send({"kind": "activations", "request": request, **reply}, buffers)
            elif kind == "predictions":
                reply, buffers = self._predictions(content)
                self.send({"kind": "predictions", "request": request, **reply}, buffers)
            elif kind == "svg":
                metric = content.get("metric")
                if not isinstance(metric, str):
                    raise FeaturelabError(f"an svg request names its metric; got {_short(metric)}")
                experiment, step = content.get("experiment"), content.get("step")
                if experiment is not None and not isinstance(experiment, str):
                    raise FeaturelabError(f"an svg request's experiment is an id or null; "
                                          f"got {_short(experiment)}")
                _check_step(step, "an svg request")
                svg = self.lab.chart_svg(metric, experiment, None if step is None else int(step))
                self.send({"kind": "svg", "request": request, "svg": svg})
            elif kind == "stop_sweep":
                stopped = self._stop_sweep(content.get("sweep"))
                self.send({"kind": "ack", "request": request, "result": {"cancelled": stopped}})
            else:
                raise FeaturelabError(f"unknown panel message kind {kind!r}")
        except FeaturelabError as exc:  # never a traceback in the panel: the engine's words
            reply = {"kind": "error", "request": request,
                     "field": getattr(exc, "field", None), "message": str(exc)}
            others = getattr(exc, "others", None)
            if others:  # every error of a form at once, each at its field
                reply["errors"] = [{"field": e.field, "message": str(e)} for e in others]
            self.send(reply)
        except Exception as exc:  # a bug of ours: still a message, and the panel lives on
            self.send({"kind": "error", "request": request, "field": None,
                       "message": f"internal error: {type(exc).__name__}: {exc}"})

    def _apply(self, action: Any) -> dict[str, Any]:
        entry, _ = self.lab.apply_logged(action, actor="human")
        if entry is None:  # a read: nothing logged, nothing to report
            return {}
        return entry.result or {}  # its own entry's, whatever else was logged meanwhile

    def _stop_sweep(self, sweep: Any) -> list[str]:
        """The panel's Stop: no member starts any more; the running ones are cancelled,
        each a logged cancel of this person's."""
        if not isinstance(sweep, str):
            raise FeaturelabError(f"a stop_sweep request names its sweep; got {sweep!r}")
        self.lab.state.sweep(sweep)
        job = self.lab.state.sweep_runs.get(sweep)
        if job is None or job.done:
            raise FeaturelabError(f"{sweep} is not running")
        return job.stop("human")

    def _series(self, content: dict[str, Any]) -> tuple[dict, list]:
        metric, layer = content.get("metric"), content.get("layer")
        if not isinstance(metric, str):
            raise FeaturelabError(f"a series request names its metric; got {metric!r}")
        if layer is not None and not isinstance(layer, str):
            raise FeaturelabError(f"a series request's layer is a hook point or null; got "
                                  f"{_short(layer)}")
        experiments = content.get("experiments") or []
        if not isinstance(experiments, list) or not all(isinstance(e, str) for e in experiments):
            raise FeaturelabError(f"a series request lists experiment ids; got "
                                  f"{_short(experiments)}")
        out, buffers = [], []
        for experiment in experiments:
            try:
                steps, values = self.lab.metric_series(experiment, metric, layer)
            except FeaturelabError as exc:
                out.append({"experiment": experiment, "shape": [], "error": str(exc)})
                continue
            if values.ndim == 1:  # test metrics with eval_every > 1: the steps measured at
                keep = ~np.isnan(values)
                steps, values = np.asarray(steps)[keep], values[keep]
            values = np.ascontiguousarray(values, dtype=np.float32)
            out.append({"experiment": experiment, "shape": list(values.shape), "error": None,
                        "clock": self._clock(experiment)})
            buffers += [np.ascontiguousarray(steps, dtype=np.float64).tobytes(),
                        values.tobytes()]
        return {"metric": metric, "layer": layer, "series": out}, buffers

    def _clock(self, experiment: str) -> list[list[float]]:
        """[step, seconds] of the experiment's latest run (Trainer info "clock"): the
        chart's wall-clock x axis; [] for a run recorded before runs kept one."""
        try:
            clock = self.lab.results(experiment).result().info.get("clock") or []
        except FeaturelabError:
            return []
        return [[float(s), float(t)] for s, t in clock]

    def _activations(self, content: dict[str, Any]) -> tuple[dict, list]:
        experiment, step = content.get("experiment", ""), content.get("step") or 0
        if not isinstance(experiment, str):
            raise FeaturelabError(f"an activations request names its experiment; got "
                                  f"{_short(experiment)}")
        if isinstance(step, bool) or not isinstance(step, (int, float)) \
                or not math.isfinite(step):
            raise FeaturelabError(f"an activations request's step is a number; got "
                                  f"{_short(step)}")
        snapshots = self.lab.results(experiment).snapshots_so_far()
        layer = content.get("layer")
        if snapshots is None or layer not in snapshots.points or layer == PREDICTIONS:
            raise FeaturelabError(f"no activation snapshots of {layer!r} in "
                                  f"{content.get('experiment')}; record hidden_activations")
        if not snapshots.count:
            raise FeaturelabError(f"{content.get('experiment')} has taken no snapshot yet")
        steps = snapshots.steps
        step = int(step)
        nearest = int(steps[max(0, int(np.searchsorted(steps, step, side="right")) - 1)])
        values = np.ascontiguousarray(snapshots.at(layer, step), dtype=np.float32)
        return ({"step": nearest, "steps": steps.tolist(), "shape": list(values.shape),
                 "experiment": content.get("experiment"), "layer": layer},
                [values.tobytes()])


    def _predictions(self, content: dict[str, Any]) -> tuple[dict, list]:
        from featurelab.frames import run_predictions  # pandas: loaded when first asked

        experiment, step = content.get("experiment", ""), content.get("step")
        if not isinstance(experiment, str):
            raise FeaturelabError(f"a predictions request names its experiment; got "
                                  f"{_short(experiment)}")
        _check_step(step, "a predictions request")
        at = run_predictions(self.lab.state, experiment, None if step is None else int(step))
        arrays = {"inputs": at.inputs, "target": at.target, "prediction": at.prediction}
        reply = {"experiment": experiment, "step": at.step, "steps": at.steps.tolist(),
                 "view": at.kind, "n_train": at.rows.n_train, "n_test": at.rows.n_test,
                 "grid": list(at.rows.grid), "extent": list(at.rows.extent),
                 "dim": int(at.inputs.shape[1]), "n_classes": at.n_classes,
                 "train": _finite(at.error("train")), "test": _finite(at.error("test")),
                 "left_out": at.left_out,
                 "arrays": list(arrays)}
        return reply, [np.ascontiguousarray(a, dtype=np.float32).tobytes()
                       for a in arrays.values()]


def lab_state(lab: Lab) -> PanelState:
    """Everything the panel shows, as JSON: a PanelState (featurelab/ui/panel_state.py),
    validated against that model on the way out."""
    statistics = lab.statistics
    state = PanelState(
        lab=lab.name,
        experiments=[_experiment(lab, exp, i) for i, exp in enumerate(lab.experiments.values())],
        view=cast(ViewState, lab.view.to_dict()),
        statistics=[StatisticRow(name=s, on=statistics[s].on, level=statistics.level(s),
                                 base=cast(Literal["activations", "weights"],
                                           statistics.base(s)),
                                 builtin=statistics[s].builtin, source=statistics[s].source,
                                 description=statistics[s].description,
                                 trusted=statistics[s].trusted)
                    for s in statistics.names()],
        neuron_stats=[list(p) for p in lab.neuron_stats],
        fits=[FitState(id=f.id, experiment=f.experiment, metric=f.metric, layer=f.layer,
                       table=cast(FitTableState, f.table.to_dict())) for f in lab.fits.values()],
        phases=[PhaseLabelsState(id=p.id, experiment=p.experiment, metric=p.metric,
                                 layer=p.layer,
                                 phases=[cast(PhaseState, ph.to_dict()) for ph in p.phases])
                for p in lab.state.phases.values()],
        phase_colors=dict(PHASE_COLORS),
        families=families(),
        metric_kinds={**{m: metric_kind(m, None) for m in NAMED_OBSERVABLES},
                      **{s: metric_kind(s, statistics.level(s)) for s in statistics.names()}},
        options=Options(model_kinds=list(MODEL_KINDS), activations=list(ACTIVATIONS),
                        tasks=list(TASKS), optimizers=list(OPTIMIZERS), losses=list(LOSSES),
                        schedules=list(SCHEDULES), modular_ops=list(MODULAR_OPS),
                        observables=list(NAMED_OBSERVABLES), methods=dict(METHOD_LABELS)),
        defaults=_config(ExperimentConfig()),
        cells=[_cell(e) for e in lab.log],
        notes=list(lab.notes),
        sweeps=[_sweep(lab, sweep) for sweep in lab.sweeps.values()],
        explorations=[_exploration(e) for e in lab.explorations.values()],
    )
    return validate_panel_state(state)


def _sweep(lab: Lab, sweep: Sweep) -> SweepState:
    counts: dict[str, int] = {}
    for member in sweep.members:
        run_id = lab.latest.get(member)
        status = lab.runs[run_id].status if run_id is not None else "not run"
        counts[status] = counts.get(status, 0) + 1
    job = lab.state.sweep_runs.get(sweep.id)
    return SweepState(id=sweep.id, name=sweep.name, base=sweep.base, knobs=list(sweep.knobs),
                      members=list(sweep.members),
                      groups={k: list(v) for k, v in sweep.groups.items()},
                      counts=counts, running=job is not None and not job.done)


def _exploration(exploration: Exploration) -> ExplorationState:
    m = trajectory_metrics(exploration)
    tried: dict[str, set[str]] = {k: {pair_key(k, exploration.base_values.get(k))}
                                  for k in exploration.menu}  # the base's own value
    rows: list[IterationState] = []
    best = exploration.baseline
    for it in exploration.iterations:
        for knob, value in it.changes.items():
            if knob in tried:
                tried[knob].add(pair_key(knob, value))
        if it.decision == "keep":
            best = it.value
        rows.append(IterationState(
            iteration=it.index, changes=", ".join(f"{k}={json.dumps(v)}"
                                                  for k, v in it.changes.items()),
            value=it.value, decision=it.decision, best=best,
            repeat=it.repeat_of is not None))
    menu_pairs = exploration.menu_pairs()
    return ExplorationState(
        id=exploration.id, name=exploration.name, base=exploration.base,
        metric=exploration.metric, goal=exploration.goal, rail=exploration.rail,
        iterations=rows,
        coverage=[KnobCoverage(knob=k, tried=len(tried[k] & menu_pairs),
                               values=len(exploration.menu[k])) for k in exploration.menu],
        knob_coverage=m["knob_coverage"], pair_coverage=m["pair_coverage"],
        repeat_rate=m["repeat_rate"], recent_repeat_rate=m[f"repeat_rate_last_{RECENT}"],
        mean_repeat_lag=m["mean_repeat_lag"], refused=m["refused"], keeps=m["keeps"],
        keep_rate=m["keep_rate"],
        time_to_first_keep=m["time_to_first_keep"], time_to_best_keep=m["time_to_best_keep"],
        longest_plateau=m["longest_plateau"], best=m["best"]["value"],
        best_experiment=m["best"]["experiment"])


def _config(config: ExperimentConfig) -> ExperimentConfigState:
    return cast(ExperimentConfigState, config.to_dict())


def _experiment(lab: Lab, exp: Experiment, index: int) -> ExperimentRow:
    """One row of the experiments table: its config, hook points and latest run."""
    shapes, weights = hook_shapes(exp.config), weight_shapes(exp.config)
    status, progress, steps_done, checkpoint_step, error = "new", 0.0, 0, None, ""
    stopped_early = ""
    final = FinalLosses()
    stat_errors: dict[str, str] | None = None
    if exp.id in lab.latest:
        run = lab.runs[lab.latest[exp.id]]
        status, progress, steps_done = run.status, run.progress, run.steps_done
        if status == "cancelled" and run.has_checkpoint:  # "Continue from step N"
            checkpoint_step = steps_done
        trainer = run.trainer  # read once: a run that ends lets its trainer go
        if trainer is not None and not run.done:  # live losses, from the trainer
            series, last = trainer.series, trainer.step_count - 1
            for name in LOSS_COLUMNS:
                if name in series and last >= 0:
                    final[name] = _last_measured(series[name][:last + 1])
        elif run.done:
            result = run.result()
            error, stat_errors = result.error, result.stat_errors
            stopped_early = result.stopped_early
            for name in LOSS_COLUMNS:
                if name in result.arrays and len(result.arrays[name]):
                    final[name] = _last_measured(result.arrays[name])
    row = ExperimentRow(
        id=exp.id, name=exp.name, tags=list(exp.tags), based_on=exp.based_on,
        label=exp.config.model.label, data_label=exp.config.data.label,
        optimizer_label=exp.config.optimizer.label, config=_config(exp.config),
        observables=list(exp.config.observables),
        hook_points={p: list(s) for p, s in shapes.items()},
        point_labels={p: point_label(p, s) for p, s in shapes.items()},
        weight_points={p: list(s) for p, s in weights.items()},
        weight_labels={p: point_label(p, s) for p, s in weights.items()},
        color=experiment_color(index), status=status, progress=progress,
        steps_done=steps_done, final=final, error=error, checkpoint_step=checkpoint_step,
        runs=_runs(lab, exp.id),
    )
    if stat_errors is not None:
        row["stat_errors"] = stat_errors
    if stopped_early:
        row["stopped_early"] = stopped_early
    return row


def _runs(lab: Lab, experiment: str) -> list[RunRow]:
    """An experiment's runs, oldest first: a cancelled run stays listed once continued."""
    return [RunRow(id=r.id, status=r.status, steps_done=r.steps_done)
            for r in lab.runs_of(experiment)]


@functools.lru_cache(maxsize=4096)
def _cell_of(action_id: str, actor: str, action: str, result: str,
             trusted: bool) -> dict[str, Any]:
    from featurelab.actions import action_from_dict

    act = action_from_dict(json.loads(action))
    code = act.to_code()
    return {"action_id": action_id, "actor": actor, "sentence": act.describe(json.loads(result)),
            "code": code if trusted else untrusted_code(code)}


def _cell(entry: Any) -> Cell:
    """A log entry as the panel's Code section shows it; cached, because the state is
    rebuilt several times a second while a run trains (a run's result changes once)."""
    return cast(Cell, dict(_cell_of(entry.id, entry.actor, json.dumps(entry.action_dict()),
                                   json.dumps(entry.result), entry.trusted())))

