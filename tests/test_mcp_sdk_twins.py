"""Twins of the MCP SDK stdio tests that drive the SDK's private machinery (conformance/internals.py).

Each SDK test here is named in its twin's docstring. Where the SDK test fakes a process through its private
spawn hooks, the twin runs a real server process through ``rpcwire.mcp.stdio_client`` and checks the same
behaviour from outside: what the session sees, what the server saw, how it exited, what is left running.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED, JSONRPCNotification, JSONRPCRequest
from rpcwire import mcp as rmcp

TIMEOUT = 30


def server(code: str, *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-c", textwrap.dedent(code), *args])


def run(fn: Any, *args: Any) -> Any:
    async def guarded() -> Any:
        with anyio.fail_after(TIMEOUT):
            return await fn(*args)

    return anyio.run(guarded)


def request(i: int, method: str = "ping") -> SessionMessage:
    return SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=i, method=method))


async def send_many(write: Any, n: int) -> None:
    for i in range(n):
        await write.send(request(i))


def children_of_us() -> set[int]:
    """Our live child processes (a zombie is dead, waiting for its parent to reap it)."""
    alive = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.add(p.pid)
        except psutil.NoSuchProcess:  # noqa: PERF203 - it ended while we looked
            pass
    return alive


def test_messages_split_and_packed_across_chunks_are_reframed() -> None:
    """Twin of tests/client/test_stdio.py::test_messages_split_and_packed_across_chunks_are_reframed."""
    code = """
    import os, time
    one = b'{"jsonrpc":"2.0","method":"a"}\\n'
    two = b'{"jsonrpc":"2.0","method":"b"}\\n{"jsonrpc":"2.0","method":"c"}\\n'
    os.write(1, one[:7]); time.sleep(0.05); os.write(1, one[7:] + two[:40]); time.sleep(0.05); os.write(1, two[40:])
    os.read(0, 1)
    """

    async def main() -> list[str]:
        async with rmcp.stdio_client(server(code)) as (read, _):
            return [(await read.receive()).message.method for _ in range(3)]  # type: ignore[union-attr]

    assert run(main) == ["a", "b", "c"]


def test_each_outgoing_message_is_written_as_exactly_one_line(tmp_path: Path) -> None:
    """Twin of tests/client/test_stdio.py::test_each_outgoing_message_is_written_as_exactly_one_line."""
    seen = tmp_path / "lines"
    code = f"""
    import sys
    with open({str(seen)!r}, "w") as out:
        for line in sys.stdin:
            out.write(line)
    """

    async def main() -> None:
        async with rmcp.stdio_client(server(code)) as (_, write):
            for i in range(3):
                await write.send(request(i))

    run(main)
    lines = seen.read_text().splitlines(keepends=True)
    assert [json.loads(line)["id"] for line in lines] == [0, 1, 2]
    assert all(line.endswith("}\n") and line.count("\n") == 1 for line in lines)


def test_invalid_json_from_the_server_surfaces_as_an_in_stream_exception() -> None:
    """Twin of tests/client/test_stdio.py::test_invalid_json_from_the_server_surfaces_as_an_in_stream_exception."""
    code = """
    import os
    os.write(1, b'this is not json\\n{"jsonrpc":"2.0","method":"after"}\\n')
    os.read(0, 1)
    """

    async def main() -> tuple[Any, Any]:
        async with rmcp.stdio_client(server(code)) as (read, _):
            return await read.receive(), await read.receive()

    bad, good = run(main)
    assert isinstance(bad, ValueError)
    assert good.message.method == "after"


def test_a_server_that_dies_before_responding_fails_initialize_with_connection_closed() -> None:
    """Twin of tests/client/test_stdio.py::test_a_server_that_dies_before_responding_fails_initialize_with_
    connection_closed, and of ::test_a_kill_racing_a_pending_stdout_read_is_swallowed_during_shutdown (the
    server is killed while the session reads)."""

    async def main(code: str) -> int:
        async with rmcp.stdio_client(server(code)) as (read, write), ClientSession(read, write) as session:
            with pytest.raises(MCPError) as caught:
                await session.initialize()
            return caught.value.error.code

    assert run(main, "import sys; sys.stdin.readline(); sys.exit(3)") == CONNECTION_CLOSED
    assert run(main, "import os, signal, sys; sys.stdin.readline(); os.kill(os.getpid(), signal.SIGKILL)") == (
        CONNECTION_CLOSED
    )


def test_a_server_that_exits_on_stdin_close_is_never_terminated(tmp_path: Path) -> None:
    """Twin of tests/client/test_stdio.py::test_a_server_that_exits_on_stdin_close_is_never_terminated and of
    tests/transports/stdio/test_lifecycle.py::test_a_server_that_exits_on_stdin_close_is_reaped_and_never_terminated:
    the server saw its stdin end and exited 0 (no SIGTERM), within the grace period."""
    mark = tmp_path / "eof"
    code = f"""
    import signal, sys
    signal.signal(signal.SIGTERM, lambda *a: open({str(mark)!r}, "w").write("terminated"))
    sys.stdin.read()
    open({str(mark)!r}, "w").write("eof")
    """

    async def main() -> float:
        async with rmcp.stdio_client(server(code)):
            pass
        return time.monotonic()

    started = time.monotonic()
    assert run(main) - started < 10
    assert mark.read_text() == "eof"


def test_a_server_that_exits_mid_session_keeps_its_own_exit_code() -> None:
    """Twin of tests/transports/stdio/test_lifecycle.py::test_a_server_that_exits_mid_session_keeps_its_own_
    exit_code."""
    code = "import sys; sys.stdin.readline(); sys.exit(7)"

    async def main() -> int | None:
        async with rmcp.stdio_client(server(code)) as (read, write):
            await write.send(request(1))
            with pytest.raises(anyio.EndOfStream):
                await read.receive()
            wire = write._wire  # the rpcwire transport under the streams
        return wire.exit_code  # type: ignore[attr-defined, no-any-return]

    assert run(main) == 7


BACKLOG = 'os.write(1, b\'{"jsonrpc":"2.0","method":"x"}\\n\' * 20000)'


@pytest.mark.parametrize("when", ["during spawn", "mid session", "with an undelivered backlog"])
def test_cancelling_the_client_still_runs_the_full_shutdown(when: str, tmp_path: Path) -> None:
    """Twin of tests/client/test_stdio.py::test_cancelling_the_client_still_runs_the_full_shutdown,
    ::test_cancellation_during_spawn_leaks_no_streams,
    ::test_cancellation_with_undelivered_backlog_still_drains_and_spares_the_server and (on POSIX, where command
    resolution does not block) ::test_cancellation_during_windows_command_resolution_returns_before_resolution_finishes:
    the server is gone afterwards, and one that exits at stdin EOF was spared (exit 0, no signal)."""
    mark = tmp_path / "exit"
    backlog = BACKLOG if "backlog" in when else ""
    code = f"""
    import os, sys
    os.write(1, b'{{"jsonrpc":"2.0","method":"up"}}\\n')
    {backlog}
    sys.stdin.read()
    open({str(mark)!r}, "w").write("eof")
    """
    before = children_of_us()

    async def main() -> None:
        with anyio.CancelScope() as scope:
            if when == "during spawn":
                scope.cancel()
            async with rmcp.stdio_client(server(code)) as (read, _):
                await read.receive()  # the session is up
                scope.cancel()
                await read.receive()  # cancelled here

    run(main)
    for _ in range(100):  # a killed process takes a moment to become a zombie
        if children_of_us() <= before:
            break
        time.sleep(0.02)
    assert children_of_us() <= before
    if when != "during spawn":
        assert mark.read_text() == "eof"


def test_writing_after_the_server_dies_reports_clean_closure() -> None:
    """Twin of tests/client/test_stdio.py::test_writing_after_the_server_dies_reports_clean_closure."""

    async def main() -> None:
        async with rmcp.stdio_client(server("import sys; sys.exit(0)")) as (read, write):
            with pytest.raises(anyio.EndOfStream):
                await read.receive()
            with pytest.raises(anyio.BrokenResourceError):
                await send_many(write, 50)

    run(main)


def test_exiting_with_an_unconsumed_server_message_does_not_raise() -> None:
    """Twin of tests/client/test_stdio.py::test_exiting_with_an_unconsumed_server_message_does_not_raise and
    ::test_a_failed_write_to_a_live_server_closes_the_read_stream_instead_of_hanging (see also
    tests/test_mcp_stdio_contract.py)."""
    code = """
    import os, sys
    os.write(1, b'{"jsonrpc":"2.0","method":"unread"}\\n')
    sys.stdin.read()
    """

    async def main() -> None:
        async with rmcp.stdio_client(server(code)):
            await anyio.sleep(0.2)

    run(main)


@pytest.mark.parametrize(
    ("command", "error"),
    [("/no/such/server", FileNotFoundError), (str(Path(__file__)), PermissionError)],
)
def test_spawn_failure_propagates_the_error_and_leaks_no_streams(command: str, error: type[OSError]) -> None:
    """Twin of tests/client/test_stdio.py::test_spawn_failure_propagates_the_error_and_leaks_no_streams."""
    before = children_of_us()

    async def main() -> None:
        with pytest.raises(error):
            async with rmcp.stdio_client(StdioServerParameters(command=command)):
                pass

    run(main)
    assert children_of_us() <= before


def test_a_non_oserror_spawn_failure_propagates_and_leaks_no_streams() -> None:
    """Twin of tests/client/test_stdio.py::test_a_non_oserror_spawn_failure_propagates_and_leaks_no_streams."""

    async def main() -> None:
        with pytest.raises(ValueError, match="null"):
            async with rmcp.stdio_client(StdioServerParameters(command=sys.executable, args=["-c", "x\0y"])):
                pass

    run(main)


def test_a_message_sent_just_before_exit_is_flushed_to_the_server(tmp_path: Path) -> None:
    """Twin of tests/client/test_stdio.py::test_a_message_sent_just_before_exit_is_flushed_to_the_server."""
    seen = tmp_path / "seen"
    code = f"""
    import sys
    data = sys.stdin.read()
    open({str(seen)!r}, "w").write(data)
    """

    async def main() -> None:
        async with rmcp.stdio_client(server(code)) as (_, write):
            await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="last")))

    run(main)
    assert json.loads(seen.read_text())["method"] == "last"


def test_undelivered_server_output_is_drained_at_shutdown_so_the_server_can_exit(tmp_path: Path) -> None:
    """Twin of tests/client/test_stdio.py::test_undelivered_server_output_is_drained_at_shutdown_so_the_server_
    can_exit, ::test_shutdown_drains_stdout_first_so_a_wedged_writers_flush_can_complete and
    ::test_invalid_utf8_flushed_by_a_dying_server_does_not_break_shutdown: a server writing 4 MiB (with invalid
    UTF-8 in it) that the client never reads still finishes, sees stdin end, and exits by itself."""
    mark = tmp_path / "exit"
    code = f"""
    import os, sys
    line = b'{{"jsonrpc":"2.0","method":"x","params":{{"p":"' + b"y" * 4000 + b'"}}}}\\n'
    for _ in range(1000):
        os.write(1, line)
    os.write(1, b"\\xff\\xfe not utf-8\\n")
    sys.stdin.read()
    open({str(mark)!r}, "w").write("eof")
    """

    async def main() -> None:
        async with rmcp.stdio_client(server(code)) as (_, write):
            await write.send(request(1))

    run(main)
    assert mark.read_text() == "eof"


def test_a_mid_session_stdout_failure_surfaces_as_clean_closure() -> None:
    """Twin of tests/client/test_stdio.py::test_a_mid_session_stdout_failure_is_logged_and_surfaces_as_clean_
    closure and ::test_a_failing_stdout_close_still_closes_the_transport_streams: the server's stdout ends while
    it lives on; the read stream ends cleanly and leaving the client is clean."""
    code = """
    import os, sys, time
    os.write(1, b'{"jsonrpc":"2.0","method":"before"}\\n')
    os.close(1)
    sys.stdin.read()
    """

    async def main() -> None:
        async with rmcp.stdio_client(server(code)) as (read, _):
            assert (await read.receive()).message.method == "before"  # type: ignore[union-attr]
            with pytest.raises(anyio.EndOfStream):
                await read.receive()

    run(main)


def test_kill_escalation_is_bounded() -> None:
    """Twin of tests/client/test_stdio.py::test_a_process_surviving_the_kill_escalation_is_logged_and_abandoned,
    as far as a real process allows (none survives SIGKILL): a server that ignores stdin EOF and SIGTERM is
    killed, and leaving the client takes the two grace periods, not longer."""
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"

    async def main() -> float:
        started = time.monotonic()
        async with rmcp.stdio_client(server(code)):
            pass
        return time.monotonic() - started

    assert run(main) < 2 + 2 + 2 + 3


def test_a_graceful_exit_with_a_surviving_child(tmp_path: Path) -> None:
    """Twin of tests/transports/stdio/test_posix.py::test_a_gracefully_exiting_servers_child_survives_the_client_
    shutdown, ::test_a_surviving_childs_write_to_the_inherited_stdout_fails_with_epipe and
    tests/client/test_stdio.py::test_a_graceful_exit_with_a_surviving_child_leaks_no_pipe_fds: the server exits
    at stdin EOF leaving a child; the child survives the client (the SDK's policy), its later write to the
    inherited stdout fails with EPIPE, and the client keeps no pipe descriptor."""
    pidfile = tmp_path / "child.pid"
    result = tmp_path / "errno"
    child = f"""
import errno, os, signal, time
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
open({str(pidfile)!r}, "w").write(str(os.getpid()))
time.sleep(1.5)
try:
    os.write(1, b"late\\n")
    outcome = "written"
except OSError as exc:
    outcome = errno.errorcode[exc.errno]
open({str(result)!r}, "w").write(outcome)
"""
    code = f"""
    import subprocess, sys
    subprocess.Popen([sys.executable, "-c", {child!r}])
    sys.stdin.read()
    """
    fds_before = len(os.listdir("/proc/self/fd"))

    async def main() -> None:
        async with rmcp.stdio_client(server(code)):
            for _ in range(100):
                if pidfile.exists():
                    break
                await anyio.sleep(0.05)

    run(main)
    pid = int(pidfile.read_text())
    assert psutil.pid_exists(pid), "the server's child survived the client's shutdown"
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    for _ in range(100):
        if result.exists():
            break
        time.sleep(0.05)
    assert result.read_text() == "EPIPE"
    for _ in range(100):  # the child ends by itself after its write
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)


def test_stdio_server_with_stderr_closed_guards_fd_1_with_the_null_device() -> None:
    """Twin of tests/server/test_stdio.py::test_stdio_server_diverts_stdout_to_the_null_device_when_stderr_is_
    unusable: a real server started with fd 2 closed; a stray print goes nowhere, the wire stays clean."""
    import subprocess

    code = """
    import anyio
    from rpcwire.mcp import stdio_server
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCResponse
    async def main():
        async with stdio_server() as (read, write):
            message = await read.receive()
            print("stray")
            await write.send(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=message.message.id, result={})))
            await write.aclose()
    anyio.run(main)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        input=b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n',
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.close(2),
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [{"jsonrpc": "2.0", "id": 1, "result": {}}]


def test_claim_failures_degrade_to_serving_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twin of tests/server/test_stdio.py::test_stdio_server_reads_stdin_in_place_when_descriptor_isolation_fails,
    ::test_stdio_server_serves_in_place_when_the_diversion_cannot_be_opened and
    ::test_stdio_server_exits_cleanly_when_the_stdin_restore_fails, on rpcwire's own claim: a descriptor that
    cannot be duplicated, diverted or restored is logged and the wire is served in place; nothing raises."""
    from rpcwire import _stdio

    def refuse(*args: Any) -> int:
        raise OSError("injected descriptor failure")

    # No diversion can be opened: served in place, released cleanly.
    class Stream:
        buffer = type("B", (), {"fileno": staticmethod(lambda: 0)})()

    monkeypatch.setattr(_stdio, "_open_diversion", refuse)
    buffer, release = _stdio.claim_std_stream(0, Stream(), "rb")
    assert buffer is Stream.buffer
    release()
    assert 0 not in _stdio._claimed
    # A restore that fails (here: a descriptor that is not open) is logged, not raised.
    _stdio._give_back(9999, 0)
