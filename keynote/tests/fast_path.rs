//! Differential tests: the parsers' fast paths (parser.rs: the one-pass Conditions reader, a
//! hand-written recognizer of the Conditions rule, flat Licensees, single-literal Authorizer,
//! digit-only KeyNote-Version) give exactly what pest alone gives (`keynote::parser::pest_only`), AST or error, on the
//! conformance corpus, the fuzz corpus, generated programs and token soup.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::parser::{
    DIRECT_MAX_NESTING, PARALLEL_MIN_TOKENS, direct_conditions, parse_conditions,
    parse_conditions_parallel, parse_env_assignments, parse_licensees, parse_str_expr,
    parse_version, pest_only,
};
use proptest::prelude::*;
use std::path::Path;

/// Every parser, fast path against pest alone.
fn same(src: &str) {
    let pest = pest_only::parse_conditions(src);
    assert_eq!(parse_conditions(src), pest, "Conditions {src:?}");
    // The one-pass reader gives up exactly where pest finds an error, and otherwise builds
    // pest's tree (so no valid text falls back to the slow path unnoticed), but for text
    // that nests deeper than it reads.
    let direct = direct_conditions(src);
    if direct.is_some() || src.matches(['(', '{', '!']).count() <= DIRECT_MAX_NESTING {
        assert_eq!(direct, pest.ok(), "one-pass Conditions {src:?}");
    }
    assert_eq!(
        parse_licensees(src),
        pest_only::parse_licensees(src),
        "Licensees {src:?}"
    );
    assert_eq!(
        parse_str_expr(src),
        pest_only::parse_str_expr(src),
        "Authorizer {src:?}"
    );
    assert_eq!(
        parse_env_assignments(src),
        pest_only::parse_env_assignments(src),
        "environment file {src:?}"
    );
    assert_eq!(
        parse_version(src),
        pest_only::parse_version(src),
        "KeyNote-Version {src:?}"
    );
}

/// The Conditions parse split between threads gives what one thread gives, AST or error, on
/// `src` repeated (joined by `sep`, closed by `end`) until it has enough tokens to be split, so
/// the runs of clauses or operands fall in many different places.
fn split_same_joined(src: &str, sep: &str, end: &str) {
    let mut big = String::new();
    // A token takes at least one byte and a separator: 8 bytes a token is plenty.
    while big.len() <= PARALLEL_MIN_TOKENS * 8 {
        big.push_str(src);
        big.push_str(sep);
    }
    big.push_str(end);
    let one = parse_conditions(&big);
    for threads in [2, 3, 4, 8] {
        assert_eq!(
            parse_conditions_parallel(&big, threads),
            one,
            "{threads} threads, {src:?} repeated"
        );
    }
}

fn split_same(src: &str) {
    split_same_joined(src, "\n", "");
}

/// Field values found in a file: the text after each line's first `:` up to the next
/// unindented line (roughly a field value), and the whole text.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = vec![text];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(colon) = line.find(':') {
            let start = offset + colon + 1;
            let rest = text.get(start..).unwrap_or("");
            let mut end = rest.len();
            let mut at = 0;
            for l in rest.split_inclusive('\n') {
                at += l.len();
                if rest
                    .get(at..)
                    .and_then(|r| r.bytes().next())
                    .is_some_and(|b| b != b' ' && b != b'\t' && b != b'\n')
                {
                    end = at;
                    break;
                }
            }
            out.push(rest.get(..end.min(8192)).unwrap_or(rest));
        }
        offset += line.len();
    }
    out
}

fn corpus(dir: &Path, min_files: usize) {
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for piece in pieces(&text) {
                same(piece);
            }
            files += 1;
        }
    }
    assert!(files >= min_files, "{}: only {files} files", dir.display());
}

#[test]
fn conformance_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    corpus(&root.join("tests/fixtures/keynote-conformance/cases"), 1000);
    corpus(&root.join("keynote/benches/perf"), 10);
}

#[test]
fn parallel_conditions_on_the_perf_inputs() {
    // The 3,331-clause program and the 10,000-operand `||` chain (the larger perf inputs are
    // the same shapes; unoptimised test builds parse them slowly).
    let perf = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/perf/clauses");
    for name in ["policy-3331.kn", "policy-or.kn"] {
        let text = std::fs::read_to_string(perf.join(name)).unwrap();
        let conditions = text.split_once("Conditions:").unwrap().1;
        let one = parse_conditions(conditions).unwrap();
        for threads in [2, 3] {
            assert_eq!(
                parse_conditions_parallel(conditions, threads).unwrap(),
                one,
                "{name}, {threads} threads"
            );
        }
    }
}

#[test]
fn parallel_conditions_same_as_one_thread() {
    // Many clauses, split into runs.
    for src in [
        "a == \";\" -> \"x;y\";",
        "a == \"\\\";\" -> \"v\"; # ; \" ; \n b == \"c\";",
        "a == \"b\" -> { c == \"d\"; e == \"f\" -> \"g\"; };",
        "(a == \"b\" && (c == \"d\")) -> \"v\";",
        "@n - 1 > 0; -2 < @n;",
        // Errors: the one-thread parse's error, at its offset.
        "a == \"b\";\n@a == \"c\";",
        "a == \"b\" -> ;",
        "a == \"b\"; \"unterminated",
        "a == \"b\"; )",
        "a == \"b\" -> { c == \"d\";",
        "a == \"b\";\r",
        // Where the text is also lexed in two halves (from a line start after the middle):
        // line breaks inside strings and comments, a `-` opening a line after an operand,
        // deep brackets, too-deep brackets.
        "a == \"x\ny\nz\" -> \"v\nw\";",
        "# a comment ; \" (\na == \"b\"; # another\n",
        "@n\n- 1\n> 0;\n-1\n< @n;",
        &format!("{}a == \"b\"{};", "(".repeat(200), ")".repeat(200)),
        &format!("{}a == \"b\"\n{};", "(\n".repeat(300), ")".repeat(300)),
    ] {
        split_same(src);
    }
    // One clause, a long `||` chain split into groups of operands.
    for (first, operand) in [
        ("a == \"b\"", "(x == \"y\" && @n > 1)"),
        ("(p == \"q\" || r == \"s\")", "(x == \"y\" || z == \"w\")"),
        ("!a == \"b\"", "!(x ~= \"^a(b|c)$\") && @n + 1 * 2 >= -3"),
        ("true", "false"),
        // Type errors inside the chain and in joining it.
        ("a == \"b\"", "\"x\""),
        ("a == \"b\"", "(@x == \"y\")"),
        ("\"a\"", "b == \"c\""),
    ] {
        split_same_joined(
            &format!("{first} || {operand}"),
            " ||\n",
            "c == \"d\" -> \"v\";",
        );
        split_same_joined(operand, " || ", "true;");
    }
}

/// The fuzz corpus kept in the repository: one input a line, base64, `#` lines are comments.
const FUZZ_CORPUS: &str = include_str!("data/fuzz-assertion.b64");

/// Fewest inputs [`FUZZ_CORPUS`] may hold: it is a minimised libFuzzer corpus of thousands.
const FUZZ_CORPUS_MIN: usize = 1000;

#[test]
fn fuzz_corpus() {
    use base64::Engine as _;
    let mut inputs = 0;
    for line in FUZZ_CORPUS.lines().filter(|l| !l.starts_with('#')) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(line)
            .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for piece in pieces(&text) {
            same(piece);
        }
        inputs += 1;
    }
    assert!(inputs >= FUZZ_CORPUS_MIN, "only {inputs} inputs");
    // A local fuzzing run's corpus (not in the repository), when there is one.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for name in ["assertion", "action_environment"] {
        let dir = root.join(name);
        if dir.is_dir() {
            corpus(&dir, 100);
        }
    }
}

#[test]
fn hand_picked() {
    for src in [
        "",
        "  2 ",
        "2 # c",
        "\"2\"",
        "\"a\"",
        // One literal, the pre-lexing path's case, and its edges.
        " \t\n\"P0002\"\n ",
        "\"\"",
        "\"",
        "\"a\" # c",
        "# c\n\"a\"",
        "\"a\" \"b\"",
        "\"a\\\"b\"",
        "\"a\\nb\"",
        "\"a\"\r",
        "\"a # b\"",
        "\"\u{e9}\u{1f512}\"",
        "\"a\" && \"b\" || \"c\"",
        "2-of(\"a\", \"b\", \"c\")",
        "5-of(\"a\") && (",
        "5-of(\"a\") || 0-of(\"b\")",
        "1-of(\"a\",)",
        "\"a\" &&",
        "a == \"b\";",
        "a == \"b\" -> { b == \"c\" -> \"x\"; } ;",
        "a == \"b\" -> { b == \"c\" -> \"x\"; ",
        "a == \"b\" -> 1;",
        "a -> \"b\";",
        "@a + 1 > 2 && !(b ~= \"c\") || $x . y == \"z\";",
        "-1 < 2; 1.5 > &a;",
        // A `-` after `)` is binary, after an operator unary.
        "(@n) - 1 > 0;",
        "-(@n) - -1 < 3 && (@a)-(@b) == 0;",
        "(a == \"b\") - 1;",
        "a == \"b\"",
        "(a == \"b\";",
        "a == \"b\");",
        "true; false -> \"v\";",
        "a = \"b\"",
        "a=\"b\"\n# c\n  1x_ = \"\\\"q\" # d",
        "_a = \"b\"",
        "a = \"b",
        "a = \"b\\",
        "a = \"\\é\" b = \"c\"",
        "a = b",
        "a \"b\"",
        "a = \"(((\"",
        "a = \"b\" (",
        "  \n",
        "a\r= \"b\"",
    ] {
        same(src);
    }
}

/// Tokens of all three expression languages, well- and ill-formed together.
const TOKENS: &[&str] = &[
    "=",
    "=",
    "\n",
    "x_1",
    "9z",
    "\"\\n\"",
    "\"(\"",
    "# (\n",
    "\t",
    "a",
    "b",
    "_0",
    "\"x\"",
    "\"a\\\"b\"",
    "1",
    "2",
    "2.5",
    "true",
    "false",
    "(",
    ")",
    "(",
    ")",
    "{",
    "}",
    "!",
    "@",
    "&",
    "$",
    "-",
    "+",
    "*",
    "/",
    "%",
    "^",
    ".",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "~=",
    "&&",
    "||",
    "&&",
    "||",
    "->",
    ";",
    ";",
    ",",
    "2-of",
    "1-of(",
    "0-of",
    "#c\n",
    "\"p\"",
    "\"q\"",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|v| v.join(" "))
}

/// Mostly well-formed Licensees: literals, `&&`, `||`, brackets and `K-of`.
fn licensees() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(&["\"a\"", "\"b\"", "\"c\"", "x"][..]).prop_map(str::to_owned);
    leaf.prop_recursive(3, 8, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            (0usize..4, prop::collection::vec(inner, 1..4))
                .prop_map(|(k, ps)| format!("{k}-of({})", ps.join(", "))),
        ]
    })
}

/// Mostly well-formed Conditions programs with nested blocks.
fn program() -> impl Strategy<Value = String> {
    let test = prop::sample::select(
        &[
            "a == \"x\"",
            "@n > 1",
            "!(a ~= \"y\") && b != \"z\"",
            "&f < 2.5 || @n + 1 * 2 >= -3",
            "true",
            "a . b == $c",
            "@n == \"1\"",
            "(@n) - -1 > 0",
        ][..],
    );
    let value = prop::sample::select(&["", " -> \"v\"", " -> a", " -> 1"][..]);
    let clause = (test, value).prop_map(|(t, v)| format!("{t}{v};"));
    let flat = prop::collection::vec(clause, 0..4).prop_map(|v| v.join("\n"));
    flat.prop_recursive(3, 12, 3, |inner| {
        (inner.clone(), inner.clone(), inner)
            .prop_map(|(a, b, c)| format!("{a} a == \"b\" -> {{ {b} }}; {c}"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn soup_same(src in token_soup()) {
        same(&src);
    }

    #[test]
    fn licensees_same(src in licensees()) {
        same(&src);
    }

    #[test]
    fn programs_same(src in program()) {
        same(&src);
    }
}

proptest! {
    // Each case parses ~32 KB five times: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn programs_split_same(src in program()) {
        split_same(&src);
    }

    #[test]
    fn soup_split_same(src in token_soup()) {
        split_same(&src);
    }
}
