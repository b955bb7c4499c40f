"""memory_pair(): round trips, closing, cancel safety, backpressure (both loops)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import rpcwire
from rpcwire import _protocol

from ._helpers import note, request


def test_round_trip_both_directions(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        assert a.transport_type == b.transport_type == "memory"
        assert a.is_connected
        assert b.is_connected
        await a.send(request(1, x=1))
        await b.send({"jsonrpc": "2.0", "id": 1, "result": {"ok": True}})
        assert await b.receive() == request(1, x=1)
        assert await a.receive() == {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}
        batch = [request(2), request(3)]
        await a.send(batch)
        assert await b.receive() == batch
        await a.close()
        await b.close()

    run(main())


def test_many_messages_in_order_and_stats(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        n = 5000

        async def produce() -> None:
            for i in range(n):
                await a.send(note(i))
            await a.send_many([note(i) for i in range(n, 2 * n)])

        task = asyncio.create_task(produce())
        got = [(await b.receive())["params"]["i"] for _ in range(2 * n)]
        await task
        assert got == list(range(2 * n))
        assert a.stats.messages_out == 2 * n
        assert b.stats.messages_in == 2 * n
        assert a.stats.bytes_out == b.stats.bytes_in > 2 * n * 100
        assert a.stats.messages_in == b.stats.messages_out == 0
        await a.close()
        await b.close()

    run(main())


def test_messages_are_copies(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        msg = request(1, items=[1, 2])
        await a.send(msg)
        got = await b.receive()
        assert got == msg
        assert got is not msg
        await a.close()
        await b.close()

    run(main())


def test_close_ends_peer_stream(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        for i in range(3):
            await a.send(note(i))
        await a.close()
        got = [m["params"]["i"] async for m in b]
        assert got == [0, 1, 2]  # everything sent before close arrives, then the iteration ends cleanly
        assert not b.is_connected
        with pytest.raises(rpcwire.ConnectionClosed):
            await b.receive()
        with pytest.raises(rpcwire.ConnectionClosed):
            await a.send(note(9))
        with pytest.raises(rpcwire.ConnectionClosed):
            await a.receive()
        await b.close()
        await b.close()  # idempotent

    run(main())


def test_receive_on_dead_connection_does_not_hang(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        waiter = asyncio.create_task(b.receive())
        await asyncio.sleep(0)
        await a.close()
        with pytest.raises(rpcwire.ConnectionClosed):
            await waiter
        with pytest.raises(rpcwire.ConnectionClosed):
            await b.send(note(1))
        await b.close()

    run(main())


def test_cancelled_receive_loses_nothing(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        n = 300
        got: list[int] = []

        async def produce() -> None:
            for i in range(n):
                await a.send(note(i))
                if i % 7 == 0:
                    await asyncio.sleep(0)

        producer = asyncio.create_task(produce())
        attempt = 0
        while len(got) < n:
            attempt += 1
            task = asyncio.create_task(b.receive())
            # cancel every other receive, after 1-3 iterations: before or after its item arrived
            for _ in range(1 + attempt % 3):
                await asyncio.sleep(0)
            if attempt % 2 == 0:
                task.cancel()
            await asyncio.wait([task])
            if not task.cancelled():
                got.append(task.result()["params"]["i"])
        await producer
        assert got == list(range(n))
        await a.close()
        await b.close()

    run(main())


def test_iteration_stops_and_resumes_without_loss(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        for i in range(4):
            await a.send(note(i))
        got: list[int] = []
        async for m in b:  # break out with items still queued...
            got.append(m["params"]["i"])
            if len(got) == 2:
                break
        assert (await anext(b))["params"]["i"] == 2  # ...and they are still there, for anext,
        assert (await b.receive())["params"]["i"] == 3  # receive,

        async def iterate() -> None:
            got.extend([m["params"]["i"] async for m in b])

        # an iteration cancelled while it waits takes nothing with it,
        waiting = asyncio.create_task(iterate())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for i in range(4, 7):
            await a.send(note(i))
        await a.close()
        got.extend([m["params"]["i"] async for m in b])  # and a new async for.
        assert got == [0, 1, 4, 5, 6]
        await b.close()

    run(main())


def test_cancelled_receive_with_ready_item_keeps_it(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        task = asyncio.create_task(b.receive())
        await asyncio.sleep(0)  # the receive is now waiting
        await a.send(note(1))  # an idle connection writes the first send of an iteration at once
        await asyncio.sleep(0)  # the memory pipe delivers: the message reaches b and wakes the receive...
        assert not task.done()
        task.cancel()  # ...which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await b.receive())["params"]["i"] == 1
        await a.close()
        await b.close()

    run(main())


def test_slow_reader_backpressure_bounds_buffers(run: Any) -> None:
    """A sender offering ~200 MB to a reader that takes one message per iteration: the sender waits and both the
    write buffer and the receive queue stay bounded."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        big = {"jsonrpc": "2.0", "method": "blob", "params": {"data": "y" * 100_000}}
        n = 2000  # 200 MB offered
        max_buffer = 0
        max_queue = 0
        sent = 0

        async def produce() -> None:
            nonlocal sent
            for _ in range(n):
                await a.send(big)
                sent += 1

        producer = asyncio.create_task(produce())
        for _ in range(200):
            await b.receive()
            await asyncio.sleep(0)
            max_buffer = max(max_buffer, a._proto.write_buffer_size())
            max_queue = max(max_queue, b._proto.queue_size())
        # the reader took 200 of 2000: the producer is parked, not racing ahead
        assert sent < n
        # the first coalesced write is bounded by a message count (sizes are not known yet), later ones by bytes
        one_flush = max(_protocol.FLUSH_TARGET_BYTES, _protocol.FLUSH_FIRST_MESSAGES * 100_200)
        # in flight = the sender's write buffer + the reader's queue + one coalesced write
        limit = _protocol.WRITE_HIGH_WATER + _protocol.QUEUE_MAX_BYTES + 2 * one_flush
        assert (sent - 200) * 100_000 <= limit
        assert max_buffer <= _protocol.WRITE_HIGH_WATER + one_flush
        assert max_queue * 100_000 <= _protocol.QUEUE_MAX_BYTES + one_flush
        producer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await producer
        a._proto.abort()
        await b.close()
        await a.close()

    run(main())


def _count_writes(t: rpcwire.Transport) -> list[int]:
    writes: list[int] = []
    wt = t._proto._wt
    assert wt is not None
    original = wt.write

    def counting_write(data: Any) -> None:
        writes.append(len(data))
        original(data)

    wt.write = counting_write  # type: ignore[method-assign]
    return writes


def test_concurrent_sends_in_one_iteration_leave_in_one_write(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        writes = _count_writes(a)
        await a.send(note(-1))  # idle: written at once
        assert (await b.receive())["params"]["i"] == -1
        assert len(writes) == 1
        # A first burst teaches the coalescing bound the message size (it grows twofold per full flush).
        await asyncio.gather(*(a.send(note(i)) for i in range(1000)))
        assert sorted([(await b.receive())["params"]["i"] for _ in range(1000)]) == list(range(1000))
        writes.clear()
        await asyncio.gather(*(a.send(note(i)) for i in range(1000)))
        got = sorted([(await b.receive())["params"]["i"] for _ in range(1000)])
        assert got == list(range(1000))
        # the first send found the connection idle and left at once; the other 999 together in one write
        assert len(writes) == 2
        assert writes[0] < writes[1]
        await a.close()
        await b.close()

    run(main())


def test_small_messages_do_not_license_a_huge_batch_of_big_ones(run: Any) -> None:
    """After lone tiny messages, a burst of 64 KB ones is flushed in bounded batches, not one giant write."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        writes = _count_writes(a)
        for i in range(20):  # request/response style: one small message per iteration
            await a.send(note(i))
            assert (await b.receive())["params"]["i"] == i
        big = {"jsonrpc": "2.0", "method": "blob", "params": {"data": "x" * 65536}}
        writes.clear()

        async def read_all() -> None:
            for _ in range(200):
                assert (await b.receive())["method"] == "blob"

        await asyncio.gather(read_all(), *(a.send(big) for _ in range(200)))
        assert sum(writes) > 200 * 65536
        assert max(writes) <= _protocol.FLUSH_FIRST_MESSAGES * 65600
        await a.close()
        await b.close()

    run(main())
