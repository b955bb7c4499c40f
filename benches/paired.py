"""The codec goals of issue 2 as paired ratios: ``python -m benches.paired [--rounds N]``.

pytest-benchmark (``test_bench_codec.py``) runs each benchmark to the end before the next starts, so on a
shared machine a slow spell can land on one side of a ratio only. Here the two callables of a comparison
alternate, round after round (GC off, the same data and callables as the pytest-benchmark suite), and the
ratio printed is the median of the per-round ratios, with the ratio of the fastest rounds beside it.
>1 means rpcwire is faster.

- ``decode``: ``Codec.feed`` of the ndjson stream in 64 KiB chunks vs ``orjson.loads`` of each
  already-split line (no splitting, buffering or validation);
- ``decode (split)``: the same ``Codec.feed`` vs the loop users write for such a stream: each chunk appended to a
  buffer, ``split(b"\\n")``, the tail kept for the next chunk, ``orjson.loads`` of each line;
- ``encode_many``: ``Codec.encode_many`` of the batch vs ``b"".join([orjson.dumps(m) + b"\\n" ...])``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import rpcwire

from benches.conftest import CHUNK, ENCODE_BATCHES, MESSAGES, SIZES


def paired(fast: Callable[[], Any], base: Callable[[], Any], rounds: int) -> tuple[float, float]:
    """(median of per-round base/fast time ratios, fastest base / fastest fast), alternating who goes first."""
    ratios: list[float] = []
    fast_times: list[float] = []
    base_times: list[float] = []
    clock = time.perf_counter
    for i in range(rounds):
        order = ((fast, fast_times), (base, base_times)) if i % 2 else ((base, base_times), (fast, fast_times))
        for fn, times in order:
            t0 = clock()
            fn()
            times.append(clock() - t0)
        ratios.append(base_times[-1] / fast_times[-1])
    return statistics.median(ratios), min(base_times) / min(fast_times)


def comparisons(size: str) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """The rpcwire callable and its baseline for each operation at `size`."""
    codec = rpcwire.Codec(framing="ndjson")
    stream = MESSAGES[size]
    payloads = [orjson.dumps(m) for m in stream]
    data = b"".join(p + b"\n" for p in payloads)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    batch = ENCODE_BATCHES[size]
    loads, dumps = orjson.loads, orjson.dumps

    def decode() -> list[Any]:
        out: list[Any] = []
        for chunk in chunks:
            out += codec.feed(chunk)
        return out

    def split_loads() -> list[Any]:
        out: list[Any] = []
        rest = b""
        for chunk in chunks:
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            out += [loads(line) for line in lines]
        return out

    assert decode() == stream == split_loads()
    return {
        "decode": (decode, lambda: [loads(p) for p in payloads]),
        "decode (split)": (decode, split_loads),
        "encode_many": (lambda: codec.encode_many(batch), lambda: b"".join([dumps(m) + b"\n" for m in batch])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.paired", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="alternating rounds per comparison (default 200)")
    parser.add_argument("--size", default=",".join(SIZES), help=f"comma-separated sizes (default {','.join(SIZES)})")
    args = parser.parse_args(argv)
    gc.disable()
    out = sys.stdout
    out.write("| operation | size | paired ratio (median) | ratio of fastest rounds |\n|---|---|---|---|\n")
    for size in args.size.split(","):
        for name, (fast, base) in comparisons(size).items():
            rounds = args.rounds if size != "1MB" else max(20, args.rounds // 4)
            median, best = paired(fast, base, rounds)
            out.write(f"| {name} | {size} | {median:.2f}x | {best:.2f}x |\n")
            out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
