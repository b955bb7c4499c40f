"""Smoke test of ``python -m benches.glue``: every pairing runs and answers each request with its own id."""

from __future__ import annotations

import pytest

from benches import glue


def test_glue_runs_every_pairing(capsys: pytest.CaptureFixture[str]) -> None:
    assert glue.main(["--count", "30", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pairs = {(line.split()[1], line.split()[3]) for line in lines}
    assert pairs == {(c, s) for c in glue.KINDS for s in glue.KINDS}
    assert any("1.000x the minimal pair" in line for line in lines)
