//! JSON text -> Python objects for `Codec.feed`. The builder reads the text through a [`Pull`] parser:
//! rpcwire-core's [`Scan`](rpcwire_core::pull::Scan), which reads the common cases itself and hands escapes,
//! non-ASCII and long strings and odd numbers to jiter; a text it refuses is parsed again by jiter's
//! [`Jiter`] alone, so syntax errors are jiter's (kind, wording, position). This module only builds the
//! Python objects, the way `orjson.loads` does:
//!
//! - strings: an ASCII check (none when the parser saw the string is ASCII), then `PyUnicode_New(len, 127)`
//!   and a copy (else `PyUnicode_FromStringAndSize`);
//! - object keys: a small direct-mapped cache owned by the decoder (so one per `Codec`: no global state, no
//!   locking, and safe on free-threaded builds because `feed` takes `&mut self`); short string values have one
//!   too, which takes a value the second time in a row it misses (one-off ids and tokens pass by);
//! - lists: built at their final size from a stack of finished items shared by the whole document;
//! - the top-level object: while its members are inserted, what the JSON-RPC rules read of it (kinds of
//!   `jsonrpc`/`id`/`method`/`params`/`result`/`error`, `error.code`/`error.message`, and whether
//!   `jsonrpc` is `"2.0"`, checked on the bytes) is recorded in a [`Recorded`], so `jsonrpc::classify`
//!   validates the message without a dict lookup. The rules themselves stay in `jsonrpc.rs`.
//!
//! Containers may nest [`MAX_DEPTH`] deep (orjson's limit, so what `rpcwire.reference` reads); deeper is a
//! jiter "recursion limit exceeded" parse error.
#![allow(unsafe_code)]

use jiter::{Jiter, JiterError, JiterErrorType, JsonErrorType, LinePosition, NumberAny, NumberInt, Peek};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyString};
use rpcwire_core::pull::Pull;

use rpcwire_core::jsonrpc::{ErrorKey, ErrorMembers, JsonKind, Recorded, RuleKey, Seen, VERSION};

/// Deepest nesting of arrays and objects a message may have (orjson's `loads` limit).
pub const MAX_DEPTH: usize = 1024;
/// Nesting levels between two checks of the stack left.
const STACK_CHECK_EVERY: usize = 32;
/// Stack a check wants left for the next `STACK_CHECK_EVERY` levels (a level's frames take well under 1 KiB).
const STACK_RED_ZONE: usize = 64 * 1024;
/// Size of a heap stack segment when a check finds too little left.
const STACK_SEGMENT: usize = 1024 * 1024;
/// Slots of the key cache (a power of two).
const CACHE_SLOTS: usize = 512;
const CACHE_BITS: u32 = CACHE_SLOTS.trailing_zeros();
/// Longest key the key cache holds.
const KEY_MAX_LEN: usize = 64;
/// Longest string value the value cache holds.
const VALUE_MAX_LEN: usize = 32;
/// Largest escape-decoding tape kept between messages.
const TAPE_KEEP_MAX: usize = 64 * 1024;

/// Why a message could not be decoded.
pub enum DecodeError {
    /// Not JSON (or nested too deep): a `ParseError` item.
    Json(JiterError),
    /// A Python error while building objects (e.g. `MemoryError`).
    Python(PyErr),
    /// A top-level array (a batch) with more elements than the decoder's `max_batch`: an `InvalidRequest`
    /// item, found after building at most `max_batch` elements.
    Batch(usize),
}

impl DecodeError {
    /// What a `ParseError` says: jiter's description and position.
    pub fn description(&self, json: &[u8]) -> String {
        match self {
            Self::Json(error) => format!("{} at {}", error.error_type, LinePosition::find(json, error.index)),
            Self::Python(error) => error.to_string(),
            Self::Batch(limit) => format!("a batch of more than {limit} elements (max_batch)"),
        }
    }
}

impl From<JiterError> for DecodeError {
    #[inline]
    fn from(error: JiterError) -> Self {
        Self::Json(error)
    }
}

impl From<PyErr> for DecodeError {
    #[cold]
    fn from(error: PyErr) -> Self {
        Self::Python(error)
    }
}

type DecodeResult<T> = Result<T, DecodeError>;

/// A decoded message: the value, and whether it is an object (whose members the rules read are then in the
/// caller's [`Recorded`]).
pub struct Decoded<'py> {
    pub value: Bound<'py, PyAny>,
    pub object: bool,
}

/// One slot of a [`StrCache`]: a string and the hash of its bytes, compared before the string is touched (a
/// cached object not used lately is a cache miss to read).
#[derive(Default)]
struct Slot {
    hash: u64,
    string: Option<Py<PyString>>,
}

/// A direct-mapped cache of short ASCII strings, so a repeated one is one object, not a new one each time.
/// Each slot holds an exact compact ASCII `str` made by [`new_ascii`]; a hit compares the hash first and then
/// the characters, read from the object.
struct StrCache {
    slots: Box<[Slot; CACHE_SLOTS]>,
    /// With second-chance admission (the value cache): per slot, the hash of the last string that missed it
    /// uncached. A string is cached the second time in a row it misses its slot, so a stream of unique values
    /// (ids, tokens) neither evicts the repeated ones nor costs a release of an old, cold object each.
    missed: Option<Box<[u64; CACHE_SLOTS]>>,
}

impl StrCache {
    /// A cache that holds every short ASCII string it is asked for (object keys repeat).
    fn always() -> Self {
        Self {
            slots: Box::new(std::array::from_fn(|_| Slot::default())),
            missed: None,
        }
    }

    /// A cache that holds a string once it has been asked for twice (see [`StrCache::missed`]).
    fn second_chance() -> Self {
        Self {
            missed: Some(Box::new([0; CACHE_SLOTS])),
            ..Self::always()
        }
    }

    /// `s` as a `str`: the cached one when the cache holds it, else a new one (cached when short and ASCII).
    #[inline]
    fn get<'py>(&mut self, py: Python<'py>, s: &str, ascii: bool, max_len: usize) -> PyResult<Bound<'py, PyString>> {
        let bytes = s.as_bytes();
        if bytes.len() > max_len {
            // Long strings not known to be ASCII go to CPython's UTF-8 decoder, which copies an ASCII one
            // nearly as fast as `new_ascii` and spares a separate pass over a long one to find out.
            return if ascii { new_ascii(py, s) } else { new_utf8(py, s) };
        }
        let hash = hash_of(bytes);
        // The top CACHE_BITS bits: always below CACHE_SLOTS.
        let index = (hash >> (u64::BITS - CACHE_BITS)) as usize;
        let slot = &mut self.slots[index];
        if slot.hash == hash {
            if let Some(cached) = &slot.string {
                if same_short(cached_text(cached.bind(py)), bytes) {
                    return Ok(cached.bind(py).clone());
                }
            }
        }
        if !ascii && !s.is_ascii() {
            return new_utf8(py, s);
        }
        let string = new_ascii(py, s)?;
        if let Some(missed) = &mut self.missed {
            let last = &mut missed[index];
            if *last != hash {
                *last = hash;
                return Ok(string);
            }
        }
        slot.hash = hash;
        slot.string = Some(string.clone().unbind());
        Ok(string)
    }
}

/// What an object being built records of its members.
enum Record<'r> {
    Nothing,
    /// The top-level object: the members the rules read.
    Top(&'r mut Recorded),
    /// The top-level object's `"error"` member: its `code` and `message`.
    Error(&'r mut ErrorMembers),
}

/// What a member name means to the [`Record`] of its object.
#[derive(Clone, Copy)]
enum Tag {
    None,
    Rule(RuleKey),
    Error(ErrorKey),
}

/// Builds Python objects from JSON texts; one per `Codec`, reused for every message.
pub struct Decoder {
    keys: StrCache,
    /// Short string values (`"2.0"`, method names, enum-like values).
    values: StrCache,
    /// Finished items of the arrays being built, innermost last.
    stack: Vec<Py<PyAny>>,
    /// jiter's buffer for strings with escapes, kept between messages.
    tape: Vec<u8>,
    /// Most elements a top-level array (a batch) may have.
    max_batch: usize,
}

impl Decoder {
    /// A decoder that refuses batches of more than `max_batch` elements.
    pub fn new(max_batch: usize) -> Self {
        Self {
            keys: StrCache::always(),
            values: StrCache::second_chance(),
            stack: Vec::new(),
            tape: Vec::new(),
            max_batch,
        }
    }
}

impl Decoder {
    /// Decode one JSON text; for a top-level object, record what the rules read of it in `recorded` (which
    /// stays in the caller's frame: moved out through the result, the small struct costs store-forwarding
    /// stalls on every message).
    pub fn decode<'py>(&mut self, py: Python<'py>, json: &[u8], recorded: &mut Recorded) -> DecodeResult<Decoded<'py>> {
        // Scan first; a text it does not read to the end (an error, or a batch over the limit) is parsed again
        // by jiter alone, whose error the item reports.
        #[cfg(feature = "sonic")]
        let (mut decoded, mut tape) = match sonic_rs::from_slice::<sonic_rs::Value>(json) {
            Ok(dom) => (
                self.document(py, &mut crate::py_sonic::SonicWalk::new(&dom), recorded),
                std::mem::take(&mut self.tape),
            ),
            // Not JSON to sonic-rs: any error the builder does not return itself sends the text to jiter below.
            Err(_) => (Err(DecodeError::Batch(0)), std::mem::take(&mut self.tape)),
        };
        #[cfg(not(feature = "sonic"))]
        let (mut decoded, mut tape) = {
            let mut scan = rpcwire_core::pull::Scan::with_tape(json, std::mem::take(&mut self.tape));
            let decoded = self.document(py, &mut scan, recorded);
            (decoded, scan.into_tape())
        };
        if let Err(DecodeError::Json(_) | DecodeError::Batch(_)) = decoded {
            self.stack.clear();
            *recorded = Recorded::default();
            let mut jiter = Jiter::with_tape(json, tape);
            decoded = self.document(py, &mut jiter, recorded);
            tape = jiter.into_tape();
        }
        if tape.capacity() <= TAPE_KEEP_MAX {
            self.tape = tape;
        }
        // Left over only after an error.
        self.stack.clear();
        decoded
    }

    fn document<'py, 'j, P: Pull<'j>>(
        &mut self,
        py: Python<'py>,
        parser: &mut P,
        recorded: &mut Recorded,
    ) -> DecodeResult<Decoded<'py>> {
        let peek = parser.peek()?;
        let decoded = if peek == Peek::Object {
            Decoded {
                value: self.object(py, parser, 0, Record::Top(recorded))?,
                object: true,
            }
        } else if peek == Peek::Array {
            Decoded {
                value: self.array(py, parser, 0, self.max_batch)?,
                object: false,
            }
        } else {
            Decoded {
                value: self.value(py, parser, peek, 0)?.0,
                object: false,
            }
        };
        parser.finish()?;
        Ok(decoded)
    }

    /// The value `peek` starts, at nesting `depth` (of its container, if it is one), and its kind.
    #[inline]
    fn value<'py, 'j, P: Pull<'j>>(
        &mut self,
        py: Python<'py>,
        parser: &mut P,
        peek: Peek,
        depth: usize,
    ) -> DecodeResult<(Bound<'py, PyAny>, JsonKind)> {
        match peek {
            // A string value: these two lines are written out again in `object` and `array` (a helper, even
            // `inline(always)`, measured 1 % slower at 200 B and 6 KB with benches.ab).
            Peek::String => {
                let (s, ascii) = parser.known_text()?;
                Ok((self.values.get(py, s, ascii, VALUE_MAX_LEN)?.into_any(), JsonKind::Str))
            }
            Peek::Object | Peek::Array if stack_check_due(depth) => {
                // Recursion goes MAX_DEPTH deep, more than a small thread stack (256 KiB) holds: every
                // STACK_CHECK_EVERY levels, make sure the next ones have room, moving to a heap segment if not.
                stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    self.container(py, parser, peek, depth)
                })
            }
            Peek::Object | Peek::Array => self.container(py, parser, peek, depth),
            Peek::Null => {
                parser.known_null()?;
                Ok((py.None().into_bound(py), JsonKind::Null))
            }
            Peek::True | Peek::False => {
                let b = parser.known_bool(peek)?;
                Ok((PyBool::new(py, b).to_owned().into_any(), JsonKind::Bool))
            }
            _ => number(py, parser, peek),
        }
    }

    /// The object or array `peek` starts.
    fn container<'py, 'j, P: Pull<'j>>(
        &mut self,
        py: Python<'py>,
        parser: &mut P,
        peek: Peek,
        depth: usize,
    ) -> DecodeResult<(Bound<'py, PyAny>, JsonKind)> {
        if peek == Peek::Object {
            Ok((self.object(py, parser, depth, Record::Nothing)?, JsonKind::Object))
        } else {
            Ok((self.array(py, parser, depth, usize::MAX)?, JsonKind::Array))
        }
    }

    fn object<'py, 'j, P: Pull<'j>>(
        &mut self,
        py: Python<'py>,
        parser: &mut P,
        depth: usize,
        mut record: Record<'_>,
    ) -> DecodeResult<Bound<'py, PyAny>> {
        check_depth(parser, depth)?;
        // SAFETY: the GIL is held (`py`); PyDict_New returns a new reference, or NULL with an exception set.
        let dict = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDict_New()) }?;
        let mut next = parser.known_object()?;
        while let Some(name) = next {
            let tag = match record {
                Record::Nothing => Tag::None,
                Record::Top(_) => RuleKey::of(name).map_or(Tag::None, Tag::Rule),
                Record::Error(_) => ErrorKey::of(name).map_or(Tag::None, Tag::Error),
            };
            let found;
            let key = match tag {
                Tag::None => {
                    found = self.keys.get(py, name, false, KEY_MAX_LEN)?;
                    &found
                }
                Tag::Rule(rule) => rule_key_str(py, rule),
                Tag::Error(error_key) => error_key_str(py, error_key),
            };
            let peek = parser.peek()?;
            let value = match (&mut record, tag) {
                (Record::Top(recorded), Tag::Rule(rule)) => {
                    self.rule_member(py, parser, peek, depth, recorded, rule)?
                }
                (Record::Error(members), Tag::Error(error_key)) => {
                    let (value, kind) = self.value(py, parser, peek, depth + 1)?;
                    members.note(error_key, kind);
                    value
                }
                // Most members are strings: their path without the call and the (value, kind) result.
                _ if peek == Peek::String => {
                    let (s, ascii) = parser.known_text()?;
                    self.values.get(py, s, ascii, VALUE_MAX_LEN)?.into_any()
                }
                // Nested objects too, where no stack check is due.
                _ if peek == Peek::Object && !stack_check_due(depth + 1) => {
                    self.object(py, parser, depth + 1, Record::Nothing)?
                }
                _ => self.value(py, parser, peek, depth + 1)?.0,
            };
            // SAFETY: the GIL is held; `dict`, `key` and `value` are live objects we own (`dict` is new and
            // not shared yet); PyDict_SetItem takes its own references and steals none.
            if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } < 0 {
                return Err(PyErr::fetch(py).into());
            }
            next = parser.next_key()?;
        }
        Ok(dict)
    }

    /// A member of the top-level object the rules read: build it and record what they need of it.
    #[inline(never)]
    fn rule_member<'py, 'j, P: Pull<'j>>(
        &mut self,
        py: Python<'py>,
        parser: &mut P,
        peek: Peek,
        depth: usize,
        recorded: &mut Recorded,
        rule: RuleKey,
    ) -> DecodeResult<Bound<'py, PyAny>> {
        let mut error_members = ErrorMembers::default();
        let (value, seen) = match (rule, peek) {
            (RuleKey::Jsonrpc, Peek::String) => {
                let (s, ascii) = parser.known_text()?;
                if s == VERSION {
                    let seen = Seen {
                        kind: JsonKind::Str,
                        is_version: true,
                    };
                    (pyo3::intern!(py, "2.0").clone().into_any(), seen)
                } else {
                    (
                        self.values.get(py, s, ascii, VALUE_MAX_LEN)?.into_any(),
                        Seen::of(JsonKind::Str),
                    )
                }
            }
            (RuleKey::Error, Peek::Object) => {
                let value = self.object(py, parser, depth + 1, Record::Error(&mut error_members))?;
                (value, Seen::of(JsonKind::Object))
            }
            _ => {
                let (value, kind) = self.value(py, parser, peek, depth + 1)?;
                (value, Seen::of(kind))
            }
        };
        recorded.note(rule, seen, error_members);
        Ok(value)
    }

    /// The array at `depth`, refused (`DecodeError::Batch`) once it would hold more than `max_len` elements.
    fn array<'py, 'j, P: Pull<'j>>(
        &mut self,
        py: Python<'py>,
        parser: &mut P,
        depth: usize,
        max_len: usize,
    ) -> DecodeResult<Bound<'py, PyAny>> {
        check_depth(parser, depth)?;
        let start = self.stack.len();
        let mut next = parser.known_array()?;
        while let Some(peek) = next {
            if self.stack.len() - start == max_len {
                return Err(DecodeError::Batch(max_len));
            }
            let item = if peek == Peek::String {
                let (s, ascii) = parser.known_text()?;
                self.values.get(py, s, ascii, VALUE_MAX_LEN)?.into_any()
            } else {
                self.value(py, parser, peek, depth + 1)?.0
            };
            self.stack.push(item.unbind());
            next = parser.array_step()?;
        }
        let items = self.stack.drain(start..);
        let len = ffi::Py_ssize_t::try_from(items.len()).map_err(PyErr::from)?;
        // SAFETY: the GIL is held; PyList_New returns a new list of `len` empty slots, or NULL with an
        // exception set.
        let list = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len)) }?;
        for (i, item) in (0..len).zip(items) {
            // SAFETY: `list` is the new, unshared list of `len` slots and `i < len`; PyList_SET_ITEM steals
            // the reference `into_ptr` hands over (the zip stops at whichever side ends first).
            unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i, item.into_ptr()) };
        }
        Ok(list)
    }
}

/// The rule keys as interned `str`s (the top-level members of every message need no cache lookup).
#[inline]
fn rule_key_str(py: Python<'_>, key: RuleKey) -> &Bound<'_, PyString> {
    match key {
        RuleKey::Jsonrpc => pyo3::intern!(py, "jsonrpc"),
        RuleKey::Id => pyo3::intern!(py, "id"),
        RuleKey::Method => pyo3::intern!(py, "method"),
        RuleKey::Params => pyo3::intern!(py, "params"),
        RuleKey::Result => pyo3::intern!(py, "result"),
        RuleKey::Error => pyo3::intern!(py, "error"),
    }
}

#[inline]
fn error_key_str(py: Python<'_>, key: ErrorKey) -> &Bound<'_, PyString> {
    match key {
        ErrorKey::Code => pyo3::intern!(py, "code"),
        ErrorKey::Message => pyo3::intern!(py, "message"),
    }
}

/// Whether a container at `depth` must first make sure the stack has room (see [`STACK_CHECK_EVERY`]).
#[allow(clippy::inline_always)]
#[inline(always)]
fn stack_check_due(depth: usize) -> bool {
    depth % STACK_CHECK_EVERY == STACK_CHECK_EVERY - 1
}

/// A nesting error past [`MAX_DEPTH`], worded as jiter words its own.
#[inline]
fn check_depth<'j, P: Pull<'j>>(parser: &P, depth: usize) -> DecodeResult<()> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::Json(JiterError {
            error_type: JiterErrorType::JsonError(JsonErrorType::RecursionLimitExceeded),
            index: parser.current_index(),
        }));
    }
    Ok(())
}

/// The cache hash of a short string: its length and first and last (up to) eight bytes, mixed (the top
/// [`CACHE_BITS`] bits pick the slot).
#[inline]
fn hash_of(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let (head, tail) = if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (u64::from_le_bytes(*head), u64::from_le_bytes(*tail))
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (
            u64::from(u32::from_le_bytes(*head)),
            u64::from(u32::from_le_bytes(*tail)),
        )
    } else {
        let byte = |i: usize| bytes.get(i).map_or(0, |&b| u64::from(b));
        (byte(0) | (byte(1) << 8) | (byte(2) << 16), 0)
    };
    (head ^ tail.rotate_left(29) ^ (n as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `a == b` for slices of the same short length, inline (a `memcmp` call costs more than the compare).
#[inline]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if let (Some(a_last), Some(b_last)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) {
        // Whole words from the front, then the last word (overlapping the one before when the length is
        // not a multiple of 8).
        let word = |c: &[u8]| c.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w));
        return a
            .chunks_exact(8)
            .zip(b.chunks_exact(8))
            .all(|(x, y)| word(x) == word(y))
            && u64::from_le_bytes(*a_last) == u64::from_le_bytes(*b_last);
    }
    if let (Some(a_head), Some(b_head), Some(a_last), Some(b_last)) = (
        a.first_chunk::<4>(),
        b.first_chunk::<4>(),
        a.last_chunk::<4>(),
        b.last_chunk::<4>(),
    ) {
        return a_head == b_head && a_last == b_last;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The characters of a cached `str` (a compact ASCII one made by `new_ascii`), read in place.
#[cfg(not(rpcwire_limited_api))]
#[inline]
fn cached_text<'a>(cached: &'a Bound<'_, PyString>) -> &'a [u8] {
    let ptr = cached.as_ptr();
    // SAFETY: cached strings are live compact ASCII strings made by `new_ascii` and never mutated since (they
    // are only handed out once cached): their data holds `length` bytes, alive as long as `cached`.
    unsafe {
        let len = (*ptr.cast::<ffi::PyASCIIObject>()).length;
        usize::try_from(len).map_or(&[][..], |len| std::slice::from_raw_parts(ascii_data(ptr), len))
    }
}

/// The limited API's way (`--cfg rpcwire_limited_api`, for measuring what abi3 would cost): the UTF-8 form.
#[cfg(rpcwire_limited_api)]
#[inline]
fn cached_text<'a>(cached: &'a Bound<'_, PyString>) -> &'a [u8] {
    cached.to_str().map_or(&[][..], str::as_bytes)
}

/// The characters of a compact ASCII `str`: they follow its `PyASCIIObject` header (`PyUnicode_DATA`
/// without the checks of which layout the string has).
///
/// # Safety
/// `op` must point to a live compact ASCII `str` (made by `PyUnicode_New(_, 127)`).
#[cfg(not(rpcwire_limited_api))]
#[inline]
unsafe fn ascii_data(op: *mut ffi::PyObject) -> *mut u8 {
    debug_assert!(
        // SAFETY: the caller's contract.
        unsafe { ffi::PyUnicode_IS_COMPACT_ASCII(op) } != 0
    );
    // SAFETY: the caller's contract: a compact ASCII string's data starts right after its header.
    unsafe { op.cast::<ffi::PyASCIIObject>().add(1).cast::<u8>() }
}

/// The limited API's way (`--cfg rpcwire_limited_api`): `PyUnicode_FromStringAndSize`.
#[cfg(rpcwire_limited_api)]
#[inline]
fn new_ascii<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyString>> {
    new_utf8(py, s)
}

/// A new `str` holding `s`, which is ASCII: a compact ASCII string filled with a copy.
#[cfg(not(rpcwire_limited_api))]
#[inline]
fn new_ascii<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyString>> {
    debug_assert!(s.is_ascii());
    let len = ffi::Py_ssize_t::try_from(s.len())?;
    // SAFETY: the GIL is held; PyUnicode_New returns a new compact ASCII string (maxchar 127) with room
    // for `len` bytes (and the NUL it writes after them), or NULL with an exception set.
    let obj = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_New(len, 127)) }?;
    // SAFETY: the new string's data holds `len` bytes nobody else can see yet; `s` is ASCII (callers check),
    // so valid for maxchar 127; the source and the new object do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), ascii_data(obj.as_ptr()), s.len());
    }
    // SAFETY: PyUnicode_New made an exact `str`.
    Ok(unsafe { obj.cast_into_unchecked() })
}

/// A new `str` holding `s` (any UTF-8).
#[inline(never)]
fn new_utf8<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyString>> {
    let len = ffi::Py_ssize_t::try_from(s.len())?;
    // SAFETY: the GIL is held; `s` is `len` bytes of valid UTF-8; the call returns a new reference, or NULL
    // with an exception set.
    let obj = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), len)) }?;
    // SAFETY: PyUnicode_FromStringAndSize makes an exact `str`.
    Ok(unsafe { obj.cast_into_unchecked() })
}

/// The number `peek` starts: `int` (any size) or `float`.
#[inline]
fn number<'py, 'j, P: Pull<'j>>(
    py: Python<'py>,
    parser: &mut P,
    peek: Peek,
) -> DecodeResult<(Bound<'py, PyAny>, JsonKind)> {
    match parser.known_number(peek)? {
        NumberAny::Int(NumberInt::Int(i)) => {
            // SAFETY: the GIL is held; PyLong_FromLongLong returns a new reference, or NULL with an exception set.
            let obj = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(i)) }?;
            Ok((obj, JsonKind::Int))
        }
        NumberAny::Int(NumberInt::BigInt(big)) => Ok((big.into_pyobject(py)?.into_any(), JsonKind::Int)),
        NumberAny::Float(f) => Ok((PyFloat::new(py, f).into_any(), JsonKind::Float)),
    }
}
