"""Leak check (orjson's test_memory.py): feed and encode many times; RSS growth stays bounded.

Each path that builds Python objects in Rust is exercised: dicts, batches, ProtocolError items, raised
fatal errors, encode errors, bytes pass-through, and the envelope.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from typing import Any

import psutil
import pytest
import rpcwire

MSG = {"jsonrpc": "2.0", "id": 12345, "method": "tools/call", "params": {"name": "echo", "arguments": {"t": "x" * 200}}}
BIG = {"jsonrpc": "2.0", "id": 1, "result": {"contents": [{"text": "y" * 100_000, "n": [1.5, 2**70, None]}]}}
BAD = b'{"jsonrpc":"2.0","id":"abc","method":5}\n{not json at all}\n[1,{"jsonrpc":"2.0","method":"m"}]\n'

MiB = 2**20


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def growth(step: Callable[[], Any], rounds: int) -> int:
    """RSS growth over ``rounds`` calls of ``step``, after a warm-up of the same size."""
    for _ in range(rounds):
        step()
    before = rss()
    for _ in range(rounds):
        step()
    return rss() - before


def decode_plain() -> None:
    codec = rpcwire.Codec(framing="ndjson")
    data = codec.encode_many([MSG] * 20 + [[MSG, MSG]])
    assert len(codec.feed(data)) == 21
    assert len(codec.feed(bytearray(data[:50]))) == 0
    assert len(codec.feed(memoryview(data)[50:])) == 21


def decode_errors() -> None:
    items = rpcwire.Codec(framing="ndjson").feed(BAD * 10)
    assert len(items) == 30


def decode_big() -> None:
    codec = rpcwire.Codec(framing="length")
    data = codec.encode(BIG)
    for start in range(0, len(data), 4096):
        codec.feed(data[start : start + 4096])


def fatal() -> None:
    codec = rpcwire.Codec(framing="length", max_frame_size=100)
    for _ in range(2):
        with contextlib.suppress(rpcwire.FrameTooLarge):
            codec.feed(b"\xff\xff\xff\xff")
    ndjson = rpcwire.Codec(framing="ndjson")
    assert ndjson.feed(b"[1, 2") == []
    with contextlib.suppress(rpcwire.FramingError):
        ndjson.feed(b"")


def encode_paths() -> None:
    codec = rpcwire.Codec(framing="length")
    codec.encode(MSG)
    codec.encode_many([MSG, b'{"jsonrpc":"2.0","method":"raw"}', [MSG]] * 10)
    codec.encode(BIG)
    with contextlib.suppress(TypeError):
        codec.encode({"jsonrpc": "2.0", "id": 1, "result": [object()]})
    with contextlib.suppress(ValueError):
        rpcwire.Codec(framing="ndjson").encode(b"{\n}")


def envelope() -> None:
    keyring = rpcwire.Keyring({1: b"\x07" * 32}, active=1)
    sender = rpcwire.Codec(framing="length", compression="lz4", compress_min_size=0, keyring=keyring)
    receiver = rpcwire.Codec(framing="length", keyring=keyring)
    assert len(receiver.feed(sender.encode_many([MSG] * 10) + sender.encode(BIG))) == 11
    with contextlib.suppress(rpcwire.DecryptError):
        receiver.feed(b"\x00\x00\x00\x02{}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "rounds"),
    [
        (decode_plain, 3000),
        (decode_errors, 3000),
        (decode_big, 300),
        (fatal, 5000),
        (encode_paths, 2000),
        (envelope, 1000),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_rss_bounded(step: Callable[[], Any], rounds: int) -> None:
    # A leak of one small object per call would be tens of bytes x rounds x objects per call: several
    # MiB here. Allocator noise is well under the bound.
    assert growth(step, rounds) < 4 * MiB
