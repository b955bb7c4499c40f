"""Two builds of the extension, side by side in one process: ``python -m benches.ab A.so B.so [--size ...]``.

Ratios against orjson (``benches.paired``) move by up to 10 % between processes and hours on a shared VM with
the same build, more than most codec changes are worth. Loading both builds into one process, as modules of
their own, and alternating them round after round leaves mostly the change: two copies of one build measure
0.99-1.00 here, and a single run can stray by a few percent, so run it both ways round. Build each with
``make build-prod`` and copy ``python/rpcwire/_core*.so`` aside first.

Prints, per size, the median over rounds of B's time / A's time for ``Codec.feed`` of the ndjson stream in
64 KiB chunks and for ``encode_many`` of the batch (>1: A is faster).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
from types import ModuleType
from typing import Any

import orjson

from benches.conftest import CHUNK, ENCODE_BATCHES, MESSAGES, SIZES
from benches.paired import paired


def load(tag: str, path: str) -> ModuleType:
    """The extension at `path` as module ``<tag>._core`` (the init function is named after the last part)."""
    spec = importlib.util.spec_from_file_location(f"{tag}._core", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"not an extension module: {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(a: ModuleType, b: ModuleType, size: str, rounds: int) -> list[tuple[str, float]]:
    """(operation, B time / A time) for decode and encode_many at `size`, after checking both builds agree."""
    data = b"".join(orjson.dumps(m) + b"\n" for m in MESSAGES[size])
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    batch = ENCODE_BATCHES[size]
    codec_a, codec_b = a.Codec(framing="ndjson"), b.Codec(framing="ndjson")

    def decode(codec: Any) -> list[Any]:
        items: list[Any] = []
        for chunk in chunks:
            items += codec.feed(chunk)
        return items

    if not decode(codec_a) == decode(codec_b) == MESSAGES[size]:
        raise SystemExit(f"the two builds decode the {size} stream differently")
    if codec_a.encode_many(batch) != codec_b.encode_many(batch):
        raise SystemExit(f"the two builds encode the {size} batch differently")
    return [
        ("decode", paired(lambda: decode(codec_a), lambda: decode(codec_b), rounds)[0]),
        ("encode_many", paired(lambda: codec_a.encode_many(batch), lambda: codec_b.encode_many(batch), rounds)[0]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the first build's _core*.so")
    parser.add_argument("b", help="the second build's _core*.so")
    parser.add_argument("--size", default=",".join(SIZES), help=f"comma-separated sizes (default {','.join(SIZES)})")
    parser.add_argument("--rounds", type=int, default=300, help="alternating rounds per comparison (default 300)")
    args = parser.parse_args(argv)
    a, b = load("build_a", args.a), load("build_b", args.b)
    gc.disable()
    out = sys.stdout
    out.write("| operation | size | B time / A time (median) |\n|---|---|---|\n")
    for size in args.size.split(","):
        rounds = args.rounds if size != "1MB" else max(20, args.rounds // 4)
        for name, ratio in compare(a, b, size, rounds):
            out.write(f"| {name} | {size} | {ratio:.3f} |\n")
            out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
