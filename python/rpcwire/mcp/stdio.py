"""The stdio drop-ins: ``stdio_server`` and ``stdio_client`` (the SDK's contracts) and ``run_stdio``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

import anyio
from mcp.client.stdio import StdioServerParameters, get_default_environment

import rpcwire

from .._errors import ConnectionClosed
from .._stdio import backed_by_fd, claim_std_stream
from .servers import _lowlevel
from .streams import MessageReader, MessageWriter, streams

if TYPE_CHECKING:
    pass

logger = logging.getLogger("rpcwire.mcp")


__all__ = (
    "STDIO_MAX_FRAME_SIZE",
    "run_stdio",
    "stdio_client",
    "stdio_server",
)


#: ``max_frame_size`` of the stdio entry points: the SDK's stdio transports have no limit, and a local child
#: (or parent) has no way around one, so a drop-in must not be stricter than what it replaces there. Buffers
#: grow with the bytes that arrive, so the limit costs nothing until a message that big comes. Sockets keep
#: rpcwire's 16 MiB default (a network peer); every entry point takes ``max_frame_size``.
STDIO_MAX_FRAME_SIZE = 1 << 30

# ---------------------------------------------------------------------------------------------
# stdio
# ---------------------------------------------------------------------------------------------


class _TextFileWire:
    """Lines of ``anyio.AsyncFile[str]`` objects, for ``stdio_server(stdin, stdout)`` with explicit (or
    replaced ``sys``) streams."""

    def __init__(self, stdin: Any, stdout: Any, max_frame_size: int) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._codec = rpcwire.Codec(framing="ndjson", max_frame_size=max_frame_size)
        self._pending: list[Any] = []
        self._eof = False
        self._writing = anyio.Lock()

    def deliver_locally(self, item: Any) -> None:
        self._pending.append(item)

    def end_reading(self) -> None:
        self._eof = True

    async def receive(self) -> Any:
        while not self._pending:
            if self._eof:
                raise ConnectionClosed
            line = await self._stdin.readline()
            if not line:
                self._eof = True
                self._pending.extend(self._codec.feed(b""))
                continue
            # Universal newlines, as the SDK's TextIOWrapper reads them.
            self._pending.extend(self._codec.feed(line.rstrip("\r\n").encode("utf-8", "replace") + b"\n"))
        return self._pending.pop(0)

    async def send(self, msg: Any) -> None:
        data = self._codec.encode(msg)
        # One at a time, in the order the sends came: each write runs in a worker thread, and two of them at
        # once could land out of order or interleaved.
        async with self._writing:
            await self._stdout.write(data.decode("utf-8"))
            await self._stdout.flush()

    async def close(self) -> None:
        return None


@asynccontextmanager
async def stdio_server(
    stdin: anyio.AsyncFile[str] | None = None,
    stdout: anyio.AsyncFile[str] | None = None,
    *,
    max_frame_size: int = STDIO_MAX_FRAME_SIZE,
) -> AsyncIterator[tuple[MessageReader, MessageWriter]]:
    """Serve MCP over this process's stdin and stdout, as ``mcp.server.stdio.stdio_server`` does.

    NDJSON, UTF-8. While serving, ``rpcwire.stdio()`` points fd 0 at the null device and fd 1 at
    stderr, so a stray ``print`` cannot corrupt the wire; messages already sent are flushed before
    the context exits. With explicit ``stdin``/``stdout`` async text files nothing is claimed and
    each message is written and flushed on its own (the SDK's behaviour for explicit streams).

    Arguments:
        stdin: optional text file to read from instead of fd 0.
        stdout: optional text file to write to instead of fd 1.
        max_frame_size: the largest message accepted or sent (default 1 GiB: the SDK has no limit).

    Yields:
        ``(read_stream, write_stream)`` for ``Server.run``.
    """
    if not _on_asyncio():
        sdk_stdio_server = _sdk_original("mcp.server.stdio", "stdio_server")
        async with sdk_stdio_server(stdin, stdout) as pair:
            yield pair
        return
    if stdin is None and stdout is None and backed_by_fd(sys.stdin, 0) and backed_by_fd(sys.stdout, 1):
        async with rpcwire.stdio(framing="ndjson", max_frame_size=max_frame_size) as wire:
            yield streams(wire)
        return
    # One explicit stream, or a replaced sys.stdin/sys.stdout: line by line through text files, the
    # standard stream that is left claimed and guarded as stdio() guards both.
    releases: list[Callable[[], None]] = []
    try:
        if stdin is None:
            buffer, release = claim_std_stream(0, sys.stdin, "rb")
            releases.append(release)
            stdin = anyio.wrap_file(_UnownedText(buffer, encoding="utf-8", errors="replace"))
        if stdout is None:
            buffer, release = claim_std_stream(1, sys.stdout, "wb")
            releases.append(release)
            stdout = anyio.wrap_file(_UnownedText(buffer, encoding="utf-8"))
        yield streams(_TextFileWire(stdin, stdout, max_frame_size))
    finally:
        for release in reversed(releases):
            release()


class _UnownedText(io.TextIOWrapper):
    """A text layer over a buffer that is not ours to close (a sys stream's, or a claimed duplicate)."""

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.detach()


def _sdk_original(module_name: str, name: str) -> Any:
    """The SDK's own ``name`` from ``module_name``: a swap that puts rpcwire's in its place (as
    ``make sdk-conformance`` does) keeps the original as ``_sdk_<name>``."""
    module = importlib.import_module(module_name)
    return getattr(module, f"_sdk_{name}", getattr(module, name))


def _on_asyncio() -> bool:
    """True under asyncio. rpcwire's transports are asyncio protocols; under anyio's trio backend the MCP
    entry points hand over to the SDK's own stdio transports, which is what trio users have today."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _ErrlogSink:
    """Child stderr -> ``errlog`` (the SDK hands ``errlog`` to the child; rpcwire drains it)."""

    def __init__(self, errlog: TextIO) -> None:
        self._errlog = errlog

    def __call__(self, data: bytes) -> None:
        try:
            self._errlog.write(data.decode("utf-8", "replace"))
            self._errlog.flush()
        except (OSError, ValueError):  # errlog closed: drop, never block the child
            pass


@asynccontextmanager
async def stdio_client(
    server: StdioServerParameters, errlog: TextIO = sys.stderr, *, max_frame_size: int = STDIO_MAX_FRAME_SIZE
) -> AsyncIterator[tuple[MessageReader, MessageWriter]]:
    """Spawn an MCP server and talk to it over its stdin/stdout, as ``mcp.client.stdio.stdio_client`` does.

    The child gets ``get_default_environment() | server.env``, ``server.cwd``, its own session
    (process group), and its stderr goes to ``errlog``. On exit: messages already sent are
    flushed, the child's stdin is closed, then after 2 s the group gets SIGTERM, after 2 s more
    SIGKILL. A server ``encoding`` other than UTF-8, or anyio's trio backend, is handed to the SDK's
    own ``stdio_client``.

    Arguments:
        server: the command, arguments, environment and working directory.
        errlog: where the child's stderr goes.
        max_frame_size: the largest message accepted or sent (default 1 GiB: the SDK has no limit).

    Yields:
        ``(read_stream, write_stream)`` for ``ClientSession``.

    Raises:
        OSError: the server process could not be spawned.
    """
    if server.encoding.replace("-", "").replace("_", "").lower() != "utf8" or not _on_asyncio():
        sdk_stdio_client = _sdk_original("mcp.client.stdio", "stdio_client")
        async with sdk_stdio_client(server, errlog) as pair:
            yield pair
        return
    env = get_default_environment() | (server.env or {})
    options: dict[str, Any] = {"cwd": server.cwd, "env": env, "framing": "ndjson", "max_frame_size": max_frame_size}
    if errlog is not sys.stderr:
        options["stderr"] = _ErrlogSink(errlog)
    async with rpcwire.spawn([server.command, *server.args], **options) as wire:
        yield streams(wire)


async def run_stdio(server: Any, *, max_frame_size: int = STDIO_MAX_FRAME_SIZE) -> None:
    """Run an SDK ``Server``, ``MCPServer`` or FastMCP server on rpcwire's stdio until stdin closes.

    The drop-in for ``MCPServer.run("stdio")`` / ``FastMCP.run("stdio")`` (without FastMCP's banner).
    ``max_frame_size``: the largest message accepted or sent (default 1 GiB, as ``stdio_server``).
    """
    low, lifespan = _lowlevel(server)
    async with contextlib.AsyncExitStack() as stack:
        if lifespan is not None:
            from fastmcp.server.context import reset_transport, set_transport

            token = set_transport("stdio")
            stack.callback(reset_transport, token)
            await stack.enter_async_context(lifespan())
        async with stdio_server(max_frame_size=max_frame_size) as (read, write):
            await low.run(read, write, low.create_initialization_options())
