//! `gt policy check | lint | sign` and `gt keyring to-policy` end to end, with real git, real gpg
//! signatures and the committed test keys: k-of-n in the three stacked layouts, expired and
//! revoked signers, the tag-name/ref mismatch, tag retargeting, the repository's own policy and
//! its updates, and the exit statuses.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{DECIDE_AT, Layout, SIGNED_AT, World, principal, pubkey, stderr, stdout};

/// A POLICY assertion: `licensees` for tags whose ref matches `pattern`, granting `value`.
fn root(licensees: &str, pattern: &str, value: &str) -> String {
    format!(
        "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\nLicensees: {licensees}\n\
         Conditions: app_domain == \"gittorrent\" && ref_kind == \"tag\" &&\n    \
         operation == \"create\" && ref ~= \"{pattern}\" -> \"{value}\";\n"
    )
}

fn two_of_three() -> String {
    root(
        &format!(
            "2-of(\"{}\", \"{}\", \"{}\")",
            principal("ed25519"),
            principal("rsa2048"),
            principal("rsa4096")
        ),
        "^refs/tags/",
        "accept",
    )
}

struct T {
    w: World,
    dir: PathBuf,
    head: String,
}

fn setup(keys: &[&str]) -> T {
    let w = World::new(keys);
    let dir = w.repo("repo");
    let head = w.git(&dir, &["rev-parse", "HEAD"]);
    T { w, dir, head }
}

impl T {
    fn policy(&self, name: &str, text: &str) -> PathBuf {
        let p = self.w.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `gt policy check --json` with `policies` and keyrings of `keys`; JSON lines and status.
    fn check(
        &self,
        policies: &[&Path],
        keys: &[&str],
        refs: &[&str],
    ) -> (Vec<serde_json::Value>, i32) {
        let mut args: Vec<String> = vec!["policy".into(), "check".into(), "--json".into()];
        for p in policies {
            args.push("--policy".into());
            args.push(p.display().to_string());
        }
        for k in keys {
            args.push("--keyring".into());
            args.push(pubkey(k).display().to_string());
        }
        args.extend(refs.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.w.gt(&self.dir, &args);
        let code = out.status.code().unwrap();
        assert!(code != 2, "gt policy check: {}", stderr(&out));
        let v = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (v, code)
    }

    fn decision(&self, policies: &[&Path], keys: &[&str], spec: &str) -> serde_json::Value {
        let (mut v, _) = self.check(policies, keys, &[spec]);
        assert_eq!(v.len(), 1);
        v.remove(0)
    }
}

const ALL: [&str; 3] = ["ed25519", "rsa2048", "rsa4096"];

#[test]
fn k_of_n_counts_signers_in_every_stacked_layout() {
    let t = setup(&ALL);
    let p = t.policy("p.kn", &two_of_three());
    let (w, dir) = (&t.w, &t.dir);
    // One block with two signatures; onion with two blocks.
    let one = w.make_tag(
        dir,
        "one",
        &t.head,
        &["ed25519", "rsa2048"],
        Layout::OneBlock,
    );
    w.git(dir, &["update-ref", "refs/tags/one", &one]);
    let onion = w.make_tag(
        dir,
        "onion",
        &t.head,
        &["rsa2048", "rsa4096"],
        Layout::Onion,
    );
    w.git(dir, &["update-ref", "refs/tags/onion", &onion]);
    // Tag chain: rsa4096 signs a tag of a tag signed by ed25519.
    let inner = w.make_tag(dir, "chain", &t.head, &["ed25519"], Layout::OneBlock);
    let outer = w.make_tag(dir, "chain", &inner, &["rsa4096"], Layout::OneBlock);
    w.git(dir, &["update-ref", "refs/tags/chain", &outer]);
    // Under-signed: one signer twice over (a principal counts once).
    let twice = w.make_tag(
        dir,
        "twice",
        &t.head,
        &["ed25519", "ed25519"],
        Layout::Onion,
    );
    w.git(dir, &["update-ref", "refs/tags/twice", &twice]);

    let (v, code) = t.check(&[&p], &ALL, &["one", "onion", "chain", "twice"]);
    assert_eq!(code, 1, "one rejection makes the exit status 1");
    let d: Vec<&str> = v.iter().map(|x| x["decision"].as_str().unwrap()).collect();
    assert_eq!(d, ["accept", "accept", "accept", "reject"]);
    assert_eq!(v[2]["signers"].as_array().unwrap().len(), 2);
    assert_eq!(v[2]["env"]["signer_count"], "2");
    assert_eq!(v[2]["env"]["target_oid"], t.head.as_str());
    assert_eq!(v[2]["env"]["target_type"], "commit");
    assert_eq!(v[3]["env"]["signer_count"], "1");
    let reasons = v[3]["reasons"].to_string();
    assert!(reasons.contains("needs 2 of {"), "{reasons}");
    assert!(reasons.contains("got {gt test Ed25519"), "{reasons}");

    // All accepted: exit 0.
    let (_, code) = t.check(&[&p], &ALL, &["one", "onion", "chain"]);
    assert_eq!(code, 0);
    // Without rsa4096's certificate, its signatures do not count.
    let v = t.decision(&[&p], &["ed25519", "rsa2048"], "onion");
    assert_eq!(v["decision"], "reject", "{v}");
}

/// A binary signature by test key `name` over `msg`, made by sequoia at `when` (gpg refuses to
/// sign with an expired key, which is exactly the case to test).
fn sequoia_sig(name: &str, msg: &[u8], when: u64) -> Vec<u8> {
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::parse::Parse;
    use openpgp::serialize::Marshal;
    use openpgp::types::{HashAlgorithm, SignatureType};
    use sequoia_openpgp as openpgp;
    let cert =
        openpgp::Cert::from_file(common::testkeys().join(format!("{name}.sec.asc"))).unwrap();
    let key = cert
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .role_into_unspecified();
    let mut pair = key.into_keypair().unwrap();
    let sig = SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(when))
        .unwrap()
        .set_hash_algo(HashAlgorithm::SHA512)
        .sign_message(&mut pair, msg)
        .unwrap();
    let mut out = Vec::new();
    let mut w = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature).unwrap();
    openpgp::Packet::from(sig).serialize(&mut w).unwrap();
    w.finalize().unwrap();
    out
}

#[test]
fn expired_and_revoked_signers_do_not_count() {
    let t = setup(&["ed25519", "revoked"]);
    let p = t.policy(
        "p.kn",
        &root(
            &format!(
                "2-of(\"{}\", \"{}\", \"{}\")",
                principal("ed25519"),
                principal("expired"),
                principal("revoked")
            ),
            "^refs/tags/",
            "accept",
        ),
    );
    let (w, dir) = (&t.w, &t.dir);
    let keys = ["ed25519", "expired", "revoked"];
    // `expired` expired on 2022-01-01: a signature from 2021 counts, one from 2025 does not.
    for (name, when) in [("before", 1_609_459_200u64), ("after", SIGNED_AT)] {
        let mut bytes = w.tag_content(name, &t.head, "commit");
        let mut sig = w.gpg_sign(&bytes, &["ed25519"]);
        // Stack as an onion: the second block signs content + first block.
        let mut with_first = bytes.clone();
        with_first.extend(&sig);
        sig.extend(sequoia_sig("expired", &with_first, when));
        bytes.extend(sig);
        let oid = w.mktag(dir, &bytes);
        w.git(dir, &["update-ref", &format!("refs/tags/{name}"), &oid]);
    }
    // `revoked` is hard-revoked in revoked.pub.asc: its signature never counts.
    let rev = w.make_tag(
        dir,
        "revoked",
        &t.head,
        &["ed25519", "revoked"],
        Layout::OneBlock,
    );
    w.git(dir, &["update-ref", "refs/tags/revoked", &rev]);

    let (v, _) = t.check(&[&p], &keys, &["before", "after", "revoked"]);
    assert_eq!(v[0]["decision"], "accept", "{}", v[0]);
    assert_eq!(v[1]["decision"], "reject", "{}", v[1]);
    assert_eq!(v[1]["signers"].as_array().unwrap().len(), 1);
    assert!(
        v[1]["reasons"].to_string().contains("needs 2 of"),
        "{}",
        v[1]
    );
    assert_eq!(v[2]["decision"], "reject", "{}", v[2]);
    assert_eq!(v[2]["env"]["signers"], principal("ed25519").as_str());
}

#[test]
fn structural_checks_reject_before_policy() {
    let t = setup(&ALL);
    // The most permissive policy possible: any tag, no signer needed.
    let p = t.policy(
        "open.kn",
        "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\n\
         Conditions: app_domain == \"gittorrent\" -> \"propagate\";\n",
    );
    let (w, dir) = (&t.w, &t.dir);
    // A correctly signed tag named v1 published as v2.
    let v1 = w.make_tag(
        dir,
        "v1",
        &t.head,
        &["ed25519", "rsa2048"],
        Layout::OneBlock,
    );
    w.git(dir, &["update-ref", "refs/tags/v2", &v1]);
    // A lightweight tag.
    w.git(dir, &["update-ref", "refs/tags/light", &t.head]);
    // A tag with a forged signature (content changed after signing).
    let good = w.make_tag(dir, "forged", &t.head, &["ed25519"], Layout::OneBlock);
    let bytes = w.git(dir, &["cat-file", "tag", &good]) + "\n";
    let forged = w.mktag(
        dir,
        bytes.replace("Release forged", "Release f0rged").as_bytes(),
    );
    w.git(dir, &["update-ref", "refs/tags/forged", &forged]);

    let (v, code) = t.check(
        &[&p],
        &ALL,
        &["refs/tags/v2", "refs/tags/light", "refs/tags/forged"],
    );
    assert_eq!(code, 1);
    let r: Vec<String> = v.iter().map(|x| x["reasons"].to_string()).collect();
    assert!(r[0].contains("tag name check"), "{}", r[0]);
    // The tag verified: its signers are reported although the name check rejected it.
    assert_eq!(v[0]["signers"].as_array().unwrap().len(), 2, "{}", v[0]);
    assert!(r[1].contains("object type check"), "{}", r[1]);
    assert!(r[1].contains("lightweight"), "{}", r[1]);
    assert!(r[2].contains("signature check"), "{}", r[2]);
    assert!(r[2].contains("bad"), "{}", r[2]);
    assert!(v.iter().all(|x| x["decision"] == "reject"));
    // Branches are not tags: the same policy accepts a branch update.
    let c2 = w.commit(dir, "two");
    let v = t.decision(&[&p], &ALL, &format!("refs/heads/main:{c2}"));
    assert_eq!(v["decision"], "propagate", "{v}");
    assert_eq!(v["env"]["operation"], "update");
}

#[test]
fn moving_or_deleting_a_tag_needs_an_explicit_grant() {
    let t = setup(&ALL);
    let (w, dir) = (&t.w, &t.dir);
    let a = w.make_tag(dir, "nightly", &t.head, &["ed25519"], Layout::OneBlock);
    w.git(dir, &["update-ref", "refs/tags/nightly", &a]);
    let c2 = w.commit(dir, "two");
    let b = w.make_tag(dir, "nightly", &c2, &["ed25519"], Layout::OneBlock);
    let lic = format!("\"{}\"", principal("ed25519"));
    // Grants any tag operation without naming it: creation only.
    let implicit = t.policy(
        "implicit.kn",
        &format!(
            "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\nLicensees: {lic}\n\
             Conditions: app_domain == \"gittorrent\" && ref_kind == \"tag\" -> \"accept\";\n"
        ),
    );
    let spec = format!("refs/tags/nightly:{b}");
    let v = t.decision(&[&implicit], &ALL, &spec);
    assert_eq!(v["decision"], "reject", "{v}");
    assert_eq!(v["env"]["operation"], "update");
    assert!(
        v["reasons"].to_string().contains("granted explicitly"),
        "{v}"
    );
    // Deleting is a tag operation too. A deletion carries no signature, so only a
    // Conditions-only grant can allow it, and it too must name the operation.
    let delete = format!("refs/tags/nightly:{}", common::ZERO);
    let open = t.policy(
        "open.kn",
        "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\n\
         Conditions: app_domain == \"gittorrent\" && ref_kind == \"tag\" -> \"accept\";\n",
    );
    let v = t.decision(&[&open], &ALL, &delete);
    assert_eq!(v["decision"], "reject", "{v}");
    assert_eq!(v["env"]["operation"], "delete");
    assert!(
        v["reasons"].to_string().contains("deletion of a tag"),
        "{v}"
    );
    let deletable = t.policy(
        "deletable.kn",
        "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\n\
         Conditions: app_domain == \"gittorrent\" && ref == \"refs/tags/nightly\" &&\n    \
         operation == \"delete\" && source == \"cli\" -> \"accept\";\n",
    );
    let v = t.decision(&[&deletable], &ALL, &delete);
    assert_eq!(v["decision"], "accept", "{v}");
    // Names the operation: the move is granted.
    let explicit = t.policy(
        "explicit.kn",
        &format!(
            "KeyNote-Version: 2\nAuthorizer: \"POLICY\"\nLicensees: {lic}\n\
             Conditions: app_domain == \"gittorrent\" && ref == \"refs/tags/nightly\" &&\n    \
             (operation == \"create\" || operation == \"update\") -> \"accept\";\n"
        ),
    );
    let v = t.decision(&[&explicit], &ALL, &spec);
    assert_eq!(v["decision"], "accept", "{v}");
    assert_eq!(v["env"]["old_oid"], a.as_str());
    assert_eq!(v["env"]["new_oid"], b.as_str());
}

/// Commit `policy.kn` with `text` as the new value of refs/gt/policy (parent: the old value);
/// returns the commit id without moving the ref.
fn policy_commit(t: &T, text: &str) -> String {
    let (w, dir) = (&t.w, &t.dir);
    let blob = w.git_stdin(dir, &["hash-object", "-w", "--stdin"], text.as_bytes());
    let tree = w.git_stdin(
        dir,
        &["mktree"],
        format!("100644 blob {blob}\tpolicy.kn\n").as_bytes(),
    );
    let parent = w.git_output(dir, &["rev-parse", "-q", "--verify", "refs/gt/policy"]);
    let mut args = vec!["commit-tree", &tree, "-m", "policy"];
    let p = stdout(&parent).trim().to_owned();
    if parent.status.success() {
        args.extend(["-p", &p]);
    }
    w.git(dir, &args)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_repository_policy_carries_credentials_and_its_updates_are_decided() {
    let t = setup(&ALL);
    let (w, dir) = (&t.w, &t.dir);
    let kernel = repo_root().join("policies/kernel.kn");
    let delegations =
        std::fs::read_to_string(repo_root().join("policies/kernel-delegations.kn")).unwrap();
    let net = w.make_tag(dir, "net-1", &t.head, &["ed25519"], Layout::OneBlock);
    w.git(dir, &["update-ref", "refs/tags/net-1", &net]);

    // Without the delegations, the lieutenant's tag is rejected.
    let v = t.decision(&[&kernel], &ALL, "net-1");
    assert_eq!(v["decision"], "reject", "{v}");
    // With them published in refs/gt/policy, it is propagated; --no-repo-policy ignores them.
    let c = policy_commit(&t, &delegations);
    w.git(dir, &["update-ref", "refs/gt/policy", &c]);
    let v = t.decision(&[&kernel], &ALL, "net-1");
    assert_eq!(v["decision"], "propagate", "{v}");
    assert!(
        v["granted_by"]
            .to_string()
            .contains("refs/gt/policy:policy.kn"),
        "{v}"
    );

    // A POLICY assertion smuggled into the repository's policy is ignored.
    let smuggled = format!(
        "{delegations}\nKeyNote-Version: 2\nAuthorizer: \"POLICY\"\n\
         Conditions: app_domain == \"gittorrent\" -> \"propagate\";\n"
    );
    let c2 = policy_commit(&t, &smuggled);
    w.git(dir, &["update-ref", "refs/gt/policy", &c2]);
    let rogue = w.make_tag(dir, "rogue", &t.head, &["rsa2048"], Layout::OneBlock);
    w.git(dir, &["update-ref", "refs/tags/rogue", &rogue]);
    let v = t.decision(&[&kernel], &ALL, "rogue");
    assert_eq!(v["decision"], "reject", "{v}");
    assert!(v["warnings"].to_string().contains("ignored"), "{v}");
    w.git(dir, &["update-ref", "refs/gt/policy", &c]);

    // Updating refs/gt/policy is a ref update the current policy decides (gt.kn accepts an
    // update whose credentials are all correctly signed), after a structural check.
    let gt_kn = repo_root().join("policies/gt.kn");
    let good = policy_commit(&t, &delegations);
    let v = t.decision(&[&gt_kn], &ALL, &format!("refs/gt/policy:{good}"));
    assert_eq!(v["decision"], "accept", "{v}");
    assert_eq!(v["env"]["ref_kind"], "policy");
    let forged = policy_commit(&t, &delegations.replace("^refs/tags/net-", "^refs/tags/"));
    let v = t.decision(&[&gt_kn], &ALL, &format!("refs/gt/policy:{forged}"));
    assert_eq!(v["decision"], "reject", "{v}");
    assert!(
        v["reasons"].to_string().contains("not correctly signed"),
        "{v}"
    );
    // A policy without a rule for refs/gt/policy rejects any update of it.
    let v = t.decision(&[&kernel], &ALL, &format!("refs/gt/policy:{good}"));
    assert_eq!(v["decision"], "reject", "{v}");
    // A blob is not a policy commit.
    let blob = w.git_stdin(dir, &["hash-object", "-w", "--stdin"], b"x");
    let v = t.decision(&[&gt_kn], &ALL, &format!("refs/gt/policy:{blob}"));
    assert!(
        v["reasons"].to_string().contains("must hold a commit"),
        "{v}"
    );
}

#[test]
fn gpg_and_key_file_signing_make_credentials_the_checker_trusts() {
    let t = setup(&ALL);
    let (w, dir) = (&t.w, &t.dir);
    let tagged = w.make_tag(dir, "team-1", &t.head, &["rsa2048"], Layout::OneBlock);
    w.git(dir, &["update-ref", "refs/tags/team-1", &tagged]);
    let root_p = t.policy(
        "root.kn",
        &root(
            &format!("\"{}\"", principal("ed25519")),
            "^refs/tags/",
            "accept",
        ),
    );
    let cred = format!(
        "# ed25519 delegates team-* to rsa2048\n\nKeyNote-Version: 2\nAuthorizer: \"{}\"\n\
         Licensees: \"{}\"\nConditions: ref ~= \"^refs/tags/team-\" -> \"accept\";\n",
        principal("ed25519"),
        principal("rsa2048")
    );
    let cred_p = t.policy("cred.kn", &cred);
    // Unsigned: not trusted, and lint says so.
    let v = t.decision(&[&root_p, &cred_p], &ALL, "team-1");
    assert_eq!(v["decision"], "reject", "{v}");
    assert!(v["warnings"].to_string().contains("not signed"), "{v}");
    let out = w.gt(dir, &["policy", "lint", cred_p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("cred.kn:3: error: credential by"),
        "{}",
        stdout(&out)
    );

    // Signed with the user's GnuPG key (the World's GNUPGHOME holds ed25519's secret key).
    let at = DECIDE_AT.to_string();
    let out = w.gt(
        dir,
        &[
            "policy",
            "sign",
            "--gpg",
            "--at",
            &at,
            cred_p.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let signed = std::fs::read_to_string(&cred_p).unwrap();
    assert!(
        signed.starts_with("# ed25519 delegates"),
        "comments are kept"
    );
    assert!(
        signed.contains("Signature: \"sig-openpgp-base64:"),
        "{signed}"
    );
    let v = t.decision(&[&root_p, &cred_p], &ALL, "team-1");
    assert_eq!(v["decision"], "accept", "{v}");
    assert_eq!(v["granted_by"].as_array().unwrap().len(), 2, "{v}");
    let out = w.gt(
        dir,
        &[
            "policy",
            "lint",
            "--keyring",
            pubkey("ed25519").to_str().unwrap(),
            cred_p.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // Re-signed with the key file: the old signature is replaced, still trusted.
    let key = common::testkeys().join("ed25519.sec.asc");
    let out = w.gt(
        dir,
        &[
            "policy",
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--at",
            &at,
            cred_p.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let resigned = std::fs::read_to_string(&cred_p).unwrap();
    assert_eq!(resigned.matches("Signature:").count(), 1);
    assert_ne!(resigned, signed);
    let v = t.decision(&[&root_p, &cred_p], &ALL, "team-1");
    assert_eq!(v["decision"], "accept", "{v}");

    // The wrong key, or a POLICY assertion: refused, file untouched.
    let other = common::testkeys().join("rsa2048.sec.asc");
    let out = w.gt(
        dir,
        &[
            "policy",
            "sign",
            "--key",
            other.to_str().unwrap(),
            cred_p.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no credential"), "{}", stderr(&out));
    let out = w.gt(
        dir,
        &[
            "policy",
            "sign",
            "--key",
            key.to_str().unwrap(),
            root_p.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("POLICY"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&cred_p).unwrap(), resigned);
}

#[test]
fn lint_reports_syntax_unknown_attributes_and_values_with_lines() {
    let t = setup(&[]);
    let p = t.policy(
        "bad.kn",
        "# header\n\nKeyNote-Version: 2\nAuthorizer: \"POLICY\"\n\
         Conditions: app_domain == \"gittorrent\" && refname == \"x\" -> \"allow\";\n\n\
         KeyNote-Version: 2\nAuthorizer: \"POLICY\"\nLicensees: \"openpgp:12a437c1bc08d7bbc4a8aca02f7b16dc5ac5d889\"\n\n\
         Authorizer: \"POLICY\"\nConditions: ref == ;\n",
    );
    let out = t.w.gt(&t.dir, &["policy", "lint", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let s = stdout(&out);
    assert!(
        s.contains("bad.kn:5: error: unknown attribute \"refname\""),
        "{s}"
    );
    assert!(
        s.contains("bad.kn:5: error: compliance value \"allow\""),
        "{s}"
    );
    assert!(s.contains("bad.kn:9: error: principal"), "{s}");
    assert!(s.contains("bad.kn:12: error: Conditions field"), "{s}");
    // check refuses to run with a broken trusted policy: exit 2, not a silent rejection.
    let out = t.w.gt(
        &t.dir,
        &[
            "policy",
            "check",
            "--policy",
            p.to_str().unwrap(),
            "--all-tags",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.kn:12"), "{}", stderr(&out));
}

#[test]
fn keyring_to_policy_requires_k_of_the_keyring() {
    let t = setup(&ALL);
    let (w, dir) = (&t.w, &t.dir);
    // One keyring file with three certificates.
    let mut ring = Vec::new();
    for k in ALL {
        ring.extend(std::fs::read(pubkey(k)).unwrap());
    }
    let ring_p = w.path("ring.asc");
    std::fs::write(&ring_p, ring).unwrap();
    let out_p = w.path("generated.kn");
    let out = w.gt(
        dir,
        &[
            "keyring",
            "to-policy",
            ring_p.to_str().unwrap(),
            "--threshold",
            "2",
            "--ref-pattern",
            "^refs/tags/v[0-9]",
            "--value",
            "propagate",
            "-o",
            out_p.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&out_p).unwrap();
    assert!(text.contains("Licensees: 2-of("), "{text}");
    for k in ALL {
        assert!(text.contains(&principal(k)), "{text}");
    }
    let out = w.gt(dir, &["policy", "lint", out_p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for (name, keys) in [
        ("v1", &["ed25519"][..]),
        ("v2", &["rsa2048", "rsa4096"][..]),
    ] {
        let o = w.make_tag(dir, name, &t.head, keys, Layout::OneBlock);
        w.git(dir, &["update-ref", &format!("refs/tags/{name}"), &o]);
    }
    let (v, _) = t.check(&[&out_p], &[], &["v1", "v2"]);
    // No --keyring: no signer can be verified.
    assert!(v.iter().all(|x| x["decision"] == "reject"));
    let mut args: Vec<String> = vec![
        "policy".into(),
        "check".into(),
        "--policy".into(),
        out_p.display().to_string(),
        "--keyring".into(),
        ring_p.display().to_string(),
        "--all-tags".into(),
    ];
    let args2: Vec<&str> = args.iter_mut().map(|s| s.as_str()).collect();
    let out = w.gt(dir, &args2);
    assert_eq!(out.status.code(), Some(1));
    let s = stdout(&out);
    assert!(s.contains("REJECT    refs/tags/v1"), "{s}");
    assert!(s.contains("propagate refs/tags/v2"), "{s}");
    assert!(s.contains("2 ref(s): 1 allowed, 1 rejected"), "{s}");
    // An impossible threshold is an error.
    let out = w.gt(
        dir,
        &[
            "keyring",
            "to-policy",
            ring_p.to_str().unwrap(),
            "--threshold",
            "4",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("threshold 4"), "{}", stderr(&out));
}

#[test]
fn check_exit_status_is_2_for_unknown_refs() {
    let t = setup(&[]);
    let p = t.policy("p.kn", &two_of_three());
    let out = t.w.gt(
        &t.dir,
        &[
            "policy",
            "check",
            "--policy",
            p.to_str().unwrap(),
            "no-such-tag",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-tag"), "{}", stderr(&out));
}
