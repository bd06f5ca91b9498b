"""`featurelab mcp`: the lab's verbs as MCP tools, on the official MCP SDK (v2).

The low-level `Server` rather than `MCPServer`: the tools' schemas come from the action
registry at run time, not from Python signatures. Tool calls run the lab in a worker
thread, one at a time: training blocks for seconds to minutes, and the event loop must
keep answering (pings, cancellations, list_tools) meanwhile, while the Lab's session
is one history that calls must not interleave in.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
import anyio.to_thread
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from featurelab.agents.tools import AgentTool, agent_tools, call_tool
from featurelab.lab import Lab

INSTRUCTIONS = """\
A featurelab lab: small training experiments whose internals are recorded step by step.
Each tool but `knobs` is one action of featurelab's language of research, applied to the
lab and logged with actor "agent"; its input schema is the action's parameters. Typical
loop: knobs (what can be set) -> create_experiment -> run -> read the results -> fit.
Errors come back as tool errors whose message names the field and what is allowed."""


def build_server(lab: Lab) -> Server[Any]:
    """An MCP server whose tools act on `lab` (the caller opens and closes it)."""
    tools = agent_tools()
    listed = [_listing(tool) for tool in tools.values()]
    one_at_a_time = anyio.CapacityLimiter(1)

    async def list_tools(ctx: ServerRequestContext[Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call(ctx: ServerRequestContext[Any],
                   params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:  # a tool error, not a protocol error: the agent reads and retries
            return _result(True, f"unknown tool {params.name!r}; tools: {', '.join(tools)}")
        failed, value = await anyio.to_thread.run_sync(
            call_tool, lab, tool, params.arguments, limiter=one_at_a_time)
        return _result(failed, value)

    return Server("featurelab", version=_version(), instructions=INSTRUCTIONS,
                  on_list_tools=list_tools, on_call_tool=call)


def _listing(tool: AgentTool) -> types.Tool:
    hints = types.ToolAnnotations(read_only_hint=True) if tool.read_only else None
    return types.Tool(name=tool.name, description=tool.description,
                      input_schema=tool.input_schema, annotations=hints)


def _result(failed: bool, value: Any) -> types.CallToolResult:
    if failed:
        return types.CallToolResult(content=[types.TextContent(text=str(value))], is_error=True)
    # Structured content is an object up to protocol 2025-11-25: other values are wrapped,
    # as the SDK's MCPServer wraps them; the text block carries the value itself.
    structured = value if isinstance(value, dict) else {"result": value}
    return types.CallToolResult(content=[types.TextContent(text=json.dumps(value))],
                                structured_content=structured)


def _version() -> str:
    try:
        return version("featurelab")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return ""


def serve_stdio(lab: Lab) -> None:
    """Serves `lab` over stdin/stdout until the client closes them. (The SDK's stdio
    transport moves file descriptor 1 to stderr meanwhile, so a print in a run cannot
    corrupt the protocol.)"""
    server = build_server(lab)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
