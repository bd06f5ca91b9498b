"""Raw activation snapshots on a schedule, so statistics defined after a run can
be computed at once on them.

One `.npy` per hook point holds every snapshot as (K, S, N); it is allocated
for the whole schedule up front and filled in place (a memory map when the run
has a directory, an array in memory otherwise). `steps.npy` lists the steps
actually written and is rewritten on every flush: a run killed half-way leaves
the snapshots up to the last flush readable, and unwritten rows are never read.

A mapped file gets its disk blocks when it is allocated (posix_fallocate): a write into
a map that finds the disk full is a SIGBUS that kills the kernel, while a reservation
that finds it full is an error the run can end on ("disk full: ...", a DiskFullError).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from featurelab.errors import FeaturelabError, StoreError, disk_full

STEPS_FILE = "steps.npy"


def _file(directory: Path, point: str) -> Path:
    return directory / f"{point}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    except OSError as exc:  # the old file stays whole; a full disk says so
        tmp.unlink(missing_ok=True)
        full = disk_full(exc, path)
        if full is None:
            raise
        raise full from exc


def _mapped(path: Path, shape: tuple[int, ...]) -> np.memmap:
    """A zero-filled float32 .npy of `shape`, mapped for writing, its disk space taken."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    _reserve(path, array.offset, path.stat().st_size)
    return array


def _reserve(path: Path, start: int, stop: int) -> None:
    """Allocates the blocks of bytes [start, stop) of a sparse file now, so that no write
    into its map can fault later; raises OSError (ENOSPC, EDQUOT, EFBIG) if there is no
    room. (A copy-on-write file system such as ZFS cannot promise this; ext4, xfs, btrfs
    and tmpfs do.)"""
    with open(path, "r+b") as f:
        fallocate = getattr(os, "posix_fallocate", None)  # not on macOS
        if fallocate is not None:
            try:
                fallocate(f.fileno(), start, stop - start)
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
        f.seek(start)  # no fallocate here: writing the zeros allocates them as well
        chunk = bytes(1 << 20)
        for at in range(start, stop, len(chunk)):
            f.write(chunk[: min(len(chunk), stop - at)])
        f.flush()
        os.fsync(f.fileno())  # delayed allocation would only find the disk full later


class _Damaged:
    """Stands for what a damaged file held (a point's snapshots, or the list of steps):
    any read of it raises, naming the file, while what other files hold stays readable."""

    nbytes = 0

    def __init__(self, path: Path, problem: str, readable: str) -> None:
        self.path = path.absolute()
        self.problem = problem
        self.readable = readable

    def _fail(self) -> StoreError:
        return StoreError(self.path, self.problem, f"{self.readable} readable; "
                          "lab.run(experiment, force=True) records the run again")

    def __getitem__(self, index: object) -> np.ndarray:
        raise self._fail()

    def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
        raise self._fail()

    def __iter__(self) -> Iterator[int]:  # no step is known to be due: none is taken
        return iter(())


def _why(exc: Exception) -> str:
    """numpy's reason a file is not a .npy array, without its advice to unpickle it."""
    return "not a .npy array" if "pickle" in str(exc) else str(exc)


class Snapshots:
    """Activations of some hook points at scheduled steps."""

    def __init__(self, arrays: dict[str, np.ndarray], schedule: list[int],
                 directory: Path | None = None, count: int = 0) -> None:
        self.arrays = arrays  # point -> (K, S, N), K = len(schedule)
        self.schedule = schedule
        self.directory = directory
        self.count = count  # rows written so far
        self._flushed = -1  # rows steps.npy lists (-1: not written by this object)
        self._due = {step: k for k, step in enumerate(schedule)}

    @classmethod
    def allocate(cls, shapes: dict[str, tuple[int, int]], schedule: list[int],
                 directory: Path | None = None) -> Snapshots:
        arrays = {}
        if directory is not None:  # even with no point to keep (no hidden layer): steps.npy
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                full = disk_full(exc, directory)
                if full is None:
                    raise
                raise full from exc
        try:
            for point, (samples, neurons) in shapes.items():
                shape = (len(schedule), samples, neurons)
                if directory is None:
                    arrays[point] = np.zeros(shape, dtype=np.float32)
                    continue
                path = _file(directory, point)
                try:
                    arrays[point] = _mapped(path, shape)
                except OSError as exc:
                    path.unlink(missing_ok=True)
                    full = disk_full(exc, path)
                    if full is None:
                        raise
                    raise full from exc
            snaps = cls(arrays, schedule, directory)
            snaps.flush()
        except Exception:  # no room for all of them: give back what the others took
            if directory is not None:
                for point in list(arrays):
                    del arrays[point]
                    _file(directory, point).unlink(missing_ok=True)
            raise
        return snaps

    @classmethod
    def load(cls, directory: Path) -> Snapshots:
        """Opens the snapshots of a finished (or interrupted) run, read-only. A damaged
        file (truncated, overwritten) costs only what is in it: its point raises, naming
        the file, when it is read; the other points and the run's series (in the store)
        stay readable. A damaged steps.npy makes every point of the run unreadable."""
        steps_path = directory / STEPS_FILE
        if not steps_path.exists():
            raise FeaturelabError(f"no snapshots in {directory}")
        files = {p.name[: -len(".npy")]: p for p in sorted(directory.glob("*.npy"))
                 if p.name != STEPS_FILE and not p.name.endswith(".tmp.npy")}
        try:
            written = np.load(steps_path, allow_pickle=False)
            if written.ndim != 1 or written.dtype.kind not in "iu":
                raise ValueError(f"holds a {written.dtype} array of shape {written.shape}, "
                                 "not a list of steps")
        except (OSError, ValueError, EOFError) as exc:
            # Which rows were written is unknown: every read of any point (steps, a
            # snapshot) names this file. count 1 sends the readers there, not to "none yet".
            steps = _Damaged(steps_path, f"is damaged ({_why(exc)}), so it is unknown which "
                             "snapshots of the run were written", "the run's series are")
            return cls({p: steps for p in files}, steps, directory,  # type: ignore[arg-type]
                       count=1)
        arrays: dict[str, np.ndarray] = {}
        for point, path in files.items():
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
                if array.ndim != 3 or len(array) < len(written):
                    raise ValueError(f"holds shape {array.shape}, not {len(written)} or more "
                                     "snapshots of (samples, neurons)")
                arrays[point] = array
            except (OSError, ValueError, EOFError) as exc:  # truncated, overwritten, ...
                arrays[point] = _Damaged(  # type: ignore[assignment]
                    path, f"is damaged ({_why(exc)})",
                    "the run's series and its snapshots of other layers are")
        return cls(arrays, written.tolist(), directory, count=len(written))

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
        if self.directory is None or self._flushed == self.count:
            return
        _save_atomic(self.directory / STEPS_FILE, np.asarray(self.steps, dtype=np.int64))
        self._flushed = self.count

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
