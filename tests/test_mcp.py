"""rpcwire.mcp against the real MCP SDK (2.x) and FastMCP, in real child processes.

The envelope conversion is checked against pydantic (the SDK's own adapter); the transports are
checked by running the SDK's ClientSession / Server / mcp.Client / fastmcp.Client over them, with
the SDK's own stdio transport at the other end where the test says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp_types
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from pydantic import ValidationError
from rpcwire import mcp as rmcp

SERVERS = Path(__file__).parent / "mcp_servers"
adapter = mcp_types.jsonrpc_message_adapter


def sdk_decode(d: Any) -> SessionMessage | Exception:
    """What the SDK's stdio transports make of the JSON text of ``d``."""
    try:
        return SessionMessage(adapter.validate_json(json.dumps(d), by_name=False))
    except ValueError as exc:
        return exc


def assert_same(ours: SessionMessage | Exception, theirs: SessionMessage | Exception) -> None:
    if isinstance(theirs, Exception):
        assert isinstance(ours, Exception), ours
        return
    assert isinstance(ours, SessionMessage), ours
    a, b = ours.message, theirs.message
    assert type(a) is type(b)
    assert a == b
    assert a.__dict__ == b.__dict__
    assert list(a.__dict__) == list(b.__dict__)
    assert a.model_fields_set == b.model_fields_set
    assert a.model_dump_json(by_alias=True, exclude_unset=True) == b.model_dump_json(by_alias=True, exclude_unset=True)
    assert a.model_dump(by_alias=True, mode="json") == b.model_dump(by_alias=True, mode="json")
    if isinstance(a, JSONRPCError):
        assert isinstance(b, JSONRPCError)
        assert a.error.model_fields_set == b.error.model_fields_set
    assert ours.metadata is None


# --------------------------------------------------------------------------------------------
# dict -> envelope: exactly what validate_json gives, including its quirks
# --------------------------------------------------------------------------------------------

QUIRKS: list[tuple[str, dict[str, Any], type | None]] = [
    ("request", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, JSONRPCRequest),
    ("request_params", {"jsonrpc": "2.0", "id": "a", "method": "m", "params": {"x": [1, 2]}}, JSONRPCRequest),
    ("request_params_null", {"jsonrpc": "2.0", "id": 1, "method": "m", "params": None}, JSONRPCRequest),
    ("float_id_is_notification", {"jsonrpc": "2.0", "id": 1.0, "method": "ping"}, JSONRPCNotification),
    ("bool_id_is_notification", {"jsonrpc": "2.0", "id": True, "method": "ping"}, JSONRPCNotification),
    ("null_id_is_notification", {"jsonrpc": "2.0", "id": None, "method": "ping"}, JSONRPCNotification),
    ("notification", {"jsonrpc": "2.0", "method": "notifications/initialized"}, JSONRPCNotification),
    ("extra_key_dropped", {"jsonrpc": "2.0", "id": 2, "method": "m", "x": 1}, JSONRPCRequest),
    ("response", {"jsonrpc": "2.0", "id": 3, "result": {}}, JSONRPCResponse),
    ("error", {"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "no"}}, JSONRPCError),
    (
        "error_null_id",
        {"jsonrpc": "2.0", "id": None, "error": {"code": -1, "message": "no", "data": [1]}},
        JSONRPCError,
    ),
    (
        "result_and_error_is_error",
        {"jsonrpc": "2.0", "id": 3, "result": {}, "error": {"code": 1, "message": "m"}},
        JSONRPCError,
    ),
    ("method_and_result", {"jsonrpc": "2.0", "id": 3, "method": "m", "result": {}}, JSONRPCRequest),
    ("params_list_rejected", {"jsonrpc": "2.0", "id": 1, "method": "m", "params": [1]}, None),
    ("result_list_rejected", {"jsonrpc": "2.0", "id": 1, "result": [1]}, None),
    ("version_1_rejected", {"jsonrpc": "1.0", "id": 1, "method": "m"}, None),
    ("error_code_float", {"jsonrpc": "2.0", "id": 1, "error": {"code": 1.0, "message": "m"}}, JSONRPCError),
    ("error_code_bool_is_lax_int", {"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "m"}}, JSONRPCError),
    ("empty", {}, None),
]


@pytest.mark.parametrize(("d", "expected"), [q[1:] for q in QUIRKS], ids=[q[0] for q in QUIRKS])
def test_envelope_quirks(d: dict[str, Any], expected: type | None) -> None:
    ours = rmcp.to_session_message(d)
    assert_same(ours, sdk_decode(d))
    if expected is None:
        assert isinstance(ours, ValidationError)
    else:
        assert isinstance(ours, SessionMessage)
        assert type(ours.message) is expected


def test_batch_is_an_exception_item() -> None:
    item = rmcp.to_session_message([{"jsonrpc": "2.0", "method": "m"}])
    assert isinstance(item, ValidationError)
    assert isinstance(sdk_decode([{"jsonrpc": "2.0", "method": "m"}]), ValidationError)


def test_codec_error_items_pass_through() -> None:
    import rpcwire

    err = rpcwire.ParseError("bad", id=None)
    assert rmcp.to_session_message(err) is err


json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
error_obj = st.dictionaries(
    st.sampled_from(["code", "message", "data", "other"]),
    st.one_of(json_value, st.integers(-40000, 10), st.text(max_size=5)),
    max_size=4,
)
envelope = st.dictionaries(
    st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "extra"]),
    st.one_of(
        st.just("2.0"),
        json_value,
        st.dictionaries(st.text(max_size=4), json_value, max_size=3),
        error_obj,
        st.sampled_from(["tools/call", "ping", "notifications/progress"]),
    ),
    min_size=1,
    max_size=5,
).map(lambda d: {"jsonrpc": "2.0", **d} if "jsonrpc" not in d and len(d) % 2 else d)


request_id = st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=4), st.none(), st.booleans(), st.floats(-2, 2))
json_object = st.dictionaries(st.text(max_size=4), json_value, max_size=3)
near_valid = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0"])},
    optional={
        "id": request_id,
        "method": st.one_of(st.sampled_from(["tools/call", "ping"]), json_scalar),
        "params": st.one_of(json_object, st.none(), st.lists(json_scalar, max_size=2)),
        "result": st.one_of(json_object, json_value),
        "error": st.one_of(
            st.fixed_dictionaries(
                {
                    "code": st.one_of(st.integers(-40000, 10), json_scalar),
                    "message": st.one_of(st.text(max_size=5), json_scalar),
                },
                optional={"data": json_value, "other": json_value},
            ),
            error_obj,
        ),
    },
)


@given(st.one_of(envelope, near_valid))
def test_envelope_matches_sdk(d: dict[str, Any]) -> None:
    assert_same(rmcp.to_session_message(d), sdk_decode(d))


SENT = [
    JSONRPCRequest(jsonrpc="2.0", id=1, method="tools/list"),
    JSONRPCRequest(jsonrpc="2.0", id="x", method="m", params=None),
    JSONRPCRequest(jsonrpc="2.0", id=2, method="m", params={"é": "ü", "n": 1.5}),
    JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized"),
    JSONRPCResponse(jsonrpc="2.0", id=3, result={"content": [{"type": "text", "text": "a\nb"}]}),
    JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=-32700, message="Parse error")),
    JSONRPCError(jsonrpc="2.0", id=4, error=ErrorData(code=-1, message="m", data={"k": None})),
]


@pytest.mark.parametrize("model", SENT, ids=lambda m: type(m).__name__)
def test_serialize_is_sdk_bytes(model: Any) -> None:
    data = rmcp._serialize(SessionMessage(model))
    assert data.decode() == model.model_dump_json(by_alias=True, exclude_unset=True)
    back = rmcp.to_session_message(json.loads(data))
    assert isinstance(back, SessionMessage)
    assert back.message.model_dump_json(by_alias=True, exclude_unset=True) == data.decode()
    assert_same(back, sdk_decode(json.loads(data)))
