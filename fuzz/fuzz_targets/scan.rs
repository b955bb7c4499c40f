//! The binding's JSON parser against jiter: whatever `Scan` reads, jiter reads the same way (it may refuse more,
//! never less: the binding parses a text `Scan` refuses again with jiter). Never a panic either way.
#![no_main]

use jiter::Jiter;
use libfuzzer_sys::fuzz_target;
use rpcwire_core::pull::{canonical, Scan};

fuzz_target!(|data: &[u8]| {
    let scanned = canonical(&mut Scan::with_tape(data, Vec::new()));
    let parsed = canonical(&mut Jiter::new(data));
    if let Ok(scanned) = scanned {
        assert_eq!(
            Ok(scanned),
            parsed.map_err(|_| ()),
            "{:?}",
            String::from_utf8_lossy(data)
        );
    }
});
