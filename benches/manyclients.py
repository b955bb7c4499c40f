"""Many clients against one server, from a load generator cheaper than the server: ``python -m benches.manyclients``.

``rpcwire bench --mode concurrent`` runs its clients as asyncio transports in the harness's own process, so at
64 clients that process is the limit and round trips per second say more about the clients than about the
server. Here the server is the bench's own server child (``rpcwire.bench._peer``: rpcwire through
``Transport.handle``, the hand-rolled asyncio + orjson ``asyncio`` baseline, the ``floor``), and the load is
plain non-blocking sockets and one ``selectors`` loop writing pre-encoded 150 B requests and counting answer
lines, with nothing decoded. Each server gets ``--seconds`` of load per round, the servers taking turns round
after round; printed: each one's median round trips per second and server CPU per round trip (the server
process's scheduler statistics, all threads), and rpcwire's ratios to the others, medians of per-round ratios.

Options: ``--clients`` (64), ``--seconds`` per round (2), ``--rounds`` (5), ``--impl`` (rpcwire,asyncio,floor).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import orjson
from rpcwire.bench import workloads
from rpcwire.bench.impls import process_cpu_s

SIZE = 150


def server_cpu_s(pid: int) -> float:
    cpu = process_cpu_s(pid)
    if cpu is None:
        raise RuntimeError(f"cannot read the CPU time of process {pid} (Linux's /proc/<pid>/task/*/schedstat)")
    return cpu


@contextlib.contextmanager
def bench_server(impl: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The bench's server child for `impl` on a Unix socket: (process, socket path)."""
    tmp = tempfile.mkdtemp(prefix="rpcwire-many-")
    path = os.path.join(tmp, "s.sock")
    argv = [sys.executable, "-m", "rpcwire.bench._peer", "--impl", impl, "--transport", "unix"]
    argv += ["--address", f"unix://{path}"]
    try:
        # Exiting the Popen closes its pipes and waits for it; the kill comes first.
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
            try:
                assert proc.stdout is not None
                line = proc.stdout.readline().decode()
                if not line.startswith("ADDRESS "):
                    raise RuntimeError(f"the {impl} bench server did not start: {line!r}")
                yield proc, path
            finally:
                proc.kill()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(path: str, pid: int, clients: int, seconds: float) -> tuple[float, float]:
    """`clients` connections each keeping one request in flight for `seconds` (after a warm-up of a quarter of
    that): (round trips per second, server CPU microseconds per round trip)."""
    request = orjson.dumps(workloads.request(SIZE, 1)) + b"\n"
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for _ in range(clients):
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        for s in socks:
            s.send(request)
        clock = time.perf_counter
        start = clock() + seconds / 4
        t0 = cpu0 = None
        trips = 0
        while True:
            for key, _ in sel.select(1.0):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                data = conn.recv(1 << 16)
                if not data:
                    raise RuntimeError("the server closed a connection")
                answers = data.count(b"\n")  # whole answers: a request goes out only after its answer is in
                trips += answers
                if answers:
                    conn.send(request * answers)
            now = clock()
            if t0 is None and now >= start:
                t0, cpu0, trips = now, server_cpu_s(pid), 0
            elif t0 is not None and now - t0 >= seconds:
                assert cpu0 is not None
                return trips / (now - t0), (server_cpu_s(pid) - cpu0) / max(trips, 1) * 1e6
    finally:
        for s in socks:
            s.close()
        sel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.manyclients", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--impl", default="rpcwire,asyncio,floor")
    args = parser.parse_args(argv)
    impls = args.impl.split(",")
    rates: dict[str, list[float]] = {i: [] for i in impls}
    cpus: dict[str, list[float]] = {i: [] for i in impls}
    with contextlib.ExitStack() as stack:
        servers = {impl: stack.enter_context(bench_server(impl)) for impl in impls}
        for round_ in range(args.rounds):
            shift = round_ % len(impls)
            for impl in impls[shift:] + impls[:shift]:
                proc, path = servers[impl]
                rate, cpu = load(path, proc.pid, args.clients, args.seconds)
                rates[impl].append(rate)
                cpus[impl].append(cpu)
    out = sys.stdout
    out.write(f"{args.clients} clients, 150 B round trips, {args.rounds} rounds of {args.seconds:g} s\n\n")
    out.write("| server | round trips/s | server CPU us per round trip |\n|---|---|---|\n")
    for impl in impls:
        out.write(f"| {impl} | {statistics.median(rates[impl]) / 1e3:.1f}k | {statistics.median(cpus[impl]):.2f} |\n")
    if "rpcwire" in impls:
        out.write("\n| rpcwire vs | round trips/s | server CPU per round trip |\n|---|---|---|\n")
        for other in impls:
            if other == "rpcwire":
                continue
            rate = statistics.median(a / b for a, b in zip(rates["rpcwire"], rates[other], strict=True))
            cpu = statistics.median(b / a for a, b in zip(cpus["rpcwire"], cpus[other], strict=True))
            out.write(f"| {other} | {rate:.2f}x | {cpu:.2f}x |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
