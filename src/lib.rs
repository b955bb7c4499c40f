//! rpcwire: a sans-IO JSON-RPC 2.0 codec.
//!
//! The pure modules (`framing`, `envelope`, `compress`, `crypto`, `jsonrpc`, `errors`) never touch Python;
//! `cargo test --no-default-features` builds and tests them alone. The `py_*` modules are the `PyO3` binding.
pub mod compress;
pub mod crypto;
pub mod envelope;
pub mod errors;
pub mod framing;
pub mod jsonrpc;

#[cfg(feature = "python")]
mod py_codec;
#[cfg(feature = "python")]
mod py_decode;
#[cfg(feature = "python")]
mod py_errors;
#[cfg(feature = "python")]
mod py_json;
#[cfg(feature = "python")]
mod py_keyring;
#[cfg(feature = "python")]
mod py_protocol;

/// The crate version in Python's spelling (`0.1.0-alpha.1` -> `0.1.0a1`).
#[must_use]
pub fn python_version() -> String {
    env!("CARGO_PKG_VERSION")
        .replace("-alpha.", "a")
        .replace("-beta.", "b")
        .replace("-rc.", "rc")
}

#[cfg(feature = "python")]
#[pyo3::pymodule(gil_used = false)]
#[pyo3(name = "_core")]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::py_codec::{kind, Codec};
    #[pymodule_export]
    use crate::py_keyring::Keyring;
    #[pymodule_export]
    use crate::py_protocol::{forget_waiter, wake, ProtocolCore};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", crate::python_version())
    }
}
