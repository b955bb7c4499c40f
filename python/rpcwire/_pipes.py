"""File-descriptor plumbing shared by ``stdio()`` and ``spawn()``: pipe sizes, socket detection, adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import stat
import sys

from ._protocol import ReadPipeProtocol, RpcProtocol, WritePipeProtocol

__all__ = (
    "PIPE_SIZE",
    "FileReadTransport",
    "FileWriteTransport",
    "WriteSocketProtocol",
    "attach_reader",
    "attach_writer",
    "enlarge_pipe",
    "is_socket",
    "pollable",
    "same_file",
    "set_blocking_quietly",
    "tune_read_pipe",
)

logger = logging.getLogger("rpcwire")

#: Pipe capacity asked for with F_SETPIPE_SZ (Linux; capped by /proc/sys/fs/pipe-max-size). A 64 KiB pipe
#: costs a context switch per 64 KiB; 1 MiB lets coalesced writes leave in one call.
PIPE_SIZE = 2**20
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the stdlib only from Python 3.10 on Linux


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> int | None:
    """Ask the kernel for a ``size``-byte pipe buffer on ``fd``; return the size obtained, or None.

    Only pipes have a settable size; sockets, ttys and files are left alone. When ``size`` exceeds the
    system maximum for this user, the largest allowed size is tried instead. Never raises.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        import fcntl

        setpipe = getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ)
        try:
            return int(fcntl.fcntl(fd, setpipe, size))
        except PermissionError:
            with open("/proc/sys/fs/pipe-max-size", encoding="ascii") as f:
                cap = int(f.read())
            return int(fcntl.fcntl(fd, setpipe, min(size, cap)))
    except (OSError, ValueError) as exc:
        logger.debug("rpcwire: could not enlarge pipe fd %d: %r", fd, exc)
        return None


#: Most a pipe read asks for. asyncio's pipe transports read up to 256 KiB into a fresh bytes object each
#: time: above glibc's mmap threshold (128 KiB), so every read, even of one 150 B message, costs an mmap,
#: an mremap (the shrink to the bytes read), a munmap and a page fault. 64 KiB comes from the heap.
PIPE_READ_SIZE = 64 * 2**10


def tune_read_pipe(transport: asyncio.BaseTransport) -> None:
    """Make an asyncio read-pipe transport read at most :data:`PIPE_READ_SIZE` at a time (uvloop's: no-op)."""
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = PIPE_READ_SIZE  # type: ignore[attr-defined]


def is_socket(fd: int) -> bool:
    """True when ``fd`` is a socket (a socketpair as Node/libuv hands to children, or a real socket)."""
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def pollable(fd: int) -> bool:
    """True when the event loop can watch ``fd``. Regular files, ``/dev/null`` and other character devices
    that are not ttys are not pollable (epoll refuses them with EPERM): ``docker run`` without ``-i``, ``nohup``,
    systemd units and CI runners hand a server such a stdin. Those are read and written in a thread instead.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return True  # let the loop report it
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return False
    epoll = getattr(select, "epoll", None)
    if epoll is None:  # not Linux: the loop's own check decides
        return True
    poller = epoll()
    try:
        poller.register(fd, select.EPOLLIN)
    except PermissionError:
        return False
    except OSError:
        return True
    finally:
        poller.close()
    return True


def same_file(a: int, b: int) -> bool:
    """True when two descriptors refer to the same open file (e.g. one socket on fd 0 and fd 1)."""
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


class WriteSocketProtocol(WritePipeProtocol, asyncio.Protocol):
    """The write half of ``stdio()`` when stdout is a socket: writes go out, anything read is ignored.

    A socket cannot go through ``connect_write_pipe`` on Linux: that transport watches its fd for
    readability to notice a vanished reader, and a socket is readable whenever its peer sends data.
    """

    def data_received(self, data: bytes) -> None:
        logger.debug("rpcwire: ignoring %d bytes read from the stdout socket", len(data))

    def eof_received(self) -> bool:
        return True  # keep writing: the peer only shut down its own sending side


def _socket_from(fd: int) -> socket.socket:
    sock = socket.socket(fileno=fd)
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError(f"fd {fd} is a {sock.type.name} socket; rpcwire needs a stream")
    return sock


async def attach_reader(loop: asyncio.AbstractEventLoop, main: RpcProtocol, fd: int) -> asyncio.BaseTransport:
    """Read ``fd`` (which the transport then owns and closes) into ``main``: a pipe, tty or socket."""
    if is_socket(fd):
        sock_transport, _ = await loop.create_connection(lambda: ReadPipeProtocol(main), sock=_socket_from(fd))
        return sock_transport
    if not pollable(fd):
        return FileReadTransport(loop, ReadPipeProtocol(main), fd)
    pipe = os.fdopen(fd, "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: ReadPipeProtocol(main), pipe)
    except BaseException:
        pipe.close()
        raise
    tune_read_pipe(transport)
    return transport


async def attach_writer(loop: asyncio.AbstractEventLoop, main: RpcProtocol, fd: int) -> asyncio.BaseTransport:
    """Write ``main``'s output to ``fd`` (which the transport then owns and closes): a pipe, tty or socket."""
    if is_socket(fd):
        sock_transport, _ = await loop.create_connection(lambda: WriteSocketProtocol(main), sock=_socket_from(fd))
        return sock_transport
    if not pollable(fd):
        return FileWriteTransport(loop, WritePipeProtocol(main), fd)
    pipe = os.fdopen(fd, "wb", buffering=0)
    try:
        transport, _ = await loop.connect_write_pipe(lambda: WritePipeProtocol(main), pipe)
    except BaseException:
        pipe.close()
        raise
    return transport


def set_blocking_quietly(fd: int, blocking: bool) -> None:
    """``os.set_blocking`` that ignores a closed or odd descriptor."""
    with contextlib.suppress(OSError):
        os.set_blocking(fd, blocking)


class FileReadTransport(asyncio.ReadTransport):
    """Reads a descriptor the loop cannot poll (``server < requests.jsonl``, ``/dev/null``) in a thread."""

    CHUNK = 256 * 2**10

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: ReadPipeProtocol, fd: int) -> None:
        super().__init__()
        import threading

        self._loop = loop
        self._protocol = protocol
        self._fd = fd
        self._closing = False
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._read, name=f"rpcwire-read-fd{fd}", daemon=True)
        protocol.connection_made(self)
        self._thread.start()

    def _read(self) -> None:
        exc: BaseException | None = None
        try:
            while not self._closing:
                self._running.wait()
                if self._closing:
                    break
                data = os.read(self._fd, self.CHUNK)
                if not data:
                    break
                self._loop.call_soon_threadsafe(self._deliver, data)
        except OSError as e:
            exc = e
        with contextlib.suppress(RuntimeError):  # the loop closed under us
            self._loop.call_soon_threadsafe(self._finish, exc)

    def _deliver(self, data: bytes) -> None:
        if not self._closing:
            self._protocol.data_received(data)

    def _finish(self, exc: BaseException | None) -> None:
        if not self._closing:
            self._protocol.eof_received()
        self._closing = True
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._protocol.connection_lost(exc)

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return self._running.is_set() and not self._closing

    def pause_reading(self) -> None:
        self._running.clear()

    def resume_reading(self) -> None:
        self._running.set()

    def close(self) -> None:
        self._closing = True
        self._running.set()

    def abort(self) -> None:
        self.close()


class FileWriteTransport(asyncio.WriteTransport):
    """Writes to a descriptor the loop cannot poll (``server > replies.jsonl``, ``/dev/null``): blocking writes,
    which such a file never holds up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: WritePipeProtocol, fd: int) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._fd = fd
        self._closing = False
        protocol.connection_made(self)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._lose(exc)

    def _lose(self, exc: BaseException | None) -> None:
        if self._fd < 0:
            return
        self._closing = True
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._lose(None)

    def abort(self) -> None:
        self._lose(None)

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)
