"""The lab's numbers as pandas frames: a table of experiments, long series, seed bands.

They read the state and change nothing, so they are not actions. pandas is imported
with this module, which the Lab imports on first use: opening a lab does not pay for it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from featurelab.engine.predictions import PredictionsAt, predictions_at
from featurelab.engine.summaries import parse_summary, summarize
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.runs import Run
from featurelab.state import LabState

TABLE_START = ["id", "name", "tags", "sweep", "seed"]
BAND_COLUMNS = ["group", "step", "mean", "std", "min", "max", "n"]
SERIES_COLUMNS = ["experiment", "step", "value"]


def _hashable(value: Any) -> Any:
    # Lists (model.widths) as tuples: a column of them can be grouped and compared.
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _knobs(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every config value by its path, as a sweep names it ("optimizer.lr")."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_knobs(value, f"{prefix}{key}."))
        elif prefix or key not in ("name", "seed"):  # in the table's first columns
            out[prefix + key] = _hashable(value)
    return out


def _summaries(run: Run) -> dict[str, Any]:
    """Per scalar series: its last finite value, its minimum and the step of the minimum
    (NaN steps, as a diverged run has and a test metric between its evaluations, are
    passed over)."""
    out: dict[str, Any] = {}
    for key, values in sorted(run.result().arrays.items()):
        if values.ndim != 1 or not len(values):
            continue  # per-neuron series have no single summary
        finite = np.where(np.isfinite(values), values, np.nan)
        best = None if np.isnan(finite).all() else int(np.nanargmin(finite))
        last = summarize(np.arange(len(values)), values, "final")
        out[f"{key}.final"] = np.nan if last is None else last
        out[f"{key}.min"] = np.nan if best is None else float(values[best])
        out[f"{key}.argmin"] = best
    return out


def _member_of(state: LabState) -> dict[str, str]:
    """Experiment -> the first sweep that lists it (a reused one may be in several)."""
    out: dict[str, str] = {}
    for sweep in state.sweeps.values():
        for member in sweep.members:
            out.setdefault(member, sweep.id)
    return out


def table_rows(state: LabState, experiments: list[str] | None = None
               ) -> list[dict[str, Any]]:
    """The rows of `table` (of `experiments` only, in that order, if given) as dicts: an
    agent's sweep_table reads them as JSON records."""
    sweeps = _member_of(state)
    rows = []
    for exp in (state.experiments.values() if experiments is None
                else [state.experiment(e) for e in experiments]):
        run = state.runs[state.latest[exp.id]] if exp.id in state.latest else None
        rows.append({"id": exp.id, "name": exp.name, "tags": ", ".join(exp.tags),
                     "sweep": sweeps.get(exp.id),
                     "seed": exp.config.seed, **_knobs(exp.config.to_dict()),
                     "status": run.status if run else "not run",
                     "steps": run.steps_done if run else 0,
                     **(_summaries(run) if run else {})})
    return rows


def table(state: LabState, measures: list[str] | None = None) -> pd.DataFrame:
    """One row per experiment: id, name, tags, sweep, seed, every config knob by path, the
    status of its latest run and the summaries of its scalar series; then a column per
    measure ("test_accuracy:first_above:0.9": a summary of a metric, see `measure`)."""
    rows = table_rows(state)
    frame = pd.DataFrame(rows, columns=None if rows else [*TABLE_START, "status", "steps"])
    # None, not NaN, for an experiment in no sweep (pandas would infer a string column)
    frame["sweep"] = pd.Series([row["sweep"] for row in rows], dtype=object)
    for i, spec in enumerate(measures or []):
        frame[spec] = _measure_column(state, [row["id"] for row in rows], spec, i)
    return frame


MEASURE_HELP = ("'<metric>:<summary>', e.g. 'test_accuracy:first_above:0.9', "
                "'test_loss:in_band:0.1:1' or 'train_loss:final' (a layer as "
                "'<metric>@<layer>:<summary>')")


def parse_measure(spec: Any, where: str = "measures") -> tuple[str, str | None, str]:
    """(metric, layer, summary) of a measure's text; a ConfigError naming `where`."""
    metric, sep, summary = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or not metric:
        raise ConfigError(where, spec, MEASURE_HELP)
    try:
        parse_summary(summary)
    except ConfigError as exc:
        raise ConfigError(where, spec, MEASURE_HELP, hint=f"its summary: {exc}") from None
    name, _, layer = metric.partition("@")
    return name, layer or None, summary


def _measure_column(state: LabState, experiments: list[str], spec: str, i: int
                    ) -> list[float]:
    """A measure of each experiment's latest run: NaN without a run or the series, or
    where the summary has no value (never above the threshold)."""
    metric, layer, summary = parse_measure(spec, f"measures[{i}]")
    out, found = [], False
    for experiment in experiments:
        try:
            steps, values = _scalar(state, experiment, metric, layer)
        except ConfigError as exc:  # one value per neuron
            raise ConfigError(f"measures[{i}]", spec, "a metric with one value per step",
                              hint=str(exc)) from None
        except FeaturelabError:  # not run, or no such series in it
            out.append(np.nan)
            continue
        found = True
        value = summarize(steps, values, summary)
        out.append(np.nan if value is None else value)
    if not found and any(e in state.latest for e in experiments):
        raise ConfigError(f"measures[{i}]", spec, "a metric some run records",
                          hint=f"no run has {metric if layer is None else metric + '@' + layer}")
    return out


def _scalar(state: LabState, experiment: str, metric: str, layer: str | None
            ) -> tuple[np.ndarray, np.ndarray]:
    steps, values = state.metric_series(experiment, metric, layer)
    if values.ndim != 1:
        key = f"{metric}@{layer}" if layer else metric
        raise ConfigError("metric", key, "a series with one value per step",
                          hint=f"{key} has one per neuron; define a statistic that "
                               "reduces it")
    return steps, values


def series_frame(state: LabState, metric: str, layer: str | None = None,
                 experiments: list[str] | None = None) -> pd.DataFrame:
    """Long format (experiment, step, value) of one scalar metric. Without `experiments`,
    every experiment whose latest run has the metric."""
    chosen = experiments if experiments is not None else \
        [e for e in state.experiments if e in state.latest]
    parts, missing = [], []
    for experiment in chosen:
        try:
            steps, values = _scalar(state, experiment, metric, layer)
        except ConfigError:
            raise
        except FeaturelabError as exc:  # no run, or no such series in it
            if experiments is not None:
                raise
            missing.append(str(exc))
            continue
        parts.append(pd.DataFrame({"experiment": experiment, "step": steps,
                                   "value": values}))
    if not parts:
        if missing:
            raise FeaturelabError(f"no run has {metric!r}: {missing[0]}")
        return pd.DataFrame(columns=SERIES_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def bands(state: LabState, metric: str, sweep: str, layer: str | None = None
          ) -> pd.DataFrame:
    """Per group of the sweep (members that differ only by seed) and step: the mean,
    standard deviation (ddof=1, as pandas; NaN for one run), min and max over the
    group's finished runs, and how many there are (n)."""
    parts = []
    for group, members in state.sweep(sweep).groups.items():
        done = [m for m in members if m in state.latest
                and state.runs[state.latest[m]].status == "finished"]
        if not done:
            continue
        series = [_scalar(state, m, metric, layer) for m in done]
        # Runs that stopped early are shorter: each step is over the runs that reached
        # it (n says how many), none is dropped for the shortest.
        longest = max(range(len(series)), key=lambda i: len(series[i][1]))
        length = len(series[longest][1])
        dtype = series[longest][1].dtype  # the runs' own precision (float32)
        stack = np.full((len(series), length), np.nan, dtype=dtype)  # (runs, steps)
        for i, (_, values) in enumerate(series):
            stack[i, :len(values)] = values
        present = ~np.isnan(stack)
        n = present.sum(axis=0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a step no run measured
            if present.all():  # every run at every step: plain statistics
                mean, low, high = stack.mean(axis=0), stack.min(axis=0), stack.max(axis=0)
                std = stack.std(axis=0, ddof=1) if len(series) > 1 else np.full(length, np.nan)
            else:
                mean, low, high = (np.nanmean(stack, axis=0), np.nanmin(stack, axis=0),
                                   np.nanmax(stack, axis=0))
                std = np.where(n > 1, np.nanstd(stack, axis=0, ddof=1), np.nan)
            frame = pd.DataFrame({"group": group, "step": series[longest][0][:length],
                                  "mean": mean, "std": std, "min": low, "max": high, "n": n})
        parts.append(frame[n > 0].reset_index(drop=True))
    if not parts:
        raise FeaturelabError(f"{sweep} has no finished run yet; lab.run({sweep!r}) "
                              "trains its members")
    return pd.concat(parts, ignore_index=True)


def run_predictions(state: LabState, experiment: str, step: int | None = None
                    ) -> PredictionsAt:
    """The predictions of an experiment's latest run (running or ended) at the snapshot
    nearest `step` at or before it, the last when None."""
    run = state.results(experiment)
    config = state.experiment(experiment).config
    snapshots = run.snapshots_so_far()
    if snapshots is None and "predictions" in config.observables and run.status == "running":
        raise FeaturelabError(f"{experiment} is training on a worker and no snapshot has "
                              "reached this kernel yet (a lab without a folder gets them "
                              "when the run ends)")
    return predictions_at(config, snapshots, step)


def predictions(state: LabState, experiment: str, step: int | None = None) -> pd.DataFrame:
    """One row per sample and grid point: split (train, test, grid), the inputs (x0, x1,
    ... or a and b for a modular task), the target (NaN on the grid) and the prediction
    (the output, or the predicted class), at a snapshot step (`.attrs["step"]`; samples
    past the first 32,768 are not kept: `.attrs["left_out"]`)."""
    at = run_predictions(state, experiment, step)
    rows = at.rows
    split = np.array(["train"] * rows.n_train + ["test"] * rows.n_test + ["grid"] * rows.n_grid)
    inputs = np.concatenate([at.inputs, rows.x[at.samples:].double().numpy()])
    names = ["a", "b"] if at.n_classes else [f"x{i}" for i in range(inputs.shape[1])]
    frame = pd.DataFrame({"split": split, **{n: inputs[:, i].astype(int) if at.n_classes
                                             else inputs[:, i] for i, n in enumerate(names)}})
    if at.n_classes:  # every row a sample: classes as integers
        frame["target"] = at.target.astype(int)
        frame["prediction"] = at.prediction.astype(int)
    else:
        frame["target"] = np.concatenate([at.target, np.full(rows.n_grid, np.nan)])
        frame["prediction"] = at.prediction
    frame.attrs.update(step=at.step, steps=at.steps.tolist(), view=at.kind,
                       left_out=at.left_out)
    return frame
