"""Which MCP servers rpcwire.mcp runs (the SDK's low-level ``Server``, ``MCPServer``, FastMCP), and one
session of one over an rpcwire transport."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from .streams import streams

if TYPE_CHECKING:
    pass

logger = logging.getLogger("rpcwire.mcp")


def _lowlevel(server: Any) -> tuple[Any, Callable[[], AbstractAsyncContextManager[Any]] | None]:
    """(the SDK ``Server`` to run, the server-wide lifespan to hold open or None)."""
    from mcp.server.lowlevel.server import Server
    from mcp.server.mcpserver import MCPServer

    if isinstance(server, Server):
        return server, None
    if isinstance(server, MCPServer):
        return server._lowlevel_server, None
    low = getattr(server, "_mcp_server", None)
    lifespan = getattr(server, "_lifespan_manager", None)
    if isinstance(low, Server) and callable(lifespan):  # fastmcp.FastMCP
        return low, lifespan
    raise TypeError(f"expected an mcp Server, MCPServer or fastmcp.FastMCP, got {type(server).__name__}")


async def _run_session(low: Any, wire: Any) -> None:
    read, write = streams(wire)
    await low.run(read, write, low.create_initialization_options())
