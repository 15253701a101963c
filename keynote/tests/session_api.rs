//! The session API as the policy crate uses it: typed errors, the explanation of which
//! assertions granted what, and failures with their reasons.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::{AttributeError, FailureReason, QueryError, Session, Trust};

#[test]
fn explanation_lists_the_granting_assertions() {
    let mut s = Session::default();
    s.set_values(["no", "maybe", "yes"]);
    s.add_authorizer("alice").unwrap();
    let policy = s
        .add_assertion(
            "Authorizer: \"POLICY\"\nLicensees: \"ca\" || \"other\"\n",
            Trust::Trusted,
        )
        .unwrap();
    let ca = s
        .add_assertion(
            "Authorizer: \"ca\"\nLicensees: \"alice\"\nConditions: true -> \"maybe\";\n",
            Trust::Trusted,
        )
        .unwrap();
    let unrelated = s
        .add_assertion(
            "Authorizer: \"nobody\"\nLicensees: \"alice\"\n",
            Trust::Trusted,
        )
        .unwrap();
    let r = s.query().unwrap();
    assert_eq!((r.index, r.value.as_str()), (1, "maybe"));
    assert_eq!(r.granted, vec![(policy, 1), (ca, 1)]);
    assert!(!r.granted.iter().any(|(id, _)| *id == unrelated));
    assert!(r.failures.is_empty());
}

#[test]
fn failures_carry_typed_reasons() {
    let mut s = Session::default();
    s.set_values(["false", "true"]);
    s.add_authorizer("alice").unwrap();
    s.add_assertion(
        "Authorizer: \"POLICY\"\nLicensees: \"carol\"\n",
        Trust::Trusted,
    )
    .unwrap();
    let cred = s
        .add_assertion(
            "Authorizer: \"carol\"\nLicensees: \"alice\"\n",
            Trust::Untrusted,
        )
        .unwrap();
    let bad = s
        .add_assertion(
            "Authorizer: \"POLICY\"\nLicensees: \"alice\"\nConditions: @x == \"1\";\n",
            Trust::Trusted,
        )
        .unwrap();
    let r = s.query().unwrap();
    assert_eq!(r.value, "false");
    assert_eq!(r.failures.len(), 2);
    assert_eq!(r.failures[0].assertion, cred);
    assert!(matches!(r.failures[0].reason, FailureReason::Unsigned));
    assert!(r.failures[0].reason.is_signature());
    assert_eq!(r.failures[1].assertion, bad);
    assert!(matches!(r.failures[1].reason, FailureReason::Syntax(_)));
}

#[test]
fn inputs_are_validated() {
    let mut s = Session::default();
    assert_eq!(s.query().unwrap_err(), QueryError::NoValues);
    assert!(matches!(
        s.set_attribute("_x", "1"),
        Err(AttributeError::Reserved(_))
    ));
    assert!(matches!(
        s.set_attribute("", "1"),
        Err(AttributeError::Empty)
    ));
    assert!(s.add_authorizer("rsa-hex:abc").is_err());
    s.set_values(["only"]);
    // No POLICY assertion: the lowest value.
    assert_eq!(s.query().unwrap().value, "only");
}

#[test]
fn trusted_policy_is_not_signature_checked_but_untrusted_policy_is_no_root() {
    let mut s = Session::default();
    s.set_values(["false", "true"]);
    s.add_authorizer("alice").unwrap();
    s.add_assertion(
        "Authorizer: \"POLICY\"\nLicensees: \"alice\"\n",
        Trust::Untrusted,
    )
    .unwrap();
    assert_eq!(s.query().unwrap().value, "false");
    s.add_assertion(
        "Authorizer: \"POLICY\"\nLicensees: \"alice\"\nSignature: \"sig-rsa-sha1-hex:00\"\n",
        Trust::Trusted,
    )
    .unwrap();
    assert_eq!(s.query().unwrap().value, "true");
}

#[test]
fn parallel_signature_checks_give_the_same_answer() {
    let run = |threads: usize| {
        let mut s = Session::default();
        s.set_parallelism(threads);
        s.set_values(["false", "true"]);
        s.add_authorizer("alice").unwrap();
        s.add_assertion(
            "Authorizer: \"POLICY\"\nLicensees: \"c0\"\n",
            Trust::Trusted,
        )
        .unwrap();
        for i in 0..40 {
            let text = format!(
                "Authorizer: \"c{i}\"\nLicensees: \"c{}\" || \"alice\"\n",
                i + 1
            );
            s.add_assertion(&text, Trust::Untrusted).unwrap();
        }
        let r = s.query().unwrap();
        (r.value, r.failures)
    };
    let one = run(1);
    assert_eq!(one.0, "false");
    // Reaching ignores signatures (as in the reference), so every credential of the chain
    // is reached, checked, and fails: none is signed.
    assert_eq!(one.1.len(), 40);
    assert_eq!(run(4), one);
}
