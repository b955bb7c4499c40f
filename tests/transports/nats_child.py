"""A serving instance for the NATS tests: ``python nats_child.py ADDRESS NAME [OPTIONS_JSON]``.

Serves ``ADDRESS`` (a ``nats://`` URL) until SIGTERM: every request is answered with its params, and a request for
``whoami`` with ``NAME``. Codec options come as JSON (``{"compression": "lz4", "key": "<hex>", "peer_timeout": 2}``);
prints ``ready`` on stdout once it serves.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import rpcwire


def options(text: str) -> dict[str, Any]:
    opts: dict[str, Any] = json.loads(text) if text else {}
    key = opts.pop("key", None)
    if key is not None:
        opts["keyring"] = rpcwire.Keyring({1: bytes.fromhex(key)})
    return opts


async def main(address: str, name: str, opts: dict[str, Any]) -> None:
    def answer(msg: Any) -> Any:
        if isinstance(msg, rpcwire.ProtocolError):
            return msg.to_error()
        if "id" not in msg:
            return None
        result = name if msg.get("method") == "whoami" else msg.get("params")
        return {"jsonrpc": "2.0", "id": msg["id"], "result": result}

    async def handler(t: rpcwire.Transport) -> None:
        await t.handle(answer)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = await rpcwire.serve(handler, address, **opts)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], options(sys.argv[3] if len(sys.argv) > 3 else "")))
