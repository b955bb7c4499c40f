"""Odd stdio, dead and confused peers, big messages: never hang, never drop, never blame the wrong call."""

from __future__ import annotations

import asyncio
import json
import logging
import os
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

ECHO_SERVER = """
import asyncio, rpcwire
async def main():
    async with rpcwire.stdio() as t:
        async for m in t:
            await t.send({"jsonrpc": "2.0", "id": m.get("id"), "result": "ok"})
asyncio.run(main())
"""


@pytest.fixture
def sock_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="rpcw") as d:
        yield f"{d}/s.sock"


def rpcwire_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rpcwire", *args]


# --- stdin = /dev/null and other descriptors epoll refuses ----------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_stdio_server_with_stdin_dev_null_exits_at_eof(loop: str) -> None:
    script = (
        ECHO_SERVER.replace("asyncio.run(main())", "__import__('uvloop').run(main())")
        if loop == "uvloop"
        else ECHO_SERVER
    )
    with open(os.devnull, "rb") as null:
        proc = subprocess.run([sys.executable, "-c", script], stdin=null, capture_output=True, timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
    assert b"Traceback" not in proc.stderr
    assert b"PermissionError" not in proc.stderr


def test_a_stdio_server_writing_to_dev_null_serves(tmp_path: Path) -> None:
    requests = tmp_path / "in.jsonl"
    requests.write_bytes(b"".join(json.dumps(request(i)).encode() + b"\n" for i in range(3)))
    with open(requests, "rb") as src, open(os.devnull, "wb") as null:
        proc = subprocess.run(
            [sys.executable, "-c", ECHO_SERVER], stdin=src, stdout=null, stderr=subprocess.PIPE, timeout=20, check=False
        )
    assert proc.returncode == 0, proc.stderr.decode()


def test_rpcwire_connect_with_stdin_dev_null_exits_at_eof(sock_path: str) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, f"unix://{sock_path}"):
            proc = await asyncio.create_subprocess_exec(
                *rpcwire_cli("connect", f"unix://{sock_path}"),
                stdin=subprocess.DEVNULL,  # /dev/null, opened by the subprocess module
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0, err.decode()
            assert out == b""
            assert b"Traceback" not in err

    asyncio.run(main())


# --- a peer that cannot read us ----------------------------------------------------------------------------------


def test_a_client_hears_why_a_keyed_server_hung_up(sock_path: str) -> None:
    async def main() -> None:
        ring = rpcwire.Keyring.generate()
        async with await rpcwire.serve(echo_handler, f"unix://{sock_path}", keyring=ring):
            t = await rpcwire.connect(f"unix://{sock_path}")  # no key: ndjson plaintext
            await t.send(request(1))
            with pytest.raises(rpcwire.ConnectionClosed, match=r"before any reply.*key or framing mismatch"):
                await asyncio.wait_for(t.receive(), 10)
            await t.close()
            # A client that heard replies and then sees the end gets the plain message.
            async with await rpcwire.serve(echo_handler, f"unix://{sock_path}.2") as plain:
                t = await rpcwire.connect(plain.address)
                await t.send(request(1))
                assert (await t.receive())["id"] == 1
                plain.close()
                with pytest.raises(rpcwire.ConnectionClosed) as caught:
                    await asyncio.wait_for(t.receive(), 10)
                assert "mismatch" not in str(caught.value)
                await t.close()

    asyncio.run(main())


def test_a_child_that_exits_unanswered_is_not_blamed_on_a_mismatch() -> None:
    """A child that ends before replying has its own reasons; its exit status is the message, not a guess."""

    async def main() -> None:
        code = "import sys; sys.stdin.readline(); sys.exit(3)"
        async with rpcwire.spawn([sys.executable, "-c", code]) as t:
            await t.send(request(1))
            with pytest.raises(rpcwire.ConnectionClosed) as caught:
                await asyncio.wait_for(t.receive(), 10)
            assert "mismatch" not in str(caught.value)
            assert caught.value.exit_code == 3

    asyncio.run(main())


def test_rpcwire_connect_says_what_most_likely_happened(sock_path: str, tmp_path: Path) -> None:
    async def main() -> None:
        ring = rpcwire.Keyring.generate()
        async with await rpcwire.serve(echo_handler, f"unix://{sock_path}", keyring=ring):
            proc = await asyncio.create_subprocess_exec(
                *rpcwire_cli("connect", f"unix://{sock_path}"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request(1)).encode() + b"\n")
            await proc.stdin.drain()
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            assert out == b""
            assert b"key or framing mismatch" in err, err

    asyncio.run(main())


# --- the command line -------------------------------------------------------------------------------------------


def test_cli_errors_name_the_subcommand_and_never_print_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        rpcwire_cli("bridge", "unix://x.sock", "--", "true"), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("rpcwire bridge: error: LISTEN_ADDRESS: invalid address 'unix://x.sock'"), proc.stderr
    assert "must be absolute" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(rpcwire_cli("connect", "unix://x.sock"), capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("rpcwire connect: error: ADDRESS: invalid address"), proc.stderr


def test_keygen_refuses_to_overwrite_a_key_file(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    assert subprocess.run(rpcwire_cli("keygen", "--out", str(key)), check=False).returncode == 0
    before = key.read_bytes()
    proc = subprocess.run(rpcwire_cli("keygen", "--out", str(key)), capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "exists; refusing to overwrite" in proc.stderr
    assert key.read_bytes() == before
    assert subprocess.run(rpcwire_cli("keygen", "--out", str(key), "--force"), check=False).returncode == 0
    assert key.read_bytes() != before


def test_bridge_warns_before_serving_plaintext_beyond_loopback() -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails, after the warning, sending nothing.
    proc = subprocess.run(
        rpcwire_cli("bridge", "tcp://192.0.2.1:0", "--", "true"),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 1
    assert "without --key-file" in proc.stderr
    assert "plaintext" in proc.stderr
    loopback = subprocess.Popen(
        rpcwire_cli("bridge", "tcp://127.0.0.1:0", "--", "true"), stderr=subprocess.PIPE, text=True
    )
    assert loopback.stderr is not None
    serving = loopback.stderr.readline()  # the bridge's "serving ..." line comes after any warning
    loopback.terminate()
    _, rest = loopback.communicate(timeout=20)
    assert "serving true on tcp://127.0.0.1:" in serving
    assert "without --key-file" not in serving + rest


# --- native output and the wire -----------------------------------------------------------------------------------

PRINTF_SERVER = """
import asyncio, ctypes, rpcwire
libc = ctypes.CDLL(None)
async def main():
    async with rpcwire.stdio() as t:
        async for m in t:
            libc.printf(b"native chatter from C\\n")  # fully buffered: fd 1 is stderr, a pipe
            await t.send({"jsonrpc": "2.0", "id": m.get("id"), "result": "ok"})
asyncio.run(main())
"""


@pytest.mark.parametrize("framing", ["ndjson", "length"])
def test_c_printf_in_a_stdio_server_never_reaches_the_wire(framing: str) -> None:
    codec = rpcwire.Codec(framing=framing)
    script = PRINTF_SERVER.replace("rpcwire.stdio()", f"rpcwire.stdio(framing={framing!r})")
    proc = subprocess.run(
        [sys.executable, "-c", script], input=codec.encode(request(1)), capture_output=True, timeout=20, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert rpcwire.Codec(framing=framing).feed(proc.stdout) == [{"jsonrpc": "2.0", "id": 1, "result": "ok"}]
    assert b"native chatter from C" in proc.stderr


# --- memory after connections end -------------------------------------------------------------------------------

RSS_SERVER = """
import asyncio, gc, json, sys, rpcwire
gc.disable()  # only reference counting frees what the connections leave: no cycle may hold a buffer
async def main():
    async def handler(t):
        async for _ in t:
            pass
    server = await rpcwire.serve(handler, sys.argv[1], framing="length")
    print("ready", flush=True)
    while True:
        await asyncio.sleep(0.1)
        sys.stderr.write(f"{server.connections}\\n")
asyncio.run(main())
"""


@pytest.mark.slow
def test_memory_returns_after_peers_that_sent_16_mib_leave(sock_path: str) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", RSS_SERVER, f"unix://{sock_path}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == b"ready\n"
        proc = psutil.Process(server.pid)
        start = proc.memory_info().rss
        chunk = b"x" * (1 << 20)

        async def peer(mid_frame: bool) -> None:
            _, writer = await asyncio.open_unix_connection(sock_path)
            writer.write((16 * 2**20).to_bytes(4, "big"))
            for _ in range(15 if mid_frame else 16):
                writer.write(chunk)
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        async def rounds() -> None:
            for r in range(2):
                await asyncio.gather(*(peer(mid_frame=i % 2 == 0) for i in range(10)))
                del r

        asyncio.run(rounds())
        for _ in range(100):
            time.sleep(0.1)
            grown = proc.memory_info().rss - start
            if grown < 48 * 2**20:
                break
        assert grown < 48 * 2**20, f"RSS grew {grown / 2**20:.0f} MiB with every peer gone"
    finally:
        server.kill()
        server.communicate()


# --- a message too large to send fails its own call, never the next one ---------------------------------------


def collector(got: asyncio.Queue[Any]) -> Any:
    """A connection handler that puts every item it receives on ``got``."""

    async def collect(t: rpcwire.Transport) -> None:
        async for msg in t:
            await got.put(msg)

    return collect


def big(i: int, kind: str, size: int) -> dict[str, Any]:
    if kind == "request":
        return {"jsonrpc": "2.0", "id": i, "method": "echo", "params": {"pad": "x" * size}}
    return {"jsonrpc": "2.0", "id": i, "result": {"pad": "x" * size}}


@pytest.mark.parametrize("kind", ["request", "response"])
def test_an_oversize_send_raises_from_that_call_and_the_next_message_goes(sock_path: str, kind: str) -> None:
    async def main() -> None:
        got: asyncio.Queue[Any] = asyncio.Queue()
        collect = collector(got)

        async with await rpcwire.serve(collect, f"unix://{sock_path}"):
            t = await rpcwire.connect(f"unix://{sock_path}", max_frame_size=1000)
            with pytest.raises(ValueError, match="exceeds max_frame_size 1000"):
                await t.send(big(1, kind, 2000))
            await t.send(request(2))
            assert (await asyncio.wait_for(got.get(), 10))["id"] == 2
            # send_many: the oversize one is that call's error; the others still leave.
            with pytest.raises(ValueError, match="exceeds max_frame_size"):
                await t.send_many([request(3), big(4, kind, 2000), request(5)])
            assert [(await asyncio.wait_for(got.get(), 10))["id"] for _ in range(2)] == [3, 5]
            await t.send(request(6))
            assert (await asyncio.wait_for(got.get(), 10))["id"] == 6
            await t.close()

    asyncio.run(main())


def test_an_oversize_message_sent_behind_others_is_answered_for(sock_path: str) -> None:
    """Coalesced behind an earlier send, the oversize message is found after its send returned: a response
    goes out as an error response with its id, a request gets that error locally; nothing blames the next send."""

    async def main() -> None:
        got: asyncio.Queue[Any] = asyncio.Queue()
        collect = collector(got)

        async with await rpcwire.serve(collect, f"unix://{sock_path}"):
            t = await rpcwire.connect(f"unix://{sock_path}", max_frame_size=1000)
            await t.send(request(1))  # written at once
            await t.send(big(2, "response", 2000))  # coalesced: encoded after send returned
            await t.send(big(3, "request", 2000))
            await t.send({"jsonrpc": "2.0", "method": "note", "params": {"pad": "x" * 2000}})
            await asyncio.sleep(0.05)
            await t.send(request(4))  # not blamed for what went before
            peer = [await asyncio.wait_for(got.get(), 10) for _ in range(3)]
            assert peer[0]["id"] == 1
            assert peer[1]["id"] == 2
            assert peer[1]["error"]["code"] == -32603
            assert "exceeds max_frame_size 1000" in peer[1]["error"]["data"]
            assert peer[2]["id"] == 4
            local = await asyncio.wait_for(t.receive(), 10)
            assert local["id"] == 3
            assert "exceeds max_frame_size 1000" in local["error"]["data"]
            assert got.empty()
            await t.close()

    asyncio.run(main())


# --- an LSP server behind the bridge ----------------------------------------------------------------------------


def test_an_lsp_server_behind_the_bridge(sock_path: str) -> None:
    """editor (Content-Length on stdio) <-> rpcwire connect <-> socket <-> rpcwire bridge <-> pylsp."""
    bridge = subprocess.Popen(
        rpcwire_cli(
            "bridge", f"unix://{sock_path}", "--framing", "content-length", "--", sys.executable, "-m", "pylsp"
        ),
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_path(sock_path)

        async def main() -> None:
            editor = await asyncio.create_subprocess_exec(
                *rpcwire_cli("connect", f"unix://{sock_path}", "--framing", "content-length"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert editor.stdin is not None
            assert editor.stdout is not None
            lsp = rpcwire.Codec(framing="content-length")
            initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
            editor.stdin.write(lsp.encode(initialize))
            await editor.stdin.drain()
            replies: list[Any] = []
            while not replies:
                chunk = await asyncio.wait_for(editor.stdout.read(65536), 30)
                assert chunk, "the bridge closed without answering"
                replies += lsp.feed(chunk)
            assert replies[0]["id"] == 1
            assert "capabilities" in replies[0]["result"]
            editor.stdin.write(lsp.encode({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
            editor.stdin.write(lsp.encode({"jsonrpc": "2.0", "method": "exit"}))
            editor.stdin.close()  # at once: the answer in flight still arrives (the relay drains it)
            rest, err = await asyncio.wait_for(editor.communicate(), 30)
            assert editor.returncode == 0, err.decode()
            assert [m["id"] for m in replies[1:] + lsp.feed(rest) if "id" in m] == [2]

        asyncio.run(main())
    finally:
        bridge.terminate()
        _, err = bridge.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode(errors="replace")


# --- peers that die in the middle of a frame --------------------------------------------------------------------


def test_a_reset_storm_logs_no_traceback(sock_path: str, caplog: pytest.LogCaptureFixture) -> None:
    """Peers that die mid-frame end a user's `async for` cleanly; serve() logs no error, no traceback."""

    async def main() -> int:
        ended = 0

        async def handler(t: rpcwire.Transport) -> None:
            nonlocal ended
            async for _ in t:
                pass
            ended += 1

        async with await rpcwire.serve(handler, f"unix://{sock_path}", framing="auto") as server:
            for i in range(40):
                _, writer = await asyncio.open_unix_connection(sock_path)
                half = b'{"jsonrpc":"2.0","method":"cut' if i % 2 else (1000).to_bytes(4, "big") + b"{"
                writer.write(half)
                await writer.drain()
                writer.transport.abort()
            for _ in range(200):
                if ended == 40:
                    break
                await asyncio.sleep(0.01)
            assert server.connections == 0
        return ended

    with caplog.at_level(logging.DEBUG, logger="rpcwire"):
        assert asyncio.run(main()) == 40
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_a_truncated_last_line_ends_the_mcp_read_stream() -> None:
    """What the SDK does: EOF in the middle of a line is the end of the stream, not an error item."""
    import anyio
    from rpcwire.mcp import streams

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        read, _ = streams(a)
        b._proto._wt.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n{"jsonrpc":"2.0","meth')
        await b.close()
        first = await read.receive()
        assert not isinstance(first, Exception)
        with pytest.raises(anyio.EndOfStream):
            await read.receive()
        await a.close()

    asyncio.run(main())
