"""Shared test helpers: the ``Err`` table helper, hypothesis profiles, chunking helpers.

``tests/`` and ``tests/transports/`` are packages (as in pydantic-core) so test basenames can't clash.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles: `fast` (default, CI-safe) and `slow` (thorough), chosen by HYPOTHESIS_PROFILE.
settings.register_profile(
    "fast",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "slow",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@dataclass(frozen=True)
class Err:
    """An expected failure in a table test (pydantic-core's ``conftest.Err``).

    ``message`` is a regular expression searched in the error's text (for a ProtocolError item:
    its ``data``, falling back to ``str(error)``). ``cls`` is the expected class (an item class such
    as ``rpcwire.InvalidRequest`` or a raised one such as ``rpcwire.FramingError``); ``id`` is the
    recovered request id expected on a ProtocolError item (``...`` means "don't check").
    """

    message: str = ""
    cls: type[BaseException] | None = None
    id: Any = ...

    def matches(self, error: object) -> bool:
        if not isinstance(error, BaseException):
            return False
        if self.cls is not None and not isinstance(error, self.cls):
            return False
        if self.id is not ... and getattr(error, "id", None) != self.id:
            return False
        text = getattr(error, "data", None)
        haystack = f"{text if text is not None else ''} {error}"
        return re.search(self.message, haystack, re.IGNORECASE) is not None

    def check(self, error: object) -> None:
        assert self.matches(error), f"expected {self!r}, got {error!r}"


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (sorted, deduplicated, clamped); every piece non-empty."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    pieces: list[bytes] = []
    start = 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return [p for p in pieces if p]


def bytewise(data: bytes) -> Iterator[bytes]:
    """``data`` one byte at a time (h11's style)."""
    for i in range(len(data)):
        yield data[i : i + 1]


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in chunks of ``size`` bytes."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def feed_all(codec: Any, pieces: Sequence[bytes] | Iterable[bytes], *, eof: bool = False) -> list[Any]:
    """Feed every piece to ``codec`` (then ``b""`` if ``eof``) and return all items, in order."""
    items: list[Any] = []
    for piece in pieces:
        items.extend(codec.feed(piece))
    if eof:
        items.extend(codec.feed(b""))
    return items


# --- implementations under test -----------------------------------------------------------------
# The contract tests run against the Rust codec and the pure-Python reference: both implement
# docs/wire-format.md, so a behaviour that differs is a bug in one of them (or in the spec).
IMPLEMENTATIONS = ("rust", "reference")
FRAMINGS = ("ndjson", "length", "content-length")


def codec_class(name: str) -> Any:
    """The ``Codec`` class of implementation ``name`` ("rust" or "reference")."""
    if name == "rust":
        import rpcwire

        return rpcwire.Codec
    from rpcwire import reference

    return reference.Codec


@pytest.fixture(params=IMPLEMENTATIONS, scope="session")
def codec_cls(request: pytest.FixtureRequest) -> Any:
    """``rpcwire.Codec`` or ``rpcwire.reference.Codec``."""
    return codec_class(request.param)


def frame(framing: str, payload: bytes) -> bytes:
    """One frame around ``payload``, built by hand from docs/wire-format.md section 2."""
    if framing == "ndjson":
        return payload + b"\n"
    if framing == "length":
        return struct.pack(">I", len(payload)) + payload
    if framing == "content-length":
        return b"Content-Length: %d\r\n\r\n" % len(payload) + payload
    raise ValueError(framing)
