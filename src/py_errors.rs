//! `CodecError` -> Python, in one place. The exception classes live in `python/rpcwire/_errors.py`;
//! they are looked up once and cached.
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use rpcwire_core::errors::CodecError;

const ERRORS_MODULE: &str = "rpcwire._errors";

static PARSE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_REQUEST: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FRAMING_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FRAME_TOO_LARGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECRYPT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyType>>, name: &str) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, ERRORS_MODULE, name)
}

/// A `ParseError(data, None)` item.
#[cold]
#[inline(never)]
pub fn parse_error_item<'py>(py: Python<'py>, data: &str) -> PyResult<Bound<'py, PyAny>> {
    class(py, &PARSE_ERROR, "ParseError")?.call1((data, py.None()))
}

/// An `InvalidRequest(data, id)` item (`id` only when the message had a valid one).
#[cold]
#[inline(never)]
pub fn invalid_request_item<'py>(
    py: Python<'py>,
    data: &str,
    id: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let id = id.unwrap_or_else(|| py.None().into_bound(py));
    class(py, &INVALID_REQUEST, "InvalidRequest")?.call1((data, id))
}

/// The Python exception for a codec error.
#[cold]
#[inline(never)]
pub fn to_pyerr(py: Python<'_>, error: &CodecError) -> PyErr {
    let (cell, name) = match error {
        CodecError::FrameTooLarge { .. } | CodecError::Expansion { .. } => (&FRAME_TOO_LARGE, "FrameTooLarge"),
        CodecError::Framing { .. } | CodecError::OutOfMemory { .. } => (&FRAMING_ERROR, "FramingError"),
        CodecError::Decrypt { .. } => (&DECRYPT_ERROR, "DecryptError"),
        CodecError::Parse { .. } => (&PARSE_ERROR, "ParseError"),
        CodecError::InvalidRequest { .. } => (&INVALID_REQUEST, "InvalidRequest"),
        CodecError::Usage(message) => return PyValueError::new_err(message.clone()),
    };
    let message = match error {
        CodecError::Parse { detail } | CodecError::InvalidRequest { detail } => detail.clone(),
        other => other.to_string(),
    };
    match class(py, cell, name) {
        Ok(cls) => PyErr::from_type(cls.clone(), message),
        Err(import_error) => import_error,
    }
}

/// `?` for core results in binding code: the error as its Python exception (the orphan rule keeps a
/// `From<CodecError> for PyErr` out of this crate).
pub trait IntoPy<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, CodecError> {
    #[inline]
    fn py(self) -> PyResult<T> {
        self.map_err(|error| Python::attach(|py| to_pyerr(py, &error)))
    }
}
