"""What each mode measures. Every message is prepared before the clock starts.

- ``throughput``: one way, client to server. The client sends a ``bench/expect`` request and
  then `count` messages of the chosen size with one ``send`` each (what application code
  does); the server decodes every one and answers the expect request after the last. Time:
  first send to that answer (one round trip of slack on thousands of messages).
- ``roundtrip``: one request in flight. The client sends a small request, the server answers
  with a response of the chosen size; the latency of each is recorded.
- ``concurrent``: `clients` connections (for stdio: that many child processes) each doing
  round trips at the same time; throughput is all round trips over the wall time, latencies
  are pooled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from . import workloads
from .impls import Conn, Endpoint

__all__ = ("Sample", "concurrent", "roundtrip", "throughput")


@dataclasses.dataclass
class Sample:
    """One timed run: `messages` moved in `seconds`, `bytes` of JSON payload, latencies if any, and the CPU
    time the server process spent meanwhile (when the server is a process of its own)."""

    seconds: float
    messages: int
    bytes: int
    latencies_ns: list[int] | None = None
    server_cpu_s: float | None = None

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


class BenchError(RuntimeError):
    """The peer answered something other than what the protocol says."""


#: Reads the server's CPU seconds so far (None: not measurable for this setup).
CpuClock = Callable[[], "float | None"]


def no_clock() -> float | None:
    return None


def _spent(before: float | None, clock: CpuClock) -> float | None:
    after = clock()
    return None if before is None or after is None else after - before


async def throughput(conn: Conn, size: int, count: int, server_cpu: CpuClock = no_clock) -> Sample:
    msg = workloads.payload(size)
    prepared = [conn.prepare(msg)] * count
    expect = conn.prepare(workloads.expect_request(count))
    send = conn.send
    cpu0 = server_cpu()
    t0 = time.perf_counter()
    await send(expect)
    for m in prepared:
        await send(m)
    reply = await conn.receive()
    dt = time.perf_counter() - t0
    cpu = _spent(cpu0, server_cpu)
    got = conn.ack_count(reply)
    if got != count:
        raise BenchError(f"server counted {got} messages, {count} were sent")
    return Sample(dt, count, count * workloads.encoded_size(msg), server_cpu_s=cpu)


async def roundtrip(conn: Conn, size: int, count: int, first_id: int = 1, server_cpu: CpuClock = no_clock) -> Sample:
    reqs = [conn.prepare(workloads.request(size, first_id + i)) for i in range(count)]
    per_trip = workloads.encoded_size(workloads.request(size, first_id)) + workloads.encoded_size(
        workloads.response(size, first_id)
    )
    send = conn.send
    receive = conn.receive
    clock = time.perf_counter_ns
    lat: list[int] = []
    append = lat.append
    cpu0 = server_cpu()
    t0 = clock()
    for r in reqs:
        s = clock()
        await send(r)
        await receive()
        append(clock() - s)
    dt = (clock() - t0) / 1e9
    return Sample(dt, count, count * per_trip, lat, server_cpu_s=_spent(cpu0, server_cpu))


async def concurrent(
    endpoint: Endpoint, size: int, count: int, clients: int, server_cpu: CpuClock = no_clock
) -> Sample:
    conns = [await endpoint.open() for _ in range(clients)]
    try:
        # A short warm-up on every connection, then all start together.
        await asyncio.gather(*(roundtrip(c, size, 2, first_id=10_000_000) for c in conns))
        cpu0 = server_cpu()
        t0 = time.perf_counter()
        samples = await asyncio.gather(*(roundtrip(c, size, count, first_id=1) for c in conns))
        dt = time.perf_counter() - t0
        cpu = _spent(cpu0, server_cpu)
    finally:
        await asyncio.gather(*(endpoint.close_conn(c) for c in conns), return_exceptions=True)
    lat: list[int] = []
    for s in samples:
        lat.extend(s.latencies_ns or ())
    return Sample(dt, sum(s.messages for s in samples), sum(s.bytes for s in samples), lat, server_cpu_s=cpu)


def percentiles_us(latencies_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/p99.9 in microseconds (nearest-rank on the sorted samples)."""
    if not latencies_ns:
        return {}
    data = sorted(latencies_ns)
    n = len(data)

    def pick(q: float) -> float:
        k = min(n - 1, max(0, int(q * n + 0.5) - 1))
        return data[k] / 1000.0

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "p99_9": pick(0.999)}
