"""Interop with the packages the spec names: Python ``lz4``/``brotli``/``cryptography`` open what rpcwire
writes (following only docs/wire-format.md), rpcwire opens what they write, and ``rpcwire.Codec`` and
``rpcwire.reference.Codec`` read each other in every envelope mode.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import brotli
import lz4.frame
import orjson
import pytest
import rpcwire
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from rpcwire import reference

KEY = os.urandom(32)
MSG: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "result": {"text": "ünïcode " * 500, "n": [1, 2.5, None]}}


def split_frames(data: bytes) -> list[bytes]:
    out = []
    while data:
        (n,) = struct.unpack(">I", data[:4])
        out.append(data[4 : 4 + n])
        data = data[4 + n :]
    return out


def open_payload(payload: bytes, key: bytes | None = None) -> tuple[int, list[bytes]]:
    """Section 3 by hand: returns (flags, messages)."""
    assert payload[:2] == b"\xfb\x01"
    flags = payload[2]
    if flags & 0b100:
        assert key is not None
        nonce = payload[7:19]
        body = AESGCM(key).decrypt(nonce, payload[27:], payload[:27])
    else:
        body = payload[3:]
    body = {0: lambda b: b, 1: lz4.frame.decompress, 2: brotli.decompress}[flags & 0b11](body)
    if not flags & 0b1000:
        return flags, [body]
    msgs = []
    while body:
        (n,) = struct.unpack(">I", body[:4])
        msgs.append(body[4 : 4 + n])
        body = body[4 + n :]
    return flags, msgs


@pytest.mark.parametrize("compression", ["lz4", "brotli"])
def test_packages_decompress_what_rpcwire_writes(compression: str) -> None:
    out = rpcwire.Codec(compression=compression).encode(MSG)
    (payload,) = split_frames(out)
    flags, (body,) = open_payload(payload)
    assert flags == {"lz4": 1, "brotli": 2}[compression]
    assert body == orjson.dumps(MSG)


@pytest.mark.parametrize("compression", [None, "lz4", "brotli"])
def test_cryptography_opens_what_rpcwire_seals(compression: str | None) -> None:
    codec = rpcwire.Codec(compression=compression, keyring=rpcwire.Keyring({5: KEY}))
    frames = split_frames(
        codec.encode(MSG) + codec.encode(MSG) + codec.encode_many([MSG, {"jsonrpc": "2.0", "method": "n"}])
    )
    prefixes = set()
    for i, payload in enumerate(frames):
        key_id, nonce, seq = struct.unpack(">I12sQ", payload[3:27])
        assert (key_id, seq, nonce[8:]) == (5, i, struct.pack(">I", i))
        prefixes.add(nonce[:8])
        flags, msgs = open_payload(payload, KEY)
        assert flags & 0b11 == {None: 0, "lz4": 1, "brotli": 2}[compression]
        expected = [MSG] if i < 2 else [MSG, {"jsonrpc": "2.0", "method": "n"}]
        assert [orjson.loads(m) for m in msgs] == expected
    assert len(prefixes) == 1, "one random prefix per codec, the counter counts"
    other = rpcwire.Codec(keyring=rpcwire.Keyring({5: KEY})).encode(MSG)
    assert split_frames(other)[0][7:15] not in prefixes


def test_rpcwire_reads_what_the_packages_write() -> None:
    body = orjson.dumps(MSG)
    frames = [
        b"\xfb\x01\x01" + lz4.frame.compress(body),
        b"\xfb\x01\x01"
        + lz4.frame.compress(body, block_linked=False, content_checksum=True, block_size=lz4.frame.BLOCKSIZE_MAX4MB),
        b"\xfb\x01\x02" + brotli.compress(body, quality=11),
        b"\xfb\x01\x02" + brotli.compress(body, quality=0),
        b"\xfb\x01\x00" + body,
        body,
    ]
    data = b"".join(struct.pack(">I", len(f)) + f for f in frames)
    assert rpcwire.Codec(framing="length").feed(data) == [MSG] * len(frames)


def test_rpcwire_opens_what_cryptography_seals() -> None:
    prefix = os.urandom(8)
    msgs = [orjson.dumps({"jsonrpc": "2.0", "id": i, "method": "m"}) for i in range(3)]
    records = b"".join(struct.pack(">I", len(m)) + m for m in msgs)
    out = b""
    for seq, (flags, body) in enumerate(
        [(0b100, msgs[0]), (0b101, lz4.frame.compress(msgs[1])), (0b1110, brotli.compress(records))]
    ):
        nonce = prefix + struct.pack(">I", seq)
        header = bytes([0xFB, 1, flags]) + struct.pack(">I12sQ", 3, nonce, seq)
        payload = header + AESGCM(KEY).encrypt(nonce, body, header)
        out += struct.pack(">I", len(payload)) + payload
    items = rpcwire.Codec(keyring=rpcwire.Keyring({3: KEY})).feed(out)
    assert items == [orjson.loads(m) for m in [msgs[0], msgs[1], *msgs]]


MODES = [
    {"compression": "lz4", "compress_min_size": 0},
    {"compression": "brotli"},
    {"keyring": True},
    {"keyring": True, "compression": "lz4", "compress_min_size": 64},
    {"keyring": True, "compression": "brotli", "compress_min_size": 0},
]

messages = st.lists(
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "id": st.integers(0, 2**31), "method": st.text(max_size=300)},
        optional={"params": st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=50), max_size=5)},
    ),
    min_size=1,
    max_size=8,
)


def make(impl: str, mode: dict[str, Any], keys: dict[int, bytes]) -> Any:
    kwargs = dict(mode)
    if kwargs.pop("keyring", False):
        kwargs["keyring"] = rpcwire.Keyring(keys) if impl == "rust" else reference.Keyring(keys, active=1)
    return rpcwire.Codec(**kwargs) if impl == "rust" else reference.Codec(**kwargs)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(f"{k}={v}" for k, v in m.items()))
@pytest.mark.parametrize(("writer", "reader"), [("rust", "reference"), ("reference", "rust")])
@given(msgs=messages)
def test_rust_and_reference_read_each_other(mode: dict[str, Any], writer: str, reader: str, msgs: list[Any]) -> None:
    keys = {1: KEY}
    tx, rx = make(writer, mode, keys), make(reader, mode, keys)
    data = tx.encode(msgs[0]) + tx.encode_many(msgs) + tx.encode(msgs[-1])
    assert rx.feed(data) == [msgs[0], *msgs, msgs[-1]]
