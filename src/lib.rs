//! rpcwire's Python binding: the `rpcwire._core` extension module the wheel ships.
//!
//! The codec itself (framing, envelope, compression, cryptography, JSON-RPC rules) is the pure `rpcwire-core`
//! crate (`crates/rpcwire-core`), usable from Rust on its own; the `py_*` modules here build Python objects
//! from it and drive it from asyncio.
mod py_codec;
mod py_decode;
mod py_errors;
mod py_json;
mod py_keyring;
mod py_protocol;
#[cfg(feature = "sonic")]
mod py_sonic;

/// The crate version in Python's spelling (`0.1.0-alpha.1` -> `0.1.0a1`).
#[must_use]
pub fn python_version() -> String {
    env!("CARGO_PKG_VERSION")
        .replace("-alpha.", "a")
        .replace("-beta.", "b")
        .replace("-rc.", "rc")
}

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
