//! `gt keynote sign`: sign an assertion with an RFC 2792 private key and print the Signature
//! value the way the reference `keynote sign` does (same argument rules, messages, line
//! wrapping and exit statuses).
//!
//! Usage: `sign [-v] <AlgorithmName> <AssertionFile> <PrivateKeyFile> [<print-offset>]
//! [<print-length>]`. The assertion must have a (possibly empty) `Signature:` field and an
//! Authorizer that is a key of the algorithm's type; `-v` verifies the new signature before
//! printing it.

use keynote::Assertion;
use keynote::ast::StrExpr;
use keynote::crypto::{Principal, Registry, check_signer, print_key, sign_assertion};
use std::io::Write;

/// Default indentation of printed signatures and keys (reference `SIG_PRINT_OFFSET`,
/// `KEY_PRINT_OFFSET`).
pub(super) const PRINT_OFFSET: usize = 12;
/// Default line length of printed signatures and keys (reference `SIG_PRINT_LENGTH`,
/// `KEY_PRINT_LENGTH`).
pub(super) const PRINT_LENGTH: usize = 50;
/// Largest print-offset / print-length accepted. The reference takes any `int` and would
/// print gigabytes of spaces; larger values are rejected like negative ones.
pub const MAX_PRINT_WIDTH: i64 = 1 << 16;

const USAGE: &str = "Arguments:\n\t[-v] <AlgorithmName> <AssertionFile> <PrivateKeyFile> [<print-offset>] [<print-length>]\n";
const SIGN_FAILED: &str =
    "Bad assertion or algorithm format, or unsupported algorithm while creating signature.\n";

/// C `atoi`: optional leading whitespace and sign, then decimal digits; anything else ends
/// the number, no digits gives 0. Saturates instead of overflowing.
pub(super) fn c_atoi(s: &str) -> i64 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(b - b'0'))
            .min(i64::from(i32::MAX) + 1);
    }
    if negative { -value } else { value }
}

/// The text of `perror`: the OS error message without Rust's " (os error N)" suffix.
pub(super) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(n) => s[..n].to_owned(),
        None => s,
    }
}

/// Append a colon to an algorithm name that lacks one, warning as the reference does.
pub(super) fn fix_algorithm_name(name: &str, err: &mut dyn Write) -> String {
    if name.ends_with(':') {
        name.to_owned()
    } else {
        let _ = writeln!(
            err,
            "Algorithm name [{name}] should be terminated with a colon, fixing."
        );
        format!("{name}:")
    }
}

/// Read a whole file as the reference does (`open`, `fstat`, `read`), reporting errors the
/// way it does: `perror(path)` for I/O errors, `empty_message` for an empty file.
pub(super) fn read_input(
    path: &str,
    empty_message: &str,
    err: &mut dyn Write,
) -> Result<String, ()> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => {
            let _ = writeln!(err, "{empty_message}");
            Err(())
        }
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            let _ = writeln!(err, "{path}: {}", strerror(&e));
            Err(())
        }
    }
}

/// Parse a print-offset (`min` 0) or print-length (`min` 1) argument.
pub(super) fn print_param(
    arg: &str,
    min: i64,
    what: &str,
    err: &mut dyn Write,
) -> Result<usize, ()> {
    let value = c_atoi(arg);
    match usize::try_from(value) {
        Ok(v) if value >= min && value <= MAX_PRINT_WIDTH => Ok(v),
        _ => {
            let _ = writeln!(err, "Erroneous value for {what} parameter.");
            Err(())
        }
    }
}

/// The private key string inside a key file: a KeyNote string literal, as written by
/// `keynote keygen` (reference `keynote_get_private_key`).
fn private_key_string(text: &str) -> Option<String> {
    match keynote::parser::parse_str_expr(text.trim()) {
        Ok(StrExpr::Lit(s)) => Some(s.into_string()),
        _ => None,
    }
}

/// Sign; `None` for every failure the reference reports as "Bad assertion or algorithm
/// format, or unsupported algorithm".
fn make_signature(algname: &str, assertion: &str, key_text: &str, verify: bool) -> Option<String> {
    let key = private_key_string(key_text)?;
    let assertion = Assertion::parse(assertion).ok()?;
    if !assertion.has_signature() {
        return None;
    }
    let authorizer = Principal::parse(&assertion.authorizer_without_action().ok()?).ok()?;
    check_signer(algname, &authorizer).ok()?;
    let body = assertion.signed_body();
    let signature = sign_assertion(algname, &key, body).ok()?;
    if verify {
        Registry::rfc2792()
            .verify_assertion(&authorizer, body, &signature)
            .ok()?;
    }
    Some(signature)
}

/// Run `keynote sign` with the arguments after the subcommand name; returns the exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let usage = |err: &mut dyn Write| {
        let _ = err.write_all(USAGE.as_bytes());
        1
    };
    if !(3..=6).contains(&args.len()) {
        return usage(err);
    }
    let flag = usize::from(args.first().is_some_and(|a| a == "-v"));
    // With -v there must still be three operands (the reference would read past argv).
    let (Some(alg_arg), Some(assertion_path), Some(key_path)) =
        (args.get(flag), args.get(1 + flag), args.get(2 + flag))
    else {
        return usage(err);
    };
    let mut offset = PRINT_OFFSET;
    let mut length = PRINT_LENGTH;
    if let Some(arg) = args.get(3 + flag) {
        match print_param(arg, 0, "print-offset", err) {
            Ok(v) => offset = v,
            Err(()) => return 1,
        }
    }
    if let Some(arg) = args.get(4 + flag) {
        match print_param(arg, 1, "print-length", err) {
            Ok(v) => length = v,
            Err(()) => return 1,
        }
    }
    let algname = fix_algorithm_name(alg_arg, err);
    let Ok(assertion) = read_input(assertion_path, "Error: zero-sized assertion-file.", err) else {
        return 1;
    };
    let Ok(key_text) = read_input(key_path, "Illegal key-file size 0", err) else {
        return 1;
    };
    match make_signature(&algname, &assertion, &key_text, flag == 1) {
        Some(signature) => {
            let _ = out.write_all(print_key("", &signature, offset, length).as_bytes());
            0
        }
        None => {
            let _ = err.write_all(SIGN_FAILED.as_bytes());
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Corpus cases 229-250 (sigver, sign, keygen) through the three `run` functions: stdout,
    /// stderr and exit status must be the reference's byte for byte. (The root conformance
    /// test runs the binary but compares stdout and status only.)
    #[test]
    fn reference_corpus_sign_sigver_keygen_cases() {
        let cases =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keynote-conformance/cases");
        let mut checked = 0;
        for entry in std::fs::read_dir(&cases).unwrap() {
            let dir = entry.unwrap().path();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let number: u32 = name.get(..3).and_then(|n| n.parse().ok()).unwrap_or(0);
            if !(229..=250).contains(&number) {
                continue;
            }
            let argv: Vec<String> =
                serde_json::from_str(&std::fs::read_to_string(dir.join("args.json")).unwrap())
                    .unwrap();
            // File arguments are relative to the case directory.
            let args: Vec<String> = argv[1..]
                .iter()
                .map(|a| {
                    let path = dir.join(a);
                    if a != "-" && path.is_file() {
                        path.to_string_lossy().into_owned()
                    } else {
                        a.clone()
                    }
                })
                .collect();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let rc = match argv[0].as_str() {
                "sign" => run(&args, &mut out, &mut err),
                "sigver" => super::super::sigver::run(&args, &mut out, &mut err),
                "keygen" => super::super::keygen::run(&args, &mut out, &mut err),
                other => panic!("{name}: unexpected subcommand {other}"),
            };
            let want = |f: &str| std::fs::read(dir.join(f)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want("expected.stdout")),
                "{name} stdout"
            );
            assert_eq!(
                String::from_utf8_lossy(&err),
                String::from_utf8_lossy(&want("expected.stderr")),
                "{name} stderr"
            );
            let want_rc: i32 = String::from_utf8(want("expected.rc"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(rc, want_rc, "{name} exit status");
            checked += 1;
        }
        assert_eq!(checked, 22);
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(c_atoi("12"), 12);
        assert_eq!(c_atoi("  -3x"), -3);
        assert_eq!(c_atoi("abc"), 0);
        assert_eq!(c_atoi(""), 0);
        assert_eq!(c_atoi("+7"), 7);
        assert_eq!(c_atoi("99999999999999999999"), i64::from(i32::MAX) + 1);
    }

    #[test]
    fn print_parameters_are_bounded() {
        let mut err = Vec::new();
        assert_eq!(print_param("0", 0, "print-offset", &mut err), Ok(0));
        assert_eq!(print_param("-1", 0, "print-offset", &mut err), Err(()));
        assert_eq!(print_param("0", 1, "print-length", &mut err), Err(()));
        assert_eq!(
            print_param(&MAX_PRINT_WIDTH.to_string(), 1, "print-length", &mut err),
            Ok(MAX_PRINT_WIDTH as usize)
        );
        assert_eq!(
            print_param(
                &(MAX_PRINT_WIDTH + 1).to_string(),
                1,
                "print-length",
                &mut err
            ),
            Err(())
        );
    }

    #[test]
    fn usage_and_missing_files() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(&[], &mut out, &mut err), 1);
        assert_eq!(String::from_utf8(err).unwrap(), USAGE);
        let mut err = Vec::new();
        let args: Vec<String> = ["sig-rsa-sha1-hex", "/nonexistent/a.kn", "k"]
            .map(String::from)
            .to_vec();
        assert_eq!(run(&args, &mut out, &mut err), 1);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Algorithm name [sig-rsa-sha1-hex] should be terminated with a colon, fixing.\n\
             /nonexistent/a.kn: No such file or directory\n"
        );
        assert!(out.is_empty());
    }
}
