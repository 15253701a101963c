//! The decision API on real repositories with sequoia-generated keys: deny by default, K of a
//! 900-key keyring, OpenPGP credentials signed and verified in-process, explanations, and the
//! `refs/gt/policy` loader.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use policy::{
    Decision, Evaluator, PolicyFile, PolicySet, RefUpdate, Source, sign_with_cert, zero_oid,
};

fn evaluator(text: &str, certs: &[sequoia_openpgp::Cert]) -> Evaluator {
    let mut set = PolicySet::new();
    set.add_trusted(PolicyFile::parse("test.kn", text).unwrap());
    Evaluator::new(set, keyring(certs), at(DECIDE_AT))
}

fn create(name: &str, oid: gix::ObjectId) -> RefUpdate {
    RefUpdate::new(
        "r",
        format!("refs/tags/{name}"),
        zero_oid(),
        oid,
        Source::Cli,
    )
}

#[test]
fn an_empty_policy_rejects_everything_with_a_reason() {
    let keys = certs(1);
    let (_t, dir, head) = repo();
    let oid = store_tag(&dir, "v1", &tag_bytes("v1", &head, &[&keys[0]]));
    let ev = Evaluator::new(PolicySet::new(), keyring(&keys), at(DECIDE_AT));
    let objects = verifier::TagSource::open(&dir).unwrap();
    let v = ev.decide(&create("v1", oid), &objects);
    assert_eq!(v.decision, Decision::Reject);
    assert!(
        v.reasons[0].contains("no trusted policy assertion applies"),
        "{v:?}"
    );
    assert_eq!(v.signers, vec![principal(&keys[0])]);
    // Nothing to do and invalid names are rejected before any policy.
    let v = ev.decide(
        &RefUpdate::new("r", "refs/tags/v1", zero_oid(), zero_oid(), Source::Cli),
        &objects,
    );
    assert!(v.reasons[0].contains("operation check"), "{v:?}");
    let v = ev.decide(
        &RefUpdate::new("r", "refs/tags/a..b", zero_oid(), oid, Source::Cli),
        &objects,
    );
    assert!(v.reasons[0].contains("ref name check"), "{v:?}");
    // An object that is not there.
    let missing = gix::ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap();
    let v = ev.decide(&create("v1", missing), &objects);
    assert!(v.reasons[0].contains("object check"), "{v:?}");
}

#[test]
fn k_of_a_900_key_keyring() {
    let keys = certs(900);
    let ring = keyring(&keys);
    let text = policy::to_policy::keyring_policy(
        &ring,
        &policy::to_policy::ToPolicy {
            threshold: 3,
            ref_pattern: Some("^refs/tags/v"),
            value: Decision::Propagate,
            source: "generated",
        },
    )
    .unwrap();
    let ev = evaluator(&text, &keys);
    let (_t, dir, head) = repo();
    let objects = verifier::TagSource::open(&dir).unwrap();
    let three = store_tag(
        &dir,
        "v3",
        &tag_bytes("v3", &head, &[&keys[7], &keys[450], &keys[899]]),
    );
    let two = store_tag(&dir, "v2", &tag_bytes("v2", &head, &[&keys[7], &keys[450]]));
    let v = ev.decide(&create("v3", three), &objects);
    assert_eq!(v.decision, Decision::Propagate, "{v:?}");
    assert_eq!(v.granted_by.len(), 1);
    let v = ev.decide(&create("v2", two), &objects);
    assert_eq!(v.decision, Decision::Reject);
    let r = &v.reasons[0];
    assert!(r.contains("needs 3 of {"), "{r}");
    assert!(
        r.contains(&format!(
            "... {} more}}",
            900 - policy::limits::MAX_EXPLAINED_PRINCIPALS
        )),
        "{r}"
    );
    assert!(r.contains("got {key"), "{r}");
    // The pattern is honoured: a 3-signer tag elsewhere is not granted.
    let other = store_tag(
        &dir,
        "x3",
        &tag_bytes("x3", &head, &[&keys[1], &keys[2], &keys[3]]),
    );
    assert_eq!(
        ev.decide(&create("x3", other), &objects).decision,
        Decision::Reject
    );
}

#[test]
fn signed_credentials_delegate_and_tampering_breaks_them() {
    let keys = certs(3);
    let (lead, lt, stranger) = (&keys[0], &keys[1], &keys[2]);
    let root = format!(
        "Authorizer: \"POLICY\"\nLicensees: \"{}\"\n\
         Conditions: app_domain == \"gittorrent\" && ref_kind == \"tag\" -> \"accept\";\n",
        principal(lead)
    );
    let cred = format!(
        "KeyNote-Version: 2\nAuthorizer: \"{}\"\nLicensees: \"{}\"\n\
         Conditions: tag_name ~= \"^net-\";\n",
        principal(lead),
        principal(lt)
    );
    let signed = sign_with_cert(&cred, lead, at(SIGNED_AT)).unwrap();
    assert!(signed.contains("Signature: \"sig-openpgp-base64:"));
    // A stranger cannot sign the lead's credential.
    assert!(matches!(
        sign_with_cert(&cred, stranger, at(SIGNED_AT)),
        Err(policy::SignError::WrongKey { .. })
    ));
    // POLICY assertions are never signed.
    assert!(matches!(
        sign_with_cert(&root, lead, at(SIGNED_AT)),
        Err(policy::SignError::PolicyAssertion)
    ));

    let (_t, dir, head) = repo();
    let objects = verifier::TagSource::open(&dir).unwrap();
    let net = store_tag(&dir, "net-1", &tag_bytes("net-1", &head, &[lt]));
    let usb = store_tag(&dir, "usb-1", &tag_bytes("usb-1", &head, &[lt]));
    let decide = |creds: &str, update: &RefUpdate| {
        let mut set = PolicySet::new();
        set.add_trusted(PolicyFile::parse("root.kn", &root).unwrap());
        set.add_credentials(PolicyFile::parse("creds.kn", creds).unwrap());
        Evaluator::new(set, keyring(&keys), at(DECIDE_AT)).decide(update, &objects)
    };
    let v = decide(&signed, &create("net-1", net));
    assert_eq!(v.decision, Decision::Accept, "{v:?}");
    let path: Vec<String> = v.granted_by.iter().map(ToString::to_string).collect();
    assert_eq!(path, ["root.kn:1", "creds.kn:1"]);
    assert_eq!(
        decide(&signed, &create("usb-1", usb)).decision,
        Decision::Reject
    );
    // Widening the delegation without re-signing: ignored, and reported.
    let forged = signed.replace("^net-", "^");
    let v = decide(&forged, &create("usb-1", usb));
    assert_eq!(v.decision, Decision::Reject);
    assert!(
        v.warnings.iter().any(|w| w.contains("does not verify")),
        "{v:?}"
    );
    // Unsigned: ignored.
    let v = decide(&cred, &create("net-1", net));
    assert_eq!(v.decision, Decision::Reject);
    assert!(v.warnings.iter().any(|w| w.contains("not signed")), "{v:?}");
    // Without the lead's certificate the signature cannot be checked.
    let mut set = PolicySet::new();
    set.add_trusted(PolicyFile::parse("root.kn", &root).unwrap());
    set.add_credentials(PolicyFile::parse("creds.kn", &signed).unwrap());
    let v = Evaluator::new(set, keyring(&keys[1..]), at(DECIDE_AT))
        .decide(&create("net-1", net), &objects);
    assert_eq!(v.decision, Decision::Reject);
    assert!(
        v.warnings.iter().any(|w| w.contains("unknown-key")),
        "{v:?}"
    );
}

#[test]
fn the_openpgp_algorithm_checks_the_authorizer_spelling_and_key() {
    let keys = certs(2);
    let cred = format!(
        "Authorizer: \"{}\"\nLicensees: \"{}\"\n",
        principal(&keys[0]),
        principal(&keys[1])
    );
    let signed = sign_with_cert(&cred, &keys[0], at(SIGNED_AT)).unwrap();
    let a = keynote::Assertion::parse(&signed).unwrap();
    let reg = policy::registry(Arc::new(keyring(&keys)), at(DECIDE_AT));
    let p = |s: &str| keynote::crypto::Principal::parse(s).unwrap();
    let sig = a.signature_value().unwrap();
    assert!(
        reg.verify_assertion(&p(&principal(&keys[0])), a.signed_body(), sig)
            .is_ok()
    );
    // The other key, or the lower-case spelling of the right one, is not the signer.
    assert!(
        reg.verify_assertion(&p(&principal(&keys[1])), a.signed_body(), sig)
            .is_err()
    );
    let lower = format!("openpgp:{}", principal(&keys[0])[8..].to_lowercase());
    assert!(
        reg.verify_assertion(&p(&lower), a.signed_body(), sig)
            .is_err()
    );
    // Garbage and oversized signatures are refused, not panicked on.
    for bad in [
        "sig-openpgp-base64:",
        "sig-openpgp-base64:AAAA",
        "sig-openpgp-base64:!!",
    ] {
        assert!(
            reg.verify_assertion(&p(&principal(&keys[0])), a.signed_body(), bad)
                .is_err()
        );
    }
    let huge = format!(
        "sig-openpgp-base64:{}",
        "A".repeat((policy::limits::MAX_OPENPGP_SIGNATURE_BYTES + 3) / 3 * 4)
    );
    let e = reg
        .verify_assertion(&p(&principal(&keys[0])), a.signed_body(), &huge)
        .unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    // Before the signature was made, it does not count (future signature).
    let early = policy::registry(Arc::new(keyring(&keys)), at(SIGNED_AT - 86_400));
    assert!(
        early
            .verify_assertion(&p(&principal(&keys[0])), a.signed_body(), sig)
            .is_err()
    );
}

#[test]
fn the_repository_policy_is_read_from_refs_gt_policy() {
    let keys = certs(2);
    let (_t, dir, _head) = repo();
    let cred = format!(
        "Authorizer: \"{}\"\nLicensees: \"{}\"\n",
        principal(&keys[0]),
        principal(&keys[1])
    );
    let signed = sign_with_cert(&cred, &keys[0], at(SIGNED_AT)).unwrap();
    let text = format!("# credentials\n\n{signed}\nAuthorizer: \"POLICY\"\n");
    std::fs::write(dir.join("policy.kn"), &text).unwrap();
    git(&dir, &["add", "policy.kn"]);
    git(&dir, &["commit", "-q", "-m", "policy"]);
    let c = git(&dir, &["rev-parse", "HEAD"]);
    git(&dir, &["update-ref", "refs/gt/policy", &c]);
    let objects = verifier::TagSource::open(&dir).unwrap();
    let mut ev = Evaluator::new(PolicySet::new(), keyring(&keys), at(DECIDE_AT));
    assert!(ev.add_repository_policy(&objects).unwrap());
    assert_eq!(
        ev.policies().entries().len(),
        1,
        "the POLICY assertion is dropped"
    );
    assert!(
        ev.policies().warnings()[0].contains("refs/gt/policy:policy.kn:7"),
        "{:?}",
        ev.policies().warnings()
    );
    assert_eq!(ev.policies().entries()[0].0.origin.line, 3);
}

/// A signer the rejecting assertion does not name is reported apart from those it counts, so
/// "needs 2 of {A, B, C}" is never followed by a two-name "got" list that only looks sufficient.
#[test]
fn rejection_lists_unnamed_signers_apart() {
    let keys = certs(4);
    let ring = keyring(&keys[..3]);
    let text = policy::to_policy::keyring_policy(
        &ring,
        &policy::to_policy::ToPolicy {
            threshold: 2,
            ref_pattern: None,
            value: Decision::Accept,
            source: "generated",
        },
    )
    .unwrap();
    let ev = evaluator(&text, &keys);
    let (_t, dir, head) = repo();
    let objects = verifier::TagSource::open(&dir).unwrap();
    let oid = store_tag(&dir, "v1", &tag_bytes("v1", &head, &[&keys[0], &keys[3]]));
    let v = ev.decide(&create("v1", oid), &objects);
    assert_eq!(v.decision, Decision::Reject, "{v:?}");
    let r = &v.reasons[0];
    assert!(r.contains("needs 2 of {"), "{r}");
    let (got, also) = r
        .split_once("; got ")
        .unwrap()
        .1
        .split_once(" (also signed by ")
        .unwrap();
    assert_eq!(
        got, "{key0 <key0@gt.invalid>}",
        "only the named signer counts: {r}"
    );
    assert_eq!(also, "{key3 <key3@gt.invalid>}, not named here)", "{r}");
}
