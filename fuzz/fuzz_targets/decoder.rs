//! The whole receive path without Python: frames of any framing, envelopes, records, then the JSON parser the
//! binding builds Python objects with (jiter). Any bytes end in frames, items or one error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcwire_core::envelope::{split_records, Envelope, EnvelopeConfig, MAGIC};
use rpcwire_core::framing::{FrameDecoder, Framing};

fuzz_target!(|data: &[u8]| {
    let [pick, stream @ ..] = data else { return };
    let framing = match pick % 4 {
        0 => Some(Framing::Ndjson),
        1 => Some(Framing::Length),
        2 => Some(Framing::ContentLength),
        _ => None,
    };
    let max = 1 << 20;
    let Ok(mut envelope) = Envelope::new(EnvelopeConfig {
        compression: None,
        compress_min_size: 0,
        keyring: None,
        max_frame_size: max,
        max_expansion: 4096,
        handshake: None,
    }) else {
        return;
    };
    let mut dec = FrameDecoder::new(framing, max);
    for chunk in [stream, &[][..]] {
        let Ok(mut frames) = dec.feed(chunk) else { return };
        while let Ok(Some(frame)) = frames.next_frame() {
            let payload = frame.payload;
            if payload.first() == Some(&MAGIC) {
                match envelope.open(payload, frame.offset) {
                    Ok(opened) if opened.multi => {
                        for message in split_records(&opened.body).flatten() {
                            let _ = jiter::JsonValue::parse(message, false);
                        }
                    }
                    Ok(opened) => {
                        let _ = jiter::JsonValue::parse(&opened.body, false);
                    }
                    Err(_) => {}
                }
            } else {
                let _ = jiter::JsonValue::parse(payload, false);
            }
        }
    }
});
