"""`python -m benches.manyclients` runs against the real bench servers and reports every server."""

from __future__ import annotations

import pytest

from benches import manyclients


def test_many_clients_against_each_bench_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert manyclients.main(["--clients", "4", "--seconds", "0.2", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    servers, ratios = out.split("rpcwire vs")
    rows = {line.split("|")[1].strip(): line for line in servers.splitlines() if line.startswith("| ")}
    for impl in ("rpcwire", "asyncio", "floor"):
        rate, cpu = (cell.strip() for cell in rows[impl].split("|")[2:4])
        assert float(rate.rstrip("k")) > 0
        assert float(cpu) > 0
    assert "| asyncio | " in ratios
    assert "| floor | " in ratios
