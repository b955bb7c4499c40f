"""The rpcwire exception tree.

``RpcWireError`` > ``ProtocolError`` (> ``ParseError``, ``InvalidRequest``), ``FramingError``
(> ``FrameTooLarge``), ``DecryptError``, ``ConnectionClosed``.

``ProtocolError`` instances describe one bad message. The codec *returns* them as items and the
stream goes on. The other errors end a stream and are *raised*. The Rust core looks these classes
up once and builds them; Python code (transports, the reference codec) raises them directly.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = (
    "ConnectionClosed",
    "DecryptError",
    "FrameTooLarge",
    "FramingError",
    "InvalidRequest",
    "ParseError",
    "ProtocolError",
    "RpcWireError",
)


class RpcWireError(Exception):
    """Base of every error rpcwire raises or returns. Abstract: raise a subclass."""

    def __new__(cls, *args: Any, **kwargs: Any) -> RpcWireError:
        if cls is RpcWireError or cls is ProtocolError:
            raise TypeError(f"{cls.__name__} is abstract; raise one of its subclasses")
        return super().__new__(cls, *args)


class ProtocolError(RpcWireError, ValueError):
    """One frame that could not be turned into a valid JSON-RPC message. Abstract.

    Returned as an item by ``Codec.feed`` (never raised by it); the stream goes on. A ``ValueError``, as the
    MCP SDK's own stdio transports report a line they cannot parse (``pydantic.ValidationError``), so code
    written against them handles these items the same way.

    Attributes:
        code: the JSON-RPC error code a server should answer with.
        message: the JSON-RPC spec's text for ``code``.
        data: details for humans: what was wrong and where.
        id: the request id when it could be recovered, so a server can answer; otherwise None.
    """

    code: ClassVar[int]
    default_message: ClassVar[str]

    def __init__(self, data: str | None = None, id: str | int | None = None) -> None:
        super().__init__(data if data is not None else self.default_message)
        self.message: str = self.default_message
        self.data: str | None = data
        self.id: str | int | None = id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(data={self.data!r}, id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ProtocolError)
        return (self.data, self.id) == (other.data, other.id)

    def __hash__(self) -> int:
        return hash((type(self), self.data, self.id))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.data, self.id))

    def to_error(self) -> dict[str, Any]:
        """The JSON-RPC error response a server sends for this item (``id`` null when unknown)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": self.id, "error": error}


class ParseError(ProtocolError):
    """The frame is not a JSON text (JSON-RPC -32700 "Parse error")."""

    code = -32700
    default_message = "Parse error"


class InvalidRequest(ProtocolError):
    """Valid JSON that is not a JSON-RPC 2.0 message (JSON-RPC -32600 "Invalid Request")."""

    code = -32600
    default_message = "Invalid Request"


class FramingError(RpcWireError):
    """The byte stream cannot be split into frames any more; the codec is poisoned.

    Attributes:
        items: the items ``Codec.feed`` completed from the same chunk before the error (empty when none),
            so the messages that arrived before a bad frame are not lost with it. From ``Codec.feed_each``:
            the ones it did not hand to the handler.
        handled: from ``Codec.feed_each``, how many items of the chunk it handed to the handler (else 0).
    """

    items: list[Any] = []  # noqa: RUF012 - read-only default; the codec sets a fresh list per raise
    handled: int = 0


class FrameTooLarge(FramingError):
    """A frame declared more bytes than ``max_frame_size``; refused before any allocation."""


class DecryptError(RpcWireError):
    """An encrypted frame failed authentication, named an unknown key id, was replayed, reordered or
    reflected, or a plaintext frame reached a codec with a keyring. The codec is poisoned.

    Attributes:
        items: as ``FramingError.items``.
        handled: as ``FramingError.handled``.
    """

    items: list[Any] = []  # noqa: RUF012 - read-only default; the codec sets a fresh list per raise
    handled: int = 0


class ConnectionClosed(RpcWireError, ConnectionError):
    """The peer is gone: raised by ``receive`` and ``send`` on a closed transport.

    Attributes:
        exit_code: for a spawned child, its exit status once known; otherwise None.
    """

    def __init__(self, message: str = "connection closed", *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
