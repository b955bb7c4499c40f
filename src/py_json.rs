//! Python objects -> compact JSON bytes in one pass, byte for byte what `orjson.dumps` writes
//! (docs/wire-format.md 1), except that integers outside 64 bits are written in full.
use num_bigint::BigInt;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Deepest nesting of arrays and objects `write_value` accepts (orjson stops at 254).
pub const MAX_DEPTH: usize = 255;

/// `ESCAPE[b]`: 0 = copy the byte; `u` = `\u00XX`; else the letter after the backslash.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// True when any byte of `word` is below 0x20, `"` or `\\` (SWAR: eight bytes per step).
#[inline]
fn needs_escape(word: u64) -> bool {
    let below_space = word.wrapping_sub(LO * 0x20) & !word;
    let quote = word ^ (LO * u64::from(b'"'));
    let backslash = word ^ (LO * u64::from(b'\\'));
    let has_quote = quote.wrapping_sub(LO) & !quote;
    let has_backslash = backslash.wrapping_sub(LO) & !backslash;
    (below_space | has_quote | has_backslash) & HI != 0
}

/// Append `s` as a JSON string: raw UTF-8, only `"`, `\\` and control characters escaped.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        // Skip clean 8-byte words; fall back to bytes around anything that needs escaping.
        if let Some(word) = s.get(i..i + 8).and_then(|w| w.first_chunk::<8>()) {
            if !needs_escape(u64::from_le_bytes(*word)) {
                i += 8;
                continue;
            }
        }
        let b = s[i];
        let escape = ESCAPE[b as usize];
        if escape != 0 {
            out.extend_from_slice(&s[start..i]);
            if escape == b'u' {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xF) as usize]);
            } else {
                out.push(b'\\');
                out.push(escape);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&s[start..]);
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
    write(out, obj, 0)
}

fn write(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    // Exact types first (the common case), then subclasses.
    if let Ok(s) = obj.cast_exact::<PyString>() {
        write_py_str(out, s)
    } else if let Ok(dict) = obj.cast_exact::<PyDict>() {
        write_dict(out, dict, depth)
    } else if let Ok(list) = obj.cast_exact::<PyList>() {
        write_list(out, list.iter(), list.len(), depth)
    } else if obj.is_none() {
        out.extend_from_slice(b"null");
        Ok(())
    } else if let Ok(b) = obj.cast_exact::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
        Ok(())
    } else if let Ok(int) = obj.cast_exact::<PyInt>() {
        write_int(out, int)
    } else if let Ok(float) = obj.cast_exact::<PyFloat>() {
        write_float(out, float.value());
        Ok(())
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        write_list(out, tuple.iter(), tuple.len(), depth)
    } else if let Ok(s) = obj.cast::<PyString>() {
        write_py_str(out, s)
    } else if let Ok(dict) = obj.cast::<PyDict>() {
        write_dict(out, dict, depth)
    } else if let Ok(list) = obj.cast::<PyList>() {
        write_list(out, list.iter(), list.len(), depth)
    } else if let Ok(int) = obj.cast::<PyInt>() {
        write_int(out, int)
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

fn write_py_str(out: &mut Vec<u8>, s: &Bound<'_, PyString>) -> PyResult<()> {
    match s.to_str() {
        Ok(text) => {
            write_str(out, text.as_bytes());
            Ok(())
        }
        Err(_) => Err(PyTypeError::new_err("str is not valid UTF-8: surrogates not allowed")),
    }
}

fn write_int(out: &mut Vec<u8>, int: &Bound<'_, PyInt>) -> PyResult<()> {
    if let Ok(v) = int.extract::<i64>() {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    } else if let Ok(v) = int.extract::<u64>() {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    } else {
        let big: BigInt = int.extract()?;
        out.extend_from_slice(big.to_string().as_bytes());
    }
    Ok(())
}

fn write_dict(out: &mut Vec<u8>, dict: &Bound<'_, PyDict>, depth: usize) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    out.push(b'{');
    let mut first = true;
    for (key, value) in dict.iter() {
        if !first {
            out.push(b',');
        }
        first = false;
        let Ok(key) = key.cast::<PyString>() else {
            return Err(PyTypeError::new_err("Dict key must be str"));
        };
        write_py_str(out, key)?;
        out.push(b':');
        write(out, &value, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_list<'py>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    depth: usize,
) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    out.push(b'[');
    if len > 0 {
        out.reserve(len * 2);
    }
    let mut first = true;
    for item in items {
        if !first {
            out.push(b',');
        }
        first = false;
        write(out, &item, depth + 1)?;
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

    #[test]
    fn floats_are_shortest_round_trip() {
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::NEG_INFINITY), "null");
    }
}
