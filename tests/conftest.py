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
from hypothesis import strategies as st

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


# --- hypothesis strategies for junk: structured near-misses of every framing ---------------------

json_fragments = st.sampled_from(
    [
        b'{"jsonrpc":"2.0","id":1,"method":"m"}',
        b'{"jsonrpc":"2.0","method":"n","params":[1,2.5,"\\u00e9"]}',
        b'{"jsonrpc":"2.0","id":"x","result":{"a":[]}}',
        b'{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}',
        b'[{"jsonrpc":"2.0","id":1,"method":"m"},1,[]]',
        b"[]",
        b"{}",
        b"null",
        b'{"jsonrpc":"1.0","id":3,"method":"m"}',
        b'{"jsonrpc":"2.0","id":',
        b'{"a":"\xc3',
        b"\xfb\x01\x00{}",
        b"\xfb\x01\x01\x04\x22\x4d\x18",
        b"\xfb\x01\x04" + b"\x00" * 40,
        b"\xfb\x02\x00",
        b" \t",
        b"\r",
        b"",
        b"\xff\xfe",
        b"Content-Length: 5",
        b"123456789012345678901234567890",
    ]
)
junk_payload = json_fragments | st.binary(max_size=40)


@st.composite
def ndjson_junk(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(junk_payload, max_size=6))
    ends = st.sampled_from([b"\n", b"\r\n", b"\n\n", b" \n", b""])
    return b"".join(line + draw(ends) for line in lines)


@st.composite
def length_junk(draw: st.DrawFn) -> bytes:
    out = b""
    for payload in draw(st.lists(junk_payload, max_size=5)):
        size = draw(
            st.sampled_from([len(payload), len(payload), 0, 2**31, 2**32 - 1, 300])
            | st.integers(min_value=0, max_value=len(payload) + 8)
        )
        out += struct.pack(">I", size) + payload
    return out + draw(st.binary(max_size=3))


@st.composite
def content_length_junk(draw: st.DrawFn) -> bytes:
    out = b""
    for payload in draw(st.lists(junk_payload, max_size=4)):
        name = draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH", b"Content-Lenght"]))
        value = draw(
            st.sampled_from([b"%d" % len(payload), b"%d" % len(payload), b"-1", b"x", b"", b"99999999999", b" 3"])
        )
        extra = draw(st.sampled_from([b"", b"Content-Type: x\r\n", b"X: y\n", b"Content-Length: 1\r\n"]))
        line_end = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"]))
        blank = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n", b""]))
        out += name + b": " + value + line_end + extra + blank + payload
    return out


any_junk = st.one_of(st.binary(max_size=200), ndjson_junk(), length_junk(), content_length_junk())
JUNK_FOR = {"ndjson": ndjson_junk(), "length": length_junk(), "content-length": content_length_junk()}


@st.composite
def split_points(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at hypothesis-chosen points."""
    cuts = draw(st.lists(st.integers(min_value=0, max_value=max(len(data), 1)), max_size=8))
    return split_at(data, cuts)
