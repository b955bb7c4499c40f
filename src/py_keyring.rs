//! (being written: issue 3) placeholder so `import rpcwire` works.
use pyo3::prelude::*;

#[pyclass(module = "rpcwire")]
pub struct Keyring;
