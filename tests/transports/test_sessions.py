"""Sessions over real sockets, tried as an attacker would: a byte-level proxy between an rpcwire client and
server records each connection, then writes what it recorded into new connections to the server.

With a keyring every connection derives its own keys (docs/wire-format.md 3.4), so server frames reflected
into another connection, and client frames replayed into another connection, deliver nothing to the handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import rpcwire

from ._helpers import request

Run = Callable[[Awaitable[Any]], Any]


class Recorder:
    """A Unix-socket proxy to ``upstream`` that keeps every byte of each connection, both ways."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.to_server: list[bytearray] = []
        self.to_client: list[bytearray] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
        out, back = bytearray(), bytearray()
        self.to_server.append(out)
        self.to_client.append(back)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, log: bytearray) -> None:
            while data := await src.read(65536):
                log += data
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()

        try:
            await asyncio.gather(pump(reader, up_writer, out), pump(up_reader, writer, back), return_exceptions=True)
        finally:  # also when the test's loop ends first and cancels this
            writer.close()
            up_writer.close()


async def inject(path: str, data: bytes) -> bytes:
    """Open a raw connection to the server, write ``data``, and read until the server closes it."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    return answer


async def attack(tmp_path: Path, make_payload: Callable[[Recorder], bytes]) -> tuple[list[Any], bytes]:
    """Serve with a keyring, run one honest connection through the recorder, then inject the bytes
    ``make_payload`` picks from the recording into a new direct connection. What did the handler get?"""
    keyring = rpcwire.Keyring.generate()
    got: dict[int, list[Any]] = {}

    async def handler(t: rpcwire.Transport) -> None:
        mine = got.setdefault(len(got), [])
        async for msg in t:
            mine.append(msg)
            if "id" in msg:
                await t.send({"jsonrpc": "2.0", "id": msg["id"], "result": msg["params"]})

    server_path = str(tmp_path / "server.sock")
    proxy_path = str(tmp_path / "proxy.sock")
    recorder = Recorder(server_path)
    async with await rpcwire.serve(handler, f"unix://{server_path}", keyring=keyring):
        proxy = await asyncio.start_unix_server(recorder.handle, proxy_path)
        async with proxy:
            client = await rpcwire.connect(f"unix://{proxy_path}", keyring=keyring)
            for i in range(3):
                await client.send(request(i, secret=f"s{i}"))
                assert (await client.receive())["result"] == {"secret": f"s{i}"}
            await client.close()
            for _ in range(100):
                if len(recorder.to_client) == 1 and len(recorder.to_client[0]) > 0 and got.get(0) and len(got[0]) == 3:
                    break
                await asyncio.sleep(0.01)
            answer = await inject(server_path, make_payload(recorder))
            await asyncio.sleep(0.05)
    # The server is closed: the proxy's connection sees both ends go and closes its streams.
    await asyncio.wait_for(asyncio.gather(*recorder.tasks, return_exceptions=True), 10)
    assert len(got[0]) == 3, "the honest connection was served"
    return got.get(1, []), answer


def test_server_frames_reflected_into_another_connection_deliver_nothing(run: Run, tmp_path: Path) -> None:
    # The attacker opens the new connection with the recorded hello (so the server completes a handshake),
    # then reflects the server's own frames from the first connection into it, as if the client sent them.
    def payload(rec: Recorder) -> bytes:
        hello_len = 4 + 55
        reply_len = 4 + 51
        return bytes(rec.to_server[0][:hello_len] + rec.to_client[0][reply_len:])

    delivered, answer = run(attack(tmp_path, payload))
    assert delivered == []
    assert len(answer) in (0, 4 + 51), "at most the server's handshake reply, never a message"


def test_client_frames_replayed_into_another_connection_deliver_nothing(run: Run, tmp_path: Path) -> None:
    def payload(rec: Recorder) -> bytes:
        return bytes(rec.to_server[0])

    delivered, answer = run(attack(tmp_path, payload))
    assert delivered == []
    assert len(answer) in (0, 4 + 51), "at most the server's handshake reply, never a message"


def test_server_frames_reflected_as_a_connection_opening_deliver_nothing(run: Run, tmp_path: Path) -> None:
    def payload(rec: Recorder) -> bytes:
        return bytes(rec.to_client[0])

    delivered, answer = run(attack(tmp_path, payload))
    assert delivered == []
    assert answer == b"", "a reply where a hello belongs gets no answer"


@pytest.mark.parametrize("transport", ["unix", "tcp", "memory"])
def test_sends_made_before_the_handshake_completes_all_arrive(run: Run, tmp_path: Path, transport: str) -> None:
    """A client may send (and close) at once: its sends wait for the handshake and then leave in order."""
    keyring = rpcwire.Keyring.generate()

    async def main() -> list[Any]:
        got: list[Any] = []
        done = asyncio.Event()

        async def handler(t: rpcwire.Transport) -> None:
            got.extend([msg async for msg in t])
            done.set()

        if transport == "memory":
            a, b = rpcwire.memory_pair(keyring=keyring)
            task = asyncio.ensure_future(handler(b))
            for i in range(50):
                await a.send(request(i))
            await a.close()
            await task
            return got
        address = f"unix://{tmp_path / 's.sock'}" if transport == "unix" else "tcp://127.0.0.1:0"
        async with await rpcwire.serve(handler, address, keyring=keyring) as server:
            client = await rpcwire.connect(server.address, keyring=keyring)
            for i in range(50):
                await client.send(request(i))
            await client.close()
            await asyncio.wait_for(done.wait(), 10)
        return got

    assert run(main()) == [request(i) for i in range(50)]


def test_a_client_without_the_key_is_refused_at_the_hello(run: Run, tmp_path: Path) -> None:
    async def main() -> tuple[list[Any], BaseException]:
        got: list[Any] = []

        async def handler(t: rpcwire.Transport) -> None:
            got.extend([msg async for msg in t])

        path = tmp_path / "s.sock"
        async with await rpcwire.serve(handler, f"unix://{path}", keyring=rpcwire.Keyring.generate()):
            client = await rpcwire.connect(f"unix://{path}", keyring=rpcwire.Keyring.generate())
            await client.send(request(1))
            with pytest.raises(rpcwire.ConnectionClosed) as caught:
                await asyncio.wait_for(client.receive(), 10)
            await client.close()
        return got, caught.value

    got, error = run(main())
    assert got == []
    assert "key" in str(error)


def test_stream_form_peers_and_session_peers_refuse_each_other(run: Run, tmp_path: Path) -> None:
    """A peer speaking the version 1 stream form (rpcwire 0.1, or a bare Codec) against a session server:
    the server refuses it on the first frame and closes; nothing reaches the handler."""
    keyring = rpcwire.Keyring.generate()

    async def main() -> tuple[list[Any], bytes]:
        got: list[Any] = []

        async def handler(t: rpcwire.Transport) -> None:
            got.extend([msg async for msg in t])

        path = str(tmp_path / "s.sock")
        async with await rpcwire.serve(handler, f"unix://{path}", keyring=keyring):
            old = rpcwire.Codec(keyring=keyring)
            answer = await inject(path, old.encode(request(1)))
        return got, answer

    got, answer = run(main())
    assert got == []
    assert answer == b""
