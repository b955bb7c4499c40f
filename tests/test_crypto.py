"""``rpcwire.Keyring``: construction, validation, rotation, key files, and that no repr or error leaks a key."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import rpcwire

KEY = bytes(range(32))


def test_construct_and_read_back() -> None:
    ring = rpcwire.Keyring({7: KEY, 1: bytearray(32)}, active=7)
    assert (ring.ids, ring.active, len(ring)) == ([1, 7], 7, 2)
    assert 7 in ring
    assert 2 not in ring
    assert "7" not in ring
    assert rpcwire.Keyring({3: KEY}).active == 3, "active may be omitted with one key"
    assert ring.export_keys() == {1: bytes(32), 7: KEY}


@pytest.mark.parametrize(
    ("keys", "active", "exc", "message"),
    [
        ({1: bytes(31)}, 1, ValueError, "exactly 32 bytes, got 31"),
        ({1: bytes(33)}, 1, ValueError, "exactly 32 bytes"),
        ({1: KEY}, 2, ValueError, "active key id 2"),
        ({1: KEY, 2: KEY}, None, ValueError, "active= is required"),
        ({}, None, ValueError, "at least one key"),
        ({-1: KEY}, -1, ValueError, "out of range"),
        ({2**32: KEY}, 2**32, ValueError, "out of range"),
        ({"1": KEY}, 1, TypeError, "int"),
        ({True: KEY}, 1, TypeError, "int"),
        ({1: KEY.hex()}, 1, TypeError, "bytes"),
    ],
)
def test_invalid_keyrings(keys: dict[Any, Any], active: Any, exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=message) as info:
        rpcwire.Keyring(keys, active=active)
    assert KEY.hex() not in str(info.value)
    assert repr(KEY) not in str(info.value)


def test_generate() -> None:
    a, b = rpcwire.Keyring.generate(), rpcwire.Keyring.generate(key_id=9)
    assert (a.ids, a.active, b.ids, b.active) == ([1], 1, [9], 9)
    assert a.export_keys()[1] != rpcwire.Keyring.generate().export_keys()[1]
    with pytest.raises(ValueError, match="out of range"):
        rpcwire.Keyring.generate(-5)


def test_rotation_helpers_return_new_rings() -> None:
    ring = rpcwire.Keyring({1: KEY})
    two = ring.with_key(2, bytes(32))
    assert (ring.ids, two.ids, two.active) == ([1], [1, 2], 1)
    assert two.with_active(2).active == 2
    assert ring.with_key(2, bytes(32), active=True).active == 2
    assert two.without_key(2).ids == [1]
    with pytest.raises(ValueError, match="active key"):
        two.without_key(1)
    with pytest.raises(ValueError, match="not in the keyring"):
        ring.with_active(5)
    with pytest.raises(ValueError, match="32 bytes"):
        ring.with_key(3, b"short")


def test_repr_and_str_show_ids_only() -> None:
    ring = rpcwire.Keyring({1: KEY, 2: bytes(range(1, 33))}, active=2)
    assert repr(ring) == "Keyring(ids=[1, 2], active=2)"
    assert str(ring) == repr(ring)
    codec = rpcwire.Codec(keyring=ring)
    for text in (repr(ring), str(ring), repr(codec)):
        assert KEY.hex() not in text
        assert "\\x00\\x01\\x02" not in text


def test_key_file_round_trip(tmp_path: Path) -> None:
    ring = rpcwire.Keyring({1: KEY, 4: bytes(32)}, active=4)
    path = tmp_path / "keys.json"
    ring.to_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc == {"version": 1, "active": 4, "keys": {"1": KEY.hex(), "4": "00" * 32}}
    back = rpcwire.Keyring.from_file(str(path))
    assert (back.ids, back.active, back.export_keys()) == (ring.ids, ring.active, ring.export_keys())
    # Overwriting is atomic (rename) and leaves no temporary file behind.
    ring.with_active(1).to_file(path)
    assert rpcwire.Keyring.from_file(path).active == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]
    # The reference implementation reads the same file.
    from rpcwire import reference

    assert reference.Keyring.from_file(path).keys == {1: KEY, 4: bytes(32)}


def test_key_file_written_by_hand_opens(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(json.dumps({"version": 1, "active": 2, "keys": {"2": KEY.hex().upper()}}))
    path.chmod(0o600)
    assert rpcwire.Keyring.from_file(path).export_keys() == {2: KEY}


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keys.json"
    rpcwire.Keyring({1: KEY}).to_file(path)
    path.chmod(mode)
    with pytest.raises(PermissionError, match="chmod 600"):
        rpcwire.Keyring.from_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"version": 2, "active": 1, "keys": {}}', "version"),
        ('{"version": 1, "active": 1, "keys": {"1": "' + "zz" * 32 + '"}}', "64 hex"),
        ('{"version": 1, "active": 1, "keys": {"1": "' + KEY.hex()[:-2] + '"}}', "64 hex"),
        ('{"version": 1, "active": 3, "keys": {"1": "' + KEY.hex() + '"}}', "active key id 3"),
        ('{"version": 1, "active": 1, "keys": {"x": "' + KEY.hex() + '"}}', "decimal"),
    ],
)
def test_malformed_key_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ValueError, match=message) as info:
        rpcwire.Keyring.from_file(path)
    assert KEY.hex()[:20] not in str(info.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        rpcwire.Keyring.from_file(tmp_path / "nope")


def test_a_forked_child_never_continues_the_parents_nonce_stream() -> None:
    """After os.fork() parent and child hold the same nonce sequence: the child draws a fresh prefix, so the
    two never seal different plaintexts under one key and nonce."""
    import subprocess
    import sys
    import textwrap

    code = """
    import os, rpcwire
    codec = rpcwire.Codec(framing="length", keyring=rpcwire.Keyring({1: b"k" * 32}, active=1))
    msg = {"jsonrpc": "2.0", "method": "n"}
    codec.encode(msg)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, codec.encode({"jsonrpc": "2.0", "method": "child"})[11:23])
        os._exit(0)
    parent = codec.encode({"jsonrpc": "2.0", "method": "parent"})[11:23]
    os.waitpid(pid, 0)
    child = os.read(r, 12)
    print(parent.hex(), child.hex())
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    parent, child = bytes.fromhex(out[0]), bytes.fromhex(out[1])
    assert parent[8:] == (1).to_bytes(4, "big"), "the parent goes on with its own stream"
    assert child[:8] != parent[:8], "the child sealed under a fresh prefix, not the parent's"


def test_a_forked_child_cannot_seal_on_its_parents_session() -> None:
    """A session's nonces are its sequence numbers: a forked child sealing on the parent's connection would
    reuse them, so it refuses, clearly; the parent goes on."""
    import subprocess
    import sys
    import textwrap

    code = """
    import os, rpcwire
    ring = rpcwire.Keyring({1: b"k" * 32}, active=1)
    i = rpcwire.Codec(keyring=ring, handshake="initiator")
    r = rpcwire.Codec(keyring=ring, handshake="responder")
    r.feed(i.data_to_send())
    i.feed(r.data_to_send())
    msg = {"jsonrpc": "2.0", "method": "n"}
    r.feed(i.encode(msg))
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            i.encode(msg)
            os.write(wr, b"sealed")
        except ValueError as exc:
            os.write(wr, str(exc).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(os.read(rd, 1000).decode())
    print(r.feed(i.encode({"jsonrpc": "2.0", "method": "parent"})))
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=30, check=True
    ).stdout.splitlines()
    assert "forked child cannot seal" in out[0]
    assert out[1] == "[{'jsonrpc': '2.0', 'method': 'parent'}]"
