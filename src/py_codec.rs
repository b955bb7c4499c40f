//! (being written: issue 2) placeholder so `import rpcwire` works while the codec is built.
use pyo3::exceptions::PyNotImplementedError;
use pyo3::prelude::*;

#[pyclass(module = "rpcwire")]
pub struct Codec;

#[pymethods]
impl Codec {
    #[new]
    #[pyo3(signature = (**_kwargs))]
    fn new(_kwargs: Option<&Bound<'_, pyo3::types::PyDict>>) -> PyResult<Self> {
        Err(PyNotImplementedError::new_err("Codec is being written"))
    }
}

#[pyfunction]
pub fn kind(_msg: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    Err(PyNotImplementedError::new_err("kind is being written"))
}
