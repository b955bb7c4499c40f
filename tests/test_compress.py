"""Compression choice through the Codec: names, which frames get compressed, and the receiver needing no
compression setting of its own (each frame's header says how it was compressed)."""

from __future__ import annotations

import struct

import pytest
import rpcwire

TEXT = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "the quick brown fox " * 300}]}}


@pytest.mark.parametrize("name", ["gzip", "LZ4", ""])
def test_unknown_compression_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="compression"):
        rpcwire.Codec(compression=name)  # type: ignore[arg-type]


def test_zstd_is_refused_by_this_build() -> None:
    with pytest.raises(ValueError, match="zstd"):
        rpcwire.Codec(compression="zstd")  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "code"), [("lz4", 1), ("brotli", 2)])
def test_the_header_names_the_compression(name: str, code: int) -> None:
    out = rpcwire.Codec(compression=name).encode(TEXT)
    (n,) = struct.unpack(">I", out[:4])
    assert out[4:7] == bytes([0xFB, 1, code])
    assert n < 1000 < len(rpcwire.Codec(framing="length").encode(TEXT))


def test_brotli_beats_lz4_on_json() -> None:
    sizes = {name: len(rpcwire.Codec(compression=name).encode(TEXT)) for name in ("lz4", "brotli")}
    assert sizes["brotli"] < sizes["lz4"]


@pytest.mark.parametrize("writer", ["lz4", "brotli"])
@pytest.mark.parametrize("reader", [None, "lz4", "brotli"])
def test_any_receiver_reads_any_compression(writer: str, reader: str | None) -> None:
    data = rpcwire.Codec(compression=writer).encode_many([TEXT, TEXT])
    assert rpcwire.Codec(framing="length", compression=reader).feed(data) == [TEXT, TEXT]


def test_compress_min_size_zero_compresses_everything_that_shrinks() -> None:
    small = {"jsonrpc": "2.0", "method": "ping"}
    codec = rpcwire.Codec(compression="brotli", compress_min_size=0)
    out = codec.encode({"jsonrpc": "2.0", "method": "x" * 100})
    assert out[4] == 0xFB
    # A tiny message does not shrink: it goes plain whatever the threshold.
    assert codec.encode(small)[4:5] == b"{"
