"""What ``Codec.feed`` builds from JSON (src/py_decode.rs): strings (ASCII, non-ASCII, escaped), the
per-codec key and value caches, nesting limits, numbers, duplicate keys, parse error texts, and the
validation it records while building the top-level object (checked against ``rpcwire.kind``, which
validates the built dict instead).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from typing import Any

import orjson
import pytest
import rpcwire
from hypothesis import given, settings
from hypothesis import strategies as st
from rpcwire import reference

from tests.conftest import codec_class
from tests.test_codec import same
from tests.test_jsonrpc import INVALID_CASES

RUST = rpcwire.Codec


def decode(payload: bytes, codec: Any = None) -> Any:
    """The single item one `length` frame holding ``payload`` decodes to."""
    codec = codec or RUST(framing="length")
    (item,) = codec.feed(struct.pack(">I", len(payload)) + payload)
    return item


def result_of(text: str, codec: Any = None) -> Any:
    item = decode(b'{"jsonrpc":"2.0","id":1,"result":' + text.encode() + b"}", codec)
    assert isinstance(item, dict), item
    return item["result"]


# --- strings ---------------------------------------------------------------------------------------

STRINGS = [
    "",
    "a",
    "ab",
    "2.0",
    "tools/call",
    "x" * 32,
    "x" * 33,
    "y" * 64,
    "y" * 65,
    "z" * 1000,
    "caf\u00e9",
    "\u00ff",
    "\u0100",
    "\u2014 dash",
    "\U0001f98a fox",
    "\x00\x01\x1f",
    'quote " and backslash \\ and slash /',
    "tab\tnewline\nreturn\r",
    "\u2028\u2029",
]


@pytest.mark.parametrize("text", STRINGS, ids=range(len(STRINGS)))
@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["utf8", "escaped"])
def test_string_values_and_keys(text: str, ensure_ascii: bool) -> None:
    doc = {text: text, "k": [text, {text: text}]}
    encoded = json.dumps(doc, ensure_ascii=ensure_ascii)
    codec = RUST(framing="length")
    for _ in range(2):  # the second time the short ones come from the caches
        got = result_of(encoded, codec)
        assert same(got, doc)
        assert all(type(k) is str for k in got)


def test_escapes_that_decode_to_ascii() -> None:
    got = result_of(r'{"\u0061\u0062": "\u0063\u0064", "ab": "\/x\/"}')
    assert got == {"ab": "/x/"}
    assert list(got) == ["ab"]


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=8))
@settings(max_examples=150)
def test_any_text_keys_and_values(doc: dict[str, str]) -> None:
    codec = RUST(framing="length")
    for ensure_ascii in (False, True):
        assert same(result_of(json.dumps(doc, ensure_ascii=ensure_ascii), codec), doc)


# --- the caches ------------------------------------------------------------------------------------


def colliding(n: int, length: int) -> list[str]:
    """Keys of one length sharing their first and last 8 characters (the cache's slot hash reads only those),
    so they all land in one slot."""
    mid = length - 16
    return ["a" * 8 + format(i, f"0{mid}d") + "b" * 8 for i in range(n)]


def test_keys_sharing_a_cache_slot() -> None:
    codec = RUST(framing="length")
    keys = colliding(20, 20)
    for _round in range(3):
        for i, key in enumerate(keys):
            other = keys[(i + 1) % len(keys)]
            doc = {key: i, other: [i], "nested": {other: key, key: other}}
            assert same(result_of(json.dumps(doc), codec), doc)


def test_many_distinct_keys_and_values() -> None:
    # Far more keys and short values than the caches have slots: every slot is replaced many times.
    codec = RUST(framing="length")
    doc = {f"key-{i}": f"value-{i % 700}" for i in range(5000)}
    for _ in range(2):
        got = result_of(json.dumps(doc), codec)
        assert same(got, doc)


def test_earlier_items_unchanged_by_later_messages() -> None:
    # Strings handed out from a cache stay what they were when later messages replace the slot.
    codec = RUST(framing="length")
    first = [result_of(json.dumps({k: k}), codec) for k in colliding(30, 24)]
    second = [result_of(json.dumps({k: "other"}), codec) for k in colliding(30, 24)[::-1]]
    assert first == [{k: k} for k in colliding(30, 24)]
    assert second == [{k: "other"} for k in colliding(30, 24)[::-1]]


def test_short_values_are_shared_from_their_second_time() -> None:
    codec = RUST(framing="length")
    first, second, third = (result_of('{"units": "metric"}', codec)["units"] for _ in range(3))
    assert first == second == third == "metric"
    assert second is third  # cached when seen the second time in a row...
    assert first is not second  # ...not the first, so a one-off value is never cached


def test_unique_values_do_not_evict_repeated_ones() -> None:
    codec = RUST(framing="length")
    for _ in range(2):
        cached = result_of('{"units": "metric"}', codec)["units"]
    # Ten thousand one-off values (tokens, ids) pass through every slot of the value cache...
    for i in range(10_000):
        assert result_of(json.dumps({"token": f"tok-{i:08}"}), codec) == {"token": f"tok-{i:08}"}
    # ...and the repeated value is still the one cached before them.
    assert result_of('{"units": "metric"}', codec)["units"] is cached


def test_cache_is_per_codec() -> None:
    a, b = RUST(framing="length"), RUST(framing="length")
    assert result_of('{"shared": "v"}', a) == result_of('{"shared": "v"}', b) == {"shared": "v"}


# --- numbers ---------------------------------------------------------------------------------------

NUMBERS = [
    "0",
    "-0",
    "0.0",
    "-0.0",
    "1e2",
    "1E-2",
    "0.1",
    "5e-324",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "123456789012345678901234567890123456789012345678901234567890",
    "-" + "9" * 100,
]


@pytest.mark.parametrize("text", NUMBERS)
def test_numbers_exact(text: str) -> None:
    expected = json.loads(text)
    got = result_of(text)
    assert same(got, expected), (got, expected)


def test_big_int_id_makes_a_request() -> None:
    item = decode(b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"m"}')
    assert item == {"jsonrpc": "2.0", "id": 123456789012345678901234567890, "method": "m"}


# --- the parser: Scan's own paths and its hand-overs to jiter, against json/orjson --------------------
# (src: crates/rpcwire-core/src/pull.rs; the Rust tests and the `scan` fuzz target hold it to jiter directly)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)
LAYOUTS = [
    {"separators": (",", ":")},
    {"separators": (", ", ": ")},
    {"indent": 2},
    {"indent": "\t", "separators": (" ,", " : ")},
]


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, layout=st.sampled_from(LAYOUTS), ensure_ascii=st.booleans())
def test_any_value_in_any_layout(value: Any, layout: dict[str, Any], ensure_ascii: bool) -> None:
    """Every JSON value, compact or spread out, escaped or not, decodes to what `json.loads` makes of it."""
    text = json.dumps({"jsonrpc": "2.0", "id": 1, "result": value}, ensure_ascii=ensure_ascii, **layout)
    item = decode(text.encode())
    assert same(item["result"], json.loads(text)["result"]), text


MESSAGE = (
    b'{"jsonrpc":"2.0","id":-12,"method":"a/b","params":{"s":"x\\ty","n":[0,1.5,null,true,false],'
    b'"u":"\xc3\xa9","k":{"":[]},"big":12345678901234567890}}'
)


@settings(max_examples=500, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(MESSAGE) - 1), st.sampled_from(list(b' "\\,:{}[]0-e.x\x01\t'))),
        min_size=1,
        max_size=3,
    ),
    cut=st.integers(0, len(MESSAGE)),
)
def test_damaged_messages_decode_as_orjson_reads_them(edits: list[tuple[int, int]], cut: int) -> None:
    """A message with bytes changed or cut off: a value equal to orjson's where orjson reads it, a ParseError
    where it does not, and the codec goes on either way."""
    damaged = bytearray(MESSAGE)
    for at, byte in edits:
        damaged[at] = byte
    text = bytes(damaged[: max(cut, 1)])
    codec = RUST(framing="length")
    item = decode(text, codec)
    try:
        expected = orjson.loads(text)
    except orjson.JSONDecodeError:
        assert isinstance(item, rpcwire.ParseError), (text, item)
    else:
        assert not isinstance(item, rpcwire.ParseError), (text, item)
        value = json.loads(text)  # every digit of big integers, unlike orjson
        if isinstance(expected, dict) and kind_error(value) is None:
            assert same(item, value), (text, item)
    assert decode(b'{"jsonrpc":"2.0","method":"ok"}', codec) == {"jsonrpc": "2.0", "method": "ok"}


# --- objects ---------------------------------------------------------------------------------------


def test_duplicate_keys_last_wins() -> None:
    got = result_of('{"a": 1, "b": 2, "a": 3}')
    assert got == {"a": 3, "b": 2}
    assert list(got) == ["a", "b"]  # as json.loads: the first position, the last value


def test_literals_and_containers() -> None:
    text = '[null, true, false, [], {}, [[]], {"a": {}}, -1, 1.5, "s"]'
    assert same(result_of(text), json.loads(text))


# --- nesting ---------------------------------------------------------------------------------------


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    """`depth` containers nested in the message's result (the message object is one more level)."""
    return open_ * depth + close * depth


@pytest.mark.parametrize("impl", ["rust", "reference"])
@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_limit(impl: str, kind: str) -> None:
    codec_cls = codec_class(impl)

    def text(depth: int) -> bytes:
        inner = nested(depth, "[", "]") if kind == "array" else '{"a":' * depth + "1" + "}" * depth
        return b'{"jsonrpc":"2.0","id":1,"result":' + inner.encode() + b"}"

    # 1024 containers including the message itself (orjson's limit) decode; one more is a ParseError.
    ok = decode(text(1023), codec_cls(framing="length"))
    assert isinstance(ok, dict)
    for depth in (1024, 5000):
        err = decode(text(depth), codec_cls(framing="length"))
        assert isinstance(err, rpcwire.ParseError), err


def test_deep_but_allowed_round_trips() -> None:
    value: Any = "leaf"
    for _ in range(254):  # as deep as encode writes: 255 levels with the message
        value = [value]
    codec = RUST(framing="length")
    msg = {"jsonrpc": "2.0", "id": 1, "result": value}
    assert decode(codec.encode(msg)[4:], codec) == msg


def test_too_deep_error_text() -> None:
    err = decode(b"[" * 2000 + b"]" * 2000)
    assert isinstance(err, rpcwire.ParseError)
    assert err.data == "recursion limit exceeded at line 1 column 1025"


# --- parse errors: jiter's description and position, as before the builder --------------------------

PARSE_ERRORS = [
    (b"xyz", "expected value at line 1 column 1"),
    (b'{"jsonrpc":"2.0","id":1', "EOF while parsing an object at line 1 column 23"),
    (b'{"jsonrpc":"2.0","method":"m"} x', "trailing characters at line 1 column 32"),
    (b"{'a':1}", "key must be a string at line 1 column 2"),
    (b'{"jsonrpc":"2.0","method":"m",}', "trailing comma at line 1 column 31"),
    (b'{"jsonrpc":"2.0","id":1,"result":NaN}', "expected value at line 1 column 34"),
    (b'{"jsonrpc":"2.0","method":"\xff\xfe"}', "invalid unicode code point at line 1 column 28"),
    (b'{"jsonrpc": "2.0", "method": tru}', "expected ident at line 1 column 33"),
    (b'{"a":-}', "invalid number at line 1 column 7"),
    (b'{"a":"\\x"}', "invalid escape at line 1 column 8"),
    (b"[1,2", "EOF while parsing a list at line 1 column 4"),
    (b'{"a" 1}', "expected `:` at line 1 column 6"),
    (b'{"a":"b\x01"}', "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 8"),
    (b'{"a":\n  x}', "expected value at line 2 column 3"),
]


@pytest.mark.parametrize(("text", "data"), PARSE_ERRORS)
def test_parse_error_text(text: bytes, data: str) -> None:
    err = decode(text)
    assert isinstance(err, rpcwire.ParseError)
    assert err.data == data


def test_codec_usable_after_parse_errors() -> None:
    codec = RUST(framing="length")
    for text, _ in PARSE_ERRORS:
        assert isinstance(decode(text, codec), rpcwire.ParseError)
        assert decode(b'{"jsonrpc":"2.0","method":"ok"}', codec) == {"jsonrpc": "2.0", "method": "ok"}


# --- validation recorded while building, against rpcwire.kind on the built dict ---------------------

RECORDED_CASES = [text for _, text, _ in INVALID_CASES] + [
    b'{"jsonrpc":"1.0","jsonrpc":"2.0","id":1,"method":"m"}',
    b'{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"m"}',
    b'{"jsonrpc":"2.0","id":true,"id":1,"result":1}',
    b'{"jsonrpc":"2.0","id":1,"id":true,"result":1}',
    b'{"jsonrpc":"2.0","method":1,"method":"m"}',
    b'{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"error":{"code":1}}',
    b'{"jsonrpc":"2.0","id":1,"error":{"code":1},"error":{"code":1,"message":"m"}}',
    b'{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","code":"x"}}',
    b'{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"error":3}',
    b'{"jsonrpc":"2.0","id":1,"error":3,"error":{"code":1,"message":"m"}}',
    b'{"jsonrpc":"2.0","code":1,"message":"m","id":1,"result":{"jsonrpc":"1.0"}}',
    b'{"jsonrpc":"2.0","id":1,"result":{"error":{"code":"x"}}}',
    b'{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":{"code":"x","message":1}}}',
    b'{"jsonrpc":"2.0","id":1,"method":"m","params":{"jsonrpc":"1.0","id":true}}',
    b'{"jsonrpc":"2.\\u0030","id":1,"method":"m"}',
    b'{"json\\u0072pc":"2.0","id":1,"method":"m"}',
    b'{"jsonrpc":"2.0 ","id":1,"method":"m"}',
    b'{"jsonrpc":"2.0","id":1.5e0,"result":1}',
    b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"error":{"code":123456789012345678901234567890,"message":"m"}}',
    b'{"jsonrpc":"2.0","id":1,"error":{"code":-1.0,"message":"m"}}',
    b'{"jsonrpc":"2.0","id":1,"error":{}}',
    b'[{"jsonrpc":"1.0","id":1,"method":"m"},{"jsonrpc":"2.0","method":"m"}]',
]


def kind_error(message: Any) -> str | None:
    """What ``rpcwire.kind`` (the rules run on the built dict) says is wrong with ``message``, if anything."""
    try:
        rpcwire.kind(message)
    except ValueError as exc:
        return str(exc)
    return None


def is_message_or_batch(text: bytes) -> bool:
    """JSON (as orjson, the reference's parser, reads it) holding an object or a non-empty array."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) or (isinstance(value, list) and len(value) > 0)


@pytest.mark.parametrize("text", [t for t in RECORDED_CASES if is_message_or_batch(t)])
def test_recorded_validation_agrees_with_kind(text: bytes) -> None:
    value = json.loads(text)  # every digit of big integers, unlike orjson
    item = decode(text)
    messages, items = (value, item) if isinstance(value, list) else ([value], [item])
    for message, got in zip(messages, items, strict=True):
        problem = kind_error(message)
        if problem is None:
            assert got == message
        else:
            assert isinstance(got, rpcwire.InvalidRequest), (message, got)
            assert f"not a JSON-RPC 2.0 message: {got.data}" == problem
    # and as the reference codec decodes it
    ref = decode(text, reference.Codec(framing="length"))
    assert type(ref) is type(item)


def test_deepest_nesting_fits_a_small_thread_stack() -> None:
    """1024 levels decoded on a thread with a 128 KiB stack (musl's default is 128 KiB): no stack overflow.

    Runs in a child process, so an overflow is a failed test rather than a crashed test run.
    """
    script = textwrap.dedent(
        """
        import threading, rpcwire
        out = []
        def run():
            codec = rpcwire.Codec()
            for inner in (b"[" * 1023 + b"]" * 1023, b'{"a":' * 1023 + b"1" + b"}" * 1023):
                item = codec.feed(b'{"jsonrpc":"2.0","method":"m","params":' + inner + b"}\\n")[0]
                out.append(type(item).__name__)
        threading.stack_size(128 * 1024)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        print(out)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['dict', 'dict']"
