"""Child side of benches/test_bench_mcp.py: ``python bench_child.py MODE TRANSPORT N RESULT_FILE``.

MODE ``read``: take N messages from the stdio server's read stream (timed from the first to the last);
MODE ``write``: send N notifications through the write stream and close it (timed until flushed).
TRANSPORT: ``rpcwire`` (rpcwire.mcp.stdio_server) or ``sdk`` (mcp.server.stdio.stdio_server).
The measured rate (messages per second, startup excluded) is written to RESULT_FILE.
"""

from __future__ import annotations

import sys
import time

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification

PARAMS = {"level": "info", "logger": "bench", "data": "x" * 80}


async def main(mode: str, transport: str, n: int) -> float:
    if transport == "rpcwire":
        from rpcwire.mcp import stdio_server
    else:
        from mcp.server.stdio import stdio_server
    async with stdio_server() as (read, write):
        if mode == "read":
            count = 0
            t0 = 0.0
            async for item in read:
                if count == 0:
                    t0 = time.perf_counter()
                count += 1
                if not isinstance(item, SessionMessage):
                    raise SystemExit(f"bad item {item!r}")
                if count == n:
                    break
            elapsed = time.perf_counter() - t0
            rate = (n - 1) / elapsed
            await write.aclose()  # the SDK's writer task runs until its stream closes
        else:
            msg = SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params=PARAMS))
            t0 = time.perf_counter()
            for _ in range(n):
                await write.send(msg)
            await write.aclose()
    if mode == "write":
        rate = n / (time.perf_counter() - t0)
    return rate


if __name__ == "__main__":
    measured = anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
    with open(sys.argv[4], "w") as fh:
        fh.write(repr(measured))
