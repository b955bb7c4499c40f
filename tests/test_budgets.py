"""The receive budgets (docs/security.md): what a peer's bytes can make a codec build, inflate or allocate.

Each finding of the hostile-peer review has a test here. The costs are measured in a fresh child process
(peak RSS and CPU time of the one ``feed`` under test, virtual memory from /proc), so nothing else this
test process allocated can hide or inflate them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import brotli
import lz4.frame
import pytest
import rpcwire
from rpcwire import reference

MIB = 2**20


def run_child(code: str, timeout: float = 60) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


#: A child's prologue: build the frame (before measuring), then ``measure(feed)`` reports the peak RSS growth
#: and CPU time of one call, with what it returned or raised.
MEASURE = """
import json, resource, time, brotli, rpcwire
def measure(call):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.process_time()
    try:
        result = call()
        outcome = [type(i).__name__ + ":" + str(getattr(i, "data", "")) for i in result]
    except rpcwire.RpcWireError as exc:
        outcome = [type(exc).__name__ + "!" + str(exc)]
    cpu = time.process_time() - t0
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"rss_mib": grew / 1024, "cpu_s": cpu, "outcome": outcome}))
"""


def length_frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def plain_envelope(code: int, body: bytes) -> bytes:
    """An unencrypted envelope (wire-format 3.1): magic, version, flags (the compression code)."""
    return bytes([0xFB, 1, code]) + body


# --- 1. batch amplification ----------------------------------------------------------------------


def test_the_68_byte_batch_bomb_is_cheap_at_default_settings() -> None:
    """A brotli envelope of ``[1,1,...]`` (a million elements): refused before it is inflated or built."""
    result = run_child(
        MEASURE
        + """
batch = b"[" + b",".join([b"1"] * 1_000_000) + b"]"
frame = (lambda p: len(p).to_bytes(4, "big") + p)(bytes([0xFB, 1, 2]) + brotli.compress(batch, quality=11))
assert len(frame) < 80, len(frame)
codec = rpcwire.Codec(framing="auto")
measure(lambda: codec.feed(frame))
"""
    )
    assert result["rss_mib"] < 10, result
    assert result["cpu_s"] < 0.05, result
    (outcome,) = result["outcome"]
    assert outcome.startswith("FrameTooLarge!"), outcome
    assert "max_expansion" in outcome, outcome


def test_a_batch_over_max_batch_is_one_item_built_from_at_most_max_batch_elements() -> None:
    """Even with the expansion budget lifted, the million-element batch is one InvalidRequest item."""
    result = run_child(
        MEASURE
        + """
batch = b"[" + b",".join([b"1"] * 1_000_000) + b"]"
frame = (lambda p: len(p).to_bytes(4, "big") + p)(bytes([0xFB, 1, 2]) + brotli.compress(batch, quality=11))
codec = rpcwire.Codec(framing="length", max_expansion=10**9)
measure(lambda: codec.feed(frame))
"""
    )
    assert result["outcome"] == ["InvalidRequest:a batch of more than 1024 elements (max_batch)"]
    assert result["rss_mib"] < 10, result


def test_a_4_mb_junk_batch_costs_under_64_mib() -> None:
    result = run_child(
        MEASURE
        + """
frame = b"[" + b",".join([b"1"] * 2_000_000) + b"]\\n"
assert len(frame) > 4_000_000
codec = rpcwire.Codec()
measure(lambda: codec.feed(frame))
"""
    )
    assert result["outcome"] == ["InvalidRequest:a batch of more than 1024 elements (max_batch)"]
    assert result["rss_mib"] < 64, result


@pytest.mark.parametrize("cls", [rpcwire.Codec, reference.Codec])
def test_max_batch_bounds_batches_not_their_elements(cls: Any) -> None:
    msg = b'{"jsonrpc":"2.0","method":"n"}'
    at_limit = b"[" + b",".join([msg] * 3) + b"]\n"
    over = b"[" + b",".join([msg] * 4) + b"]\n"
    codec = cls(max_batch=3)
    assert codec.max_batch == 3
    items = codec.feed(at_limit + over)
    assert items[0] == [{"jsonrpc": "2.0", "method": "n"}] * 3
    assert items[1] == rpcwire.InvalidRequest("a batch of more than 3 elements (max_batch)")
    assert items[1].id is None
    # A params array is not a batch: no budget but max_frame_size.
    big = {"jsonrpc": "2.0", "method": "n", "params": list(range(5000))}
    assert codec.feed(json.dumps(big).encode() + b"\n") == [big]
    # The stream goes on.
    assert codec.feed(msg + b"\n") == [{"jsonrpc": "2.0", "method": "n"}]


@pytest.mark.parametrize("cls", [rpcwire.Codec, reference.Codec])
@pytest.mark.parametrize("compression", [None, "lz4"])
def test_multi_envelopes_hold_at_most_max_batch_records(cls: Any, compression: str | None) -> None:
    ring = rpcwire.Keyring.generate() if compression is None else None
    sender = cls(framing="length", compression=compression, keyring=ring, compress_min_size=0, max_batch=3)
    msgs = [{"jsonrpc": "2.0", "id": i, "method": "tools/call"} for i in range(10)]
    wire = sender.encode_many(msgs)
    frames = 0
    pos = 0
    while pos < len(wire):
        pos += 4 + int.from_bytes(wire[pos : pos + 4], "big")
        frames += 1
    assert frames == 4, "10 records at max_batch=3: envelopes of 3, 3, 3 and 1"
    assert cls(framing="length", keyring=ring, max_batch=3).feed(wire) == msgs
    # A receiver with a smaller budget refuses each over-full envelope as one item, and goes on.
    items = cls(framing="length", keyring=ring, max_batch=2).feed(wire)
    assert items[:3] == [rpcwire.InvalidRequest("multi envelope of more than 2 records (max_batch)")] * 3
    assert items[3:] == msgs[9:]


# --- 2. decompression CPU --------------------------------------------------------------------------


def test_an_89_byte_brotli_frame_inflating_to_16_mib_is_not_parsed() -> None:
    result = run_child(
        MEASURE
        + """
payload = b"{" + b" " * (16 * 2**20 - 40) + b"}"
frame = (lambda p: len(p).to_bytes(4, "big") + p)(bytes([0xFB, 1, 2]) + brotli.compress(payload, quality=11))
assert len(frame) < 100, len(frame)
codec = rpcwire.Codec(framing="auto")
measure(lambda: codec.feed(frame))
"""
    )
    (outcome,) = result["outcome"]
    assert outcome.startswith("FrameTooLarge!"), outcome
    assert "max_expansion 4096" in outcome, outcome
    assert result["rss_mib"] < 10, result
    assert result["cpu_s"] < 0.05, result


@pytest.mark.parametrize("cls", [rpcwire.Codec, reference.Codec])
@pytest.mark.parametrize("method", ["lz4", "brotli"])
def test_max_expansion_is_checked_against_the_compressed_size(cls: Any, method: str) -> None:
    body = b'{"jsonrpc":"2.0","method":"n","params":{"text":"' + b"a" * 20_000 + b'"}}'
    packed = lz4.frame.compress(body) if method == "lz4" else brotli.compress(body, quality=4, lgwin=22)
    ratio = len(body) / len(packed)
    frame = length_frame(plain_envelope(1 if method == "lz4" else 2, packed))
    assert cls(framing="length", max_expansion=int(ratio) + 1).feed(frame) == [json.loads(body)]
    with pytest.raises(rpcwire.FrameTooLarge, match=f"max_expansion {int(ratio) - 1}"):
        cls(framing="length", max_expansion=int(ratio) - 1).feed(frame)


@pytest.mark.parametrize("cls", [rpcwire.Codec, reference.Codec])
def test_senders_never_write_what_their_receivers_refuse(cls: Any) -> None:
    """A body that compresses past max_expansion goes uncompressed, and arrives."""
    msg = {"jsonrpc": "2.0", "id": 1, "result": {"text": " " * 200_000}}
    sender = cls(framing="length", compression="brotli", max_expansion=50)
    wire = sender.encode(msg)
    assert wire[4] != 0xFB, "sent as a plain frame"
    assert cls(framing="length", max_expansion=50).feed(wire) == [msg]
    # The ordinary case still compresses.
    text = {"jsonrpc": "2.0", "id": 1, "result": {"text": json.dumps(list(range(20_000)))}}
    assert len(sender.encode(text)) < len(json.dumps(text)) // 2


@pytest.mark.parametrize("name", ["max_batch", "max_expansion"])
@pytest.mark.parametrize("cls", [rpcwire.Codec, reference.Codec])
def test_budgets_must_be_positive(cls: Any, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        cls(**{name: 0})


def test_the_defaults_agree_everywhere() -> None:
    import inspect

    from rpcwire import _protocol

    codec = rpcwire.Codec()
    ref = reference.Codec()
    assert codec.max_batch == ref.max_batch == reference.DEFAULT_MAX_BATCH == _protocol.DEFAULT_MAX_BATCH == 1024
    assert codec.max_expansion == ref.max_expansion == reference.DEFAULT_MAX_EXPANSION
    assert reference.DEFAULT_MAX_EXPANSION == _protocol.DEFAULT_MAX_EXPANSION == 4096
    params = inspect.signature(rpcwire.Codec).parameters
    assert (params["max_batch"].default, params["max_expansion"].default) == (1024, 4096)
    assert "max_batch=1024, max_expansion=4096" in repr(codec)


# --- 3. pre-allocation -----------------------------------------------------------------------------


def test_300_codecs_holding_a_4_byte_header_add_under_100_mib_of_virtual_memory() -> None:
    result = run_child(
        """
import json, rpcwire
def vm_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1])
codecs = [rpcwire.Codec(framing="length") for _ in range(300)]
before = vm_kib()
for c in codecs:
    assert c.feed((16 * 2**20 - 1).to_bytes(4, "big")) == []
print(json.dumps({"vm_mib": (vm_kib() - before) / 1024, "buffered": sum(c.buffered for c in codecs)}))
"""
    )
    assert result["buffered"] == 1200
    assert result["vm_mib"] < 100, result


@pytest.mark.slow
def test_under_an_address_space_limit_large_frames_are_errors_not_an_abort() -> None:
    """Codecs keep buffering announced 16 MiB frames until the allocator refuses: each refusal is an error
    for that codec (its stream ends), and the process lives on."""
    result = run_child(
        """
import json, resource, rpcwire
def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
chunk = bytes(8 * 2**20)
first = (16 * 2**20 - 1).to_bytes(4, "big") + chunk  # built before the limit: the loop allocates little in Python
second = chunk[: 4 * 2**20]
limit = vm_bytes() + 400 * 2**20
_, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
codecs, errors = [], []
for _ in range(200):
    codec = rpcwire.Codec(framing="length")
    try:
        codec.feed(first)
        codec.feed(second)
    except (rpcwire.FramingError, MemoryError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        if len(errors) >= 5:
            break
        continue
    codecs.append(codec)
resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
# The codec that failed is poisoned; a new one works.
print(json.dumps({"kept": len(codecs), "errors": errors,
                  "after": rpcwire.Codec().feed(b'{"jsonrpc":"2.0","method":"n"}\\n')}))
""",
        timeout=120,
    )
    assert len(result["errors"]) == 5, result
    assert any("out of memory" in e for e in result["errors"]), result["errors"]
    assert 10 < result["kept"] < 60, result
    assert result["after"] == [{"jsonrpc": "2.0", "method": "n"}]


def test_an_idle_connection_keeps_no_big_buffer() -> None:
    """After a 15 MiB frame that spanned many reads, the codec's buffer is released."""
    result = run_child(
        """
import json, rpcwire
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
codec = rpcwire.Codec(framing="length")
payload = b'{"jsonrpc":"2.0","method":"n","params":["' + b"x" * (15 * 2**20) + b'"]}'
wire = len(payload).to_bytes(4, "big") + payload
before = rss_kib()
view = memoryview(wire)
items = []
for i in range(0, len(wire), 256 * 1024):
    items += codec.feed(view[i : i + 256 * 1024])
del items, view, wire, payload
print(json.dumps({"held_mib": (rss_kib() - before) / 1024, "buffered": codec.buffered}))
"""
    )
    assert result["buffered"] == 0
    assert result["held_mib"] < 1, result
