"""``spawn()``: a child process's stdin/stdout as a transport; the child is owned from start to reaping."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, TypeAlias, cast

from ._errors import ConnectionClosed
from ._pipes import enlarge_pipe, tune_read_pipe
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

__all__ = ("ChildTransport", "StderrSink", "spawn")

logger = logging.getLogger("rpcwire")

#: Where a child's stderr goes: ``None`` (this process's stderr), ``subprocess.DEVNULL``, a file descriptor, a
#: binary or text file object, or a callable taking each chunk of bytes.
StderrSink: TypeAlias = int | IO[Any] | Callable[[bytes], object] | None

#: Bytes of the child's stderr kept for ``ChildTransport.stderr_tail`` when rpcwire drains it.
STDERR_TAIL = 8 * 2**10
#: Seconds ``close`` waits for the child after SIGKILL before it gives up with a warning (the MCP SDK's 2 s).
KILL_TIMEOUT = 2.0


class _ChildProtocol(asyncio.SubprocessProtocol):
    """Routes the child's pipes to the connection's ``RpcProtocol`` and its stderr to the sink."""

    def __init__(self, main: RpcProtocol, sink: Callable[[bytes], object] | None) -> None:
        self.main = main
        self.sink = sink
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.exited: asyncio.Future[None] = main._loop.create_future()
        self.transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's process transport is not a registered asyncio.SubprocessTransport subclass: no isinstance.
        transport = cast("asyncio.SubprocessTransport", transport)
        self.transport = transport
        stdin = transport.get_pipe_transport(0)
        stdout = transport.get_pipe_transport(1)
        assert stdin is not None
        assert stdout is not None
        self.main._attach_reader(stdout)
        self.main._set_writer(stdin)  # type: ignore[arg-type]
        tune_read_pipe(stdout)
        for pipe in (stdin, stdout):
            fileobj = pipe.get_extra_info("pipe")
            if fileobj is not None:
                enlarge_pipe(fileobj.fileno())

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        if fd == 1:
            self.main.data_received(data)
            return
        self.tail.append(data[-STDERR_TAIL:])
        self.tail_size += len(self.tail[-1])
        while self.tail_size - len(self.tail[0]) >= STDERR_TAIL:
            self.tail_size -= len(self.tail.popleft())
        if self.sink is not None:
            try:
                self.sink(data)
            except Exception:
                logger.exception("rpcwire: the child's stderr callback failed; dropping its output")
                self.sink = None

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        if fd == 1:
            self.main._read_lost(exc)
        elif fd == 0:
            self.main._write_lost(exc)

    def process_exited(self) -> None:
        # A child that has exited reads nothing more: sends end now, not when asyncio gets round to reporting
        # its stdin pipe lost (under load that came after a send that then vanished without an error).
        self.main._end_output()
        if not self.exited.done():
            self.exited.set_result(None)

    def pause_writing(self) -> None:
        self.main.pause_writing()

    def resume_writing(self) -> None:
        self.main.resume_writing()


class ChildTransport(Transport):
    """The transport ``spawn()`` gives (``transport_type == "spawn"``).

    Attributes:
        pid: the child's process id (also its process group id).
        argv: the command line.
    """

    def __init__(
        self,
        protocol: RpcProtocol,
        child: _ChildProtocol,
        argv: list[str],
        close_timeout: float,
        terminate_timeout: float,
    ) -> None:
        super().__init__(protocol, "spawn")
        self._child = child
        self.argv = argv
        assert child.transport is not None
        self._process = child.transport
        self.pid: int = self._process.get_pid()
        self._close_timeout = close_timeout
        self._terminate_timeout = terminate_timeout
        self._closing_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else f"exited {self.exit_code}"
        return f"<rpcwire.Transport spawn pid={self.pid} {self.argv[0]!r} {state}>"

    @property
    def exit_code(self) -> int | None:
        """The child's exit status once it exited (negative: killed by that signal), else None."""
        return self._process.get_returncode()

    @property
    def stderr_tail(self) -> bytes:
        """The last 8 KiB the child wrote to stderr, when rpcwire drains it (a callable or fd-less sink)."""
        return b"".join(self._child.tail)[-STDERR_TAIL:]

    async def wait(self) -> int:
        """Wait for the child to exit; return its exit status."""
        await asyncio.shield(self._child.exited)
        code = self.exit_code
        assert code is not None
        return code

    async def _closed_with_code(self, exc: ConnectionClosed) -> ConnectionClosed:
        # stdout's EOF usually comes a moment before the exit status: give it a short while.
        if self.exit_code is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._child.exited), 0.5)
        code = self.exit_code
        if code is None:
            return exc
        # The exit status can be known before asyncio delivers process_exited: sends end from here too.
        self._proto._end_output()
        err = ConnectionClosed(f"{exc} (child {self.pid} exited with status {code})", exit_code=code)
        err.__cause__ = exc.__cause__
        return err

    async def _receive_slow(self) -> Any:
        try:
            return await super()._receive_slow()
        except ConnectionClosed as exc:
            raise await self._closed_with_code(exc) from exc.__cause__

    async def _send_slow(self, msgs: Any) -> None:
        try:
            await super()._send_slow(msgs)
        except ConnectionClosed as exc:
            raise await self._closed_with_code(exc) from exc.__cause__

    async def close(self) -> None:
        """Flush what was sent, close the child's stdin and wait for it to exit; then SIGTERM its process
        group, then SIGKILL, each after its timeout; reap it. Idempotent; concurrent calls wait together."""
        if self._closing_task is None:
            self._closing_task = asyncio.get_running_loop().create_task(self._shutdown())
        # A cancelled caller (a timeout, an app shutting down) still waits for the shutdown, which every
        # timeout bounds: returning early would leave the child running if the loop stops next.
        cancelled = await _outlast_cancellation(self._closing_task)
        if cancelled is not None:
            raise cancelled
        self._closing_task.result()

    async def _shutdown(self) -> None:
        self._user_closed = True
        p = self._proto
        # Flush what was sent and close the child's stdin, but go on reading its stdout, dropping it: a child
        # blocked writing output nobody reads could otherwise never see its stdin end and exit by itself.
        await p.wait_established(p.close_timeout)
        p.close_write()
        p.start_handling(_drop)
        try:
            await self._reap()
        finally:
            p.abort()

    async def _reap(self) -> None:
        """Stdin is closed: give the child ``close_timeout`` to exit. A child that exits then is done with, and
        so are the processes it left running (its own business, as with the MCP SDK: a server may start a
        daemon on purpose). One that does not exit gets SIGTERM to its process group and
        ``terminate_timeout``; then, whatever the child itself did, any process of the group still running
        (a grandchild that ignores SIGTERM) gets SIGKILL with the child. The wait after SIGKILL is bounded
        (``KILL_TIMEOUT``): a process stuck in the kernel is logged and left, not waited for forever."""
        exited = self._child.exited
        await self._wait(exited, self._close_timeout)
        if not exited.done():
            logger.info("rpcwire: child %d did not exit; sending SIGTERM to its process group", self.pid)
            self._signal_group(signal.SIGTERM)
            await self._wait_group(exited, self._terminate_timeout)
            if not exited.done() or self._group_alive():
                logger.info("rpcwire: child %d's process group ignored SIGTERM; sending SIGKILL", self.pid)
                self._signal_group(signal.SIGKILL)
                await self._wait_group(exited, KILL_TIMEOUT)
                if not exited.done():
                    logger.warning(
                        "rpcwire: child %d did not exit %.1f s after SIGKILL; not waiting", self.pid, KILL_TIMEOUT
                    )
        self._process.close()

    @staticmethod
    async def _wait(fut: asyncio.Future[Any], timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), timeout)

    async def _wait_group(self, exited: asyncio.Future[Any], timeout: float) -> None:
        """Wait up to ``timeout`` for the child to exit and its group to empty."""
        deadline = asyncio.get_running_loop().time() + timeout
        await self._wait(exited, timeout)
        # Nothing signals a process group emptying: poll it.
        while self._group_alive() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    def _group_alive(self) -> bool:
        """True while a process of the child's group exists. (The kernel does not hand out a process group's
        id as a new pid while the group has members, so the id stays the child's group's.)"""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - a member we cannot signal: nothing more to do
            return False
        return True

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover - the child changed its group to one we cannot signal
            if self._process.get_returncode() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)


async def _outlast_cancellation(task: asyncio.Future[Any]) -> asyncio.CancelledError | None:
    """Wait for ``task`` (a bounded piece of work) to finish, however often the caller is cancelled meanwhile;
    the cancellation to re-raise then (the caller's own, so a cancel scope recognises it), else None."""
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:  # noqa: PERF203 - wait out bounded work, however often cancelled
            cancelled = exc
    return cancelled


def _drop(item: Any) -> None:
    """What a closing child still writes: read so it is not blocked, and dropped."""


def _stream_sink(stream: IO[Any]) -> Callable[[bytes], object]:
    text = isinstance(stream, io.TextIOBase) or hasattr(stream, "encoding")

    def write(data: bytes) -> None:
        try:
            stream.write(data.decode("utf-8", "replace") if text else data)
            stream.flush()
        except (OSError, ValueError):  # a closed sink: drop the output, never block the child
            pass

    return write


def _stderr_route(stderr: StderrSink) -> tuple[Any, Callable[[bytes], object] | None]:
    """``(what Popen gets for stderr, the callback rpcwire drains it into)``."""
    if stderr is None:
        return None, None  # inherit our fd 2: the child writes there directly, as the MCP SDK's children do
    if isinstance(stderr, int):
        return stderr, None  # an fd (or DEVNULL/STDOUT): the kernel takes it from there
    if callable(stderr):
        return subprocess.PIPE, stderr
    fileno = getattr(stderr, "fileno", None)
    if fileno is not None:
        try:
            fileno()
        except (OSError, ValueError):  # io.StringIO and friends: no descriptor
            pass
        else:
            if stderr.writable():
                return stderr, None
    return subprocess.PIPE, _stream_sink(stderr)


async def _open(
    argv: list[str],
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stderr: StderrSink,
    kwargs: dict[str, Any],
    close_timeout: float,
    terminate_timeout: float,
) -> ChildTransport:
    loop = asyncio.get_running_loop()
    main = RpcProtocol(new_codec(kwargs), loop)
    stderr_arg, sink = _stderr_route(stderr)
    child = _ChildProtocol(main, sink)
    spawning = loop.create_task(
        loop.subprocess_exec(
            lambda: child,
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_arg,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # its own process group, so close() can stop every process it started
        )
    )
    # Cancelled while spawning (a timeout, an app shutting down): the spawn is finished and the child stopped
    # (the usual shutdown, every step of it bounded) before the cancellation goes on, so no process is left.
    cancelled = await _outlast_cancellation(spawning)
    if cancelled is None:
        spawning.result()
        return ChildTransport(main, child, argv, close_timeout, terminate_timeout)
    if not spawning.cancelled() and spawning.exception() is None:
        transport = ChildTransport(main, child, argv, close_timeout, terminate_timeout)
        await _outlast_cancellation(asyncio.ensure_future(transport.close()))
    raise cancelled


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stderr: StderrSink = None,
    framing: str | None = None,
    compression: str | None = None,
    compress_min_size: int = 1024,
    keyring: Any = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
    close_timeout: float = 2.0,
    terminate_timeout: float = 2.0,
) -> Opening[ChildTransport]:
    """Start ``argv`` and talk to it over its stdin/stdout: ``async with rpcwire.spawn([...]) as t:``.

    The child runs in its own session and process group. Its stderr never blocks it: by default the child
    writes straight to this process's stderr (fd 2, inherited); ``stderr`` may instead name a file descriptor,
    a file object, ``subprocess.DEVNULL``, or a callable taking bytes. A callable, or a file object without a
    descriptor (``io.StringIO``), is fed by rpcwire draining a pipe as the child writes, and the last 8 KiB
    stay in ``t.stderr_tail``.

    When the child exits, ``receive`` (after the last message) and ``send`` raise ``ConnectionClosed`` with the
    exit status in ``exit_code``; ``t.exit_code`` and ``await t.wait()`` give it too.

    Closing (``async with`` exit or ``close()``): the sends already made are flushed, the child's stdin is
    closed and it gets ``close_timeout`` seconds to exit; then its process group gets SIGTERM and
    ``terminate_timeout`` seconds; then SIGKILL, and at most ``KILL_TIMEOUT`` seconds more. Once it came to
    SIGTERM, no process of the child's group outlives ``close``: one still running when the child has exited
    (a grandchild that ignores SIGTERM) gets SIGKILL too. A child that exits by itself when its stdin closes
    keeps the processes it started (the MCP SDK's policy too).

    Arguments:
        argv: the program and its arguments (no shell).
        cwd: the child's working directory.
        env: the child's whole environment (None: inherit ours).
        stderr: where the child's stderr goes (see above).
        framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion: the codec's
            arguments (default framing ``ndjson``, or ``length`` with compression or a keyring).
        close_timeout, terminate_timeout: seconds for the two polite steps of closing.

    Returns:
        An awaitable async context manager giving a ``ChildTransport`` (``transport_type == "spawn"``).

    Raises:
        OSError: the program could not be started (e.g. ``FileNotFoundError``).
        ValueError: ``argv`` is empty.
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("spawn() needs a program to run: argv is empty")
    kwargs = session_kwargs(
        codec_kwargs(framing, compression, compress_min_size, keyring, max_frame_size, max_batch, max_expansion),
        "initiator",
    )
    return Opening(lambda: _open(args, cwd, env, stderr, kwargs, close_timeout, terminate_timeout))
