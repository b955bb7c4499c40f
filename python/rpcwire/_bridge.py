"""`rpcwire bridge` and `rpcwire connect`: unchanged stdio JSON-RPC/MCP peers over one socket.

```
stdio-only client <-stdio-> rpcwire connect ==== socket ==== rpcwire bridge <-stdio-> stdio server
                  (ndjson)                 (any framing, lz4/brotli,        (ndjson)
                                             AES-256-GCM with --key-file)
```

Both commands relay already-decoded messages (dicts, or lists for batches): the codec checks each
message once on the way in and re-frames it on the way out; nothing is re-validated or re-parsed.
A message one side sent that is not valid JSON-RPC cannot be forwarded: it is logged and, when
its request id could be recovered, answered locally with the JSON-RPC error (-32700/-32600), so
the sender does not wait forever. Diagnostics go to stderr through `logging`.

The bridge starts **one child per connection**: MCP sessions are stateful (``initialize``,
subscriptions, in-flight ids), so two clients sharing one server process would break each other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

import rpcwire

from ._errors import ConnectionClosed, ProtocolError, RpcWireError

__all__ = ("add_bridge_arguments", "add_connect_arguments", "relay", "run_bridge", "run_connect")

log = logging.getLogger("rpcwire.bridge")

_BRIDGE_EPILOG = """\
Each connection gets its own child process (MCP sessions are stateful: a child shared by two
clients would see two `initialize` calls). The child speaks NDJSON on its stdin/stdout, exactly as
an MCP stdio server does; its stderr is passed through to ours. Put `--` before COMMAND so its own
options are not read as ours.

example:
  rpcwire keygen --out key.json
  rpcwire bridge tcp://0.0.0.0:9000 --key-file key.json --compression lz4 -- python server.py
"""

_CONNECT_EPILOG = """\
Joins this process's stdin/stdout (NDJSON, as MCP stdio specifies) to an rpcwire socket, so a
stdio-only MCP client can use a server run by `rpcwire bridge`: configure the client's server
command as `rpcwire connect ADDRESS [codec options]`. Exits when stdin ends or the socket closes.

example:
  rpcwire connect tcp://server.example:9000 --key-file key.json --compression lz4
"""


def add_bridge_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `rpcwire bridge LISTEN_ADDRESS [codec options] -- COMMAND ARGS...` to `parser`."""
    from .cli import add_codec_options

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _BRIDGE_EPILOG
    parser.add_argument("listen", metavar="LISTEN_ADDRESS", help="unix:///path or tcp://host:port to listen on")
    add_codec_options(parser)
    parser.add_argument("command", nargs="+", metavar="COMMAND", help="the stdio server to start per connection")


def add_connect_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `rpcwire connect ADDRESS [codec options]` to `parser`."""
    from .cli import add_codec_options

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _CONNECT_EPILOG
    parser.add_argument("address", metavar="ADDRESS", help="unix:///path or tcp://host:port of the bridge")
    add_codec_options(parser)
    parser.add_argument(
        "--retry",
        action="store_true",
        help="retry the connection with backoff (0.1 s start, 10 s cap, 5 attempts) instead of failing at once",
    )


async def _pump(src: Any, dst: Any, name: str) -> None:
    """Copy messages from `src` to `dst` until `src` ends. Bad items are answered or dropped."""
    while True:
        try:
            msg = await src.receive()
        except ConnectionClosed:
            log.debug("%s: end of input", name)
            return
        if isinstance(msg, ProtocolError):
            log.warning("%s: dropped an invalid message: %s", name, msg)
            if msg.id is not None:
                # The sender is waiting for this id: answer it instead of the peer that never sees it.
                with contextlib.suppress(ConnectionClosed):
                    await src.send(msg.to_error())
            continue
        try:
            await dst.send(msg)
        except ConnectionClosed:
            log.debug("%s: the receiving side is gone", name)
            return


async def relay(a: Any, b: Any, *, names: tuple[str, str] = ("a->b", "b->a")) -> None:
    """Copy messages both ways between two open rpcwire transports until either side ends.

    When one direction ends (EOF, a fatal wire error, the peer gone) the other is stopped too;
    closing the transports is the caller's job.

    Arguments:
        a, b: open transports.
        names: labels for the two directions in log messages.
    """
    tasks = [
        asyncio.ensure_future(_pump(a, b, names[0])),
        asyncio.ensure_future(_pump(b, a, names[1])),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, RpcWireError):
            log.error("connection ended by a wire error: %r", result)
        elif isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def bridge(listen: str, command: Sequence[str], codec_options: dict[str, Any]) -> None:
    """Serve `command` (a stdio server) on `listen`, one child per connection, until SIGINT/SIGTERM."""
    argv = list(command)
    env = dict(os.environ)

    async def handle(conn: Any) -> None:
        log.info("connection: starting %s", argv[0])
        try:
            child = await rpcwire.spawn(argv, env=env, framing="ndjson")
        except OSError as exc:
            log.error("cannot start %s: %s", argv[0], exc)
            return
        try:
            await relay(conn, child, names=("socket->child", "child->socket"))
        finally:
            await child.close()
        log.info("connection closed")

    server = await rpcwire.serve(handle, listen, **codec_options)
    log.warning("bridge: serving %s on %s (one child per connection)", " ".join(argv), server.address)
    try:
        await _until_signalled()
    finally:
        server.close()
        await server.wait_closed()


async def connect(address: str, codec_options: dict[str, Any], *, retry: bool = False) -> None:
    """Relay this process's stdin/stdout (NDJSON) to `address` until either side ends."""
    options = dict(codec_options)
    if retry:
        options["reconnect"] = True
    async with rpcwire.stdio(framing="ndjson") as local:
        remote = await rpcwire.connect(address, **options)
        try:
            await relay(local, remote, names=("stdin->socket", "socket->stdout"))
        finally:
            await remote.close()


def run_bridge(args: argparse.Namespace) -> int:
    """`rpcwire bridge`: returns the exit status (0 after SIGINT/SIGTERM, 1 if it cannot listen)."""
    from .cli import codec_options

    options = codec_options(args)
    try:
        asyncio.run(bridge(args.listen, args.command, options))
    except OSError as exc:
        log.error("bridge: cannot listen on %s: %s", args.listen, exc)
        return 1
    return 0


def run_connect(args: argparse.Namespace) -> int:
    """`rpcwire connect`: returns the exit status (0 on EOF from either side, 1 if it cannot connect)."""
    from .cli import codec_options

    options = codec_options(args)
    try:
        asyncio.run(connect(args.address, options, retry=args.retry))
    except OSError as exc:
        log.error("connect: cannot reach %s: %s", args.address, exc)
        return 1
    except RpcWireError as exc:
        log.error("connect: %s: %r", args.address, exc)
        return 1
    return 0
