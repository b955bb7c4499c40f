"""memory_pair(): round trips, closing, cancel safety, backpressure (both loops)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import rpcwire
from rpcwire import _protocol

from ._helpers import answer, note, request


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


def test_concurrent_receivers_each_get_one_item(run: Any) -> None:
    """Two tasks wait in receive and one item arrives: one of them gets it, the other keeps waiting for the
    next (both were woken; the one that finds the queue empty waits again)."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        first = asyncio.create_task(b.receive())
        second = asyncio.create_task(b.receive())
        await asyncio.sleep(0)
        await a.send(note(1))
        done, pending = await asyncio.wait({first, second}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1
        for _ in range(5):
            await asyncio.sleep(0)
        assert not pending.pop().done()
        await a.send(note(2))
        got = [(await asyncio.wait_for(t, 5))["params"]["i"] for t in (first, second)]
        assert sorted(got) == [1, 2]
        await a.close()
        with pytest.raises(rpcwire.ConnectionClosed):
            await asyncio.wait_for(b.receive(), 5)
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


def test_lone_sends_between_reads_leave_at_once(run: Any) -> None:
    """Ping-pong: each request and each reply is written by its send, with no flush scheduled behind it."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        a_writes, b_writes = _count_writes(a), _count_writes(b)
        for i in range(5):
            await a.send(request(i))
            assert len(a_writes) == i + 1
            assert not a._proto._flush_scheduled
            msg = await b.receive()
            await b.send({"jsonrpc": "2.0", "id": msg["id"], "result": i})
            assert len(b_writes) == i + 1
            assert not b._proto._flush_scheduled
            assert (await a.receive())["result"] == i
        # a second send before the next read coalesces with whatever follows it in a scheduled flush
        await a.send(note(1))
        await a.send(note(2))
        assert len(a_writes) == 6
        assert a._proto._flush_scheduled
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


# --- Transport.handle --------------------------------------------------------------------------------


def test_handle_answers_requests_in_order(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        seen: list[Any] = []

        def handler(msg: Any) -> Any:
            seen.append(msg)
            return answer(msg)

        await a.send(request(0, k=0))  # arrives before handle starts: handled first
        await asyncio.sleep(0)
        server = asyncio.create_task(b.handle(handler))
        requests = [0]
        for i in range(1, 500):
            if i % 3:
                requests.append(i)
                await a.send(request(i, k=i))
            else:
                await a.send(note(i))
        got = [await a.receive() for _ in requests]
        assert got == [{"jsonrpc": "2.0", "id": i, "result": {"k": i}} for i in requests]
        assert len(seen) == 500
        assert b.stats.messages_in == 500
        assert b._proto.queue_size() == 0
        await a.close()
        await asyncio.wait_for(server, 5)  # returns when the peer closes
        await b.close()

    run(main())


def test_handle_error_stops_handling_and_keeps_the_rest(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()

        def handler(msg: Any) -> Any:
            if msg["params"]["k"] == 3:
                raise KeyError("boom")
            return answer(msg)

        server = asyncio.create_task(b.handle(handler))
        await asyncio.sleep(0)
        await a.send_many([request(i, k=i) for i in range(6)])  # one write: one read on b
        with pytest.raises(KeyError, match="boom"):
            await asyncio.wait_for(server, 5)
        assert [(await a.receive())["id"] for _ in range(3)] == [0, 1, 2]
        # the items after the one that raised are queued, and receive works again
        assert [(await b.receive())["id"] for _ in range(2)] == [4, 5]
        await a.send(request(6, k=6))
        assert (await b.receive())["id"] == 6
        await a.close()
        await b.close()

    run(main())


def test_handle_raises_for_an_answer_it_cannot_send(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()

        def handler(msg: Any) -> Any:
            result = object() if msg["id"] == 1 else msg["id"]  # not JSON
            return {"jsonrpc": "2.0", "id": msg["id"], "result": result}

        server = asyncio.create_task(b.handle(handler))
        await asyncio.sleep(0)
        await a.send_many([request(i) for i in range(3)])
        with pytest.raises(TypeError):
            await asyncio.wait_for(server, 5)
        assert [(await a.receive())["id"] for _ in range(2)] == [0, 2]  # the good answers went out
        await b.send(note(9))  # the error was reported once, by handle
        assert (await a.receive())["params"]["i"] == 9
        await a.close()
        await b.close()

    run(main())


def test_handle_cancelled_hands_back_to_receive(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        server = asyncio.create_task(b.handle(answer))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already being handled"):
            await b.handle(answer)
        await a.send(request(1, k=1))
        assert (await a.receive())["id"] == 1
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
        await a.send(request(2, k=2))
        assert (await b.receive())["id"] == 2  # not handled: received
        await a.close()
        await b.close()

    run(main())


def test_handle_returns_when_closed_locally(run: Any) -> None:
    async def main() -> None:
        a, b = rpcwire.memory_pair()
        server = asyncio.create_task(b.handle(answer))
        await asyncio.sleep(0)
        await b.close()
        await asyncio.wait_for(server, 5)
        await a.close()

    run(main())


def test_handle_pauses_reading_while_answers_wait(run: Any) -> None:
    """A peer that sends requests for big answers and does not read them: the handler's answers fill the write
    buffer, handling and reading pause, and the requests wait instead of piling up answers here."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        big = "z" * 100_000
        handled = 0

        def handler(msg: Any) -> Any:
            nonlocal handled
            handled += 1
            return {"jsonrpc": "2.0", "id": msg["id"], "result": big}

        server = asyncio.create_task(b.handle(handler))
        offered = 0

        async def produce() -> None:
            nonlocal offered
            for i in range(2000):
                await a.send(request(i))
                offered += 1

        producer = asyncio.create_task(produce())
        for _ in range(300):
            await asyncio.sleep(0)
        assert b._proto._reading_paused
        assert handled < offered  # the rest of the requests wait, unhandled
        assert b._proto.queue_size() > 0  # (those that arrived are held in order)
        # answered = what the peer's queue holds + this side's write buffer + one coalesced write
        one_flush = max(_protocol.FLUSH_TARGET_BYTES, _protocol.FLUSH_MAX_MESSAGES * 100_050)
        assert b._proto.write_buffer_size() <= _protocol.WRITE_HIGH_WATER + one_flush
        assert handled * 100_000 <= _protocol.QUEUE_MAX_BYTES + _protocol.WRITE_HIGH_WATER + 2 * one_flush
        # the peer reads the answers: reading resumes and every request is answered
        stop = handled
        got = [(await a.receive())["id"] for _ in range(stop + 50)]
        assert got == list(range(stop + 50))
        producer.cancel()
        server.cancel()
        await asyncio.gather(producer, server, return_exceptions=True)
        await a.close()
        await b.close()

    run(main())


def test_handle_writes_the_answers_of_a_big_read_in_batches(run: Any) -> None:
    """One read of thousands of requests: the answers leave in several coalesced writes (each at most the flush
    cap), all of them, in order."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        writes = _count_writes(b)
        server = asyncio.create_task(b.handle(answer))
        await asyncio.sleep(0)
        await a.send_many([request(i, k=i) for i in range(3000)])  # one write: one read on b

        async def collect() -> list[Any]:
            return [(await a.receive())["id"] for _ in range(3000)]

        assert await asyncio.wait_for(collect(), 10) == list(range(3000))
        assert 3000 // _protocol.FLUSH_MAX_MESSAGES <= len(writes) < 3000 // _protocol.FLUSH_MIN_MESSAGES
        assert b.stats.messages_in == 3000
        await a.close()
        await asyncio.wait_for(server, 5)
        await b.close()

    run(main())


def test_handle_answers_what_came_before_a_fatal_frame(run: Any) -> None:
    """A read that holds good requests and then a frame the codec cannot go past: the requests are handled and
    answered, then the connection ends and handle raises the stream's error."""

    async def main() -> None:
        a, b = rpcwire.memory_pair(framing="length", max_frame_size=10_000)
        server = asyncio.create_task(b.handle(answer))
        await asyncio.sleep(0)
        good = rpcwire.Codec(framing="length").encode_many([request(i, k=i) for i in range(3)])
        a._proto._wt.write(good + (50_000).to_bytes(4, "big"))  # then a frame over max_frame_size
        assert [(await a.receive())["id"] for _ in range(3)] == [0, 1, 2]
        with pytest.raises(rpcwire.FrameTooLarge):
            await asyncio.wait_for(server, 5)
        assert b.stats.messages_in == 3
        with pytest.raises(rpcwire.ConnectionClosed):
            await a.receive()
        await a.close()
        await b.close()

    run(main())
