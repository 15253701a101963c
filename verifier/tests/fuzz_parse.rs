//! A long mutation run of the tag/signature-block parser's fuzz function, for machines without
//! cargo-fuzz. Seeds are real stacked tags of every layout; mutations flip bytes, cut, splice,
//! duplicate and insert armor lines. `verifier::fuzz_parse_tag` asserts the parse's invariants.
//!
//!   FUZZ_EXECS=1000000 cargo test -p verifier --release --test fuzz_parse -- --ignored --nocapture

mod common;

use common::*;

const MARKERS: &[&[u8]] = &[
    b"-----BEGIN PGP SIGNATURE-----\n",
    b"-----END PGP SIGNATURE-----\n",
    b"-----BEGIN SSH SIGNATURE-----\n",
    b"\n\n",
    b"=AbCd\n",
    b"Version: x\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], data: &mut Vec<u8>) {
    for _ in 0..=rng.below(6) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            2 => data.truncate(rng.below(len + 1)),
            3 => {
                let m = MARKERS[rng.below(MARKERS.len())];
                let i = rng.below(len + 1);
                data.splice(i..i, m.iter().copied());
            }
            4 if len > 0 => {
                // Duplicate a chunk.
                let a = rng.below(len);
                let b = (a + rng.below(200)).min(len);
                let chunk = data[a..b].to_vec();
                let i = rng.below(len + 1);
                data.splice(i..i, chunk);
            }
            5 => {
                // Splice another seed's tail.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let at = rng.below(len + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                data.drain(a..b);
            }
            _ => {
                let i = rng.below(len + 1);
                data.insert(i, b"\n-=ABCxyz019+/"[rng.below(14)]);
            }
        }
    }
}

#[test]
#[ignore = "long: run in release mode, see the module doc"]
fn fuzz_parse_tag_mutations() {
    let execs: u64 = std::env::var("FUZZ_EXECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let c = content("v1.0", "commit", COMMIT);
    let seeds = vec![
        one_block(&c, &["ed25519", "rsa2048", "rsa4096", "subkey"]),
        onion(&c, &["ed25519", "rsa2048"]),
        appended(&c, &["ed25519", "rsa4096"]),
        c.clone(),
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/git.git-tags/v2.54.0-rc2.tag"
        ))
        .unwrap(),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut parsed, mut refused) = (0u64, 0u64);
    let start = std::time::Instant::now();
    for i in 0..execs {
        let mut data = seeds[(i % seeds.len() as u64) as usize].clone();
        mutate(&mut rng, &seeds, &mut data);
        verifier::fuzz_parse_tag(&data);
        if verifier::TagObject::parse(&data).is_ok() {
            parsed += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!(
        "fuzz_parse_tag: {execs} executions in {:.1} s ({parsed} parsed, {refused} refused), no \
         panic",
        start.elapsed().as_secs_f64()
    );
}
