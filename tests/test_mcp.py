"""rpcwire.mcp against the real MCP SDK (2.x) and FastMCP, in real child processes.

The envelope conversion is checked against pydantic (the SDK's own adapter); the transports are
checked by running the SDK's ClientSession / Server / mcp.Client / fastmcp.Client over them, with
the SDK's own stdio transport at the other end where the test says so.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp
import mcp_types
import pytest
import rpcwire
from hypothesis import given
from hypothesis import strategies as st
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION
from pydantic import ValidationError
from rpcwire import mcp as rmcp

from .mcp_servers import servers

SERVERS = Path(__file__).parent / "mcp_servers"
adapter = mcp_types.jsonrpc_message_adapter


def sdk_decode(d: Any) -> SessionMessage | Exception:
    """What the SDK's stdio transports make of the JSON text of ``d``."""
    try:
        return SessionMessage(adapter.validate_json(json.dumps(d), by_name=False))
    except ValueError as exc:
        return exc


def assert_same(ours: SessionMessage | Exception, theirs: SessionMessage | Exception) -> None:
    if isinstance(theirs, Exception):
        assert isinstance(ours, Exception), ours
        return
    assert isinstance(ours, SessionMessage), ours
    a, b = ours.message, theirs.message
    assert type(a) is type(b)
    assert a == b
    assert a.__dict__ == b.__dict__
    assert list(a.__dict__) == list(b.__dict__)
    assert a.model_fields_set == b.model_fields_set
    assert a.model_dump_json(by_alias=True, exclude_unset=True) == b.model_dump_json(by_alias=True, exclude_unset=True)
    assert a.model_dump(by_alias=True, mode="json") == b.model_dump(by_alias=True, mode="json")
    if isinstance(a, JSONRPCError):
        assert isinstance(b, JSONRPCError)
        assert a.error.model_fields_set == b.error.model_fields_set
    assert ours.metadata is None


# --------------------------------------------------------------------------------------------
# dict -> envelope: exactly what validate_json gives, including its quirks
# --------------------------------------------------------------------------------------------

QUIRKS: list[tuple[str, dict[str, Any], type | None]] = [
    ("request", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, JSONRPCRequest),
    ("request_params", {"jsonrpc": "2.0", "id": "a", "method": "m", "params": {"x": [1, 2]}}, JSONRPCRequest),
    ("request_params_null", {"jsonrpc": "2.0", "id": 1, "method": "m", "params": None}, JSONRPCRequest),
    ("float_id_is_notification", {"jsonrpc": "2.0", "id": 1.0, "method": "ping"}, JSONRPCNotification),
    ("bool_id_is_notification", {"jsonrpc": "2.0", "id": True, "method": "ping"}, JSONRPCNotification),
    ("null_id_is_notification", {"jsonrpc": "2.0", "id": None, "method": "ping"}, JSONRPCNotification),
    ("notification", {"jsonrpc": "2.0", "method": "notifications/initialized"}, JSONRPCNotification),
    ("extra_key_dropped", {"jsonrpc": "2.0", "id": 2, "method": "m", "x": 1}, JSONRPCRequest),
    ("response", {"jsonrpc": "2.0", "id": 3, "result": {}}, JSONRPCResponse),
    ("error", {"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "no"}}, JSONRPCError),
    (
        "error_null_id",
        {"jsonrpc": "2.0", "id": None, "error": {"code": -1, "message": "no", "data": [1]}},
        JSONRPCError,
    ),
    (
        "result_and_error_is_error",
        {"jsonrpc": "2.0", "id": 3, "result": {}, "error": {"code": 1, "message": "m"}},
        JSONRPCError,
    ),
    ("method_and_result", {"jsonrpc": "2.0", "id": 3, "method": "m", "result": {}}, JSONRPCRequest),
    ("params_list_rejected", {"jsonrpc": "2.0", "id": 1, "method": "m", "params": [1]}, None),
    ("result_list_rejected", {"jsonrpc": "2.0", "id": 1, "result": [1]}, None),
    ("version_1_rejected", {"jsonrpc": "1.0", "id": 1, "method": "m"}, None),
    ("error_code_float", {"jsonrpc": "2.0", "id": 1, "error": {"code": 1.0, "message": "m"}}, JSONRPCError),
    ("error_code_bool_is_lax_int", {"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "m"}}, JSONRPCError),
    ("empty", {}, None),
]


@pytest.mark.parametrize(("d", "expected"), [q[1:] for q in QUIRKS], ids=[q[0] for q in QUIRKS])
def test_envelope_quirks(d: dict[str, Any], expected: type | None) -> None:
    ours = rmcp.to_session_message(d)
    assert_same(ours, sdk_decode(d))
    if expected is None:
        assert isinstance(ours, ValidationError)
    else:
        assert isinstance(ours, SessionMessage)
        assert type(ours.message) is expected


def test_batch_is_an_exception_item() -> None:
    item = rmcp.to_session_message([{"jsonrpc": "2.0", "method": "m"}])
    assert isinstance(item, ValidationError)
    assert isinstance(sdk_decode([{"jsonrpc": "2.0", "method": "m"}]), ValidationError)


def test_codec_error_items_pass_through() -> None:
    import rpcwire

    err = rpcwire.ParseError("bad", id=None)
    assert rmcp.to_session_message(err) is err


json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
error_obj = st.dictionaries(
    st.sampled_from(["code", "message", "data", "other"]),
    st.one_of(json_value, st.integers(-40000, 10), st.text(max_size=5)),
    max_size=4,
)
envelope = st.dictionaries(
    st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "extra"]),
    st.one_of(
        st.just("2.0"),
        json_value,
        st.dictionaries(st.text(max_size=4), json_value, max_size=3),
        error_obj,
        st.sampled_from(["tools/call", "ping", "notifications/progress"]),
    ),
    min_size=1,
    max_size=5,
).map(lambda d: {"jsonrpc": "2.0", **d} if "jsonrpc" not in d and len(d) % 2 else d)


request_id = st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=4), st.none(), st.booleans(), st.floats(-2, 2))
json_object = st.dictionaries(st.text(max_size=4), json_value, max_size=3)
near_valid = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0"])},
    optional={
        "id": request_id,
        "method": st.one_of(st.sampled_from(["tools/call", "ping"]), json_scalar),
        "params": st.one_of(json_object, st.none(), st.lists(json_scalar, max_size=2)),
        "result": st.one_of(json_object, json_value),
        "error": st.one_of(
            st.fixed_dictionaries(
                {
                    "code": st.one_of(st.integers(-40000, 10), json_scalar),
                    "message": st.one_of(st.text(max_size=5), json_scalar),
                },
                optional={"data": json_value, "other": json_value},
            ),
            error_obj,
        ),
    },
)


@given(st.one_of(envelope, near_valid))
def test_envelope_matches_sdk(d: dict[str, Any]) -> None:
    assert_same(rmcp.to_session_message(d), sdk_decode(d))


SENT = [
    JSONRPCRequest(jsonrpc="2.0", id=1, method="tools/list"),
    JSONRPCRequest(jsonrpc="2.0", id="x", method="m", params=None),
    JSONRPCRequest(jsonrpc="2.0", id=2, method="m", params={"é": "ü", "n": 1.5}),
    JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized"),
    JSONRPCResponse(jsonrpc="2.0", id=3, result={"content": [{"type": "text", "text": "a\nb"}]}),
    JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=-32700, message="Parse error")),
    JSONRPCError(jsonrpc="2.0", id=4, error=ErrorData(code=-1, message="m", data={"k": None})),
]


@pytest.mark.parametrize("model", SENT, ids=lambda m: type(m).__name__)
def test_serialize_is_sdk_bytes(model: Any) -> None:
    data = rmcp.messages._serialize(SessionMessage(model))
    assert data.decode() == model.model_dump_json(by_alias=True, exclude_unset=True)
    back = rmcp.to_session_message(json.loads(data))
    assert isinstance(back, SessionMessage)
    assert back.message.model_dump_json(by_alias=True, exclude_unset=True) == data.decode()
    assert_same(back, sdk_decode(json.loads(data)))


# --------------------------------------------------------------------------------------------
# helpers for the transport tests
# --------------------------------------------------------------------------------------------

TIMEOUT = 60.0


def arun(fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)`` on a fresh asyncio loop with a hard time bound."""

    async def guarded() -> Any:
        with anyio.fail_after(TIMEOUT):
            return await fn(*args)

    return asyncio.run(guarded())


def text_of(result: Any) -> str:
    assert not result.is_error, result
    text: str = result.content[0].text
    return text


@pytest.fixture
def sock_path() -> Iterator[str]:
    # Unix socket paths are short (108 bytes): a fresh short directory instead of tmp_path.
    d = tempfile.mkdtemp(prefix="rw-mcp-")
    yield f"unix://{d}/s.sock"
    shutil.rmtree(d, ignore_errors=True)


def server_params(kind: str, transport: str, **kwargs: Any) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=[str(SERVERS / "stdio_server.py"), kind, transport], **kwargs
    )


# --------------------------------------------------------------------------------------------
# sockets: rpcwire.mcp.connect / serve, with the SDK's mcp.Client and ClientSession
# --------------------------------------------------------------------------------------------

CODECS = {
    "ndjson": {},
    "length-lz4": {"framing": "length", "compression": "lz4", "compress_min_size": 64},
    "aes-brotli": {"compression": "brotli", "keyring": "fresh"},
}


def codec_options(name: str) -> dict[str, Any]:
    opts = dict(CODECS[name])
    if opts.get("keyring") == "fresh":
        opts["keyring"] = rpcwire.Keyring.generate()
    return opts


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_client_both_eras_over_unix(sock_path: str, mode: str, codec: str) -> None:
    """mcp.Client (default auto: 2026-07-28 against a 2.x server; or forced legacy) over rpcwire.mcp.connect."""
    opts = codec_options(codec)

    async def main() -> None:
        async with (
            await rmcp.serve(servers.lowlevel(), sock_path, **opts) as srv,
            mcp.Client(rmcp.connect(srv.address, **opts), mode=mode) as client,
        ):
            if mode == "auto":
                assert client.session.protocol_version == LATEST_MODERN_VERSION
            else:
                assert client.session.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
            tools = await client.list_tools()
            assert {t.name for t in tools.tools} >= {"echo", "blob"}
            assert text_of(await client.call_tool("echo", {"text": "héllo\nwörld"})) == "héllo\nwörld"
            # Concurrent calls on one connection: responses are matched by id.
            results = await asyncio.gather(*(client.call_tool("echo", {"text": str(i)}) for i in range(20)))
            assert [text_of(r) for r in results] == [str(i) for i in range(20)]

    arun(main)


@pytest.mark.parametrize("kind", ["lowlevel", "mcpserver", "fastmcp"])
def test_every_server_kind_over_tcp(kind: str) -> None:
    """rpcwire.mcp.serve runs a low-level Server, an MCPServer and a FastMCP server; ClientSession talks to each."""

    async def main() -> None:
        async with await rmcp.serve(servers.KINDS[kind](), "tcp://127.0.0.1:0") as srv:
            assert srv.address.startswith("tcp://127.0.0.1:")
            async with rmcp.connect(srv.address) as (read, write), ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
                assert text_of(await session.call_tool("echo", {"text": kind})) == kind

    arun(main)


def test_one_session_per_connection(sock_path: str) -> None:
    """Two clients of one socket server: two independent sessions (each initializes on its own)."""

    async def main() -> None:
        async with (
            await rmcp.serve(servers.mcpserver(), sock_path) as srv,
            mcp.Client(rmcp.connect(srv.address)) as a,
            mcp.Client(rmcp.connect(srv.address)) as b,
        ):
            ra, rb = await asyncio.gather(a.call_tool("echo", {"text": "a"}), b.call_tool("echo", {"text": "b"}))
            assert (text_of(ra), text_of(rb)) == ("a", "b")

    arun(main)


def test_five_megabyte_result_over_socket(sock_path: str) -> None:
    opts = {"compression": "lz4", "keyring": rpcwire.Keyring.generate()}

    async def main() -> None:
        async with (
            await rmcp.serve(servers.lowlevel(), sock_path, **opts) as srv,
            mcp.Client(rmcp.connect(srv.address, **opts)) as client,
        ):
            text = text_of(await client.call_tool("blob", {"size": 5_000_000}))
            assert text == "x" * 5_000_000

    arun(main)


def test_fastmcp_client_and_server_over_unix_with_aes(sock_path: str) -> None:
    import fastmcp

    keyring = rpcwire.Keyring.generate()

    async def main() -> None:
        transport = rmcp.FastMCPClientTransport(sock_path, keyring=keyring)
        assert isinstance(transport, fastmcp.client.transports.ClientTransport)
        async with (
            await rmcp.serve(servers.fastmcp(), sock_path, keyring=keyring),
            fastmcp.Client(transport) as client,
        ):
            tools = await client.list_tools()
            assert {t.name for t in tools} >= {"echo", "blob"}
            result = await client.call_tool("echo", {"text": "over AES"})
            assert result.content[0].text == "over AES"

    arun(main)


def test_wrong_key_is_refused(sock_path: str) -> None:
    """A client with another key cannot talk to the server: the session fails instead of hanging."""

    async def main() -> None:
        async with await rmcp.serve(servers.lowlevel(), sock_path, keyring=rpcwire.Keyring.generate()) as srv:
            with pytest.raises(Exception) as info:
                async with mcp.Client(rmcp.connect(srv.address, keyring=rpcwire.Keyring.generate())) as client:
                    await client.list_tools()
            assert not isinstance(info.value, TimeoutError)

    arun(main)


async def _injecting_proxy(target: str, listen: str, junk: bytes) -> asyncio.AbstractServer:
    """A byte-level Unix proxy to ``target`` that sends ``junk`` first in both directions."""
    target_path = target.removeprefix("unix://")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(junk)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_unix_connection(target_path)
        await asyncio.gather(pipe(cr, sw), pipe(sr, cw))

    return await asyncio.start_unix_server(handle, listen.removeprefix("unix://"))


def test_malformed_lines_both_ways_the_session_survives(sock_path: str) -> None:
    """A garbage line and a batch reach each side as Exception items; the session goes on."""
    seen: list[Any] = []

    async def handler(message: Any) -> None:
        seen.append(message)

    async def main() -> None:
        async with await rmcp.serve(servers.lowlevel(), sock_path) as srv:
            proxy_addr = sock_path.replace("s.sock", "p.sock")
            proxy = await _injecting_proxy(srv.address, proxy_addr, b"{this is not json\n[1,2]\n")
            async with proxy:
                async with (
                    rmcp.connect(proxy_addr) as (read, write),
                    ClientSession(read, write, message_handler=handler) as session,
                ):
                    await session.initialize()
                    assert text_of(await session.call_tool("echo", {"text": "still here"})) == "still here"
                proxy.close()

    arun(main)
    errors = [m for m in seen if isinstance(m, Exception)]
    assert len(errors) == 2, seen
    assert isinstance(errors[0], rpcwire.ParseError)
    assert isinstance(errors[1], ValidationError)


# --------------------------------------------------------------------------------------------
# the streams themselves
# --------------------------------------------------------------------------------------------


def test_stream_contract_eof_broken_closed() -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        read, write = rmcp.streams(a)
        await b.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await b.send(b"[]")
        first = await read.receive()
        assert isinstance(first, SessionMessage)
        assert isinstance(first.message, JSONRPCNotification)
        second = await read.__anext__()
        assert isinstance(second, Exception)
        await write.send(SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=1, method="x")))
        assert await b.receive() == {"jsonrpc": "2.0", "id": 1, "method": "x"}
        await b.close()
        with pytest.raises(anyio.EndOfStream):
            await read.receive()
        with pytest.raises(StopAsyncIteration):
            await read.__anext__()
        with pytest.raises(anyio.BrokenResourceError):
            await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="x")))
        for _ in range(2):
            await read.aclose()
            await write.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await read.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="x")))
        await a.close()

    arun(main)


# --------------------------------------------------------------------------------------------
# stdio, in real child processes, against the SDK's own stdio transports at either end
# --------------------------------------------------------------------------------------------


async def _exercise(session: ClientSession, *, big: bool = False) -> None:
    await session.initialize()
    assert text_of(await session.call_tool("echo", {"text": "héllo"})) == "héllo"
    # A stray print in a handler goes to stderr, not onto the wire.
    assert text_of(await session.call_tool("shout", {"text": "stray-print-marker"})) == "stray-print-marker"
    if big:
        assert text_of(await session.call_tool("blob", {"size": 5_000_000})) == "x" * 5_000_000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("client", "server"),
    [("rpcwire", "rpcwire"), ("rpcwire", "sdk"), ("sdk", "rpcwire")],
    ids=["rpcwire-rpcwire", "rpcwire-client-sdk-server", "sdk-client-rpcwire-server"],
)
def test_stdio_interop(client: str, server: str, tmp_path: Path) -> None:
    """ClientSession over rpcwire.mcp.stdio_client and/or a child on rpcwire.mcp.stdio_server, 5 MB result."""
    from mcp.client.stdio import stdio_client as sdk_stdio_client

    connect = rmcp.stdio_client if client == "rpcwire" else sdk_stdio_client
    errlog_path = tmp_path / "stderr.txt"

    async def main() -> None:
        with errlog_path.open("w") as errlog:
            async with (
                connect(server_params("lowlevel", server), errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await _exercise(session, big=True)

    arun(main)
    # The child's stderr went to errlog, and the stray print with it.
    assert "stray-print-marker" in errlog_path.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mcpserver", "fastmcp"])
def test_stdio_run_stdio_kinds(kind: str) -> None:
    """rpcwire.mcp.run_stdio serves an MCPServer and a FastMCP server; mcp.Client negotiates the modern era."""

    async def main() -> None:
        async with (
            rmcp.stdio_client(server_params(kind, "rpcwire")) as (read, write),
            mcp.Client(_Pair(read, write)) as client,
        ):
            assert client.session.protocol_version == LATEST_MODERN_VERSION
            assert text_of(await client.call_tool("echo", {"text": kind})) == kind

    arun(main)


class _Pair:
    """An mcp.client.Transport over an already open stream pair."""

    def __init__(self, read: Any, write: Any) -> None:
        self.pair = (read, write)

    async def __aenter__(self) -> Any:
        return self.pair

    async def __aexit__(self, *exc: object) -> None:
        return None


def test_stdio_client_environment_rules() -> None:
    """The child sees get_default_environment() | server.env, as with the SDK's stdio_client."""
    from mcp.client.stdio import get_default_environment

    async def main() -> str:
        params = server_params("lowlevel", "rpcwire", env={"RPCWIRE_TEST_VAR": "1"})
        async with rmcp.stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return text_of(await session.call_tool("env", {}))

    names = set(arun(main).split(","))
    expected = set(get_default_environment()) | {"RPCWIRE_TEST_VAR"}
    # Python itself may add a few (e.g. LC_CTYPE coercion); nothing else of ours leaks in.
    assert expected <= names
    assert not (names - expected - {"LC_CTYPE"}), names - expected


def test_stdio_server_survives_malformed_lines() -> None:
    """Raw lines into a child on rpcwire.mcp.stdio_server: garbage and a batch are dropped, then it answers."""

    async def main() -> list[dict[str, Any]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SERVERS / "stdio_server.py"),
            "lowlevel",
            "rpcwire",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1],
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        }
        proc.stdin.write(b"not json at all\n[1, 2]\n\r\n" + json.dumps(init).encode() + b"\r\n")
        await proc.stdin.drain()
        first = json.loads(await proc.stdout.readline())
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        proc.stdin.write(b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n')
        await proc.stdin.drain()
        second = json.loads(await proc.stdout.readline())
        proc.stdin.close()
        assert await proc.wait() == 0
        return [first, second]

    first, second = arun(main)
    assert first["id"] == 1
    assert first["result"]["protocolVersion"] == HANDSHAKE_PROTOCOL_VERSIONS[-1]
    assert second["id"] == 2
    assert {t["name"] for t in second["result"]["tools"]} >= {"echo", "blob"}


@pytest.mark.slow
def test_chain_connect_tcp_aes_bridge(tmp_path: Path) -> None:
    """SDK client -> `rpcwire connect` -> encrypted TCP -> `rpcwire bridge` -> an unchanged SDK stdio server."""
    import socket
    import subprocess

    key = tmp_path / "key.json"
    rpcwire.Keyring.generate().to_file(str(key))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    child = [sys.executable, str(SERVERS / "stdio_server.py"), "lowlevel", "sdk"]
    bridge_argv = [sys.executable, "-m", "rpcwire", "bridge", address, "--key-file", str(key), "--compression", "lz4"]
    bridge = subprocess.Popen([*bridge_argv, "--", *child], stderr=subprocess.PIPE)
    try:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "rpcwire", "connect", address, "--key-file", str(key), "--compression", "lz4", "--retry"],
        )

        async def main() -> None:
            from mcp.client.stdio import stdio_client as sdk_stdio_client

            async with sdk_stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await _exercise(session, big=True)

        arun(main)
    finally:
        bridge.terminate()
        _, err = bridge.communicate(timeout=30)
    assert bridge.returncode == 0, err.decode()


# --------------------------------------------------------------------------------------------
# big messages over stdio: as the SDK by default, and never hanging or blaming the next call
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_twenty_megabyte_result_and_argument_over_stdio_by_default() -> None:
    """The SDK's stdio has no size limit; rpcwire.mcp's stdio default (1 GiB) is no stricter in practice."""

    async def main() -> None:
        async with (
            rmcp.stdio_client(server_params("lowlevel", "rpcwire")) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            assert len(text_of(await session.call_tool("blob", {"size": 20_000_000}))) == 20_000_000
            assert len(text_of(await session.call_tool("echo", {"text": "y" * 20_000_000}))) == 20_000_000

    arun(main)


def test_a_result_over_the_servers_limit_is_an_error_response_and_the_next_call_works() -> None:
    async def main() -> None:
        params = StdioServerParameters(
            command=sys.executable, args=[str(SERVERS / "stdio_server.py"), "lowlevel", "rpcwire", "1000000"]
        )
        async with rmcp.stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            with pytest.raises(MCPError, match=r"exceeds max_frame_size 1000000"):
                await session.call_tool("blob", {"size": 2_000_000})
            assert text_of(await session.call_tool("echo", {"text": "next"})) == "next"

    arun(main)


def test_an_argument_over_the_clients_limit_fails_that_call_and_the_next_call_works() -> None:
    async def main() -> None:
        params = server_params("lowlevel", "rpcwire")
        async with (
            rmcp.stdio_client(params, max_frame_size=1_000_000) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            with pytest.raises(MCPError, match=r"exceeds max_frame_size 1000000"):
                await session.call_tool("echo", {"text": "z" * 2_000_000})
            assert text_of(await session.call_tool("echo", {"text": "next"})) == "next"

    arun(main)
