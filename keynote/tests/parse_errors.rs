//! Data-driven must-fail parses: tests/data/parse_errors.txt lists assertions and Conditions
//! programs that must be rejected, with the error kind and (optionally) its byte span.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::{Assertion, ExprError, ParseError};

fn kind_of_expr(e: &ExprError) -> String {
    let dbg = format!("{:?}", e.kind);
    dbg.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap()
        .to_owned()
}

fn kind_of(e: &ParseError) -> (String, Option<std::ops::Range<usize>>) {
    let dbg = format!("{e:?}");
    let variant = dbg
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap()
        .to_owned();
    match e {
        ParseError::Field { source, .. } => (
            format!("Field/{}", kind_of_expr(source)),
            Some(source.span.clone()),
        ),
        ParseError::Indented { offset, .. } => (variant, Some(*offset..*offset)),
        ParseError::UnknownField { offset, name, .. } => {
            (variant, Some(*offset..*offset + name.len()))
        }
        _ => (variant, None),
    }
}

fn expand(text: &str) -> String {
    if let Some(n) = text
        .trim()
        .strip_prefix("@@PARENS")
        .and_then(|r| r.strip_suffix("@@"))
    {
        let n: usize = n.parse().unwrap();
        format!("{}true{};", "(".repeat(n), ")".repeat(n))
    } else {
        text.replace("<EMPTY>", "")
    }
}

#[test]
fn parse_errors_table() {
    let text = include_str!("data/parse_errors.txt");
    let mut count = 0;
    for block in text.split("\n### ").skip(1) {
        let mut lines = block.lines();
        let name = lines.next().unwrap();
        let (mut kind, mut span, mut what, mut body) = (None, None, None, String::new());
        for line in lines {
            if let Some(k) = line.strip_prefix("@kind ") {
                kind = Some(k.to_owned());
            } else if let Some(s) = line.strip_prefix("@span ") {
                let (a, b) = s.split_once("..").unwrap();
                span = Some(a.parse::<usize>().unwrap()..b.parse::<usize>().unwrap());
            } else if let Some(w) = line.strip_prefix("--- ") {
                what = Some(w.to_owned());
            } else if what.is_some() {
                body.push_str(line);
                body.push('\n');
            }
        }
        let body = expand(body.trim_end_matches('\n'));
        let body = if what.as_deref() == Some("assertion") {
            format!("{body}\n")
        } else {
            body
        };
        let (got_kind, got_span) = match what.as_deref() {
            Some("assertion") => {
                let e = Assertion::parse(&body).expect_err(name);
                kind_of(&e)
            }
            Some("conditions") => {
                let e = keynote::parser::parse_conditions(&body).expect_err(name);
                (kind_of_expr(&e), Some(e.span))
            }
            other => panic!("{name}: unknown section {other:?}"),
        };
        assert_eq!(Some(got_kind), kind, "case {name:?}");
        if let Some(span) = span {
            assert_eq!(got_span, Some(span), "span of case {name:?}");
        }
        count += 1;
    }
    assert!(count >= 24, "only {count} cases");
}
