"""rpcwire.mcp against the MCP SDK's own stdio transport, side by side in one run.

- ``server_read``: messages/s a stdio server's read stream yields (150 B notifications written into
  the child's stdin as fast as the pipe takes them), timed inside the child, startup excluded.
- ``server_write``: messages/s a stdio server's write stream takes, until flushed.
- ``call_tool``: sequential ``call_tool`` round trips from a ClientSession over ``stdio_client`` to a
  low-level ``Server`` child on ``stdio_server`` (SDK at both ends vs rpcwire at both ends): rate and p50.

The figures are in each benchmark's ``extra_info`` (``rate``, ``p50_us``); compare the ``rpcwire`` and
``sdk`` rows of a group. Reproduce with::

    .venv/bin/python -m pytest benches/test_bench_mcp.py --benchmark-enable -p no:cacheprovider \\
        --benchmark-columns=min,median,rounds --benchmark-json=mcp.json
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.client.stdio import stdio_client as sdk_stdio_client
from rpcwire.mcp import stdio_client as rpcwire_stdio_client

SERVERS = Path(__file__).parent.parent / "tests" / "mcp_servers"
LIBRARIES = ["sdk", "rpcwire"]
# Enough messages that the SDK's run takes a few seconds; rpcwire's has to be long enough to time.
COUNTS = {"sdk": 5_000, "rpcwire": 100_000}
CALLS = {"sdk": 300, "rpcwire": 1000}

MESSAGE = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "logger": "bench", "data": "x" * 80},
    }
)


def _child_rate(mode: str, library: str, n: int, tmp_path: Path) -> float:
    result = tmp_path / f"{mode}-{library}.txt"
    argv = [sys.executable, str(SERVERS / "bench_child.py"), mode, library, str(n), str(result)]
    data = (MESSAGE + b"\n") * n if mode == "read" else b""
    proc = subprocess.run(argv, input=data, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    if mode == "write":
        lines = proc.stdout.splitlines()
        assert len(lines) == n
        assert orjson.loads(lines[-1]) == orjson.loads(MESSAGE)
    return float(result.read_text())


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("mode", ["read", "write"])
def test_server_stream_throughput(benchmark: Any, mode: str, library: str, tmp_path: Path) -> None:
    benchmark.group = f"mcp-stdio-server-{mode}"
    benchmark.extra_info["lib"] = library
    rates: list[float] = []

    def run() -> None:
        rates.append(_child_rate(mode, library, COUNTS[library], tmp_path))

    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["rate"] = statistics.median(rates)


async def _round_trips(library: str, calls: int) -> list[float]:
    client = rpcwire_stdio_client if library == "rpcwire" else sdk_stdio_client
    params = StdioServerParameters(command=sys.executable, args=[str(SERVERS / "stdio_server.py"), "lowlevel", library])
    latencies: list[float] = []
    async with client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for _ in range(50):  # warm up
            await session.call_tool("echo", {"text": "warm"})
        for _ in range(calls):
            t0 = time.perf_counter()
            result = await session.call_tool("echo", {"text": "ping"})
            latencies.append(time.perf_counter() - t0)
            assert not result.is_error
    return latencies


@pytest.mark.parametrize("library", LIBRARIES)
def test_call_tool_round_trip(benchmark: Any, library: str) -> None:
    benchmark.group = "mcp-stdio-call-tool"
    benchmark.extra_info["lib"] = library
    latencies: list[float] = []

    def run() -> None:
        latencies.extend(asyncio.run(_round_trips(library, CALLS[library])))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["rate"] = len(latencies) / sum(latencies)
    benchmark.extra_info["p50_us"] = statistics.median(latencies) * 1e6
