//! AES-256-GCM, the key ring and nonces (docs/wire-format.md 3.2).
//!
//! The cipher is `ring`'s: measured against aws-lc-rs and `RustCrypto` aes-gcm on this machine it was the
//! fastest at 256 B, 4 KiB, 64 KiB and 1 MiB, and it builds with only a C compiler (benches/aead.rs, benches/README.md).
//! Keys never leave this module except through [`KeyRing::key_bytes`] (for key files); `Debug` shows ids only
//! and raw key bytes are zeroed when a ring is dropped.
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::errors::{CodecError, CodecResult};

/// Length of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Length of a GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of a GCM tag.
pub const TAG_LEN: usize = 16;

/// Fill `dest` from the OS CSPRNG.
pub fn fill_random(dest: &mut [u8]) -> CodecResult<()> {
    SystemRandom::new()
        .fill(dest)
        .map_err(|_| CodecError::usage("the OS random number generator failed"))
}

#[derive(Clone)]
struct Entry {
    id: u32,
    raw: Zeroizing<[u8; KEY_LEN]>,
    cipher: LessSafeKey,
}

/// Keys by id; the sender seals with `active`, the receiver opens with whichever key a frame names.
#[derive(Clone)]
pub struct KeyRing {
    /// Sorted by id, ids unique.
    keys: Vec<Entry>,
    active: u32,
}

impl KeyRing {
    pub fn new(mut keys: Vec<(u32, [u8; 32])>, active: u32) -> CodecResult<Self> {
        let result = Self::build(&keys, active);
        for (_, key) in &mut keys {
            key.zeroize();
        }
        result
    }

    fn build(keys: &[(u32, [u8; 32])], active: u32) -> CodecResult<Self> {
        if keys.is_empty() {
            return Err(CodecError::usage("a keyring needs at least one key"));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(keys.len());
        for (id, key) in keys {
            if entries.iter().any(|e| e.id == *id) {
                return Err(CodecError::usage(format!("key id {id} appears twice")));
            }
            let unbound = UnboundKey::new(&AES_256_GCM, key)
                .map_err(|_| CodecError::usage(format!("key {id} is not a valid AES-256 key")))?;
            entries.push(Entry {
                id: *id,
                raw: Zeroizing::new(*key),
                cipher: LessSafeKey::new(unbound),
            });
        }
        entries.sort_by_key(|e| e.id);
        if !entries.iter().any(|e| e.id == active) {
            return Err(CodecError::usage(format!(
                "active key id {active} is not in the keyring"
            )));
        }
        Ok(Self { keys: entries, active })
    }

    /// A ring holding one fresh random key under `id`, active.
    pub fn generate(id: u32) -> CodecResult<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut())?;
        Self::new(vec![(id, *key)], id)
    }

    /// The same keys with `active` as the sealing key (rotation: add a key, then make it active).
    pub fn with_active(&self, active: u32) -> CodecResult<Self> {
        if !self.keys.iter().any(|e| e.id == active) {
            return Err(CodecError::usage(format!(
                "active key id {active} is not in the keyring"
            )));
        }
        Ok(Self {
            keys: self.keys.clone(),
            active,
        })
    }

    /// These keys plus `key` under `id` (replacing a key of that id), active unchanged unless `make_active`.
    pub fn with_key(&self, id: u32, key: [u8; 32], make_active: bool) -> CodecResult<Self> {
        let mut key = Zeroizing::new(key);
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
            .map_err(|_| CodecError::usage(format!("key {id} is not a valid AES-256 key")))?;
        let mut keys: Vec<Entry> = self.keys.iter().filter(|e| e.id != id).cloned().collect();
        keys.push(Entry {
            id,
            raw: Zeroizing::new(*key),
            cipher: LessSafeKey::new(unbound),
        });
        key.zeroize();
        keys.sort_by_key(|e| e.id);
        Ok(Self {
            keys,
            active: if make_active { id } else { self.active },
        })
    }

    /// These keys without `id`, which must exist and not be the active key.
    pub fn without_key(&self, id: u32) -> CodecResult<Self> {
        if id == self.active {
            return Err(CodecError::usage(format!("key id {id} is the active key")));
        }
        if !self.contains(id) {
            return Err(CodecError::usage(format!("key id {id} is not in the keyring")));
        }
        Ok(Self {
            keys: self.keys.iter().filter(|e| e.id != id).cloned().collect(),
            active: self.active,
        })
    }

    #[must_use]
    pub fn active(&self) -> u32 {
        self.active
    }

    #[must_use]
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|e| e.id).collect()
    }

    #[must_use]
    pub fn contains(&self, id: u32) -> bool {
        self.find(id).is_some()
    }

    /// The raw bytes of key `id`, for writing key files. Nothing else should need them.
    #[must_use]
    pub fn key_bytes(&self, id: u32) -> Option<&[u8; KEY_LEN]> {
        self.find(id).map(|e| &*e.raw)
    }

    fn find(&self, id: u32) -> Option<&Entry> {
        // Rings hold a handful of keys: a linear scan beats a map.
        self.keys.iter().find(|e| e.id == id)
    }

    /// Encrypt `data[start..]` in place with the active key and append the tag.
    pub fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        data: &mut Vec<u8>,
        start: usize,
    ) -> CodecResult<()> {
        let entry = self
            .find(self.active)
            .ok_or_else(|| CodecError::usage("the active key is missing"))?;
        let body = data
            .get_mut(start..)
            .ok_or_else(|| CodecError::usage("seal start past the end of the buffer"))?;
        let tag = entry
            .cipher
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
            .map_err(|_| CodecError::usage("AES-GCM refused to seal (body too large)"))?;
        data.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypt `data` (ciphertext || tag) in place with key `id`; returns the plaintext length (a prefix of
    /// `data`). Errors are `DecryptError`s naming the key id, never key material.
    pub fn open_in_place(&self, id: u32, nonce: [u8; NONCE_LEN], aad: &[u8], data: &mut [u8]) -> CodecResult<usize> {
        let entry = self
            .find(id)
            .ok_or_else(|| CodecError::decrypt(format!("unknown key id {id}")))?;
        let plain = entry
            .cipher
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), data)
            .map_err(|_| CodecError::decrypt(format!("authentication failed (key id {id})")))?;
        Ok(plain.len())
    }
}

/// Key files (docs/wire-format.md 4): `{"version": 1, "active": 1, "keys": {"1": "<64 lowercase hex>"}}`.
impl KeyRing {
    /// The key file text for this ring. Holds the keys: zeroed when dropped.
    #[must_use]
    pub fn to_key_file(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Zeroizing::new(String::with_capacity(48 + self.keys.len() * 80));
        out.push_str("{\"version\": 1, \"active\": ");
        out.push_str(&self.active.to_string());
        out.push_str(", \"keys\": {");
        for (i, e) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push('"');
            out.push_str(&e.id.to_string());
            out.push_str("\": \"");
            for b in e.raw.iter() {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
            out.push('"');
        }
        out.push_str("}}\n");
        out
    }

    /// Parse a key file. Errors say what is wrong and where, never what a key is.
    pub fn from_key_file(data: &[u8]) -> CodecResult<Self> {
        use jiter::JsonValue;
        let bad = |what: String| CodecError::usage(format!("invalid key file: {what}"));
        let value = JsonValue::parse(data, false).map_err(|e| bad(format!("not JSON ({})", e.error_type)))?;
        let JsonValue::Object(top) = value else {
            return Err(bad("not a JSON object".into()));
        };
        let (mut version, mut active, mut keys) = (None, None, None);
        for (name, v) in top.iter() {
            let slot = match name.as_ref() {
                "version" => &mut version,
                "active" => &mut active,
                "keys" => &mut keys,
                other => return Err(bad(format!("unexpected member {other:?}"))),
            };
            if slot.replace(v).is_some() {
                return Err(bad(format!("member {name:?} appears twice")));
            }
        }
        match version {
            Some(JsonValue::Int(1)) => {}
            Some(_) => return Err(bad("unsupported \"version\" (expected 1)".into())),
            None => return Err(bad("missing \"version\"".into())),
        }
        let active = match active {
            Some(JsonValue::Int(n)) => u32::try_from(*n).map_err(|_| bad("\"active\" is not a key id".into()))?,
            _ => return Err(bad("\"active\" must be an integer key id".into())),
        };
        let Some(JsonValue::Object(key_map)) = keys else {
            return Err(bad("\"keys\" must be an object".into()));
        };
        let mut parsed: Vec<(u32, [u8; 32])> = Vec::with_capacity(key_map.len());
        let result = (|| {
            for (name, v) in key_map.iter() {
                let id: u32 = name
                    .parse()
                    .ok()
                    .filter(|id: &u32| id.to_string() == name.as_ref())
                    .ok_or_else(|| bad(format!("key name {name:?} is not a decimal key id")))?;
                let JsonValue::Str(hex) = v else {
                    return Err(bad(format!("key {id} is not a string")));
                };
                let key =
                    decode_hex_key(hex.as_bytes()).ok_or_else(|| bad(format!("key {id} is not 64 hex digits")))?;
                parsed.push((id, key));
            }
            Self::new(std::mem::take(&mut parsed), active).map_err(|e| bad(e.to_string()))
        })();
        for (_, k) in &mut parsed {
            k.zeroize();
        }
        result
    }
}

fn decode_hex_key(hex: &[u8]) -> Option<[u8; KEY_LEN]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if hex.len() != KEY_LEN * 2 {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        key[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(key)
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Where nonce prefixes come from: the OS CSPRNG, or a fixed sequence in known-answer tests.
pub type PrefixSource = fn(&mut [u8; 8]) -> CodecResult<()>;

fn os_prefix(dest: &mut [u8; 8]) -> CodecResult<()> {
    fill_random(dest)
}

/// Nonces for one sender: an 8-byte random prefix || u32be counter; a new prefix when the counter wraps.
#[derive(Debug, Clone)]
pub struct NonceSequence {
    prefix: [u8; 8],
    /// The next counter value; `> u32::MAX` means: draw a new prefix first.
    counter: u64,
    source: PrefixSource,
    /// The process that drew `prefix`. After `os.fork()` parent and child hold the same sequence: the one that
    /// finds itself in another process draws a fresh prefix first, so the two never seal under one nonce.
    pid: u32,
}

impl NonceSequence {
    /// A sequence whose prefix comes from the OS CSPRNG.
    pub fn new() -> CodecResult<Self> {
        Self::with_source(os_prefix)
    }

    /// A sequence whose prefixes come from `source` (tests inject known prefixes here).
    pub fn with_source(source: PrefixSource) -> CodecResult<Self> {
        let mut prefix = [0u8; 8];
        source(&mut prefix)?;
        Ok(Self {
            prefix,
            counter: 0,
            source,
            pid: std::process::id(),
        })
    }

    /// A sequence starting at `prefix`, counter `counter`; later prefixes come from the OS.
    #[must_use]
    pub fn starting_at(prefix: [u8; 8], counter: u32) -> Self {
        Self {
            prefix,
            counter: u64::from(counter),
            source: os_prefix,
            pid: std::process::id(),
        }
    }

    /// The prefix of the next nonce (a frame bearing it came from this sender).
    #[must_use]
    pub fn prefix(&self) -> [u8; 8] {
        self.prefix
    }

    /// The next nonce; never repeats within this sequence.
    pub fn next_nonce(&mut self) -> CodecResult<[u8; NONCE_LEN]> {
        let pid = std::process::id();
        if pid != self.pid {
            // A forked copy: continuing the parent's stream would seal two plaintexts under one nonce.
            self.pid = pid;
            self.counter = u64::from(u32::MAX) + 1;
        }
        if self.counter > u64::from(u32::MAX) {
            let mut fresh = [0u8; 8];
            (self.source)(&mut fresh)?;
            if fresh == self.prefix {
                return Err(CodecError::usage("the random source repeated a nonce prefix"));
            }
            self.prefix = fresh;
            self.counter = 0;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.prefix);
        nonce[8..].copy_from_slice(&(self.counter as u32).to_be_bytes());
        self.counter += 1;
        Ok(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring2() -> KeyRing {
        KeyRing::new(vec![(7, [7u8; 32]), (1, [1u8; 32])], 7).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn new_validates_ids() {
        assert!(KeyRing::new(vec![], 1).is_err());
        assert!(KeyRing::new(vec![(1, [0; 32])], 2).is_err());
        assert!(KeyRing::new(vec![(1, [0; 32]), (1, [1; 32])], 1).is_err());
        let r = ring2();
        assert_eq!(r.ids(), vec![1, 7]);
        assert_eq!(r.active(), 7);
        assert!(r.contains(1) && !r.contains(2));
    }

    #[test]
    fn debug_shows_ids_only() {
        let s = format!("{:?}", ring2());
        assert!(s.contains("ids: [1, 7]") && s.contains("active: 7"), "{s}");
        assert!(!s.contains("7, 7, 7"), "{s}");
    }

    #[test]
    fn matches_a_published_gcm_vector() {
        // NIST GCM test case 14 (McGrew-Viega): 256-bit zero key, zero IV, one zero block.
        let r = KeyRing::new(vec![(0, [0u8; 32])], 0).unwrap_or_else(|e| panic!("{e}"));
        let mut data = vec![0u8; 16];
        r.seal_in_place([0u8; 12], b"", &mut data, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        let hex = data.iter().fold(String::new(), |mut s, b| {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
            s
        });
        assert_eq!(hex, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
    }

    #[test]
    fn seal_then_open_and_any_change_fails() {
        let r = ring2();
        let mut data = b"hdr:hello".to_vec();
        r.seal_in_place([3; 12], b"aad", &mut data, 4)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(data.len(), 9 + TAG_LEN);
        let mut ct = data[4..].to_vec();
        let n = r
            .open_in_place(7, [3; 12], b"aad", &mut ct)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&ct[..n], b"hello");
        let ct = data[4..].to_vec();
        assert!(
            r.open_in_place(1, [3; 12], b"aad", &mut ct.clone()).is_err(),
            "wrong key"
        );
        assert!(
            r.open_in_place(7, [4; 12], b"aad", &mut ct.clone()).is_err(),
            "wrong nonce"
        );
        assert!(
            r.open_in_place(7, [3; 12], b"aaD", &mut ct.clone()).is_err(),
            "wrong aad"
        );
        assert!(matches!(
            r.open_in_place(9, [3; 12], b"aad", &mut ct.clone()),
            Err(CodecError::Decrypt { message }) if message == "unknown key id 9"
        ));
    }

    #[test]
    fn rotation_keeps_old_keys() {
        let r = ring2().with_key(9, [9; 32], true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.ids(), r.active()), (vec![1, 7, 9], 9));
        let r = r.with_active(1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.active(), 1);
        assert!(r.with_active(2).is_err());
        assert_eq!(r.key_bytes(9), Some(&[9u8; 32]));
        assert!(r.without_key(1).is_err(), "the active key stays");
        assert_eq!(r.without_key(7).unwrap_or_else(|e| panic!("{e}")).ids(), vec![1, 9]);
        assert!(r.without_key(8).is_err());
    }

    #[test]
    fn generated_keys_differ() {
        let a = KeyRing::generate(1).unwrap_or_else(|e| panic!("{e}"));
        let b = KeyRing::generate(1).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.key_bytes(1), b.key_bytes(1));
    }

    #[test]
    fn nonces_count_then_take_a_new_prefix() {
        #[allow(clippy::unnecessary_wraps)] // the signature is PrefixSource's
        fn fixed(d: &mut [u8; 8]) -> CodecResult<()> {
            *d = [0xAA; 8];
            Ok(())
        }
        let mut s = NonceSequence::with_source(fixed).unwrap_or_else(|e| panic!("{e}"));
        let n0 = s.next_nonce().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n0, [0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0, 0, 0, 0]);
        assert_eq!(s.next_nonce().unwrap_or_else(|e| panic!("{e}"))[8..], [0, 0, 0, 1]);
        let mut s = NonceSequence::starting_at([1; 8], u32::MAX);
        s.source = fixed;
        assert_eq!(
            s.next_nonce().unwrap_or_else(|e| panic!("{e}"))[..],
            [1, 1, 1, 1, 1, 1, 1, 1, 255, 255, 255, 255]
        );
        let wrapped = s.next_nonce().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(wrapped, [0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0, 0, 0, 0]);
        assert_eq!(s.prefix(), [0xAA; 8]);
        // A source that hands back the same prefix is refused rather than repeating nonces.
        let mut s = NonceSequence::with_source(fixed).unwrap_or_else(|e| panic!("{e}"));
        s.counter = u64::from(u32::MAX) + 1;
        assert!(s.next_nonce().is_err());
    }

    #[test]
    fn os_prefixes_differ() {
        let a = NonceSequence::new().unwrap_or_else(|e| panic!("{e}"));
        let b = NonceSequence::new().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.prefix(), b.prefix());
    }

    #[test]
    fn key_files_round_trip() {
        let r = ring2();
        let text = r.to_key_file();
        assert!(
            text.starts_with("{\"version\": 1, \"active\": 7, \"keys\": {\"1\": \"0101"),
            "{}",
            &*text
        );
        let back = KeyRing::from_key_file(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.ids(), back.active()), (vec![1, 7], 7));
        assert_eq!(back.key_bytes(7), Some(&[7u8; 32]));
    }

    #[test]
    fn bad_key_files_are_refused_without_echoing_keys() {
        let k = "ab".repeat(32);
        let secret = "cd".repeat(31) + "zz";
        for (text, needle) in [
            ("[]".to_string(), "not a JSON object"),
            ("{".to_string(), "not JSON"),
            (
                format!(r#"{{"version": 2, "active": 1, "keys": {{"1": "{k}"}}}}"#),
                "version",
            ),
            (format!(r#"{{"active": 1, "keys": {{"1": "{k}"}}}}"#), "missing"),
            (
                format!(r#"{{"version": 1, "active": 2, "keys": {{"1": "{k}"}}}}"#),
                "active key id 2",
            ),
            (
                format!(r#"{{"version": 1, "active": -1, "keys": {{"1": "{k}"}}}}"#),
                "active",
            ),
            (
                format!(r#"{{"version": 1, "active": 1, "keys": {{"01": "{k}"}}}}"#),
                "decimal",
            ),
            (
                format!(r#"{{"version": 1, "active": 1, "keys": {{"1": "{secret}"}}}}"#),
                "64 hex",
            ),
            (
                format!(r#"{{"version": 1, "active": 1, "keys": {{"1": "{k}", "1": "{k}"}}}}"#),
                "twice",
            ),
            (
                format!(r#"{{"version": 1, "active": 1, "keys": {{"1": "{k}"}}, "x": 0}}"#),
                "unexpected",
            ),
            (
                r#"{"version": 1, "active": 1, "keys": {}}"#.to_string(),
                "at least one key",
            ),
        ] {
            match KeyRing::from_key_file(text.as_bytes()) {
                Err(CodecError::Usage(m)) => {
                    assert!(m.contains(needle), "{m} / {needle}");
                    assert!(!m.contains(&k[..16]) && !m.contains(&secret[..16]), "{m}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
