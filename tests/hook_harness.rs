//! The end-to-end harness itself: gpg signs at the pinned time, git accepts the stacked layouts.
// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Layout, World};

#[test]
fn harness_makes_signed_tags_in_both_layouts() {
    let w = World::new(&["ed25519", "rsa2048"]);
    let repo = w.repo("r");
    let head = w.git(&repo, &["rev-parse", "HEAD"]);
    let one = w.make_tag(
        &repo,
        "v1",
        &head,
        &["ed25519", "rsa2048"],
        Layout::OneBlock,
    );
    let body = w.git(&repo, &["cat-file", "tag", &one]);
    assert_eq!(body.matches("BEGIN PGP SIGNATURE").count(), 1);
    let onion = w.make_tag(&repo, "v2", &head, &["ed25519", "rsa2048"], Layout::Onion);
    let body = w.git(&repo, &["cat-file", "tag", &onion]);
    assert_eq!(body.matches("BEGIN PGP SIGNATURE").count(), 2);
    // git itself verifies the single-signature case with the same gpg.
    let single = w.signed_tag(&repo, "v3", &head, &["ed25519"]);
    let out = w.git_output(&repo, &["verify-tag", "--raw", &single]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains(&common::fingerprint("ed25519")));
}
