"""Serve a test MCP server on NATS: ``python nats_server.py KIND ADDRESS``; prints ``ready`` once it serves.

KIND: lowlevel | mcpserver | fastmcp (``servers.py``). Runs until SIGTERM. Several of these on one address share
the callers (one queue group).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
from rpcwire import mcp as rmcp

sys.path.insert(0, str(Path(__file__).parent))
from servers import KINDS


async def main(kind: str, address: str) -> None:
    async with await rmcp.serve(KINDS[kind](), address):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                return


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:])
