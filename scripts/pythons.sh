# Sourced by the wheel scripts: find_python 3.12 prints the path of a CPython 3.12 on this machine
# (on PATH, or under pyenv), or fails.
find_python() {
    local v=$1 p
    if p=$(command -v "python$v" 2>/dev/null) && "$p" -c 'import sys; sys.exit(sys.implementation.name != "cpython")'; then
        echo "$p"
        return 0
    fi
    if command -v pyenv >/dev/null 2>&1; then
        for p in "$(pyenv root)"/versions/"$v".*/bin/"python$v"; do
            if [ -x "$p" ]; then
                echo "$p"
                return 0
            fi
        done
    fi
    return 1
}

# The CPython versions rpcwire supports (pyproject: requires-python and the classifiers).
PYTHON_VERSIONS=(3.10 3.11 3.12 3.13)
