//! Fuzz the assertion parser, printer round trip and checker (logic in keynote::fuzz_assertion),
//! hold the multi-threaded parsers to the one-thread answers (same AST, same errors), and the
//! one-pass Conditions reader to pest alone (it gives up exactly where pest finds an error, and
//! builds pest's tree elsewhere).
//!
//! The parallel Conditions parser only splits long programs (keynote's threshold, in bytes or
//! tokens, is `keynote::parser::PARALLEL_*`), so a small input is also checked repeated (with
//! `\n` between copies) until it is longer than [`LONG`], both as a bare Conditions program and
//! as the Conditions field of an assertion.
#![no_main]

use keynote::Assertion;
use keynote::parser::{
    DIRECT_MAX_NESTING, direct_conditions, parse_conditions, parse_conditions_parallel, pest_only,
};

/// Length (bytes) a small input is repeated past. Above keynote's parallel threshold (32 KiB,
/// or 8,192 tokens: a program of at most 8 bytes per token) for the inputs that matter; not
/// taken from keynote so that retuning the threshold there does not break this target.
const LONG: usize = 64 * 1024;

/// Inputs at most this long are also checked repeated past [`LONG`]: at least 16 copies, so
/// the parallel parser has several clauses to share out, while the per-execution cost stays
/// bounded (about one [`LONG`] text).
const MAX_REPEATED_INPUT: usize = LONG / 16;

/// See [`picked_for_repeat`].
const REPEAT_ONE_IN: u32 = 16;

/// Thread counts the parallel parsers are checked with (2: one cut; 3: two cuts, pieces that
/// do not start or end the text).
const THREADS: [usize; 2] = [2, 3];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    keynote::fuzz_assertion(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_conditions(text);
    check_assertion(text);
    if text.is_empty() || text.len() > MAX_REPEATED_INPUT || !picked_for_repeat(data) {
        return;
    }
    let long = repeat_past(text, "\n", LONG);
    check_conditions(&long);
    check_assertion(&long);
    // The same program as one Conditions field: its lines indented so the field goes on
    // (RFC 2704 4.2: a line starting with whitespace continues the field).
    let indented = long.replace('\n', "\n ");
    let wrapped = format!("KeyNote-Version: 2\nAuthorizer: \"a\"\nConditions: {indented}\n");
    check_assertion(&wrapped);
});

/// One input in [`REPEAT_ONE_IN`] is also checked repeated: a long check costs ~50 short
/// executions, so checking every input would cut the run's executions by as much. The choice
/// is a function of the bytes, so a crash found that way reproduces from its file.
fn picked_for_repeat(data: &[u8]) -> bool {
    let sum = data
        .iter()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(*b)));
    sum % REPEAT_ONE_IN == 0
}

/// `text` followed by `sep` and `text` again, until the result is longer than `min`.
fn repeat_past(text: &str, sep: &str, min: usize) -> String {
    let mut out = String::with_capacity(min + text.len() + sep.len() + 1);
    out.push_str(text);
    while out.len() <= min {
        out.push_str(sep);
        out.push_str(text);
    }
    out
}

fn check_conditions(src: &str) {
    let pest = pest_only::parse_conditions(src);
    let direct = direct_conditions(src);
    // Text that nests deeper than the one-pass reader reads goes to the token-stream path.
    if direct.is_some() || src.matches(['(', '{', '!']).count() <= DIRECT_MAX_NESTING {
        assert_eq!(direct.as_ref(), pest.as_ref().ok(), "one-pass reader on {src:?}");
    }
    let one = parse_conditions(src);
    assert_eq!(one, pest, "parse_conditions against pest alone on {src:?}");
    for threads in THREADS {
        let many = parse_conditions_parallel(src, threads);
        assert_eq!(many, one, "parse_conditions_parallel({threads}) of {src:?}");
    }
}

fn check_assertion(text: &str) {
    let one = Assertion::parse(text);
    let many = Assertion::parse_parallel(text, 2);
    match (&one, &many) {
        (Ok(a), Ok(b)) => {
            assert_eq!(b.conditions(), a.conditions(), "conditions of {text:?}");
            assert_eq!(b.licensees(), a.licensees(), "licensees of {text:?}");
            assert_eq!(
                b.authorizer_expr(),
                a.authorizer_expr(),
                "authorizer of {text:?}"
            );
            assert_eq!(
                b.authorizer_error(),
                a.authorizer_error(),
                "authorizer of {text:?}"
            );
            assert_eq!(
                b.signature_value(),
                a.signature_value(),
                "signature of {text:?}"
            );
            assert_eq!(
                b.signature_error(),
                a.signature_error(),
                "signature of {text:?}"
            );
            assert_eq!(
                b.local_constants(),
                a.local_constants(),
                "constants of {text:?}"
            );
            assert_eq!(b.signed_body(), a.signed_body(), "signed body of {text:?}");
        }
        (Err(a), Err(b)) => assert_eq!(b, a, "error of {text:?}"),
        _ => panic!("parse_parallel(2) gave {many:?}, parse gave {one:?} for {text:?}"),
    }
}
