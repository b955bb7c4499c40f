"""`--plot FILE.png`: throughput and latency charts with matplotlib (extra: ``rpcwire[plot]``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .report import Result

__all__ = ("plot_results",)

_COLORS = {"rpcwire": "#d95f02", "reference": "#7570b3", "asyncio": "#1b9e77", "mcp": "#666666"}


def _setup(r: Result) -> str:
    c = r.case
    parts = [c.transport, c.framing]
    if c.compression != "none":
        parts.append(c.compression)
    if c.encrypted:
        parts.append("aes")
    return " ".join(parts)


def _size(n: int) -> str:
    return f"{n / 1e6:g}MB" if n >= 1_000_000 else f"{n / 1e3:g}KB" if n >= 1000 else f"{n}B"


def plot_results(results: Sequence[Result], path: str, title: str = "") -> None:
    """Write a PNG: one bar chart of msg/s per mode (log scale), and p50/p99 round-trip latency.

    Raises:
        ImportError: matplotlib is not installed (the CLI checks first and says so clearly).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ("throughput", "roundtrip", "concurrent") if any(r.case.mode == m for r in results)]
    lat_rows = [r for r in results if r.latency_us and r.case.mode == "roundtrip"]
    n_axes = len(modes) + (1 if lat_rows else 0)
    fig, axes_any = plt.subplots(n_axes, 1, figsize=(12, 3.6 * n_axes), squeeze=False)
    axes: list[Any] = [row[0] for row in axes_any]
    for ax, mode in zip(axes, modes, strict=False):
        rows = [r for r in results if r.case.mode == mode]
        _bars(ax, rows, lambda r: r.msgs_per_s, "msg/s (log)")
        ax.set_title(f"{mode}: messages per second (higher is better)")
        ax.set_yscale("log")
    if lat_rows:
        ax = axes[-1]
        _bars(ax, lat_rows, lambda r: (r.latency_us or {}).get("p50", 0.0), "p50 us (log); tick: p99")
        for i, r in enumerate(lat_rows):
            p99 = (r.latency_us or {}).get("p99")
            if p99:
                ax.plot([i - 0.35, i + 0.35], [p99, p99], color="black", linewidth=1)
        ax.set_title("round trip latency: p50 bars, p99 ticks (lower is better)")
        ax.set_yscale("log")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _bars(ax: Any, rows: Sequence[Result], value: Any, ylabel: str) -> None:
    labels = [f"{_setup(r)}\n{_size(r.case.size)}" for r in rows]
    heights = [max(float(value(r)), 1e-9) for r in rows]
    colors = [_COLORS.get(r.case.impl, "#999999") for r in rows]
    ax.bar(range(len(rows)), heights, color=colors)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=6, rotation=60, ha="right")
    ax.set_ylabel(ylabel)
    seen: dict[str, Any] = {}
    for r, c in zip(rows, colors, strict=True):
        seen.setdefault(r.case.impl, c)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=k) for k, c in seen.items()], fontsize=7, loc="upper right")
