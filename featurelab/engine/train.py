"""The trainer: builds data, model and optimizer from a config and steps them.

It knows nothing of widgets or storage. It emits named events that the
recorder, progress displays and the store subscribe to:

- on_step_end(step, loss, acts, accuracy): fired after the gradient of step s
  is computed and before the parameters move, so everything recorded for step s
  is measured at the same parameters theta_s (step 0 is the initialisation);
- on_eval(step, metrics): test metrics at theta_s, every `eval_every` steps, at step 0
  and at the last step when it is known before the parameters move (the end of the run,
  a `stop_at`, an early stop): the rows between stay NaN;
- on_flush(start, stop, series): rows [start, stop) of every series are final
  (every `flush_every` steps and at the end): the store persists them here;
- on_finish(status): once, when the run stops for any reason.

`step()` and `run(n)` let a caller pause and resume; `cancel()` may be called
from another thread. A run given `stop_at` ends "cancelled" once it has done that
many steps, and a cancel sets `stop_at` to the steps already begun, so the step a
cancelled run stops at is known when the cancel is applied (and a rerun with that
`stop_at` stops at the same step). A run that ended cancelled gives a `checkpoint()`
from which `restore()` continues it, bitwise as if it had never stopped. A NaN/inf
loss ends the run as "diverged", keeping every step recorded before it. A run with an
early-stop condition (config.stop) ends "finished" at the step the condition is met,
with `info["stopped_early"]` saying where and why.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from featurelab.engine.config import ExperimentConfig
from featurelab.engine.data import build_dataset, seed_for
from featurelab.engine.events import Events
from featurelab.engine.models import HOOK_KINDS, MLP, build_model, parse_hook_point
from featurelab.engine.observables import Recorder, plan_observables
from featurelab.engine.optim import build_optimizer
from featurelab.engine.predictions import PREDICTIONS, predict, prediction_rows
from featurelab.engine.resources import check_resources
from featurelab.engine.results import RunResult
from featurelab.engine.snapshots import Snapshots
from featurelab.engine.stats import StatisticRegistry
from featurelab.engine.steps import choose_step
from featurelab.engine.stopping import EarlyStop
from featurelab.errors import FeaturelabError, disk_full

EVENTS = ("on_step_end", "on_eval", "on_flush", "on_finish")
CLOCK_POINTS = 2048  # at most this many [step, seconds] pairs in info["clock"]
CHECKPOINT_FORMAT = 1  # the layout of Trainer.checkpoint(); restore() refuses others
# Statuses a run can end in; "running" and "ready" are the live ones.
FINAL_STATUSES = ("finished", "cancelled", "diverged", "failed")


def _layer_params(model: MLP) -> dict[str, list[Tensor]]:
    groups: dict[str, list[Tensor]] = {}
    for name, p in model.named_parameters():
        layer = ".".join(name.split(".")[:2]) if name.startswith("layers.") else name.split(".")[0]
        groups.setdefault(layer, []).append(p)
    return groups


class Trainer:
    def __init__(self, config: ExperimentConfig, statistics: StatisticRegistry | None = None,
                 snapshot_dir: Path | None = None, flush_every: int = 50,
                 fused_step: bool = True, stop_at: int | None = None) -> None:
        self.config = cfg = config
        self.statistics = statistics or StatisticRegistry()
        # Before any allocation: a run that cannot fit is refused, not OOM-killed.
        check_resources(cfg, snapshot_dir)
        self.data = build_dataset(cfg.data, cfg.seed)
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            torch.manual_seed(cfg.seed)  # as a bare torch script would seed its init
            self.model = build_model(cfg.model, vocab=cfg.data.p if cfg.data.is_classification
                                     else 0)
        self.optim = build_optimizer(list(self.model.named_parameters()), cfg.optimizer,
                                     self.model.hidden_matrices())
        n_train = len(self.data.x_train)
        shapes = self.model.hook_shapes(n_train)
        self.plan = plan_observables(cfg.observables, self.statistics, shapes,
                                     self.data.classification, self.model.weight_points())
        self.n_steps = cfg.optimizer.steps
        self.batch_size = cfg.optimizer.batch_size
        if not self.batch_size or self.batch_size >= n_train:
            self.batch_size = 0  # full batch
        self._batch_gen = torch.Generator().manual_seed(seed_for(cfg.seed, "batches"))
        self._order: Tensor | None = None
        self.snapshots = None
        snap_shapes: dict[str, tuple[int, int]] = {}
        if self.plan.snapshots:
            kinds = {"pre": ("pre",), "post": ("post",), "all": HOOK_KINDS}
            keep = cfg.snapshots.max_samples or n_train
            snap_shapes = {p: (min(keep, s[0]), s[1]) for p, s in shapes.items()
                           if (parse_hook_point(p) or (0, ""))[1] in kinds[cfg.snapshots.points]}
        self._prediction_rows = None
        if self.plan.predictions:  # kept beside the activations, as one more "point"
            self._prediction_rows = prediction_rows(self.data)
            snap_shapes[PREDICTIONS] = (self._prediction_rows.rows, 1)
        if snap_shapes or self.plan.snapshots:
            self.snapshots = Snapshots.allocate(snap_shapes, cfg.snapshots.steps(self.n_steps),
                                                snapshot_dir)
        capture = self.plan.capture
        if self.plan.snapshots and not self.batch_size:  # full batch: the step's own acts
            capture = capture | frozenset(p for p in snap_shapes if p != PREDICTIONS)
        self.stepper = choose_step(self.model, cfg.loss, capture, fused=fused_step)
        self.eval_every = cfg.eval_every
        self._eval_rows = None
        # Folding the test rows into every step's forward is today's bitwise behaviour;
        # with sparser evaluations a step trains on its own rows, evaluated apart.
        if (self.plan.needs_eval and not self.batch_size and len(self.data.x_test)
                and self.eval_every == 1):
            self._eval_rows = torch.cat([self.data.x_train, self.data.x_test])
        self.early_stop = EarlyStop(cfg.stop, cfg.eval_every) if cfg.stop.metric else None
        self.events = Events(EVENTS)
        self.recorder = Recorder(self.plan, self.statistics, self.n_steps,
                                 _layer_params(self.model), flush_every,
                                 on_flush=self._flushed,
                                 weights=self.model.weight_points)
        self.events.subscribe("on_step_end", self.recorder.on_step_end)
        self.events.subscribe("on_eval", self.recorder.on_eval)
        self.step_count = 0
        # seconds spent in the steps' passes and updates, the part their threads speed up
        # (not recording, snapshots, flushes): what ThreadGovernor compares counts by
        self.compute_seconds = 0.0
        self.status = "ready"
        self.error = ""
        # The run ends "cancelled" when step_count reaches stop_at. _stop_lock makes a
        # step's "may I begin?" and a cancel's "where do we stop?" one after the other, so
        # a cancel knows the exact step the run ends at.
        self.stop_at = stop_at
        self._stop_lock = threading.Lock()
        self._begun = 0  # steps begun: step_count, or step_count + 1 while a step runs
        self._in_step = False
        self._consistent = True  # False once a step was cut short: no checkpoint then
        self.info = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "step_impl": self.stepper.name,
            "optimizer_impl": self.optim.implementation,
            "batch": self.batch_size or "full",
            # [step, seconds since this run's first step] at its first step and at every
            # flush: the wall-clock x axis of charts, read between flushes by interpolation
            "clock": [],
        }
        self._clock0: float | None = None
        self._started = False  # run() has been called
        self.events.subscribe("on_flush", self._tick)


    # -- stepping -----------------------------------------------------------------------

    def _batch(self, step: int) -> tuple[Tensor, Tensor]:
        x, y = self.data.x_train, self.data.y_train
        if not self.batch_size:
            return x, y
        per_epoch = len(x) // self.batch_size
        k = step % per_epoch
        if k == 0 or self._order is None:
            self._order = torch.randperm(len(x), generator=self._batch_gen)
        idx = self._order[k * self.batch_size:(k + 1) * self.batch_size]
        return x[idx], y[idx]

    def step(self) -> bool:
        """One optimizer step with its measurements; False once the run has ended."""
        if self.status in FINAL_STATUSES:
            return False
        s = self.step_count
        if s >= self.n_steps:
            return self._finish("finished")
        if not self._begin(s):
            return self._finish("cancelled")
        self.status = "running"
        try:
            self._step(s)
        except Exception as exc:  # keep what was recorded; say what broke
            self.error = _failure(f"step {s}", exc)
            return self._finish("failed")
        self._in_step = False  # not reached when an interrupt cuts the step short
        if self.error:  # the loss became NaN/inf
            return self._finish("diverged")
        if self.early_stop is not None and self.early_stop.step is not None:
            return self._finish("finished")
        if self.step_count >= self.n_steps:
            return self._finish("finished")
        return True

    def _tick(self, start: int, stop: int, series: Any) -> None:
        clock = self.info["clock"]
        if self._clock0 is None or (clock and stop <= clock[-1][0]):
            return
        clock.append([stop, round(time.monotonic() - self._clock0, 4)])
        if len(clock) > CLOCK_POINTS:  # a long run keeps every other point (and its last)
            clock[:] = clock[:-1:2] + clock[-1:]

    def _flushed(self, start: int, stop: int, series: Any) -> None:
        self.events.emit("on_flush", start, stop, series)
        # steps.npy follows the series: a run killed half-way (or one a worker trains,
        # read by the kernel meanwhile) has its snapshots up to the last flush readable.
        # After the listeners: a disk too full for it still leaves the chunk in the store.
        if self.snapshots is not None and self.snapshots.directory is not None:
            self.snapshots.flush()

    def _begin(self, s: int) -> bool:
        """Claims step s unless the run is to stop before it."""
        if self._clock0 is None:
            self._clock0 = time.monotonic()
            self.info["clock"].append([s, 0.0])
        with self._stop_lock:
            if self.stop_at is not None and s >= self.stop_at:
                return False
            self._begun, self._in_step = s + 1, True
            return True

    def _step(self, s: int) -> None:
        self.optim.set_step(s)
        x, y = self._batch(s)
        n = len(x)
        if self._eval_rows is not None:  # full batch: test rows ride along the forward
            x = self._eval_rows
        began = time.perf_counter()
        out = self.stepper(x, y, n)
        self.compute_seconds += time.perf_counter() - began
        loss = out.loss.item()
        accuracy = None
        if self.data.classification:
            accuracy = (out.output.argmax(1) == y).float().mean().item()
        evaluated = self.plan.needs_eval and self._eval_due(s)
        if evaluated:
            metrics = (self.evaluate() if out.eval_output is None
                       else self._metrics(out.eval_output, self.data.y_test))
            self.events.emit("on_eval", s, metrics)
        self.events.emit("on_step_end", s, loss, out.acts, accuracy)
        stopping = self._stops_early(s)
        if stopping and self.plan.needs_eval and not evaluated:  # its last step: measured
            self.events.emit("on_eval", s, self.evaluate())
        if self.snapshots and self.snapshots.is_due(s):
            acts = out.acts if not self.batch_size or not self.plan.snapshots \
                else self._full_batch_acts()
            if self._prediction_rows is not None:  # at the parameters the step measured
                acts = {**acts, PREDICTIONS: predict(self.model, self._prediction_rows,
                                                     self.data.classification)}
            self.snapshots.take(s, acts)
        self.step_count = s + 1
        if not math.isfinite(loss):
            self.error = (f"loss became {loss} at step {s}; the run stopped there "
                          f"(lr={self.config.optimizer.lr:g} may be too high)")
            return
        if stopping:
            return
        began = time.perf_counter()
        self.optim.optimizer.step()
        self.compute_seconds += time.perf_counter() - began

    def _eval_due(self, s: int) -> bool:
        """Whether test metrics are measured at step s: on schedule, or at the run's last
        step as far as it is known before the step ends (a cancel may come later)."""
        stop_at = self.stop_at
        return (s % self.eval_every == 0 or s == self.n_steps - 1
                or (stop_at is not None and s + 1 >= stop_at))

    def _stops_early(self, s: int) -> bool:
        """Whether the early-stop condition is met at step s (its metric is recorded)."""
        if self.early_stop is None:
            return False
        metric = self.config.stop.metric
        if not self.early_stop.update(s, float(self.recorder.series[metric][s])):
            return False
        self.info["stopped_early"] = {"step": s, "reason": self.config.stop.text}
        return True

    @torch.no_grad()
    def _full_batch_acts(self) -> dict[str, Tensor]:
        points = self.snapshots.points if self.snapshots is not None else ()
        _, acts = self.model(self.data.x_train, frozenset(points) - {PREDICTIONS})
        return acts

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Test metrics at the current parameters."""
        if not len(self.data.x_test):
            return {}
        out, _ = self.model(self.data.x_test)
        return self._metrics(out, self.data.y_test)

    def _metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        if self.data.classification:
            return {"test_loss": F.cross_entropy(out, y).item(),
                    "test_accuracy": (out.argmax(1) == y).float().mean().item()}
        return {"test_loss": F.mse_loss(out, y).item()}

    def run(self, n: int | None = None) -> str:
        """Steps until the end of the run, or n more steps; returns the status."""
        if not self._started:  # not again when a Ctrl-C's run() goes on, or a worker's
            self._started = True  # next chunk: the count it started with
            self.info["threads"] = torch.get_num_threads()  # of the thread that trains
            # [step, threads] at the start and at each change (engine/threads.py); a run
            # whose threads nobody changes keeps the count it started with
            self.info.setdefault("thread_plan", [[self.step_count, self.info["threads"]]])
        stop = self.n_steps if n is None else min(self.n_steps, self.step_count + n)
        while self.step_count < stop and self.step():
            pass
        if self.step_count >= self.n_steps:
            self.step()  # closes the run: flush, on_finish
        else:
            self.recorder.flush()
        return self.status

    def cancel(self) -> int | None:
        """Stops the run once the steps already begun are done; safe from any thread.
        Returns the step count it ends at, exactly (None if it has ended already)."""
        with self._stop_lock:
            if self.status in FINAL_STATUSES:
                return None
            if self.stop_at is None or self._begun < self.stop_at:
                self.stop_at = self._begun
            return self.stop_at

    def interrupt(self) -> None:
        """Stops at once (the notebook's stop button). The interrupt may have cut a step
        short, leaving parameters and counters out of step: no checkpoint then."""
        with self._stop_lock:
            self._consistent = self._consistent and not self._in_step
            now = self.step_count
            self.stop_at = now if self.stop_at is None else min(self.stop_at, now)

    # -- checkpoints: continuing a cancelled run ----------------------------------------

    def checkpoint(self) -> dict[str, Any] | None:
        """What continuing this cancelled run needs besides its series and snapshots:
        parameters, optimizer state and the batch stream, at step_count. None unless the
        run ended cancelled between two steps."""
        if self.status != "cancelled" or not self._consistent:
            return None
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step_count,
            "config_hash": self.config.content_hash(),
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optim.optimizer.state_dict()),
            "batch_generator": self._batch_gen.get_state(),
            "order": None if self._order is None else self._order.clone(),
            "stat_errors": dict(self.recorder.stat_errors),
        }

    def restore(self, checkpoint: dict[str, Any], arrays: dict[str, Any],
                snapshots: Snapshots | None) -> None:
        """Continues a cancelled run of the same config from its checkpoint, with its
        series (the rows before the checkpoint's step) and its snapshots. The rows are
        flushed at once, so a store subscribed to on_flush holds them too."""
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise FeaturelabError(f"checkpoint format {checkpoint.get('format')!r}; this "
                                  f"featurelab reads format {CHECKPOINT_FORMAT}")
        step = checkpoint["step"]
        if checkpoint.get("config_hash") != self.config.content_hash():
            raise FeaturelabError("the checkpoint is of another config; it continues only "
                                  "a run of the config it was saved from")
        if self.step_count or not 0 <= step < self.n_steps:
            raise FeaturelabError(f"cannot continue from step {step}: the run is at step "
                                  f"{self.step_count} of {self.n_steps}")
        self.model.load_state_dict(checkpoint["model"])
        self.optim.optimizer.load_state_dict(checkpoint["optimizer"])
        self._batch_gen.set_state(checkpoint["batch_generator"])
        self._order = checkpoint["order"]
        if snapshots is not None and self.snapshots is not None:
            _copy_snapshots(snapshots, self.snapshots)
        self.recorder.restore(step, arrays, checkpoint["stat_errors"])
        if self.early_stop is not None:
            self.early_stop.resume(self.recorder.series[self.config.stop.metric][:step])
        self.step_count = self._begun = step
        if step:
            self.events.emit("on_flush", 0, step, self.recorder.series)

    def _finish(self, status: str) -> bool:
        if self.status not in FINAL_STATUSES:
            self.status = status
            try:
                self.recorder.flush()
                if self.snapshots:
                    self.snapshots.flush()
            except Exception as exc:  # the last rows could not be kept (a full disk): the
                # run failed, and what earlier flushes wrote stays readable
                if status != "failed":
                    why = _failure("the last flush", exc)
                    self.error = f"{self.error}; then {why}" if self.error else why
                self.status = "failed"
            self.events.emit("on_finish", self.status)
        return False

    @property
    def progress(self) -> float:
        if self.status == "finished":  # an early stop ends it before n_steps
            return 1.0
        return self.step_count / self.n_steps

    @property
    def series(self) -> dict[str, Any]:
        """The recorder's arrays, live: rows up to step_count - 1 hold values (those
        computed per step; per-layer statistics up to the last flush)."""
        return self.recorder.series

    def recorded(self) -> RunResult:
        """What the run has recorded up to its last flush, read from memory without
        changing anything: safe from another thread while it trains (the panel)."""
        done = self.recorder.steps_done
        series = dict(self.recorder.series)  # one copy in C, atomic: the trainer may add keys
        return RunResult(
            config=self.config,
            status="running" if self.status == "ready" else self.status,
            steps_done=done,
            arrays={k: v[:done] for k, v in series.items()},
            info=dict(self.info),
            error=self.error,
            stat_errors=dict(self.recorder.stat_errors),
            snapshots=self.snapshots,
        )

    def result(self) -> RunResult:
        """What the run has recorded so far (all of it once it has ended)."""
        self.recorder.flush()
        done = self.recorder.steps_done
        return RunResult(
            config=self.config,
            status=self.status,
            steps_done=done,
            arrays={k: v[:done] for k, v in self.recorder.series.items()},
            info=dict(self.info),
            error=self.error,
            stat_errors=dict(self.recorder.stat_errors),
            snapshots=self.snapshots,
        )


def _failure(where: str, exc: Exception) -> str:
    """Why a run failed, for its status line: a full disk says "disk full: <file>" (the
    run did nothing wrong), anything else its exception."""
    full = disk_full(exc)
    if full is not None:
        return str(full.at(f"at {where}"))
    return f"{where} failed: {type(exc).__name__}: {exc}"


def _copy_snapshots(source: Snapshots, target: Snapshots) -> None:
    """The snapshots a cancelled run took, into the run that continues it."""
    count = source.count
    if list(source.steps) != target.schedule[:count]:
        raise FeaturelabError(f"the snapshots to continue from were taken at steps "
                              f"{list(source.steps)[:5]}..., not on this run's schedule")
    for point, array in target.arrays.items():
        if point in source.arrays:
            array[:count] = source.arrays[point][:count]
    target.count = count
    target.flush()
