//! Pull parsers over one JSON text, for decoders that build their own values as they read (rpcwire's Python
//! builder): [`Pull`] is the part of jiter's [`Jiter`] API such a builder uses, and [`Scan`] is a second
//! implementation of it tuned for the shapes JSON-RPC messages have.
//!
//! [`Scan`] reads structure, whitespace, literals, `i64` integers and short ASCII strings without escapes
//! itself, with one branch per byte class; any other value (a string with an escape, a non-ASCII or long
//! string, a float, a big integer) it hands to a [`Jiter`] started where that value starts, so jiter stays the
//! one judge of escapes, UTF-8 and numbers. Anything [`Scan`] does not accept itself is an error: the caller
//! then parses the whole text again with [`Jiter`], which reports the error exactly as before (its kind and
//! position). So on valid JSON both give the same values, and on invalid JSON the error is jiter's; the
//! differential tests hold both to it.
#![allow(clippy::inline_always)]

use std::fmt::Write as _;

use jiter::{Jiter, JiterError, JiterErrorType, JiterResult, JsonErrorType, NumberAny, NumberInt, Peek};

/// What a builder reads JSON through; each method is the [`Jiter`] method of the same name.
pub trait Pull<'j> {
    /// The next value's first byte, after whitespace.
    fn peek(&mut self) -> JiterResult<Peek>;
    /// The string the peeked `"` starts.
    fn known_str(&mut self) -> JiterResult<&str>;
    /// [`Pull::known_str`], and whether the parser found the string to be ASCII on the way (`false`: it may
    /// not be), so a caller need not look again.
    #[inline(always)]
    fn known_text(&mut self) -> JiterResult<(&str, bool)> {
        self.known_str().map(|s| (s, false))
    }
    /// Enter the peeked object: its first key (or `None`: it is empty), with the `:` after it.
    fn known_object(&mut self) -> JiterResult<Option<&str>>;
    /// The object's next key, or `None` at its end.
    fn next_key(&mut self) -> JiterResult<Option<&str>>;
    /// Enter the peeked array: its first element's first byte (or `None`: it is empty).
    fn known_array(&mut self) -> JiterResult<Option<Peek>>;
    /// The array's next element's first byte, or `None` at its end.
    fn array_step(&mut self) -> JiterResult<Option<Peek>>;
    /// The peeked `null`.
    fn known_null(&mut self) -> JiterResult<()>;
    /// The peeked `true` or `false`.
    fn known_bool(&mut self, peek: Peek) -> JiterResult<bool>;
    /// The peeked number.
    fn known_number(&mut self, peek: Peek) -> JiterResult<NumberAny>;
    /// Only whitespace is left.
    fn finish(&mut self) -> JiterResult<()>;
    /// Where the parser is, as an index into the text.
    fn current_index(&self) -> usize;
}

impl<'j> Pull<'j> for Jiter<'j> {
    #[inline(always)]
    fn peek(&mut self) -> JiterResult<Peek> {
        Jiter::peek(self)
    }
    #[inline(always)]
    fn known_str(&mut self) -> JiterResult<&str> {
        Jiter::known_str(self)
    }
    #[inline(always)]
    fn known_object(&mut self) -> JiterResult<Option<&str>> {
        Jiter::known_object(self)
    }
    #[inline(always)]
    fn next_key(&mut self) -> JiterResult<Option<&str>> {
        Jiter::next_key(self)
    }
    #[inline(always)]
    fn known_array(&mut self) -> JiterResult<Option<Peek>> {
        Jiter::known_array(self)
    }
    #[inline(always)]
    fn array_step(&mut self) -> JiterResult<Option<Peek>> {
        Jiter::array_step(self)
    }
    #[inline(always)]
    fn known_null(&mut self) -> JiterResult<()> {
        Jiter::known_null(self)
    }
    #[inline(always)]
    fn known_bool(&mut self, peek: Peek) -> JiterResult<bool> {
        Jiter::known_bool(self, peek)
    }
    #[inline(always)]
    fn known_number(&mut self, peek: Peek) -> JiterResult<NumberAny> {
        Jiter::known_number(self, peek)
    }
    #[inline(always)]
    fn finish(&mut self) -> JiterResult<()> {
        Jiter::finish(self)
    }
    #[inline(always)]
    fn current_index(&self) -> usize {
        Jiter::current_index(self)
    }
}

/// How far [`Scan`] looks for a string's closing quote itself, in whole 8-byte words from its opening quote:
/// strings of up to this many bytes (and a few more, to the end of the word that holds this one) are read
/// here; longer ones go to jiter's SIMD string decoder.
pub const SHORT_STRING: usize = 64;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A pull parser that reads the common cases itself and hands the rest to jiter (see the module docs).
pub struct Scan<'j> {
    data: &'j [u8],
    /// Where the parser is, unless `delegated`.
    index: usize,
    /// The general parser: a [`Jiter`] over `data[base..]`, made when a value needs it.
    jiter: Jiter<'j>,
    base: usize,
    /// The last value was read by `jiter`: the position is `base + jiter.current_index()`.
    delegated: bool,
}

impl<'j> Scan<'j> {
    /// A parser over `data` whose delegated string reads decode escapes into `tape` (kept between texts).
    #[must_use]
    pub fn with_tape(data: &'j [u8], tape: Vec<u8>) -> Self {
        Self {
            data,
            index: 0,
            jiter: Jiter::with_tape(&[], tape),
            base: 0,
            delegated: false,
        }
    }

    /// The escape buffer, for the next text.
    #[must_use]
    pub fn into_tape(self) -> Vec<u8> {
        self.jiter.into_tape()
    }

    /// Take the position back from the general parser after it read a value.
    #[inline(always)]
    fn sync(&mut self) {
        if self.delegated {
            self.index = self.base + self.jiter.current_index();
            self.delegated = false;
        }
    }

    /// The general parser, started at the current position (the next value's first byte).
    #[inline(never)]
    fn general(&mut self) -> &mut Jiter<'j> {
        let start = self.index.min(self.data.len());
        let tape = std::mem::replace(&mut self.jiter, Jiter::new(&[])).into_tape();
        self.jiter = Jiter::with_tape(&self.data[start..], tape);
        self.base = start;
        self.delegated = true;
        &mut self.jiter
    }

    /// The byte at the current position after whitespace (the position moves to it).
    #[inline(always)]
    fn skip_whitespace(&mut self) -> Option<u8> {
        while let Some(&byte) = self.data.get(self.index) {
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
            self.index += 1;
        }
        None
    }

    /// Not read here: the caller parses the whole text again with jiter, for its error.
    #[cold]
    fn refuse(&self) -> JiterError {
        JiterError {
            error_type: JiterErrorType::JsonError(JsonErrorType::ExpectedSomeValue),
            index: self.index,
        }
    }

    /// The string whose opening quote is at the current position, when it is short (see [`SHORT_STRING`]) and
    /// ASCII without escapes or control characters: its text, and the index after its closing quote.
    #[inline(always)]
    fn short_string(&self) -> Option<(&'j str, usize)> {
        let start = self.index + 1;
        let rest = self.data.get(start..)?;
        let mut at = 0;
        while at <= SHORT_STRING {
            let Some(word) = rest.get(at..).and_then(<[u8]>::first_chunk::<8>) else {
                return self.short_tail(start, at);
            };
            let word = u64::from_le_bytes(*word);
            // A byte is marked when it is `"`, `\`, below 0x20 or above 0x7F. The zero-byte tests can also
            // mark bytes above a marked one (a borrow), never below: the lowest mark is exact.
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            let marks = ((quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (word.wrapping_sub(ONES * 0x20) & !word)
                | word)
                & HIGHS;
            if marks != 0 {
                let end = at + (marks.trailing_zeros() / 8) as usize;
                return if rest.get(end) == Some(&b'"') {
                    Some((ascii(&rest[..end]), start + end + 1))
                } else {
                    None
                };
            }
            at += 8;
        }
        None
    }

    /// [`Scan::short_string`] for the last bytes of the text, fewer than eight, one at a time.
    #[cold]
    fn short_tail(&self, start: usize, at: usize) -> Option<(&'j str, usize)> {
        let rest = self.data.get(start..)?;
        for (end, &byte) in rest.iter().enumerate().skip(at) {
            match byte {
                b'"' => return Some((ascii(&rest[..end]), start + end + 1)),
                b'\\' | 0..0x20 | 0x80.. => return None,
                _ => {}
            }
        }
        None
    }

    /// An object key at the current position (its opening quote) and the `:` after it.
    #[inline(always)]
    fn key(&mut self) -> JiterResult<&str> {
        if let Some((key, end)) = self.short_string() {
            self.index = end;
            if self.skip_whitespace() == Some(b':') {
                self.index += 1;
                return Ok(key);
            }
        }
        Err(self.refuse())
    }

    /// An integer of at most 18 digits at the current position, and the index after it; `None` for any other
    /// number (or not a number).
    #[inline(always)]
    fn short_int(&self) -> Option<(i64, usize)> {
        let negative = self.data.get(self.index) == Some(&b'-');
        let start = self.index + usize::from(negative);
        let mut end = start;
        let mut magnitude: i64 = 0;
        while let Some(&byte) = self.data.get(end) {
            if !byte.is_ascii_digit() {
                break;
            }
            if end - start == 18 {
                return None;
            }
            magnitude = magnitude * 10 + i64::from(byte - b'0');
            end += 1;
        }
        let digits = end - start;
        // No digits, a leading zero (`01`, an error) or a fraction or exponent: jiter's.
        if digits == 0
            || (digits > 1 && self.data.get(start) == Some(&b'0'))
            || matches!(self.data.get(end), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some((if negative { -magnitude } else { magnitude }, end))
    }

    /// The literal `word` at the current position.
    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> JiterResult<()> {
        if self.data.get(self.index..self.index + word.len()) == Some(word) {
            self.index += word.len();
            Ok(())
        } else {
            Err(self.refuse())
        }
    }
}

/// `bytes` as a `str`; every byte is below 0x80.
#[inline(always)]
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: callers pass only bytes they checked are all below 0x80 (ASCII), which is valid UTF-8.
    #[allow(unsafe_code)]
    unsafe {
        std::str::from_utf8_unchecked(bytes)
    }
}

impl<'j> Pull<'j> for Scan<'j> {
    #[inline(always)]
    fn peek(&mut self) -> JiterResult<Peek> {
        self.sync();
        match self.skip_whitespace() {
            Some(byte) => Ok(Peek::new(byte)),
            None => Err(self.refuse()),
        }
    }

    #[inline(always)]
    fn known_str(&mut self) -> JiterResult<&str> {
        self.known_text().map(|(s, _)| s)
    }

    #[inline(always)]
    fn known_text(&mut self) -> JiterResult<(&str, bool)> {
        if let Some((s, end)) = self.short_string() {
            self.index = end;
            return Ok((s, true));
        }
        self.general().known_str().map(|s| (s, false))
    }

    #[inline(always)]
    fn known_object(&mut self) -> JiterResult<Option<&str>> {
        self.index += 1;
        match self.skip_whitespace() {
            Some(b'"') => self.key().map(Some),
            Some(b'}') => {
                self.index += 1;
                Ok(None)
            }
            _ => Err(self.refuse()),
        }
    }

    #[inline(always)]
    fn next_key(&mut self) -> JiterResult<Option<&str>> {
        self.sync();
        match self.skip_whitespace() {
            Some(b',') => {
                self.index += 1;
                if self.skip_whitespace() == Some(b'"') {
                    self.key().map(Some)
                } else {
                    Err(self.refuse())
                }
            }
            Some(b'}') => {
                self.index += 1;
                Ok(None)
            }
            _ => Err(self.refuse()),
        }
    }

    #[inline(always)]
    fn known_array(&mut self) -> JiterResult<Option<Peek>> {
        self.index += 1;
        match self.skip_whitespace() {
            Some(b']') => {
                self.index += 1;
                Ok(None)
            }
            Some(byte) => Ok(Some(Peek::new(byte))),
            None => Err(self.refuse()),
        }
    }

    #[inline(always)]
    fn array_step(&mut self) -> JiterResult<Option<Peek>> {
        self.sync();
        match self.skip_whitespace() {
            Some(b',') => {
                self.index += 1;
                match self.skip_whitespace() {
                    Some(byte) if byte != b']' => Ok(Some(Peek::new(byte))),
                    _ => Err(self.refuse()),
                }
            }
            Some(b']') => {
                self.index += 1;
                Ok(None)
            }
            _ => Err(self.refuse()),
        }
    }

    #[inline(always)]
    fn known_null(&mut self) -> JiterResult<()> {
        self.literal(b"null")
    }

    #[inline(always)]
    fn known_bool(&mut self, peek: Peek) -> JiterResult<bool> {
        if peek == Peek::True {
            self.literal(b"true").map(|()| true)
        } else {
            self.literal(b"false").map(|()| false)
        }
    }

    #[inline(always)]
    fn known_number(&mut self, peek: Peek) -> JiterResult<NumberAny> {
        if let Some((int, end)) = self.short_int() {
            self.index = end;
            return Ok(NumberAny::Int(NumberInt::Int(int)));
        }
        self.general().known_number(peek)
    }

    fn finish(&mut self) -> JiterResult<()> {
        self.sync();
        match self.skip_whitespace() {
            None => Ok(()),
            Some(_) => Err(self.refuse()),
        }
    }

    fn current_index(&self) -> usize {
        if self.delegated {
            self.base + self.jiter.current_index()
        } else {
            self.index
        }
    }
}

/// One value of [`canonical`].
fn render_value<'j, P: Pull<'j>>(p: &mut P, peek: Peek, out: &mut String) -> JiterResult<()> {
    match peek {
        Peek::String => {
            let s = p.known_str()?;
            let _ = write!(out, "{s:?}");
        }
        Peek::Object => {
            out.push('{');
            let mut next = p.known_object()?.map(str::to_owned);
            while let Some(key) = next {
                let _ = write!(out, "{key:?}:");
                let peek = p.peek()?;
                render_value(p, peek, out)?;
                out.push(',');
                next = p.next_key()?.map(str::to_owned);
            }
            out.push('}');
        }
        Peek::Array => {
            out.push('[');
            let mut next = p.known_array()?;
            while let Some(peek) = next {
                render_value(p, peek, out)?;
                out.push(',');
                next = p.array_step()?;
            }
            out.push(']');
        }
        Peek::Null => {
            p.known_null()?;
            out.push_str("null");
        }
        Peek::True | Peek::False => out.push_str(&p.known_bool(peek)?.to_string()),
        _ => match p.known_number(peek)? {
            NumberAny::Int(NumberInt::Int(i)) => {
                let _ = write!(out, "i{i}");
            }
            NumberAny::Int(big) => {
                let _ = write!(out, "big{:?}", f64::from(NumberAny::Int(big)));
            }
            NumberAny::Float(f) => {
                let _ = write!(out, "f{f:?}");
            }
        },
    }
    Ok(())
}

/// A whole JSON text read through a [`Pull`], written out canonically (keys and strings quoted by Rust's
/// `Debug`, numbers tagged by kind), so two parsers can be compared on one text: the unit tests and the `scan`
/// fuzz target do.
#[doc(hidden)]
pub fn canonical<'j, P: Pull<'j>>(p: &mut P) -> JiterResult<String> {
    let mut out = String::new();
    let peek = p.peek()?;
    render_value(p, peek, &mut out)?;
    p.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Scan` reads, or `None` where it refuses.
    fn scan(json: &str) -> Option<String> {
        canonical(&mut Scan::with_tape(json.as_bytes(), Vec::new())).ok()
    }

    fn jiter(json: &str) -> Option<String> {
        canonical(&mut Jiter::new(json.as_bytes())).ok()
    }

    /// `Scan` reads what jiter reads, and accepts nothing jiter refuses.
    fn agree(json: &str) {
        let (scanned, parsed) = (scan(json), jiter(json));
        if scanned.is_some() {
            assert_eq!(scanned, parsed, "{json}");
        }
    }

    #[test]
    fn reads_a_request_itself_and_agrees_with_jiter() {
        let json = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,-2,true,false,null,{}],"b":[]}}}"#;
        assert_eq!(scan(json), jiter(json));
        assert!(scan(json).is_some());
    }

    #[test]
    fn hands_other_values_to_jiter() {
        for json in [
            r#"{"a":"caf\u00e9 \"x\"\n"}"#,
            r#"{"a":"café ☕ 🦊"}"#,
            r#"{"a":1.5e3,"b":-0.25,"c":12345678901234567890123,"d":1e400}"#,
            r#"["a long string that runs past sixty-four bytes of plain ascii text, so jiter reads it", 1]"#,
            &format!(r#"{{"k":"{}"}}"#, "x".repeat(10_000)),
            r#"  { "a" : [ 1 , 2 ] , "b" : { } }  "#,
            "[0, -0, 999999999999999999, -999999999999999999, 1000000000000000000, 9223372036854775807, -9223372036854775808, 9223372036854775808]",
        ] {
            assert_eq!(scan(json), jiter(json), "{json}");
            assert!(scan(json).is_some(), "{json}");
        }
    }

    #[test]
    fn refuses_what_jiter_refuses() {
        for json in [
            "",
            " ",
            "{",
            "[",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{1:2}",
            "01",
            "-",
            "-a",
            "1.",
            "1e",
            "nul",
            "nulll",
            "tru",
            "fals",
            "\"abc",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "{} {}",
            "[1]]",
            "NaN",
            "Infinity",
            "\"\\ud800\"",
            "[\"a\"\"b\"]",
        ] {
            assert_eq!(jiter(json), None, "jiter accepted {json:?}");
            assert_eq!(scan(json), None, "scan accepted {json:?}");
        }
    }

    #[test]
    fn every_cut_and_every_byte_agrees() {
        let json = r#"{"jsonrpc":"2.0","id":-12,"method":"a/b","params":{"s":"x\ty","n":[0,1.5,null,true],"u":"é"}}"#;
        for end in 0..=json.len() {
            if let Some(prefix) = json.get(..end) {
                agree(prefix);
            }
        }
        let bytes = json.as_bytes();
        for at in 0..bytes.len() {
            for replacement in [
                b' ', b'"', b'\\', b',', b':', b'}', b']', b'0', b'-', b'e', b'.', 0x01, b'x',
            ] {
                let mut changed = bytes.to_vec();
                changed[at] = replacement;
                if let Ok(text) = std::str::from_utf8(&changed) {
                    agree(text);
                }
            }
        }
    }

    #[test]
    fn strings_of_every_length_around_the_word_and_the_limit() {
        for len in 0..=(SHORT_STRING + 20) {
            for tail in ["", "}", " ]"] {
                let json = format!("[\"{}\"{tail}", "a".repeat(len));
                agree(&json);
                let closed = format!("[\"{}\"]", "a".repeat(len));
                assert_eq!(scan(&closed), jiter(&closed));
                assert!(scan(&closed).is_some());
            }
        }
    }

    #[test]
    fn the_position_follows_a_delegated_value() {
        let json = br#"{"a":1.5,"b":"\u0041"}"#;
        let mut scan = Scan::with_tape(json, Vec::new());
        assert_eq!(scan.known_object().ok().flatten(), Some("a"));
        let peek = scan.peek().ok();
        assert!(
            matches!(scan.known_number(Peek::new(b'1')), Ok(NumberAny::Float(f)) if (f - 1.5).abs() < f64::EPSILON)
        );
        assert_eq!(peek, Some(Peek::new(b'1')));
        assert_eq!(scan.current_index(), 8);
        assert_eq!(scan.next_key().ok().flatten(), Some("b"));
        assert_eq!(scan.peek().ok(), Some(Peek::String));
        assert_eq!(scan.known_str().ok(), Some("A"));
        assert_eq!(scan.current_index(), 21);
        assert!(scan.next_key().ok().flatten().is_none());
        assert!(scan.finish().is_ok());
    }
}
