"""The `rpcwire` command line: `bench`, `bridge`, `connect`, `keygen`, `--version`.

Stdout carries only a command's result (the bench table, a key file, or the bridged stream);
diagnostics go to stderr through `logging`. A usage error prints one clear line on stderr and
exits with status 2, as argparse does for the options it checks itself.

Other subcommands reuse the codec options through :func:`add_codec_options` and
:func:`codec_options`, so every command spells `--framing`, `--compression`, `--key-file`...
the same way.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from ._options import (
    COMPRESSIONS,
    FRAMINGS,
    UsageError,
    add_codec_options,
    add_tls_options,
    check_address,
    codec_options,
    int_at_least,
    parse_size,
    seconds,
    tls_context,
)

__all__ = (
    "COMPRESSIONS",
    "FRAMINGS",
    "UsageError",
    "add_codec_options",
    "add_tls_options",
    "build_parser",
    "check_address",
    "codec_options",
    "int_at_least",
    "main",
    "parse_size",
    "seconds",
    "tls_context",
)


log = logging.getLogger("rpcwire.cli")

# --- subcommands -------------------------------------------------------------------------------


def _import_bridge() -> ModuleType | None:
    """H7's `rpcwire._bridge`, or None while it does not exist (then bridge/connect exit 2)."""
    try:
        return importlib.import_module("rpcwire._bridge")
    except ModuleNotFoundError as exc:
        if exc.name != "rpcwire._bridge":
            raise
        return None


def _unavailable(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise UsageError(f"`rpcwire {name}` is not available in this build (rpcwire._bridge is missing)")

    return run


def _add_bridge_commands(sub: Any) -> None:
    bridge = _import_bridge()
    p_bridge = sub.add_parser(
        "bridge",
        help="serve a stdio server (COMMAND) on a socket",
        description="Serve an unchanged stdio JSON-RPC/MCP server on a Unix or TCP socket.",
    )
    p_connect = sub.add_parser(
        "connect",
        help="stdin/stdout <-> a socket, for stdio-only clients",
        description="Relay this process's stdin/stdout to an rpcwire socket.",
    )
    if bridge is None:
        for p, name in ((p_bridge, "bridge"), (p_connect, "connect")):
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(func=_unavailable(name))
        return
    bridge.add_bridge_arguments(p_bridge)
    p_bridge.set_defaults(func=bridge.run_bridge)
    bridge.add_connect_arguments(p_connect)
    p_connect.set_defaults(func=bridge.run_connect)


def _run_keygen(args: argparse.Namespace) -> int:
    from . import Keyring

    keyring_cls: Any = Keyring  # Any until the stub grows generate/to_file (H2)
    keyring = keyring_cls.generate(key_id=args.key_id)
    if args.out is not None:
        if os.path.isdir(args.out):
            raise UsageError(f"--out {args.out}: is a directory")
        if os.path.lexists(args.out) and not args.force:
            # A key file overwritten by mistake locks out every peer that holds the old key.
            raise UsageError(f"--out {args.out}: exists; refusing to overwrite a key file (--force replaces it)")
        try:
            keyring.to_file(args.out)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
        log.info("wrote key id %d to %s (mode 0600)", args.key_id, args.out)
        return 0
    # No --out: the key file's JSON on stdout, written through Keyring.to_file so the format
    # has one writer. The temporary directory is private (0700) and removed at once.
    with tempfile.TemporaryDirectory(prefix="rpcwire-keygen-") as tmp:
        path = os.path.join(tmp, "key.json")
        keyring.to_file(path)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    return 0


def _key_id(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"key id must be in 0..4294967295, got {value}")
    return value


def _run_bench(args: argparse.Namespace) -> int:
    from .bench.runner import run_from_args

    return run_from_args(args)


def _version_text() -> str:
    from . import __version__

    impl = sys.implementation.name
    return f"rpcwire {__version__} ({impl} {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    """The full `rpcwire` argument parser (exposed for tests and docs)."""
    from .bench.config import add_bench_arguments

    parser = argparse.ArgumentParser(
        prog="rpcwire",
        description="Fast, safe JSON-RPC 2.0 / MCP transports: benchmarks, a stdio<->socket bridge, key files.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr (-vv: debug)")
    # `subcommand`, not `command`: `bridge` has a COMMAND positional of its own (the child to run).
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")

    p_bench = sub.add_parser(
        "bench",
        help="measure rpcwire against baselines in one run",
        description="Benchmark rpcwire's transports against the pure-Python codec, a hand-rolled asyncio+orjson "
        "loop and the MCP SDK's stdio transport, in the same run; every figure is also a ratio.",
    )
    add_bench_arguments(p_bench)
    _add_verbose(p_bench)
    p_bench.set_defaults(func=_run_bench)

    _add_bridge_commands(sub)

    p_keygen = sub.add_parser(
        "keygen",
        help="write a fresh AES-256-GCM key file",
        description="Generate a random 32-byte key and write the key file (mode 0600), "
        "or print its JSON on stdout when --out is not given.",
    )
    p_keygen.add_argument("--out", "-o", default=None, metavar="FILE", help="write the key file here (mode 0600)")
    p_keygen.add_argument("--key-id", type=_key_id, default=1, metavar="N", help="the key's id (default 1)")
    p_keygen.add_argument("--force", action="store_true", help="replace an existing --out file")
    _add_verbose(p_keygen)
    p_keygen.set_defaults(func=_run_keygen)
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    # Also accepted after the subcommand; SUPPRESS keeps a top-level -v from being reset to 0.
    parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more logging on stderr")


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rpcwire: %(levelname)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `rpcwire` command line.

    Arguments:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        The process exit status: 0 on success, 2 on a usage error, 130 when interrupted,
        otherwise what the subcommand returned.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        sys.stdout.write(_version_text() + "\n")
        return 0
    _setup_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write("rpcwire: error: a COMMAND is required (bench, bridge, connect, keygen)\n")
        return 2
    try:
        return int(func(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"rpcwire {args.subcommand}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("rpcwire: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
