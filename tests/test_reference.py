"""rpcwire.reference on its own, against docs/wire-format.md (no Rust involved)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rpcwire._errors import FrameTooLarge, FramingError, InvalidRequest, ParseError, ProtocolError
from rpcwire.reference import Codec, Item, dumps

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

    def test_reads_big_integers_exactly(self) -> None:
        wire = b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"result":[-99999999999999999999,1.5]}\n'
        assert Codec().feed(wire) == [
            {"jsonrpc": "2.0", "id": 123456789012345678901234567890, "result": [-99999999999999999999, 1.5]}
        ]


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
