"""MCP over Unix and TCP sockets and over NATS: ``connect`` (an ``mcp.client.Transport``) and ``serve``."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

import rpcwire

from .servers import _lowlevel, _run_session
from .streams import MessageReader, MessageWriter, streams

if TYPE_CHECKING:
    from typing_extensions import Self

logger = logging.getLogger("rpcwire.mcp")


__all__ = (
    "MCPSocketServer",
    "SocketTransport",
    "connect",
    "serve",
)


# ---------------------------------------------------------------------------------------------
# sockets
# ---------------------------------------------------------------------------------------------


class SocketTransport:
    """An ``mcp.client.Transport`` over a Unix or TCP socket: ``mcp.Client(SocketTransport(...))``.

    Entering connects (``rpcwire.connect(address, **codec_options)``) and yields the stream pair;
    exiting closes the connection (sends already made are flushed first). Reusable: each entry
    opens a new connection.
    """

    def __init__(self, address: str, **codec_options: Any) -> None:
        self.address = address
        self.codec_options = codec_options
        self._wires: list[Any] = []

    def __repr__(self) -> str:
        return f"SocketTransport({self.address!r})"

    async def __aenter__(self) -> tuple[MessageReader, MessageWriter]:
        wire = await rpcwire.connect(self.address, **self.codec_options)
        self._wires.append(wire)
        return streams(wire)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        if self._wires:
            await self._wires.pop().close()


def connect(address: str, **codec_options: Any) -> SocketTransport:
    """An ``mcp.client.Transport`` for ``address`` (``unix:///path``, ``tcp://host:port``, ``nats://host:port/SUBJECT``).

    Arguments:
        address: where the server listens.
        **codec_options: ``framing``, ``compression``, ``keyring``, ... as for ``rpcwire.connect``.
            Clients default to NDJSON; the server side (``serve``) detects the framing.

    Returns:
        A reusable async context manager yielding ``(read_stream, write_stream)``; no I/O happens
        until it is entered.
    """
    return SocketTransport(address, **codec_options)


class MCPSocketServer:
    """A listening socket serving one MCP session per connection (what :func:`serve` returns).

    Attributes:
        address: the bound URL (the real port when port 0 was asked).
    """

    def __init__(self, listener: Any, stack: AsyncExitStack) -> None:
        self._listener = listener
        self._stack = stack
        self.address: str = listener.address

    async def close(self) -> None:
        """Stop listening, close the connections, then leave the server's lifespan. Idempotent."""
        await self._stack.aclose()

    async def serve_forever(self) -> None:
        """Wait until cancelled, then close."""
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        await self.close()


async def _close_listener(listener: Any) -> None:
    listener.close()
    await listener.wait_closed()


async def serve(server: Any, address: str, **codec_options: Any) -> MCPSocketServer:
    """Start serving an MCP server on a socket; returns once it listens.

    Each connection gets its own MCP session (``Server.run`` over that connection's streams), as
    each stdio child would. A FastMCP server's lifespan is entered here, once, and left when the
    returned server closes. Use ``async with await serve(...) as srv:`` or ``await srv.serve_forever()``.

    Arguments:
        server: an ``mcp.server.lowlevel.Server``, an ``mcp.server.mcpserver.MCPServer`` or a
            ``fastmcp.FastMCP``.
        address: ``unix:///path``, ``tcp://host:port`` (a bare port binds loopback), or
            ``nats://host:port/SUBJECT``: every process serving that subject shares the sessions (one queue group).
        **codec_options: as for ``rpcwire.serve`` (framing defaults to ``auto``).

    Returns:
        The listening :class:`MCPSocketServer`.

    Raises:
        TypeError: ``server`` is none of the supported kinds.
        OSError: the address could not be bound.
    """
    low, lifespan = _lowlevel(server)

    async def handler(wire: Any) -> None:
        try:
            await _run_session(low, wire)
        except Exception:
            logger.exception("MCP session on %s failed", address)

    async with AsyncExitStack() as stack:
        if lifespan is not None:
            await stack.enter_async_context(lifespan())
        listener = await rpcwire.serve(handler, address, **codec_options)
        stack.push_async_callback(_close_listener, listener)
        return MCPSocketServer(listener, stack.pop_all())
    raise AssertionError("unreachable")  # pragma: no cover
