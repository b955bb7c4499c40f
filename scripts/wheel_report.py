"""``make wheels``' last step: ``auditwheel show`` each wheel in DIST and print one table of what was built
(given one wheel instead of a folder, print the policy ``auditwheel show`` finds it meets).

Exits non-zero when a Linux wheel does not meet the policy its file name claims (a manylinux2014 wheel that
links a newer glibc symbol, say).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def policy_of(wheel: Path) -> str:
    """The platform tag ``auditwheel show`` finds the wheel consistent with."""
    out = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r'consistent with the following platform tag:\s*"?([\w.]+)"?', " ".join(out.split()))
    return found.group(1) if found else "?"


def main(dist: Path) -> int:
    rows = []
    failed = False
    for artifact in sorted(dist.iterdir()):
        size = f"{artifact.stat().st_size / 2**20:.2f} MiB"
        if artifact.suffix != ".whl":
            rows.append((artifact.name, "sdist", size, "-"))
            continue
        tags = artifact.stem.split("-", 2)[2]
        policy = policy_of(artifact)
        claimed = tags.rsplit("-", 1)[1].split(".")
        ok = policy in claimed
        failed = failed or not ok
        rows.append((artifact.name, tags, size, policy if ok else f"{policy} (claims {'.'.join(claimed)}!)"))
    widths = [max(len(r[i]) for r in [*rows, ("artifact", "tags", "size", "auditwheel policy")]) for i in range(4)]
    for row in [("artifact", "tags", "size", "auditwheel policy"), tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "dist")
    if target.is_file():  # one wheel: just its policy (scripts/test-wheels.sh)
        print(policy_of(target))  # noqa: T201
        sys.exit(0)
    sys.exit(main(target))
