"""The public API used the way users use it. Run by pytest and type-checked by ``mypy --strict``
(it is listed in pyproject's ``[tool.mypy] files``), so the stubs in ``_core.pyi`` must describe it.
"""

from __future__ import annotations

from typing import Any

import rpcwire
from rpcwire import reference


def answer(item: object) -> dict[str, Any] | None:
    """What a small server does with one decoded item."""
    if isinstance(item, rpcwire.ProtocolError):
        return item.to_error()
    if isinstance(item, dict):
        if rpcwire.kind(item) == "request":
            return {"jsonrpc": "2.0", "id": item["id"], "result": {"echo": item.get("params")}}
        return None
    return None


def test_sans_io_round_trip() -> None:
    client = rpcwire.Codec(framing="ndjson")
    server = rpcwire.Codec(framing="auto", max_frame_size=1 << 20)
    wire: bytes = client.encode({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"n": 1}})
    wire += client.encode_many([{"jsonrpc": "2.0", "method": "note"}, b'{"jsonrpc":"2.0","id":2,"method":"x"}'])
    wire += b"not json\n"
    replies: list[dict[str, Any]] = []
    for item in server.feed(wire):
        reply = answer(item)
        if reply is not None:
            replies.append(reply)
    assert server.feed(b"") == []
    out: bytes = server.encode_many(replies)
    decoded = client.feed(memoryview(out))
    assert [rpcwire.kind(m) for m in decoded if isinstance(m, dict)] == ["response", "response", "error"]
    assert server.framing == "ndjson"
    assert isinstance(server.buffered, int)


def test_options_and_errors() -> None:
    keyring = rpcwire.Keyring.generate()
    sender = rpcwire.Codec(framing="length", compression="lz4", compress_min_size=0, keyring=keyring)
    receiver = rpcwire.Codec(framing="length", keyring=keyring)
    frame: bytes = sender.encode({"jsonrpc": "2.0", "method": "n", "params": ["x" * 100]})
    items = receiver.feed(bytearray(frame))
    assert items == [{"jsonrpc": "2.0", "method": "n", "params": ["x" * 100]}]
    assert sender.compression == "lz4"
    assert sender.max_frame_size == 16 * 2**20

    plain = rpcwire.Codec(framing="length", max_frame_size=10)
    try:
        plain.feed(b"\x00\x00\x01\x00")
    except rpcwire.FrameTooLarge as exc:
        caught: rpcwire.FramingError = exc
        assert isinstance(caught, rpcwire.RpcWireError)
    else:
        raise AssertionError("no FrameTooLarge")


def test_protocol_error_attributes() -> None:
    (item,) = rpcwire.Codec().feed(b'{"jsonrpc":"2.0","id":5,"method":7}\n')
    assert isinstance(item, rpcwire.InvalidRequest)
    code: int = item.code
    message: str = item.message
    data: str | None = item.data
    request_id: str | int | None = item.id
    assert (code, message, request_id) == (-32600, "Invalid Request", 5)
    assert data is None or isinstance(data, str)


def test_reference_has_the_same_api() -> None:
    codec = reference.Codec(framing="content-length")
    wire: bytes = codec.encode({"jsonrpc": "2.0", "id": "a", "result": None})
    assert rpcwire.Codec(framing="content-length").feed(wire) == [{"jsonrpc": "2.0", "id": "a", "result": None}]
