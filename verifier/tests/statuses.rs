//! Every signature status and every layout, with real signatures by the committed test keys.
//!
//! Signatures are made with sequoia at fixed times (so `expired` can sign after its expiry,
//! which gpg refuses to do) and verified at a pinned reference time.

mod common;

use std::collections::BTreeSet;

use common::*;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::serialize::SerializeInto;
use sequoia_openpgp::types::HashAlgorithm;
use verifier::parse::ParseError;
use verifier::{LayoutKind, Status, TagObject, Verifier};

const ALL: &[&str] = &[
    "ed25519",
    "rsa2048",
    "rsa4096",
    "subkey",
    "expired",
    "revoked",
    "sha1-selfsig",
    "rsa1024",
];

fn statuses(report: &verifier::TagReport) -> Vec<Status> {
    report.signatures().map(|(_, s)| s.status).collect()
}

#[test]
fn good_signature_for_each_key_type() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    for name in ["ed25519", "rsa2048", "rsa4096", "subkey"] {
        let c = content(&format!("v-{name}"), "commit", COMMIT);
        let tag = one_block(&c, &[name]);
        let report = v.verify_bytes(&tag);
        assert_eq!(statuses(&report), [Status::Good], "{name}: {report:?}");
        let sig = &report.levels[0].signatures[0];
        assert_eq!(sig.signer.as_ref().unwrap().to_string(), principal(name));
        assert_eq!(sig.created, Some(SIGNED_AT as i64));
        let verified = report.verified().unwrap();
        assert_eq!(verified.name(), format!("v-{name}"));
        assert_eq!(verified.target().to_string(), COMMIT);
        assert_eq!(verified.tagger().unwrap().email, "tests@gt.invalid");
        assert_eq!(
            verified
                .signers()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [principal(name)]
        );
    }
    // The subkey's signature names the subkey as issuer, the primary as signer.
    let c = content("v-sub", "commit", COMMIT);
    let report = v.verify_bytes(&one_block(&c, &["subkey"]));
    let sig = &report.levels[0].signatures[0];
    assert_ne!(sig.key.as_deref(), Some(fingerprint("subkey").as_str()));
}

#[test]
fn one_block_with_three_signers_counts_each_once() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v1.0", "commit", COMMIT);
    // ed25519 signs twice: still one principal.
    let tag = one_block(&c, &["ed25519", "rsa2048", "rsa4096", "ed25519"]);
    let report = v.verify_bytes(&tag);
    assert_eq!(report.levels[0].layout, LayoutKind::OneBlock);
    assert_eq!(statuses(&report), [Status::Good; 4]);
    let expected: BTreeSet<String> = ["ed25519", "rsa2048", "rsa4096"]
        .iter()
        .map(|n| principal(n))
        .collect();
    let got: BTreeSet<String> = report.signers().iter().map(ToString::to_string).collect();
    assert_eq!(got, expected);
    assert_eq!(report.verified().unwrap().signers().len(), 3);
}

#[test]
fn onion_layout_verifies_each_block_over_the_blocks_before_it() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v2.0", "commit", COMMIT);
    let report = v.verify_bytes(&onion(&c, &["ed25519", "rsa2048", "subkey"]));
    assert_eq!(report.levels[0].layout, LayoutKind::Onion);
    assert_eq!(statuses(&report), [Status::Good; 3]);
    assert_eq!(report.signers().len(), 3);
    assert!(report.is_verified());
}

#[test]
fn independently_appended_blocks_are_malformed() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v3.0", "commit", COMMIT);
    let report = v.verify_bytes(&appended(&c, &["ed25519", "rsa2048"]));
    assert_eq!(statuses(&report), [Status::Good, Status::Malformed]);
    let detail = report.levels[0].signatures[1].detail.as_deref().unwrap();
    assert!(detail.contains("independently appended"), "{detail}");
    assert!(!report.is_verified());
    assert!(report.verified().is_none());
}

#[test]
fn tampered_content_is_bad_and_spoils_the_tag() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v4.0", "commit", COMMIT);
    let mut tag = one_block(&c, &["rsa2048"]);
    // Change the tag name: same length, so only the signature can notice.
    let pos = tag.windows(8).position(|w| w == b"tag v4.0").unwrap();
    tag[pos + 5] = b'5';
    let report = v.verify_bytes(&tag);
    assert_eq!(statuses(&report), [Status::Bad]);
    // A good signature next to a bad one does not rescue the tag.
    let mut sigs = vec![sign("ed25519", &c), sign("rsa2048", &c)];
    sigs[1] = sign("rsa2048", b"something else");
    let mut tag = c.clone();
    tag.extend(armor_block(&sigs));
    let report = v.verify_bytes(&tag);
    assert_eq!(statuses(&report), [Status::Good, Status::Bad]);
    assert!(!report.is_verified());
}

#[test]
fn unknown_key_names_the_issuer() {
    let keyring = keyring(&["rsa2048"]);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v5.0", "commit", COMMIT);
    let report = v.verify_bytes(&one_block(&c, &["ed25519", "rsa2048"]));
    assert_eq!(statuses(&report), [Status::UnknownKey, Status::Good]);
    let sig = &report.levels[0].signatures[0];
    assert_eq!(sig.issuer.as_deref(), Some(fingerprint("ed25519").as_str()));
    assert!(sig.signer.is_none());
    // An unknown key does not veto the tag.
    assert!(report.is_verified());
    let only_unknown = v.verify_bytes(&one_block(&c, &["ed25519"]));
    assert!(!only_unknown.is_verified());
}

#[test]
fn expired_key_before_and_after_expiry() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v6.0", "commit", COMMIT);
    // 2021-01-01: before the 2022-01-01 expiry.
    let before = sign_with("expired", &c, at(1_609_459_200), HashAlgorithm::SHA256);
    let after = sign("expired", &c);
    let mut tag = c.clone();
    tag.extend(armor_block(&[before, after]));
    let report = v.verify_bytes(&tag);
    assert_eq!(statuses(&report), [Status::Good, Status::ExpiredKey]);
    let sig = &report.levels[0].signatures[1];
    assert_eq!(
        sig.signer.as_ref().unwrap().to_string(),
        principal("expired")
    );
}

#[test]
fn revoked_key_is_revoked_at_any_time() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v7.0", "commit", COMMIT);
    // A hard revocation ("no reason") applies even to signatures dated before it.
    let early = sign_with("revoked", &c, at(1_577_836_900), HashAlgorithm::SHA256);
    let mut tag = c.clone();
    tag.extend(armor_block(&[early, sign("revoked", &c)]));
    let report = v.verify_bytes(&tag);
    assert_eq!(statuses(&report), [Status::RevokedKey, Status::RevokedKey]);
    // Without the revocation (the key as it was before), the same signatures are good.
    let mut unrevoked = verifier::Keyring::new();
    unrevoked
        .add_bytes(
            &secret("revoked").armored().to_vec().unwrap(),
            "revoked (unrevoked copy)",
        )
        .unwrap();
    let report = Verifier::new(&unrevoked, pinned()).verify_bytes(&tag);
    assert_eq!(statuses(&report), [Status::Good, Status::Good]);
}

#[test]
fn weak_algorithms_are_refused_and_named() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v8.0", "commit", COMMIT);
    let sha1_data = sign_with("ed25519", &c, at(SIGNED_AT), HashAlgorithm::SHA1);
    let mut tag = c.clone();
    tag.extend(armor_block(&[
        sha1_data,
        sign("sha1-selfsig", &c),
        sign("rsa1024", &c),
    ]));
    let report = v.verify_bytes(&tag);
    assert_eq!(statuses(&report), [Status::WeakAlgorithm; 3]);
    let sigs = &report.levels[0].signatures;
    assert_eq!(sigs[0].hash.as_deref(), Some("SHA1"));
    assert!(sigs[0].detail.as_deref().unwrap().contains("SHA1"));
    assert!(
        sigs[1].detail.as_deref().unwrap().contains("SHA1"),
        "{:?}",
        sigs[1]
    );
    assert!(
        sigs[2].detail.as_deref().unwrap().contains("RSA1024"),
        "{:?}",
        sigs[2]
    );
    for (s, n) in sigs.iter().zip(["ed25519", "sha1-selfsig", "rsa1024"]) {
        assert_eq!(s.signer.as_ref().unwrap().to_string(), principal(n));
    }
    assert!(!report.is_verified());
}

#[test]
fn future_and_expired_signatures() {
    let keyring = keyring(ALL);
    // Reference time 2024: a 2025 signature is from the future.
    let v = Verifier::new(&keyring, at(1_704_067_200));
    let c = content("v9.0", "commit", COMMIT);
    let report = v.verify_bytes(&one_block(&c, &["ed25519"]));
    assert_eq!(statuses(&report), [Status::FutureSignature]);
}

#[test]
fn malformed_layouts_name_what_and_where() {
    let c = content("v10", "commit", COMMIT);
    let good = one_block(&c, &["ed25519"]);
    let start = c.len();

    let mut trailing = good.clone();
    trailing.extend(b"hello\n");
    assert_eq!(
        TagObject::parse(&trailing).unwrap_err(),
        ParseError::TrailingText {
            offset: good.len(),
            after_block: 1
        }
    );

    let mut between = good.clone();
    between.extend(b"\n");
    between.extend(armor_block(&[sign("rsa2048", &c)]));
    assert!(matches!(
        TagObject::parse(&between).unwrap_err(),
        ParseError::TrailingText { after_block: 1, .. }
    ));

    let unterminated = &good[..good.len() - 10];
    assert_eq!(
        TagObject::parse(unterminated).unwrap_err(),
        ParseError::Unterminated {
            block: 1,
            offset: start
        }
    );

    let mut garbage = c.clone();
    garbage
        .extend(b"-----BEGIN PGP SIGNATURE-----\n\n!!!!notbase64\n-----END PGP SIGNATURE-----\n");
    assert!(matches!(
        TagObject::parse(&garbage).unwrap_err(),
        ParseError::Armor { block: 1, .. }
            | ParseError::Packet { block: 1, .. }
            | ParseError::EmptyBlock { block: 1, .. }
    ));

    // A public key where a signature belongs.
    let cert = std::fs::read(testkeys().join("ed25519.pub.asc")).unwrap();
    let cert = sequoia_openpgp::Cert::from_bytes(&cert).unwrap();
    let mut bin = Vec::new();
    use sequoia_openpgp::serialize::Marshal;
    sequoia_openpgp::Packet::from(cert.primary_key().key().clone())
        .serialize(&mut bin)
        .unwrap();
    let mut armored = Vec::new();
    let mut w =
        sequoia_openpgp::armor::Writer::new(&mut armored, sequoia_openpgp::armor::Kind::Signature)
            .unwrap();
    std::io::Write::write_all(&mut w, &bin).unwrap();
    w.finalize().unwrap();
    let mut not_sig = c.clone();
    not_sig.extend(armored);
    assert!(matches!(
        TagObject::parse(&not_sig).unwrap_err(),
        ParseError::NotASignature {
            block: 1,
            packet: 1,
            ..
        }
    ));

    let mut ssh = c.clone();
    ssh.extend(b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n");
    assert_eq!(
        TagObject::parse(&ssh).unwrap_err(),
        ParseError::UnsupportedFormat {
            format: "SSH",
            offset: start
        }
    );

    let mut header_bad = b"object nothex\n".to_vec();
    header_bad.extend(&good[c.iter().position(|&b| b == b'\n').unwrap() + 1..]);
    assert!(matches!(
        TagObject::parse(&header_bad).unwrap_err(),
        ParseError::Header { .. }
    ));

    // Malformed objects make a report with the error and the tag fails.
    let keyring = keyring(ALL);
    let report = Verifier::new(&keyring, pinned()).verify_bytes(&trailing);
    assert_eq!(report.levels[0].layout, LayoutKind::Malformed);
    assert!(report.levels[0].error.as_deref().unwrap().contains("byte"));
    assert!(!report.is_verified());
}

#[test]
fn a_marker_mid_line_is_message_text_not_a_signature() {
    let mut c = content("v11", "commit", COMMIT);
    c.extend(b"see the -----BEGIN PGP SIGNATURE----- line below\n");
    let tag = one_block(&c, &["ed25519"]);
    let parsed = TagObject::parse(&tag).unwrap();
    assert_eq!(parsed.content(), &c[..]);
}

#[test]
fn limits_at_the_boundary() {
    use verifier::limits::{MAX_SIGNATURE_BLOCKS, MAX_SIGNATURES_PER_TAG, MAX_TAG_OBJECT_BYTES};
    let c = content("v12", "commit", COMMIT);
    let sig = sign("ed25519", &c);
    let sigs = vec![sig; MAX_SIGNATURES_PER_TAG];
    let mut tag = c.clone();
    tag.extend(armor_block(&sigs));
    assert_eq!(
        TagObject::parse(&tag).unwrap().packets().len(),
        MAX_SIGNATURES_PER_TAG
    );
    let mut sigs = sigs;
    sigs.push(sign("ed25519", &c));
    let mut tag = c.clone();
    tag.extend(armor_block(&sigs));
    assert!(matches!(
        TagObject::parse(&tag).unwrap_err(),
        ParseError::TooManySignatures {
            limit: MAX_SIGNATURES_PER_TAG,
            ..
        }
    ));

    let mut blocks = c.clone();
    for _ in 0..MAX_SIGNATURE_BLOCKS {
        blocks.extend(armor_block(&[sign("ed25519", &c)]));
    }
    assert_eq!(
        TagObject::parse(&blocks).unwrap().blocks().len(),
        MAX_SIGNATURE_BLOCKS
    );
    blocks.extend(armor_block(&[sign("ed25519", &c)]));
    assert!(matches!(
        TagObject::parse(&blocks).unwrap_err(),
        ParseError::TooManyBlocks { block: 17, .. }
    ));

    let mut big = content("v13", "commit", COMMIT);
    big.resize(MAX_TAG_OBJECT_BYTES, b'x');
    assert!(TagObject::parse(&big).is_ok());
    big.push(b'x');
    assert_eq!(
        TagObject::parse(&big).unwrap_err(),
        ParseError::TooLarge {
            size: MAX_TAG_OBJECT_BYTES + 1,
            limit: MAX_TAG_OBJECT_BYTES
        }
    );
}

#[test]
fn add_signature_keeps_existing_packets_and_content() {
    let keyring = keyring(ALL);
    let v = Verifier::new(&keyring, pinned());
    let c = content("v14", "commit", COMMIT);
    let tag = TagObject::parse(&one_block(&c, &["ed25519"])).unwrap();
    let more = verifier::stack::add_signature(&tag, &sign("rsa4096", &c)).unwrap();
    let parsed = TagObject::parse(&more).unwrap();
    assert_eq!(parsed.content(), tag.content());
    assert_eq!(parsed.blocks().len(), 1);
    let report = v.verify_bytes(&more);
    assert_eq!(statuses(&report), [Status::Good, Status::Good]);
    // Onion tags are not co-signed in the one-block layout.
    let onion_tag = TagObject::parse(&onion(&c, &["ed25519", "rsa2048"])).unwrap();
    assert!(verifier::stack::add_signature(&onion_tag, &sign("rsa4096", &c)).is_err());
}

#[test]
fn keyring_merges_duplicates_and_loads_directories() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["ed25519", "rsa2048"] {
        std::fs::copy(
            testkeys().join(format!("{n}.pub.asc")),
            dir.path().join(format!("{n}.asc")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("README"), "not a key\n").unwrap();
    let mut k = verifier::Keyring::new();
    assert_eq!(k.add_path(dir.path()).unwrap(), 2);
    assert_eq!(k.warnings().len(), 1, "{:?}", k.warnings());
    // The same certificate again: merged, not duplicated.
    k.add_file(&testkeys().join("ed25519.pub.asc")).unwrap();
    assert_eq!(k.len(), 2);
    // The revoked cert merged onto its unrevoked copy: the revocation wins.
    let mut k = verifier::Keyring::new();
    k.add_bytes(&secret("revoked").armored().to_vec().unwrap(), "old copy")
        .unwrap();
    k.add_file(&testkeys().join("revoked.pub.asc")).unwrap();
    assert_eq!(k.len(), 1);
    let c = content("v15", "commit", COMMIT);
    let report = Verifier::new(&k, pinned()).verify_bytes(&one_block(&c, &["revoked"]));
    assert_eq!(statuses(&report), [Status::RevokedKey]);
    // One file with many certificates.
    let mut many = Vec::new();
    for n in ALL {
        many.extend(std::fs::read(testkeys().join(format!("{n}.pub.asc"))).unwrap());
    }
    let mut k = verifier::Keyring::new();
    assert_eq!(k.add_bytes(&many, "concatenated").unwrap(), ALL.len());
    assert!(matches!(
        verifier::Keyring::new().add_bytes(b"hello", "junk"),
        Err(verifier::keyring::KeyringError::NoCerts { .. })
    ));
}

#[test]
fn fuzz_function_survives_random_mutations() {
    // A quick in-test run of the fuzz logic (the long run is the fuzz target / ignored test).
    let c = content("v16", "commit", COMMIT);
    let seeds = [
        one_block(&c, &["ed25519", "rsa2048"]),
        onion(&c, &["ed25519", "rsa2048"]),
        appended(&c, &["ed25519"]),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..3000 {
        let mut data = seeds[i % seeds.len()].clone();
        for _ in 0..(next() % 8 + 1) {
            let len = data.len().max(1) as u64;
            let pos = (next() % len) as usize;
            match next() % 4 {
                0 => data[pos] = next() as u8,
                1 => data.truncate(pos),
                2 => data.insert(pos, b'\n'),
                _ => data.insert(pos, b'-'),
            }
            if data.is_empty() {
                break;
            }
        }
        verifier::fuzz_parse_tag(&data);
    }
}
