"""``connect`` and ``serve`` over TCP and Unix sockets, and over NATS (``rpcwire._nats``)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import socket
import ssl
import stat
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import _nats
from ._address import Address, parse_address
from ._errors import ConnectionClosed, RpcWireError
from ._protocol import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_EXPANSION,
    DEFAULT_MAX_FRAME_SIZE,
    RpcProtocol,
    codec_kwargs,
    new_codec,
    session_kwargs,
)
from ._transport import Transport, TransportType

__all__ = (
    "DEFAULT_AUTH_TIMEOUT",
    "DEFAULT_FRAME_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "ConnectionBudgets",
    "Server",
    "connect",
    "serve",
)

logger = logging.getLogger("rpcwire")

Handler = Callable[[Transport], Awaitable[Any]]

# The per-connection budgets of ``serve`` (docs/security.md). Each is a keyword argument of ``serve`` and an
# option of ``rpcwire bridge``.
#: Connections served at once; one more is closed as soon as it is accepted (an open file and a task each).
DEFAULT_MAX_CONNECTIONS = 1024
#: Seconds a server with a keyring waits for a connection's first authenticated frame: a peer without the key
#: holds a connection (and, behind ``rpcwire bridge``, nothing else) no longer than this.
DEFAULT_AUTH_TIMEOUT = 10.0
#: Seconds a frame may take to arrive once its first byte has: a peer that trickles a frame (1 byte/s) holds
#: its buffer no longer than this. Generous: 16 MiB at 8 Mbit/s takes 17 s.
DEFAULT_FRAME_TIMEOUT = 60.0


@dataclass(frozen=True)
class ConnectionBudgets:
    """What one connection to a ``serve``d address may hold; ``None`` turns a limit off."""

    auth_timeout: float | None = DEFAULT_AUTH_TIMEOUT
    frame_timeout: float | None = DEFAULT_FRAME_TIMEOUT
    idle_timeout: float | None = None

    def check_interval(self) -> float | None:
        """How often the server looks at its connections: a quarter of the shortest limit, 50 ms to 1 s."""
        limits = [t for t in (self.auth_timeout, self.frame_timeout, self.idle_timeout) if t is not None]
        if not limits:
            return None
        return min(max(min(limits) / 4, 0.05), 1.0)


@dataclass
class _Watched:
    """What the server's check last saw of one connection."""

    proto: RpcProtocol
    keyed: bool
    since: float
    messages: int = 0
    traffic: int = 0
    active: float = 0.0
    partial_since: float | None = None

    def overdue(self, budgets: ConnectionBudgets, now: float) -> str | None:
        """Why this connection has outlived a budget, or None."""
        p = self.proto
        messages = p.messages_in
        traffic = p.bytes_in + p.bytes_out
        if traffic != self.traffic:
            self.traffic, self.active = traffic, now
        partial = getattr(p._codec, "buffered", 0) > 0
        if messages != self.messages or not partial:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = now
        self.messages = messages
        auth, frame = budgets.auth_timeout, budgets.frame_timeout
        if self.keyed and messages == 0 and auth is not None and now - self.since > auth:
            return f"no authenticated frame within auth_timeout ({auth:g} s)"
        if frame is not None and self.partial_since is not None and now - self.partial_since > frame:
            return f"a frame not completed within frame_timeout ({frame:g} s)"
        if budgets.idle_timeout is not None and now - self.active > budgets.idle_timeout:
            return f"idle for idle_timeout ({budgets.idle_timeout:g} s)"
        return None


def _socket_address(address: str | int | Address, tls: ssl.SSLContext | None) -> Address:
    """``address`` parsed, refusing ``ssl=`` where it cannot apply (``connect`` and ``serve`` alike)."""
    addr = parse_address(address)
    if tls is not None and addr.scheme == "unix":
        raise ValueError("ssl= is for TCP and NATS addresses; a Unix socket is protected by its file mode")
    return addr


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # pragma: no cover - uvloop's pseudo-sockets and odd platforms
        pass


async def _dial(
    addr: Address, kwargs: dict[str, Any], timeout: float, tls: ssl.SSLContext | None = None
) -> RpcProtocol:
    loop = asyncio.get_running_loop()
    codec = new_codec(kwargs)

    def factory() -> RpcProtocol:
        proto = RpcProtocol(codec, loop)
        proto.mismatch_hint = True
        return proto

    transport: asyncio.BaseTransport
    if addr.scheme == "unix":
        assert addr.path is not None
        transport, proto = await asyncio.wait_for(loop.create_unix_connection(factory, addr.path), timeout)
    else:
        assert addr.host is not None
        assert addr.port is not None
        connecting = loop.create_connection(factory, addr.host, addr.port, ssl=tls)
        transport, proto = await asyncio.wait_for(connecting, timeout)
        _set_nodelay(transport)
    return proto


async def _dial_with_retry(
    dial: Callable[[], Awaitable[RpcProtocol]], addr: Address, *, attempts: int, initial: float, maximum: float
) -> RpcProtocol:
    delay = initial
    for attempt in range(1, attempts + 1):
        try:
            return await dial()
        except (OSError, asyncio.TimeoutError) as exc:  # noqa: PERF203 - one try per dial attempt
            if attempt >= attempts:
                raise
            # full jitter on a capped exponential backoff
            sleep = random.uniform(delay / 2, delay)
            logger.info(
                "rpcwire: connect to %s failed (%r); retry %d/%d in %.2f s", addr, exc, attempt, attempts, sleep
            )
            await asyncio.sleep(sleep)
            delay = min(delay * 2, maximum)
    raise AssertionError("unreachable")  # pragma: no cover


async def connect(
    address: str | int | Address,
    *,
    framing: str | None = None,
    compression: str | None = None,
    compress_min_size: int = 1024,
    keyring: Any = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
    reconnect: bool = False,
    retry_attempts: int = 5,
    retry_initial: float = 0.1,
    retry_max: float = 10.0,
    timeout: float = 10.0,
    ssl: ssl.SSLContext | None = None,
    nats_options: Mapping[str, Any] | None = None,
    peer_timeout: float = _nats.DEFAULT_PEER_TIMEOUT,
) -> Transport:
    """Connect to a server at ``address`` (``tcp://host:port``, ``unix:///path``, a bare port for loopback, or
    ``nats://host:port/SUBJECT``).

    Arguments:
        address: where to connect; see ``rpcwire._address.parse_address``.
        framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion: the codec's
            arguments. The default framing is ``ndjson``, or ``length`` when compression or a keyring is given.
        reconnect: retry the first dial (``retry_attempts`` tries, capped exponential backoff with jitter from
            ``retry_initial`` up to ``retry_max`` seconds) and re-dial after a drop: the next ``send`` after the
            connection died dials again, as does the next ``receive`` once a ``receive`` reported the drop.
            Messages in flight at the drop are not replayed.
        timeout: seconds allowed for each dial (TLS handshake included).
        ssl: TCP: speak TLS with this client context (``ssl.create_default_context(cafile=...)``; load a
            certificate chain into it for mutual TLS). The server's name is checked against the address's host.
            NATS: the TLS context of the NATS connection (``tls://`` addresses).
        nats_options: NATS only: more keyword arguments for ``nats.connect`` (``user_credentials``, ``token``,
            ``nkeys_seed``, ``tls_hostname``, ...). Connections with the same servers and options in one event
            loop share one NATS connection.
        peer_timeout: NATS only: a peer silent this long (it sends a heartbeat when it has nothing else to send)
            is gone; the connection ends with ``ConnectionClosed`` within this many seconds of its last message.

    Returns:
        A connected ``Transport`` (``transport_type`` ``"tcp"``, ``"unix"`` or ``"nats"``).

    Raises:
        ValueError: a bad address, or ``ssl`` with a Unix address.
        OSError: the server could not be reached (after the retries with ``reconnect``); an
            ``ssl.SSLError`` when the TLS handshake fails (an unknown CA, a name mismatch, no client certificate).
        TimeoutError: a dial took longer than ``timeout``.
    """
    addr = _socket_address(address, ssl)
    tls = ssl
    kwargs = session_kwargs(
        codec_kwargs(framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion),
        "initiator",
    )
    kind: TransportType = "nats" if addr.is_nats else "unix" if addr.scheme == "unix" else "tcp"

    async def dial() -> RpcProtocol:
        if addr.is_nats:
            return await _nats.dial(
                addr, kwargs, timeout=timeout, nats_options=nats_options, peer_timeout=peer_timeout, tls=tls
            )
        return await _dial(addr, kwargs, timeout, tls)

    if not reconnect:
        return Transport(await dial(), kind)

    async def redial() -> RpcProtocol:
        return await _dial_with_retry(dial, addr, attempts=retry_attempts, initial=retry_initial, maximum=retry_max)

    proto = await redial()
    return Transport(proto, kind, redial=redial)


def _prepare_unix_path(path: str) -> None:
    """Remove a stale socket file at ``path``; refuse a live socket or anything that is not a socket."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket; refusing to replace it", path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        logger.info("rpcwire: replacing stale socket file %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError:
        pass
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"address in use: a server is listening on {path}", path)


class Server:
    """A listening socket started by ``rpcwire.serve``; each accepted connection runs ``handler(transport)``.

    Attributes:
        address: the bound address as a URL (the real port when port 0 was asked).

    ``close()`` stops listening, closes every open connection (their handlers see ``ConnectionClosed``) and,
    for Unix sockets, removes the socket file; ``wait_closed()`` waits for the handlers to finish.
    ``async with server:`` does both on exit.
    """

    def __init__(
        self,
        address: Address,
        *,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        budgets: ConnectionBudgets | None = None,
        keyed: bool = False,
    ) -> None:
        self._server: asyncio.AbstractServer | None = None
        self._address = address
        self._unix_inode: tuple[int, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: set[Transport] = set()
        self._closed = False
        self._max_connections = max_connections
        self._budgets = budgets if budgets is not None else ConnectionBudgets()
        self._keyed = keyed
        self._watched: dict[Transport, _Watched] = {}
        self._checker: asyncio.Task[None] | None = None
        self._refused = 0

    def __repr__(self) -> str:
        return f"<rpcwire.Server {self._address}>"

    @property
    def address(self) -> str:
        """The bound URL: ``tcp://127.0.0.1:PORT``, ``tcp://[::1]:PORT`` or ``unix:///path``."""
        return str(self._address)

    @property
    def connections(self) -> int:
        """Connections currently open."""
        return len(self._transports)

    def is_serving(self) -> bool:
        """True until ``close``."""
        return not self._closed and self._server is not None and self._server.is_serving()

    @property
    def refused(self) -> int:
        """Connections closed at once because ``max_connections`` were open."""
        return self._refused

    def _full(self) -> bool:
        """True (and counted, and logged the first time of a burst) when no more connections may open."""
        if self._max_connections is None or len(self._transports) < self._max_connections:
            return False
        self._refused += 1
        if self._refused == 1 or self._refused % 1000 == 0:
            logger.warning(
                "rpcwire: %s: max_connections (%d) reached; refusing connections (%d so far)",
                self._address,
                self._max_connections,
                self._refused,
            )
        return True

    def _accepted(self, proto: RpcProtocol, kind: TransportType, handler: Handler) -> None:
        """Run ``handler`` on a new connection (the caller has checked ``_full``)."""
        t = Transport(proto, kind)
        task = asyncio.get_running_loop().create_task(self._run(handler, t))
        self._track(t, task)

    async def _run(self, handler: Handler, transport: Transport) -> None:
        try:
            await handler(transport)
        except RpcWireError as exc:
            # The peer's fault (a bad frame, a wrong key): one line, not a traceback per connection.
            logger.info("rpcwire: %s: connection ended by a wire error: %r", self.address, exc)
        except Exception:
            logger.exception("rpcwire: connection handler failed")
        finally:
            await transport.close()

    def _track(self, transport: Transport, task: asyncio.Task[None]) -> None:
        self._transports.add(transport)
        self._tasks.add(task)
        interval = self._budgets.check_interval()
        if interval is not None:
            now = time.monotonic()
            self._watched[transport] = _Watched(transport._proto, self._keyed, since=now, active=now)
            if self._checker is None:
                self._checker = asyncio.get_running_loop().create_task(self._check_budgets(interval))

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._transports.discard(transport)
            self._watched.pop(transport, None)

        task.add_done_callback(done)

    async def _check_budgets(self, interval: float) -> None:
        """Close the connections that outlive a budget (``ConnectionBudgets``), until the server closes."""
        while not self._closed:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for transport, watched in list(self._watched.items()):
                reason = watched.overdue(self._budgets, now)
                if reason is None:
                    continue
                self._watched.pop(transport, None)
                logger.info("rpcwire: %s: closing a connection: %s", self._address, reason)
                proto = watched.proto
                if proto._error is None:
                    proto._error = ConnectionClosed(f"connection closed by the server: {reason}")
                # Nothing buffered is owed to a peer that broke a budget: abort, do not wait for it to read.
                proto.abort()

    def close(self) -> None:
        """Stop listening, close open connections and remove the Unix socket file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._checker is not None:
            self._checker.cancel()
        if self._server is not None:
            self._server.close()
        if self._address.scheme == "unix" and self._unix_inode is not None and self._address.path is not None:
            try:
                st = os.lstat(self._address.path)
                if (st.st_dev, st.st_ino) == self._unix_inode:
                    os.unlink(self._address.path)
            except FileNotFoundError:
                pass
        for t in list(self._transports):
            t._user_closed = True
            t._proto.close_nowait()

    async def wait_closed(self) -> None:
        """Wait until the listener is closed and every connection handler has returned."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until cancelled (then close)."""
        try:
            await asyncio.Future()
        finally:
            self.close()
            await self.wait_closed()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        await self.wait_closed()


async def serve(
    handler: Handler,
    address: str | int | Address,
    *,
    framing: str | None = "auto",
    compression: str | None = None,
    compress_min_size: int = 1024,
    keyring: Any = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
    backlog: int = 128,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    auth_timeout: float | None = DEFAULT_AUTH_TIMEOUT,
    frame_timeout: float | None = DEFAULT_FRAME_TIMEOUT,
    idle_timeout: float | None = None,
    ssl: ssl.SSLContext | None = None,
    nats_options: Mapping[str, Any] | None = None,
    peer_timeout: float = _nats.DEFAULT_PEER_TIMEOUT,
    timeout: float = 10.0,
) -> Server:
    """Listen on ``address`` and run ``await handler(transport)`` for every connection.

    The transport is closed when the handler returns (or raises: the exception is logged).

    Arguments:
        handler: an async callable taking the connection's ``Transport``.
        address: ``tcp://host:port`` (port 0: any free port), ``tcp://[::1]:port``, ``unix:///abs/path``, a
            bare port (loopback), or ``nats://host:port/SUBJECT[?queue=GROUP]``. A Unix socket is created with
            mode 0600; a stale socket file is replaced. On NATS the server joins the queue group (by default
            the subject): every process serving one address shares its callers, each connection staying on one
            process. A plain NATS request with a JSON-RPC message as payload is served as a connection of one
            message, its reply what the handler sends back (refused with a keyring).
        framing: ``"auto"`` by default: each connection speaks whatever framing its client's first bytes show.
        compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion: the codec's arguments.
        backlog: the listen backlog.
        max_connections: connections served at once; one more is closed as soon as it is accepted (its handler
            never runs). None: no limit.
        auth_timeout: with a keyring, seconds a connection has to deliver its first authenticated frame before
            it is closed. None: no limit.
        frame_timeout: seconds a frame may take to arrive once its first byte has. None: no limit.
        idle_timeout: seconds without a byte either way after which a connection is closed. None (the
            default): no limit.
        A connection closed by a budget is aborted (nothing buffered for it is sent); its handler's ``receive``
        raises ``ConnectionClosed`` naming the budget.
        ssl: TCP only: serve TLS with this server context (``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)``
            with the server's certificate chain loaded; ``verify_mode = ssl.CERT_REQUIRED`` and a CA for mutual
            TLS). A client that fails the handshake never reaches the handler. NATS: the TLS context of the NATS
            connection.
        nats_options, peer_timeout: NATS only, as for ``connect``.
        timeout: NATS only: seconds allowed to reach the NATS server.

    Returns:
        A started ``Server``; ``server.address`` is the bound URL.

    Raises:
        ValueError: a bad address.
        OSError: the address is in use (a live server holds the Unix socket), or a non-socket file is at the
            Unix path (it is never deleted), or the bind failed.
    """
    addr = _socket_address(address, ssl)
    tls = ssl
    kwargs = session_kwargs(
        codec_kwargs(framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion),
        "responder",
    )
    loop = asyncio.get_running_loop()
    budgets = ConnectionBudgets(auth_timeout=auth_timeout, frame_timeout=frame_timeout, idle_timeout=idle_timeout)
    result = Server(addr, max_connections=max_connections, budgets=budgets, keyed=keyring is not None)
    if addr.is_nats:
        await _nats.listen(
            result,
            addr,
            kwargs,
            handler,
            timeout=timeout,
            nats_options=nats_options,
            peer_timeout=peer_timeout,
            tls=tls,
        )
        return result
    kind: TransportType = "unix" if addr.scheme == "unix" else "tcp"

    class _ServerProtocol(RpcProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            if result._full():
                self.abort()
                return
            if kind == "tcp":
                _set_nodelay(transport)
            result._accepted(self, kind, handler)

    def factory() -> RpcProtocol:
        return _ServerProtocol(new_codec(kwargs), loop)

    server: asyncio.AbstractServer
    inode: tuple[int, int] | None = None
    if addr.scheme == "unix":
        assert addr.path is not None
        path = addr.path
        _prepare_unix_path(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            # Before listen() nobody can connect, so tightening the mode now closes the window.
            os.chmod(path, 0o600)
            st = os.lstat(path)
            inode = (st.st_dev, st.st_ino)
            result._unix_inode = inode
            server = await loop.create_unix_server(factory, sock=sock, backlog=backlog)
        except BaseException:
            sock.close()
            if inode is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            raise
        result._server = server
    else:
        assert addr.host is not None
        assert addr.port is not None
        server = await loop.create_server(factory, addr.host, addr.port, backlog=backlog, ssl=tls)
        sockets = server.sockets
        port = int(sockets[0].getsockname()[1]) if sockets else addr.port
        result._server = server
        result._address = Address("tcp", addr.host, port)
    return result
