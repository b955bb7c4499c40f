"""The far end of every bench connection, run as a child process.

``python -m rpcwire.bench._peer --impl IMPL --transport stdio|unix|tcp|nats [codec options]``

- stdio: serves this process's stdin/stdout until EOF.
- unix/tcp/nats: listens on (nats: subscribes to) ``--address``, writes ``ADDRESS <url>`` as one
  line on stdout once it accepts connections, and serves until its stdin reaches EOF (the parent
  closes it, or dies).

The AES key, when encrypting, comes in the environment variable ``RPCWIRE_BENCH_KEY`` (hex),
never on the command line. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from .._compat import Runner
from .baselines import FloorProtocol, NdjsonProtocol, ServerLogic, codec_override, transport_server
from .config import SERVER_READS

log = logging.getLogger("rpcwire.bench.peer")

KEY_ENV = "RPCWIRE_BENCH_KEY"


def codec_kwargs(framing: str, compression: str, encrypted: bool) -> dict[str, Any]:
    """The codec keyword arguments of one bench setup (the key comes from ``RPCWIRE_BENCH_KEY``)."""
    import rpcwire

    kwargs: dict[str, Any] = {"framing": framing, "max_frame_size": 64 * 2**20}
    if compression != "none":
        kwargs["compression"] = compression
    if encrypted:
        key = bytes.fromhex(os.environ[KEY_ENV])
        keyring_cls: Any = rpcwire.Keyring
        kwargs["keyring"] = keyring_cls({1: key}, active=1)
    return kwargs


async def _stdin_eof() -> None:
    """Wait until the parent closes our stdin (or dies)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    class _Watch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            if not done.done():
                done.set_result(None)

    transport, _ = await loop.connect_read_pipe(_Watch, os.fdopen(0, "rb", closefd=False))
    try:
        await done
    finally:
        transport.close()


def _announce(address: str) -> None:
    os.write(1, f"ADDRESS {address}\n".encode())


async def _serve_rpcwire(args: argparse.Namespace) -> None:
    import rpcwire

    opts = codec_kwargs(args.framing, args.compression, args.encrypted)
    serve = transport_server(args.reads)

    with codec_override(args.impl):
        if args.transport == "stdio":
            async with rpcwire.stdio(**opts) as t:
                await serve(t)
            return
        server = await rpcwire.serve(serve, args.address, **opts)
        async with server:
            _announce(str(server.address))
            await _stdin_eof()


async def _serve_asyncio(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    proto_class = FloorProtocol if args.impl == "floor" else NdjsonProtocol
    if args.transport == "stdio":
        proto = proto_class(ServerLogic())
        wt, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(1, "wb", closefd=False))
        proto.writer = wt
        await loop.connect_read_pipe(lambda: proto, os.fdopen(0, "rb", closefd=False))
        await proto.closed
        wt.close()
        return
    if args.address.startswith("unix://"):
        path = args.address[len("unix://") :]
        server = await loop.create_unix_server(lambda: proto_class(ServerLogic()), path)
    else:
        hostport = args.address[len("tcp://") :]
        host, _, port = hostport.rpartition(":")
        server = await loop.create_server(lambda: proto_class(ServerLogic()), host, int(port))
        for sock in server.sockets:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            host, port = sock.getsockname()[:2]
        args.address = f"tcp://{host}:{port}"
    async with server:
        _announce(args.address)
        await _stdin_eof()


async def _serve_nats(args: argparse.Namespace) -> None:
    """The `nats` baseline's server, as a nats-py user writes it: a queue subscription with a callback,
    ``orjson.loads`` each message, ``publish`` (``msg.respond``) the answer to its reply subject."""
    import nats
    import orjson

    from .._address import parse_address

    addr = parse_address(args.address)
    assert addr.subject is not None
    nc = await nats.connect(servers=list(addr.servers))
    logic = ServerLogic()
    loads, dumps = orjson.loads, orjson.dumps
    expect_reply = ""

    async def on_message(m: Any) -> None:
        nonlocal expect_reply
        msg = loads(m.data)
        if m.reply and msg.get("method") == "bench/expect":
            expect_reply = m.reply  # the throughput run's answer goes there after the last message
        out = logic.on_message(msg)
        if out is not None:
            await nc.publish(m.reply or expect_reply, dumps(out))

    await nc.subscribe(addr.subject, queue=addr.subject, cb=on_message)
    _announce(args.address)
    await _stdin_eof()
    await nc.close()


async def _serve_mcp(args: argparse.Namespace) -> None:
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage
    from mcp.types import JSONRPCResponse

    from . import workloads

    expect = 0
    counted = 0
    expect_id: Any = None
    async with stdio_server() as (read, write):
        async for item in read:
            if isinstance(item, Exception):
                continue
            msg = item.message
            if expect > 0:
                expect -= 1
                if expect == 0:
                    await write.send(
                        SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=expect_id, result={"count": counted}))
                    )
                continue
            method = getattr(msg, "method", None)
            if method is None or not hasattr(msg, "id"):
                continue
            params = getattr(msg, "params", None) or {}
            if method == "bench/expect":
                expect = counted = int(params["count"])
                expect_id = msg.id
                continue
            size = int((params.get("_meta") or {}).get("benchSize", 150))
            answer = workloads.response(size, msg.id)
            await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=msg.id, result=answer["result"])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rpcwire.bench._peer")
    parser.add_argument("--impl", choices=("rpcwire", "reference", "asyncio", "floor", "mcp", "nats"), required=True)
    parser.add_argument("--transport", choices=("stdio", "unix", "tcp", "nats"), required=True)
    parser.add_argument("--address", default="tcp://127.0.0.1:0")
    parser.add_argument("--framing", default="ndjson")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--encrypted", action="store_true")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--reads", choices=SERVER_READS, default="handle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="bench peer: %(levelname)s: %(message)s")
    serve = {
        "rpcwire": _serve_rpcwire,
        "reference": _serve_rpcwire,
        "asyncio": _serve_asyncio,
        "floor": _serve_asyncio,
        "mcp": _serve_mcp,
        "nats": _serve_nats,
    }
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with Runner(loop_factory=factory) as runner:
            runner.run(serve[args.impl](args))
    except (KeyboardInterrupt, BrokenPipeError, ConnectionError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
