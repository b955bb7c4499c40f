//! Per-frame compression (being written: issue 3). The API is fixed; bodies are filled in by the envelope work.
use crate::errors::{CodecError, CodecResult};

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
}
