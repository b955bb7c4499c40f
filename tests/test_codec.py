"""The Codec API: constructor and properties, JSON encoding (byte-identical to orjson), numbers,
bytes pass-through, encode_many, and a 32 MiB message decoded in 64 KiB chunks with bounded memory.
"""

from __future__ import annotations

import enum
import json
import math
import struct
import subprocess
import sys
import textwrap
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import orjson
import pytest
import rpcwire
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FRAMINGS, frame

# --- strategies -----------------------------------------------------------------------------------

# What orjson can represent: 64-bit integers, any float (NaN/inf written as null), str without lone
# surrogates, str-keyed dicts, lists.
orjson_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats() | st.text()
)
orjson_values = st.recursive(
    orjson_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
# What round-trips exactly: the same, without NaN/inf (they become null), plus integers of any size.
exact_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**80), max_value=10**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
exact_values = st.recursive(
    exact_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Type-strict deep equality; floats compared bit for bit (so -0.0 != 0.0), dict key order included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def message(params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "m", "params": [params]}


# --- constructor and properties -------------------------------------------------------------------


class TestConstructor:
    def test_defaults(self, codec_cls: Any) -> None:
        codec = codec_cls()
        assert codec.framing == "ndjson"
        assert codec.compression is None
        assert codec.max_frame_size == 16 * 2**20
        assert codec.compress_min_size == 1024
        assert codec.buffered == 0

    @pytest.mark.parametrize("framing", [*FRAMINGS, "auto"])
    def test_framing_property(self, codec_cls: Any, framing: str) -> None:
        assert codec_cls(framing=framing).framing == framing

    def test_compression_defaults_to_length(self, codec_cls: Any) -> None:
        codec = codec_cls(compression="lz4")
        assert codec.framing == "length"
        assert codec.compression == "lz4"

    def test_options_kept(self, codec_cls: Any) -> None:
        codec = codec_cls(framing="length", compression="brotli", compress_min_size=10, max_frame_size=12345)
        assert (codec.compression, codec.compress_min_size, codec.max_frame_size) == ("brotli", 10, 12345)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"framing": "xml"},
            {"framing": ""},
            {"compression": "gzip"},
            {"framing": "ndjson", "compression": "lz4"},
            {"framing": "ndjson", "compression": "brotli"},
        ],
    )
    def test_bad_options(self, codec_cls: Any, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            codec_cls(**kwargs)

    def test_keyring_with_ndjson_refused(self, codec_cls: Any) -> None:
        with pytest.raises(ValueError):
            codec_cls(framing="ndjson", keyring=rpcwire.Keyring.generate())

    def test_keyring_defaults_to_length(self, codec_cls: Any) -> None:
        assert codec_cls(keyring=rpcwire.Keyring.generate()).framing == "length"

    def test_repr_names_the_class(self) -> None:
        assert repr(rpcwire.Codec(framing="length")).startswith("rpcwire.Codec(")
        assert "length" in repr(rpcwire.Codec(framing="length"))


# --- encoding: byte-identical to orjson -----------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
@given(value=orjson_values)
def test_encoding_matches_orjson(codec_cls: Any, framing: str, value: Any) -> None:
    msg = message(value)
    assert codec_cls(framing=framing).encode(msg) == frame(framing, orjson.dumps(msg))


@given(values=st.lists(orjson_values, max_size=4))
def test_encoding_of_batches_matches_orjson(codec_cls: Any, values: list[Any]) -> None:
    batch = [message(v) for v in values] or [message(None)]
    assert codec_cls(framing="length").encode(batch) == frame("length", orjson.dumps(batch))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, b"1.0"),
        (0.1, b"0.1"),
        # The spec's example says `1e16`, but it also says "byte for byte what orjson.dumps writes", and
        # orjson (3.13) writes `1e+16`: orjson is the arbiter (reported as a spec erratum).
        (1e16, b"1e+16"),
        (1.5e-7, b"1.5e-7"),
        (-0.0, b"-0.0"),
        (5e-324, b"5e-324"),
        (1.7976931348623157e308, b"1.7976931348623157e+308"),
        (float("nan"), b"null"),
        (float("inf"), b"null"),
        (float("-inf"), b"null"),
        (2**64 - 1, b"18446744073709551615"),
        (-(2**63), b"-9223372036854775808"),
        (2**64, b"18446744073709551616"),
        (-(2**63) - 1, b"-9223372036854775809"),
        (10**100, b"1" + b"0" * 100),
        (True, b"true"),
        (False, b"false"),
        (None, b"null"),
        ('\x00\x08\t\n\x0c\r\x1f\x7f"\\/', b'"\\u0000\\b\\t\\n\\f\\r\\u001f\x7f\\"\\\\/"'),
        ("\u00e9\u20ac\U0001f600\u2028", '"\u00e9\u20ac\U0001f600\u2028"'.encode()),
        ((1, "a"), b'[1,"a"]'),
    ],
)
def test_encoding_of_values(codec_cls: Any, value: Any, text: bytes) -> None:
    out = codec_cls(framing="length").encode({"jsonrpc": "2.0", "id": 1, "result": value})
    assert out[4:] == b'{"jsonrpc":"2.0","id":1,"result":' + text + b"}"


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class MyDict(dict):  # type: ignore[type-arg]
    pass


class MyList(list):  # type: ignore[type-arg]
    pass


class MyStr(str):
    pass


class MyInt(int):
    pass


@pytest.mark.parametrize(
    "value",
    [MyDict(a=1), MyList([1, 2]), MyStr("s"), MyInt(5), OrderedDict(b=1, a=2), Level.HIGH],
    ids=lambda v: type(v).__name__,
)
def test_subclasses_encode_as_orjson_does(codec_cls: Any, value: Any) -> None:
    msg = message(value)
    assert codec_cls(framing="length").encode(msg)[4:] == orjson.dumps(msg)


def test_key_order_preserved(codec_cls: Any) -> None:
    msg = {"params": {"z": 1, "a": 2, "m": 3}, "method": "m", "jsonrpc": "2.0"}
    assert codec_cls(framing="length").encode(msg)[4:] == b'{"params":{"z":1,"a":2,"m":3},"method":"m","jsonrpc":"2.0"}'


class Slots:
    """An instance whose ``__dict__`` is a split table (values kept apart from the shared keys)."""

    def __init__(self) -> None:
        self.b = 1
        self.a = [2]


def dict_shapes() -> dict[str, dict[Any, Any]]:
    """Dicts whose tables the encoder walks differently, each with the members orjson writes."""
    holes = {f"k{i}": i for i in range(20)}
    for i in range(0, 20, 3):
        del holes[f"k{i}"]
    general = {0: "int key first", "b": 1, "a": {"x": None}}
    del general[0]  # a table that once held a non-str key keeps its hash-carrying entries
    emptied = {"a": 1}
    del emptied["a"]
    return {
        "small": {"b": 1, "a": "x"},
        "deleted_and_reinserted": {**holes, "k0": "back"} | holes,
        "holes": holes,
        "general": general,
        "emptied": emptied,
        "split": Slots().__dict__,
        "two_byte_index": {f"key{i}": i for i in range(300)},
        "four_byte_index": {f"key{i}": i for i in range(70_000)},
    }


@pytest.mark.parametrize("shape", list(dict_shapes()))
def test_every_dict_table_encodes_as_orjson_does(codec_cls: Any, shape: str) -> None:
    value = dict_shapes()[shape]
    msg = message(value)
    assert codec_cls(framing="length").encode(msg)[4:] == orjson.dumps(msg)
    expected = orjson.dumps(msg) + b"\n" + orjson.dumps(value) + b"\n"
    assert codec_cls(framing="ndjson").encode_many([msg, value]) == expected


def test_non_str_key_left_in_a_table_is_refused(codec_cls: Any) -> None:
    mixed = {"a": 1, 2: "b"}
    del mixed["a"]
    with pytest.raises(TypeError, match="key must be str"):
        codec_cls().encode(message(mixed))


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), 1 + 2j, Decimal("1.5"), b"bytes inside", bytearray(b"x"), {1: "int key"}, {None: 1}],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_types_raise_type_error(codec_cls: Any, value: Any) -> None:
    with pytest.raises(TypeError):
        codec_cls(framing="length").encode(message(value))


def test_non_str_key_at_top_level(codec_cls: Any) -> None:
    with pytest.raises(TypeError):
        codec_cls().encode({"jsonrpc": "2.0", 1: 2})


def test_lone_surrogate_refused(codec_cls: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        codec_cls().encode(message("\ud800"))


def test_deep_nesting_is_an_error_not_a_crash(codec_cls: Any) -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises((TypeError, ValueError, RecursionError)):
        codec_cls().encode(message(value))


def test_codec_usable_after_encode_error(codec_cls: Any) -> None:
    codec = codec_cls()
    with pytest.raises(TypeError):
        codec.encode(message({1, 2}))
    assert codec.encode(message(1)) == orjson.dumps(message(1)) + b"\n"


# --- bytes pass-through ---------------------------------------------------------------------------


RAW = b'{"jsonrpc": "2.0", "method": "raw",  "params": [1]}'


@pytest.mark.parametrize("framing", FRAMINGS)
def test_bytes_pass_through(codec_cls: Any, framing: str) -> None:
    assert codec_cls(framing=framing).encode(RAW) == frame(framing, RAW)


@pytest.mark.parametrize("framing", ["length", "content-length"])
def test_bytes_with_newlines_fine_in_binary_framings(codec_cls: Any, framing: str) -> None:
    raw = b'{\n"jsonrpc": "2.0",\n"method": "raw"\n}\n'
    codec = codec_cls(framing=framing)
    assert codec.encode(raw) == frame(framing, raw)
    assert codec_cls(framing=framing).feed(codec.encode(raw)) == [{"jsonrpc": "2.0", "method": "raw"}]


@pytest.mark.parametrize("raw", [b'{"jsonrpc":"2.0",\n"method":"m"}', b'{"jsonrpc":"2.0","method":"m"}\n', b"\n"])
def test_bytes_with_raw_newline_refused_under_ndjson(codec_cls: Any, raw: bytes) -> None:
    codec = codec_cls(framing="ndjson")
    with pytest.raises(ValueError):
        codec.encode(raw)
    with pytest.raises(ValueError):
        codec.encode_many([message(1), raw])


def test_newline_in_strings_is_escaped_under_ndjson(codec_cls: Any) -> None:
    out = codec_cls(framing="ndjson").encode(message("a\nb\r\n"))
    assert out.count(b"\n") == 1
    assert out.endswith(b"\n")


# --- encode_many ----------------------------------------------------------------------------------

MANY: list[Any] = [
    message(1),
    {"jsonrpc": "2.0", "method": "n"},
    RAW,
    [message("x"), message(None)],
    {"jsonrpc": "2.0", "id": "r", "result": {"big": 2**70, "f": 0.5}},
]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_encode_many_is_the_join_of_encode(codec_cls: Any, framing: str) -> None:
    codec = codec_cls(framing=framing)
    assert codec.encode_many(MANY) == b"".join(codec.encode(m) for m in MANY)


@pytest.mark.parametrize("framing", FRAMINGS)
@given(values=st.lists(orjson_values, max_size=10))
def test_encode_many_hypothesis(codec_cls: Any, framing: str, values: list[Any]) -> None:
    msgs = [message(v) for v in values]
    codec = codec_cls(framing=framing)
    assert codec.encode_many(msgs) == b"".join(frame(framing, orjson.dumps(m)) for m in msgs)


def test_encode_many_takes_any_iterable(codec_cls: Any) -> None:
    codec = codec_cls(framing="length")
    expected = b"".join(codec.encode(m) for m in MANY)
    assert codec.encode_many(tuple(MANY)) == expected
    assert codec.encode_many(m for m in MANY) == expected
    assert codec.encode_many([]) == b""


def test_encode_many_error_in_the_middle(codec_cls: Any) -> None:
    with pytest.raises(TypeError):
        codec_cls().encode_many([message(1), message(object()), message(2)])


# --- decoding numbers, strings, structure ---------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
@given(value=exact_values)
def test_round_trip_exact(codec_cls: Any, framing: str, value: Any) -> None:
    msg = message(value)
    codec = codec_cls(framing=framing)
    items = codec.feed(codec.encode(msg))
    assert len(items) == 1
    assert same(items[0], msg)


@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip_bit_for_bit(codec_cls: Any, value: float) -> None:
    codec = codec_cls()
    (item,) = codec.feed(codec.encode(message(value)))
    assert same(item["params"][0], value)


@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_written_by_json_dumps_read_exactly(codec_cls: Any, value: float) -> None:
    # A peer writing Python's repr-style floats (json.dumps) is read to the same double.
    (item,) = codec_cls().feed(json.dumps(message(value)).encode() + b"\n")
    assert same(item["params"][0], value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        (b"-123456789012345678901234567890", -123456789012345678901234567890),
        (b"18446744073709551616", 2**64),
        (b"-9223372036854775809", -(2**63) - 1),
        (b"-0.0", -0.0),
        (b"1E2", 100.0),
        (b"1e-2", 0.01),
        (b"0", 0),
        (b"-0", 0),
        (b"2.5", 2.5),
    ],
)
def test_decode_numbers(codec_cls: Any, text: bytes, value: Any) -> None:
    (item,) = codec_cls().feed(b'{"jsonrpc":"2.0","id":1,"result":' + text + b"}\n")
    assert same(item["result"], value)


def test_nan_written_as_null_reads_back_as_none(codec_cls: Any) -> None:
    codec = codec_cls()
    (item,) = codec.feed(codec.encode(message(float("nan"))))
    assert item["params"] == [None]
    assert not any(isinstance(v, float) and math.isnan(v) for v in item["params"])


def test_unicode_round_trip(codec_cls: Any) -> None:
    text = "".join(chr(c) for c in range(0, 0x800)) + "\uffff\U00010000\U0010ffff\u2028\u2029"
    codec = codec_cls()
    (item,) = codec.feed(codec.encode(message(text)))
    assert item["params"][0] == text


def test_nested_structures(codec_cls: Any) -> None:
    value: Any = {"leaf": [1, 2.5, "s", None, True]}
    for i in range(100):
        value = {"level": i, "child": [value, {}], "empty": []}
    codec = codec_cls(framing="length")
    (item,) = codec.feed(codec.encode(message(value)))
    assert same(item, message(value))


# --- a 32 MiB message in 64 KiB chunks ------------------------------------------------------------

BIG_SCRIPT = textwrap.dedent(
    """
    import json, resource, struct, sys
    import rpcwire
    from rpcwire import reference

    impl, framing = sys.argv[1], sys.argv[2]
    Codec = rpcwire.Codec if impl == "rust" else reference.Codec
    N = 32 * 2**20
    head, tail = b'{"jsonrpc":"2.0","id":1,"result":{"text":"', b'"}}'
    size = len(head) + N + len(tail)
    prefix = {
        "ndjson": b"",
        "length": struct.pack(">I", size),
        "content-length": b"Content-Length: %d\\r\\n\\r\\n" % size,
    }[framing]
    suffix = b"\\n" if framing == "ndjson" else b""
    data = bytearray(len(prefix) + size + len(suffix))
    pos = 0
    for part in (prefix, head):
        data[pos : pos + len(part)] = part
        pos += len(part)
    block = b"a" * 65536
    for start in range(pos, pos + N, 65536):
        data[start : start + 65536] = block
    pos += N
    data[pos:] = tail + suffix
    del block
    assert len(data) == len(prefix) + size + len(suffix)

    codec = Codec(framing="auto" if framing == "auto" else framing, max_frame_size=48 * 2**20)
    # high-water marks on both ends: page reclaim under memory pressure cannot skew a current-RSS baseline
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    view = memoryview(data)
    items, feeds_with_items, bad_buffered = [], 0, 0
    for start in range(0, len(data), 65536):
        got = codec.feed(view[start : start + 65536])
        fed = min(start + 65536, len(data))
        if got:
            feeds_with_items += 1
            items += got
        elif not (fed - 64 <= codec.buffered <= fed):
            bad_buffered += 1
    items += codec.feed(b"")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    text = items[0]["result"]["text"] if len(items) == 1 else ""
    ok = len(text) == N and text.count("a") == N
    json.dump(
        {"baseline": baseline, "peak": peak, "items": len(items), "ok": ok, "feeds_with_items": feeds_with_items,
         "bad_buffered": bad_buffered, "buffered_after": codec.buffered, "size": len(data)},
        sys.stdout,
    )
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["rust", "reference"])
@pytest.mark.parametrize("framing", FRAMINGS)
def test_32_mib_message_in_64_kib_chunks(impl: str, framing: str) -> None:
    """Linear buffering shown structurally: the peak memory of the whole decode stays within ~2x the
    message (the buffer plus the decoded str; a buffer re-copied per chunk or a list of chunks joined
    at the end costs more), every byte fed is accounted for in ``buffered`` until the frame completes,
    the single item comes out of the last feed, and the run finishes well inside the pytest timeout."""
    proc = subprocess.run(
        [sys.executable, "-c", BIG_SCRIPT, impl, framing],
        capture_output=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    result = json.loads(proc.stdout)
    assert result["ok"]
    assert result["items"] == 1
    assert result["feeds_with_items"] == 1
    assert result["bad_buffered"] == 0
    assert result["buffered_after"] == 0
    size = result["size"]
    growth = result["peak"] - result["baseline"]
    # rpcwire: its buffer plus the decoded str (~2x). The reference copies each payload out of its
    # bytearray before orjson.loads (one more message-sized copy, plus bytearray over-allocation): it
    # gets a looser bound that still fails for a buffer kept twice or chunks joined at the end.
    factor = 2.5 if impl == "rust" else 4.5
    assert growth <= factor * size + 8 * 2**20, f"peak grew {growth / size:.2f}x the message size"


@pytest.mark.parametrize("framing", FRAMINGS)
def test_encode_larger_than_max_frame_size_refused(framing: str) -> None:
    # A frame the peer (configured alike) would refuse is not written. _core.pyi documents this;
    # docs/wire-format.md is silent and the reference writes such frames (reported to reconcile).
    codec = rpcwire.Codec(framing=framing, max_frame_size=100)
    fits = {"jsonrpc": "2.0", "method": "m", "params": ["x" * 50]}
    assert rpcwire.Codec(framing=framing, max_frame_size=100).feed(codec.encode(fits)) == [fits]
    with pytest.raises(ValueError):
        codec.encode({"jsonrpc": "2.0", "method": "m", "params": ["x" * 100]})
    with pytest.raises(ValueError):
        codec.encode_many([fits, {"jsonrpc": "2.0", "method": "m", "params": ["x" * 100]}])
