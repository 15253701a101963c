//! Library-level benchmarks on the perf inputs of benches/perf (see its README for the
//! reference implementation's whole-process figures): parsing plus querying, as `keynote
//! verify` does, minus process start-up and file reading.
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_main};
use keynote::crypto::{Principal, Registry};
use keynote::{Assertion, Session, Trust, parse_action_environment, split_assertions};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn perf(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/perf")
        .join(dir)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A query's inputs, read once: environment, requester, values, trusted and untrusted texts.
struct Input {
    env: Vec<(String, String)>,
    requester: String,
    values: Vec<String>,
    trusted: Vec<String>,
    untrusted: Vec<String>,
}

impl Input {
    fn load(dir: &str, values: &str, trusted: &[&str], untrusted: &[String]) -> Input {
        let d = perf(dir);
        let key = read(&d.join("requester.key"));
        Input {
            env: parse_action_environment(&read(&d.join("env"))).unwrap(),
            requester: key.trim().trim_matches('"').to_owned(),
            values: values.split(',').map(str::to_owned).collect(),
            trusted: trusted.iter().map(|f| read(&d.join(f))).collect(),
            untrusted: untrusted.iter().map(|f| read(&d.join(f))).collect(),
        }
    }

    /// Everything `verify` does after reading files: parse, add, query.
    fn run(&self) -> String {
        let mut s = Session::default();
        s.set_values(self.values.iter().cloned());
        for (n, v) in &self.env {
            s.set_attribute(n, v).unwrap();
        }
        s.add_authorizer(&self.requester).unwrap();
        for t in &self.trusted {
            s.add_assertion(t, Trust::Trusted).unwrap();
        }
        for t in self.untrusted.iter().rev() {
            s.add_assertion(t, Trust::Untrusted).unwrap();
        }
        s.query().unwrap().value
    }
}

fn chain_files(args: &str, flag: &str) -> Vec<String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == flag {
            out.push(words[i + 1].to_owned());
            i += 2;
        } else if words[i].starts_with('-') {
            i += 2;
        } else {
            out.push(words[i].to_owned());
            i += 1;
        }
    }
    out
}

fn generated_chain(n: usize) -> Input {
    let mut trusted = vec!["Authorizer: \"POLICY\"\nLicensees: \"P0\"\n".to_owned()];
    for i in 0..n {
        let next = if i + 1 == n {
            "requester".to_owned()
        } else {
            format!("P{}", i + 1)
        };
        trusted.push(format!(
            "KeyNote-Version: 2\nAuthorizer: \"P{i}\"\nLicensees: \"{next}\"\nConditions: app_domain == \"perf\";\n"
        ));
    }
    Input {
        env: vec![("app_domain".into(), "perf".into())],
        requester: "requester".into(),
        values: vec!["false".into(), "true".into()],
        trusted,
        untrusted: vec![],
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("keynote");
    g.sample_size(20);

    let args = read(&perf("chain").join("args.txt"));
    let files = chain_files(&args, "-l");
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let a = Input::load("chain", "false,true", &refs, &[]);
    assert_eq!(a.run(), "true");
    g.bench_function("a_chain_1000", |b| b.iter(|| black_box(a.run())));

    let clauses = |files: &[&str], want: &str| {
        let i = Input::load("clauses", "v0,v1,v2", files, &[]);
        assert_eq!(i.run(), want);
        i
    };
    let b0 = clauses(&["policy.kn"], "v2");
    g.bench_function("b_clauses_10000", |b| b.iter(|| black_box(b0.run())));
    let b1 = clauses(&["policy-3331.kn"], "v2");
    g.bench_function("b1_clauses_3331", |b| b.iter(|| black_box(b1.run())));
    let b2 = clauses(
        &["split-0.kn", "split-1.kn", "split-2.kn", "split-3.kn"],
        "v1",
    );
    g.bench_function("b2_split_4x2500", |b| b.iter(|| black_box(b2.run())));
    let b3 = clauses(&["policy-or.kn"], "v2");
    g.bench_function("b3_or_10000", |b| b.iter(|| black_box(b3.run())));

    // The checker alone: the session is built once, only the query is timed.
    let session_of = |i: &Input| {
        let mut s = Session::default();
        s.set_values(i.values.iter().cloned());
        for (n, v) in &i.env {
            s.set_attribute(n, v).unwrap();
        }
        s.add_authorizer(&i.requester).unwrap();
        for t in &i.trusted {
            s.add_assertion(t, Trust::Trusted).unwrap();
        }
        s
    };
    let a_session = session_of(&a);
    g.bench_function("a_chain_1000_query_only", |b| {
        b.iter(|| black_box(a_session.query().unwrap().index))
    });

    let long = generated_chain(10_000);
    let long_session = session_of(&long);
    g.bench_function("chain_10000_query_only", |b| {
        b.iter(|| black_box(long_session.query().unwrap().index))
    });
    assert_eq!(long.run(), "true");
    g.bench_function("chain_10000_generated", |b| {
        b.iter(|| black_box(long.run()))
    });

    // (a') and (c) need RFC 2792 signatures.
    let sargs = read(&perf("chain-signed").join("args.txt"));
    let untrusted: Vec<String> = sargs.split_whitespace().map(str::to_owned).collect();
    let signed = Input::load("chain-signed", "false,true", &["policy.kn"], &untrusted);
    if signed.run() == "true" {
        g.bench_function("a_prime_signed_chain_1000", |b| {
            b.iter(|| black_box(signed.run()))
        });
    } else {
        eprintln!("a_prime skipped: signatures do not verify (crypto not available)");
    }
    let rsa = read(&perf("sigver").join("rsa-1000.kn"));
    let registry = Registry::default();
    let sigver = |text: &str| -> usize {
        let mut ok = 0;
        for chunk in split_assertions(text) {
            let Ok(a) = Assertion::parse(chunk) else {
                continue;
            };
            let (Ok(auth), Some(sig)) = (a.authorizer_without_action(), a.signature_value()) else {
                continue;
            };
            let Ok(p) = Principal::parse(&auth) else {
                continue;
            };
            if registry.verify_assertion(&p, a.signed_body(), sig).is_ok() {
                ok += 1;
            }
        }
        ok
    };
    if sigver(&rsa) == 1000 {
        g.bench_function("c_sigver_rsa_1000", |b| b.iter(|| black_box(sigver(&rsa))));
    } else {
        eprintln!("c skipped: signatures do not verify (crypto not available)");
    }
    g.finish();
}

// The macro generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(keynote_benches, super::benches);
}
use group::keynote_benches;
criterion_main!(keynote_benches);
