//! `rpcwire.Keyring`: AES-256 keys by id for the envelope (docs/wire-format.md 3.2 and 4).
//!
//! Immutable (`frozen`): rotation makes a new ring (`with_key`, `with_active`), so a codec holding one never
//! sees its keys change underneath it. No method, repr or error ever shows key bytes.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::exceptions::{PyPermissionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyInt, PyMapping};
use zeroize::Zeroizing;

use rpcwire_core::crypto::{KeyRing, KEY_LEN};
use rpcwire_core::errors::CodecError;

/// AES-256 keys by integer id: seal with the active key, open with whichever key a frame names.
#[pyclass(module = "rpcwire", frozen)]
pub struct Keyring {
    inner: Arc<KeyRing>,
}

impl Keyring {
    /// The shared pure ring, for codecs.
    #[must_use]
    pub fn inner(&self) -> Arc<KeyRing> {
        Arc::clone(&self.inner)
    }

    fn wrap(ring: KeyRing) -> Self {
        Self { inner: Arc::new(ring) }
    }
}

fn value_error(e: CodecError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn key_id(obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "key ids must be int, not {}",
            obj.get_type().name()?
        )));
    }
    obj.extract::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| PyValueError::new_err(format!("key id {obj} is out of range 0..2**32-1")))
}

fn key_bytes(id: u32, obj: &Bound<'_, PyAny>) -> PyResult<Zeroizing<[u8; KEY_LEN]>> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let len = if let Ok(b) = obj.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        if bytes.len() == KEY_LEN {
            key.copy_from_slice(bytes);
        }
        bytes.len()
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        let bytes = Zeroizing::new(b.to_vec());
        if bytes.len() == KEY_LEN {
            key.copy_from_slice(&bytes);
        }
        bytes.len()
    } else {
        return Err(PyTypeError::new_err(format!(
            "key {id} must be bytes, not {}",
            obj.get_type().name()?
        )));
    };
    if len != KEY_LEN {
        return Err(PyValueError::new_err(format!(
            "key {id} must be exactly {KEY_LEN} bytes, got {len}"
        )));
    }
    Ok(key)
}

/// Refuse a key file that group or others may read or write, as ssh does for private keys.
#[cfg(unix)]
fn check_private(path: &Path, file: &std::fs::File) -> PyResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PyPermissionError::new_err(format!(
            "key file {} has mode {mode:04o}: group and others must have no access (chmod 600 it)",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &std::fs::File) -> PyResult<()> {
    Ok(())
}

/// Write `data` to `path` atomically (temporary file in the same directory, fsync, rename), mode 0600.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "key file path has no file name"))?;
    let mut suffix = [0u8; 6];
    rpcwire_core::crypto::fill_random(&mut suffix).map_err(|e| std::io::Error::other(e.to_string()))?;
    let suffix: String = suffix.iter().fold(String::new(), |mut s, b| {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        s
    });
    let tmp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[pymethods]
impl Keyring {
    #[new]
    #[pyo3(signature = (keys, active = None))]
    fn py_new(keys: &Bound<'_, PyAny>, active: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let keys = if let Ok(dict) = keys.cast::<PyDict>() {
            dict.clone()
        } else if let Ok(mapping) = keys.cast::<PyMapping>() {
            PyDict::from_sequence(&mapping.items()?.into_any())?
        } else {
            return Err(PyTypeError::new_err(format!(
                "keys must be a mapping of key id to 32-byte key, not {}",
                keys.get_type().name()?
            )));
        };
        let mut parsed: Vec<(u32, [u8; KEY_LEN])> = Vec::with_capacity(keys.len());
        let mut collect = || -> PyResult<()> {
            for (id, key) in keys.iter() {
                let id = key_id(&id)?;
                parsed.push((id, *key_bytes(id, &key)?));
            }
            Ok(())
        };
        let collected = collect();
        let ring = collected.and_then(|()| {
            let active = match active {
                Some(a) => key_id(a)?,
                // One key: it is the active one. No key: KeyRing::new says so.
                None if parsed.len() <= 1 => parsed.first().map_or(0, |k| k.0),
                None => {
                    return Err(PyValueError::new_err(
                        "active= is required when the keyring holds more than one key",
                    ))
                }
            };
            // KeyRing::new zeroes the vector's copies of the keys.
            KeyRing::new(std::mem::take(&mut parsed), active).map_err(value_error)
        });
        for (_, k) in &mut parsed {
            zeroize::Zeroize::zeroize(k);
        }
        Ok(Self::wrap(ring?))
    }

    /// A keyring with one fresh random 32-byte key (from the OS CSPRNG) under `key_id`, active.
    #[staticmethod]
    #[pyo3(signature = (key_id = None))]
    fn generate(key_id: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let id = key_id.map_or(Ok(1), self::key_id)?;
        KeyRing::generate(id).map(Self::wrap).map_err(value_error)
    }

    /// Read a key file (docs/wire-format.md 4).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let data = py.detach(|| -> PyResult<Zeroizing<Vec<u8>>> {
            let mut file = std::fs::File::open(&path)?;
            check_private(&path, &file)?;
            let mut data = Zeroizing::new(Vec::with_capacity(256));
            (&mut file).take(1 << 20).read_to_end(&mut data)?;
            Ok(data)
        })?;
        KeyRing::from_key_file(&data)
            .map(Self::wrap)
            .map_err(|e| PyValueError::new_err(format!("{}: {e}", path.display())))
    }

    /// Write this keyring to a key file, mode 0600, atomically (a reader sees the old file or the new one).
    fn to_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let text = self.inner.to_key_file();
        py.detach(|| write_private(&path, text.as_bytes()))?;
        Ok(())
    }

    /// The same keys, sealing with `key_id` from now on.
    fn with_active(&self, key_id: &Bound<'_, PyAny>) -> PyResult<Self> {
        let id = self::key_id(key_id)?;
        self.inner.with_active(id).map(Self::wrap).map_err(value_error)
    }

    /// These keys plus `key` under `key_id` (replacing a key with that id); `active=True` also seals with it.
    #[pyo3(signature = (key_id, key, *, active = false))]
    fn with_key(&self, key_id: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>, active: bool) -> PyResult<Self> {
        let id = self::key_id(key_id)?;
        let key = key_bytes(id, key)?;
        self.inner
            .with_key(id, *key, active)
            .map(Self::wrap)
            .map_err(value_error)
    }

    /// These keys without `key_id` (which must not be the active one).
    fn without_key(&self, key_id: &Bound<'_, PyAny>) -> PyResult<Self> {
        let id = self::key_id(key_id)?;
        self.inner.without_key(id).map(Self::wrap).map_err(value_error)
    }

    /// The raw keys by id, for handing to another implementation (`rpcwire.reference`). Handle with care.
    fn export_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for id in self.inner.ids() {
            if let Some(key) = self.inner.key_bytes(id) {
                out.set_item(id, PyBytes::new(py, key))?;
            }
        }
        Ok(out)
    }

    /// The key ids, ascending.
    #[getter]
    fn ids(&self) -> Vec<u32> {
        self.inner.ids()
    }

    /// The id of the key that seals.
    #[getter]
    fn active(&self) -> u32 {
        self.inner.active()
    }

    fn __len__(&self) -> usize {
        self.inner.ids().len()
    }

    fn __contains__(&self, key_id: &Bound<'_, PyAny>) -> bool {
        self::key_id(key_id).is_ok_and(|id| self.inner.contains(id))
    }

    fn __repr__(&self) -> String {
        format!("Keyring(ids={:?}, active={})", self.inner.ids(), self.inner.active())
    }
}
