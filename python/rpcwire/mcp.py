"""Drop-in rpcwire transports for the MCP Python SDK (``mcp`` 2.x) and FastMCP.

Install with ``pip install "rpcwire[mcp]"`` (and ``rpcwire[fastmcp]`` for the FastMCP client transport).

Every entry point here hands the SDK the same thing its own transports do: a read stream yielding
``SessionMessage | Exception`` and a write stream taking ``SessionMessage`` (the SDK's
``ReadStream``/``WriteStream`` protocols, ``mcp.client.Transport``). The streams are thin objects
straight over one rpcwire transport: no worker threads, no memory-object-stream hop, one JSON
parse (in Rust) per message and one ``model_dump_json`` per sent message, exactly as the SDK
serialises it.

- :func:`stdio_server` / :func:`stdio_client`: the same signatures and contract as
  ``mcp.server.stdio.stdio_server`` and ``mcp.client.stdio.stdio_client`` (NDJSON on the wire, so
  either end can stay the SDK's own).
- :func:`connect`: an ``mcp.client.Transport`` over a Unix or TCP socket, any framing, compression
  and encryption, for ``mcp.Client(...)`` or ``ClientSession(read, write)``.
- :func:`serve`: runs an SDK low-level ``Server``, an ``MCPServer`` or a FastMCP server on a socket,
  one MCP session per connection. :func:`run_stdio` runs any of them on rpcwire's stdio.
- ``FastMCPClientTransport``: a ``fastmcp.client.transports.ClientTransport`` over a socket
  (built on first access, so this module imports without fastmcp installed).

Behaviour of the streams (identical to the SDK's stdio transports unless noted):

- Decoded JSON-RPC objects become the four envelope models exactly as
  ``jsonrpc_message_adapter.validate_json(line, by_name=False)`` would make them (including its
  quirks: a float or boolean ``id`` makes a notification, ``result`` plus ``error`` is an error).
- A bad message (not JSON, a batch, not a JSON-RPC 2.0 envelope) is put on the read stream as an
  ``Exception`` item and the session goes on. Differences from the SDK: blank lines are ignored
  rather than reported, and a message the rpcwire codec already refuses (for example a float
  ``id``) arrives as an ``rpcwire.InvalidRequest`` item instead of being reinterpreted.
- A fatal stream error (``FramingError``, ``DecryptError``) is put on the read stream once, then the
  stream ends. End of input ends iteration (``receive`` raises ``anyio.EndOfStream``), also when the
  peer stopped in the middle of a message (a truncated last line is the end, not an error item).
- A message larger than ``max_frame_size`` (stdio: 1 GiB, as good as no limit; sockets: 16 MiB) fails
  only its own call: see ``MessageWriter.send``.
- ``send`` on a connection whose peer is gone raises ``anyio.BrokenResourceError``; ``send`` or
  ``receive`` after ``aclose`` raises ``anyio.ClosedResourceError``; ``aclose`` is idempotent.
  Closing the streams does not close the connection: the context manager (or the serving loop)
  that opened it closes it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TextIO

try:
    import anyio
    import mcp_types
    from mcp.client.stdio import StdioServerParameters, get_default_environment
    from mcp.shared.message import SessionMessage
    from mcp_types import ErrorData, JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('rpcwire.mcp needs the MCP SDK: pip install "rpcwire[mcp]"') from exc

import rpcwire

from ._errors import ConnectionClosed, RpcWireError
from ._stdio import backed_by_fd, claim_std_stream

if TYPE_CHECKING:
    from typing_extensions import Self

    #: A ``fastmcp.client.transports.ClientTransport`` subclass, built on first access.
    FastMCPClientTransport: type[Any]

__all__ = (
    "FastMCPClientTransport",
    "MCPSocketServer",
    "SocketTransport",
    "connect",
    "run_stdio",
    "serve",
    "stdio_client",
    "stdio_server",
)

logger = logging.getLogger("rpcwire.mcp")

#: ``max_frame_size`` of the stdio entry points: the SDK's stdio transports have no limit, and a local child
#: (or parent) has no way around one, so a drop-in must not be stricter than what it replaces there. Buffers
#: grow with the bytes that arrive, so the limit costs nothing until a message that big comes. Sockets keep
#: rpcwire's 16 MiB default (a network peer); every entry point takes ``max_frame_size``.
STDIO_MAX_FRAME_SIZE = 1 << 30
#: JSON-RPC's "Internal error": what a request whose response is too large to send gets instead.
INTERNAL_ERROR = -32603

_adapter = mcp_types.jsonrpc_message_adapter


class _Wire(Protocol):
    """The part of ``rpcwire.Transport`` the streams use."""

    async def send(self, msg: Any) -> None: ...
    async def receive(self) -> Any: ...
    async def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# dict -> envelope model, exactly as the SDK's validate_json would build it
# ---------------------------------------------------------------------------------------------

_new = object.__new__
_setattr = object.__setattr__


def _build(cls: type[Any], values: dict[str, Any], fields_set: set[str]) -> Any:
    # What `cls.model_construct(...)` leaves behind for these extra="ignore" models without private
    # attributes: `values` holds every field in declaration order (defaults filled in), `fields_set`
    # the ones the input gave. Minus model_construct's per-call overhead.
    model = _new(cls)
    _setattr(model, "__dict__", values)
    _setattr(model, "__pydantic_fields_set__", fields_set)
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model


def _is_id(value: Any) -> bool:
    # RequestId = Annotated[int, Field(strict=True)] | str: no bool, no float.
    return type(value) is int or type(value) is str


def _fast_envelope(d: dict[str, Any]) -> Any:
    """The envelope model for the common, unambiguous shapes; None means "ask pydantic".

    Only shapes whose validation result is certain are taken: exact key sets and exact types
    (``type(x) is int`` rejects bool, as the SDK's strict-int id does). Everything else, including
    every quirk, goes through ``jsonrpc_message_adapter.validate_python``; tests/test_mcp.py checks
    the two against each other with hypothesis.
    """
    if d.get("jsonrpc") != "2.0":
        return None
    n = len(d)
    if "method" in d:
        method = d["method"]
        if type(method) is not str:
            return None
        if "params" in d:
            params = d["params"]
            if params is not None and type(params) is not dict:
                return None
            n -= 1
            has_params = True
        else:
            params = None
            has_params = False
        if n == 2:
            fields = {"jsonrpc", "method", "params"} if has_params else {"jsonrpc", "method"}
            return _build(JSONRPCNotification, {"jsonrpc": "2.0", "method": method, "params": params}, fields)
        if n == 3 and "id" in d and _is_id(rid := d["id"]):
            fields = {"jsonrpc", "id", "method", "params"} if has_params else {"jsonrpc", "id", "method"}
            return _build(JSONRPCRequest, {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, fields)
        return None
    if n != 3 or "id" not in d:
        return None
    rid = d["id"]
    if "result" in d:
        result = d["result"]
        if type(result) is dict and _is_id(rid):
            return _build(JSONRPCResponse, {"jsonrpc": "2.0", "id": rid, "result": result}, {"jsonrpc", "id", "result"})
        return None
    error = d.get("error")
    if type(error) is not dict or not (rid is None or _is_id(rid)):
        return None
    code = error.get("code")
    message = error.get("message")
    if type(code) is not int or type(message) is not str:
        return None
    if len(error) == 2:
        data = _build(ErrorData, {"code": code, "message": message, "data": None}, {"code", "message"})
    elif len(error) == 3 and "data" in error:
        data = _build(ErrorData, {"code": code, "message": message, "data": error["data"]}, {"code", "message", "data"})
    else:
        return None
    return _build(JSONRPCError, {"jsonrpc": "2.0", "id": rid, "error": data}, {"jsonrpc", "id", "error"})


def to_session_message(item: Any) -> SessionMessage | Exception:
    """One decoded rpcwire item as the SDK's read stream carries it.

    Arguments:
        item: a ``dict`` (one message), a ``list`` (a batch) or an exception item from ``Codec.feed``.

    Returns:
        ``SessionMessage(model)`` for a valid envelope; otherwise the ``Exception`` describing why
        not (a ``pydantic.ValidationError`` as the SDK makes it, or the codec's ``ProtocolError``).
    """
    if type(item) is dict:
        model = _fast_envelope(item)
        if model is not None:
            return SessionMessage(model)
    elif isinstance(item, Exception):
        return item
    try:
        return SessionMessage(_adapter.validate_python(item, by_name=False))
    except ValueError as exc:  # pydantic.ValidationError: batches, bad envelopes
        return exc


def _serialize(message: SessionMessage) -> bytes:
    # Byte for byte `message.model_dump_json(by_alias=True, exclude_unset=True)`, as bytes.
    model = message.message
    data: bytes = model.__pydantic_serializer__.to_json(model, by_alias=True, exclude_unset=True)
    return data


# ---------------------------------------------------------------------------------------------
# the two streams
# ---------------------------------------------------------------------------------------------


class MessageReader:
    """``ReadStream[SessionMessage | Exception]`` over one rpcwire transport."""

    __slots__ = ("_closed", "_eof", "_wire")

    def __init__(self, wire: _Wire) -> None:
        self._wire = wire
        self._closed = False
        self._eof = False

    async def receive(self) -> SessionMessage | Exception:
        """The next message or exception item.

        Raises:
            anyio.EndOfStream: the peer closed the connection (or a fatal error was reported).
            anyio.ClosedResourceError: this stream was closed with ``aclose``.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._eof:
            raise anyio.EndOfStream
        try:
            item = await self._wire.receive()
        except (ConnectionClosed, ConnectionError, EOFError):
            self._eof = True
            raise anyio.EndOfStream from None
        except RpcWireError as exc:  # FramingError / DecryptError: the stream cannot go on
            self._eof = True
            logger.warning("MCP stream ended by a fatal wire error: %r", exc)
            return exc
        if self._closed:  # closed while we waited
            raise anyio.ClosedResourceError
        result = to_session_message(item)
        if type(result) is not SessionMessage:
            logger.warning("invalid JSON-RPC message from the peer: %s", result)
        return result

    async def aclose(self) -> None:
        """Stop reading. Idempotent. The connection itself is closed by whoever opened it."""
        self._closed = True

    def close(self) -> None:
        """``aclose`` without awaiting (as anyio's memory object streams have it)."""
        self._closed = True

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        await self.aclose()


class MessageWriter:
    """``WriteStream[SessionMessage]`` over one rpcwire transport (``metadata`` is ignored, as stdio does)."""

    __slots__ = ("_closed", "_limit", "_wire")

    def __init__(self, wire: _Wire) -> None:
        self._wire = wire
        self._closed = False
        codec = getattr(getattr(wire, "_proto", None), "_codec", None) or getattr(wire, "_codec", None)
        self._limit: int | None = getattr(codec, "max_frame_size", None)

    async def send(self, item: SessionMessage, /) -> None:
        """Serialise ``item.message`` as the SDK does and send it.

        A message larger than the connection's ``max_frame_size`` fails its own call and nothing else: a
        response is replaced by a JSON-RPC error response with its id (the peer's request fails, naming the
        size, instead of waiting forever), a request is answered on this side's read stream by that error
        response, and a notification raises ``ValueError`` here.

        Raises:
            anyio.ClosedResourceError: this stream was closed with ``aclose``.
            anyio.BrokenResourceError: the connection is gone.
            ValueError: a notification larger than ``max_frame_size``.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        data = _serialize(item)
        if self._limit is not None and len(data) > self._limit:
            replacement = self._too_large(item, len(data))
            if replacement is None:
                return
            data = replacement
        try:
            await self._wire.send(data)
        except (ConnectionClosed, ConnectionError, BrokenPipeError) as exc:
            # The peer cannot read us any more: end our read side too, so the session sees the connection
            # end (its pending requests fail with CONNECTION_CLOSED) instead of waiting on a live reader.
            _end_reading(self._wire)
            raise anyio.BrokenResourceError from exc

    def _too_large(self, item: SessionMessage, size: int) -> bytes | None:
        """What to send instead of a message of ``size`` bytes over the limit (None: nothing)."""
        message = item.message
        detail = f"message of {size} bytes exceeds max_frame_size {self._limit}"
        if isinstance(message, (JSONRPCResponse, JSONRPCError)):
            logger.error("response %r not sent, the peer gets an error response: %s", message.id, detail)
            data = ErrorData(code=INTERNAL_ERROR, message=f"Internal error: response not sent: {detail}", data=detail)
            return _serialize(SessionMessage(JSONRPCError(jsonrpc="2.0", id=message.id, error=data)))
        if isinstance(message, JSONRPCRequest):
            logger.error("request %r not sent, answered locally: %s", message.id, detail)
            error = {"code": INTERNAL_ERROR, "message": f"request not sent: {detail}", "data": detail}
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": message.id, "error": error}
            _deliver_locally(self._wire, answer)
            return None
        raise ValueError(f"notification not sent: {detail}")

    async def aclose(self) -> None:
        """Stop writing. Idempotent; messages already sent are still delivered."""
        self._closed = True

    def close(self) -> None:
        """``aclose`` without awaiting (as anyio's memory object streams have it)."""
        self._closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _deliver_locally(wire: Any, item: Any) -> None:
    """Put ``item`` on ``wire``'s receive side, as if the peer had sent it."""
    local = getattr(wire, "deliver_locally", None)
    if local is not None:
        local(item)
    else:
        wire._proto._enqueue([item])


def _end_reading(wire: Any) -> None:
    """End ``wire``'s receive side now (what is queued is still read first)."""
    end = getattr(wire, "end_reading", None)
    if end is not None:
        end()
    else:
        wire._proto.close_nowait()


def streams(wire: Any) -> tuple[MessageReader, MessageWriter]:
    """The SDK stream pair over an already open rpcwire transport (it stays open when they close)."""
    return MessageReader(wire), MessageWriter(wire)


# ---------------------------------------------------------------------------------------------
# stdio
# ---------------------------------------------------------------------------------------------


class _TextFileWire:
    """Lines of ``anyio.AsyncFile[str]`` objects, for ``stdio_server(stdin, stdout)`` with explicit (or
    replaced ``sys``) streams."""

    def __init__(self, stdin: Any, stdout: Any, max_frame_size: int) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._codec = rpcwire.Codec(framing="ndjson", max_frame_size=max_frame_size)
        self._pending: list[Any] = []
        self._eof = False
        self._writing = anyio.Lock()

    def deliver_locally(self, item: Any) -> None:
        self._pending.append(item)

    def end_reading(self) -> None:
        self._eof = True

    async def receive(self) -> Any:
        while not self._pending:
            if self._eof:
                raise ConnectionClosed
            line = await self._stdin.readline()
            if not line:
                self._eof = True
                self._pending.extend(self._codec.feed(b""))
                continue
            # Universal newlines, as the SDK's TextIOWrapper reads them.
            self._pending.extend(self._codec.feed(line.rstrip("\r\n").encode("utf-8", "replace") + b"\n"))
        return self._pending.pop(0)

    async def send(self, msg: Any) -> None:
        data = self._codec.encode(msg)
        # One at a time, in the order the sends came: each write runs in a worker thread, and two of them at
        # once could land out of order or interleaved.
        async with self._writing:
            await self._stdout.write(data.decode("utf-8"))
            await self._stdout.flush()

    async def close(self) -> None:
        return None


@asynccontextmanager
async def stdio_server(
    stdin: anyio.AsyncFile[str] | None = None,
    stdout: anyio.AsyncFile[str] | None = None,
    *,
    max_frame_size: int = STDIO_MAX_FRAME_SIZE,
) -> AsyncIterator[tuple[MessageReader, MessageWriter]]:
    """Serve MCP over this process's stdin and stdout, as ``mcp.server.stdio.stdio_server`` does.

    NDJSON, UTF-8. While serving, ``rpcwire.stdio()`` points fd 0 at the null device and fd 1 at
    stderr, so a stray ``print`` cannot corrupt the wire; messages already sent are flushed before
    the context exits. With explicit ``stdin``/``stdout`` async text files nothing is claimed and
    each message is written and flushed on its own (the SDK's behaviour for explicit streams).

    Arguments:
        stdin: optional text file to read from instead of fd 0.
        stdout: optional text file to write to instead of fd 1.
        max_frame_size: the largest message accepted or sent (default 1 GiB: the SDK has no limit).

    Yields:
        ``(read_stream, write_stream)`` for ``Server.run``.
    """
    if not _on_asyncio():
        sdk_stdio_server = _sdk_original("mcp.server.stdio", "stdio_server")
        async with sdk_stdio_server(stdin, stdout) as pair:
            yield pair
        return
    if stdin is None and stdout is None and backed_by_fd(sys.stdin, 0) and backed_by_fd(sys.stdout, 1):
        async with rpcwire.stdio(framing="ndjson", max_frame_size=max_frame_size) as wire:
            yield streams(wire)
        return
    # One explicit stream, or a replaced sys.stdin/sys.stdout: line by line through text files, the
    # standard stream that is left claimed and guarded as stdio() guards both.
    releases: list[Callable[[], None]] = []
    try:
        if stdin is None:
            buffer, release = claim_std_stream(0, sys.stdin, "rb")
            releases.append(release)
            stdin = anyio.wrap_file(_UnownedText(buffer, encoding="utf-8", errors="replace"))
        if stdout is None:
            buffer, release = claim_std_stream(1, sys.stdout, "wb")
            releases.append(release)
            stdout = anyio.wrap_file(_UnownedText(buffer, encoding="utf-8"))
        yield streams(_TextFileWire(stdin, stdout, max_frame_size))
    finally:
        for release in reversed(releases):
            release()


class _UnownedText(io.TextIOWrapper):
    """A text layer over a buffer that is not ours to close (a sys stream's, or a claimed duplicate)."""

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.detach()


def _sdk_original(module_name: str, name: str) -> Any:
    """The SDK's own ``name`` from ``module_name``: a swap that puts rpcwire's in its place (as
    ``make sdk-conformance`` does) keeps the original as ``_sdk_<name>``."""
    module = importlib.import_module(module_name)
    return getattr(module, f"_sdk_{name}", getattr(module, name))


def _on_asyncio() -> bool:
    """True under asyncio. rpcwire's transports are asyncio protocols; under anyio's trio backend the MCP
    entry points hand over to the SDK's own stdio transports, which is what trio users have today."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _ErrlogSink:
    """Child stderr -> ``errlog`` (the SDK hands ``errlog`` to the child; rpcwire drains it)."""

    def __init__(self, errlog: TextIO) -> None:
        self._errlog = errlog

    def __call__(self, data: bytes) -> None:
        try:
            self._errlog.write(data.decode("utf-8", "replace"))
            self._errlog.flush()
        except (OSError, ValueError):  # errlog closed: drop, never block the child
            pass


@asynccontextmanager
async def stdio_client(
    server: StdioServerParameters, errlog: TextIO = sys.stderr, *, max_frame_size: int = STDIO_MAX_FRAME_SIZE
) -> AsyncIterator[tuple[MessageReader, MessageWriter]]:
    """Spawn an MCP server and talk to it over its stdin/stdout, as ``mcp.client.stdio.stdio_client`` does.

    The child gets ``get_default_environment() | server.env``, ``server.cwd``, its own session
    (process group), and its stderr goes to ``errlog``. On exit: messages already sent are
    flushed, the child's stdin is closed, then after 2 s the group gets SIGTERM, after 2 s more
    SIGKILL. A server ``encoding`` other than UTF-8, or anyio's trio backend, is handed to the SDK's
    own ``stdio_client``.

    Arguments:
        server: the command, arguments, environment and working directory.
        errlog: where the child's stderr goes.
        max_frame_size: the largest message accepted or sent (default 1 GiB: the SDK has no limit).

    Yields:
        ``(read_stream, write_stream)`` for ``ClientSession``.

    Raises:
        OSError: the server process could not be spawned.
    """
    if server.encoding.replace("-", "").replace("_", "").lower() != "utf8" or not _on_asyncio():
        sdk_stdio_client = _sdk_original("mcp.client.stdio", "stdio_client")
        async with sdk_stdio_client(server, errlog) as pair:
            yield pair
        return
    env = get_default_environment() | (server.env or {})
    options: dict[str, Any] = {"cwd": server.cwd, "env": env, "framing": "ndjson", "max_frame_size": max_frame_size}
    if errlog is not sys.stderr:
        options["stderr"] = _ErrlogSink(errlog)
    async with rpcwire.spawn([server.command, *server.args], **options) as wire:
        yield streams(wire)


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
    """An ``mcp.client.Transport`` for ``address`` (``unix:///path``, ``tcp://host:port``).

    Arguments:
        address: where the server listens.
        **codec_options: ``framing``, ``compression``, ``keyring``, ... as for ``rpcwire.connect``.
            Clients default to NDJSON; the server side (``serve``) detects the framing.

    Returns:
        A reusable async context manager yielding ``(read_stream, write_stream)``; no I/O happens
        until it is entered.
    """
    return SocketTransport(address, **codec_options)


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
        address: ``unix:///path`` or ``tcp://host:port`` (a bare port binds loopback).
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


async def run_stdio(server: Any, *, max_frame_size: int = STDIO_MAX_FRAME_SIZE) -> None:
    """Run an SDK ``Server``, ``MCPServer`` or FastMCP server on rpcwire's stdio until stdin closes.

    The drop-in for ``MCPServer.run("stdio")`` / ``FastMCP.run("stdio")`` (without FastMCP's banner).
    ``max_frame_size``: the largest message accepted or sent (default 1 GiB, as ``stdio_server``).
    """
    low, lifespan = _lowlevel(server)
    async with contextlib.AsyncExitStack() as stack:
        if lifespan is not None:
            from fastmcp.server.context import reset_transport, set_transport

            token = set_transport("stdio")
            stack.callback(reset_transport, token)
            await stack.enter_async_context(lifespan())
        async with stdio_server(max_frame_size=max_frame_size) as (read, write):
            await low.run(read, write, low.create_initialization_options())


# ---------------------------------------------------------------------------------------------
# FastMCP client transport (fastmcp imported on first use)
# ---------------------------------------------------------------------------------------------

_fastmcp_class: type[Any] | None = None


def _make_fastmcp_transport() -> type[Any]:
    from fastmcp.client.transports import ClientTransport
    from fastmcp.client.transports.base import TransportOptions

    class FastMCPClientTransport(ClientTransport):
        """A ``fastmcp.Client`` transport over a Unix or TCP socket served by :func:`serve`.

        ``fastmcp.Client(FastMCPClientTransport("unix:///tmp/app.sock", keyring=kr))``.
        """

        def __init__(self, address: str, **codec_options: Any) -> None:
            self.address = address
            self.codec_options = codec_options

        @contextlib.asynccontextmanager
        async def connect_session(self, *, transport_options: Any = None, **session_kwargs: Any) -> AsyncIterator[Any]:
            options = transport_options or TransportOptions()
            async with (
                SocketTransport(self.address, **self.codec_options) as (read, write),
                options.session_class(read, write, **session_kwargs) as session,
            ):
                yield session

        def __repr__(self) -> str:
            return f"<FastMCPClientTransport({self.address!r})>"

    FastMCPClientTransport.__module__ = __name__
    return FastMCPClientTransport


def __getattr__(name: str) -> Any:
    global _fastmcp_class
    if name == "FastMCPClientTransport":
        if _fastmcp_class is None:
            _fastmcp_class = _make_fastmcp_transport()
        return _fastmcp_class
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
