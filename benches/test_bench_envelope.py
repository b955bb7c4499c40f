"""pytest-benchmark: the envelope (AES-256-GCM, lz4, brotli) against what a Python user would write.

Groups are ``<operation> <size>``; each holds one benchmark per library (``benchmark.extra_info["lib"]``):

- ``seal <size>`` (256B, 4KiB, 64KiB, 1MiB): ``rpcwire`` (``Codec(framing="length", keyring=...).encode(msg)``)
  against ``orjson+cryptography`` (``orjson.dumps``, a random nonce, ``AESGCM.encrypt`` and a length prefix:
  what a user writes to send one encrypted message);
- ``seal-bytes <size>``: the crypto alone, on JSON already serialized: ``rpcwire`` (``encode(bytes)``, which
  copies the bytes into the envelope without parsing them) against ``cryptography``
  (``AESGCM.encrypt_into`` a reused buffer, with a random nonce);
- ``compress <algo> <size>`` and ``decompress <algo> <size>`` (lz4/brotli, 6KB, 64KB, 1MB of MCP-shaped JSON):
  ``rpcwire`` (``encode`` / ``feed`` of a ``Codec(framing="length", compression=algo)``) against
  ``orjson+lz4`` / ``orjson+brotli`` (``lz4.frame.compress`` or ``brotli.compress(quality=4, lgwin=22)``, the
  parameters the wire format uses, of ``orjson.dumps``, with a length prefix; and back with ``loads``);
- ``seal-batch 1000x150B``: 1000 ``tools/call`` requests of ~150 B with a keyring: ``rpcwire-encode_many`` (one
  envelope) against ``rpcwire-encode`` (one ``encode`` and one envelope per message) and
  ``orjson+cryptography`` (the user's loop, one nonce and ``encrypt`` per message);
- ``seal-batch-bytes 1000x150B``: the same 1000 messages already serialized (``bytes``), so only the sealing
  differs: one envelope for the batch, one per message, or ``cryptography`` once per message. Serializing
  1000 dicts costs the same in every column of ``seal-batch`` and caps its ratios; this group shows what
  batching saves on the envelope itself (one nonce, one tag, one header).

Every result is checked: sealed frames are opened with ``cryptography`` (an independent implementation of
docs/wire-format.md 3.2), compressed ones are decoded back to the message. ``pytest benches``
(``--benchmark-disable``) is that check alone; ``make bench`` measures. Ratios: benches/README.md.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

import brotli  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
import orjson
import pytest
import rpcwire
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benches.conftest import tools_list

KEY = bytes(range(32))
KEY_ID = 1
SEALED_HEADER = 27
TAG = 16
BROTLI_QUALITY = 4  # docs/wire-format.md 3.1
BROTLI_LGWIN = 22

SEAL_SIZES = {"256B": 256, "4KiB": 4 << 10, "64KiB": 64 << 10, "1MiB": 1 << 20}
COMPRESS_SIZES = ("6KB", "64KB", "1MB")
ALGOS = ("lz4", "brotli")
BATCH = 1000

_pack = struct.Struct(">I").pack
_LINE = "The quick brown fox jumps over the lazy dog; caf\u00e9 \u2014 na\u00efve r\u00e9sum\u00e9 \U0001f98a.\n"


def text_message(size: int) -> dict[str, Any]:
    """A ``resources/read`` result whose compact JSON is exactly ``size`` bytes (word-like text)."""
    msg: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"contents": [{"uri": "file:///var/log/app.log", "mimeType": "text/plain", "text": ""}]},
    }
    room = size - len(orjson.dumps(msg))
    assert room >= 0, size

    def json_len(s: str) -> int:
        return len(orjson.dumps(s)) - 2  # the newlines are escaped

    text = _LINE * (room // json_len(_LINE) + 1)
    while json_len(text) > room:
        text = text[: -max(1, (json_len(text) - room) // 4)]
    msg["result"]["contents"][0]["text"] = text + " " * (room - json_len(text))
    assert len(orjson.dumps(msg)) == size
    return msg


def small_request(i: int) -> dict[str, Any]:
    """A ``tools/call`` request of ~150 B (the bench harness's smallest workload)."""
    return {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": "get_weather", "arguments": {"location": "San Francisco, CA", "units": "metric"}},
    }


COMPRESS_MESSAGES: dict[str, dict[str, Any]] = {
    "6KB": tools_list(1),
    "64KB": text_message(64_000),
    "1MB": text_message(1_000_000),
}


def keyring() -> rpcwire.Keyring:
    return rpcwire.Keyring({KEY_ID: KEY}, active=KEY_ID)


def split_frames(data: bytes) -> list[bytes]:
    """The payloads of a ``length``-framed stream."""
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack_from(">I", data, at)
        out.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    assert at == len(data)
    return out


def open_envelopes(data: bytes) -> list[Any]:
    """Decode rpcwire's encrypted frames with ``cryptography``, straight from docs/wire-format.md 3."""
    aead, msgs = AESGCM(KEY), []
    for payload in split_frames(data):
        header = payload[:SEALED_HEADER]
        assert header[:2] == b"\xfb\x01"
        flags = header[2]
        assert flags & 0x04, "not encrypted"
        assert int.from_bytes(header[3:7], "big") == KEY_ID
        body = aead.decrypt(header[7:19], payload[SEALED_HEADER:], header)
        method = flags & 0x03
        if method == 1:
            body = lz4.frame.decompress(body)
        elif method == 2:
            body = brotli.decompress(body)
        if flags & 0x08:
            records = split_frames(body)  # records are u32be-length-prefixed, like the framing
            assert len(records) > 1
            msgs += [orjson.loads(r) for r in records]
        else:
            msgs.append(orjson.loads(body))
    return msgs


def open_user_frames(data: bytes) -> list[Any]:
    """Decode the baseline's frames: ``u32be(len) || nonce || AESGCM ciphertext``."""
    aead = AESGCM(KEY)
    return [orjson.loads(aead.decrypt(p[:12], p[12:], None)) for p in split_frames(data)]


# --------------------------------------------------------------------------------------------------
# AES-256-GCM


@pytest.mark.parametrize("lib", ["rpcwire", "orjson+cryptography"])
@pytest.mark.parametrize("size", SEAL_SIZES)
def test_seal(benchmark: Any, size: str, lib: str) -> None:
    msg = text_message(SEAL_SIZES[size])
    benchmark.group = f"seal {size}"
    benchmark.extra_info["lib"] = lib
    benchmark.extra_info["bytes"] = SEAL_SIZES[size]

    run: Callable[[], bytes]
    if lib == "rpcwire":
        codec = rpcwire.Codec(framing="length", keyring=keyring())
        run = lambda: codec.encode(msg)  # noqa: E731
        check = open_envelopes
    else:
        encrypt, dumps, urandom = AESGCM(KEY).encrypt, orjson.dumps, os.urandom

        def run() -> bytes:
            nonce = urandom(12)
            sealed = encrypt(nonce, dumps(msg), None)
            return b"".join((_pack(len(sealed) + 12), nonce, sealed))

        check = open_user_frames

    result = benchmark(run)
    assert check(result) == [msg]


@pytest.mark.parametrize("lib", ["rpcwire", "cryptography"])
@pytest.mark.parametrize("size", SEAL_SIZES)
def test_seal_bytes(benchmark: Any, size: str, lib: str) -> None:
    msg = text_message(SEAL_SIZES[size])
    payload = orjson.dumps(msg)
    benchmark.group = f"seal-bytes {size}"
    benchmark.extra_info["lib"] = lib
    benchmark.extra_info["bytes"] = len(payload)

    if lib == "rpcwire":
        codec = rpcwire.Codec(framing="length", keyring=keyring())
        result = benchmark(codec.encode, payload)
        assert open_envelopes(result) == [msg]
    else:
        encrypt_into, urandom = AESGCM(KEY).encrypt_into, os.urandom
        buf = bytearray(len(payload) + TAG)

        def run() -> bytes:
            nonce = urandom(12)
            encrypt_into(nonce, payload, None, buf)
            return nonce

        nonce = benchmark(run)
        assert orjson.loads(AESGCM(KEY).decrypt(nonce, bytes(buf), None)) == msg


@pytest.mark.parametrize("lib", ["rpcwire-encode_many", "rpcwire-encode", "user-loop"])
@pytest.mark.parametrize("given", ["messages", "bytes"])
def test_seal_batch(benchmark: Any, given: str, lib: str) -> None:
    msgs = [small_request(i) for i in range(BATCH)]
    payloads = [orjson.dumps(m) for m in msgs]
    items: list[Any] = msgs if given == "messages" else payloads
    benchmark.group = f"seal-batch {BATCH}x150B" if given == "messages" else f"seal-batch-bytes {BATCH}x150B"
    user = "orjson+cryptography" if given == "messages" else "cryptography"
    benchmark.extra_info["lib"] = user if lib == "user-loop" else lib
    benchmark.extra_info["messages"] = BATCH
    benchmark.extra_info["bytes"] = sum(len(p) for p in payloads)

    run: Callable[[], bytes]
    check = open_envelopes
    if lib == "rpcwire-encode_many":
        codec = rpcwire.Codec(framing="length", keyring=keyring())
        run = lambda: codec.encode_many(items)  # noqa: E731
    elif lib == "rpcwire-encode":
        codec = rpcwire.Codec(framing="length", keyring=keyring())
        encode = codec.encode
        run = lambda: b"".join([encode(m) for m in items])  # noqa: E731
    else:  # the user's loop: one nonce and one encrypt per message (serializing first when given dicts)
        encrypt, dumps, urandom = AESGCM(KEY).encrypt, orjson.dumps, os.urandom

        def run() -> bytes:
            out = []
            for payload in map(dumps, msgs) if given == "messages" else payloads:
                nonce = urandom(12)
                sealed = encrypt(nonce, payload, None)
                out += (_pack(len(sealed) + 12), nonce, sealed)
            return b"".join(out)

        check = open_user_frames

    result = benchmark(run)
    assert check(result) == msgs


# --------------------------------------------------------------------------------------------------
# lz4 and brotli


#: The 1 MB payload is one log line repeated: brotli packs it 5700x, past the default max_expansion (4096), so
#: a default codec sends it uncompressed. These benches measure compression itself, so both ends lift the budget.
BENCH_EXPANSION = 1 << 20


def user_compress(algo: str) -> Callable[[bytes], bytes]:
    if algo == "lz4":
        return lz4.frame.compress  # type: ignore[no-any-return]
    return lambda data: brotli.compress(data, quality=BROTLI_QUALITY, lgwin=BROTLI_LGWIN)  # type: ignore[no-any-return]


def user_decompress(algo: str) -> Callable[[bytes], bytes]:
    return lz4.frame.decompress if algo == "lz4" else brotli.decompress  # type: ignore[no-any-return]


@pytest.mark.parametrize("lib", ["rpcwire", "orjson+lib"])
@pytest.mark.parametrize("size", COMPRESS_SIZES)
@pytest.mark.parametrize("algo", ALGOS)
def test_compress(benchmark: Any, algo: str, size: str, lib: str) -> None:
    msg = COMPRESS_MESSAGES[size]
    benchmark.group = f"compress {algo} {size}"
    benchmark.extra_info["lib"] = "rpcwire" if lib == "rpcwire" else f"orjson+{algo}"
    benchmark.extra_info["bytes"] = len(orjson.dumps(msg))

    run: Callable[[], bytes]
    if lib == "rpcwire":
        codec = rpcwire.Codec(framing="length", compression=algo, max_expansion=BENCH_EXPANSION)
        run = lambda: codec.encode(msg)  # noqa: E731
    else:
        compress, dumps = user_compress(algo), orjson.dumps

        def run() -> bytes:
            packed = compress(dumps(msg))
            return _pack(len(packed)) + packed

    result = benchmark(run)
    benchmark.extra_info["compressed_bytes"] = len(result)
    if lib == "rpcwire":
        assert result[4:7] == bytes([0xFB, 0x01, 1 if algo == "lz4" else 2]), "not a compressed envelope"
        assert rpcwire.Codec(framing="length", max_expansion=BENCH_EXPANSION).feed(result) == [msg]
    else:
        assert orjson.loads(user_decompress(algo)(split_frames(result)[0])) == msg


@pytest.mark.parametrize("lib", ["rpcwire", "orjson+lib"])
@pytest.mark.parametrize("size", COMPRESS_SIZES)
@pytest.mark.parametrize("algo", ALGOS)
def test_decompress(benchmark: Any, algo: str, size: str, lib: str) -> None:
    msg = COMPRESS_MESSAGES[size]
    benchmark.group = f"decompress {algo} {size}"
    benchmark.extra_info["lib"] = "rpcwire" if lib == "rpcwire" else f"orjson+{algo}"
    benchmark.extra_info["bytes"] = len(orjson.dumps(msg))

    run: Callable[[], Any]
    if lib == "rpcwire":
        codec = rpcwire.Codec(framing="length", max_expansion=BENCH_EXPANSION)
        frame = rpcwire.Codec(framing="length", compression=algo, max_expansion=BENCH_EXPANSION).encode(msg)
        assert frame[4] == 0xFB
        run = lambda: codec.feed(frame)  # noqa: E731
    else:
        packed = user_compress(algo)(orjson.dumps(msg))
        frame = _pack(len(packed)) + packed
        decompress, loads = user_decompress(algo), orjson.loads

        def run() -> Any:
            view = memoryview(frame)
            (n,) = struct.unpack_from(">I", view)
            return [loads(decompress(view[4 : 4 + n]))]

    assert benchmark(run) == [msg]
