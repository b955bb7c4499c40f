"""TLS on TCP: ``ssl=`` on ``serve`` and ``connect``, mutual TLS, and a server from the wrong CA refused.

Certificates are made here with the ``cryptography`` package: one CA for the server and its clients, and a
second CA nobody trusts.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import rpcwire

from ._helpers import echo_handler, request
from ._pki import Pki


def server_context(pki: Pki, *, mutual: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if mutual:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.ca)
    return ctx


def client_context(pki: Pki, *, ca: Path | None = None, with_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca or pki.ca)
    if with_cert:
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
    return ctx


async def round_trips(t: rpcwire.Transport, n: int) -> None:
    await t.send_many([request(i) for i in range(n)])
    got = [(await t.receive())["id"] for _ in range(n)]
    assert got == list(range(n))


def test_a_tls_round_trip_of_200_messages(run: Any, pki: Pki) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, "tcp://127.0.0.1:0", ssl=server_context(pki)) as server:
            t = await rpcwire.connect(server.address, ssl=client_context(pki))
            await round_trips(t, 200)
            assert t.get_extra_info("ssl_object") is not None, "the bytes went over TLS"
            await t.close()

    run(main())


async def anonymous_round_trip(address: str, ctx: ssl.SSLContext) -> None:
    """One request with a client that shows no certificate (TLS 1.3 reports the refusal after the handshake)."""
    t = await rpcwire.connect(address, ssl=ctx)
    try:
        await t.send(request(1))
        await t.receive()
    finally:
        await t.close()


@pytest.mark.parametrize("codec", [{}, {"framing": "length", "compression": "lz4", "compress_min_size": 0}])
def test_mutual_tls(run: Any, pki: Pki, codec: dict[str, Any]) -> None:
    async def main() -> None:
        ctx = server_context(pki, mutual=True)
        async with await rpcwire.serve(echo_handler, "tcp://127.0.0.1:0", ssl=ctx, **codec) as server:
            t = await rpcwire.connect(server.address, ssl=client_context(pki, with_cert=True), **codec)
            await round_trips(t, 50)
            peer = t.get_extra_info("ssl_object").getpeercert()
            assert dict(x[0] for x in peer["subject"])["commonName"] == "localhost"
            await t.close()
            # Without a client certificate the server refuses the connection.
            with pytest.raises((ssl.SSLError, rpcwire.ConnectionClosed, ConnectionError)):
                await anonymous_round_trip(server.address, client_context(pki))

    run(main())


def test_a_server_certificate_from_the_wrong_ca_is_refused(run: Any, pki: Pki) -> None:
    async def main() -> None:
        async with await rpcwire.serve(echo_handler, "tcp://127.0.0.1:0", ssl=server_context(pki)) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await rpcwire.connect(server.address, ssl=client_context(pki, ca=pki.other_ca))

    run(main())


def test_ssl_is_refused_on_unix_sockets(run: Any, pki: Pki, tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="ssl= is for TCP"):
            await rpcwire.serve(echo_handler, f"unix://{tmp_path}/s.sock", ssl=server_context(pki))
        with pytest.raises(ValueError, match="ssl= is for TCP"):
            await rpcwire.connect(f"unix://{tmp_path}/s.sock", ssl=client_context(pki))

    run(main())


ECHO_CHILD = """
import json, sys
for line in sys.stdin:
    print(json.dumps({"jsonrpc": "2.0", "id": json.loads(line)["id"], "result": "ok"}), flush=True)
"""


def test_bridge_and_connect_over_mutual_tls(pki: Pki) -> None:
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = [sys.executable, "-m", "rpcwire"]
    tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-ca", str(pki.ca)]
    bridge = subprocess.Popen(
        [*cli, "bridge", f"tcp://127.0.0.1:{port}", *tls, "--", sys.executable, "-c", ECHO_CHILD],
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        client = [*cli, "connect", f"tcp://127.0.0.1:{port}", "--tls-ca", str(pki.ca)]
        mutual = [*client, "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
        line = b'{"jsonrpc":"2.0","id":5,"method":"m"}\n'
        ok = subprocess.run(mutual, input=line, capture_output=True, timeout=30, check=False)
        assert ok.returncode == 0, ok.stderr.decode()
        assert b'"id":5' in ok.stdout
        refused = subprocess.run(client, input=line, capture_output=True, timeout=30, check=False)
        assert b'"id":5' not in refused.stdout, "no client certificate, no answer"
    finally:
        bridge.terminate()
        _, err = bridge.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode(errors="replace")
