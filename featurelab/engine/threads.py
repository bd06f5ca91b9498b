"""How many intra-op threads a run trains with, chosen from its model's size.

Small models lose with two threads: the work of a step is split into pieces too small
to pay for waking a second thread, and under load (anything else busy on this 2-core
machine) a parallel kernel waits for a core. Measured with benchmarks/engine.py on the
reference experiment (10-100-100-1, 500 rows, about 37 MFLOP a step): 2.2 s at one thread
against 2.8 s at two on a quiet machine, and 2.95 s against 14.5 s beside a CPU-burning
process. Wider models are the other way round: 10-150-150-1 (about 80 MFLOP a step) trains
300 steps in 0.65 s at one thread against 0.42 s at two, 10-512-512-1 (0.9 GFLOP) 2000
steps in 30 s against 18 s. A step of THREADED_FLOPS or more gets the process's default.
This is the kernel's foreground run; a run in a background thread or a worker process
trains at one thread (those run beside others). The count is recorded with the run
(`info["threads"]`), and replay calls series bitwise equal only where it matches: a wide
model trained by a sweep's worker and replayed in the foreground differs in its last
bits (a sum split over two threads adds in another order).
"""

from __future__ import annotations

import itertools

import torch

from featurelab.engine.config import ExperimentConfig

THREADED_FLOPS = 6e7  # a step's floating-point operations from which threads pay


def step_flops(config: ExperimentConfig) -> float:
    """About the floating-point operations of one training step: the forward pass over
    the rows it sees (the training batch, plus the test rows that ride along a full
    batch) and a backward pass twice as costly over the batch."""
    widths = list(config.model.widths)
    per_row = 2 * sum(a * b for a, b in itertools.pairwise(widths))
    d = config.data
    if d.is_classification:
        pairs = d.p * (d.p - 1) if d.op == "/" else d.p * d.p
        n_train = max(1, min(pairs - 1, round(d.train_frac * pairs)))
        n_test = pairs - n_train
    else:
        n_train, n_test = d.n_train, d.n_test
    batch = min(config.optimizer.batch_size or n_train, n_train)
    forward_rows = batch + (n_test if batch == n_train else 0)
    return float(per_row * (forward_rows + 2 * batch))


def choose_threads(config: ExperimentConfig, default: int | None = None) -> int:
    """One thread for a small model, the default (torch's, the cores) for a large one."""
    default = default or torch.get_num_threads()
    return 1 if step_flops(config) < THREADED_FLOPS else max(1, default)
