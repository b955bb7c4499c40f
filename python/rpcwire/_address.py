"""Transport addresses as URLs: ``unix:///abs/path``, ``tcp://host:port``, ``tcp://[::1]:port``, or a bare port.

Shared by ``connect``/``serve`` and the CLI. A bare port (``9000``, ``":9000"`` or the int ``9000``) means TCP on
the IPv4 loopback, ``127.0.0.1``: rpcwire never binds a public interface unless the address names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

__all__ = ("Address", "parse_address")

Scheme = Literal["tcp", "unix"]


@dataclass(frozen=True)
class Address:
    """A parsed transport address.

    Attributes:
        scheme: ``"tcp"`` or ``"unix"``.
        host: the TCP host (``"::1"`` for ``tcp://[::1]:9000``, brackets removed); ``None`` for Unix.
        port: the TCP port (0 asks ``serve`` for a free one); ``None`` for Unix.
        path: the Unix socket path; ``None`` for TCP.
    """

    scheme: Scheme
    host: str | None = None
    port: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        return f"tcp://{host}:{self.port}"


def _parse_port(text: str, original: object) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid address {original!r}: port {text!r} is not a number")
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid address {original!r}: port {port} is out of range 0-65535")
    return port


def parse_address(address: str | int | Address) -> Address:
    """Parse a transport address.

    Arguments:
        address: ``"unix:///abs/path"``, ``"tcp://host:port"``, ``"tcp://[::1]:port"``, a bare port
            (``"9000"``, ``":9000"`` or ``9000``: TCP on 127.0.0.1), or an ``Address`` (returned as is).

    Returns:
        The ``Address``; ``str()`` of it gives back the canonical URL.

    Raises:
        ValueError: the address is not one of the forms above (the message says what is wrong).
    """
    if isinstance(address, Address):
        return address
    if isinstance(address, bool) or not isinstance(address, (str, int)):
        raise ValueError(f"invalid address {address!r}: expected a URL string or a port number")
    if isinstance(address, int):
        return Address("tcp", "127.0.0.1", _parse_port(str(address), address))
    text = address.strip()
    if not text:
        raise ValueError("invalid address '': empty")
    bare = text[1:] if text.startswith(":") else text
    if bare.isdigit():
        return Address("tcp", "127.0.0.1", _parse_port(bare, address))
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(
            f"invalid address {address!r}: expected unix:///path, tcp://host:port, tcp://[v6]:port or a bare port"
        )
    scheme = scheme.lower()
    if scheme == "unix":
        path = unquote(rest)
        if not path.startswith("/"):
            raise ValueError(f"invalid address {address!r}: a Unix socket path must be absolute (unix:///abs/path)")
        if "\0" in path:
            raise ValueError(f"invalid address {address!r}: NUL in path")
        return Address("unix", path=path)
    if scheme != "tcp":
        raise ValueError(f"invalid address {address!r}: unknown scheme {scheme!r} (expected tcp or unix)")
    rest = rest.rstrip("/")
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"invalid address {address!r}: unclosed '[' in IPv6 host")
        host = rest[1:end]
        after = rest[end + 1 :]
        if not after.startswith(":"):
            raise ValueError(f"invalid address {address!r}: missing :port after the IPv6 host")
        port_text = after[1:]
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            raise ValueError(f"invalid address {address!r}: missing :port")
        if ":" in host:
            raise ValueError(f"invalid address {address!r}: an IPv6 host must be in brackets, tcp://[::1]:port")
    if not host:
        raise ValueError(f"invalid address {address!r}: missing host")
    return Address("tcp", host, _parse_port(port_text, address))
