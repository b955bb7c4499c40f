"""Framings (docs/wire-format.md section 2): ndjson, length, content-length, auto.

Every stream is checked whole, one byte at a time, with trailing data, and at hypothesis-chosen
split points (h11's style). Frames are built by hand from the spec (``conftest.frame``), not by the
codec under test.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
import rpcwire
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FRAMINGS, bytewise, codec_class, feed_all, frame, split_at

MESSAGES: list[Any] = [
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"x": [1, 2.5]}}},
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"token": "h\u00e9llo \u20ac \U0001f600"}},
    {"jsonrpc": "2.0", "id": "abc", "result": {"content": [{"type": "text", "text": 'a\nb"c\\'}], "n": None}},
    {"jsonrpc": "2.0", "id": None, "error": {"code": -32601, "message": "Method not found", "data": [1, {}]}},
    [{"jsonrpc": "2.0", "id": 2, "method": "ping"}, {"jsonrpc": "2.0", "method": "n", "params": []}],
]


def stream(framing: str, messages: list[Any] = MESSAGES) -> bytes:
    return b"".join(frame(framing, orjson.dumps(m)) for m in messages)


def fatal(codec: Any, data: bytes, exc: type[BaseException] = rpcwire.FramingError) -> BaseException:
    """Feed ``data`` then end of input; the stream must end with ``exc`` (raised by either call).

    Then check the poisoning rule: later feeds, valid or empty, raise again.
    """
    with pytest.raises(exc) as info:  # noqa: PT012
        codec.feed(data)
        codec.feed(b"")
    with pytest.raises(rpcwire.FramingError):
        codec.feed(stream("ndjson", MESSAGES[:1]))
    with pytest.raises(rpcwire.FramingError):
        codec.feed(b"")
    return info.value


ALL_FRAMINGS = [*FRAMINGS, "auto"]


def wire_framing(framing: str) -> list[str]:
    """Which byte layouts a reader configured with ``framing`` accepts."""
    return list(FRAMINGS) if framing == "auto" else [framing]


CASES = [(reader, wire) for reader in ALL_FRAMINGS for wire in wire_framing(reader)]


def strided(data: bytes) -> memoryview:
    """``data`` as a non-contiguous view: every other byte of a buffer interleaved with junk."""
    interleaved = bytearray(2 * len(data))
    interleaved[::2] = data
    interleaved[1::2] = b"\xff" * len(data)
    return memoryview(interleaved)[::2]


@pytest.mark.parametrize(("reader", "wire"), CASES)
class TestEveryFraming:
    def test_whole(self, codec_cls: Any, reader: str, wire: str) -> None:
        codec = codec_cls(framing=reader)
        assert feed_all(codec, [stream(wire)], eof=True) == MESSAGES
        assert codec.buffered == 0

    def test_one_byte_at_a_time(self, codec_cls: Any, reader: str, wire: str) -> None:
        codec = codec_cls(framing=reader)
        assert feed_all(codec, bytewise(stream(wire)), eof=True) == MESSAGES

    def test_each_message_in_its_own_feed(self, codec_cls: Any, reader: str, wire: str) -> None:
        codec = codec_cls(framing=reader)
        for message in MESSAGES:
            assert codec.feed(frame(wire, orjson.dumps(message))) == [message]

    def test_trailing_partial_frame(self, codec_cls: Any, reader: str, wire: str) -> None:
        # h11's `tr`: complete frames followed by the start of another one.
        data = stream(wire)
        trailing = frame(wire, orjson.dumps(MESSAGES[0]))[:-3]
        codec = codec_cls(framing=reader)
        assert codec.feed(data + trailing) == MESSAGES
        assert 0 < codec.buffered <= len(trailing)
        # ...which is completed by the next feed,
        assert codec.feed(frame(wire, orjson.dumps(MESSAGES[0]))[-3:]) == [MESSAGES[0]]
        assert codec.buffered == 0
        # ...or, if the input ends there, is a FramingError rather than vanishing.
        codec = codec_cls(framing=reader)
        assert codec.feed(data + trailing) == MESSAGES
        fatal(codec, b"")

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview, strided])
    def test_buffer_types(self, codec_cls: Any, reader: str, wire: str, kind: Any) -> None:
        codec = codec_cls(framing=reader)
        data = stream(wire)
        half = len(data) // 2
        assert feed_all(codec, [kind(data[:half]), kind(data[half:])]) == MESSAGES

    def test_bytearray_reused_by_caller(self, codec_cls: Any, reader: str, wire: str) -> None:
        # A transport may reuse its receive buffer: the codec must have copied what it keeps.
        data = stream(wire)
        buf = bytearray(data[: len(data) // 2 + 1])
        codec = codec_cls(framing=reader)
        items = codec.feed(buf)
        buf[:] = b"\xff" * len(buf)
        items += codec.feed(data[len(data) // 2 + 1 :])
        assert items == MESSAGES

    @given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
    def test_hypothesis_split_points(self, codec_cls: Any, reader: str, wire: str, cuts: list[int]) -> None:
        codec = codec_cls(framing=reader)
        assert feed_all(codec, split_at(stream(wire), cuts), eof=True) == MESSAGES

    def test_utf8_split_inside_characters(self, codec_cls: Any, reader: str, wire: str) -> None:
        message = {"jsonrpc": "2.0", "method": "\u00e9\u20ac\U0001f600", "params": ["\u4e2d\u6587 \U0001f680"]}
        data = frame(wire, orjson.dumps(message))
        for cut in range(1, len(data)):
            codec = codec_cls(framing=reader)
            assert feed_all(codec, [data[:cut], data[cut:]]) == [message], cut

    def test_encode_frames(self, codec_cls: Any, reader: str, wire: str) -> None:
        # Writers emit exactly the layout of section 2 (auto writes what it detected).
        codec = codec_cls(framing=reader)
        codec.feed(frame(wire, orjson.dumps(MESSAGES[0])))
        assert codec.framing == wire
        for message in MESSAGES:
            assert codec.encode(message) == frame(wire, orjson.dumps(message))

    def test_round_trip_through_encode(self, codec_cls: Any, reader: str, wire: str) -> None:
        writer = codec_cls(framing=wire)
        data = writer.encode_many(MESSAGES)
        assert feed_all(codec_cls(framing=reader), bytewise(data), eof=True) == MESSAGES

    def test_end_of_input_between_frames(self, codec_cls: Any, reader: str, wire: str) -> None:
        codec = codec_cls(framing=reader)
        assert codec.feed(stream(wire)) == MESSAGES
        assert codec.feed(b"") == []

    def test_end_of_input_on_empty_stream(self, codec_cls: Any, reader: str, wire: str) -> None:
        assert codec_cls(framing=reader).feed(b"") == []


# --- ndjson ---------------------------------------------------------------------------------------


class TestNdjson:
    def test_crlf_accepted(self, codec_cls: Any) -> None:
        data = b"".join(orjson.dumps(m) + b"\r\n" for m in MESSAGES)
        assert feed_all(codec_cls(framing="ndjson"), bytewise(data), eof=True) == MESSAGES

    def test_crlf_split_between_cr_and_lf(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="ndjson")
        line = orjson.dumps(MESSAGES[0])
        assert codec.feed(line + b"\r") == []
        assert codec.feed(b"\n") == [MESSAGES[0]]

    @pytest.mark.parametrize("blank", [b"\n", b"   \n", b"\t\n", b"\r\n", b" \t\r \n", b"\n\n\n"])
    def test_whitespace_only_lines_ignored(self, codec_cls: Any, blank: bytes) -> None:
        data = blank + orjson.dumps(MESSAGES[0]) + b"\n" + blank + orjson.dumps(MESSAGES[1]) + b"\n" + blank
        codec = codec_cls(framing="ndjson")
        assert feed_all(codec, bytewise(data), eof=True) == MESSAGES[:2]

    def test_insignificant_whitespace_inside_json(self, codec_cls: Any) -> None:
        import json

        data = b"".join(json.dumps(m, indent=None, separators=(" , ", " : ")).encode() + b"\n" for m in MESSAGES)
        data = b"  " + data.replace(b"\n", b" \t\n")
        assert feed_all(codec_cls(framing="ndjson"), [data], eof=True) == MESSAGES

    def test_final_line_without_newline_decoded_at_eof(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="ndjson")
        data = orjson.dumps(MESSAGES[0]) + b"\n" + orjson.dumps(MESSAGES[2])
        assert feed_all(codec, [data], eof=True) == [MESSAGES[0], MESSAGES[2]]

    def test_final_line_with_crlf_remnant(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="ndjson")
        assert feed_all(codec, [orjson.dumps(MESSAGES[0]) + b"\r"], eof=True) == [MESSAGES[0]]

    @pytest.mark.parametrize("tail", [b"   ", b"\t\r", b" \r "])
    def test_final_whitespace_line_at_eof(self, codec_cls: Any, tail: bytes) -> None:
        codec = codec_cls(framing="ndjson")
        assert feed_all(codec, [orjson.dumps(MESSAGES[0]) + b"\n" + tail], eof=True) == [MESSAGES[0]]

    @pytest.mark.parametrize("tail", [b'{"jsonrpc": "2.0", "met', b"[", b'"abc', b"xyz", b"{}}"])
    def test_final_line_not_complete_json_at_eof(self, codec_cls: Any, tail: bytes) -> None:
        codec = codec_cls(framing="ndjson")
        assert codec.feed(orjson.dumps(MESSAGES[0]) + b"\n" + tail) == [MESSAGES[0]]
        fatal(codec, b"")

    def test_garbage_line_is_a_parse_error_item(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="ndjson")
        items = codec.feed(b"xyz\n" + orjson.dumps(MESSAGES[0]) + b"\n")
        assert isinstance(items[0], rpcwire.ParseError)
        assert items[1:] == [MESSAGES[0]]

    def test_line_of_exactly_max_frame_size(self, codec_cls: Any) -> None:
        message = {"jsonrpc": "2.0", "method": "m", "params": ["x" * 100]}
        line = orjson.dumps(message)
        codec = codec_cls(framing="ndjson", max_frame_size=len(line))
        assert feed_all(codec, bytewise(line + b"\n")) == [message]

    def test_line_growing_past_max_frame_size(self, codec_cls: Any) -> None:
        limit = 1000
        codec = codec_cls(framing="ndjson", max_frame_size=limit)
        start = b'{"jsonrpc":"2.0","method":"m","params":["'
        assert codec.feed(start) == []
        # A line of `limit` bytes so far may still end here: not refused yet.
        assert codec.feed(b"x" * (limit - len(start))) == []
        with pytest.raises(rpcwire.FrameTooLarge):
            codec.feed(b"x")  # limit + 1 bytes and no newline: longer than max_frame_size
        assert codec.buffered <= limit + 1
        fatal(codec, b"", rpcwire.FrameTooLarge)

    def test_long_line_in_small_chunks_refused_with_bounded_buffer(self, codec_cls: Any) -> None:
        limit = 4096
        codec = codec_cls(framing="ndjson", max_frame_size=limit)
        with pytest.raises(rpcwire.FrameTooLarge):  # noqa: PT012
            for _ in range(100):
                codec.feed(b"a" * 100)
                assert codec.buffered <= limit
        assert codec.buffered <= limit + 100

    def test_long_line_in_one_chunk(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="ndjson", max_frame_size=100)
        with pytest.raises(rpcwire.FrameTooLarge):
            codec.feed(b"[" + b"1," * 1000 + b"1]\n")

    def test_complete_lines_before_an_oversized_one_are_kept(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="ndjson", max_frame_size=200)
        items: list[Any] = []
        with pytest.raises(rpcwire.FrameTooLarge):  # noqa: PT012
            for piece in bytewise(stream("ndjson", MESSAGES[:1]) + b"y" * 300):
                items += codec.feed(piece)
        assert items == MESSAGES[:1]


# --- length ---------------------------------------------------------------------------------------


class TestLength:
    @pytest.mark.parametrize("declared", [2**31, 2**32 - 1, 16 * 2**20 + 1])
    def test_oversized_prefix_refused_before_allocation(self, codec_cls: Any, declared: int) -> None:
        codec = codec_cls(framing="length")  # default max_frame_size: 16 MiB
        assert codec.max_frame_size == 16 * 2**20
        with pytest.raises(rpcwire.FrameTooLarge):
            codec.feed(struct.pack(">I", declared))  # the 4-byte header alone is enough
        assert codec.buffered <= 4
        fatal(codec, b"", rpcwire.FrameTooLarge)

    def test_oversized_prefix_with_payload_bytes_in_the_same_chunk(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="length", max_frame_size=1024)
        with pytest.raises(rpcwire.FrameTooLarge):
            codec.feed(struct.pack(">I", 1025) + b"{" * 1025)
        assert codec.buffered <= 4

    def test_oversized_prefix_after_good_frames(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="length", max_frame_size=1024)
        items: list[Any] = []
        with pytest.raises(rpcwire.FrameTooLarge):  # noqa: PT012
            for piece in bytewise(stream("length", MESSAGES[:2]) + struct.pack(">I", 2**31)):
                items += codec.feed(piece)
        assert items == MESSAGES[:2]

    def test_frame_of_exactly_max_frame_size(self, codec_cls: Any) -> None:
        payload = orjson.dumps(MESSAGES[0])
        codec = codec_cls(framing="length", max_frame_size=len(payload))
        assert codec.feed(frame("length", payload)) == [MESSAGES[0]]

    def test_zero_length_frame_is_a_parse_error_item(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="length")
        items = codec.feed(struct.pack(">I", 0) + frame("length", orjson.dumps(MESSAGES[0])))
        assert len(items) == 2
        assert isinstance(items[0], rpcwire.ParseError)
        assert items[0].code == -32700
        assert items[1] == MESSAGES[0]

    @pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 20])
    def test_eof_inside_a_frame(self, codec_cls: Any, cut: int) -> None:
        codec = codec_cls(framing="length")
        fatal(codec, frame("length", orjson.dumps(MESSAGES[0]))[:cut])

    def test_payload_with_newlines_and_spaces(self, codec_cls: Any) -> None:
        payload = b'{\n  "jsonrpc": "2.0",\n  "method": "m"\n}\n'
        assert codec_cls(framing="length").feed(frame("length", payload)) == [{"jsonrpc": "2.0", "method": "m"}]


# --- content-length ---------------------------------------------------------------------------------


class TestContentLength:
    payload = orjson.dumps(MESSAGES[0])

    @pytest.mark.parametrize(
        "header",
        [
            b"content-length: %d\r\n\r\n",
            b"CONTENT-LENGTH: %d\r\n\r\n",
            b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
            b"X-Other: 1\r\ncOnTeNt-LeNgTh: %d\r\nX-More: 2\r\n\r\n",
        ],
    )
    def test_header_variants(self, codec_cls: Any, header: bytes) -> None:
        data = (header % len(self.payload) + self.payload) * 2
        assert feed_all(codec_cls(framing="content-length"), bytewise(data), eof=True) == [MESSAGES[0]] * 2

    def test_writer_emits_exact_header(self, codec_cls: Any) -> None:
        out = codec_cls(framing="content-length").encode(MESSAGES[0])
        assert out == b"Content-Length: " + str(len(self.payload)).encode() + b"\r\n\r\n" + self.payload

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(b"Content-Type: application/json\r\n\r\n", id="missing"),
            pytest.param(b"Content-Length: 10\r\nContent-Length: 10\r\n\r\n", id="repeated"),
            pytest.param(b"Content-Length: abc\r\n\r\n", id="non-decimal"),
            pytest.param(b"Content-Length: 0x10\r\n\r\n", id="hex"),
            pytest.param(b"Content-Length: -5\r\n\r\n", id="negative"),
            pytest.param(b"Content-Length: \r\n\r\n", id="empty"),
            pytest.param(b"Content-Length: 10\n\n" + b"x" * 5000, id="bare-lf"),
        ],
    )
    def test_bad_header_is_fatal(self, codec_cls: Any, bad: bytes) -> None:
        fatal(codec_cls(framing="content-length"), bad + b"{}" * 10)

    def test_header_block_over_4096_bytes(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="content-length")
        header = b"Content-Length: 2\r\n" + b"X-Pad: " + b"p" * 5000 + b"\r\n\r\n{}"
        fatal(codec, header)

    def test_header_block_growing_without_end_is_refused_with_bounded_buffer(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="content-length")
        with pytest.raises(rpcwire.FramingError):  # noqa: PT012
            for _ in range(100):
                codec.feed(b"X-Pad: " + b"p" * 93)
        assert codec.buffered <= 4096 + 100

    def test_header_block_just_under_4096_bytes(self, codec_cls: Any) -> None:
        head = b"Content-Length: %d\r\n" % len(self.payload)
        pad = b"X-Pad: " + b"p" * (4096 - len(head) - 4 - 9) + b"\r\n"
        block = head + pad + b"\r\n"
        assert len(block) <= 4096
        assert codec_cls(framing="content-length").feed(block + self.payload) == [MESSAGES[0]]

    @pytest.mark.parametrize("declared", [b"2147483648", b"16777217", b"99999999999999999999999999"])
    def test_declared_size_too_large(self, codec_cls: Any, declared: bytes) -> None:
        codec = codec_cls(framing="content-length")
        with pytest.raises(rpcwire.FrameTooLarge):
            codec.feed(b"Content-Length: " + declared + b"\r\n\r\n")
        assert codec.buffered <= 64
        fatal(codec, b"", rpcwire.FrameTooLarge)

    @pytest.mark.parametrize("cut", [3, 16, 20, 22, 30])
    def test_eof_inside_a_frame(self, codec_cls: Any, cut: int) -> None:
        fatal(codec_cls(framing="content-length"), frame("content-length", self.payload)[:cut])

    def test_zero_length_is_a_parse_error_item(self, codec_cls: Any) -> None:
        items = codec_cls(framing="content-length").feed(b"Content-Length: 0\r\n\r\n" + frame("content-length", b"{}"))
        assert isinstance(items[0], rpcwire.ParseError)
        assert isinstance(items[1], rpcwire.InvalidRequest)


# --- auto -----------------------------------------------------------------------------------------


class TestAuto:
    @pytest.mark.parametrize(
        ("first", "detected"),
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
            (b"\x01", "length"),
            (b"x", "length"),
        ],
    )
    def test_detection_by_first_byte(self, codec_cls: Any, first: bytes, detected: str) -> None:
        codec = codec_cls(framing="auto")
        assert codec.framing == "auto"
        codec.feed(first)
        assert codec.framing == detected

    def test_writes_ndjson_before_anything_is_received(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="auto")
        assert codec.encode(MESSAGES[0]) == orjson.dumps(MESSAGES[0]) + b"\n"
        assert codec.framing == "auto"

    def test_writes_in_the_detected_framing_after_whitespace_start(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="auto")
        assert codec.feed(b"\r\n  \n" + stream("ndjson")) == MESSAGES
        assert codec.encode(MESSAGES[1]) == frame("ndjson", orjson.dumps(MESSAGES[1]))

    def test_auto_enforces_max_frame_size(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="auto", max_frame_size=100)
        with pytest.raises(rpcwire.FrameTooLarge):
            codec.feed(struct.pack(">I", 101))

    def test_empty_feed_does_not_detect(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="auto")
        assert codec.feed(b"") == []
        assert codec.framing == "auto"


# --- poisoning ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "bad", "exc"),
    [
        ("length", struct.pack(">I", 2**31), rpcwire.FrameTooLarge),
        ("content-length", b"Content-Length: nope\r\n\r\n", rpcwire.FramingError),
        ("content-length", b"Content-Length: 99999999999\r\n\r\n", rpcwire.FrameTooLarge),
        ("ndjson", b"z" * 2000, rpcwire.FrameTooLarge),
    ],
)
def test_poisoned_after_fatal_error(framing: str, bad: bytes, exc: type[Exception], codec_cls: Any) -> None:
    codec = codec_cls(framing=framing, max_frame_size=1000)
    with pytest.raises(exc):
        codec.feed(bad)
    for _ in range(3):
        with pytest.raises(exc):
            codec.feed(stream(framing))
    with pytest.raises(exc):
        codec.feed(b"")


def test_fatal_errors_are_rpcwire_errors() -> None:
    assert issubclass(rpcwire.FrameTooLarge, rpcwire.FramingError)
    assert issubclass(rpcwire.FramingError, rpcwire.RpcWireError)


def test_codec_class_helper() -> None:
    assert codec_class("rust") is rpcwire.Codec
