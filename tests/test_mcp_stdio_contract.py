"""rpcwire.mcp's stdio drop-ins hold the SDK's stdio contract where the SDK's own test suite found gaps:
the fd claims and guards, replaced sys streams, anyio's trio backend, the streams' close(), the end of a
connection whose peer stopped reading, and error items of the ValueError family. Real processes throughout."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest
import rpcwire
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCRequest
from rpcwire import mcp as rmcp

SERVERS = Path(__file__).parent / "mcp_servers"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def run_script(code: str, stdin: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], input=stdin, capture_output=True, timeout=timeout, check=False
    )


def test_protocol_error_items_are_value_errors() -> None:
    """The SDK's stdio puts a pydantic ValidationError (a ValueError) on the read stream for a bad line."""
    assert isinstance(rpcwire.ParseError("x"), ValueError)
    assert isinstance(rpcwire.InvalidRequest("x"), ValueError)
    item = rpcwire.Codec().feed(b"not json\n")[0]
    assert isinstance(item, ValueError)
    assert isinstance(item, rpcwire.RpcWireError)


def test_a_second_stdio_server_in_one_process_is_refused() -> None:
    proc = run_script(
        """
        import anyio
        from rpcwire.mcp import stdio_server
        async def main():
            async with stdio_server():
                try:
                    async with stdio_server():
                        pass
                except RuntimeError as exc:
                    print("refused:", exc, file=__import__("sys").stderr)
            async with stdio_server():  # released: a later one works
                pass
        anyio.run(main)
        """
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"refused: another stdio() or stdio_server() in this process has already claimed fd 0" in proc.stderr


def test_stdio_server_with_an_explicit_stdin_still_guards_fd_1() -> None:
    """Explicit stdin, default stdout: fd 1 is claimed, so a stray print misses the wire."""
    proc = run_script(
        f"""
        import io, json, anyio
        from rpcwire.mcp import stdio_server
        from mcp.shared.message import SessionMessage
        from mcp_types import JSONRPCResponse
        async def main():
            stdin = anyio.wrap_file(io.StringIO({json.dumps(INIT)!r} + "\\n"))
            async with stdio_server(stdin=stdin) as (read, write):
                message = await read.receive()
                print("stray print")
                await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=message.message.id, result={{}})))
            print("after")  # fd 1 is the wire's again
        anyio.run(main)
        """
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert json.loads(lines[0]) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert lines[1:] == ["after"]
    assert b"stray print" in proc.stderr


def test_stdio_server_serves_a_replaced_sys_stdin_and_stdout(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(INIT) + "\n")
    proc = run_script(
        f"""
        import io, sys, anyio
        from rpcwire.mcp import stdio_server
        from mcp.shared.message import SessionMessage
        from mcp_types import JSONRPCResponse
        sys.stdin = open({str(src)!r})
        sys.stdout = open({str(out)!r}, "w")
        async def main():
            async with stdio_server() as (read, write):
                message = await read.receive()
                await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=message.message.id, result={{}})))
        anyio.run(main)
        sys.stdout.flush()
        """
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"", "the real fd 1 was not used"
    assert json.loads(out.read_text()) == {"jsonrpc": "2.0", "id": 1, "result": {}}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_stdio_client_and_server_on_both_anyio_backends(backend: str) -> None:
    """Under trio, rpcwire.mcp hands over to the SDK's own stdio transports: the same calls work."""
    params = StdioServerParameters(
        command=sys.executable, args=[str(SERVERS / "stdio_server.py"), "lowlevel", "rpcwire"]
    )

    async def main() -> str:
        async with rmcp.stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("echo", {"text": backend})
            return str(result.content[0].text)  # type: ignore[union-attr]

    assert anyio.run(main, backend=backend) == backend
    server = run_script(
        f"""
        import anyio
        from rpcwire.mcp import stdio_server
        async def main():
            async with stdio_server() as (read, write):
                message = await read.receive()
                print(type(message).__name__, file=__import__("sys").stderr)
                await write.aclose()  # as Server.run does: the SDK's transport waits for it
        anyio.run(main, backend={backend!r})
        """,
        stdin=json.dumps(INIT).encode() + b"\n",
    )
    assert server.returncode == 0, server.stderr.decode()
    assert b"SessionMessage" in server.stderr


def test_the_streams_close_synchronously() -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        read, write = rmcp.streams(a)
        read.close()
        write.close()
        with pytest.raises(anyio.ClosedResourceError):
            await read.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await write.send(SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=1, method="ping")))
        await a.close()
        await b.close()

    anyio.run(main)


async def sends_until_broken(write: rmcp.MessageWriter) -> int:
    """Send pings until the stream reports the peer gone; how many went."""
    for i in range(100):
        try:
            await write.send(SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=i, method="ping")))
        except anyio.BrokenResourceError:
            return i
        await anyio.sleep(0.01)
    return 100


DEAF_SERVER = """
import os, sys, time
os.close(0)  # stops reading: our writes fail
sys.stdout.write("")
time.sleep(60)
"""


def test_a_send_to_a_server_that_stopped_reading_ends_the_read_stream_too() -> None:
    """The SDK closes the read stream when a send fails, so the session sees the connection end."""

    async def main() -> None:
        params = StdioServerParameters(command=sys.executable, args=["-c", DEAF_SERVER])
        async with rmcp.stdio_client(params) as (read, write):
            await anyio.sleep(0.5)
            assert await sends_until_broken(write) < 100
            with anyio.fail_after(10), pytest.raises(anyio.EndOfStream):
                await read.receive()

    anyio.run(main)


def test_leaving_a_client_whose_server_does_not_read_is_clean_and_bounded() -> None:
    """About 1 MiB sent to a server that never reads, then the context is left: no AttributeError, no hang."""

    async def main() -> float:
        params = StdioServerParameters(command=sys.executable, args=["-c", "import time; time.sleep(60)"])
        started = 0.0
        async with rmcp.stdio_client(params) as (_, write):
            for i in range(64):
                await write.send(
                    SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=i, method="x", params={"pad": "y" * 16384}))
                )
            started = time.monotonic()
        return time.monotonic() - started

    took = anyio.run(main)
    assert took < 15
