//! Real vectors from the conformance corpus: the keys and signed credentials the reference
//! KeyNote produced, checked with `keynote::crypto` alone (no assertion parser: a small
//! field splitter below extracts the signed body, the Authorizer and the Signature).

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use keynote::crypto::{
    KeyAlgorithm, KeyError, Principal, PrivateKey, PublicKey, Registry, SignatureError,
    TextEncoding, print_key, sign_assertion,
};
use std::path::PathBuf;

fn case_dir(prefix: &str) -> PathBuf {
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/keynote-conformance/cases");
    let mut matches: Vec<PathBuf> = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{prefix}-"))
        })
        .collect();
    assert_eq!(matches.len(), 1, "case {prefix}");
    matches.pop().unwrap()
}

fn read(case: &str, file: &str) -> String {
    std::fs::read_to_string(case_dir(case).join(file)).unwrap()
}

/// Decode a KeyNote string literal starting at the opening quote: backslash-newline plus the
/// following indentation is a continuation; `\x` is `x`.
fn string_literal(s: &str) -> String {
    let s = s.trim_start();
    assert!(s.starts_with('"'), "not a string literal: {s:.40}");
    let mut out = String::new();
    let mut chars = s[1..].chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => match chars.next() {
                Some('\n') => {
                    while matches!(chars.peek(), Some(' ' | '\t')) {
                        chars.next();
                    }
                }
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => break,
            },
            _ => out.push(c),
        }
    }
    panic!("unterminated string literal");
}

/// The parts of one signed assertion a signature check needs.
struct Signed {
    body: String,
    authorizer: String,
    signature: Option<String>,
}

/// Split an assertion (as the reference does for literal-valued fields).
fn split(text: &str) -> Signed {
    let start = text.len() - text.trim_start_matches('\n').len();
    let text = &text[start..];
    let sig_at = text
        .match_indices("Signature:")
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .map(|(i, _)| i);
    let body = text[..sig_at.unwrap_or(text.len())].to_owned();
    let auth_at = text.find("Authorizer:").unwrap() + "Authorizer:".len();
    let authorizer = string_literal(&text[auth_at..]);
    let signature = sig_at
        .map(|i| &text[i + "Signature:".len()..])
        .filter(|rest| !rest.trim().is_empty())
        .map(string_literal);
    Signed {
        body,
        authorizer,
        signature,
    }
}

fn verify_file(case: &str, file: &str) -> Result<(), SignatureError> {
    let signed = split(&read(case, file));
    let authorizer = Principal::parse(&signed.authorizer).unwrap();
    Registry::default().verify_assertion(
        &authorizer,
        signed.body.as_bytes(),
        signed.signature.as_deref().unwrap(),
    )
}

#[test]
fn reference_signed_credentials_verify() {
    for (case, file) in [
        ("197", "cred-1.kn"),
        ("198", "cred-1.kn"),
        ("199", "cred-1.kn"),
        ("200", "cred-1.kn"),
        ("201", "cred-1.kn"),
        ("202", "cred-1.kn"),
        ("203", "cred-1.kn"),
        ("204", "cred-1.kn"),
        ("205", "cred-1.kn"),
        ("206", "cred-1.kn"),
        ("206", "cred-2.kn"),
        ("207", "cred-1.kn"),
        ("208", "cred-1.kn"),
        ("213", "cred-1.kn"),
        ("229", "cred.kn"),
        ("230", "cred.kn"),
        ("231", "cred.kn"),
    ] {
        verify_file(case, file).unwrap_or_else(|e| panic!("case {case} {file}: {e}"));
    }
}

#[test]
fn tampered_credentials_fail_as_bad_signatures() {
    for (case, file) in [
        ("209", "cred-1.kn"), // conditions byte
        ("210", "cred-1.kn"), // licensee byte
        ("211", "cred-1.kn"), // DSA signature bits
        ("212", "cred-1.kn"), // RSA signature bits
        ("214", "cred-1.kn"), // comment inside the signed text
        ("216", "cred-1.kn"), // signed by another key
        ("217", "local-1.kn"),
        ("232", "cred.kn"),
    ] {
        let err = verify_file(case, file).expect_err(case);
        assert!(
            matches!(
                err,
                SignatureError::BadSignature { .. } | SignatureError::Malformed { .. }
            ),
            "case {case}: {err:?}"
        );
    }
}

#[test]
fn algorithm_must_match_authorizer_key_type() {
    // Case 215: sig-rsa-sha1-hex on an assertion whose Authorizer is a DSA key.
    let err = verify_file("215", "cred-1.kn").unwrap_err();
    assert_eq!(
        err,
        SignatureError::AlgorithmMismatch {
            alg: "sig-rsa-sha1-hex:".into(),
            key: "dsa"
        }
    );
    // Case 235: opaque authorizer.
    let signed = split(&read("235", "cred.kn"));
    let err = Registry::default()
        .verify_assertion(
            &Principal::parse(&signed.authorizer).unwrap(),
            signed.body.as_bytes(),
            signed.signature.as_deref().unwrap(),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        SignatureError::AlgorithmMismatch { key: "opaque", .. }
    ));
}

#[test]
fn sigver_multi_file_outcomes() {
    // Case 233: three assertions separated by blank lines, the middle one tampered.
    let text = read("233", "cred.kn");
    let results: Vec<bool> = text
        .split("\n\n")
        .map(|a| {
            let s = split(a);
            Registry::default()
                .verify_assertion(
                    &Principal::parse(&s.authorizer).unwrap(),
                    s.body.as_bytes(),
                    s.signature.as_deref().unwrap(),
                )
                .is_ok()
        })
        .collect();
    assert_eq!(results, vec![true, false, true]);
}

#[test]
fn signed_message_uses_algorithm_name_as_written() {
    // Re-casing the algorithm name changes the signed bytes, so it must not verify...
    let signed = split(&read("200", "cred-1.kn"));
    let authorizer = Principal::parse(&signed.authorizer).unwrap();
    let sig = signed.signature.unwrap();
    assert!(sig.starts_with("sig-rsa-sha1-hex:"));
    let upper = sig.replacen("sig-rsa-sha1-hex:", "SIG-RSA-SHA1-HEX:", 1);
    let err = Registry::default()
        .verify_assertion(&authorizer, signed.body.as_bytes(), &upper)
        .unwrap_err();
    assert!(matches!(err, SignatureError::BadSignature { .. }));
    // ...but the name is still recognised, and upper-case hex digits are fine.
    let upper_digits = format!(
        "sig-rsa-sha1-hex:{}",
        sig["sig-rsa-sha1-hex:".len()..].to_ascii_uppercase()
    );
    Registry::default()
        .verify_assertion(&authorizer, signed.body.as_bytes(), &upper_digits)
        .unwrap();
}

fn private_key_file(case: &str, file: &str) -> String {
    string_literal(&read(case, file))
}

#[test]
fn keynote_sign_output_is_byte_identical() {
    for (case, alg, key, offset, length) in [
        ("239", "sig-rsa-sha1-hex:", "bob.priv", 12, 50),
        ("240", "sig-rsa-md5-base64:", "carol.priv", 12, 50),
        ("241", "sig-rsa-sha1-base64:", "bob.priv", 12, 50),
        ("242", "sig-rsa-sha1-hex:", "bob.priv", 0, 20),
        ("243", "sig-rsa-sha1-hex:", "bob.priv", 12, 50),
    ] {
        let assertion = read(case, "a.kn");
        let signed = split(&assertion);
        let sig = sign_assertion(alg, &private_key_file(case, key), signed.body.as_bytes())
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(
            print_key("", &sig, offset, length),
            read(case, "expected.stdout"),
            "case {case}"
        );
        // And it verifies against the Authorizer.
        Registry::default()
            .verify_assertion(
                &Principal::parse(&signed.authorizer).unwrap(),
                signed.body.as_bytes(),
                &sig,
            )
            .unwrap();
    }
}

#[test]
fn sign_rejects_what_the_reference_rejects() {
    let body = split(&read("239", "a.kn")).body;
    let bob = private_key_file("239", "bob.priv");
    // Case 244: RSA algorithm with a DSA private key.
    let alice = private_key_file("244", "alice.priv");
    assert!(matches!(
        sign_assertion("sig-rsa-sha1-hex:", &alice, body.as_bytes()),
        Err(SignatureError::AlgorithmMismatch {
            key: "dsa private",
            ..
        })
    ));
    // Case 246: unknown algorithm.
    assert!(matches!(
        sign_assertion("sig-foo-bar:", &bob, body.as_bytes()),
        Err(SignatureError::UnknownAlgorithm { .. })
    ));
    // No trailing colon (the CLI fixes it up before calling).
    assert!(matches!(
        sign_assertion("sig-rsa-sha1-hex", &bob, body.as_bytes()),
        Err(SignatureError::MissingColon { .. })
    ));
    // A public key is not a private key.
    assert!(matches!(
        sign_assertion("sig-rsa-sha1-hex:", "rsa-hex:00", body.as_bytes()),
        Err(SignatureError::PrivateKey(KeyError::NotPrivateKey { .. }))
    ));
}

#[test]
fn private_keys_decode_and_match_their_public_keys() {
    for (case, file, authorizer_case, authorizer_file) in [
        ("239", "bob.priv", "230", "cred.kn"),
        ("240", "carol.priv", "231", "cred.kn"),
        ("244", "alice.priv", "229", "cred.kn"),
    ] {
        let key = PrivateKey::parse(&private_key_file(case, file)).unwrap();
        let public =
            Principal::parse(&split(&read(authorizer_case, authorizer_file)).authorizer).unwrap();
        assert_eq!(Principal::Key(key.public_key()), public, "{case} {file}");
        // Re-encoding the private key gives the reference's bytes back.
        let text = private_key_file(case, file);
        let (_, encoded) = text.split_at(text.find(':').unwrap() + 1);
        let enc = if text.contains("base64") {
            TextEncoding::Base64
        } else {
            TextEncoding::Hex
        };
        assert_eq!(enc.encode(&key.to_der().unwrap()), encoded, "{case} {file}");
    }
}

fn auth_key(case: &str) -> String {
    string_literal(&read(case, "auth-1.key"))
}

fn policy_licensee(case: &str) -> String {
    let policy = read(case, "policy-1.kn");
    let at = policy.find("Licensees:").unwrap() + "Licensees:".len();
    string_literal(&policy[at..])
}

#[test]
fn key_normalisation_cases() {
    // 218 dsa hex vs base64, 219 rsa base64 vs hex, 220 DSA-HEX: prefix, 221 upper-case digits.
    for case in ["218", "219", "220", "221"] {
        let a = Principal::parse(&auth_key(case)).unwrap();
        let b = Principal::parse(&policy_licensee(case)).unwrap();
        assert!(matches!(a, Principal::Key(_)), "{case}");
        assert_eq!(a, b, "case {case}");
    }
    // 222: two different RSA keys.
    let a = Principal::parse(&auth_key("222")).unwrap();
    let b = Principal::parse(&policy_licensee("222")).unwrap();
    assert_ne!(a, b);
    // 223 / 224: odd-length hex is an error, not an opaque principal.
    assert!(matches!(
        Principal::parse("rsa-hex:abc"),
        Err(KeyError::Encoding { .. })
    ));
    assert!(Principal::parse(&auth_key("224")).is_err());
    // 225: RFC 2704-style "RSA:abc123" is opaque and case-sensitive.
    assert_eq!(
        Principal::parse(&policy_licensee("225")).unwrap(),
        Principal::Opaque("RSA:abc123".into())
    );
    assert_ne!(
        Principal::parse(&auth_key("225")).unwrap(),
        Principal::parse(&policy_licensee("225")).unwrap()
    );
}

#[test]
fn corpus_keys_have_the_documented_types_and_sizes() {
    let bob = Principal::parse(&split(&read("230", "cred.kn")).authorizer).unwrap();
    let Principal::Key(PublicKey::Rsa(k)) = &bob else {
        panic!("bob is RSA")
    };
    assert_eq!(k.bits(), 1024);
    let alice = Principal::parse(&split(&read("229", "cred.kn")).authorizer).unwrap();
    assert_eq!(alice.key().unwrap().algorithm(), KeyAlgorithm::Dsa);
    // Canonical re-encoding round-trips through both encodings.
    for p in [bob, alice] {
        let key = p.key().unwrap();
        for enc in [TextEncoding::Hex, TextEncoding::Base64] {
            let s = key.to_key_string(enc).unwrap();
            assert_eq!(Principal::parse(&s).unwrap(), p);
        }
    }
}
