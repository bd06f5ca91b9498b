"""What a run will need, estimated from its config before anything is allocated.

A config of widths 65536 (68.7 GB with Adam) or a snapshot plan of a terabyte passes
every range check, and then the kernel is OOM-killed, or the disk fills half-way. So
experiment creation and the trainer compare an estimate of the run's memory (parameters,
gradients, optimizer state, data, a step's activations, recorded series) and disk
(snapshots, series in the lab's database) with what this machine has now, and refuse
with a ConfigError that gives the numbers. The estimate counts what grows with the
config (float32 everywhere), not the interpreter's and torch's own few hundred MB.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from featurelab.engine.config import ExperimentConfig
from featurelab.engine.models import hook_shapes, parse_hook_point
from featurelab.engine.observables import NAMED_OBSERVABLES
from featurelab.engine.predictions import CHUNK, GRID_1D, GRID_2D, kept_rows
from featurelab.errors import ConfigError

FLOAT = 4  # bytes: data, parameters, activations and series are float32
# Tensors of the parameters' size each optimizer keeps (momentum; Adam's two moments;
# Muon's momentum and the AdamW moments of the rest, counted as two of the whole).
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "muon": 2}
# A step keeps pre- and post-activations for the backward pass and their gradients.
ACTIVATION_COPIES = 4
# Which config field to name when a part is the biggest: what shrinks it most directly.
BLAME = {"parameters": "model.widths", "gradients": "model.widths",
         "optimizer state": "model.widths", "data": "data.n_train",
         "teacher": "data.teacher_widths",
         "activations": "data.n_train", "recorded series": "optimizer.steps",
         "snapshots": "snapshots.schedule", "series in the database": "optimizer.steps"}


@dataclass(frozen=True)
class Needs:
    memory: dict[str, int]  # part -> bytes
    disk: dict[str, int]


def _params(config: ExperimentConfig) -> int:
    m, d = config.model, config.data
    widths = list(m.widths)
    embed = 0
    if m.kind == "embed_mlp":  # two tokens embedded in widths[0] dims each, then an MLP
        embed, widths[0] = d.p * widths[0], 2 * widths[0]
    bias = 1 if m.bias else 0
    return embed + sum(a * b + bias * b for a, b in itertools.pairwise(widths))


def _pairs(config: ExperimentConfig) -> int:
    """Samples of a modular task: every pair (a, b), without b = 0 for division."""
    d = config.data
    return d.p * (d.p - 1) if d.op == "/" else d.p * d.p


def _rows(config: ExperimentConfig) -> tuple[int, int]:
    """(training rows, rows a step's forward pass sees)."""
    d = config.data
    if d.is_classification:
        pairs = _pairs(config)
        n_train = max(1, min(pairs - 1, round(d.train_frac * pairs)))
        n_all = pairs
    else:
        n_train, n_all = d.n_train, d.n_train + d.n_test
    batch = config.optimizer.batch_size
    return n_train, (batch if 0 < batch < n_train else n_all)  # full batch: test rides along


def _series_width(config: ExperimentConfig) -> int:
    """Floats recorded per step: scalars, and a row per neuron for each statistic (a
    per-layer one is counted as wide as its layer: an upper bound)."""
    shapes = hook_shapes(config)
    pre = [p for p in shapes if (parse_hook_point(p) or (0, ""))[1] == "pre"]
    width = 0
    for spec in config.observables:
        name, _, point = spec.partition("@")
        if name in NAMED_OBSERVABLES and not point:
            width += len(config.model.widths) if name == "weight_l2_norm" else 1
        else:
            width += sum(shapes[p][1] for p in ([point] if point in shapes else pre))
    return width


def _prediction_rows(config: ExperimentConfig) -> int:
    """Rows of the predictions kept per snapshot (engine/predictions.py)."""
    d = config.data
    if d.is_classification:
        n_train, n_all = _rows(config)[0], _pairs(config)
        return sum(kept_rows(n_train, n_all - n_train))
    grid = {1: GRID_1D, 2: GRID_2D * GRID_2D}.get(d.dim, 0)
    return sum(kept_rows(d.n_train, d.n_test)) + grid


def _snapshots(config: ExperimentConfig, n_train: int) -> int:
    steps = len(config.snapshots.steps(config.optimizer.steps))
    predictions = steps * _prediction_rows(config) * FLOAT \
        if "predictions" in config.observables else 0
    if "hidden_activations" not in config.observables:
        return predictions
    s = config.snapshots
    kinds = {"pre": ("pre",), "post": ("post",), "all": ("pre", "post")}[s.points]
    keep = min(s.max_samples or n_train, n_train)
    neurons = sum(n for p, (_, n) in hook_shapes(config).items()
                  if (parse_hook_point(p) or (0, ""))[1] in kinds)
    return steps * keep * neurons * FLOAT + predictions


def estimate(config: ExperimentConfig, snapshots_on_disk: bool) -> Needs:
    """What a run of `config` needs; its snapshots are in memory unless on disk."""
    d, steps = config.data, config.optimizer.steps
    params = _params(config) * FLOAT
    n_train, rows = _rows(config)
    if d.is_classification:
        data = _rows(config)[1] * 3 * 8  # two tokens and a class, int64
    else:  # x and y, and as much again twice while the target is computed (temporaries)
        data = (d.n_train + d.n_test) * (d.dim + 1) * FLOAT * 3
    teacher = 0
    if d.task == "teacher":  # the random teacher MLP, and its activations on the data
        widths = (d.dim, *d.teacher_widths, 1)
        teacher = (sum(a * b for a, b in itertools.pairwise(widths))
                   + (d.n_train + d.n_test) * max(widths) * 2) * FLOAT
    activations = rows * sum(config.model.widths[1:]) * ACTIVATION_COPIES * FLOAT
    if "predictions" in config.observables:  # their forward pass, a chunk at a time
        chunk = min(CHUNK, _prediction_rows(config))
        activations = max(activations, chunk * sum(config.model.widths[1:]) * 2 * FLOAT)
    series = steps * _series_width(config) * FLOAT
    snaps = _snapshots(config, n_train)
    memory = {"parameters": params, "gradients": params,
              "optimizer state": params * OPTIMIZER_STATES.get(config.optimizer.name, 2),
              "data": data, "teacher": teacher, "activations": activations,
              "recorded series": series}
    disk = {"series in the database": series}
    (disk if snapshots_on_disk else memory)["snapshots"] = snaps
    return Needs(memory, disk)


def available_memory() -> int | None:
    """Bytes this process could still allocate: MemAvailable, or less where a cgroup
    (a container, a job scheduler) caps the memory. None where nothing says."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    limit = _cgroup_room()
    if limit is not None:
        found.append(limit)
    return min(found) if found else None


def _cgroup_room() -> int | None:
    """Limit minus usage of this process's cgroup (v2, else v1), if it has a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as a huge number
            return None
        return max(0, int(limit) - usage)
    return None


def free_disk(directory: Path) -> int | None:
    """Free bytes on the disk that holds `directory` (or would: its nearest parent)."""
    path = Path(directory).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def _refuse(config: ExperimentConfig, parts: dict[str, int], room: int, what: str,
            where: str) -> None:
    total = sum(parts.values())
    if total <= room:
        return
    biggest = max(parts, key=lambda k: parts[k])
    field = BLAME[biggest]
    if field == "data.n_train" and config.data.is_classification:
        field = "data.p"
    section, name = field.split(".")
    value = config.to_dict()[section][name]  # lists, as the config was written
    shown = ", ".join(f"{k} {_size(v)}" for k, v in parts.items() if v >= total / 1000)
    raise ConfigError(field, value,
                      f"a smaller run: it needs about {_size(total)} of {what} ({shown}); "
                      f"{where} has {_size(room)} available")


def check_resources(config: ExperimentConfig, snapshot_dir: Path | None = None) -> Needs:
    """Refuses (ConfigError) a config whose run would not fit in this machine's memory,
    or whose snapshots and series would not fit on the disk of `snapshot_dir` (None:
    snapshots are kept in memory). Returns the estimate."""
    needs = estimate(config, snapshots_on_disk=snapshot_dir is not None)
    memory = available_memory()
    if memory is not None:
        _refuse(config, needs.memory, memory, "memory", "this machine")
    if snapshot_dir is not None:
        disk = free_disk(snapshot_dir)
        if disk is not None:
            _refuse(config, needs.disk, disk, "disk", f"the disk of {snapshot_dir}")
    return needs
