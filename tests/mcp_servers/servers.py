"""Small MCP servers the tests and benchmarks run: the same two tools on each server kind.

- ``echo(text)`` returns ``text``;
- ``blob(size)`` returns a text of ``size`` bytes (for large results);
- ``shout(text)`` prints ``text`` to stdout from the handler (the wire must survive it) and returns it;
- ``env()`` returns the names of the server's environment variables, comma-separated, sorted;
- ``pid()`` returns the server's process id.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

TOOLS = [
    types.Tool(
        name="echo",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ),
    types.Tool(
        name="blob",
        input_schema={"type": "object", "properties": {"size": {"type": "integer"}}, "required": ["size"]},
    ),
    types.Tool(
        name="shout",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ),
    types.Tool(name="env", input_schema={"type": "object", "properties": {}}),
    types.Tool(name="pid", input_schema={"type": "object", "properties": {}}),
]


def _shout(text: str) -> str:
    print(text)  # noqa: T201 - deliberately a stray print on stdout
    sys.stdout.flush()
    return text


def _text(name: str, arguments: dict[str, Any]) -> str:
    if name == "echo":
        return str(arguments["text"])
    if name == "blob":
        return "x" * int(arguments["size"])
    if name == "shout":
        return _shout(str(arguments["text"]))
    if name == "env":
        return _env()
    if name == "pid":
        return str(os.getpid())
    raise ValueError(f"unknown tool {name}")


def _env() -> str:
    return ",".join(sorted(os.environ))


def lowlevel() -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = _text(params.name, params.arguments or {})
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    return Server("rpcwire-test-lowlevel", on_list_tools=list_tools, on_call_tool=call_tool)


def mcpserver() -> MCPServer:
    app = MCPServer("rpcwire-test-mcpserver")

    @app.tool()
    def echo(text: str) -> str:
        return text

    @app.tool()
    def blob(size: int) -> str:
        return "x" * size

    @app.tool()
    def shout(text: str) -> str:
        return _shout(text)

    @app.tool()
    def env() -> str:
        return _env()

    @app.tool()
    def pid() -> str:
        return str(os.getpid())

    return app


def fastmcp() -> Any:
    from fastmcp import FastMCP

    app = FastMCP("rpcwire-test-fastmcp")

    @app.tool
    def echo(text: str) -> str:
        return text

    @app.tool
    def blob(size: int) -> str:
        return "x" * size

    @app.tool
    def shout(text: str) -> str:
        return _shout(text)

    @app.tool
    def env() -> str:
        return _env()

    @app.tool
    def pid() -> str:
        return str(os.getpid())

    return app


KINDS = {"lowlevel": lowlevel, "mcpserver": mcpserver, "fastmcp": fastmcp}
