//! `gt keynote sigver`: check the signature of every assertion in a file, as the reference
//! `keynote sigver` does (assertions separated by blank lines, one line per assertion,
//! numbered from 0).
//!
//! Assertions are independent, so large files are checked on all cores; the output order is
//! the file order. Decoded Authorizer keys are shared by all workers, so a file of credentials
//! by one key decodes and validates that key once, and its verification precomputation
//! (keynote::crypto's per-key Montgomery set-up and DSA tables) is built once.

use keynote::crypto::{Principal, Registry, SignatureError};
use keynote::{Assertion, split_assertions};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

const USAGE: &str = "Arguments:\n\t<AssertionFile>\n";

/// Below this many assertions a file is checked on one thread (thread start-up would cost
/// more than it saves).
const PARALLEL_THRESHOLD: usize = 32;

/// Assertions per piece of work handed to a thread (a signature check is 20-60 µs).
const PIECE: usize = 8;

/// Most worker threads used, whatever the machine reports.
const MAX_WORKERS: usize = 16;

/// What the reference prints for one assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// stdout "Signature on assertion N verified."
    Verified,
    /// stdout "Signature on assertion N did not verify!"
    NotVerified,
    /// stderr "Syntax error while parsing assertion N." (the assertion, its Authorizer key or
    /// the signature's encoding is malformed).
    SyntaxError,
    /// stderr "Unknown error while parsing assertion N." (a base64 signature of fewer than two
    /// bytes, which the reference rejects without setting an error code).
    UnknownError,
}

/// Decoded Authorizers by their string (`None`: the string is a malformed key).
type KeyCache = Mutex<HashMap<String, Option<Arc<Principal>>>>;

/// The principal for `authorizer`, decoded once per distinct string.
fn principal(keys: &KeyCache, authorizer: String) -> Option<Arc<Principal>> {
    if let Some(found) = keys.lock().ok()?.get(&authorizer) {
        return found.clone();
    }
    // Decode outside the lock; a racing worker may decode the same key once more.
    let decoded = Principal::parse(&authorizer).ok().map(Arc::new);
    let mut map = keys.lock().ok()?;
    map.entry(authorizer).or_insert(decoded).clone()
}

fn check(text: &str, registry: &Registry, keys: &KeyCache) -> Outcome {
    let Ok(assertion) = Assertion::parse(text) else {
        return Outcome::SyntaxError;
    };
    let Ok(authorizer) = assertion.authorizer_without_action() else {
        return Outcome::SyntaxError;
    };
    let Some(principal) = principal(keys, authorizer) else {
        return Outcome::SyntaxError;
    };
    if !assertion.has_signature() {
        return Outcome::NotVerified;
    }
    let Some(signature) = assertion.signature_value() else {
        // A Signature field whose value is not a string.
        return Outcome::SyntaxError;
    };
    match registry.verify_assertion(&principal, assertion.signed_body(), signature) {
        Ok(()) => Outcome::Verified,
        Err(e) if e.is_syntax_error() => Outcome::SyntaxError,
        Err(SignatureError::TooShort { .. }) => Outcome::UnknownError,
        Err(_) => Outcome::NotVerified,
    }
}

fn check_all(assertions: &[&str]) -> Vec<Outcome> {
    let registry = Registry::rfc2792();
    let keys = KeyCache::default();
    let workers = super::cpus().min(MAX_WORKERS);
    if workers < 2 || assertions.len() < PARALLEL_THRESHOLD {
        return assertions
            .iter()
            .map(|a| check(a, &registry, &keys))
            .collect();
    }
    // Pieces of a few assertions each, handed out one at a time (keynote::par): a worker that
    // starts late takes less instead of holding the others up.
    keynote::par::share_in_pieces(assertions, PIECE, workers, |a| check(a, &registry, &keys))
}

/// Run `keynote sigver` with the arguments after the subcommand name; returns the exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let [path] = args else {
        let _ = err.write_all(USAGE.as_bytes());
        return 0;
    };
    let Ok(text) = super::sign::read_input(path, "Illegal assertion-file size 0", err) else {
        return 1;
    };
    let assertions = split_assertions(&text);
    if assertions.is_empty() {
        let _ = writeln!(err, "No assertions found in {path}.");
        return 1;
    }
    let outcomes = check_all(&assertions);
    for (n, outcome) in outcomes.iter().enumerate() {
        let _ = match outcome {
            Outcome::Verified => writeln!(out, "Signature on assertion {n} verified."),
            Outcome::NotVerified => writeln!(out, "Signature on assertion {n} did not verify!"),
            Outcome::SyntaxError => writeln!(err, "Syntax error while parsing assertion {n}."),
            Outcome::UnknownError => writeln!(err, "Unknown error while parsing assertion {n}."),
        };
    }
    // A worker that panicked left fewer outcomes than assertions.
    for n in outcomes.len()..assertions.len() {
        let _ = writeln!(out, "Signature on assertion {n} did not verify!");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_empty_file() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(&[], &mut out, &mut err), 0);
        assert_eq!(String::from_utf8(err).unwrap(), USAGE);
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("e.kn");
        std::fs::write(&empty, "").unwrap();
        let mut err = Vec::new();
        let args = [empty.to_string_lossy().into_owned()];
        assert_eq!(run(&args, &mut out, &mut err), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Illegal assertion-file size 0\n"
        );
        std::fs::write(&empty, "\n  \n\n").unwrap();
        let mut err = Vec::new();
        assert_eq!(run(&args, &mut out, &mut err), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            format!("No assertions found in {}.\n", args[0])
        );
        assert!(out.is_empty());
    }

    #[test]
    fn short_base64_signature_is_an_unknown_error() {
        let text = "Authorizer: \"rsa-base64:MIGJAoGBANfZdi8WB4FX6dr5DjJVHBImlM40qXoBAdi1hf4iXaficDrzjSpFGD+uOz8FcwqHghnxYi+PlTomOmMtit6qwd+Y7S7/Dsg/pzbGsbfwpHNARizKmKAm0g08IFAXlsXJTi1/2FNb5Xz5V6i/Z/vJu+eA8ugA+arG0mUWz3lISl/dAgMBAAE=\"\nSignature: \"sig-rsa-sha1-base64:AA==\"\n";
        let keys = KeyCache::default();
        assert_eq!(
            check(text, &Registry::rfc2792(), &keys),
            Outcome::UnknownError
        );
        let odd = text.replace("sig-rsa-sha1-base64:AA==", "sig-rsa-sha1-hex:abc");
        assert_eq!(
            check(&odd, &Registry::rfc2792(), &keys),
            Outcome::SyntaxError
        );
    }
}
