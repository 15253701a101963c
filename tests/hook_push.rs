//! `git push` through gt's pre-receive hook, end to end: real git, real gpg signatures, a bare
//! server repository with `gt hook install`ed. Accepted updates land; a rejected update refuses
//! the whole push with the reason shown to the pusher, and leaves the server's refs and object
//! store exactly as they were.
// Test helpers may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{Layout, World, principal, pubkey, stderr};

/// Release tags need `licensees`; branches may fast-forward without signatures.
fn policy(licensees: &str) -> String {
    format!(
        "KeyNote-Version: 2\n\
         Comment: release tags need {licensees}; never moved or deleted\n\
         Authorizer: \"POLICY\"\n\
         Licensees: {licensees}\n\
         Conditions: app_domain == \"gittorrent\" && ref_kind == \"tag\" -> \"accept\";\n\
         \n\
         KeyNote-Version: 2\n\
         Comment: branches may only fast-forward\n\
         Authorizer: \"POLICY\"\n\
         Conditions: app_domain == \"gittorrent\" && ref_kind == \"branch\" &&\n    \
         (operation == \"create\" || fast_forward == \"true\") -> \"accept\";\n"
    )
}

/// A server (bare, hook installed with `policy_text` and the public test keys `keys`) and a
/// client repository with one commit and the server as remote `origin`.
struct Setup {
    w: World,
    server: PathBuf,
    client: PathBuf,
}

fn setup(signing_keys: &[&str], policy_text: &str, keyring: &[&str]) -> Setup {
    let w = World::new(signing_keys);
    let server = w.bare("server.git");
    let policy_file = w.path("policy.kn");
    std::fs::write(&policy_file, policy_text).unwrap();
    let mut args: Vec<String> = vec![
        "hook".into(),
        "install".into(),
        "--repo".into(),
        server.display().to_string(),
        "--policy".into(),
        policy_file.display().to_string(),
    ];
    for k in keyring {
        args.push("--keyring".into());
        args.push(pubkey(k).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = w.gt(w.tmp.path(), &args);
    assert!(out.status.success(), "gt hook install: {}", stderr(&out));
    let client = w.repo("client");
    w.git(
        &client,
        &["remote", "add", "origin", server.to_str().unwrap()],
    );
    Setup { w, server, client }
}

/// The most common setup: ed25519 signs, is the one licensee, and is the whole keyring.
fn setup_ed25519() -> Setup {
    setup(&["ed25519"], &policy(&one("ed25519")), &["ed25519"])
}

impl Setup {
    fn head(&self) -> String {
        self.w.git(&self.client, &["rev-parse", "HEAD"])
    }

    /// `git push origin REFSPECS...`; returns (success, stderr).
    fn push(&self, refspecs: &[&str]) -> (bool, String) {
        let mut args = vec!["push", "--porcelain", "origin"];
        args.extend_from_slice(refspecs);
        let out = self.w.git_output(&self.client, &args);
        (out.status.success(), stderr(&out))
    }

    /// `git push origin REFSPECS...`, which must succeed.
    fn push_ok(&self, refspecs: &[&str]) {
        let (ok, err) = self.push(refspecs);
        assert!(ok, "push {refspecs:?} refused: {err}");
    }

    /// The server's refs and objects: what "unchanged" compares.
    fn server_state(&self) -> (String, std::collections::BTreeSet<String>) {
        (self.w.refs(&self.server), self.w.objects(&self.server))
    }

    fn server_ref(&self, name: &str) -> Option<String> {
        let out = self
            .w
            .git_output(&self.server, &["rev-parse", "--verify", "-q", name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

fn one(key: &str) -> String {
    format!("\"{}\"", principal(key))
}

fn k_of(k: usize, keys: &[&str]) -> String {
    let list: Vec<String> = keys.iter().map(|k| one(k)).collect();
    format!("{k}-of({})", list.join(", "))
}

#[test]
fn accepted_tag_and_branch_land_on_the_server() {
    let s = setup_ed25519();
    let head = s.head();
    let tag = s.w.signed_tag(&s.client, "v1.0", &head, &["ed25519"]);
    let (ok, err) = s.push(&["main", "refs/tags/v1.0"]);
    assert!(ok, "push refused: {err}");
    assert!(!err.contains("rejected"), "{err}");
    assert_eq!(
        s.server_ref("refs/heads/main").as_deref(),
        Some(head.as_str())
    );
    assert_eq!(
        s.server_ref("refs/tags/v1.0").as_deref(),
        Some(tag.as_str())
    );
    // A second fast-forward push of the branch is accepted too.
    let next = s.w.commit(&s.client, "second");
    let (ok, err) = s.push(&["main"]);
    assert!(ok, "fast-forward refused: {err}");
    assert_eq!(
        s.server_ref("refs/heads/main").as_deref(),
        Some(next.as_str())
    );
}

#[test]
fn unlicensed_signer_is_refused_with_the_reason_and_nothing_changes() {
    let s = setup(
        &["ed25519", "rsa2048"],
        &policy(&one("ed25519")),
        &["ed25519", "rsa2048"],
    );
    s.push_ok(&["main"]);
    let before = s.server_state();
    let head = s.head();
    s.w.signed_tag(&s.client, "v1.0", &head, &["rsa2048"]);
    s.w.commit(&s.client, "more");
    let (ok, err) = s.push(&["refs/tags/v1.0"]);
    assert!(
        !ok,
        "push of a tag signed by an unlicensed key was accepted"
    );
    assert!(
        err.contains("remote: gt: refs/tags/v1.0: rejected:"),
        "pusher does not see the reason: {err}"
    );
    assert_eq!(
        s.server_state(),
        before,
        "the server changed after a rejected push"
    );
}

#[test]
fn unsigned_and_lightweight_tags_are_refused() {
    let s = setup_ed25519();
    s.push_ok(&["main"]);
    let before = s.server_state();
    s.w.git(&s.client, &["tag", "light"]);
    let (ok, err) = s.push(&["refs/tags/light"]);
    assert!(!ok);
    assert!(
        err.contains("refs/tags/light: rejected: object type check"),
        "{err}"
    );
    let head = s.head();
    s.w.signed_tag(&s.client, "bare", &head, &[]);
    let (ok, err) = s.push(&["refs/tags/bare"]);
    assert!(!ok);
    assert!(
        err.contains("remote: gt: refs/tags/bare: rejected:"),
        "{err}"
    );
    assert_eq!(s.server_state(), before);
}

#[test]
fn k_of_n_accepts_every_stacked_layout_and_refuses_too_few() {
    let keys = ["ed25519", "rsa2048", "rsa4096"];
    let s = setup(&keys, &policy(&k_of(2, &keys)), &keys);
    let head = s.head();
    s.push_ok(&["main"]);

    // One signer of three: refused, and the reason says what is missing.
    let before = s.server_state();
    s.w.signed_tag(&s.client, "v0.9", &head, &["ed25519"]);
    let (ok, err) = s.push(&["refs/tags/v0.9"]);
    assert!(!ok, "1 of 3 accepted where 2 are needed");
    assert!(err.contains("needs 2 of"), "{err}");
    assert_eq!(s.server_state(), before);

    // Two signatures in one armored block.
    let one_block = s.w.tag_ref(
        &s.client,
        "v1.0",
        "v1.0",
        &head,
        &["ed25519", "rsa2048"],
        Layout::OneBlock,
    );
    // Two onion blocks.
    let onion = s.w.tag_ref(
        &s.client,
        "v1.1",
        "v1.1",
        &head,
        &["rsa2048", "rsa4096"],
        Layout::Onion,
    );
    // A tag chain: v1.2 (signed by rsa4096) points at a tag signed by ed25519.
    let inner = s.w.make_tag(
        &s.client,
        "v1.2-inner",
        &head,
        &["ed25519"],
        Layout::OneBlock,
    );
    let outer = s.w.tag_ref(
        &s.client,
        "v1.2",
        "v1.2",
        &inner,
        &["rsa4096"],
        Layout::OneBlock,
    );

    let (ok, err) = s.push(&["refs/tags/v1.0", "refs/tags/v1.1", "refs/tags/v1.2"]);
    assert!(ok, "2-of-3 stacked tags refused: {err}");
    assert_eq!(s.server_ref("refs/tags/v1.0"), Some(one_block));
    assert_eq!(s.server_ref("refs/tags/v1.1"), Some(onion));
    assert_eq!(s.server_ref("refs/tags/v1.2"), Some(outer));
}

#[test]
fn tag_name_must_match_the_ref() {
    let s = setup_ed25519();
    s.push_ok(&["main"]);
    let before = s.server_state();
    let head = s.head();
    // A validly signed `v0.1` published as refs/tags/v2.0 (a replayed old release).
    s.w.tag_ref(
        &s.client,
        "v2.0",
        "v0.1",
        &head,
        &["ed25519"],
        Layout::OneBlock,
    );
    let (ok, err) = s.push(&["refs/tags/v2.0"]);
    assert!(!ok, "a tag published under another name was accepted");
    assert!(
        err.contains("refs/tags/v2.0: rejected: tag name check"),
        "{err}"
    );
    assert_eq!(s.server_state(), before);
}

#[test]
fn retargeting_a_released_tag_is_refused() {
    let s = setup_ed25519();
    let head = s.head();
    let first = s.w.signed_tag(&s.client, "v1.0", &head, &["ed25519"]);
    s.push_ok(&["main", "refs/tags/v1.0"]);
    let before = s.server_state();
    // The same signer re-signs v1.0 on another commit and force-pushes it.
    let other = s.w.commit(&s.client, "sneaky");
    s.w.tag_ref(
        &s.client,
        "v1.0",
        "v1.0",
        &other,
        &["ed25519"],
        Layout::OneBlock,
    );
    let (ok, err) = s.push(&["--force", "refs/tags/v1.0"]);
    assert!(!ok, "a retargeted release tag was accepted");
    assert!(err.contains("refs/tags/v1.0: rejected:"), "{err}");
    assert!(err.contains("retarget"), "{err}");
    assert_eq!(s.server_ref("refs/tags/v1.0"), Some(first));
    assert_eq!(s.server_state(), before);
    // Deleting it is refused as well.
    let (ok, err) = s.push(&[":refs/tags/v1.0"]);
    assert!(!ok, "deleting a release tag was accepted");
    assert!(err.contains("refs/tags/v1.0: rejected:"), "{err}");
    assert_eq!(s.server_state(), before);
}

#[test]
fn one_rejected_ref_refuses_the_whole_push() {
    let s = setup(
        &["ed25519", "rsa2048"],
        &policy(&one("ed25519")),
        &["ed25519", "rsa2048"],
    );
    s.push_ok(&["main"]);
    let before = s.server_state();
    let next = s.w.commit(&s.client, "feature");
    s.w.signed_tag(&s.client, "good", &next, &["ed25519"]);
    s.w.signed_tag(&s.client, "bad", &next, &["rsa2048"]);
    let (ok, err) = s.push(&["main", "refs/tags/good", "refs/tags/bad"]);
    assert!(!ok, "a push with a rejected ref went through");
    assert!(err.contains("refs/tags/bad: rejected:"), "{err}");
    assert!(!err.contains("refs/tags/good: rejected"), "{err}");
    assert!(err.contains("1 of 3 ref update(s) rejected"), "{err}");
    // Neither the good tag nor the branch landed, and no object was kept.
    assert_eq!(s.server_state(), before);
    // Without the bad tag the same push goes through.
    s.push_ok(&["main", "refs/tags/good"]);
    assert_eq!(s.server_ref("refs/heads/main"), Some(next));
}

#[test]
fn non_fast_forward_branch_update_is_refused() {
    let s = setup_ed25519();
    s.w.commit(&s.client, "one");
    s.push_ok(&["main"]);
    let before = s.server_state();
    s.w.git(&s.client, &["reset", "-q", "--hard", "HEAD~1"]);
    s.w.commit(&s.client, "rewritten");
    let (ok, err) = s.push(&["--force", "main"]);
    assert!(!ok, "a forced non-fast-forward was accepted");
    assert!(err.contains("refs/heads/main: rejected:"), "{err}");
    assert_eq!(s.server_state(), before);
}

fn pre_receive(w: &World, repo: &Path, input: &str) -> std::process::Output {
    w.gt_stdin(repo, &["hook", "pre-receive"], input.as_bytes())
}

#[test]
fn bad_hook_input_is_an_error_naming_the_line() {
    let s = setup_ed25519();
    let z = common::ZERO;
    let input = format!("{z} {} refs/heads/main\nnot a line\n", s.head());
    let out = pre_receive(&s.w, &s.server, &input);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

#[test]
fn no_configured_policy_is_an_error_not_an_accept() {
    let w = World::new(&[]);
    let server = w.bare("server.git");
    let out = pre_receive(&w, &server, "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no policy"), "{}", stderr(&out));
}

#[test]
fn install_refuses_a_foreign_hook_without_force_and_is_idempotent() {
    let s = setup_ed25519();
    let hook = s.server.join("hooks/pre-receive");
    let script = std::fs::read_to_string(&hook).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(script.contains("hook pre-receive"), "{script}");
    let policy_cfg = s.w.git(&s.server, &["config", "--get-all", "gt.policy"]);
    assert!(policy_cfg.ends_with("policy.kn"), "{policy_cfg}");
    let srv = s.server.to_str().unwrap();
    // Reinstalling the same hook is fine.
    let out = s.w.gt(s.w.tmp.path(), &["hook", "install", "--repo", srv]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A foreign hook is kept unless --force.
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let out = s.w.gt(s.w.tmp.path(), &["hook", "install", "--repo", srv]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    let out = s.w.gt(
        s.w.tmp.path(),
        &["hook", "install", "--repo", srv, "--force"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), script);
    // A policy that does not load is refused at install time.
    let broken = s.w.path("broken.kn");
    std::fs::write(&broken, "Authorizer: \"POLICY\"\nConditions: (((\n").unwrap();
    let out = s.w.gt(
        s.w.tmp.path(),
        &[
            "hook",
            "install",
            "--repo",
            srv,
            "--policy",
            broken.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(policy_cfg.ends_with("policy.kn"));
}

/// A commit whose tree holds `policy.kn` with `text`, written in `repo`; returns its id.
fn policy_commit(w: &World, repo: &Path, text: &str) -> String {
    let blob = w.git_stdin(repo, &["hash-object", "-w", "--stdin"], text.as_bytes());
    let tree = w.git_stdin(
        repo,
        &["mktree"],
        format!("100644 blob {blob}\tpolicy.kn\n").as_bytes(),
    );
    w.git(repo, &["commit-tree", &tree, "-m", "policy"])
}

#[test]
fn repository_policy_delegates_through_the_hook_once_accepted() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    let trusted = format!(
        "{}\n\nKeyNote-Version: 2\n\
         Comment: test: refs/gt/policy may be updated (its credentials must verify)\n\
         Authorizer: \"POLICY\"\n\
         Conditions: app_domain == \"gittorrent\" && ref_kind == \"policy\" -> \"accept\";\n",
        std::fs::read_to_string(format!("{root}/kernel.kn")).unwrap()
    );
    let keys = ["rsa4096", "rsa2048", "ed25519", "subkey"];
    let s = setup(&["rsa2048"], &trusted, &keys);
    let head = s.head();

    // The USB lieutenant's tag: not allowed by the trusted root alone.
    s.w.signed_tag(&s.client, "usb-1.0", &head, &["rsa2048"]);
    let (ok, err) = s.push(&["refs/tags/usb-1.0"]);
    assert!(
        !ok,
        "a lieutenant's tag was accepted without the delegation"
    );
    assert!(err.contains("refs/tags/usb-1.0: rejected:"), "{err}");

    // A tampered delegation (usb- widened to every tag) is refused as a policy update.
    let delegations = std::fs::read_to_string(format!("{root}/kernel-delegations.kn")).unwrap();
    let tampered = delegations.replacen("^refs/tags/usb-", "^refs/tags/", 1);
    assert_ne!(tampered, delegations);
    let bad = policy_commit(&s.w, &s.client, &tampered);
    s.w.git(&s.client, &["update-ref", "refs/gt/policy", &bad]);
    let before = s.server_state();
    let (ok, err) = s.push(&["refs/gt/policy"]);
    assert!(
        !ok,
        "a policy with a broken credential signature was accepted"
    );
    assert!(err.contains("refs/gt/policy: rejected:"), "{err}");
    assert!(err.contains("not correctly signed"), "{err}");
    assert_eq!(s.server_state(), before);

    // The lead's signed delegations, published in the repository.
    let good = policy_commit(&s.w, &s.client, &delegations);
    s.w.git(&s.client, &["update-ref", "refs/gt/policy", &good]);
    let (ok, err) = s.push(&["--force", "refs/gt/policy"]);
    assert!(ok, "the signed delegations were refused: {err}");
    assert_eq!(s.server_ref("refs/gt/policy"), Some(good));

    // Now the lieutenant's USB tag is accepted, but not outside the delegated pattern.
    let (ok, err) = s.push(&["refs/tags/usb-1.0"]);
    assert!(ok, "the delegated tag was refused: {err}");
    s.w.signed_tag(&s.client, "net-1.0", &head, &["rsa2048"]);
    let (ok, err) = s.push(&["refs/tags/net-1.0"]);
    assert!(!ok, "a tag outside the delegated pattern was accepted");
    assert!(err.contains("refs/tags/net-1.0: rejected:"), "{err}");
}

#[test]
fn large_pushes_are_decided_in_parallel_chunks_without_losing_a_rejection() {
    // Enough updates for several decision threads (MIN_UPDATES_PER_WORKER is 256).
    let s = setup_ed25519();
    s.push_ok(&["main"]);
    let head = s.head();
    let z = common::ZERO;
    let mut lines: Vec<String> = (0..1200)
        .map(|i| format!("{z} {head} refs/heads/b{i:04}"))
        .collect();
    let all_good = lines.join("\n") + "\n";
    let out = pre_receive(&s.w, &s.server, &all_good);
    assert!(out.status.success(), "{}", stderr(&out));
    // One lightweight tag deep inside the last chunk is still found and reported.
    lines.insert(1000, format!("{z} {head} refs/tags/light"));
    let out = pre_receive(&s.w, &s.server, &(lines.join("\n") + "\n"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("gt: refs/tags/light: rejected: object type check"),
        "{err}"
    );
    assert!(err.contains("1 of 1201 ref update(s) rejected"), "{err}");
}

#[test]
fn revoked_signer_is_refused() {
    // gpg holds the key before its revocation; the server's keyring has the revoked certificate.
    let s = setup(&["revoked"], &policy(&one("revoked")), &["revoked"]);
    let head = s.head();
    s.w.signed_tag(&s.client, "v1.0", &head, &["revoked"]);
    let before = s.server_state();
    let (ok, err) = s.push(&["refs/tags/v1.0"]);
    assert!(!ok, "a tag signed by a revoked key was accepted");
    assert!(err.contains("refs/tags/v1.0: rejected:"), "{err}");
    assert!(err.contains("revoked"), "{err}");
    assert_eq!(s.server_state(), before);
}

#[test]
fn relative_config_paths_resolve_against_the_repository() {
    let s = setup_ed25519();
    // Move the policy next to the bare repository's files and name it relatively.
    std::fs::copy(s.w.path("policy.kn"), s.server.join("gt-policy.kn")).unwrap();
    std::fs::copy(pubkey("ed25519"), s.server.join("keys.asc")).unwrap();
    s.w.git(
        &s.server,
        &["config", "--replace-all", "gt.policy", "gt-policy.kn"],
    );
    s.w.git(
        &s.server,
        &["config", "--replace-all", "gt.keyring", "keys.asc"],
    );
    std::fs::remove_file(s.w.path("policy.kn")).unwrap();
    let head = s.head();
    let tag = s.w.signed_tag(&s.client, "v1.0", &head, &["ed25519"]);
    s.push_ok(&["refs/tags/v1.0"]);
    assert_eq!(s.server_ref("refs/tags/v1.0"), Some(tag));
}
