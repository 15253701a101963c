//! `gt tag sign` end to end: co-signing a real `git tag -s` tag with a key file and with gpg,
//! the ref moved by compare-and-swap, and the refusals (expired key, onion tag, object id).

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod tags_harness;

use tags_harness::*;

#[test]
fn cosign_with_key_file_and_with_gpg() {
    let w = World::new(&["ed25519", "rsa4096"]);
    w.signed_tag("v1", "ed25519", None);
    let before = w.git(&["rev-parse", "refs/tags/v1"], &w.repo());
    let old_tag = w.cat_tag("v1");

    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        seckey("rsa2048").to_str().unwrap(),
        "v1",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("(2 signatures)"), "{}", out.stdout);
    let out = w.gt(&["tag", "sign", "--gpg", "-u", &fingerprint("rsa4096"), "v1"]);
    assert_eq!(out.code, 0, "{out:?}");

    let after = w.git(&["rev-parse", "refs/tags/v1"], &w.repo());
    assert_ne!(before, after);
    let new_tag = w.cat_tag("v1");
    assert_eq!(
        content_of(&new_tag),
        content_of(&old_tag),
        "content untouched"
    );
    assert_eq!(
        new_tag
            .windows(29)
            .filter(|w| w == b"-----BEGIN PGP SIGNATURE-----")
            .count(),
        1,
        "one block"
    );
    let (code, reports) = w.verify_json(&["ed25519", "rsa2048", "rsa4096"], &["v1"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(statuses(&reports[0]), ["good", "good", "good"]);
    let mut expected = vec![
        principal("ed25519"),
        principal("rsa2048"),
        principal("rsa4096"),
    ];
    expected.sort();
    assert_eq!(signers(&reports[0]), expected);
    // git stores it and fsck accepts it; gpg sees all three signatures.
    w.git(&["fsck", "--strict", "--no-dangling"], &w.repo());

    // Signing again with a key that already signed adds a packet, not a signer.
    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        seckey("rsa2048").to_str().unwrap(),
        "v1",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let (_, reports) = w.verify_json(&["ed25519", "rsa2048", "rsa4096"], &["v1"]);
    assert_eq!(statuses(&reports[0]).len(), 4);
    assert_eq!(signers(&reports[0]).len(), 3);
}

#[test]
fn refusals_leave_the_ref_alone() {
    let w = World::new(&["ed25519", "rsa2048"]);
    w.signed_tag("v1", "ed25519", None);
    let before = w.git(&["rev-parse", "refs/tags/v1"], &w.repo());

    // An expired key cannot sign (usage/I/O class: exit 2).
    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        seckey("expired").to_str().unwrap(),
        "v1",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("no secret signing key"),
        "{}",
        out.stderr
    );
    // A public key file has no secret.
    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        pubkey("rsa2048").to_str().unwrap(),
        "v1",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    // An object id is not a ref to move.
    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        seckey("rsa2048").to_str().unwrap(),
        before.trim(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    // --key and --gpg together is a usage error.
    let out = w.gt(&["tag", "sign", "--key", "x", "--gpg", "v1"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(w.git(&["rev-parse", "refs/tags/v1"], &w.repo()), before);

    // An onion tag is not co-signed in the one-block layout.
    let tag = w.cat_tag("v1");
    let onion = concat(&tag, &w.gpg_sign("rsa2048", &tag));
    w.put_tag("onion", &onion);
    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        seckey("rsa4096").to_str().unwrap(),
        "onion",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("onion"), "{}", out.stderr);
}

#[test]
fn an_unsigned_tag_gets_its_first_signature() {
    let w = World::new(&[]);
    w.git(&["tag", "-a", "-m", "plain", "v0"], &w.repo());
    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        seckey("subkey").to_str().unwrap(),
        "v0",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let (code, reports) = w.verify_json(&["subkey"], &["v0"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(signers(&reports[0]), [principal("subkey")]);
    // One signature: plain git can judge it, and agrees.
    w.gpg_import(&pubkey("subkey"));
    assert!(w.git_verify("v0"));
}
