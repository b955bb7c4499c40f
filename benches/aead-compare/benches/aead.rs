//! AES-256-GCM seal: `ring` (what the envelope uses) against `aws-lc-rs` and `RustCrypto` `aes-gcm`.
//!
//! Each iteration seals one buffer in place with a fresh counter nonce and a 27-byte AAD (the size of an
//! encrypted envelope header), the way `KeyRing::seal_in_place` does. Before measuring, the three crates must
//! produce the same ciphertext and tag for the same key, nonce and AAD.
//! `cargo bench --manifest-path benches/aead-compare/Cargo.toml`; figures in benches/README.md.
use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const KEY: [u8; 32] = [7; 32];
const AAD: [u8; 27] = [0xfb; 27];
const SIZES: [(usize, &str); 4] = [(256, "256B"), (4 << 10, "4KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0xa5u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

trait Sealer {
    const NAME: &'static str;
    /// Encrypt `buf` in place and return the tag.
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16];
}

struct Ring(ring::aead::LessSafeKey);
struct AwsLc(aws_lc_rs::aead::LessSafeKey);
struct RustCrypto(aes_gcm::Aes256Gcm);

impl Sealer for Ring {
    const NAME: &'static str = "ring 0.17.14";
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16] {
        use ring::aead::{Aad, Nonce};
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&AAD), buf)
            .unwrap_or_else(|e| panic!("ring seal: {e:?}"));
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl Sealer for AwsLc {
    const NAME: &'static str = "aws-lc-rs 1.19.0";
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16] {
        use aws_lc_rs::aead::{Aad, Nonce};
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&AAD), buf)
            .unwrap_or_else(|e| panic!("aws-lc-rs seal: {e:?}"));
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl Sealer for RustCrypto {
    const NAME: &'static str = "aes-gcm 0.11.1";
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16] {
        let tag = self
            .0
            .encrypt_inout_detached(&nonce.into(), &AAD, buf.into())
            .unwrap_or_else(|e| panic!("aes-gcm seal: {e:?}"));
        tag.into()
    }
}

fn ring_key() -> Ring {
    let key = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &KEY).unwrap_or_else(|e| panic!("{e:?}"));
    Ring(ring::aead::LessSafeKey::new(key))
}

fn aws_lc_key() -> AwsLc {
    let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &KEY).unwrap_or_else(|e| panic!("{e:?}"));
    AwsLc(aws_lc_rs::aead::LessSafeKey::new(key))
}

fn rustcrypto_key() -> RustCrypto {
    RustCrypto(aes_gcm::Aes256Gcm::new(&KEY.into()))
}

fn sealed<S: Sealer>(s: &S, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    let tag = s.seal(nonce(1), &mut buf);
    buf.extend_from_slice(&tag);
    buf
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn bench_one<S: Sealer>(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, s: &S, len: usize) {
    let mut buf = plaintext(len);
    let mut counter = 0u64;
    c.bench_function(BenchmarkId::new(S::NAME, len), |b| {
        b.iter(|| {
            counter += 1;
            black_box(s.seal(nonce(counter), black_box(&mut buf)))
        });
    });
}

fn seal(c: &mut Criterion) {
    let (ring, aws, rc) = (ring_key(), aws_lc_key(), rustcrypto_key());
    for (len, name) in SIZES {
        let plain = plaintext(len);
        let expected = sealed(&ring, &plain);
        assert_eq!(
            sealed(&aws, &plain),
            expected,
            "aws-lc-rs disagrees with ring at {name}"
        );
        assert_eq!(sealed(&rc, &plain), expected, "aes-gcm disagrees with ring at {name}");

        let mut group = c.benchmark_group(format!("seal {name}"));
        group.throughput(Throughput::Bytes(len as u64));
        bench_one(&mut group, &ring, len);
        bench_one(&mut group, &aws, len);
        bench_one(&mut group, &rc, len);
        group.finish();
    }
}

criterion_group!(benches, seal);
criterion_main!(benches);
