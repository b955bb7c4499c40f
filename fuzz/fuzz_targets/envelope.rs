//! The envelope opener: any payload, for a receiver with or without a keyring, is opened within the budgets
//! (`max_frame_size`, `max_expansion`) or refused, and never panics. Byte 0 picks the receiver: keyring or
//! not, the budgets, and (with a keyring) a session responder, whose first payload is read as a hello.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rpcwire_core::compress::Limits;
use rpcwire_core::crypto::KeyRing;
use rpcwire_core::envelope::{split_records, Envelope, EnvelopeConfig};
use rpcwire_core::session::Role;

fuzz_target!(|data: &[u8]| {
    let [pick, payload @ ..] = data else { return };
    let keyring = (pick & 1 == 1).then(|| Arc::new(KeyRing::new(vec![(1, [7u8; 32])], 1).expect("a valid key")));
    let limits = Limits {
        max_frame_size: if pick & 2 == 0 { 4096 } else { 16 << 20 },
        max_expansion: if pick & 4 == 0 { 4 } else { 4096 },
    };
    let handshake = (pick & 8 != 0 && keyring.is_some()).then_some(Role::Responder);
    let Ok(mut envelope) = Envelope::new(EnvelopeConfig {
        compression: None,
        compress_min_size: 0,
        keyring,
        max_frame_size: limits.max_frame_size,
        max_expansion: limits.max_expansion,
        handshake,
    }) else {
        return;
    };
    let opened = envelope.open(payload, 0);
    // Only a hello that authenticates is answered.
    assert!(envelope.take_outbox().is_none() || opened.as_ref().is_ok_and(|o| o.control));
    if let Ok(opened) = opened {
        assert!(opened.body.len() <= limits.max_frame_size.max(payload.len()));
        assert!(opened.body.len() <= payload.len().saturating_mul(limits.max_expansion).max(payload.len()));
        if opened.multi {
            for record in split_records(&opened.body) {
                let _ = record;
            }
        }
    }
});
