//! Python objects -> compact JSON bytes in one pass, byte for byte what `orjson.dumps` writes
//! (docs/wire-format.md 1), except that integers outside 64 bits are written in full.
//!
//! The hot path walks the objects through borrowed `PyObject` pointers (dict entry tables, `PyDict_Next`,
//! `PyList_GET_ITEM`, exact type checks on `ob_type`), as orjson does: no reference counting or
//! `Bound` wrappers per value. That is sound because the caller holds a reference to the root and
//! holds the GIL, and nothing here runs Python code (no `__iter__`, `__str__`, hooks or GC-tracked
//! allocations), so no container can change or drop a value while it is being written. Subclasses
//! and tuples take the slower safe path. Free-threaded builds (`Py_GIL_DISABLED`, where another thread
//! could change a container) iterate dicts and lists with pyo3's iterators instead.
#![allow(unsafe_code)]

use num_bigint::BigInt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Deepest nesting of arrays and objects `write_value` accepts (orjson stops at 254).
pub const MAX_DEPTH: usize = 255;

const HEX: &[u8; 16] = b"0123456789abcdef";

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// One bit (the top of the byte) per byte of `word` that is below 0x20, `"` or `\\`. Exact: no carry
/// crosses bytes, so every set bit marks a byte to escape.
#[inline]
fn escape_bits(word: u64) -> u64 {
    let low = word & LOW7;
    // Top bit set iff the low seven bits are >= 0x20; with the byte's own top bit clear, it is < 0x20.
    let control = !((low + LO * (0x80 - 0x20)) | word);
    let quote = word ^ (LO * u64::from(b'"'));
    let quote = !(((quote & LOW7) + LOW7) | quote);
    let backslash = word ^ (LO * u64::from(b'\\'));
    let backslash = !(((backslash & LOW7) + LOW7) | backslash);
    (control | quote | backslash) & HI
}

/// Where the first byte of `block` that needs escaping is, if any: SSE2 (part of every `x86_64` CPU), three
/// compares and a mask for the sixteen bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn first_escape16(block: &[u8; 16]) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the `x86_64` baseline, so these intrinsics are always available; the unaligned
    // load reads exactly the 16 bytes of `block`.
    #[allow(clippy::cast_ptr_alignment)] // `_mm_loadu_si128` takes any alignment
    let mask = unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        let splat = |b: u8| _mm_set1_epi8(i8::from_ne_bytes([b]));
        let quote = _mm_cmpeq_epi8(bytes, splat(b'"'));
        let backslash = _mm_cmpeq_epi8(bytes, splat(b'\\'));
        // Unsigned `b <= 0x1f` is `min(b, 0x1f) == b`.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(bytes, splat(0x1F)), bytes);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)).cast_unsigned()
    };
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

/// Elsewhere: [`escape_bits`] on the two words.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn first_escape16(block: &[u8; 16]) -> Option<usize> {
    let (first, second) = block.split_at(8);
    let word = |half: &[u8]| {
        half.first_chunk::<8>()
            .map_or(0, |w| escape_bits(u64::from_le_bytes(*w)))
    };
    let (bits_a, bits_b) = (word(first), word(second));
    if bits_a != 0 {
        Some((bits_a.trailing_zeros() / 8) as usize)
    } else if bits_b != 0 {
        Some(8 + (bits_b.trailing_zeros() / 8) as usize)
    } else {
        None
    }
}

#[inline]
fn push_escape(out: &mut Vec<u8>, b: u8) {
    let letter = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0A => b'n',
        0x0C => b'f',
        0x0D => b'r',
        _ => {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', letter]);
}

/// Copy `s[*start..at]`, then the escape for the byte at `at`.
#[inline]
fn flush_escape(out: &mut Vec<u8>, s: &[u8], start: &mut usize, at: usize) {
    out.extend_from_slice(&s[*start..at]);
    push_escape(out, s[at]);
    *start = at + 1;
}

/// `s` (1 to 7 bytes) as a little-endian word padded with spaces, without a round trip through memory
/// (a byte copy into a stack buffer then a word load stalls store forwarding).
#[inline]
fn short_word(s: &[u8]) -> u64 {
    let n = s.len();
    let word = if let (Some(head), Some(last)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*head)) | (u64::from(u32::from_le_bytes(*last)) << ((n - 4) * 8))
    } else if let (Some(head), Some(last)) = (s.first_chunk::<2>(), s.last_chunk::<2>()) {
        u64::from(u16::from_le_bytes(*head)) | (u64::from(u16::from_le_bytes(*last)) << ((n - 2) * 8))
    } else {
        s.first().map_or(0, |&b| u64::from(b))
    };
    word | ((LO * u64::from(b' ')) << (n * 8))
}

/// Copy `s` (at most 16 bytes) with fixed-size word stores when no byte needs escaping (most keys
/// and short values): no `memcpy` call. False, writing nothing, when some byte needs escaping.
#[inline]
fn write_short_clean(out: &mut Vec<u8>, s: &[u8]) -> bool {
    let n = s.len();
    if let (Some(head), Some(last)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        // 8 to 16 bytes: two overlapping words.
        let (head, last) = (u64::from_le_bytes(*head), u64::from_le_bytes(*last));
        if escape_bits(head) | escape_bits(last) != 0 {
            return false;
        }
        let at = out.len();
        out.extend_from_slice(&head.to_le_bytes());
        out.truncate(at + n - 8);
        out.extend_from_slice(&last.to_le_bytes());
    } else if n > 0 {
        let word = short_word(s);
        if escape_bits(word) != 0 {
            return false;
        }
        let at = out.len();
        out.extend_from_slice(&word.to_le_bytes());
        out.truncate(at + n);
    }
    true
}

/// Append `s` as a JSON string: raw UTF-8, only `"`, `\\` and control characters escaped.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    if s.len() <= 16 && write_short_clean(out, s) {
        out.push(b'"');
        return;
    }
    // Copy sixteen bytes at a time unconditionally (a fixed-size store, no `memcpy` call); when they hold
    // a byte to escape, take back what follows it, write the escape and go on right after it.
    let mut i = 0;
    while let Some(block) = s.get(i..).and_then(|rest| rest.first_chunk::<16>()) {
        out.extend_from_slice(block);
        let Some(skip) = first_escape16(block) else {
            i += 16;
            continue;
        };
        out.truncate(out.len() - 16 + skip);
        push_escape(out, s[i + skip]);
        i += skip + 1;
    }
    while let Some(word) = s.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
        out.extend_from_slice(word);
        let bits = escape_bits(u64::from_le_bytes(*word));
        if bits == 0 {
            i += 8;
            continue;
        }
        let skip = (bits.trailing_zeros() / 8) as usize;
        out.truncate(out.len() - 8 + skip);
        push_escape(out, s[i + skip]);
        i += skip + 1;
    }
    // Fewer than eight bytes left.
    let tail = &s[i..];
    let mut start = 0;
    if !tail.is_empty() {
        let mut bits = escape_bits(short_word(tail));
        while bits != 0 {
            flush_escape(out, tail, &mut start, (bits.trailing_zeros() / 8) as usize);
            bits &= bits - 1;
        }
    }
    out.extend_from_slice(&tail[start..]);
    out.push(b'"');
}

/// Append a float in the shortest form that reads back to the same double; NaN and infinities as `null`.
pub fn write_float(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let mut buffer = zmij::Buffer::new();
        out.extend_from_slice(buffer.format_finite(value).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Append `obj` as compact JSON. `TypeError` for a type JSON cannot hold (or a non-str dict key, or a str
/// with lone surrogates), `ValueError` past [`MAX_DEPTH`] levels of nesting. On error `out` holds a
/// partial value: callers truncate it.
pub fn write_value(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    write(obj.py(), out, obj.as_ptr(), 0)
}

/// True when `obj`'s type is exactly `ty`.
#[inline]
fn is_type(obj: *mut ffi::PyObject, ty: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: `obj` is a live object (see the module docs); reading its type pointer is always valid.
    unsafe { ffi::Py_TYPE(obj) == ty }
}

fn write(py: Python<'_>, out: &mut Vec<u8>, obj: *mut ffi::PyObject, depth: usize) -> PyResult<()> {
    // SAFETY (every block in this fn): `obj` is a live borrowed reference (module docs); the type
    // statics are only compared by address; each ffi call below is made on an object of exactly the
    // type that call expects.
    // Exact types first, in the order they are common in JSON-RPC messages.
    if is_type(obj, &raw mut ffi::PyUnicode_Type) {
        write_unicode(py, out, obj)
    } else if is_type(obj, &raw mut ffi::PyDict_Type) {
        write_dict(py, out, obj, depth)
    } else if is_type(obj, &raw mut ffi::PyLong_Type) {
        write_long(py, out, obj)
    } else if is_type(obj, &raw mut ffi::PyList_Type) {
        write_list(py, out, obj, depth)
    } else if obj == unsafe { ffi::Py_None() } {
        out.extend_from_slice(b"null");
        Ok(())
    } else if obj == unsafe { ffi::Py_True() } {
        out.extend_from_slice(b"true");
        Ok(())
    } else if obj == unsafe { ffi::Py_False() } {
        out.extend_from_slice(b"false");
        Ok(())
    } else if is_type(obj, &raw mut ffi::PyFloat_Type) {
        write_float(out, unsafe { ffi::PyFloat_AS_DOUBLE(obj) });
        Ok(())
    } else {
        // SAFETY: `obj` is live for this call (module docs); the Bound borrows it without owning it.
        let obj = unsafe { Bound::from_borrowed_ptr(py, obj) };
        write_other(out, &obj, depth)
    }
}

/// Tuples and subclasses of str, dict, list, int and float (bool cannot be subclassed).
#[cold]
#[inline(never)]
fn write_other(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    let py = obj.py();
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        out.push(b'[');
        for (i, item) in tuple.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write(py, out, item.as_ptr(), depth + 1)?;
        }
        out.push(b']');
        Ok(())
    } else if obj.is_instance_of::<PyString>() {
        write_unicode(py, out, obj.as_ptr())
    } else if obj.is_instance_of::<PyDict>() {
        write_dict(py, out, obj.as_ptr(), depth)
    } else if obj.is_instance_of::<PyList>() {
        write_list(py, out, obj.as_ptr(), depth)
    } else if obj.is_instance_of::<PyInt>() {
        write_long(py, out, obj.as_ptr())
    } else if let Ok(float) = obj.cast::<PyFloat>() {
        write_float(out, float.value());
        Ok(())
    } else {
        Err(unsupported(obj))
    }
}

#[cold]
#[inline(never)]
fn unsupported(obj: &Bound<'_, PyAny>) -> PyErr {
    let name = obj
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    PyTypeError::new_err(format!("Type is not JSON serializable: {name}"))
}

#[cold]
#[inline(never)]
fn too_deep() -> PyErr {
    PyValueError::new_err(format!("maximum nesting depth {MAX_DEPTH} exceeded"))
}

#[cold]
#[inline(never)]
fn not_utf8(py: Python<'_>) -> PyErr {
    // Drop the UnicodeEncodeError (or MemoryError) CPython raised; report what orjson reports.
    drop(PyErr::take(py));
    PyTypeError::new_err("str is not valid UTF-8: surrogates not allowed")
}

/// The bytes of a compact ASCII `str` (most JSON strings), read straight from the object: ASCII is
/// UTF-8, and skipping the `PyUnicode_AsUTF8AndSize` call is worth ~15% of `encode_many` here.
#[cfg(not(any(Py_3_14, Py_LIMITED_API, rpcwire_limited_api, PyPy, GraalPy)))]
#[inline]
fn compact_ascii<'a>(obj: *mut ffi::PyObject) -> Option<&'a [u8]> {
    // SAFETY: `obj` is a live str (callers check) that outlives the borrow (module docs). A compact
    // ASCII str stores its `length` bytes of ASCII inline, right after its header (`PyUnicode_DATA`).
    unsafe {
        if ffi::PyUnicode_IS_COMPACT_ASCII(obj) == 0 {
            return None;
        }
        let len = ffi::PyUnicode_GET_LENGTH(obj).unsigned_abs();
        Some(std::slice::from_raw_parts(ffi::PyUnicode_DATA(obj).cast::<u8>(), len))
    }
}

/// Elsewhere the object layout is not public: always ask for the UTF-8 form.
#[cfg(any(Py_3_14, Py_LIMITED_API, rpcwire_limited_api, PyPy, GraalPy))]
#[inline]
fn compact_ascii<'a>(_obj: *mut ffi::PyObject) -> Option<&'a [u8]> {
    None
}

/// Write a `str` (or subclass) from its UTF-8 form, cached in the object.
#[inline]
fn write_unicode(py: Python<'_>, out: &mut Vec<u8>, obj: *mut ffi::PyObject) -> PyResult<()> {
    if let Some(text) = compact_ascii(obj) {
        write_str(out, text);
        return Ok(());
    }
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `obj` is a live str; the returned buffer lives as long as `obj` and holds `size` bytes.
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(obj, &raw mut size) };
    if data.is_null() {
        return Err(not_utf8(py));
    }
    // SAFETY: as above; CPython never returns a negative size with a non-null buffer.
    let text = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size.unsigned_abs()) };
    write_str(out, text);
    Ok(())
}

/// Write an `int` (or subclass): 64-bit values with itoa, larger ones in full.
#[inline]
fn write_long(py: Python<'_>, out: &mut Vec<u8>, obj: *mut ffi::PyObject) -> PyResult<()> {
    let mut overflow = 0;
    // SAFETY: `obj` is a live int; on an int this call cannot fail, only report overflow.
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj, &raw mut overflow) };
    if overflow == 0 {
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        Ok(())
    } else {
        write_big(py, out, obj)
    }
}

#[cold]
#[inline(never)]
fn write_big(py: Python<'_>, out: &mut Vec<u8>, obj: *mut ffi::PyObject) -> PyResult<()> {
    // SAFETY: `obj` is a live int for this call (module docs).
    let int = unsafe { Bound::from_borrowed_ptr(py, obj) };
    if let Ok(v) = int.extract::<u64>() {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    } else {
        let big: BigInt = int.extract()?;
        out.extend_from_slice(big.to_string().as_bytes());
    }
    Ok(())
}

#[cfg(not(Py_GIL_DISABLED))]
fn write_dict(py: Python<'_>, out: &mut Vec<u8>, dict: *mut ffi::PyObject, depth: usize) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    out.push(b'{');
    let start = out.len();
    let mut member = |key: *mut ffi::PyObject, value: *mut ffi::PyObject| -> PyResult<()> {
        // SAFETY: `key` is live (module docs); the type static is only compared by address.
        if is_type(key, &raw mut ffi::PyUnicode_Type) || unsafe { ffi::PyUnicode_Check(key) } != 0 {
            write_unicode(py, out, key)?;
        } else {
            return Err(PyTypeError::new_err("Dict key must be str"));
        }
        out.push(b':');
        write(py, out, value, depth + 1)?;
        out.push(b',');
        Ok(())
    };
    if !entries::walk(dict, &mut member)? {
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: `dict` is a live dict (or subclass); PyDict_Next hands out borrowed references that stay
        // valid because the dict cannot change while no Python code runs (module docs).
        while unsafe { ffi::PyDict_Next(dict, &raw mut pos, &raw mut key, &raw mut value) } != 0 {
            member(key, value)?;
        }
    }
    if out.len() > start {
        // Overwrite the trailing comma.
        out.pop();
    }
    out.push(b'}');
    Ok(())
}

/// The members of an exact `dict` read straight from its entry table, in insertion order, as `PyDict_Next`
/// gives them but without a call per member (`PyDict_Next` was a fifth of `encode_many`'s time at 200 B;
/// orjson walks the table the same way).
///
/// The table's layout is `CPython`'s private `PyDictKeysObject` (`Include/internal/pycore_dict.h`), the same in
/// 3.11, 3.12 and 3.13 on GIL builds: a header, `1 << dk_log2_index_bytes` bytes of hash index, then
/// `dk_nentries` entries, `{key, value}` for a table of `str` keys (`DICT_KEYS_UNICODE`) or
/// `{hash, key, value}` (`DICT_KEYS_GENERAL`); a deleted entry has a NULL value. The extension is built for one
/// interpreter version (no abi3), so the gate below is exact; elsewhere, and for split tables (instance
/// `__dict__`s, with values kept apart) and dict subclasses, `write_dict` uses `PyDict_Next`.
#[cfg(all(
    Py_3_11,
    not(any(Py_3_14, Py_GIL_DISABLED, Py_LIMITED_API, rpcwire_limited_api, PyPy, GraalPy))
))]
mod entries {
    use pyo3::ffi;
    use pyo3::PyResult;

    /// `struct _dictkeysobject` up to its index table, field for field.
    #[repr(C)]
    #[allow(clippy::struct_field_names, dead_code)]
    struct KeysHeader {
        dk_refcnt: ffi::Py_ssize_t,
        dk_log2_size: u8,
        dk_log2_index_bytes: u8,
        dk_kind: u8,
        dk_version: u32,
        dk_usable: ffi::Py_ssize_t,
        dk_nentries: ffi::Py_ssize_t,
    }

    const DICT_KEYS_GENERAL: u8 = 0;
    const DICT_KEYS_UNICODE: u8 = 1;

    /// Call `member(key, value)` for each member of `dict` and return true; false, calling nothing, when
    /// `dict` is not an exact dict with a combined table of a kind known here.
    #[inline]
    pub(super) fn walk(
        dict: *mut ffi::PyObject,
        member: &mut impl FnMut(*mut ffi::PyObject, *mut ffi::PyObject) -> PyResult<()>,
    ) -> PyResult<bool> {
        // SAFETY: `dict` is a live dict (callers check); an exact dict is a `PyDictObject`, whose layout
        // pyo3 mirrors. Its keys table, when combined (`ma_values` NULL), is laid out as described above
        // for this interpreter version (the cfg gate), holds `dk_nentries` initialized entries after the
        // index table, and cannot change while no Python code runs (module docs); every non-NULL key and
        // value in it is a live borrowed reference.
        unsafe {
            if ffi::Py_TYPE(dict) != &raw mut ffi::PyDict_Type {
                return Ok(false);
            }
            let dict = dict.cast::<ffi::PyDictObject>();
            if !(*dict).ma_values.is_null() {
                return Ok(false);
            }
            let keys = (*dict).ma_keys.cast::<KeysHeader>();
            let stride = match (*keys).dk_kind {
                DICT_KEYS_UNICODE => 2,
                DICT_KEYS_GENERAL => 3,
                _ => return Ok(false),
            };
            let count = (*keys).dk_nentries.unsigned_abs();
            let table = keys.add(1).cast::<u8>().add(1 << (*keys).dk_log2_index_bytes);
            // `{key, value}` or `{hash, key, value}`: the key is the second-to-last word of an entry.
            // Aligned: the header is 32 bytes and the index table a power of two of at least 8.
            #[allow(clippy::cast_ptr_alignment)]
            let mut entry = table.cast::<*mut ffi::PyObject>().add(stride - 2);
            for _ in 0..count {
                let value = *entry.add(1);
                if !value.is_null() {
                    member(*entry, value)?;
                }
                entry = entry.add(stride);
            }
        }
        Ok(true)
    }
}

/// Other interpreters: always `PyDict_Next`.
#[cfg(not(all(
    Py_3_11,
    not(any(Py_3_14, Py_GIL_DISABLED, Py_LIMITED_API, rpcwire_limited_api, PyPy, GraalPy))
)))]
mod entries {
    use pyo3::ffi;
    use pyo3::PyResult;

    #[inline]
    #[allow(clippy::unnecessary_wraps)]
    pub(super) fn walk(
        _dict: *mut ffi::PyObject,
        _member: &mut impl FnMut(*mut ffi::PyObject, *mut ffi::PyObject) -> PyResult<()>,
    ) -> PyResult<bool> {
        Ok(false)
    }
}

#[cfg(not(Py_GIL_DISABLED))]
fn write_list(py: Python<'_>, out: &mut Vec<u8>, list: *mut ffi::PyObject, depth: usize) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    out.push(b'[');
    let mut i: ffi::Py_ssize_t = 0;
    // SAFETY: `list` is a live list (or subclass) that cannot change while no Python code runs
    // (module docs): every index below its current size holds a live borrowed item.
    while i < unsafe { ffi::PyList_GET_SIZE(list) } {
        if i > 0 {
            out.push(b',');
        }
        write(py, out, unsafe { ffi::PyList_GET_ITEM(list, i) }, depth + 1)?;
        i += 1;
    }
    out.push(b']');
    Ok(())
}

/// Free-threaded builds: another thread may change a container while it is written, so iterate with
/// pyo3's iterators, which hold a strong reference to each key and value (and lock the dict).
#[cfg(Py_GIL_DISABLED)]
fn write_dict(py: Python<'_>, out: &mut Vec<u8>, dict: *mut ffi::PyObject, depth: usize) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    // SAFETY: `dict` is a live dict (or subclass) the caller holds a reference to.
    let dict = unsafe { Bound::from_borrowed_ptr(py, dict) };
    let dict = dict.cast::<PyDict>()?;
    out.push(b'{');
    for (i, (key, value)) in dict.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !key.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err("Dict key must be str"));
        }
        write_unicode(py, out, key.as_ptr())?;
        out.push(b':');
        write(py, out, value.as_ptr(), depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

#[cfg(Py_GIL_DISABLED)]
fn write_list(py: Python<'_>, out: &mut Vec<u8>, list: *mut ffi::PyObject, depth: usize) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    // SAFETY: `list` is a live list (or subclass) the caller holds a reference to.
    let list = unsafe { Bound::from_borrowed_ptr(py, list) };
    let list = list.cast::<PyList>()?;
    out.push(b'[');
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(py, out, item.as_ptr(), depth + 1)?;
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text.as_bytes());
        String::from_utf8(out).unwrap_or_default()
    }

    fn f(value: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, value);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn strings_escape_exactly_the_spec_set() {
        assert_eq!(s("plain"), r#""plain""#);
        assert_eq!(s("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s("\u{8}\t\n\u{c}\r"), r#""\b\t\n\f\r""#);
        assert_eq!(s("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        assert_eq!(s("é/€😀\u{7f}"), "\"é/€😀\u{7f}\"");
        // Long runs and escapes at every position of an 8-byte word.
        for at in 0..20 {
            for special in ["\"", "\\", "\n", "\u{1}"] {
                let mut text = "x".repeat(20);
                text.insert_str(at, special);
                let expected = format!(
                    "\"{}\"",
                    text.replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n")
                        .replace('\u{1}', "\\u0001")
                );
                assert_eq!(s(&text), expected);
            }
        }
    }

    fn needs_escape(b: u8) -> bool {
        b < 0x20 || b == b'"' || b == b'\\'
    }

    /// `check(b, at, fill, block)` for every byte value `b` at every position `at` of an `N`-byte block
    /// otherwise holding `fill`, a neighbour that does or does not need escaping (no carry or lane may leak
    /// between bytes).
    fn every_byte_in_a_block<const N: usize>(mut check: impl FnMut(u8, usize, u8, [u8; N])) {
        for b in 0..=255u8 {
            for at in 0..N {
                for fill in [b'a', 0x00, 0x1F, 0x20, b'"', b'\\', 0x7F, 0x80, 0xFF] {
                    let mut block = [fill; N];
                    block[at] = b;
                    check(b, at, fill, block);
                }
            }
        }
    }

    #[test]
    fn escape_bits_is_exact_for_every_byte_at_every_position() {
        every_byte_in_a_block::<8>(|b, at, fill, word| {
            let bits = escape_bits(u64::from_le_bytes(word));
            for k in 0..8 {
                let expected = needs_escape(if k == at { b } else { fill });
                assert_eq!(
                    bits >> (k * 8 + 7) & 1 == 1,
                    expected,
                    "byte {b:#x} at {at}, fill {fill:#x}"
                );
            }
        });
    }

    #[test]
    fn first_escape16_finds_the_first_for_every_byte_at_every_position() {
        every_byte_in_a_block::<16>(|b, at, fill, block| {
            let expected = block.iter().position(|&c| needs_escape(c));
            assert_eq!(first_escape16(&block), expected, "byte {b:#x} at {at}, fill {fill:#x}");
        });
    }

    #[test]
    fn strings_of_every_short_length() {
        for len in 0..70 {
            let clean: Vec<u8> = (0..len).map(|i| b"abc~\x7f\xc3\xa9 "[i % 8]).collect();
            let mut out = vec![b'!'];
            write_str(&mut out, &clean);
            assert_eq!(out, [&b"!\""[..], &clean, b"\""].concat(), "clean, len {len}");
            for at in 0..len {
                for special in [b'"', b'\\', b'\n', 0x01, 0x1F] {
                    let mut text = vec![b'x'; len];
                    text[at] = special;
                    // And a second escape elsewhere (sometimes the same byte).
                    text[(at * 7 + 3) % len] = b'"';
                    let mut out = Vec::new();
                    write_str(&mut out, &text);
                    let mut expected = vec![b'"'];
                    for &c in &text {
                        match c {
                            b'"' => expected.extend_from_slice(b"\\\""),
                            b'\\' => expected.extend_from_slice(b"\\\\"),
                            b'\n' => expected.extend_from_slice(b"\\n"),
                            0x01 => expected.extend_from_slice(b"\\u0001"),
                            0x1F => expected.extend_from_slice(b"\\u001f"),
                            _ => expected.push(c),
                        }
                    }
                    expected.push(b'"');
                    assert_eq!(out, expected, "len {len}, escape at {at}");
                }
            }
        }
    }

    #[test]
    fn floats_are_shortest_round_trip() {
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::NEG_INFINITY), "null");
    }
}
