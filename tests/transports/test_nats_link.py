"""The NATS carriage's numbering, acknowledgements, resends and heartbeats, over an in-memory network that drops,
duplicates and reorders on purpose (no NATS server: every fault is chosen, so every outcome is checked).

Two ``_Link`` ends with real ``RpcProtocol``s and ``Transport``s; only the hub (the NATS connection) is faked.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import rpcwire
from rpcwire import _nats
from rpcwire._protocol import RpcProtocol, new_codec
from rpcwire._transport import Transport

from ._helpers import request
from .conftest import Run

#: A packet's fate: the delays (seconds) of its copies; [] drops it.
Fault = Callable[[bytes], list[float]]


def deliver(packet: bytes) -> list[float]:
    return [0.0]


class FakeHub:
    """What a ``_Link`` needs of ``_nats._Hub``, over an in-memory network."""

    def __init__(self, loop: asyncio.AbstractEventLoop, net: Net, name: str) -> None:
        self.loop = loop
        self.net = net
        self.prefix = f"_RPCWIRE.{name}"
        self.links: dict[str, Any] = {}
        self.nc = SimpleNamespace(max_payload=net.max_payload, pending_data_size=0)
        self._tokens = 0
        self.refs = 0
        self.released = 0

    new_subject = _nats._Hub.new_subject

    def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        self.net.send(subject, payload)

    async def release(self) -> None:
        self.released += 1


class Net:
    def __init__(self, fault: Fault = deliver, max_payload: int = 1 << 20) -> None:
        self.fault = fault
        self.max_payload = max_payload
        self.hubs: list[FakeHub] = []
        self.sent = 0

    def send(self, subject: str, payload: bytes) -> None:
        self.sent += 1
        prefix, _, token = subject.rpartition(".")
        for hub in self.hubs:
            if hub.prefix == prefix:
                for delay in self.fault(payload):
                    hub.loop.call_later(delay, self._arrive, hub, token, payload)

    @staticmethod
    def _arrive(hub: FakeHub, token: str, payload: bytes) -> None:
        link = hub.links.get(token)
        if link is not None:
            link.received(payload)


def pair(net: Net, peer_timeout: float = 2.0, **codec: Any) -> tuple[Transport, Transport]:
    loop = asyncio.get_running_loop()
    ha, hb = FakeHub(loop, net, "a"), FakeHub(loop, net, "b")
    net.hubs += [ha, hb]
    la = _nats._Link(ha, peer_timeout)  # type: ignore[arg-type]
    lb = _nats._Link(hb, peer_timeout)  # type: ignore[arg-type]
    kwargs = {"framing": "length", "compression": None, "keyring": None, **codec}
    pa, pb = RpcProtocol(new_codec(kwargs), loop), RpcProtocol(new_codec(kwargs), loop)
    la.start(lb.subject, lb._beat, lb._window, pa)
    lb.start(la.subject, la._beat, la._window, pb)
    return Transport(pa, "nats"), Transport(pb, "nats")


def link(t: Transport) -> Any:
    """The ``_Link`` under a transport."""
    return t._proto._rt


def kind(packet: bytes) -> int:
    return packet[0]


def seq(packet: bytes) -> int:
    return int(_nats._HEAD.unpack_from(packet)[1])


async def exchange(a: Transport, b: Transport, count: int) -> tuple[list[int], list[int]]:
    """``count`` requests a -> b in bursts, each answered b -> a; the ids each side received."""

    async def serve() -> list[int]:
        ids = []
        async for msg in b:
            ids.append(msg["id"])
            await b.send({"jsonrpc": "2.0", "id": msg["id"], "result": msg["params"]})
            if len(ids) == count:
                break
        return ids

    server = asyncio.get_running_loop().create_task(serve())
    back = []
    for start in range(0, count, 50):
        await a.send_many([request(i, pad="q" * 200) for i in range(start, min(count, start + 50))])
        back += [(await a.receive())["id"] for _ in range(start, min(count, start + 50))]
    return await server, back


@pytest.mark.parametrize(
    "fault",
    ["drop", "duplicate", "reorder", "all"],
)
def test_losses_duplicates_and_reordering_are_repaired(run: Run[None], fault: str) -> None:
    """One message in twenty (data, acknowledgement, heartbeat or resend request) dropped, doubled or held back:
    each side still gets every message once, in order."""
    rng = random.Random(7)

    def faulty(packet: bytes) -> list[float]:
        roll = rng.random()
        if roll < 0.05 and fault in ("drop", "all"):
            return []
        if 0.05 <= roll < 0.1 and fault in ("duplicate", "all"):
            return [0.0, 0.001]
        if 0.1 <= roll < 0.15 and fault in ("reorder", "all"):
            return [0.01]
        return [0.0]

    async def main() -> None:
        net = Net(faulty)
        a, b = pair(net, peer_timeout=1.0, compression="lz4", keyring=rpcwire.Keyring({1: bytes(32)}))
        received, back = await exchange(a, b, 1000)
        assert received == list(range(1000))
        assert back == list(range(1000))
        await a.close()
        await b.close()

    run(main())


def test_an_unrepairable_gap_ends_the_connection_naming_it(run: Run[None]) -> None:
    """Message 3 and every resend of it are lost; heartbeats get through: the receiver ends with
    ConnectionClosed naming message 3 within peer_timeout."""

    def lose_third(packet: bytes) -> list[float]:
        return [] if kind(packet) == _nats.DATA and seq(packet) == 3 else [0.0]

    async def main() -> None:
        a, b = pair(Net(lose_third), peer_timeout=0.4)
        for i in range(5):  # one NATS message each
            await a.send(request(i))
            await asyncio.sleep(0.005)
        assert (await b.receive())["id"] == 0
        assert (await b.receive())["id"] == 1
        started = asyncio.get_running_loop().time()
        with pytest.raises(rpcwire.ConnectionClosed, match="lost message 3"):
            await b.receive()
        assert asyncio.get_running_loop().time() - started <= 0.4
        # the sender hears of it too (a RESET), and nothing hangs
        with pytest.raises(rpcwire.ConnectionClosed):
            await a.receive()
        await a.close()
        await b.close()

    run(main())


def test_silence_ends_both_ends_within_peer_timeout(run: Run[None]) -> None:
    cut = False

    def network(packet: bytes) -> list[float]:
        return [] if cut else [0.0]

    async def main() -> None:
        nonlocal cut
        a, b = pair(Net(network), peer_timeout=0.4)
        await a.send(request(1))
        assert (await b.receive())["id"] == 1
        # quiet but alive: heartbeats keep it open well past the timeout
        await asyncio.sleep(1.0)
        assert a.is_connected
        assert b.is_connected
        cut = True
        started = asyncio.get_running_loop().time()
        for t in (a, b):
            with pytest.raises(rpcwire.ConnectionClosed, match="no word from the peer"):
                await t.receive()
        assert asyncio.get_running_loop().time() - started <= 0.4
        await a.close()
        await b.close()

    run(main())


def test_a_lost_tail_is_found_by_the_heartbeat(run: Run[None]) -> None:
    """The last message is lost and nothing follows it: the next heartbeat says it was sent; it is resent."""
    dropped = []

    def lose_last_once(packet: bytes) -> list[float]:
        if kind(packet) == _nats.DATA and seq(packet) == 2 and not dropped:
            dropped.append(packet)
            return []
        return [0.0]

    async def main() -> None:
        a, b = pair(Net(lose_last_once), peer_timeout=0.4)
        await a.send(request(1))
        assert (await b.receive())["id"] == 1
        await a.send(request(2))
        assert (await b.receive())["id"] == 2
        assert dropped
        await a.close()
        await b.close()

    run(main())


def test_close_and_half_close(run: Run[None]) -> None:
    async def main() -> None:
        net = Net()
        a, b = pair(net)
        await a.send(request(1))
        a._proto.close_write()  # FIN: b reads EOF after the message, a can still read
        assert (await b.receive())["id"] == 1
        with pytest.raises(rpcwire.ConnectionClosed):
            await b.receive()
        await b.send(request(2))
        assert (await a.receive())["id"] == 2
        await b.close()
        with pytest.raises(rpcwire.ConnectionClosed):
            await a.receive()
        await a.close()
        la, lb = link(a), link(b)
        assert la._done
        assert lb._done
        assert not la._hub.links
        assert not lb._hub.links

    run(main())


def test_the_window_bounds_what_a_sender_keeps(run: Run[None]) -> None:
    """Acknowledgements are lost for a while: the sender stops at the window (its send waits), then goes on."""
    blocked = True

    def no_acks(packet: bytes) -> list[float]:
        # the receiver's heartbeats and acknowledgements are lost while blocked; data flows
        return [] if blocked and kind(packet) == _nats.BEAT else [0.0]

    async def main() -> None:
        nonlocal blocked
        a, b = pair(Net(no_acks), peer_timeout=5.0)
        blob = {"jsonrpc": "2.0", "method": "n", "params": {"pad": "w" * 100_000}}
        sent = 0

        async def flood() -> None:
            nonlocal sent
            for _ in range(400):
                await a.send(blob)
                sent += 1

        task = asyncio.get_running_loop().create_task(flood())
        la = link(a)
        got = 0
        while got < 50:
            await b.receive()
            got += 1
        await asyncio.sleep(0.3)
        assert la._unacked_bytes <= la._window + la._chunk
        assert sent < 150, "the sender goes no further than the window and its write buffer"
        blocked = False
        while got < 400:
            await b.receive()
            got += 1
        await task
        await a.close()
        await b.close()

    run(main())


def test_a_peer_overrunning_the_window_is_cut_off(run: Run[None]) -> None:
    """A peer that ignores the window while our reader is paused: the connection ends, memory stays bounded."""

    async def main() -> None:
        a, b = pair(Net(), peer_timeout=5.0)
        la, lb = link(a), link(b)
        lb.pause_reading()
        chunk = b"x" * la._chunk
        # publish around the window by hand, as a hostile sender would
        for i in range(12):
            la._hub.publish(la._peer, _nats._HEAD.pack(_nats.DATA, i + 1, 0) + chunk)
        await asyncio.sleep(0.05)
        assert lb._held_bytes <= lb._window + lb._chunk
        assert lb._done
        with pytest.raises(rpcwire.ConnectionClosed, match="window"):
            await b.receive()
        await a.close()
        await b.close()

    run(main())
