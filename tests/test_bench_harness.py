"""`rpcwire bench`: tiny real runs of every mode, the JSON schema, the plot, markdown, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from rpcwire import cli
from rpcwire.bench import workloads
from rpcwire.bench.baselines import ServerLogic
from rpcwire.bench.report import JSON_SCHEMA, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One small real run: memory and unix, every mode, rpcwire + reference + asyncio, JSON + plot."""
    out = tmp_path_factory.mktemp("bench")
    json_path, png_path = out / "bench.json", out / "bench.png"
    argv = [
        "-m",
        "rpcwire",
        "bench",
        "--transport",
        "memory,unix",
        "--mode",
        "throughput,roundtrip,concurrent",
        "--size",
        "150,6000",
        "--count",
        "40",
        "--clients",
        "3",
        "--repeat",
        "2",
        "--baseline",
        "reference,asyncio",
        "--json",
        str(json_path),
        "--plot",
        str(png_path),
        "--markdown",
        "--no-progress",
    ]
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=110, cwd=out)
    return {
        "proc": proc,
        "json": json.loads(json_path.read_text()) if json_path.exists() else None,
        "png": png_path,
    }


def test_tiny_run_of_every_mode_on_memory_and_unix(tiny_run: dict[str, Any]) -> None:
    proc = tiny_run["proc"]
    assert proc.returncode == 0, proc.stderr
    doc = tiny_run["json"]
    assert doc is not None
    assert doc["complete"] is True
    assert doc["errors"] == []
    rows = doc["results"]
    seen = {(r["impl"], r["transport"], r["mode"], r["size"]) for r in rows}
    for transport in ("memory", "unix"):
        for mode in ("throughput", "roundtrip", "concurrent"):
            for size in (150, 6000):
                assert ("rpcwire", transport, mode, size) in seen
                assert ("reference", transport, mode, size) in seen
    # the asyncio baseline has no memory transport; it runs on unix
    assert not any(r["impl"] == "asyncio" and r["transport"] == "memory" for r in rows)
    assert ("asyncio", "unix", "roundtrip", 150) in seen
    for r in rows:
        assert r["msgs_per_s"] > 0
        assert r["repeats"] == 2
        assert len(r["runs_msgs_per_s"]) == 2
        assert r["spread"]["min"] <= r["msgs_per_s"] <= r["spread"]["max"]
        if r["mode"] == "throughput":
            assert r["latency_us"] is None
            assert r["count"] == 40
        else:
            lat = r["latency_us"]
            assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"]
        if r["mode"] == "concurrent":
            assert r["clients"] == 3
        # the server's CPU time per message: measured for the server child of unix, not for memory (in-process)
        if r["transport"] == "unix":
            assert r["server_cpu_us"] > 0
        else:
            assert r["server_cpu_us"] is None
    # ratios: every rpcwire row has a reference ratio; unix rows also one against asyncio
    for r in rows:
        if r["impl"] != "rpcwire":
            continue
        assert r["ratios"]["reference"] > 0
        if r["transport"] == "unix":
            assert r["ratios"]["asyncio"] > 0
        else:
            assert r["ratios"]["asyncio"] is None


def test_ratios_are_computed_from_the_rows(tiny_run: dict[str, Any]) -> None:
    rows = tiny_run["json"]["results"]
    by_key = {(r["impl"], r["transport"], r["mode"], r["size"]): r for r in rows}
    for (impl, transport, mode, size), r in by_key.items():
        if impl != "rpcwire":
            continue
        ref = by_key[("reference", transport, mode, size)]
        # the median of the per-round ratios (rounds interleave the implementations of a cell)
        paired = statistics.median(a / b for a, b in zip(r["runs_msgs_per_s"], ref["runs_msgs_per_s"], strict=True))
        assert r["ratios"]["reference"] == pytest.approx(paired)


def test_json_matches_the_documented_schema(tiny_run: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = tiny_run["json"]
    assert doc["schema_version"] == SCHEMA_VERSION
    jsonschema.validate(doc, JSON_SCHEMA)
    machine = doc["machine"]
    assert machine["cpu_count"] == os.cpu_count()
    assert machine["python"] == sys.version.split()[0]
    assert machine["loop"] == "asyncio"
    # The schema in the docs is the schema in the code.
    text = (ROOT / "docs" / "bench-json-schema.md").read_text()
    block = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == JSON_SCHEMA


def test_json_schema_rejects_a_broken_document(tiny_run: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(json.dumps(tiny_run["json"]))
    del doc["results"][0]["msgs_per_s"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, JSON_SCHEMA)


def test_table_on_stdout_and_markdown(tiny_run: dict[str, Any]) -> None:
    out = tiny_run["proc"].stdout
    assert "rpcwire bench" in out
    assert "vs reference" in out
    md = [line for line in out.splitlines() if line.startswith("|")]
    assert md[0].startswith("| mode | setup | size | rpcwire msg/s | p50 us | vs reference | vs asyncio |")
    # one markdown row per rpcwire result
    rpcwire_rows = [r for r in tiny_run["json"]["results"] if r["impl"] == "rpcwire"]
    assert len(md) == 2 + len(rpcwire_rows)


def test_plot_is_a_png_matplotlib_reads(tiny_run: dict[str, Any]) -> None:
    png: Path = tiny_run["png"]
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image

    image = matplotlib.image.imread(str(png))
    assert image.ndim == 3
    assert image.shape[0] > 200
    assert image.shape[1] > 200


def test_plot_without_matplotlib_is_a_clear_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "matplotlib" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    rc, out, err = _run(["bench", "--quick", "--plot", "x.png"], capsys)
    assert rc == 2
    assert out == ""
    assert "pip install 'rpcwire[plot]'" in err


# --- the server logic and workloads every implementation shares ------------------------------------


def test_server_logic_counts_then_acks_and_answers_requests() -> None:
    logic = ServerLogic()
    assert logic.on_message(workloads.expect_request(3)) is None
    assert logic.on_message(workloads.payload(150)) is None
    assert logic.on_message(workloads.payload(6000)) is None
    ack = logic.on_message(workloads.payload(150))
    assert ack == {"jsonrpc": "2.0", "id": "bench-expect", "result": {"count": 3}}
    answer = logic.on_message(workloads.request(6000, 42))
    assert answer is not None
    assert answer["id"] == 42
    assert abs(workloads.encoded_size(answer) - 6000) < 400
    assert logic.on_message({"jsonrpc": "2.0", "method": "notify"}) is None


@pytest.mark.parametrize("size", [150, 6000, 64_000, 1_000_000])
def test_workload_sizes_and_shapes(size: int) -> None:
    msg = workloads.payload(size)
    assert abs(workloads.encoded_size(msg) - size) <= max(8, size // 20)
    resp = workloads.response(size, 1)
    assert abs(workloads.encoded_size(resp) - size) <= max(8, size // 20)
    assert workloads.encoded_size(workloads.request(size, 1)) < 200
    kind = workloads.kind_of(size)
    if size == 150:
        assert msg["method"] == "tools/call"
    elif size == 6000:
        assert "tools" in msg["result"]
        assert kind == "tools/list result"
    else:
        assert msg["result"]["contents"][0]["text"]
        assert kind == "resources/read result"


# --- Ctrl-C -----------------------------------------------------------------------------------------


def _peer_processes(marker: str, exclude: int) -> list[int]:
    """Processes (other than `exclude`, the bench itself) whose environment carries `marker`."""
    psutil = pytest.importorskip("psutil")
    return [
        proc.pid
        for proc in psutil.process_iter(["pid"])
        if proc.pid != exclude and _environ(proc).get("RPCWIRE_BENCH_TEST_MARKER") == marker
    ]


def _environ(proc: Any) -> dict[str, str]:
    import psutil

    try:
        env: dict[str, str] = proc.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return {}
    return env


def test_ctrl_c_stops_cleanly_and_reports_what_finished(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    json_path = tmp_path / "partial.json"
    env = dict(os.environ, RPCWIRE_BENCH_TEST_MARKER=marker)
    # unix first: its server child is alive from the first case on, however slow the machine is
    argv = [sys.executable, "-m", "rpcwire", "-v", "bench", "--transport", "unix,tcp,memory", "--size", "150,6000"]
    argv += ["--count", "2000", "--repeat", "5", "--baseline", "reference,asyncio", "--no-progress"]
    argv += ["--json", str(json_path)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stderr is not None
        # wait for the first unix case to finish, so a server child process is alive when interrupted
        deadline = time.monotonic() + 90
        lines = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if " unix " in line and "msg/s" in line:
                break
        assert any(" unix " in line for line in lines), "".join(lines)
        assert _peer_processes(marker, proc.pid), "expected a live bench server child"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out
    assert "rpcwire" in out
    assert "Traceback" not in err
    doc = json.loads(json_path.read_text())
    assert doc["complete"] is False
    assert doc["results"], "the cases that finished are kept"
    # every child process is gone
    deadline = time.monotonic() + 10
    while _peer_processes(marker, proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _peer_processes(marker, proc.pid) == []


def test_servers_that_iterate(tmp_path: Path) -> None:
    """``--server-reads iterate``: the rpcwire and reference servers read with ``async for`` and answer with
    ``await t.send``, in the child (unix) and in process (memory); the figures come out as with ``handle``."""
    json_path = tmp_path / "bench.json"
    argv = ["-m", "rpcwire", "bench", "--transport", "memory,unix", "--mode", "throughput,roundtrip,concurrent"]
    argv += ["--size", "150", "--count", "30", "--clients", "2", "--repeat", "1", "--baseline", "reference"]
    argv += ["--server-reads", "iterate", "--json", str(json_path), "--no-progress"]
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=110, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(json_path.read_text())
    assert doc["errors"] == []
    assert "iterate" in doc["argv"]
    assert len(doc["results"]) == 2 * 3 * 2
    assert all(r["msgs_per_s"] > 0 for r in doc["results"])


def test_iterating_server_answers_every_request() -> None:
    """The iterating server (``baselines.iterate_transport``) over a memory pair: answers each round trip and
    the throughput acknowledgement, as the ``handle`` server does."""
    import asyncio

    import rpcwire
    from rpcwire.bench.baselines import iterate_transport

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        server = asyncio.create_task(iterate_transport(b))
        await a.send(workloads.request(150, 7))
        answer = await a.receive()
        assert answer["id"] == 7
        assert answer == workloads.response(150, 7)
        await a.send(workloads.expect_request(3))
        for _ in range(3):
            await a.send(workloads.payload(150))
        ack = await a.receive()
        assert ack["result"] == {"count": 3}
        await a.close()
        await asyncio.wait_for(server, 5)

    asyncio.run(main())
