"""The Ray backend: a local Ray head started here (as a cluster is, with `ray start`),
the kernel connected with ray.init(address=...), a sweep's members trained by actors:
bitwise as the kernel trains them, stored by the kernel, cancelled exactly."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_LAB, kernel_series

import featurelab as fl

ray = pytest.importorskip("ray")

BASE = {**TINY_LAB, "optimizer": {"lr": 0.01, "steps": 60}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cli = Path(sys.executable).with_name("ray")
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    # A throwaway cluster of this machine: no token to share between `ray start` and
    # this process (Ray's token authentication is for clusters people share).
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE",)}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    start = [str(cli), "start", "--head", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    subprocess.run(start, check=True, env=env, capture_output=True, timeout=180)
    try:
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        yield port
    finally:
        ray.shutdown()
        subprocess.run([str(cli), "stop", "--force"], env=env, capture_output=True,
                       timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_ray_actors_train_a_sweep_bitwise_and_the_kernel_stores_it(cluster, tmp_path):
    lab = fl.Lab("ray", root=tmp_path)
    lab.create_experiment(**BASE)
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 0.02]}, seeds=[0, 1])
    runs = lab.run(sweep.id, backend="ray")
    assert list(runs) == list(sweep.members)
    for member, run in runs.items():
        result = run.result()
        assert run.status == "finished" and result.info["backend"] == "ray"
        expected = kernel_series(lab.experiments[member].config)
        for key, values in expected.items():
            np.testing.assert_array_equal(result.arrays[key], values, err_msg=key)
        assert result.snapshots is not None and result.snapshots.count > 0
    again = fl.Lab("ray", root=tmp_path, session=lab.session)
    np.testing.assert_array_equal(again.results("exp_3").series("test_loss"),
                                  runs["exp_3"].series("test_loss"))


def test_cancelling_a_ray_sweep_stops_it_exactly_and_running_it_again_continues(cluster):
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**BASE, "optimizer": {"lr": 0.01, "steps": 20_000}})
    sweep = lab.sweep(based_on="exp_0", seeds=range(4))
    lab.run(sweep.id, backend="ray", workers=2, background=True)
    deadline = time.monotonic() + 120
    while not any(lab.results(m).steps_done for m in sweep.members if m in lab.latest):
        assert time.monotonic() < deadline, "no member started"
        time.sleep(0.1)
    cancelled = lab.cancel(sweep.id)
    assert cancelled  # the running members
    lab.state.sweep_runs[sweep.id].wait(120)
    at = {e.result["run"]: e.result["at_step"] for e in lab.log if e.type == "cancel"}
    for member in cancelled:
        run = lab.results(member)
        assert run.status == "cancelled" and at[run.id] == run.steps_done < 20_000
    assert len(lab.latest) < len(sweep.members)  # the others never started
    lab.run(sweep.id, backend="ray", workers=2)
    for member in sweep.members:
        assert lab.results(member).status == "finished"
    resumed = [e.params["experiment"] for e in lab.log if e.type == "run" and e.params["resume"]]
    assert sorted(resumed) == sorted(cancelled)
