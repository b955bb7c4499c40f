"""One version everywhere: both crates' Cargo.toml, ``rpcwire.__version__``, the installed distribution's metadata,
``rpcwire --version`` and the CHANGELOG's newest entry."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import rpcwire

ROOT = Path(__file__).resolve().parent.parent


def cargo_version(manifest: Path) -> str:
    package = manifest.read_text(encoding="utf-8").split("[package]", 1)[1].split("\n[", 1)[0]
    found = re.search(r'^version = "([^"]+)"', package, re.M)
    assert found, f"no [package] version in {manifest}"
    return found.group(1)


def python_spelling(cargo: str) -> str:
    return cargo.replace("-alpha.", "a").replace("-beta.", "b").replace("-rc.", "rc")


def test_every_place_names_one_version() -> None:
    version = python_spelling(cargo_version(ROOT / "Cargo.toml"))
    assert python_spelling(cargo_version(ROOT / "crates" / "rpcwire-core" / "Cargo.toml")) == version
    assert re.search(
        r'rpcwire-core = \{[^}]*version = "' + re.escape(cargo_version(ROOT / "Cargo.toml")) + '"',
        (ROOT / "Cargo.toml").read_text(encoding="utf-8"),
    )
    assert rpcwire.__version__ == version
    assert metadata.version("rpcwire") == version
    out = subprocess.run(
        [sys.executable, "-m", "rpcwire", "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.startswith(f"rpcwire {version} ")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\S+)", changelog, re.M)
    assert newest
    assert newest.group(1) == version


def test_the_classifiers_name_every_supported_python() -> None:
    meta = metadata.metadata("rpcwire")
    classifiers = meta.get_all("Classifier") or []
    requires = meta["Requires-Python"]
    assert requires == ">=3.10"
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert meta["License-Expression"] == "MIT"
