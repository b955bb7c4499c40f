"""The `rpcwire` command line: option parsing, exit codes, codec options, keygen, --version.

(The bridge/connect behaviour itself is tested in tests/test_bridge.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import rpcwire
from rpcwire import cli


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse exits by itself on bad options and --help
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["--version"], capsys)
    assert rc == 0
    assert out.startswith(f"rpcwire {rpcwire.__version__} ")
    assert err == ""


def test_python_dash_m_and_entry_point_agree() -> None:
    proc = subprocess.run([sys.executable, "-m", "rpcwire", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip().startswith("rpcwire ")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli([], capsys)
    assert rc == 2
    assert out == ""
    assert "a COMMAND is required" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--transport", "carrier-pigeon"], "unknown transport 'carrier-pigeon'"),
        (["bench", "--transport", ","], "empty transport list"),
        (["bench", "--mode", "fastest"], "unknown mode 'fastest'"),
        (["bench", "--framing", "xml"], "unknown framing 'xml'"),
        (["bench", "--compression", "gzip"], "unknown compression 'gzip'"),
        (["bench", "--baseline", "grpc"], "unknown baseline 'grpc'"),
        (["bench", "--size", "12"], "between 64 B and 16 MiB"),
        (["bench", "--size", "lots"], "not a size"),
        (["bench", "--size", "64GB"], "between 64 B and 16 MiB"),
        (["bench", "--count", "0"], "must be greater than 0"),
        (["bench", "--count", "-5"], "must be greater than 0"),
        (["bench", "--repeat", "three"], "not an integer"),
        (["bench", "--encrypt", "maybe"], "--encrypt takes on, off or both"),
        (["bench", "--loop", "trio"], "invalid choice"),
        (["bench", "--plot", "out.svg"], "--plot writes a PNG"),
        (["bench", "--warmup", "-1"], "--warmup must be between"),
        (["bench", "--framing", "ndjson", "--compression", "lz4"], "select no runnable case"),
        (["bench", "--no-such-option"], "unrecognized arguments"),
        (["keygen", "--key-id", "-1"], "key id must be in 0..4294967295"),
        (["keygen", "--key-id", str(2**32)], "key id must be in 0..4294967295"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_options_exit_2_with_a_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2
    assert out == ""
    assert message in err


def _bench_config(argv: list[str]) -> object:
    from rpcwire.bench.config import BenchConfig

    args = cli.build_parser().parse_args(["bench", *argv])
    return BenchConfig.from_args(args)


def test_bench_options_parse_lists_aliases_and_units() -> None:
    from rpcwire.bench.config import BenchConfig

    config = _bench_config(
        [
            "--transport",
            "pipe,unix,unix",
            "--size",
            "150,64k,1MiB",
            "--mode",
            "roundtrip",
            "--compression",
            "lz4,none",
            "--encrypt",
            "both",
            "--baseline",
            "asyncio",
            "--repeat",
            "2",
            "--count",
            "50",
        ]
    )
    assert isinstance(config, BenchConfig)
    assert config.transports == ("stdio", "unix")  # alias resolved, duplicate dropped
    assert config.sizes == (150, 64_000, 1_048_576)
    assert config.modes == ("roundtrip",)
    assert config.encrypt == (False, True)
    assert config.baselines == ("asyncio",)
    assert (config.repeat, config.count) == (2, 50)
    # compression/encryption cannot ride on ndjson: those cases are left out, the plain ones stay
    cases = list(config.cases())
    assert all(c.framing == "length" or (c.compression == "none" and not c.encrypted) for c in cases)
    assert {c.framing for c in cases if c.impl == "rpcwire"} == {"ndjson", "length"}
    # the asyncio baseline speaks plain NDJSON only, once per transport/size/mode
    asyncio_cases = [c for c in cases if c.impl == "asyncio"]
    assert len(asyncio_cases) == 2 * 3
    assert all((c.framing, c.compression, c.encrypted) == ("ndjson", "none", False) for c in asyncio_cases)


def test_bench_quick_defaults_are_small() -> None:
    from rpcwire.bench.config import QUICK_SIZES, QUICK_TRANSPORTS, BenchConfig

    config = _bench_config(["--quick"])
    assert isinstance(config, BenchConfig)
    assert config.repeat == 1
    assert config.sizes == QUICK_SIZES
    assert config.transports == QUICK_TRANSPORTS
    full = _bench_config([])
    assert isinstance(full, BenchConfig)
    assert full.repeat == 3
    assert config.count_for(150, "throughput") < full.count_for(150, "throughput")
    # mcp runs only over stdio and never in concurrent mode; memory has no asyncio/mcp rows
    for case in full.cases():
        if case.impl == "mcp":
            assert case.transport == "stdio"
            assert case.mode != "concurrent"
        if case.transport == "memory":
            assert case.impl in ("rpcwire", "reference")


# --- codec options (shared with `bridge` and `connect`) ---------------------------------------------


def _codec_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    cli.add_codec_options(parser)
    return parser.parse_args(argv)


def test_codec_options_only_pass_what_was_given() -> None:
    assert cli.codec_options(_codec_args([])) == {}
    opts = cli.codec_options(
        _codec_args(
            ["--framing", "length", "--compression", "lz4", "--compress-min-size", "2k", "--max-frame-size", "1MiB"]
        )
    )
    assert opts == {"framing": "length", "compression": "lz4", "compress_min_size": 2000, "max_frame_size": 2**20}
    assert cli.codec_options(_codec_args(["--compression", "none"])) == {"compression": None}


def test_codec_options_build_a_working_codec() -> None:
    opts = cli.codec_options(_codec_args(["--framing", "length", "--compression", "brotli"]))
    a, b = rpcwire.Codec(**opts), rpcwire.Codec(**opts)
    msg = {"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"t": "y" * 5000}}
    assert b.feed(a.encode(msg)) == [msg]


def test_codec_options_refuse_compression_on_ndjson() -> None:
    with pytest.raises(cli.UsageError, match="ndjson cannot carry compression or encryption"):
        cli.codec_options(_codec_args(["--framing", "ndjson", "--compression", "lz4"]))


@pytest.mark.parametrize("bad", ["--framing=xml", "--compression=zip", "--max-frame-size=0", "--compress-min-size=x"])
def test_codec_options_bad_values(bad: str) -> None:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    cli.add_codec_options(parser)
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parser.parse_args([bad])


def test_codec_options_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(cli.UsageError, match="no such file"):
        cli.codec_options(_codec_args(["--key-file", str(tmp_path / "absent.json")]))


def test_codec_options_malformed_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text('{"version": 1, "active": 1, "keys": {"1": "not hex"}}')
    path.chmod(0o600)
    with pytest.raises(cli.UsageError, match="--key-file"):
        cli.codec_options(_codec_args(["--key-file", str(path)]))


@pytest.mark.parametrize(("text", "value"), [("150", 150), ("64k", 64_000), ("1MiB", 2**20), ("16M", 16_000_000)])
def test_parse_size(text: str, value: int) -> None:
    assert cli.parse_size(text) == value


# --- keygen ---------------------------------------------------------------------------------------


def test_keygen_writes_a_0600_key_file_keyring_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wire.key"
    rc, out, _err = run_cli(["keygen", "--out", str(path), "--key-id", "7"], capsys)
    assert rc == 0
    assert out == ""  # nothing but results on stdout, and there is none
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["active"] == 7
    assert list(doc["keys"]) == ["7"]
    assert len(doc["keys"]["7"]) == 64
    keyring = rpcwire.Keyring.from_file(str(path))
    assert "7" in repr(keyring)
    assert doc["keys"]["7"] not in repr(keyring)


def test_key_file_option_seals_frames_the_other_side_opens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wire.key"
    assert run_cli(["keygen", "--out", str(path)], capsys)[0] == 0
    opts = cli.codec_options(_codec_args(["--framing", "length", "--key-file", str(path)]))
    assert set(opts) == {"framing", "keyring"}
    sender = rpcwire.Codec(**opts)
    receiver = rpcwire.Codec(framing="length", keyring=rpcwire.Keyring.from_file(str(path)))
    msg = {"jsonrpc": "2.0", "method": "ping"}
    assert receiver.feed(sender.encode(msg)) == [msg]
    stranger = rpcwire.Codec(framing="length", keyring=rpcwire.Keyring.generate())
    with pytest.raises(rpcwire.DecryptError):
        stranger.feed(rpcwire.Codec(**opts).encode(msg))


def test_keygen_twice_gives_different_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.key", tmp_path / "b.key"
    assert run_cli(["keygen", "-o", str(a)], capsys)[0] == 0
    assert run_cli(["keygen", "-o", str(b)], capsys)[0] == 0
    assert json.loads(a.read_text())["keys"]["1"] != json.loads(b.read_text())["keys"]["1"]


def test_keygen_without_out_prints_the_key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _err = run_cli(["keygen"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["version"] == 1
    assert doc["active"] == 1
    assert len(doc["keys"]["1"]) == 64
    # what was printed is a valid key file
    path = tmp_path / "printed.key"
    path.write_text(out)
    path.chmod(0o600)
    rpcwire.Keyring.from_file(str(path))


def test_keygen_into_a_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["keygen", "--out", str(tmp_path)], capsys)
    assert rc == 2
    assert out == ""
    assert "is a directory" in err


def test_keygen_into_a_missing_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _out, err = run_cli(["keygen", "--out", str(tmp_path / "no" / "such" / "dir" / "k.json")], capsys)
    assert rc == 2
    assert "--out" in err


def _connect_args(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(["connect", *argv])


def test_nats_options_go_to_nats_addresses_only(tmp_path: Path) -> None:
    from rpcwire._options import connection_options

    creds = tmp_path / "user.creds"
    creds.write_text("")
    args = _connect_args(["nats://127.0.0.1:4222/svc", "--nats-creds", str(creds), "--peer-timeout", "5"])
    opts = connection_options(args, "ADDRESS", args.address, server=False)
    assert opts["nats_options"] == {"user_credentials": str(creds)}
    assert opts["peer_timeout"] == 5
    args = _connect_args(["tcp://127.0.0.1:9000", "--peer-timeout", "5"])
    with pytest.raises(cli.UsageError, match="are for nats:// addresses"):
        connection_options(args, "ADDRESS", args.address, server=False)
    args = _connect_args(["nats://127.0.0.1:4222/svc", "--peer-timeout", "0"])
    with pytest.raises(cli.UsageError, match="more than 0"):
        connection_options(args, "ADDRESS", args.address, server=False)
    # TLS to the NATS server: a client context, on the bridge too (it is a NATS client)
    args = cli.build_parser().parse_args(["bridge", "tls://127.0.0.1:4222/svc", "--", "true"])
    assert connection_options(args, "LISTEN_ADDRESS", args.listen, server=True) == {}
