"""Research agents: featurelab's verbs for programs that drive a lab.

`tools` turns the action registry into typed tools (no MCP needed); `mcp_server` serves
them over the Model Context Protocol (`featurelab mcp`, the optional `agents` extra).
Nothing here imports the MCP SDK at import time, so `featurelab` works without it.
"""
