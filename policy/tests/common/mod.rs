//! Helpers for the policy crate's tests and benchmark: certificates generated with sequoia
//! (no gpg needed, so a 900-key keyring is cheap), tag objects signed by them, and a real git
//! repository on disk to decide updates in.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::cert::CertBuilder;
use openpgp::cert::CipherSuite;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::serialize::{Marshal, SerializeInto};
use openpgp::types::{HashAlgorithm, KeyFlags, SignatureType};

/// 2020-01-01: when the generated keys are created.
pub const KEYS_CREATED: u64 = 1_577_836_800;
/// 2025-01-01: when tags and credentials are signed.
pub const SIGNED_AT: u64 = 1_735_689_600;
/// 2026-06-01: the decision time.
pub const DECIDE_AT: u64 = 1_780_272_000;

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `n` Ed25519 certificates whose primary key signs, user IDs `key{i} <key{i}@gt.invalid>`.
pub fn certs(n: usize) -> Vec<Cert> {
    (0..n)
        .map(|i| {
            CertBuilder::new()
                .set_cipher_suite(CipherSuite::Cv25519)
                .set_creation_time(at(KEYS_CREATED))
                .set_primary_key_flags(KeyFlags::empty().set_signing().set_certification())
                .add_userid(format!("key{i} <key{i}@gt.invalid>"))
                .generate()
                .unwrap()
                .0
        })
        .collect()
}

/// The public certificates as one keyring file's bytes.
pub fn keyring_bytes(certs: &[Cert]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in certs {
        out.extend(c.to_vec().unwrap());
    }
    out
}

pub fn keyring(certs: &[Cert]) -> verifier::Keyring {
    let mut k = verifier::Keyring::new();
    k.add_bytes(&keyring_bytes(certs), "generated").unwrap();
    k
}

pub fn principal(c: &Cert) -> String {
    verifier::Principal::from_fingerprint(&c.fingerprint()).to_string()
}

/// A binary signature by `cert`'s primary key over `msg` at [`SIGNED_AT`].
pub fn sign(cert: &Cert, msg: &[u8]) -> openpgp::packet::Signature {
    let key = cert
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .role_into_unspecified();
    let mut pair = key.into_keypair().unwrap();
    SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(at(SIGNED_AT))
        .unwrap()
        .set_hash_algo(HashAlgorithm::SHA512)
        .sign_message(&mut pair, msg)
        .unwrap()
}

/// A tag object named `name` on `target` (a commit), with one armored block holding one
/// signature per cert.
pub fn tag_bytes(name: &str, target: &str, signers: &[&Cert]) -> Vec<u8> {
    let mut bytes = format!(
        "object {target}\ntype commit\ntag {name}\ntagger gt tests <tests@gt.invalid> \
         {SIGNED_AT} +0000\n\nRelease {name}\n"
    )
    .into_bytes();
    if signers.is_empty() {
        return bytes;
    }
    let sigs: Vec<_> = signers.iter().map(|c| sign(c, &bytes)).collect();
    let mut armored = Vec::new();
    let mut w = openpgp::armor::Writer::new(&mut armored, openpgp::armor::Kind::Signature).unwrap();
    for s in sigs {
        openpgp::Packet::from(s).serialize(&mut w).unwrap();
    }
    w.finalize().unwrap();
    bytes.extend(armored);
    bytes
}

/// `git` in `dir` with pinned identity and dates; stdout trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@gt.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@gt.invalid")
        .env("GIT_AUTHOR_DATE", format!("@{SIGNED_AT} +0000"))
        .env("GIT_COMMITTER_DATE", format!("@{SIGNED_AT} +0000"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A temporary repository with one commit; (dir guard, path, commit id).
pub fn repo() -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q"]);
    git(&dir, &["commit", "-q", "--allow-empty", "-m", "one"]);
    let head = git(&dir, &["rev-parse", "HEAD"]);
    (tmp, dir, head)
}

/// Store a tag object and point `refs/tags/<ref_name>` at it; returns its id.
pub fn store_tag(dir: &Path, ref_name: &str, bytes: &[u8]) -> gix::ObjectId {
    let source = verifier::TagSource::open(dir).unwrap();
    let oid = source.write_tag(bytes).unwrap();
    git(
        dir,
        &[
            "update-ref",
            &format!("refs/tags/{ref_name}"),
            &oid.to_string(),
        ],
    );
    oid
}
