"""The hex test vectors of docs/wire-format.md section 5.

Each vector is opened twice: by hand with the ``lz4``, ``brotli`` and ``cryptography`` packages,
following only the document, and by ``rpcwire.Codec`` (and ``rpcwire.reference.Codec``). A Rust unit
test (``envelope::tests::the_document_holds_the_current_test_vectors``) checks the code still writes them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
import lz4.frame
import orjson
import pytest
import rpcwire
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rpcwire import reference

DOC = Path(__file__).resolve().parent.parent / "docs" / "wire-format.md"


@dataclass(frozen=True)
class Vector:
    title: str
    compression: str
    key: bytes | None
    key_id: int | None
    nonce_prefix: bytes | None
    seq: int | None
    inputs: tuple[str, ...]
    frame: bytes


def load_vectors() -> list[Vector]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 5. Test vectors") : text.index("## 6. Session test vectors")]
    vectors = []
    for title, body in re.findall(r"^### (.+?)\n\n```text\n(.*?)```", section, re.S | re.M):
        fields: dict[str, list[str]] = {}
        for line in body.splitlines():
            name, _, value = line.partition(": ")
            fields.setdefault(name, []).append(value)
        keyed = fields["key"][0] != "none"
        vectors.append(
            Vector(
                title=title,
                compression=fields["compression"][0],
                key=bytes.fromhex(fields["key"][0]) if keyed else None,
                key_id=int(fields["key_id"][0]) if keyed else None,
                nonce_prefix=bytes.fromhex(fields["nonce_prefix"][0]) if keyed else None,
                seq=int(fields["seq"][0]) if keyed else None,
                inputs=tuple(fields["input"]),
                frame=bytes.fromhex(fields["frame"][0]),
            )
        )
    return vectors


VECTORS = load_vectors()


def test_the_document_has_the_six_vectors() -> None:
    assert [v.compression for v in VECTORS] == ["none", "lz4", "brotli", "none", "lz4", "none"]
    assert [v.key is not None for v in VECTORS] == [False, False, False, True, True, True]
    assert len(VECTORS[5].inputs) > 1


def open_by_hand(v: Vector) -> list[bytes]:
    """Section 2.2 and 3, step by step, with only the third-party packages."""
    (n,) = struct.unpack(">I", v.frame[:4])
    payload = v.frame[4:]
    assert n == len(payload)
    if payload[0] != 0xFB:
        return [payload]
    assert payload[1] == 1
    flags = payload[2]
    assert flags & 0xF0 == 0
    if flags & 0b100:
        assert v.key is not None
        key_id, nonce, seq = struct.unpack(">I12sQ", payload[3:27])
        assert (key_id, nonce[:8], nonce[8:], seq) == (v.key_id, v.nonce_prefix, b"\0\0\0\0", v.seq)
        body = AESGCM(v.key).decrypt(nonce, payload[27:], payload[:27])
    else:
        body = payload[3:]
    compression = flags & 0b11
    if compression == 1:
        assert body[:4] == b"\x04\x22\x4d\x18"
        body = lz4.frame.decompress(body)
    elif compression == 2:
        body = brotli.decompress(body)
    else:
        assert compression == 0
    if not flags & 0b1000:
        return [body]
    messages = []
    while body:
        (length,) = struct.unpack(">I", body[:4])
        messages.append(body[4 : 4 + length])
        body = body[4 + length :]
    return messages


@pytest.mark.parametrize("v", VECTORS, ids=[v.title for v in VECTORS])
def test_python_packages_open_each_vector(v: Vector) -> None:
    assert [m.decode() for m in open_by_hand(v)] == list(v.inputs)


@pytest.mark.parametrize("impl", ["rust", "reference"])
@pytest.mark.parametrize("v", VECTORS, ids=[v.title for v in VECTORS])
def test_codecs_decode_each_vector(v: Vector, impl: str) -> None:
    kwargs: dict[str, Any] = {"framing": "length"}
    if v.key is not None:
        assert v.key_id is not None
        if impl == "rust":
            kwargs["keyring"] = rpcwire.Keyring({v.key_id: v.key}, active=v.key_id)
        else:
            kwargs["keyring"] = reference.Keyring({v.key_id: v.key}, active=v.key_id)
    codec: Any = rpcwire.Codec(**kwargs) if impl == "rust" else reference.Codec(**kwargs)
    assert codec.feed(v.frame) == [orjson.loads(m) for m in v.inputs]


def test_a_changed_vector_is_refused() -> None:
    v = VECTORS[4]  # encrypted + lz4
    assert v.key is not None
    assert v.key_id is not None
    bad = bytearray(v.frame)
    bad[-1] ^= 1
    codec = rpcwire.Codec(framing="length", keyring=rpcwire.Keyring({v.key_id: v.key}))
    with pytest.raises(rpcwire.DecryptError):
        codec.feed(bytes(bad))
