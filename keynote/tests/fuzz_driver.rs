//! In-process fuzz driver for the two fuzz entry points, for machines without libFuzzer:
//! mutates seed inputs (the conformance corpus, the perf inputs, a token dictionary) with a
//! deterministic RNG and feeds them to `keynote::fuzz_assertion` and
//! `keynote::fuzz_action_environment`, which must never panic.
//!
//! Ignored by default (it runs for a while):
//!   KEYNOTE_FUZZ_ITERS=1000000 cargo test -p keynote --release --test fuzz_driver -- --ignored --nocapture
// Test helpers panic on broken fixtures by design.
#![allow(clippy::unwrap_used)]

use std::path::Path;

const DICT: &[&str] = &[
    "Authorizer:",
    "Licensees:",
    "Conditions:",
    "Local-Constants:",
    "KeyNote-Version: 2\n",
    "Signature:",
    "Comment:",
    "\"POLICY\"",
    "\"alice\"",
    "&&",
    "||",
    "->",
    "{",
    "}",
    "(",
    ")",
    ";",
    "~=",
    "==",
    "!=",
    "<=",
    ">=",
    "@",
    "&",
    "$",
    "-",
    "^",
    "%",
    "/",
    "*",
    ".",
    "2-of(",
    "\"x\"",
    "\\\n  ",
    "\n",
    "\n\n",
    " ",
    "\t",
    "#",
    "_0",
    "_1",
    "_MAX_TRUST",
    "true",
    "false",
    "2147483647",
    "0",
    "1.5",
    "\"(a*)*b\"",
    "\"\\101\"",
    "\"rsa-hex:00\"",
    "a = \"b\"\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let cases = root.join("../tests/fixtures/keynote-conformance/cases");
    for case in std::fs::read_dir(cases).unwrap() {
        let dir = case.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".kn") || name == "action.env" {
                out.push(std::fs::read(&p).unwrap());
            }
        }
    }
    for f in ["benches/perf/chain/a0001.kn", "benches/perf/chain/env"] {
        out.push(std::fs::read(root.join(f)).unwrap());
    }
    out
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let word = DICT[rng.below(DICT.len())].as_bytes();
                let at = rng.below(len + 1);
                input.splice(at..at, word.iter().copied());
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(16)).min(len);
                input.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                let chunk: Vec<u8> = input[a..b].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let a = rng.below(other.len() + 1);
                let b = (a + rng.below(128)).min(other.len());
                let at = rng.below(len + 1);
                input.splice(at..at, other[a..b].iter().copied());
            }
            5 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next() as u8);
            }
        }
    }
    input.truncate(8192);
}

#[test]
#[ignore = "long-running fuzz driver; run explicitly"]
fn fuzz_driver() {
    let iters: u64 = std::env::var("KEYNOTE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut assertion_runs, mut env_runs) = (0u64, 0u64);
    for i in 0..iters {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        if i % 2 == 0 {
            keynote::fuzz_assertion(&input);
            assertion_runs += 1;
        } else {
            keynote::fuzz_action_environment(&input);
            env_runs += 1;
        }
    }
    // The environment parser is cheap: give it a million runs of its own as well.
    for _ in 0..iters.saturating_sub(env_runs) {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        keynote::fuzz_action_environment(&input);
        env_runs += 1;
    }
    for _ in 0..iters.saturating_sub(assertion_runs) {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        keynote::fuzz_assertion(&input);
        assertion_runs += 1;
    }
    println!(
        "fuzz_driver: {assertion_runs} fuzz_assertion runs, {env_runs} fuzz_action_environment runs, no panic"
    );
}
