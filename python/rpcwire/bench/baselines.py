"""The pieces the baselines are made of, shared by the parent (client side) and `_peer` (server side).

- `asyncio`: a hand-rolled `asyncio.Protocol` speaking NDJSON with orjson: split lines on
  ``\\n``, ``orjson.loads`` each, ``orjson.dumps(msg) + b"\\n"`` and one ``transport.write`` per
  message, with pause/resume flow control. What a careful user writes without rpcwire.
- `reference`: rpcwire's own transports driven by the pure-Python `rpcwire.reference.Codec`
  (see :func:`codec_override`).
- `floor`: the asyncio Protocol ping-pong with no JSON work on the hot path: the client writes
  pre-encoded lines, the server answers each request line with cached response bytes for the size
  it names (found by a byte search, not a parse) and counts throughput lines without decoding
  them. No Python transport can beat it; latency ratios against it show what the codec costs.
- `mcp`: the MCP SDK's stdio transport (`mcp.server.stdio.stdio_server` in the child,
  `mcp.client.stdio.stdio_client` in the parent) moving `SessionMessage`s.

The server logic is the same for every implementation: :class:`ServerLogic`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from . import workloads

__all__ = ("FloorProtocol", "NdjsonProtocol", "ServerLogic", "codec_override", "serve_transport")


class ServerLogic:
    """What every bench server does with each decoded message.

    A ``bench/expect`` request opens a throughput run: the next `count` messages are counted and
    not answered; after the last one the server answers the expect request with ``{"count": N}``.
    Any other request gets :func:`workloads.response_for` (the size it asks for); the rest is
    ignored.
    """

    __slots__ = ("_counted", "_expect", "_expect_id")

    def __init__(self) -> None:
        self._expect = 0
        self._counted = 0
        self._expect_id: Any = None

    def on_message(self, msg: Any) -> dict[str, Any] | None:
        """The answer to send for `msg`, or None."""
        if self._expect > 0:
            self._expect -= 1
            if self._expect == 0:
                return self._ack()
            return None
        if isinstance(msg, dict) and msg.get("method") == "bench/expect":
            self._expect_id = msg.get("id")
            self._expect = int(msg["params"]["count"])
            self._counted = self._expect
            return self._ack() if self._expect == 0 else None
        return workloads.response_for(msg)

    def _ack(self) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": self._expect_id, "result": {"count": self._counted}}


async def serve_transport(t: Any) -> None:
    """Run :class:`ServerLogic` on an rpcwire transport until the peer goes (the rpcwire and reference servers).

    Through ``Transport.handle``, as a server whose logic needs no ``await`` is best written: the logic runs
    as each read is decoded, like the `asyncio` baseline's ``data_received``.
    """
    await t.handle(ServerLogic().on_message)


async def iterate_transport(t: Any) -> None:
    """:class:`ServerLogic` on an rpcwire transport the way most application code reads one (``--server-reads
    iterate``): ``async for`` over its messages, ``await t.send`` of each answer."""
    on_message = ServerLogic().on_message
    send = t.send
    async for msg in t:
        answer = on_message(msg)
        if answer is not None:
            await send(answer)


def transport_server(reads: str) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """The rpcwire/reference bench server for ``--server-reads`` `reads` ("handle" or "iterate")."""
    return iterate_transport if reads == "iterate" else serve_transport


class NdjsonProtocol(asyncio.Protocol):
    """Hand-rolled NDJSON over an asyncio transport with orjson: the `asyncio` baseline.

    Used on both sides. On the server side `logic` answers messages as they arrive; on the client
    side decoded messages queue for :meth:`receive`. Works as a plain Protocol (sockets) and, via
    :class:`NdjsonSubprocessProtocol` / a separate write transport, over pipes.
    """

    def __init__(self, logic: ServerLogic | None = None) -> None:
        import orjson  # the baseline's one dependency

        self._loads = orjson.loads
        self._dumps = orjson.dumps
        self._logic = logic
        self._buf = bytearray()
        self._queue: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused = False
        self._closed = False
        self.writer: asyncio.WriteTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.writer is None and isinstance(transport, asyncio.WriteTransport):
            self.writer = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        if b"\n" not in data:
            buf += data
            return
        buf += data
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        loads = self._loads
        logic = self._logic
        if logic is None:
            self._queue.extend(loads(line) for line in lines if line)
            self._wake()
            return
        writer = self.writer
        dumps = self._dumps
        for line in lines:
            if line:
                out = logic.on_message(loads(line))
                if out is not None and writer is not None:
                    writer.write(dumps(out) + b"\n")

    def eof_received(self) -> bool | None:
        self._finish()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # -- client side
    async def send(self, msg: Any) -> None:
        """One orjson.dumps and one transport.write; waits while the transport is paused."""
        if self._closed or self.writer is None:
            raise ConnectionError("connection closed")
        self.writer.write(self._dumps(msg) + b"\n")
        if self._paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    async def receive(self) -> Any:
        while not self._queue:
            if self._closed:
                raise ConnectionError("connection closed")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._queue.popleft()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _finish(self) -> None:
        self._closed = True
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)


class FloorProtocol(NdjsonProtocol):
    """The `floor` baseline (see the module docstring): NdjsonProtocol minus the JSON work."""

    _SIZE_KEY = b'"benchSize":'

    def __init__(self, logic: ServerLogic | None = None) -> None:
        super().__init__(logic)
        self._answers: dict[int, bytes] = {}

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if b"\n" not in data:
            return
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        logic = self._logic
        if logic is None:  # client: queue the raw lines
            self._queue.extend(line for line in lines if line)
            self._wake()
            return
        writer = self.writer
        for line in lines:
            if not line:
                continue
            if logic._expect > 0:
                out = logic.on_message(None)  # counting: the content is not looked at
                if out is not None and writer is not None:
                    writer.write(self._dumps(out) + b"\n")
                continue
            if b"bench/expect" in line:
                out = logic.on_message(self._loads(line))
                if out is not None and writer is not None:
                    writer.write(self._dumps(out) + b"\n")
                continue
            if writer is not None:
                writer.write(self._answer(line))

    def _answer(self, line: bytes | bytearray) -> bytes:
        at = line.find(self._SIZE_KEY)
        size = 150
        if at >= 0:
            start = at + len(self._SIZE_KEY)
            end = start
            while end < len(line) and 48 <= line[end] <= 57:
                end += 1
            size = int(line[start:end] or b"150")
        answer = self._answers.get(size)
        if answer is None:
            answer = self._answers[size] = self._dumps(workloads.response(size, 0)) + b"\n"
        return answer

    def prepare(self, msg: Any) -> bytes:
        """Encode before the clock starts: the floor's send is one write of ready bytes."""
        return bytes(self._dumps(msg) + b"\n")

    async def send(self, msg: Any) -> None:
        if self._closed or self.writer is None:
            raise ConnectionError("connection closed")
        self.writer.write(msg)
        if self._paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain


class NdjsonSubprocessProtocol(asyncio.SubprocessProtocol):
    """The same baseline over a child's pipes (`loop.subprocess_exec`)."""

    def __init__(self, inner: NdjsonProtocol | None = None) -> None:
        self.inner = inner if inner is not None else NdjsonProtocol()
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        self.inner.writer = stdin

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.inner.data_received(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def process_exited(self) -> None:
        self.inner.connection_lost(None)
        if not self.exited.done():
            self.exited.set_result(None)


def reference_codec_class() -> type:
    """`rpcwire.reference.Codec` (ImportError when the reference extra is missing)."""
    module = importlib.import_module("rpcwire.reference")
    cls: type = module.Codec
    return cls


@contextlib.contextmanager
def codec_override(impl: str) -> Iterator[None]:
    """While active, rpcwire's transports build `rpcwire.reference.Codec` instead of `rpcwire.Codec`.

    This is how the `reference` baseline runs "the same transport code with a pure-Python
    codec": the transports build each connection's codec through `rpcwire._protocol.new_codec`,
    which honours `rpcwire._protocol.codec_class`. A codec is built when a connection is made
    (for a server: when one is accepted), so the override must span connection set-up. For impl
    "rpcwire" it does nothing.
    """
    if impl != "reference":
        yield
        return
    ref = reference_codec_class()
    protocol: Any = importlib.import_module("rpcwire._protocol")
    if not hasattr(protocol, "codec_class"):
        raise RuntimeError("rpcwire._protocol.codec_class is missing: cannot run the reference baseline")
    original = protocol.codec_class
    protocol.codec_class = ref
    try:
        yield
    finally:
        protocol.codec_class = original
