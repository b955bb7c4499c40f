//! Per-frame compression (docs/wire-format.md 3.1): the lz4 frame format and brotli streams.
//!
//! Compression appends to a caller-owned buffer, so the envelope can compress straight after its header.
//! Decompression is streamed and stops as soon as the output would exceed the limit (`max_frame_size`), so a
//! small frame cannot inflate without bound: memory stays below `limit + one chunk` whatever the input claims.
use std::io::{Read, Write};

use crate::errors::{CodecError, CodecResult};

/// Brotli quality rpcwire writes (docs/wire-format.md 3.1): a good ratio at lz4-like setup cost for JSON.
pub const BROTLI_QUALITY: u32 = 4;
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

    /// Decompress `input`, refusing (`FrameTooLarge`) as soon as the output would exceed `limit` bytes.
    /// Input that is not a valid stream is `CodecError::Parse`. `offset` locates the frame in the stream.
    pub fn decompress(self, input: &[u8], limit: usize, offset: u64) -> CodecResult<Vec<u8>> {
        match self {
            Self::Lz4 => {
                if input.len() < 4 || input[..4] != [0x04, 0x22, 0x4D, 0x18] {
                    return Err(CodecError::parse("lz4 body does not start with the lz4 frame magic"));
                }
                read_bounded(
                    lz4_flex::frame::FrameDecoder::new(input),
                    input.len(),
                    limit,
                    offset,
                    "lz4",
                )
            }
            Self::Brotli => read_bounded(
                brotli::Decompressor::new(input, 4096),
                input.len(),
                limit,
                offset,
                "brotli",
            ),
            Self::Zstd => Err(CodecError::framing("zstd not supported by this build", offset)),
        }
    }
}

/// Read `reader` to its end into a new buffer of at most `limit` bytes.
fn read_bounded(reader: impl Read, input_len: usize, limit: usize, offset: u64, what: &str) -> CodecResult<Vec<u8>> {
    // Start with a guess proportional to the input (JSON compresses 2-10x), never more than the limit.
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).clamp(64, limit.max(64)));
    let cap = (limit as u64).saturating_add(1);
    let mut bounded = reader.take(cap);
    match bounded.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) => return Err(CodecError::parse(format!("{what} body does not decompress: {e}"))),
    }
    if out.len() > limit {
        return Err(CodecError::FrameTooLarge {
            size: out.len() as u64,
            limit: limit as u64,
            offset,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
                assert_eq!(c.decompress(&z, n, 0), Ok(data.clone()), "{c:?} {n}");
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
            assert!(c.decompress(&z, 10_000, 0).is_ok());
            assert_eq!(
                c.decompress(&z, 9_999, 42),
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
            let err = c.decompress(&z, 1 << 20, 0);
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
                matches!(c.decompress(&z, 1 << 20, 0), Err(CodecError::Parse { .. })),
                "{c:?} truncated"
            );
            assert!(matches!(
                c.decompress(b"not compressed at all", 1 << 20, 0),
                Err(CodecError::Parse { .. })
            ));
        }
    }
}
