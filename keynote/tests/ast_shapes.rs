//! The Conditions parsers' trees for hand-picked texts, written out by hand.
//!
//! The differential tests (fast_path.rs) hold the parsers to one another, and the round-trip
//! properties (properties.rs) hold parse to print; all of them share the precedence climber,
//! so a climber that builds a wrong tree the same way everywhere would pass them. These trees
//! are the independent answer, one per shape the climber takes a shortcut for: a prefix on a
//! plain name or literal (`@n`, `&f`, `$a`), a literal clause value, a clause's test built
//! in the clause's own frame, and the general paths next to each; then 2,000 generated trees
//! a run, each printed with as few brackets as the grammar allows and parsed back.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::ast::{
    ArithOp, Clause, ClauseValue, CmpOp, Conditions, IntExpr, NumExpr, StrExpr, Test, Text,
};
use keynote::parser::{direct_conditions, parse_conditions, pest_only};
use proptest::prelude::*;

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
    let eq_x = |s: StrExpr| Test::Str(s, CmpOp::Eq, lit("x"));
    let cases = [
        ("@n > 0;", gt0(int_of(attr("n")))),
        ("@\"12\" > 0;", gt0(int_of(lit("12")))),
        (
            "&f < 1.5;",
            Test::Float(
                NumExpr::Convert(Box::new(attr("f"))),
                CmpOp::Lt,
                NumExpr::Lit(1.5),
            ),
        ),
        ("$a == \"x\";", eq_x(deref(1, attr("a")))),
        ("$\"a\" == \"x\";", eq_x(deref(1, lit("a")))),
        // Two `$` count as one Deref of two; a bracket or another prefix after the first
        // prefix takes the general path.
        ("$$a == \"x\";", eq_x(deref(2, attr("a")))),
        ("$(a) == \"x\";", eq_x(deref(1, attr("a")))),
        ("@$a > 0;", gt0(int_of(deref(1, attr("a"))))),
        (
            "-@n > 0;",
            gt0(NumExpr::Neg {
                times: 1,
                inner: Box::new(int_of(attr("n"))),
            }),
        ),
        // A prefixed operand binds tighter than any infix operator.
        (
            "$a . b == \"x\";",
            eq_x(StrExpr::Concat(vec![deref(1, attr("a")), attr("b")])),
        ),
        (
            "@n + 1 > 0;",
            gt0(NumExpr::Chain {
                first: Box::new(int_of(attr("n"))),
                rest: vec![(ArithOp::Add, NumExpr::Lit(1))],
            }),
        ),
    ];
    for (src, test) in cases {
        parses_to(src, vec![clause(test, None)]);
    }
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

// ------------------------------------------------------------------ generated trees
//
// Trees in the shape the parser builds (flat `&&`/`||` whose first term is not of the same
// kind, `!` counts, flat `.` and operator chains), printed with only the brackets the grammar
// needs: prefixes directly on names and literals, comparisons bare under `&&`, `||` and `!`,
// bare literal values. Display brackets everything, so the round-trip properties never reach
// the climber's shortcuts; this does, and checks them against the tree it started from.

/// A string operand: a name, a literal, `$` of either, or a `.` chain of those.
fn str_operand() -> impl Strategy<Value = (StrExpr, String)> {
    let leaf = prop_oneof![
        "[a-z][a-z_0-9]{0,3}".prop_map(|n| (attr(&n), n)),
        "[a-z0-9 ]{0,4}".prop_map(|s| (lit(&s), format!("\"{s}\""))),
    ];
    let unary = prop_oneof![
        3 => leaf.clone(),
        1 => (leaf, 1u32..3).prop_map(|((e, s), n)| (deref(n, e), format!("{}{s}", "$".repeat(n as usize)))),
    ];
    prop_oneof![
        3 => unary.clone(),
        1 => prop::collection::vec(unary, 2..4).prop_map(|v| {
            let text = v.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join(" . ");
            (StrExpr::Concat(v.into_iter().map(|(e, _)| e).collect()), text)
        }),
    ]
}

/// An integer operand: a literal, `@` of a name or literal, or a `+`/`-` chain of those.
fn int_operand() -> impl Strategy<Value = (IntExpr, String)> {
    let leaf = prop_oneof![
        (0i64..1000).prop_map(|n| (NumExpr::Lit(n), n.to_string())),
        "[a-z][a-z_0-9]{0,3}".prop_map(|n| (int_of(attr(&n)), format!("@{n}"))),
        "[0-9]{1,3}".prop_map(|s| (int_of(lit(&s)), format!("@\"{s}\""))),
    ];
    prop_oneof![
        3 => leaf.clone(),
        1 => (leaf.clone(), prop::collection::vec((prop::bool::ANY, leaf), 1..3)).prop_map(
            |((first, mut text), rest)| {
                let mut chain = Vec::new();
                for (add, (e, s)) in rest {
                    let op = if add { ArithOp::Add } else { ArithOp::Sub };
                    text.push_str(&format!(" {op} {s}"));
                    chain.push((op, e));
                }
                (NumExpr::Chain { first: Box::new(first), rest: chain }, text)
            }
        ),
    ]
}

const CMP: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Ne,
    CmpOp::Lt,
    CmpOp::Le,
    CmpOp::Gt,
    CmpOp::Ge,
];

/// A comparison (or `true`/`false`), printed without brackets.
fn comparison() -> impl Strategy<Value = (Test, String)> {
    let cmp = prop::sample::select(&CMP[..]);
    let ord = prop::sample::select(&CMP[2..]);
    prop_oneof![
        Just((Test::True, "true".to_owned())),
        Just((Test::False, "FALSE".to_owned())),
        (str_operand(), cmp.clone(), str_operand())
            .prop_map(|((a, x), o, (b, y))| (Test::Str(a, o, b), format!("{x} {o} {y}"))),
        (int_operand(), cmp, int_operand())
            .prop_map(|((a, x), o, (b, y))| (Test::Int(a, o, b), format!("{x} {o} {y}"))),
        (
            "[a-z]{1,3}",
            ord,
            prop::sample::select(&[0.5, 1.5, 2.25][..])
        )
            .prop_map(|(n, o, v)| (
                Test::Float(NumExpr::Convert(Box::new(attr(&n))), o, NumExpr::Lit(v)),
                format!("&{n} {o} {v}")
            )),
        (str_operand(), str_operand())
            .prop_map(|((a, x), (b, y))| (Test::Regex(a, b), format!("{x} ~= {y}"))),
    ]
}

/// How tightly a test's text binds: an operand of `&&` needs brackets around `||`, and so on.
fn level(t: &Test) -> u8 {
    match t {
        Test::Or(_) => 1,
        Test::And(_) => 2,
        _ => 3,
    }
}

/// `t`'s text, bracketed when it binds more loosely than `min`.
fn at_least(t: &(Test, String), min: u8) -> String {
    if level(&t.0) < min {
        format!("({})", t.1)
    } else {
        t.1.clone()
    }
}

fn test_tree() -> impl Strategy<Value = (Test, String)> {
    comparison().prop_recursive(3, 24, 4, |inner| {
        // `&&`/`||` terms, bracketed where they bind as loosely as the chain. The parser
        // extends a chain whose first term is a chain of the same operator, brackets or not,
        // so no tree it builds starts so.
        let chain = |and: bool| {
            let own = if and { 2 } else { 1 };
            prop::collection::vec(inner.clone(), 2..4)
                .prop_filter("first term a chain of the same operator", move |v| {
                    v.first().is_some_and(|t| level(&t.0) != own)
                })
                .prop_map(move |v| {
                    let op = if and { " && " } else { " || " };
                    let text = v
                        .iter()
                        .map(|t| at_least(t, own + 1))
                        .collect::<Vec<_>>()
                        .join(op);
                    let terms = v.into_iter().map(|(t, _)| t).collect();
                    (
                        if and {
                            Test::And(terms)
                        } else {
                            Test::Or(terms)
                        },
                        text,
                    )
                })
        };
        prop_oneof![
            chain(true),
            chain(false),
            // `!` takes a comparison-strength operand: `&&`/`||` go in brackets; a `!` inside a
            // `!` merges into its count, so the inner test is never one.
            (
                1u32..3,
                inner.prop_filter("no `!` in `!`", |t| !matches!(t.0, Test::Not { .. }))
            )
                .prop_map(|(n, t)| {
                    let text = format!("{}{}", "!".repeat(n as usize), at_least(&t, 3));
                    (
                        Test::Not {
                            times: n,
                            inner: Box::new(t.0),
                        },
                        text,
                    )
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn minimal_brackets_parse_to_the_tree(
        clauses in prop::collection::vec(
            (test_tree(), prop::option::of(str_operand())),
            1..4,
        )
    ) {
        let mut text = String::new();
        let mut want = Vec::new();
        for ((test, t), value) in clauses {
            match value {
                Some((v, s)) => {
                    text.push_str(&format!("{t} -> {s};\n"));
                    want.push(Clause { test, value: ClauseValue::Value(v) });
                }
                None => {
                    text.push_str(&format!("{t};\n"));
                    want.push(Clause { test, value: ClauseValue::Max });
                }
            }
        }
        parses_to(&text, want);
    }
}
