//! Helpers shared by gt-node's integration tests: real git repositories in temporary
//! directories, made and checked with the `git` binary.
#![allow(dead_code)]
// Test helpers: a failing git or file operation should abort the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use gt_node::gate::{Gate, GateDecision, RefUpdateCtx, Verdict};

/// Test gate: propagate a tag whose message contains "OK", reject everything else (the
/// policy crate's gate replaces it in the end-to-end tests).
pub struct MessageGate;

impl Gate for MessageGate {
    fn decide(&self, _ctx: &RefUpdateCtx, tag_objects: &[Vec<u8>]) -> GateDecision {
        let ok = tag_objects.first().is_some_and(|t| {
            gix::objs::TagRef::from_bytes(t, gix::hash::Kind::Sha1)
                .is_ok_and(|t| t.message.windows(2).any(|w| w == b"OK"))
        });
        if ok {
            GateDecision::new(Verdict::Propagate, "message says OK")
        } else {
            GateDecision::new(Verdict::Reject, "message lacks OK")
        }
    }
}

/// `dir/src`, created and filled by [`make_source`].
pub fn source_in(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    make_source(&src);
    src
}

/// Run git in `dir` with a fixed identity and no user or system configuration; return stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.org")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.org")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `git rev-parse` of `rev` in `dir`.
pub fn rev(dir: &Path, rev: &str) -> gix::ObjectId {
    gix::ObjectId::from_hex(git(dir, &["rev-parse", rev]).trim().as_bytes()).unwrap()
}

/// Assert `git fsck --strict` passes on `dir`.
pub fn fsck(dir: &Path) {
    git(dir, &["fsck", "--strict", "--no-dangling"]);
}

/// A work-tree repository with history: commits c1..c3, annotated tag `v1` (message "release
/// one"), commits c4..c6 (a subdirectory, a changed file), annotated tag `v2` (message
/// "release two OK"), and an annotated tag `bad` whose message lacks "OK".
pub fn make_source(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    for i in 1..=6 {
        if i == 4 {
            std::fs::create_dir_all(dir.join("sub")).unwrap();
        }
        let file = if i >= 4 {
            format!("sub/file{i}.txt")
        } else {
            format!("file{i}.txt")
        };
        std::fs::write(dir.join(file), format!("content {i}\n").repeat(50 * i)).unwrap();
        std::fs::write(dir.join("README"), format!("version {i}\n")).unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", &format!("commit {i}")]);
        if i == 3 {
            git(dir, &["tag", "-a", "v1", "-m", "release one"]);
        }
    }
    git(dir, &["tag", "-a", "v2", "-m", "release two OK"]);
    git(dir, &["tag", "-a", "bad", "-m", "release unsigned"]);
}

/// A fresh bare repository.
pub fn make_bare(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "--bare"]);
}

/// Files in `objects/pack` of a bare repository.
pub fn pack_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("objects/pack"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
