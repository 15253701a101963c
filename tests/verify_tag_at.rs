//! `gt verify-tag --at TIME` takes the same spellings as the other commands' `--at` (unix
//! seconds, `@SECONDS`, a UTC date or date-time) and `GT_AT`; the old `--time SECONDS` still
//! works. A real gpg signature made at 2025-01-01 is judged before and after that instant.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{DECIDE_AT, SIGNED_AT, World, pubkey, stderr, stdout};

/// `gt verify-tag --json --keyring ed25519 [args] v1` in `dir`: (exit status, JSON report).
fn verify(w: &World, dir: &Path, args: &[&str], gt_at: Option<&str>) -> (i32, String) {
    let key = pubkey("ed25519");
    let mut cmd = w.gt_cmd();
    cmd.current_dir(dir)
        .args(["verify-tag", "--json", "--keyring", key.to_str().unwrap()])
        .args(args)
        .arg("v1");
    match gt_at {
        Some(t) => cmd.env("GT_AT", t),
        None => cmd.env_remove("GT_AT"),
    };
    let out = cmd.output().unwrap();
    (out.status.code().unwrap(), stdout(&out) + &stderr(&out))
}

#[test]
fn at_takes_dates_seconds_and_gt_at_like_the_other_commands() {
    let w = World::new(&["ed25519"]);
    let dir = w.repo("repo");
    let head = w.git(&dir, &["rev-parse", "HEAD"]);
    w.signed_tag(&dir, "v1", &head, &["ed25519"]);
    let after = DECIDE_AT.to_string();
    let at_after = format!("@{DECIDE_AT}");
    // Ten minutes before the signature was made: past the verifier's 5-minute clock-skew
    // tolerance, so it is not valid yet.
    let before = (SIGNED_AT - 600).to_string();

    let (code, good) = verify(&w, &dir, &["--at", "2026-06-01"], None);
    assert_eq!(code, 0, "{good}");
    assert!(good.contains("\"good\""), "{good}");
    for spelling in ["2026-06-01T00:00:00Z", after.as_str(), at_after.as_str()] {
        assert_eq!(
            verify(&w, &dir, &["--at", spelling], None),
            (0, good.clone()),
            "--at {spelling}"
        );
    }
    // The old flag, and GT_AT in both spellings, give the same report.
    assert_eq!(
        verify(&w, &dir, &["--time", &after], None),
        (0, good.clone())
    );
    assert_eq!(verify(&w, &dir, &[], Some("2026-06-01")), (0, good.clone()));
    assert_eq!(verify(&w, &dir, &[], Some(&after)), (0, good.clone()));

    // Before the signature: refused, the same way in every spelling; --at beats GT_AT.
    let (code, early) = verify(&w, &dir, &["--at", "2024-12-31T23:50:00Z"], None);
    assert_eq!(code, 1, "{early}");
    assert_ne!(early, good);
    assert_eq!(
        verify(&w, &dir, &["--at", &before], None),
        (1, early.clone())
    );
    assert_eq!(
        verify(&w, &dir, &["--time", &before], None),
        (1, early.clone())
    );
    assert_eq!(
        verify(&w, &dir, &["--at", &before], Some(&after)),
        (1, early.clone())
    );
    assert_eq!(
        verify(&w, &dir, &[], Some("2024-12-31T23:50:00Z")),
        (1, early)
    );

    // Not a time: a usage error naming the accepted forms.
    for bad in [
        "yesterday",
        "2026-13-01",
        "99999999999999999999",
        "18446744073709551615",
    ] {
        let (code, msg) = verify(&w, &dir, &["--at", bad], None);
        assert_eq!(code, 2, "--at {bad}: {msg}");
        assert!(msg.contains("2026-06-01T00:00:00Z"), "--at {bad}: {msg}");
    }
}
