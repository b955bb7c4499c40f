"""Payload fixtures for the pytest-benchmark suites: realistic MCP messages of three sizes.

- ``200B``: a ``tools/call`` request (~200 bytes);
- ``6KB``: a ``tools/list`` result (~6 KB);
- ``1MB``: a ``resources/read`` result holding ~1 MB of text.

``STREAMS[size]`` is a list of such messages big enough to be fed in several 64 KiB chunks (except
the single 1 MB message, which spans 16 of them).
"""

from __future__ import annotations

from typing import Any

import pytest

CHUNK = 64 * 1024


def tools_call(i: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {
            "name": "get_weather",
            "arguments": {"location": "San Francisco, CA", "units": "metric", "days": 3, "hourly": False},
            "_meta": {"progressToken": f"tok-{i:08d}"},
        },
    }


def tools_list(i: int) -> dict[str, Any]:
    tools = [
        {
            "name": f"tool_{n}",
            "title": f"Tool number {n}",
            "description": "Looks things up in the catalogue and returns matching entries, with paging. " * 2,
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to search for"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                    "cursor": {"type": ["string", "null"], "description": "Opaque paging cursor"},
                    "filters": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "required": ["query"],
            },
            "annotations": {"readOnlyHint": True, "openWorldHint": False},
        }
        for n in range(10)
    ]
    return {"jsonrpc": "2.0", "id": i, "result": {"tools": tools, "nextCursor": None}}


def resources_read(i: int) -> dict[str, Any]:
    line = "The quick brown fox jumps over the lazy dog; caf\u00e9 \u2014 na\u00efve r\u00e9sum\u00e9 \U0001f98a.\n"
    text = line * (1_000_000 // len(line.encode()))
    return {
        "jsonrpc": "2.0",
        "id": i,
        "result": {"contents": [{"uri": "file:///var/log/app.log", "mimeType": "text/plain", "text": text}]},
    }


SIZES = ("200B", "6KB", "1MB")
MESSAGES: dict[str, list[dict[str, Any]]] = {
    "200B": [tools_call(i) for i in range(2000)],  # ~400 KB: 6-7 chunks
    "6KB": [tools_list(i) for i in range(100)],  # ~600 KB
    "1MB": [resources_read(1)],
}
# encode_many batches: 1000 messages of 200 B, 100 of 6 KB, one of 1 MB
ENCODE_BATCHES: dict[str, list[dict[str, Any]]] = {
    "200B": MESSAGES["200B"][:1000],
    "6KB": MESSAGES["6KB"],
    "1MB": MESSAGES["1MB"],
}


@pytest.fixture(scope="session")
def messages() -> dict[str, list[dict[str, Any]]]:
    """Message streams by size name."""
    return MESSAGES


@pytest.fixture(scope="session")
def small_message() -> dict[str, Any]:
    return tools_call(1)


@pytest.fixture(scope="session")
def medium_message() -> dict[str, Any]:
    return tools_list(1)


@pytest.fixture(scope="session")
def large_message() -> dict[str, Any]:
    return resources_read(1)
