"""``memory_pair()``: two connected transports in one event loop, through the real codec.

Messages are encoded and decoded as on a socket (so a message is copied, errors and stats behave the same),
and the in-memory pipe between the two has the same flow control: a side whose reader paused stops receiving,
its peer's write buffer grows past the high-water mark and the peer's ``send`` waits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._protocol import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_EXPANSION,
    DEFAULT_MAX_FRAME_SIZE,
    RpcProtocol,
    codec_kwargs,
    new_codec,
    session_kwargs,
)
from ._transport import Transport

__all__ = ("memory_pair",)


class _MemoryPipe(asyncio.Transport):
    """One end of an in-memory byte pipe; ``write`` delivers to the peer's protocol on the next iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: RpcProtocol) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._peer: _MemoryPipe | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._paused_reading = False
        self._scheduled = False
        self._closing = False
        self._closed = False
        self._high = 64 * 2**10
        self._low = 16 * 2**10
        self._protocol_paused = False

    # -- asyncio.Transport surface
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": "memory", "sockname": "memory"}.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return not self._paused_reading and not self._closing

    def pause_reading(self) -> None:
        self._paused_reading = True

    def resume_reading(self) -> None:
        self._paused_reading = False
        if self._peer is not None:
            self._peer._schedule()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 2**10 if low is None else 4 * low
        if low is None:
            low = high // 4
        self._high, self._low = high, low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def get_write_buffer_size(self) -> int:
        return self._pending_size

    def can_write_eof(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            raise RuntimeError("write on a closed memory transport")
        if not data:
            return
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        self._schedule()
        if not self._protocol_paused and self._pending_size > self._high:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._schedule()

    def abort(self) -> None:
        self._closing = True
        self._pending.clear()
        self._pending_size = 0
        self._lose_both()

    # -- delivery
    def _schedule(self) -> None:
        if not self._scheduled and not self._closed:
            self._scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        peer = self._peer
        if self._closed or peer is None:
            return
        if peer._closed:
            self._pending.clear()
            self._pending_size = 0
        elif self._pending and not peer._paused_reading:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            peer._protocol.data_received(data)
        if self._protocol_paused and self._pending_size <= self._low:
            self._protocol_paused = False
            self._protocol.resume_writing()
        if self._closing and not self._pending:
            if peer is not None and not peer._closed:
                peer._protocol.eof_received()
            self._lose_both()

    def _lose_both(self) -> None:
        for end in (self, self._peer):
            if end is not None and not end._closed:
                end._closed = True
                end._closing = True
                end._pending.clear()
                end._pending_size = 0
                end._protocol.connection_lost(None)


def memory_pair(
    *,
    framing: str | None = None,
    compression: str | None = None,
    compress_min_size: int = 1024,
    keyring: Any = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
) -> tuple[Transport, Transport]:
    """Two transports connected to each other in this event loop (``transport_type == "memory"``).

    Arguments:
        framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion: the codec's
            arguments, used for both ends.

    Returns:
        ``(a, b)``: what ``a`` sends, ``b`` receives, and the reverse. Closing one ends the other's stream.

    Raises:
        RuntimeError: no event loop is running.
    """
    loop = asyncio.get_running_loop()
    kwargs = codec_kwargs(framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion)
    pa = RpcProtocol(new_codec(session_kwargs(kwargs, "initiator")), loop)
    pb = RpcProtocol(new_codec(session_kwargs(kwargs, "responder")), loop)
    ta = _MemoryPipe(loop, pa)
    tb = _MemoryPipe(loop, pb)
    ta._peer, tb._peer = tb, ta
    pa.connection_made(ta)
    pb.connection_made(tb)
    return Transport(pa, "memory"), Transport(pb, "memory")
