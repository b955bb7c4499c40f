"""pytest-benchmark: the codec against what a Python user would write, in one run.

Groups are ``<operation> <framing> <size>``; each holds one benchmark per library
(``benchmark.extra_info["lib"]``):

- decode: ``rpcwire`` (``Codec.feed`` on 64 KiB chunks), ``reference`` (``reference.Codec.feed`` on
  the same chunks) and ``orjson-only`` (only ``orjson.loads`` on each already-split frame: no
  splitting, no buffering, no validation -- a floor for any Python implementation);
- encode: ``rpcwire`` (``Codec.encode_many``), ``reference`` (``reference.Codec.encode_many``) and
  ``orjson-loop`` (``b"".join(orjson.dumps(m) + b"\\n" ...)``, or the length-prefixed equivalent).

``pytest benches`` (``--benchmark-disable`` in addopts) is a smoke run that checks every callable's
result; ``make bench`` measures. Ratios: see benches/README.md.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import rpcwire
from rpcwire import reference

from benches.conftest import CHUNK, ENCODE_BATCHES, MESSAGES, SIZES

FRAMINGS = ("ndjson", "length")
DECODERS = ("rpcwire", "reference", "orjson-only")
ENCODERS = ("rpcwire", "reference", "orjson-loop")


def frames(framing: str, msgs: list[Any]) -> tuple[bytes, list[bytes]]:
    """The wire bytes of ``msgs`` in ``framing`` and the list of their JSON payloads."""
    payloads = [orjson.dumps(m) for m in msgs]
    if framing == "ndjson":
        return b"".join(p + b"\n" for p in payloads), payloads
    return b"".join(struct.pack(">I", len(p)) + p for p in payloads), payloads


@pytest.mark.parametrize("lib", DECODERS)
@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("size", SIZES)
def test_decode(benchmark: Any, size: str, framing: str, lib: str) -> None:
    msgs = MESSAGES[size]
    data, payloads = frames(framing, msgs)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    benchmark.group = f"decode {framing} {size}"
    benchmark.extra_info["lib"] = lib
    benchmark.extra_info["messages"] = len(msgs)
    benchmark.extra_info["bytes"] = len(data)

    run: Callable[[], list[Any]]
    if lib == "orjson-only":
        loads = orjson.loads

        def run() -> list[Any]:
            return [loads(p) for p in payloads]

    else:
        codec = (rpcwire.Codec if lib == "rpcwire" else reference.Codec)(framing=framing)

        def run() -> list[Any]:
            out: list[Any] = []
            for chunk in chunks:
                out += codec.feed(chunk)
            return out

    result = benchmark(run)
    assert len(result) == len(msgs)
    assert result[-1] == msgs[-1]


@pytest.mark.parametrize("lib", ENCODERS)
@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("size", SIZES)
def test_encode_many(benchmark: Any, size: str, framing: str, lib: str) -> None:
    msgs = ENCODE_BATCHES[size]
    benchmark.group = f"encode_many {framing} {size}"
    benchmark.extra_info["lib"] = lib
    benchmark.extra_info["messages"] = len(msgs)

    run: Callable[[], bytes]
    if lib == "orjson-loop":
        dumps, pack = orjson.dumps, struct.Struct(">I").pack
        if framing == "ndjson":

            def run() -> bytes:
                return b"".join([dumps(m) + b"\n" for m in msgs])

        else:

            def run() -> bytes:
                out = []
                for m in msgs:
                    p = dumps(m)
                    out.append(pack(len(p)))
                    out.append(p)
                return b"".join(out)

    else:
        codec = (rpcwire.Codec if lib == "rpcwire" else reference.Codec)(framing=framing)

        def run() -> bytes:
            return codec.encode_many(msgs)  # type: ignore[no-any-return]

    result = benchmark(run)
    assert result == frames(framing, msgs)[0]


def test_paired_ratios_report(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m benches.paired` (the interleaved ratios of the same comparisons) runs and prints a row per case."""
    from benches import paired

    assert paired.main(["--rounds", "2", "--size", "200B"]) == 0
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| decode") or line.startswith("| encode")
    ]
    assert [row.split("|")[1:3] for row in rows] == [
        [" decode ", " 200B "],
        [" decode (split) ", " 200B "],
        [" encode_many ", " 200B "],
    ]
    for row in rows:
        median, best = (float(cell.strip().rstrip("x")) for cell in row.split("|")[3:5])
        assert median > 0
        assert best > 0


def test_ab_compares_two_copies_of_the_build(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m benches.ab` loads two builds side by side (here two copies of this one) and prints a row per
    operation and size."""
    import shutil

    from rpcwire import _core

    from benches import ab

    copies = [str(shutil.copy(_core.__file__, tmp_path / f"{tag}.so")) for tag in "ab"]
    assert ab.main([*copies, "--rounds", "2", "--size", "200B"]) == 0
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| decode") or "encode_many" in line
    ]
    assert len(rows) == 2
