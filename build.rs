//! Python-version cfgs (`Py_3_14`, `PyPy`, ...) for the binding, which reads some `CPython` objects
//! directly where their layout is public (`src/py_json.rs`).
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
