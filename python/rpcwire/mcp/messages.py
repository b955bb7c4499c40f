"""Decoded rpcwire items as the SDK's ``SessionMessage`` (exactly as its ``validate_json`` builds them), and
``SessionMessage`` as the bytes the SDK writes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import mcp_types
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

if TYPE_CHECKING:
    pass

logger = logging.getLogger("rpcwire.mcp")

__all__ = ("to_session_message",)


_adapter = mcp_types.jsonrpc_message_adapter

# ---------------------------------------------------------------------------------------------
# dict -> envelope model, exactly as the SDK's validate_json would build it
# ---------------------------------------------------------------------------------------------

_new = object.__new__
_setattr = object.__setattr__


def _build(cls: type[Any], values: dict[str, Any], fields_set: set[str]) -> Any:
    # What `cls.model_construct(...)` leaves behind for these extra="ignore" models without private
    # attributes: `values` holds every field in declaration order (defaults filled in), `fields_set`
    # the ones the input gave. Minus model_construct's per-call overhead.
    model = _new(cls)
    _setattr(model, "__dict__", values)
    _setattr(model, "__pydantic_fields_set__", fields_set)
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model


def _is_id(value: Any) -> bool:
    # RequestId = Annotated[int, Field(strict=True)] | str: no bool, no float.
    return type(value) is int or type(value) is str


def _fast_envelope(d: dict[str, Any]) -> Any:
    """The envelope model for the common, unambiguous shapes; None means "ask pydantic".

    Only shapes whose validation result is certain are taken: exact key sets and exact types
    (``type(x) is int`` rejects bool, as the SDK's strict-int id does). Everything else, including
    every quirk, goes through ``jsonrpc_message_adapter.validate_python``; tests/test_mcp.py checks
    the two against each other with hypothesis.
    """
    if d.get("jsonrpc") != "2.0":
        return None
    n = len(d)
    if "method" in d:
        method = d["method"]
        if type(method) is not str:
            return None
        if "params" in d:
            params = d["params"]
            if params is not None and type(params) is not dict:
                return None
            n -= 1
            has_params = True
        else:
            params = None
            has_params = False
        if n == 2:
            fields = {"jsonrpc", "method", "params"} if has_params else {"jsonrpc", "method"}
            return _build(JSONRPCNotification, {"jsonrpc": "2.0", "method": method, "params": params}, fields)
        if n == 3 and "id" in d and _is_id(rid := d["id"]):
            fields = {"jsonrpc", "id", "method", "params"} if has_params else {"jsonrpc", "id", "method"}
            return _build(JSONRPCRequest, {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, fields)
        return None
    if n != 3 or "id" not in d:
        return None
    rid = d["id"]
    if "result" in d:
        result = d["result"]
        if type(result) is dict and _is_id(rid):
            return _build(JSONRPCResponse, {"jsonrpc": "2.0", "id": rid, "result": result}, {"jsonrpc", "id", "result"})
        return None
    error = d.get("error")
    if type(error) is not dict or not (rid is None or _is_id(rid)):
        return None
    code = error.get("code")
    message = error.get("message")
    if type(code) is not int or type(message) is not str:
        return None
    if len(error) == 2:
        data = _build(ErrorData, {"code": code, "message": message, "data": None}, {"code", "message"})
    elif len(error) == 3 and "data" in error:
        data = _build(ErrorData, {"code": code, "message": message, "data": error["data"]}, {"code", "message", "data"})
    else:
        return None
    return _build(JSONRPCError, {"jsonrpc": "2.0", "id": rid, "error": data}, {"jsonrpc", "id", "error"})


def to_session_message(item: Any) -> SessionMessage | Exception:
    """One decoded rpcwire item as the SDK's read stream carries it.

    Arguments:
        item: a ``dict`` (one message), a ``list`` (a batch) or an exception item from ``Codec.feed``.

    Returns:
        ``SessionMessage(model)`` for a valid envelope; otherwise the ``Exception`` describing why
        not (a ``pydantic.ValidationError`` as the SDK makes it, or the codec's ``ProtocolError``).
    """
    if type(item) is dict:
        model = _fast_envelope(item)
        if model is not None:
            return SessionMessage(model)
    elif isinstance(item, Exception):
        return item
    try:
        return SessionMessage(_adapter.validate_python(item, by_name=False))
    except ValueError as exc:  # pydantic.ValidationError: batches, bad envelopes
        return exc


def _serialize(message: SessionMessage) -> bytes:
    # Byte for byte `message.model_dump_json(by_alias=True, exclude_unset=True)`, as bytes.
    model = message.message
    data: bytes = model.__pydantic_serializer__.to_json(model, by_alias=True, exclude_unset=True)
    return data
