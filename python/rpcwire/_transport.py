"""``Transport``: the message-level surface every rpcwire connection offers (send, receive, close, stats)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from ._errors import ConnectionClosed
from ._protocol import RpcProtocol

__all__ = ("Opening", "Transport", "TransportStats", "TransportType")

TransportType = Literal["memory", "stdio", "spawn", "tcp", "unix", "nats"]


@dataclass(frozen=True)
class TransportStats:
    """Counts for one transport, over its whole life (every connection, when it reconnected).

    Attributes:
        messages_in: items decoded from the peer (messages, batches and ProtocolError items).
        messages_out: messages encoded and written (including those still in the kernel or write buffer).
        bytes_in: bytes read from the peer, as on the wire.
        bytes_out: bytes written to the peer, as on the wire.
    """

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class Transport:
    """One JSON-RPC connection: ``send``/``send_many``/``receive``/``async for``/``handle``/``close``.

    Built by ``rpcwire.connect``, ``serve`` (one per accepted connection), ``stdio``, ``spawn`` and
    ``memory_pair``; not constructed directly.

    Items received are dicts (one message), lists (a batch), or ``rpcwire.ProtocolError`` instances for a
    frame that was not a valid message: those are *returned* so a server can answer them with
    ``err.to_error()``, and the stream goes on.

    A fatal stream error (``FramingError``, ``FrameTooLarge``, ``DecryptError``, or a peer that vanished in
    the middle of a frame, which the codec reports as ``FramingError``) closes the connection. Items decoded
    before it are still delivered; then ``receive`` raises that error once, and ``ConnectionClosed`` (with the
    error as ``__cause__``) after that. ``async for`` ends cleanly on ``ConnectionClosed`` only, so a fatal error
    propagates out of the loop. It closes the connection both ways: ``send`` raises ``ConnectionClosed``.

    Sends issued in one loop iteration are encoded together and leave in one write, except the first send
    after a read, or after the last coalesced write, which is written at once (behind anything still
    buffered), so a lone request or reply pays no extra loop iteration. ``send`` returns once the message is
    written or queued; it waits first while the write buffer is above its high-water mark (backpressure).
    A message that cannot be serialized is logged and its error is raised by the next ``send``/``send_many``.
    Messages queued when the connection drops are lost (nothing acknowledges delivery; JSON-RPC requests
    need their responses for that).

    With ``reconnect=True`` (``connect`` only) a dropped connection is re-dialled (same retry policy as the
    first dial) by the next ``send``/``send_many``, or by the next ``receive`` after one ``receive`` has
    reported the drop with ``ConnectionClosed``. Messages in flight at the drop are not replayed.
    """

    def __init__(
        self,
        protocol: RpcProtocol,
        transport_type: TransportType,
        *,
        redial: Callable[[], Awaitable[RpcProtocol]] | None = None,
    ) -> None:
        self._proto = protocol
        self._type: TransportType = transport_type
        self._redial = redial
        self._user_closed = False
        self._past = TransportStats()
        self._redial_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "closed"
        return f"<rpcwire.Transport {self._type} {state}>"

    # ----------------------------------------------------------------- properties
    @property
    def transport_type(self) -> TransportType:
        """``"memory"``, ``"stdio"``, ``"spawn"``, ``"tcp"``, ``"unix"`` or ``"nats"``."""
        return self._type

    @property
    def is_connected(self) -> bool:
        """True until the peer closed, a fatal error ended the stream, or ``close`` was called."""
        return not self._user_closed and self._proto.alive

    @property
    def stats(self) -> TransportStats:
        """Messages and bytes in and out so far (a snapshot)."""
        p = self._proto
        past = self._past
        return TransportStats(
            messages_in=past.messages_in + p.messages_in,
            messages_out=past.messages_out + p.count_sent(),
            bytes_in=past.bytes_in + p.bytes_in,
            bytes_out=past.bytes_out + p.bytes_out,
        )

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Passes through to the underlying asyncio transport (``"peername"``, ``"sockname"``, ``"socket"``...)."""
        rt = self._proto._rt
        return rt.get_extra_info(name, default) if rt is not None else default

    # ----------------------------------------------------------------- sending
    async def send(self, msg: Any) -> None:
        """Send one message (a dict, a list for a batch, or ``bytes`` of already-serialized JSON).

        Returns once the message is written (the first send after a read) or queued
        for this loop iteration's write; waits first while the peer is not reading fast enough (the write
        buffer is above its high-water mark).

        Raises:
            ConnectionClosed: the connection is closed (the peer is gone, a fatal stream error ended it, or
                ``close`` was called).
            TypeError / ValueError: an earlier message could not be serialized (see the class docstring).
        """
        # Queued (or written: see the class doc) unless it must wait or fail.
        if not self._proto.send_nowait(msg, self._redial is not None):
            await self._send_slow((msg,))

    async def send_many(self, msgs: Iterable[Any]) -> None:
        """Send several messages; together with other sends of this iteration they leave in one write.

        Raises:
            ConnectionClosed: as ``send``.
        """
        p = self._proto
        if p._write_paused or p._closed or p._send_error is not None or (p._eof and self._redial is not None):
            await self._send_slow(msgs)
            return
        await p.send_many(msgs)

    async def _send_slow(self, msgs: Iterable[Any]) -> None:
        if self._user_closed:
            raise ConnectionClosed("transport closed: cannot send")
        p = self._proto
        # A reconnecting client treats the peer's EOF as the drop: the server is gone, not half-closed.
        if (p._closed or p._eof) and p._send_error is None and self._redial is not None:
            p = await self._reconnect(p)
        await p.send_many(msgs)

    # ----------------------------------------------------------------- receiving
    async def receive(self) -> Any:
        """The next item from the peer: a dict, a list (batch), or a ``ProtocolError`` instance.

        Cancel-safe: a cancelled ``receive`` takes no item from the queue.

        Raises:
            ConnectionClosed: the peer closed (after every item it sent was returned), or ``close`` was called.
            FramingError / FrameTooLarge / DecryptError: once, when a fatal stream error ended the connection.
        """
        p = self._proto
        item = p._take()
        if item is not None:
            return item
        # Wait right here: a client's every reply arrives while it waits, and each coroutine layer of the
        # general path (_receive_slow, RpcProtocol.receive, _park) costs a frame and an await.
        fut = p._new_waiter(self._user_closed or self._redial is not None)
        if fut is None:  # at the end, closed, or reconnecting: the general path
            return await self._receive_slow()
        try:
            await fut
        except BaseException:  # cancelled: forget the future, take nothing (cancel-safe)
            p._drop_waiter(fut)
            raise
        item = p._woken(fut)
        if item is None:  # woken by the end of the stream, or by an item another receiver took
            return await self._receive_slow()
        return item

    async def _receive_slow(self) -> Any:
        if self._user_closed:
            raise ConnectionClosed("transport closed")
        p = self._proto
        if self._redial is not None and p._eof and not p._queue and p._drop_reported:
            p = await self._reconnect(p)
        try:
            return await p.receive()
        except ConnectionClosed:
            if self._redial is not None:
                p._drop_reported = True
            raise

    async def handle(self, handler: Callable[[Any], Any]) -> None:
        """Answer the peer from a plain function, the fastest way to serve.

        Each incoming item (as ``receive`` would return it) is passed to ``handler(item)`` as soon as it is
        decoded, inside the read callback: no task wakes up per message. What the handler returns, unless
        ``None``, is sent back, and the answers to one read leave in one write. Items that arrived before
        ``handle`` was called go first. While it runs, ``receive`` and ``async for`` get nothing; ``send``
        works as usual (for notifications the handler does not return). When the answers fill the write
        buffer, handling and reading pause until the peer reads them (memory stays bounded).

        Returns when the peer closes or ``close`` is called. Cancelling it stops handling; later items queue
        for ``receive`` again.

        Raises:
            Exception: whatever ``handler`` raised. Handling stops there; the items after that one stay
                queued for ``receive``.
            TypeError / ValueError: an answer could not be serialized (it was not sent; the other answers
                of that read were). Handling stops there.
            FramingError / FrameTooLarge / DecryptError: a fatal stream error ended the connection (its
                complete items were handled first).
            RuntimeError: the transport is already being handled.
        """
        p = self._proto
        if p._handler is not None:
            raise RuntimeError("this transport is already being handled")
        try:
            p.start_handling(handler)
            while not p.handling_over():
                await p._park(p._waiters)
            error = p._take_handler_error()
            if error is not None:
                raise error
            if p._error is not None and not p._error_raised:
                raise p.closed_error()
        finally:
            p._stop_handler(p._handler_error)

    def __aiter__(self) -> AsyncIterator[Any]:
        """Items until the peer closes, as ``receive`` returns them (``async for`` ends at ``ConnectionClosed``).

        An async generator: it hands out the items already queued without a coroutine per item, which costs
        about half what a ``__anext__`` call does. Breaking out loses nothing (items stay queued); a new
        ``async for`` goes on where the last one stopped.
        """
        return self._items()

    async def _items(self) -> AsyncIterator[Any]:
        while True:
            p = self._proto  # again after each wait: a reconnect replaces it
            while (item := p._take()) is not None:
                yield item
            try:
                item = await self.receive()
            except ConnectionClosed:
                return
            yield item

    async def __anext__(self) -> Any:
        """``anext(t)``: ``receive``, ending with ``StopAsyncIteration`` where it raises ``ConnectionClosed``."""
        try:
            return await self.receive()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    # ----------------------------------------------------------------- reconnecting
    async def _reconnect(self, old: RpcProtocol) -> RpcProtocol:
        assert self._redial is not None
        if self._redial_lock is None:
            self._redial_lock = asyncio.Lock()
        async with self._redial_lock:
            if self._proto is old and not self._user_closed:
                unread = list(old._queue)  # items that arrived before the drop stay readable
                await old.close()
                past = self._past
                self._past = TransportStats(
                    messages_in=past.messages_in + old.messages_in,
                    messages_out=past.messages_out + old.count_sent(),
                    bytes_in=past.bytes_in + old.bytes_in,
                    bytes_out=past.bytes_out + old.bytes_out,
                )
                self._proto = await self._redial()
                if unread:
                    self._proto._queue.extendleft(reversed(unread))
            if self._user_closed:
                raise ConnectionClosed("transport closed")
            return self._proto

    # ----------------------------------------------------------------- closing
    async def close(self) -> None:
        """Flush what was sent, close the connection and wait until it is closed. Idempotent.

        Waits up to ``close_timeout`` seconds (10) for a slow peer to take buffered data, then aborts.
        After ``close``, ``send`` and ``receive`` raise ``ConnectionClosed``.
        """
        self._user_closed = True
        await self._proto.close()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


T = TypeVar("T", bound=Transport)


class Opening(Generic[T]):
    """What ``stdio()`` and ``spawn()`` return: ``t = await stdio()`` or ``async with stdio() as t:``.

    ``async with`` closes the transport on exit; with ``await`` the caller closes it.
    """

    def __init__(self, opener: Callable[[], Awaitable[T]]) -> None:
        self._opener = opener
        self._transport: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._opener().__await__()

    async def __aenter__(self) -> T:
        self._transport = await self._opener()
        return self._transport

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            await self._transport.close()
