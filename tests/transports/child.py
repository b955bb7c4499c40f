"""Child process for the stdio/spawn tests: ``python child.py MODE``; codec options in $RPCWIRE_TEST_OPTS (JSON).

Modes:
    echo        answer each request with its params; ``{"method": "exit", "params": {"code": N}}`` exits with N
                (after flushing); ``{"method": "print"}`` writes stray output to stdout in three ways.
    delayed     answer each request after a short delay, from a task; at stdin EOF wait for every answer.
    flood       send ``params.count`` notifications of ``params.size`` bytes as fast as the transport allows, then
                a final message with this process's RSS after a quarter of them and at the end.
    half-frame  write half a length-prefixed frame to stdout, then exit 5.
    stubborn    ignore stdin EOF and SIGTERM, start a grandchild in the same group, report its pid, sleep.
    polite      ignore stdin EOF, exit on SIGTERM.
    orphaning   start a grandchild in the same group that ignores SIGTERM, report its pid, exit on SIGTERM.
    after       run ``echo`` until EOF, then print "after" (stdout must be the real one again).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from typing import Any

import rpcwire


def options() -> dict[str, Any]:
    opts: dict[str, Any] = json.loads(os.environ.get("RPCWIRE_TEST_OPTS", "{}"))
    key = opts.pop("key", None)
    if key is not None:
        opts["keyring"] = rpcwire.Keyring({1: bytes.fromhex(key)})
    return opts


async def echo(t: rpcwire.Transport) -> None:
    async for msg in t:
        if isinstance(msg, rpcwire.ProtocolError):
            await t.send(msg.to_error())
            continue
        method = msg.get("method")
        if method == "exit":
            await t.close()
            sys.exit(int(msg["params"]["code"]))
        if method == "print":
            print("stray print from the server")  # noqa: T201 - the point of the test
            sys.stdout.write("stray sys.stdout.write\n")
            sys.stdout.flush()
            os.write(1, b"stray os.write(1)\n")
        await t.send({"jsonrpc": "2.0", "id": msg.get("id"), "result": msg.get("params")})


async def delayed(t: rpcwire.Transport) -> None:
    tasks: set[asyncio.Task[None]] = set()

    async def answer(msg: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        await t.send({"jsonrpc": "2.0", "id": msg["id"], "result": msg.get("params")})

    async for msg in t:
        tasks.add(asyncio.create_task(answer(msg)))
    await asyncio.gather(*tasks)


async def flood(t: rpcwire.Transport) -> None:
    first = await t.receive()
    count, size = int(first["params"]["count"]), int(first["params"]["size"])
    blob = "x" * size
    rss_at_quarter = 0
    for i in range(count):
        if i == count // 4:
            rss_at_quarter = rss()
        await t.send({"jsonrpc": "2.0", "method": "blob", "params": {"i": i, "blob": blob}})
    await t.send(
        {"jsonrpc": "2.0", "method": "done", "params": {"rss_at_quarter": rss_at_quarter, "rss_at_end": rss()}}
    )


def rss() -> int:
    """Resident set size in bytes, now."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def unresponsive(mode: str) -> None:
    """Modes that never read stdin: run without an event loop."""
    if mode == "half-frame":
        os.write(1, (1000).to_bytes(4, "big") + b'{"jsonrpc":')
        os._exit(5)
    if mode in ("stubborn", "orphaning"):
        if mode == "stubborn":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        grandchild = subprocess.Popen([sys.executable, "-c", code])
        os.write(1, json.dumps({"jsonrpc": "2.0", "method": "pid", "params": {"pid": grandchild.pid}}).encode() + b"\n")
    else:
        os.write(1, b'{"jsonrpc":"2.0","method":"ready"}\n')
    sys.stdin.close()
    time.sleep(600)


async def main(mode: str) -> None:
    async with rpcwire.stdio(**options()) as t:
        if mode in ("echo", "after"):
            await echo(t)
        elif mode == "delayed":
            await delayed(t)
        elif mode == "flood":
            await flood(t)
        else:
            raise SystemExit(f"unknown mode {mode}")
    if mode == "after":
        print("after")  # noqa: T201 - fd 1 is the real stdout again


if __name__ == "__main__":
    if sys.argv[1] in ("half-frame", "stubborn", "polite", "orphaning"):
        unresponsive(sys.argv[1])
    elif os.environ.get("RPCWIRE_TEST_LOOP") == "uvloop":
        import uvloop

        uvloop.run(main(sys.argv[1]))
    else:
        asyncio.run(main(sys.argv[1]), debug=True)
