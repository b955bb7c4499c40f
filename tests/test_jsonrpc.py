"""JSON-RPC 2.0 validation (docs/wire-format.md section 1), ProtocolError items, batches, id recovery, kind()."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import rpcwire

from tests.conftest import FRAMINGS, Err, frame

PARSE = rpcwire.ParseError
INVALID = rpcwire.InvalidRequest


def decode_one(codec_cls: Any, text: bytes, framing: str = "ndjson") -> Any:
    """Decode one frame holding ``text`` and return its single item."""
    codec = codec_cls(framing=framing)
    items = codec.feed(frame(framing, text))
    assert len(items) == 1, items
    return items[0]


def check(item: Any, expected: Any) -> None:
    if isinstance(expected, Err):
        expected.check(item)
    else:
        assert not isinstance(item, BaseException), item
        assert item == expected
        assert type(item) is type(expected)


VALID: list[Any] = [
    # requests
    {"jsonrpc": "2.0", "id": 1, "method": "m"},
    {"jsonrpc": "2.0", "id": -7, "method": "m", "params": {}},
    {"jsonrpc": "2.0", "id": "abc", "method": "m", "params": [1, "x", None]},
    {"jsonrpc": "2.0", "id": "", "method": "", "params": {"a": {"b": [True, False]}}},
    {"jsonrpc": "2.0", "id": None, "method": "m"},
    {"jsonrpc": "2.0", "id": 2**62, "method": "m"},
    {"method": "m", "id": 1, "jsonrpc": "2.0"},  # member order is irrelevant (and preserved)
    # notifications
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "method": "n", "params": []},
    # responses
    {"jsonrpc": "2.0", "id": 1, "result": {}},
    {"jsonrpc": "2.0", "id": "x", "result": None},
    {"jsonrpc": "2.0", "id": None, "result": [1, 2]},
    {"jsonrpc": "2.0", "id": 3, "result": "text"},
    {"jsonrpc": "2.0", "id": 4, "result": 0},
    # errors
    {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}},
    {"jsonrpc": "2.0", "id": None, "error": {"code": 0, "message": "", "data": {"why": [1]}}},
    {"jsonrpc": "2.0", "id": "s", "error": {"code": 42, "message": "m", "data": None}},
    # other members are allowed and kept
    {"jsonrpc": "2.0", "id": 1, "method": "m", "_meta": {"progressToken": 3}},
    {"jsonrpc": "2.0", "id": 1, "result": {}, "extra": 1.5},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m", "more": True}, "x": []},
]


@pytest.mark.parametrize("message", VALID, ids=lambda m: orjson.dumps(m).decode()[:60])
def test_valid_messages(codec_cls: Any, message: Any) -> None:
    item = decode_one(codec_cls, orjson.dumps(message))
    check(item, message)
    assert list(item) == list(message)  # key order preserved


INVALID_CASES: list[tuple[str, bytes, Err]] = [
    # not an object
    ("number", b"1", Err(cls=INVALID, id=None)),
    ("string", b'"x"', Err(cls=INVALID, id=None)),
    ("null", b"null", Err(cls=INVALID, id=None)),
    ("true", b"true", Err(cls=INVALID, id=None)),
    ("empty-object", b"{}", Err(cls=INVALID, id=None)),
    ("empty-batch", b"[]", Err(cls=INVALID, id=None)),
    # jsonrpc member
    ("no-jsonrpc", b'{"id":1,"method":"m"}', Err(cls=INVALID, id=1)),
    ("jsonrpc-1.0", b'{"jsonrpc":"1.0","id":"a","method":"m"}', Err(cls=INVALID, id="a")),
    ("jsonrpc-number", b'{"jsonrpc":2.0,"id":1,"method":"m"}', Err(cls=INVALID, id=1)),
    ("jsonrpc-null", b'{"jsonrpc":null,"id":1,"method":"m"}', Err(cls=INVALID, id=1)),
    ("jsonrpc-2", b'{"jsonrpc":"2","id":1,"method":"m"}', Err(cls=INVALID, id=1)),
    # method
    ("method-number", b'{"jsonrpc":"2.0","id":7,"method":5}', Err(cls=INVALID, id=7)),
    ("method-null", b'{"jsonrpc":"2.0","id":7,"method":null}', Err(cls=INVALID, id=7)),
    ("method-array", b'{"jsonrpc":"2.0","method":["m"]}', Err(cls=INVALID, id=None)),
    # id
    ("id-float", b'{"jsonrpc":"2.0","id":1.5,"method":"m"}', Err(cls=INVALID, id=None)),
    ("id-float-integral", b'{"jsonrpc":"2.0","id":1.0,"method":"m"}', Err(cls=INVALID, id=None)),
    ("id-true", b'{"jsonrpc":"2.0","id":true,"method":"m"}', Err(cls=INVALID, id=None)),
    ("id-false", b'{"jsonrpc":"2.0","id":false,"result":1}', Err(cls=INVALID, id=None)),
    ("id-object", b'{"jsonrpc":"2.0","id":{},"method":"m"}', Err(cls=INVALID, id=None)),
    ("id-array", b'{"jsonrpc":"2.0","id":[1],"result":1}', Err(cls=INVALID, id=None)),
    # params
    ("params-string", b'{"jsonrpc":"2.0","id":3,"method":"m","params":"x"}', Err(cls=INVALID, id=3)),
    ("params-number", b'{"jsonrpc":"2.0","id":3,"method":"m","params":1}', Err(cls=INVALID, id=3)),
    ("params-null", b'{"jsonrpc":"2.0","id":"p","method":"m","params":null}', Err(cls=INVALID, id="p")),
    ("params-bool-notif", b'{"jsonrpc":"2.0","method":"m","params":true}', Err(cls=INVALID, id=None)),
    # responses
    ("no-result-no-error", b'{"jsonrpc":"2.0","id":4}', Err(cls=INVALID, id=4)),
    (
        "result-and-error",
        b'{"jsonrpc":"2.0","id":4,"result":1,"error":{"code":1,"message":"m"}}',
        Err(cls=INVALID, id=4),
    ),
    ("result-without-id", b'{"jsonrpc":"2.0","result":1}', Err(cls=INVALID, id=None)),
    ("error-without-id", b'{"jsonrpc":"2.0","error":{"code":1,"message":"m"}}', Err(cls=INVALID, id=None)),
    # error objects
    ("error-string", b'{"jsonrpc":"2.0","id":5,"error":"bad"}', Err(cls=INVALID, id=5)),
    ("error-null", b'{"jsonrpc":"2.0","id":5,"error":null}', Err(cls=INVALID, id=5)),
    ("error-no-code", b'{"jsonrpc":"2.0","id":5,"error":{"message":"m"}}', Err(cls=INVALID, id=5)),
    ("error-code-float", b'{"jsonrpc":"2.0","id":5,"error":{"code":1.5,"message":"m"}}', Err(cls=INVALID, id=5)),
    ("error-code-string", b'{"jsonrpc":"2.0","id":5,"error":{"code":"1","message":"m"}}', Err(cls=INVALID, id=5)),
    ("error-code-bool", b'{"jsonrpc":"2.0","id":5,"error":{"code":true,"message":"m"}}', Err(cls=INVALID, id=5)),
    ("error-no-message", b'{"jsonrpc":"2.0","id":5,"error":{"code":1}}', Err(cls=INVALID, id=5)),
    ("error-message-int", b'{"jsonrpc":"2.0","id":5,"error":{"code":1,"message":2}}', Err(cls=INVALID, id=5)),
    # not JSON at all
    ("garbage", b"xyz", Err(cls=PARSE, id=None)),
    ("truncated", b'{"jsonrpc":"2.0","id":1', Err(cls=PARSE, id=None)),
    ("trailing-garbage", b'{"jsonrpc":"2.0","method":"m"} x', Err(cls=PARSE, id=None)),
    ("two-texts", b"{}{}", Err(cls=PARSE, id=None)),
    ("single-quotes", b"{'jsonrpc':'2.0'}", Err(cls=PARSE, id=None)),
    ("trailing-comma", b'{"jsonrpc":"2.0","method":"m",}', Err(cls=PARSE, id=None)),
    ("nan-literal", b'{"jsonrpc":"2.0","id":1,"result":NaN}', Err(cls=PARSE, id=None)),
    ("infinity-literal", b'{"jsonrpc":"2.0","id":1,"result":Infinity}', Err(cls=PARSE, id=None)),
    ("invalid-utf8", b'{"jsonrpc":"2.0","method":"\xff\xfe"}', Err(cls=PARSE, id=None)),
    ("lone-surrogate-bytes", b'{"jsonrpc":"2.0","method":"\xed\xa0\x80"}', Err(cls=PARSE, id=None)),
    ("control-char-in-string", b'{"jsonrpc":"2.0","method":"a\x01b"}', Err(cls=PARSE, id=None)),
]


@pytest.mark.parametrize("framing", ["ndjson", "length"])
@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_invalid_messages(codec_cls: Any, framing: str, text: bytes, expected: Err) -> None:
    item = decode_one(codec_cls, text, framing)
    check(item, expected)


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_protocol_error_attributes(codec_cls: Any, text: bytes, expected: Err) -> None:
    item = decode_one(codec_cls, text, "length")
    assert isinstance(item, rpcwire.ProtocolError)
    assert isinstance(item, rpcwire.RpcWireError)
    if isinstance(item, rpcwire.ParseError):
        assert (item.code, item.message) == (-32700, "Parse error")
    else:
        assert isinstance(item, rpcwire.InvalidRequest)
        assert (item.code, item.message) == (-32600, "Invalid Request")
    assert item.data is None or isinstance(item.data, str)
    assert item.id is None or isinstance(item.id, (str, int))
    # what a server answers with
    answer = item.to_error()
    assert answer["jsonrpc"] == "2.0"
    assert answer["id"] == item.id
    assert answer["error"]["code"] == item.code


@pytest.mark.parametrize("framing", ["length", "content-length"])
def test_whitespace_only_binary_frame_is_a_parse_error(codec_cls: Any, framing: str) -> None:
    # (a whitespace-only ndjson line is skipped instead: test_framing)
    Err(cls=PARSE, id=None).check(decode_one(codec_cls, b" \t\r\n ", framing))


def test_parse_error_data_says_what_and_where(codec_cls: Any) -> None:
    item = decode_one(codec_cls, b'{"jsonrpc": "2.0", "method": tru}')
    assert isinstance(item, rpcwire.ParseError)
    assert item.data  # a human-readable description, e.g. the parser's message with its position


def test_control_chars_escaped_are_fine(codec_cls: Any) -> None:
    item = decode_one(codec_cls, b'{"jsonrpc":"2.0","method":"a\\u0001\\n\\"\\\\b\\ud83d\\ude00"}')
    assert item == {"jsonrpc": "2.0", "method": 'a\x01\n"\\b\U0001f600'}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_stream_goes_on_after_protocol_errors(codec_cls: Any, framing: str) -> None:
    good = {"jsonrpc": "2.0", "id": 9, "method": "after"}
    data = (
        frame(framing, b"{not json")
        + frame(framing, b'{"jsonrpc":"2.0","id":3}')
        + frame(framing, b"[]")
        + frame(framing, orjson.dumps(good))
    )
    items = codec_cls(framing=framing).feed(data)
    assert [type(i) for i in items[:3]] == [PARSE, INVALID, INVALID]
    assert items[1].id == 3
    assert items[3] == good


# --- batches --------------------------------------------------------------------------------------


def test_batch_of_valid_messages(codec_cls: Any) -> None:
    batch = [VALID[0], VALID[7], VALID[9], VALID[14]]
    item = decode_one(codec_cls, orjson.dumps(batch))
    assert type(item) is list
    assert item == batch


def test_batch_invalid_elements_replaced_in_place(codec_cls: Any) -> None:
    text = b'[{"jsonrpc":"2.0","id":1,"method":"a"}, 5, {"jsonrpc":"1.0","id":"q","method":"m"}, [], {"jsonrpc":"2.0","method":"n"}, {"jsonrpc":"2.0","id":true,"result":1}]'  # noqa: E501
    item = decode_one(codec_cls, text)
    assert type(item) is list
    assert len(item) == 6
    assert item[0] == {"jsonrpc": "2.0", "id": 1, "method": "a"}
    Err(cls=INVALID, id=None).check(item[1])
    Err(cls=INVALID, id="q").check(item[2])
    Err(cls=INVALID, id=None).check(item[3])  # a nested array is not a message
    assert item[4] == {"jsonrpc": "2.0", "method": "n"}
    Err(cls=INVALID, id=None).check(item[5])


def test_batch_of_only_invalid_elements(codec_cls: Any) -> None:
    item = decode_one(codec_cls, b"[1, 2]")
    assert type(item) is list
    assert len(item) == 2
    assert all(isinstance(e, INVALID) for e in item)


def test_empty_batch_is_invalid(codec_cls: Any) -> None:
    Err(cls=INVALID, id=None).check(decode_one(codec_cls, b"[ ]"))


def test_batch_with_parse_error_is_one_parse_error(codec_cls: Any) -> None:
    Err(cls=PARSE, id=None).check(decode_one(codec_cls, b'[{"jsonrpc":"2.0","method":"m"}, {]'))


# --- kind() ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "m"}, "request"),
        ({"jsonrpc": "2.0", "id": None, "method": "m", "params": {}}, "request"),
        ({"jsonrpc": "2.0", "method": "m"}, "notification"),
        ({"jsonrpc": "2.0", "method": "m", "params": [1]}, "notification"),
        ({"jsonrpc": "2.0", "id": 1, "result": None}, "response"),
        ({"jsonrpc": "2.0", "id": "x", "result": {"a": 1}}, "response"),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m"}}, "error"),
        ({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}, "error"),
    ],
)
def test_kind(message: dict[str, Any], expected: str) -> None:
    assert rpcwire.kind(message) == expected


@pytest.mark.parametrize("message", [{}, {"jsonrpc": "2.0"}, {"jsonrpc": "2.0", "id": 1}])
def test_kind_of_a_non_message(message: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        rpcwire.kind(message)


def test_kind_of_decoded_items(codec_cls: Any) -> None:
    codec = codec_cls(framing="ndjson")
    kinds = [rpcwire.kind(m) for m in codec.feed(b"".join(orjson.dumps(m) + b"\n" for m in VALID))]
    assert kinds.count("request") == 8
    assert kinds.count("notification") == 2
    assert kinds.count("response") == 6
    assert kinds.count("error") == 4
