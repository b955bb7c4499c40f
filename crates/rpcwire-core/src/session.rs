//! The session handshake (docs/wire-format.md 3.4): per-connection, per-direction keys from a pre-shared key.
//!
//! The pattern is Noise `NNpsk0` exactly as the Noise Protocol Framework (revision 34) specifies it, with the
//! cipher suite `25519_AESGCM_SHA256`:
//!
//! ```text
//! -> psk, e          (initiator: proves it holds the pre-shared key; its ephemeral public key)
//! <- e, ee           (responder: its ephemeral public key; both mix the X25519 of the two ephemerals)
//! ```
//!
//! Both handshake payloads are empty. `Split()` then gives one AES-256-GCM key per direction, fresh for each
//! connection because each side's ephemeral key is: a frame sealed on one connection or in one direction
//! does not open on another or in the other, and a recorded connection cannot be replayed as a new one.
//! The ephemerals are dropped (and zeroed) once the keys exist, so a later leak of the pre-shared key does not
//! open recorded sessions (forward secrecy).
//!
//! The primitives are ring's (SHA-256, HKDF as Noise defines it, AES-256-GCM) and `x25519-dalek`'s X25519 (ring's
//! cannot take a fixed private key, which the published test vectors need).
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::{digest, hkdf};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{fill_random, KeyRing, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::errors::{CodecError, CodecResult};

/// The Noise protocol name; 32 bytes, so it is the initial handshake hash as it stands.
pub const PROTOCOL_NAME: &[u8; 32] = b"Noise_NNpsk0_25519_AESGCM_SHA256";
/// The prologue is this label followed by the key id (`u32be`) the initiator names.
pub const PROLOGUE_LABEL: &[u8] = b"rpcwire/2";
/// Length of an X25519 public key.
pub const DH_LEN: usize = 32;
/// A Noise handshake message of this pattern: an ephemeral public key and the tag of an empty payload.
pub const NOISE_MESSAGE_LEN: usize = DH_LEN + TAG_LEN;

/// Where ephemeral private keys come from: the OS CSPRNG, or fixed keys in known-answer tests.
pub type EphemeralSource = fn(&mut [u8; DH_LEN]) -> CodecResult<()>;

/// The OS CSPRNG, the source every codec uses outside tests.
pub fn os_ephemeral(dest: &mut [u8; DH_LEN]) -> CodecResult<()> {
    fill_random(dest)
}

/// Which side of the handshake a codec plays: the side that connects (or spawns) initiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

impl Role {
    /// `"initiator"` or `"responder"`.
    pub fn from_name(name: &str) -> CodecResult<Self> {
        match name {
            "initiator" => Ok(Self::Initiator),
            "responder" => Ok(Self::Responder),
            other => Err(CodecError::usage(format!(
                "handshake must be 'initiator' or 'responder', not {other:?}"
            ))),
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Responder => "responder",
        }
    }
}

/// The two keys of one established session.
pub struct SessionKeys {
    send: LessSafeKey,
    recv: LessSafeKey,
    /// The process that made the handshake. After `os.fork()` parent and child hold the same keys and
    /// counters: a child that sealed would reuse the parent's nonces, so it refuses to seal.
    pid: u32,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys").finish_non_exhaustive()
    }
}

impl SessionKeys {
    fn new(send: &[u8; KEY_LEN], recv: &[u8; KEY_LEN]) -> CodecResult<Self> {
        Ok(Self {
            send: aes_key(send)?,
            recv: aes_key(recv)?,
            pid: std::process::id(),
        })
    }

    /// Encrypt `data[start..]` in place under the sending key and nonce `counter`, and append the tag.
    pub fn seal_in_place(&self, counter: u64, aad: &[u8], data: &mut Vec<u8>, start: usize) -> CodecResult<()> {
        if std::process::id() != self.pid {
            return Err(CodecError::usage(
                "this session's keys belong to the process that made its handshake: a forked child cannot \
                 seal on its parent's connection (it would reuse the parent's nonces); give it a connection \
                 of its own",
            ));
        }
        let body = data
            .get_mut(start..)
            .ok_or_else(|| CodecError::usage("seal start past the end of the buffer"))?;
        let tag = self
            .send
            .seal_in_place_separate_tag(noise_nonce(counter), Aad::from(aad), body)
            .map_err(|_| CodecError::usage("AES-GCM refused to seal (body too large)"))?;
        data.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypt `data` (ciphertext || tag) in place under the receiving key and nonce `counter`; returns the
    /// plaintext length.
    pub fn open_in_place(&self, counter: u64, aad: &[u8], data: &mut [u8]) -> CodecResult<usize> {
        self.recv
            .open_in_place(noise_nonce(counter), Aad::from(aad), data)
            .map(|plain| plain.len())
            .map_err(|_| CodecError::decrypt(format!("authentication failed (session frame {counter})")))
    }
}

/// An AES-256-GCM key from raw bytes (a handshake or session key this module derived).
fn aes_key(raw: &[u8; KEY_LEN]) -> CodecResult<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, raw)
        .map(LessSafeKey::new)
        .map_err(|_| CodecError::usage("a derived key was refused by AES-256-GCM"))
}

/// Noise's AES-GCM nonce: four zero bytes, then the counter as `u64be`.
fn noise_nonce(counter: u64) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

/// Noise's `SymmetricState` (with its `CipherState` folded in): chaining key, handshake hash, key and nonce.
struct SymmetricState {
    ck: Zeroizing<[u8; 32]>,
    h: [u8; 32],
    k: Option<Zeroizing<[u8; KEY_LEN]>>,
    n: u64,
}

/// An HKDF output length for ring.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl SymmetricState {
    fn new(key_id: u32) -> Self {
        let mut state = Self {
            ck: Zeroizing::new(*PROTOCOL_NAME),
            h: *PROTOCOL_NAME,
            k: None,
            n: 0,
        };
        let mut prologue = [0u8; PROLOGUE_LABEL.len() + 4];
        prologue[..PROLOGUE_LABEL.len()].copy_from_slice(PROLOGUE_LABEL);
        prologue[PROLOGUE_LABEL.len()..].copy_from_slice(&key_id.to_be_bytes());
        state.mix_hash(&prologue);
        state
    }

    fn mix_hash(&mut self, data: &[u8]) {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&self.h);
        ctx.update(data);
        self.h.copy_from_slice(ctx.finish().as_ref());
    }

    /// Noise's `HKDF(ck, ikm, N)`: RFC 5869 with the chaining key as salt and an empty info.
    fn hkdf<const N: usize>(&self, ikm: &[u8]) -> CodecResult<Zeroizing<[[u8; 32]; N]>> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, self.ck.as_ref()).extract(ikm);
        let mut flat = Zeroizing::new([[0u8; 32]; N]);
        let okm = prk
            .expand(&[], Len(32 * N))
            .map_err(|_| CodecError::usage("HKDF refused the output length"))?;
        okm.fill(flat.as_flattened_mut())
            .map_err(|_| CodecError::usage("HKDF refused the output length"))?;
        Ok(flat)
    }

    fn mix_key(&mut self, ikm: &[u8]) -> CodecResult<()> {
        let [ck, k] = *self.hkdf::<2>(ikm)?;
        self.set(ck, k);
        Ok(())
    }

    fn mix_key_and_hash(&mut self, ikm: &[u8]) -> CodecResult<()> {
        let [ck, h, k] = *self.hkdf::<3>(ikm)?;
        self.mix_hash(&h);
        self.set(ck, k);
        Ok(())
    }

    fn set(&mut self, mut ck: [u8; 32], mut k: [u8; 32]) {
        *self.ck = ck;
        self.k = Some(Zeroizing::new(k));
        self.n = 0;
        ck.zeroize();
        k.zeroize();
    }

    fn cipher(&self) -> CodecResult<LessSafeKey> {
        aes_key(
            self.k
                .as_ref()
                .ok_or_else(|| CodecError::usage("no handshake key yet"))?,
        )
    }

    /// `EncryptAndHash` of an empty payload: appends the 16-byte tag to `out`.
    fn encrypt_and_hash_empty(&mut self, out: &mut Vec<u8>) -> CodecResult<()> {
        let mut empty = [0u8; 0];
        let tag = self
            .cipher()?
            .seal_in_place_separate_tag(noise_nonce(self.n), Aad::from(&self.h), &mut empty)
            .map_err(|_| CodecError::usage("AES-GCM refused to seal"))?;
        self.n += 1;
        self.mix_hash(tag.as_ref());
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// `DecryptAndHash` of what must be an empty payload's tag.
    fn decrypt_and_hash_empty(&mut self, tag: &[u8], what: &str) -> CodecResult<()> {
        let mut buf = [0u8; TAG_LEN];
        buf.copy_from_slice(tag);
        self.cipher()?
            .open_in_place(noise_nonce(self.n), Aad::from(&self.h), &mut buf)
            .map_err(|_| CodecError::decrypt(format!("handshake authentication failed: {what}")))?;
        self.n += 1;
        self.mix_hash(tag);
        Ok(())
    }

    /// `Split()`: the initiator's sending key, then the responder's.
    fn split(&self) -> CodecResult<Zeroizing<[[u8; 32]; 2]>> {
        self.hkdf::<2>(&[])
    }
}

/// An ephemeral key pair from `source`.
fn ephemeral(source: EphemeralSource) -> CodecResult<(StaticSecret, [u8; DH_LEN])> {
    let mut raw = Zeroizing::new([0u8; DH_LEN]);
    source(&mut raw)?;
    let secret = StaticSecret::from(*raw);
    let public = PublicKey::from(&secret).to_bytes();
    Ok((secret, public))
}

/// X25519 of our ephemeral and the peer's; a low-order peer key (an all-zero result) is refused.
fn dh(secret: &StaticSecret, peer: [u8; DH_LEN]) -> CodecResult<Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(&PublicKey::from(peer));
    if !shared.was_contributory() {
        return Err(CodecError::decrypt(
            "handshake refused: the peer's ephemeral key is a low-order point",
        ));
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

fn public_key(bytes: &[u8]) -> [u8; DH_LEN] {
    let mut key = [0u8; DH_LEN];
    key.copy_from_slice(&bytes[..DH_LEN]);
    key
}

/// The initiator between its message and the responder's.
pub struct Initiator {
    state: SymmetricState,
    e: StaticSecret,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator").finish_non_exhaustive()
    }
}

impl Initiator {
    /// Start a handshake with the keyring's active key as the pre-shared key. Appends the Noise message
    /// (`e || tag`, [`NOISE_MESSAGE_LEN`] bytes) to `out`; the caller writes the key id before it.
    pub fn start(keyring: &KeyRing, source: EphemeralSource, out: &mut Vec<u8>) -> CodecResult<Self> {
        let key_id = keyring.active();
        let psk = keyring
            .key_bytes(key_id)
            .ok_or_else(|| CodecError::usage("the active key is missing"))?;
        let mut state = SymmetricState::new(key_id);
        state.mix_key_and_hash(psk)?;
        let (e, e_pub) = ephemeral(source)?;
        state.mix_hash(&e_pub);
        state.mix_key(&e_pub)?;
        out.extend_from_slice(&e_pub);
        state.encrypt_and_hash_empty(out)?;
        Ok(Self { state, e })
    }

    /// Read the responder's Noise message (exactly [`NOISE_MESSAGE_LEN`] bytes): the session keys.
    pub fn finish(mut self, message: &[u8]) -> CodecResult<SessionKeys> {
        if message.len() != NOISE_MESSAGE_LEN {
            return Err(CodecError::decrypt(format!(
                "handshake reply of {} bytes where {NOISE_MESSAGE_LEN} were expected",
                message.len()
            )));
        }
        let re = public_key(message);
        self.state.mix_hash(&re);
        self.state.mix_key(&re)?;
        let shared = dh(&self.e, re)?;
        self.state.mix_key(shared.as_ref())?;
        self.state
            .decrypt_and_hash_empty(&message[DH_LEN..], "the responder does not hold the key")?;
        let [to_responder, to_initiator] = *self.state.split()?;
        SessionKeys::new(&to_responder, &to_initiator)
    }
}

/// The responder's whole part: read the initiator's Noise message for `key_id`, append its own to `out`, and
/// return the session keys. Refuses, before any X25519, a message not made with the key.
pub fn respond(
    keyring: &KeyRing,
    key_id: u32,
    message: &[u8],
    source: EphemeralSource,
    out: &mut Vec<u8>,
) -> CodecResult<SessionKeys> {
    let psk = keyring
        .key_bytes(key_id)
        .ok_or_else(|| CodecError::decrypt(format!("handshake names unknown key id {key_id}")))?;
    if message.len() != NOISE_MESSAGE_LEN {
        return Err(CodecError::decrypt(format!(
            "handshake hello of {} bytes where {NOISE_MESSAGE_LEN} were expected",
            message.len()
        )));
    }
    let mut state = SymmetricState::new(key_id);
    state.mix_key_and_hash(psk)?;
    let re = public_key(message);
    state.mix_hash(&re);
    state.mix_key(&re)?;
    state.decrypt_and_hash_empty(
        &message[DH_LEN..],
        &format!("the initiator does not hold key id {key_id}"),
    )?;
    let (e, e_pub) = ephemeral(source)?;
    state.mix_hash(&e_pub);
    state.mix_key(&e_pub)?;
    let shared = dh(&e, re)?;
    state.mix_key(shared.as_ref())?;
    out.extend_from_slice(&e_pub);
    state.encrypt_and_hash_empty(out)?;
    let [to_responder, to_initiator] = *state.split()?;
    SessionKeys::new(&to_initiator, &to_responder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(r: CodecResult<T>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    fn err<T>(r: CodecResult<T>) -> CodecError {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    fn ring_of(key: u8) -> KeyRing {
        ok(KeyRing::new(vec![(7, [key; 32])], 7))
    }

    #[allow(clippy::unnecessary_wraps)] // an EphemeralSource
    fn fixed_a(d: &mut [u8; 32]) -> CodecResult<()> {
        *d = [0x11; 32];
        Ok(())
    }

    #[allow(clippy::unnecessary_wraps)] // an EphemeralSource
    fn fixed_b(d: &mut [u8; 32]) -> CodecResult<()> {
        *d = [0x22; 32];
        Ok(())
    }

    fn handshake(ia: &KeyRing, rb: &KeyRing) -> CodecResult<(SessionKeys, SessionKeys)> {
        let mut m1 = Vec::new();
        let init = Initiator::start(ia, os_ephemeral, &mut m1)?;
        let mut m2 = Vec::new();
        let r = respond(rb, ia.active(), &m1, os_ephemeral, &mut m2)?;
        Ok((init.finish(&m2)?, r))
    }

    fn round_trip(from: &SessionKeys, to: &SessionKeys, counter: u64) -> CodecResult<Vec<u8>> {
        let mut buf = b"hello".to_vec();
        from.seal_in_place(counter, b"hdr", &mut buf, 0)?;
        let len = to.open_in_place(counter, b"hdr", &mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }

    #[test]
    fn both_directions_open_and_differ() {
        let (i, r) = ok(handshake(&ring_of(1), &ring_of(1)));
        assert_eq!(ok(round_trip(&i, &r, 0)), b"hello");
        assert_eq!(ok(round_trip(&r, &i, 0)), b"hello");
        // A frame reflected back to its sender does not open: the directions have different keys.
        assert!(round_trip(&i, &i, 0).is_err());
        assert!(round_trip(&r, &r, 0).is_err());
        // Nor under another nonce.
        let mut buf = b"hello".to_vec();
        ok(i.seal_in_place(0, b"hdr", &mut buf, 0));
        assert!(r.open_in_place(1, b"hdr", &mut buf).is_err());
    }

    #[test]
    fn each_connection_has_its_own_keys() {
        let (i1, _) = ok(handshake(&ring_of(1), &ring_of(1)));
        let (_, r2) = ok(handshake(&ring_of(1), &ring_of(1)));
        assert!(round_trip(&i1, &r2, 0).is_err());
    }

    #[test]
    fn a_wrong_psk_is_refused_before_any_dh() {
        let mut m1 = Vec::new();
        let _init = ok(Initiator::start(&ring_of(1), os_ephemeral, &mut m1));
        let mut m2 = Vec::new();
        let e = err(respond(&ring_of(2), 7, &m1, os_ephemeral, &mut m2));
        assert!(e.to_string().contains("does not hold key id 7"), "{e}");
        assert!(m2.is_empty());
        let e = err(respond(&ring_of(1), 8, &m1, os_ephemeral, &mut m2));
        assert!(e.to_string().contains("unknown key id 8"), "{e}");
    }

    #[test]
    fn a_reply_from_a_responder_without_the_key_is_refused() {
        let mut m1 = Vec::new();
        let init = ok(Initiator::start(&ring_of(1), os_ephemeral, &mut m1));
        // A responder holding another key answers a hello made with that key; its reply cannot fool us.
        let mut forged_hello = Vec::new();
        let _other = ok(Initiator::start(&ring_of(2), os_ephemeral, &mut forged_hello));
        let mut m2 = Vec::new();
        ok(respond(&ring_of(2), 7, &forged_hello, os_ephemeral, &mut m2));
        assert!(init.finish(&m2).is_err());
    }

    #[test]
    fn every_flipped_bit_of_either_message_is_refused() {
        let mut m1 = Vec::new();
        ok(Initiator::start(&ring_of(1), fixed_a, &mut m1));
        for bit in 0..m1.len() * 8 {
            let mut bad = m1.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                respond(&ring_of(1), 7, &bad, fixed_b, &mut Vec::new()).is_err(),
                "bit {bit}"
            );
        }
        let mut m2 = Vec::new();
        ok(respond(&ring_of(1), 7, &m1, fixed_b, &mut m2));
        for bit in 0..m2.len() * 8 {
            let mut bad = m2.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let init = ok(Initiator::start(&ring_of(1), fixed_a, &mut Vec::new()));
            assert!(init.finish(&bad).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn low_order_and_short_messages_are_refused() {
        let mut m1 = Vec::new();
        let init = ok(Initiator::start(&ring_of(1), fixed_a, &mut m1));
        let zero = [0u8; NOISE_MESSAGE_LEN];
        assert!(err(init.finish(&zero)).to_string().contains("low-order"));
        assert!(respond(&ring_of(1), 7, &m1[..40], fixed_b, &mut Vec::new()).is_err());
        let init = ok(Initiator::start(&ring_of(1), fixed_a, &mut Vec::new()));
        assert!(init.finish(&m1[..47]).is_err());
    }

    #[test]
    fn fixed_ephemerals_give_fixed_messages() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        ok(Initiator::start(&ring_of(1), fixed_a, &mut a));
        ok(Initiator::start(&ring_of(1), fixed_a, &mut b));
        assert_eq!(a, b);
        assert_eq!(a.len(), NOISE_MESSAGE_LEN);
    }

    #[test]
    fn role_names() {
        for role in [Role::Initiator, Role::Responder] {
            assert_eq!(ok(Role::from_name(role.name())), role);
        }
        assert!(Role::from_name("client").is_err());
    }
}
