"""Sessions (docs/wire-format.md 3.4): the Noise NNpsk0 handshake and per-connection keys, at the codec level.

The handshake is checked against the Python ``noiseprotocol`` package (an independent Noise implementation)
byte for byte, and the published vectors of section 6 are opened with the keys it derives and the
``cryptography`` package alone. ``rpcwire.Codec`` and ``rpcwire.reference.Codec`` then shake hands with each
other in both roles.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rpcwire
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from noise.connection import Keypair, NoiseConnection
from rpcwire import reference

DOC = Path(__file__).resolve().parent.parent / "docs" / "wire-format.md"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def load_session_vector() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 6. Session test vectors") :]
    (body,) = re.findall(r"^### 6\.1 .+?\n\n```text\n(.*?)```", section, re.S | re.M)
    return dict(line.split(": ", 1) for line in body.splitlines())


VECTOR = load_session_vector()
KEY = bytes.fromhex(VECTOR["key"])
KEY_ID = int(VECTOR["key_id"])


def noise_side(initiator: bool, ephemeral: bytes) -> NoiseConnection:
    conn = NoiseConnection.from_name(b"Noise_NNpsk0_25519_AESGCM_SHA256")
    conn.set_psks(psk=KEY)
    conn.set_prologue(b"rpcwire/2" + KEY_ID.to_bytes(4, "big"))
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fixed ephemeral keys are for tests only": this is a test
        conn.start_handshake()
    return conn


def payload(frame_hex: str) -> bytes:
    frame = bytes.fromhex(frame_hex)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    return frame[4:]


def test_the_vector_is_what_an_independent_noise_implementation_writes() -> None:
    initiator = noise_side(True, bytes.fromhex(VECTOR["initiator_ephemeral"]))
    responder = noise_side(False, bytes.fromhex(VECTOR["responder_ephemeral"]))
    hello, reply = payload(VECTOR["hello"]), payload(VECTOR["reply"])
    message1 = initiator.write_message()
    assert hello == b"\xfb\x02\x10" + KEY_ID.to_bytes(4, "big") + message1
    responder.read_message(message1)
    message2 = responder.write_message()
    assert reply == b"\xfb\x02\x10" + message2
    initiator.read_message(message2)
    assert initiator.handshake_finished

    # The data frames open with Split()'s keys, by hand: header || AES-256-GCM(k, 0000 || seq, aad=header).
    to_responder = initiator.noise_protocol.cipher_state_encrypt.k
    to_initiator = initiator.noise_protocol.cipher_state_decrypt.k
    for frame_hex, text, key in (
        (VECTOR["initiator_frame"], VECTOR["initiator_input"], to_responder),
        (VECTOR["responder_frame"], VECTOR["responder_input"], to_initiator),
    ):
        data = payload(frame_hex)
        header, sealed = data[:11], data[11:]
        assert header[:3] == b"\xfb\x02\x04"
        seq = int.from_bytes(header[3:11], "big")
        assert seq == 0
        plain = AESGCM(key).decrypt(bytes(4) + seq.to_bytes(8, "big"), sealed, header)
        assert plain == text.encode()


def fixed(hex_key: str) -> Callable[[], bytes]:
    return lambda: bytes.fromhex(hex_key)


def test_the_reference_codec_writes_the_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = reference.Keyring({KEY_ID: KEY}, active=KEY_ID)
    monkeypatch.setattr(reference.Codec, "_ephemeral_source", staticmethod(fixed(VECTOR["initiator_ephemeral"])))
    initiator = reference.Codec(keyring=ring, handshake="initiator")
    monkeypatch.setattr(reference.Codec, "_ephemeral_source", staticmethod(fixed(VECTOR["responder_ephemeral"])))
    responder = reference.Codec(keyring=ring, handshake="responder")
    assert initiator.data_to_send() == bytes.fromhex(VECTOR["hello"])
    assert responder.feed(bytes.fromhex(VECTOR["hello"])) == []
    assert responder.data_to_send() == bytes.fromhex(VECTOR["reply"])
    assert initiator.feed(bytes.fromhex(VECTOR["reply"])) == []
    assert initiator.encode(PING) == bytes.fromhex(VECTOR["initiator_frame"])
    assert responder.feed(bytes.fromhex(VECTOR["initiator_frame"])) == [PING]


def test_rpcwire_opens_the_vector_as_a_responder() -> None:
    """The Rust responder reads the published hello and the initiator's first frame (its own reply differs:
    its ephemeral is fresh, so the frame after the hello is refused, never misread)."""
    ring = rpcwire.Keyring({KEY_ID: KEY}, active=KEY_ID)
    responder = rpcwire.Codec(keyring=ring, handshake="responder")
    assert responder.feed(bytes.fromhex(VECTOR["hello"])) == []
    assert responder.established
    reply = responder.data_to_send()
    assert len(reply) == 4 + 51
    assert reply != bytes.fromhex(VECTOR["reply"])
    with pytest.raises(rpcwire.DecryptError, match="authentication failed"):
        responder.feed(bytes.fromhex(VECTOR["initiator_frame"]))


Maker = Callable[..., Any]
IMPLS: dict[str, tuple[Maker, Callable[[Any], Any]]] = {
    "rust": (rpcwire.Codec, lambda ring: ring),
    "reference": (reference.Codec, reference.Keyring.coerce),
}


def shake(initiator: Any, responder: Any) -> None:
    responder.feed(initiator.data_to_send())
    initiator.feed(responder.data_to_send())


@pytest.mark.parametrize("compression", [None, "lz4", "brotli"])
@pytest.mark.parametrize("responder_impl", sorted(IMPLS))
@pytest.mark.parametrize("initiator_impl", sorted(IMPLS))
def test_each_implementation_shakes_hands_with_each(
    initiator_impl: str, responder_impl: str, compression: str | None
) -> None:
    ring = rpcwire.Keyring.generate()
    make_i, coerce_i = IMPLS[initiator_impl]
    make_r, coerce_r = IMPLS[responder_impl]
    i = make_i(keyring=coerce_i(ring), compression=compression, compress_min_size=0, handshake="initiator")
    r = make_r(keyring=coerce_r(ring), compression=compression, compress_min_size=0, handshake="responder")
    assert (i.handshake, r.handshake) == ("initiator", "responder")
    assert not i.established
    assert r.data_to_send() == b""
    shake(i, r)
    assert i.established
    assert r.established
    assert i.data_to_send() == r.data_to_send() == b""
    batch = [{"jsonrpc": "2.0", "method": "n", "params": {"i": n, "text": "x" * 300}} for n in range(5)]
    assert r.feed(i.encode_many(batch)) == batch
    assert i.feed(r.encode(PING)) == [PING]
    assert r.feed(i.encode(PING) + i.encode(PING)) == [PING, PING]


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_nothing_is_sealed_before_the_handshake(impl: str) -> None:
    make, coerce = IMPLS[impl]
    codec = make(keyring=coerce(rpcwire.Keyring.generate()), handshake="initiator")
    with pytest.raises(ValueError, match="handshake is not complete"):
        codec.encode(PING)
    with pytest.raises(ValueError, match="handshake is not complete"):
        codec.encode_many([PING])


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_handshake_needs_a_keyring_and_a_role(impl: str) -> None:
    make, coerce = IMPLS[impl]
    with pytest.raises(ValueError, match="needs a keyring"):
        make(framing="length", handshake="initiator")
    with pytest.raises(ValueError, match="'initiator' or 'responder'"):
        make(keyring=coerce(rpcwire.Keyring.generate()), handshake="client")


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_frames_of_one_session_do_not_open_in_another_or_reflected(impl: str) -> None:
    make, coerce = IMPLS[impl]
    ring = coerce(rpcwire.Keyring.generate())
    pairs = []
    for _ in range(2):
        i, r = make(keyring=ring, handshake="initiator"), make(keyring=ring, handshake="responder")
        shake(i, r)
        pairs.append((i, r))
    (i1, r1), (i2, r2) = pairs
    from_client, from_server = i1.encode(PING), r1.encode(PING)
    for receiver, frame in ((r2, from_client), (i2, from_server)):
        with pytest.raises(rpcwire.DecryptError, match="authentication failed"):
            receiver.feed(frame)
    with pytest.raises(rpcwire.DecryptError, match="authentication failed"):
        r1.feed(from_server)  # reflected back to the server on its own connection
    with pytest.raises(rpcwire.DecryptError, match="authentication failed"):
        i1.feed(from_client)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_replayed_connection_delivers_nothing(impl: str) -> None:
    """A whole recorded client stream (hello and data) fed to a new responder: the hello is answered, with
    a fresh ephemeral, and the data frames then fail: the recording is useless on a new connection."""
    make, coerce = IMPLS[impl]
    ring = coerce(rpcwire.Keyring.generate())
    i, r = make(keyring=ring, handshake="initiator"), make(keyring=ring, handshake="responder")
    hello = i.data_to_send()
    r.feed(hello)
    i.feed(r.data_to_send())
    recorded = hello + i.encode(PING)
    assert r.feed(recorded[len(hello) :]) == [PING]
    fresh = make(keyring=ring, handshake="responder")
    with pytest.raises(rpcwire.DecryptError, match="authentication failed") as caught:
        fresh.feed(recorded)
    assert getattr(caught.value, "items", None) in (None, [])


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_version_mixes_are_refused_clearly(impl: str) -> None:
    make, coerce = IMPLS[impl]
    ring = coerce(rpcwire.Keyring.generate())
    stream = make(keyring=ring)  # the stream form: one-way use, and what rpcwire 0.1 spoke
    session = make(keyring=ring, handshake="responder")
    with pytest.raises(rpcwire.DecryptError, match="does not do the session handshake"):
        session.feed(stream.encode(PING))
    hello = make(keyring=ring, handshake="initiator").data_to_send()
    with pytest.raises(rpcwire.FramingError, match="envelope version 2"):
        make(keyring=ring).feed(hello)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_hello_under_another_key_gets_no_reply(impl: str) -> None:
    make, coerce = IMPLS[impl]
    hello = make(keyring=coerce(rpcwire.Keyring({4: bytes(32)}, active=4)), handshake="initiator").data_to_send()
    for ring, message in (
        (rpcwire.Keyring({4: bytes([1]) * 32}, active=4), "does not hold key id 4"),
        (rpcwire.Keyring({5: bytes(32)}, active=5), "unknown key id 4"),
    ):
        responder = make(keyring=coerce(ring), handshake="responder")
        with pytest.raises(rpcwire.DecryptError, match=message):
            responder.feed(hello)
        assert responder.data_to_send() == b""
        assert not responder.established


def test_every_flipped_bit_of_the_hello_is_refused() -> None:
    ring = rpcwire.Keyring.generate()
    hello = rpcwire.Codec(keyring=ring, handshake="initiator").data_to_send()
    for bit in range(32, len(hello) * 8):  # past the length prefix
        bad = bytearray(hello)
        bad[bit // 8] ^= 1 << (bit % 8)
        responder = rpcwire.Codec(keyring=ring, handshake="responder")
        with pytest.raises((rpcwire.DecryptError, rpcwire.FramingError)):
            responder.feed(bytes(bad))
        assert responder.data_to_send() == b""


@pytest.mark.parametrize(("initiator_framing", "responder_framing"), [("content-length", "auto"), ("length", "auto")])
@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_the_handshake_rides_every_binary_framing(impl: str, initiator_framing: str, responder_framing: str) -> None:
    make, coerce = IMPLS[impl]
    ring = coerce(rpcwire.Keyring.generate())
    i = make(framing=initiator_framing, keyring=ring, handshake="initiator")
    r = make(framing=responder_framing, keyring=ring, handshake="responder")
    hello = i.data_to_send()
    assert hello.startswith(b"Content-Length: 55\r\n\r\n" if initiator_framing == "content-length" else b"\0\0\0\x37")
    assert r.feed(hello) == []
    assert r.framing == initiator_framing
    assert i.feed(r.data_to_send()) == []
    assert r.feed(i.encode(PING)) == [PING]
    assert i.feed(r.encode(PING)) == [PING]
