"""A smoke run of benches/tls.py: every set-up completes its workload and the table is printed."""

from __future__ import annotations

import asyncio

import pytest

from benches import tls


def test_tls_bench_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(tls.main(rounds=1, round_trips=20, messages=200))
    out = capsys.readouterr().out
    for setup in ("plaintext", "TLS", "session", "stream form"):
        assert f"| {setup} |" in out
    assert "session vs stream form" in out
