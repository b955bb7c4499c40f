"""MCP over NATS with the real SDK and FastMCP in child processes, and a real ``nats-server``.

- ``rpcwire.mcp.serve(server, "nats://...")`` in two processes (one queue group) and ``ClientSession`` over
  ``rpcwire.mcp.connect("nats://...")``: sessions spread over both, each one whole on its instance;
- ``rpcwire bridge nats://... -- COMMAND`` puts an unchanged SDK stdio server on NATS, and ``rpcwire connect
  nats://...`` gives the SDK's own stdio client a way in.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from rpcwire import mcp as rmcp
from rpcwire.bench.natsserver import NatsNode, start_node

from .transports._helpers import ready_children

SERVERS = Path(__file__).parent / "mcp_servers"


@pytest.fixture(scope="module")
def node() -> Iterator[NatsNode]:
    with start_node() as n:
        yield n


def text_of(result: Any) -> str:
    return str(result.content[0].text)


def test_client_sessions_over_nats_spread_over_two_fastmcp_instances(node: NatsNode) -> None:
    address = f"{node.url}/mcp.tools.{os.getpid()}"
    argv = [sys.executable, str(SERVERS / "nats_server.py"), "fastmcp", address]
    with ready_children([argv, argv]) as procs:

        async def session(i: int) -> str:
            async with rmcp.connect(address) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                tools = await s.list_tools()
                assert {t.name for t in tools.tools} >= {"echo", "blob", "pid"}
                assert text_of(await s.call_tool("echo", {"text": f"hello {i}"})) == f"hello {i}"
                pid = text_of(await s.call_tool("pid", {}))
                # a session stays on its instance
                assert text_of(await s.call_tool("pid", {})) == pid
                assert len(text_of(await s.call_tool("blob", {"size": 3_000_000}))) == 3_000_000
                return pid

        async def main() -> list[str]:
            return await asyncio.gather(*(session(i) for i in range(20)))

        pids = asyncio.run(main())
    # 20 sessions over 2 instances: both take some (all on one: 1 run in 500,000)
    assert set(pids) == {str(p.pid) for p in procs}


@pytest.mark.slow
def test_bridge_and_connect_over_nats(node: NatsNode) -> None:
    """SDK stdio client -> `rpcwire connect nats://` -> NATS -> `rpcwire bridge nats://` -> SDK stdio server."""
    address = f"{node.url}/mcp.bridged.{os.getpid()}"
    child = [sys.executable, str(SERVERS / "stdio_server.py"), "lowlevel", "sdk"]
    bridge = [sys.executable, "-m", "rpcwire", "bridge", address, "--compression", "lz4", "--", *child]
    proc = subprocess.Popen(bridge, stderr=subprocess.PIPE)
    try:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "rpcwire", "connect", address, "--compression", "lz4", "--retry"],
        )

        async def main() -> None:
            from mcp.client.stdio import stdio_client

            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                assert text_of(await session.call_tool("echo", {"text": "via NATS"})) == "via NATS"
                assert len(text_of(await session.call_tool("blob", {"size": 2_000_000}))) == 2_000_000

        asyncio.run(main())
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
