"""Drop-in rpcwire transports for the MCP Python SDK (``mcp`` 2.x) and FastMCP.

Install with ``pip install "rpcwire[mcp]"`` (and ``rpcwire[fastmcp]`` for the FastMCP client transport).

Every entry point here hands the SDK the same thing its own transports do: a read stream yielding
``SessionMessage | Exception`` and a write stream taking ``SessionMessage`` (the SDK's
``ReadStream``/``WriteStream`` protocols, ``mcp.client.Transport``). The streams are thin objects
straight over one rpcwire transport: no worker threads, no memory-object-stream hop, one JSON
parse (in Rust) per message and one ``model_dump_json`` per sent message, exactly as the SDK
serialises it.

- :func:`stdio_server` / :func:`stdio_client`: the same signatures and contract as
  ``mcp.server.stdio.stdio_server`` and ``mcp.client.stdio.stdio_client`` (NDJSON on the wire, so
  either end can stay the SDK's own).
- :func:`connect`: an ``mcp.client.Transport`` over a Unix or TCP socket, any framing, compression
  and encryption, for ``mcp.Client(...)`` or ``ClientSession(read, write)``.
- :func:`serve`: runs an SDK low-level ``Server``, an ``MCPServer`` or a FastMCP server on a socket,
  one MCP session per connection. :func:`run_stdio` runs any of them on rpcwire's stdio.
- ``FastMCPClientTransport``: a ``fastmcp.client.transports.ClientTransport`` over a socket
  (built on first access, so this module imports without fastmcp installed).

Behaviour of the streams (identical to the SDK's stdio transports unless noted):

- Decoded JSON-RPC objects become the four envelope models exactly as
  ``jsonrpc_message_adapter.validate_json(line, by_name=False)`` would make them (including its
  quirks: a float or boolean ``id`` makes a notification, ``result`` plus ``error`` is an error).
- A bad message (not JSON, a batch, not a JSON-RPC 2.0 envelope) is put on the read stream as an
  ``Exception`` item and the session goes on. Differences from the SDK: blank lines are ignored
  rather than reported, and a message the rpcwire codec already refuses (for example a float
  ``id``) arrives as an ``rpcwire.InvalidRequest`` item instead of being reinterpreted.
- A fatal stream error (``FramingError``, ``DecryptError``) is put on the read stream once, then the
  stream ends. End of input ends iteration (``receive`` raises ``anyio.EndOfStream``), also when the
  peer stopped in the middle of a message (a truncated last line is the end, not an error item).
- A message larger than ``max_frame_size`` (stdio: 1 GiB, as good as no limit; sockets: 16 MiB) fails
  only its own call: see ``MessageWriter.send``.
- ``send`` on a connection whose peer is gone raises ``anyio.BrokenResourceError``; ``send`` or
  ``receive`` after ``aclose`` raises ``anyio.ClosedResourceError``; ``aclose`` is idempotent.
  Closing the streams does not close the connection: the context manager (or the serving loop)
  that opened it closes it on exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import mcp  # noqa: F401
    import mcp_types  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('rpcwire.mcp needs the MCP SDK: pip install "rpcwire[mcp]"') from exc

from .messages import to_session_message
from .sockets import MCPSocketServer, SocketTransport, connect, serve
from .stdio import STDIO_MAX_FRAME_SIZE, run_stdio, stdio_client, stdio_server
from .streams import MessageReader, MessageWriter, streams

if TYPE_CHECKING:
    #: A ``fastmcp.client.transports.ClientTransport`` subclass, built on first access.
    FastMCPClientTransport: type[Any]

__all__ = (
    "STDIO_MAX_FRAME_SIZE",
    "FastMCPClientTransport",
    "MCPSocketServer",
    "MessageReader",
    "MessageWriter",
    "SocketTransport",
    "connect",
    "run_stdio",
    "serve",
    "stdio_client",
    "stdio_server",
    "streams",
    "to_session_message",
)


def __getattr__(name: str) -> Any:
    if name == "FastMCPClientTransport":
        from .fastmcp import fastmcp_client_transport

        return fastmcp_client_transport()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
