"""rpcwire over NATS against real ``nats-server`` processes: one node, and a 3-node cluster.

Serving instances run as child processes (``nats_child.py``) where the test is about several of them: load
spread, a killed instance. Timings in the assertions are the documented bounds (``peer_timeout``), not speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import rpcwire
from rpcwire._address import parse_address
from rpcwire.bench.natsserver import NatsNode, start_cluster, start_node

from ._helpers import echo_handler, ready_children, request
from ._pki import Pki
from .conftest import Run

HERE = Path(__file__).parent
KEY = bytes(range(32))
SEALED = {"compression": "lz4", "keyring": rpcwire.Keyring({1: KEY})}
SEALED_JSON = json.dumps({"compression": "lz4", "key": KEY.hex()})


@pytest.fixture(scope="module")
def node() -> Iterator[NatsNode]:
    with start_node() as n:
        yield n


@pytest.fixture
def cluster() -> Iterator[list[NatsNode]]:
    nodes = start_cluster(3)
    try:
        yield nodes
    finally:
        for n in nodes:
            n.stop()


_subjects = iter(range(1, 1_000_000))


def subject() -> str:
    """A subject of its own for each test: instances of earlier tests never answer."""
    return f"rpcwire.test.{os.getpid()}.{next(_subjects)}"


@contextlib.contextmanager
def instances(address: str, names: list[str], options: str = "") -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Serving child processes, one per name, all on ``address``; ready when each printed ``ready``."""
    argvs = [[sys.executable, str(HERE / "nats_child.py"), address, name, options] for name in names]
    with ready_children(argvs) as procs:
        yield dict(zip(names, procs, strict=True))


async def whoami(t: rpcwire.Transport, i: int = 0) -> str:
    await t.send({"jsonrpc": "2.0", "id": i, "method": "whoami"})
    reply = await t.receive()
    assert reply["id"] == i
    return str(reply["result"])


# ------------------------------------------------------------------------------------------ addresses


def test_nats_addresses_parse() -> None:
    addr = parse_address("nats://127.0.0.1:4222/svc.tools")
    assert (addr.scheme, addr.servers, addr.subject, addr.queue) == (
        "nats",
        ("nats://127.0.0.1:4222",),
        "svc.tools",
        None,
    )
    several = parse_address("nats://alice:secret@h1,h2:5222/a.b?queue=workers")
    assert several.servers == ("nats://alice:secret@h1:4222", "nats://alice:secret@h2:5222")
    assert several.queue == "workers"
    assert str(several) == "nats://h1:4222,h2:5222/a.b?queue=workers"  # no credentials in logs
    assert "secret" not in repr(str(several))
    tls = parse_address("tls://token@[::1]/svc")
    assert tls.servers == ("tls://token@[::1]:4222",)
    assert parse_address(str(addr)) == addr


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nats://h:4222", "names its subject"),
        ("nats://h:4222/", "names its subject"),
        ("nats://h/a..b", "empty token"),
        ("nats://h/svc.*", "wildcards"),
        ("nats://h/svc.>", "wildcards"),
        ("nats://h/s%20v", "spaces"),
        ("nats://h:99999/svc", "out of range"),
        ("nats://h/svc?group=x", "unknown option"),
        ("nats://@h/svc", "empty credentials"),
        ("nats://h/svc?queue=a..b", "empty token"),
    ],
)
def test_bad_nats_addresses_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_address(text)


# ------------------------------------------------------------------------------------------ the contract


@pytest.mark.parametrize("opts", [{}, SEALED], ids=["plain", "lz4+keyring"])
def test_round_trips_pipelining_and_close(run: Run[None], node: NatsNode, opts: dict[str, Any]) -> None:
    address = f"{node.url}/{subject()}"

    async def main() -> None:
        async with await rpcwire.serve(echo_handler, address, **opts) as server:
            assert server.address == address
            t = await rpcwire.connect(address, **opts)
            assert t.transport_type == "nats"
            assert t.get_extra_info("peername").startswith("_RPCWIRE.")
            for i in range(5):
                await t.send(request(i, text="x" * i))
                assert await t.receive() == {"jsonrpc": "2.0", "id": i, "result": {"text": "x" * i}}
            # many sends in one iteration leave coalesced; every answer comes back, in order
            await t.send_many([request(i, n=i) for i in range(2000)])
            got = [(await t.receive())["id"] for _ in range(2000)]
            assert got == list(range(2000))
            assert server.connections == 1
            stats = t.stats
            assert stats.messages_out == 2005
            assert stats.messages_in == 2005
            await t.close()
            assert not t.is_connected
            with pytest.raises(rpcwire.ConnectionClosed):
                await t.send(request(0))
            # the server side ends too: its handler returns and the connection is forgotten
            for _ in range(100):
                if server.connections == 0:
                    break
                await asyncio.sleep(0.02)
            assert server.connections == 0

    run(main())


def test_server_close_ends_the_client_cleanly(run: Run[None], node: NatsNode) -> None:
    address = f"{node.url}/{subject()}"

    async def main() -> None:
        server = await rpcwire.serve(echo_handler, address)
        t = await rpcwire.connect(address)
        await t.send(request(1))
        assert (await t.receive())["id"] == 1
        server.close()
        await server.wait_closed()
        started = time.monotonic()
        with pytest.raises(rpcwire.ConnectionClosed):
            await t.receive()
        assert time.monotonic() - started < 2.0
        await t.close()
        with pytest.raises(ConnectionRefusedError, match="nothing subscribes"):
            await rpcwire.connect(address)

    run(main())


def test_a_message_over_max_payload_is_split_and_joined(run: Run[None]) -> None:
    """A node with a 64 KiB max_payload: a 3 MB message still goes through, both ways, sealed or not."""
    with start_node(max_payload=65536) as small:
        address = f"{small.url}/{subject()}"

        async def main() -> None:
            for opts in ({}, SEALED):
                async with (
                    await rpcwire.serve(echo_handler, address, **opts),
                    await rpcwire.connect(address, **opts) as t,
                ):
                    big = "y" * 3_000_000
                    await t.send(request(1, text=big))
                    reply = await t.receive()
                    assert reply["result"]["text"] == big

        run(main())


def test_handle_and_notifications(run: Run[None], node: NatsNode) -> None:
    address = f"{node.url}/{subject()}"
    seen: list[int] = []

    def answer(msg: Any) -> Any:
        if "id" not in msg:
            seen.append(msg["params"]["i"])
            return None
        return {"jsonrpc": "2.0", "id": msg["id"], "result": len(seen)}

    async def handler(t: rpcwire.Transport) -> None:
        await t.handle(answer)

    async def main() -> None:
        async with await rpcwire.serve(handler, address), await rpcwire.connect(address) as t:
            for i in range(500):
                await t.send({"jsonrpc": "2.0", "method": "n", "params": {"i": i}})
            await t.send(request(1))
            assert (await t.receive())["result"] == 500
            assert seen == list(range(500))

    run(main())


@pytest.mark.parametrize(
    "nats_options",
    [None, {"max_reconnect_attempts": 2, "reconnect_time_wait": 0.2}],
    ids=["still-reconnecting", "nats-gives-up"],
)
def test_the_only_nats_node_dies_every_connection_ends_cleanly(
    run: Run[None], nats_options: dict[str, Any] | None
) -> None:
    """kill -9 the NATS server itself: clients and server-side connections end with ConnectionClosed within
    peer_timeout (heartbeats, while nats-py still tries to reconnect; or nats-py closing), a blocked receive
    returns, sends fail cleanly, and closing everything does not hang."""
    doomed = start_node()
    address = f"{doomed.url}/{subject()}"

    async def main() -> None:
        opts = {"nats_options": nats_options}
        server_sides: list[rpcwire.Transport] = []
        ended: list[BaseException] = []

        async def handler(t: rpcwire.Transport) -> None:
            server_sides.append(t)
            try:
                async for msg in t:
                    await t.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            except BaseException as exc:  # pragma: no cover - the test asserts there is none
                ended.append(exc)
                raise

        server = await rpcwire.serve(handler, address, **opts)
        clients = [await rpcwire.connect(address, **opts) for _ in range(3)]
        for i, t in enumerate(clients):
            await t.send(request(i))
            assert (await t.receive())["id"] == i
        waiting = asyncio.get_running_loop().create_task(clients[0].receive())
        doomed.kill()
        started = time.monotonic()
        with pytest.raises(rpcwire.ConnectionClosed):
            await waiting
        for t in clients[1:]:
            with pytest.raises(rpcwire.ConnectionClosed):
                await t.receive()
        assert time.monotonic() - started <= 2.0
        for t in clients:
            with pytest.raises(rpcwire.ConnectionClosed):
                await t.send(request(9))
        await asyncio.wait_for(asyncio.gather(*(t.close() for t in clients)), 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        assert len(server_sides) == 3
        assert ended == []  # each handler's `async for` ended cleanly

    try:
        run(main())
    finally:
        doomed.stop()


def test_reconnect_redials_a_new_instance(run: Run[None], node: NatsNode) -> None:
    address = f"{node.url}/{subject()}"

    async def main() -> None:
        server = await rpcwire.serve(echo_handler, address)
        t = await rpcwire.connect(address, reconnect=True, retry_initial=0.05, retry_attempts=40)
        await t.send(request(1))
        assert (await t.receive())["id"] == 1
        server.close()
        await server.wait_closed()
        with pytest.raises(rpcwire.ConnectionClosed):
            await t.receive()
        server = await rpcwire.serve(echo_handler, address)
        await t.send(request(2))
        assert (await t.receive())["id"] == 2
        await t.close()
        server.close()
        await server.wait_closed()

    run(main())


# ------------------------------------------------------------------------------------------ TLS and credentials


def test_tls_to_the_nats_server_with_client_certificates(run: Run[None], pki: Pki) -> None:
    """tls:// with ssl=: the NATS server checks our certificate, we check its; no certificate, no connection."""
    tls = ("--tlsverify", "--tlscert", str(pki.server_cert), "--tlskey", str(pki.server_key))
    with start_node(extra=(*tls, "--tlscacert", str(pki.ca))) as secured:
        address = f"tls://127.0.0.1:{secured.port}/{subject()}"
        ctx = ssl.create_default_context(cafile=pki.ca)
        ctx.load_cert_chain(pki.client_cert, pki.client_key)

        async def main() -> None:
            async with (
                await rpcwire.serve(echo_handler, address, ssl=ctx),
                await rpcwire.connect(address, ssl=ctx) as t,
            ):
                await t.send(request(1, text="over TLS"))
                assert (await t.receive())["result"] == {"text": "over TLS"}
            anonymous = ssl.create_default_context(cafile=pki.ca)
            with pytest.raises(ConnectionRefusedError, match="cannot reach NATS"):
                await rpcwire.connect(address, ssl=anonymous, timeout=3, nats_options={"max_reconnect_attempts": 1})
            stranger = ssl.create_default_context(cafile=pki.other_ca)
            stranger.load_cert_chain(pki.client_cert, pki.client_key)
            with pytest.raises(ConnectionRefusedError, match="cannot reach NATS"):
                await rpcwire.connect(address, ssl=stranger, timeout=3, nats_options={"max_reconnect_attempts": 1})

        run(main())


def test_credentials_in_the_url_or_in_nats_options(run: Run[None]) -> None:
    with start_node(extra=("--auth", "s3cret")) as guarded:
        subj = subject()
        address = f"nats://s3cret@127.0.0.1:{guarded.port}/{subj}"

        async def main() -> None:
            async with await rpcwire.serve(echo_handler, address) as server:
                assert "s3cret" not in server.address
                async with await rpcwire.connect(address) as t:
                    await t.send(request(1))
                    assert (await t.receive())["id"] == 1
                bare = f"nats://127.0.0.1:{guarded.port}/{subj}"
                async with await rpcwire.connect(bare, nats_options={"token": "s3cret"}) as t:
                    await t.send(request(2))
                    assert (await t.receive())["id"] == 2
                with pytest.raises(ConnectionRefusedError, match="cannot reach NATS"):
                    await rpcwire.connect(bare, nats_options={"token": "wrong", "max_reconnect_attempts": 1}, timeout=3)

        run(main())


# ------------------------------------------------------------------------------------------ plain NATS clients


def test_plain_nats_requests_are_answered(run: Run[None], node: NatsNode) -> None:
    """Any NATS client: one JSON-RPC request per NATS request, its response as the reply."""
    import orjson

    subj = subject()

    async def main() -> None:
        async with await rpcwire.serve(echo_handler, f"{node.url}/{subj}"):
            nc = await nats.connect(node.url)
            try:
                reply = await nc.request(subj, b'{"jsonrpc":"2.0","id":7,"method":"add","params":[1,2]}', timeout=5)
                assert orjson.loads(reply.data) == {"jsonrpc": "2.0", "id": 7, "result": [1, 2]}
                # pretty-printed, with newlines inside: still one message
                pretty = b'{\n  "jsonrpc": "2.0",\n  "id": "a",\n  "method": "m",\n  "params": {"k": "v"}\n}'
                reply = await nc.request(subj, pretty, timeout=5)
                assert orjson.loads(reply.data) == {"jsonrpc": "2.0", "id": "a", "result": {"k": "v"}}
                # not JSON: the JSON-RPC parse error, as a server must answer it
                reply = await nc.request(subj, b'{"jsonrpc": "2.0", "id": 1, "meth', timeout=5)
                assert orjson.loads(reply.data)["error"]["code"] == -32700
                # many concurrent plain requests
                replies = await asyncio.gather(
                    *(nc.request(subj, orjson.dumps(request(i)), timeout=10) for i in range(200))
                )
                assert [orjson.loads(r.data)["id"] for r in replies] == list(range(200))
                # a batch gets its array of responses
                batch = [request(1, a=1), request(2, b=2)]
                reply = await nc.request(subj, orjson.dumps(batch), timeout=5)
                assert orjson.loads(reply.data) == {"jsonrpc": "2.0", "id": None, "result": batch}
            finally:
                await nc.close()

    run(main())


def test_plain_requests_are_refused_by_a_keyed_service(run: Run[None], node: NatsNode) -> None:
    import orjson

    subj = subject()

    async def main() -> None:
        async with await rpcwire.serve(echo_handler, f"{node.url}/{subj}", **SEALED):
            nc = await nats.connect(node.url)
            try:
                reply = await nc.request(subj, orjson.dumps(request(1)), timeout=5)
                error = orjson.loads(reply.data)["error"]
                assert error["code"] == -32600
                assert "sealed" in error["message"]
            finally:
                await nc.close()

    run(main())


# ------------------------------------------------------------------------------------------ hostile peers


def test_a_peer_breaking_the_carriage_ends_only_its_connection(run: Run[None], node: NatsNode) -> None:
    """Raw NATS messages to a connection's subject: each violation ends that connection with a clear error."""
    from rpcwire import _nats

    address = f"{node.url}/{subject()}"

    async def main() -> None:
        async with await rpcwire.serve(echo_handler, address) as server:
            good = await rpcwire.connect(address)
            nc = await nats.connect(node.url)
            try:
                cases = [
                    (b"\x01", "shorter than its header"),
                    (_nats._HEAD.pack(9, 1, 0), "unknown kind 9"),
                    (_nats._HEAD.pack(_nats.BEAT, 0, 5), "never sent"),
                    (_nats._HEAD.pack(_nats.NACK, 50, 0), "never sent"),
                ]
                for packet, why in cases:
                    victim = await rpcwire.connect(address)
                    server_subject = victim.get_extra_info("peername")
                    await nc.publish(server_subject, packet)
                    # the server ended it: the client hears a RESET
                    with pytest.raises(rpcwire.ConnectionClosed) as info:
                        await victim.receive()
                    assert "reset" in repr(info.value.__cause__) or "reset" in str(info.value), why
                    await victim.close()
                    await good.send(request(1))
                    assert (await good.receive())["id"] == 1
                # opens that are not opens, from a raw client: answered with nothing (or a refusal), no harm done
                subj = parse_address(address).subject
                assert subj is not None
                for junk in (_nats.MAGIC, _nats.MAGIC + b"\x01", _nats._open_message(1, 1, 1, b"bad subject*")):
                    with pytest.raises(nats.errors.TimeoutError):
                        await nc.request(subj, junk, timeout=0.3)
                assert server.connections == 1
            finally:
                await nc.close()
                await good.close()

    run(main())


def test_a_reader_that_stops_reading_holds_its_sender_within_the_window(run: Run[None], node: NatsNode) -> None:
    """Flow control end to end: the reader stops, the sender's send waits, nothing is dropped."""
    address = f"{node.url}/{subject()}"

    async def main() -> None:
        received: asyncio.Queue[rpcwire.Transport] = asyncio.Queue()
        done = asyncio.Event()

        async def handler(t: rpcwire.Transport) -> None:
            await received.put(t)
            await done.wait()

        async with await rpcwire.serve(handler, address):
            t = await rpcwire.connect(address)
            server_side = await received.get()
            blob = {"jsonrpc": "2.0", "method": "n", "params": {"pad": "z" * 10_000}}
            sent = 0

            async def flood() -> None:
                nonlocal sent
                while True:
                    await t.send(blob)
                    sent += 1

            task = asyncio.get_running_loop().create_task(flood())
            await asyncio.sleep(1.0)
            stalled_at = sent
            await asyncio.sleep(0.5)
            assert sent == stalled_at, "the sender must wait while the reader does not read"
            # held at most: the window, the reader's queue and the sender's write buffer
            assert stalled_at * 10_000 < 40 * 2**20
            task.cancel()
            got = 0
            while got < stalled_at:
                await server_side.receive()
                got += 1
            assert got == stalled_at
            await t.close()
            done.set()

    run(main())


# ------------------------------------------------------------------------------------------ many instances


def test_callers_spread_over_three_instances(node: NatsNode) -> None:
    """90 callers, 3 serving processes in one queue group: each takes at least 10 (a fair spread fails that
    less than once in a million runs)."""
    address = f"{node.url}/{subject()}"
    with instances(address, ["a", "b", "c"]):

        async def main() -> Counter[str]:
            callers = await asyncio.gather(*(rpcwire.connect(address) for _ in range(90)))
            names = await asyncio.gather(*(whoami(t) for t in callers))
            # a connection stays on its instance
            again = await asyncio.gather(*(whoami(t, 1) for t in callers))
            assert names == again
            await asyncio.gather(*(t.close() for t in callers))
            # plain requests reach the instances too (they serve with handle())
            nc = await nats.connect(node.url)
            try:
                subj = parse_address(address).subject
                assert subj is not None
                reply = await nc.request(subj, b'{"jsonrpc":"2.0","id":5,"method":"whoami"}', timeout=5)
                assert json.loads(reply.data)["result"] in {"a", "b", "c"}
            finally:
                await nc.close()
            return Counter(names)

        spread = asyncio.run(main())
    assert set(spread) == {"a", "b", "c"}
    assert min(spread.values()) >= 10, spread


async def _caller(address: str, count: int, opts: dict[str, Any], size: int = 100) -> tuple[str, list[int]]:
    """One connection: ``count`` requests pipelined in windows of 100; returns the instance and the ids back."""
    t = await rpcwire.connect(address, **opts)
    try:
        name = await whoami(t, -1)
        ids: list[int] = []
        pad = "p" * size
        for start in range(0, count, 100):
            await t.send_many([request(i, pad=pad) for i in range(start, min(count, start + 100))])
            for _ in range(start, min(count, start + 100)):
                reply = await t.receive()
                assert reply["result"]["pad"] == pad
                ids.append(reply["id"])
        return name, ids
    finally:
        await t.close()


@pytest.mark.slow
def test_twenty_callers_three_thousand_messages_sealed_nothing_lost(node: NatsNode) -> None:
    """20 callers x 3000 requests, lz4 + keyring, over 3 instances: 0 lost, 0 duplicated, 0 reordered."""
    address = f"{node.url}/{subject()}"
    with instances(address, ["a", "b", "c"], SEALED_JSON):

        async def main() -> list[tuple[str, list[int]]]:
            return await asyncio.gather(*(_caller(address, 3000, SEALED, size=300) for _ in range(20)))

        results = asyncio.run(main())
    for _, ids in results:
        assert ids == list(range(3000))  # none lost, none twice, in order
    assert len({name for name, _ in results}) >= 2


@pytest.mark.slow
def test_kill_one_instance_mid_run(node: NatsNode) -> None:
    """kill -9 one serving process while 30 callers run: its callers get ConnectionClosed within peer_timeout
    (2 s), the others go on without loss, and new connections land on the survivors."""
    address = f"{node.url}/{subject()}"
    with instances(address, ["a", "b", "c"]) as procs:

        async def main() -> None:
            callers = await asyncio.gather(*(rpcwire.connect(address) for _ in range(30)))
            names = await asyncio.gather(*(whoami(t) for t in callers))
            killed_at = 0.0
            outcomes: list[tuple[str, float | None, int]] = []

            async def run_caller(t: rpcwire.Transport, name: str) -> None:
                i = 0
                try:
                    while True:
                        await t.send(request(i))
                        reply = await t.receive()
                        assert reply["id"] == i
                        i += 1
                        if killed_at and time.monotonic() - killed_at > 3.0:
                            outcomes.append((name, None, i))
                            return
                except rpcwire.ConnectionClosed:
                    outcomes.append((name, time.monotonic() - killed_at, i))

            runs = [
                asyncio.get_running_loop().create_task(run_caller(t, n)) for t, n in zip(callers, names, strict=True)
            ]
            await asyncio.sleep(0.5)
            victim = names[0]
            killed_at = time.monotonic()
            procs[victim].send_signal(signal.SIGKILL)
            await asyncio.gather(*runs)
            for name, after, count in outcomes:
                if name == victim:
                    assert after is not None, "a caller of the killed instance went on"
                    assert after <= 2.0, f"ConnectionClosed {after:.2f} s after the kill"
                else:
                    assert after is None, f"a caller of {name} ended"
                    assert count > 10
            fresh = await asyncio.gather(*(rpcwire.connect(address) for _ in range(10)))
            assert {await whoami(t) for t in fresh} <= {"a", "b", "c"} - {victim}
            await asyncio.gather(*(t.close() for t in [*callers, *fresh]))

        asyncio.run(main())


@pytest.mark.slow
def test_a_dead_client_frees_its_server_side_transport(node: NatsNode) -> None:
    """kill -9 a client process: the server's connection ends within peer_timeout."""
    address = f"{node.url}/{subject()}"
    client_code = (
        "import asyncio, sys, rpcwire\n"
        "async def main():\n"
        "    t = await rpcwire.connect(sys.argv[1])\n"
        "    await t.send({'jsonrpc': '2.0', 'id': 1, 'method': 'x'})\n"
        "    await t.receive()\n"
        "    print('connected', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )

    async def main() -> None:
        async with await rpcwire.serve(echo_handler, address) as server:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", client_code, address, stdout=asyncio.subprocess.PIPE
            )
            assert proc.stdout is not None
            assert await proc.stdout.readline() == b"connected\n"
            assert server.connections == 1
            proc.kill()
            await proc.wait()
            killed = time.monotonic()
            while server.connections and time.monotonic() - killed < 3:  # noqa: ASYNC110 - polling a count
                await asyncio.sleep(0.02)
            assert server.connections == 0
            assert time.monotonic() - killed <= 2.0

    asyncio.run(main())


@pytest.mark.slow
def test_kill_one_nats_node_of_three(cluster: list[NatsNode]) -> None:
    """kill -9 one node of a 3-node cluster while callers run: every connection either goes on with nothing
    lost or ends with ConnectionClosed within 2 s; new connections work through the survivors."""
    urls = ",".join(n.hostport for n in cluster)
    subj = subject()
    # each instance prefers another node, so some connections run through the one that dies
    with contextlib.ExitStack() as stack:
        for i, name in enumerate("abc"):
            order = ",".join(n.hostport for n in cluster[i:] + cluster[:i])
            stack.enter_context(instances(f"nats://{order}/{subj}", [name]))

        async def main() -> None:
            callers = []
            for i in range(30):
                n = len(cluster)
                order = ",".join(x.hostport for x in cluster[i % n :] + cluster[: i % n])
                callers.append(await rpcwire.connect(f"nats://{order}/{subj}", nats_options={"dont_randomize": True}))
            killed_at = 0.0
            went_on = ended = 0

            async def run_caller(t: rpcwire.Transport) -> None:
                nonlocal went_on, ended
                i = 0
                try:
                    while True:
                        await t.send(request(i))
                        reply = await t.receive()
                        assert reply["id"] == i, "lost or reordered"
                        i += 1
                        if killed_at and time.monotonic() - killed_at > 4.0:
                            went_on += 1
                            return
                except rpcwire.ConnectionClosed:
                    assert killed_at, "a connection ended before the kill"
                    assert time.monotonic() - killed_at <= 2.5
                    ended += 1

            runs = [asyncio.get_running_loop().create_task(run_caller(t)) for t in callers]
            await asyncio.sleep(0.5)
            killed_at = time.monotonic()
            cluster[0].kill()
            await asyncio.gather(*runs)
            assert went_on + ended == 30
            assert went_on > 0
            fresh = await rpcwire.connect(f"nats://{urls}/{subj}")
            assert await whoami(fresh) in {"a", "b", "c"}
            await asyncio.gather(*(t.close() for t in [*callers, fresh]))

        asyncio.run(main())
