"""Threads of a foreground run: a small model trains at the default while the cores are
free and at one thread while another process keeps one busy, changing at flushes; the plan
is recorded, and replay follows it so a rerun is bitwise."""

import math
import subprocess
import sys
import time

import pytest
import torch

import featurelab as fl
from featurelab import ExperimentConfig
from featurelab.engine import threads as threads_module
from featurelab.engine.threads import LOOK_EVERY, LoadMeter, ThreadGovernor
from featurelab.log import LogEntry

SMALL = ExperimentConfig(model={"widths": [4, 16, 16, 1]},
                         data={"dim": 4, "n_train": 64, "n_test": 32},
                         optimizer={"lr": 1e-2, "steps": 400})
LARGE = ExperimentConfig(model={"widths": [10, 512, 512, 1]})
LONG = SMALL.replace(optimizer={"steps": 100_000})  # a governor changes nothing at the end


class FakeMeter:
    """Reports the loads it is given, one per look."""

    def __init__(self, now: float, later: list[float] | None = None) -> None:
        self.now, self.later = now, list(later or [])

    def others_now(self) -> float:
        return self.now

    def others(self) -> float | None:
        return self.later.pop(0) if self.later else None


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _flushes(governor: ThreadGovernor, stops: list[int]) -> None:
    for stop in stops:
        governor._looked = -LOOK_EVERY  # the next flush looks (no waiting in a test)
        governor.on_flush(stop - 50, stop)


def test_a_small_model_uses_the_free_cores_and_drops_to_one_thread_under_load():
    looks = [0.0, 0.1, 1.0, 0.9, 0.1, 0.0, 0.0]  # the first: where start() measures from
    governor = ThreadGovernor(SMALL, default=2, meter=FakeMeter(0.0, looks))
    assert governor.start(0) == 2 and torch.get_num_threads() == 2
    _flushes(governor, [50, 100, 150, 200, 250, 300])
    # busy at 100: one thread at once; free twice (200, 250) before going back up
    assert governor.plan == [[0, 2], [100, 1], [250, 2]]
    assert torch.get_num_threads() == 2
    busy = ThreadGovernor(SMALL, default=2, meter=FakeMeter(1.0))
    assert busy.start(0) == 1 and busy.plan == [[0, 1]]


def test_a_large_model_keeps_the_default_whatever_the_load():
    governor = ThreadGovernor(LARGE, default=2, meter=FakeMeter(1.0, [1.0, 1.0]))
    assert governor.start(0) == 2
    _flushes(governor, [50, 100])
    assert governor.plan == [[0, 2]]


def test_a_followed_plan_changes_at_its_steps_whatever_the_load():
    plan = [[0, 1], [100, 2], [150, 1]]
    governor = ThreadGovernor(SMALL, default=2, follow=plan, meter=FakeMeter(0.0, [1.0] * 9))
    assert governor.start(0) == 1
    _flushes(governor, [50, 100, 150, 200])
    assert governor.plan == plan
    resumed = ThreadGovernor(SMALL, default=2, follow=plan, meter=FakeMeter(1.0))
    assert resumed.start(120) == 2 and resumed.plan == [[120, 2]]  # a run continued at 120


def test_the_meter_sees_a_process_burning_a_core():
    meter = LoadMeter()
    if meter.others() is None and meter._read() is None:
        pytest.skip("no /proc/stat here")
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        meter.others()
        time.sleep(0.6)
        assert meter.others() >= 0.5  # one core, less the machine's tick granularity
        assert meter.others_now() >= 1
    finally:
        burner.kill()
        burner.wait()


def test_a_foreground_run_records_its_plan_and_replay_follows_it(monkeypatch):
    monkeypatch.setattr(threads_module, "MEASURE", math.inf)  # the load alone
    # the run sees another process busy at its start and a free machine later on ...
    monkeypatch.setattr(threads_module, "LoadMeter", lambda: FakeMeter(1.0, [0.0] * 20))
    monkeypatch.setattr(threads_module, "LOOK_EVERY", 0.0)
    lab = fl.Lab(":memory:")
    lab.create_experiment(config=SMALL.replace(optimizer={"steps": 400}))
    torch.set_num_threads(2)
    run = lab.run("exp_0")
    plan = run.result().info["thread_plan"]
    assert plan[0] == [0, 1] and plan[1][1] == 2 and plan[1][0] % 50 == 0, plan
    assert torch.get_num_threads() == 2  # the notebook's own again
    # ... and the replay, on a machine busy throughout, trains with the same threads
    monkeypatch.setattr(threads_module, "LoadMeter", lambda: FakeMeter(1.0, [1.0] * 20))
    report = fl.replay(lab)
    assert report.ok, str(report)
    assert any("train_loss: bitwise" in c for c in report.compared), report.compared
    assert report.lab.results("exp_0").result().info["thread_plan"] == plan


def test_background_runs_train_at_one_thread_and_say_so():
    lab = fl.Lab(":memory:")
    lab.create_experiment(config=SMALL)
    run = lab.run("exp_0", background=True)
    assert run.wait(timeout=60).status == "finished"
    info = run.result().info
    assert info["threads"] == 1 and info["thread_plan"] == [[0, 1]]


@pytest.mark.parametrize("timed", [False, True], ids=["load", "load and timing"])
def test_the_threads_each_step_trains_with_are_those_the_plan_records(monkeypatch, timed):
    """A change decided at a flush holds from that step on (a flush runs inside the
    recorder's step, which sets its own threads around its statistics)."""
    from featurelab.engine.train import Trainer

    monkeypatch.setattr(threads_module, "LoadMeter",
                        lambda: FakeMeter(0.0, [0.0, 1.0, 1.0, 0.0, 0.0, 0.0] + [0.0] * 9))
    monkeypatch.setattr(threads_module, "LOOK_EVERY", 0.0)
    # timed: a trial at every timing, whatever this machine's speed
    monkeypatch.setattr(threads_module, "MEASURE", 0.0 if timed else math.inf)
    monkeypatch.setattr(threads_module, "PROBE_EVERY", 0.0)
    seen: dict[int, int] = {}
    step = Trainer._step

    def spying(self, s):
        seen[s] = torch.get_num_threads()
        return step(self, s)

    monkeypatch.setattr(Trainer, "_step", spying)
    torch.set_num_threads(2)
    lab = fl.Lab(":memory:")
    lab.create_experiment(config=SMALL.replace(observables=["train_loss", "active_rate"]))
    plan = lab.run("exp_0").result().info["thread_plan"]
    changes = [[s, n] for s, n in sorted(seen.items()) if s == 0 or seen[s - 1] != n]
    # load: one thread at 50, two again at 200; timed, trials after that (how many
    # depends on which count this machine finds faster)
    assert changes == plan and (len(plan) > 3 if timed else len(plan) == 3), (changes, plan)
    if timed:  # ... and a rerun trains with them again, bitwise
        report = fl.replay(lab)
        assert report.ok and any("train_loss: bitwise" in c for c in report.compared), report


def test_a_log_without_plans_replays_with_each_runs_thread_count(monkeypatch):
    """A log from before runs kept a thread plan: its rerun trains with the count the run
    had, not what this machine's load suggests, and compares bitwise."""
    monkeypatch.setattr(threads_module, "LoadMeter", lambda: FakeMeter(1.0))  # busy: 1
    lab = fl.Lab(":memory:")
    lab.create_experiment(config=SMALL)
    torch.set_num_threads(2)
    lab.run("exp_0")
    entries = [e.to_dict() for e in lab.log]
    for entry in entries:
        (entry.get("result") or {}).get("info", {}).pop("thread_plan", None)
    monkeypatch.setattr(threads_module, "LoadMeter", lambda: FakeMeter(0.0))  # free: 2
    report = fl.replay([LogEntry.from_dict(e) for e in entries])
    assert report.ok and any("train_loss: bitwise" in c for c in report.compared), report
    assert report.lab.results("exp_0").result().info["thread_plan"] == [[0, 1]]


def test_a_foreground_run_counts_this_kernels_background_runs_as_load(monkeypatch):
    monkeypatch.setattr(threads_module, "MEASURE", math.inf)  # the load alone
    monkeypatch.setattr(threads_module, "LoadMeter", lambda: FakeMeter(0.0))
    lab = fl.Lab(":memory:")
    lab.create_experiment(config=SMALL.replace(optimizer={"steps": 200_000}))
    lab.create_experiment(config=SMALL.replace(seed=1))
    torch.set_num_threads(2)
    background = lab.run("exp_0", background=True)
    deadline = time.monotonic() + 60
    while background.steps_done < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert lab.run("exp_1").result().info["thread_plan"] == [[0, 1]]
    finally:
        lab.cancel("exp_0")
        background.wait(timeout=60)
    assert lab.run("exp_1", force=True).result().info["thread_plan"] == [[0, 2]]


def test_a_small_model_takes_two_threads_on_a_big_machine_while_two_cores_are_free():
    governor = ThreadGovernor(SMALL, default=16, meter=FakeMeter(13.0, [0.0, 14.8, 1.0, 1.0]))
    assert governor.start(0) == 2  # 13 busy: 3 free
    _flushes(governor, [50, 100, 150])
    assert governor.plan == [[0, 2], [50, 1], [150, 2]]  # 14.8 busy: 1.2 free; then 15
    assert ThreadGovernor(SMALL, default=16, meter=FakeMeter(15.0)).start(0) == 1
    assert ThreadGovernor(LARGE, default=16, meter=FakeMeter(15.0)).start(0) == 16


class Steps:
    """A run's step time at each thread count, on a clock of its own: the governor's
    timer and clock both read the seconds trained so far."""

    def __init__(self, speed: dict[int, float]) -> None:
        self.speed, self.seconds, self.step = speed, 0.0, 0

    def timer(self) -> float:
        return self.seconds

    def train(self, governor: ThreadGovernor, stop: int, every: int = 50) -> None:
        while self.step < stop:  # a flush every `every` steps
            self.seconds += every * self.speed[governor.threads]
            self.step += every
            governor.on_flush(self.step - every, self.step)


def test_where_two_threads_are_slower_on_free_looking_cores_a_trial_finds_one():
    # a shared virtual machine's host may keep the "free" cores busy: /proc shows nothing.
    # Step times are binary fractions, so the sums below are exact.
    steps = Steps({2: 2**-9, 1: 2**-10})
    governor = ThreadGovernor(LONG, default=2, meter=FakeMeter(0.0, [0.0] * 1000),
                              timer=steps.timer, clock=steps.timer)
    assert governor.start(0) == 2
    steps.train(governor, 1000)
    # the first flush's 50 steps left out (warm-up), two is timed over MEASURE (0.15 s:
    # 100 steps), then one (200 steps, to step 350): one is faster and kept
    assert governor.plan == [[0, 2], [150, 1]] and governor.one_is_faster
    assert torch.get_num_threads() == 1
    # PROBE_EVERY (2 s) after that trial ended, at the end of a timing, two is tried
    # again (100 steps) and found slower still; the next trial waits twice as long
    steps.train(governor, 8000)
    assert governor.plan[2:] == [[2550, 2], [2650, 1], [6850, 2], [6950, 1]], governor.plan


def test_where_two_threads_are_faster_a_trial_of_one_costs_a_few_hundred_steps():
    steps = Steps({2: 2**-11, 1: 3 * 2**-12})
    governor = ThreadGovernor(LONG, default=2, meter=FakeMeter(0.0, [0.0] * 1000),
                              timer=steps.timer, clock=steps.timer)
    governor.start(0)
    steps.train(governor, 2000)
    assert governor.plan == [[0, 2], [400, 1], [650, 2]] and not governor.one_is_faster


def test_a_count_only_a_little_faster_is_not_worth_a_change():
    steps = Steps({2: 2**-11, 1: 2**-11 * 0.97})  # one is 3% faster: within MARGIN
    governor = ThreadGovernor(LONG, default=2, meter=FakeMeter(0.0, [0.0] * 1000),
                              timer=steps.timer, clock=steps.timer)
    governor.start(0)
    steps.train(governor, 2000)
    assert [n for _, n in governor.plan] == [2, 1, 2]


def test_load_during_a_trial_ends_it_without_a_verdict():
    steps = Steps({2: 2**-9, 1: 2**-10})
    # start, then looks at flushes 50-150 free, 200 busy (the trial of one has begun)
    later = [0.0, 0.0, 0.0, 0.0, 1.0] + [0.0] * 1000
    governor = ThreadGovernor(LONG, default=2, meter=FakeMeter(0.0, later),
                              timer=steps.timer, clock=steps.timer)
    governor.start(0)

    def flush_and_look() -> None:
        governor._looked = -math.inf
        steps.train(governor, steps.step + 50)

    for _ in range(3):
        flush_and_look()
    assert governor.plan == [[0, 2], [150, 1]] and governor._trial == 2
    flush_and_look()
    assert governor._trial is None and governor._dropped  # nothing to conclude from
    flush_and_look()
    flush_and_look()  # two free looks: back to two, no verdict on one
    assert governor.plan[-1] == [300, 2] and not governor.one_is_faster
    assert governor._probe_every == threads_module.PROBE_EVERY


def test_a_run_back_from_load_keeps_the_count_its_trial_found():
    steps = Steps({2: 2**-9, 1: 2**-10})
    meter = FakeMeter(0.0, [0.0] * 8)
    governor = ThreadGovernor(LONG, default=2, meter=meter, timer=steps.timer,
                              clock=steps.timer)
    governor.start(0)
    steps.train(governor, 400)
    assert governor.plan == [[0, 2], [150, 1]] and governor.one_is_faster
    meter.later = [1.0, 0.0, 0.0, 0.0]  # busy at one look, then free
    for slow in (True, True, False, False):
        steps.speed[1] = 2**-8 if slow else 2**-10  # steps wait for the busy core
        governor._looked = -math.inf
        steps.train(governor, steps.step + 50)
    assert governor.plan == [[0, 2], [150, 1]] and torch.get_num_threads() == 1
    # timed afresh from the flush that came back (550), not across the load (400-500):
    assert governor._speed[1] == 2**-10 and governor._mark is not None \
        and governor._mark[0] == 550


def test_no_trial_while_other_processes_keep_the_cores_busy():
    steps = Steps({2: 1e-3, 1: 5e-4})
    governor = ThreadGovernor(LONG, default=2, meter=FakeMeter(1.0, [1.0] * 1000),
                              timer=steps.timer, clock=steps.timer)
    assert governor.start(0) == 1
    steps.train(governor, 5000)
    assert governor.plan == [[0, 1]]


def test_a_run_times_only_its_passes_and_updates(monkeypatch):
    from featurelab.engine.observables import Recorder
    from featurelab.engine.train import Trainer

    record = Recorder.on_step_end

    def slow(self, *args, **kwargs):  # a recording that takes 2 ms a step
        time.sleep(0.002)
        return record(self, *args, **kwargs)

    monkeypatch.setattr(Recorder, "on_step_end", slow)
    trainer = Trainer(SMALL.replace(optimizer={"steps": 100}))
    began = time.perf_counter()
    trainer.run()
    wall = time.perf_counter() - began
    assert 0 < trainer.compute_seconds < wall - 100 * 0.002
