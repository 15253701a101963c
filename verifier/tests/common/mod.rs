//! Shared helpers for the verifier's integration tests: the committed test keys, real sequoia
//! signatures made at chosen times, and tag objects assembled in each stacked layout.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sequoia_openpgp as openpgp;

use openpgp::armor;
use openpgp::packet::Signature;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::serialize::Marshal;
use openpgp::types::{HashAlgorithm, SignatureType};
use openpgp::{Cert, Packet};

pub fn testkeys() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testkeys"))
}

/// Unix seconds to a time.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// 2026-06-01T00:00:00Z: the reference time of these tests.
pub fn pinned() -> SystemTime {
    at(1_780_272_000)
}

/// 2025-01-01T00:00:00Z: when the test signatures are made (after every key's creation,
/// after `expired`'s expiry, before the pinned time).
pub const SIGNED_AT: u64 = 1_735_689_600;

pub fn fingerprint(name: &str) -> String {
    let s = std::fs::read_to_string(testkeys().join("FINGERPRINTS")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no key {name}"))
}

pub fn principal(name: &str) -> String {
    format!("openpgp:{}", fingerprint(name))
}

pub fn secret(name: &str) -> Cert {
    Cert::from_file(testkeys().join(format!("{name}.sec.asc"))).unwrap()
}

/// A real signature by test key `name` over `msg`, made at `when`, with hash `hash`.
pub fn sign_with(name: &str, msg: &[u8], when: SystemTime, hash: HashAlgorithm) -> Signature {
    let cert = secret(name);
    // The `subkey` key signs with its subkey, every other key with its primary.
    let key = if name == "subkey" {
        let k = cert.keys().subkeys().secret().next().unwrap().key().clone();
        k.role_into_unspecified()
    } else {
        let k = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap();
        k.role_into_unspecified()
    };
    let mut pair = key.into_keypair().unwrap();
    SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(when)
        .unwrap()
        .set_hash_algo(hash)
        .sign_message(&mut pair, msg)
        .unwrap()
}

pub fn sign(name: &str, msg: &[u8]) -> Signature {
    sign_with(name, msg, at(SIGNED_AT), HashAlgorithm::SHA512)
}

/// The content of an unsigned tag object.
pub fn content(name: &str, target_kind: &str, target: &str) -> Vec<u8> {
    format!(
        "object {target}\ntype {target_kind}\ntag {name}\ntagger gt tests <tests@gt.invalid> \
         1735689600 +0000\n\nRelease {name}\n"
    )
    .into_bytes()
}

pub const COMMIT: &str = "1f935296a1d1f7e1b2c0e0c1d6f6c6e36e6d3b2a";

/// An armored signature block holding `sigs`.
pub fn armor_block(sigs: &[Signature]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = armor::Writer::new(&mut out, armor::Kind::Signature).unwrap();
    for s in sigs {
        Packet::from(s.clone()).serialize(&mut w).unwrap();
    }
    w.finalize().unwrap();
    out
}

/// One block with one signature per key, each over the content.
pub fn one_block(content: &[u8], keys: &[&str]) -> Vec<u8> {
    let sigs: Vec<Signature> = keys.iter().map(|k| sign(k, content)).collect();
    let mut out = content.to_vec();
    out.extend(armor_block(&sigs));
    out
}

/// Onion: block i signs the content and blocks 1..i-1.
pub fn onion(content: &[u8], keys: &[&str]) -> Vec<u8> {
    let mut out = content.to_vec();
    for k in keys {
        let sig = sign(k, &out);
        out.extend(armor_block(&[sig]));
    }
    out
}

/// The refused layout: independent blocks each over the content alone.
pub fn appended(content: &[u8], keys: &[&str]) -> Vec<u8> {
    let mut out = content.to_vec();
    for k in keys {
        out.extend(armor_block(&[sign(k, content)]));
    }
    out
}

pub fn keyring(names: &[&str]) -> verifier::Keyring {
    let mut k = verifier::Keyring::new();
    for n in names {
        k.add_file(&testkeys().join(format!("{n}.pub.asc")))
            .unwrap();
    }
    k
}

pub fn write_all(path: &std::path::Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}
