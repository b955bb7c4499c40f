"""Swap rpcwire.mcp in for the MCP SDK's stdio transports, in this interpreter and every child it starts.

``make sdk-conformance`` puts this folder on PYTHONPATH, so Python imports this module at start-up in the
test process and in every server process the tests spawn. When ``mcp.client.stdio`` or
``mcp.server.stdio`` finishes loading, its ``stdio_client`` / ``stdio_server`` is replaced by a function
that calls ``rpcwire.mcp``'s, before any other module can import the name; the SDK's own stays on the
module as ``_sdk_stdio_client`` / ``_sdk_stdio_server`` (rpcwire.mcp hands over to it under trio).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

SWAPS = {"mcp.client.stdio": "stdio_client", "mcp.server.stdio": "stdio_server"}


def _swap(module: ModuleType, name: str) -> None:
    original = getattr(module, name)
    setattr(module, f"_sdk_{name}", original)

    @functools.wraps(original)
    def swapped(*args: Any, **kwargs: Any) -> Any:
        from rpcwire import mcp as rpcwire_mcp

        return getattr(rpcwire_mcp, name)(*args, **kwargs)

    swapped.__rpcwire_swap__ = True  # type: ignore[attr-defined]
    setattr(module, name, swapped)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        _swap(module, SWAPS[self._name])


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in SWAPS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, fullname)
        return spec


sys.meta_path.insert(0, _Finder())
