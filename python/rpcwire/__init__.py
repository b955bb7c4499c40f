"""rpcwire: fast, safe JSON-RPC 2.0 / MCP transports on a Rust sans-IO codec.

The public API is re-exported here; implementation lives in private modules.
"""

from __future__ import annotations

import contextlib

from ._core import Codec, Keyring, __version__, kind
from ._errors import (
    ConnectionClosed,
    DecryptError,
    FrameTooLarge,
    FramingError,
    InvalidRequest,
    ParseError,
    ProtocolError,
    RpcWireError,
)
from ._memory import memory_pair
from ._sockets import Server, connect, serve
from ._spawn import spawn
from ._stdio import stdio
from ._transport import Transport, TransportStats

__all__ = (
    "Codec",
    "ConnectionClosed",
    "DecryptError",
    "FrameTooLarge",
    "FramingError",
    "InvalidRequest",
    "Keyring",
    "ParseError",
    "ProtocolError",
    "RpcWireError",
    "Server",
    "Transport",
    "TransportStats",
    "__version__",
    "connect",
    "kind",
    "memory_pair",
    "serve",
    "spawn",
    "stdio",
)


def _fix_module_names() -> None:
    # Re-exported classes say `rpcwire.X` in reprs and tracebacks, as anyio does.
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("rpcwire._") and not name.startswith("_"):
            # Rust classes already say rpcwire and refuse the assignment.
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = __name__


_fix_module_names()
