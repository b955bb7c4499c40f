"""The asyncio ``Protocol`` under every rpcwire transport: one codec, coalesced writes, backpressure both ways.

Bytes arrive in ``buffer_updated`` (sockets) or ``data_received`` (pipes, memory) and go to the codec in one call
per chunk; the decoded items wait in a deque until ``receive`` takes them. Messages handed to ``send`` in one
loop iteration are encoded together by ``codec.encode_many`` (one FFI call) and leave in one
``transport.write``, with one exception for latency: the first send after a read (or after the last scheduled
flush) is written at once and schedules nothing, so a lone request or reply costs no extra loop iteration; the
sends after it coalesce as usual. (If the transport still buffers earlier data, that write joins its buffer.)

The per-chunk and per-write paths run in Rust (``rpcwire._core.ProtocolCore``, this class's base): on a
150-byte round trip the Python glue around the codec calls was a tenth of the latency.

Handler mode (``Transport.handle``): instead of queueing, each chunk's items go to a plain function in
``data_received`` and its answers leave in one write; while they wait in a full write buffer, the items not yet
handled are held and reading pauses.

Flow control:

* send side: the transport's write buffer has a high-water mark (``WRITE_HIGH_WATER``); above it asyncio calls
  ``pause_writing`` and ``send`` waits until ``resume_writing``. Messages wait in the coalescing list until the
  scheduled flush, or until there are ``_flush_cap`` of them and they are flushed inline: the cap adapts so one
  flush encodes about ``FLUSH_TARGET_BYTES`` (between ``FLUSH_MIN_MESSAGES`` and ``FLUSH_MAX_MESSAGES``), and
  grows at most twofold per full flush, so small messages seen earlier cannot license a huge batch of big ones.
* receive side: when more than ``QUEUE_MAX_ITEMS`` items or ``QUEUE_MAX_BYTES`` bytes wait unread, the protocol
  calls ``pause_reading``; it resumes when the reader has drained the queue to a quarter of the item bound (and
  below the byte bound). The codec itself never buffers more than one frame (``max_frame_size``).
* a long read (over 32 KiB) for a reader is kept undecoded and decoded 16 KiB at a time as the reader takes
  its items, so a read of small messages does not build ~1700 dicts that live together (and keep CPython's
  cyclic GC walking them) until the last is taken. The bytes count against the queue's byte bound when they
  arrive; a new read first decodes the rest of the last one, so at most one read waits undecoded.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, cast

from ._core import ProtocolCore, drop_waiter
from ._core import wake as _wake
from ._errors import ConnectionClosed, FramingError, RpcWireError

__all__ = (
    "FLUSH_FIRST_MESSAGES",
    "FLUSH_MAX_MESSAGES",
    "FLUSH_MIN_MESSAGES",
    "FLUSH_TARGET_BYTES",
    "QUEUE_MAX_BYTES",
    "QUEUE_MAX_ITEMS",
    "READ_BUFFER_SIZE",
    "WRITE_HIGH_WATER",
    "WRITE_LOW_WATER",
    "CodecLike",
    "RpcProtocol",
    "codec_kwargs",
    "new_codec",
    "session_kwargs",
)

logger = logging.getLogger("rpcwire")

# The limits live with the code that applies them, in the Rust core; read-only here.
#: Write-buffer high-water mark: above it ``send`` waits.
WRITE_HIGH_WATER: int = ProtocolCore.WRITE_HIGH_WATER
#: Write-buffer low-water mark: below it waiting senders resume.
WRITE_LOW_WATER: int = ProtocolCore.WRITE_LOW_WATER
#: Most messages held for coalescing before an inline flush (bounds memory when a task sends without yielding).
FLUSH_MAX_MESSAGES: int = ProtocolCore.FLUSH_MAX_MESSAGES
#: Fewest, for very large messages.
FLUSH_MIN_MESSAGES: int = ProtocolCore.FLUSH_MIN_MESSAGES
#: The bound before any message size is known.
FLUSH_FIRST_MESSAGES: int = ProtocolCore.FLUSH_FIRST_MESSAGES
#: The coalescing bound adapts so that one inline flush encodes about this many bytes.
FLUSH_TARGET_BYTES: int = ProtocolCore.FLUSH_TARGET_BYTES
#: Unread items that make the protocol stop reading.
QUEUE_MAX_ITEMS: int = ProtocolCore.QUEUE_MAX_ITEMS
#: Unread bytes (as received) that make the protocol stop reading.
QUEUE_MAX_BYTES: int = ProtocolCore.QUEUE_MAX_BYTES
#: Default seconds ``close`` waits for buffered data to drain before it aborts the connection.
CLOSE_TIMEOUT = 10.0

DEFAULT_MAX_FRAME_SIZE = 16 * 2**20
#: Most elements a received batch (and records a received multi envelope) may hold (docs/security.md).
DEFAULT_MAX_BATCH = 1024
#: Decompressed bytes a received compressed body may hold per compressed byte (docs/security.md).
DEFAULT_MAX_EXPANSION = 4096


def _oversize(exc: Exception) -> bool:
    """True for the codec's refusal of a message larger than ``max_frame_size`` (a ValueError)."""
    return isinstance(exc, ValueError) and "exceeds max_frame_size" in str(exc)


def _detach(exc: BaseException) -> BaseException:
    """Drop the tracebacks of ``exc`` and the errors it was raised from; returns ``exc``."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        e.__traceback__ = None
        e = e.__cause__ or e.__context__
        seen += 1
    return exc


class CodecLike(Protocol):
    """What a transport needs from a codec: ``rpcwire.Codec`` and ``rpcwire.reference.Codec`` both fit."""

    def feed(self, data: bytes | memoryview, /) -> list[Any]: ...

    def feed_each(
        self, data: bytes | memoryview, handler: Callable[[Any], Any], answers: list[Any], max_answers: int, /
    ) -> tuple[int, Exception | None, list[Any]]: ...

    def encode(self, msg: Any, /) -> bytes: ...

    def encode_many(self, msgs: Sequence[Any], /) -> bytes: ...

    def data_to_send(self) -> bytes: ...


#: The codec class the public functions build. Tests and the bench harness may point it at
#: ``rpcwire.reference.Codec``; ``None`` means ``rpcwire.Codec``.
codec_class: Callable[..., CodecLike] | None = None


def codec_kwargs(
    framing: str | None,
    compression: str | None,
    compress_min_size: int,
    keyring: Any,
    max_frame_size: int,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
) -> dict[str, Any]:
    """The codec keyword arguments every transport takes, as a dict for ``new_codec``."""
    return {
        "framing": framing,
        "compression": compression,
        "compress_min_size": compress_min_size,
        "keyring": keyring,
        "max_frame_size": max_frame_size,
        "max_batch": max_batch,
        "max_expansion": max_expansion,
    }


def session_kwargs(kwargs: dict[str, Any], role: str) -> dict[str, Any]:
    """``kwargs`` for one side of a connection: with a keyring, that side of the session handshake
    (docs/wire-format.md 3.4), so every connection seals under keys of its own."""
    if kwargs.get("keyring") is None:
        return kwargs
    return {**kwargs, "handshake": role}


def new_codec(kwargs: dict[str, Any]) -> CodecLike:
    """Build one codec for one connection (``rpcwire.Codec`` unless ``codec_class`` says otherwise)."""
    cls = codec_class
    if cls is None:
        from ._core import Codec

        cls = Codec
    codec: CodecLike = cls(**kwargs)
    return codec


#: What a socket transport reads into at a time: one buffer per thread, reused for every read of every
#: connection (see ``RpcProtocol.get_buffer``).
READ_BUFFER_SIZE = 256 * 2**10

_read_buffers = threading.local()


def _read_buffer() -> memoryview:
    buf: memoryview | None = getattr(_read_buffers, "buf", None)
    if buf is None:
        buf = _read_buffers.buf = memoryview(bytearray(READ_BUFFER_SIZE))
    return buf


class RpcProtocol(ProtocolCore, asyncio.BufferedProtocol):
    """One connection: an asyncio ``Protocol`` owning one codec.

    Works over a single bidirectional transport (sockets, memory) or, through ``ReadPipeProtocol`` and
    ``WritePipeProtocol``, over a pair of pipes (stdio, spawned child). The public surface is
    ``rpcwire.Transport``; this class is its engine.

    The per-read and per-write paths are in its base, ``rpcwire._core.ProtocolCore``, which holds the state
    they touch: ``get_buffer``, ``buffer_updated`` and ``data_received`` (feed the codec, queue the items or
    hand them to the handler, wake a receiver, pause reading when the queue is full), ``send_nowait``,
    ``flush`` (one ``encode_many``, one write, the adaptive flush cap) and ``_after_dispatch``. The rare
    paths are here, and the core calls them by name: ``_fatal``, ``_handler_failed``, ``_answers_full``,
    ``dispatch``, ``_pause_reading``, ``_pause_for_writes``, ``_encode_each``, ``_dropped``.
    """

    def __init__(self, codec: CodecLike, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # ProtocolCore.__new__ took (codec, loop): the codec, the loop and the hot state are set.
        self._error: BaseException | None = None  # fatal codec error, raised once by receive
        self._error_raised = False
        self._lost_exc: BaseException | None = None  # OS error that ended the connection
        self._closing = False  # close() was called
        self._read_done = False
        self._write_done = False
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._drop_reported = False  # a reconnecting Transport told a receiver about this connection's end
        #: Socket connections name the likeliest cause of a close before any reply (a key or framing mismatch);
        #: a child or a stdio parent that ends early has reasons of its own (its exit status says more).
        self.mismatch_hint = False
        self.close_timeout = CLOSE_TIMEOUT
        #: Done when sends are no longer held for the session handshake: it completed, or the connection ended.
        self._settled: asyncio.Future[None] = self._loop.create_future()
        if not self._held:
            self._settled.set_result(None)

    # ----------------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._attach_reader(transport)
        # uvloop's transports are not registered subclasses of asyncio.WriteTransport: no isinstance here
        self._set_writer(cast("asyncio.WriteTransport", transport))

    def _set_writer(self, transport: asyncio.WriteTransport) -> None:
        self._attach_writer(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        # The initiator's hello goes first; so does a responder's reply to a hello read before its write
        # side was attached (a pipe pair attaches one side at a time).
        self._write_handshake()

    # ----------------------------------------------------------------- the session handshake
    def _write_handshake(self) -> None:
        """Write what the codec has to send on its own (a handshake frame), ahead of any message."""
        wt = self._wt
        data_to_send = getattr(self._codec, "data_to_send", None)
        if wt is None or self._closed or data_to_send is None:
            return  # kept by the codec until there is somewhere to write it
        data = data_to_send()
        if data:
            wt.write(data)
            self._count_sent(0, len(data))

    def _handshake_received(self, data: bytes | memoryview) -> None:
        """A chunk while the handshake is not done (``ProtocolCore.received`` sends it here): feed it, answer
        the handshake, and once the session keys exist let the held sends go, in one write behind it."""
        try:
            items = self._codec.feed(data)
        except Exception as exc:
            self._fatal(exc)
            return
        self._write_handshake()
        if getattr(self._codec, "established", True):
            self._established()
            self._settle()
            logger.debug("rpcwire: session established")
        self._count_partial(len(data))
        if items:
            self._push(items)
        if not self._held and self._out:
            self.flush()

    def _settle(self) -> None:
        if not self._settled.done():
            self._settled.set_result(None)

    async def wait_established(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until sends are no longer held for the handshake."""
        if not self._settled.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._settled), timeout)
            except asyncio.TimeoutError:
                logger.warning(
                    "rpcwire: the session handshake did not complete within %.1f s; %d messages not sent",
                    timeout,
                    len(self._out),
                )

    def _answers_full(self, rest: list[Any]) -> None:
        """Handler mode: the answers reached the flush cap with ``rest`` still to handle: write them, then go on
        as ``dispatch`` does."""
        self.flush()
        if self._write_paused:
            self._pause_for_writes(rest)
            return
        self.dispatch(rest)

    def _handler_failed(self, error: Exception, rest: list[Any]) -> None:
        """The handler raised: ``handle`` raises it, and the items it was not given are left for ``receive``."""
        self._stop_handler(error)
        if rest:
            self._enqueue(rest)
        _wake(self._waiters)

    def eof_received(self) -> bool:
        self._feed_eof()
        # Keep the write side of a socket open (half-close): replies already made can still leave.
        return not self._closed

    def connection_lost(self, exc: BaseException | None) -> None:
        self._read_lost(exc)
        self._write_lost(exc)

    def resume_writing(self) -> None:
        if self._writes_resumed():
            self._handle_held()
        if self._write_waiters:
            _wake(self._write_waiters)

    # ----------------------------------------------------------------- state changes
    def _feed_eof(self) -> None:
        if self._eof:
            return
        self._decode_pending()  # the rest of a read a reader had not reached yet, before the end
        if self._eof:  # it held a fatal error
            return
        try:
            items = self._codec.feed(b"")
        except FramingError as exc:
            # The peer stopped in the middle of a frame (it died, or was cut off): for whoever reads, that is
            # a closed connection, the one error every receive loop handles. The detail stays as the cause.
            closed = ConnectionClosed(f"connection closed by the peer in the middle of a frame: {exc}")
            closed.__cause__ = exc
            closed.items = getattr(exc, "items", None)  # type: ignore[attr-defined]
            self._fatal(closed)
            return
        except Exception as exc:
            self._fatal(exc)
            return
        if items:
            self._push(items)
        self._settle()  # a handshake still due cannot complete now: nobody waits for it any longer
        self._end_input()

    def _fatal(self, exc: BaseException) -> None:
        # Messages the chunk completed before the bad frame are still delivered, then the error.
        items = getattr(exc, "items", None)
        if items:
            self._push(list(items))
        # Kept errors hold no traceback: its frames would hold this protocol (and its buffers) in a cycle
        # that only the cyclic GC could free.
        _detach(exc)
        if not isinstance(exc, RpcWireError):
            logger.error("rpcwire: codec failed unexpectedly; closing the connection", exc_info=exc)
        else:
            logger.debug("rpcwire: fatal stream error, closing: %r", exc)
        self._error = exc
        self._end_input()
        if self._reading_paused:
            self._resume_reading()
        # Both ways: a send after this raises ConnectionClosed (flush no longer asks the transport).
        self._end_output()
        self._settle()
        for t in {self._rt, self._wt}:
            if t is not None and not t.is_closing():
                t.close()

    def _read_lost(self, exc: BaseException | None) -> None:
        if exc is not None and self._lost_exc is None:
            self._lost_exc = exc
        self._feed_eof()
        self._read_done = True
        self._maybe_done()

    def _write_lost(self, exc: BaseException | None) -> None:
        if exc is not None and self._lost_exc is None:
            self._lost_exc = exc
        dropped = self._drop_unsent()
        if dropped:
            logger.debug("rpcwire: connection lost with %d unsent messages", dropped)
        self._end_output()
        self._settle()
        self._write_done = True
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self._read_done and self._write_done and not self._lost.done():
            self._lost.set_result(None)

    def _pause_reading(self) -> None:
        rt = cast("asyncio.ReadTransport | None", self._rt)
        if rt is not None and not rt.is_closing():
            self._set_reading_paused(True)
            rt.pause_reading()

    def _resume_reading(self) -> None:
        self._set_reading_paused(False)
        rt = cast("asyncio.ReadTransport | None", self._rt)
        if rt is not None and not rt.is_closing():
            rt.resume_reading()

    # ----------------------------------------------------------------- public-facing engine
    @property
    def alive(self) -> bool:
        """True while items can still arrive and messages can still be sent."""
        return not self._eof and not self._closed

    def closed_error(self) -> BaseException:
        """The exception a receive on this finished connection raises (the fatal error once, then ConnectionClosed)."""
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            err = self._error
            # Raised, it gets a traceback through this protocol's frames: keep a copy without one.
            kept = copy.copy(err)
            kept.__cause__ = err.__cause__
            self._error = _detach(kept)
            return err
        return self._connection_closed()

    def _connection_closed(self, message: str | None = None) -> ConnectionClosed:
        if message is None:
            message = "connection closed"
            if self.mismatch_hint and not self._closing and self.messages_in == 0 and self.count_sent() > 0:
                # Sent something, heard nothing: the likeliest cause is a peer that could not read us.
                message = "connection closed by the peer before any reply (a key or framing mismatch?)"
        err = ConnectionClosed(message)
        cause = self._error if self._error is not None else self._lost_exc
        if isinstance(cause, ConnectionClosed):  # the first report of the end: point at what it came from
            cause = cause.__cause__
        err.__cause__ = cause
        return err

    async def receive(self) -> Any:
        """Wait for the next item (cancel-safe: an item is taken from the queue only when it is returned)."""
        while (item := self._take()) is None:
            if self._eof:
                raise self.closed_error()
            await self._park(self._waiters)
        return item

    def _check_send(self) -> None:
        err = self._take_send_error()
        if err is not None:
            raise err
        if self._closed or self._wt is None:
            raise self._connection_closed("connection closed: cannot send")

    async def wait_writable(self) -> None:
        """Wait while the write buffer is above its high-water mark (raises ConnectionClosed if it closes)."""
        while self._write_paused and not self._closed:
            await self._park(self._write_waiters)
        self._check_send()

    async def _park(self, waiters: list[asyncio.Future[None]]) -> None:
        """Wait until ``_wake(waiters)``; a cancelled wait leaves no future behind in ``waiters``."""
        fut: asyncio.Future[None] = self._loop.create_future()
        waiters.append(fut)
        try:
            await fut
        finally:
            drop_waiter(fut, waiters)

    async def send_many(self, msgs: Iterable[Any]) -> None:
        """Queue several messages at once (the rules of ``Transport.send``, whose single-message path is the
        core's ``send_nowait``)."""
        if self._write_paused:
            await self.wait_writable()
        else:
            self._check_send()
        msgs = list(msgs)
        self._out.extend(msgs)
        if len(self._out) < self._flush_cap and self._flush_scheduled:
            return
        self._set_inline_sends(len(msgs))
        try:
            if self._flush_scheduled:
                self.flush()
            else:
                self._first_send()
        finally:
            self._set_inline_sends(0)
        self._check_send()

    def dispatch(self, items: list[Any]) -> None:
        """Handler mode (``Transport.handle``): pass each item to the handler now and send its answers, coalesced.

        If the handler raises, it is removed, the items after the one that raised are queued for ``receive``,
        and ``handle`` raises the error; so it does if an answer cannot be serialized. When the answers fill
        the write buffer (the peer is not reading them), the items not yet handled are held in the queue and
        reading pauses until ``resume_writing``.
        """
        handler = self._handler
        if handler is None:
            self._enqueue(items)
            return
        if self._paused_for_writes:  # earlier items are held: these wait behind them
            self._queue.extend(items)
            return
        out = self._out
        n = len(items)
        i = 0
        while i < n:
            item = items[i]
            i += 1
            try:
                answer = handler(item)
            except Exception as exc:  # the handler's error ends handle(); the rest stay readable
                self._handler_failed(exc, items[i:])
                break
            if answer is not None:
                out.append(answer)
                if len(out) >= self._flush_cap:
                    self.flush()
                    out = self._out
                    if self._write_paused and i < n:
                        self._pause_for_writes(items[i:])
                        return
        self._after_dispatch()

    def _pause_for_writes(self, held: Iterable[Any] = ()) -> None:
        """The handler's answers fill the write buffer: hold `held` (items not yet handled) and stop reading."""
        self._queue.extend(held)
        self._hold_for_writes()
        if not self._reading_paused:
            self._pause_reading()

    def start_handling(self, handler: Callable[[Any], Any]) -> None:
        """Handler mode on (``Transport.handle``): the items queued so far go to ``handler`` first."""
        self._start_handler(handler)
        self._handle_held()

    def handling_over(self) -> bool:
        """``handle`` can return: the handler failed, or no item can arrive and none is held for it."""
        if self._handler_error is not None:
            return True
        return self._eof and not (self._paused_for_writes and self._queue and not self._closed)

    def _handle_held(self) -> None:
        """Hand the queued items to the handler (if any), then read again unless its answers wait to be written."""
        if self._handler is not None and self._queue:
            held = list(self._queue)
            self._queue.clear()
            self._queue_emptied()
            self.dispatch(held)
            if self._eof:
                _wake(self._waiters)  # handle() waits for the held items before it returns
        if self._reading_paused and not self._paused_for_writes and not self._eof:
            self._resume_reading()

    def _dropped(self, count: int) -> None:
        logger.debug("rpcwire: dropping %d messages queued on a closed connection", count)

    def _encode_each(self, out: list[Any]) -> bytes:
        """``encode_many`` refused the batch: send the good messages and deal with each bad one.

        A bad message handed over by the send call now flushing (``_inline_sends``) is that call's error:
        ``send`` raises it. A message too large for ``max_frame_size`` whose sender has already returned is
        answered for instead of blaming the next send: a response goes out as an error response with its id,
        a request gets that error response locally (its caller sees the error, not a hang), and a
        notification is logged and dropped. Any other failure (an object that cannot be serialized) is a bug
        of the sender: the next ``send`` raises it, and ``handle`` stops with it.
        """
        parts: list[bytes] = []
        first_inline = len(out) - self._inline_sends
        for i, msg in enumerate(out):
            try:
                parts.append(self._codec.encode(msg))
            except Exception as exc:  # noqa: PERF203 - the rare path after encode_many refused a batch
                self._count_sent(-1, 0)
                if i < first_inline and _oversize(exc) and self._answer_oversize(msg, exc, parts):
                    continue
                if i >= first_inline:
                    logger.debug("rpcwire: could not encode a message, not sent: %r", exc)
                else:
                    logger.error("rpcwire: could not encode a message, not sent: %r", exc)
                self._fail_send(exc)
        self._count_sent(len(out), 0)
        return b"".join(parts)

    def _answer_oversize(self, msg: Any, exc: Exception, parts: list[bytes]) -> bool:
        """Answer for a message too large to send whose sender has returned (see ``_encode_each``)."""
        if not isinstance(msg, dict) or "id" not in msg:
            logger.error("rpcwire: dropped a message too large to send: %s", exc)
            return True
        sent = "request" if "method" in msg else "response"
        error = {"code": -32603, "message": f"Internal error: {sent} not sent: {exc}", "data": str(exc)}
        answer = {"jsonrpc": "2.0", "id": msg["id"], "error": error}
        if "method" in msg:
            logger.error("rpcwire: request %r not sent, answered locally: %s", msg["id"], exc)
            self._enqueue([answer])
        else:
            logger.error("rpcwire: response %r not sent, the peer gets an error response: %s", msg["id"], exc)
            parts.append(self._codec.encode(answer))
            self._count_sent(1, 0)
        return True

    def count_sent(self) -> int:
        """Messages handed to the transport (written or waiting in the coalescing list)."""
        return self.messages_out + len(self._out)

    def close_write(self) -> None:
        """Half-close: flush what was sent, then end this side's output (the peer reads EOF: a socket's
        ``write_eof``, a pipe of its own closed) and go on reading. Later sends raise ``ConnectionClosed``."""
        if self._closed:
            return
        self.flush()
        self._end_output()
        wt = self._wt
        if wt is None or wt.is_closing():
            return
        if wt is not self._rt:
            wt.close()  # a write pipe of its own (a child's stdin, our stdout)
        elif wt.can_write_eof():
            wt.write_eof()

    def close_nowait(self) -> None:
        """Flush what was sent and start closing (asyncio's close: buffered data still leaves). Idempotent."""
        if self._closing:
            return
        self._closing = True
        self.flush()
        self._queue.clear()
        self._end_output()
        self._end_input()
        for t in {self._rt, self._wt}:
            if t is not None and not t.is_closing():
                t.close()
        if self._rt is None and self._wt is None and not self._lost.done():
            self._lost.set_result(None)

    async def close(self) -> None:
        """Flush what was sent, close, and wait (``close_timeout``) for the buffers to drain; then abort.
        Sends held for the session handshake wait for it first (``close_timeout`` too)."""
        if self._out and not self._closed:
            await self.wait_established(self.close_timeout)
        self.close_nowait()
        if not self._lost.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._lost), self.close_timeout)
            except asyncio.TimeoutError:
                logger.warning("rpcwire: peer did not drain within %.1f s; aborting the connection", self.close_timeout)
                self.abort()
                await asyncio.shield(self._lost)

    def abort(self) -> None:
        """Drop the connection now, discarding unsent data."""
        self._closing = True
        self._end_output()
        self._end_input()
        sides = [(self._rt, self._read_done)]
        if self._wt is not self._rt:
            sides.append((self._wt, self._write_done))
        for t, done in sides:
            if t is not None and not done:  # a transport that reported connection_lost is gone already
                # asyncio's read-pipe transport has no abort(); closing it drops nothing that is ours.
                getattr(t, "abort", t.close)()
        _wake(self._waiters)
        _wake(self._write_waiters)

    def write_buffer_size(self) -> int:
        """Bytes waiting in the write transport (for tests and diagnostics)."""
        wt = self._wt
        return wt.get_write_buffer_size() if wt is not None else 0

    def queue_size(self) -> int:
        """Decoded items waiting for ``receive``."""
        return len(self._queue)


class ReadPipeProtocol(asyncio.Protocol):
    """Forwards a read pipe's events (stdin, a child's stdout) to an ``RpcProtocol``."""

    def __init__(self, main: RpcProtocol) -> None:
        self._main = main

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._main._attach_reader(transport)

    def data_received(self, data: bytes) -> None:
        self._main.data_received(data)

    def eof_received(self) -> bool:
        self._main._feed_eof()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._main._read_lost(exc)


class WritePipeProtocol(asyncio.BaseProtocol):
    """Forwards a write pipe's events (stdout, a child's stdin) to an ``RpcProtocol``."""

    def __init__(self, main: RpcProtocol) -> None:
        self._main = main

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._main._set_writer(cast("asyncio.WriteTransport", transport))

    def pause_writing(self) -> None:
        self._main.pause_writing()

    def resume_writing(self) -> None:
        self._main.resume_writing()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._main._write_lost(exc)
