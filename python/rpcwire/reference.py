"""A pure-Python implementation of the rpcwire wire format (docs/wire-format.md).

``reference.Codec`` has the constructor, ``feed``, ``encode`` and ``encode_many`` of
``rpcwire.Codec`` and writes the same bytes wherever the output is deterministic (everything but
compressed bodies, which depend on the compressor, and encrypted ones, which depend on random
nonces: those the two implementations decode from each other instead).

It is written from docs/wire-format.md alone, with ``orjson``, ``lz4``, ``brotli`` and
``cryptography`` (the ``rpcwire[reference]`` extra), and serves two purposes:

* the oracle the differential tests hold ``rpcwire.Codec`` to;
* the "what you would write yourself" baseline of the benchmarks, so it is written to be fast for
  pure Python: orjson for JSON, one ``bytearray`` per connection with front deletion (never
  ``buffer + chunk``), lines and frames cut straight from the caller's chunk when nothing is
  buffered, streaming decompressors with output limits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

import brotli  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._errors import DecryptError, FrameTooLarge, FramingError, InvalidRequest, ParseError, ProtocolError

__all__ = ("Codec", "Item", "Keyring", "Message")

logger = logging.getLogger(__name__)

#: What ``feed`` returns per frame: a message, a batch, or a ProtocolError instance.
Item: TypeAlias = dict[str, Any] | list[Any] | ProtocolError
#: What ``encode`` takes: a message, a batch, or already-serialized JSON.
Message: TypeAlias = dict[str, Any] | list[Any] | bytes | bytearray | memoryview

_FRAMINGS: Final = ("ndjson", "length", "content-length", "auto")
_COMPRESSIONS: Final = {"lz4": 1, "brotli": 2}
_BROTLI_QUALITY: Final = 4
_BROTLI_LGWIN: Final = 22

_MAGIC: Final = 0xFB
_VERSION: Final = 0x01
_FLAG_COMPRESSION: Final = 0x03
_FLAG_ENCRYPTED: Final = 0x04
_FLAG_MULTI: Final = 0x08
_FLAG_RESERVED: Final = 0xF0
_PLAIN_HEADER: Final = 3
_SEALED_HEADER: Final = 27
_SESSION_VERSION: Final = 0x02
_FLAG_HANDSHAKE: Final = 0x10
_FLAG_RESERVED_V2: Final = 0xE0
_SESSION_HEADER: Final = 11
_NOISE_NAME: Final = b"Noise_NNpsk0_25519_AESGCM_SHA256"
_PROLOGUE_LABEL: Final = b"rpcwire/2"
_NOISE_MESSAGE: Final = 48  # an X25519 public key and the tag of an empty payload
_HELLO: Final = 7 + _NOISE_MESSAGE
_REPLY: Final = 3 + _NOISE_MESSAGE
_ROLES: Final = ("initiator", "responder")
_TAG: Final = 16
_MAX_U32: Final = 0xFFFFFFFF
#: Default ``max_batch``: most elements a received batch (and records a multi envelope) may hold.
DEFAULT_MAX_BATCH: Final = 1024
#: Default ``max_expansion``: decompressed bytes a received compressed body may hold per compressed byte.
DEFAULT_MAX_EXPANSION: Final = 4096

_CL_HEADER_MAX: Final = 4096
_CL_NAME: Final = b"content-length"

_WHITESPACE: Final = b" \t\r"
# JSON never holds a raw NUL, so mapping every digit to NUL and looking for 19 NULs in a row finds
# every integer literal that may lie outside 64 bits (orjson reads those as floats, losing digits).
_DIGITS_TO_NUL: Final = bytes.maketrans(b"0123456789", b"\0" * 10)
_LONG_DIGIT_RUN: Final = b"\0" * 19
_MAX_DEPTH: Final = 254  # orjson's: deeper containers are refused, with ValueError here
_DUMPS_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME

_JSONDecodeError = orjson.JSONDecodeError
_loads = orjson.loads
_dumps_c = orjson.dumps


# --------------------------------------------------------------------------------------------------
# JSON


def _default(obj: Any) -> Any:
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _reject_constant(name: str) -> Any:  # pragma: no cover - orjson has already refused the text
    raise ValueError(f"{name} is not JSON")


def _may_hold_big_int(data: bytes) -> bool:
    """False when ``data`` holds no run of 19 digits, so no integer orjson would read inexactly.

    One C-speed pass; the codec runs it once per chunk, then only on texts from chunks that failed it.
    """
    return len(data) >= 19 and _LONG_DIGIT_RUN in data.translate(_DIGITS_TO_NUL)


def _parse(text: bytes, check: bool = True) -> Any:
    """One JSON text to Python objects; raises orjson.JSONDecodeError when it is not JSON.

    ``check=False`` says the caller already knows ``text`` holds no integer beyond 64 bits.
    """
    obj = _loads(text)
    if check and _may_hold_big_int(text):
        # orjson accepted the text (it is the judge of validity) but may have read an integer
        # beyond 64 bits as a float; the stdlib parser keeps every digit.
        obj = json.loads(text, parse_constant=_reject_constant)
    return obj


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` compactly, byte for byte as ``orjson.dumps`` does (wire-format 1).

    Integers outside 64 bits, which orjson refuses, are written in full.

    Raises:
        TypeError: an object of a type JSON cannot hold, or a dict key that is not a str.
        ValueError: containers nested deeper than 254 levels.
    """
    try:
        return _dumps_c(obj, default=_default, option=_DUMPS_OPTIONS)
    except orjson.JSONEncodeError as exc:
        text = str(exc)
        if "64-bit" in text:
            out: list[bytes] = []
            _dumps_slow(obj, out, 0)
            return b"".join(out)
        if "Recursion limit" in text:
            raise ValueError(f"containers nested deeper than {_MAX_DEPTH} levels") from None
        raise TypeError(text) from None


def _dumps_slow(obj: Any, out: list[bytes], depth: int) -> None:
    # Only reached when a big integer is somewhere inside: containers and ints here, every other
    # leaf through orjson so the bytes stay orjson's.
    if isinstance(obj, bool) or obj is None:
        out.append(_dumps_c(obj))
    elif isinstance(obj, int):
        out.append(str(int(obj)).encode())
    elif isinstance(obj, dict):
        if depth >= _MAX_DEPTH:
            raise ValueError(f"containers nested deeper than {_MAX_DEPTH} levels")
        out.append(b"{")
        first = True
        for key, value in obj.items():
            if type(key) is not str:
                raise TypeError("Dict key must be str")
            if not first:
                out.append(b",")
            first = False
            out.append(_dumps_c(key))
            out.append(b":")
            _dumps_slow(value, out, depth + 1)
        out.append(b"}")
    elif isinstance(obj, (list, tuple)):
        if depth >= _MAX_DEPTH:
            raise ValueError(f"containers nested deeper than {_MAX_DEPTH} levels")
        out.append(b"[")
        for i, value in enumerate(obj):
            if i:
                out.append(b",")
            _dumps_slow(value, out, depth + 1)
        out.append(b"]")
    else:
        try:
            out.append(_dumps_c(obj, default=_default, option=_DUMPS_OPTIONS))
        except orjson.JSONEncodeError as exc:
            raise TypeError(str(exc)) from None


# --------------------------------------------------------------------------------------------------
# JSON-RPC 2.0 validation (wire-format 1)

_MISSING: Final = object()


def _valid_id(value: Any) -> bool:
    return value is None or type(value) is str or type(value) is int


def _broken_rule(msg: dict[str, Any]) -> str | None:
    """The first rule of wire-format 1 that ``msg`` breaks, or None when it is a valid message."""
    if msg.get("jsonrpc") != "2.0":
        return 'member "jsonrpc" must be "2.0"'
    method = msg.get("method", _MISSING)
    if method is not _MISSING:
        if type(method) is not str:
            return 'member "method" must be a string'
        if "id" in msg and not _valid_id(msg["id"]):
            return 'member "id" must be a string, an integer or null'
        params = msg.get("params", _MISSING)
        if params is not _MISSING and type(params) is not dict and type(params) is not list:
            return 'member "params" must be an object or an array'
        return None
    if "id" not in msg:
        return 'a message needs "method", or "id" with "result" or "error"'
    if not _valid_id(msg["id"]):
        return 'member "id" must be a string, an integer or null'
    has_result = "result" in msg
    error = msg.get("error", _MISSING)
    if error is _MISSING:
        return None if has_result else 'a response needs "result" or "error"'
    if has_result:
        return 'a response must not have both "result" and "error"'
    if type(error) is not dict:
        return 'member "error" must be an object'
    code = error.get("code")
    if type(code) is not int:
        return 'member "error.code" must be an integer'
    if type(error.get("message")) is not str:
        return 'member "error.message" must be a string'
    return None


def _invalid(msg: dict[str, Any], rule: str) -> InvalidRequest:
    ident = msg.get("id")
    return InvalidRequest(rule, ident if _valid_id(ident) else None)


def _check(obj: Any, max_batch: int = DEFAULT_MAX_BATCH) -> Item:
    """A parsed JSON value as an item: the message, the batch, or an InvalidRequest."""
    if type(obj) is dict:
        rule = _broken_rule(obj)
        return obj if rule is None else _invalid(obj, rule)
    if type(obj) is list:
        if not obj:
            return InvalidRequest("a batch must not be empty")
        if len(obj) > max_batch:
            return InvalidRequest(f"a batch of more than {max_batch} elements (max_batch)")
        for i, element in enumerate(obj):
            if type(element) is dict:
                rule = _broken_rule(element)
                if rule is not None:
                    obj[i] = _invalid(element, rule)
            else:
                obj[i] = InvalidRequest("a batch element must be an object")
        return obj
    return InvalidRequest("a message must be an object or an array")


def _item(text: bytes, check: bool = True, max_batch: int = DEFAULT_MAX_BATCH) -> Item:
    """One frame's JSON text to an item."""
    try:
        return _check(_parse(text, check), max_batch)
    except _JSONDecodeError as exc:
        return ParseError(str(exc))


# --------------------------------------------------------------------------------------------------
# Keys (wire-format 3.2 and 4)


@dataclass(frozen=True)
class Keyring:
    """32-byte AES-256-GCM keys under integer ids; the sender seals with ``active``.

    The plain-Python twin of ``rpcwire.Keyring``. ``reference.Codec`` also accepts an
    ``rpcwire.Keyring`` when that class can hand its keys over (see ``Keyring.coerce``).
    """

    keys: Mapping[int, bytes]
    active: int
    _frozen: dict[int, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys: dict[int, bytes] = {}
        for key_id, key in dict(self.keys).items():
            if type(key_id) is not int or not 0 <= key_id <= _MAX_U32:
                raise ValueError(f"key id must be an integer from 0 to 2**32-1, not {key_id!r}")
            if not isinstance(key, (bytes, bytearray, memoryview)) or len(bytes(key)) != 32:
                raise ValueError(f"key {key_id} must be 32 bytes")
            keys[key_id] = bytes(key)
        if self.active not in keys:
            raise ValueError(f"active key id {self.active!r} is not in the keyring")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "_frozen", keys)

    def __repr__(self) -> str:  # never the key bytes
        return f"reference.Keyring(ids={sorted(self._frozen)!r}, active={self.active})"

    @property
    def ids(self) -> list[int]:
        """The key ids, sorted."""
        return sorted(self._frozen)

    @classmethod
    def generate(cls, key_id: int = 1) -> Keyring:
        """A keyring with one fresh random key."""
        return cls({key_id: os.urandom(32)}, active=key_id)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a key file (wire-format 4): ``{"version": 1, "active": N, "keys": {"N": "<hex>"}}``."""
        try:
            doc = json.loads(Path(path).read_bytes())
            if type(doc) is not dict or doc.get("version") != 1:
                raise ValueError("not a version 1 key file")
            active = doc["active"]
            raw = doc["keys"]
            if type(active) is not int or type(raw) is not dict:
                raise ValueError('"active" must be an integer and "keys" an object')
            keys: dict[int, bytes] = {}
            for name, hexkey in raw.items():
                if not name.isdigit() or type(hexkey) is not str or len(hexkey) != 64:
                    raise ValueError(f"bad key entry {name!r}")
                keys[int(name)] = bytes.fromhex(hexkey)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{os.fspath(path)}: malformed key file: {exc}") from None
        return cls(keys, active=active)

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write a key file (wire-format 4) with mode 0600."""
        doc = {"version": 1, "active": self.active, "keys": {str(k): v.hex() for k, v in self._frozen.items()}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), stat.S_IRUSR | stat.S_IWUSR)
            f.write(json.dumps(doc).encode())

    @classmethod
    def coerce(cls, keyring: Any) -> Keyring:
        """A ``reference.Keyring`` from itself or from an ``rpcwire.Keyring`` that exports its keys."""
        if isinstance(keyring, cls):
            return keyring
        export = getattr(keyring, "export_keys", None) or getattr(keyring, "keys", None)
        active = getattr(keyring, "active", None)
        if callable(export) and type(active) is int:
            return cls(dict(export()), active=active)
        raise TypeError(f"keyring must be a reference.Keyring or an rpcwire.Keyring, not {type(keyring).__name__}")


# --------------------------------------------------------------------------------------------------
# The codec


def _noise_nonce(n: int) -> bytes:
    return bytes(4) + n.to_bytes(8, "big")


def _hkdf(ck: bytes, ikm: bytes, count: int) -> list[bytes]:
    """Noise's HKDF: HMAC-SHA256 with the chaining key as the key of the extract step."""
    temp = hmac.new(ck, ikm, hashlib.sha256).digest()
    outputs: list[bytes] = []
    previous = b""
    for i in range(1, count + 1):
        previous = hmac.new(temp, previous + bytes((i,)), hashlib.sha256).digest()
        outputs.append(previous)
    return outputs


class _Noise:
    """Noise's SymmetricState and CipherState for NNpsk0_25519_AESGCM_SHA256 (wire-format 3.4)."""

    def __init__(self, key_id: int) -> None:
        self.h = _NOISE_NAME  # exactly 32 bytes: used as it stands
        self.ck = self.h
        self.k: bytes | None = None
        self.n = 0
        self.mix_hash(_PROLOGUE_LABEL + key_id.to_bytes(4, "big"))

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, self.k = _hkdf(self.ck, ikm, 2)
        self.n = 0

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, self.k = _hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.n = 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        assert self.k is not None
        ciphertext: bytes = AESGCM(self.k).encrypt(_noise_nonce(self.n), plaintext, self.h)
        self.n += 1
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes, who: str) -> bytes:
        assert self.k is not None
        try:
            plaintext: bytes = AESGCM(self.k).decrypt(_noise_nonce(self.n), ciphertext, self.h)
        except InvalidTag:
            raise DecryptError(f"handshake authentication failed: {who}") from None
        self.n += 1
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        """The initiator's sending key, then the responder's."""
        k1, k2 = _hkdf(self.ck, b"", 2)
        return k1, k2


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # cryptography refuses an all-zero result: a low-order point
        raise DecryptError("handshake refused: the peer's ephemeral key is a low-order point") from None


class Codec:
    """One connection's wire format, both directions, no I/O (the contract of ``rpcwire.Codec``).

    Arguments:
        framing: "ndjson", "length", "content-length" or "auto"; None means ndjson, or length
            when compression or a keyring is given.
        compression: None, "lz4" or "brotli" (binary framings only).
        compress_min_size: bodies shorter than this are not compressed.
        keyring: a ``reference.Keyring`` (or an ``rpcwire.Keyring`` exporting its keys): every
            frame is then sealed with AES-256-GCM, and every received frame must be.
        max_frame_size: the largest frame (and decompressed body) accepted.
        max_batch: the most elements a received batch (and records a multi envelope) may hold; a
            larger one is one InvalidRequest item. (This oracle parses the whole batch first: it
            applies the budget to what it returns, not to what it spends.)
        max_expansion: decompressed bytes a received compressed body may hold per compressed
            byte (past it: FrameTooLarge); a body that compresses better is sent uncompressed.
        handshake: with a keyring, "initiator" or "responder": do the session handshake and
            seal with per-connection keys (wire-format 3.4); None: the stream form.

    Raises:
        ValueError: an unknown framing or compression, compression or a keyring with ndjson,
            or a size that is not a non-negative (max_frame_size: positive) integer.
    """

    def __init__(
        self,
        framing: str | None = None,
        compression: str | None = None,
        compress_min_size: int = 1024,
        keyring: Any = None,
        max_frame_size: int = 16 * 2**20,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_expansion: int = DEFAULT_MAX_EXPANSION,
        handshake: str | None = None,
    ) -> None:
        if compression is not None and compression not in _COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}: expected None, 'lz4' or 'brotli'")
        if framing is None:
            framing = "length" if compression is not None or keyring is not None else "ndjson"
        elif framing not in _FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}: expected one of {', '.join(_FRAMINGS)}")
        if handshake is not None and handshake not in _ROLES:
            raise ValueError(f"handshake must be 'initiator' or 'responder', not {handshake!r}")
        if handshake is not None and keyring is None:
            raise ValueError("handshake needs a keyring: it derives the session keys from one")
        if framing == "ndjson" and (compression is not None or keyring is not None):
            raise ValueError("compression and keyring need a binary framing (length, content-length or auto)")
        if type(compress_min_size) is not int or compress_min_size < 0:
            raise ValueError(f"compress_min_size must be an integer >= 0, not {compress_min_size!r}")
        if type(max_frame_size) is not int or max_frame_size < 1:
            raise ValueError(f"max_frame_size must be an integer >= 1, not {max_frame_size!r}")
        for name, value in (("max_batch", max_batch), ("max_expansion", max_expansion)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
        self._max_batch = max_batch
        self._max_expansion = max_expansion
        self._framing: str = framing
        self._compression = compression
        self._compression_code = _COMPRESSIONS[compression] if compression is not None else 0
        self._compress_min_size = compress_min_size
        self._max = max_frame_size
        self._keyring = Keyring.coerce(keyring) if keyring is not None else None
        self._envelope = compression is not None or keyring is not None

        # Receive state.
        self._buf = bytearray()  # bytes not yet consumed; always starts at a frame (or line) boundary
        self._offset = 0  # stream offset of self._buf[0]
        self._cl_size = -1  # content-length: payload size once the header block is read
        self._buf_check = False  # the buffered bytes may hold an integer beyond 64 bits
        self._eof = False
        self._error: Exception | None = None

        # Envelope state.
        self._aead: dict[int, AESGCM] = {}
        self._prefix = os.urandom(8)
        self._counter = 0
        self._send_seq = 0
        self._recv_seq = 0
        if self._keyring is not None:
            self._aead = {key_id: AESGCM(key) for key_id, key in self._keyring.keys.items()}

        # Session state (wire-format 3.4): the role, where the handshake stands, the outbox and the keys.
        self._handshake = handshake
        self._session = {"initiator": "initiating", "responder": "awaiting"}.get(handshake or "")
        self._outbox = b""
        self._send_key: AESGCM | None = None
        self._recv_key: AESGCM | None = None
        self._noise: _Noise | None = None
        self._ephemeral: X25519PrivateKey | None = None
        if handshake == "initiator":
            self._outbox = self._hello()

    #: Where ephemeral private keys come from (tests inject fixed ones to check published vectors).
    _ephemeral_source: Callable[[], bytes] = staticmethod(lambda: os.urandom(32))

    @property
    def handshake(self) -> str | None:
        """The session handshake role, or None for the stream form."""
        return self._handshake

    @property
    def established(self) -> bool:
        """True when encode can seal: no handshake, or the handshake is done."""
        return self._session is None or self._session == "established"

    def data_to_send(self) -> bytes:
        """The framed handshake frame waiting to be sent, or b""."""
        payload, self._outbox = self._outbox, b""
        return self._frame(payload, self._write_framing()) if payload else b""

    def _hello(self) -> bytes:
        keyring = self._keyring
        assert keyring is not None
        noise = self._noise = _Noise(keyring.active)
        noise.mix_key_and_hash(keyring.keys[keyring.active])
        e = self._ephemeral = X25519PrivateKey.from_private_bytes(self._ephemeral_source())
        e_pub = e.public_key().public_bytes_raw()
        noise.mix_hash(e_pub)
        noise.mix_key(e_pub)
        header = bytes((_MAGIC, _SESSION_VERSION, _FLAG_HANDSHAKE)) + keyring.active.to_bytes(4, "big")
        return header + e_pub + noise.encrypt_and_hash(b"")

    def _read_hello(self, payload: bytes) -> None:
        if len(payload) != _HELLO:
            raise DecryptError(f"handshake hello of {len(payload)} bytes where {_HELLO} were expected")
        key_id = int.from_bytes(payload[3:7], "big")
        keyring = self._keyring
        assert keyring is not None
        psk = keyring.keys.get(key_id)
        if psk is None:
            raise DecryptError(f"handshake names unknown key id {key_id}")
        noise = _Noise(key_id)
        noise.mix_key_and_hash(psk)
        re = payload[7:39]
        noise.mix_hash(re)
        noise.mix_key(re)
        noise.decrypt_and_hash(payload[39:], f"the initiator does not hold key id {key_id}")
        e = X25519PrivateKey.from_private_bytes(self._ephemeral_source())
        e_pub = e.public_key().public_bytes_raw()
        noise.mix_hash(e_pub)
        noise.mix_key(e_pub)
        noise.mix_key(_dh(e, re))
        self._outbox = bytes((_MAGIC, _SESSION_VERSION, _FLAG_HANDSHAKE)) + e_pub + noise.encrypt_and_hash(b"")
        to_responder, to_initiator = noise.split()
        self._send_key, self._recv_key = AESGCM(to_initiator), AESGCM(to_responder)

    def _read_reply(self, payload: bytes) -> None:
        if len(payload) != _REPLY:
            raise DecryptError(f"handshake reply of {len(payload)} bytes where {_REPLY} were expected")
        noise, e = self._noise, self._ephemeral
        assert noise is not None
        assert e is not None
        re = payload[3:35]
        noise.mix_hash(re)
        noise.mix_key(re)
        noise.mix_key(_dh(e, re))
        noise.decrypt_and_hash(payload[35:], "the responder does not hold the key")
        to_responder, to_initiator = noise.split()
        self._send_key, self._recv_key = AESGCM(to_responder), AESGCM(to_initiator)
        self._noise = self._ephemeral = None

    # -- properties ----------------------------------------------------------------------------

    @property
    def framing(self) -> str:
        """The framing: configured, or for "auto" the one detected ("auto" until then)."""
        return self._framing

    @property
    def compression(self) -> str | None:
        """The compression this codec writes with (None: never compresses)."""
        return self._compression

    @property
    def compress_min_size(self) -> int:
        """Bodies shorter than this go uncompressed."""
        return self._compress_min_size

    @property
    def max_frame_size(self) -> int:
        """The largest frame, line or decompressed body accepted."""
        return self._max

    @property
    def max_batch(self) -> int:
        """The most elements a received batch (and records a multi envelope) may hold."""
        return self._max_batch

    @property
    def max_expansion(self) -> int:
        """Decompressed bytes a received compressed body may hold per compressed byte."""
        return self._max_expansion

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def __repr__(self) -> str:
        return (
            f"rpcwire.reference.Codec(framing={self._framing!r}, compression={self._compression!r}, "
            f"compress_min_size={self._compress_min_size}, keyring={self._keyring!r}, "
            f"max_frame_size={self._max}, max_batch={self._max_batch}, max_expansion={self._max_expansion}"
            + (f", handshake={self._handshake!r})" if self._handshake else ")")
        )

    # -- reading -------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[Item]:
        """Decode the next chunk of the stream; ``b""`` means end of input.

        Returns:
            The items completed by this chunk, in order: dicts (messages), lists (batches) and
            ProtocolError instances (frames that are not valid JSON-RPC; the stream goes on).

        Raises:
            FrameTooLarge: a frame declared, or grew to, more than max_frame_size bytes.
            FramingError: the stream cannot be split into frames any more, or ended mid-frame,
                or data came after the end of input.
            DecryptError: a frame failed authentication, was replayed, reordered or reflected,
                or was plaintext while a keyring is configured.
            After any of these the codec is poisoned: every later feed raises the same error.
        """
        if self._error is not None:
            raise type(self._error)(*self._error.args)
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"feed() takes bytes, bytearray or memoryview, not {type(data).__name__}")
            data = bytes(data)
        out: list[Item] = []
        try:
            if self._eof:
                if data:
                    raise FramingError(f"data after end of input (at byte {self._offset})")
                return out
            if not data:
                return self._finish()
            if self._framing == "auto":
                self._detect(data[0])
            if self._framing == "ndjson":
                self._feed_ndjson(data, out)
            else:
                self._feed_binary(data, out)
        except (FramingError, DecryptError) as exc:
            # The items this chunk completed before the error travel with it (as in rpcwire.Codec).
            if out:
                exc.items = out
            self._error = exc
            self._buf = bytearray()
            raise
        return out

    def feed_each(
        self,
        data: bytes | bytearray | memoryview,
        handler: Callable[[Item], Any],
        answers: list[Any],
        max_answers: int,
        /,
    ) -> tuple[int, Exception | None, list[Item]]:
        """:meth:`feed`, handing each item to `handler` (as ``rpcwire.Codec.feed_each``, which documents it)."""
        fatal: FramingError | DecryptError | None = None
        try:
            items = self.feed(data)
        except (FramingError, DecryptError) as exc:
            fatal = exc
            items = getattr(exc, "items", [])
        handled = 0
        error: Exception | None = None
        rest: list[Item] = []
        for item in items:
            if error is not None or len(answers) >= max_answers:
                rest.append(item)
                continue
            handled += 1
            try:
                answer = handler(item)
            except Exception as exc:  # reported to the caller, as rpcwire.Codec does
                error = exc
                continue
            if answer is not None:
                answers.append(answer)
        if fatal is not None and error is None:
            fatal.items = rest
            fatal.handled = handled
            raise fatal
        return handled, error, rest

    def _detect(self, first: int) -> None:
        if first in b"{[ \t\r\n":
            if self._keyring is not None:
                raise DecryptError("plaintext ndjson stream reached a codec with a keyring")
            self._framing = "ndjson"
        elif first in b"Cc":
            self._framing = "content-length"
        else:
            self._framing = "length"

    def _too_large(self, size: int, offset: int) -> FrameTooLarge:
        return FrameTooLarge(f"frame of {size} bytes exceeds max_frame_size {self._max} (at byte {offset})")

    def _feed_ndjson(self, data: bytes, out: list[Item]) -> None:
        buf = self._buf
        limit = self._max
        lines = data.split(b"\n")
        tail = lines.pop()
        if lines:
            offset = self._offset
            check = _may_hold_big_int(data)
            if buf:
                buf += lines[0]
                lines[0] = bytes(buf)
                buf.clear()
                check = check or _may_hold_big_int(lines[0])
            for line in lines:
                size = len(line)
                # the limit is on the line without its terminator, "\n" or "\r\n" (wire-format 2.1)
                content = size - line.endswith(b"\r")
                if content > limit:
                    raise self._too_large(content, offset)
                offset += size + 1
                if not size:
                    continue
                try:
                    obj = _parse(line, check)
                except _JSONDecodeError as exc:
                    if line.strip(_WHITESPACE):
                        out.append(ParseError(str(exc)))
                    continue
                out.append(_check(obj, self._max_batch))
            self._offset = offset
        buf += tail
        # a pending trailing "\r" may be the start of the terminator: it does not count yet
        pending = len(buf) - buf.endswith(b"\r")
        if pending > limit:
            raise self._too_large(pending, self._offset)

    def _feed_binary(self, data: bytes, out: list[Item]) -> None:
        buf = self._buf
        # One big-integer pre-check per chunk (see _may_hold_big_int), remembered for the bytes
        # left in the buffer; a digit run straddling the old tail and this chunk is looked for too.
        check = _may_hold_big_int(data)
        if buf:
            check = check or self._buf_check or _may_hold_big_int(bytes(buf[-18:]) + data[:18])
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        length = self._framing == "length"
        keyring = self._keyring
        end = len(view)
        pos = 0
        try:
            while pos < end:
                if length:
                    if end - pos < 4:
                        break
                    size = int.from_bytes(view[pos : pos + 4], "big")
                    if size > self._max:
                        raise self._too_large(size, self._offset + pos)
                    start = pos + 4
                else:
                    if self._cl_size < 0:
                        header_end = self._content_length(view, pos, end)
                        if header_end < 0:
                            break
                        start = header_end
                    else:
                        start = pos + self._cl_header_len
                    size = self._cl_size
                if end - start < size:
                    if not length:
                        self._cl_header_len = start - pos
                    break
                payload = bytes(view[start : start + size])
                frame_offset = self._offset + pos
                pos = start + size
                self._cl_size = -1
                if keyring is None and payload[:1] != b"\xfb":
                    try:
                        out.append(_check(_parse(payload, check), self._max_batch))
                    except _JSONDecodeError as exc:
                        out.append(ParseError(str(exc)))
                else:
                    self._open(payload, frame_offset, out)
        finally:
            # Keep only the unconsumed tail (even when an error ends the feed: the codec is then
            # poisoned and the buffer is dropped by feed).
            self._offset += pos
            if buf:
                del buf[:pos]
            else:
                buf += data[pos:]
            self._buf_check = check and bool(buf)

    _cl_header_len = 0

    def _content_length(self, view: bytes | bytearray, pos: int, end: int) -> int:
        """Parse a header block at ``pos``; return where the payload starts, or -1 for "need more".

        Sets ``self._cl_size``.
        """
        term = view.find(b"\r\n\r\n", pos, min(end, pos + _CL_HEADER_MAX))
        block_end = term + 4 if term >= 0 else -1
        scan_end = term + 2 if term >= 0 else min(end, pos + _CL_HEADER_MAX)
        # Every line must end with CRLF: no bare LF, no CR followed by anything but LF.
        i = view.find(b"\n", pos, scan_end)
        while i >= 0:
            if i == pos or view[i - 1] != 0x0D:
                raise FramingError(f"content-length header line not ended by CRLF (at byte {self._offset + i})")
            i = view.find(b"\n", i + 1, scan_end)
        i = view.find(b"\r", pos, scan_end)
        while i >= 0:
            if i + 1 < end and view[i + 1] != 0x0A:
                raise FramingError(f"content-length header line not ended by CRLF (at byte {self._offset + i})")
            i = view.find(b"\r", i + 1, scan_end)
        if term < 0:
            if end - pos > _CL_HEADER_MAX:
                raise FramingError(
                    f"content-length header block over {_CL_HEADER_MAX} bytes (at byte {self._offset + pos})"
                )
            return -1
        if block_end - pos > _CL_HEADER_MAX:
            raise FramingError(
                f"content-length header block over {_CL_HEADER_MAX} bytes (at byte {self._offset + pos})"
            )
        size = -1
        for line in bytes(view[pos:term]).split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon:
                raise FramingError(f"malformed header line {line[:40]!r} (at byte {self._offset + pos})")
            if name.lower() != _CL_NAME:
                continue
            if size >= 0:
                raise FramingError(f"repeated Content-Length header (at byte {self._offset + pos})")
            value = value.strip(b" \t")
            if not value.isdigit():
                raise FramingError(
                    f"Content-Length is not a decimal number: {value[:40]!r} (at byte {self._offset + pos})"
                )
            size = int(value)
        if size < 0:
            raise FramingError(f"header block without Content-Length (at byte {self._offset + pos})")
        if size > self._max:
            raise self._too_large(size, self._offset + pos)
        self._cl_size = size
        return block_end

    def _finish(self) -> list[Item]:
        self._eof = True
        buf = self._buf
        if not buf:
            return []
        if self._framing == "ndjson":
            line = bytes(buf)
            buf.clear()
            if len(line) > self._max:  # a trailing "\r" held back as a possible terminator is content now
                raise self._too_large(len(line), self._offset)
            if not line.strip(_WHITESPACE):
                return []
            try:
                obj = _parse(line)
            except _JSONDecodeError:
                raise FramingError(
                    f"input ended mid-frame, {len(line)} bytes buffered (at byte {self._offset})"
                ) from None
            self._offset += len(line)
            return [_check(obj, self._max_batch)]
        raise FramingError(f"input ended mid-frame, {len(buf)} bytes buffered (at byte {self._offset})")

    # -- the envelope, receiving (wire-format 3) -----------------------------------------------

    def _open(self, payload: bytes, offset: int, out: list[Item]) -> None:
        """One envelope (or, with a keyring, any payload) to its items."""
        size = len(payload)
        keyring = self._keyring
        if payload[:1] != b"\xfb":
            # Only reached with a keyring: every frame must then be an encrypted envelope.
            raise DecryptError(f"plaintext frame reached a codec with a keyring (frame at byte {offset})")
        if size < _PLAIN_HEADER:
            # A structural fault: FramingError with or without a keyring (wire-format 3.2).
            raise FramingError(f"envelope header truncated to {size} bytes (at byte {offset})")
        version = payload[1]
        flags = payload[2]
        session = self._session is not None
        if version == _SESSION_VERSION and session:
            self._open_session(payload, flags, offset, out)
            return
        if version == _VERSION and session:
            raise DecryptError("version 1 envelope on a session connection: the peer does not do the session handshake")
        if version == _SESSION_VERSION:
            raise FramingError(
                f"envelope version 2 (a session frame) reached a codec without a handshake (at byte {offset})"
            )
        if version != _VERSION:
            raise FramingError(f"unknown envelope version {version} (at byte {offset})")
        if flags & _FLAG_RESERVED:
            raise FramingError(f"reserved envelope flag bits set: {flags:#04x} (at byte {offset})")
        method = flags & _FLAG_COMPRESSION
        if method == 3:
            raise FramingError(f"zstd is not supported by rpcwire.reference (at byte {offset})")
        if flags & _FLAG_ENCRYPTED:
            if keyring is None:
                raise DecryptError("encrypted envelope reached a codec without a keyring")
            body = self._decrypt(payload)
        elif keyring is not None:
            raise DecryptError(f"unencrypted envelope reached a codec with a keyring (frame at byte {offset})")
        else:
            body = payload[_PLAIN_HEADER:]
        self._deliver(body, flags, offset, out)

    def _deliver(self, body: bytes, flags: int, offset: int, out: list[Item]) -> None:
        """An opened body (still compressed as ``flags`` say) to its items."""
        method = flags & _FLAG_COMPRESSION
        if method:
            try:
                body = self._decompress(method, body, offset)
            except _Undecompressable as exc:
                out.append(ParseError(str(exc)))
                return
        if flags & _FLAG_MULTI:
            self._records(body, out)
        else:
            out.append(_item(body, max_batch=self._max_batch))

    def _open_session(self, payload: bytes, flags: int, offset: int, out: list[Item]) -> None:
        """A version 2 payload: a handshake frame, or a data frame under the session keys."""
        if flags & _FLAG_RESERVED_V2:
            raise FramingError(f"reserved envelope flag bits set: {flags:#04x} (at byte {offset})")
        if flags & _FLAG_HANDSHAKE:
            if flags != _FLAG_HANDSHAKE:
                raise FramingError(f"handshake frame with other flags set: {flags:#04x} (at byte {offset})")
            state, self._session = self._session, "failed"
            if state == "awaiting":
                self._read_hello(payload)
            elif state == "initiating":
                self._read_reply(payload)
            else:
                raise DecryptError("handshake frame after the session was established (replayed or injected)")
            self._session = "established"
            return
        if flags & _FLAG_COMPRESSION == 3:
            raise FramingError(f"zstd is not supported by rpcwire.reference (at byte {offset})")
        if not flags & _FLAG_ENCRYPTED:
            raise DecryptError("unencrypted envelope refused: a session accepts only encrypted frames")
        if self._session != "established" or self._recv_key is None:
            raise DecryptError("data frame before the session handshake completed")
        if len(payload) < _SESSION_HEADER + _TAG:
            raise DecryptError(f"session frame shorter than {_SESSION_HEADER + _TAG} bytes")
        seq = int.from_bytes(payload[3:11], "big")
        if seq != self._recv_seq:
            raise DecryptError(f"frame out of sequence: expected seq {self._recv_seq}, got {seq}")
        try:
            body: bytes = self._recv_key.decrypt(
                _noise_nonce(seq), payload[_SESSION_HEADER:], payload[:_SESSION_HEADER]
            )
        except InvalidTag:
            raise DecryptError(f"authentication failed (session frame {seq})") from None
        self._recv_seq += 1
        self._deliver(body, flags, offset, out)

    def _decrypt(self, payload: bytes) -> bytes:
        """Open a sealed envelope (wire-format 3.2); checks in the order the spec lists them."""
        if len(payload) < _SEALED_HEADER + _TAG:
            raise DecryptError(f"encrypted envelope shorter than {_SEALED_HEADER + _TAG} bytes")
        key_id = int.from_bytes(payload[3:7], "big")
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptError(f"unknown key id {key_id}")
        nonce = payload[7:19]
        header = payload[:_SEALED_HEADER]
        try:
            body: bytes = aead.decrypt(nonce, payload[_SEALED_HEADER:], header)
        except InvalidTag:
            raise DecryptError(f"authentication failed (key id {key_id})") from None
        if nonce[:8] == self._prefix:
            raise DecryptError("frame reflected back to its sender (nonce prefix is this codec's own)")
        seq = int.from_bytes(payload[19:27], "big")
        if seq != self._recv_seq:
            raise DecryptError(f"frame out of sequence: expected seq {self._recv_seq}, got {seq}")
        self._recv_seq += 1
        return body

    def _too_inflated(self, size: int, offset: int) -> FrameTooLarge:
        wire = size
        if wire * self._max_expansion < self._max:
            return FrameTooLarge(
                f"compressed body of {wire} bytes inflates past {wire * self._max_expansion} bytes "
                f"(max_expansion {self._max_expansion}) (at byte {offset})"
            )
        return FrameTooLarge(f"decompressed body exceeds max_frame_size {self._max}")

    def _decompress(self, method: int, body: bytes, offset: int) -> bytes:
        """Decompress with the output capped at max_frame_size and max_expansion times the input
        (a bomb fails fast, in bounded memory)."""
        limit = min(self._max, len(body) * self._max_expansion)
        if method == 1:
            lz = lz4.frame.LZ4FrameDecompressor()
            try:
                out: bytes = lz.decompress(body, max_length=limit + 1)
            except RuntimeError as exc:
                raise _Undecompressable(f"lz4 body does not decompress: {exc}") from None
            if len(out) > limit:
                raise self._too_inflated(len(body), offset)
            if not lz.eof:
                raise _Undecompressable("lz4 body is truncated")
            if lz.unused_data:
                raise _Undecompressable(f"{len(lz.unused_data)} bytes after the end of the lz4 frame")
            return out
        br = brotli.Decompressor()
        parts: list[bytes] = []
        total = 0
        try:
            chunk: bytes = br.process(body, output_buffer_limit=limit + 1)
            while True:
                total += len(chunk)
                if total > limit:
                    raise self._too_inflated(len(body), offset)
                parts.append(chunk)
                if br.can_accept_more_data():
                    break
                chunk = br.process(b"", output_buffer_limit=limit + 1 - total)
        except brotli.error as exc:
            raise _Undecompressable(f"brotli body does not decompress: {exc}") from None
        if not br.is_finished():
            raise _Undecompressable("brotli body is truncated")
        return b"".join(parts)

    def _records(self, body: bytes, out: list[Item]) -> None:
        """A multi body: ``(u32be(L) || message[L])+``, one item per record."""
        end = len(body)
        if not end:
            out.append(ParseError("multi envelope without records"))
            return
        max_batch = self._max_batch
        pos = count = 0
        while pos + 4 <= end and count <= max_batch:
            pos += 4 + int.from_bytes(body[pos : pos + 4], "big")
            count += pos <= end
        if count > max_batch:
            out.append(InvalidRequest(f"multi envelope of more than {max_batch} records (max_batch)"))
            return
        pos = 0
        check = _may_hold_big_int(body)
        while pos < end:
            if end - pos < 4:
                out.append(ParseError("truncated record header in multi envelope"))
                return
            size = int.from_bytes(body[pos : pos + 4], "big")
            pos += 4
            if end - pos < size:
                out.append(ParseError("truncated record in multi envelope"))
                return
            out.append(_item(body[pos : pos + size], check, max_batch))
            pos += size

    # -- writing -------------------------------------------------------------------------------

    def _write_framing(self) -> str:
        if self._framing == "auto":
            return "length" if self._envelope else "ndjson"
        return self._framing

    @staticmethod
    def _body(msg: Message) -> tuple[bytes, bool]:
        """Serialize one message; the flag says it came pre-serialized."""
        t = type(msg)
        if t is dict or t is list:
            return dumps(msg), False
        if t is bytes:
            return msg, True  # type: ignore[return-value]
        if isinstance(msg, (bytearray, memoryview)):
            return bytes(msg), True
        if isinstance(msg, (dict, list)):
            return dumps(msg), False
        raise TypeError(f"encode() takes a dict, a list or bytes, not {type(msg).__name__}")

    def encode(self, msg: Message) -> bytes:
        """One message (dict), batch (list) or pre-serialized JSON (bytes) as one frame.

        Raises:
            TypeError: a value JSON cannot hold, a dict key that is not a str, or a msg that is
                not a dict, list or bytes.
            ValueError: pre-serialized bytes holding a raw newline under ndjson, or starting with
                0xFB in a plain binary frame; a payload over 2**32-1 bytes; nesting over 254 levels.
        """
        body, raw = self._body(msg)
        framing = self._write_framing()
        if framing == "ndjson":
            if raw and b"\n" in body:
                raise ValueError("pre-serialized JSON holds a raw newline, which ndjson cannot carry")
            return body + b"\n"
        if self._envelope:
            sealed = self._seal(body, False)
            if sealed is not None:
                return self._frame(sealed, framing)
        if raw and body[:1] == b"\xfb":
            raise ValueError("pre-serialized JSON cannot start with 0xFB (the envelope magic)")
        return self._frame(body, framing)

    def encode_many(self, msgs: Iterable[Message]) -> bytes:
        """Many messages as one buffer; with compression or a keyring, sealed as one envelope.

        Raises:
            The same errors as ``encode``; nothing is written (or sealed) when one is raised.
        """
        # Each body goes into one bytearray as soon as it is made: orjson returns over-allocated
        # bytes objects, and keeping a thousand of them alive costs more than serializing.
        body_of = self._body
        out = bytearray()
        count = 0
        framing = self._write_framing()
        if framing == "ndjson":
            for msg in msgs:
                body, raw = body_of(msg)
                if raw and b"\n" in body:
                    raise ValueError("pre-serialized JSON holds a raw newline, which ndjson cannot carry")
                out += body
                out += b"\n"
            return bytes(out)
        # Binary framings: build the records body (u32be(L) || message)+, which is also exactly
        # the plain `length` framing of the same messages.
        raws = False
        for msg in msgs:
            body, raw = body_of(msg)
            raws = raws or raw
            if len(body) > _MAX_U32:
                raise ValueError(f"a payload of {len(body)} bytes does not fit a frame")
            out += len(body).to_bytes(4, "big")
            out += body
            count += 1
        if not count:
            return b""
        if self._envelope and count > self._max_batch:
            # No envelope holds more records than a receiver's max_batch.
            records = bytes(out)
            chunks = [[]]  # type: list[list[bytes]]
            for body in _split_records(records):
                if len(chunks[-1]) == self._max_batch:
                    chunks.append([])
                chunks[-1].append(body)
            return b"".join(self.encode_many(chunk) for chunk in chunks)
        if self._envelope:
            sealed = self._seal(bytes(out[4:]), False) if count == 1 else self._seal(bytes(out), True)
            if sealed is not None:
                return self._frame(sealed, framing)
        records = bytes(out)
        if raws and any(body[:1] == b"\xfb" for body in _split_records(records)):
            raise ValueError("pre-serialized JSON cannot start with 0xFB (the envelope magic)")
        if framing == "length":
            return records
        frame = self._frame
        return b"".join([frame(body, framing) for body in _split_records(records)])

    @staticmethod
    def _frame(payload: bytes, framing: str) -> bytes:
        size = len(payload)
        if size > _MAX_U32:
            raise ValueError(f"a payload of {size} bytes does not fit a frame")
        if framing == "length":
            return size.to_bytes(4, "big") + payload
        return b"Content-Length: %d\r\n\r\n%b" % (size, payload)

    # -- the envelope, sending (wire-format 3.3) -----------------------------------------------

    def _seal(self, body: bytes, multi: bool) -> bytes | None:
        """The envelope for ``body``, or None when it goes as plain frames."""
        if self._session is not None and self._send_key is None:
            raise ValueError("the session handshake is not complete: nothing can be sealed before it")
        method = 0
        if self._compression_code and len(body) >= self._compress_min_size:
            if self._compression_code == 1:
                packed: bytes = lz4.frame.compress(body)
            else:
                packed = brotli.compress(body, quality=_BROTLI_QUALITY, lgwin=_BROTLI_LGWIN)
            if len(packed) < len(body) <= len(packed) * self._max_expansion:
                body = packed
                method = self._compression_code
        flags = method | (_FLAG_MULTI if multi else 0)
        if self._send_key is not None:
            header = bytes((_MAGIC, _SESSION_VERSION, flags | _FLAG_ENCRYPTED)) + self._send_seq.to_bytes(8, "big")
            sealed_body: bytes = self._send_key.encrypt(_noise_nonce(self._send_seq), body, header)
            self._send_seq += 1
            return header + sealed_body
        keyring = self._keyring
        if keyring is not None:
            if self._counter > _MAX_U32:  # the counter would wrap: a fresh prefix keeps nonces unique
                self._prefix = os.urandom(8)
                self._counter = 0
            nonce = self._prefix + self._counter.to_bytes(4, "big")
            self._counter += 1
            header = (
                bytes((_MAGIC, _VERSION, flags | _FLAG_ENCRYPTED))
                + keyring.active.to_bytes(4, "big")
                + nonce
                + self._send_seq.to_bytes(8, "big")
            )
            self._send_seq += 1
            sealed: bytes = self._aead[keyring.active].encrypt(nonce, body, header)
            return header + sealed
        if method:
            return bytes((_MAGIC, _VERSION, flags)) + body
        return None


def _split_records(records: bytes) -> list[bytes]:
    """The messages of a well-formed records body (one this codec built)."""
    out = []
    pos = 0
    end = len(records)
    while pos < end:
        size = int.from_bytes(records[pos : pos + 4], "big")
        out.append(records[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


class _Undecompressable(Exception):
    """A compressed body that does not decompress: a ParseError item, the stream goes on."""
