//! The frame splitter of every framing: any bytes, cut into reads anywhere, give the same frames or the same
//! error as the same bytes in one read, and never panic. Byte 0 picks the framing and `max_frame_size`, byte 1
//! the read size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcwire_core::errors::CodecError;
use rpcwire_core::framing::{FrameDecoder, Framing};

/// An error as the comparison sees it: an ndjson line's `FrameTooLarge` names the bytes seen so far, which
/// depends on the reads; its kind and offset do not.
fn key(error: &CodecError) -> String {
    match error {
        CodecError::FrameTooLarge { limit, offset, .. } => format!("FrameTooLarge {limit} @ {offset}"),
        other => other.to_string(),
    }
}

/// What one run yields: every frame (payload, offset, unterminated), then the error that ended it, if any.
type Outcome = (Vec<(Vec<u8>, u64, bool)>, Option<String>);

fn run(framing: Option<Framing>, max: usize, stream: &[u8], read: usize) -> Outcome {
    let mut dec = FrameDecoder::new(framing, max);
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = stream.chunks(read.max(1)).chain(std::iter::once(&[][..])).collect();
    for chunk in chunks {
        let mut frames = match dec.feed(chunk) {
            Ok(frames) => frames,
            Err(e) => return (out, Some(key(&e))),
        };
        loop {
            match frames.next_frame() {
                Ok(Some(f)) => out.push((f.payload.to_vec(), f.offset, f.unterminated)),
                Ok(None) => break,
                Err(e) => return (out, Some(key(&e))),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let [pick, read, stream @ ..] = data else { return };
    let framing = match pick % 4 {
        0 => Some(Framing::Ndjson),
        1 => Some(Framing::Length),
        2 => Some(Framing::ContentLength),
        _ => None,
    };
    let max = if pick & 0x80 != 0 { 16 << 20 } else { 64 };
    let whole = run(framing, max, stream, stream.len());
    let cut = run(framing, max, stream, usize::from(*read));
    assert_eq!(whole, cut, "cutting the input into reads changed the result");
    for (payload, _, _) in &whole.0 {
        assert!(payload.len() <= max);
    }
});
