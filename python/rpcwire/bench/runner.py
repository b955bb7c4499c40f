"""The matrix loop of `rpcwire bench` (being written)."""

from __future__ import annotations

import argparse

from .config import BenchConfig

__all__ = ("run_from_args",)


def run_from_args(args: argparse.Namespace) -> int:
    """Run `rpcwire bench` with parsed options; returns the exit status."""
    BenchConfig.from_args(args)
    return 0
