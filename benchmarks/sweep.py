"""Many runs: a sweep on the local pool against naive loops, one run beside a busy
process, and a 256-member sweep's memory and file descriptors, measured in one process.

    python benchmarks/sweep.py [--seeds 16] [--steps 2000] [--members 256]

1. 16 seeds of the reference experiment with every observable on (train and test loss,
   weight norms, hidden_activations snapshots on disk, both layers' active_rate and the
   DIY nonlinear_rate), trained by `lab.run(sweep)` on the pool of worker processes,
   against 16 naive loops one after another (nn.Sequential + torch.optim.Adam, torch's
   default threads, no observables). Target: >= 4x.
2. The single reference run with every observable on, `lab.run` in the kernel (threads
   chosen by model size, the machine's load and the steps' timing, engine/threads.py),
   against one naive loop: quiet, and with a process burning a core beside it.
   Target: <= 0.8x both.
3. A 256-member sweep of a small config, in a fresh process: the kernel's peak resident
   memory with its workers' (target < 2 GB) and the kernel's open file descriptors
   before, during and after (target: flat).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine import compute_nonlinear_rate, naive_loop, reference_config

import featurelab as fl
from featurelab.workers.processes import close_pools, local_pool

OBSERVABLES = ["train_loss", "test_loss", "weight_l2_norm", "hidden_activations",
               "active_rate", "nonlinear_rate"]


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Peak:
    """Samples the kernel's and its worker processes' resident memory together."""

    def __enter__(self) -> Peak:
        self.peak = 0
        self.fds: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.05):
            total = _rss(me) + sum(_rss(c) for c in _children(me))
            self.peak = max(self.peak, total)
            self.fds.append(_fds())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def lab_with_reference(root: Path, steps: int) -> fl.Lab:
    lab = fl.Lab("bench", root=root)
    lab.define_statistic("nonlinear_rate", compute_nonlinear_rate, on="active_rate")
    config = reference_config(steps)
    lab.create_experiment(config=config.replace(observables=OBSERVABLES))
    return lab


def sweep_against_naive(seeds: int, steps: int, root: Path) -> None:
    config = reference_config(steps)
    local_pool().close()  # a cold start is part of the price
    lab = lab_with_reference(root / "sweep", steps)
    sweep = lab.sweep(based_on="exp_0", seeds=[100 + s for s in range(seeds)])
    start = time.perf_counter()
    runs = lab.run(sweep.id)
    ours = time.perf_counter() - start
    assert all(r.status == "finished" for r in runs.values())
    naive = 0.0
    for seed in range(seeds):
        naive += naive_loop(config.replace(seed=100 + seed))
    pool = local_pool()
    print(f"1. {seeds} seeds x {steps} steps, every observable on, on {pool.size} worker "
          f"processes (one thread each, started cold): {ours:.1f} s")
    print(f"   {seeds} naive loops one after another ({torch.get_num_threads()} threads): "
          f"{naive:.1f} s")
    print(f"   speed-up: {naive / ours:.2f}x  (target >= 4x)")


def burner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def single_against_naive(steps: int, root: Path, repeats: int = 2) -> None:
    config = reference_config(steps)
    for label, loaded in (("quiet", False), ("beside a busy process", True)):
        busy = burner() if loaded else None
        try:
            naive, ours = [], []
            for i in range(repeats):
                naive.append(naive_loop(config))
                lab = lab_with_reference(root / f"single-{loaded}-{i}", steps)
                start = time.perf_counter()
                run = lab.run("exp_0")
                ours.append(time.perf_counter() - start)
                assert run.status == "finished"
                plan = run.result().info["thread_plan"]
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        threads = " then ".join(f"{n} from step {step}" if step else str(n)
                                for step, n in plan)
        print(f"2. one reference run, every observable on, {label}: featurelab "
              f"{min(ours):.2f} s (threads {threads}), naive "
              f"loop {min(naive):.2f} s ({torch.get_num_threads()} threads): ratio "
              f"{min(ours) / min(naive):.2f}  (target <= 0.8)")


def many_members(members: int, root: Path) -> None:
    lab = fl.Lab("many", root=root / "many")
    lab.create_experiment(model={"widths": [4, 16, 16, 1]},
                          data={"dim": 4, "n_train": 64, "n_test": 32},
                          optimizer={"steps": 100}, observables=OBSERVABLES[:5],
                          snapshots={"schedule": [[0, 25]]})
    sweep = lab.sweep(based_on="exp_0", seeds=range(1000, 1000 + members))
    before = _fds()
    with Peak() as peak:
        start = time.perf_counter()
        runs = lab.run(sweep.id)
        seconds = time.perf_counter() - start
    after = _fds()
    finished = sum(r.status == "finished" for r in runs.values())
    print(f"3. {members}-member sweep ({finished} finished in {seconds:.1f} s): peak "
          f"resident memory of the kernel and its workers {peak.peak / 2**30:.2f} GB "
          f"(target < 2 GB)")
    print(f"   open file descriptors of the kernel: {before} before, at most "
          f"{max(peak.fds, default=before)} during, {after} after  (target: flat)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--members", type=int, default=256)
    parser.add_argument("--members-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.members_only:  # part 3 in a process of its own (see below)
        with tempfile.TemporaryDirectory() as tmp:
            many_members(args.members, Path(tmp))
        close_pools()
        return
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} threads by default")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sweep_against_naive(args.seeds, args.steps, root)
        single_against_naive(args.steps, root)
    close_pools()
    # The memory of parts 1 and 2 stays resident in this process (freed memory is not
    # given back to the system): part 3 measures a fresh kernel, as a researcher's is.
    subprocess.run([sys.executable, __file__, "--members-only", "--members",
                    str(args.members)], check=True)


if __name__ == "__main__":
    main()
