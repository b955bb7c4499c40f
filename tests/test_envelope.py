"""The envelope through ``rpcwire.Codec``: every refusal of docs/wire-format.md 3.2, poisoning, key
rotation, flipped bits, batch sealing, ``compress_min_size``. Frames are built by hand from the spec with
the ``cryptography``/``lz4``/``brotli`` packages where a test needs a frame rpcwire would never write.
"""

from __future__ import annotations

import os
import struct

import brotli
import lz4.frame
import pytest
import rpcwire
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from rpcwire import reference

KEY1 = bytes(range(32))
KEY2 = bytes(range(100, 132))
MSG = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
BIG = {"jsonrpc": "2.0", "id": 2, "result": {"text": "lorem ipsum dolor sit amet " * 200}}


def ring(*ids: int, active: int | None = None) -> rpcwire.Keyring:
    keys = {i: (KEY1 if i == 1 else KEY2 if i == 2 else bytes([i]) * 32) for i in ids}
    return rpcwire.Keyring(keys, active=ids[0] if active is None else active)


def length(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def sealed(
    body: bytes,
    *,
    key: bytes = KEY1,
    key_id: int = 1,
    seq: int = 0,
    prefix: bytes | None = None,
    flags: int = 0b100,
    version: int = 1,
) -> bytes:
    """An encrypted envelope built from section 3.2 alone, framed with ``length``."""
    nonce = (prefix or os.urandom(8)) + b"\0\0\0\0"
    header = bytes([0xFB, version, flags]) + struct.pack(">I12sQ", key_id, nonce, seq)
    return length(header + AESGCM(key).encrypt(nonce, body, header))


def receiver(**kwargs: object) -> rpcwire.Codec:
    return rpcwire.Codec(framing="length", **kwargs)  # type: ignore[arg-type]


BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'


class TestDecryptRefusals:
    def test_a_hand_sealed_frame_opens(self) -> None:
        assert receiver(keyring=ring(1)).feed(sealed(BODY) + sealed(BODY, seq=1)) == [MSG, MSG]

    @pytest.mark.parametrize(
        ("frame", "message"),
        [
            pytest.param(length(BODY), "plaintext", id="1-plain-json"),
            pytest.param(
                length(b"\xfb\x01\x01" + lz4.frame.compress(BODY)), "unencrypted", id="1-unencrypted-envelope"
            ),
            pytest.param(length(b"\xfb\x01\x04" + bytes(24 + 15)), "shorter", id="2-short"),
            pytest.param(sealed(BODY, key_id=9), "unknown key id 9", id="3-unknown-key"),
            pytest.param(sealed(BODY, key=KEY2), "authentication failed", id="4-wrong-key"),
            pytest.param(sealed(BODY, seq=1), "sequence number 1 where 0", id="6-dropped"),
            pytest.param(sealed(BODY, seq=2**64 - 1), "sequence number", id="6-huge-seq"),
        ],
    )
    def test_refused_and_poisoned(self, frame: bytes, message: str) -> None:
        codec = receiver(keyring=ring(1))
        with pytest.raises(rpcwire.DecryptError, match=message):
            codec.feed(frame)
        with pytest.raises(rpcwire.DecryptError):
            codec.feed(sealed(BODY))  # a good frame after a fatal error is refused too

    def test_tampered_ciphertext(self) -> None:
        frame = bytearray(sealed(BODY))
        frame[40] ^= 0x20
        with pytest.raises(rpcwire.DecryptError, match="authentication failed"):
            receiver(keyring=ring(1)).feed(bytes(frame))

    def test_replay_and_reorder(self) -> None:
        f0, f1 = sealed(BODY, seq=0), sealed(BODY, seq=1)
        codec = receiver(keyring=ring(1))
        assert codec.feed(f0) == [MSG]
        with pytest.raises(rpcwire.DecryptError, match="replayed"):
            codec.feed(f0)
        codec = receiver(keyring=ring(1))
        with pytest.raises(rpcwire.DecryptError, match="sequence number 1 where 0"):
            codec.feed(f1 + f0)

    def test_reflected_frame(self) -> None:
        codec = rpcwire.Codec(keyring=ring(1))
        frame = codec.encode(MSG)
        with pytest.raises(rpcwire.DecryptError, match="reflected"):
            codec.feed(frame)
        # The same frame opens at the real peer.
        assert rpcwire.Codec(keyring=ring(1)).feed(frame) == [MSG]

    def test_encrypted_frame_without_a_keyring(self) -> None:
        with pytest.raises(rpcwire.DecryptError, match="no keyring"):
            receiver().feed(sealed(BODY))
        with pytest.raises(rpcwire.DecryptError, match="no keyring"):
            receiver(compression="lz4").feed(sealed(BODY))


class TestFramingRefusals:
    @pytest.mark.parametrize("keyed", [False, True])
    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            (b"\xfb\x02\x00" + BODY, "envelope version 2 \\(a session frame\\) reached a codec without a handshake"),
            (b"\xfb\x03\x00" + BODY, "unknown envelope version 3"),
            (b"\xfb\x01\x10" + BODY, "reserved"),
            (b"\xfb\x01\x84" + bytes(60), "reserved"),
            (b"\xfb\x01\x03" + BODY, "zstd not supported by this build"),
            (b"\xfb\x01", "truncated"),
        ],
    )
    def test_refused_and_poisoned(self, payload: bytes, message: str, keyed: bool) -> None:
        codec = receiver(keyring=ring(1)) if keyed else receiver()
        with pytest.raises(rpcwire.FramingError, match=message):
            codec.feed(length(payload))
        with pytest.raises(rpcwire.FramingError):
            codec.feed(length(BODY))


class TestDecompression:
    def test_bomb_is_frame_too_large(self) -> None:
        # ~200 KB of brotli that inflates to 1 GiB; refused once 16 MiB (the default limit) is passed.
        comp = brotli.Compressor(quality=1, lgwin=24)
        zeros = bytes(16 << 20)
        bomb = b"".join([comp.process(zeros) for _ in range(64)] + [comp.finish()])
        assert len(bomb) < 300_000
        codec = receiver()
        with pytest.raises(rpcwire.FrameTooLarge, match="16777216"):
            codec.feed(length(b"\xfb\x01\x02" + bomb))
        with pytest.raises(rpcwire.FrameTooLarge):
            codec.feed(length(BODY))

    @pytest.mark.parametrize("keyed", [False, True])
    def test_lz4_over_max_frame_size(self, keyed: bool) -> None:
        body = lz4.frame.compress(bytes(200_000))
        kwargs = {"keyring": ring(1)} if keyed else {}
        frame = sealed(body, flags=0b101) if keyed else length(b"\xfb\x01\x01" + body)
        with pytest.raises(rpcwire.FrameTooLarge):
            receiver(max_frame_size=100_000, **kwargs).feed(frame)

    @pytest.mark.parametrize("flags", [1, 2])
    def test_undecompressable_body_is_a_parse_error_item(self, flags: int) -> None:
        codec = receiver()
        items = codec.feed(length(b"\xfb\x01" + bytes([flags]) + b"\x04\x22\x4d\x18garbage") + length(BODY))
        assert isinstance(items[0], rpcwire.ParseError)
        assert items[1] == MSG  # the stream goes on

    @pytest.mark.parametrize("impl", [rpcwire.Codec, reference.Codec], ids=["rust", "reference"])
    def test_multi_body_without_records_is_a_parse_error_item(self, impl: type) -> None:
        """Spec 3.1: a multi body holds one or more records; none is a bad frame, not an empty success."""
        items = impl(framing="length").feed(length(b"\xfb\x01\x08") + length(BODY))
        assert isinstance(items[0], rpcwire.ParseError)
        assert items[0].data == "multi envelope without records"
        assert items[1] == MSG

    def test_undecompressable_sealed_body_is_a_parse_error_item(self) -> None:
        codec = receiver(keyring=ring(1))
        items = codec.feed(sealed(b"not lz4", flags=0b101) + sealed(BODY, seq=1))
        assert isinstance(items[0], rpcwire.ParseError)
        assert items[1] == MSG


class TestSealing:
    def test_key_rotation(self) -> None:
        old = ring(1)
        new = old.with_key(2, KEY2, active=True)
        assert (new.ids, new.active) == ([1, 2], 2)
        rx = receiver(keyring=new)
        tx_old = rpcwire.Codec(keyring=old)
        frame = tx_old.encode(MSG)
        assert frame[7:11] == struct.pack(">I", 1)
        assert rx.feed(frame) == [MSG]
        # The receiver's own sender now seals with key 2; a peer with only key 1 cannot open it.
        frame2 = rpcwire.Codec(keyring=new).encode(MSG)
        assert frame2[7:11] == struct.pack(">I", 2)
        with pytest.raises(rpcwire.DecryptError, match="unknown key id 2"):
            receiver(keyring=old).feed(frame2)
        # After the switch the old key can be dropped.
        assert receiver(keyring=new.without_key(1)).feed(frame2) == [MSG]

    def test_two_seals_differ_and_hide_the_plaintext(self) -> None:
        codec = rpcwire.Codec(keyring=ring(1))
        a, b = codec.encode(BIG), codec.encode(BIG)
        assert a[31:] != b[31:]
        assert b"lorem" not in a
        assert b"jsonrpc" not in a

    def test_batch_seals_as_one_frame_in_order(self) -> None:
        msgs = [{"jsonrpc": "2.0", "id": i, "method": "m", "params": {"i": i}} for i in range(100)]
        for kwargs in ({"keyring": ring(1)}, {"keyring": ring(1), "compression": "lz4"}, {"compression": "brotli"}):
            out = rpcwire.Codec(**kwargs).encode_many(msgs)  # type: ignore[arg-type]
            (n,) = struct.unpack(">I", out[:4])
            assert n == len(out) - 4, "one frame"
            assert out[4] == 0xFB
            assert out[6] & 0b1000, "multi"
            rx = rpcwire.Codec(keyring=ring(1)) if "keyring" in kwargs else receiver()
            assert rx.feed(out) == msgs

    def test_compress_min_size(self) -> None:
        small, big = MSG, BIG
        codec = rpcwire.Codec(compression="lz4", compress_min_size=1024)
        assert codec.encode(small)[4:5] == b"{", "below the threshold: a plain frame"
        out = codec.encode(big)
        assert out[4:7] == b"\xfb\x01\x01"
        assert len(out) < 1000
        noise = {"jsonrpc": "2.0", "id": 3, "result": os.urandom(3000).hex()}
        assert codec.encode(noise)[4:5] == b"{", "incompressible: sent plain"
        keyed = rpcwire.Codec(compression="lz4", compress_min_size=1024, keyring=ring(1))
        assert keyed.encode(small)[6] == 0b100, "sealed, uncompressed"
        assert keyed.encode(big)[6] == 0b101, "sealed, lz4"

    def test_plaintext_peer_and_keyring_peer_do_not_mix(self) -> None:
        with pytest.raises(rpcwire.DecryptError):
            rpcwire.Codec(keyring=ring(1)).feed(rpcwire.Codec(framing="length").encode(MSG))


@given(st.data())
def test_flipped_bit_anywhere_is_refused(data: st.DataObject) -> None:
    frame = rpcwire.Codec(keyring=ring(1), compression="lz4", compress_min_size=0).encode(BIG)
    i = data.draw(st.integers(4, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(frame)
    bad[i] ^= 1 << bit
    with pytest.raises((rpcwire.DecryptError, rpcwire.FramingError)):
        rpcwire.Codec(keyring=ring(1)).feed(bytes(bad))


def test_flipped_bit_in_every_header_byte() -> None:
    frame = rpcwire.Codec(keyring=ring(1)).encode(MSG)
    for i in range(4, 4 + 27):
        bad = bytearray(frame)
        bad[i] ^= 0x01
        with pytest.raises((rpcwire.DecryptError, rpcwire.FramingError)):
            rpcwire.Codec(keyring=ring(1)).feed(bytes(bad))
