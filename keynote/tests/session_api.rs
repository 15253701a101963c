//! The session API as the policy crate uses it: typed errors, the explanation of which
//! assertions granted what, and failures with their reasons.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::session::PARALLEL_EVAL_MIN_CLAUSES;
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

#[test]
fn parallel_evaluation_of_a_long_program_gives_the_one_thread_answer() {
    // Clauses of every kind the evaluator treats specially: regex captures read by the same
    // clause (`_1`) and cleared before the next, runtime errors (division by zero) that make
    // only their own clause false, nested blocks, and `_MAX_TRUST` ending the search early.
    let clause = |i: usize| match i % 6 {
        0 => format!("app_domain == \"d{i}\" && @n > {i} -> \"v{}\";", i % 3),
        1 => format!(
            "name ~= \"^(a)(b)?$\" && _1 == \"a\" && _2 == \"\" -> \"v{}\";",
            i % 2
        ),
        2 => format!("_1 == \"a\" -> \"v2\";  # never: captures end with their clause ({i})"),
        3 => format!("@n / 0 == {i} || app_domain == \"e{i}\" -> \"v1\";"),
        4 => format!("app_domain == \"f{i}\" -> {{ @n > 100 -> \"v2\"; true -> \"v1\"; }};"),
        _ => format!("app_domain == \"g{i}\";"),
    };
    // Long enough to be shared between threads; a multiple of 6, so the last clauses are of
    // every kind.
    let clauses = (PARALLEL_EVAL_MIN_CLAUSES / 6 + 200) * 6;
    let program: String = (0..clauses).map(|i| clause(i) + "\n  ").collect();
    let run = |threads: usize, domain: &str, name: &str| {
        let mut s = Session::default();
        s.set_parallelism(threads);
        s.set_values(["v0", "v1", "v2", "v3"]);
        s.add_authorizer("alice").unwrap();
        for (k, v) in [("app_domain", domain), ("n", "123"), ("name", name)] {
            s.set_attribute(k, v).unwrap();
        }
        let text =
            format!("Authorizer: \"POLICY\"\nLicensees: \"alice\"\nConditions:\n  {program}\n");
        s.add_assertion(&text, Trust::Trusted).unwrap();
        let r = s.query().unwrap();
        (r.value, r.granted, r.failures.len())
    };
    let (late, last) = (format!("d{}", clauses - 6), format!("g{}", clauses - 1));
    for (domain, name) in [
        ("d6", "a"),           // an early v0, then v1 from the regex clauses
        (late.as_str(), "ab"), // late: only the last clauses' values
        ("f4", "x"),           // a block: v2
        ("g5", "x"),           // `_MAX_TRUST` (v3) in the first run
        (last.as_str(), "x"),  // ... in the last run
        ("e3", "x"),           // a clause whose error is in a skipped `||` operand
        ("none", "x"),         // nothing holds
    ] {
        let one = run(1, domain, name);
        for threads in [2, 3, 8] {
            assert_eq!(
                run(threads, domain, name),
                one,
                "{domain} {name}, {threads} threads"
            );
        }
    }
}

/// The answer of a one-assertion policy whose Conditions is `conditions`, over
/// `false`/`true`, with `n = 5` and `s = "abc"` in the action environment.
fn answer(conditions: &str) -> String {
    let mut s = Session::default();
    s.set_values(["false", "true"]);
    s.add_authorizer("alice").unwrap();
    s.set_attribute("n", "5").unwrap();
    s.set_attribute("s", "abc").unwrap();
    s.add_assertion(
        &format!("Authorizer: \"POLICY\"\nLicensees: \"alice\"\nConditions: {conditions}\n"),
        Trust::Trusted,
    )
    .unwrap();
    s.query().unwrap().value
}

/// Operands of `&&`/`||` that are not needed are skipped when evaluating them could change
/// nothing; these cases hold the skipping to the reference's rules for the ones it can change
/// (docs/REFERENCE-QUIRKS.md: a nested `&&`/`||` turns errors back on for the rest of the
/// skipped operand; `~=` clears the captures even there).
#[test]
fn skipped_operands_keep_the_reference_semantics() {
    for (conditions, want) in [
        // Errors in a skipped comparison are not raised.
        ("true || 1/0 == 1;", "true"),
        ("false && 1/0 == 1 || true;", "true"),
        ("!(false && 1/0 == 1);", "true"),
        ("true || !(1/0 == 1);", "true"),
        // A nested `&&`/`||` in the skipped operand turns them back on.
        ("true || ((true && true) && 1/0 == 1);", "false"),
        ("true || ((false || true) && 1/0 == 1);", "false"),
        ("true || !((true && true) && 1/0 == 1);", "false"),
        ("false && ((true || false) || 1/0 == 1);", "false"),
        // ... also when its own second operand was skipped.
        ("true || ((true || n == \"x\") && 1/0 == 1);", "false"),
        // ... but not when the nested one itself is where the error is skipped.
        ("true || (true && (false && 1/0 == 1));", "true"),
        // A skipped `~=` still clears the captures a clause value or test reads.
        (
            "s ~= \"(b)\" && (true || s ~= \"x\") && _1 == \"\";",
            "true",
        ),
        (
            "s ~= \"(b)\" && (true || n == \"x\") && _1 == \"b\";",
            "true",
        ),
        (
            "s ~= \"(b)\" && (true || (s ~= \"x\")) && _1 == \"\";",
            "true",
        ),
        // Needed operands are evaluated as ever.
        ("false || @n == 5;", "true"),
        ("true && @n == 4;", "false"),
    ] {
        assert_eq!(answer(conditions), want, "{conditions}");
    }
}

#[test]
fn an_owned_text_parses_as_a_borrowed_one() {
    use keynote::Assertion;
    let texts = [
        // Plain, with a trailing blank line and text after it (ignored).
        "Authorizer: \"POLICY\"\nLicensees: \"a\"\nConditions: @n > 1 -> \"true\";\n\nx",
        // Cut at a NUL byte: the kept text ends there.
        "Authorizer: \"POLICY\"\nLicensees: \"a\"\n\0Conditions: junk",
        // Signed: the signed body ends before the Signature keyword.
        "Authorizer: \"k\"\nLicensees: \"a\"\nSignature: \"sig-rsa-sha1-hex:00\"\n",
        // Errors are the same too.
        "Authorizer: \"POLICY\"\nLicensees: (\n",
        "  Authorizer: \"POLICY\"\n",
    ];
    for text in texts {
        let borrowed = Assertion::parse(text);
        let owned = Assertion::parse_owned(text.to_owned(), 1);
        match (&borrowed, &owned) {
            (Ok(b), Ok(o)) => {
                assert_eq!(o.text(), b.text(), "{text:?}");
                assert!(!o.text().contains('\0'), "{text:?}");
                assert_eq!(o.signed_body(), b.signed_body(), "{text:?}");
                assert_eq!(o.signature_value(), b.signature_value(), "{text:?}");
                assert_eq!(o.conditions(), b.conditions(), "{text:?}");
                assert_eq!(o.licensees(), b.licensees(), "{text:?}");
                assert_eq!(o.authorizer_expr(), b.authorizer_expr(), "{text:?}");
            }
            (Err(b), Err(o)) => assert_eq!(o, b, "{text:?}"),
            _ => panic!("{text:?}: borrowed {borrowed:?}, owned {owned:?}"),
        }
    }
}

/// The session's interner keeps decoded keys apart from opaque names: one key written in hex
/// and in base64 (any case of the prefix) is one principal, while opaque names compare byte
/// for byte. A delegation through the two spellings of one key must therefore hold, and one
/// through two spellings of an opaque name must not.
#[test]
fn one_key_in_two_spellings_is_one_principal_and_opaque_names_are_exact() {
    use keynote::crypto::{KeyAlgorithm, PrivateKey, TextEncoding};
    let key = PrivateKey::generate(KeyAlgorithm::Rsa, 512)
        .unwrap()
        .public_key();
    let hex = key.to_key_string(TextEncoding::Hex).unwrap();
    let b64 = key.to_key_string(TextEncoding::Base64).unwrap();
    let colon = b64.find(':').unwrap();
    let b64_upper_prefix = format!("{}{}", b64[..colon].to_uppercase(), &b64[colon..]);
    let hex_upper = hex.to_uppercase();
    let chain = |policy_names: &str, credential_by: &str, requester: &str| {
        let mut s = Session::default();
        s.set_values(["false", "true"]);
        s.add_authorizer(requester).unwrap();
        s.add_assertion(
            &format!("Authorizer: \"POLICY\"\nLicensees: \"{policy_names}\"\n"),
            Trust::Trusted,
        )
        .unwrap();
        s.add_assertion(
            &format!("Authorizer: \"{credential_by}\"\nLicensees: \"bob\"\n"),
            Trust::Trusted,
        )
        .unwrap();
        s.query().unwrap().value
    };
    // Through the key, whichever spelling each side uses, and whichever is interned first.
    assert_eq!(chain(&hex, &b64_upper_prefix, "bob"), "true");
    assert_eq!(chain(&b64_upper_prefix, &hex_upper, "bob"), "true");
    assert_eq!(chain("POLICY-ONLY", &hex, &b64), "false");
    assert_eq!(chain(&hex_upper, "unrelated", &b64_upper_prefix), "true");
    // Opaque names: exact bytes only.
    assert_eq!(chain("RSA:abc", "RSA:abc", "bob"), "true");
    assert_eq!(chain("RSA:abc", "rsa:abc", "bob"), "false");
}
