"""``Codec.feed_each``: ``feed`` with each item handed to a function as it is decoded (what ``Transport.handle``
runs on). Both implementations; ``feed`` is the oracle for what the items are."""

from __future__ import annotations

import gc
import struct
from typing import Any

import pytest
import rpcwire
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FRAMINGS, JUNK_FOR, frame, split_points

NO_LIMIT = 1 << 40


def request(i: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": i, "method": "m", "params": {"i": i}}


def stream(framing: str, n: int) -> bytes:
    return b"".join(frame(framing, rpcwire.Codec(framing="length").encode(request(i))[4:]) for i in range(n))


def feed_each_all(codec: Any, pieces: list[bytes], eof: bool = True) -> list[Any]:
    """Every item, as feed_each hands them out (none raised, no limit)."""
    seen: list[Any] = []
    answers: list[Any] = []
    for piece in [*pieces, b""] if eof else pieces:
        _, error, rest = codec.feed_each(piece, seen.append, answers, NO_LIMIT)
        assert (error, rest, answers) == (None, [], [])
    return seen


def feed_all_safely(codec: Any, pieces: list[bytes]) -> tuple[list[Any], str | None]:
    """feed's items for `pieces` then EOF, and the name of the fatal error that ended them, if one did."""
    items: list[Any] = []
    try:
        for piece in [*pieces, b""]:
            items.extend(codec.feed(piece))
    except rpcwire.RpcWireError as exc:
        return items + list(exc.items), type(exc).__name__
    return items, None


def feed_each_safely(codec: Any, pieces: list[bytes]) -> tuple[list[Any], str | None, int]:
    """The same through feed_each (checking its counts), plus how many items the handler got in the call that
    raised minus what that error's ``handled`` says: 0 when it tells the truth."""
    seen: list[Any] = []
    before = 0
    try:
        for piece in [*pieces, b""]:
            before = len(seen)
            handled, error, rest = codec.feed_each(piece, seen.append, [], NO_LIMIT)
            assert (handled, error, rest) == (len(seen) - before, None, [])
    except rpcwire.RpcWireError as exc:
        return seen + list(exc.items), type(exc).__name__, len(seen) - before - exc.handled
    return seen, None, 0


def same_items(a: list[Any], b: list[Any]) -> bool:
    def key(item: Any) -> Any:
        if isinstance(item, rpcwire.ProtocolError):
            return (type(item).__name__, item.code, item.id)
        return item

    return [key(x) for x in a] == [key(x) for x in b]


@pytest.mark.parametrize("framing", FRAMINGS)
@given(data=st.data())
def test_hands_out_what_feed_returns(codec_cls: Any, framing: str, data: st.DataObject) -> None:
    """Any input, cut anywhere: the handler sees exactly feed's items in feed's order, and a fatal error is the
    same error after the same items."""
    payload = stream(framing, 3) + data.draw(JUNK_FOR[framing]) + stream(framing, 2)
    pieces = data.draw(split_points(payload))
    expected, expected_error = feed_all_safely(codec_cls(framing=framing), pieces)
    got, error, miscount = feed_each_safely(codec_cls(framing=framing), pieces)
    assert error == expected_error
    assert miscount == 0
    assert same_items(got, expected)


def test_answers_and_count(codec_cls: Any) -> None:
    codec = codec_cls(framing="ndjson")
    answers: list[Any] = ["earlier"]
    handled, error, rest = codec.feed_each(
        stream("ndjson", 6), lambda m: m["id"] * 10 if m["id"] % 2 else None, answers, NO_LIMIT
    )
    assert (handled, error, rest) == (6, None, [])
    assert answers == ["earlier", 10, 30, 50]


def test_items_are_not_held_together(codec_cls: Any) -> None:
    """While the handler runs, no list of the chunk's items refers to the item: it dies when the handler
    lets it go, before the next one is built."""
    codec = codec_cls(framing="ndjson")
    holders: list[int] = []

    def handler(msg: Any) -> None:
        holders.append(sum(isinstance(r, list) for r in gc.get_referrers(msg)))

    codec.feed_each(stream("ndjson", 5), handler, [], NO_LIMIT)
    if codec_cls is rpcwire.Codec:
        assert holders == [0] * 5
    else:  # the reference builds the chunk's list first (it is the slow oracle)
        assert len(holders) == 5


def test_stops_handing_out_when_the_answers_fill(codec_cls: Any) -> None:
    codec = codec_cls(framing="length")
    answers: list[Any] = []
    handled, error, rest = codec.feed_each(stream("length", 10), lambda m: m["id"], answers, 4)
    assert (handled, error) == (4, None)
    assert answers == [0, 1, 2, 3]
    assert [m["id"] for m in rest] == [4, 5, 6, 7, 8, 9]


def test_handler_error_is_returned_with_the_rest(codec_cls: Any) -> None:
    codec = codec_cls(framing="ndjson")
    answers: list[Any] = []

    def handler(msg: Any) -> Any:
        if msg["id"] == 2:
            raise KeyError("boom")
        return msg["id"]

    handled, error, rest = codec.feed_each(stream("ndjson", 5) + b"not json\n", handler, answers, NO_LIMIT)
    assert handled == 3  # 0, 1 and the one that raised
    assert isinstance(error, KeyError)
    assert answers == [0, 1]
    assert [m["id"] for m in rest[:2]] == [3, 4]
    assert isinstance(rest[2], rpcwire.ParseError)
    # the codec goes on
    assert codec.feed(stream("ndjson", 1)) == [request(0)]


def test_base_exceptions_propagate(codec_cls: Any) -> None:
    def handler(msg: Any) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        codec_cls(framing="ndjson").feed_each(stream("ndjson", 2), handler, [], NO_LIMIT)


def test_fatal_error_after_handled_items(codec_cls: Any) -> None:
    codec = codec_cls(framing="length", max_frame_size=1000)
    seen: list[Any] = []
    bad = struct.pack(">I", 5000)
    with pytest.raises(rpcwire.FrameTooLarge) as info:
        codec.feed_each(stream("length", 3) + bad, seen.append, [], NO_LIMIT)
    assert [m["id"] for m in seen] == [0, 1, 2]
    assert info.value.handled == 3
    assert list(info.value.items) == []
    with pytest.raises(rpcwire.FrameTooLarge):  # poisoned
        codec.feed_each(b"", seen.append, [], NO_LIMIT)


def test_fatal_error_after_the_answers_filled(codec_cls: Any) -> None:
    codec = codec_cls(framing="length", max_frame_size=1000)
    answers: list[Any] = []
    with pytest.raises(rpcwire.FrameTooLarge) as info:
        codec.feed_each(stream("length", 3) + struct.pack(">I", 5000), lambda m: m["id"], answers, 1)
    assert answers == [0]
    assert info.value.handled == 1
    assert [m["id"] for m in info.value.items] == [1, 2]


def test_handler_error_then_fatal_error(codec_cls: Any) -> None:
    """Both in one chunk: the handler's error is reported with the items after it; the poisoned codec raises
    the fatal one next."""
    codec = codec_cls(framing="length", max_frame_size=1000)

    def handler(msg: Any) -> Any:
        raise ValueError("handler")

    handled, error, rest = codec.feed_each(stream("length", 3) + struct.pack(">I", 5000), handler, [], NO_LIMIT)
    assert handled == 1
    assert isinstance(error, ValueError)
    assert [m["id"] for m in rest] == [1, 2]
    with pytest.raises(rpcwire.FrameTooLarge):
        codec.feed(b"")


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_mutable_input_may_change_inside_the_handler(kind: type) -> None:
    """A transport reads into one reused buffer; a handler that triggers another read must not change what the
    codec is still decoding."""
    buf = bytearray(stream("ndjson", 4))
    data = kind(buf) if kind is not memoryview else memoryview(buf)
    seen: list[int] = []

    def handler(msg: Any) -> None:
        seen.append(msg["id"])
        buf[:] = b"x" * len(buf)

    rpcwire.Codec(framing="ndjson").feed_each(data, handler, [], NO_LIMIT)
    assert seen == [0, 1, 2, 3]


def test_same_as_feed_for_every_framing_and_envelope() -> None:
    keyring = rpcwire.Keyring({1: bytes(range(32))})
    for kwargs in ({"framing": f} for f in FRAMINGS):
        sender, receiver = rpcwire.Codec(**kwargs), rpcwire.Codec(**kwargs)
        data = sender.encode_many([request(i) for i in range(50)])
        assert feed_each_all(receiver, [data]) == [request(i) for i in range(50)]
    for extra in ({"compression": "lz4", "compress_min_size": 0}, {"keyring": keyring}):
        sender = rpcwire.Codec(framing="length", **extra)  # type: ignore[arg-type]
        receiver = rpcwire.Codec(framing="length", **extra)  # type: ignore[arg-type]
        data = sender.encode_many([request(i) for i in range(50)])  # one multi-record envelope
        assert feed_each_all(receiver, [data[:7], data[7:]]) == [request(i) for i in range(50)]


def test_a_handler_calling_the_same_codec_gets_an_error_not_a_crash() -> None:
    codec = rpcwire.Codec(framing="ndjson")

    def handler(msg: Any) -> Any:
        return codec.encode(msg)

    handled, error, rest = codec.feed_each(stream("ndjson", 3), handler, [], NO_LIMIT)
    assert handled == 1
    assert isinstance(error, RuntimeError)
    assert [m["id"] for m in rest] == [1, 2]
    assert codec.encode(request(0)) == stream("ndjson", 1)  # usable again
