//! `gt pull` end to end with real git and gpg: a tag the policy accepts lands with its history;
//! a rejected one leaves the local refs and object store exactly as they were. Covers both
//! tag-first paths (a local-path remote read directly, a `file://` remote through a filtered
//! fetch) and the quarantine path of branches.
// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{World, principal, pubkey, stderr, stdout};

const POLICY: &str = "KeyNote-Version: 2\n\
    Comment: releases need the Ed25519 test key; branches may fast-forward\n\
    Authorizer: \"POLICY\"\n\
    Licensees: \"@ED25519@\"\n\
    Conditions: app_domain == \"gittorrent\" && ref_kind == \"tag\" -> \"accept\";\n\
    \n\
    KeyNote-Version: 2\n\
    Authorizer: \"POLICY\"\n\
    Conditions: app_domain == \"gittorrent\" && ref_kind == \"branch\" &&\n    \
    (operation == \"create\" || fast_forward == \"true\") -> \"accept\";\n";

struct Setup {
    w: World,
    /// The remote: a non-bare repository with history and tags.
    remote: PathBuf,
    /// The local repository pulled into (its own, unrelated first commit).
    local: PathBuf,
    policy: PathBuf,
}

fn setup() -> Setup {
    let w = World::new(&["ed25519", "rsa2048"]);
    let remote = w.repo("remote");
    w.commit(&remote, "second");
    w.commit(&remote, "third");
    let local = w.repo("local");
    let policy = w.path("policy.kn");
    std::fs::write(&policy, POLICY.replace("@ED25519@", &principal("ed25519"))).unwrap();
    Setup {
        w,
        remote,
        local,
        policy,
    }
}

impl Setup {
    fn pull(&self, remote: &str, reference: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "pull",
            "--repo",
            self.local.to_str().unwrap(),
            "--policy",
            self.policy.to_str().unwrap(),
        ];
        let keys: Vec<String> = ["ed25519", "rsa2048"]
            .iter()
            .map(|k| pubkey(k).display().to_string())
            .collect();
        for k in &keys {
            args.extend(["--keyring", k.as_str()]);
        }
        args.extend_from_slice(extra);
        args.extend([remote, reference]);
        self.w.gt(self.w.tmp.path(), &args)
    }

    /// `pull --json`: asserts the exit code is `code` and returns the JSON report.
    fn pull_json(&self, remote: &str, reference: &str, code: i32) -> serde_json::Value {
        let out = self.pull(remote, reference, &["--json"]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        serde_json::from_str(stdout(&out).trim()).unwrap()
    }

    fn local_state(&self) -> (String, BTreeSet<String>) {
        (self.w.refs(&self.local), self.w.objects(&self.local))
    }

    fn local_ref(&self, name: &str) -> Option<String> {
        let out = self
            .w
            .git_output(&self.local, &["rev-parse", "--verify", "-q", name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// No quarantine directory was left behind in the local git directory.
    fn assert_no_leftovers(&self) {
        let left: Vec<_> = std::fs::read_dir(self.local.join(".git"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("gt-pull-"))
            .collect();
        assert!(left.is_empty(), "leftover quarantine: {left:?}");
    }

    fn remote_path(&self) -> &str {
        self.remote.to_str().unwrap()
    }
}

fn assert_fsck(w: &World, repo: &Path) {
    w.git(repo, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn accepted_tag_from_a_local_path_lands_with_its_history() {
    let s = setup();
    let head = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    let tag = s.w.signed_tag(&s.remote, "v1.0", &head, &["ed25519"]);
    let out = s.pull(s.remote_path(), "v1.0", &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("refs/tags/v1.0: accept (updated; decided tag-first)"),
        "{text}"
    );
    assert_eq!(s.local_ref("refs/tags/v1.0"), Some(tag));
    // The whole history came along and the repository is consistent.
    s.w.git(&s.local, &["cat-file", "-e", &format!("{head}^{{tree}}")]);
    s.w.git(&s.local, &["cat-file", "-e", &format!("{head}~2")]);
    assert_fsck(&s.w, &s.local);
    s.assert_no_leftovers();
    // Pulling again is a no-op.
    let out = s.pull(s.remote_path(), "refs/tags/v1.0", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("already up to date"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn rejected_tag_changes_no_ref_and_adds_no_object() {
    let s = setup();
    let head = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    s.w.signed_tag(&s.remote, "v1.0", &head, &["rsa2048"]);
    let before = s.local_state();
    let v = s.pull_json(s.remote_path(), "v1.0", 1);
    assert_eq!(v["decision"], "reject");
    assert_eq!(v["stage"], "tag-first");
    assert_eq!(v["result"], "rejected");
    assert_eq!(v["signers"][0], principal("rsa2048"));
    assert!(v["reasons"][0].as_str().unwrap().contains("needs"), "{v}");
    assert_eq!(
        s.local_state(),
        before,
        "a rejected pull changed the repository"
    );
    s.assert_no_leftovers();
}

#[test]
fn file_url_remote_gets_a_filtered_tag_first_fetch() {
    let s = setup();
    s.w.git(&s.remote, &["config", "uploadpack.allowFilter", "true"]);
    let head = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", s.remote_path());

    let before = s.local_state();
    s.w.signed_tag(&s.remote, "bad", &head, &["rsa2048"]);
    let v = s.pull_json(&url, "bad", 1);
    assert_eq!(v["stage"], "tag-first", "{v}");
    assert_eq!(s.local_state(), before);
    s.assert_no_leftovers();

    let tag = s.w.signed_tag(&s.remote, "good", &head, &["ed25519"]);
    let v = s.pull_json(&url, "good", 0);
    assert_eq!(v["decision"], "accept");
    assert_eq!(v["result"], "updated");
    assert_eq!(s.local_ref("refs/tags/good"), Some(tag));
    assert_fsck(&s.w, &s.local);
    s.assert_no_leftovers();
}

#[test]
fn server_without_filters_is_decided_before_anything_enters_the_repository() {
    let s = setup();
    s.w.git(&s.remote, &["config", "uploadpack.allowFilter", "false"]);
    let head = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", s.remote_path());
    s.w.signed_tag(&s.remote, "bad", &head, &["rsa2048"]);
    let before = s.local_state();
    let v = s.pull_json(&url, "bad", 1);
    assert_eq!(v["stage"], "tag-first-unfiltered", "{v}");
    assert_eq!(s.local_state(), before);
    s.assert_no_leftovers();
}

#[test]
fn configured_remote_and_branch_pull_through_the_quarantine() {
    let s = setup();
    s.w.git(&s.local, &["remote", "add", "up", s.remote_path()]);
    // A new branch: created, decided after its objects are in the quarantine.
    let head = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    s.w.git(&s.remote, &["branch", "release", "HEAD~1"]);
    let v = s.pull_json("up", "refs/heads/release", 0);
    assert_eq!(v["stage"], "quarantine");
    let first = s.w.git(&s.remote, &["rev-parse", "HEAD~1"]);
    assert_eq!(s.local_ref("refs/heads/release"), Some(first));
    // Fast-forward: accepted.
    s.w.git(&s.remote, &["branch", "-f", "release", &head]);
    let out = s.pull("up", "release", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.local_ref("refs/heads/release"), Some(head.clone()));
    // Rewritten history (not a fast-forward): rejected, nothing changes.
    s.w.git(&s.remote, &["checkout", "-q", "-b", "other", "HEAD~2"]);
    s.w.commit(&s.remote, "rewrite");
    let rewritten = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    s.w.git(&s.remote, &["branch", "-f", "release", &rewritten]);
    let before = s.local_state();
    let out = s.pull("up", "release", &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("reject"), "{}", stdout(&out));
    assert_eq!(s.local_state(), before);
    assert_eq!(s.local_ref("refs/heads/release"), Some(head));
    s.assert_no_leftovers();
}

#[test]
fn missing_remote_ref_is_an_error() {
    let s = setup();
    let before = s.local_state();
    let out = s.pull(s.remote_path(), "v9.9", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no ref"), "{}", stderr(&out));
    assert_eq!(s.local_state(), before);
}

#[test]
fn tag_chains_come_first_with_every_level_by_path_and_by_url() {
    let s = setup();
    s.w.git(&s.remote, &["config", "uploadpack.allowFilter", "true"]);
    let head = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    // v2.0 (signed by ed25519) points at an inner tag signed by rsa2048.
    let inner = s.w.make_tag(
        &s.remote,
        "v2.0-rc",
        &head,
        &["rsa2048"],
        common::Layout::OneBlock,
    );
    let outer = s.w.make_tag(
        &s.remote,
        "v2.0",
        &inner,
        &["ed25519"],
        common::Layout::OneBlock,
    );
    s.w.git(&s.remote, &["update-ref", "refs/tags/v2.0", &outer]);
    s.w.git(&s.remote, &["update-ref", "refs/tags/v2.1", &outer]);
    for (remote, tag) in [
        (s.remote_path().to_owned(), "v2.0"),
        (format!("file://{}", s.remote_path()), "v2.0"),
    ] {
        let target = s.w.path(&format!("chain-{}", remote.len()));
        std::fs::create_dir_all(&target).unwrap();
        s.w.git(&target, &["init", "-q"]);
        let out = s.w.gt(
            s.w.tmp.path(),
            &[
                "pull",
                "--json",
                "--repo",
                target.to_str().unwrap(),
                "--policy",
                s.policy.to_str().unwrap(),
                "--keyring",
                pubkey("ed25519").to_str().unwrap(),
                "--keyring",
                pubkey("rsa2048").to_str().unwrap(),
                &remote,
                tag,
            ],
        );
        assert!(
            out.status.success(),
            "{remote}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v["stage"], "tag-first", "{v}");
        let signers: Vec<&str> = v["signers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let mut want = vec![principal("ed25519"), principal("rsa2048")];
        want.sort();
        assert_eq!(signers, want, "signers of both levels count");
        s.w.git(&target, &["cat-file", "-e", &inner]);
        assert_fsck(&s.w, &target);
    }
    // v2.1 holds a tag named v2.0: rejected by the name check, nothing kept.
    let before = s.local_state();
    let out = s.pull(s.remote_path(), "v2.1", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("tag name check"), "{}", stdout(&out));
    assert_eq!(s.local_state(), before);
}

#[test]
fn a_concurrent_change_of_the_local_ref_fails_the_pull_instead_of_being_lost() {
    let s = setup();
    let head = s.w.git(&s.remote, &["rev-parse", "HEAD"]);
    s.w.signed_tag(&s.remote, "v1.0", &head, &["ed25519"]);
    // While gt fetches the objects, "someone else" creates the local refs/tags/v1.0: git runs
    // uploadpack.packObjectsHook (honoured from the user's global config only) in the middle
    // of the transfer, after gt read the ref's old value and before it moves the ref.
    let local_head = s.w.git(&s.local, &["rev-parse", "HEAD"]);
    let script = s.w.path("race.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ngit --git-dir='{}' update-ref refs/tags/v1.0 {local_head}\nexec \"$@\"\n",
            s.local.join(".git").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        s.w.home.join(".gitconfig"),
        format!("[uploadpack]\n\tpackObjectsHook = {}\n", script.display()),
    )
    .unwrap();
    let out = s.pull(s.remote_path(), "v1.0", &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("moving the local ref"),
        "{}",
        stderr(&out)
    );
    // The concurrent value survives.
    assert_eq!(s.local_ref("refs/tags/v1.0"), Some(local_head));
    s.assert_no_leftovers();
}
