"""Engine cost against a naive bare torch loop, measured in one process.

    python benchmarks/engine.py [--repeats 3] [--steps 2000]

Runs the reference experiment of DESIGN.md with every observable on (train and
test loss, weight norms, hidden_activations snapshots written to disk, and both
layers' active_rate and the DIY nonlinear_rate) and a naive loop (nn.Sequential
+ torch.optim.Adam, no observables) on the same data and init, alternating them
so machine noise hits both alike. Prints the ratio of the best times (target
<= 1.0), the snapshot bytes on disk (target <= 100 MB) and the peak memory
growth during the featurelab run (target <= 300 MB).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import torch
from torch import nn

from featurelab import ExperimentConfig, StatisticRegistry, Trainer
from featurelab.engine.data import build_dataset


def compute_nonlinear_rate(tensor, dim, keepdim=False):
    t = tensor.float()
    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)


def reference_config(steps: int) -> ExperimentConfig:
    return ExperimentConfig(
        optimizer={"name": "adam", "lr": 1e-3, "steps": steps},
        observables=["train_loss", "test_loss", "weight_l2_norm", "hidden_activations",
                     "active_rate", "nonlinear_rate"],
    )


def naive_loop(config: ExperimentConfig) -> float:
    data = build_dataset(config.data, config.seed)
    torch.manual_seed(config.seed)
    w = config.model.widths
    model = nn.Sequential(nn.Linear(w[0], w[1]), nn.ReLU(), nn.Linear(w[1], w[2]), nn.ReLU(),
                          nn.Linear(w[2], w[3]))
    opt = torch.optim.Adam(model.parameters(), lr=config.optimizer.lr)
    start = time.perf_counter()
    for _ in range(config.optimizer.steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(data.x_train), data.y_train)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples the resident set size in a thread; torch memory is invisible to tracemalloc."""

    def __enter__(self) -> PeakRss:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def featurelab_run(config: ExperimentConfig, stats: StatisticRegistry, directory: Path
                   ) -> tuple[float, Trainer, PeakRss]:
    with PeakRss() as memory:
        start = time.perf_counter()
        trainer = Trainer(config, stats, snapshot_dir=directory)
        status = trainer.run()
        elapsed = time.perf_counter() - start
    assert status == "finished", trainer.error
    return elapsed, trainer, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    config = reference_config(args.steps)
    stats = StatisticRegistry()
    stats.define("nonlinear_rate", compute_nonlinear_rate, on="active_rate")
    naive, ours, peaks = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            naive.append(naive_loop(config))
            directory = Path(tmp) / f"run{i}"
            elapsed, trainer, memory = featurelab_run(config, stats, directory)
            ours.append(elapsed)
            peaks.append(memory.peak - memory.base)
            on_disk = sum(p.stat().st_size for p in directory.iterdir())
            del trainer
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.steps} steps, {args.repeats} repeats (best of each)")
    print(f"naive loop (nn.Sequential + Adam, no observables): {min(naive):.3f} s")
    print(f"featurelab, every observable on:                  {min(ours):.3f} s")
    print(f"ratio featurelab / naive: {min(ours) / min(naive):.2f}  (target <= 1.0)")
    print(f"snapshot bytes on disk: {on_disk / 1e6:.1f} MB  (target <= 100 MB)")
    print(f"peak memory growth: {max(peaks) / 1e6:.0f} MB  (target <= 300 MB)")


if __name__ == "__main__":
    main()
