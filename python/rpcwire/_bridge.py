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
It starts it when the connection's first message arrives, not when the connection is accepted:
with a key file that message has been authenticated, so a peer without the key never makes the
bridge start a process (and is closed after `--auth-timeout`). JSON-RPC and LSP clients speak
first, so nothing waits for this.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

import rpcwire

from ._address import parse_address
from ._errors import ConnectionClosed, ProtocolError, RpcWireError
from ._sockets import DEFAULT_AUTH_TIMEOUT, DEFAULT_FRAME_TIMEOUT, DEFAULT_MAX_CONNECTIONS

__all__ = ("add_bridge_arguments", "add_connect_arguments", "relay", "run_bridge", "run_connect", "server_budgets")

log = logging.getLogger("rpcwire.bridge")

_BRIDGE_EPILOG = """\
Each connection gets its own child process (MCP sessions are stateful: a child shared by two
clients would see two `initialize` calls), started when the connection's first message arrives
(authenticated, with --key-file). The child speaks NDJSON on its stdin/stdout, exactly as an MCP
stdio server does (--child-framing content-length for an LSP server); its stderr is passed through
to ours. Put `--` before COMMAND so its own options are not read as ours.

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
    from ._options import add_codec_options, add_nats_options, add_tls_options, int_at_least, seconds

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _BRIDGE_EPILOG
    parser.add_argument(
        "listen",
        metavar="LISTEN_ADDRESS",
        help="unix:///path or tcp://host:port to listen on, or nats://host:port/SUBJECT to serve on NATS",
    )
    add_codec_options(parser)
    add_tls_options(parser, server=True)
    add_nats_options(parser)
    parser.add_argument(
        "--child-framing",
        choices=LOCAL_FRAMINGS,
        default=None,
        help="how the child frames its stdin/stdout: ndjson (MCP) or content-length (LSP servers); "
        "default content-length when --framing is content-length, else ndjson",
    )
    limits = parser.add_argument_group("connection budgets (0 turns one off)")
    limits.add_argument(
        "--max-connections",
        type=int_at_least(0),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections (and so children) at once; more are closed at once (default {DEFAULT_MAX_CONNECTIONS})",
    )
    limits.add_argument(
        "--auth-timeout",
        type=seconds,
        default=DEFAULT_AUTH_TIMEOUT,
        metavar="SECONDS",
        help=f"with --key-file: close a connection not authenticated by then (default {DEFAULT_AUTH_TIMEOUT:g})",
    )
    limits.add_argument(
        "--frame-timeout",
        type=seconds,
        default=DEFAULT_FRAME_TIMEOUT,
        metavar="SECONDS",
        help=f"close a connection whose frame takes longer to arrive (default {DEFAULT_FRAME_TIMEOUT:g})",
    )
    limits.add_argument(
        "--idle-timeout",
        type=seconds,
        default=0,
        metavar="SECONDS",
        help="close a connection with no traffic for this long (default 0: never)",
    )
    parser.add_argument("command", nargs="+", metavar="COMMAND", help="the stdio server to start per connection")


def add_connect_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `rpcwire connect ADDRESS [codec options]` to `parser`."""
    from ._options import add_codec_options, add_nats_options, add_tls_options

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _CONNECT_EPILOG
    parser.add_argument(
        "address", metavar="ADDRESS", help="unix:///path, tcp://host:port or nats://host:port/SUBJECT of the bridge"
    )
    add_codec_options(parser)
    add_tls_options(parser, server=False)
    add_nats_options(parser)
    parser.add_argument(
        "--stdio-framing",
        choices=LOCAL_FRAMINGS,
        default=None,
        help="how this process's stdin/stdout are framed: ndjson (MCP) or content-length (LSP clients); "
        "default content-length when --framing is content-length, else ndjson",
    )
    parser.add_argument(
        "--retry",
        action="store_true",
        help="retry the connection with backoff (0.1 s start, 10 s cap, 5 attempts) instead of failing at once",
    )


#: Framings of the stdio side (the bridge's child, `connect`'s own stdin/stdout): text protocols, no envelope.
LOCAL_FRAMINGS = ("ndjson", "content-length")


def local_framing(given: str | None, codec_options: dict[str, Any]) -> str:
    """The stdio side's framing: as given, else content-length for an LSP-style socket, else ndjson (MCP)."""
    if given is not None:
        return given
    return "content-length" if codec_options.get("framing") == "content-length" else "ndjson"


#: Seconds `relay` keeps relaying a server's answers after its client's end of input.
DRAIN_TIMEOUT = 10.0


def server_budgets(args: argparse.Namespace) -> dict[str, Any]:
    """The ``serve`` keyword arguments for the connection budgets given on the command line (0: off)."""
    return {
        "max_connections": args.max_connections or None,
        "auth_timeout": args.auth_timeout or None,
        "frame_timeout": args.frame_timeout or None,
        "idle_timeout": args.idle_timeout or None,
    }


async def _forward(msg: Any, src: Any, dst: Any, name: str) -> bool:
    """Send one item from `src` on to `dst`; a bad item is answered or dropped. False once `dst` is gone."""
    if isinstance(msg, ProtocolError):
        log.warning("%s: dropped an invalid message: %s", name, msg)
        if msg.id is not None:
            # The sender is waiting for this id: answer it instead of the peer that never sees it.
            with contextlib.suppress(ConnectionClosed):
                await src.send(msg.to_error())
        return True
    try:
        await dst.send(msg)
    except ConnectionClosed:
        log.debug("%s: the receiving side is gone", name)
        return False
    return True


async def _pump(src: Any, dst: Any, name: str, first: Any = None) -> bool:
    """Copy messages from `src` to `dst` (`first`, if given, then what `src` receives) until `src` ends.

    Returns True when `src` reached its end of input, False when `dst` went away.
    """
    if first is not None and not await _forward(first, src, dst, name):
        return False
    while True:
        try:
            msg = await src.receive()
        except ConnectionClosed as exc:
            if "before any reply" in str(exc):
                log.warning("%s: %s", name, exc)
            else:
                log.debug("%s: end of input", name)
            return True
        if not await _forward(msg, src, dst, name):
            return False


async def relay(
    a: Any,
    b: Any,
    *,
    names: tuple[str, str] = ("a->b", "b->a"),
    first: Any = None,
    drain_timeout: float = DRAIN_TIMEOUT,
) -> None:
    """Copy messages both ways between two open rpcwire transports until either side ends.

    `a` is the side that asks (a client, or the socket in front of a server). When `a` ends its input,
    `b` is half-closed (it reads EOF: a child's stdin closes, a socket gets `write_eof`) and what `b`
    still sends back is relayed for up to `drain_timeout` seconds, until `b` ends too: answers already
    in flight at the client's EOF are delivered, not dropped. When `b` ends first, or either side
    fails, the other direction is stopped at once. Closing the transports is the caller's job.

    Arguments:
        a, b: open transports.
        names: labels for the two directions in log messages.
        first: an item already received from `a`, forwarded to `b` before anything else.
        drain_timeout: how long `b` may take to finish after `a`'s end of input.
    """
    forward = asyncio.ensure_future(_pump(a, b, names[0], first))
    back = asyncio.ensure_future(_pump(b, a, names[1]))
    tasks = [forward, back]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if forward.done() and not forward.cancelled() and forward.exception() is None and forward.result():
            await b._proto.wait_established(b._proto.close_timeout)
            b._proto.close_write()
            await asyncio.wait([back], timeout=drain_timeout)
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


async def bridge(
    listen: str,
    command: Sequence[str],
    codec_options: dict[str, Any],
    budgets: dict[str, Any] | None = None,
    child_framing: str = "ndjson",
) -> None:
    """Serve `command` (a stdio server) on `listen`, one child per connection, until SIGINT/SIGTERM.

    Each connection's child starts when its first message arrives (authenticated, with a keyring):
    a connection that sends nothing, or nothing that authenticates, starts no process.
    """
    argv = list(command)
    env = dict(os.environ)

    async def handle(conn: Any) -> None:
        try:
            first = await conn.receive()
        except ConnectionClosed:
            log.debug("connection closed before its first message: no child started")
            return
        log.info("connection: starting %s", argv[0])
        try:
            child = await rpcwire.spawn(argv, env=env, framing=child_framing)
        except OSError as exc:
            log.error("cannot start %s: %s", argv[0], exc)
            return
        try:
            await relay(conn, child, names=("socket->child", "child->socket"), first=first)
        finally:
            await child.close()
        log.info("connection closed")

    server = await rpcwire.serve(handle, listen, **codec_options, **(budgets or {}))
    log.warning("bridge: serving %s on %s (one child per connection)", " ".join(argv), server.address)
    try:
        await _until_signalled()
    finally:
        server.close()
        await server.wait_closed()


async def connect(
    address: str, codec_options: dict[str, Any], *, retry: bool = False, stdio_framing: str = "ndjson"
) -> None:
    """Relay this process's stdin/stdout (NDJSON, or `stdio_framing`) to `address` until either side ends."""
    options = dict(codec_options)
    if retry:
        options["reconnect"] = True
    async with rpcwire.stdio(framing=stdio_framing) as local:
        remote = await rpcwire.connect(address, **options)
        try:
            await relay(local, remote, names=("stdin->socket", "socket->stdout"))
        finally:
            await remote.close()


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def run_bridge(args: argparse.Namespace) -> int:
    """`rpcwire bridge`: returns the exit status (0 after SIGINT/SIGTERM, 1 if it cannot listen)."""
    from ._options import connection_options

    options = connection_options(args, "LISTEN_ADDRESS", args.listen, server=True)
    address = parse_address(args.listen)
    unprotected = options.get("keyring") is None and options.get("ssl") is None
    if (
        address.is_nats
        and options.get("keyring") is None
        and not all(_loopback(hostport.rpartition(":")[0].strip("[]")) for hostport in address.nats_hosts)
    ):
        log.warning(
            "bridge: serving %s on %s without --key-file: anyone who may publish to that subject can run it (NATS "
            "authorization aside), and messages are not sealed end to end",
            args.command[0],
            address,
        )
    if address.scheme == "tcp" and not _loopback(address.host) and unprotected:
        log.warning(
            "bridge: serving %s on %s without --key-file: anyone who can reach this address can run it, and the "
            "traffic is plaintext",
            args.command[0],
            address,
        )
    try:
        child = local_framing(args.child_framing, options)
        asyncio.run(bridge(args.listen, args.command, options, server_budgets(args), child))
    except OSError as exc:
        log.error("bridge: cannot listen on %s: %s", args.listen, exc)
        return 1
    return 0


def run_connect(args: argparse.Namespace) -> int:
    """`rpcwire connect`: returns the exit status (0 on EOF from either side, 1 if it cannot connect)."""
    from ._options import connection_options

    options = connection_options(args, "ADDRESS", args.address, server=False)
    try:
        stdio = local_framing(args.stdio_framing, options)
        asyncio.run(connect(args.address, options, retry=args.retry, stdio_framing=stdio))
    except OSError as exc:
        log.error("connect: cannot reach %s: %s", args.address, exc)
        return 1
    except RpcWireError as exc:
        log.error("connect: %s: %r", args.address, exc)
        return 1
    return 0
