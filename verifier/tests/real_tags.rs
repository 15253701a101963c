//! gt's verdict on 70 real signed tags from git.git must match what gpg said of each one.
//!
//! verdicts.tsv records `git verify-tag --raw` (GnuPG 2.2.40) with only Junio Hamano's current
//! key in the keyring: `VALIDSIG <primary fingerprint>` or `NO_PUBKEY <issuer key id>`.
//! gt must name the same signer for every VALIDSIG tag and the same issuer, as `unknown-key`, for
//! every NO_PUBKEY tag. One documented difference: gpg still accepts SHA-1 data signatures,
//! sequoia's StandardPolicy refuses them (collision attacks make them forgeable), so those tags
//! are `weak-algorithm` — with the same signer — instead of `good`.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use verifier::{Keyring, Status, Verifier};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/git.git-tags");

/// 2026-11-20T00:00:00Z: after the newest fixture tag, before Junio's subkeys expire (2028).
fn pinned() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_132_800)
}

#[test]
fn gt_agrees_with_gpg_on_every_real_tag() {
    let mut keyring = Keyring::new();
    keyring
        .add_file(&Path::new(DIR).join("junio-gpg-pub.asc"))
        .unwrap();
    let verifier = Verifier::new(&keyring, pinned());
    let tsv = std::fs::read_to_string(Path::new(DIR).join("verdicts.tsv")).unwrap();
    let (mut good, mut weak, mut unknown) = (0, 0, 0);
    let mut rows = 0;
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, oid, gpg_status, who) = (f[0], f[1], f[2], f[3]);
        let bytes = std::fs::read(Path::new(DIR).join(format!("{name}.tag"))).unwrap();
        let report = verifier.verify_bytes(&bytes);
        let level = &report.levels[0];
        assert_eq!(level.oid.to_string(), oid, "{name}: object id");
        assert_eq!(level.name.as_deref(), Some(name), "{name}: tag header");
        assert_eq!(level.signatures.len(), 1, "{name}: one signature");
        let sig = &level.signatures[0];
        match gpg_status {
            "VALIDSIG" => {
                let signer = sig.signer.as_ref().map(ToString::to_string);
                assert_eq!(signer, Some(format!("openpgp:{who}")), "{name}: {sig:?}");
                match sig.status {
                    Status::Good => {
                        good += 1;
                        assert!(report.is_verified(), "{name}");
                        let v = report.verified().unwrap();
                        assert_eq!(v.signers().len(), 1);
                        assert_eq!(v.name(), name);
                    }
                    Status::WeakAlgorithm => {
                        weak += 1;
                        assert_eq!(sig.hash.as_deref(), Some("SHA1"), "{name}: {sig:?}");
                        assert!(!report.is_verified());
                    }
                    other => panic!("{name}: gpg VALIDSIG, gt {other}: {sig:?}"),
                }
            }
            "NO_PUBKEY" => {
                unknown += 1;
                assert_eq!(sig.status, Status::UnknownKey, "{name}: {sig:?}");
                let issuer = sig.issuer.as_deref().unwrap();
                assert!(issuer.ends_with(who), "{name}: issuer {issuer} vs {who}");
                assert!(sig.signer.is_none());
                assert!(!report.is_verified());
            }
            other => panic!("unexpected verdict {other}"),
        }
        rows += 1;
    }
    assert_eq!(rows, 70);
    assert_eq!(good + weak, 50);
    assert_eq!(unknown, 20);
    eprintln!("real tags: {good} good, {weak} weak-algorithm (SHA-1), {unknown} unknown-key");
}
