"""rpcwire.reference on its own, against docs/wire-format.md (no Rust involved)."""

from __future__ import annotations

import json
import stat
import tracemalloc
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
import orjson
import pytest
import rpcwire
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from rpcwire._errors import DecryptError, FrameTooLarge, FramingError, InvalidRequest, ParseError, ProtocolError
from rpcwire.reference import Codec, Item, Keyring, dumps

REQ = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": {"q": "é ✓ 😀"}}}
NOTE = {"jsonrpc": "2.0", "method": "notifications/progress", "params": [1, 2]}
RESP = {"jsonrpc": "2.0", "id": "abc", "result": {"content": [{"type": "text", "text": "hi\nthere"}]}}
ERR = {"jsonrpc": "2.0", "id": None, "error": {"code": -32601, "message": "Method not found", "data": [1]}}
MESSAGES: list[Any] = [REQ, NOTE, RESP, ERR, [REQ, NOTE]]

PLAIN = ("ndjson", "length", "content-length")


def feed_all(codec: Codec, data: bytes, step: int | None = None, eof: bool = True) -> list[Item]:
    items: list[Item] = []
    if step is None:
        items += codec.feed(data)
    else:
        for i in range(0, len(data), step):
            items += codec.feed(data[i : i + step])
    if eof:
        items += codec.feed(b"")
    return items


def length_frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


# --------------------------------------------------------------------------------------------------
# Encoding: wire-format 1 (orjson's bytes, plus big integers)


class TestEncoding:
    @pytest.mark.parametrize(
        "value",
        [
            REQ,
            {"s": '"\\/\b\t\n\f\r\x00\x1f\x7f\u2028é😀', "f": [1.0, 0.1, 1e16, 1.5e-7, 5e-324, -0.0]},
            {"nan": float("nan"), "inf": [float("inf"), float("-inf")]},
            {"b": [True, False, None], "t": (1, 2), "nested": {"a": {"b": {"c": []}}}},
            {"z": 1, "a": 2, "m": 3},
            [2**63 - 1, -(2**63), 2**64 - 1],
        ],
    )
    def test_bytes_are_orjsons(self, value: Any) -> None:
        assert dumps(value) == orjson.dumps(value)

    def test_big_integers_are_written_in_full(self) -> None:
        value = {"id": 2**64, "x": [-(2**100), 1.5, "s", None, True, {"k": 10**30}]}
        assert dumps(value) == (
            b'{"id":18446744073709551616,"x":[-1267650600228229401496703205376,1.5,"s",null,true,'
            b'{"k":1000000000000000000000000000000}]}'
        )
        assert orjson.loads(dumps(value).replace(b"18446744073709551616", b"0"))["x"][5] == {"k": 1e30}

    @pytest.mark.parametrize("value", [{1: 2}, {"a": {1, 2}}, {"a": object()}, {"big": 2**70, "bad": {(1,): 2}}])
    def test_unserializable_is_type_error(self, value: Any) -> None:
        with pytest.raises(TypeError):
            dumps(value)

    def test_too_deep_is_value_error(self) -> None:
        deep: list[Any] = []
        node = deep
        for _ in range(300):
            node.append([])
            node = node[0]
        with pytest.raises(ValueError, match="nested"):
            dumps(deep)
        node.append(2**70)
        with pytest.raises(ValueError, match="nested"):
            dumps(deep)

    @settings(max_examples=60)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
            max_leaves=20,
        )
    )
    def test_any_value_round_trips(self, value: Any) -> None:
        text = dumps(value)
        back = Codec(framing="ndjson").feed(text + b"\n")
        # Wrapped in nothing: a bare value is an InvalidRequest unless it is a list/dict; compare by parsing.
        assert len(back) == 1
        if isinstance(value, (int, float, str)) or value is None:
            assert isinstance(back[0], InvalidRequest)
        try:
            expected = orjson.dumps(value)
        except TypeError:  # big integers
            return
        assert text == expected


# --------------------------------------------------------------------------------------------------
# Framings: every split point gives the same items


@pytest.mark.parametrize("framing", PLAIN)
class TestFramings:
    def test_round_trip_whole_bytewise_and_split(self, framing: str) -> None:
        wire = Codec(framing=framing).encode_many(MESSAGES)
        assert wire == b"".join(Codec(framing=framing).encode(m) for m in MESSAGES)
        assert feed_all(Codec(framing=framing), wire) == MESSAGES
        assert feed_all(Codec(framing=framing), wire, step=1) == MESSAGES
        assert feed_all(Codec(framing=framing), wire, step=7) == MESSAGES

    @settings(max_examples=40)
    @given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6))
    def test_any_split_points(self, framing: str, cuts: list[int]) -> None:
        wire = Codec(framing=framing).encode_many(MESSAGES)
        points = sorted({min(c, len(wire)) for c in cuts} - {0, len(wire)})  # b"" would mean end of input
        codec = Codec(framing=framing)
        items: list[Item] = []
        prev = 0
        for p in [*points, len(wire)]:
            items += codec.feed(wire[prev:p])
            prev = p
        assert codec.buffered == 0
        assert items + codec.feed(b"") == MESSAGES

    def test_auto_detects_and_answers_in_kind(self, framing: str) -> None:
        wire = Codec(framing=framing).encode_many(MESSAGES)
        codec = Codec(framing="auto")
        assert codec.framing == "auto"
        assert feed_all(codec, wire, step=3) == MESSAGES
        assert codec.framing == framing
        assert codec.encode(REQ) == Codec(framing=framing).encode(REQ)

    def test_stream_goes_on_after_protocol_errors(self, framing: str) -> None:
        msgs: list[Any] = [b"{nope", {"jsonrpc": "1.0", "id": 7, "method": "m"}, b"[]", REQ]
        wire = b"".join(Codec(framing=framing).encode(m) for m in msgs)
        items = feed_all(Codec(framing=framing), wire)
        assert isinstance(items[0], ParseError)
        assert items[0].code == -32700
        assert items[1] == InvalidRequest(items[1].data, 7)  # type: ignore[union-attr]
        assert items[1].code == -32600  # type: ignore[union-attr]
        assert isinstance(items[2], InvalidRequest)
        assert items[3] == REQ

    def test_bytes_are_passed_through(self, framing: str) -> None:
        raw = b'{ "jsonrpc" : "2.0", "method" : "m" }'
        assert feed_all(Codec(framing=framing), Codec(framing=framing).encode(raw)) == [
            {"jsonrpc": "2.0", "method": "m"}
        ]

    def test_poisoned_after_fatal_error(self, framing: str) -> None:
        codec = Codec(framing=framing, max_frame_size=10)
        with pytest.raises(FrameTooLarge):
            codec.feed(Codec(framing=framing).encode(REQ))
        with pytest.raises(FrameTooLarge):
            codec.feed(b"")
        with pytest.raises(FrameTooLarge):
            codec.feed(Codec(framing=framing).encode({"a": 1}))

    def test_data_after_end_of_input(self, framing: str) -> None:
        codec = Codec(framing=framing)
        assert codec.feed(b"") == []
        assert codec.feed(b"") == []
        with pytest.raises(FramingError, match="after end of input"):
            codec.feed(Codec(framing=framing).encode(REQ))
        with pytest.raises(FramingError):
            codec.feed(b"")


@pytest.mark.parametrize("framing", PLAIN)
@pytest.mark.parametrize("step", [None, 1, 5, 40])
def test_reads_big_integers_exactly(framing: str, step: int | None) -> None:
    big = {"jsonrpc": "2.0", "id": 123456789012345678901234567890, "result": [-99999999999999999999, 1.5, 2**64]}
    msgs = [REQ, big, REQ, big]
    wire = Codec(framing=framing).encode_many(msgs)
    assert b"123456789012345678901234567890" in wire
    assert feed_all(Codec(framing=framing), wire, step=step) == msgs
    assert feed_all(Codec(framing="length"), Codec(compression="lz4", compress_min_size=0).encode_many(msgs)) == msgs


class TestNdjson:
    def test_crlf_and_blank_lines(self) -> None:
        wire = b'\n\r\n \t \r\n{"jsonrpc":"2.0","method":"a"}\r\n  \n{"jsonrpc":"2.0","method":"b"} \t\r\n\r\r\n'
        assert feed_all(Codec(), wire, step=1) == [
            {"jsonrpc": "2.0", "method": "a"},
            {"jsonrpc": "2.0", "method": "b"},
        ]

    def test_final_line_without_newline(self) -> None:
        codec = Codec()
        assert codec.feed(b'{"jsonrpc":"2.0","method":"a"}') == []
        assert codec.buffered == 30
        assert codec.feed(b"") == [{"jsonrpc": "2.0", "method": "a"}]
        assert feed_all(Codec(), b"  \t") == []
        assert feed_all(Codec(), b"[1]") == [[InvalidRequest("a batch element must be an object")]]
        with pytest.raises(FramingError, match="mid-frame, 5 bytes"):
            feed_all(Codec(), b'{"a":')

    def test_utf8_split_across_chunks(self) -> None:
        wire = Codec().encode(REQ)
        cut = wire.index("😀".encode()) + 2
        codec = Codec()
        assert codec.feed(wire[:cut]) == []
        assert codec.feed(wire[cut:]) == [REQ]

    def test_raw_newline_refused_in_bytes(self) -> None:
        with pytest.raises(ValueError, match="newline"):
            Codec().encode(b'{"a":\n1}')
        with pytest.raises(ValueError, match="newline"):
            Codec().encode_many([REQ, b'{"a":\n1}'])
        assert Codec().encode(RESP).count(b"\n") == 1

    def test_line_limit(self) -> None:
        line = orjson.dumps({"jsonrpc": "2.0", "method": "x" * 20})
        assert feed_all(Codec(max_frame_size=len(line)), line + b"\n") == [orjson.loads(line)]
        codec = Codec(max_frame_size=len(line))
        assert codec.feed(line) == []  # exactly at the limit: still fine
        with pytest.raises(FrameTooLarge):
            codec.feed(b" ")  # one byte more and still no newline
        with pytest.raises(FrameTooLarge):  # the same line arriving whole, terminator included
            Codec(max_frame_size=len(line) - 1).feed(line + b"\n")
        codec = Codec(max_frame_size=100)
        for _ in range(10):
            codec.feed(b"x" * 10)
        with pytest.raises(FrameTooLarge):
            codec.feed(b"x")

    def test_parse_error_carries_orjsons_message(self) -> None:
        (item,) = Codec().feed(b"{bad\n")
        with pytest.raises(orjson.JSONDecodeError) as info:
            orjson.loads(b"{bad")
        assert item == ParseError(str(info.value))


class TestLength:
    def test_oversized_prefix_refused_before_buffering(self) -> None:
        codec = Codec(framing="length")
        with pytest.raises(FrameTooLarge):
            codec.feed((2**31).to_bytes(4, "big") + b"{")
        codec = Codec(framing="length", max_frame_size=10)
        assert codec.feed(b"\x00\x00\x00") == []
        with pytest.raises(FrameTooLarge):
            codec.feed(b"\x0b")
        assert feed_all(Codec(framing="length", max_frame_size=10), length_frame(b"[" * 5 + b"]" * 5)) == [
            [InvalidRequest("a batch element must be an object")]
        ]

    def test_empty_payload_is_parse_error(self) -> None:
        items = feed_all(Codec(framing="length"), length_frame(b"") + length_frame(orjson.dumps(REQ)))
        assert isinstance(items[0], ParseError)
        assert items[1] == REQ

    @pytest.mark.parametrize("tail", [b"\x00", b"\x00\x00\x00\x05", b"\x00\x00\x00\x05{}"])
    def test_eof_mid_frame(self, tail: bytes) -> None:
        codec = Codec(framing="length")
        assert codec.feed(length_frame(orjson.dumps(REQ)) + tail) == [REQ]
        assert codec.buffered == len(tail)
        with pytest.raises(FramingError, match="mid-frame"):
            codec.feed(b"")

    def test_whitespace_payload_is_parse_error(self) -> None:
        (item,) = feed_all(Codec(framing="length"), length_frame(b"  "))
        assert isinstance(item, ParseError)

    def test_plain_bytes_starting_with_magic_refused(self) -> None:
        with pytest.raises(ValueError, match="0xFB"):
            Codec(framing="length").encode(b"\xfb\x01\x00{}")


class TestContentLength:
    def test_writer_form(self) -> None:
        assert Codec(framing="content-length").encode({"a": 1}) == b'Content-Length: 7\r\n\r\n{"a":1}'

    def test_other_headers_and_case(self) -> None:
        body = orjson.dumps(REQ)
        wire = (
            b"content-type: application/vscode-jsonrpc; charset=utf-8\r\n"
            + b"CONTENT-LENGTH:  %d \r\n\r\n" % len(body)
            + body
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        assert feed_all(Codec(framing="content-length"), wire, step=1) == [REQ, REQ]
        assert feed_all(Codec(framing="auto"), wire) == [REQ, REQ]

    @pytest.mark.parametrize(
        "header",
        [
            b"Content-Type: x\r\n\r\n",  # missing
            b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n",  # repeated
            b"Content-Length: 0x2\r\n\r\n",  # not decimal
            b"Content-Length: -2\r\n\r\n",
            b"Content-Length: \r\n\r\n",
            b"Content-Length: 2\n\n",  # bare LF
            b"Content-Length: 2\r\nX: y\n\r\n",
            b"Content-Length: 2\rX\r\n\r\n",  # CR not followed by LF
            b"Garbage\r\n\r\n",  # not a header line
        ],
    )
    def test_bad_headers(self, header: bytes) -> None:
        with pytest.raises(FramingError) as info:
            feed_all(Codec(framing="content-length"), header + b"{}")
        assert type(info.value) is FramingError
        with pytest.raises(FramingError):
            feed_all(Codec(framing="content-length"), header + b"{}", step=1)

    def test_header_block_limit(self) -> None:
        filler = b"X-Pad: " + b"a" * (4096 - len(b"X-Pad: \r\nContent-Length: 2\r\n\r\n")) + b"\r\n"
        ok = filler + b"Content-Length: 2\r\n\r\n"
        assert len(ok) == 4096
        items = feed_all(Codec(framing="content-length"), ok + b"[]")
        assert items == [InvalidRequest("a batch must not be empty")]
        with pytest.raises(FramingError, match="4096"):
            feed_all(Codec(framing="content-length"), b"X" + ok + b"[]")
        codec = Codec(framing="content-length")
        codec.feed(b"X-Pad: " + b"a" * 4089)
        with pytest.raises(FramingError, match="4096"):
            codec.feed(b"a")

    def test_oversized_declared_length(self) -> None:
        codec = Codec(framing="content-length", max_frame_size=100)
        with pytest.raises(FrameTooLarge):
            codec.feed(b"Content-Length: 101\r\n\r\n")
        assert codec.buffered == 0

    def test_eof_mid_frame(self) -> None:
        for tail in (b"Content-Len", b"Content-Length: 5\r\n\r\n{}"):
            with pytest.raises(FramingError, match="mid-frame"):
                feed_all(Codec(framing="content-length"), tail)


class TestAuto:
    @pytest.mark.parametrize(
        ("first", "framing"),
        [
            (b"{", "ndjson"),
            (b"[", "ndjson"),
            (b" ", "ndjson"),
            (b"\t", "ndjson"),
            (b"\r", "ndjson"),
            (b"\n", "ndjson"),
            (b"C", "content-length"),
            (b"c", "content-length"),
            (b"\x00", "length"),
            (b"\xfb", "length"),
            (b"x", "length"),
        ],
    )
    def test_first_byte(self, first: bytes, framing: str) -> None:
        codec = Codec(framing="auto")
        codec.feed(first)
        assert codec.framing == framing

    def test_writes_ndjson_before_detection(self) -> None:
        assert Codec(framing="auto").encode(REQ) == orjson.dumps(REQ) + b"\n"


# --------------------------------------------------------------------------------------------------
# JSON-RPC validation (wire-format 1)

VALID: list[Any] = [
    {"jsonrpc": "2.0", "method": "m", "id": 1},
    {"jsonrpc": "2.0", "method": "m", "id": "x", "params": {}},
    {"jsonrpc": "2.0", "method": "m", "id": None, "params": []},
    {"jsonrpc": "2.0", "method": "m"},
    {"jsonrpc": "2.0", "method": "m", "params": {"a": 1}, "extra": True},
    {"jsonrpc": "2.0", "id": 2**70, "result": None},
    {"jsonrpc": "2.0", "id": -1, "result": {}},
    {"jsonrpc": "2.0", "id": None, "error": {"code": 1, "message": ""}},
    {"jsonrpc": "2.0", "id": "e", "error": {"code": -32000, "message": "m", "data": None}, "x": 1},
]

# (message, recovered id)
INVALID: list[tuple[Any, Any]] = [
    ({"method": "m", "id": 1}, 1),
    ({"jsonrpc": "1.0", "method": "m", "id": 1}, 1),
    ({"jsonrpc": 2.0, "method": "m", "id": "a"}, "a"),
    ({"jsonrpc": "2.0", "method": 1, "id": 3}, 3),
    ({"jsonrpc": "2.0", "method": None}, None),
    ({"jsonrpc": "2.0", "method": "m", "id": True}, None),
    ({"jsonrpc": "2.0", "method": "m", "id": 1.0}, None),
    ({"jsonrpc": "2.0", "method": "m", "id": [1]}, None),
    ({"jsonrpc": "2.0", "method": "m", "id": 4, "params": "x"}, 4),
    ({"jsonrpc": "2.0", "method": "m", "id": 4, "params": None}, 4),
    ({"jsonrpc": "2.0", "method": "m", "params": 1}, None),
    ({"jsonrpc": "2.0"}, None),
    ({"jsonrpc": "2.0", "result": 1}, None),
    ({"jsonrpc": "2.0", "id": 5}, 5),
    ({"jsonrpc": "2.0", "id": 5, "result": 1, "error": {"code": 1, "message": "m"}}, 5),
    ({"jsonrpc": "2.0", "id": False, "result": 1}, None),
    ({"jsonrpc": "2.0", "id": 6, "error": "boom"}, 6),
    ({"jsonrpc": "2.0", "id": 6, "error": {"code": "1", "message": "m"}}, 6),
    ({"jsonrpc": "2.0", "id": 6, "error": {"code": 1.0, "message": "m"}}, 6),
    ({"jsonrpc": "2.0", "id": 6, "error": {"code": True, "message": "m"}}, 6),
    ({"jsonrpc": "2.0", "id": 6, "error": {"code": 1}}, 6),
    ({"jsonrpc": "2.0", "id": 6, "error": {"message": "m"}}, 6),
    ({"jsonrpc": "2.0", "id": 6, "error": {"code": 1, "message": None}}, 6),
    ("2.0", None),
    (1, None),
    (None, None),
    ([], None),
]


@pytest.mark.parametrize("framing", PLAIN)
class TestValidation:
    @pytest.mark.parametrize("msg", VALID)
    def test_valid(self, framing: str, msg: Any) -> None:
        assert feed_all(Codec(framing=framing), Codec(framing=framing).encode(msg)) == [msg]

    @pytest.mark.parametrize(("msg", "ident"), INVALID)
    def test_invalid(self, framing: str, msg: Any, ident: Any) -> None:
        (item,) = feed_all(Codec(framing=framing), Codec(framing=framing).encode(dumps(msg)))
        assert isinstance(item, InvalidRequest)
        assert item.id == ident
        assert item.message == "Invalid Request"
        assert item.data

    def test_batch_elements_replaced_in_place(self, framing: str) -> None:
        batch = [VALID[0], INVALID[0][0], 7, VALID[5], [VALID[0]]]
        (items,) = feed_all(Codec(framing=framing), Codec(framing=framing).encode(batch))
        assert isinstance(items, list)
        assert items[0] == VALID[0]
        assert isinstance(items[1], InvalidRequest)
        assert items[1].id == 1
        assert isinstance(items[2], InvalidRequest)
        assert items[3] == VALID[5]
        assert isinstance(items[4], InvalidRequest)
        assert all(isinstance(i, (ProtocolError, dict)) for i in items)


# --------------------------------------------------------------------------------------------------
# Options


class TestOptions:
    def test_defaults(self) -> None:
        codec = Codec()
        assert (codec.framing, codec.compression, codec.compress_min_size, codec.max_frame_size, codec.buffered) == (
            "ndjson",
            None,
            1024,
            16 * 2**20,
            0,
        )
        assert "ndjson" in repr(codec)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"framing": "xml"},
            {"compression": "gzip"},
            {"compression": "zstd"},
            {"framing": "ndjson", "compression": "lz4"},
            {"max_frame_size": 0},
            {"max_frame_size": -1},
            {"compress_min_size": -1},
        ],
    )
    def test_bad_options(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            Codec(**kwargs)

    def test_encode_refuses_other_types(self) -> None:
        with pytest.raises(TypeError):
            Codec().encode("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Codec().feed("text")  # type: ignore[arg-type]

    def test_feed_accepts_buffers(self) -> None:
        wire = Codec().encode(REQ)
        assert Codec().feed(bytearray(wire)) == [REQ]
        assert Codec().feed(memoryview(wire)) == [REQ]

    def test_encode_many_empty(self) -> None:
        assert Codec().encode_many([]) == b""
        assert Codec(framing="length").encode_many(iter([])) == b""


# --------------------------------------------------------------------------------------------------
# The envelope (wire-format 3)

KEY1 = bytes(range(32))
KEY2 = bytes(range(100, 132))
BIG = {"jsonrpc": "2.0", "id": 9, "result": {"text": "lorem ipsum dolor " * 400}}  # ~7 kB, compressible
SMALL = {"jsonrpc": "2.0", "method": "ping"}
COMPRESSIONS = (None, "lz4", "brotli")


def keyring(active: int = 1) -> Keyring:
    return Keyring({1: KEY1, 2: KEY2}, active=active)


def payloads(wire: bytes) -> list[bytes]:
    """Split a length-framed buffer by hand."""
    out = []
    pos = 0
    while pos < len(wire):
        size = int.from_bytes(wire[pos : pos + 4], "big")
        out.append(wire[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


def split_records(body: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(body):
        size = int.from_bytes(body[pos : pos + 4], "big")
        out.append(body[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


def decompress(method: int, body: bytes) -> bytes:
    if method == 1:
        return bytes(lz4.frame.decompress(body))
    assert method == 2
    return bytes(brotli.decompress(body))


class TestEnvelopeRoundTrips:
    @pytest.mark.parametrize("framing", ["length", "content-length", "auto"])
    @pytest.mark.parametrize(
        ("compression", "encrypted"), [("lz4", False), ("brotli", False), (None, True), ("lz4", True), ("brotli", True)]
    )
    def test_round_trip(self, framing: str, compression: str | None, encrypted: bool) -> None:
        ring = keyring() if encrypted else None
        sender = Codec(framing=framing, compression=compression, keyring=ring, compress_min_size=100)
        msgs: list[Any] = [BIG, SMALL, [REQ, NOTE], RESP]
        wire = sender.encode(BIG) + sender.encode(SMALL) + sender.encode_many(msgs) + sender.encode_many([ERR])
        expected = [BIG, SMALL, *msgs, ERR]
        receive_framing = "length" if framing == "auto" else framing
        assert feed_all(Codec(framing=framing, keyring=ring), wire) == expected
        assert feed_all(Codec(framing=receive_framing, keyring=ring), wire, step=1) == expected
        assert feed_all(Codec(framing=receive_framing, keyring=ring), wire, step=97) == expected

    def test_plain_receiver_opens_unencrypted_envelopes(self) -> None:
        # The frame header says how it was compressed: the receiver needs no compression setting.
        wire = Codec(compression="brotli").encode(BIG)
        assert wire[4] == 0xFB
        assert feed_all(Codec(framing="length"), wire) == [BIG]

    def test_plain_and_enveloped_frames_share_a_connection(self) -> None:
        wire = Codec(compression="lz4").encode(SMALL) + Codec(compression="lz4").encode(BIG)
        first, second = payloads(wire)
        assert first == orjson.dumps(SMALL)
        assert second[0] == 0xFB
        assert feed_all(Codec(framing="length"), wire) == [SMALL, BIG]

    def test_auto_with_compression_serves_an_ndjson_peer(self) -> None:
        codec = Codec(framing="auto", compression="lz4", compress_min_size=0)
        assert codec.encode(SMALL)[:4] == len(orjson.dumps(SMALL)).to_bytes(4, "big")  # length before detection
        assert codec.feed(orjson.dumps(BIG) + b"\n") == [BIG]
        assert codec.framing == "ndjson"
        assert codec.encode(BIG) == orjson.dumps(BIG) + b"\n"

    def test_auto_with_keyring_refuses_ndjson(self) -> None:
        codec = Codec(framing="auto", keyring=keyring())
        with pytest.raises(DecryptError):
            codec.feed(orjson.dumps(SMALL) + b"\n")
        with pytest.raises(DecryptError):
            codec.feed(b"")

    @settings(max_examples=25)
    @given(
        msgs=st.lists(
            st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "method": st.text(max_size=300)}), min_size=1, max_size=5
        ),
        compression=st.sampled_from(COMPRESSIONS),
        encrypted=st.booleans(),
        min_size=st.integers(min_value=0, max_value=400),
    )
    def test_any_batch(self, msgs: list[Any], compression: str | None, encrypted: bool, min_size: int) -> None:
        ring = keyring() if encrypted else None
        sender = Codec(framing="length", compression=compression, keyring=ring, compress_min_size=min_size)
        wire = sender.encode_many(msgs) + sender.encode(msgs[0])
        assert feed_all(Codec(framing="length", keyring=ring), wire, step=13) == [*msgs, msgs[0]]


class TestEnvelopeBytes:
    """The bytes are what wire-format 3 says, checked by parsing them by hand."""

    @pytest.mark.parametrize(("compression", "method"), [("lz4", 1), ("brotli", 2)])
    def test_unencrypted_compressed(self, compression: str, method: int) -> None:
        (payload,) = payloads(Codec(compression=compression).encode(BIG))
        assert payload[:3] == bytes((0xFB, 0x01, method))
        assert decompress(method, payload[3:]) == orjson.dumps(BIG)
        if method == 1:
            assert payload[3:7] == b"\x04\x22\x4d\x18"  # LZ4 frame magic

    def test_multi_unencrypted(self) -> None:
        msgs: list[Any] = [BIG, SMALL, BIG]
        (payload,) = payloads(Codec(compression="lz4").encode_many(msgs))
        assert payload[:3] == bytes((0xFB, 0x01, 0x01 | 0x08))
        assert split_records(decompress(1, payload[3:])) == [orjson.dumps(m) for m in msgs]

    def test_compress_min_size_and_kept_only_when_shorter(self) -> None:
        body = orjson.dumps(BIG)
        assert Codec(compression="lz4", compress_min_size=len(body) + 1).encode(BIG) == length_frame(body)
        assert payloads(Codec(compression="lz4", compress_min_size=len(body)).encode(BIG))[0][0] == 0xFB
        # Compressing a tiny message makes it longer: not kept, so it goes as a plain frame.
        for compression in ("lz4", "brotli"):
            small = orjson.dumps(SMALL)
            assert Codec(compression=compression, compress_min_size=0).encode(SMALL) == length_frame(small)
        # encode_many without a kept compression: plain frames, one per message.
        assert Codec(compression="lz4").encode_many([SMALL, REQ]) == length_frame(orjson.dumps(SMALL)) + length_frame(
            orjson.dumps(REQ)
        )

    @pytest.mark.parametrize(("compression", "method"), [(None, 0), ("lz4", 1), ("brotli", 2)])
    def test_encrypted(self, compression: str | None, method: int) -> None:
        codec = Codec(compression=compression, keyring=keyring(active=2), compress_min_size=0)
        frames = [codec.encode(BIG), codec.encode(BIG), codec.encode_many([BIG, SMALL])]
        prefixes = set()
        for n, frame in enumerate(frames):
            (payload,) = payloads(frame)
            header = payload[:27]
            multi = 0x08 if n == 2 else 0
            assert header[:3] == bytes((0xFB, 0x01, method | 0x04 | multi))
            assert int.from_bytes(header[3:7], "big") == 2  # the active key's id
            nonce = header[7:19]
            prefixes.add(nonce[:8])
            assert int.from_bytes(nonce[8:], "big") == n  # counter from 0
            assert int.from_bytes(header[19:27], "big") == n  # seq from 0
            body = AESGCM(KEY2).decrypt(nonce, payload[27:], header)
            if method:
                body = decompress(method, body)
            if multi:
                assert split_records(body) == [orjson.dumps(BIG), orjson.dumps(SMALL)]
            else:
                assert body == orjson.dumps(BIG)
                assert orjson.dumps(BIG)[:50] not in payload
        assert len(prefixes) == 1
        other = payloads(Codec(keyring=keyring()).encode(BIG))[0]
        assert other[7:15] not in prefixes  # each codec draws its own prefix

    def test_small_messages_are_still_sealed(self) -> None:
        (payload,) = payloads(Codec(compression="lz4", keyring=keyring()).encode(SMALL))
        assert payload[2] == 0x04  # encrypted, compression 0: below compress_min_size
        assert len(payload) == 27 + len(orjson.dumps(SMALL)) + 16

    def test_nonce_counter_wrap_draws_a_new_prefix(self) -> None:
        codec = Codec(keyring=keyring())
        codec._counter = 2**32 - 1
        first = payloads(codec.encode(SMALL))[0][7:19]
        second = payloads(codec.encode(SMALL))[0][7:19]
        assert first[8:] == b"\xff\xff\xff\xff"
        assert second[8:] == b"\x00\x00\x00\x00"
        assert first[:8] != second[:8]

    def test_content_length_carries_envelopes(self) -> None:
        wire = Codec(framing="content-length", compression="lz4").encode(BIG)
        header, _, payload = wire.partition(b"\r\n\r\n")
        assert header == b"Content-Length: %d" % len(payload)
        assert payload[:3] == b"\xfb\x01\x01"


def sealed(
    body: bytes,
    *,
    key: bytes = KEY1,
    key_id: int = 1,
    seq: int = 0,
    prefix: bytes = b"P" * 8,
    counter: int = 0,
    flags: int = 0x04,
    version: int = 1,
) -> bytes:
    """A length frame holding an encrypted envelope, built by hand from wire-format 3.2."""
    nonce = prefix + counter.to_bytes(4, "big")
    header = bytes((0xFB, version, flags)) + key_id.to_bytes(4, "big") + nonce + seq.to_bytes(8, "big")
    return length_frame(header + AESGCM(key).encrypt(nonce, body, header))


class TestEnvelopeRefusals:
    def test_hand_built_frames_open(self) -> None:
        body = orjson.dumps(SMALL)
        wire = sealed(body) + sealed(body, seq=1, counter=1, key=KEY2, key_id=2)
        records = length_frame(body) + length_frame(orjson.dumps(REQ))
        wire += sealed(lz4.frame.compress(records), seq=2, flags=0x04 | 0x08 | 0x01)
        assert feed_all(Codec(keyring=keyring()), wire) == [SMALL, SMALL, SMALL, REQ]

    @pytest.mark.parametrize(
        "frame",
        [
            length_frame(orjson.dumps(SMALL)),  # 1. plaintext message
            length_frame(b""),  # 1. (an empty payload is not an envelope either)
            length_frame(b"\xfb\x01\x00" + orjson.dumps(SMALL)),  # 1. envelope without the encrypted bit
            length_frame(b"\xfb\x01\x01" + lz4.frame.compress(orjson.dumps(SMALL))),
            length_frame(sealed(b"")[4:46]),  # 2. shorter than 27 + 16
            sealed(b"{}", key_id=3),  # 3. unknown key id
            sealed(b"{}", key=KEY2),  # 4. tag does not verify (sealed with key 2, says key 1)
            sealed(b"{}", seq=1),  # 6. seq other than expected
        ],
    )
    def test_keyring_receiver_refuses(self, frame: bytes) -> None:
        codec = Codec(keyring=keyring())
        with pytest.raises(DecryptError):
            codec.feed(frame)
        with pytest.raises(DecryptError):  # poisoned
            codec.feed(sealed(b"{}"))

    @pytest.mark.parametrize("impl", [Codec, rpcwire.Codec], ids=["reference", "rust"])
    def test_truncated_header_is_structural_even_with_a_keyring(self, impl: type) -> None:
        """wire-format 3.2: structural faults are FramingErrors with or without a keyring."""
        with pytest.raises(FramingError, match="truncated"):
            impl(keyring=rpcwire.Keyring({1: KEY1})).feed(length_frame(b"\xfb"))

    def test_empty_encrypted_body_is_a_parse_error(self) -> None:
        (item,) = feed_all(Codec(keyring=keyring()), sealed(b""))
        assert isinstance(item, ParseError)

    def test_reflected_frame(self) -> None:
        codec = Codec(keyring=keyring())
        frame = codec.encode(SMALL)
        with pytest.raises(DecryptError, match="reflected"):
            codec.feed(frame)

    def test_replay_reorder_and_drop(self) -> None:
        sender = Codec(keyring=keyring())
        f0, f1, f2 = (sender.encode({"jsonrpc": "2.0", "method": str(i)}) for i in range(3))
        codec = Codec(keyring=keyring())
        assert len(codec.feed(f0)) == 1
        with pytest.raises(DecryptError, match="sequence"):
            codec.feed(f0)  # replayed
        codec = Codec(keyring=keyring())
        with pytest.raises(DecryptError):
            codec.feed(f1 + f0)  # reordered
        codec = Codec(keyring=keyring())
        codec.feed(f0)
        with pytest.raises(DecryptError):
            codec.feed(f2)  # f1 dropped

    def test_every_flipped_bit_fails(self) -> None:
        frame = Codec(keyring=keyring()).encode(SMALL)
        for pos in range(4, len(frame)):
            for bit in (0x01, 0x80):
                bad = bytearray(frame)
                bad[pos] ^= bit
                codec = Codec(keyring=keyring())
                with pytest.raises((DecryptError, FramingError)) as info:
                    codec.feed(bytes(bad))
                if pos >= 4 + 3:  # past version and flags: authentication must catch it
                    assert type(info.value) is DecryptError

    def test_receiver_without_keyring_refuses_encrypted(self) -> None:
        codec = Codec(framing="length")
        with pytest.raises(DecryptError):
            codec.feed(Codec(keyring=keyring()).encode(SMALL))
        with pytest.raises(DecryptError):
            codec.feed(b"")

    @pytest.mark.parametrize(
        "payload",
        [
            b"\xfb",
            b"\xfb\x01",
            b"\xfb\x02\x00{}",  # unknown version
            b"\xfb\x01\x10{}",  # reserved flag bit
            b"\xfb\x01\x80{}",
            b"\xfb\x01\x03{}",  # zstd: not in this implementation
        ],
    )
    def test_bad_headers_are_framing_errors(self, payload: bytes) -> None:
        codec = Codec(framing="length")
        with pytest.raises(FramingError) as info:
            codec.feed(length_frame(payload))
        assert type(info.value) is FramingError
        with pytest.raises(FramingError):
            codec.feed(b"")

    @pytest.mark.parametrize(
        "payload",
        [
            b"\xfb\x01\x01garbage",
            b"\xfb\x01\x02garbage",
            b"\xfb\x01\x01" + lz4.frame.compress(b"{}")[:-4],  # truncated
            b"\xfb\x01\x02" + brotli.compress(b'{"a": 1}' * 10)[:-2],
            b"\xfb\x01\x01" + lz4.frame.compress(b"{}") + b"x",  # trailing bytes
        ],
    )
    def test_bodies_that_do_not_decompress_are_parse_errors(self, payload: bytes) -> None:
        items = feed_all(Codec(framing="length"), length_frame(payload) + length_frame(orjson.dumps(SMALL)))
        assert isinstance(items[0], ParseError)
        assert items[1:] == [SMALL]

    def test_multi_records(self) -> None:
        good = length_frame(orjson.dumps(SMALL))
        cases = {
            good + good: [SMALL, SMALL],
            good + b"\x00\x00": [SMALL, ParseError],
            good + b"\x00\x00\x00\x09{}": [SMALL, ParseError],
            b"": [ParseError],
            length_frame(b"") + length_frame(b"[]"): [ParseError, InvalidRequest],
        }
        for body, expected in cases.items():
            frame = length_frame(b"\xfb\x01\x08" + body)
            items = feed_all(Codec(framing="length"), frame)
            assert [i if isinstance(i, dict) else type(i) for i in items] == expected


def _bomb(method: int, size: int) -> bytes:
    chunk = b"\0" * 2**20
    if method == 1:
        lz = lz4.frame.LZ4FrameCompressor()
        parts = [lz.begin()]
        parts += [lz.compress(chunk) for _ in range(size // len(chunk))]
        parts.append(lz.flush())
        return b"".join(parts)
    br = brotli.Compressor(quality=4, lgwin=22)
    parts = [br.process(chunk) for _ in range(size // len(chunk))]
    parts.append(br.finish())
    return b"".join(parts)


class TestBombs:
    @pytest.mark.parametrize("method", [1, 2])
    def test_bomb_fails_fast_in_bounded_memory(self, method: int) -> None:
        bomb = _bomb(method, 64 * 2**20)
        assert len(bomb) < 2**19  # inflates over 100-fold
        limit = 2**20
        codec = Codec(framing="length", max_frame_size=limit)
        tracemalloc.start()
        try:
            with pytest.raises(FrameTooLarge):
                codec.feed(length_frame(bytes((0xFB, 1, method)) + bomb))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * limit

    @pytest.mark.parametrize("method", [1, 2])
    def test_limit_is_on_the_decompressed_body(self, method: int) -> None:
        body = orjson.dumps({"jsonrpc": "2.0", "method": "m", "params": ["x" * 5000]})
        packed = lz4.frame.compress(body) if method == 1 else brotli.compress(body)
        frame = length_frame(bytes((0xFB, 1, method)) + packed)
        assert len(frame) < 1000
        assert len(feed_all(Codec(framing="length", max_frame_size=len(body)), frame)) == 1
        with pytest.raises(FrameTooLarge):
            Codec(framing="length", max_frame_size=len(body) - 1).feed(frame)


class TestKeyring:
    def test_rotation(self) -> None:
        old = Codec(keyring=Keyring({1: KEY1}, active=1))
        new = Codec(keyring=Keyring({1: KEY1, 2: KEY2}, active=2))
        assert payloads(new.encode(SMALL))[0][3:7] == b"\x00\x00\x00\x02"
        receiver = Codec(keyring=Keyring({1: KEY1, 2: KEY2}, active=2))
        assert receiver.feed(old.encode(SMALL)) == [SMALL]  # old-key frames still open
        with pytest.raises(DecryptError, match="unknown key id 2"):
            Codec(keyring=Keyring({1: KEY1}, active=1)).feed(Codec(keyring=keyring(active=2)).encode(SMALL))

    def test_file_round_trip(self, tmp_path: Path) -> None:
        path = tmp_path / "keys.json"
        keyring(active=2).to_file(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        doc = json.loads(path.read_text())
        assert doc == {"version": 1, "active": 2, "keys": {"1": KEY1.hex(), "2": KEY2.hex()}}
        loaded = Keyring.from_file(path)
        assert loaded == keyring(active=2)
        assert feed_all(Codec(keyring=loaded), Codec(keyring=keyring(active=2)).encode(SMALL)) == [SMALL]

    @pytest.mark.parametrize(
        "doc",
        [
            {"version": 2, "active": 1, "keys": {"1": KEY1.hex()}},
            {"version": 1, "active": 2, "keys": {"1": KEY1.hex()}},
            {"version": 1, "active": 1, "keys": {"1": KEY1.hex()[:-2]}},
            {"version": 1, "active": 1, "keys": {"one": KEY1.hex()}},
            {"version": 1, "active": 1, "keys": {"1": "zz" * 32}},
            {"version": 1, "keys": {"1": KEY1.hex()}},
            [1],
        ],
    )
    def test_malformed_files(self, tmp_path: Path, doc: Any) -> None:
        path = tmp_path / "keys.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(ValueError):
            Keyring.from_file(path)

    @pytest.mark.parametrize(
        ("keys", "active"),
        [({1: b"short"}, 1), ({1: KEY1}, 2), ({-1: KEY1}, -1), ({2**32: KEY1}, 2**32), ({True: KEY1}, True)],
    )
    def test_bad_keyrings(self, keys: dict[int, bytes], active: int) -> None:
        with pytest.raises(ValueError):
            Keyring(keys, active=active)

    def test_repr_never_shows_keys(self) -> None:
        ring = keyring()
        assert KEY1.hex() not in repr(ring)
        assert repr(KEY1) not in repr(ring)
        assert "[1, 2]" in repr(ring)
        assert KEY1.hex() not in repr(Codec(keyring=ring))

    def test_codec_refuses_other_keyrings(self) -> None:
        with pytest.raises(TypeError):
            Codec(keyring={1: KEY1})
        with pytest.raises(ValueError):
            Codec(framing="ndjson", keyring=keyring())

    def test_accepts_an_rpcwire_keyring(self, tmp_path: Path) -> None:
        import rpcwire

        path = tmp_path / "keys.json"
        rpcwire.Keyring({1: KEY1, 2: KEY2}, active=2).to_file(str(path))
        assert Keyring.from_file(path) == keyring(active=2)  # one key file, both classes
        frame = Codec(keyring=rpcwire.Keyring({1: KEY1}, active=1)).encode(SMALL)
        assert feed_all(Codec(keyring=keyring()), frame) == [SMALL]
