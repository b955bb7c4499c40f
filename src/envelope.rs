//! The binary envelope inside `length`/`content-length` payloads (docs/wire-format.md 3).
//! (being written: issue 3) The API below is fixed so the codec can call it; `seal`/`open` are filled in.
use std::borrow::Cow;
use std::sync::Arc;

use crate::compress::Compression;
use crate::crypto::KeyRing;
use crate::errors::{CodecError, CodecResult};

/// First byte of every envelope; no JSON text starts with it and it never occurs in UTF-8.
pub const MAGIC: u8 = 0xFB;

/// What a codec was configured with.
#[derive(Debug, Clone)]
pub struct EnvelopeConfig {
    pub compression: Option<Compression>,
    pub compress_min_size: usize,
    pub keyring: Option<Arc<KeyRing>>,
    pub max_frame_size: usize,
}

/// A body after `Envelope::open`: one message, or records (`u32be len || message`)+ when `multi`.
#[derive(Debug)]
pub struct Opened<'a> {
    pub body: Cow<'a, [u8]>,
    pub multi: bool,
}

/// Send and receive state of one connection's envelope (nonce prefix and counter, sequence numbers).
#[derive(Debug)]
pub struct Envelope {
    config: EnvelopeConfig,
}

impl Envelope {
    pub fn new(config: EnvelopeConfig) -> CodecResult<Self> {
        Ok(Self { config })
    }

    /// True when compression or a keyring is configured: the writer may emit envelopes.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.config.compression.is_some() || self.config.keyring.is_some()
    }

    /// True when every incoming frame must be an encrypted envelope.
    #[must_use]
    pub fn has_keyring(&self) -> bool {
        self.config.keyring.is_some()
    }

    /// Seal a plain body (one message, or records when `multi`) per wire-format 3.3.
    /// `Ok(None)` means: send the message(s) as plain frames (no keyring, compression not kept).
    pub fn seal(&mut self, body: &[u8], multi: bool) -> CodecResult<Option<Vec<u8>>> {
        let _ = (body, multi);
        Err(CodecError::usage("envelopes are being written"))
    }

    /// Open one frame payload. Call it for payloads starting with `MAGIC`, and for every payload when
    /// `has_keyring()`. Fatal errors (Decrypt, Framing, `FrameTooLarge`) are returned as `Err`; a body that
    /// does not decompress is `Err(CodecError::Parse)` and the stream may go on.
    pub fn open<'a>(&mut self, payload: &'a [u8], offset: u64) -> CodecResult<Opened<'a>> {
        let _ = (payload, offset);
        Err(CodecError::framing("envelopes are being written", offset))
    }
}

/// Append one record (`u32be len || message`) to a multi body.
pub fn push_record(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
}

/// Split a multi body into its messages, in order. A truncated record is a Parse error.
pub fn split_records(body: &[u8]) -> impl Iterator<Item = CodecResult<&[u8]>> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 4 {
            rest = &[];
            return Some(Err(CodecError::parse("truncated record header in multi envelope")));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() - 4 < len {
            rest = &[];
            return Some(Err(CodecError::parse("truncated record in multi envelope")));
        }
        let (msg, tail) = rest[4..].split_at(len);
        rest = tail;
        Some(Ok(msg))
    })
}
