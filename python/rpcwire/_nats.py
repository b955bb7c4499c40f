"""``connect`` and ``serve`` over NATS: each rpcwire connection is a pair of NATS subjects.

``serve(handler, "nats://host:4222/svc")`` subscribes to ``svc`` in a queue group, so every process serving that
address shares the callers. ``connect`` sends a NATS request to ``svc`` (the *open*) naming a subject of its own;
the one instance that gets it answers with a subject of its own, and from then on the two ends publish to each
other's subject: one connection, one instance, in order, as a socket would be. What the codec writes (framed,
compressed, sealed: the same bytes a socket carries) leaves in NATS messages of at most ``CHUNK_BYTES``, each
headed by a kind, a sequence number and the acknowledgement of what came the other way (docs/wire-format.md 7).

Core NATS delivers at most once. The numbers make every loss, duplicate or reordering visible, and the sender
keeps what is not yet acknowledged (at most ``WINDOW_BYTES``), so a receiver that sees a gap asks for the rest
again (``NACK``) and the connection goes on with nothing lost; a gap not repaired within the peer timeout ends
the connection with ``ConnectionClosed`` naming it. The window is also the flow control: a reader that stops
reading stops acknowledging, and its peer's ``send`` waits, as on a socket. Each end sends a heartbeat when it
has had nothing to send for a fifth of ``peer_timeout``; an end that hears nothing from its peer for four fifths
of it (four heartbeats lost in a row) ends the connection, so a dead instance (or client) is noticed within
``peer_timeout``.

Many connections share one NATS connection per event loop and server list (a *hub*): one wildcard
subscription receives the messages of all of them, routed by the last subject token.

A NATS request to the served subject whose payload is plain JSON (any NATS client, any language) is a
one-request connection: the handler gets that message, and what it sends back is the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ._address import Address, subject_problem
from ._errors import ConnectionClosed
from ._protocol import RpcProtocol, new_codec

if TYPE_CHECKING:
    from ._transport import Transport, TransportType


class _Server(Protocol):
    """What ``listen`` needs of the ``rpcwire.Server`` it serves for (that class lives with the sockets)."""

    _server: Any

    def _full(self) -> bool: ...

    def _accepted(
        self, proto: RpcProtocol, kind: TransportType, handler: Callable[[Transport], Awaitable[Any]]
    ) -> None: ...


__all__ = (
    "CHUNK_BYTES",
    "DEFAULT_PEER_TIMEOUT",
    "WINDOW_BYTES",
    "WINDOW_MESSAGES",
    "dial",
    "listen",
)

logger = logging.getLogger("rpcwire")

#: The first bytes of an open and of its answer (no JSON text begins with 0xFB: a plain request never does).
MAGIC = b"\xfbRWN"
VERSION = 1
#: open / answer: magic, version (0 in a refusal, followed by the reason), heartbeat interval in ms, window bytes;
#: then the sender's subject (ASCII).
_OPEN = struct.Struct(">4sBII")
#: every message of a connection: kind, sequence number, acknowledgement (the last sequence number delivered).
_HEAD = struct.Struct(">BQQ")
DATA, FIN, CLOSE, BEAT, NACK, RESET = 1, 2, 3, 4, 5, 6

#: Seconds after a peer's last message at which its connection ends (``peer_timeout=``).
DEFAULT_PEER_TIMEOUT = 2.0

#: Bytes one end may have sent and not had acknowledged (the lower of the two ends' windows applies): what a
#: receiver holds for a reader that stopped reading, and what a sender keeps to send again.
WINDOW_BYTES = 8 * 2**20
#: Messages likewise.
WINDOW_MESSAGES = 1024
#: Most payload bytes per NATS message (less when the server's max_payload is lower).
CHUNK_BYTES = 2**20
#: Most bytes a sender writes before it waits for the NATS client to flush them (one coalesced write).
HIGH_WATER = 256 * 2**10
#: The NATS client's outgoing buffer (nats-py ``pending_size``; 2 MiB by default there).
PENDING_BYTES = 8 * 2**20
#: Heartbeats never come more often than this, whatever a peer asks for.
MIN_BEAT = 0.05
#: Longest subject a peer may name.
MAX_SUBJECT = 256


def _check_peer_timeout(peer_timeout: float) -> float:
    if not peer_timeout > 0:
        raise ValueError(f"peer_timeout must be more than 0 seconds, not {peer_timeout!r}")
    return float(peer_timeout)


def _valid_subject(subject: str) -> bool:
    return len(subject) <= MAX_SUBJECT and subject_problem(subject) is None


def _open_message(version: int, beat: float, window: int, tail: bytes) -> bytes:
    return _OPEN.pack(MAGIC, version, max(1, round(beat * 1000)), window) + tail


def _parse_open(data: bytes) -> tuple[float, int, str]:
    """(heartbeat interval, window, subject) from an open or its answer; ValueError if it is neither."""
    if len(data) < _OPEN.size or data[:4] != MAGIC:
        raise ValueError("not an rpcwire NATS open")
    _, version, beat_ms, window = _OPEN.unpack_from(data)
    tail = data[_OPEN.size :]
    if version == 0:
        raise ConnectionRefusedError(f"refused: {tail[:200].decode('utf-8', 'replace')}")
    if version != VERSION:
        raise ValueError(f"NATS carriage version {version} (this end speaks {VERSION})")
    subject = tail.decode("ascii", "replace")
    if not _valid_subject(subject):
        raise ValueError(f"an invalid reply subject {subject[:80]!r}")
    return max(beat_ms / 1000, MIN_BEAT), max(window, CHUNK_BYTES), subject


def _nats_module() -> Any:
    try:
        import nats
    except ImportError:  # pragma: no cover - the nats extra is not installed
        raise RuntimeError("NATS addresses need the nats-py package: pip install 'rpcwire[nats]'") from None
    return nats


class _Hub:
    """One NATS connection and the rpcwire connections on it.

    Shared by every ``connect`` and ``serve`` of one event loop with the same servers and options, and closed
    when the last of them is. One wildcard subscription, ``_RPCWIRE.<id>.*``, receives every connection's
    messages; the last token says which.
    """

    _pool: ClassVar[dict[tuple[Any, ...], _Hub]] = {}

    def __init__(self, key: tuple[Any, ...], loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.loop = loop
        self.nc: Any = None
        self.refs = 0
        self.prefix = f"_RPCWIRE.{secrets.token_hex(8)}"
        self.links: dict[str, _Link] = {}
        self.ready: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None
        self._backlog: deque[tuple[str, bytes, str]] | None = None
        self._tokens = 0

    @classmethod
    async def acquire(
        cls, addr: Address, options: Mapping[str, Any], tls: ssl.SSLContext | None, timeout: float
    ) -> _Hub:
        loop = asyncio.get_running_loop()
        key = (loop, addr.servers, tuple(sorted((k, id(v)) for k, v in options.items())), id(tls))
        hub = cls._pool.get(key)
        if hub is None:
            hub = cls._pool[key] = cls(key, loop)
            hub.ready = loop.create_task(hub._connect(addr, dict(options), tls, timeout))
        hub.refs += 1
        try:
            assert hub.ready is not None
            await asyncio.shield(hub.ready)
        except BaseException:
            await hub.release()
            raise
        return hub

    async def _connect(
        self, addr: Address, options: dict[str, Any], tls: ssl.SSLContext | None, timeout: float
    ) -> None:
        nats = _nats_module()

        async def error_cb(exc: Exception) -> None:
            logger.debug("rpcwire: NATS: %r", exc)

        async def disconnected_cb() -> None:
            if self.refs:
                logger.info("rpcwire: NATS: disconnected; reconnecting")

        async def reconnected_cb() -> None:
            logger.info("rpcwire: NATS: reconnected to %s", _url(self.nc))

        async def closed_cb() -> None:
            self._pool.pop(self.key, None)
            for link in list(self.links.values()):
                link.fail(ConnectionClosed("connection closed: the NATS connection closed"))

        settings: dict[str, Any] = {
            "servers": list(addr.servers),
            "name": "rpcwire",
            "connect_timeout": timeout,
            "reconnect_time_wait": 0.5,
            # nats-py's outgoing buffer (also what it holds while reconnecting): above the transports' write
            # high-water mark (2 MiB), so a sender pauses on that mark before nats-py would make it wait.
            "pending_size": PENDING_BYTES,
            "error_cb": error_cb,
            "disconnected_cb": disconnected_cb,
            "reconnected_cb": reconnected_cb,
            "closed_cb": closed_cb,
        }
        if tls is not None:
            settings["tls"] = tls
        settings.update(options)
        nc = nats.NATS()
        try:
            # nats-py's own connect_timeout bounds each attempt, not a TLS server that drops us after the handshake
            await asyncio.wait_for(nc.connect(**settings), timeout)
        except Exception as exc:
            self._pool.pop(self.key, None)
            with contextlib.suppress(Exception):
                await nc.close()
            if isinstance(exc, asyncio.TimeoutError):
                exc = TimeoutError(f"no NATS connection within {timeout:g} s")
            raise ConnectionRefusedError(f"cannot reach NATS at {addr}: {exc!r}") from exc
        self.nc = nc
        await self.nc.subscribe(self.prefix + ".*", cb=self._on_message)

    async def release(self) -> None:
        """Drop one reference; the last closes the NATS connection (and waits for that)."""
        self.refs -= 1
        if self.refs > 0:
            return
        if self._pool.get(self.key) is self:
            del self._pool[self.key]
        if self.closing is None:
            self.closing = self.loop.create_task(self._close())
        await asyncio.shield(self.closing)

    async def _close(self) -> None:
        ready = self.ready
        if ready is not None and not ready.done():
            ready.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.close()
            except Exception as exc:
                logger.debug("rpcwire: NATS: close failed: %r", exc)

    # ----------------------------------------------------------------- links
    def new_subject(self) -> tuple[str, str]:
        self._tokens += 1
        token = f"{self._tokens:x}{secrets.token_hex(4)}"
        return token, f"{self.prefix}.{token}"

    async def _on_message(self, msg: Any) -> None:
        link = self.links.get(msg.subject[len(self.prefix) + 1 :])
        if link is not None:
            try:
                link.received(msg.data)
            except Exception as exc:  # a bug here, not the peer's doing: nats-py would only pass it to error_cb
                logger.exception("rpcwire: NATS: handling a message failed; ending that connection")
                link.fail(ConnectionClosed(f"connection closed: internal error: {exc!r}"), reset="internal error")

    # ----------------------------------------------------------------- publishing
    def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        """Publish now, in order with every earlier publish, from synchronous code.

        ``nats-py``'s ``publish`` only queues the message for its flusher task and almost never waits (it waits
        when its buffer or flush queue is full): it is driven to completion right here, which saves a task per
        message; the rare one that waits is finished by a task, and later publishes queue behind it.
        """
        if self._backlog is not None:
            self._backlog.append((subject, payload, reply))
            return
        coro = self.nc.publish(subject, payload, reply=reply)
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:
            logger.debug("rpcwire: NATS: publish to %s failed: %r", subject, exc)
            return
        self._backlog = deque()
        self.loop.create_task(self._finish(coro, waiting))

    async def _finish(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        try:
            while True:
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    with contextlib.suppress(Exception):  # the coroutine reads the outcome itself
                        await waiting
                waiting = coro.send(None)
        except StopIteration:
            pass
        except Exception as exc:
            logger.debug("rpcwire: NATS: publish failed: %r", exc)
        backlog = self._backlog
        while backlog:
            subject, payload, reply = backlog.popleft()
            try:
                await self.nc.publish(subject, payload, reply=reply)
            except Exception as exc:
                logger.debug("rpcwire: NATS: publish to %s failed: %r", subject, exc)
        self._backlog = None


def _url(nc: Any) -> str:
    url = getattr(nc, "connected_url", None)
    return f"{url.hostname}:{url.port}" if url is not None else "?"


class _Link(asyncio.Transport):
    """One rpcwire connection over NATS, seen by its ``RpcProtocol`` as an asyncio transport.

    The send side numbers what it publishes and keeps it until the peer acknowledges it; the receive side
    delivers in order, asks again for what is missing, and acknowledges what it has delivered.
    """

    def __init__(self, hub: _Hub, peer_timeout: float, window: int = WINDOW_BYTES) -> None:
        super().__init__()
        self._hub = hub
        self._loop = hub.loop
        self.token, self.subject = hub.new_subject()
        self._peer = ""
        self._protocol: RpcProtocol | None = None
        self._early: list[bytes] | None = []
        self._early_bytes = 0
        self._timeout = peer_timeout
        self._beat = max(peer_timeout / 5, MIN_BEAT)
        self._window = window
        self._window_messages = WINDOW_MESSAGES
        self._chunk = CHUNK_BYTES
        # send side
        self._next = 1
        self._acked = 0
        self._unacked: deque[tuple[int, bytes]] = deque()
        self._unacked_bytes = 0
        self._pending: deque[tuple[int, bytes]] = deque()
        self._pending_bytes = 0
        self._end_sent = 0  # the sequence number of our FIN or CLOSE
        self._fin_queued = False
        self._closing = False
        self._high = 64 * 2**10
        self._low = 16 * 2**10
        self._writing_paused = False
        self._polls = 0
        self._last_sent = self._loop.time()
        self._resent_at = -1.0
        # receive side
        self._expected = 1
        self._consumed = 0
        self._ack_sent = 0
        self._in_since_ack = 0
        self._ack_scheduled = False
        self._held: deque[tuple[int, int, memoryview]] = deque()
        self._held_bytes = 0
        self._reading_paused = False
        self._peer_fin = False
        self._peer_closed = False
        self._gap_since: float | None = None
        self._nacked_at = -1.0
        self._nacks = 0
        self._duplicates = 0
        self._last_heard = self._loop.time()
        self._last_tick = self._last_heard
        self._timer: asyncio.TimerHandle | None = None
        self._done = False
        hub.links[self.token] = self

    def __repr__(self) -> str:
        return f"<rpcwire NATS link {self.subject} -> {self._peer or '?'}>"

    # ----------------------------------------------------------------- set-up
    def start(self, peer: str, peer_beat: float, peer_window: int, protocol: RpcProtocol) -> None:
        """The peer answered: ``protocol`` takes over this link; what arrived early is handled now."""
        self._peer = peer
        self._beat = max(min(self._beat, peer_beat), MIN_BEAT)
        self._window = min(self._window, peer_window)
        nc = self._hub.nc
        self._chunk = max(1, min(CHUNK_BYTES, nc.max_payload - _HEAD.size))
        self._protocol = protocol
        protocol.connection_made(self)
        self._last_heard = self._last_tick = self._loop.time()
        self._timer = self._loop.call_later(self._beat / 2, self._tick)
        early, self._early = self._early, None
        for data in early or ():
            if self._done:
                break
            self.received(data)

    # ----------------------------------------------------------------- asyncio.Transport surface
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        if name == "sockname":
            return self.subject
        if name == "nats":
            return self._hub.nc
        return default

    def is_closing(self) -> bool:
        return self._closing or self._done

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._done

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        while self._held and not self._reading_paused and not self._done:
            seq, kind, body = self._held.popleft()
            self._held_bytes -= len(body)
            self._deliver(seq, kind, body)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """As asked, but at most ``HIGH_WATER``: nats-py writes only when the sender yields, so yielding often
        is what lets the first bytes leave (and the peer start reading) while a burst is still being sent."""
        if high is None:
            high = 64 * 2**10 if low is None else 4 * low
        if low is None:
            low = high // 4
        self._high, self._low = min(high, HIGH_WATER), min(low, HIGH_WATER // 4)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def get_write_buffer_size(self) -> int:
        """What waits for the window here, and what the NATS client has not yet written to its socket."""
        return self._pending_bytes + int(self._hub.nc.pending_data_size)

    def can_write_eof(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._fin_queued or self._done or self._peer_closed or not data:
            return  # like a socket whose peer is gone: nothing would read it
        view = memoryview(data)
        size = self._chunk
        for start in range(0, len(view), size):
            chunk = bytes(view[start : start + size])
            self._pending.append((DATA, chunk))
            self._pending_bytes += len(chunk)
        self._pump()

    def write_eof(self) -> None:
        """Half-close: the peer reads EOF once everything written before has arrived; reading goes on."""
        if self._fin_queued or self._done:
            return
        self._fin_queued = True
        self._pending.append((FIN, b""))
        self._pump()

    def close(self) -> None:
        """End the connection both ways once what was written is acknowledged (``CLOSE``, sent in order)."""
        if self._closing or self._done:
            return
        self._closing = True
        self._fin_queued = True
        self._reading_paused = False
        self._held.clear()
        self._held_bytes = 0
        if self._peer_closed or self._protocol is None:
            self._finish(None)  # nobody reads what we would send
            return
        self._pending.append((CLOSE, b""))
        self._pump()

    def abort(self) -> None:
        self._finish(None, reset="aborted")

    # ----------------------------------------------------------------- sending
    def _pump(self) -> None:
        """Publish what waits, as far as the window allows."""
        pending, unacked = self._pending, self._unacked
        while pending and self._peer:
            kind, chunk = pending[0]
            if unacked and (len(unacked) >= self._window_messages or self._unacked_bytes + len(chunk) > self._window):
                break
            pending.popleft()
            self._pending_bytes -= len(chunk)
            seq = self._next
            self._next = seq + 1
            packet = _HEAD.pack(kind, seq, self._consumed) + chunk
            unacked.append((seq, packet))
            self._unacked_bytes += len(packet)
            if kind != DATA:
                self._end_sent = seq
            self._send(packet)
        self._flow()

    def _flow(self) -> None:
        """Pause the protocol's sends above the high-water mark, resume them at the low one.

        The NATS client writes to its socket from a task of its own, so a sender that never yields would only
        fill its buffer: above the mark, sends wait, which lets that task run (and the peer start reading). Its
        buffer has no callback, so while paused this looks again on the next loop iterations."""
        protocol = self._protocol
        if protocol is None or self._done:
            return
        buffered = self.get_write_buffer_size()
        if not self._writing_paused:
            if buffered > self._high:
                self._writing_paused = True
                self._polls = 0
                protocol.pause_writing()
                self._loop.call_soon(self._poll_flow)
        elif buffered <= self._low:
            self._writing_paused = False
            protocol.resume_writing()

    def _poll_flow(self) -> None:
        self._flow()
        if self._writing_paused and not self._done:
            self._polls += 1
            # the next iteration or two (the client's flusher task runs then); slower while NATS holds it back
            if self._polls < 4:
                self._loop.call_soon(self._poll_flow)
            else:
                self._loop.call_later(0.001, self._poll_flow)

    def _send(self, packet: bytes) -> None:
        self._ack_sent = self._consumed
        self._in_since_ack = 0
        self._last_sent = self._loop.time()
        self._hub.publish(self._peer, packet)

    def _control(self, kind: int, seq: int, body: bytes = b"") -> None:
        if self._peer:
            self._send(_HEAD.pack(kind, seq, self._consumed) + body)

    def _take_ack(self, ack: int) -> None:
        unacked = self._unacked
        while unacked and unacked[0][0] <= ack:
            self._unacked_bytes -= len(unacked.popleft()[1])
        self._acked = ack
        self._pump()
        if self._end_sent and ack >= self._end_sent and (self._closing or self._peer_fin):
            self._finish(None)

    def _resend(self, seq: int) -> None:
        """The peer lacks ``seq`` onwards: send again what it has not acknowledged (at most twice per beat)."""
        now = self._loop.time()
        if now - self._resent_at < self._beat / 2:
            return
        self._resent_at = now
        resent = 0
        for s, packet in self._unacked:
            if s >= seq:
                self._hub.publish(self._peer, packet)
                resent += 1
        self._last_sent = now
        logger.debug("rpcwire: %r: sent %d messages again from %d", self, resent, seq)

    # ----------------------------------------------------------------- receiving
    def received(self, data: bytes) -> None:
        """One NATS message from the peer."""
        if self._early is not None:
            # before the answer to our open: held, within the window (more is dropped; a resend recovers it)
            if len(self._early) < self._window_messages and self._early_bytes + len(data) <= self._window:
                self._early.append(data)
                self._early_bytes += len(data)
            return
        if self._done:
            return
        if len(data) < _HEAD.size:
            self._violation(f"a message of {len(data)} bytes, shorter than its header")
            return
        kind, seq, ack = _HEAD.unpack_from(data)
        self._last_heard = self._loop.time()
        if ack > self._acked:
            if ack >= self._next:
                self._violation(f"an acknowledgement of message {ack}, which was never sent")
                return
            self._take_ack(ack)
            if self._done:
                return
        if kind <= CLOSE:
            self._data(kind, seq, data)
        elif kind == BEAT:
            if seq >= self._expected:  # the peer has sent messages that never came
                self._gap(seq)
        elif kind == NACK:
            if seq >= self._next:
                self._violation(f"a resend request for message {seq}, which was never sent")
            elif seq > self._acked:  # a request for what it acknowledged already is stale
                self._resend(seq)
        elif kind == RESET:
            reason = data[_HEAD.size : _HEAD.size + 200].decode("utf-8", "replace")
            self._finish(ConnectionResetError(f"the peer reset the connection ({reason})"))
        else:
            self._violation(f"a message of unknown kind {kind}")

    def _data(self, kind: int, seq: int, data: bytes) -> None:
        if seq < self._expected:
            self._duplicates += 1  # sent again after a loss, or duplicated on the way: delivered once already
            self._ack_soon()
            return
        if seq > self._expected:
            self._gap(seq - 1)
            return
        self._expected = seq + 1
        if self._gap_since is not None:
            logger.debug("rpcwire: %r: repaired a gap after %d resend requests", self, self._nacks)
            self._gap_since = None
            self._nacks = 0
        body = memoryview(data)[_HEAD.size :]
        if self._closing:  # closed here: acknowledge, deliver nothing
            self._consumed = seq
            self._ack_soon()
            return
        if self._reading_paused or self._held:
            self._held.append((seq, kind, body))
            self._held_bytes += len(body)
            if self._held_bytes > self._window + self._chunk:
                self._violation("more unacknowledged data than the window allows")
            return
        self._deliver(seq, kind, body)

    def _deliver(self, seq: int, kind: int, body: memoryview) -> None:
        protocol = self._protocol
        assert protocol is not None
        self._consumed = seq
        self._in_since_ack += len(body) + _HEAD.size
        if body:
            protocol.data_received(body)  # the core reads any buffer
        if kind == DATA:
            self._ack_soon()
            return
        # FIN or CLOSE: everything before it has arrived. Acknowledge it at once: the peer waits for that.
        self._peer_fin = True
        if kind == CLOSE:
            self._peer_closed = True
            self._pending.clear()
            self._pending_bytes = 0
        self._control(BEAT, self._next - 1)
        keep_open = protocol.eof_received()
        if self._done:
            return
        if not keep_open:
            self.close()
        elif self._end_sent and self._acked >= self._end_sent:
            self._finish(None)  # both halves closed

    def _ack_soon(self) -> None:
        """Acknowledge on its own, at the end of this loop iteration (unless an outgoing message carried it by
        then), once what is unacknowledged is a quarter of the window, or when a duplicate says the peer missed
        an acknowledgement. Below that, the next message or heartbeat carries it: a round trip costs nothing."""
        if self._ack_scheduled:
            return
        if (
            self._duplicates
            or self._in_since_ack * 4 >= self._window
            or (self._consumed - self._ack_sent) * 4 >= self._window_messages
        ):
            self._ack_scheduled = True
            self._loop.call_soon(self._ack_now)

    def _ack_now(self) -> None:
        self._ack_scheduled = False
        if self._done or (self._consumed == self._ack_sent and not self._duplicates):
            return
        self._duplicates = 0
        self._control(BEAT, self._next - 1)

    def _gap(self, last: int) -> None:
        """Messages up to ``last`` were sent, and ``self._expected`` never came: ask for them again."""
        now = self._loop.time()
        if self._gap_since is None:
            self._gap_since = now
            logger.debug("rpcwire: %r: message %d missing (the peer is at %d)", self, self._expected, last)
        if now - self._nacked_at >= self._beat / 2:
            self._nacked_at = now
            self._nacks += 1
            self._control(NACK, self._expected)

    # ----------------------------------------------------------------- liveness
    def _tick(self) -> None:
        self._timer = None
        if self._done:
            return
        now = self._loop.time()
        if now - self._last_tick > 1.5 * self._beat:  # three ticks
            # This loop was stalled (a blocking call, a paused process): the silence was ours, not the peer's.
            self._last_heard = max(self._last_heard, now - self._beat)
            if self._gap_since is not None:
                self._gap_since = max(self._gap_since, now - self._beat)
        self._last_tick = now
        limit = 0.8 * self._timeout
        if self._gap_since is not None and now - self._gap_since > limit:
            missing = self._expected
            self.fail(
                ConnectionClosed(
                    f"connection closed: NATS lost message {missing} of this connection and it could not be "
                    f"recovered within {limit:.2g} s ({self._nacks} resend requests to {self._peer})"
                ),
                reset=f"message {missing} lost",
            )
            return
        silent = now - self._last_heard
        if silent > limit and not self._peer_closed:
            self.fail(
                ConnectionClosed(
                    f"connection closed: no word from the peer ({self._peer}) for {silent:.2g} s "
                    f"(peer_timeout {self._timeout:g} s): it is gone or cut off"
                ),
                reset="peer timeout",
            )
            return
        if self._gap_since is not None and now - self._nacked_at >= self._beat / 2:
            self._nacked_at = now
            self._nacks += 1
            self._control(NACK, self._expected)
        # A heartbeat after a quiet beat interval; after half of one while messages wait for their acknowledgement,
        # so that the peer learns soon of a last message that never came.
        quiet = now - self._last_sent
        if not self._peer_closed and (quiet >= self._beat or (self._unacked and quiet >= self._beat / 2)):
            self._control(BEAT, self._next - 1)
        # Every half beat, and at the moment the peer's silence (or a gap) would reach the limit, so that a dead
        # peer is declared at 0.8 peer_timeout, not up to half a beat later.
        deadline = self._last_heard if self._gap_since is None else min(self._last_heard, self._gap_since)
        delay = min(self._beat / 2, max(deadline + limit - now, 0.0) + 0.002)
        self._timer = self._loop.call_later(delay, self._tick)

    # ----------------------------------------------------------------- ending
    def _violation(self, what: str) -> None:
        logger.info("rpcwire: %r: the peer broke the NATS carriage: %s", self, what)
        self.fail(ConnectionClosed(f"connection closed: the peer sent {what}"), reset="protocol violation")

    def fail(self, error: ConnectionClosed, reset: str | None = None) -> None:
        """End the connection with ``error`` (what ``receive`` raises after the items already decoded)."""
        protocol = self._protocol
        if protocol is not None and protocol._error is None:
            protocol._error = error
        self._finish(None, reset=reset)

    def _finish(self, exc: BaseException | None, reset: str | None = None) -> None:
        if self._done:
            return
        self._done = True
        self._closing = True
        if reset is not None and self._peer:
            self._control(RESET, self._next - 1, reset.encode()[:200])
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
        self._unacked.clear()
        self._held.clear()
        self._pending_bytes = self._unacked_bytes = self._held_bytes = 0
        self._early = None
        hub = self._hub
        if hub.links.get(self.token) is self:
            del hub.links[self.token]
        protocol = self._protocol
        releasing = self._loop.create_task(hub.release())
        if protocol is not None:
            releasing.add_done_callback(lambda _: protocol.connection_lost(exc))

    def discard(self) -> Awaitable[None]:
        """Give up a link that never started (its open failed)."""
        self._done = True
        self._hub.links.pop(self.token, None)
        return self._hub.release()


class _Reply(asyncio.Transport):
    """The transport of a plain NATS request: what the handler writes (length-prefixed frames of a plain
    codec) is published to the request's reply subject, one JSON text per frame."""

    def __init__(self, hub: _Hub, reply: str, protocol: RpcProtocol) -> None:
        super().__init__()
        self._hub = hub
        self._reply = reply
        self._protocol = protocol
        self._buffer = bytearray()
        self._closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._reply, "nats": self._hub.nc}.get(name, default)

    def is_closing(self) -> bool:
        return self._closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            return
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            size = int.from_bytes(buffer[:4], "big")
            if len(buffer) < 4 + size:
                break
            text = bytes(buffer[4 : 4 + size])
            del buffer[: 4 + size]
            self._publish(text)

    def _publish(self, text: bytes) -> None:
        if not self._reply:
            return  # published without a reply subject: nobody waits for an answer
        limit = self._hub.nc.max_payload
        if len(text) > limit:
            logger.error(
                "rpcwire: a reply of %d bytes exceeds the NATS max_payload (%d); answered with an error",
                len(text),
                limit,
            )
            text = (
                b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error: the response exceeds '
                b'the NATS max_payload; call this service through an rpcwire connection"}}'
            )
        self._hub.publish(self._reply, text)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


_REFUSE_KEYED = (
    b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: this service takes sealed '
    b'rpcwire connections only (it has a keyring); plain NATS requests are refused"}}'
)
_REFUSE_BUSY = (
    b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error: the server is at max_connections"}}'
)


class _Listener:
    """The NATS side of a ``Server``: the queue subscription (what ``Server`` calls ``_server``)."""

    def __init__(self, hub: _Hub) -> None:
        self._hub = hub
        self._sub: Any = None
        self._serving = True
        self._closing: asyncio.Task[None] | None = None

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        if self._closing is None:
            self._serving = False
            self._closing = self._hub.loop.create_task(self._close())

    async def _close(self) -> None:
        sub = self._sub
        if sub is not None and not self._hub.nc.is_closed:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                logger.debug("rpcwire: NATS: unsubscribe failed: %r", exc)
        await self._hub.release()

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)


async def dial(
    addr: Address,
    kwargs: dict[str, Any],
    *,
    timeout: float,
    nats_options: Mapping[str, Any] | None,
    peer_timeout: float,
    tls: ssl.SSLContext | None,
) -> RpcProtocol:
    """Open one connection to the service at ``addr`` (``rpcwire.connect`` for NATS addresses)."""
    peer_timeout = _check_peer_timeout(peer_timeout)
    assert addr.subject is not None
    nats = _nats_module()
    hub = await _Hub.acquire(addr, nats_options or {}, tls, timeout)
    link = _Link(hub, peer_timeout)
    try:
        hello = _open_message(VERSION, link._beat, link._window, link.subject.encode())
        try:
            answer = await hub.nc.request(addr.subject, hello, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise ConnectionRefusedError(f"no service at {addr}: nothing subscribes to {addr.subject!r}") from None
        except nats.errors.TimeoutError:
            raise TimeoutError(f"{addr}: no answer within {timeout:g} s") from None
        try:
            beat, window, peer = _parse_open(answer.data)
        except ValueError as exc:
            raise ConnectionRefusedError(f"{addr} is not an rpcwire service: {exc}") from None
        loop = asyncio.get_running_loop()
        proto = RpcProtocol(new_codec(kwargs), loop)
        proto.mismatch_hint = True
        link.start(peer, beat, window, proto)
        return proto
    except BaseException:
        await link.discard()
        raise


async def listen(
    server: _Server,
    addr: Address,
    kwargs: dict[str, Any],
    handler: Callable[[Transport], Awaitable[Any]],
    *,
    timeout: float,
    nats_options: Mapping[str, Any] | None,
    peer_timeout: float,
    tls: ssl.SSLContext | None,
) -> None:
    """Serve ``addr`` for ``server`` (``rpcwire.serve`` for NATS addresses): subscribe in its queue group."""
    peer_timeout = _check_peer_timeout(peer_timeout)
    assert addr.subject is not None
    hub = await _Hub.acquire(addr, nats_options or {}, tls, timeout)
    listener = _Listener(hub)
    loop = hub.loop
    keyed = kwargs.get("keyring") is not None
    plain_kwargs = {**kwargs, "framing": "length", "compression": None, "keyring": None}
    plain_kwargs.pop("handshake", None)

    def accept(msg: Any) -> None:
        data: bytes = msg.data
        if data[:4] != MAGIC:
            plain(msg)
            return
        try:
            beat, window, peer = _parse_open(data)
        except (ValueError, ConnectionRefusedError) as exc:
            logger.info("rpcwire: %s: a malformed open, ignored: %s", addr, exc)
            return
        if not msg.reply:
            return
        if server._full():
            hub.publish(msg.reply, _open_message(0, 0, 0, b"the server is at max_connections"))
            return
        link = _Link(hub, peer_timeout)
        hub.refs += 1
        hub.publish(msg.reply, _open_message(VERSION, link._beat, link._window, link.subject.encode()))
        proto = RpcProtocol(new_codec(kwargs), loop)
        link.start(peer, beat, window, proto)
        server._accepted(proto, "nats", handler)

    def plain(msg: Any) -> None:
        """A plain NATS request: one JSON-RPC message (or batch), answered on its reply subject."""
        if keyed:
            if msg.reply:
                hub.publish(msg.reply, _REFUSE_KEYED)
            return
        if server._full():
            if msg.reply:
                hub.publish(msg.reply, _REFUSE_BUSY)
            return
        proto = RpcProtocol(new_codec(plain_kwargs), loop)
        proto.connection_made(_Reply(hub, msg.reply, proto))
        data: bytes = msg.data
        proto.data_received(len(data).to_bytes(4, "big") + data)
        proto.eof_received()
        server._accepted(proto, "nats", handler)

    async def on_request(msg: Any) -> None:
        if listener._serving:
            accept(msg)

    queue = addr.queue if addr.queue is not None else addr.subject
    try:
        listener._sub = await hub.nc.subscribe(addr.subject, queue=queue, cb=on_request)
    except BaseException:
        await hub.release()
        raise
    server._server = listener
