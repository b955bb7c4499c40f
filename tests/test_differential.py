"""Differential tests: ``rpcwire.Codec`` (Rust) against ``rpcwire.reference.Codec`` (pure Python), both
built from docs/wire-format.md, in both directions, for every framing, on valid and junk input.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
import rpcwire
from hypothesis import given
from hypothesis import strategies as st
from rpcwire import reference

from tests.conftest import FRAMINGS, JUNK_FOR, any_junk, split_points

RUST = rpcwire.Codec
REF = reference.Codec
PAIRS = [pytest.param(RUST, REF, id="rust-to-reference"), pytest.param(REF, RUST, id="reference-to-rust")]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=15,
)
ids = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=10)
members = st.dictionaries(st.sampled_from(["_meta", "extra", "x"]), values, max_size=2)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(st.sampled_from(["request", "notification", "response", "error"]))
    msg: dict[str, Any] = {"jsonrpc": "2.0"}
    if shape in ("request", "notification"):
        msg["method"] = draw(st.text(max_size=20))
        if shape == "request":
            msg["id"] = draw(ids)
        params = draw(st.none() | st.lists(values, max_size=3) | st.dictionaries(st.text(max_size=6), values))
        if params is not None:
            msg["params"] = params
    elif shape == "response":
        msg["id"] = draw(ids)
        msg["result"] = draw(values)
    else:
        msg["id"] = draw(ids)
        msg["error"] = {"code": draw(st.integers(-(2**31), 2**31)), "message": draw(st.text(max_size=20))}
    msg.update(draw(members))
    return msg


batches = st.lists(messages(), min_size=1, max_size=3)
items_in = st.lists(messages() | batches, min_size=1, max_size=5)


def norm(x: Any) -> Any:
    """A comparable form of an item: exact types, float bits, ProtocolError as (class, id)."""
    if isinstance(x, rpcwire.ProtocolError):
        return ("error", type(x).__name__, norm(x.id))
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, float):
        return ("float", struct.pack(">d", x))
    if isinstance(x, int):
        return ("int", x)
    if isinstance(x, str):
        return ("str", x)
    if isinstance(x, list):
        return ["list", *(norm(e) for e in x)]
    if isinstance(x, dict):
        return ["dict", *((k, norm(v)) for k, v in x.items())]
    raise AssertionError(f"unexpected item type {type(x)!r}: {x!r}")


def as_json(x: Any) -> Any:
    """What ``x`` reads back as after a JSON round trip (NaN and the infinities become null)."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return None
    if isinstance(x, list):
        return [as_json(e) for e in x]
    if isinstance(x, dict):
        return {k: as_json(v) for k, v in x.items()}
    return x


def outcome(codec: Any, pieces: list[bytes]) -> tuple[list[Any], type[BaseException] | None]:
    """Everything a codec makes of ``pieces`` then end of input: the items and the error that ended it."""
    items: list[Any] = []
    try:
        for piece in [*pieces, b""]:
            items.extend(codec.feed(piece))
    except rpcwire.RpcWireError as exc:
        return [norm(i) for i in items], type(exc)
    return [norm(i) for i in items], None


def assert_same_outcome(a: tuple[list[Any], Any], b: tuple[list[Any], Any]) -> None:
    (items_a, err_a), (items_b, err_b) = a, b
    assert err_a is err_b, (err_a, err_b, items_a, items_b)
    if err_a is None:
        assert items_a == items_b
    else:
        # Both ended the stream with the same error. The spec fixes which error, not in which feed
        # call it is raised (a feed that raises returns nothing), so one item list is a prefix of the other.
        shorter, longer = sorted([items_a, items_b], key=len)
        assert longer[: len(shorter)] == shorter, (items_a, items_b)


# --- encoding: byte-identical for plain framings --------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
@given(msgs=items_in)
def test_encode_identical(framing: str, msgs: list[Any]) -> None:
    rust, ref = RUST(framing=framing), REF(framing=framing)
    for msg in msgs:
        assert rust.encode(msg) == ref.encode(msg)
    assert rust.encode_many(msgs) == ref.encode_many(msgs)


@given(
    value=st.sets(st.integers(), min_size=1) | st.builds(object) | st.dictionaries(st.integers(), st.none(), min_size=1)
)
def test_encode_errors_agree(value: Any) -> None:
    msg = {"jsonrpc": "2.0", "id": 1, "result": value}
    with pytest.raises(TypeError):
        RUST().encode(msg)
    with pytest.raises(TypeError):
        REF().encode(msg)


# --- decoding each other's bytes ------------------------------------------------------------------


@pytest.mark.parametrize(("writer_cls", "reader_cls"), PAIRS)
@pytest.mark.parametrize("framing", [*FRAMINGS, "auto"])
@given(msgs=items_in, data=st.data())
def test_decode_each_other(
    writer_cls: Any, reader_cls: Any, framing: str, msgs: list[Any], data: st.DataObject
) -> None:
    wire = framing if framing != "auto" else data.draw(st.sampled_from(FRAMINGS))
    writer = writer_cls(framing=wire)
    encoded = writer.encode_many(msgs)
    pieces = data.draw(split_points(encoded))
    got = outcome(reader_cls(framing=framing), pieces)
    expected = outcome(writer_cls(framing=framing), pieces)  # the writer's own implementation reading it
    assert got[1] is None
    assert_same_outcome(got, expected)
    # NaN and the infinities are written as null; everything else reads back exactly.
    assert got[0] == [norm(as_json(m)) for m in msgs]


@pytest.mark.parametrize(("writer_cls", "reader_cls"), PAIRS)
@pytest.mark.parametrize("compression", ["lz4", "brotli"])
@given(msgs=items_in, data=st.data())
def test_compressed_frames_decode_each_other(
    writer_cls: Any, reader_cls: Any, compression: str, msgs: list[Any], data: st.DataObject
) -> None:
    writer = writer_cls(
        framing="length", compression=compression, compress_min_size=data.draw(st.sampled_from([0, 64]))
    )
    encoded = data.draw(st.sampled_from([writer.encode_many(msgs), b"".join(writer.encode(m) for m in msgs)]))
    pieces = data.draw(split_points(encoded))
    # A receiver needs only the framing: the header says how each frame was compressed.
    got = outcome(reader_cls(framing="length"), pieces)
    expected = outcome(writer_cls(framing="length", compression=compression), pieces)
    assert got[1] is None
    assert_same_outcome(got, expected)


@pytest.mark.parametrize(("writer_cls", "reader_cls"), PAIRS)
@pytest.mark.parametrize("compression", [None, "lz4"])
@given(msgs=items_in, data=st.data())
def test_encrypted_frames_decode_each_other(
    writer_cls: Any, reader_cls: Any, compression: str | None, msgs: list[Any], data: st.DataObject
) -> None:
    keyring = rpcwire.Keyring({7: b"k" * 32}, active=7)
    writer = writer_cls(framing="length", compression=compression, compress_min_size=0, keyring=keyring)
    encoded = writer.encode_many(msgs) + writer.encode(msgs[0])
    pieces = data.draw(split_points(encoded))
    got = outcome(reader_cls(framing="length", keyring=keyring), pieces)
    assert got[1] is None
    assert len(got[0]) == len(msgs) + 1
    expected = outcome(writer_cls(framing="length", keyring=keyring), pieces)
    assert_same_outcome(got, expected)


# --- junk: both must make the same of it ----------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("max_frame_size", [16 * 2**20, 64])
@given(data=st.data())
def test_junk_same_outcome(framing: str, max_frame_size: int, data: st.DataObject) -> None:
    junk = data.draw(JUNK_FOR[framing] | any_junk)
    pieces = data.draw(split_points(junk))
    assert_same_outcome(
        outcome(RUST(framing=framing, max_frame_size=max_frame_size), pieces),
        outcome(REF(framing=framing, max_frame_size=max_frame_size), pieces),
    )


@given(junk=any_junk, data=st.data())
def test_junk_same_outcome_auto(junk: bytes, data: st.DataObject) -> None:
    pieces = data.draw(split_points(junk))
    rust, ref = RUST(framing="auto"), REF(framing="auto")
    assert_same_outcome(outcome(rust, pieces), outcome(ref, pieces))
    assert rust.framing == ref.framing


@pytest.mark.parametrize("compression", ["lz4", "brotli"])
@given(junk=JUNK_FOR["length"], data=st.data())
def test_junk_same_outcome_with_compression(compression: str, junk: bytes, data: st.DataObject) -> None:
    pieces = data.draw(split_points(junk))
    assert_same_outcome(
        outcome(RUST(framing="length", compression=compression), pieces),
        outcome(REF(framing="length", compression=compression), pieces),
    )


@given(junk=JUNK_FOR["length"], data=st.data())
def test_junk_same_outcome_with_keyring(junk: bytes, data: st.DataObject) -> None:
    keyring = rpcwire.Keyring({1: b"\x01" * 32}, active=1)
    pieces = data.draw(split_points(junk))
    assert_same_outcome(
        outcome(RUST(framing="length", keyring=keyring), pieces),
        outcome(REF(framing="length", keyring=keyring), pieces),
    )
