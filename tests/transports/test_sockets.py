"""connect/serve over Unix and TCP sockets (both loops): round trips, many clients, big messages, dead peers,
reconnect, and fatal stream errors."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import rpcwire
from rpcwire import _protocol

from ._helpers import echo_handler, request
from .conftest import HAS_IPV6


@pytest.fixture(params=["unix", "tcp"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sock_dir() -> Iterator[str]:
    # short path: AF_UNIX paths are limited to ~107 bytes
    with tempfile.TemporaryDirectory(prefix="rpcw") as d:
        yield d


def address_for(kind: str, sock_dir: str) -> str:
    return f"unix://{sock_dir}/s.sock" if kind == "unix" else "tcp://127.0.0.1:0"


@asynccontextmanager
async def echo_server(address: str, **kwargs: Any) -> AsyncIterator[rpcwire.Server]:
    server = await rpcwire.serve(echo_handler, address, **kwargs)
    async with server:
        yield server


def test_round_trip(run: Any, kind: str, sock_dir: str) -> None:
    async def main() -> None:
        async with echo_server(address_for(kind, sock_dir)) as server:
            assert server.address.startswith(f"{kind}://")
            t = await rpcwire.connect(server.address)
            assert t.transport_type == kind
            assert t.is_connected
            await t.send(request(1, hello="world"))
            assert await t.receive() == {"jsonrpc": "2.0", "id": 1, "result": {"hello": "world"}}
            await t.send_many([request(2), request(3)])
            assert [(await t.receive())["id"] for _ in range(2)] == [2, 3]
            stats = t.stats
            assert stats.messages_out == 3
            assert stats.messages_in == 3
            assert stats.bytes_out > 0
            assert stats.bytes_in > 0
            await t.close()
            assert not t.is_connected

    run(main())


CODEC_CASES = [
    pytest.param({}, id="ndjson"),
    pytest.param({"framing": "length"}, id="length"),
    pytest.param({"framing": "content-length"}, id="content-length"),
    pytest.param({"compression": "lz4", "compress_min_size": 64}, id="lz4"),
    pytest.param({"keyring": "generate"}, id="aes"),
    pytest.param({"keyring": "generate", "compression": "lz4", "compress_min_size": 64}, id="lz4-aes"),
]


@pytest.mark.parametrize("codec", CODEC_CASES)
def test_many_clients_nothing_lost_or_reordered(run: Any, kind: str, sock_dir: str, codec: dict[str, Any]) -> None:
    clients, per_client = 20, 2000

    async def main() -> None:
        kwargs = dict(codec)
        server_kwargs: dict[str, Any] = {}
        if kwargs.get("keyring") == "generate":
            kwargs["keyring"] = rpcwire.Keyring.generate()
            server_kwargs["keyring"] = kwargs["keyring"]
        if "compression" in kwargs:
            server_kwargs["compression"] = kwargs["compression"]
        async with echo_server(address_for(kind, sock_dir), **server_kwargs) as server:

            async def client(c: int) -> list[int]:
                t = await rpcwire.connect(server.address, **kwargs)
                got: list[int] = []

                async def reader() -> None:
                    for _ in range(per_client):
                        msg = await t.receive()
                        assert isinstance(msg, dict), msg
                        assert msg["result"]["c"] == c
                        got.append(msg["id"])

                r = asyncio.create_task(reader())
                for i in range(per_client):
                    await t.send(request(i, c=c, pad="p" * 100))
                await r
                await t.close()
                return got

            results = await asyncio.gather(*(client(c) for c in range(clients)))
            for got in results:
                assert got == list(range(per_client))

    run(main())


def echo(msg: Any) -> Any:
    """``echo_handler`` as a plain function for ``Transport.handle``."""
    if isinstance(msg, rpcwire.ProtocolError):
        return msg.to_error()
    return {"jsonrpc": "2.0", "id": msg["id"], "result": msg.get("params")} if "id" in msg else None


@pytest.mark.parametrize("codec", [{}, {"compression": "lz4"}], ids=["plain", "lz4"])
def test_handle_serves_many_clients(run: Any, kind: str, sock_dir: str, codec: dict[str, Any]) -> None:
    clients, per_client = 8, 2000

    async def main() -> None:
        server = await rpcwire.serve(lambda t: t.handle(echo), address_for(kind, sock_dir), **codec)
        async with server:

            async def take(t: rpcwire.Transport) -> list[Any]:
                return [await t.receive() for _ in range(per_client)]

            async def client(c: int) -> list[int]:
                t = await rpcwire.connect(server.address, **codec)
                await t.send(b'{"jsonrpc": "2.0", "id": -1, "method": ')  # a bad message is answered too
                bad = await t.receive()
                assert bad["error"]["code"] == -32700
                reader = asyncio.create_task(take(t))
                for i in range(per_client):
                    await t.send(request(i, c=c, pad="p" * 100))
                got = await reader
                await t.close()
                assert all(m["result"]["c"] == c for m in got)
                return [m["id"] for m in got]

            for got in await asyncio.gather(*(client(c) for c in range(clients))):
                assert got == list(range(per_client))

    run(main())


def test_twenty_mib_message(run: Any, kind: str, sock_dir: str) -> None:
    async def main() -> None:
        limit = 64 * 2**20
        async with echo_server(address_for(kind, sock_dir), max_frame_size=limit) as server:
            t = await rpcwire.connect(server.address, framing="length", max_frame_size=limit)
            blob = "z" * (20 * 2**20)
            await t.send(request(7, blob=blob))
            reply = await t.receive()
            assert reply["id"] == 7
            assert reply["result"]["blob"] == blob
            await t.close()

    run(main())


def test_protocol_error_item_is_returned_and_stream_goes_on(run: Any, kind: str, sock_dir: str) -> None:
    async def main() -> None:
        received: list[Any] = []
        done = asyncio.Event()

        async def handler(t: rpcwire.Transport) -> None:
            async for msg in t:
                received.append(msg)
                if isinstance(msg, rpcwire.ProtocolError):
                    await t.send(msg.to_error())
            done.set()

        async with await rpcwire.serve(handler, address_for(kind, sock_dir)) as server:
            t = await rpcwire.connect(server.address)
            # raw bytes under the transport: a line that is not JSON, then a good message
            wt = t._proto._wt
            assert wt is not None
            wt.write(b"{this is not json}\n")
            await t.send(request(5))
            reply = await t.receive()
            assert reply["error"]["code"] == -32700
            await t.close()
            await done.wait()
            assert isinstance(received[0], rpcwire.ParseError)
            assert received[1] == request(5)

    run(main())


def test_peer_dies_mid_frame_is_a_closed_connection(run: Any, kind: str, sock_dir: str) -> None:
    """A client writes half a length frame and vanishes: the server's receive raises ConnectionClosed (the loop
    every user writes handles it), with the FramingError that says how much was buffered as its cause; nothing
    hangs."""

    async def main() -> None:
        outcome: asyncio.Future[list[BaseException]] = asyncio.get_running_loop().create_future()

        async def handler(t: rpcwire.Transport) -> None:
            errors: list[BaseException] = []
            for _ in range(2):
                try:
                    await t.receive()
                except rpcwire.RpcWireError as exc:  # noqa: PERF203
                    errors.append(exc)
            outcome.set_result(errors)

        async with await rpcwire.serve(handler, address_for(kind, sock_dir), framing="length") as server:
            addr = rpcwire._address.parse_address(server.address)
            if addr.scheme == "unix":
                _reader, writer = await asyncio.open_unix_connection(addr.path)
            else:
                _reader, writer = await asyncio.open_connection(addr.host, addr.port)
            writer.write((1000).to_bytes(4, "big") + b'{"jsonrpc": "2.0", "method": "cut')
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            errors = await outcome
            assert isinstance(errors[0], rpcwire.ConnectionClosed)
            assert "middle of a frame" in str(errors[0])
            cause = errors[0].__cause__
            assert isinstance(cause, rpcwire.FramingError)
            assert "37 bytes buffered" in str(cause)
            assert isinstance(errors[1], rpcwire.ConnectionClosed)
            assert errors[1].__cause__ is cause

    run(main())


def test_client_sees_server_vanish_mid_frame(run: Any, kind: str, sock_dir: str) -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(10)
            writer.write(b'{"jsonrpc": "2.0", "id": 1, "res')
            await writer.drain()
            writer.close()

        if kind == "unix":
            path = f"{sock_dir}/raw.sock"
            raw = await asyncio.start_unix_server(handler, path)
            address = f"unix://{path}"
        else:
            raw = await asyncio.start_server(handler, "127.0.0.1", 0)
            address = f"tcp://127.0.0.1:{raw.sockets[0].getsockname()[1]}"
        async with raw:
            t = await rpcwire.connect(address)
            await t.send(request(1))
            with pytest.raises(rpcwire.ConnectionClosed) as caught:
                await t.receive()
            assert isinstance(caught.value.__cause__, rpcwire.FramingError)
            with pytest.raises(rpcwire.ConnectionClosed):
                await t.receive()
            assert [m async for m in t] == []
            await t.close()

    run(main())


def test_frame_too_large_is_fatal_once(run: Any, kind: str, sock_dir: str) -> None:
    async def main() -> None:
        seen: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        async def handler(t: rpcwire.Transport) -> None:
            out: list[Any] = []
            try:
                async for m in t:
                    out.append(m)  # noqa: PERF401 - the items before the error must be kept
            except rpcwire.FrameTooLarge as exc:
                out.append(exc)
            out.append(t.is_connected)
            seen.set_result(out)

        async with await rpcwire.serve(handler, address_for(kind, sock_dir), max_frame_size=1000) as server:
            t = await rpcwire.connect(server.address, framing="length")
            await t.send(request(1))
            await t.send(request(2, blob="b" * 5000))
            out = await seen
            assert out[0] == request(1)
            assert isinstance(out[1], rpcwire.FrameTooLarge)
            assert out[2] is False
            # the server closed the connection: the client's stream ends
            assert [m async for m in t] == []
            await t.close()

    run(main())


def test_server_close_ends_client_streams(run: Any, kind: str, sock_dir: str) -> None:
    async def main() -> None:
        server = await rpcwire.serve(echo_handler, address_for(kind, sock_dir))
        t = await rpcwire.connect(server.address)
        await t.send(request(1))
        assert (await t.receive())["id"] == 1
        server.close()
        await server.wait_closed()
        with pytest.raises(rpcwire.ConnectionClosed):
            await t.receive()
        await t.close()

    run(main())


def test_reconnect_after_server_restarts(run: Any, kind: str, sock_dir: str) -> None:
    async def main() -> None:
        address = address_for(kind, sock_dir)
        server = await rpcwire.serve(echo_handler, address)
        address = server.address  # the real port, reused for the restart
        t = await rpcwire.connect(address, reconnect=True, retry_initial=0.02, retry_max=0.2, retry_attempts=20)
        await t.send(request(1))
        assert (await t.receive())["id"] == 1
        server.close()
        await server.wait_closed()
        # the drop is reported, not hidden
        with pytest.raises(rpcwire.ConnectionClosed):
            await t.receive()
        assert not t.is_connected
        server = await rpcwire.serve(echo_handler, address)
        async with server:
            await t.send(request(2))  # re-dials transparently
            assert (await t.receive())["id"] == 2
            assert t.is_connected
            assert t.stats.messages_in == 2
            await t.close()

    run(main())


def test_reconnect_retries_initial_dial(run: Any, sock_dir: str) -> None:
    async def main() -> None:
        address = f"unix://{sock_dir}/late.sock"

        async def start_later() -> rpcwire.Server:
            await asyncio.sleep(0.15)
            return await rpcwire.serve(echo_handler, address)

        starter = asyncio.create_task(start_later())
        t = await rpcwire.connect(address, reconnect=True, retry_initial=0.05, retry_max=0.1, retry_attempts=30)
        async with await starter:
            await t.send(request(3))
            assert (await t.receive())["id"] == 3
            await t.close()

    run(main())


def test_connect_without_server_fails(run: Any, sock_dir: str) -> None:
    async def main() -> None:
        with pytest.raises(OSError):
            await rpcwire.connect(f"unix://{sock_dir}/nobody.sock")
        with pytest.raises(OSError):
            await rpcwire.connect(
                f"unix://{sock_dir}/nobody.sock", reconnect=True, retry_attempts=2, retry_initial=0.01
            )

    run(main())


# ---------------------------------------------------------------------------- Unix specifics
def test_unix_socket_mode_and_cleanup(run: Any, sock_dir: str) -> None:
    async def main() -> None:
        path = f"{sock_dir}/m.sock"
        old = os.umask(0)
        try:
            server = await rpcwire.serve(echo_handler, f"unix://{path}")
        finally:
            os.umask(old)
        async with server:
            assert os.stat(path).st_mode & 0o777 == 0o600
        assert not os.path.exists(path)  # noqa: ASYNC240

    run(main())


def test_unix_stale_socket_replaced_live_refused_file_refused(run: Any, sock_dir: str) -> None:
    async def main() -> None:
        path = f"{sock_dir}/st.sock"
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays, nobody listens: stale
        async with await rpcwire.serve(echo_handler, f"unix://{path}") as server:
            with pytest.raises(OSError, match="address in use"):
                await rpcwire.serve(echo_handler, f"unix://{path}")
            t = await rpcwire.connect(server.address)
            await t.send(request(1))
            assert (await t.receive())["id"] == 1
            await t.close()
        with pytest.raises(OSError, match="not a socket"):
            await rpcwire.serve(echo_handler, f"unix://{regular}")

    regular = Path(sock_dir, "regular")
    regular.write_text("keep me")
    run(main())
    assert regular.read_text() == "keep me"


# ---------------------------------------------------------------------------- TCP specifics
def test_bare_port_means_loopback(run: Any) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, 0) as server:
            assert server.address.startswith("tcp://127.0.0.1:")
            port = int(server.address.rsplit(":", 1)[1])
            for address in (port, str(port), f":{port}"):
                t = await rpcwire.connect(address)
                assert t.get_extra_info("peername")[0] == "127.0.0.1"
                await t.send(request(1))
                assert (await t.receive())["id"] == 1
                await t.close()

    run(main())


def test_tcp_nodelay(run: Any) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, "tcp://127.0.0.1:0") as server:
            t = await rpcwire.connect(server.address)
            sock = t.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            await t.close()

    run(main())


@pytest.mark.skipif(not HAS_IPV6, reason="this machine has no IPv6 loopback")
def test_ipv6_loopback(run: Any) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, "tcp://[::1]:0") as server:
            assert server.address.startswith("tcp://[::1]:")
            t = await rpcwire.connect(server.address)
            assert t.get_extra_info("peername")[0] == "::1"
            await t.send(request(1))
            assert (await t.receive())["id"] == 1
            await t.close()

    run(main())


@pytest.mark.slow
def test_slow_reader_makes_the_server_wait(run: Any, kind: str, sock_dir: str) -> None:
    """A server offering 256 MiB to a client that reads slowly: the server's sends wait, so what is in flight
    (its write buffer, the kernel's socket buffers, the client's queue) stays bounded, far below the offer."""
    count, size = 4096, 64 * 2**10
    blob = "z" * size

    async def main() -> None:
        sent = 0
        finished = asyncio.get_running_loop().create_future()

        async def flood(t: rpcwire.Transport) -> None:
            nonlocal sent
            for i in range(count):
                await t.send({"jsonrpc": "2.0", "method": "blob", "params": {"i": i, "blob": blob}})
                sent += 1
            finished.set_result(None)
            await t.receive()  # until the client closes

        async with await rpcwire.serve(flood, address_for(kind, sock_dir)) as server:
            t = await rpcwire.connect(server.address)
            max_ahead = 0
            for i in range(count):
                if i % 256 == 0:
                    await asyncio.sleep(0.02)  # the slow part
                    max_ahead = max(max_ahead, sent - i)
                msg = await t.receive()
                assert msg["params"]["i"] == i
            await finished
            await t.close()
        # Kernel socket buffers (TCP autotuning: a few MiB each way) come on top of rpcwire's own bounds.
        bound = _protocol.WRITE_HIGH_WATER + _protocol.QUEUE_MAX_BYTES + 32 * 2**20
        assert max_ahead * size <= bound
        assert max_ahead * size < count * size // 4

    run(main())
