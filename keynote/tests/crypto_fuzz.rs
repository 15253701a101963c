//! Drives the crypto fuzz entry points (`keynote::crypto::fuzz_decode_key`,
//! `fuzz_verify_signature`) from a deterministic generator, for machines without nightly
//! and libFuzzer. A short run is part of the normal test suite; the long run is ignored:
//!
//! ```text
//! GT_FUZZ_RUNS=1000000 cargo test --release -p keynote --test crypto_fuzz -- --ignored
//! ```
//!
//! Inputs mix random bytes with mutations of valid keys and signatures (prefix case, hex/base64
//! re-encodings, truncations, DER-shaped headers), so most runs get past the prefix checks.

use keynote::crypto::{fuzz_decode_key, fuzz_verify_signature};

const SEEDS: &[&str] = &[
    "rsa-hex:3081890281810092b8e988230c8d7eaa91fc9083c8b51dcb284be9a740e8c700e0042787066ae8998b1d827202fcd2688c708839a10c348ad1bc7753059d0593474daff5373d0dec65384e30ec1a007d66830040711e4cd65d6835dd501656f4707fa04cbe083506bf945b2dfa1b80acd0352ab7b4149bda95e35382622a015b0d2f7b9599fc670203010001",
    "rsa-base64:MIGJAoGBANfZdi8WB4FX6dr5DjJVHBImlM40qXoBAdi1hf4iXaficDrzjSpFGD+uOz8FcwqHghnxYi+PlTomOmMtit6qwd+Y7S7/Dsg/pzbGsbfwpHNARizKmKAm0g08IFAXlsXJTi1/2FNb5Xz5V6i/Z/vJu+eA8ugA+arG0mUWz3lISl/dAgMBAAE=",
    "dsa-base64:MIIBoQKBgDVSuDzBNpIJs6wm8+LEdkrB8y9BNC6RbJW+7Sw6+k5jOrItTkjJAzMXp1O9PRnIUYw2S3ETE5w6Ihftg0lDDrlQux1Y3p9VHaXfXfTxElyqZ/i1W8aqA5YvUVPS1TrimId0WpadQjAmM7sPWFB9nVHcxjh463/8dvPRoU0fgBawAoGBAJUkDE+8E1B2iQkYivSmyevWPxDcoI5twtknHAtfbkgJGY0heW0X9eP7npjBAQfantiRvux+aZnqe3b8HITgznHkbkvDjMyYTBUS0y42fzue4c9ipVsY4eoj6e34KK6Kc9FY0sLHmzXSBBlH3EHRRw7cdrLgURpOoQIQ2vHexfbBAhUAkx0YYNV16sMvGz5qjWDPOaw0Zw0CgYAKnhQhep/48bMRzy13MqjUGWMBDB+JM0nxICAXEvBkihwuJ0Sl/ud5gj9I7NvcXVTJQCtqoSZGUhidF+Y6eg+dAoRhmvA5y6rGbySZ7bSpfBRSHAylmiyA9UXHi6pBvEETbxNSRzDzaN5rXW1j/JTZF0lh0BC6DdHgHBGD67asug==",
    "sig-rsa-sha1-hex:2ecd54e5fb65cb136b3c19ebd926d910a71b2a707d641d90960da8b45d97d29bae8029c645c064660074fee9e41c5b61efbeae61cc65aa5b3589e01b509d733adcdbe35f31281af646ea09bdcfab446103ae99e2c55c24531bf3b51783473b11cc8ca8cf4e08ffb6e62e9442d7c654480a3374c7c0885893608a13bf7965e5a7",
    "sig-dsa-sha1-base64:MCwCFHZObbbmz1VjW6M9GGvuI7Zi2U4QAhQ/S5Av1fm0d36SuuFbxIFpdW139g==",
    "sig-dsa-sha1-hex:302c021479add6ef23098bb83c70ab172f4c63b1e329f77f021470fcc596abba4cc1ed5264b1c54308918d5e16ed",
    "private-dsa-hex:308201bc020100",
    "x509-hex:30820122300d06092a864886f70d01010105000382010f00",
    "binary-base64:AAECAwQ=",
];

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One input: a mutated seed or random bytes.
fn input(rng: &mut Rng) -> Vec<u8> {
    let mut data: Vec<u8> = if rng.below(4) == 0 {
        (0..rng.below(300)).map(|_| rng.next() as u8).collect()
    } else {
        SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec()
    };
    for _ in 0..rng.below(6) {
        let len = data.len();
        match rng.below(6) {
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
                let i = rng.below(len + 1);
                let alphabet = b"0123456789abcdefABCDEF+/=:- \\\n";
                data.insert(i, alphabet[rng.below(alphabet.len())]);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                data[i] = data[i].to_ascii_uppercase();
            }
            _ => {
                let i = rng.below(len + 1);
                data.splice(i..i, b"3082ffff".iter().copied());
            }
        }
    }
    data
}

fn run(runs: u64, seed: u64) {
    let mut rng = Rng(seed | 1);
    for _ in 0..runs {
        let data = input(&mut rng);
        fuzz_decode_key(&data);
        fuzz_verify_signature(&data);
    }
}

#[test]
fn short_fuzz_run() {
    run(2_000, 0x5eed);
}

#[test]
#[ignore = "long run: GT_FUZZ_RUNS=1000000 cargo test --release -p keynote --test crypto_fuzz -- --ignored"]
fn long_fuzz_run() {
    let runs = std::env::var("GT_FUZZ_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let start = std::time::Instant::now();
    run(runs, 0x6774_6675_7a7a);
    eprintln!(
        "crypto fuzz: {runs} inputs x 2 entry points in {:?}",
        start.elapsed()
    );
}
