"""TLS and the pre-shared-key envelope against plaintext TCP, in one process: ``python -m benches.tls``.

Each round runs the same workload over four TCP set-ups, in turn: plaintext, TLS (``ssl=``, a certificate made
here with ``cryptography``), the AES-256-GCM envelope in sessions (a keyring: the Noise NNpsk0 handshake, then
per-connection keys; what the transports do), and the envelope in the stream form (a keyring's key sealing every
frame, no handshake: rpcwire 0.1's transports, kept for one-way use; run here through ``_protocol.codec_class``).
The workload: a fresh connection (``connect`` returning, and its first reply: connect, handshake, one round
trip), ``--round-trips`` sequential 150 B round trips, and ``--messages`` one-way 150 B messages answered by a
``handle()`` server. Prints the median of each figure over the rounds and its ratio to plaintext (>1: slower than
plaintext), then sessions against the stream form. Rounds interleave the set-ups, so the machine's drift hits
all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import rpcwire
import rpcwire._protocol
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MSG = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_forecast", "city": "x" * 60}}


def contexts(d: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server context and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(d / "cert.pem", d / "key.pem")
    client = ssl.create_default_context(cafile=d / "cert.pem")
    return server, client


def stream_form(**kwargs: Any) -> rpcwire.Codec:
    """A codec as rpcwire 0.1's transports made them: the keyring's key seals every frame, no handshake."""
    kwargs.pop("handshake", None)
    return rpcwire.Codec(**kwargs)


async def one(setup: dict[str, Any], round_trips: int, messages: int) -> dict[str, float]:
    rpcwire._protocol.codec_class = setup.get("codec")
    try:
        return await measure(setup, round_trips, messages)
    finally:
        rpcwire._protocol.codec_class = None


async def measure(setup: dict[str, Any], round_trips: int, messages: int) -> dict[str, float]:
    got = asyncio.Event()
    count = 0

    async def handler(t: rpcwire.Transport) -> None:
        def answer(m: Any) -> Any:
            nonlocal count
            if "id" in m:
                return {"jsonrpc": "2.0", "id": m["id"], "result": m["params"]}
            count += 1
            if count == messages:
                got.set()
            return None

        await t.handle(answer)

    server = await rpcwire.serve(handler, "tcp://127.0.0.1:0", **setup["server"])
    async with server:
        started = time.perf_counter()
        t = await rpcwire.connect(server.address, **setup["client"])
        connected = time.perf_counter()
        await t.send(MSG)
        await t.receive()
        first = time.perf_counter()
        for _ in range(round_trips):
            await t.send(MSG)
            await t.receive()
        trips = time.perf_counter()
        note = {"jsonrpc": "2.0", "method": "n", "params": MSG["params"]}
        for _ in range(messages):
            await t.send(note)
        await got.wait()
        done = time.perf_counter()
        await t.close()
    return {
        "connect ms": (connected - started) * 1e3,
        "first reply ms": (first - started) * 1e3,
        "round trip us": (trips - first) / round_trips * 1e6,
        "one-way msg/s": messages / (done - trips),
    }


async def main(rounds: int, round_trips: int, messages: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        server_ctx, client_ctx = contexts(Path(d))
        ring = rpcwire.Keyring.generate()
        setups = {
            "plaintext": {"server": {}, "client": {}},
            "TLS": {"server": {"ssl": server_ctx}, "client": {"ssl": client_ctx}},
            "session": {"server": {"keyring": ring}, "client": {"keyring": ring}},
            "stream form": {"server": {"keyring": ring}, "client": {"keyring": ring}, "codec": stream_form},
        }
        results: dict[str, dict[str, list[float]]] = {name: {} for name in setups}
        for _ in range(rounds):
            for name, setup in setups.items():
                for figure, value in (await one(setup, round_trips, messages)).items():
                    results[name].setdefault(figure, []).append(value)
    figures = list(results["plaintext"])
    print("| set-up | " + " | ".join(f"{f} (median) | vs plaintext" for f in figures) + " |")  # noqa: T201
    print("|---" * (1 + 2 * len(figures)) + "|")  # noqa: T201
    for name, by_figure in results.items():
        cells = []
        for figure in figures:
            value = statistics.median(by_figure[figure])
            base = statistics.median(results["plaintext"][figure])
            # "vs plaintext" as a cost: >1 is slower (higher time, lower rate).
            ratio = base / value if figure.endswith("/s") else value / base
            cells += [f"{value:,.1f}", f"{ratio:.2f}x"]
        print(f"| {name} | " + " | ".join(cells) + " |")  # noqa: T201
    # Sessions against the stream form, as a speed (>1: sessions are faster).
    cells = []
    for figure in figures:
        session, stream = (statistics.median(results[n][figure]) for n in ("session", "stream form"))
        cells.append(f"{figure}: {session / stream if figure.endswith('/s') else stream / session:.2f}x")
    print("\nsession vs stream form (speed, >1 faster): " + ", ".join(cells))  # noqa: T201


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=50000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.round_trips, args.messages))
