"""Transport addresses as URLs: ``unix:///abs/path``, ``tcp://host:port``, ``tcp://[::1]:port``, a bare port, or
``nats://host:port[,host:port...]/SUBJECT`` (``tls://`` for NATS over TLS).

Shared by ``connect``/``serve`` and the CLI. A bare port (``9000``, ``":9000"`` or the int ``9000``) means TCP on
the IPv4 loopback, ``127.0.0.1``: rpcwire never binds a public interface unless the address names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

__all__ = ("Address", "parse_address")

Scheme = Literal["tcp", "unix", "nats", "tls"]

#: The NATS client port when an address leaves it out.
NATS_DEFAULT_PORT = 4222


@dataclass(frozen=True)
class Address:
    """A parsed transport address.

    Attributes:
        scheme: ``"tcp"``, ``"unix"``, ``"nats"`` or ``"tls"`` (NATS over TLS).
        host: the TCP host (``"::1"`` for ``tcp://[::1]:9000``, brackets removed); ``None`` otherwise.
        port: the TCP port (0 asks ``serve`` for a free one); ``None`` otherwise.
        path: the Unix socket path; ``None`` otherwise.
        servers: NATS only: the server URLs as the NATS client takes them (``nats://[user:pass@]host:port``,
            credentials included).
        subject: NATS only: the service subject.
        queue: NATS only: the queue group ``serve`` joins (``?queue=NAME``); ``None`` means the subject.

    ``str()`` gives back the canonical URL, without credentials (it goes into logs).
    """

    scheme: Scheme
    host: str | None = None
    port: int | None = None
    path: str | None = None
    servers: tuple[str, ...] = ()
    subject: str | None = None
    queue: str | None = None

    @property
    def is_nats(self) -> bool:
        """True for ``nats://`` and ``tls://`` addresses."""
        return self.scheme in ("nats", "tls")

    @property
    def nats_hosts(self) -> tuple[str, ...]:
        """NATS only: each server's ``host:port`` (an IPv6 host in brackets), without scheme or credentials."""
        return tuple(server.partition("://")[2].rpartition("@")[2] for server in self.servers)

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        if self.is_nats:
            hosts = ",".join(self.nats_hosts)
            query = f"?queue={self.queue}" if self.queue is not None else ""
            return f"{self.scheme}://{hosts}/{self.subject}{query}"
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
    if scheme == "nats":
        return _parse_nats("nats", rest, address)
    if scheme == "tls":
        return _parse_nats("tls", rest, address)
    if scheme != "tcp":
        raise ValueError(f"invalid address {address!r}: unknown scheme {scheme!r} (expected tcp, unix, nats or tls)")
    host, port = _parse_host_port(rest.rstrip("/"), address, default_port=None)
    return Address("tcp", host, port)


def _parse_host_port(rest: str, address: object, *, default_port: int | None) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (the port may be left out where there is a default)."""
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"invalid address {address!r}: unclosed '[' in IPv6 host")
        host = rest[1:end]
        after = rest[end + 1 :]
        if not after and default_port is not None:
            return host, default_port
        if not after.startswith(":"):
            raise ValueError(f"invalid address {address!r}: missing :port after the IPv6 host")
        port_text = after[1:]
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            if default_port is None:
                raise ValueError(f"invalid address {address!r}: missing :port")
            host, port_text = rest, str(default_port)
        if ":" in host:
            raise ValueError(f"invalid address {address!r}: an IPv6 host must be in brackets, tcp://[::1]:port")
    if not host:
        raise ValueError(f"invalid address {address!r}: missing host")
    return host, _parse_port(port_text, address)


def subject_problem(subject: str) -> str | None:
    """What is wrong with ``subject`` as a NATS subject to serve on or reply to (None: nothing)."""
    if not subject or not all(subject.split(".")):
        return "has an empty token"
    if any(c.isspace() or c in "*>" for c in subject):
        return "may not hold spaces or wildcards (* >)"
    return None


def _check_subject(kind: str, subject: str, address: object) -> None:
    problem = subject_problem(subject)
    if problem is not None:
        raise ValueError(f"invalid address {address!r}: {kind} {subject!r} {problem}")


def _parse_nats(scheme: Scheme, rest: str, address: object) -> Address:
    """``nats://[creds@]host[:port][,host[:port]...]/SUBJECT[?queue=NAME]`` (``tls://`` alike)."""
    rest, _, query = rest.partition("?")
    hosts, slash, subject = rest.partition("/")
    if not slash or not subject:
        raise ValueError(f"invalid address {address!r}: a NATS address names its subject: {scheme}://host:port/SUBJECT")
    subject = unquote(subject)
    _check_subject("subject", subject, address)
    queue: str | None = None
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key != "queue":
            raise ValueError(f"invalid address {address!r}: unknown option {key!r} (a NATS address takes queue=)")
        queue = unquote(value)
        _check_subject("queue group", queue, address)
    servers: list[str] = []
    credentials = ""
    for i, part in enumerate(hosts.split(",")):
        userinfo, at, hostport = part.rpartition("@")
        if at:
            if not userinfo:
                raise ValueError(f"invalid address {address!r}: empty credentials before '@'")
            credentials = userinfo + "@"
        elif i > 0:
            userinfo = credentials[:-1]  # the first server's credentials go to the others too
        host, port = _parse_host_port(hostport, address, default_port=NATS_DEFAULT_PORT)
        if ":" in host:
            host = f"[{host}]"
        servers.append(f"{scheme}://{userinfo + '@' if userinfo else ''}{host}:{port}")
    return Address(scheme, servers=tuple(servers), subject=subject, queue=queue)
