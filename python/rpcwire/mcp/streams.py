"""The SDK's read and write streams over one rpcwire transport."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError, JSONRPCRequest, JSONRPCResponse

from .._errors import ConnectionClosed, RpcWireError
from .messages import _serialize, to_session_message

if TYPE_CHECKING:
    from typing_extensions import Self

logger = logging.getLogger("rpcwire.mcp")


__all__ = (
    "INTERNAL_ERROR",
    "MessageReader",
    "MessageWriter",
    "streams",
)


#: JSON-RPC's "Internal error": what a request whose response is too large to send gets instead.
INTERNAL_ERROR = -32603


class _Wire(Protocol):
    """The part of ``rpcwire.Transport`` the streams use."""

    async def send(self, msg: Any) -> None: ...
    async def receive(self) -> Any: ...
    async def close(self) -> None: ...


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
