"""Option parsing shared by the command line, the bridge and the bench harness: codec options, TLS options,
sizes, counts, addresses, and the usage error they raise.

It sits below all three (``cli`` imports ``_bridge`` and ``bench``, which import this), so the house's imports
point one way; ``rpcwire.cli`` re-exports the public names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = (
    "BINARY_FRAMINGS",
    "COMPRESSIONS",
    "FRAMINGS",
    "UsageError",
    "add_codec_options",
    "add_nats_options",
    "add_tls_options",
    "check_address",
    "codec_options",
    "connection_options",
    "int_at_least",
    "load_keyring",
    "parse_size",
    "seconds",
    "tls_context",
)

#: Framings the codec options accept (DESIGN.md "Public API").
FRAMINGS = ("ndjson", "length", "content-length", "auto")
#: Compressions the codec options accept; "none" means no compression.
COMPRESSIONS = ("none", "lz4", "brotli", "zstd")
#: Framings that can carry the binary envelope (compression, encryption).
BINARY_FRAMINGS = ("length", "content-length", "auto")

_SUFFIXES = {"": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2}
_SUFFIXES.update({"g": 1000**3, "gb": 1000**3, "gib": 1024**3, "b": 1})


class UsageError(Exception):
    """A bad option value found after argparse ran: `main` prints it and exits with status 2."""


def parse_size(text: str) -> int:
    """Parse a byte count such as ``150``, ``6000``, ``64k``, ``1MiB`` or ``16M``.

    Arguments:
        text: digits with an optional unit (k/M/G decimal, KiB/MiB/GiB binary, case-insensitive).

    Returns:
        The number of bytes, an int >= 0.

    Raises:
        argparse.ArgumentTypeError: the text is not a size.
    """
    raw = text.strip().lower().replace("_", "")
    digits = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(digits) :]
    if not digits or unit not in _SUFFIXES:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 150, 64k, 1MiB)")
    try:
        value = float(digits) * _SUFFIXES[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 150, 64k, 1MiB)") from None
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole, non-negative size: {text!r}")
    return int(value)


def _positive_size(text: str) -> int:
    value = parse_size(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def add_codec_options(parser: argparse.ArgumentParser) -> None:
    """Add the codec options every transport takes to `parser`, in an "codec options" group.

    `--framing`, `--compression`, `--compress-min-size`, `--key-file`, `--max-frame-size`, `--max-batch`,
    `--max-expansion`.
    Each defaults to None ("not given"), so :func:`codec_options` passes on only what the user
    chose and each side keeps its own default (clients ndjson, `serve` auto).
    """
    group = parser.add_argument_group("codec options")
    group.add_argument(
        "--framing",
        choices=FRAMINGS,
        default=None,
        help="frame format (default: ndjson for clients, auto for servers; length when compressing or encrypting)",
    )
    group.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default=None,
        help="compress frames (binary framings only; default none)",
    )
    group.add_argument(
        "--compress-min-size",
        type=parse_size,
        default=None,
        metavar="BYTES",
        help="payloads smaller than this are sent uncompressed (default 1024)",
    )
    group.add_argument(
        "--key-file",
        default=None,
        metavar="FILE",
        help="AES-256-GCM key file from `rpcwire keygen`: encrypt and authenticate every frame",
    )
    group.add_argument(
        "--max-frame-size",
        type=_positive_size,
        default=None,
        metavar="BYTES",
        help="refuse frames larger than this, before allocating (default 16MiB)",
    )
    group.add_argument(
        "--max-batch",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="a received batch of more elements is one Invalid Request error (default 1024)",
    )
    group.add_argument(
        "--max-expansion",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="refuse a compressed frame that inflates past N times its size (default 4096)",
    )


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more: {text!r}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse ``type``: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def check_address(option: str, text: str) -> Any:
    """Parse an address option with ``rpcwire._address.parse_address``, turning a bad one into a UsageError."""
    from ._address import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def add_tls_options(parser: argparse.ArgumentParser, *, server: bool) -> None:
    """Add `--tls-cert`, `--tls-key`, `--tls-ca` (and, for clients, `--tls`) to `parser`: TLS on TCP."""
    group = parser.add_argument_group("TLS (TCP)")
    if server:
        group.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
        group.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
        group.add_argument("--tls-ca", metavar="PEM", help="require client certificates signed by these CAs (mTLS)")
    else:
        group.add_argument("--tls", action="store_true", help="speak TLS, checking the server against the system CAs")
        group.add_argument("--tls-ca", metavar="PEM", help="speak TLS, checking the server against these CAs")
        group.add_argument("--tls-cert", metavar="PEM", help="present this client certificate (mutual TLS)")
        group.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")


def tls_context(args: argparse.Namespace, *, server: bool) -> Any:
    """The ``ssl.SSLContext`` the TLS options ask for, or None without them.

    Raises:
        UsageError: an incomplete set (a certificate without its key, a server without a certificate), or a
            file that cannot be loaded.
    """
    import ssl

    cert, key, ca = getattr(args, "tls_cert", None), getattr(args, "tls_key", None), getattr(args, "tls_ca", None)
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    try:
        if server:
            if cert is None:
                if ca is not None:
                    raise UsageError("--tls-ca needs --tls-cert and --tls-key: the server's own certificate")
                return None
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            if ca is not None:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(ca)
            return ctx
        if not (getattr(args, "tls", False) or ca is not None or cert is not None):
            return None
        ctx = ssl.create_default_context(cafile=ca)
        if cert is not None:
            ctx.load_cert_chain(cert, key)
        return ctx
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"TLS: {exc}") from None


def load_keyring(path: str) -> Any:
    """Read a key file with `rpcwire.Keyring.from_file`, turning failures into a UsageError."""
    from . import Keyring

    keyring_cls: Any = Keyring  # Any until the stub grows from_file (H2)
    try:
        return keyring_cls.from_file(path)
    except FileNotFoundError:
        raise UsageError(f"--key-file: no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--key-file {path}: {exc}") from None


def codec_options(args: argparse.Namespace) -> dict[str, Any]:
    """Build the codec keyword arguments (for `rpcwire.connect`, `serve`, `spawn`...) from parsed options.

    Only options the user gave appear in the result. `--compression none` becomes
    ``compression=None``; `--key-file` is loaded into a ``keyring``.

    Arguments:
        args: a namespace from a parser that :func:`add_codec_options` was applied to.

    Returns:
        A dict with some of ``framing``, ``compression``, ``compress_min_size``, ``keyring``,
        ``max_frame_size``, ``max_batch``, ``max_expansion``.

    Raises:
        UsageError: the key file cannot be read, or compression/encryption was asked for with a
            text framing (ndjson) that cannot carry it.
    """
    opts: dict[str, Any] = {}
    framing = getattr(args, "framing", None)
    compression = getattr(args, "compression", None)
    key_file = getattr(args, "key_file", None)
    if framing is not None:
        opts["framing"] = framing
    if compression is not None:
        opts["compression"] = None if compression == "none" else compression
    if getattr(args, "compress_min_size", None) is not None:
        opts["compress_min_size"] = args.compress_min_size
    for name in ("max_frame_size", "max_batch", "max_expansion"):
        if getattr(args, name, None) is not None:
            opts[name] = getattr(args, name)
    if framing == "ndjson" and (opts.get("compression") is not None or key_file is not None):
        raise UsageError(
            "--framing ndjson cannot carry compression or encryption; use --framing length (or leave it out)"
        )
    if key_file is not None:
        opts["keyring"] = load_keyring(key_file)
    return opts


def connection_options(args: argparse.Namespace, option: str, address: str, *, server: bool) -> dict[str, Any]:
    """The keyword arguments for ``rpcwire.serve`` (``server``) or ``rpcwire.connect`` from the codec and TLS
    options, after checking the address given as ``option``.

    Raises:
        UsageError: a bad address, codec option or TLS option, or TLS asked for a Unix socket.
    """
    addr = check_address(option, address)
    options = codec_options(args)
    # On NATS this process is a NATS client either way: the TLS options are a client's (verify the NATS server,
    # present a client certificate).
    tls = tls_context(args, server=server and not addr.is_nats)
    if tls is not None:
        if addr.scheme == "unix":
            raise UsageError(f"{option}: the --tls options are for tcp://, nats:// and tls:// addresses")
        options["ssl"] = tls
    nats_options = {}
    if getattr(args, "nats_creds", None) is not None:
        nats_options["user_credentials"] = args.nats_creds
    if getattr(args, "nats_nkey", None) is not None:
        nats_options["nkeys_seed"] = args.nats_nkey
    peer_timeout = getattr(args, "peer_timeout", None)
    if nats_options or peer_timeout is not None:
        if not addr.is_nats:
            raise UsageError(f"{option}: --nats-creds, --nats-nkey and --peer-timeout are for nats:// addresses")
        if nats_options:
            options["nats_options"] = nats_options
        if peer_timeout is not None:
            if not peer_timeout > 0:
                raise UsageError("--peer-timeout must be more than 0")
            options["peer_timeout"] = peer_timeout
    return options


def add_nats_options(parser: argparse.ArgumentParser) -> None:
    """Add `--nats-creds`, `--nats-nkey` and `--peer-timeout` to `parser`: NATS addresses (nats://, tls://)."""
    group = parser.add_argument_group("NATS (nats:// and tls:// addresses; user:password@ or token@ go in the URL)")
    group.add_argument("--nats-creds", metavar="FILE", help="a NATS credentials file (JWT and nkey seed)")
    group.add_argument("--nats-nkey", metavar="FILE", help="a NATS nkey seed file (needs the nkeys package)")
    group.add_argument(
        "--peer-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="a peer silent this long is gone: its connection ends (default 2)",
    )
