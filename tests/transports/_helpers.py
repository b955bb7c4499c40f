"""Helpers shared by the transport tests and by the child scripts they run."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import rpcwire


def note(i: int, pad: int = 100) -> dict[str, Any]:
    """A ~150-byte JSON-RPC notification numbered ``i``."""
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"i": i, "pad": "x" * pad}}


def request(i: int, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": i, "method": "echo", "params": params}


def answer(msg: Any) -> dict[str, Any] | None:
    """Requests get their params back; notifications get nothing."""
    if "id" in msg:
        return {"jsonrpc": "2.0", "id": msg["id"], "result": msg["params"]}
    return None


async def echo_handler(t: rpcwire.Transport) -> None:
    """Answer every request with its params; answer ProtocolError items with their error response."""
    async for msg in t:
        if isinstance(msg, rpcwire.ProtocolError):
            await t.send(msg.to_error())
        elif isinstance(msg, dict) and "id" in msg:
            await t.send({"jsonrpc": "2.0", "id": msg["id"], "result": msg.get("params")})
        else:
            await t.send({"jsonrpc": "2.0", "id": None, "result": msg})


def wait_for_path(path: str, timeout: float = 10.0) -> None:
    """Wait (blocking) until a server started in another process has created its Unix socket at ``path``."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


@contextlib.contextmanager
def ready_children(argvs: list[list[str]], timeout: float = 15.0) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start a child per argv, each ready once it prints ``ready`` on stdout; on exit, SIGTERM them and wait
    (SIGKILL after ``timeout`` seconds)."""
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) for argv in argvs]
    try:
        for argv, proc in zip(argvs, procs, strict=True):
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == b"ready\n", f"{argv[1:]} did not start: {line!r}"
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
