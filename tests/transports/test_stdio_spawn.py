"""``spawn()`` and ``stdio()``: real child processes on both sides, on the stdlib loop (debug) and uvloop."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import rpcwire
from rpcwire._spawn import STDERR_TAIL

from ._helpers import request

CHILD = str(Path(__file__).with_name("child.py"))

CODECS = [
    pytest.param({}, id="ndjson"),
    pytest.param({"framing": "length"}, id="length"),
    pytest.param({"compression": "lz4", "compress_min_size": 64}, id="lz4"),
    pytest.param({"key": "generate"}, id="aes"),
]


def child_env(loop_name: str, opts: dict[str, Any] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["RPCWIRE_TEST_LOOP"] = loop_name
    env["RPCWIRE_TEST_OPTS"] = json.dumps(opts or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parents[2]), env.get("PYTHONPATH")) if p)
    return env


async def start_child(
    mode: str, loop_name: str, stdin: Any = subprocess.PIPE, stdout: Any = subprocess.PIPE
) -> asyncio.subprocess.Process:
    """``child.py MODE`` as a plain subprocess (not through rpcwire), on `loop_name`."""
    return await asyncio.create_subprocess_exec(
        sys.executable, CHILD, mode, stdin=stdin, stdout=stdout, env=child_env(loop_name)
    )


def codec_pair(codec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(our codec kwargs, the child's options) for one CODECS case."""
    ours = dict(codec)
    theirs = dict(codec)
    if ours.pop("key", None) == "generate":
        key = os.urandom(32)
        ours["keyring"] = rpcwire.Keyring({1: key})
        theirs["key"] = key.hex()
    return ours, theirs


def proc_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (Z for a zombie), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


@pytest.mark.parametrize("codec", CODECS)
def test_spawn_round_trips_in_order(run: Any, loop_name: str, codec: dict[str, Any]) -> None:
    ours, theirs = codec_pair(codec)

    async def main() -> None:
        async with rpcwire.spawn([sys.executable, CHILD, "echo"], env=child_env(loop_name, theirs), **ours) as t:
            assert t.transport_type == "spawn"
            assert isinstance(t.pid, int)
            n = 3000
            for i in range(n):
                await t.send(request(i, n=i, pad="p" * (i % 300)))
            got = [await t.receive() for _ in range(n)]
            assert [m["id"] for m in got] == list(range(n))
            assert got[1234]["result"] == {"n": 1234, "pad": "p" * (1234 % 300)}
            stats = t.stats
            assert stats.messages_out == n
            assert stats.messages_in == n
            assert stats.bytes_in > 0
            assert stats.bytes_out > 0
        assert t.exit_code == 0  # stdin EOF made the child's stdio() loop end and exit cleanly
        assert not t.is_connected

    run(main())


def test_spawn_twenty_mib_message(run: Any, loop_name: str) -> None:
    async def main() -> None:
        big = "b" * (20 * 2**20)
        opts = {"framing": "length", "max_frame_size": 32 * 2**20}
        async with rpcwire.spawn([sys.executable, CHILD, "echo"], env=child_env(loop_name, opts), **opts) as t:
            await t.send(request(1, big=big))
            reply = await t.receive()
            assert reply["result"]["big"] == big

    run(main())


def test_stray_prints_in_stdio_server_go_to_stderr(run: Any, loop_name: str) -> None:
    async def main() -> None:
        err = io.StringIO()
        async with rpcwire.spawn([sys.executable, CHILD, "echo"], env=child_env(loop_name), stderr=err) as t:
            await t.send({"jsonrpc": "2.0", "id": 1, "method": "print"})
            await t.send(request(2))
            assert (await t.receive())["id"] == 1
            assert (await t.receive())["id"] == 2
        text = err.getvalue()
        for stray in ("stray print from the server", "stray sys.stdout.write", "stray os.write(1)"):
            assert stray in text
        assert b"stray print" in t.stderr_tail

    run(main())


def test_stdio_gives_fds_back_on_close(run: Any, loop_name: str) -> None:
    async def main() -> None:
        proc = await start_child("after", loop_name)
        out, _ = await proc.communicate(orjson.dumps(request(1)) + b"\n")
        assert out.splitlines() == [orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}), b"after"]
        assert proc.returncode == 0

    run(main())


def test_stdin_eof_finishes_replies_in_flight(run: Any, loop_name: str) -> None:
    """Requests, then stdin closed at once: every reply (sent 50 ms later, from tasks) still arrives."""

    async def main() -> None:
        proc = await start_child("delayed", loop_name)
        data = b"".join(orjson.dumps(request(i)) + b"\n" for i in range(200))
        out, _ = await proc.communicate(data)
        ids = sorted(orjson.loads(line)["id"] for line in out.splitlines())
        assert ids == list(range(200))
        assert proc.returncode == 0

    run(main())


@pytest.mark.parametrize("layout", ["one-socketpair", "two-socketpairs"])
def test_stdio_over_socketpairs(run: Any, loop_name: str, layout: str) -> None:
    """Node/libuv parents hand children socketpairs, not pipes; both layouts work."""

    async def main() -> None:
        ours_in, theirs_in = socket.socketpair()
        if layout == "one-socketpair":
            ours_out, theirs_out = ours_in, theirs_in
        else:
            theirs_out, ours_out = socket.socketpair()
        try:
            proc = await start_child("echo", loop_name, stdin=theirs_in, stdout=theirs_out)
        finally:
            theirs_in.close()
            theirs_out.close()
        if layout == "one-socketpair":
            reader, writer = await asyncio.open_connection(sock=ours_in)
            extra = None
        else:
            _, writer = await asyncio.open_connection(sock=ours_in)
            reader, extra = await asyncio.open_connection(sock=ours_out)
        for i in range(50):
            writer.write(orjson.dumps(request(i)) + b"\n")
        await writer.drain()
        lines = [orjson.loads(await reader.readline()) for _ in range(50)]
        assert [m["id"] for m in lines] == list(range(50))
        writer.write_eof()  # the child's stdin EOF: it exits, closing its stdout
        assert await reader.read() == b""
        assert await proc.wait() == 0
        for w in (writer, extra):
            if w is not None:
                w.close()
                await w.wait_closed()

    run(main())


def test_stdio_from_and_to_regular_files(run: Any, loop_name: str, tmp_path: Path) -> None:
    """``server < requests.jsonl > replies.jsonl``: asyncio's pipe transports refuse files; stdio() does not."""

    async def main() -> None:
        src = tmp_path / "requests.jsonl"
        dst = tmp_path / "replies.jsonl"
        src.write_bytes(b"".join(orjson.dumps(request(i)) + b"\n" for i in range(500)))
        with src.open("rb") as fin, dst.open("wb") as fout:
            proc = await start_child("echo", loop_name, stdin=fin, stdout=fout)
            assert await proc.wait() == 0
        ids = [orjson.loads(line)["id"] for line in dst.read_bytes().splitlines()]
        assert ids == list(range(500))

    run(main())


def test_child_exit_gives_connection_closed_with_exit_code(run: Any, loop_name: str) -> None:
    async def main() -> None:
        async with rpcwire.spawn([sys.executable, CHILD, "echo"], env=child_env(loop_name)) as t:
            await t.send(request(1))
            await t.send({"jsonrpc": "2.0", "method": "exit", "params": {"code": 7}})
            assert (await t.receive())["id"] == 1
            with pytest.raises(rpcwire.ConnectionClosed) as caught:
                await t.receive()
            assert caught.value.exit_code == 7
            assert t.exit_code == 7
            assert not t.is_connected
            with pytest.raises(rpcwire.ConnectionClosed):
                await t.send(request(2))
            assert [m async for m in t] == []

    run(main())


def test_child_dying_mid_frame_is_a_closed_connection(run: Any, loop_name: str) -> None:
    async def main() -> None:
        async with rpcwire.spawn([sys.executable, CHILD, "half-frame"], framing="length") as t:
            with pytest.raises(rpcwire.ConnectionClosed) as caught:
                await t.receive()
            assert isinstance(caught.value.__cause__, rpcwire.FramingError)
            assert "bytes buffered" in str(caught.value.__cause__)
            assert caught.value.exit_code == 5
            with pytest.raises(rpcwire.ConnectionClosed) as caught:
                await t.receive()
            assert caught.value.exit_code == 5

    run(main())


def test_child_ignoring_sigterm_is_killed_with_its_group(run: Any, loop_name: str) -> None:
    async def main() -> None:
        t = await rpcwire.spawn(
            [sys.executable, CHILD, "stubborn"], env=child_env(loop_name), close_timeout=0.2, terminate_timeout=0.3
        )
        grandchild = (await t.receive())["params"]["pid"]
        assert proc_state(grandchild) not in (None, "Z")
        await t.close()
        assert t.exit_code == -signal.SIGKILL
        # the grandchild shared the group: it got the SIGKILL too (gone, or a zombie awaiting its new parent)
        for _ in range(100):
            if proc_state(grandchild) in (None, "Z"):
                break
            await asyncio.sleep(0.02)
        assert proc_state(grandchild) in (None, "Z")
        await t.close()  # idempotent

    run(main())


def test_no_process_of_the_group_outlives_close(run: Any, loop_name: str) -> None:
    """The child exits on SIGTERM, but left a grandchild in its group that ignores it: SIGKILL reaches it."""

    async def main() -> None:
        t = await rpcwire.spawn(
            [sys.executable, CHILD, "orphaning"], env=child_env(loop_name), close_timeout=0.2, terminate_timeout=0.3
        )
        grandchild = (await t.receive())["params"]["pid"]
        assert proc_state(grandchild) not in (None, "Z")
        await t.close()
        assert t.exit_code == -signal.SIGTERM
        for _ in range(100):
            if proc_state(grandchild) in (None, "Z"):
                break
            await asyncio.sleep(0.02)
        assert proc_state(grandchild) in (None, "Z")

    run(main())


def test_child_ignoring_stdin_eof_gets_sigterm(run: Any, loop_name: str) -> None:
    async def main() -> None:
        async with rpcwire.spawn(
            [sys.executable, CHILD, "polite"], env=child_env(loop_name), close_timeout=0.2, terminate_timeout=5
        ) as t:
            assert (await t.receive())["method"] == "ready"
        assert t.exit_code == -signal.SIGTERM

    run(main())


def test_cancelled_receive_on_child_loses_nothing(run: Any, loop_name: str) -> None:
    async def main() -> None:
        async with rpcwire.spawn([sys.executable, CHILD, "echo"], env=child_env(loop_name)) as t:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(t.receive(), 0.05)
            await t.send(request(1))
            assert (await t.receive())["id"] == 1

    run(main())


def test_stderr_routes(run: Any, loop_name: str, tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('to-stderr\\n'); sys.stderr.flush()"

    async def main() -> None:
        chunks: list[bytes] = []
        async with rpcwire.spawn([sys.executable, "-c", code], stderr=chunks.append) as t:
            assert await t.wait() == 0
        assert b"".join(chunks) == b"to-stderr\n"
        log = tmp_path / "err.log"
        with log.open("wb") as f:
            async with rpcwire.spawn([sys.executable, "-c", code], stderr=f) as t:
                await t.wait()
        assert log.read_bytes() == b"to-stderr\n"
        async with rpcwire.spawn([sys.executable, "-c", code], stderr=subprocess.DEVNULL) as t:
            await t.wait()
        assert t.stderr_tail == b""

    run(main())


def test_chatty_stderr_never_blocks_the_child(run: Any, loop_name: str) -> None:
    """8 MiB of stderr (far over a pipe buffer) before the first reply: drained, so the reply comes."""
    code = (
        "import sys, os\n"
        "for _ in range(128): sys.stderr.write('e' * 65536)\n"
        "sys.stderr.flush()\n"
        'os.write(1, b\'{"jsonrpc":"2.0","method":"done"}\\n\')\n'
    )

    async def main() -> None:
        seen = [0]

        def count(data: bytes) -> None:
            seen[0] += len(data)

        async with rpcwire.spawn([sys.executable, "-c", code], stderr=count) as t:
            assert (await t.receive())["method"] == "done"
            assert await t.wait() == 0
        assert seen[0] == 128 * 65536
        assert t.stderr_tail == b"e" * STDERR_TAIL  # the last 8 KiB, however the reads were cut

    run(main())


def test_spawn_refusals(run: Any) -> None:
    async def main() -> None:
        with pytest.raises(FileNotFoundError):
            await rpcwire.spawn(["/nonexistent/rpcwire-test-program"])

    with pytest.raises(ValueError, match="argv is empty"):
        rpcwire.spawn([])
    run(main())


@pytest.mark.slow
def test_slow_reader_makes_the_child_wait(run: Any, loop_name: str) -> None:
    """A child offers 256 MiB while we read slowly: it waits (its RSS does not grow with what it offers), and our
    receive queue stays bounded."""

    async def main() -> None:
        count, size = 4096, 64 * 2**10
        async with rpcwire.spawn([sys.executable, CHILD, "flood"], env=child_env(loop_name)) as t:
            await t.send({"jsonrpc": "2.0", "method": "go", "params": {"count": count, "size": size}})
            max_queue = 0
            for i in range(count):
                if i % 512 == 0:
                    await asyncio.sleep(0.05)  # the slow part
                    max_queue = max(max_queue, t._proto.queue_size())
                msg = await t.receive()
                assert msg["params"]["i"] == i
            done = await t.receive()
        assert done["method"] == "done"
        # Three quarters of the offer (192 MiB) went out after the first RSS reading; a sender that buffered
        # instead of waiting would have grown by about that much.
        growth = done["params"]["rss_at_end"] - done["params"]["rss_at_quarter"]
        assert growth < count * size // 8
        # bounded by the queue's byte limit (8 MiB) plus one read, in 64 KiB messages
        assert max_queue <= 8 * 2**20 // size + 64

    run(main())
