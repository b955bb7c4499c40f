//! Framings (docs/wire-format.md 2): an incremental, linear-time frame splitter and the frame writers.
//!
//! The decoder is a pull parser over "what is buffered, then the caller's new chunk": when nothing is
//! buffered, complete frames are handed out straight from the caller's slice and only the unfinished
//! tail is copied. The buffer grows with the bytes that really arrived, never with what a header announces
//! (a 4-byte header must not make us reserve 16 MiB), by fallible allocation: an allocator that refuses is an
//! `OutOfMemory` error for this stream, never an abort of the process. Once a frame that spanned reads is
//! handed out, a buffer grown past [`BUF_KEEP_MAX`] is released. `ndjson` remembers how far it has scanned
//! for `\n`, so no byte is scanned or copied twice.
use crate::errors::{CodecError, CodecResult};

/// Upper bound on a `content-length` header block, terminator included (wire-format 2.3).
pub const HEADER_LIMIT: usize = 4096;

/// Compact the buffer (drop consumed bytes) once this many consumed bytes sit in front of it.
const COMPACT_MIN: usize = 64 * 1024;
/// Largest buffer capacity an idle decoder keeps (a transport reads 256 KiB at a time): a connection that once
/// received a 15 MiB frame does not hold 15 MiB for the rest of its life.
pub const BUF_KEEP_MAX: usize = 256 * 1024;
/// Smallest step the buffer grows by.
const GROW_MIN: usize = 4 * 1024;

/// Make room in `buf` for `additional` more bytes, growing at most twofold (the bytes that arrived pay for
/// the room) and never past `ceiling` (the end of the frame being completed, when its size is known).
fn grow(buf: &mut Vec<u8>, additional: usize, ceiling: Option<usize>, offset: u64) -> CodecResult<()> {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return Ok(());
    }
    let doubled = buf.capacity().saturating_mul(2).max(GROW_MIN);
    let target = ceiling.map_or(doubled, |c| doubled.min(c)).max(needed);
    buf.try_reserve_exact(target - buf.len())
        .map_err(|_| CodecError::out_of_memory(target, offset))
}

/// Empty `buf`, releasing its memory if it grew past [`BUF_KEEP_MAX`].
fn release(buf: &mut Vec<u8>) {
    if buf.capacity() > BUF_KEEP_MAX {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

/// The framing of one direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// JSON text + `\n` (MCP stdio).
    Ndjson,
    /// `u32be(N) || payload[N]`.
    Length,
    /// `Content-Length: N\r\n\r\n || payload[N]` (LSP).
    ContentLength,
}

impl Framing {
    /// The Python-facing name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Length => "length",
            Self::ContentLength => "content-length",
        }
    }

    /// True for the framings whose payloads may be envelopes.
    #[must_use]
    pub fn is_binary(self) -> bool {
        !matches!(self, Self::Ndjson)
    }

    /// What `auto` picks from the first byte of a stream (wire-format 2.4).
    #[must_use]
    pub fn detect(first: u8) -> Self {
        match first {
            b'{' | b'[' | b' ' | b'\t' | b'\r' | b'\n' => Self::Ndjson,
            b'C' | b'c' => Self::ContentLength,
            _ => Self::Length,
        }
    }
}

/// A framing name as configured: one framing, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingChoice {
    Fixed(Framing),
    Auto,
}

impl FramingChoice {
    /// Parse the Python-facing name (`"ndjson"`, `"length"`, `"content-length"`, `"auto"`).
    pub fn from_name(name: &str) -> CodecResult<Self> {
        match name {
            "ndjson" => Ok(Self::Fixed(Framing::Ndjson)),
            "length" => Ok(Self::Fixed(Framing::Length)),
            "content-length" => Ok(Self::Fixed(Framing::ContentLength)),
            "auto" => Ok(Self::Auto),
            other => Err(CodecError::usage(format!(
                "unknown framing {other:?}: expected 'ndjson', 'length', 'content-length' or 'auto'"
            ))),
        }
    }
}

/// One frame handed out by [`Frames::next_frame`].
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The payload: an ndjson line without its terminator, or a `length`/`content-length` payload.
    pub payload: &'a [u8],
    /// Byte offset of the frame (its header, for binary framings) in the input stream.
    pub offset: u64,
    /// An ndjson line that ended with the input instead of `\n`: the caller must raise
    /// `FramingError` rather than return a Parse error item if it is not a complete JSON text.
    pub unterminated: bool,
}

/// What a look at the front of the pending bytes found.
enum Scan {
    /// A whole frame: `payload` is `start..end` of the looked-at slice, the frame is `total` bytes long.
    Frame { start: usize, end: usize, total: usize },
    /// An ndjson line of whitespace only (`total` bytes with its terminator): skip it.
    Skip { total: usize },
    /// More bytes are needed. Once the header has been read: where the payload starts, the frame's size.
    Need { known: Option<(usize, usize)> },
}

/// The incremental frame splitter of one input stream.
#[derive(Debug)]
pub struct FrameDecoder {
    /// `None` while `auto` has not seen a byte yet.
    framing: Option<Framing>,
    max_frame_size: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out.
    start: usize,
    /// ndjson: bytes of `buf[start..]` known to hold no `\n`; content-length: no header terminator.
    scanned: usize,
    /// Payload start and full size of the frame at `buf[start..]` once its header has been read.
    need: Option<(usize, usize)>,
    /// Stream offset of the first pending byte.
    offset: u64,
    eof: bool,
    poisoned: Option<CodecError>,
}

impl FrameDecoder {
    /// A decoder for `framing` (`None` = `auto`: detected from the first byte).
    #[must_use]
    pub fn new(framing: Option<Framing>, max_frame_size: usize) -> Self {
        Self {
            framing,
            max_frame_size,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            need: None,
            offset: 0,
            eof: false,
            poisoned: None,
        }
    }

    /// The framing in use; `None` while `auto` is undetected.
    #[must_use]
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Bytes held waiting for the rest of a frame.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes of memory the decoder's buffer holds (at least `buffered()`).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Total bytes consumed from the stream (handed out as frames, skipped, or buffered).
    #[must_use]
    pub fn stream_position(&self) -> u64 {
        self.offset + self.buffered() as u64
    }

    /// The fatal error this decoder raised, if any: every later call returns it again.
    #[must_use]
    pub fn poisoned(&self) -> Option<&CodecError> {
        self.poisoned.as_ref()
    }

    /// Poison the decoder with a fatal error found by the caller (e.g. while opening an envelope).
    pub fn poison(&mut self, error: CodecError) {
        if self.poisoned.is_none() {
            self.poisoned = Some(error);
        }
        self.discard();
    }

    /// A poisoned decoder never reads its buffer again: free it now, not when the codec is dropped.
    fn discard(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.need = None;
        self.scanned = 0;
    }

    /// Start reading `data` (empty = end of input). Pull frames with [`Frames::next_frame`] until `None`.
    pub fn feed<'s, 'd>(&'s mut self, data: &'d [u8]) -> CodecResult<Frames<'s, 'd>> {
        if let Some(error) = &self.poisoned {
            return Err(error.clone());
        }
        if self.eof {
            if data.is_empty() {
                return Ok(Frames::new(self, data, true));
            }
            let error = CodecError::framing("data fed after end of input", self.stream_position());
            self.poisoned = Some(error.clone());
            self.discard();
            return Err(error);
        }
        let at_eof = data.is_empty();
        if self.framing.is_none() {
            if let Some(&first) = data.first() {
                self.framing = Some(Framing::detect(first));
            }
        }
        if self.start == self.buf.len() {
            release(&mut self.buf);
            self.start = 0;
        }
        Ok(Frames::new(self, data, at_eof))
    }

    /// Look at `pending` (which starts at a frame boundary) for one frame.
    fn scan(&self, framing: Framing, pending: &[u8], scanned: usize) -> CodecResult<Scan> {
        match framing {
            Framing::Ndjson => self.scan_ndjson(pending, scanned),
            Framing::Length => self.scan_length(pending),
            Framing::ContentLength => self.scan_content_length(pending, scanned),
        }
    }

    fn scan_ndjson(&self, pending: &[u8], scanned: usize) -> CodecResult<Scan> {
        let Some(nl) = memchr::memchr(b'\n', &pending[scanned..]).map(|i| i + scanned) else {
            let content = pending.len() - usize::from(pending.last() == Some(&b'\r'));
            if content > self.max_frame_size {
                return Err(self.too_large(content as u64));
            }
            return Ok(Scan::Need { known: None });
        };
        let end = if nl > 0 && pending[nl - 1] == b'\r' { nl - 1 } else { nl };
        if end > self.max_frame_size {
            return Err(self.too_large(end as u64));
        }
        let line = &pending[..end];
        if is_blank(line) {
            Ok(Scan::Skip { total: nl + 1 })
        } else {
            Ok(Scan::Frame {
                start: 0,
                end,
                total: nl + 1,
            })
        }
    }

    fn scan_length(&self, pending: &[u8]) -> CodecResult<Scan> {
        let Some(header) = pending.first_chunk::<4>() else {
            return Ok(Scan::Need { known: None });
        };
        let size = u32::from_be_bytes(*header) as usize;
        if size > self.max_frame_size {
            return Err(self.too_large(size as u64));
        }
        let total = 4 + size;
        if pending.len() < total {
            return Ok(Scan::Need {
                known: Some((4, total)),
            });
        }
        Ok(Scan::Frame {
            start: 4,
            end: total,
            total,
        })
    }

    fn scan_content_length(&self, pending: &[u8], scanned: usize) -> CodecResult<Scan> {
        let from = scanned.saturating_sub(3);
        let window = &pending[..pending.len().min(HEADER_LIMIT)];
        let found = memchr::memmem::find(&window[from.min(window.len())..], b"\r\n\r\n").map(|i| i + from);
        // A bare LF can never start a valid block: say so now instead of waiting for the limit or EOF (an
        // LSP-style peer that writes "\n" line ends is a common confusion). Looked for before the terminator
        // too, so the first fault is the one reported however the block was split into reads.
        let lf_end = found.map_or(window.len(), |end| end + 2);
        if let Some(lf) = memchr::memchr_iter(b'\n', &window[from.min(lf_end)..lf_end])
            .map(|i| i + from)
            .find(|&i| i == 0 || window[i - 1] != b'\r')
        {
            return Err(CodecError::framing(
                "header line not ended by \\r\\n",
                self.offset + lf as u64,
            ));
        }
        let Some(end) = found else {
            if pending.len() >= HEADER_LIMIT {
                return Err(CodecError::framing(
                    format!("content-length header block exceeds {HEADER_LIMIT} bytes"),
                    self.offset,
                ));
            }
            return Ok(Scan::Need { known: None });
        };
        let header_len = end + 4;
        let size = self.parse_headers(&pending[..end])?;
        if size > self.max_frame_size {
            return Err(self.too_large(size as u64));
        }
        let total = header_len + size;
        if pending.len() < total {
            return Ok(Scan::Need {
                known: Some((header_len, total)),
            });
        }
        Ok(Scan::Frame {
            start: header_len,
            end: total,
            total,
        })
    }

    /// Parse a header block (without its final `\r\n\r\n`) and return the Content-Length.
    fn parse_headers(&self, block: &[u8]) -> CodecResult<usize> {
        let mut length: Option<usize> = None;
        let mut pos = 0usize;
        for line in block.split(|&b| b == b'\n') {
            let line_offset = self.offset + pos as u64;
            pos += line.len() + 1;
            // Every line but the last was followed by '\n' and must end with '\r'; the last one's '\r\n'
            // was cut off with the terminator.
            let line = if pos <= block.len() {
                match line.strip_suffix(b"\r") {
                    Some(l) => l,
                    // Reported at the bare '\n' itself, as the incremental check does.
                    None => {
                        return Err(CodecError::framing(
                            "header line not ended by \\r\\n",
                            line_offset + line.len() as u64,
                        ))
                    }
                }
            } else {
                line
            };
            if line.contains(&b'\r') {
                return Err(CodecError::framing("header line not ended by \\r\\n", line_offset));
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(CodecError::framing("malformed header line (no ':')", line_offset));
            };
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            if !name.eq_ignore_ascii_case(b"content-length") {
                continue;
            }
            if length.is_some() {
                return Err(CodecError::framing("repeated Content-Length header", line_offset));
            }
            let value = value.trim_ascii();
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(CodecError::framing(
                    format!(
                        "Content-Length is not a decimal number: {:?}",
                        String::from_utf8_lossy(value)
                    ),
                    line_offset,
                ));
            }
            // Saturate: any size past u64 is simply too large.
            let n = value.iter().fold(0u64, |acc, &d| {
                acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
            length = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        length.ok_or_else(|| CodecError::framing("missing Content-Length header", self.offset))
    }

    #[cold]
    #[inline(never)]
    fn too_large(&self, size: u64) -> CodecError {
        CodecError::FrameTooLarge {
            size,
            limit: self.max_frame_size as u64,
            offset: self.offset,
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// The frames found in one `feed`: pull them with [`Frames::next_frame`]. Whatever is left of the
/// caller's chunk is copied into the decoder's buffer when this is dropped.
#[derive(Debug)]
pub struct Frames<'s, 'd> {
    dec: &'s mut FrameDecoder,
    input: &'d [u8],
    pos: usize,
    at_eof: bool,
    done: bool,
}

impl<'s, 'd> Frames<'s, 'd> {
    fn new(dec: &'s mut FrameDecoder, input: &'d [u8], at_eof: bool) -> Self {
        Self {
            dec,
            input,
            pos: 0,
            at_eof,
            done: false,
        }
    }

    /// The framing in use (`None` while `auto` is undetected, i.e. nothing was received yet).
    #[must_use]
    pub fn framing(&self) -> Option<Framing> {
        self.dec.framing
    }

    /// Poison the decoder with a fatal error found while handling a frame; no more frames are handed out.
    pub fn poison(&mut self, error: CodecError) {
        self.done = true;
        self.pos = self.input.len();
        self.dec.poison(error);
    }

    /// The next frame, `None` once the chunk is used up (what is left is buffered).
    /// A fatal error poisons the decoder.
    pub fn next_frame(&mut self) -> CodecResult<Option<Frame<'_>>> {
        if self.done {
            return Ok(None);
        }
        match self.step() {
            Ok(Some((range, from_buf, offset, unterminated))) => {
                let payload = if from_buf {
                    &self.dec.buf[range]
                } else {
                    &self.input[range]
                };
                Ok(Some(Frame {
                    payload,
                    offset,
                    unterminated,
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(error) => {
                self.done = true;
                self.pos = self.input.len();
                self.dec.poisoned = Some(error.clone());
                self.dec.discard();
                Err(error)
            }
        }
    }

    /// Find the next frame: its payload range, whether it lies in the decoder's buffer (else in the input),
    /// its stream offset, and whether it is an unterminated final ndjson line.
    #[allow(clippy::type_complexity)]
    fn step(&mut self) -> CodecResult<Option<(std::ops::Range<usize>, bool, u64, bool)>> {
        let Some(framing) = self.dec.framing else {
            // auto, and nothing received yet.
            return Ok(None);
        };
        loop {
            let dec = &mut *self.dec;
            if dec.start == dec.buf.len() {
                if dec.start > 0 {
                    release(&mut dec.buf);
                    dec.start = 0;
                }
                // Fast path: frames straight from the caller's slice.
                let rest = &self.input[self.pos..];
                if rest.is_empty() {
                    return Ok(None);
                }
                match dec.scan(framing, rest, 0)? {
                    Scan::Frame { start, end, total } => {
                        let offset = dec.offset;
                        let base = self.pos;
                        self.pos += total;
                        dec.offset += total as u64;
                        return Ok(Some((base + start..base + end, false, offset, false)));
                    }
                    Scan::Skip { total } => {
                        self.pos += total;
                        dec.offset += total as u64;
                    }
                    Scan::Need { known } => {
                        grow(&mut dec.buf, rest.len(), known.map(|(_, total)| total), dec.offset)?;
                        dec.need = known;
                        dec.scanned = if framing == Framing::Length { 0 } else { rest.len() };
                        dec.buf.extend_from_slice(rest);
                        self.pos = self.input.len();
                        return Ok(None);
                    }
                }
                continue;
            }
            // Slow path: complete the buffered frame with bytes from the input.
            let rest = &self.input[self.pos..];
            let pending = dec.buf.len() - dec.start;
            let take = match (framing, dec.need) {
                (_, Some((_, total))) => total.saturating_sub(pending).min(rest.len()),
                (Framing::Ndjson, None) => memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
                (Framing::Length, None) => (4usize.saturating_sub(pending)).min(rest.len()),
                (Framing::ContentLength, None) => (HEADER_LIMIT.saturating_sub(pending)).min(rest.len()),
            };
            if take > 0 {
                if dec.start >= COMPACT_MIN && dec.start * 2 >= dec.buf.len() {
                    dec.buf.drain(..dec.start);
                    dec.start = 0;
                }
                let ceiling = dec.need.map(|(_, total)| dec.start + total);
                grow(&mut dec.buf, take, ceiling, dec.offset)?;
                dec.buf.extend_from_slice(&rest[..take]);
                self.pos += take;
            }
            let pending_slice = &dec.buf[dec.start..];
            let scan = match dec.need {
                // The header is already read: only the size matters now.
                Some((start, total)) if pending_slice.len() >= total => Scan::Frame {
                    start,
                    end: total,
                    total,
                },
                Some(known) => Scan::Need { known: Some(known) },
                None => dec.scan(framing, pending_slice, dec.scanned)?,
            };
            match scan {
                Scan::Frame { start, end, total } => {
                    let base = dec.start;
                    let offset = dec.offset;
                    dec.start += total;
                    dec.offset += total as u64;
                    dec.scanned = 0;
                    dec.need = None;
                    return Ok(Some((base + start..base + end, true, offset, false)));
                }
                Scan::Skip { total } => {
                    dec.start += total;
                    dec.offset += total as u64;
                    dec.scanned = 0;
                    dec.need = None;
                }
                Scan::Need { known } => {
                    dec.need = known;
                    dec.scanned = dec.buf.len() - dec.start;
                    if self.pos == self.input.len() {
                        return self.end_of_chunk(framing);
                    }
                }
            }
        }
    }

    /// The chunk is used up with a frame half-read; at end of input that is an error (or, for ndjson,
    /// an unterminated final line the caller must check).
    #[allow(clippy::type_complexity)]
    fn end_of_chunk(&mut self, framing: Framing) -> CodecResult<Option<(std::ops::Range<usize>, bool, u64, bool)>> {
        if !self.at_eof {
            return Ok(None);
        }
        let dec = &mut *self.dec;
        let pending = dec.buf.len() - dec.start;
        if framing == Framing::Ndjson {
            // A trailing '\r' was not counted while it could start a "\r\n"; at the end it is content.
            if pending > dec.max_frame_size {
                return Err(dec.too_large(pending as u64));
            }
            let range = dec.start..dec.buf.len();
            let offset = dec.offset;
            dec.start = dec.buf.len();
            dec.offset += pending as u64;
            dec.scanned = 0;
            let line = &dec.buf[range.clone()];
            if is_blank(line) {
                return Ok(None);
            }
            return Ok(Some((range, true, offset, true)));
        }
        Err(CodecError::framing(
            format!("input ended mid-frame, {pending} bytes buffered"),
            dec.offset,
        ))
    }
}

impl Drop for Frames<'_, '_> {
    fn drop(&mut self) {
        let dec = &mut *self.dec;
        if self.at_eof {
            dec.eof = true;
        }
        if dec.poisoned.is_some() {
            return;
        }
        if dec.start == dec.buf.len() {
            release(&mut dec.buf);
            dec.start = 0;
        }
        // Frames not pulled (the caller stopped early): keep the bytes so nothing is lost.
        let rest = &self.input[self.pos..];
        if !rest.is_empty() {
            if let Err(error) = grow(&mut dec.buf, rest.len(), None, dec.offset) {
                dec.poisoned = Some(error);
                dec.discard();
                return;
            }
            dec.buf.extend_from_slice(rest);
        }
    }
}

/// Where the frame header written by [`begin_frame`] sits, so [`end_frame`] can fill it in.
#[derive(Debug, Clone, Copy)]
pub struct FrameMark {
    /// Where the frame begins in `out`: truncate to it to drop a failed frame.
    pub header: usize,
    payload: usize,
}

/// Room for `Content-Length: ` + 20 digits + `\r\n\r\n`.
const CL_RESERVE: usize = 16 + 20 + 4;

/// Start a frame at the end of `out`; write the payload after it, then call [`end_frame`].
pub fn begin_frame(out: &mut Vec<u8>, framing: Framing) -> FrameMark {
    let header = out.len();
    match framing {
        Framing::Ndjson => {}
        Framing::Length => out.extend_from_slice(&[0; 4]),
        Framing::ContentLength => out.resize(header + CL_RESERVE, 0),
    }
    FrameMark {
        header,
        payload: out.len(),
    }
}

/// Finish the frame begun at `mark`: check the payload size, write the header or terminator.
/// On error `out` is truncated back to where the frame began.
pub fn end_frame(out: &mut Vec<u8>, framing: Framing, mark: FrameMark, max_frame_size: usize) -> CodecResult<()> {
    let size = out.len() - mark.payload;
    if size > max_frame_size || (framing == Framing::Length && u32::try_from(size).is_err()) {
        out.truncate(mark.header);
        return Err(CodecError::usage(format!(
            "message of {size} bytes exceeds max_frame_size {max_frame_size}"
        )));
    }
    match framing {
        Framing::Ndjson => out.push(b'\n'),
        Framing::Length => {
            out[mark.header..mark.payload].copy_from_slice(&(size as u32).to_be_bytes());
        }
        Framing::ContentLength => {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(size).as_bytes();
            let header_len = 16 + digits.len() + 4;
            let at = mark.payload - header_len;
            let header = &mut out[at..mark.payload];
            header[..16].copy_from_slice(b"Content-Length: ");
            header[16..16 + digits.len()].copy_from_slice(digits);
            header[16 + digits.len()..].copy_from_slice(b"\r\n\r\n");
            // Close the gap between the reserved room and the header actually written.
            out.copy_within(at.., mark.header);
            out.truncate(out.len() - (at - mark.header));
        }
    }
    Ok(())
}

/// Frame one already-serialized payload. Under ndjson the caller checks it holds no raw `\n`.
pub fn write_frame(out: &mut Vec<u8>, framing: Framing, payload: &[u8], max_frame_size: usize) -> CodecResult<()> {
    if framing == Framing::ContentLength {
        // Header first: the size is known, no room to reserve and move.
        if payload.len() > max_frame_size {
            return Err(CodecError::usage(format!(
                "message of {} bytes exceeds max_frame_size {max_frame_size}",
                payload.len()
            )));
        }
        let mut digits = itoa::Buffer::new();
        out.reserve(payload.len() + 40);
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(digits.format(payload.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(payload);
        return Ok(());
    }
    out.reserve(payload.len() + 5);
    let mark = begin_frame(out, framing);
    out.extend_from_slice(payload);
    end_frame(out, framing, mark, max_frame_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a decoder turns a stream into: frames (payload as text, `!` suffix when unterminated) or
    /// the error, as `"Kind @ offset"`.
    fn run(framing: Option<Framing>, max: usize, chunks: &[&[u8]]) -> Result<Vec<String>, String> {
        let mut dec = FrameDecoder::new(framing, max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut frames = dec.feed(chunk).map_err(describe)?;
            while let Some(frame) = frames.next_frame().map_err(describe)? {
                let mut text = String::from_utf8_lossy(frame.payload).into_owned();
                if frame.unterminated {
                    text.push('!');
                }
                out.push(format!("{text}@{}", frame.offset));
            }
        }
        Ok(out)
    }

    fn describe(e: CodecError) -> String {
        match e {
            CodecError::FrameTooLarge { size, offset, .. } => format!("FrameTooLarge {size} @ {offset}"),
            CodecError::Framing { message, offset } => format!("Framing {message} @ {offset}"),
            other => other.to_string(),
        }
    }

    fn whole_and_bytewise(framing: Option<Framing>, max: usize, stream: &[u8]) -> Result<Vec<String>, String> {
        let whole = run(framing, max, &[stream, b""]);
        let mut chunks: Vec<&[u8]> = stream.chunks(1).collect();
        chunks.push(b"");
        let bytewise = run(framing, max, &chunks);
        assert_eq!(whole, bytewise, "whole vs one byte at a time");
        whole
    }

    macro_rules! framing_tests {
        ($($name:ident: $framing:expr, $max:expr, $input:expr => $expected:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    let expected: Result<Vec<&str>, &str> = $expected;
                    let expected = expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
                        .map_err(String::from);
                    assert_eq!(whole_and_bytewise($framing, $max, $input), expected);
                }
            )*
        };
    }

    const ND: Option<Framing> = Some(Framing::Ndjson);
    const LEN: Option<Framing> = Some(Framing::Length);
    const CL: Option<Framing> = Some(Framing::ContentLength);
    const AUTO: Option<Framing> = None;

    framing_tests! {
        nd_lines: ND, 100, b"{}\n[1]\n" => Ok(vec!["{}@0", "[1]@3"]);
        nd_crlf: ND, 100, b"{}\r\n{}\n" => Ok(vec!["{}@0", "{}@4"]);
        nd_blank_lines_skipped: ND, 100, b"\n  \r\n\t\n{}\n" => Ok(vec!["{}@7"]);
        nd_unterminated_tail: ND, 100, b"{}\n{\"a\":1}" => Ok(vec!["{}@0", "{\"a\":1}!@3"]);
        nd_blank_tail_dropped: ND, 100, b"{}\n  " => Ok(vec!["{}@0"]);
        nd_exact_max: ND, 4, b"1234\n" => Ok(vec!["1234@0"]);
        nd_exact_max_crlf: ND, 4, b"1234\r\n" => Ok(vec!["1234@0"]);
        nd_too_long: ND, 4, b"{}\n12345\n" => Err("FrameTooLarge 5 @ 3");
        len_frames: LEN, 100, b"\0\0\0\x02{}\0\0\0\x03[1]" => Ok(vec!["{}@0", "[1]@6"]);
        len_empty_payload: LEN, 100, b"\0\0\0\0" => Ok(vec!["@0"]);
        len_too_large: LEN, 4, b"\0\0\0\x02{}\0\0\0\x05" => Err("FrameTooLarge 5 @ 6");
        len_mid_frame: LEN, 100, b"\0\0\0\x05{}" => Err("Framing input ended mid-frame, 6 bytes buffered @ 0");
        len_mid_header: LEN, 100, b"\0\0" => Err("Framing input ended mid-frame, 2 bytes buffered @ 0");
        cl_frames: CL, 100, b"Content-Length: 2\r\n\r\n{}content-length:3\r\nContent-Type: x\r\n\r\n[1]"
            => Ok(vec!["{}@0", "[1]@23"]);
        cl_missing: CL, 100, b"Content-Type: x\r\n\r\n{}" => Err("Framing missing Content-Length header @ 0");
        cl_repeated: CL, 100, b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
            => Err("Framing repeated Content-Length header @ 19");
        cl_not_decimal: CL, 100, b"Content-Length: -2\r\n\r\n{}"
            => Err("Framing Content-Length is not a decimal number: \"-2\" @ 0");
        cl_bare_lf: CL, 100, b"Content-Type: x\nContent-Length: 2\r\n\r\n{}"
            => Err("Framing header line not ended by \\r\\n @ 15");
        cl_bare_lf_reported_at_once: CL, 100, b"Content-Length: 2\n\n{}"
            => Err("Framing header line not ended by \\r\\n @ 17");
        cl_too_large: CL, 10, b"Content-Length: 11\r\n\r\n" => Err("FrameTooLarge 11 @ 0");
        cl_huge_value: CL, 10, b"Content-Length: 99999999999999999999999\r\n\r\n" => Err("FrameTooLarge 18446744073709551615 @ 0");
        auto_ndjson: AUTO, 100, b"{}\n" => Ok(vec!["{}@0"]);
        auto_content_length: AUTO, 100, b"Content-Length: 2\r\n\r\n{}" => Ok(vec!["{}@0"]);
        auto_length: AUTO, 100, b"\0\0\0\x02{}" => Ok(vec!["{}@0"]);
    }

    #[test]
    fn header_block_limit() {
        let mut stream = b"X-Pad: ".to_vec();
        stream.resize(HEADER_LIMIT + 10, b'p');
        let result = run(CL, 100, &[&stream]);
        assert_eq!(
            result,
            Err("Framing content-length header block exceeds 4096 bytes @ 0".to_string())
        );
    }

    #[test]
    fn ndjson_refuses_long_line_before_newline() {
        // No '\n' yet: refused as soon as more than max bytes are buffered.
        assert_eq!(run(ND, 8, &[b"123456789"]), Err("FrameTooLarge 9 @ 0".to_string()));
        assert_eq!(run(ND, 8, &[b"12345678"]), Ok(vec![]));
    }

    #[test]
    fn fuzz_findings_do_not_depend_on_the_reads() {
        // A bad Content-Length value on line 1 and a bare LF on line 2, the terminator later: the first fault
        // (the LF, found as soon as it arrives when bytes trickle in) whether or not the block came in one read.
        let stream = b"Content-Length:\x00\xb409\r\n2\n{}\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            whole_and_bytewise(CL, 1 << 20, stream),
            Err("Framing header line not ended by \\r\\n @ 22".to_string())
        );
        // An unterminated last ndjson line ending in '\r': the '\r' is content, and counts against the limit.
        let mut line = vec![b'1'; 8];
        line.push(b'\r');
        assert_eq!(whole_and_bytewise(ND, 8, &line), Err("FrameTooLarge 9 @ 0".to_string()));
    }

    #[test]
    fn poisoned_after_fatal_error_and_after_eof() {
        let mut dec = FrameDecoder::new(LEN, 4);
        assert!(dec
            .feed(b"\0\0\0\x09")
            .and_then(|mut f| f.next_frame().map(|_| ()))
            .is_err());
        assert!(dec.feed(b"").is_err());
        let mut dec = FrameDecoder::new(ND, 100);
        drop(dec.feed(b""));
        let error = dec.feed(b"{}\n").map(|_| ()).err();
        assert_eq!(error, Some(CodecError::framing("data fed after end of input", 0)));
    }

    /// Feed one chunk and pull every frame; the payload sizes.
    fn pump(dec: &mut FrameDecoder, chunk: &[u8]) -> Result<Vec<usize>, String> {
        let mut frames = dec.feed(chunk).map_err(describe)?;
        let mut sizes = Vec::new();
        while let Some(frame) = frames.next_frame().map_err(describe)? {
            sizes.push(frame.payload.len());
        }
        Ok(sizes)
    }

    #[test]
    fn the_buffer_grows_with_arrived_bytes_not_with_the_header() {
        let mut dec = FrameDecoder::new(LEN, 1 << 20);
        let mut stream = (1_000_000u32).to_be_bytes().to_vec();
        stream.resize(4 + 1_000_000, b'7');
        assert_eq!(pump(&mut dec, &stream[..10]), Ok(vec![]));
        assert_eq!(dec.buffered(), 10);
        assert!(
            dec.capacity() < 64 * 1024,
            "a header alone reserves nothing near its announced size"
        );
        let mut reallocations = 0;
        let mut capacity = dec.capacity();
        for chunk in stream[10..1_000_000].chunks(4096) {
            assert_eq!(pump(&mut dec, chunk), Ok(vec![]));
            assert!(
                dec.capacity() <= 2 * dec.buffered().max(GROW_MIN),
                "at most twice what arrived"
            );
            assert!(dec.capacity() <= 1_000_004, "never past the frame's end");
            reallocations += usize::from(dec.capacity() != capacity);
            capacity = dec.capacity();
        }
        assert!(reallocations <= 10, "amortised growth: {reallocations} reallocations");
        assert_eq!(pump(&mut dec, &stream[1_000_000..]), Ok(vec![1_000_000]));
        assert_eq!(dec.buffered(), 0);
        // The next read releases the big buffer: an idle connection keeps at most BUF_KEEP_MAX.
        assert_eq!(pump(&mut dec, &[0, 0, 0, 2, b'{']), Ok(vec![]));
        assert!(dec.capacity() <= BUF_KEEP_MAX);
    }

    #[test]
    fn a_frame_handed_out_whole_releases_the_buffer() {
        for framing in [ND, LEN] {
            let mut dec = FrameDecoder::new(framing, 4 << 20);
            let payload = vec![b'1'; 1_000_000];
            let stream = encode_all(framing.unwrap_or(Framing::Ndjson), &[payload]);
            for chunk in stream.chunks(256 * 1024) {
                let _ = pump(&mut dec, chunk);
            }
            assert_eq!(dec.buffered(), 0);
            assert!(dec.capacity() <= BUF_KEEP_MAX, "{framing:?}: {}", dec.capacity());
        }
    }

    #[test]
    fn ndjson_scans_each_byte_once() {
        // A long line fed in small chunks: `scanned` keeps pace with what is buffered.
        let mut dec = FrameDecoder::new(ND, 1 << 20);
        let line = vec![b'x'; 50_000];
        for chunk in line.chunks(1000) {
            assert_eq!(pump(&mut dec, chunk), Ok(vec![]));
            assert_eq!(dec.scanned, dec.buffered());
        }
        assert_eq!(pump(&mut dec, b"\n{}\n"), Ok(vec![50_000, 2]));
    }

    fn encode_all(framing: Framing, payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            if i % 2 == 0 {
                let mark = begin_frame(&mut out, framing);
                out.extend_from_slice(p);
                assert!(end_frame(&mut out, framing, mark, 1 << 20).is_ok());
            } else {
                assert!(write_frame(&mut out, framing, p, 1 << 20).is_ok());
            }
        }
        out
    }

    #[test]
    fn encoder_writes_the_spec_bytes() {
        assert_eq!(encode_all(Framing::Ndjson, &[b"{}".to_vec()]), b"{}\n");
        assert_eq!(encode_all(Framing::Length, &[b"{}".to_vec()]), b"\0\0\0\x02{}");
        assert_eq!(
            encode_all(Framing::ContentLength, &[b"{}".to_vec(), b"[1]".to_vec()]),
            b"Content-Length: 2\r\n\r\n{}Content-Length: 3\r\n\r\n[1]"
        );
        let mut out = b"keep".to_vec();
        let mark = begin_frame(&mut out, Framing::Length);
        out.extend_from_slice(b"12345");
        assert!(end_frame(&mut out, Framing::Length, mark, 4).is_err());
        assert_eq!(out, b"keep");
    }

    fn payload() -> impl Strategy<Value = Vec<u8>> {
        // Non-blank ndjson-safe payloads: a '{' then bytes without '\n'.
        proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..40).prop_map(|mut v| {
            v.insert(0, b'{');
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn round_trip_any_split(
            payloads in proptest::collection::vec(payload(), 0..12),
            splits in proptest::collection::vec(0usize..400, 0..8),
            which in 0usize..3,
        ) {
            let framing = [Framing::Ndjson, Framing::Length, Framing::ContentLength][which];
            let stream = encode_all(framing, &payloads);
            let mut cuts: Vec<usize> = splits.into_iter().map(|s| s.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for cut in cuts {
                if cut > at {
                    chunks.push(&stream[at..cut]);
                    at = cut;
                }
            }
            chunks.push(&stream[at..]);
            chunks.push(b"");
            let mut dec = FrameDecoder::new(Some(framing), 1 << 20);
            let mut got: Vec<Vec<u8>> = Vec::new();
            for chunk in chunks {
                let mut frames = dec.feed(chunk).map_err(describe);
                prop_assert!(frames.is_ok());
                if let Ok(frames) = frames.as_mut() {
                    while let Ok(Some(frame)) = frames.next_frame() {
                        let mut p = frame.payload.to_vec();
                        if framing == Framing::Ndjson {
                            // The reader strips one trailing '\r' (CRLF).
                            if payloads.get(got.len()).is_some_and(|orig| orig.ends_with(b"\r")) {
                                p.push(b'\r');
                            }
                        }
                        got.push(p);
                    }
                }
            }
            let expected: Vec<Vec<u8>> = payloads
                .iter()
                .filter(|p| framing != Framing::Ndjson || !is_blank(p))
                .cloned()
                .collect();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(dec.stream_position(), stream.len() as u64);
        }
    }
}
