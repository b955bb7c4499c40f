#!/usr/bin/env bash
# `make wheels`: release wheels for every supported CPython found here, for manylinux2014 (glibc 2.17) and
# musllinux_1_2 on x86_64, built with maturin and zig; the sdist; `auditwheel show` of each wheel; a table.
# Needs PATH to hold the venv's bin (maturin finds zig as `python -m ziglang`): the Makefile sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pythons.sh
DIST=${DIST:-dist}
VPY=${VPY:-.venv/bin/python}

interpreters=()
for v in "${PYTHON_VERSIONS[@]}"; do
    if py=$(find_python "$v"); then
        interpreters+=("$py")
    else
        echo "build-wheels: no CPython $v here; its wheels are not built" >&2
    fi
done
[ ${#interpreters[@]} -gt 0 ] || { echo "build-wheels: no supported CPython found" >&2; exit 1; }

rustup target add x86_64-unknown-linux-musl >/dev/null
rm -rf "$DIST"
mkdir -p "$DIST"
# Each interpreter gets its own wheel: the decoder builds dicts, lists and strings through CPython internals
# outside the limited API, so there is no abi3 wheel (docs: README "Wheels").
"$VPY" -m maturin build --release --zig --compatibility manylinux2014 --out "$DIST" -i "${interpreters[@]}"
# Cross-compiled: maturin uses its bundled sysconfig of musl CPython for each version, not the host's.
"$VPY" -m maturin build --release --zig --target x86_64-unknown-linux-musl --compatibility musllinux_1_2 \
    --out "$DIST" -i "${interpreters[@]}"
"$VPY" scripts/musl_soname.py "$DIST"/*musllinux*.whl
"$VPY" -m maturin sdist --out "$DIST"
"$VPY" scripts/wheel_report.py "$DIST"
