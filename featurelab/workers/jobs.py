"""A training job as another process (a worker of the local pool, a Ray task) runs it:
everything the trainer needs, picklable, and the messages it sends back.

The worker trains; it never writes the lab's store. What it records reaches the kernel
as messages, in order:

- ("started", info): the trainer exists (its threads, step and optimizer implementation);
- ("flush", start, stop, series): rows [start, stop) of every series are final;
- ("end", ending): status, error, info, stat_errors, steps_done, and the checkpoint of a
  cancelled run; the snapshots too when the run has no directory to write them to.

Snapshots with a directory are written there by the worker (files, as a run in the
kernel writes them), so only the series travel.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from featurelab.engine.config import ExperimentConfig
from featurelab.engine.models import hook_shapes, weight_shapes
from featurelab.engine.observables import plan_observables
from featurelab.engine.snapshots import Snapshots
from featurelab.engine.stats import StatisticRegistry
from featurelab.engine.train import FINAL_STATUSES, Trainer

Message = tuple[Any, ...]
_JOB_IDS = itertools.count(1)


def new_job_id() -> int:
    return next(_JOB_IDS)


@dataclass
class Job:
    config: dict[str, Any]  # ExperimentConfig.to_dict()
    statistics: list[tuple[str, str, str, bool]]  # DIY ones it needs: (name, on, source, trusted)
    snapshot_dir: str | None = None
    stop_at: int | None = None
    threads: int = 1
    # A cancelled run to continue: its checkpoint, its series before it, its snapshots
    # (a directory to read them from, or the Snapshots of an in-memory lab).
    resume: dict[str, Any] | None = None
    flush_every: int = 50
    id: int = 0  # the pool's number for it: a cancel names the job it means

    @property
    def start_step(self) -> int:
        """The step it starts at: 0, or the checkpoint's of a run it continues."""
        return int(self.resume["checkpoint"]["step"]) if self.resume else 0


def portable_statistics(registry: StatisticRegistry, config: ExperimentConfig
                        ) -> list[tuple[str, str, str, bool]] | None:
    """The DIY statistics a config records, as (name, on, source, trusted) in an order a
    fresh registry can define them in; None when one has no source text (a function
    Python could not find the source of), which only the kernel that holds it can run.
    An untrusted one goes as such: a worker never runs what the kernel would not."""
    plan = plan_observables(config.observables, registry, hook_shapes(config),
                            config.data.is_classification, weight_shapes(config))
    needed = dict.fromkeys(link for names in plan.stats.values() for name in names
                           for link in registry.chain(name))
    out = []
    for name in needed:  # chain order: what a statistic is defined on comes first
        stat = registry[name]
        if stat.builtin:
            continue
        if not stat.source:
            return None
        out.append((name, stat.on, stat.source, stat.trusted))
    return out


def registry_of(statistics: list[tuple[str, str, str, bool]]) -> StatisticRegistry:
    registry = StatisticRegistry()
    for name, on, source, trusted in statistics:
        registry.define(name, on=on, source=source, trusted=trusted)
    return registry


class JobRunner:
    """Trains one job, yielding its messages; `cancel()` is safe from another thread."""

    def __init__(self, job: Job) -> None:
        torch.set_num_threads(job.threads)
        self.job = job
        config = ExperimentConfig.from_dict(job.config)
        directory = None if job.snapshot_dir is None else Path(job.snapshot_dir)
        self.trainer = Trainer(config, registry_of(job.statistics), snapshot_dir=directory,
                               flush_every=job.flush_every, stop_at=job.stop_at)
        self._pending: list[Message] = []
        self.trainer.events.subscribe("on_flush", self._flushed)
        if job.resume is not None:
            resume = job.resume
            snapshots = resume.get("snapshots")
            if snapshots is None and resume.get("snapshot_dir"):
                snapshots = Snapshots.load(Path(resume["snapshot_dir"]))
            self.trainer.restore(resume["checkpoint"], resume["arrays"], snapshots)

    def _flushed(self, start: int, stop: int, series: dict[str, Any]) -> None:
        # Slices pickle as their own rows only; copied anyway, as the arrays keep changing.
        self._pending.append(("flush", start, stop,
                              {k: v[start:stop].copy() for k, v in series.items()}))

    def cancel(self) -> int | None:
        return self.trainer.cancel()

    def messages(self) -> Iterator[Message]:
        trainer = self.trainer
        yield ("started", dict(trainer.info))
        yield from self._drain()
        while trainer.status not in FINAL_STATUSES:
            try:
                trainer.run(self.job.flush_every)
            except KeyboardInterrupt:  # a Ray task cancelled: keep what ran
                trainer.interrupt()
                trainer.run()
            yield from self._drain()
        result = trainer.result()
        yield from self._drain()
        yield ("end", {
            "status": result.status, "error": result.error, "info": result.info,
            "stat_errors": result.stat_errors, "steps_done": result.steps_done,
            "checkpoint": trainer.checkpoint(),
            "snapshots": trainer.snapshots if self.job.snapshot_dir is None else None,
        })

    def _drain(self) -> Iterator[Message]:
        while self._pending:
            yield self._pending.pop(0)
