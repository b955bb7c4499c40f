"""The invariant (h11's afl harness): for any bytes, in any chunks, for every framing and option set,
``feed`` returns a list of items or raises an ``RpcWireError`` subclass -- never another exception,
never a crash. ``feed(b"")`` likewise. And once it has raised, it raises again.
"""

from __future__ import annotations

from typing import Any

import pytest
import rpcwire
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FRAMINGS, JUNK_FOR, any_junk, split_points

KEY = b"\x42" * 32

OPTIONS: list[Any] = [
    *({"framing": f} for f in [*FRAMINGS, "auto"]),
    {"framing": "ndjson", "max_frame_size": 16},
    {"framing": "length", "max_frame_size": 16},
    {"framing": "content-length", "max_frame_size": 16},
    {"framing": "auto", "max_frame_size": 16},
    {"framing": "length", "compression": "lz4", "compress_min_size": 0},
    {"framing": "length", "compression": "brotli", "compress_min_size": 0},
    {"framing": "content-length", "compression": "lz4"},
    {"framing": "auto", "compression": "brotli"},
    {"framing": "length", "keyring": "yes"},
    {"framing": "content-length", "keyring": "yes", "compression": "lz4"},
    {"framing": "auto", "keyring": "yes"},
]


def make(codec_cls: Any, options: dict[str, Any]) -> Any:
    if options.get("keyring") == "yes":
        options = {**options, "keyring": rpcwire.Keyring({1: KEY}, active=1)}
    return codec_cls(**options)


def check_item(item: Any) -> None:
    assert isinstance(item, (dict, list, rpcwire.ProtocolError)), item
    if isinstance(item, list):
        assert item  # a batch is never empty
        for element in item:
            assert isinstance(element, (dict, rpcwire.ProtocolError)), element


def run(codec: Any, pieces: list[bytes]) -> None:
    """Feed ``pieces`` then end of input; check the invariant at every call."""
    for piece in [*pieces, b""]:
        try:
            items = codec.feed(piece)
        except rpcwire.RpcWireError as exc:
            if isinstance(exc, rpcwire.ProtocolError):
                pytest.fail(f"ProtocolError is returned as an item, never raised: {exc!r}")
            # poisoned: it raises again, with valid input or at end of input
            with pytest.raises(rpcwire.RpcWireError):
                codec.feed(b'{"jsonrpc":"2.0","method":"m"}\n')
            with pytest.raises(rpcwire.RpcWireError):
                codec.feed(b"")
            return
        assert type(items) is list
        for item in items:
            check_item(item)


ids = [",".join(f"{k}={v}" for k, v in o.items()) for o in OPTIONS]


@pytest.mark.parametrize("options", OPTIONS, ids=ids)
@given(data=st.binary(max_size=300), cuts=st.data())
def test_any_bytes(codec_cls: Any, options: dict[str, Any], data: bytes, cuts: st.DataObject) -> None:
    run(make(codec_cls, options), cuts.draw(split_points(data)))


@pytest.mark.parametrize("options", OPTIONS, ids=ids)
@given(data=st.data())
def test_structured_junk(codec_cls: Any, options: dict[str, Any], data: st.DataObject) -> None:
    framing = options["framing"]
    junk = data.draw(JUNK_FOR.get(framing, any_junk) | any_junk)
    run(make(codec_cls, options), data.draw(split_points(junk)))


@pytest.mark.parametrize("options", OPTIONS, ids=ids)
@given(data=st.binary(max_size=200))
def test_one_byte_at_a_time(codec_cls: Any, options: dict[str, Any], data: bytes) -> None:
    run(make(codec_cls, options), [data[i : i + 1] for i in range(len(data))])


@pytest.mark.parametrize("options", OPTIONS, ids=ids)
def test_end_of_input_alone(codec_cls: Any, options: dict[str, Any]) -> None:
    codec = make(codec_cls, options)
    assert codec.feed(b"") == []
    assert codec.feed(b"") == []


@pytest.mark.parametrize("options", OPTIONS, ids=ids)
@given(data=st.binary(max_size=100))
def test_buffer_types_agree(codec_cls: Any, options: dict[str, Any], data: bytes) -> None:
    """bytes, bytearray and memoryview inputs make the same items or the same error."""
    results = []
    for kind in (bytes, bytearray, memoryview):
        codec = make(codec_cls, options)
        try:
            results.append([repr(i) for i in codec.feed(kind(data))])
        except rpcwire.RpcWireError as exc:
            results.append([type(exc).__name__])
    assert results[0] == results[1] == results[2]


def outcome(codec: Any, pieces: list[bytes]) -> tuple[list[str], str | None]:
    """The items (as reprs) and the error class one run of ``pieces`` then end of input gives."""
    items: list[str] = []
    for piece in [*pieces, b""]:
        try:
            items += [repr(i) for i in codec.feed(piece)]
        except rpcwire.RpcWireError as exc:  # noqa: PERF203 - one feed per piece, as a transport calls it
            return [*items, *(repr(i) for i in getattr(exc, "items", []))], type(exc).__name__
    return items, None


@pytest.mark.parametrize("options", OPTIONS, ids=ids)
@given(data=st.data())
def test_any_split_gives_the_same_items_or_the_same_error(
    codec_cls: Any, options: dict[str, Any], data: st.DataObject
) -> None:
    """The property a fuzzer checks, in the suite: how the bytes are cut into reads never changes the result."""
    framing = options["framing"]
    stream = data.draw(JUNK_FOR.get(framing, any_junk) | any_junk | st.binary(max_size=300))
    whole = outcome(make(codec_cls, options), [stream])
    assert outcome(make(codec_cls, options), data.draw(split_points(stream))) == whole
    assert outcome(make(codec_cls, options), [stream[i : i + 1] for i in range(len(stream))]) == whole
