//! Limits at their boundaries, and the fuzz entry points on a few seeds: hostile input yields
//! typed errors, never a crash, a hang or unbounded memory.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::limits::{MAX_ASSERTION_LEN, MAX_NESTING, MAX_NOT_NESTING};
use keynote::parser::parse_conditions;
use keynote::{Assertion, ExprErrorKind, ParseError, Session, Trust};

#[test]
fn nesting_at_the_limit_parses_one_more_is_refused() {
    let ok = format!(
        "{}true{};",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert!(parse_conditions(&ok).is_ok());
    let deep = format!(
        "{}true{};",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert_eq!(
        parse_conditions(&deep).unwrap_err().kind,
        ExprErrorKind::TooDeep
    );
    // Blocks count too; brackets inside strings and comments do not.
    let blocks = format!(
        "{}{};",
        "true -> {".repeat(MAX_NESTING + 1),
        "}".repeat(MAX_NESTING + 1)
    );
    assert_eq!(
        parse_conditions(&blocks).unwrap_err().kind,
        ExprErrorKind::TooDeep
    );
    let quoted = format!("\"{}\" == \"\"; # {}", "(".repeat(1000), "{".repeat(1000));
    assert!(parse_conditions(&quoted).is_ok());
}

/// `!a == !a == ...`: each `!` takes the rest of the comparison chain as its operand, so the
/// operands nest without a bracket. Before the `!` count was bounded, 20,000 of them overflowed
/// the stack (gt aborted on a 140 KB assertion); now the nesting is bounded.
#[test]
fn not_operands_nested_without_brackets_are_bounded() {
    let chain = |n: usize| format!("{};", vec!["!a"; n].join(" == "));
    // Each nested `!` comparison is a type error (a test compared with `==`) up to the limit ...
    assert!(matches!(
        parse_conditions(&chain(MAX_NOT_NESTING)).unwrap_err().kind,
        ExprErrorKind::Type(_)
    ));
    // ... and a nesting error past it, however long the chain (on a 2 MiB test thread).
    for n in [MAX_NOT_NESTING + 1, 20_000] {
        assert_eq!(
            parse_conditions(&chain(n)).unwrap_err().kind,
            ExprErrorKind::TooDeep,
            "{n} operands"
        );
    }
    // Brackets start a new count: a valid `!(` at every bracket level parses, while the whole
    // depth, brackets and `!` operands, stays bounded. Measured stack: under 1 MiB optimised
    // for both; unoptimised (this test's build) 4 and 6 MiB, hence the thread.
    let deep = std::thread::Builder::new().stack_size(16 << 20).spawn(|| {
        let nested = format!(
            "{}true{};",
            "!(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        );
        assert!(parse_conditions(&nested).is_ok());
        let each = format!("{} == (", vec!["!a"; MAX_NOT_NESTING].join(" == "));
        let worst = format!("{}a{};", each.repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(
            parse_conditions(&worst).unwrap_err().kind,
            ExprErrorKind::TooDeep
        );
    });
    deep.unwrap().join().unwrap();
    // `!` operands side by side do not nest: 20,000 of them parse.
    let flat = format!("{};", vec!["!(a == \"b\")"; 20_000].join(" && "));
    assert!(parse_conditions(&flat).is_ok());
}

#[test]
fn ten_thousand_nested_parens_are_a_typed_error_not_a_crash() {
    // The reference overflows its parser stack here and silently answers _MIN_TRUST.
    let deep = format!("{}true{};", "(".repeat(10_000), ")".repeat(10_000));
    let text = format!("Authorizer: \"POLICY\"\nConditions: {deep}\n");
    let mut s = Session::default();
    s.set_values(["false", "true"]);
    s.add_authorizer("alice").unwrap();
    s.add_assertion(&text, Trust::Trusted).unwrap();
    let r = s.query().unwrap();
    assert_eq!(r.value, "false");
    assert_eq!(r.failures.len(), 1);
}

#[test]
fn assertion_length_limit() {
    let head = "Authorizer: \"POLICY\"\nComment: ";
    let at_limit = format!("{head}{}", "x".repeat(MAX_ASSERTION_LEN - head.len()));
    assert!(Assertion::parse(&at_limit).is_ok());
    let over = format!("{at_limit}x");
    assert!(matches!(
        Assertion::parse(&over),
        Err(ParseError::TooLong { .. })
    ));
}

#[test]
fn ten_thousand_clauses_give_the_right_answer() {
    let mut cond = String::new();
    for i in 0..9_999 {
        cond.push_str(&format!("   app_domain == \"d{i}\" -> \"v1\";\n"));
    }
    cond.push_str("   app_domain == \"perf\" -> \"v2\";\n");
    let text = format!("Authorizer: \"POLICY\"\nLicensees: \"r\"\nConditions:\n{cond}");
    let mut s = Session::default();
    s.set_values(["v0", "v1", "v2"]);
    s.add_authorizer("r").unwrap();
    s.set_attribute("app_domain", "perf").unwrap();
    s.add_assertion(&text, Trust::Trusted).unwrap();
    assert_eq!(s.query().unwrap().value, "v2");
}

#[test]
fn long_delegation_chain() {
    let n = 10_000;
    let mut s = Session::default();
    s.set_values(["false", "true"]);
    s.add_authorizer("requester").unwrap();
    s.add_assertion(
        "Authorizer: \"POLICY\"\nLicensees: \"P0\"\n",
        Trust::Trusted,
    )
    .unwrap();
    // Added in reverse so that no order helps.
    for i in (0..n).rev() {
        let next = if i + 1 == n {
            "requester".to_owned()
        } else {
            format!("P{}", i + 1)
        };
        let text = format!("Authorizer: \"P{i}\"\nLicensees: \"{next}\"\n");
        s.add_assertion(&text, Trust::Trusted).unwrap();
    }
    assert_eq!(s.query().unwrap().value, "true");
}

#[test]
fn fuzz_entry_points_on_seeds() {
    let seeds: &[&[u8]] = &[
        b"",
        b"Authorizer: \"POLICY\"\nLicensees: \"alice\"\nConditions: app_domain == \"test\";\n",
        b"Authorizer: \"POLICY\"\nConditions: @a ^ 99999999 == 1 && $$$$x ~= \"(a*)*b\";\n",
        b"KeyNote-Version: 2\nLocal-Constants: A = \"x\"\nAuthorizer: A\nLicensees: 2-of(A, A)\n",
        b"Authorizer: \"POLICY\"\nConditions: (((((((((((((",
        b"Authorizer: \"a\\\n  b\"\nSignature: \"sig-rsa-sha1-hex:00\"\n",
        b"\xff\xfe",
    ];
    for s in seeds {
        keynote::fuzz_assertion(s);
        keynote::fuzz_action_environment(s);
    }
    keynote::fuzz_action_environment(b"a = \"b\\101\"\n# c\n9x = \"\"\n");
}
