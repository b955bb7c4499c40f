#!/usr/bin/env bash
# `make test-wheels`: every wheel in dist/ that this machine can install goes into a fresh venv of its own
# interpreter, with the test dependencies, and the test suite runs against the installed wheel (never the
# source tree). A wheel the host cannot install (musllinux on this glibc host) is checked with `auditwheel
# show` instead. The sdist is installed (built from source) in a fresh venv and smoke-tested.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pythons.sh
DIST=${DIST:-dist}
WORK=${WORK:-build/test-wheels}
VPY=${VPY:-.venv/bin/python}
read -r -a PYTEST_ARGS <<< "${PYTEST_ARGS:-tests benches -q -p no:cacheprovider}"

rm -rf "$WORK"
mkdir -p "$WORK"
summary=()
shopt -s nullglob
wheels=("$DIST"/*.whl)
[ ${#wheels[@]} -gt 0 ] || { echo "test-wheels: no wheels in $DIST (run make wheels)" >&2; exit 1; }

constraints_for() {
    if [ -f "requirements/constraints-py$1.txt" ]; then echo "requirements/constraints-py$1.txt"
    else echo "requirements/constraints.txt"; fi
}

for wheel in "${wheels[@]}"; do
    name=$(basename "$wheel")
    tag=$(echo "$name" | cut -d- -f3)  # cp310
    version="${tag:2:1}.${tag:3}"
    if ! py=$(find_python "$version"); then
        echo "test-wheels: $name: no CPython $version here" >&2
        exit 1
    fi
    venv="$WORK/$tag-$(echo "$name" | grep -o 'musllinux\|manylinux' | head -1)"
    "$py" -m venv "$venv"
    if ! "$venv/bin/python" -m pip install -q --no-deps --dry-run "$wheel" >/dev/null 2>&1; then
        policy=$("$VPY" scripts/wheel_report.py "$wheel")
        echo "== $name: not installable on this host; auditwheel show: $policy"
        summary+=("$name  not installable here; auditwheel: $policy")
        continue
    fi
    echo "== $name: installing into $venv with $(constraints_for "$version")"
    PIP_CONSTRAINT="$PWD/$(constraints_for "$version")" "$venv/bin/python" -m pip install -q "$wheel[test]"
    "$venv/bin/python" - <<'PY'
import pathlib, sys, rpcwire
where = pathlib.Path(rpcwire.__file__).resolve()
assert "site-packages" in where.parts, f"rpcwire imported from {where}, not from the installed wheel"
print(f"   rpcwire {rpcwire.__version__} from {where.parent} on Python {sys.version.split()[0]}")
PY
    start=$SECONDS
    "$venv/bin/python" -m pytest "${PYTEST_ARGS[@]}"
    took=$((SECONDS - start))
    # The codec against orjson in the same interpreter (>1: rpcwire faster): a slow build shows here.
    ratios=$("$venv/bin/python" -m benches.paired --rounds "${PAIRED_ROUNDS:-60}" --size 200B \
        | awk -F'|' '/^\| (decode|encode_many) /{gsub(/ /, "", $2); gsub(/ /, "", $4); printf "%s %s  ", $2, $4}')
    size=$(du -k "$wheel" | cut -f1)
    summary+=("$name  ${size} KiB  suite passed on $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])') in ${took} s  vs orjson: ${ratios}")
done

for sdist in "$DIST"/*.tar.gz; do
    name=$(basename "$sdist")
    venv="$WORK/sdist"
    py=$(find_python 3.11 || command -v python3)
    "$py" -m venv "$venv"
    echo "== $name: building and installing from source"
    PIP_CONSTRAINT="$PWD/requirements/constraints.txt" "$venv/bin/python" -m pip install -q "$sdist"
    (cd "$WORK" && sdist/bin/python - <<'PY'
import rpcwire
ring = rpcwire.Keyring.generate()
a = rpcwire.Codec(keyring=ring, handshake="initiator", compression="lz4")
b = rpcwire.Codec(keyring=ring, handshake="responder", compression="lz4")
b.feed(a.data_to_send())
a.feed(b.data_to_send())
msgs = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(3)]
assert b.feed(a.encode_many(msgs)) == msgs
PY
    )
    "$venv/bin/rpcwire" --version
    summary+=("$name  built, installed and smoke-tested")
done

echo
echo "test-wheels: summary"
printf '  %s\n' "${summary[@]}"
