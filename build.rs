//! Python-version cfgs (`Py_3_14`, `PyPy`, ...) for the binding, which reads some `CPython` objects
//! directly where their layout is public (`src/py_json.rs`).
//!
//! `--cfg rpcwire_limited_api` (in `RUSTFLAGS`) makes the encoder take the paths an abi3 build would, on a
//! regular build: how the README's abi3 decision was measured (`benches/README.md`).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(rpcwire_limited_api)");
    pyo3_build_config::use_pyo3_cfgs();
}
