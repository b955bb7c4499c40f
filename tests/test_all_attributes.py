"""Every public module has a tuple ``__all__`` whose names exist (anyio's test_all_attributes)."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

PUBLIC_MODULES = ["rpcwire", "rpcwire.reference", "rpcwire.mcp"]


def load(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # rpcwire.mcp is an optional extra: only its own third-party dependency may be missing.
        if name == "rpcwire.mcp" and exc.name in ("mcp", "anyio"):
            pytest.skip(f"{name} needs the optional extra ({exc.name} is not installed)")
        raise


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_a_tuple_of_existing_names(name: str) -> None:
    module = load(name)
    assert isinstance(module.__all__, tuple)
    assert len(set(module.__all__)) == len(module.__all__), "duplicates in __all__"
    for attr in module.__all__:
        assert isinstance(attr, str)
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_star_import(name: str) -> None:
    module = load(name)
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    assert set(module.__all__) <= set(namespace)


def test_reexports_say_rpcwire() -> None:
    """Re-exported classes and functions show ``rpcwire.X`` in reprs and tracebacks."""
    import rpcwire

    for attr in rpcwire.__all__:
        obj = getattr(rpcwire, attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "rpcwire", f"rpcwire.{attr}.__module__ == {obj.__module__!r}"


def test_contract_names_exported() -> None:
    """The names DESIGN.md makes public."""
    import rpcwire

    contract = {
        "Codec",
        "Keyring",
        "kind",
        "RpcWireError",
        "ProtocolError",
        "ParseError",
        "InvalidRequest",
        "FramingError",
        "FrameTooLarge",
        "DecryptError",
        "ConnectionClosed",
        "connect",
        "serve",
        "stdio",
        "spawn",
        "memory_pair",
    }
    assert contract <= set(rpcwire.__all__)
    from rpcwire import reference

    assert "Codec" in reference.__all__


def test_exception_tree() -> None:
    import rpcwire

    assert issubclass(rpcwire.ProtocolError, rpcwire.RpcWireError)
    assert issubclass(rpcwire.ParseError, rpcwire.ProtocolError)
    assert issubclass(rpcwire.InvalidRequest, rpcwire.ProtocolError)
    assert issubclass(rpcwire.FrameTooLarge, rpcwire.FramingError)
    assert issubclass(rpcwire.FramingError, rpcwire.RpcWireError)
    assert issubclass(rpcwire.DecryptError, rpcwire.RpcWireError)
    assert issubclass(rpcwire.ConnectionClosed, rpcwire.RpcWireError)
    assert (rpcwire.ParseError.code, rpcwire.InvalidRequest.code) == (-32700, -32600)
    with pytest.raises(TypeError):
        rpcwire.RpcWireError()
    with pytest.raises(TypeError):
        rpcwire.ProtocolError()
