"""Results of a bench run: rows, ratios, the terminal table, the markdown table and the JSON document.

The JSON layout is documented in docs/bench-json-schema.md and described by :data:`JSON_SCHEMA`
(a JSON Schema, draft 2020-12); bump :data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from . import workloads
from .config import BASELINES, BenchConfig, Case
from .modes import Sample, percentiles_us

__all__ = ("JSON_SCHEMA", "SCHEMA_VERSION", "Result", "compute_ratios", "machine_info", "to_json")

SCHEMA_VERSION = 1


@dataclasses.dataclass
class Result:
    """One case's figures over its repeats (medians, and the min/max spread of msg/s)."""

    case: Case
    count: int
    clients: int
    message_bytes: int
    runs_msgs_per_s: list[float]
    msgs_per_s: float
    mb_per_s: float
    latency_us: dict[str, float] | None
    ratios: dict[str, float | None] = dataclasses.field(default_factory=dict)
    #: Median over the runs of the server process's CPU time per message (per round trip in round-trip
    #: modes), in microseconds; None where the server is not a process of its own (memory, stdio, nats).
    server_cpu_us: float | None = None

    @classmethod
    def from_samples(cls, case: Case, samples: Sequence[Sample], count: int, clients: int) -> Result:
        rates = [s.msgs_per_s for s in samples]
        median_rate = statistics.median(rates)
        mb = statistics.median(s.mb_per_s for s in samples)
        latency: dict[str, float] | None = None
        per_run = [percentiles_us(s.latencies_ns) for s in samples if s.latencies_ns]
        if per_run:
            latency = {k: statistics.median(p[k] for p in per_run) for k in per_run[0]}
        if case.mode == "throughput":
            message_bytes = workloads.encoded_size(workloads.payload(case.size))
        else:
            message_bytes = workloads.encoded_size(workloads.response(case.size, 1))
        cpu = [s.server_cpu_s / s.messages * 1e6 for s in samples if s.server_cpu_s is not None and s.messages]
        server_cpu = statistics.median(cpu) if cpu and len(cpu) == len(samples) else None
        return cls(case, count, clients, message_bytes, rates, median_rate, mb, latency, server_cpu_us=server_cpu)

    @property
    def spread(self) -> dict[str, float]:
        return {"min": min(self.runs_msgs_per_s), "max": max(self.runs_msgs_per_s)}

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        return {
            "transport": c.transport,
            "framing": c.framing,
            "compression": c.compression,
            "encrypted": c.encrypted,
            "size": c.size,
            "message_bytes": self.message_bytes,
            "message_kind": workloads.kind_of(c.size),
            "mode": c.mode,
            "impl": c.impl,
            "count": self.count,
            "clients": self.clients,
            "repeats": len(self.runs_msgs_per_s),
            "msgs_per_s": self.msgs_per_s,
            "mb_per_s": self.mb_per_s,
            "spread": self.spread,
            "runs_msgs_per_s": list(self.runs_msgs_per_s),
            "latency_us": self.latency_us,
            "server_cpu_us": self.server_cpu_us,
            "ratios": dict(self.ratios),
        }


def _baseline_key(case: Case, baseline: str) -> tuple[Any, ...]:
    """Which cell of `baseline` a row is compared with.

    reference: the identical setup with the pure-Python codec. asyncio: the same transport, size
    and mode (it speaks plain NDJSON only, so compressed/encrypted rows show what those cost
    against what users write today); floor likewise; nats (which runs over nats only) likewise. mcp: the same size
    and mode over the SDK's stdio transport.
    """
    if baseline == "reference":
        return (case.transport, case.framing, case.compression, case.encrypted, case.size, case.mode)
    if baseline in ("asyncio", "floor", "nats"):
        return (case.transport, case.size, case.mode)
    return (case.size, case.mode)


def paired_ratio(runs: Sequence[float], base_runs: Sequence[float]) -> float:
    """The median over rounds of ``runs[i] / base_runs[i]``: the runner interleaves the cases of a cell, so
    round i of both ran close together in time and share whatever the machine was doing then. Falls back to
    the ratio of the medians when the run counts differ (a case that failed part-way)."""
    if len(runs) == len(base_runs) and all(b > 0 for b in base_runs):
        return statistics.median(a / b for a, b in zip(runs, base_runs, strict=True))
    return statistics.median(runs) / statistics.median(base_runs)


def compute_ratios(results: Iterable[Result], baselines: Sequence[str] = BASELINES) -> None:
    """Fill each row's `ratios`: its msg/s over the matching baseline's (>1: faster), as :func:`paired_ratio`."""
    rows = list(results)
    index: dict[tuple[Any, ...], Result] = {}
    for r in rows:
        if r.case.impl in BASELINES:
            index[(r.case.impl, *_baseline_key(r.case, r.case.impl))] = r
    for r in rows:
        r.ratios = {}
        for b in baselines:
            if b == r.case.impl:
                continue
            base = index.get((b, *_baseline_key(r.case, b)))
            if base is None or base.msgs_per_s <= 0:
                r.ratios[b] = None
            else:
                r.ratios[b] = paired_ratio(r.runs_msgs_per_s, base.runs_msgs_per_s)


def _git_commit() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(loop: str) -> dict[str, Any]:
    """The environment a run measured: CPU, cores, OS, Python, loop, versions, commit, date."""
    import rpcwire

    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": sys.implementation.name,
        "loop": loop,
        "rpcwire_version": rpcwire.__version__,
        "git_commit": _git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {d: _version(d) for d in ("orjson", "mcp", "uvloop", "lz4", "brotli", "cryptography", "nats-py")},
    }


def to_json(
    results: Sequence[Result],
    config: BenchConfig,
    machine: dict[str, Any],
    *,
    complete: bool,
    errors: Sequence[dict[str, Any]],
    argv: Sequence[str],
    elapsed_s: float,
) -> dict[str, Any]:
    """The JSON document of a run (see docs/bench-json-schema.md)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "rpcwire bench",
        "argv": list(argv),
        "complete": complete,
        "elapsed_s": round(elapsed_s, 3),
        "machine": machine,
        "config": {
            "transports": list(config.transports),
            "framings": list(config.framings),
            "compressions": list(config.compressions),
            "encrypt": list(config.encrypt),
            "sizes": list(config.sizes),
            "modes": list(config.modes),
            "baselines": list(config.baselines),
            "count": config.count,
            "clients": config.clients,
            "repeat": config.repeat,
            "warmup": config.warmup,
            "quick": config.quick,
        },
        "results": [r.to_dict() for r in results],
        "errors": list(errors),
    }


def write_json(path: str, doc: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)


# --- text output ----------------------------------------------------------------------------------


def _fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def _fmt_size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:g} MB"
    if n >= 1000:
        return f"{n / 1e3:g} KB"
    return f"{n} B"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _fmt_us(lat: dict[str, float] | None, key: str) -> str:
    if not lat or key not in lat:
        return "-"
    v = lat[key]
    return f"{v / 1000:.2f} ms" if v >= 10_000 else f"{v:.0f}"


def _setup_label(c: Case) -> str:
    parts = [c.transport, c.framing]
    if c.compression != "none":
        parts.append(c.compression)
    if c.encrypted:
        parts.append("aes")
    return " ".join(parts)


def print_table(results: Sequence[Result], baselines: Sequence[str], *, file: Any = None, title: str = "") -> None:
    """The results as a rich table on stdout (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, width=200 if not (file or sys.stdout).isatty() else None)
    table = Table(title=title or None, show_lines=False)
    for name, justify in (
        ("mode", "left"),
        ("setup", "left"),
        ("size", "right"),
        ("impl", "left"),
        ("msg/s", "right"),
        ("spread", "right"),
        ("MB/s", "right"),
        ("p50 us", "right"),
        ("p99 us", "right"),
        ("p99.9 us", "right"),
        ("srv CPU us", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for b in baselines:
        table.add_column(f"vs {b}", justify="right")
    for r in results:
        c = r.case
        spread = r.spread
        table.add_row(
            c.mode,
            _setup_label(c),
            _fmt_size(c.size),
            c.impl,
            _fmt_rate(r.msgs_per_s),
            f"{_fmt_rate(spread['min'])}-{_fmt_rate(spread['max'])}",
            f"{r.mb_per_s:.1f}",
            _fmt_us(r.latency_us, "p50"),
            _fmt_us(r.latency_us, "p99"),
            _fmt_us(r.latency_us, "p99_9"),
            "-" if r.server_cpu_us is None else f"{r.server_cpu_us:.2f}",
            *(_fmt_ratio(r.ratios.get(b)) if b != c.impl else "" for b in baselines),
        )
    console.print(table)


def markdown_table(results: Sequence[Result], baselines: Sequence[str]) -> str:
    """A README-ready markdown table: rpcwire rows, msg/s, p50 and the ratio to each baseline."""
    cols = ["mode", "setup", "size", "rpcwire msg/s", "p50 us", *(f"vs {b}" for b in baselines)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in results:
        c = r.case
        if c.impl != "rpcwire":
            continue
        cells = [
            c.mode,
            _setup_label(c),
            _fmt_size(c.size),
            _fmt_rate(r.msgs_per_s),
            _fmt_us(r.latency_us, "p50"),
            *(_fmt_ratio(r.ratios.get(b)) for b in baselines),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}

#: JSON Schema (draft 2020-12) of the `--json` document; docs/bench-json-schema.md explains each field.
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rpcwire bench results",
    "type": "object",
    "required": ["schema_version", "tool", "argv", "complete", "elapsed_s", "machine", "config", "results", "errors"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "tool": {"const": "rpcwire bench"},
        "argv": {"type": "array", "items": {"type": "string"}},
        "complete": {"type": "boolean"},
        "elapsed_s": _NUM,
        "machine": {
            "type": "object",
            "required": [
                "cpu_model",
                "cpu_count",
                "platform",
                "python",
                "python_implementation",
                "loop",
                "rpcwire_version",
                "git_commit",
                "date",
                "versions",
            ],
            "properties": {
                "cpu_model": {"type": "string"},
                "cpu_count": {"type": ["integer", "null"]},
                "platform": {"type": "string"},
                "python": {"type": "string"},
                "python_implementation": {"type": "string"},
                "loop": {"enum": ["asyncio", "uvloop"]},
                "rpcwire_version": {"type": "string"},
                "git_commit": {"type": ["string", "null"]},
                "date": {"type": "string"},
                "versions": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            },
        },
        "config": {
            "type": "object",
            "required": [
                "transports",
                "framings",
                "compressions",
                "encrypt",
                "sizes",
                "modes",
                "baselines",
                "count",
                "clients",
                "repeat",
                "warmup",
                "quick",
            ],
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "transport",
                    "framing",
                    "compression",
                    "encrypted",
                    "size",
                    "message_bytes",
                    "message_kind",
                    "mode",
                    "impl",
                    "count",
                    "clients",
                    "repeats",
                    "msgs_per_s",
                    "mb_per_s",
                    "spread",
                    "runs_msgs_per_s",
                    "latency_us",
                    "ratios",
                ],
                "properties": {
                    "transport": {"enum": ["memory", "stdio", "unix", "tcp", "nats"]},
                    "framing": {"enum": ["ndjson", "length", "content-length"]},
                    "compression": {"enum": ["none", "lz4", "brotli"]},
                    "encrypted": {"type": "boolean"},
                    "size": {"type": "integer", "minimum": 1},
                    "message_bytes": {"type": "integer", "minimum": 1},
                    "message_kind": {"type": "string"},
                    "mode": {"enum": ["throughput", "roundtrip", "concurrent"]},
                    "impl": {"enum": ["rpcwire", "reference", "asyncio", "floor", "mcp", "nats"]},
                    "count": {"type": "integer", "minimum": 1},
                    "clients": {"type": "integer", "minimum": 1},
                    "repeats": {"type": "integer", "minimum": 1},
                    "msgs_per_s": _NUM,
                    "mb_per_s": _NUM,
                    "spread": {
                        "type": "object",
                        "required": ["min", "max"],
                        "additionalProperties": False,
                        "properties": {"min": _NUM, "max": _NUM},
                    },
                    "runs_msgs_per_s": {"type": "array", "items": _NUM, "minItems": 1},
                    "latency_us": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["p50", "p90", "p99", "p99_9"],
                                "additionalProperties": False,
                                "properties": {"p50": _NUM, "p90": _NUM, "p99": _NUM, "p99_9": _NUM},
                            },
                        ]
                    },
                    "server_cpu_us": _NUM_OR_NULL,
                    "ratios": {
                        "type": "object",
                        "propertyNames": {"enum": ["reference", "asyncio", "floor", "mcp", "nats"]},
                        "additionalProperties": _NUM_OR_NULL,
                    },
                },
            },
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["case", "error"],
                "properties": {"case": {"type": "string"}, "error": {"type": "string"}},
            },
        },
    },
}
