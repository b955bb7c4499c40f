"""rpcwire.mcp against the MCP SDK's own stdio transport, side by side in one run.

- ``server_read``: messages/s a stdio server's read stream yields (150 B notifications written into
  the child's stdin as fast as the pipe takes them), timed inside the child, startup excluded.
- ``server_write``: messages/s a stdio server's write stream takes, until flushed.
- ``call_tool``: sequential ``call_tool`` round trips from a ClientSession over ``stdio_client`` to a
  low-level ``Server`` child on ``stdio_server`` (SDK at both ends vs rpcwire at both ends): rate and p50.
  A third row, ``no-transport``, runs the same ClientSession and Server in this process on the SDK's
  anyio memory streams: no pipe, no JSON, no second process. No transport can beat it, so it is the
  ceiling for the ``call_tool`` ratio (what is left is the SDK's session layer). A fourth,
  ``pipe-floor``, times a 150 B line echoed by a child over its stdin/stdout pipes with blocking
  ``os.write``/``os.read`` at both ends: the cost of crossing to another process and back on this
  machine, which any stdio transport pays on top of the session layer. Together they bound the
  best any transport could do: one call takes at least ``no-transport p50 + pipe-floor p50``.

The figures are in each benchmark's ``extra_info`` (``rate``, ``p50_us``); compare the ``rpcwire`` and
``sdk`` rows of a group. Reproduce with::

    .venv/bin/python -m pytest benches/test_bench_mcp.py --benchmark-enable -p no:cacheprovider \\
        --benchmark-columns=min,median,rounds --benchmark-json=mcp.json
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.client.stdio import stdio_client as sdk_stdio_client
from mcp.shared.message import SessionMessage
from rpcwire.mcp import stdio_client as rpcwire_stdio_client

from tests.mcp_servers.servers import KINDS

SERVERS = Path(__file__).parent.parent / "tests" / "mcp_servers"
LIBRARIES = ["sdk", "rpcwire"]
# Enough messages that the SDK's run takes a few seconds; rpcwire's has to be long enough to time.
COUNTS = {"sdk": 5_000, "rpcwire": 100_000}
CALLS = {"sdk": 300, "rpcwire": 1000, "no-transport": 1000, "pipe-floor": 2000}

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


async def _time_calls(session: ClientSession, calls: int) -> list[float]:
    await session.initialize()
    for _ in range(50):  # warm up
        await session.call_tool("echo", {"text": "warm"})
    latencies: list[float] = []
    for _ in range(calls):
        t0 = time.perf_counter()
        result = await session.call_tool("echo", {"text": "ping"})
        latencies.append(time.perf_counter() - t0)
        assert not result.is_error
        assert result.content[0].text == "ping"  # type: ignore[union-attr]
    return latencies


async def _round_trips(library: str, calls: int) -> list[float]:
    if library == "no-transport":
        return await _in_process_round_trips(calls)
    client = rpcwire_stdio_client if library == "rpcwire" else sdk_stdio_client
    params = StdioServerParameters(command=sys.executable, args=[str(SERVERS / "stdio_server.py"), "lowlevel", library])
    async with client(params) as (read, write), ClientSession(read, write) as session:
        return await _time_calls(session, calls)


_ECHO = "import os\nwhile d := os.read(0, 65536):\n    os.write(1, d)\n"


def _pipe_round_trips(calls: int) -> list[float]:
    """Blocking write/read of one 150 B line to an echoing child: the inter-process floor."""
    line = MESSAGE[:149] + b"\n"
    proc = subprocess.Popen([sys.executable, "-c", _ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    assert proc.stdout is not None
    wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()
    latencies: list[float] = []
    try:
        for i in range(calls + 50):
            t0 = time.perf_counter()
            os.write(wfd, line)
            got = b""
            while len(got) < len(line):
                got += os.read(rfd, 65536)
            if i >= 50:  # the first 50 warm up
                latencies.append(time.perf_counter() - t0)
            assert got == line
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        proc.stdout.close()
    return latencies


async def _in_process_round_trips(calls: int) -> list[float]:
    """The SDK's session layer alone: client and server in this process on zero-buffer memory streams."""
    server = KINDS["lowlevel"]()
    to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    server_writes, from_server = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run, server_reads, server_writes, server.create_initialization_options())
        async with ClientSession(from_server, to_server) as session:
            latencies = await _time_calls(session, calls)
        tg.cancel_scope.cancel()
    return latencies


@pytest.mark.parametrize("library", [*LIBRARIES, "no-transport", "pipe-floor"])
def test_call_tool_round_trip(benchmark: Any, library: str) -> None:
    benchmark.group = "mcp-stdio-call-tool"
    benchmark.extra_info["lib"] = library
    latencies: list[float] = []

    def run() -> None:
        if library == "pipe-floor":
            latencies.extend(_pipe_round_trips(CALLS[library]))
        else:
            latencies.extend(asyncio.run(_round_trips(library, CALLS[library])))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["rate"] = len(latencies) / sum(latencies)
    benchmark.extra_info["p50_us"] = statistics.median(latencies) * 1e6
