//! The `repo` action attribute is the same for `gt policy check`, the pre-receive hook and
//! `gt pull`: git config `gt.repo` of the repository when set, else its canonical path, with
//! `gt policy check --repo-id` overriding both. Real git pushes and pulls, real gpg signatures.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{World, principal, pubkey, stderr, stdout};

/// The name the policy grants: not a path, so only `gt.repo` can produce it.
const NAME: &str = "example.org/gt";

/// Tags signed by ed25519 are accepted into the repository named [`NAME`] only.
fn policy_text() -> String {
    format!(
        "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\nLicensees: \"{}\"\n\
         Conditions: app_domain == \"gittorrent\" && ref_kind == \"tag\" &&\n    \
         repo == \"{NAME}\" -> \"accept\";\n",
        principal("ed25519")
    )
}

struct T {
    w: World,
    policy: PathBuf,
    keyring: PathBuf,
}

impl T {
    fn new() -> T {
        let w = World::new(&["ed25519"]);
        let policy = w.path("policy.kn");
        std::fs::write(&policy, policy_text()).unwrap();
        T {
            w,
            policy,
            keyring: pubkey("ed25519"),
        }
    }

    /// `gt policy check --json --repo DIR [extra] REF`: (decision, repo attribute, status).
    fn check(&self, dir: &Path, extra: &[&str], reference: &str) -> (String, String, i32) {
        let mut args = vec![
            "policy",
            "check",
            "--json",
            "--repo",
            dir.to_str().unwrap(),
            "--policy",
            self.policy.to_str().unwrap(),
            "--keyring",
            self.keyring.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push(reference);
        let out = self.w.gt(self.w.tmp.path(), &args);
        let code = out.status.code().unwrap();
        assert!(code != 2, "gt policy check: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let decision = v["decision"].as_str().unwrap().to_owned();
        let repo = v["env"]["repo"].as_str().unwrap().to_owned();
        (decision, repo, code)
    }
}

fn canonical(dir: &Path) -> String {
    std::fs::canonicalize(dir).unwrap().display().to_string()
}

#[test]
fn check_and_hook_read_gt_repo_alike() {
    let t = T::new();
    let w = &t.w;
    let server = w.bare("server.git");
    let out = w.gt(
        w.tmp.path(),
        &[
            "hook",
            "install",
            "--repo",
            server.to_str().unwrap(),
            "--policy",
            t.policy.to_str().unwrap(),
            "--keyring",
            t.keyring.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "gt hook install: {}", stderr(&out));
    let client = w.repo("client");
    w.git(
        &client,
        &["remote", "add", "origin", server.to_str().unwrap()],
    );
    let head = w.git(&client, &["rev-parse", "HEAD"]);
    w.signed_tag(&client, "v1", &head, &["ed25519"]);
    w.signed_tag(&client, "v2", &head, &["ed25519"]);

    // Without gt.repo the attribute is the path: the hook refuses, and so does check.
    let push = w.git_output(&client, &["push", "origin", "refs/tags/v1"]);
    assert!(
        !push.status.success(),
        "the hook accepted a tag for another repo"
    );
    let (decision, repo, code) = t.check(&client, &[], "refs/tags/v1");
    assert_eq!(
        (decision.as_str(), code),
        ("reject", 1),
        "check without gt.repo"
    );
    assert_eq!(repo, canonical(&client));

    // With gt.repo on the server the hook accepts the push...
    w.git(&server, &["config", "gt.repo", NAME]);
    let push = w.git_output(&client, &["push", "origin", "refs/tags/v1"]);
    assert!(push.status.success(), "git push: {}", stderr(&push));
    // ...and check, run on the same server repository, gives the same decision for the same
    // name, from the same config, with no --repo-id.
    let (decision, repo, code) = t.check(&server, &[], "refs/tags/v1");
    assert_eq!(
        (decision.as_str(), repo.as_str(), code),
        ("accept", NAME, 0)
    );
    // --repo-id still overrides the config.
    let (decision, repo, code) = t.check(&server, &["--repo-id", "elsewhere"], "refs/tags/v1");
    assert_eq!(
        (decision.as_str(), repo.as_str(), code),
        ("reject", "elsewhere", 1)
    );
    // Removing gt.repo again: both refuse the next tag, and check names the server's path.
    w.git(&server, &["config", "--unset", "gt.repo"]);
    let push = w.git_output(&client, &["push", "origin", "refs/tags/v2"]);
    assert!(
        !push.status.success(),
        "the hook accepted v2 without gt.repo"
    );
    let (decision, repo, _) = t.check(&server, &[], "refs/tags/v1");
    assert_eq!(decision, "reject");
    assert_eq!(repo, canonical(&server));
}

#[test]
fn check_and_pull_read_gt_repo_alike() {
    let t = T::new();
    let w = &t.w;
    let upstream = w.repo("upstream");
    let head = w.git(&upstream, &["rev-parse", "HEAD"]);
    w.signed_tag(&upstream, "v1", &head, &["ed25519"]);
    let mirror = w.repo("mirror");
    let pull = |dir: &Path| {
        w.gt(
            dir,
            &[
                "pull",
                upstream.to_str().unwrap(),
                "refs/tags/v1",
                "--policy",
                t.policy.to_str().unwrap(),
                "--keyring",
                t.keyring.to_str().unwrap(),
            ],
        )
    };

    // Without gt.repo: pull refuses (exit 1), and check on the upstream's tag agrees.
    let out = pull(&mirror);
    assert_eq!(out.status.code(), Some(1), "gt pull: {}", stderr(&out));
    let (decision, _, _) = t.check(&upstream, &[], "refs/tags/v1");
    assert_eq!(decision, "reject");

    // With gt.repo in the mirror, pull takes the tag; check in the mirror then accepts it too.
    w.git(&mirror, &["config", "gt.repo", NAME]);
    let out = pull(&mirror);
    assert!(out.status.success(), "gt pull: {}", stderr(&out));
    let (decision, repo, code) = t.check(&mirror, &[], "refs/tags/v1");
    assert_eq!(
        (decision.as_str(), repo.as_str(), code),
        ("accept", NAME, 0)
    );
}
