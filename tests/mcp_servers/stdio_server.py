"""Run a test MCP server on stdio: ``python stdio_server.py KIND TRANSPORT [MAX_FRAME_SIZE]``.

KIND: lowlevel | mcpserver | fastmcp. TRANSPORT: ``rpcwire`` (rpcwire.mcp.stdio_server via
``run_stdio``, with ``max_frame_size`` when given) or ``sdk`` (the SDK's own
``mcp.server.stdio.stdio_server``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from servers import KINDS


async def main(kind: str, transport: str, *limit: str) -> None:
    server = KINDS[kind]()
    if transport == "rpcwire":
        from rpcwire.mcp import run_stdio

        if limit:
            await run_stdio(server, max_frame_size=int(limit[0]))
        else:
            await run_stdio(server)
        return
    from mcp.server.stdio import stdio_server

    low = getattr(server, "_lowlevel_server", None) or getattr(server, "_mcp_server", None) or server
    async with stdio_server() as (read, write):
        await low.run(read, write, low.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:])
