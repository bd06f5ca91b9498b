"""Raw activation snapshots on a schedule, so statistics defined after a run can
be computed at once on them.

One `.npy` per hook point holds every snapshot as (K, S, N); it is allocated
for the whole schedule up front and filled in place (a memory map when the run
has a directory, an array in memory otherwise). `steps.npy` lists the steps
actually written and is rewritten on every flush: a run killed half-way leaves
the snapshots up to the last flush readable, and unwritten rows are never read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from featurelab.errors import FeaturelabError

STEPS_FILE = "steps.npy"


def _file(directory: Path, point: str) -> Path:
    return directory / f"{point}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


class Snapshots:
    """Activations of some hook points at scheduled steps."""

    def __init__(self, arrays: dict[str, np.ndarray], schedule: list[int],
                 directory: Path | None = None, count: int = 0) -> None:
        self.arrays = arrays  # point -> (K, S, N), K = len(schedule)
        self.schedule = schedule
        self.directory = directory
        self.count = count  # rows written so far
        self._due = {step: k for k, step in enumerate(schedule)}

    @classmethod
    def allocate(cls, shapes: dict[str, tuple[int, int]], schedule: list[int],
                 directory: Path | None = None) -> Snapshots:
        arrays = {}
        for point, (samples, neurons) in shapes.items():
            shape = (len(schedule), samples, neurons)
            if directory is None:
                arrays[point] = np.zeros(shape, dtype=np.float32)
            else:
                directory.mkdir(parents=True, exist_ok=True)
                arrays[point] = np.lib.format.open_memmap(
                    _file(directory, point), mode="w+", dtype=np.float32, shape=shape)
        snaps = cls(arrays, schedule, directory)
        snaps.flush()
        return snaps

    @classmethod
    def load(cls, directory: Path) -> Snapshots:
        """Opens the snapshots of a finished (or interrupted) run, read-only."""
        steps_path = directory / STEPS_FILE
        if not steps_path.exists():
            raise FeaturelabError(f"no snapshots in {directory}")
        written = np.load(steps_path).tolist()
        arrays = {p.name[: -len(".npy")]: np.load(p, mmap_mode="r")
                  for p in sorted(directory.glob("*.npy"))
                  if p.name != STEPS_FILE and not p.name.endswith(".tmp.npy")}
        return cls(arrays, written, directory, count=len(written))

    def saved_to(self, directory: Path) -> Snapshots:
        """These snapshots written under `directory` (from a worker on another machine,
        whose own files the kernel cannot read), as the run's files are laid out."""
        directory.mkdir(parents=True, exist_ok=True)
        for point, array in self.arrays.items():
            _save_atomic(_file(directory, point), np.asarray(array))
        _save_atomic(directory / STEPS_FILE, self.steps)
        return Snapshots.load(directory)

    def is_due(self, step: int) -> bool:
        return step in self._due

    def take(self, step: int, acts: dict[str, Tensor]) -> None:
        k = self._due[step]
        for point, array in self.arrays.items():
            a = acts[point]
            array[k] = a[: array.shape[1]].numpy()  # (S, N)
        self.count = k + 1

    def flush(self) -> None:
        # No msync of the maps: their dirty pages belong to the files and reach disk
        # even if the process is killed; forcing them out would cost a synchronous
        # write of every snapshot at each flush.
        if self.directory is None:
            return
        _save_atomic(self.directory / STEPS_FILE, np.asarray(self.steps, dtype=np.int64))

    @property
    def steps(self) -> np.ndarray:
        return np.asarray(self.schedule[: self.count], dtype=np.int64)

    @property
    def points(self) -> list[str]:
        return list(self.arrays)

    def stack(self, point: str) -> Tensor:
        """The written snapshots of one point as a tensor (K, S, N), without copying."""
        if point not in self.arrays:
            raise FeaturelabError(f"no snapshots of {point!r}; have: {', '.join(self.arrays)}")
        array = self.arrays[point][: self.count]
        if not array.flags.writeable:  # a reopened run's read-only map: torch needs a copy
            array = np.array(array)
        return torch.from_numpy(np.asarray(array))

    def at(self, point: str, step: int) -> np.ndarray:
        """The snapshot nearest to `step` at or before it, as (S, N)."""
        steps = self.steps
        if not len(steps):
            raise FeaturelabError("no snapshot has been taken yet")
        k = max(0, int(np.searchsorted(steps, step, side="right")) - 1)
        return np.asarray(self.arrays[point][k])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.arrays.values())
