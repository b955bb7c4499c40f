//! The one error type of the pure core. Python-facing code maps it in `py_errors.rs`, nowhere else.
use std::fmt;

/// Result alias used throughout the core (jiter's `JsonResult`, pydantic-core's `ValResult`).
pub type CodecResult<T> = Result<T, CodecError>;

/// Everything that can go wrong turning bytes into messages or messages into bytes.
///
/// `FrameTooLarge`, `Framing` and `Decrypt` end a stream: the codec that raised them is poisoned.
/// `Parse` and `InvalidRequest` describe one bad message: they become items and the stream goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// A frame declares, or grows to, more bytes than `max_frame_size` allows. Raised before any allocation.
    FrameTooLarge {
        /// The size the frame declared, or the bytes seen so far for text framings.
        size: u64,
        /// The configured `max_frame_size`.
        limit: u64,
        /// Byte offset in the input stream where the frame starts.
        offset: u64,
    },
    /// The byte stream cannot be split into frames any more: a bad header, an unknown envelope version,
    /// or the input ended in the middle of a frame.
    Framing {
        /// What was wrong, for humans.
        message: String,
        /// Byte offset in the input stream where the problem was found.
        offset: u64,
    },
    /// An encrypted frame failed authentication, named an unknown key, was replayed, reordered or reflected;
    /// or a frame without encryption reached a codec that has a keyring. Never contains key material.
    Decrypt {
        /// What was wrong, for humans.
        message: String,
    },
    /// A frame held bytes that are not a JSON text (JSON-RPC -32700). Returned as an item, not raised.
    Parse {
        /// Details: what the parser expected and where.
        detail: String,
    },
    /// Valid JSON that is not a JSON-RPC 2.0 message or batch (JSON-RPC -32600). Returned as an item.
    InvalidRequest {
        /// Details: which rule the message broke.
        detail: String,
    },
    /// A compressed body inflates past `max_expansion` times its own size (a decompression bomb). Checked while
    /// decompressing, so no more than the allowed output is ever produced.
    Expansion {
        /// The compressed body's size.
        wire: u64,
        /// The configured `max_expansion` (decoded bytes allowed per compressed byte).
        max_expansion: u64,
        /// Byte offset in the input stream where the frame starts.
        offset: u64,
    },
    /// Buffering a frame needed memory the allocator refused (a process under an address-space limit). The
    /// connection ends with this error instead of the process aborting.
    OutOfMemory {
        /// The bytes that could not be allocated.
        size: u64,
        /// Byte offset in the input stream of the frame being buffered.
        offset: u64,
    },
    /// A caller asked for something the codec cannot do (bad option, message unfit for the framing).
    Usage(String),
}

impl CodecError {
    /// True for the errors that end a stream (and poison the codec).
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::FrameTooLarge { .. }
                | Self::Framing { .. }
                | Self::Decrypt { .. }
                | Self::Expansion { .. }
                | Self::OutOfMemory { .. }
        )
    }

    /// The error for an allocation of `size` bytes that failed while buffering the frame at `offset`.
    #[cold]
    #[inline(never)]
    #[must_use]
    pub fn out_of_memory(size: usize, offset: u64) -> Self {
        Self::OutOfMemory {
            size: size as u64,
            offset,
        }
    }

    #[cold]
    #[inline(never)]
    pub fn framing(message: impl Into<String>, offset: u64) -> Self {
        Self::Framing {
            message: message.into(),
            offset,
        }
    }

    #[cold]
    #[inline(never)]
    pub fn decrypt(message: impl Into<String>) -> Self {
        Self::Decrypt {
            message: message.into(),
        }
    }

    #[cold]
    #[inline(never)]
    pub fn parse(detail: impl Into<String>) -> Self {
        Self::Parse { detail: detail.into() }
    }

    #[cold]
    #[inline(never)]
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::InvalidRequest { detail: detail.into() }
    }

    #[cold]
    #[inline(never)]
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameTooLarge { size, limit, offset } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds max_frame_size {limit} (at byte {offset})"
                )
            }
            Self::Framing { message, offset } => write!(f, "{message} (at byte {offset})"),
            Self::Expansion {
                wire,
                max_expansion,
                offset,
            } => write!(
                f,
                "compressed body of {wire} bytes inflates past {} bytes (max_expansion {max_expansion}) (at byte {offset})",
                wire.saturating_mul(*max_expansion)
            ),
            Self::OutOfMemory { size, offset } => write!(
                f,
                "out of memory: cannot allocate {size} bytes to buffer the frame (at byte {offset})"
            ),
            Self::Decrypt { message } | Self::Usage(message) => f.write_str(message),
            Self::Parse { detail } => write!(f, "Parse error: {detail}"),
            Self::InvalidRequest { detail } => write!(f, "Invalid Request: {detail}"),
        }
    }
}

impl std::error::Error for CodecError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_errors_are_the_stream_errors() {
        assert!(CodecError::framing("x", 0).is_fatal());
        assert!(CodecError::decrypt("x").is_fatal());
        assert!(CodecError::FrameTooLarge {
            size: 2,
            limit: 1,
            offset: 0
        }
        .is_fatal());
        assert!(CodecError::out_of_memory(1, 0).is_fatal());
        assert!(CodecError::Expansion {
            wire: 1,
            max_expansion: 2,
            offset: 0
        }
        .is_fatal());
        assert!(!CodecError::parse("x").is_fatal());
        assert!(!CodecError::invalid("x").is_fatal());
        assert!(!CodecError::usage("x").is_fatal());
    }

    #[test]
    fn display_names_sizes_and_offsets() {
        let e = CodecError::FrameTooLarge {
            size: 20,
            limit: 10,
            offset: 7,
        };
        assert_eq!(e.to_string(), "frame of 20 bytes exceeds max_frame_size 10 (at byte 7)");
        assert_eq!(CodecError::framing("bad", 3).to_string(), "bad (at byte 3)");
    }
}
