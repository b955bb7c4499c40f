"""The FastMCP client transport over a socket (fastmcp is imported only when it is first used)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .sockets import SocketTransport

if TYPE_CHECKING:
    pass

logger = logging.getLogger("rpcwire.mcp")


_fastmcp_class: type[Any] | None = None


def fastmcp_client_transport() -> type[Any]:
    """``rpcwire.mcp.FastMCPClientTransport``, built (and fastmcp imported) on first use."""
    global _fastmcp_class
    if _fastmcp_class is None:
        _fastmcp_class = _make_fastmcp_transport()
    return _fastmcp_class


def _make_fastmcp_transport() -> type[Any]:
    from fastmcp.client.transports import ClientTransport
    from fastmcp.client.transports.base import TransportOptions

    class FastMCPClientTransport(ClientTransport):
        """A ``fastmcp.Client`` transport over a Unix or TCP socket served by :func:`serve`.

        ``fastmcp.Client(FastMCPClientTransport("unix:///tmp/app.sock", keyring=kr))``.
        """

        def __init__(self, address: str, **codec_options: Any) -> None:
            self.address = address
            self.codec_options = codec_options

        @contextlib.asynccontextmanager
        async def connect_session(self, *, transport_options: Any = None, **session_kwargs: Any) -> AsyncIterator[Any]:
            options = transport_options or TransportOptions()
            async with (
                SocketTransport(self.address, **self.codec_options) as (read, write),
                options.session_class(read, write, **session_kwargs) as session,
            ):
                yield session

        def __repr__(self) -> str:
            return f"<FastMCPClientTransport({self.address!r})>"

    FastMCPClientTransport.__module__ = "rpcwire.mcp"
    return FastMCPClientTransport
