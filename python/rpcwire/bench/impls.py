"""Client-side connections for each implementation, and the endpoints that open them.

An :class:`Endpoint` is one setup (implementation, transport, framing, compression, encryption):
for unix/tcp it starts one server child process (`rpcwire.bench._peer`) and opens connections
to it; for nats it starts a nats-server first, and the child serves a subject on it; for stdio
every connection is its own spawned child; for memory both ends live in this process (there is
no process boundary to cross). A :class:`Conn` exposes ``prepare`` (turn a
dict into what this implementation sends, done before timing), ``send``, ``receive``,
``ack_count`` and ``close``; for rpcwire ``send``/``receive`` are the transport's own bound
methods, so the harness adds no call layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
from typing import Any

from ._peer import KEY_ENV, codec_kwargs
from .baselines import (
    FloorProtocol,
    NdjsonProtocol,
    NdjsonSubprocessProtocol,
    codec_override,
    transport_server,
)

__all__ = ("Conn", "Endpoint", "Setup", "kill_all_children", "process_cpu_s")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 3.0

#: Every child process started by the harness, so an interrupt can always reap them.
_CHILDREN: set[Any] = set()


def kill_all_children() -> None:
    """SIGKILL every child process (and its group) still alive; the last line of defence."""
    import signal

    for proc in list(_CHILDREN):
        pid = getattr(proc, "pid", None)
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(pid, signal.SIGKILL)
        _CHILDREN.discard(proc)


@dataclasses.dataclass(frozen=True)
class Setup:
    """The part of a case that needs its own server: everything but size and mode."""

    impl: str
    transport: str
    framing: str
    compression: str
    encrypted: bool


class Conn:
    """One client connection. Subclasses set `send` and `receive` as fast as they can."""

    send: Any
    receive: Any

    def prepare(self, msg: dict[str, Any]) -> Any:
        return msg

    def ack_count(self, reply: Any) -> int | None:
        if isinstance(reply, dict):
            result = reply.get("result")
            if isinstance(result, dict) and isinstance(result.get("count"), int):
                return int(result["count"])
        return None

    async def close(self) -> None:
        return None


class _TransportConn(Conn):
    """rpcwire and reference: an rpcwire Transport, its methods used directly."""

    def __init__(self, transport: Any, on_close: Any = None) -> None:
        self.t = transport
        self.send = transport.send
        self.receive = transport.receive
        self._on_close = on_close

    async def close(self) -> None:
        try:
            await self.t.close()
        finally:
            if self._on_close is not None:
                await self._on_close()


class _NdjsonConn(Conn):
    def __init__(self, proto: NdjsonProtocol, on_close: Any = None) -> None:
        self.proto = proto
        self.send = proto.send
        self.receive = proto.receive
        self._on_close = on_close
        if isinstance(proto, FloorProtocol):
            self.prepare = proto.prepare  # type: ignore[method-assign]

    def ack_count(self, reply: Any) -> int | None:
        if isinstance(reply, (bytes, bytearray)):  # the floor hands back raw lines
            import orjson

            reply = orjson.loads(reply)
        return super().ack_count(reply)

    async def close(self) -> None:
        self.proto.close()
        if self._on_close is not None:
            await self._on_close()


class _NatsConn(Conn):
    """The `nats` baseline, as a nats-py user writes it: ``orjson.dumps`` and one ``publish`` per message,
    ``nc.request`` for a round trip (``send`` starts it, ``receive`` awaits it). A throughput run's opener
    (``bench/expect``) is published with a reply subject, the messages after it without one."""

    def __init__(self, nc: Any, subject: str) -> None:
        import orjson

        self._nc = nc
        self._subject = subject
        self._loads = orjson.loads
        self._dumps = orjson.dumps
        self._call: Any = None
        self._expecting = False
        self._replies: asyncio.Queue[bytes] = asyncio.Queue()
        self._inbox = nc.new_inbox()

    async def start(self) -> None:
        async def on_reply(msg: Any) -> None:
            self._replies.put_nowait(msg.data)

        await self._nc.subscribe(self._inbox, cb=on_reply)
        await self._nc.flush()

    def prepare(self, msg: dict[str, Any]) -> Any:
        return msg.get("method") == "bench/expect", self._dumps(msg)

    async def send(self, prepared: Any) -> None:
        opener, data = prepared
        if opener:
            self._expecting = True
            await self._nc.publish(self._subject, data, reply=self._inbox)
        elif self._expecting:
            await self._nc.publish(self._subject, data)
        else:
            self._call = self._nc.request(self._subject, data, timeout=30)

    async def receive(self) -> Any:
        call, self._call = self._call, None
        if call is not None:
            return self._loads((await call).data)
        self._expecting = False
        return self._loads(await self._replies.get())

    async def close(self) -> None:
        await self._nc.close()


class _McpConn(Conn):
    def __init__(self, stack: contextlib.AsyncExitStack, read: Any, write: Any) -> None:
        from mcp.shared.message import SessionMessage
        from mcp.types import jsonrpc_message_adapter

        self._stack = stack
        self._read = read
        self._session_message = SessionMessage
        self._adapter = jsonrpc_message_adapter
        self.send = write.send

    def prepare(self, msg: dict[str, Any]) -> Any:
        return self._session_message(self._adapter.validate_python(msg))

    async def receive(self) -> Any:
        item = await self._read.receive()
        if isinstance(item, Exception):
            raise item
        return item

    def ack_count(self, reply: Any) -> int | None:
        result = getattr(getattr(reply, "message", None), "result", None)
        if isinstance(result, dict) and isinstance(result.get("count"), int):
            return int(result["count"])
        return None

    async def close(self) -> None:
        await self._stack.aclose()


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds process `pid` has used, all its threads, from Linux's per-thread scheduler statistics
    (nanoseconds); None where they cannot be read (another OS, the process gone)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as fh:
                total += int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


class Endpoint:
    """Opens connections for one :class:`Setup`; an async context manager that owns its children."""

    def __init__(
        self, setup: Setup, loop: str = "asyncio", key_hex: str | None = None, server_reads: str = "handle"
    ) -> None:
        self.setup = setup
        self.loop = loop
        self.server_reads = server_reads
        self.key_hex = key_hex
        self.address: str | None = None
        self._server: Any = None
        self._tmpdir: str | None = None
        self._conns: list[Conn] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._nats_node: Any = None

    def server_cpu_s(self) -> float | None:
        """CPU seconds the server process (unix and tcp: the one child serving every connection) has used (see
        :func:`process_cpu_s`); None where there is no such process."""
        proc = self._server
        if proc is None or proc.returncode is not None:
            return None
        return process_cpu_s(proc.pid)

    # -- helpers
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.key_hex is not None:
            env[KEY_ENV] = self.key_hex
        return env

    def _peer_argv(self, transport: str) -> list[str]:
        s = self.setup
        argv = [sys.executable, "-m", "rpcwire.bench._peer", "--impl", s.impl, "--transport", transport]
        argv += ["--framing", s.framing, "--compression", s.compression, "--loop", self.loop]
        argv += ["--reads", self.server_reads]
        if s.encrypted:
            argv.append("--encrypted")
        if self.address is not None:
            argv += ["--address", self.address]
        return argv

    def _codec(self) -> dict[str, Any]:
        s = self.setup
        if s.encrypted and self.key_hex is not None:
            os.environ.setdefault(KEY_ENV, self.key_hex)
        return codec_kwargs(s.framing, s.compression, s.encrypted)

    # -- lifecycle
    async def __aenter__(self) -> Endpoint:
        s = self.setup
        if s.transport == "nats":
            from .natsserver import start_node

            self._nats_node = await asyncio.get_running_loop().run_in_executor(None, start_node)
            self.address = f"{self._nats_node.url}/rpcwire.bench.{os.getpid()}"
            try:
                await self._start_server()
            except BaseException:
                self._stop_nats()
                raise
        if s.transport in ("unix", "tcp"):
            if s.transport == "unix":
                self._tmpdir = tempfile.mkdtemp(prefix="rpcwire-bench-")
                self.address = f"unix://{os.path.join(self._tmpdir, 'bench.sock')}"
            else:
                self.address = "tcp://127.0.0.1:0"
            await self._start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in reversed(self._conns):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), STOP_TIMEOUT + 2)
        self._conns.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._stop_server()
        finally:
            self._stop_nats()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _stop_nats(self) -> None:
        node, self._nats_node = self._nats_node, None
        if node is not None:
            node.stop()

    async def _start_server(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._peer_argv(self.setup.transport),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env(),
            start_new_session=True,
        )
        _CHILDREN.add(proc)
        self._server = proc
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except asyncio.TimeoutError:
            raise RuntimeError(f"bench server ({self.setup.impl}) did not start within {START_TIMEOUT:.0f} s") from None
        text = line.decode(errors="replace").strip()
        if not text.startswith("ADDRESS "):
            code = await _reap(proc)
            raise RuntimeError(f"bench server ({self.setup.impl}) failed to start (exit {code}): {text!r}")
        self.address = text.split(" ", 1)[1]

    async def _stop_server(self) -> None:
        proc = self._server
        if proc is None:
            return
        self._server = None
        if proc.stdin is not None:
            proc.stdin.close()
        await _reap(proc)

    # -- connections
    async def open(self) -> Conn:
        """A new connection (for stdio: a new child process)."""
        conn = await self._open()
        self._conns.append(conn)
        return conn

    async def close_conn(self, conn: Conn) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
        await conn.close()

    async def _open(self) -> Conn:
        s = self.setup
        if s.impl in ("rpcwire", "reference"):
            return await self._open_rpcwire()
        if s.impl in ("asyncio", "floor"):
            return await self._open_asyncio()
        if s.impl == "mcp":
            return await self._open_mcp()
        if s.impl == "nats":
            return await self._open_nats()
        raise ValueError(f"unknown implementation {s.impl!r}")

    async def _open_rpcwire(self) -> Conn:
        import rpcwire

        s = self.setup
        opts = self._codec()
        needed = {"memory": "memory_pair", "stdio": "spawn"}.get(s.transport, "connect")
        if not callable(getattr(rpcwire, needed, None)):
            raise RuntimeError(f"rpcwire.{needed} is not available in this build")
        with codec_override(s.impl):
            if s.transport == "memory":
                a, b = rpcwire.memory_pair(**opts)
                task = asyncio.get_running_loop().create_task(transport_server(self.server_reads)(b))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return _TransportConn(a)
            if s.transport == "stdio":
                stack = contextlib.AsyncExitStack()
                cm = rpcwire.spawn(self._peer_argv("stdio"), env=self._env(), **opts)
                child = await stack.enter_async_context(cm)
                entry = _Pid(child.pid)
                if entry is not None:
                    _CHILDREN.add(entry)

                async def stop() -> None:
                    _CHILDREN.discard(entry)
                    await stack.aclose()

                return _TransportConn(child, on_close=stop)
            assert self.address is not None
            t = await rpcwire.connect(self.address, **opts)
            return _TransportConn(t)

    async def _open_asyncio(self) -> Conn:
        s = self.setup
        loop = asyncio.get_running_loop()
        proto_class = FloorProtocol if s.impl == "floor" else NdjsonProtocol
        if s.transport == "stdio":
            transport, sub = await loop.subprocess_exec(
                lambda: NdjsonSubprocessProtocol(proto_class()),
                *self._peer_argv("stdio"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
                env=self._env(),
                start_new_session=True,
            )
            entry = _Pid(transport.get_pid())
            _CHILDREN.add(entry)

            async def stop() -> None:
                _CHILDREN.discard(entry)
                stdin = transport.get_pipe_transport(0)
                if stdin is not None:
                    stdin.close()
                try:
                    await asyncio.wait_for(asyncio.shield(sub.exited), STOP_TIMEOUT)
                except asyncio.TimeoutError:
                    transport.kill()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(sub.exited, STOP_TIMEOUT)
                transport.close()

            return _NdjsonConn(sub.inner, on_close=stop)
        assert self.address is not None
        if s.transport == "unix":
            _, proto = await loop.create_unix_connection(proto_class, self.address[len("unix://") :])
        else:
            host, _, port = self.address[len("tcp://") :].rpartition(":")
            transport2, proto = await loop.create_connection(proto_class, host.strip("[]"), int(port))
            sock = transport2.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _NdjsonConn(proto)

    async def _open_nats(self) -> Conn:
        import nats

        from .._address import parse_address

        assert self.address is not None
        addr = parse_address(self.address)
        assert addr.subject is not None
        conn = _NatsConn(await nats.connect(servers=list(addr.servers)), addr.subject)
        await conn.start()
        return conn

    async def _open_mcp(self) -> Conn:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        argv = self._peer_argv("stdio")
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=self._env())
        stack = contextlib.AsyncExitStack()
        # The SDK hands errlog to the child as its stderr, so it needs a real file descriptor.
        errlog = sys.stderr if _has_fileno(sys.stderr) else sys.__stderr__
        read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog or sys.stderr))
        return _McpConn(stack, read, write)


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


@dataclasses.dataclass(frozen=True)
class _Pid:
    pid: int


async def _reap(proc: Any) -> int | None:
    try:
        return int(await asyncio.wait_for(proc.wait(), STOP_TIMEOUT))
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        return None
    finally:
        _CHILDREN.discard(proc)
