//! # rpcwire-core
//!
//! The sans-IO wire codec of [rpcwire](https://github.com/rpcwire/rpcwire): bytes in, frames and messages out;
//! messages in, bytes out. No I/O, no event loop, no clock; randomness only for nonces.
//!
//! - [`framing`]: the three framings (4-byte length prefix, newline-delimited JSON as MCP stdio speaks it,
//!   LSP's `Content-Length` headers) with an incremental, linear-time decoder whose buffer grows with the
//!   bytes that arrive.
//! - [`envelope`]: the binary envelope inside `length`/`content-length` payloads: per-frame compression
//!   ([`compress`]: lz4 frame, brotli) and AES-256-GCM sealing ([`crypto`]) with per-direction sequence
//!   numbers.
//! - [`jsonrpc`]: the JSON-RPC 2.0 rules, over any decoded representation ([`jsonrpc::JsonNode`]).
//! - [`errors`]: the one error type; fatal errors end a stream, item errors describe one message.
//!
//! The wire format is specified byte by byte in `docs/wire-format.md` of the repository; the receive budgets
//! (`max_frame_size`, `max_batch`, `max_expansion`) in `docs/security.md`.
//!
//! ```
//! use rpcwire_core::framing::{begin_frame, end_frame, FrameDecoder, Framing};
//!
//! let mut wire = Vec::new();
//! let mark = begin_frame(&mut wire, Framing::Length);
//! wire.extend_from_slice(br#"{"jsonrpc":"2.0","method":"ping"}"#);
//! end_frame(&mut wire, Framing::Length, mark, 1 << 20).unwrap();
//!
//! let mut decoder = FrameDecoder::new(Some(Framing::Length), 1 << 20);
//! let mut frames = decoder.feed(&wire[..7]).unwrap(); // half a frame: nothing yet
//! assert!(frames.next_frame().unwrap().is_none());
//! drop(frames);
//! let mut frames = decoder.feed(&wire[7..]).unwrap();
//! let frame = frames.next_frame().unwrap().unwrap();
//! assert_eq!(frame.payload, br#"{"jsonrpc":"2.0","method":"ping"}"#);
//! ```
pub mod compress;
pub mod crypto;
pub mod envelope;
pub mod errors;
pub mod framing;
pub mod jsonrpc;
pub mod pull;
pub mod session;
