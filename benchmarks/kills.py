"""Work survives a killed kernel: SIGKILL a process that is training and logging into a
lab at a random moment, again and again, and check the lab after each kill.

    python benchmarks/kills.py [--kills 30] [--seed 0]

Each round starts `python -c ...` that opens the same lab, defines a DIY statistic, and
keeps creating experiments, training them (snapshots on disk, series in SQLite), noting
and fitting, and kills it (SIGKILL: no cleanup of any kind) after a random 0.5-6 s. Then
a fresh Lab opens the store and checks: it opens (no corrupt store), every run the store
calls finished reads back all its steps, and the runs the killed process left "running"
are marked interrupted. Prints how many kills, corrupt stores, finished runs lost.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import sys
import featurelab as fl
lab = fl.Lab("kills", root=sys.argv[1])
if "rate" not in lab.statistics:
    lab.define_statistic("rate", source="def rate(t, dim, keepdim=False):\n"
                         "    return (t > 0).float().mean(dim=dim, keepdim=keepdim)\n")
i = len(lab.experiments)
while True:
    exp = lab.create_experiment(model={"widths": [4, 32, 32, 1]},
                                data={"dim": 4, "n_train": 64, "n_test": 32},
                                optimizer={"lr": 1e-2, "steps": 300}, seed=i,
                                observables=["train_loss", "test_loss", "hidden_activations",
                                             "active_rate", "rate"],
                                snapshots={"schedule": [[0, 20]]})
    lab.run(exp.id)
    lab.note(f"trained {exp.id}")
    lab.fit(exp.id, "train_loss")
    i += 1
"""


def check(root: Path) -> tuple[bool, int, int, str]:
    """(opened, finished runs, finished runs that do not read back, error)."""
    import featurelab as fl

    try:
        lab = fl.Lab("kills", root=root)
    except Exception as exc:  # a corrupt store: what this script counts
        return False, 0, 0, f"{type(exc).__name__}: {exc}"
    finished = lost = 0
    for row in lab.store.read("SELECT id, steps_done, n_steps FROM runs "
                              "WHERE status = 'finished'"):
        finished += 1
        run_id, steps_done, n_steps = row
        try:
            result = fl.Run(run_id, "?", lab.store, lab.statistics).result()
            if len(result.arrays["train_loss"]) != n_steps or steps_done != n_steps:
                lost += 1
        except Exception:
            lost += 1
    running = lab.store.read("SELECT COUNT(*) FROM runs WHERE status = 'running'")[0][0]
    lab.store.close()
    return True, finished, lost, f"{running} left running" if running else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # when to kill: reproducible
    root = Path(tempfile.mkdtemp(prefix="featurelab-kills-"))
    corrupt = lost_total = 0
    finished = 0
    for k in range(args.kills):
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(root)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.5, 8.0))  # ~2 s of it is importing torch
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        opened, finished, lost, note = check(root)
        corrupt += not opened
        lost_total = max(lost_total, lost)
        print(f"kill {k + 1:2d}: store {'opens' if opened else 'CORRUPT'}, {finished} finished "
              f"runs, {lost} unreadable {note}", flush=True)
    print(f"\n{args.kills} kills, {corrupt} corrupt stores, {lost_total} finished runs lost "
          f"({finished} finished runs at the end)")


if __name__ == "__main__":
    main()
