"""How many intra-op threads a run trains with: chosen from its model's size and, for a
small model in the kernel's foreground, from how busy the machine is while it trains.

Small models gain little from a second thread and lose badly when the cores are not all
free: the work of a step is split into pieces too small to pay for waking a second
thread, and when anything else is busy on this 2-core machine a parallel kernel waits
for a core. Measured on the reference experiment (10-100-100-1, 500 rows, about 37 MFLOP
a step, every observable on): 1.44 s at two threads against 1.81 s at one on a quiet
machine, and 2.95 s at one against 14.5 s at two beside a CPU-burning process. Wider
models are faster at two threads even so: 10-150-150-1 (about 80 MFLOP a step) trains
300 steps in 0.65 s at one thread against 0.42 s at two, 10-512-512-1 (0.9 GFLOP) 2000
steps in 30 s against 18 s. So a step of THREADED_FLOPS or more always gets the
process's default, and a smaller one gets SMALL_MOST threads (two: more would cut its
small ops finer still) only while that many cores are free: ThreadGovernor looks at the
machine when the run starts and again at its flushes (every LOOK_EVERY seconds at most),
and drops to one thread as soon as other processes leave fewer cores free, going back
once they have been free for two looks.

Cores that look free are not always free: on a shared virtual machine the host may run
other guests on them, which /proc does not show, and then the two-thread step waits for
its second core at every op. The same reference run took 2.9 s at two threads and 2.2 s
at one on this machine in such a minute, against 1.5 s and 1.9 s in a quiet one. So
while the cores look free the governor also times the steps (the seconds the trainer
spends in its passes and updates, not recording or snapshots): after MEASURE seconds at
one count (the first flush's steps, which warm up, left out) it tries the other for as
long and keeps it only if it is at least MARGIN faster. It tries again PROBE_EVERY
seconds later, and twice as long after each trial that kept the count in use, so a long
run on a steady machine tries a few times, not every 2 s. On the reference run a trial
costs a quiet machine 25-40 ms.

A run in a background thread or a worker process trains at one thread (those run
beside others). What a run used is recorded with it: `info["threads"]` (the count it
started with) and `info["thread_plan"]` ([step, threads] at its start and at each
change). Replay calls series bitwise equal only where the plan matches, and a rerun
follows the recorded plan instead of the machine's load, so a replay trains with the
same threads at the same steps as the run it checks.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch

from featurelab.engine.config import ExperimentConfig

THREADED_FLOPS = 6e7  # a step's floating-point operations from which threads pay
LOOK_EVERY = 0.25  # seconds between two looks at the machine's load while a run trains
SMALL_MOST = 2  # threads a small model's step pays for, measured on the reference run
BUSY = 0.5  # cores short of SMALL_MOST free, from which a small model drops to 1 thread
FREE = 0.25  # ... and below which, twice in a row, it goes back up
MEASURE = 0.15  # seconds of steps over which a thread count's speed is measured
MARGIN = 0.05  # how much faster the other count must be to be kept
PROBE_EVERY = 2.0  # seconds to the next trial of the count not in use ...
PROBE_MOST = 60.0  # ... doubled after a trial that kept the count in use, up to this


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


def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


TICKS = _clock_ticks()


def _machine() -> tuple[float, int] | None:
    """(CPU seconds all cores spent busy since boot, tasks runnable right now) from
    /proc/stat; None where there is none (macOS, Windows: no adapting there)."""
    try:
        with open("/proc/stat") as f:
            text = f.read()
        busy, running = None, 0
        for line in text.splitlines():
            if line.startswith("cpu "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
                busy = (sum(values[:8]) - idle) / TICKS  # guest time is counted in user
            elif line.startswith("procs_running"):
                running = int(line.split()[1])
    except (OSError, ValueError, IndexError):  # none, or a format not known: no adapting
        return None
    return None if busy is None else (busy, running)


def _own_running() -> int:
    """Threads of this process runnable right now (this one, spinning OpenMP workers)."""
    count = 0
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as f:
                    stat = f.read()
                if stat[stat.rindex(")") + 2:].startswith("R"):
                    count += 1
            except (OSError, ValueError):  # a thread that ended meanwhile
                continue
    except OSError:
        return 1
    return max(1, count)


class LoadMeter:
    """How many cores other processes keep busy: now (runnable tasks that are not this
    process's), and over the time since the last look (all cores' busy time less this
    process's own CPU time)."""

    def __init__(self) -> None:
        self._last = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        machine = _machine()
        if machine is None:
            return None
        own = os.times()
        return machine[0], own.user + own.system, time.monotonic()

    def others_now(self, looks: int = 5) -> float | None:
        """Other processes' runnable tasks, the median of a few looks ~2 ms apart."""
        seen = []
        for i in range(looks):
            machine = _machine()
            if machine is None:
                return None
            seen.append(max(0, machine[1] - _own_running()))
            if i < looks - 1:
                time.sleep(0.002)
        return float(sorted(seen)[len(seen) // 2])

    def others(self) -> float | None:
        """Cores other processes kept busy on average since the last call."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[2] - last[2] <= 0:
            return None
        return max(0.0, ((now[0] - last[0]) - (now[1] - last[1])) / (now[2] - last[2]))


class ThreadGovernor:
    """Chooses a foreground run's threads as it trains (see the module's docstring), or
    follows a recorded plan. Call start(step) before its first step, and on_flush at its
    flushes (a Trainer event), in the training thread: the setting is that thread's."""

    def __init__(self, config: ExperimentConfig, default: int | None = None,
                 follow: list[list[int]] | None = None, meter: Any = None,
                 busy_here: Callable[[], int] | None = None,
                 timer: Callable[[], float] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.most = max(1, default or torch.get_num_threads())
        self.adaptive = step_flops(config) < THREADED_FLOPS and self.most > 1
        # a small model's most: more threads would split its step into smaller pieces
        # still (each op's fork and join costs more), whatever the cores
        self.top = min(self.most, SMALL_MOST) if self.adaptive else self.most
        # other processes' busy cores up to which `top` cores are still free
        self._room = self.most - self.top
        # a plan from a machine with more cores is followed up to this one's: then it
        # is not the same plan, and replay compares within a tolerance, as it says
        self.follow = [[s, min(n, self.most)] for s, n in follow] if follow else None
        self.meter = meter if meter is not None else LoadMeter()
        # runs training in background threads of this process: load, but this process's
        self.busy_here = busy_here or (lambda: 0)
        self.plan: list[list[int]] = []  # [step, threads] at the start and each change
        self.threads = self.top
        self._looked = 0.0
        self._free_looks = 0
        self._next = 0  # the next entry of the followed plan
        # Timing (see the module's docstring): `timer` says the seconds the run has spent
        # in its steps so far; without one the load alone decides.
        self.timer = timer if self.adaptive else None
        self.clock = clock
        self.n_steps = config.optimizer.steps  # no change at the last flush: no step follows
        # (step, timer) from which the current count is timed; None: from the next flush
        self._mark: tuple[int, float] | None = None
        self._probe_every = PROBE_EVERY
        self._speed: dict[int, float] = {}  # threads -> seconds a step, last measured
        self._trial: int | None = None  # the count a trial left, while one runs
        self._tried = -math.inf  # the clock when the last trial ended
        self.one_is_faster = False  # what the last trial found while the cores looked free
        self._dropped = False  # at one thread because other processes were busy

    def _set(self, step: int, threads: int) -> None:
        if self.plan and threads == self.threads:
            return
        self.threads = threads
        self.plan.append([step, threads])
        torch.set_num_threads(threads)
        if self.timer is not None and len(self.plan) > 1:  # the first count: see _time
            self._mark = (step, self.timer())

    def start(self, step: int = 0) -> int:
        """The threads of the run's first step, set in this thread; returns them."""
        if self.follow is not None:
            self._next = 0
            self._follow_to(step)
            if not self.plan:  # a plan from a later step only: its first count
                self._set(step, self.follow[0][1])
            return self.threads
        threads = self.top
        if self.adaptive:
            others = self.meter.others_now()
            if others is not None:
                others += self.busy_here()
            threads = 1 if others is None or others - self._room >= BUSY else self.top
            self._dropped = threads == 1
            self.meter.others()  # the next look measures from here
            self._looked = self.clock()
        self._set(step, threads)
        return threads

    def _follow_to(self, step: int) -> None:
        due = None
        while self.follow is not None and self._next < len(self.follow) \
                and self.follow[self._next][0] <= step:
            due = self.follow[self._next][1]
            self._next += 1
        if due is not None:
            self._set(step, due)

    def on_flush(self, start: int, stop: int, series: Any = None) -> None:
        """At a flush, before step `stop`: the recorded plan's change due there, or a
        look at the machine (at most every LOOK_EVERY seconds)."""
        if self.follow is not None:
            self._follow_to(stop)
            return
        if not self.adaptive or stop >= self.n_steps:
            return
        if self.clock() - self._looked >= LOOK_EVERY:
            self._look(stop)
        if self.timer is not None and not self._dropped:
            self._time(stop)

    def _look(self, stop: int) -> None:
        self._looked = self.clock()
        others = self.meter.others()
        if others is None:
            return
        others += self.busy_here()
        others -= self._room  # what is short of `top` free cores
        if others >= BUSY:
            self._free_looks = 0
            self._trial = None  # a trial under load would time the load
            self._dropped = True
            self._set(stop, 1)
        elif others < FREE:
            self._free_looks += 1
            if self._free_looks >= 2 and self._dropped:
                self._dropped = False
                self._mark = None  # timed afresh from the next flush, not across the load
                self._set(stop, 1 if self._keeps_one() else self.top)
        else:
            self._free_looks = 0

    def _keeps_one(self) -> bool:
        return self.one_is_faster and self.clock() - self._tried < self._probe_every

    def _time(self, stop: int) -> None:
        """Times the current count since it was set (or last timed); starts a trial of
        the other count, or ends one keeping the faster."""
        timer = self.timer
        if timer is None:
            return
        now = timer()
        if self._mark is None:  # the run's first steps warm up: timed from here
            self._mark = (stop, now)
            return
        step, began = self._mark
        if now - began < MEASURE or stop <= step:
            return
        self._speed[self.threads] = (now - began) / (stop - step)
        self._mark = (stop, now)
        if self._trial is not None:  # the trial's count is timed: keep it if it is faster
            left, self._trial = self._trial, None
            self._tried = self.clock()
            if self._speed[self.threads] < self._speed[left] * (1 - MARGIN):
                self._probe_every = PROBE_EVERY  # things change: look again soon
            else:
                self._probe_every = min(2 * self._probe_every, PROBE_MOST)
                self._set(stop, left)
            self.one_is_faster = self.threads == 1
        elif self.clock() - self._tried >= self._probe_every:
            self._trial = self.threads
            self._set(stop, 1 if self.threads == self.top else self.top)
