//! Criterion benchmark of `Evaluator::decide`: a K-of policy over a 900-key keyring (a real
//! distribution keyring's size), for an accepted tag, a rejected one (with its explanation), and
//! a 1-key policy for comparison. Each decision reads the tag from a real repository on disk,
//! verifies its signatures and runs the KeyNote query.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use policy::{Decision, Evaluator, PolicyFile, PolicySet, RefUpdate, Source, zero_oid};

fn evaluator(keys: &[sequoia_openpgp::Cert], threshold: usize) -> Evaluator {
    let ring = keyring(keys);
    let text = policy::to_policy::keyring_policy(
        &ring,
        &policy::to_policy::ToPolicy {
            threshold,
            ref_pattern: Some("^refs/tags/v"),
            value: Decision::Propagate,
            source: "generated",
        },
    )
    .unwrap();
    let mut set = PolicySet::new();
    set.add_trusted(PolicyFile::parse("bench.kn", &text).unwrap());
    Evaluator::new(set, ring, at(DECIDE_AT))
}

fn bench(c: &mut Criterion) {
    let keys = certs(900);
    let (_t, dir, head) = repo();
    let two = store_tag(
        &dir,
        "v2",
        &tag_bytes("v2", &head, &[&keys[10], &keys[800]]),
    );
    let one = store_tag(&dir, "v1", &tag_bytes("v1", &head, &[&keys[10]]));
    let objects = verifier::TagSource::open(&dir).unwrap();
    let big = evaluator(&keys, 2);
    let small = evaluator(&keys[10..11], 1);
    let update = |name: &str, oid| {
        RefUpdate::new(
            "bench",
            format!("refs/tags/{name}"),
            zero_oid(),
            oid,
            Source::Cli,
        )
    };
    let (u2, u1) = (update("v2", two), update("v1", one));
    assert_eq!(big.decide(&u2, &objects).decision, Decision::Propagate);
    assert_eq!(big.decide(&u1, &objects).decision, Decision::Reject);
    assert_eq!(small.decide(&u1, &objects).decision, Decision::Propagate);

    let mut g = c.benchmark_group("decide");
    g.bench_function("900-key 2-of, accepted (2 signatures)", |b| {
        b.iter(|| black_box(big.decide(black_box(&u2), &objects)))
    });
    g.bench_function("900-key 2-of, rejected with explanation", |b| {
        b.iter(|| black_box(big.decide(black_box(&u1), &objects)))
    });
    g.bench_function("1-key policy, accepted (1 signature)", |b| {
        b.iter(|| black_box(small.decide(black_box(&u1), &objects)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
