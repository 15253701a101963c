//! The hooks for verifying many tags on several threads (`gt verify-tag`) change nothing about
//! the verdicts: `verify_parsed_gated` gives the report `verify_bytes` gives and calls its gate
//! once per signature that reaches key validation; `public_key_operations` counts exactly the
//! signatures that get a public-key operation; `self_signature_checks` covers the certificates
//! those signatures name, and running them first changes no report.

#![allow(clippy::unwrap_used)] // tests: a failure is a test failure

mod common;

use std::cell::Cell;

use common::*;
use sequoia_openpgp::types::HashAlgorithm;
use verifier::{TagObject, Verifier};

/// A one-block tag: good signatures by ed25519 and the subkey key, one by a key not in the
/// keyring (rsa2048), one with SHA-1 (refused before any public-key operation).
fn mixed_tag() -> Vec<u8> {
    let c = content("v-mixed", "commit", COMMIT);
    let sigs = vec![
        sign("ed25519", &c),
        sign("subkey", &c),
        sign("rsa2048", &c),
        sign_with("rsa4096", &c, at(SIGNED_AT), HashAlgorithm::SHA1),
    ];
    let mut tag = c;
    tag.extend(armor_block(&sigs));
    tag
}

/// Everything in a report, for comparing two.
fn dump(report: &verifier::TagReport) -> String {
    format!("{report:?}")
}

#[test]
fn gated_verification_is_the_same_and_gates_each_validation() {
    let keyring = keyring(&["ed25519", "subkey", "rsa4096"]);
    let v = Verifier::new(&keyring, pinned());
    let bytes = mixed_tag();
    let plain = v.verify_bytes(&bytes);

    let parsed = TagObject::parse(&bytes);
    assert_eq!(v.public_key_operations(parsed.as_ref().unwrap()), 2);
    let gated_calls = Cell::new(0);
    let gated = v.verify_parsed_gated(&bytes, parsed.as_ref(), &|| {
        gated_calls.set(gated_calls.get() + 1);
    });
    assert_eq!(dump(&gated), dump(&plain));
    assert_eq!(
        gated_calls.get(),
        2,
        "once per signature that reaches validation"
    );
    let statuses: Vec<&str> = plain.signatures().map(|(_, s)| s.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["good", "good", "unknown-key", "weak-algorithm"],
        "{plain:?}"
    );
}

#[test]
fn self_signature_checks_cover_the_named_certificates_and_change_nothing() {
    let keyring = keyring(&["ed25519", "subkey", "rsa4096"]);
    let v = Verifier::new(&keyring, pinned());
    let bytes = mixed_tag();
    let reference = dump(&Verifier::new(&keyring, pinned()).verify_bytes(&bytes));

    let parsed = TagObject::parse(&bytes).unwrap();
    let checks = v.self_signature_checks([&parsed]);
    // ed25519: primary + one user ID; subkey: its signing subkey first, primary, one user ID.
    // rsa4096 signed with SHA-1 only (no public-key operation), rsa2048 is not in the keyring:
    // neither is checked.
    assert_eq!(checks.len(), 5, "{checks:?}");
    for c in &checks {
        c.run();
    }
    assert_eq!(dump(&v.verify_bytes(&bytes)), reference);
}
