//! Benchmark fixture generator: N distinct signed tag objects in a repository, fast.
//!
//! `cargo run --release --example gen-signed-tags -- REPO COUNT [KEY]` writes COUNT annotated
//! tags `bench-00000`... on REPO's HEAD commit, each with its own real OpenPGP signature by the
//! test key KEY (default `ed25519`, from testkeys/; no security value) made at 2025-01-01, and
//! prints `create refs/tags/NAME OID` lines for `git update-ref --stdin`. Signing in-process
//! with sequoia takes well under a second for 10,000 tags, where one gpg process per tag would
//! take minutes. Every signature is distinct, so a benchmark verifying them measures the
//! cryptography, not sequoia's per-process signature cache.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use sequoia_openpgp as openpgp;

use openpgp::Packet;
use openpgp::armor;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::serialize::Marshal;
use openpgp::types::{HashAlgorithm, SignatureType};

/// 2025-01-01T00:00:00Z, as in tests/common.
const SIGNED_AT: u64 = 1_735_689_600;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (repo, count, key) = match args.as_slice() {
        [r, c] => (r, c, "ed25519"),
        [r, c, k] => (r, c, k.as_str()),
        _ => bail!("usage: gen-signed-tags REPO COUNT [KEY]"),
    };
    let count: usize = count.parse().context("COUNT")?;
    let keyfile = format!("{}/testkeys/{key}.sec.asc", env!("CARGO_MANIFEST_DIR"));
    let cert = openpgp::Cert::from_file(&keyfile).with_context(|| keyfile.clone())?;
    let secret = cert
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .context("the test key has no secret part")?;
    let mut signer = secret.into_keypair()?;

    let repo = gix::open(repo).with_context(|| format!("opening {repo}"))?;
    let head = repo
        .head_id()
        .context("the repository has no HEAD commit")?
        .detach();
    let when = UNIX_EPOCH + Duration::from_secs(SIGNED_AT);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let name = format!("bench-{i:05}");
        let mut bytes = format!(
            "object {head}\ntype commit\ntag {name}\ntagger gt bench <bench@gt.invalid> \
             {SIGNED_AT} +0000\n\nBenchmark tag {i}\n"
        )
        .into_bytes();
        let sig = SignatureBuilder::new(SignatureType::Binary)
            .set_signature_creation_time(when)?
            .set_hash_algo(HashAlgorithm::SHA512)
            .sign_message(&mut signer, &bytes)?;
        let mut w = armor::Writer::new(&mut bytes, armor::Kind::Signature)?;
        Packet::from(sig).serialize(&mut w)?;
        w.finalize()?;
        use gix::objs::Write as _;
        let oid = repo
            .objects
            .write_buf(gix::objs::Kind::Tag, &bytes)
            .map_err(|e| anyhow::anyhow!("writing tag {name}: {e}"))?;
        writeln!(out, "create refs/tags/{name} {oid}")?;
    }
    out.flush()?;
    Ok(())
}
