"""MCP-shaped messages of a given serialized size, built deterministically.

Sizes follow real MCP traffic: up to ~1 KB a `tools/call` request (and its small result), up to
~20 KB a `tools/list` result, above that a `resources/read` result carrying a text file. The text
is word-like (it compresses roughly as source code or prose does, not as zeros).

In throughput mode the sender sends :func:`payload` messages one way. In round-trip and
concurrent modes the client sends :func:`request` (small, ~150 B) and the server answers with
:func:`response` of the chosen size; the request carries the size in ``params._meta.benchSize``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

__all__ = ("encoded_size", "expect_request", "kind_of", "payload", "request", "response", "response_for")

_WORD_TEXT = (
    "async def return await self value result error message stream frame codec buffer transport "
    "client server request response notification params method tools resources prompts content text "
    "import from class lambda yield for while if else elif try except finally with as in is not and or "
    "the of to a that it on be this by are was at from have an they which one you all were her can there "
    "json rpc wire length envelope nonce key tag seal open read write close send receive"
)
_WORDS = _WORD_TEXT.split()


def encoded_size(msg: Any) -> int:
    """Bytes of `msg` as compact JSON (what ndjson puts on the wire, minus the newline)."""
    return len(json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode())


def _text(n: int, seed: int = 7) -> str:
    """About `n` characters of word-like text with line breaks, deterministic."""
    parts: list[str] = []
    total = 0
    state = seed
    col = 0
    while total < n:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        word = _WORDS[state % len(_WORDS)]
        parts.append(word)
        total += len(word) + 1
        col += len(word) + 1
        if col > 72:
            parts.append("\n")
            col = 0
    return " ".join(parts)[:n]


def _fit(build: Any, size: int) -> dict[str, Any]:
    """Call build(pad) with a pad length chosen so the message encodes to `size` bytes (or just over)."""
    base = encoded_size(build(0))
    msg: dict[str, Any] = build(max(0, size - base))
    # The pad text is plain ASCII without escapes except "\n" (2 bytes encoded): correct once.
    over = encoded_size(msg) - size
    if over > 0:
        msg = build(max(0, size - base - over))
    return msg


def _tools_call(pad: int, msg_id: int | str = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "tools/call",
        "params": {"name": "get_forecast", "arguments": {"city": "Lyon", "days": 3, "note": "x" * pad}},
    }


def _tools_call_result(pad: int, msg_id: int | str = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "result": {"content": [{"type": "text", "text": "Sunny, 21C. " + _text(pad)}], "isError": False},
    }


def _tools_list_result(pad: int, msg_id: int | str = 1) -> dict[str, Any]:
    tools = []
    used = 0
    i = 0
    while used < pad:
        desc = _text(min(220, max(10, pad - used)), seed=i + 11)
        tool = {
            "name": f"tool_{i}",
            "description": desc,
            "inputSchema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "file path"},
                    "limit": {"type": "integer", "minimum": 1},
                },
                "required": ["path"],
            },
        }
        tools.append(tool)
        used += encoded_size(tool) + 1
        i += 1
    return {"jsonrpc": "2.0", "id": msg_id, "result": {"tools": tools}}


def _resource_result(pad: int, msg_id: int | str = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "result": {"contents": [{"uri": "file:///srv/app/main.py", "mimeType": "text/x-python", "text": _text(pad)}]},
    }


def _builder_for(size: int) -> Any:
    if size <= 1000:
        return _tools_call
    if size <= 20_000:
        return _tools_list_result
    return _resource_result


@functools.lru_cache(maxsize=16)
def _payload(size: int) -> dict[str, Any]:
    builder = _builder_for(size)
    if builder is _tools_list_result:
        # tools/list grows by whole tools; aim the pad, then accept the nearest size.
        return builder(max(0, size - 40))
    return _fit(builder, size)


def payload(size: int) -> dict[str, Any]:
    """The one-way message of about `size` bytes (treat it as read-only: it is cached)."""
    return _payload(size)


def kind_of(size: int) -> str:
    """The MCP message a size stands for, for reports."""
    builder = _builder_for(size)
    return {
        _tools_call: "tools/call request",
        _tools_list_result: "tools/list result",
        _resource_result: "resources/read result",
    }[builder]


def request(size: int, msg_id: int | str) -> dict[str, Any]:
    """The small request a round trip sends; the server answers with :func:`response` of `size`."""
    builder = _builder_for(size)
    method = {_tools_call: "tools/call", _tools_list_result: "tools/list", _resource_result: "resources/read"}[builder]
    params: dict[str, Any] = {"_meta": {"benchSize": size}}
    if method == "tools/call":
        params.update({"name": "get_forecast", "arguments": {"city": "Lyon", "days": 3}})
    elif method == "resources/read":
        params["uri"] = "file:///srv/app/main.py"
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


@functools.lru_cache(maxsize=16)
def _response_result(size: int) -> dict[str, Any]:
    builder = _builder_for(size)
    if builder is _tools_call:
        msg = _fit(_tools_call_result, size)
    elif builder is _tools_list_result:
        msg = _tools_list_result(max(0, size - 40))
    else:
        msg = _fit(_resource_result, size)
    result: dict[str, Any] = msg["result"]
    return result


def response(size: int, msg_id: int | str) -> dict[str, Any]:
    """The answer of about `size` bytes to :func:`request` (its result object is shared, read-only)."""
    return {"jsonrpc": "2.0", "id": msg_id, "result": _response_result(size)}


def response_for(msg: Any) -> dict[str, Any] | None:
    """The server's answer to a decoded round-trip request, or None when `msg` needs none."""
    if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
        return None
    params = msg.get("params") or {}
    meta = params.get("_meta") if isinstance(params, dict) else None
    size = meta.get("benchSize", 150) if isinstance(meta, dict) else 150
    if not isinstance(size, int) or not 0 < size <= 16 * 2**20:
        size = 150
    return response(size, msg["id"])


def expect_request(count: int) -> dict[str, Any]:
    """Control request opening a throughput run: the server counts `count` messages, then answers."""
    return {"jsonrpc": "2.0", "id": "bench-expect", "method": "bench/expect", "params": {"count": count}}
