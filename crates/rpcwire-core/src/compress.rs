//! Per-frame compression (docs/wire-format.md 3.1): the lz4 frame format and brotli streams.
//!
//! Compression appends to a caller-owned buffer, so the envelope can compress straight after its header.
//! Decompression is streamed and stops as soon as the output would exceed the limit (`max_frame_size`), so a
//! small frame cannot inflate without bound: memory stays below `limit + one chunk` whatever the input claims.
use std::io::{Read, Write};

use crate::errors::{CodecError, CodecResult};

/// Brotli quality rpcwire writes (docs/wire-format.md 3.1): a good ratio at lz4-like setup cost for JSON.
pub const BROTLI_QUALITY: u32 = 4;
/// Default `max_expansion`: decompressed bytes a receiver accepts per compressed byte (docs/security.md).
/// Measured at rpcwire's settings: source text 2-4x, tool lists and tables 37-85x, repetitive log text 140x
/// (lz4) and 1500x (brotli); lz4 cannot pass ~255x. A body that compresses better than this is sent
/// uncompressed. At 4096 a peer's byte costs at most 4 KiB of decompression and parsing.
pub const DEFAULT_MAX_EXPANSION: usize = 4096;
/// Brotli window (log2) rpcwire writes.
pub const BROTLI_LGWIN: u32 = 22;

/// The compression a frame uses: the value of envelope flags bits 0-1 (docs/wire-format.md 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Lz4 = 1,
    Brotli = 2,
    Zstd = 3,
}

impl Compression {
    /// Parse the Python-facing name (`"lz4"`, `"brotli"`, `"zstd"`).
    pub fn from_name(name: &str) -> CodecResult<Self> {
        match name {
            "lz4" => Ok(Self::Lz4),
            "brotli" => Ok(Self::Brotli),
            "zstd" => Err(CodecError::usage(
                "compression 'zstd' is not supported by this build: expected 'lz4' or 'brotli'",
            )),
            other => Err(CodecError::usage(format!(
                "unknown compression {other:?}: expected 'lz4' or 'brotli'"
            ))),
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Lz4 => "lz4",
            Self::Brotli => "brotli",
            Self::Zstd => "zstd",
        }
    }

    /// The flags bits 0-1 value (`0` is "no compression" and has no variant).
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The compression named by flags bits 0-1; `None` for 0. Code 3 (zstd) is answered with a `FramingError`
    /// because this build has no zstd.
    pub fn from_code(code: u8, offset: u64) -> CodecResult<Option<Self>> {
        match code {
            0 => Ok(None),
            1 => Ok(Some(Self::Lz4)),
            2 => Ok(Some(Self::Brotli)),
            3 => Err(CodecError::framing("zstd not supported by this build", offset)),
            _ => Err(CodecError::framing(format!("invalid compression code {code}"), offset)),
        }
    }

    /// Compress `input`, appending the compressed stream to `out`.
    pub fn compress_into(self, input: &[u8], out: &mut Vec<u8>) -> CodecResult<()> {
        match self {
            Self::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .content_size(Some(input.len() as u64));
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
                enc.write_all(input)
                    .map_err(|e| CodecError::usage(format!("lz4 compression failed: {e}")))?;
                enc.finish()
                    .map_err(|e| CodecError::usage(format!("lz4 compression failed: {e}")))?;
                Ok(())
            }
            Self::Brotli => {
                let mut w = brotli::CompressorWriter::new(out, 4096, BROTLI_QUALITY, BROTLI_LGWIN);
                w.write_all(input)
                    .map_err(|e| CodecError::usage(format!("brotli compression failed: {e}")))?;
                // into_inner finishes the stream (a Vec sink cannot fail).
                let _ = w.into_inner();
                Ok(())
            }
            Self::Zstd => Err(CodecError::usage("zstd not supported by this build")),
        }
    }

    /// Compress `input` into a new buffer.
    pub fn compress(self, input: &[u8]) -> CodecResult<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        self.compress_into(input, &mut out)?;
        Ok(out)
    }

    /// Decompress `input` within `limits`: the output may not exceed `max_frame_size` (`FrameTooLarge`) nor
    /// `max_expansion` times the input's size (`Expansion`), and decoding stops as soon as it would, so a bomb
    /// costs no more than the output allowed. Input that is not a valid stream is `CodecError::Parse`. `offset`
    /// locates the frame in the stream.
    pub fn decompress(self, input: &[u8], limits: Limits, offset: u64) -> CodecResult<Vec<u8>> {
        match self {
            Self::Lz4 => {
                if input.len() < 4 || input[..4] != [0x04, 0x22, 0x4D, 0x18] {
                    return Err(CodecError::parse("lz4 body does not start with the lz4 frame magic"));
                }
                read_bounded(
                    lz4_flex::frame::FrameDecoder::new(input),
                    input.len(),
                    limits,
                    offset,
                    "lz4",
                )
            }
            Self::Brotli => read_bounded(
                brotli::Decompressor::new(input, 4096),
                input.len(),
                limits,
                offset,
                "brotli",
            ),
            Self::Zstd => Err(CodecError::framing("zstd not supported by this build", offset)),
        }
    }
}

/// What a receiver lets one compressed body grow to (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest decompressed body (the codec's `max_frame_size`).
    pub max_frame_size: usize,
    /// Decompressed bytes allowed per compressed byte (the codec's `max_expansion`).
    pub max_expansion: usize,
}

impl Limits {
    /// The most output a compressed body of `input_len` bytes may produce.
    #[must_use]
    pub fn output_limit(self, input_len: usize) -> usize {
        self.max_frame_size.min(input_len.saturating_mul(self.max_expansion))
    }

    /// True when a sender should keep `compressed_len` bytes for a body of `body_len` bytes: smaller than the
    /// body, and within what a receiver with these limits accepts (a body that compresses better than
    /// `max_expansion` goes uncompressed, so rpcwire never writes a frame its own default refuses).
    #[must_use]
    pub fn keeps(self, compressed_len: usize, body_len: usize) -> bool {
        compressed_len < body_len && body_len <= compressed_len.saturating_mul(self.max_expansion)
    }

    #[cold]
    #[inline(never)]
    fn refusal(self, input_len: usize, produced: usize, offset: u64) -> CodecError {
        if input_len.saturating_mul(self.max_expansion) < self.max_frame_size {
            CodecError::Expansion {
                wire: input_len as u64,
                max_expansion: self.max_expansion as u64,
                offset,
            }
        } else {
            CodecError::FrameTooLarge {
                size: produced as u64,
                limit: self.max_frame_size as u64,
                offset,
            }
        }
    }
}

/// Smallest step a decompression buffer grows by.
const GROW_MIN: usize = 32 * 1024;

/// Read `reader` to its end into a new buffer of at most `limits.output_limit(input_len)` bytes. The buffer
/// grows with the output actually produced, by fallible allocation: an allocator that refuses is an
/// `OutOfMemory` error, never an abort.
fn read_bounded(
    mut reader: impl Read,
    input_len: usize,
    limits: Limits,
    offset: u64,
    what: &str,
) -> CodecResult<Vec<u8>> {
    let limit = limits.output_limit(input_len);
    // One byte past the limit tells "exactly the limit" from "over it".
    let ceiling = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() {
            if out.len() >= ceiling {
                return Err(limits.refusal(input_len, out.len(), offset));
            }
            // Start near what JSON usually inflates to (2-10x), then double; never past the ceiling.
            let step = if out.capacity() == 0 {
                input_len.saturating_mul(4)
            } else {
                out.capacity()
            };
            let step = step.max(GROW_MIN).min(ceiling - out.len());
            out.try_reserve_exact(step)
                .map_err(|_| CodecError::out_of_memory(out.len() + step, offset))?;
        }
        // Reading at most the spare capacity, read_to_end never grows the buffer itself.
        let spare = (out.capacity() - out.len()) as u64;
        match (&mut reader).take(spare).read_to_end(&mut out) {
            Ok(n) if (n as u64) < spare => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => {
                return Err(CodecError::out_of_memory(out.len(), offset))
            }
            Err(e) => return Err(CodecError::parse(format!("{what} body does not decompress: {e}"))),
        }
    }
    if out.len() > limit {
        return Err(limits.refusal(input_len, out.len(), offset));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_frame_size: usize, max_expansion: usize) -> Limits {
        Limits {
            max_frame_size,
            max_expansion,
        }
    }

    #[test]
    fn a_body_that_inflates_past_max_expansion_is_refused() {
        // 16 MiB of whitespace: a few dozen bytes of brotli, a few KiB of lz4.
        let spaces = vec![b' '; 16 << 20];
        for c in [Compression::Lz4, Compression::Brotli] {
            let z = c.compress(&spaces).unwrap_or_default();
            assert_eq!(
                c.decompress(&z, limits(16 << 20, 64), 9),
                Err(CodecError::Expansion {
                    wire: z.len() as u64,
                    max_expansion: 64,
                    offset: 9
                }),
                "{c:?}"
            );
            // Exactly max_expansion times the input is accepted.
            let data = sample(6400);
            let z = c.compress(&data).unwrap_or_default();
            let ratio = data.len().div_ceil(z.len());
            assert!(c.decompress(&z, limits(1 << 20, ratio), 0).is_ok(), "{c:?}");
            assert!(
                c.decompress(&z, limits(1 << 20, data.len() / z.len() - 1), 0).is_err(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn senders_keep_only_what_receivers_accept() {
        let l = limits(1 << 20, 64);
        assert!(l.keeps(10, 640));
        assert!(!l.keeps(10, 641));
        assert!(!l.keeps(10, 10));
        assert!(l.keeps(9, 10));
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut i = 0u32;
        while v.len() < n {
            v.extend_from_slice(format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call"}}"#).as_bytes());
            i += 1;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn names_round_trip_and_zstd_is_refused() {
        for c in [Compression::Lz4, Compression::Brotli] {
            assert_eq!(Compression::from_name(c.name()), Ok(c));
            assert_eq!(Compression::from_code(c.code(), 0), Ok(Some(c)));
        }
        assert!(matches!(Compression::from_name("zstd"), Err(CodecError::Usage(_))));
        assert!(matches!(Compression::from_name("gzip"), Err(CodecError::Usage(_))));
        assert_eq!(Compression::from_code(0, 0), Ok(None));
        assert!(matches!(
            Compression::from_code(3, 5),
            Err(CodecError::Framing { offset: 5, .. })
        ));
    }

    #[test]
    fn round_trips_at_many_sizes() {
        for c in [Compression::Lz4, Compression::Brotli] {
            for n in [0, 1, 100, 70_000, 300_000] {
                let data = sample(n);
                let z = c.compress(&data).unwrap_or_default();
                assert_eq!(c.decompress(&z, limits(n, 1 << 20), 0), Ok(data.clone()), "{c:?} {n}");
                if n > 1000 {
                    assert!(z.len() < n / 2, "{c:?} compresses JSON");
                }
            }
        }
    }

    #[test]
    fn lz4_writes_the_frame_magic() {
        let z = Compression::Lz4.compress(b"hello").unwrap_or_default();
        assert_eq!(&z[..4], &[0x04, 0x22, 0x4D, 0x18]);
    }

    #[test]
    fn output_over_the_limit_is_frame_too_large() {
        for c in [Compression::Lz4, Compression::Brotli] {
            let data = sample(10_000);
            let z = c.compress(&data).unwrap_or_default();
            assert!(c.decompress(&z, limits(10_000, 1 << 20), 0).is_ok());
            assert_eq!(
                c.decompress(&z, limits(9_999, 1 << 20), 42),
                Err(CodecError::FrameTooLarge {
                    size: 10_000,
                    limit: 9_999,
                    offset: 42
                })
            );
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compresses to a few KiB (brotli) / ~250 KiB (lz4); decoding stops at 1 MiB.
        let zeros = vec![0u8; 64 << 20];
        for c in [Compression::Lz4, Compression::Brotli] {
            let z = c.compress(&zeros).unwrap_or_default();
            assert!(z.len() < 1 << 20);
            let err = c.decompress(&z, limits(1 << 20, usize::MAX), 0);
            assert!(
                matches!(err, Err(CodecError::FrameTooLarge { limit, .. }) if limit == 1 << 20),
                "{c:?}"
            );
        }
    }

    #[test]
    fn corrupt_input_is_a_parse_error() {
        for c in [Compression::Lz4, Compression::Brotli] {
            let mut z = c.compress(&sample(5000)).unwrap_or_default();
            let mid = z.len() / 2;
            z.truncate(mid);
            assert!(
                matches!(
                    c.decompress(&z, limits(1 << 20, 1 << 20), 0),
                    Err(CodecError::Parse { .. })
                ),
                "{c:?} truncated"
            );
            assert!(matches!(
                c.decompress(b"not compressed at all", limits(1 << 20, 1 << 20), 0),
                Err(CodecError::Parse { .. })
            ));
        }
    }
}
