"""Transport addresses as URLs (shared by connect/serve and the CLI)."""

from __future__ import annotations

import pytest
from rpcwire._address import Address, parse_address


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("unix:///tmp/app.sock", Address("unix", path="/tmp/app.sock"), "unix:///tmp/app.sock"),
        ("unix:///tmp/with%20space.sock", Address("unix", path="/tmp/with space.sock"), None),
        ("tcp://127.0.0.1:9000", Address("tcp", "127.0.0.1", 9000), "tcp://127.0.0.1:9000"),
        ("TCP://example.com:1/", Address("tcp", "example.com", 1), "tcp://example.com:1"),
        ("tcp://[::1]:9000", Address("tcp", "::1", 9000), "tcp://[::1]:9000"),
        ("tcp://0.0.0.0:0", Address("tcp", "0.0.0.0", 0), "tcp://0.0.0.0:0"),
        ("9000", Address("tcp", "127.0.0.1", 9000), "tcp://127.0.0.1:9000"),
        (":9000", Address("tcp", "127.0.0.1", 9000), "tcp://127.0.0.1:9000"),
        (9000, Address("tcp", "127.0.0.1", 9000), "tcp://127.0.0.1:9000"),
    ],
)
def test_parse(text: str | int, expected: Address, canonical: str | None) -> None:
    parsed = parse_address(text)
    assert parsed == expected
    if canonical is not None:
        assert str(parsed) == canonical
        assert parse_address(str(parsed)) == parsed
    assert parse_address(parsed) is parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("unix://relative.sock", "must be absolute"),
        ("http://host:80", "unknown scheme"),
        ("tcp://host", "missing :port"),
        ("tcp://:80", "missing host"),
        ("tcp://::1:80", "must be in brackets"),
        ("tcp://[::1]80", "missing :port after the IPv6 host"),
        ("tcp://[::1:80", "unclosed"),
        ("tcp://host:http", "not a number"),
        ("tcp://host:70000", "out of range"),
        ("70000", "out of range"),
        ("localhost", "expected unix:///path"),
        (True, "expected a URL string or a port number"),
    ],
)
def test_refusals_say_what_is_wrong(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)  # type: ignore[arg-type]
