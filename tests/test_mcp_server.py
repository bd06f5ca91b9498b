"""`featurelab mcp`: the lab's verbs as MCP tools, driven by the SDK's own client."""

import json
import os
import sys
import threading
import time
from pathlib import Path

import anyio
import numpy as np
import pytest

pytest.importorskip("mcp")

from conftest import TINY_LAB
from mcp import Client, StdioServerParameters

import featurelab as fl
from featurelab.actions import ACTIONS
from featurelab.agents import mcp_server
from featurelab.agents.mcp_server import build_server
from featurelab.agents.tools import jsonable
from featurelab.engine.knobs import knobs


def session(lab, script, mode="legacy"):
    """Runs `script(client)` against an in-process server on `lab`; returns its value.
    "legacy" is the initialize handshake, over JSON-RPC messages, as stdio clients do."""

    async def main():
        async with Client(build_server(lab), mode=mode) as client:
            return await script(client)

    return anyio.run(main)


def text(result):
    return result.content[0].text


def test_tools_are_the_actions_with_typed_schemas(tmp_path):
    lab = fl.Lab("agents", root=tmp_path)

    async def script(client):
        assert client.server_info.name == "featurelab"
        return {tool.name: tool for tool in (await client.list_tools()).tools}

    tools = session(lab, script)
    assert set(ACTIONS) <= set(tools)  # generated from the registry: none left out
    params = {variant["properties"]["type"]["const"]: variant["properties"]["params"]
              for variant in fl.action_schema()["oneOf"]}
    for name in ACTIONS:  # each tool's input schema is its action's params schema
        assert tools[name].input_schema == params[name]
        assert params[name]["type"] == "object" and tools[name].description
    run = tools["run"].input_schema
    assert run["required"] == ["experiment"]
    assert run["properties"]["experiment"]["type"] == "string"
    assert run["properties"]["force"]["type"] == "boolean"
    create = tools["create_experiment"].input_schema
    assert create["additionalProperties"] is False
    assert "integer" in {s.get("type") for s in create["properties"]["seed"]["anyOf"]}


def test_an_agent_creates_runs_and_reads(tmp_path):
    lab = fl.Lab("agents", root=tmp_path)

    async def script(client):
        calls = [("create_experiment", {**TINY_LAB, "seed": 3}),
                 ("run", {"experiment": "exp_0"}),
                 ("list_experiments", {}),
                 ("run_metrics", {"experiment": "exp_0", "metric": "train_loss", "points": 5}),
                 ("fit", {"experiment": "exp_0", "metric": "train_loss",
                          "families": ["exponential"]}),
                 ("sweep", {"based_on": "exp_0", "grid": {"optimizer.lr": [1e-2, 3e-2]}}),
                 ("sweep_table", {"sweep": "sweep_0"}),
                 ("note", {"text": "loss falls"}),
                 ("explore", {"base": "exp_0", "menu": {"seed": [4, 5]}}),
                 ("propose", {"exploration": "explore_0", "changes": {"seed": 4},
                              "reason": "another seed"}),
                 ("exploration_metrics", {"exploration": "explore_0"})]
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        return tools, {name: await client.call_tool(name, args) for name, args in calls}

    tools, results = session(lab, script)
    for name, result in results.items():
        assert not result.is_error, (name, text(result))
        value = json.loads(text(result))  # the text block is the value as JSON
        assert result.structured_content == (value if isinstance(value, dict)
                                              else {"result": value})
    for name in ("create_experiment", "run", "list_experiments", "run_metrics"):
        assert "exp_0" in text(results[name]) or name == "run_metrics", name
    assert "exponential" in text(results["fit"])
    assert "3e-2" in text(results["sweep_table"]) or "0.03" in text(results["sweep_table"])
    assert lab.experiments["exp_0"].config.seed == 3
    assert lab.runs  # trained in the foreground: finished when the call answered
    # Reads are not logged, and say so; the rest is logged as the agent's.
    assert [(e.type, e.actor) for e in lab.log] == [
        ("create_experiment", "agent"), ("run", "agent"), ("fit", "agent"),
        ("sweep", "agent"), ("note", "agent"), ("explore", "agent"), ("propose", "agent"),
        ("run", "agent"), ("judge", "agent")]
    judged = json.loads(text(results["propose"]))
    assert judged["iteration"] == 1 and judged["decision"] in ("keep", "discard")
    metrics = json.loads(text(results["exploration_metrics"]))["metrics"]
    assert metrics["iterations"] == 1 and metrics["knob_coverage"] == 1.0
    assert {name for name, tool in tools.items() if tool.annotations
            and tool.annotations.read_only_hint} == {
        "list_experiments", "run_metrics", "sweep_table", "exploration_metrics", "knobs"}


def test_errors_come_back_as_tool_errors(tmp_path):
    lab = fl.Lab("agents", root=tmp_path)

    async def script(client):
        results = {
            "bad field": await client.call_tool("create_experiment",
                                                {**TINY_LAB, "seed": "three"}),
            "unknown param": await client.call_tool("run", {"experiment": "exp_0",
                                                            "fast": True}),
            "bad config": await client.call_tool(
                "create_experiment", {**TINY_LAB, "optimizer": {"lr": -1.0}}),
            "no such experiment": await client.call_tool("run", {"experiment": "exp_9"}),
            "outside the folder": await client.call_tool(
                "export_log", {"path": str(tmp_path.parent / "escaped.jsonl")}),
            "agent code": await client.call_tool("define_statistic", {
                "name": "s", "source": "def s(tensor, dim, keepdim=False):\n    return tensor\n",
                "on": "active_rate"}),
            "unknown tool": await client.call_tool("format_disk", {}),
        }
        # ... and the server still serves
        results["after"] = await client.call_tool("note", {"text": "still here"})
        return results

    results = session(lab, script)
    after = results.pop("after")
    for case, result in results.items():
        assert result.is_error, case
    assert "seed" in text(results["bad field"])
    assert "fast" in text(results["unknown param"])
    assert "lr" in text(results["bad config"])
    assert "exp_9" in text(results["no such experiment"])
    assert "lab's folder" in text(results["outside the folder"])
    assert not (tmp_path.parent / "escaped.jsonl").exists()
    assert "agent_code='allow'" in text(results["agent code"])
    assert "format_disk" in text(results["unknown tool"])
    assert not after.is_error
    assert [(e.type, e.actor) for e in lab.log] == [("note", "agent")]  # failures: not logged


def test_agent_code_is_allowed_where_the_lab_allows_it(tmp_path):
    lab = fl.Lab("agents", root=tmp_path, agent_code="allow")
    source = "def s(tensor, dim, keepdim=False):\n    return tensor.float().mean(dim=dim)\n"

    async def script(client):
        return await client.call_tool("define_statistic",
                                      {"name": "s", "source": source, "on": "active_rate"})

    result = session(lab, script)
    assert not result.is_error, text(result)
    assert "s" in lab.statistics


def test_one_lab_call_at_a_time_and_the_loop_stays_free(tmp_path, monkeypatch):
    lab = fl.Lab("agents", root=tmp_path)
    started, release = threading.Event(), threading.Event()
    active, most = [0], [0]
    real = mcp_server.call_tool

    def slow(lab, tool, arguments):
        active[0] += 1
        most[0] = max(most[0], active[0])
        started.set()
        release.wait(10)
        try:
            return real(lab, tool, arguments)
        finally:
            active[0] -= 1

    monkeypatch.setattr(mcp_server, "call_tool", slow)

    async def script(client):
        results = []

        async def call(text):
            results.append(await client.call_tool("note", {"text": text}))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, "first")
            while not started.is_set():
                await anyio.sleep(0.01)
            tasks.start_soon(call, "second")
            # the first call holds a worker thread; the event loop still answers
            assert (await client.list_tools()).tools
            await anyio.sleep(0.2)
            assert len(results) == 0 and active[0] == 1  # the second waits its turn
            release.set()
        return results

    results = session(lab, script)
    assert [r.is_error for r in results] == [False, False]
    assert most[0] == 1
    assert [e.params["text"] for e in lab.log] == ["first", "second"]


def test_knobs_tool(tmp_path):
    lab = fl.Lab("agents", root=tmp_path)

    async def script(client):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        return tools["knobs"], await client.call_tool("knobs", {})

    tool, result = session(lab, script)
    assert tool.annotations.read_only_hint
    assert not result.is_error
    assert "optimizer.lr" in text(result)
    assert json.loads(text(result)) == json.loads(json.dumps(knobs()))
    assert result.structured_content == {"result": json.loads(text(result))}
    assert len(lab.log) == 0


def test_replies_are_json_whatever_a_verb_returns():
    value = {"loss": float("nan"), "steps": (1, 2), "lr": np.float32(0.5), "ok": True,
             "n": np.int64(3), "series": np.arange(2.0), 7: None}
    assert jsonable(value) == {"loss": None, "steps": [1, 2], "lr": 0.5, "ok": True, "n": 3,
                               "series": [0.0, 1.0], "7": None}
    assert jsonable(object()).startswith("<object")


def _command(root: Path) -> StdioServerParameters:
    script = Path(sys.executable).with_name("featurelab")  # the installed console script
    command, args = ((str(script), []) if script.exists()
                     else (sys.executable, ["-m", "featurelab.cli"]))
    # The whole environment: the tests' signing secret (conftest) must reach the server.
    return StdioServerParameters(command=command, cwd=str(root), env=dict(os.environ),
                                 args=[*args, "mcp", "--lab", "x", "--root", str(root)])


def test_featurelab_mcp_serves_over_stdio(tmp_path):
    async def main():
        async with Client(_command(tmp_path), mode="legacy") as client:  # initialize
            assert client.server_info.name == "featurelab"
            tools = (await client.list_tools()).tools
            noted = await client.call_tool("note", {"text": "from a subprocess"})
            return tools, noted

    started = time.monotonic()
    tools, noted = anyio.run(main)
    assert time.monotonic() - started < 60
    assert "run" in {tool.name for tool in tools}
    assert not noted.is_error, text(noted)
    lab = fl.Lab("x", root=tmp_path)  # the server wrote the lab's own store
    assert [(e.type, e.actor) for e in lab.log] == [("note", "agent")]
