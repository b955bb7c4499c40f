"""The per-connection budgets of ``serve`` and ``rpcwire bridge`` (docs/security.md): max connections, the time
to authenticate, to finish a frame, and to stay idle; and a bridge that starts no child for a peer that has not
authenticated."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import rpcwire

from ._helpers import echo_handler, request, wait_for_path


@pytest.fixture
def sock_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="rpcw") as d:
        yield f"{d}/s.sock"


async def raw(server: rpcwire.Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    path = server.address.removeprefix("unix://")
    return await asyncio.open_unix_connection(path)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``seconds``."""
    try:
        data = await asyncio.wait_for(reader.read(1 << 16), seconds)
    except asyncio.TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return data == b""


def test_max_connections_refuses_the_one_too_many(run: Any, sock_path: str) -> None:
    async def main() -> None:
        handled = 0

        async def handler(t: rpcwire.Transport) -> None:
            nonlocal handled
            handled += 1
            await echo_handler(t)

        async with await rpcwire.serve(handler, f"unix://{sock_path}", max_connections=2) as server:
            a = await rpcwire.connect(server.address)
            b = await rpcwire.connect(server.address)
            for t in (a, b):
                await t.send(request(1))
                assert (await t.receive())["id"] == 1
            reader, writer = await raw(server)
            assert await closed_within(reader, 5)
            writer.close()
            assert server.refused == 1
            assert server.connections == 2
            assert handled == 2, "a refused connection runs no handler"
            await a.close()
            for _ in range(100):
                if server.connections < 2:
                    break
                await asyncio.sleep(0.01)
            c = await rpcwire.connect(server.address)
            await c.send(request(2))
            assert (await c.receive())["id"] == 2
            for t in (b, c):
                await t.close()

    run(main())


def test_an_unauthenticated_connection_is_closed_after_auth_timeout(run: Any, sock_path: str) -> None:
    async def main() -> None:
        ring = rpcwire.Keyring.generate()
        seen: list[BaseException] = []

        async def handler(t: rpcwire.Transport) -> None:
            try:
                while True:
                    await t.receive()
            except rpcwire.ConnectionClosed as exc:
                seen.append(exc)

        async with await rpcwire.serve(handler, f"unix://{sock_path}", keyring=ring, auth_timeout=0.3) as server:
            keyed = await rpcwire.connect(server.address, keyring=ring)
            await keyed.send(request(1))
            reader, writer = await raw(server)
            writer.write(b"\x00\x00")  # half a length header: bytes, but nothing that authenticates
            started = time.monotonic()
            assert await closed_within(reader, 5)
            assert 0.3 <= time.monotonic() - started < 3
            writer.close()
            assert any("auth_timeout" in str(e) for e in seen), seen
            await asyncio.sleep(0.5)
            assert keyed.is_connected, "an authenticated connection stays"
            await keyed.close()

    run(main())


def test_without_a_keyring_there_is_nothing_to_wait_for(run: Any, sock_path: str) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, f"unix://{sock_path}", auth_timeout=0.2) as server:
            reader, writer = await raw(server)
            assert not await closed_within(reader, 0.6)
            writer.write(b'{"jsonrpc":"2.0","id":1,"method":"m","params":{}}\n')
            assert b'"id":1' in await reader.readline()
            writer.close()

    run(main())


def test_a_trickled_frame_is_closed_after_frame_timeout(run: Any, sock_path: str) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, f"unix://{sock_path}", frame_timeout=0.4) as server:
            slow_reader, slow = await raw(server)
            steady_reader, steady = await raw(server)
            slow.write(b'{"jsonrpc":"2.0","id":1,"method":"m"')  # never finished
            started = time.monotonic()
            for _ in range(3):
                slow.write(b" ")  # the slow peer keeps sending, but its frame does not end
                await asyncio.sleep(0.1)
            assert await closed_within(slow_reader, 5)
            assert 0.4 <= time.monotonic() - started < 4
            for i in range(8):  # a peer that finishes every frame it starts is never closed
                steady.write(b'{"jsonrpc":"2.0","id":%d,"method":"m","params":{}}\n' % i)
                assert b'"id":%d' % i in await steady_reader.readline()
                await asyncio.sleep(0.1)
            assert not await closed_within(steady_reader, 0.2)
            slow.close()
            steady.close()

    run(main())


def test_idle_timeout_is_off_by_default_and_closes_when_set(run: Any, sock_path: str) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, f"unix://{sock_path}") as server:
            reader, writer = await raw(server)
            assert not await closed_within(reader, 0.5)
            writer.close()
        async with await rpcwire.serve(echo_handler, f"unix://{sock_path}", idle_timeout=0.3) as server:
            t = await rpcwire.connect(server.address)
            await t.send(request(1))
            assert (await t.receive())["id"] == 1
            with pytest.raises(rpcwire.ConnectionClosed):
                await asyncio.wait_for(t.receive(), 5)
            await t.close()

    run(main())


# --- the bridge ---------------------------------------------------------------------------------------------------

CHILD = """
import json, os, sys
open(os.path.join(sys.argv[1], f"child-{os.getpid()}"), "w").close()
for line in sys.stdin:
    print(json.dumps({"jsonrpc": "2.0", "id": json.loads(line)["id"], "result": "ok"}), flush=True)
"""


def test_a_keyed_bridge_starts_no_child_for_unauthenticated_connections(tmp_path: Path, sock_path: str) -> None:
    key = tmp_path / "key.json"
    rpcwire.Keyring.generate().to_file(key)  # type: ignore[attr-defined]
    marks = tmp_path / "marks"
    marks.mkdir()
    bridge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rpcwire",
            "bridge",
            f"unix://{sock_path}",
            "--key-file",
            str(key),
            "--auth-timeout",
            "1",
            "--",
            sys.executable,
            "-c",
            CHILD,
            str(marks),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_path(sock_path)

        async def main() -> None:
            conns = [await asyncio.open_unix_connection(sock_path) for _ in range(10)]
            for _, writer in conns[:5]:
                writer.write(b"\x00\x00\x10")  # a few bytes of a frame that never comes
            await asyncio.sleep(0.3)
            assert psutil.Process(bridge.pid).children() == []
            started = time.monotonic()
            closed = await asyncio.gather(*(closed_within(reader, 10) for reader, _ in conns))
            assert all(closed)
            assert time.monotonic() - started < 5
            for _, writer in conns:
                writer.close()
            assert list(marks.iterdir()) == [], "no child was started"
            # A peer with the key gets its child, started by its first message.
            t = await rpcwire.connect(f"unix://{sock_path}", keyring=rpcwire.Keyring.from_file(key))  # type: ignore[attr-defined]
            await t.send({"jsonrpc": "2.0", "id": 7, "method": "echo", "params": {}})
            reply = await asyncio.wait_for(t.receive(), 20)
            assert reply["id"] == 7
            assert len(list(marks.iterdir())) == 1
            await t.close()

        asyncio.run(main())
    finally:
        bridge.terminate()
        _, err = bridge.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode(errors="replace")
