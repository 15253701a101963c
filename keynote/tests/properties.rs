//! Property tests: the pretty-printer round-trips the AST, and the compliance checker's answer
//! is always a listed value, independent of assertion order, and monotone in the assertions
//! (adding credentials never lowers it) under least-fixpoint semantics.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::parser::{parse_conditions, parse_licensees};
use keynote::{Session, Trust};
use proptest::prelude::*;

// ------------------------------------------------------------------ round trip

/// Tokens of the Conditions language, including some that make syntax or type errors.
const TOKENS: &[&str] = &[
    "a",
    "b",
    "_1",
    "_0",
    "\"x\"",
    "\"a\\\"b\"",
    "\"\\101\"",
    "\"\"",
    "1",
    "0",
    "42",
    "2147483647",
    "1.5",
    "0.25",
    "true",
    "FALSE",
    "(",
    ")",
    "(",
    ")",
    "!",
    "-",
    "@",
    "&",
    "$",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "~=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    ".",
    "&&",
    "||",
    "->",
    ";",
    ";",
    "{",
    "}",
    "_MAX_TRUST",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|v| v.join(" "))
}

fn str_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("a".to_owned()),
        Just("foo".to_owned()),
        Just("_1".to_owned()),
        "[a-z\\\\\"\n]{0,4}".prop_map(|s| {
            let mut q = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => q.push_str("\\\""),
                    '\\' => q.push_str("\\\\"),
                    '\n' => q.push_str("\\n"),
                    c => q.push(c),
                }
            }
            q.push('"');
            q
        }),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| format!("${s}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} . {b})")),
        ]
    })
}

fn int_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0u32..100000).prop_map(|n| n.to_string()),
        str_expr().prop_map(|s| format!("@{s}")),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| format!("-{s}")),
            (
                inner.clone(),
                prop::sample::select(&["+", "-", "*", "/", "%", "^"][..]),
                inner
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        ]
    })
}

fn test_expr() -> impl Strategy<Value = String> {
    let cmp = prop::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]);
    let leaf = prop_oneof![
        Just("true".to_owned()),
        Just("false".to_owned()),
        (str_expr(), cmp.clone(), str_expr()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (int_expr(), cmp, int_expr()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        (str_expr(), str_expr()).prop_map(|(a, b)| format!("{a} ~= {b}")),
        (str_expr(), prop::sample::select(&["<", ">="][..]))
            .prop_map(|(a, o)| format!("&{a} {o} 1.5")),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| format!("!({t})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} || {b}")),
        ]
    })
}

fn program() -> impl Strategy<Value = String> {
    let clause = (test_expr(), prop::option::of(str_expr())).prop_map(|(t, v)| match v {
        Some(v) => format!("{t} -> {v};"),
        None => format!("{t};"),
    });
    prop::collection::vec(clause, 0..4).prop_map(|v| v.join("\n"))
}

fn check_round_trip(src: &str) {
    if let Ok(ast) = parse_conditions(src) {
        let printed = ast.to_string();
        let again = parse_conditions(&printed)
            .unwrap_or_else(|e| panic!("printed form does not parse: {e}\n{printed}"));
        assert_eq!(again, ast, "source {src:?} printed {printed:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn conditions_round_trip(src in program()) {
        // Generated programs are well-formed, so they must parse.
        let ast = parse_conditions(&src);
        prop_assert!(ast.is_ok(), "{src}: {ast:?}");
        check_round_trip(&src);
    }

    #[test]
    fn token_soup_round_trip(src in token_soup()) {
        check_round_trip(&src);
        let _ = parse_licensees(&src);
    }

    #[test]
    fn nested_block_round_trip(t in test_expr(), inner in program()) {
        check_round_trip(&format!("{t} -> {{ {inner} }};"));
    }
}

// ------------------------------------------------------------------ checker invariants

const PRINCIPALS: &[&str] = &[
    "\"POLICY\"",
    "\"A\"",
    "\"B\"",
    "\"C\"",
    "\"alice\"",
    "\"bob\"",
];
const VALUES: &[&str] = &["v0", "v1", "v2", "v3"];

fn licensees() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(&PRINCIPALS[1..]).prop_map(str::to_owned);
    leaf.prop_recursive(3, 8, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} || {b})")),
            (
                1usize..3,
                prop::collection::vec(prop::sample::select(&PRINCIPALS[1..]), 3)
            )
                .prop_map(|(k, ps)| format!("{k}-of({})", ps.join(", "))),
        ]
    })
}

/// One random trusted assertion: authorizer, licensees (maybe missing), conditions value.
fn assertion() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&PRINCIPALS[..4]),
        prop::option::weighted(0.9, licensees()),
        prop::option::of(prop::sample::select(VALUES)),
    )
        .prop_map(|(auth, lic, val)| {
            let mut s = format!("Authorizer: {auth}\n");
            if let Some(l) = lic {
                s.push_str(&format!("Licensees: {l}\n"));
            }
            if let Some(v) = val {
                s.push_str(&format!("Conditions: true -> \"{v}\";\n"));
            }
            s
        })
}

fn query(assertions: &[String], requesters: &[&str]) -> (usize, String) {
    let mut s = Session::default();
    s.set_values(VALUES.iter().copied());
    for r in requesters {
        s.add_authorizer(r).unwrap();
    }
    for a in assertions {
        s.add_assertion(a, Trust::Trusted).unwrap();
    }
    let r = s.query().unwrap();
    (r.index, r.value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn answer_is_a_listed_value(set in prop::collection::vec(assertion(), 0..8)) {
        let (i, v) = query(&set, &["alice"]);
        prop_assert!(i < VALUES.len());
        prop_assert_eq!(VALUES[i], v.as_str());
    }

    #[test]
    fn order_does_not_matter(
        set in prop::collection::vec(assertion(), 0..8),
        seed in any::<u64>(),
    ) {
        let mut shuffled = set.clone();
        // A deterministic shuffle from the seed (Fisher-Yates with an LCG).
        let mut x = seed;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(query(&set, &["alice"]), query(&shuffled, &["alice"]));
    }

    #[test]
    fn more_credentials_never_lower_the_answer(
        set in prop::collection::vec(assertion(), 0..8),
        extra in assertion(),
    ) {
        let (before, _) = query(&set, &["alice", "bob"]);
        let mut more = set.clone();
        more.push(extra);
        let (after, _) = query(&more, &["alice", "bob"]);
        prop_assert!(after >= before, "{before} -> {after}");
    }

    #[test]
    fn more_requesters_never_lower_the_answer(set in prop::collection::vec(assertion(), 0..8)) {
        let (one, _) = query(&set, &["alice"]);
        let (two, _) = query(&set, &["alice", "bob"]);
        prop_assert!(two >= one);
    }
}
