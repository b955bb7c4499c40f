//! Python-version cfgs (`Py_3_14`, `PyPy`, ...) for the binding, which reads some `CPython` objects
//! directly where their layout is public (`src/py_json.rs`).
fn main() {
    if std::env::var_os("CARGO_FEATURE_PYTHON").is_some() {
        pyo3_build_config::use_pyo3_cfgs();
    }
}
