//! Data-driven checker tests: tests/data/checker.txt holds assertion sets, action attributes
//! and requesters with the expected answer and failure lines (format described in the file).
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use keynote::{Session, Trust};

struct Case {
    name: String,
    values: Vec<String>,
    requesters: Vec<String>,
    attrs: Vec<(String, String)>,
    assertions: Vec<(Trust, String)>,
    expect: Option<String>,
    failed: Vec<String>,
}

/// Expand `@@OR<n>@@` into `n` terms `@n == i ||`, to keep large inputs out of the file.
fn expand(line: &str) -> String {
    if let Some(start) = line.find("@@OR") {
        let rest = &line[start + 4..];
        let end = rest.find("@@").unwrap();
        let n: usize = rest[..end].parse().unwrap();
        let terms: String = (1..n).map(|i| format!(" @n == {i} ||")).collect();
        format!("{}{}{}", &line[..start], terms, &rest[end + 2..])
    } else {
        line.to_owned()
    }
}

fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut current: Option<(Trust, String)> = None;
    let flush = |cases: &mut Vec<Case>, current: &mut Option<(Trust, String)>| {
        if let (Some(c), Some(a)) = (cases.last_mut(), current.take()) {
            c.assertions.push(a);
        }
    };
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            flush(&mut cases, &mut current);
            cases.push(Case {
                name: name.to_owned(),
                values: vec!["false".into(), "true".into()],
                requesters: vec![],
                attrs: vec![],
                assertions: vec![],
                expect: None,
                failed: vec![],
            });
            continue;
        }
        if line.starts_with('#') && current.is_none() {
            continue;
        }
        if let Some(section) = line.strip_prefix("--- ") {
            flush(&mut cases, &mut current);
            let trust = match section {
                "trusted" => Trust::Trusted,
                "untrusted" => Trust::Untrusted,
                other => panic!("unknown section {other}"),
            };
            current = Some((trust, String::new()));
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            flush(&mut cases, &mut current);
            let case = cases.last_mut().unwrap();
            let (key, value) = rest.split_once(' ').unwrap();
            match key {
                "values" => case.values = value.split(',').map(str::to_owned).collect(),
                "requester" => case.requesters.push(value.to_owned()),
                "attr" => {
                    let (n, v) = value.split_once('=').unwrap();
                    case.attrs.push((n.to_owned(), v.to_owned()));
                }
                "expect" => case.expect = Some(value.to_owned()),
                "failed" => case.failed.push(value.to_owned()),
                other => panic!("unknown key {other}"),
            }
            continue;
        }
        if let Some((_, text)) = current.as_mut() {
            if line.trim().is_empty() {
                continue;
            }
            text.push_str(&expand(line));
            text.push('\n');
        }
    }
    flush(&mut cases, &mut current);
    cases
}

#[test]
fn checker_table() {
    let cases = parse_cases(include_str!("data/checker.txt"));
    assert!(cases.len() >= 15);
    for case in cases {
        let mut s = Session::default();
        s.set_values(case.values.clone());
        for r in &case.requesters {
            s.add_authorizer(r).unwrap();
        }
        for (n, v) in &case.attrs {
            s.set_attribute(n, v).unwrap();
        }
        for (trust, text) in &case.assertions {
            s.add_assertion(text, *trust)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", case.name));
        }
        let r = s.query().unwrap();
        assert_eq!(Some(&r.value), case.expect.as_ref(), "case {:?}", case.name);
        let failed: Vec<String> = r
            .failures
            .iter()
            .map(|f| {
                let kind = if f.reason.is_signature() {
                    "signature"
                } else {
                    "syntax"
                };
                format!("{}:{kind}", f.assertion)
            })
            .collect();
        assert_eq!(
            failed, case.failed,
            "case {:?}: {:?}",
            case.name, r.failures
        );
    }
}
