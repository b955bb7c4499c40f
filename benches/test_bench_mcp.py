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
  A fifth, ``nats``, is the same ClientSession over ``rpcwire.mcp.connect("nats://...")`` to the same
  low-level ``Server`` served by ``rpcwire.mcp.serve`` in a child, through a nats-server this benchmark
  starts: two network hops (client to NATS, NATS to server) instead of one pipe.

The ``call_tool`` rows share one session each, open side by side, and take turns round after round
(rotating order), so a slow spell of this shared machine hits them alike; ``extra_info["libs"]`` has each
row's median rate and p50, ``extra_info["ratio_vs_sdk"]`` each row's rate over the SDK's in the same
round (median over rounds). The stream figures are in each benchmark's ``extra_info["rate"]``; compare
the ``rpcwire`` and ``sdk`` rows of a group. Reproduce with::

    .venv/bin/python -m pytest benches/test_bench_mcp.py --benchmark-enable -p no:cacheprovider \\
        --benchmark-columns=min,median,rounds --benchmark-json=mcp.json
"""

from __future__ import annotations

import asyncio
import contextlib
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
# call_tool: calls per library per round, and rounds (the libraries take turns within each round)
CALLS = {"sdk": 40, "rpcwire": 100, "nats": 100, "no-transport": 100, "pipe-floor": 200}
CALL_LIBRARIES = [*LIBRARIES, "nats", "no-transport", "pipe-floor"]
CALL_ROUNDS = 10

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


async def _call(session: ClientSession, text: str) -> None:
    result = await session.call_tool("echo", {"text": text})
    assert not result.is_error
    assert result.content[0].text == text  # type: ignore[union-attr]


class _Sessions:
    """One open ClientSession per library, all alive together so their rounds can interleave."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self.stack = stack
        self.sessions: dict[str, ClientSession] = {}

    async def open_stdio(self, library: str) -> None:
        client = rpcwire_stdio_client if library == "rpcwire" else sdk_stdio_client
        argv = [str(SERVERS / "stdio_server.py"), "lowlevel", library]
        read, write = await self.stack.enter_async_context(
            client(StdioServerParameters(command=sys.executable, args=argv))
        )
        await self._start(library, read, write)

    async def open_nats(self, address: str) -> None:
        """rpcwire.mcp over NATS to a low-level Server served by rpcwire.mcp.serve in a child process."""
        from rpcwire import mcp as rmcp

        read, write = await self.stack.enter_async_context(rmcp.connect(address))
        await self._start("nats", read, write)

    async def open_in_process(self, tg: anyio.abc.TaskGroup) -> None:
        """The SDK's session layer alone: client and server in this process on zero-buffer memory streams."""
        server = KINDS["lowlevel"]()
        to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        server_writes, from_server = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        tg.start_soon(server.run, server_reads, server_writes, server.create_initialization_options())
        await self._start("no-transport", from_server, to_server)

    async def _start(self, library: str, read: Any, write: Any) -> None:
        session = await self.stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        for _ in range(50):  # warm up
            await _call(session, "warm")
        self.sessions[library] = session


_ECHO = "import os\nwhile d := os.read(0, 65536):\n    os.write(1, d)\n"


class _PipeEcho:
    """Blocking write/read of one 150 B line to an echoing child: the inter-process floor."""

    def __init__(self) -> None:
        self.line = MESSAGE[:149] + b"\n"
        self.proc = subprocess.Popen([sys.executable, "-c", _ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.trip()

    def trip(self) -> None:
        os.write(self.wfd, self.line)
        got = b""
        while len(got) < len(self.line):
            got += os.read(self.rfd, 65536)
        assert got == self.line

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def _serve_on_nats() -> tuple[Any, subprocess.Popen[bytes], str]:
    """A nats-server, and the low-level test server served on it by ``rpcwire.mcp.serve`` in a child."""
    from rpcwire.bench.natsserver import start_node

    node = start_node()
    address = f"{node.url}/bench.mcp"
    served = subprocess.Popen(
        [sys.executable, str(SERVERS / "nats_server.py"), "lowlevel", address], stdout=subprocess.PIPE
    )
    assert served.stdout is not None
    assert served.stdout.readline() == b"ready\n"
    return node, served, address


async def _time_calls(session: ClientSession | None, echo: _PipeEcho, calls: int) -> list[float]:
    """The latency of each of `calls` calls on `session` (None: round trips of the pipe echo)."""
    clock = time.perf_counter
    latencies: list[float] = []
    for _ in range(calls):
        t0 = clock()
        if session is None:
            echo.trip()
        else:
            await _call(session, "ping")
        latencies.append(clock() - t0)
    return latencies


async def _interleaved_round_trips(rounds: int) -> dict[str, list[list[float]]]:
    """Per library, per round, the latencies of CALLS[library] calls; the libraries take turns each round."""
    out: dict[str, list[list[float]]] = {lib: [] for lib in CALL_LIBRARIES}
    echo = _PipeEcho()
    node, served, address = _serve_on_nats()
    try:
        async with anyio.create_task_group() as tg:  # the in-process server runs in tg
            async with contextlib.AsyncExitStack() as stack:  # the sessions close first, then tg is cancelled
                sessions = _Sessions(stack)
                for library in LIBRARIES:
                    await sessions.open_stdio(library)
                await sessions.open_nats(address)
                await sessions.open_in_process(tg)
                for r in range(rounds):
                    shift = r % len(CALL_LIBRARIES)
                    for library in CALL_LIBRARIES[shift:] + CALL_LIBRARIES[:shift]:
                        out[library].append(await _time_calls(sessions.sessions.get(library), echo, CALLS[library]))
            tg.cancel_scope.cancel()
    finally:
        echo.close()
        served.terminate()
        served.wait(10)
        if served.stdout is not None:
            served.stdout.close()
        node.stop()
    return out


def test_call_tool_round_trips(benchmark: Any) -> None:
    """All four rows in one run, interleaved round by round (see the module docstring)."""
    benchmark.group = "mcp-stdio-call-tool"
    benchmark.extra_info["lib"] = "all"
    per_round: dict[str, list[list[float]]] = {}

    def run() -> None:
        per_round.update(asyncio.run(_interleaved_round_trips(CALL_ROUNDS)))

    benchmark.pedantic(run, rounds=1, iterations=1)
    rates = {lib: [len(lat) / sum(lat) for lat in rounds] for lib, rounds in per_round.items()}
    libs: dict[str, dict[str, float]] = {}
    for lib, rounds in per_round.items():
        every = [x for lat in rounds for x in lat]
        libs[lib] = {"rate": statistics.median(rates[lib]), "p50_us": statistics.median(every) * 1e6}
    benchmark.extra_info["libs"] = libs
    # rate over the SDK's rate in the same round, median over rounds
    benchmark.extra_info["ratio_vs_sdk"] = {
        lib: statistics.median(a / b for a, b in zip(rates[lib], rates["sdk"], strict=True)) for lib in rates
    }
    assert all(len(rounds) == CALL_ROUNDS for rounds in per_round.values())
