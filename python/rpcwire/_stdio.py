"""``stdio()``: this process's stdin/stdout as a transport, with the wire guarded from stray output."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from ._pipes import attach_reader, attach_writer, enlarge_pipe, is_socket, same_file, set_blocking_quietly
from ._protocol import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_EXPANSION,
    DEFAULT_MAX_FRAME_SIZE,
    RpcProtocol,
    codec_kwargs,
    new_codec,
    session_kwargs,
)
from ._transport import Opening, Transport

__all__ = ("StdioTransport", "claim_std_stream", "stdio")

logger = logging.getLogger("rpcwire")


#: The standard descriptors a guarding ``stdio()`` or ``rpcwire.mcp.stdio_server`` has claimed in this process.
_claimed: set[int] = set()
_claims_lock = threading.Lock()


def _claim(*fds: int) -> None:
    """Claim fds 0/1 for one transport, or raise RuntimeError: two transports on one stdin would each get
    half of its lines, and two on one stdout would interleave their frames."""
    with _claims_lock:
        for fd in fds:
            if fd in _claimed:
                raise RuntimeError(f"another stdio() or stdio_server() in this process has already claimed fd {fd}")
        _claimed.update(fds)


def _unclaim(*fds: int) -> None:
    with _claims_lock:
        _claimed.difference_update(fds)


def backed_by_fd(stream: Any, fd: int) -> bool:
    """True when ``stream`` (``sys.stdin``/``sys.stdout``) still writes to or reads from ``fd`` itself."""
    try:
        return bool(stream.buffer.fileno() == fd)
    except (AttributeError, OSError, ValueError):
        return False


def claim_std_stream(fd: int, stream: Any, mode: str) -> tuple[Any, Callable[[], None]]:
    """One standard stream for a transport that reads or writes it through a file object, guarded as
    ``stdio()`` guards both: fd ``fd`` is pointed at the null device (fd 0) or stderr (fd 1) and the wire is
    served from a private duplicate, given back by the returned ``release``. A replaced ``sys.stdin`` or
    ``sys.stdout`` (not backed by its descriptor) is served in place, unclaimed, as the MCP SDK does.

    Returns:
        ``(binary file, release)``.

    Raises:
        RuntimeError: another transport of this process has claimed ``fd``.
    """
    if not backed_by_fd(stream, fd):
        return stream.buffer, lambda: None
    _claim(fd)
    try:
        private = dup_above_std(fd)
    except OSError as exc:
        logger.warning("rpcwire: cannot guard fd %d (%r); serving it in place", fd, exc)
        return stream.buffer, lambda: _unclaim(fd)
    if not _divert(fd):
        os.close(private)
        return stream.buffer, lambda: _unclaim(fd)

    def release() -> None:
        _give_back(private, fd)
        _unclaim(fd)

    # closefd=False: a worker thread may still be blocked on the descriptor after the transport exits; it
    # must not be closed and reused under it (the MCP SDK keeps it open for the same reason).
    return os.fdopen(private, mode, closefd=False), release


def dup_above_std(fd: int) -> int:
    """A duplicate of ``fd`` numbered 3 or more (close-on-exec): with fd 2 closed (a server started with
    ``2>&-``), a plain ``dup`` would land on 2, and the guard would then point fd 1 at a copy of stdin."""
    import fcntl  # POSIX, as the rest of this module

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


def _flush_stdout() -> None:
    """Write out what Python's and C's stdio buffered for fd 1, to wherever fd 1 points now. C's matters too:
    native code that wrote with printf while fd 1 was stderr (fully buffered on a pipe) would otherwise have
    that text flushed onto the wire at exit, after fd 1 is the wire again."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    flush_c_stdio()


def _give_back(saved: int, fd: int) -> None:
    """Point ``fd`` at the wire again (fd 1: once what was buffered for its diversion went there); a failed
    restore is logged, never turned into a crash at exit."""
    if fd == 1:
        _flush_stdout()
    try:
        os.dup2(saved, fd)
    except OSError as exc:
        logger.warning("rpcwire: could not give fd %d back: %r", fd, exc)


def _open_diversion(fd: int) -> int:
    """A descriptor for ``fd`` to point at while guarded: the null device for stdin; stderr for stdout, or the
    null device when stderr is unusable."""
    if fd == 0:
        return os.open(os.devnull, os.O_RDONLY)
    # Python leaves sys.__stderr__ None when fd 2 was closed at start-up: fd 2 may since have been reused for
    # anything (the event loop's epoll), so it is no place for stray output.
    if sys.__stderr__ is not None:
        try:
            return os.dup(2)
        except OSError:
            pass
    return os.open(os.devnull, os.O_WRONLY)


def _divert(fd: int) -> bool:
    """Point ``fd`` at its diversion (fd 1: once what was buffered for the wire went there); False (logged) when
    that cannot be done."""
    if fd == 1:
        _flush_stdout()
    try:
        diversion = _open_diversion(fd)
        try:
            os.dup2(diversion, fd)
        finally:
            os.close(diversion)
    except OSError as exc:
        logger.warning("rpcwire: cannot guard fd %d (%r); serving it in place", fd, exc)
        return False
    return True


def flush_c_stdio() -> None:
    """``fflush(NULL)``: write out every C stdio buffer of this process. Never raises."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.fflush(None)
    except (OSError, AttributeError, ImportError):  # pragma: no cover - no C library to speak of
        pass


class _Fds:
    """The descriptors ``stdio()`` moved, and how to put them back."""

    def __init__(self, guard: bool) -> None:
        self.guard = guard
        # Saved copies of fd 0 and fd 1 (the wire), restored on close when guarding.
        self.saved_in = dup_above_std(0)
        self.saved_out = dup_above_std(1)
        self.was_blocking = (os.get_blocking(0), os.get_blocking(1))
        self.restored = False

    def divert(self) -> None:
        """fd 0 <- /dev/null, fd 1 <- fd 2: a stray ``print`` or ``input`` cannot touch the wire. Best effort,
        as the MCP SDK's claim: an unusable stderr diverts fd 1 to the null device, and a diversion that cannot
        be made at all leaves that descriptor as it is (logged) rather than refusing to serve."""
        _divert(0)
        _divert(1)

    def restore(self) -> None:
        if self.restored:
            return
        self.restored = True
        # asyncio made the wire's file descriptions non-blocking; a parent shell sharing them expects them back.
        set_blocking_quietly(self.saved_in, self.was_blocking[0])
        set_blocking_quietly(self.saved_out, self.was_blocking[1])
        if self.guard:
            _give_back(self.saved_in, 0)
            _give_back(self.saved_out, 1)
            _unclaim(0, 1)
        os.close(self.saved_in)
        os.close(self.saved_out)


class StdioTransport(Transport):
    """The transport ``stdio()`` gives (``transport_type == "stdio"``); closing it gives fds 0 and 1 back."""

    def __init__(self, protocol: RpcProtocol, fds: _Fds) -> None:
        super().__init__(protocol, "stdio")
        self._fds = fds

    async def close(self) -> None:
        """Flush the sends already made, close the wire and put fds 0 and 1 back. Idempotent."""
        try:
            await super().close()
        finally:
            self._fds.restore()


async def _open(kwargs: dict[str, Any], guard: bool) -> StdioTransport:
    loop = asyncio.get_running_loop()
    if guard:
        _claim(0, 1)
    try:
        fds = _Fds(guard)
    except BaseException:
        if guard:
            _unclaim(0, 1)
        raise
    wire_in = dup_above_std(fds.saved_in)
    wire_out = dup_above_std(fds.saved_out)
    try:
        if guard:
            fds.divert()
        enlarge_pipe(wire_in)
        enlarge_pipe(wire_out)
        main = RpcProtocol(new_codec(kwargs), loop)
        if is_socket(wire_in) and same_file(wire_in, wire_out):
            # One socket on both fds (a socketpair from a Node/libuv parent): one bidirectional transport.
            os.close(wire_out)
            wire_out = -1
            await loop.create_connection(lambda: main, sock=socket.socket(fileno=wire_in))
        else:
            await attach_reader(loop, main, wire_in)
            wire_in = -1  # owned by the read transport now
            await attach_writer(loop, main, wire_out)
    except BaseException:
        for fd in (wire_in, wire_out):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        fds.restore()
        raise
    return StdioTransport(main, fds)


def stdio(
    *,
    framing: str | None = None,
    compression: str | None = None,
    compress_min_size: int = 1024,
    keyring: Any = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
    guard: bool = True,
) -> Opening[StdioTransport]:
    """This process's stdin and stdout as a transport: ``async with rpcwire.stdio() as t:``.

    While it is open (``guard=True``, the default) fd 1 points at stderr and fd 0 at the null device, so a
    stray ``print`` (from this code or a library) goes to stderr instead of corrupting the wire, and nothing
    else can read the wire's input. Closing the transport puts both back.

    Pipes are enlarged to 1 MiB where the OS allows (Linux ``F_SETPIPE_SZ``). stdin and stdout may be pipes,
    sockets (including one socketpair on both, as Node/libuv parents give), ttys or regular files.

    At stdin EOF ``receive`` reports ``ConnectionClosed`` after the last message; the write side stays open, so
    replies to requests still being handled can be sent, and ``close`` flushes them all before it returns.

    Arguments:
        framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion: the codec's
            arguments. The default framing is ``ndjson`` (what MCP's stdio transport specifies), or ``length``
            with compression or a keyring.
        guard: divert fds 0 and 1 while serving (see above).

    Returns:
        An awaitable async context manager giving a ``Transport`` (``transport_type == "stdio"``).

    Raises:
        RuntimeError: (on entering) another guarding ``stdio()`` or ``rpcwire.mcp.stdio_server`` of this
            process is open: one stdin cannot feed two transports.
    """
    kwargs = session_kwargs(
        codec_kwargs(framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion),
        "responder",
    )
    return Opening(lambda: _open(kwargs, guard))
