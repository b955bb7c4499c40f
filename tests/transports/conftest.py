"""Transport test fixtures: every test runs on the stdlib loop (debug=True) and on uvloop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from rpcwire._compat import Runner

from ._pki import pki  # noqa: F401 - the certificate fixture of the TLS tests (TCP and NATS)

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")
Run = Callable[[Awaitable[T]], T]

LOOPS = ["asyncio", "uvloop"] if uvloop is not None else ["asyncio"]
#: Hard bound per test coroutine: a hang fails fast with a traceback instead of eating pytest's timeout.
TEST_TIMEOUT = 60.0


@pytest.fixture(params=LOOPS)
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop_name: str) -> Iterator[Callable[[Awaitable[Any]], Any]]:
    """``run(coro)`` runs ``coro`` on a fresh loop of the parametrized kind (stdlib with debug, or uvloop)."""
    runner = Runner(loop_factory=uvloop.new_event_loop) if loop_name == "uvloop" else Runner(debug=True)

    def _run(coro: Awaitable[Any]) -> Any:
        async def guarded() -> Any:
            return await asyncio.wait_for(coro, TEST_TIMEOUT)

        return runner.run(guarded())

    with runner:
        yield _run


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6_loopback()
