//! Verifier benchmarks: per-signature cost against sequoia's raw verification, and keyring
//! loading.
//!
//! Not criterion: sequoia caches verified signatures process-wide, so any harness that repeats
//! one signature measures the cache (~35 µs), not the cryptography. Here every signature is
//! distinct and verified exactly once; the "raw" and "gt" sets are disjoint. Medians are printed.
//!
//!   cargo bench -p verifier --bench verify            (N=200 signatures per key and set)
//!   BENCH_N=50 cargo bench -p verifier --bench verify

#![allow(clippy::unwrap_used)] // a benchmark: any failure is a bug to see at once

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::armor;
use openpgp::cert::CertBuilder;
use openpgp::packet::Signature;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::serialize::{Marshal, SerializeInto};
use openpgp::types::SignatureType;
use verifier::{Keyring, Status, Verifier};

fn testkey(name: &str) -> Cert {
    Cert::from_file(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../testkeys/").to_owned() + name + ".sec.asc",
    )
    .unwrap()
}

fn content(key: &str, i: usize) -> Vec<u8> {
    format!(
        "object 1f935296a1d1f7e1b2c0e0c1d6f6c6e36e6d3b2a\ntype commit\ntag bench-{key}-{i}\n\
         tagger bench <bench@gt.invalid> {} +0000\n\nbench\n",
        1_735_689_600 + i
    )
    .into_bytes()
}

fn sign(cert: &Cert, msg: &[u8]) -> Signature {
    let key = cert
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap();
    let mut pair = key.into_keypair().unwrap();
    SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(UNIX_EPOCH + Duration::from_secs(1_735_689_600))
        .unwrap()
        .sign_message(&mut pair, msg)
        .unwrap()
}

fn tag_bytes(content: &[u8], sig: &Signature) -> Vec<u8> {
    let mut out = content.to_vec();
    let mut w = armor::Writer::new(&mut out, armor::Kind::Signature).unwrap();
    openpgp::Packet::from(sig.clone())
        .serialize(&mut w)
        .unwrap();
    w.finalize().unwrap();
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let time = UNIX_EPOCH + Duration::from_secs(1_780_272_000);
    println!("per-signature verification, {n} distinct signatures per set, medians");
    println!(
        "{:<10} {:>12} {:>12} {:>7}",
        "key", "raw (us)", "gt (us)", "gt/raw"
    );
    for name in ["ed25519", "rsa2048", "rsa4096"] {
        let cert = testkey(name);
        let mut keyring = Keyring::new();
        keyring
            .add_bytes(&cert.armored().to_vec().unwrap(), name)
            .unwrap();
        let verifier = Verifier::new(&keyring, time);
        let public = cert.primary_key().key().clone();
        // Disjoint sets: raw uses contents 0..n, gt uses n..2n.
        let raw_set: Vec<(Vec<u8>, Signature)> = (0..n)
            .map(|i| {
                let c = content(name, i);
                let s = sign(&cert, &c);
                (c, s)
            })
            .collect();
        let gt_set: Vec<Vec<u8>> = (n..2 * n)
            .map(|i| {
                let c = content(name, i);
                let s = sign(&cert, &c);
                tag_bytes(&c, &s)
            })
            .collect();
        let raw: Vec<Duration> = raw_set
            .iter()
            .map(|(c, s)| {
                let t = Instant::now();
                s.verify_message(&public, c).unwrap();
                t.elapsed()
            })
            .collect();
        let gt: Vec<Duration> = gt_set
            .iter()
            .map(|bytes| {
                let t = Instant::now();
                let r = verifier.verify_bytes(bytes);
                let e = t.elapsed();
                assert_eq!(r.levels[0].signatures[0].status, Status::Good);
                e
            })
            .collect();
        let (r, g) = (median(raw), median(gt));
        println!(
            "{name:<10} {:>12.1} {:>12.1} {:>6.2}x",
            r.as_secs_f64() * 1e6,
            g.as_secs_f64() * 1e6,
            g.as_secs_f64() / r.as_secs_f64()
        );
    }

    // A 900-certificate keyring (each with a signing subkey), loaded from one armored file.
    let certs = 900;
    let mut file = Vec::new();
    let mut signer = None;
    for i in 0..certs {
        let (cert, _) = CertBuilder::new()
            .set_creation_time(UNIX_EPOCH + Duration::from_secs(1_577_836_800))
            .add_userid(format!("user {i} <u{i}@bench.invalid>"))
            .add_signing_subkey()
            .generate()
            .unwrap();
        if i == certs / 2 {
            signer = Some(cert.clone());
        }
        file.extend(cert.armored().to_vec().unwrap());
    }
    let signer = signer.unwrap();
    let c = content("keyring", 0);
    let key = signer
        .keys()
        .subkeys()
        .secret()
        .next()
        .unwrap()
        .key()
        .clone();
    let mut pair = key.into_keypair().unwrap();
    let sig = SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600))
        .unwrap()
        .sign_message(&mut pair, &c)
        .unwrap();
    let tag = tag_bytes(&c, &sig);
    let mut loads = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut k = Keyring::new();
        k.add_bytes(&file, "bench").unwrap();
        loads.push(t.elapsed());
        assert_eq!(k.len(), certs);
        let t = Instant::now();
        let r = Verifier::new(&k, time).verify_bytes(&tag);
        firsts.push(t.elapsed());
        assert_eq!(r.levels[0].signatures[0].status, Status::Good);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "keyring: {certs} certificates, {} KiB armored: load {:.1} ms, then first verification \
         (parses the one certificate needed) {:.2} ms (medians of 5)",
        file.len() / 1024,
        median(loads).as_secs_f64() * 1e3,
        median(firsts).as_secs_f64() * 1e3
    )
    .unwrap();
}
