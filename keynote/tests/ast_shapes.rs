//! The Conditions parsers' trees for hand-picked texts, written out by hand.
//!
//! The differential tests (fast_path.rs) hold the parsers to one another, and the round-trip
//! properties (properties.rs) hold parse to print; all of them share the precedence climber,
//! so a climber that builds a wrong tree the same way everywhere would pass them. These trees
//! are the independent answer, one per shape the climber takes a shortcut for: a prefix on a
//! plain name or literal (`@n`, `&f`, `$a`), a literal clause value, a clause's test built
//! in the clause's own frame, and the general paths next to each.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::ast::{
    ArithOp, Clause, ClauseValue, CmpOp, Conditions, IntExpr, NumExpr, StrExpr, Test, Text,
};
use keynote::parser::{direct_conditions, parse_conditions, pest_only};

fn attr(name: &str) -> StrExpr {
    StrExpr::Attr(Text::new(name))
}

fn lit(s: &str) -> StrExpr {
    StrExpr::Lit(Text::new(s))
}

fn deref(times: u32, inner: StrExpr) -> StrExpr {
    StrExpr::Deref {
        times,
        inner: Box::new(inner),
    }
}

fn int_of(s: StrExpr) -> IntExpr {
    NumExpr::Convert(Box::new(s))
}

fn clause(test: Test, value: Option<&str>) -> Clause {
    Clause {
        test,
        value: value.map_or(ClauseValue::Max, |v| ClauseValue::Value(lit(v))),
    }
}

/// Every parser gives `want` for `src`: the one-pass reader, the public entry point and the
/// token-stream path.
fn parses_to(src: &str, want: Vec<Clause>) {
    let want = Conditions { clauses: want };
    assert_eq!(
        direct_conditions(src).as_ref(),
        Some(&want),
        "one-pass {src:?}"
    );
    assert_eq!(
        parse_conditions(src).as_ref(),
        Ok(&want),
        "parse_conditions {src:?}"
    );
    assert_eq!(
        pest_only::parse_conditions(src).as_ref(),
        Ok(&want),
        "pest only {src:?}"
    );
}

#[test]
fn prefixes_on_names_and_literals() {
    let gt0 = |e: IntExpr| Test::Int(e, CmpOp::Gt, NumExpr::Lit(0));
    parses_to("@n > 0;", vec![clause(gt0(int_of(attr("n"))), None)]);
    parses_to("@\"12\" > 0;", vec![clause(gt0(int_of(lit("12"))), None)]);
    parses_to(
        "&f < 1.5;",
        vec![clause(
            Test::Float(
                NumExpr::Convert(Box::new(attr("f"))),
                CmpOp::Lt,
                NumExpr::Lit(1.5),
            ),
            None,
        )],
    );
    let eq_x = |s: StrExpr| Test::Str(s, CmpOp::Eq, lit("x"));
    parses_to(
        "$a == \"x\";",
        vec![clause(eq_x(deref(1, attr("a"))), None)],
    );
    parses_to(
        "$\"a\" == \"x\";",
        vec![clause(eq_x(deref(1, lit("a"))), None)],
    );
    // Two `$` count as one Deref of two; a bracket or another prefix after the first
    // prefix takes the general path.
    parses_to(
        "$$a == \"x\";",
        vec![clause(eq_x(deref(2, attr("a"))), None)],
    );
    parses_to(
        "$(a) == \"x\";",
        vec![clause(eq_x(deref(1, attr("a"))), None)],
    );
    parses_to(
        "@$a > 0;",
        vec![clause(gt0(int_of(deref(1, attr("a")))), None)],
    );
    parses_to(
        "-@n > 0;",
        vec![clause(
            gt0(NumExpr::Neg {
                times: 1,
                inner: Box::new(int_of(attr("n"))),
            }),
            None,
        )],
    );
    // A prefixed operand binds tighter than any infix operator.
    parses_to(
        "$a . b == \"x\";",
        vec![clause(
            eq_x(StrExpr::Concat(vec![deref(1, attr("a")), attr("b")])),
            None,
        )],
    );
    parses_to(
        "@n + 1 > 0;",
        vec![clause(
            gt0(NumExpr::Chain {
                first: Box::new(int_of(attr("n"))),
                rest: vec![(ArithOp::Add, NumExpr::Lit(1))],
            }),
            None,
        )],
    );
    // A prefix on a number is a type error, whichever path reads it.
    for src in ["@1 > 0;", "$2 == \"x\";", "&1.5 < 2.0;"] {
        assert!(direct_conditions(src).is_none(), "{src:?}");
        assert!(parse_conditions(src).is_err(), "{src:?}");
    }
}

#[test]
fn clause_tests_and_values() {
    let d0 = Test::Str(attr("app_domain"), CmpOp::Eq, lit("d0"));
    let n0 = Test::Int(int_of(attr("n")), CmpOp::Gt, NumExpr::Lit(0));
    // The perf policies' clause.
    parses_to(
        "app_domain == \"d0\" && @n > 0 -> \"v0\";",
        vec![clause(Test::And(vec![d0.clone(), n0.clone()]), Some("v0"))],
    );
    // `&&` binds tighter than `||`, both flat.
    parses_to(
        "a == \"x\" || app_domain == \"d0\" && @n > 0 || b == \"x\";",
        vec![clause(
            Test::Or(vec![
                Test::Str(attr("a"), CmpOp::Eq, lit("x")),
                Test::And(vec![d0.clone(), n0.clone()]),
                Test::Str(attr("b"), CmpOp::Eq, lit("x")),
            ]),
            None,
        )],
    );
    // A value that is more than one literal takes the climb.
    parses_to(
        "true -> \"v\" . x;",
        vec![Clause {
            test: Test::True,
            value: ClauseValue::Value(StrExpr::Concat(vec![lit("v"), attr("x")])),
        }],
    );
    parses_to(
        "true -> $\"v\";",
        vec![Clause {
            test: Test::True,
            value: ClauseValue::Value(deref(1, lit("v"))),
        }],
    );
    // Blocks, and clauses one after another.
    parses_to(
        "@n > 0 -> { app_domain == \"d0\" -> \"v1\"; } ; false;",
        vec![
            Clause {
                test: n0,
                value: ClauseValue::Block(vec![clause(d0, Some("v1"))]),
            },
            clause(Test::False, None),
        ],
    );
    // A value that is not a string, or a test that is not a test: no tree.
    for src in [
        "true -> 1;",
        "true -> \"v\" == \"w\";",
        "\"a\" -> \"v\";",
        "@n;",
    ] {
        assert!(direct_conditions(src).is_none(), "{src:?}");
        assert!(parse_conditions(src).is_err(), "{src:?}");
    }
}
