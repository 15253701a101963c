//! `gt verify-tag` end to end: tags made by real `git tag -s` with gpg and the committed test
//! keys, stacked tags of every layout and the malformed variants, checked against `git
//! verify-tag` wherever git can judge (one signature).
//!
//! Contents:
//! - one signature per key type: gt and `git verify-tag` agree (good, unknown, revoked);
//! - algorithm policy: where gt and gpg knowingly differ (SHA-1 self-signatures, RSA-1024);
//! - stacked layouts: one block (git refuses on principle), onion (git checks the last block),
//!   appended blocks and trailing text (malformed), tag chains;
//! - input forms: refs in order, `--object` files whose target is absent, `--gpg-keyring`;
//! - exit statuses 0 / 1 / 2.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod tags_harness;

use tags_harness::*;

const GOOD: &[&str] = &["ed25519", "rsa2048", "rsa4096", "subkey"];

#[test]
fn one_signature_each_key_type_agrees_with_git() {
    let w = World::new(GOOD);
    for k in GOOD {
        w.signed_tag(&format!("v-{k}"), k, None);
    }
    let refs: Vec<String> = GOOD.iter().map(|k| format!("v-{k}")).collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let (code, reports) = w.verify_json(GOOD, &refs);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(reports.len(), GOOD.len());
    for (k, r) in GOOD.iter().zip(&reports) {
        assert_eq!(r["tag"], format!("v-{k}"), "results in the order asked");
        assert_eq!(statuses(r), ["good"], "{k}: {r}");
        assert_eq!(signers(r), [principal(k)]);
        let sig = &r["signatures"][0];
        assert!(sig["created"].as_i64().unwrap() > 1_700_000_000);
        assert!(sig["issuer"].is_string());
        assert!(w.git_verify(&format!("v-{k}")), "git agrees: good");
    }
    // The subkey's signature names the subkey as issuer and the primary as signer.
    let sub = &reports[3]["signatures"][0];
    assert_ne!(sub["key"], fingerprint("subkey"));
    assert_eq!(sub["signer"], principal("subkey"));
}

#[test]
fn unknown_key_agrees_with_git() {
    let w = World::new(&["ed25519"]);
    w.signed_tag("v1", "ed25519", None);
    let (code, reports) = w.verify_json(&["rsa2048"], &["v1"]);
    assert_eq!(code, 1);
    assert_eq!(statuses(&reports[0]), ["unknown-key"]);
    assert_eq!(
        reports[0]["signatures"][0]["issuer"],
        fingerprint("ed25519")
    );
    assert!(reports[0]["signatures"][0]["signer"].is_null());
    // git, with a GnuPG keyring that lacks the key, fails too.
    let other = World::new(&["rsa2048"]);
    let tag = w.cat_tag("v1");
    other.put_tag("v1", &tag);
    assert!(!other.git_verify("v1"));
}

#[test]
fn revoked_key_agrees_with_git() {
    let w = World::new(&["revoked"]);
    w.signed_tag("v1", "revoked", None);
    assert!(w.git_verify("v1"), "before the revocation, git says good");
    let (code, reports) = w.verify_json(&["revoked"], &["v1"]);
    assert_eq!(code, 1);
    assert_eq!(statuses(&reports[0]), ["revoked-key"]);
    assert_eq!(reports[0]["signatures"][0]["signer"], principal("revoked"));
    w.gpg_import(&pubkey("revoked"));
    assert!(!w.git_verify("v1"), "after it, git fails too");
}

#[test]
fn weak_algorithms_are_where_gt_and_gpg_differ() {
    // gpg still accepts SHA-1 self-signatures made after 2023 and RSA-1024 keys; sequoia's
    // StandardPolicy does not, and gt says why.
    let w = World::new(&["sha1-selfsig", "rsa1024"]);
    w.signed_tag("v-sha1", "sha1-selfsig", None);
    w.signed_tag("v-1024", "rsa1024", None);
    let (code, reports) = w.verify_json(&["sha1-selfsig", "rsa1024"], &["v-sha1", "v-1024"]);
    assert_eq!(code, 1);
    for (r, k) in reports.iter().zip(["sha1-selfsig", "rsa1024"]) {
        assert_eq!(statuses(r), ["weak-algorithm"], "{r}");
        assert_eq!(r["signatures"][0]["signer"], principal(k));
        assert!(
            r["signatures"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("policy")
        );
        assert!(signers(r).is_empty());
    }
    assert!(w.git_verify("v-sha1"));
    assert!(w.git_verify("v-1024"));
}

#[test]
fn one_block_three_signers() {
    let w = World::new(&["ed25519", "rsa2048", "rsa4096"]);
    w.signed_tag("v1", "ed25519", None);
    let tag = w.cat_tag("v1");
    let content = content_of(&tag);
    // Merge three gpg signatures into one armored block with gpg itself (dearmor, concatenate,
    // re-armor), as a co-signing tool would.
    let mut binary = Vec::new();
    for k in ["ed25519", "rsa2048", "rsa4096"] {
        let armored = w.gpg_sign(k, &content);
        binary.extend(dearmor(&w, &armored));
    }
    let block = enarmor(&w, &binary);
    let stacked = concat(&content, &block);
    w.put_tag("v1-stack", &stacked);
    let (code, reports) = w.verify_json(&["ed25519", "rsa2048", "rsa4096"], &["v1-stack"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(statuses(&reports[0]), ["good", "good", "good"]);
    assert_eq!(signers(&reports[0]).len(), 3);
    assert_eq!(reports[0]["levels"][0]["layout"], "one-block");
    // git refuses multiple signatures on principle, although gpg finds all three good.
    assert!(!w.git_verify("v1-stack"));
}

fn dearmor(w: &World, armored: &[u8]) -> Vec<u8> {
    gpg_filter(w, "--dearmor", armored)
}

fn enarmor(w: &World, binary: &[u8]) -> Vec<u8> {
    // gpg --enarmor writes "ARMORED FILE" headers; rewrite them into a signature block.
    let out = gpg_filter(w, "--enarmor", binary);
    let text = String::from_utf8(out).unwrap();
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("Comment:"))
        .collect();
    lines[0] = "-----BEGIN PGP SIGNATURE-----";
    let last = lines.len() - 1;
    lines[last] = "-----END PGP SIGNATURE-----";
    format!("{}\n", lines.join("\n")).into_bytes()
}

fn gpg_filter(w: &World, op: &str, input: &[u8]) -> Vec<u8> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("gpg")
        .env("GNUPGHOME", w.gnupghome())
        .args(["--batch", op])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn onion_agrees_with_git_on_the_last_signer() {
    let w = World::new(&["ed25519", "rsa2048", "rsa4096"]);
    w.signed_tag("v1", "ed25519", None);
    let mut obj = w.cat_tag("v1");
    for k in ["rsa2048", "rsa4096"] {
        let sig = w.gpg_sign(k, &obj);
        obj = concat(&obj, &sig);
    }
    w.put_tag("v1-onion", &obj);
    let (code, reports) = w.verify_json(&["ed25519", "rsa2048", "rsa4096"], &["v1-onion"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(statuses(&reports[0]), ["good", "good", "good"]);
    assert_eq!(reports[0]["levels"][0]["layout"], "onion");
    assert_eq!(signers(&reports[0]).len(), 3);
    assert!(
        w.git_verify("v1-onion"),
        "git checks the last block and agrees"
    );
    // With only the last signer's key, gt and git agree that the last signer signed.
    let (_, reports) = w.verify_json(&["rsa4096"], &["v1-onion"]);
    assert_eq!(
        statuses(&reports[0]),
        ["unknown-key", "unknown-key", "good"]
    );
}

#[test]
fn malformed_variants_fail_with_what_and_where() {
    let w = World::new(&["ed25519", "rsa2048"]);
    w.signed_tag("v1", "ed25519", None);
    let tag = w.cat_tag("v1");
    let content = content_of(&tag);

    // Independently appended blocks (each over the content alone).
    let appended = concat(&tag, &w.gpg_sign("rsa2048", &content));
    w.put_tag("appended", &appended);
    // Text after the block.
    let trailing = concat(&tag, b"extra text\n");
    w.put_tag("trailing", &trailing);
    // A block cut short.
    let cut = tag[..tag.len() - 12].to_vec();
    w.put_tag("cut", &cut);

    let (code, reports) = w.verify_json(&["ed25519", "rsa2048"], &["appended", "trailing", "cut"]);
    assert_eq!(code, 1);
    assert_eq!(statuses(&reports[0]), ["good", "malformed"]);
    assert!(reports[0]["error"].as_str().unwrap().contains("malformed"));
    assert!(
        !w.git_verify("appended"),
        "git reads it as one bad signature"
    );

    assert!(statuses(&reports[1]).is_empty());
    let err = reports[1]["error"].as_str().unwrap();
    assert!(err.contains(&format!("byte {}", tag.len())), "{err}");
    let err = reports[2]["error"].as_str().unwrap();
    assert!(err.contains("no END line"), "{err}");
    assert!(err.contains(&format!("byte {}", content.len())), "{err}");

    // The human output says the same, briefly.
    let out = w.gt(&[
        "verify-tag",
        "--keyring",
        pubkey("ed25519").to_str().unwrap(),
        "trailing",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.starts_with("trailing: FAILED: malformed"),
        "{}",
        out.stdout
    );
}

#[test]
fn tag_chains_count_every_level() {
    let w = World::new(&["ed25519", "rsa2048"]);
    w.signed_tag("inner", "ed25519", None);
    w.signed_tag("outer", "rsa2048", Some("inner"));
    let (code, reports) = w.verify_json(&["ed25519", "rsa2048"], &["outer"]);
    assert_eq!(code, 0, "{reports:?}");
    let r = &reports[0];
    assert_eq!(r["levels"].as_array().unwrap().len(), 2);
    assert_eq!(r["levels"][1]["name"], "inner");
    let mut expected = vec![principal("ed25519"), principal("rsa2048")];
    expected.sort();
    assert_eq!(signers(r), expected);
    // If the inner level fails, the chain fails, although git (outer level only) says good.
    let (code, reports) = w.verify_json(&["rsa2048"], &["outer"]);
    assert_eq!(code, 1);
    assert_eq!(statuses(&reports[0]), ["good", "unknown-key"]);
    assert!(w.git_verify("outer"));
}

#[test]
fn object_files_need_no_target() {
    let w = World::new(&["rsa4096"]);
    w.signed_tag("v1", "rsa4096", None);
    let file = w.path("v1.tag");
    std::fs::write(&file, w.cat_tag("v1")).unwrap();
    // Run outside any repository: the commit the tag points at is nowhere.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gt"))
        .args(["verify-tag", "--keyring"])
        .arg(pubkey("rsa4096"))
        .arg("--object")
        .arg(&file)
        .current_dir(w.dir.path())
        .env("GIT_CEILING_DIRECTORIES", w.dir.path().parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK, 1 signer"), "{stdout}");
    assert!(stdout.contains(&principal("rsa4096")), "{stdout}");
}

#[test]
fn gpg_keyring_is_read_through_gpg_export() {
    let w = World::new(&["ed25519", "subkey"]);
    w.signed_tag("v1", "subkey", None);
    let out = w.gt(&["verify-tag", "--gpg-keyring", "--json", "v1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(signers(&v), [principal("subkey")]);
}

#[test]
fn exit_statuses() {
    let w = World::new(&["ed25519"]);
    w.signed_tag("good", "ed25519", None);
    w.git(&["tag", "-a", "-m", "unsigned", "unsigned"], &w.repo());
    let key = pubkey("ed25519");
    let key = key.to_str().unwrap();
    assert_eq!(w.gt(&["verify-tag", "--keyring", key, "good"]).code, 0);
    let unsigned = w.gt(&["verify-tag", "--keyring", key, "good", "unsigned"]);
    assert_eq!(unsigned.code, 1);
    assert!(
        unsigned.stdout.contains("unsigned: FAILED: unsigned"),
        "{}",
        unsigned.stdout
    );
    // A missing ref is an I/O error (2), reported after the other results.
    let missing = w.gt(&["verify-tag", "--keyring", key, "good", "nope"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("nope"));
    // Usage errors.
    assert_eq!(w.gt(&["verify-tag", "good"]).code, 2);
    assert_eq!(w.gt(&["verify-tag", "--keyring", key]).code, 2);
    assert_eq!(
        w.gt(&["verify-tag", "--keyring", "/nonexistent", "good"])
            .code,
        2
    );
    // An object id works like a ref.
    let oid = w.git(&["rev-parse", "good"], &w.repo());
    assert_eq!(w.gt(&["verify-tag", "--keyring", key, oid.trim()]).code, 0);
}
