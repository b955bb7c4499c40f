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
