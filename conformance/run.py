"""The MCP SDK's own stdio test suite, run with rpcwire swapped in for every process: ``make sdk-conformance``.

1. Download the sdist of the ``mcp`` version installed here (pinned in requirements/constraints.txt) from
   PyPI into ``build/sdk-conformance/`` (once) and extract its ``tests/`` tree and ``pyproject.toml``.
2. Control run: the stdio test files as they are, on the SDK's own transports. Every test must pass (or be
   skipped on this platform).
3. Swapped run: the same files with ``conformance/swap`` on PYTHONPATH, so ``mcp.client.stdio.stdio_client``
   and ``mcp.server.stdio.stdio_server`` are rpcwire's in the test process and in every server it spawns.
   Every test must pass except those listed in ``conformance/internals.py`` (tests of the SDK's private
   machinery, each with its reason and the test of ours that checks the same behaviour through rpcwire).
   They are deselected, not run.

Prints both counts and the list; exits non-zero when either run has an unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "conformance"))
from internals import INTERNALS  # noqa: E402

#: The SDK's stdio tests (as issue 21 names them).
TEST_PATHS = (
    "tests/client/test_stdio.py",
    "tests/server/test_stdio.py",
    "tests/transports/stdio",
    "tests/interaction/transports/test_stdio.py",
)


def fetch(version: str, cache: Path) -> Path:
    """The extracted sdist of ``mcp==version`` (downloaded from PyPI once)."""
    src = cache / f"mcp-{version}"
    if (src / "tests").is_dir():
        return src
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"mcp-{version}.tar.gz"
    if not sdist.exists():
        env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
        download = ["pip", "download", "-q", "--no-deps", "--no-binary", ":all:", f"mcp=={version}"]
        subprocess.run([sys.executable, "-m", *download, "-d", str(cache)], check=True, env=env)
    prefix = f"mcp-{version}/"
    with tarfile.open(sdist) as tar:
        members = [
            m for m in tar.getmembers() if m.name.startswith(prefix + "tests/") or m.name == prefix + "pyproject.toml"
        ]
        tar.extractall(cache, members=members, filter="data")
    return src


def run(src: Path, swap: bool, report: Path) -> dict[str, str]:
    """Run the stdio tests in ``src``; return each test's outcome (passed, failed, error, skipped)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if swap:
        env["PYTHONPATH"] = str(ROOT / "conformance" / "swap")
    argv = [sys.executable, "-m", "pytest", *TEST_PATHS, "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    # The SDK's addopts load plugins its own dev set-up has (pytest-examples); keep only anyio's.
    argv += ["-o", "addopts=-p anyio", "-o", "log_cli=false", "--timeout=120"]
    if swap:
        argv += [f"--deselect={test}" for test in INTERNALS]
    subprocess.run(argv, cwd=src, env=env, check=False)
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcome = next((k for k in ("failure", "error", "skipped") if k in kinds), "passed")
        outcomes[name] = {"failure": "failed"}.get(outcome, outcome)
    return outcomes


def summary(outcomes: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "sdk-conformance")
    args = parser.parse_args()
    version = importlib.metadata.version("mcp")
    src = fetch(version, args.cache)
    control = run(src, swap=False, report=args.cache / "control.xml")
    swapped = run(src, swap=True, report=args.cache / "swapped.xml")
    bad_control = sorted(t for t, o in control.items() if o in ("failed", "error"))
    bad_swapped = sorted(t for t, o in swapped.items() if o in ("failed", "error"))
    print(f"mcp {version} stdio test suite")
    print(f"  control (the SDK's own transports): {summary(control)}")
    print(f"  rpcwire swapped in:                 {summary(swapped)}; {len(INTERNALS)} internals tests deselected")
    print("internals tests (each with its reason and the twin that checks the behaviour through rpcwire):")
    for test, (reason, twin) in sorted(INTERNALS.items()):
        print(f"  {test}\n      why:  {reason}\n      twin: {twin}")
    for name, bad in (("control", bad_control), ("swapped", bad_swapped)):
        for test in bad:
            print(f"UNEXPECTED {name} failure: {test}")
    return 1 if bad_control or bad_swapped else 0


if __name__ == "__main__":
    sys.exit(main())
