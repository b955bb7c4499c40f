"""What rpcwire's own code costs a round trip, beyond its codec calls: ``python -m benches.glue``.

A minimal asyncio ``BufferedProtocol`` client and server make exactly the codec calls rpcwire makes on a
150 B round trip, and nothing else: the client ``encode_many([request])`` and ``feed``; the server
``feed_each`` with the bench servers' logic, then ``encode_many`` of the answers. Every pairing of client
(rpcwire ``Transport`` or minimal) and server (``Transport.handle`` or minimal) runs over a Unix socket,
interleaved round by round after a warm-up, and prints its median p50. The minimal pair is the same JSON work
with no protocol around it; rpcwire's distance from it is what the protocol, ``send``, ``receive`` and
``handle`` cost. ``--pin`` puts the client on CPU 0 and the server on CPU 1, which steadies the figures.

Options: ``--count`` round trips per round (5000), ``--rounds`` (8), ``--pin``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rpcwire
from rpcwire.bench import workloads
from rpcwire.bench.baselines import ServerLogic

KINDS = ("rpcwire", "minimal")
#: The checkout, where ``python -m benches.glue`` finds this module.
ROOT = Path(__file__).resolve().parent.parent
SIZE = 150
_BUFFER = memoryview(bytearray(256 * 1024))


class _Minimal(asyncio.BufferedProtocol):
    """A codec, the transport, and the module's read buffer for every read."""

    def __init__(self) -> None:
        self.codec = rpcwire.Codec(framing="ndjson")
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUFFER


class MinimalServer(_Minimal):
    """Each read: one ``feed_each`` into the bench logic, one ``encode_many`` and one write of the answers."""

    def __init__(self) -> None:
        super().__init__()
        self.logic = ServerLogic().on_message

    def buffer_updated(self, nbytes: int) -> None:
        answers: list[Any] = []
        self.codec.feed_each(_BUFFER[:nbytes], self.logic, answers, 1024)
        if answers:
            self.transport.write(self.codec.encode_many(answers))


class MinimalClient(_Minimal):
    """``send``: one ``encode_many`` and one write; ``receive``: the items one ``feed`` per read produced."""

    def __init__(self) -> None:
        super().__init__()
        self.items: collections.deque[Any] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None

    def buffer_updated(self, nbytes: int) -> None:
        self.items.extend(self.codec.feed(_BUFFER[:nbytes]))
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send(self, msg: Any) -> None:
        self.transport.write(self.codec.encode_many([msg]))

    async def receive(self) -> Any:
        if not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.items.popleft()


async def serve(kind: str, path: str) -> None:
    """The server side, in its own process, until stdin closes."""
    loop = asyncio.get_running_loop()
    if kind == "minimal":
        server: Any = await loop.create_unix_server(MinimalServer, path)
    else:
        server = await rpcwire.serve(lambda t: t.handle(ServerLogic().on_message), f"unix://{path}")
    closed: asyncio.Future[None] = loop.create_future()

    class StdinWatch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            closed.set_result(None)

    # stdin's end is watched by the loop: a thread blocked on it would cost every round trip a few us
    await loop.connect_read_pipe(StdinWatch, sys.stdin)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await closed
    server.close()


async def connect(kind: str, path: str) -> tuple[Any, Any, Any]:
    """(send, receive, close) of a client of `kind`."""
    if kind == "minimal":
        transport, proto = await asyncio.get_running_loop().create_unix_connection(MinimalClient, path)
        return proto.send, proto.receive, transport.close
    t = await rpcwire.connect(f"unix://{path}")
    return t.send, t.receive, t.close


async def measure(tmp: str, count: int, rounds: int) -> dict[tuple[str, str], list[float]]:
    """Median-of-round p50s (us) of every (client, server) pairing, against the servers listening in `tmp`."""
    pairs = [(client, server) for client in KINDS for server in KINDS]
    results: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    conns: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
    try:
        for client, server in pairs:
            conns[client, server] = await connect(client, os.path.join(tmp, f"{server}.sock"))
        requests = [workloads.request(SIZE, i) for i in range(count)]
        for pair in pairs:  # warm-up
            send, receive, _ = conns[pair]
            for msg in requests[: max(1, count // 5)]:
                await send(msg)
                await receive()
        clock = time.perf_counter_ns
        for _ in range(rounds):
            for pair in pairs:
                send, receive, _ = conns[pair]
                latencies: list[int] = []
                for msg in requests:
                    start = clock()
                    await send(msg)
                    reply = await receive()
                    latencies.append(clock() - start)
                    if reply.get("id") != msg["id"]:
                        raise SystemExit(f"{pair}: answer {reply.get('id')!r} to request {msg['id']!r}")
                latencies.sort()
                results[pair].append(latencies[len(latencies) // 2] / 1000)
    finally:
        for _, _, close in conns.values():
            closed = close()
            if asyncio.iscoroutine(closed):
                await closed
    return results


def run(count: int, rounds: int, pin: bool) -> dict[tuple[str, str], list[float]]:
    """Start a server of each kind (on CPU 1 with `pin`), measure, stop them."""
    with tempfile.TemporaryDirectory(prefix="rpcwire-glue-") as tmp, contextlib.ExitStack() as stack:
        for kind in KINDS:
            argv = [sys.executable, "-m", "benches.glue", "--serve", kind, os.path.join(tmp, f"{kind}.sock")]
            if pin:
                argv = ["taskset", "-c", "1", *argv]
            proc = stack.enter_context(
                subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
            )
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {kind} server did not start")
        # Popen's exit closes stdin (the server stops) and waits for it
        return asyncio.run(measure(tmp, count, rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.glue", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, choices=range(1, 10**7), metavar="N")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--pin", action="store_true", help="client on CPU 0, server on CPU 1")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(*args.serve))
        return 0
    if args.pin:
        os.sched_setaffinity(0, {0})
    results = run(args.count, args.rounds, args.pin)
    base = sorted(results["minimal", "minimal"])[args.rounds // 2]
    for (client, server), p50s in results.items():
        median = sorted(p50s)[args.rounds // 2]
        sys.stdout.write(
            f"client {client:8} server {server:8} p50 {median:6.1f} us  {median / base:.3f}x the minimal pair"
            f"  (rounds: {' '.join(f'{v:.1f}' for v in p50s)})\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
