"""Stubs for the Rust extension `rpcwire._core` (kept in step by stubtest)."""

import asyncio
import collections
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from typing import Any, ClassVar, Literal, Self, final

from typing_extensions import disjoint_base

from ._errors import ProtocolError

__version__: str
__all__ = ["Codec", "Keyring", "ProtocolCore", "__version__", "drop_waiter", "kind", "wake"]

#: One decoded item: a message, a batch (invalid elements replaced by their ProtocolError), or a
#: ProtocolError for a frame that could not be turned into a message.
_Item = dict[str, Any] | list[dict[str, Any] | ProtocolError] | ProtocolError

@final
class Codec:
    """A sans-IO JSON-RPC 2.0 codec for one connection (docs/wire-format.md).

    ``feed`` turns bytes into items, ``encode``/``encode_many`` turn messages into bytes. It does no
    I/O. Not thread-safe: one codec per connection, used from one thread at a time.
    """

    def __new__(
        cls,
        framing: Literal["ndjson", "length", "content-length", "auto"] | None = None,
        compression: Literal["lz4", "brotli"] | None = None,
        compress_min_size: int = 1024,
        keyring: Keyring | None = None,
        max_frame_size: int = 16777216,
        *,
        max_batch: int = 1024,
        max_expansion: int = 4096,
        handshake: Literal["initiator", "responder"] | None = None,
    ) -> Codec:
        """Create a codec.

        Arguments:
            framing: ``"ndjson"`` (one JSON text per line, MCP stdio), ``"length"`` (u32 big-endian prefix),
                ``"content-length"`` (LSP headers) or ``"auto"`` (detected from the first byte received; the
                codec then also writes that framing). ``None``: ``"ndjson"``, or ``"length"`` when
                ``compression`` or ``keyring`` is given.
            compression: ``"lz4"`` or ``"brotli"`` for payloads of at least ``compress_min_size`` bytes
                (kept only when smaller). Binary framings only.
            compress_min_size: smaller payloads are sent uncompressed.
            keyring: seal every frame with AES-256-GCM, and accept only sealed frames. Binary framings only.
            max_frame_size: the largest frame payload accepted (or written), in bytes; larger ones are
                refused before any allocation. The receive buffer grows with the bytes that arrive, never
                with the size a header announces.
            max_batch: the most elements a received batch, or records a received multi envelope, may hold;
                a larger one is a single ``InvalidRequest`` item, found after building at most ``max_batch``
                elements. ``encode_many`` puts at most this many records in one envelope.
            max_expansion: decompressed bytes a received compressed body may hold per compressed byte;
                decompression stops there (``FrameTooLarge``). A body that compresses better than this is
                sent uncompressed, so two codecs with the same setting always understand each other.
            handshake: with a keyring, do the session handshake (docs/wire-format.md 3.4) in this role and
                seal with per-connection, per-direction keys: ``"initiator"`` for the side that connects,
                ``"responder"`` for the side that accepts. Write ``data_to_send()`` after creating the codec
                and after every ``feed``; ``encode`` works once ``established``. ``None`` (the default): the
                stream form, every frame sealed under the keyring's key (one-way use; its limits are in
                docs/security.md). rpcwire's transports set this themselves.

        Raises:
            ValueError: an unknown framing or compression name, compression or a keyring with ``"ndjson"``,
                a negative ``compress_min_size``, or a ``max_frame_size``, ``max_batch`` or
                ``max_expansion`` below 1, an unknown ``handshake`` role, or a handshake without a keyring.
            TypeError: ``keyring`` is not a ``Keyring``.
        """

    @property
    def framing(self) -> str:
        """The framing in use: as configured or, for ``"auto"``, the one detected (``"auto"`` until then)."""

    @property
    def compression(self) -> str | None:
        """The configured compression, or None."""

    @property
    def compress_min_size(self) -> int:
        """Payloads smaller than this are sent uncompressed."""

    @property
    def max_frame_size(self) -> int:
        """The largest frame payload accepted or written, in bytes."""

    @property
    def max_batch(self) -> int:
        """The most elements a received batch (and records a received multi envelope) may hold."""

    @property
    def max_expansion(self) -> int:
        """Decompressed bytes a received compressed body may hold per compressed byte."""

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""

    @property
    def handshake(self) -> Literal["initiator", "responder"] | None:
        """The session handshake role, or None for the stream form."""

    @property
    def established(self) -> bool:
        """True when ``encode`` can seal: no handshake configured, or the handshake is done. Before that,
        ``encode`` and ``encode_many`` raise ``ValueError``."""

    def data_to_send(self) -> bytes:
        """The framed bytes the codec itself has to send, ``b""`` when none: the initiator's hello right after
        creation, the responder's reply after the ``feed`` that read the hello. Write them before anything
        ``encode`` returns."""

    def feed(self, data: bytes | bytearray | memoryview, /) -> list[_Item]:
        """Decode the next chunk of the input stream.

        Chunks may split frames anywhere; bytes of an unfinished frame are kept for the next call.
        ``bytes`` are parsed in place; ``bytearray`` and ``memoryview`` are copied first.

        Arguments:
            data: the bytes received. ``b""`` marks the end of input.

        Returns:
            The items completed by this chunk, in order: a ``dict`` per message, a ``list`` per batch (an
            invalid element replaced by its own ``InvalidRequest``), or a ``ParseError`` /
            ``InvalidRequest`` instance for a frame that is not JSON / not JSON-RPC 2.0 (carrying the
            request ``id`` when it had a valid one). A bad message does not end the stream.

        Raises:
            FrameTooLarge: a frame declares (or, for ndjson, grows to) more than ``max_frame_size`` bytes, or
                a compressed body inflates past ``max_frame_size`` or ``max_expansion`` times its size.
            FramingError: the stream cannot be split into frames: a bad ``content-length`` header, an
                unknown envelope version, input ending mid-frame (``b""`` with a half frame buffered, or an
                unterminated last ndjson line that is not a complete JSON text), or data after ``b""``; or
                the allocator refused the memory to buffer a frame (out of memory: the stream ends, the
                process does not abort).
            MemoryError: the allocator refused the memory to copy a ``bytearray``/``memoryview`` chunk.
            DecryptError: with a keyring, a frame that is not sealed, fails authentication, names an unknown
                key or arrives out of sequence; without one, a sealed frame.
            TypeError: ``data`` is not bytes-like.

        After ``FrameTooLarge``, ``FramingError`` or ``DecryptError`` the codec is poisoned: every later
        ``feed`` raises the same error again. Items completed before the error in the same chunk are on the
        error's ``items`` attribute.
        """

    def feed_each(
        self,
        data: bytes | bytearray | memoryview,
        handler: Callable[[_Item], Any],
        answers: list[Any],
        max_answers: int,
        /,
    ) -> tuple[int, Exception | None, list[_Item]]:
        """``feed``, handing each item to ``handler`` as soon as it is decoded instead of returning them.

        Each item lives only as long as the handler keeps it, so a chunk of many small messages does not
        build them all first (which also sets off CPython's cyclic GC on large chunks). This is what
        ``Transport.handle`` runs on.

        Arguments:
            data: as for ``feed``.
            handler: called with each item, in order. It must not call this codec (the codec is busy: that
                call raises ``RuntimeError``, which counts as the handler raising).
            answers: the handler's results that are not ``None`` are appended to it, in order.
            max_answers: once ``answers`` holds this many, the rest of the chunk's items are returned
                instead of handed out (the caller writes the answers first).

        Returns:
            ``(handled, error, rest)``: how many items the handler was given; the ``Exception`` it raised,
            after which it was given no more (``None`` if it did not raise); and the items decoded from
            ``data`` but not given to it, in order.

        Raises:
            As ``feed``, once the items before the bad frame were handed out: the error's ``items`` are the
            ones decoded but not handed out and its ``handled`` how many were. (If the handler had raised
            before, that is reported instead, and the poisoned codec raises the fatal error on the next call.)
            An exception that is not an ``Exception`` (``KeyboardInterrupt``, ...) raised by the handler
            propagates at once.
        """

    def encode(self, msg: dict[str, Any] | list[Any] | bytes, /) -> bytes:
        """Serialize one message into one frame.

        JSON is written compactly, byte for byte as ``orjson.dumps`` would (integers of any size are
        written in full; NaN and infinities as ``null``). With compression or a keyring the payload is
        an envelope when the wire format says so.

        Arguments:
            msg: a ``dict`` (a message), a ``list`` (a batch) or ``bytes`` (already-serialized JSON, sent
                as is). Values may be dict, list, tuple, str, int, float, bool or None (and their
                subclasses); dict keys must be str.

        Returns:
            The bytes to write.

        Raises:
            TypeError: a value of another type, a non-str dict key, a str with lone surrogates, or
                ``msg`` itself of another type.
            ValueError: nesting deeper than 255, ``bytes`` holding a raw newline under ndjson, or a
                message larger than ``max_frame_size``.

        The codec is unchanged by an error: nothing was written.
        """

    def encode_many(self, msgs: Iterable[dict[str, Any] | list[Any] | bytes], /) -> bytes:
        """Serialize many messages into one buffer (one write, one call).

        Plain framings: one frame per message, as ``encode`` would write them. With compression or a
        keyring: the messages travel together in one multi envelope (one compression, one seal),
        starting a new envelope whenever one would exceed ``max_frame_size``.

        Arguments:
            msgs: the messages, as for ``encode``.

        Returns:
            The bytes to write (``b""`` for no messages).

        Raises:
            TypeError, ValueError: as ``encode``, for any message; then nothing is returned at all.
        """

    def __repr__(self) -> str: ...

@final
class Keyring:
    """AES-256 keys by integer id for the encrypted envelope (docs/wire-format.md 3.2).

    A codec seals with the ``active`` key and opens a frame with whichever key the frame names, so keys can
    be rotated without a flag day: add the new key everywhere, then make it active, then drop the old one.
    Immutable: ``with_key``/``with_active``/``without_key`` return a new keyring. Neither ``repr``, nor
    errors, nor logs ever show key bytes; the Rust side zeroes its copies when the keyring is dropped.

    Example:
        >>> ring = Keyring({1: bytes(32)}, active=1)
        >>> ring
        Keyring(ids=[1], active=1)
    """

    def __new__(cls, keys: Mapping[int, bytes | bytearray], active: int | None = None) -> Keyring:
        """Create a keyring.

        Arguments:
            keys: key id (0 to 2**32-1) -> 32-byte AES-256 key.
            active: the id of the key that seals; may be omitted when ``keys`` holds exactly one key.

        Raises:
            ValueError: a key that is not exactly 32 bytes, an id out of range, an empty ``keys``, or an
                ``active`` id that is not in ``keys``.
            TypeError: an id that is not an int, or a key that is not bytes.
        """

    @staticmethod
    def generate(key_id: int | None = None) -> Keyring:
        """A keyring with one fresh random key from the OS CSPRNG.

        Arguments:
            key_id: the new key's id (default 1); it is the active key.
        """

    @staticmethod
    def from_file(path: str | PathLike[str]) -> Keyring:
        """Read a key file (docs/wire-format.md 4), as written by ``to_file`` or ``rpcwire keygen``.

        Raises:
            PermissionError: the file is accessible to group or others (as ssh does, it must be mode 0600
                or stricter); or it cannot be opened.
            FileNotFoundError: there is no such file.
            ValueError: the file is not a valid key file. The message says what is wrong, never a key.
        """

    def to_file(self, path: str | PathLike[str]) -> None:
        """Write this keyring as a key file, mode 0600, atomically (temporary file, fsync, rename).

        Raises:
            OSError: the file cannot be written.
        """

    def with_active(self, key_id: int) -> Keyring:
        """The same keys, sealing with ``key_id``.

        Raises:
            ValueError: ``key_id`` is not in the keyring.
        """

    def with_key(self, key_id: int, key: bytes | bytearray, *, active: bool = False) -> Keyring:
        """These keys plus ``key`` under ``key_id`` (replacing any key with that id).

        Arguments:
            key_id: the new key's id.
            key: 32 bytes.
            active: also make it the sealing key.
        """

    def without_key(self, key_id: int) -> Keyring:
        """These keys without ``key_id``.

        Raises:
            ValueError: ``key_id`` is the active key or is not in the keyring.
        """

    def export_keys(self) -> dict[int, bytes]:
        """The raw keys by id, e.g. for ``rpcwire.reference.Codec``. Handle with care: these are the secrets."""

    @property
    def ids(self) -> list[int]:
        """The key ids, ascending."""

    @property
    def active(self) -> int:
        """The id of the key that seals."""

    def __len__(self) -> int: ...
    def __contains__(self, key_id: object, /) -> bool: ...

@disjoint_base
class ProtocolCore:
    """The per-read and per-write paths of ``rpcwire._protocol.RpcProtocol``, its base class (private).

    Holds the state those paths share with the Python subclass, which provides the rare paths it calls by
    name: ``_fatal``, ``_handler_failed``, ``_answers_full``, ``dispatch``, ``_pause_reading``,
    ``_pause_for_writes``, ``_encode_each``, ``_dropped`` and ``_handshake_received``.
    """

    WRITE_HIGH_WATER: ClassVar[int]
    WRITE_LOW_WATER: ClassVar[int]
    FLUSH_MAX_MESSAGES: ClassVar[int]
    FLUSH_MIN_MESSAGES: ClassVar[int]
    FLUSH_FIRST_MESSAGES: ClassVar[int]
    FLUSH_TARGET_BYTES: ClassVar[int]
    QUEUE_MAX_ITEMS: ClassVar[int]
    QUEUE_MAX_BYTES: ClassVar[int]

    def __new__(cls, codec: Any, loop: asyncio.AbstractEventLoop | None = None) -> Self: ...
    @property
    def _codec(self) -> Any: ...
    @property
    def _loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def _queue(self) -> collections.deque[Any]: ...
    @property
    def _waiters(self) -> list[asyncio.Future[None]]: ...
    @property
    def _write_waiters(self) -> list[asyncio.Future[None]]: ...
    # The state is the core's: Python reads it here and changes it only through the transitions below.
    @property
    def _rt(self) -> asyncio.BaseTransport | None: ...
    @property
    def _wt(self) -> asyncio.WriteTransport | None: ...
    @property
    def _out(self) -> list[Any]: ...
    @property
    def _handler(self) -> Callable[[Any], Any] | None: ...
    @property
    def _handler_error(self) -> BaseException | None: ...
    @property
    def _send_error(self) -> BaseException | None: ...
    @property
    def _inline_sends(self) -> int: ...
    @property
    def _queued_bytes(self) -> int: ...
    @property
    def _partial_bytes(self) -> int: ...
    @property
    def _reading_paused(self) -> bool: ...
    @property
    def _paused_for_writes(self) -> bool: ...
    @property
    def _eof(self) -> bool: ...
    @property
    def _closed(self) -> bool: ...
    @property
    def _flush_scheduled(self) -> bool: ...
    @property
    def _wrote_eagerly(self) -> bool: ...
    @property
    def _flush_cap(self) -> int: ...
    @property
    def _write_paused(self) -> bool: ...
    @property
    def _held(self) -> bool: ...
    @property
    def messages_in(self) -> int: ...
    @property
    def messages_out(self) -> int: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    def _attach_reader(self, transport: asyncio.BaseTransport) -> None: ...
    def _attach_writer(self, transport: asyncio.WriteTransport) -> None: ...
    def _end_input(self) -> None: ...
    def _end_output(self) -> None: ...
    def _drop_unsent(self) -> int: ...
    def _start_handler(self, handler: Callable[[Any], Any], /) -> None: ...
    def _decode_pending(self) -> None: ...
    def _stop_handler(self, error: BaseException | None, /) -> None: ...
    def _take_handler_error(self) -> BaseException | None: ...
    def _fail_send(self, error: BaseException) -> None: ...
    def _take_send_error(self) -> BaseException | None: ...
    def _set_reading_paused(self, paused: bool) -> None: ...
    def _hold_for_writes(self) -> None: ...
    def _writes_resumed(self) -> bool: ...
    def _set_inline_sends(self, count: int) -> None: ...
    def _queue_emptied(self) -> None: ...
    def _established(self) -> None: ...
    def _count_sent(self, messages: int, bytes: int) -> None: ...
    def _count_partial(self, bytes: int) -> None: ...
    def get_buffer(self, sizehint: int, /) -> memoryview: ...
    def buffer_updated(self, nbytes: int, /) -> None: ...
    def data_received(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def pause_writing(self) -> None: ...
    def send_nowait(self, msg: Any, redials: bool, /) -> bool: ...
    def flush(self) -> None: ...
    def _push(self, items: list[Any], /) -> None: ...
    def _enqueue(self, items: list[Any], /) -> None: ...
    def _first_send(self) -> None: ...
    def _scheduled_flush(self) -> None: ...
    def _after_dispatch(self) -> None: ...
    def _take(self) -> Any | None: ...
    def _after_pop(self) -> None: ...
    def _new_waiter(self, closing: bool, /) -> asyncio.Future[None] | None: ...
    def _drop_waiter(self, fut: asyncio.Future[None], /) -> None: ...
    def _woken(self, fut: asyncio.Future[None], /) -> Any | None: ...

def wake(waiters: list[asyncio.Future[None]], /) -> None:
    """Complete every future in ``waiters`` that is not done yet, and empty the list (private)."""

def drop_waiter(fut: asyncio.Future[None], waiters: list[asyncio.Future[None]], /) -> None:
    """After a wait on a future of ``waiters``, however it ended: cancel it if pending, and forget it if it was
    not woken (private)."""

def kind(msg: dict[str, Any], /) -> Literal["request", "notification", "response", "error"]:
    """Say which kind of JSON-RPC 2.0 message ``msg`` is.

    Arguments:
        msg: a decoded message.

    Returns:
        ``"request"`` (method and id), ``"notification"`` (method, no id), ``"response"`` (result) or
        ``"error"`` (error).

    Raises:
        ValueError: ``msg`` is not a valid JSON-RPC 2.0 message (the message says which rule it breaks).
    """
