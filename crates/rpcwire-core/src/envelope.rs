//! The binary envelope inside `length`/`content-length` payloads (docs/wire-format.md 3).
//!
//! `seal` turns a plain body (one message, or records) into an envelope payload; `open` reverses it and enforces
//! every refusal of section 3.2. The framing around the payload (the u32be length) is the caller's.
use std::borrow::Cow;
use std::sync::Arc;

use crate::compress::{Compression, Limits};
use crate::crypto::{KeyRing, NonceSequence, PrefixSource, NONCE_LEN, TAG_LEN};
use crate::errors::{CodecError, CodecResult};
use crate::session::{self, EphemeralSource, Initiator, Role, SessionKeys, NOISE_MESSAGE_LEN};

/// First byte of every envelope; no JSON text starts with it and it never occurs in UTF-8.
pub const MAGIC: u8 = 0xFB;
/// The envelope version of the stream form: a keyring's key seals every frame (one-way use, no handshake).
pub const VERSION: u8 = 1;
/// The envelope version of sessions: handshake frames, then frames sealed under per-connection keys.
pub const SESSION_VERSION: u8 = 2;
/// Header of an unencrypted envelope: magic, version, flags.
pub const PLAIN_HEADER_LEN: usize = 3;
/// Header of an encrypted stream-form envelope: magic, version, flags, key id, nonce, seq.
pub const SEALED_HEADER_LEN: usize = 27;
/// Header of a session data frame: magic, version 2, flags, seq.
pub const SESSION_HEADER_LEN: usize = 11;
/// The initiator's handshake frame: magic, version 2, flags 0x10, key id, then Noise's `e || tag`.
pub const HELLO_LEN: usize = 7 + NOISE_MESSAGE_LEN;
/// The responder's handshake frame: magic, version 2, flags 0x10, then Noise's `e || tag`.
pub const REPLY_LEN: usize = PLAIN_HEADER_LEN + NOISE_MESSAGE_LEN;

const FLAG_COMPRESSION: u8 = 0b0000_0011;
const FLAG_ENCRYPTED: u8 = 0b0000_0100;
const FLAG_MULTI: u8 = 0b0000_1000;
const FLAG_RESERVED: u8 = 0b1111_0000;
/// Version 2 only: a handshake frame (and then no other bit is set).
const FLAG_HANDSHAKE: u8 = 0b0001_0000;
const FLAG_RESERVED_V2: u8 = 0b1110_0000;

/// What a codec was configured with.
#[derive(Debug, Clone)]
pub struct EnvelopeConfig {
    pub compression: Option<Compression>,
    pub compress_min_size: usize,
    pub keyring: Option<Arc<KeyRing>>,
    pub max_frame_size: usize,
    /// Decompressed bytes a received compressed body may hold per compressed byte (and the most a sent body
    /// may compress by: one that compresses better goes uncompressed).
    pub max_expansion: usize,
    /// With a keyring: do the session handshake in this role (connections), or `None` for the stream form
    /// (one-way use).
    pub handshake: Option<Role>,
}

impl EnvelopeConfig {
    /// What a compressed body may grow to.
    #[must_use]
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size,
            max_expansion: self.max_expansion,
        }
    }
}

/// A body after `Envelope::open`: one message, or records (`u32be len || message`)+ when `multi`.
#[derive(Debug)]
pub struct Opened<'a> {
    pub body: Cow<'a, [u8]>,
    pub multi: bool,
    /// A handshake frame: it carried no message (`body` is empty and holds no record).
    pub control: bool,
}

impl<'a> Opened<'a> {
    fn message(body: Cow<'a, [u8]>, multi: bool) -> Self {
        Self {
            body,
            multi,
            control: false,
        }
    }

    fn control() -> Self {
        Self {
            body: Cow::Borrowed(&[]),
            multi: false,
            control: true,
        }
    }
}

/// Where a session stands.
enum Session {
    /// The initiator sent its hello and waits for the reply.
    Initiating(Initiator),
    /// The responder waits for the hello.
    Awaiting,
    /// Boxed: two AES key schedules, far larger than the other states.
    Established(Box<SessionKeys>),
    /// A handshake failed: the stream is over (the decoder is poisoned).
    Failed,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Initiating(_) => "Initiating",
            Self::Awaiting => "Awaiting",
            Self::Established(_) => "Established",
            Self::Failed => "Failed",
        })
    }
}

/// Send and receive state of one connection's envelope (nonce prefix and counter, sequence numbers).
#[derive(Debug)]
pub struct Envelope {
    config: EnvelopeConfig,
    /// Present iff a keyring is configured.
    nonces: Option<NonceSequence>,
    /// Seq of the next encrypted frame this side sends.
    send_seq: u64,
    /// Seq the next encrypted frame received must carry.
    recv_seq: u64,
    /// Present iff `config.handshake` is.
    session: Option<Session>,
    /// A handshake frame payload waiting to be framed and written.
    outbox: Option<Vec<u8>>,
    ephemeral: EphemeralSource,
}

impl Envelope {
    pub fn new(config: EnvelopeConfig) -> CodecResult<Self> {
        Self::with_sources(config, None, session::os_ephemeral)
    }

    /// An envelope whose nonce prefixes come from `source` instead of the OS CSPRNG: for known-answer tests
    /// and the published test vectors only. Reusing a prefix under one key breaks AES-GCM.
    #[doc(hidden)]
    pub fn with_nonce_source(config: EnvelopeConfig, source: PrefixSource) -> CodecResult<Self> {
        Self::with_sources(config, Some(source), session::os_ephemeral)
    }

    /// An envelope with injected randomness (nonce prefixes, handshake ephemerals): for known-answer tests and
    /// the published test vectors only.
    #[doc(hidden)]
    pub fn with_sources(
        config: EnvelopeConfig,
        prefixes: Option<PrefixSource>,
        ephemeral: EphemeralSource,
    ) -> CodecResult<Self> {
        if config.compression == Some(Compression::Zstd) {
            return Err(CodecError::usage("compression 'zstd' is not supported by this build"));
        }
        let mut outbox = None;
        let (nonces, session) = match (&config.keyring, config.handshake) {
            (None, None) => (None, None),
            (None, Some(_)) => return Err(CodecError::usage("a handshake needs a keyring")),
            (Some(_), None) => (
                Some(match prefixes {
                    Some(source) => NonceSequence::with_source(source)?,
                    None => NonceSequence::new()?,
                }),
                None,
            ),
            (Some(_), Some(Role::Responder)) => (None, Some(Session::Awaiting)),
            (Some(keyring), Some(Role::Initiator)) => {
                let mut hello = Vec::with_capacity(HELLO_LEN);
                hello.extend_from_slice(&[MAGIC, SESSION_VERSION, FLAG_HANDSHAKE]);
                hello.extend_from_slice(&keyring.active().to_be_bytes());
                let initiator = Initiator::start(keyring, ephemeral, &mut hello)?;
                outbox = Some(hello);
                (None, Some(Session::Initiating(initiator)))
            }
        };
        Ok(Self {
            config,
            nonces,
            send_seq: 0,
            recv_seq: 0,
            session,
            outbox,
            ephemeral,
        })
    }

    /// The handshake role, when this envelope does sessions.
    #[must_use]
    pub fn handshake(&self) -> Option<Role> {
        self.config.handshake
    }

    /// True when messages can be sealed: no handshake to do, or the handshake is done.
    #[must_use]
    pub fn established(&self) -> bool {
        matches!(self.session, None | Some(Session::Established(_)))
    }

    /// The handshake frame payload waiting to be sent, if any (the initiator's hello from the start, the
    /// responder's reply once the hello is opened). The caller frames and writes it before anything else.
    pub fn take_outbox(&mut self) -> Option<Vec<u8>> {
        self.outbox.take()
    }

    /// The header length of an encrypted envelope this side writes.
    #[must_use]
    pub fn sealed_header_len(&self) -> usize {
        if self.session.is_some() {
            SESSION_HEADER_LEN
        } else {
            SEALED_HEADER_LEN
        }
    }

    /// The configuration this envelope was made with.
    #[must_use]
    pub fn config(&self) -> &EnvelopeConfig {
        &self.config
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
        let compression = self
            .config
            .compression
            .filter(|_| body.len() >= self.config.compress_min_size);
        let multi_flag = if multi { FLAG_MULTI } else { 0 };
        if self.config.keyring.is_none() {
            let Some(c) = compression else { return Ok(None) };
            let mut out = Vec::with_capacity(PLAIN_HEADER_LEN + body.len() / 2 + 64);
            out.extend_from_slice(&[MAGIC, VERSION, c.code() | multi_flag]);
            c.compress_into(body, &mut out)?;
            return Ok(self
                .config
                .limits()
                .keeps(out.len() - PLAIN_HEADER_LEN, body.len())
                .then_some(out));
        }
        if !self.established() {
            return Err(not_established());
        }
        let header_len = self.sealed_header_len();
        let mut out = Vec::with_capacity(header_len + body.len() + TAG_LEN + 64);
        out.resize(header_len, 0);
        let mut code = 0;
        if let Some(c) = compression {
            c.compress_into(body, &mut out)?;
            if self.config.limits().keeps(out.len() - header_len, body.len()) {
                code = c.code();
            } else {
                out.truncate(header_len);
            }
        }
        if code == 0 {
            out.extend_from_slice(body);
        }
        self.seal_at(&mut out, 0, code | multi_flag)?;
        Ok(Some(out))
    }

    /// True when `seal_in_place` can seal a body of `body_len` bytes: a keyring, and no compression to apply
    /// (none configured, or the body is under `compress_min_size`).
    #[must_use]
    pub fn seals_in_place(&self, body_len: usize) -> bool {
        self.config.keyring.is_some() && (self.config.compression.is_none() || body_len < self.config.compress_min_size)
    }

    /// Seal, with no copy, a body the caller wrote at `buf[at + sealed_header_len()..]` after reserving
    /// `sealed_header_len()` bytes at `at`: the header is written there, the body encrypted in place and the
    /// tag appended, so `buf[at..]` becomes the envelope. Only when `seals_in_place(body_len)`; `seal` otherwise.
    pub fn seal_in_place(&mut self, buf: &mut Vec<u8>, at: usize, multi: bool) -> CodecResult<()> {
        let header_len = self.sealed_header_len();
        let body_len = buf.len().saturating_sub(at + header_len);
        if !self.seals_in_place(body_len) || buf.len() < at + header_len {
            return Err(CodecError::usage(
                "seal_in_place needs a keyring, no compression and a reserved header",
            ));
        }
        self.seal_at(buf, at, if multi { FLAG_MULTI } else { 0 })
    }

    /// Write the header at `buf[at..]` and seal what follows it (session keys, or the keyring's active key).
    fn seal_at(&mut self, buf: &mut Vec<u8>, at: usize, flags: u8) -> CodecResult<()> {
        match &self.session {
            Some(Session::Established(keys)) => {
                let header = session_header(flags, self.send_seq);
                buf[at..at + SESSION_HEADER_LEN].copy_from_slice(&header);
                keys.seal_in_place(self.send_seq, &header, buf, at + SESSION_HEADER_LEN)?;
            }
            Some(_) => return Err(not_established()),
            None => {
                let (Some(keyring), Some(nonces)) = (self.config.keyring.as_deref(), self.nonces.as_mut()) else {
                    return Err(CodecError::usage("envelope has a keyring but no nonce sequence"));
                };
                let nonce = nonces.next_nonce()?;
                let header = sealed_header(flags, keyring.active(), nonce, self.send_seq);
                buf[at..at + SEALED_HEADER_LEN].copy_from_slice(&header);
                keyring.seal_in_place(nonce, &header, buf, at + SEALED_HEADER_LEN)?;
            }
        }
        self.advance_seq()
    }

    fn advance_seq(&mut self) -> CodecResult<()> {
        self.send_seq = self
            .send_seq
            .checked_add(1)
            .ok_or_else(|| CodecError::usage("sequence number exhausted"))?;
        Ok(())
    }

    /// Open one frame payload. Call it for payloads starting with `MAGIC`, and for every payload when
    /// `has_keyring()`. Fatal errors (Decrypt, Framing, `FrameTooLarge`) are returned as `Err`; a body that
    /// does not decompress is `Err(CodecError::Parse)` and the stream may go on.
    pub fn open<'a>(&mut self, payload: &'a [u8], offset: u64) -> CodecResult<Opened<'a>> {
        let has_keyring = self.config.keyring.is_some();
        if payload.first() != Some(&MAGIC) {
            return Err(if has_keyring {
                CodecError::decrypt(
                    "plaintext frame refused: this codec has a keyring and accepts only encrypted frames",
                )
            } else {
                CodecError::framing("payload is not an envelope", offset)
            });
        }
        let [_, version, flags, ..] = *payload else {
            return Err(CodecError::framing("truncated envelope header", offset));
        };
        if self.is_session_version(version, offset)? {
            return self.open_session(payload, flags, offset);
        }
        if flags & FLAG_RESERVED != 0 {
            return Err(CodecError::framing(
                format!("reserved envelope flag bits set (flags 0x{flags:02x})"),
                offset,
            ));
        }
        let compression = Compression::from_code(flags & FLAG_COMPRESSION, offset)?;
        let multi = flags & FLAG_MULTI != 0;

        if flags & FLAG_ENCRYPTED == 0 {
            if has_keyring {
                return Err(CodecError::decrypt(
                    "unencrypted envelope refused: this codec has a keyring and accepts only encrypted frames",
                ));
            }
            let compressed = &payload[PLAIN_HEADER_LEN..];
            let body = match compression {
                None => Cow::Borrowed(compressed),
                Some(c) => Cow::Owned(c.decompress(compressed, self.config.limits(), offset)?),
            };
            return Ok(Opened::message(body, multi));
        }

        let Some(keyring) = self.config.keyring.as_deref() else {
            return Err(CodecError::decrypt(
                "encrypted frame received but this codec has no keyring",
            ));
        };
        if payload.len() < SEALED_HEADER_LEN + TAG_LEN {
            return Err(CodecError::decrypt(format!(
                "encrypted envelope of {} bytes is shorter than its header and tag ({})",
                payload.len(),
                SEALED_HEADER_LEN + TAG_LEN
            )));
        }
        let (header, sealed) = payload.split_at(SEALED_HEADER_LEN);
        let key_id = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[7..19]);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&header[19..27]);
        let seq = u64::from_be_bytes(seq_bytes);
        if !keyring.contains(key_id) {
            return Err(CodecError::decrypt(format!("unknown key id {key_id}")));
        }
        if self.nonces.as_ref().is_some_and(|n| n.prefix() == nonce[..8]) {
            return Err(CodecError::decrypt(
                "reflected frame refused: its nonce prefix is this codec's own sending prefix",
            ));
        }
        // Decrypt in place in the one buffer the body needs anyway.
        let mut buf = sealed_copy(sealed, offset)?;
        let len = keyring.open_in_place(key_id, nonce, header, &mut buf)?;
        buf.truncate(len);
        if seq != self.recv_seq {
            return Err(out_of_sequence(seq, self.recv_seq));
        }
        self.recv_seq += 1;
        Ok(Opened::message(
            Cow::Owned(self.inflate(buf, compression, offset)?),
            multi,
        ))
    }

    /// A decrypted body, decompressed as its frame's flags say (within `max_frame_size` and `max_expansion`).
    fn inflate(&self, plain: Vec<u8>, compression: Option<Compression>, offset: u64) -> CodecResult<Vec<u8>> {
        match compression {
            None => Ok(plain),
            Some(c) => c.decompress(&plain, self.config.limits(), offset),
        }
    }

    /// Whether a payload of `version` is a session frame; an error when this envelope does not read it.
    fn is_session_version(&self, version: u8, offset: u64) -> CodecResult<bool> {
        match (version, self.session.is_some()) {
            (VERSION, false) => Ok(false),
            (SESSION_VERSION, true) => Ok(true),
            (VERSION, true) => Err(CodecError::decrypt(
                "version 1 envelope on a session connection: the peer does not do the session handshake \
                 (an rpcwire older than 0.2, or a peer configured without it); upgrade both ends",
            )),
            (SESSION_VERSION, false) => Err(CodecError::framing(
                "envelope version 2 (a session frame) reached a codec without a handshake: connections made \
                 by rpcwire's transports do the handshake; a bare Codec needs handshake=",
                offset,
            )),
            _ => Err(CodecError::framing(
                format!("unknown envelope version {version}"),
                offset,
            )),
        }
    }

    /// Open a version 2 payload: a handshake frame, or a data frame under the session keys.
    fn open_session<'a>(&mut self, payload: &'a [u8], flags: u8, offset: u64) -> CodecResult<Opened<'a>> {
        if flags & FLAG_RESERVED_V2 != 0 {
            return Err(CodecError::framing(
                format!("reserved envelope flag bits set (flags 0x{flags:02x})"),
                offset,
            ));
        }
        if flags & FLAG_HANDSHAKE != 0 {
            if flags != FLAG_HANDSHAKE {
                return Err(CodecError::framing(
                    format!("handshake frame with other flags set (flags 0x{flags:02x})"),
                    offset,
                ));
            }
            return self.open_handshake(payload);
        }
        let compression = Compression::from_code(flags & FLAG_COMPRESSION, offset)?;
        if flags & FLAG_ENCRYPTED == 0 {
            return Err(CodecError::decrypt(
                "unencrypted envelope refused: a session accepts only encrypted frames",
            ));
        }
        let Some(Session::Established(keys)) = &self.session else {
            return Err(CodecError::decrypt("data frame before the session handshake completed"));
        };
        if payload.len() < SESSION_HEADER_LEN + TAG_LEN {
            return Err(CodecError::decrypt(format!(
                "session frame of {} bytes is shorter than its header and tag ({})",
                payload.len(),
                SESSION_HEADER_LEN + TAG_LEN
            )));
        }
        let (header, sealed) = payload.split_at(SESSION_HEADER_LEN);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&header[3..11]);
        let seq = u64::from_be_bytes(seq_bytes);
        if seq != self.recv_seq {
            return Err(out_of_sequence(seq, self.recv_seq));
        }
        let mut buf = sealed_copy(sealed, offset)?;
        let len = keys.open_in_place(seq, header, &mut buf)?;
        buf.truncate(len);
        self.recv_seq += 1;
        Ok(Opened::message(
            Cow::Owned(self.inflate(buf, compression, offset)?),
            flags & FLAG_MULTI != 0,
        ))
    }

    /// The peer's handshake frame: the hello (responder) or the reply (initiator); anything else is refused.
    fn open_handshake<'a>(&mut self, payload: &'a [u8]) -> CodecResult<Opened<'a>> {
        let state = std::mem::replace(self.session.as_mut().ok_or_else(not_established)?, Session::Failed);
        let keys = match state {
            Session::Awaiting => {
                let keyring = self
                    .config
                    .keyring
                    .as_deref()
                    .ok_or_else(|| CodecError::usage("a handshake needs a keyring"))?;
                if payload.len() != HELLO_LEN {
                    return Err(CodecError::decrypt(format!(
                        "handshake hello of {} bytes where {HELLO_LEN} were expected",
                        payload.len()
                    )));
                }
                let key_id = u32::from_be_bytes([payload[3], payload[4], payload[5], payload[6]]);
                let mut reply = Vec::with_capacity(REPLY_LEN);
                reply.extend_from_slice(&[MAGIC, SESSION_VERSION, FLAG_HANDSHAKE]);
                let keys = session::respond(keyring, key_id, &payload[7..], self.ephemeral, &mut reply)?;
                self.outbox = Some(reply);
                keys
            }
            Session::Initiating(initiator) => {
                if payload.len() != REPLY_LEN {
                    return Err(CodecError::decrypt(format!(
                        "handshake reply of {} bytes where {REPLY_LEN} were expected",
                        payload.len()
                    )));
                }
                initiator.finish(&payload[PLAIN_HEADER_LEN..])?
            }
            Session::Established(_) | Session::Failed => {
                return Err(CodecError::decrypt(
                    "handshake frame after the session was established (replayed or injected)",
                ))
            }
        };
        self.session = Some(Session::Established(Box::new(keys)));
        Ok(Opened::control())
    }
}

/// A copy of a sealed body to decrypt in place, in a buffer allocated fallibly: its size is the peer's.
fn sealed_copy(sealed: &[u8], offset: u64) -> CodecResult<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(sealed.len())
        .map_err(|_| CodecError::out_of_memory(sealed.len(), offset))?;
    buf.extend_from_slice(sealed);
    Ok(buf)
}

fn out_of_sequence(seq: u64, expected: u64) -> CodecError {
    CodecError::decrypt(format!(
        "sequence number {seq} where {expected} was expected: frame replayed, dropped or reordered"
    ))
}

fn not_established() -> CodecError {
    CodecError::usage("the session handshake is not complete: nothing can be sealed or opened before it")
}

/// The header of a session data frame; `flags` holds the compression code and multi bit.
fn session_header(flags: u8, seq: u64) -> [u8; SESSION_HEADER_LEN] {
    let mut header = [0u8; SESSION_HEADER_LEN];
    header[0] = MAGIC;
    header[1] = SESSION_VERSION;
    header[2] = flags | FLAG_ENCRYPTED;
    header[3..11].copy_from_slice(&seq.to_be_bytes());
    header
}

/// The header of an encrypted envelope; `flags` holds the compression code and multi bit.
fn sealed_header(flags: u8, key_id: u32, nonce: [u8; NONCE_LEN], seq: u64) -> [u8; SEALED_HEADER_LEN] {
    let mut header = [0u8; SEALED_HEADER_LEN];
    header[0] = MAGIC;
    header[1] = VERSION;
    header[2] = flags | FLAG_ENCRYPTED;
    header[3..7].copy_from_slice(&key_id.to_be_bytes());
    header[7..19].copy_from_slice(&nonce);
    header[19..27].copy_from_slice(&seq.to_be_bytes());
    header
}

/// Append one record (`u32be len || message`) to a multi body.
pub fn push_record(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
}

/// Split a multi body into its messages, in order. A truncated record, or a body without any record
/// (wire-format 3.1: one or more), is a Parse error.
pub fn split_records(body: &[u8]) -> impl Iterator<Item = CodecResult<&[u8]>> {
    let mut rest = body;
    let mut empty = body.is_empty();
    std::iter::from_fn(move || {
        if empty {
            empty = false;
            return Some(Err(CodecError::parse("multi envelope without records")));
        }
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

/// The test vectors of docs/wire-format.md section 5, regenerated from this implementation.
/// `cargo test -p rpcwire-core --lib print_test_vectors -- --ignored --nocapture` prints them.
#[cfg(test)]
pub(crate) mod vectors {
    use std::fmt::Write as _;

    use super::*;
    use crate::compress::DEFAULT_MAX_EXPANSION;

    pub const KEY: [u8; 32] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11,
        0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    ];
    pub const KEY_ID: u32 = 1;
    pub const PREFIX: [u8; 8] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];
    pub const SMALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    pub const LARGE: &str = concat!(
        r#"{"jsonrpc":"2.0","id":2,"result":{"tools":["#,
        r#"{"name":"read_file","description":"Read a file from the workspace","inputSchema":{"type":"object","properties":{"path":{"type":"string"}}}},"#,
        r#"{"name":"write_file","description":"Write a file to the workspace","inputSchema":{"type":"object","properties":{"path":{"type":"string"}}}},"#,
        r#"{"name":"list_files","description":"List the files of the workspace","inputSchema":{"type":"object","properties":{"path":{"type":"string"}}}}"#,
        "]}}"
    );
    pub const BATCH: [&str; 3] = [
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":2}}"#,
        r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
    ];

    #[allow(clippy::unnecessary_wraps)] // the signature is PrefixSource's
    fn fixed_prefix(d: &mut [u8; 8]) -> CodecResult<()> {
        *d = PREFIX;
        Ok(())
    }

    pub fn hex(b: &[u8]) -> String {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    /// A fresh sender with the published key and nonce prefix.
    pub fn sender(compression: Option<Compression>, keyed: bool) -> Envelope {
        let keyring =
            keyed.then(|| Arc::new(KeyRing::new(vec![(KEY_ID, KEY)], KEY_ID).unwrap_or_else(|e| panic!("{e}"))));
        let config = EnvelopeConfig {
            compression,
            compress_min_size: 0,
            keyring,
            max_frame_size: 16 << 20,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: None,
        };
        Envelope::with_nonce_source(config, fixed_prefix).unwrap_or_else(|e| panic!("{e}"))
    }

    fn block(out: &mut String, title: &str, compression: Option<Compression>, keyed: bool, inputs: &[&str]) {
        let payload = if compression.is_none() && !keyed {
            inputs.concat().into_bytes()
        } else {
            let mut s = sender(compression, keyed);
            let body = if inputs.len() == 1 {
                inputs[0].as_bytes().to_vec()
            } else {
                let mut b = Vec::new();
                for m in inputs {
                    push_record(&mut b, m.as_bytes());
                }
                b
            };
            s.seal(&body, inputs.len() > 1)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("{title}: not sealed"))
        };
        let _ = write!(out, "### {title}\n\n```text\n");
        let _ = writeln!(out, "compression: {}", compression.map_or("none", Compression::name));
        if keyed {
            let _ = write!(
                out,
                "key: {}\nkey_id: {KEY_ID}\nnonce_prefix: {}\nseq: 0\n",
                hex(&KEY),
                hex(&PREFIX)
            );
        } else {
            out.push_str("key: none\n");
        }
        for m in inputs {
            let _ = writeln!(out, "input: {m}");
        }
        let _ = write!(out, "frame: {}\n```\n\n", hex(&frame(&payload)));
    }

    /// Section 5's vector blocks, exactly as the document holds them.
    pub fn render() -> String {
        let mut out = String::new();
        block(&mut out, "5.1 Plain `length` frame", None, false, &[SMALL]);
        block(
            &mut out,
            "5.2 lz4, unencrypted envelope",
            Some(Compression::Lz4),
            false,
            &[LARGE],
        );
        block(
            &mut out,
            "5.3 brotli, unencrypted envelope",
            Some(Compression::Brotli),
            false,
            &[LARGE],
        );
        block(&mut out, "5.4 Encrypted, no compression", None, true, &[SMALL]);
        block(
            &mut out,
            "5.5 Encrypted and lz4",
            Some(Compression::Lz4),
            true,
            &[LARGE],
        );
        block(
            &mut out,
            "5.6 Encrypted multi batch (`encode_many`)",
            None,
            true,
            &BATCH,
        );
        out
    }

    pub const ANSWER: &str = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;

    /// The published initiator ephemeral: `40 41 … 5f`.
    #[allow(clippy::unnecessary_wraps)] // an EphemeralSource
    pub fn initiator_ephemeral(d: &mut [u8; 32]) -> CodecResult<()> {
        for (i, b) in d.iter_mut().enumerate() {
            *b = 0x40 + i as u8;
        }
        Ok(())
    }

    /// The published responder ephemeral: `60 61 … 7f`.
    #[allow(clippy::unnecessary_wraps)] // an EphemeralSource
    pub fn responder_ephemeral(d: &mut [u8; 32]) -> CodecResult<()> {
        for (i, b) in d.iter_mut().enumerate() {
            *b = 0x60 + i as u8;
        }
        Ok(())
    }

    /// One side of a session with the published key and that side's published ephemeral.
    pub fn session_side(role: Role) -> Envelope {
        let keyring = Arc::new(KeyRing::new(vec![(KEY_ID, KEY)], KEY_ID).unwrap_or_else(|e| panic!("{e}")));
        let config = EnvelopeConfig {
            compression: None,
            compress_min_size: 0,
            keyring: Some(keyring),
            max_frame_size: 16 << 20,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: Some(role),
        };
        let source = match role {
            Role::Initiator => initiator_ephemeral,
            Role::Responder => responder_ephemeral,
        };
        Envelope::with_sources(config, None, source).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Section 6's vector block, exactly as the document holds it.
    pub fn render_session() -> String {
        let fail = |e: CodecError| -> ! { panic!("{e}") };
        let mut initiator = session_side(Role::Initiator);
        let mut responder = session_side(Role::Responder);
        let hello = initiator.take_outbox().unwrap_or_else(|| panic!("no hello"));
        responder.open(&hello, 0).unwrap_or_else(|e| fail(e));
        let reply = responder.take_outbox().unwrap_or_else(|| panic!("no reply"));
        initiator.open(&reply, 0).unwrap_or_else(|e| fail(e));
        let first = initiator.seal(SMALL.as_bytes(), false).unwrap_or_else(|e| fail(e));
        let answer = responder.seal(ANSWER.as_bytes(), false).unwrap_or_else(|e| fail(e));
        let (Some(first), Some(answer)) = (first, answer) else {
            panic!("not sealed")
        };
        let mut e_i = [0u8; 32];
        let mut e_r = [0u8; 32];
        initiator_ephemeral(&mut e_i).unwrap_or_else(|e| fail(e));
        responder_ephemeral(&mut e_r).unwrap_or_else(|e| fail(e));
        let mut out = String::new();
        let _ = write!(
            out,
            "### 6.1 Handshake and the first frame each way\n\n```text\nkey: {}\nkey_id: {KEY_ID}\n\
             initiator_ephemeral: {}\nresponder_ephemeral: {}\nhello: {}\nreply: {}\n\
             initiator_input: {SMALL}\ninitiator_frame: {}\nresponder_input: {ANSWER}\nresponder_frame: {}\n```\n\n",
            hex(&KEY),
            hex(&e_i),
            hex(&e_r),
            hex(&frame(&hello)),
            hex(&frame(&reply)),
            hex(&frame(&first)),
            hex(&frame(&answer)),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::vectors::{hex, sender, KEY, KEY_ID, LARGE, PREFIX, SMALL};
    use super::*;
    use crate::compress::DEFAULT_MAX_EXPANSION;

    const DEFAULT_MAX_EXPANSION_U64: u64 = DEFAULT_MAX_EXPANSION as u64;

    fn ok<T>(r: CodecResult<T>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    fn keyring(keys: &[(u32, u8)], active: u32) -> Arc<KeyRing> {
        Arc::new(ok(KeyRing::new(
            keys.iter().map(|&(id, b)| (id, [b; 32])).collect(),
            active,
        )))
    }

    fn env(compression: Option<Compression>, keyring: Option<Arc<KeyRing>>) -> Envelope {
        env_expanding(compression, keyring, DEFAULT_MAX_EXPANSION)
    }

    fn env_expanding(
        compression: Option<Compression>,
        keyring: Option<Arc<KeyRing>>,
        max_expansion: usize,
    ) -> Envelope {
        ok(Envelope::new(EnvelopeConfig {
            compression,
            compress_min_size: 0,
            keyring,
            max_frame_size: 1 << 20,
            max_expansion,
            handshake: None,
        }))
    }

    /// A sender/receiver pair sharing one key.
    fn pair(compression: Option<Compression>) -> (Envelope, Envelope) {
        let k = keyring(&[(1, 1)], 1);
        (env(compression, Some(k.clone())), env(None, Some(k)))
    }

    fn seal(e: &mut Envelope, body: &[u8]) -> Vec<u8> {
        ok(e.seal(body, false)).unwrap_or_else(|| panic!("not sealed"))
    }

    fn decrypt_message(r: CodecResult<Opened<'_>>) -> String {
        match r {
            Err(CodecError::Decrypt { message }) => message,
            other => panic!("expected DecryptError, got {other:?}"),
        }
    }

    #[test]
    fn the_document_holds_the_current_test_vectors() {
        let doc = include_str!("../../../docs/wire-format.md");
        assert!(
            doc.contains(&vectors::render_session()),
            "docs/wire-format.md section 6 is stale; regenerate with \
             `cargo test -p rpcwire-core --lib print_test_vectors -- --ignored --nocapture`"
        );
        let rendered = vectors::render();
        assert!(
            doc.contains(&rendered),
            "docs/wire-format.md section 5 is stale; regenerate with \
             `cargo test -p rpcwire-core --lib print_test_vectors -- --ignored --nocapture`"
        );
    }

    #[test]
    #[ignore = "prints docs/wire-format.md section 5"]
    fn print_test_vectors() {
        let rendered = vectors::render() + &vectors::render_session();
        std::io::Write::write_all(&mut std::io::stdout(), rendered.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn known_answer_encrypted_frame() {
        let mut s = sender(None, true);
        let out = seal(&mut s, SMALL.as_bytes());
        assert_eq!(&out[..3], &[MAGIC, 1, FLAG_ENCRYPTED]);
        assert_eq!(&out[3..7], &KEY_ID.to_be_bytes());
        assert_eq!(&out[7..15], &PREFIX);
        assert_eq!(&out[15..27], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(out.len(), 27 + SMALL.len() + 16);
        // The second frame counts nonce and seq up.
        let out2 = seal(&mut s, SMALL.as_bytes());
        assert_eq!(&out2[15..19], &[0, 0, 0, 1]);
        assert_eq!(&out2[19..27], &1u64.to_be_bytes());
        // Independently: AES-256-GCM(key, nonce, aad=header) of the body through ring directly.
        let k = ok(KeyRing::new(vec![(9, KEY)], 9));
        let mut expect = SMALL.as_bytes().to_vec();
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&out[7..19]);
        ok(k.seal_in_place(nonce, &out[..27], &mut expect, 0));
        assert_eq!(hex(&out[27..]), hex(&expect));
    }

    #[test]
    fn round_trip_every_mode() {
        for compression in [None, Some(Compression::Lz4), Some(Compression::Brotli)] {
            for keyed in [false, true] {
                let k = keyed.then(|| keyring(&[(5, 5)], 5));
                let mut tx = env(compression, k.clone());
                let mut rx = env(None, k);
                let body = LARGE.as_bytes();
                let Some(frame) = ok(tx.seal(body, false)) else {
                    assert!(compression.is_none() && !keyed);
                    continue;
                };
                let opened = ok(rx.open(&frame, 0));
                assert_eq!((&*opened.body, opened.multi), (body, false), "{compression:?} {keyed}");
            }
        }
    }

    #[test]
    fn unkept_compression_and_the_min_size() {
        let mut e = ok(Envelope::new(EnvelopeConfig {
            compression: Some(Compression::Lz4),
            compress_min_size: 1024,
            keyring: None,
            max_frame_size: 1 << 20,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: None,
        }));
        assert!(
            ok(e.seal(LARGE.as_bytes(), false)).is_none(),
            "below compress_min_size: plain frames"
        );
        let big = LARGE.repeat(4);
        let sealed = ok(e.seal(big.as_bytes(), true)).unwrap_or_default();
        assert_eq!(&sealed[..3], &[MAGIC, 1, 1 | FLAG_MULTI]);
        // Incompressible data is sent plain even above the threshold.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert!(ok(e.seal(&noise, false)).is_none());
        // With a keyring it is sealed with compression 0.
        let (mut tx, mut rx) = pair(Some(Compression::Lz4));
        let f = seal(&mut tx, &noise);
        assert_eq!(f[2], FLAG_ENCRYPTED);
        assert_eq!(&*ok(rx.open(&f, 0)).body, &noise[..]);
    }

    #[test]
    fn seals_differ_and_hide_the_plaintext() {
        let (mut tx, _) = pair(None);
        let a = seal(&mut tx, LARGE.as_bytes());
        let b = seal(&mut tx, LARGE.as_bytes());
        assert_ne!(a[27..], b[27..]);
        for f in [&a, &b] {
            assert!(!f.windows(8).any(|w| w == b"jsonrpc\"" || w == b"read_fil"));
        }
        let (mut tx2, _) = pair(None);
        let c = seal(&mut tx2, LARGE.as_bytes());
        assert_ne!(a[7..15], c[7..15], "two codecs draw different prefixes");
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let (mut tx, _) = pair(Some(Compression::Lz4));
        let frame = seal(&mut tx, LARGE.as_bytes());
        for i in 0..frame.len() {
            for bit in 0..8 {
                let (_, mut rx) = pair(None);
                let mut bad = frame.clone();
                bad[i] ^= 1 << bit;
                let r = rx.open(&bad, 0);
                assert!(matches!(&r, Err(e) if e.is_fatal()), "byte {i} bit {bit}: {r:?}");
            }
        }
    }

    #[test]
    fn the_six_decrypt_refusals() {
        let (mut tx, _) = pair(None);
        let f0 = seal(&mut tx, SMALL.as_bytes());
        let f1 = seal(&mut tx, SMALL.as_bytes());
        let f2 = seal(&mut tx, SMALL.as_bytes());

        // 1. plaintext: a bare message, or an envelope without the encrypted bit.
        let (_, mut rx) = pair(None);
        assert!(decrypt_message(rx.open(SMALL.as_bytes(), 0)).contains("plaintext"));
        let mut plain_env = ok(env(Some(Compression::Lz4), None).seal(LARGE.as_bytes(), false)).unwrap_or_default();
        assert!(decrypt_message(rx.open(&plain_env, 0)).contains("unencrypted"));
        plain_env.truncate(3);
        assert!(decrypt_message(rx.open(&plain_env, 0)).contains("unencrypted"));
        // 2. shorter than header + tag.
        assert!(decrypt_message(rx.open(&f0[..27 + 15], 0)).contains("shorter"));
        // 3. unknown key id.
        let (_, mut other) = (0, env(None, Some(keyring(&[(2, 1)], 2))));
        assert_eq!(decrypt_message(other.open(&f0, 0)), "unknown key id 1");
        // 4. tag does not verify (wrong key under the right id, or a changed byte).
        let mut wrong = env(None, Some(keyring(&[(1, 9)], 1)));
        assert!(decrypt_message(wrong.open(&f0, 0)).contains("authentication failed"));
        // 5. reflected: the sender receives its own frame.
        assert!(decrypt_message(tx.open(&f0, 0)).contains("reflected"));
        // 6. seq other than expected: replay, drop, reorder.
        let (_, mut rx) = pair(None);
        assert!(rx.open(&f0, 0).is_ok());
        assert!(decrypt_message(rx.open(&f0, 0)).contains("sequence number 0 where 1"));
        let (_, mut rx) = pair(None);
        assert!(decrypt_message(rx.open(&f1, 0)).contains("sequence number 1 where 0"));
        let (_, mut rx) = pair(None);
        assert!(rx.open(&f0, 0).is_ok());
        assert!(decrypt_message(rx.open(&f2, 0)).contains("sequence number 2 where 1"));
        // Without a keyring, any encrypted envelope is refused.
        assert!(decrypt_message(env(None, None).open(&f0, 0)).contains("no keyring"));
    }

    /// An established pair of session envelopes (fresh ephemerals).
    fn session_pair(key: u8) -> (Envelope, Envelope) {
        let side = |role| {
            ok(Envelope::new(EnvelopeConfig {
                compression: Some(Compression::Lz4),
                compress_min_size: 64,
                keyring: Some(keyring(&[(3, key)], 3)),
                max_frame_size: 1 << 20,
                max_expansion: DEFAULT_MAX_EXPANSION,
                handshake: Some(role),
            }))
        };
        let (mut i, mut r) = (side(Role::Initiator), side(Role::Responder));
        assert!(!i.established() && !r.established());
        assert!(r.take_outbox().is_none(), "a responder speaks second");
        let hello = i.take_outbox().unwrap_or_else(|| panic!("no hello"));
        assert_eq!(hello.len(), HELLO_LEN);
        assert!(ok(r.open(&hello, 0)).control);
        let reply = r.take_outbox().unwrap_or_else(|| panic!("no reply"));
        assert_eq!(reply.len(), REPLY_LEN);
        assert!(ok(i.open(&reply, 0)).control);
        assert!(i.established() && r.established());
        (i, r)
    }

    fn sealed(e: &mut Envelope, body: &[u8]) -> Vec<u8> {
        ok(e.seal(body, false)).unwrap_or_else(|| panic!("not sealed"))
    }

    #[test]
    fn the_published_session_vector_opens() {
        let mut responder = vectors::session_side(Role::Responder);
        let mut initiator = vectors::session_side(Role::Initiator);
        let hello = initiator.take_outbox().unwrap_or_else(|| panic!("no hello"));
        ok(responder.open(&hello, 0));
        ok(initiator.open(&responder.take_outbox().unwrap_or_else(|| panic!("no reply")), 0));
        let frame = sealed(&mut initiator, SMALL.as_bytes());
        assert_eq!(&ok(responder.open(&frame, 0)).body[..], SMALL.as_bytes());
        assert_eq!(frame.len(), SESSION_HEADER_LEN + SMALL.len() + TAG_LEN);
    }

    #[test]
    fn sessions_round_trip_both_ways_with_compression() {
        let (mut i, mut r) = session_pair(1);
        let big = LARGE.repeat(4);
        for body in [SMALL.as_bytes(), big.as_bytes()] {
            let frame = sealed(&mut i, body);
            assert_eq!(&ok(r.open(&frame, 0)).body[..], body);
            let frame = sealed(&mut r, body);
            assert_eq!(&ok(i.open(&frame, 0)).body[..], body);
        }
        // In place, as the binding seals small messages.
        let mut buf = vec![0u8; SESSION_HEADER_LEN];
        buf.extend_from_slice(SMALL.as_bytes());
        ok(i.seal_in_place(&mut buf, 0, false));
        assert_eq!(&ok(r.open(&buf, 0)).body[..], SMALL.as_bytes());
    }

    #[test]
    fn session_frames_do_not_open_reflected_or_on_another_connection() {
        let (mut i1, mut r1) = session_pair(1);
        let (mut i2, mut r2) = session_pair(1);
        let from_server = sealed(&mut r1, SMALL.as_bytes());
        let from_client = sealed(&mut i1, SMALL.as_bytes());
        // Reflected to its sender, or into another connection either way: authentication fails.
        assert!(matches!(r1.open(&from_server, 0), Err(CodecError::Decrypt { .. })));
        assert!(matches!(r2.open(&from_server, 0), Err(CodecError::Decrypt { .. })));
        let (_, mut r3) = session_pair(1);
        assert!(matches!(r3.open(&from_client, 0), Err(CodecError::Decrypt { .. })));
        assert!(matches!(i1.open(&from_client, 0), Err(CodecError::Decrypt { .. })));
        assert!(matches!(i2.open(&from_server, 0), Err(CodecError::Decrypt { .. })));
    }

    #[test]
    fn session_refusals() {
        let decrypt = |r: CodecResult<Opened<'_>>| match r {
            Err(CodecError::Decrypt { message }) => message,
            other => panic!("{other:?}"),
        };
        // Replay and reorder within the session.
        let (mut i, mut r) = session_pair(1);
        let first = sealed(&mut i, SMALL.as_bytes());
        let second = sealed(&mut i, SMALL.as_bytes());
        assert!(decrypt(r.open(&second, 0)).contains("sequence number 1 where 0"));
        let (mut i, mut r) = session_pair(1);
        let first_again = sealed(&mut i, SMALL.as_bytes());
        ok(r.open(&first_again, 0));
        assert!(decrypt(r.open(&first_again, 0)).contains("replayed"));
        // A second hello, or a replayed reply, once established.
        let (mut i, mut r) = session_pair(1);
        let mut i2 = session_side_fresh(Role::Initiator);
        let hello = i2.take_outbox().unwrap_or_else(|| panic!("no hello"));
        assert!(decrypt(r.open(&hello, 0)).contains("after the session was established"));
        assert!(decrypt(i.open(&hello, 0)).contains("after the session was established"));
        // Data before the handshake, a stream-form (v1) frame, a plaintext session envelope.
        let mut fresh = session_side_fresh(Role::Responder);
        assert!(decrypt(fresh.open(&first, 0)).contains("before the session handshake"));
        let mut stream = env(None, Some(keyring(&[(3, 1)], 3)));
        let v1 = sealed(&mut stream, SMALL.as_bytes());
        assert!(decrypt(session_side_fresh(Role::Responder).open(&v1, 0)).contains("version 1 envelope"));
        assert!(decrypt(fresh.open(&[MAGIC, SESSION_VERSION, 0, b'{'], 0)).contains("unencrypted"));
        // Nothing is sealed before the handshake.
        let mut early = session_side_fresh(Role::Initiator);
        assert!(early.seal(SMALL.as_bytes(), false).is_err());
        // A hello of the wrong length, a reply with flags besides handshake, reserved v2 bits.
        assert!(decrypt(session_side_fresh(Role::Responder).open(&hello[..HELLO_LEN - 1], 0)).contains("hello of"));
        for flags in [FLAG_HANDSHAKE | FLAG_MULTI, 0x20 | FLAG_ENCRYPTED] {
            let mut bad = hello.clone();
            bad[2] = flags;
            assert!(matches!(
                session_side_fresh(Role::Responder).open(&bad, 0),
                Err(CodecError::Framing { .. })
            ));
        }
        // A handshake with another key fails at the responder, naming the key id.
        let mut wrong = ok(Envelope::new(EnvelopeConfig {
            keyring: Some(keyring(&[(3, 9)], 3)),
            ..session_side_fresh(Role::Initiator).config().clone()
        }));
        let wrong_hello = wrong.take_outbox().unwrap_or_else(|| panic!("no hello"));
        let mut responder = session_side_fresh(Role::Responder);
        assert!(decrypt(responder.open(&wrong_hello, 0)).contains("does not hold key id 3"));
        assert!(responder.take_outbox().is_none(), "no reply to a hello that fails");
    }

    fn session_side_fresh(role: Role) -> Envelope {
        ok(Envelope::new(EnvelopeConfig {
            compression: None,
            compress_min_size: 0,
            keyring: Some(keyring(&[(3, 1)], 3)),
            max_frame_size: 1 << 20,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: Some(role),
        }))
    }

    #[test]
    fn a_handshake_needs_a_keyring() {
        let config = EnvelopeConfig {
            compression: None,
            compress_min_size: 0,
            keyring: None,
            max_frame_size: 1 << 20,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: Some(Role::Initiator),
        };
        assert!(Envelope::new(config).is_err());
    }

    #[test]
    fn framing_refusals() {
        for keyed in [false, true] {
            let mut rx = env(None, keyed.then(|| keyring(&[(1, 1)], 1)));
            for (payload, needle) in [
                (&[MAGIC][..], "truncated"),
                (&[MAGIC, 1][..], "truncated"),
                (
                    &[MAGIC, 2, 0, b'{'][..],
                    "envelope version 2 (a session frame) reached a codec without",
                ),
                (&[MAGIC, 3, 0, b'{'][..], "unknown envelope version 3"),
                (&[MAGIC, 1, 0x10, b'{'][..], "reserved"),
                (&[MAGIC, 1, 0x80 | FLAG_ENCRYPTED][..], "reserved"),
                (&[MAGIC, 1, 3, 0][..], "zstd not supported by this build"),
            ] {
                match rx.open(payload, 77) {
                    Err(CodecError::Framing { message, offset: 77 }) => assert!(message.contains(needle), "{message}"),
                    other => panic!("{payload:?}: {other:?}"),
                }
            }
        }
        assert!(matches!(
            env(None, None).open(b"{}", 0),
            Err(CodecError::Framing { .. })
        ));
    }

    #[test]
    fn bombs_and_corrupt_bodies() {
        let zeros = vec![0u8; 8 << 20];
        for c in [Compression::Lz4, Compression::Brotli] {
            for keyed in [false, true] {
                let k = keyed.then(|| keyring(&[(1, 1)], 1));
                // By default a body that compresses past max_expansion is sent uncompressed...
                // (brotli squeezes zeros far past it; lz4 cannot pass ~255x, within the default)
                match ok(env(Some(c), k.clone()).seal(&zeros, false)) {
                    Some(f) if c == Compression::Lz4 => assert!(f.len() < zeros.len() / 200, "{c:?}"),
                    // Keyed: sealed with compression code 0; else: plain frames.
                    Some(f) => assert!(keyed && f.len() >= zeros.len() && f[2] & FLAG_COMPRESSION == 0, "{c:?}"),
                    None => assert!(!keyed && c == Compression::Brotli, "{c:?}"),
                }
                // ...so a bomb needs a sender that ignores the budget.
                let mut tx = env_expanding(Some(c), k.clone(), usize::MAX);
                let f = ok(tx.seal(&zeros, false)).unwrap_or_default();
                assert!(f.len() < 64 << 10);
                let mut rx = env(None, k.clone());
                match rx.open(&f, 3) {
                    // brotli squeezes 8 MiB of zeros into a few bytes: the expansion budget refuses it.
                    Err(CodecError::Expansion {
                        max_expansion: DEFAULT_MAX_EXPANSION_U64,
                        offset: 3,
                        wire,
                    }) => assert!(c == Compression::Brotli && wire * DEFAULT_MAX_EXPANSION_U64 < 1 << 20),
                    // lz4 stops near 255x: 64x its size passes max_frame_size first.
                    Err(CodecError::FrameTooLarge {
                        limit: 1_048_576,
                        offset: 3,
                        ..
                    }) => assert_eq!(c, Compression::Lz4),
                    other => panic!("{c:?}: {other:?}"),
                }
                // Without the expansion budget, max_frame_size still stops it.
                let mut tx = env_expanding(Some(c), k.clone(), usize::MAX);
                let f = ok(tx.seal(&zeros, false)).unwrap_or_default();
                let mut rx = env_expanding(None, k.clone(), usize::MAX);
                assert!(matches!(
                    rx.open(&f, 3),
                    Err(CodecError::FrameTooLarge {
                        limit: 1_048_576,
                        offset: 3,
                        ..
                    })
                ));
                // A body that does not decompress is a Parse error, and the stream goes on.
                let mut rx = env(None, k.clone());
                let mut tx = env(None, k);
                let mut bogus = vec![MAGIC, 1, c.code()];
                bogus.extend_from_slice(b"definitely not compressed");
                if keyed {
                    // Seal a lying body: header says compressed, body is garbage.
                    let body = &bogus[3..];
                    let mut f = ok(tx.seal(body, false)).unwrap_or_default();
                    f[2] |= c.code();
                    assert!(rx.open(&f, 0).is_err(), "tampered flags fail authentication");
                } else {
                    assert!(matches!(rx.open(&bogus, 0), Err(CodecError::Parse { .. })), "{c:?}");
                    assert!(rx
                        .open(
                            &ok(env(Some(c), None).seal(LARGE.as_bytes(), false)).unwrap_or_default(),
                            0
                        )
                        .is_ok());
                }
            }
        }
    }

    #[test]
    fn key_rotation() {
        let old = keyring(&[(1, 1)], 1);
        let both = Arc::new(ok(old.with_key(2, [2; 32], true)));
        let mut tx_old = env(None, Some(old));
        let mut tx_new = env(None, Some(both.clone()));
        let mut rx = env(None, Some(both));
        let f_old = seal(&mut tx_old, SMALL.as_bytes());
        assert_eq!(&f_old[3..7], &1u32.to_be_bytes());
        assert_eq!(&*ok(rx.open(&f_old, 0)).body, SMALL.as_bytes());
        let f_new = seal(&mut tx_new, SMALL.as_bytes());
        assert_eq!(&f_new[3..7], &2u32.to_be_bytes());
        // Seq counts per direction, not per key: tx_new's first frame is seq 0, rx expects 1.
        assert!(decrypt_message(rx.open(&f_new, 0)).contains("sequence"));
        let mut rx = env(
            None,
            Some(Arc::new(ok(KeyRing::new(vec![(1, [1; 32]), (2, [2; 32])], 1)))),
        );
        assert_eq!(&*ok(rx.open(&f_new, 0)).body, SMALL.as_bytes());
    }

    #[test]
    fn multi_records_round_trip() {
        let (mut tx, mut rx) = pair(Some(Compression::Brotli));
        let msgs: Vec<String> = (0..50)
            .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{{}}}}"#))
            .collect();
        let mut body = Vec::new();
        for m in &msgs {
            push_record(&mut body, m.as_bytes());
        }
        let f = ok(tx.seal(&body, true)).unwrap_or_default();
        assert_eq!(f[2], FLAG_ENCRYPTED | FLAG_MULTI | Compression::Brotli.code());
        let opened = ok(rx.open(&f, 0));
        assert!(opened.multi);
        let got: Vec<&[u8]> = split_records(&opened.body).map(ok).collect();
        assert_eq!(got, msgs.iter().map(String::as_bytes).collect::<Vec<_>>());
        let mut truncated = body.clone();
        truncated.pop();
        assert!(split_records(&truncated).any(|r| matches!(r, Err(CodecError::Parse { .. }))));
        let none: Vec<_> = split_records(&[]).collect();
        assert!(matches!(none.as_slice(), [Err(CodecError::Parse { .. })]));
    }

    #[test]
    fn zstd_config_is_a_usage_error() {
        let r = Envelope::new(EnvelopeConfig {
            compression: Some(Compression::Zstd),
            compress_min_size: 0,
            keyring: None,
            max_frame_size: 1,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: None,
        });
        assert!(matches!(r, Err(CodecError::Usage(_))));
    }

    #[test]
    fn seal_in_place_writes_what_seal_writes() {
        let (mut copying, mut in_place) = (sender(None, true), sender(None, true));
        for (body, multi) in [
            (SMALL.as_bytes(), false),
            (LARGE.as_bytes(), false),
            (LARGE.as_bytes(), true),
        ] {
            let expected = ok(copying.seal(body, multi)).unwrap_or_default();
            // After a frame header the caller already wrote: only buf[2..] is the envelope.
            let mut buf = vec![0xAA, 0xBB];
            buf.resize(2 + SEALED_HEADER_LEN, 0);
            buf.extend_from_slice(body);
            assert!(in_place.seals_in_place(body.len()));
            ok(in_place.seal_in_place(&mut buf, 2, multi));
            assert_eq!(buf[..2], [0xAA, 0xBB]);
            assert_eq!(hex(&buf[2..]), hex(&expected));
        }
    }

    #[test]
    fn seal_in_place_only_without_compression_to_apply() {
        let plain = env(Some(Compression::Lz4), None);
        assert!(!plain.seals_in_place(10));
        let mut keyed = ok(Envelope::new(EnvelopeConfig {
            compression: Some(Compression::Lz4),
            compress_min_size: 100,
            keyring: Some(keyring(&[(1, 1)], 1)),
            max_frame_size: 1 << 20,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: None,
        }));
        assert!(keyed.seals_in_place(99) && !keyed.seals_in_place(100));
        let mut buf = vec![0; SEALED_HEADER_LEN];
        buf.extend_from_slice(&[b'x'; 100]);
        assert!(keyed.seal_in_place(&mut buf, 0, false).is_err(), "a body to compress");
        let mut short = vec![0; SEALED_HEADER_LEN - 1];
        assert!(
            keyed.seal_in_place(&mut short, 0, false).is_err(),
            "no room for the header"
        );
        let mut buf = vec![0; SEALED_HEADER_LEN];
        buf.extend_from_slice(SMALL.as_bytes());
        ok(keyed.seal_in_place(&mut buf, 0, false));
        let mut rx = ok(Envelope::new(EnvelopeConfig {
            compression: None,
            compress_min_size: 0,
            keyring: Some(keyring(&[(1, 1)], 1)),
            max_frame_size: 1 << 20,
            max_expansion: DEFAULT_MAX_EXPANSION,
            handshake: None,
        }));
        assert_eq!(&*ok(rx.open(&buf, 0)).body, SMALL.as_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn prop_round_trip(
            compression in prop_oneof![Just(None), Just(Some(Compression::Lz4)), Just(Some(Compression::Brotli))],
            keyed in any::<bool>(),
            msgs in prop::collection::vec(prop::collection::vec(prop_oneof![Just(b'a'), Just(b'{'), any::<u8>()], 0..3000), 1..5),
            min_size in prop_oneof![Just(0usize), Just(512usize)],
        ) {
            let k = keyed.then(|| keyring(&[(3, 3)], 3));
            let cfg = |compression| EnvelopeConfig { compression, compress_min_size: min_size, keyring: k.clone(), max_frame_size: 1 << 20, max_expansion: DEFAULT_MAX_EXPANSION, handshake: None };
            let mut tx = ok(Envelope::new(cfg(compression)));
            let mut rx = ok(Envelope::new(cfg(None)));
            for _ in 0..2 {
                let multi = msgs.len() > 1;
                let body = if multi {
                    let mut b = Vec::new();
                    for m in &msgs { push_record(&mut b, m); }
                    b
                } else { msgs[0].clone() };
                match ok(tx.seal(&body, multi)) {
                    None => prop_assert!(!keyed),
                    Some(f) => {
                        prop_assert_eq!(f[0], MAGIC);
                        let opened = ok(rx.open(&f, 0));
                        prop_assert_eq!(opened.multi, multi);
                        prop_assert_eq!(&*opened.body, &body[..]);
                    }
                }
            }
        }
    }
}
