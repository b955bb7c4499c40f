//! AES-256-GCM and the key ring (being written: issue 3). The API is fixed; bodies are filled in by the envelope work.
use crate::errors::{CodecError, CodecResult};

/// Keys by id; the sender seals with `active`, the receiver opens with whichever key a frame names.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(u32, [u8; 32])>,
    active: u32,
}

impl KeyRing {
    pub fn new(keys: Vec<(u32, [u8; 32])>, active: u32) -> CodecResult<Self> {
        if !keys.iter().any(|(id, _)| *id == active) {
            return Err(CodecError::usage(format!(
                "active key id {active} is not in the keyring"
            )));
        }
        Ok(Self { keys, active })
    }

    #[must_use]
    pub fn active(&self) -> u32 {
        self.active
    }

    #[must_use]
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|(id, _)| *id).collect()
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}
