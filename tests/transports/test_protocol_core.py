"""The protocol's hot paths (``rpcwire._core.ProtocolCore``): with either codec, over a socket's shared read
buffer, and the state they keep (waiters, the write side after a fatal error, reference cycles)."""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import weakref
from typing import Any

import pytest
import rpcwire
from rpcwire import _protocol, reference

from ._helpers import answer, request


@pytest.fixture(params=["rust", "reference"])
def codec_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every connection opened in the test builds this codec (the Rust core calls a Python codec by name)."""
    if request.param == "reference":
        monkeypatch.setattr(_protocol, "codec_class", reference.Codec)
    return str(request.param)


@pytest.mark.parametrize("kind", ["memory", "unix"])
def test_each_codec_round_trips_handles_and_stops_at_a_fatal_frame(run: Any, codec_impl: str, kind: str) -> None:
    """Requests answered by ``handle``, then a frame over ``max_frame_size``: the answers arrive, ``handle``
    raises the stream's error, and a send on that connection is refused. Over a Unix socket every read goes
    through the shared read buffer (``get_buffer``/``buffer_updated``)."""

    async def main() -> None:
        opts: dict[str, Any] = {"framing": "length", "max_frame_size": 10_000}
        loop = asyncio.get_running_loop()
        served: asyncio.Future[rpcwire.Transport] = loop.create_future()
        outcome: asyncio.Future[BaseException | None] = loop.create_future()

        async def serve_one(t: rpcwire.Transport) -> None:
            served.set_result(t)
            try:
                await t.handle(answer)
            except Exception as exc:  # the test looks at what handle raised
                outcome.set_result(exc)
            else:
                outcome.set_result(None)

        with tempfile.TemporaryDirectory() as tmp:
            server = None
            if kind == "memory":
                a, b = rpcwire.memory_pair(**opts)
                serving = asyncio.create_task(serve_one(b))
            else:
                server = await rpcwire.serve(serve_one, f"unix://{os.path.join(tmp, 's.sock')}", **opts)
                a = await rpcwire.connect(server.address, **opts)
            b = await served
            assert type(a._proto._codec).__module__ == ("rpcwire" if codec_impl == "rust" else "rpcwire.reference")
            assert type(b._proto._codec) is type(a._proto._codec)
            for i in range(50):
                await a.send(request(i, k=i))
            assert [(await a.receive())["id"] for _ in range(50)] == list(range(50))
            assert a.stats.messages_out == b.stats.messages_in == 50
            a._proto._wt.write((50_000).to_bytes(4, "big"))  # a frame over max_frame_size
            assert isinstance(await asyncio.wait_for(outcome, 5), rpcwire.FrameTooLarge)
            with pytest.raises(rpcwire.ConnectionClosed):
                await b.send(request(99))
            await a.close()
            await b.close()
            if server is None:
                await serving
            else:
                server.close()
                await server.wait_closed()

    run(main())


def test_timed_out_receives_leave_no_waiter_behind(run: Any) -> None:
    """A receive cancelled by a timeout forgets its future: an idle connection polled with timeouts does not
    accumulate one per poll until the next item comes."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        for _ in range(50):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(b.receive(), 0.001)
        assert b._proto._waiters == []
        await a.send(request(1))
        assert (await b.receive())["id"] == 1
        await a.close()
        await b.close()

    run(main())


def test_send_after_a_fatal_stream_error_raises_connection_closed(run: Any) -> None:
    """The fatal error closes the connection both ways: a send is refused, not dropped in silence."""

    async def main() -> None:
        a, b = rpcwire.memory_pair(framing="length", max_frame_size=100)
        a._proto._wt.write((5000).to_bytes(4, "big"))
        with pytest.raises(rpcwire.FrameTooLarge):
            await b.receive()
        assert not b.is_connected
        with pytest.raises(rpcwire.ConnectionClosed):
            await b.send(request(1))
        await a.close()
        await b.close()

    run(main())


def test_first_send_after_a_read_is_written_at_once_even_behind_buffered_data(run: Any) -> None:
    """The eager write after a read does not ask the transport whether it is idle: behind buffered data it
    joins the transport's buffer in order, and the sends after it coalesce as usual."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        a._proto._rt.pause_reading()  # what b writes stays in b's write buffer
        await b.send(request(0))
        assert b._proto.write_buffer_size() > 0
        await a.send(request(9))
        assert (await b.receive())["id"] == 9  # a read: the next send on b is eager
        writes: list[bytes] = []
        wt = b._proto._wt
        assert wt is not None
        original = wt.write

        def spy(data: bytes) -> None:
            writes.append(bytes(data))
            original(data)

        wt.write = spy  # type: ignore[method-assign]
        await b.send(request(1))
        assert len(writes) == 1  # at once, behind request 0, nothing scheduled
        assert not b._proto._flush_scheduled
        await b.send(request(2))
        await b.send(request(3))
        assert len(writes) == 1  # these two coalesce
        assert b._proto._flush_scheduled
        a._proto._rt.resume_reading()
        assert [(await a.receive())["id"] for _ in range(4)] == [0, 1, 2, 3]
        assert len(writes) == 2
        await a.close()
        await b.close()

    run(main())


def test_a_closed_connection_is_collected(run: Any) -> None:
    """The protocol holds its transports, handler and waiters in Rust fields: the cyclic GC must see them
    (``__traverse__``), or every closed connection would stay alive through its transport's back-reference."""

    async def main() -> list[weakref.ref[Any]]:
        a, b = rpcwire.memory_pair()
        handling = asyncio.create_task(b.handle(answer))
        await a.send(request(1))
        await a.receive()
        await a.close()
        await handling
        await b.close()
        refs = [weakref.ref(a._proto), weakref.ref(b._proto)]
        del a, b, handling
        return refs

    refs = run(main())
    gc.collect()
    assert [r() for r in refs] == [None, None]


def test_buffer_updated_before_get_buffer_is_an_error() -> None:
    async def main() -> None:
        proto = _protocol.RpcProtocol(rpcwire.Codec())
        with pytest.raises(RuntimeError, match="before get_buffer"):
            proto.buffer_updated(10)

    asyncio.run(main())


# --- long reads, decoded as the reader takes them (src/py_protocol.rs: LAZY_MIN, LAZY_SLICE) ----------------


def _requests(n: int) -> list[dict[str, Any]]:
    return [request(i, k="x" * 20) for i in range(n)]


@pytest.mark.parametrize("kind", ["memory", "unix"])
def test_a_long_read_is_decoded_as_the_reader_takes_it(run: Any, kind: str) -> None:
    """2000 messages in one write: a reader finds a slice of them decoded, not the whole read, and gets every
    message in order; the counters come out whole."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "memory":
                a, b = rpcwire.memory_pair()
                server = None
            else:
                accepted: asyncio.Queue[rpcwire.Transport] = asyncio.Queue()
                release = asyncio.Event()

                async def hold(t: rpcwire.Transport) -> None:  # the connection lives while the handler runs
                    await accepted.put(t)
                    await release.wait()

                server = await rpcwire.serve(hold, f"unix://{os.path.join(tmp, 's.sock')}")
                a = await rpcwire.connect(server.address)
                b = await accepted.get()
            await a.send_many(_requests(2000))
            first = await b.receive()
            assert first["id"] == 0
            assert len(b._proto._queue) < 400  # a slice of the read (~16 KiB), not all 2000 messages
            got = [first["id"]] + [(await b.receive())["id"] for _ in range(1999)]
            assert got == list(range(2000))
            assert b.stats.messages_in == 2000
            await a.close()
            with pytest.raises(rpcwire.ConnectionClosed):
                await b.receive()
            await b.close()
            if server is not None:
                release.set()
                server.close()
                await server.wait_closed()

    run(main())


def test_the_rest_of_a_long_read_reaches_a_handler_started_after_it(run: Any) -> None:
    """A reader takes one message of a long read and then starts ``handle``: the handler gets the others, in
    order, without any more data arriving."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        await a.send_many(_requests(2000))
        assert (await b.receive())["id"] == 0
        seen: list[int] = []
        done = asyncio.Event()

        def handler(msg: Any) -> None:
            seen.append(msg["id"])
            if len(seen) == 1999:
                done.set()

        handling = asyncio.create_task(b.handle(handler))
        await asyncio.wait_for(done.wait(), 5)
        assert seen == list(range(1, 2000))
        await a.close()
        await asyncio.wait_for(handling, 5)
        await b.close()

    run(main())


def test_a_long_read_then_the_end_delivers_everything_first(run: Any) -> None:
    """The peer writes a long read and closes at once: ``async for`` gets all of it, then ends."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        await a.send_many(_requests(3000))
        await a.close()
        assert [m["id"] async for m in b] == list(range(3000))
        await b.close()

    run(main())


def test_a_fatal_frame_inside_a_long_read_comes_after_the_messages_before_it(run: Any) -> None:
    """One write: 1000 frames, a header over ``max_frame_size``, more frames. The reader gets the 1000, then
    the stream's error once, then ``ConnectionClosed``; nothing after the bad frame."""

    async def main() -> None:
        opts: dict[str, Any] = {"framing": "length", "max_frame_size": 10_000}
        a, b = rpcwire.memory_pair(**opts)
        codec = rpcwire.Codec(**opts)
        good = codec.encode_many(_requests(1000))
        assert len(good) > 40_000
        a._proto._wt.write(good + (50_000).to_bytes(4, "big") + codec.encode_many(_requests(10)))
        got = [(await b.receive())["id"] for _ in range(1000)]
        assert got == list(range(1000))
        with pytest.raises(rpcwire.FrameTooLarge):
            await b.receive()
        with pytest.raises(rpcwire.ConnectionClosed):
            await b.receive()
        await a.close()
        await b.close()

    run(main())


def test_long_messages_across_slices_arrive_whole(run: Any) -> None:
    """Messages longer than a slice, between small ones, in one read: each arrives whole."""

    async def main() -> None:
        a, b = rpcwire.memory_pair()
        msgs = [request(0), request(1, blob="y" * 100_000), request(2), request(3, blob="z" * 40_000), request(4)]
        await a.send_many(msgs)
        assert [await b.receive() for _ in msgs] == msgs
        await a.close()
        await b.close()

    run(main())
