//! Reading tags from real repositories with gix: refs, object ids, chains, a push quarantine,
//! and the compare-and-swap ref move.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use verifier::repo::RepoError;
use verifier::{Status, TagSource, Verifier};

fn git(dir: &Path, args: &[&str], envs: &[(&str, &Path)], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        std::io::Write::write_all(&mut input, bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn repo_with_commit() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main", "."], &[], None);
    git(
        dir.path(),
        &["commit", "-q", "--allow-empty", "-m", "c"],
        &[],
        None,
    );
    let head = git(dir.path(), &["rev-parse", "HEAD"], &[], None);
    (dir, head)
}

fn put(dir: &Path, bytes: &[u8]) -> String {
    git(
        dir,
        &["hash-object", "-t", "tag", "-w", "--literally", "--stdin"],
        &[],
        Some(bytes),
    )
}

#[test]
fn refs_object_ids_and_chains() {
    let (dir, head) = repo_with_commit();
    let inner = one_block(&content("inner", "commit", &head), &["ed25519"]);
    let inner_oid = put(dir.path(), &inner);
    let outer = one_block(&content("outer", "tag", &inner_oid), &["rsa2048"]);
    let outer_oid = put(dir.path(), &outer);
    git(
        dir.path(),
        &["update-ref", "refs/tags/outer", &outer_oid],
        &[],
        None,
    );

    let source = TagSource::open(dir.path()).unwrap();
    for spec in ["outer", "tags/outer", "refs/tags/outer", outer_oid.as_str()] {
        let (oid, name) = source.resolve(spec).unwrap();
        assert_eq!(oid.to_string(), outer_oid, "{spec}");
        assert_eq!(name.is_some(), spec != outer_oid, "{spec}");
    }
    assert!(matches!(
        source.resolve("nope"),
        Err(RepoError::NotFound { .. })
    ));
    let (head_oid, _) = source.resolve(&head).unwrap();
    assert!(matches!(
        source.read_tag(head_oid),
        Err(RepoError::NotATag { .. })
    ));

    let keyring = keyring(&["ed25519", "rsa2048"]);
    let v = Verifier::new(&keyring, pinned());
    let (oid, _) = source.resolve("outer").unwrap();
    let report = v.verify_chain(&source, oid).unwrap();
    assert_eq!(report.levels.len(), 2);
    assert!(report.is_verified(), "{report:?}");
    let verified = report.verified().unwrap();
    assert_eq!(verified.signers().len(), 2);
    assert_eq!(verified.peeled_target().0.to_string(), head);
    assert_eq!(verified.levels()[1].name(), "inner");

    // The same outer object without a repository: the inner level is not verified.
    let alone = v.verify_bytes(&outer);
    assert!(alone.chain_error.is_some());
    assert!(!alone.is_verified());

    // An outer tag whose inner tag is absent.
    let dangling = one_block(
        &content(
            "dangling",
            "tag",
            "0123456789012345678901234567890123456789",
        ),
        &["rsa2048"],
    );
    let d_oid = put(dir.path(), &dangling);
    let (d, _) = source.resolve(&d_oid).unwrap();
    let report = v.verify_chain(&source, d).unwrap();
    assert!(
        report
            .chain_error
            .as_deref()
            .unwrap()
            .contains("not in the repository")
    );
    assert!(!report.is_verified());
}

#[test]
fn quarantined_objects_are_found_only_through_open_quarantine() {
    let (dir, head) = repo_with_commit();
    let quarantine = dir.path().join(".git/objects/incoming-test");
    std::fs::create_dir_all(&quarantine).unwrap();
    let main_objects = dir.path().join(".git/objects");
    let tag = one_block(&content("pushed", "commit", &head), &["ed25519"]);
    // What git does during a push: new objects go to the quarantine directory.
    let oid = git(
        dir.path(),
        &["hash-object", "-t", "tag", "-w", "--stdin"],
        &[
            ("GIT_OBJECT_DIRECTORY", &quarantine),
            ("GIT_ALTERNATE_OBJECT_DIRECTORIES", &main_objects),
        ],
        Some(&tag),
    );
    let plain = TagSource::open(dir.path()).unwrap();
    let (id, _) = plain.resolve(&oid).unwrap();
    assert!(matches!(
        plain.read_tag(id),
        Err(RepoError::MissingObject(_))
    ));

    let q = TagSource::open_quarantine(dir.path(), &quarantine, &[main_objects]).unwrap();
    assert_eq!(q.read_tag(id).unwrap(), tag);
    // The main store is still searched (the commit is there).
    let (head_id, _) = q.resolve(&head).unwrap();
    assert_eq!(q.read_object(head_id).unwrap().0, gix::objs::Kind::Commit);
    let keyring = keyring(&["ed25519"]);
    let report = Verifier::new(&keyring, pinned())
        .verify_chain(&q, id)
        .unwrap();
    assert_eq!(report.levels[0].signatures[0].status, Status::Good);
}

#[test]
fn write_tag_and_compare_and_swap_ref_move() {
    let (dir, head) = repo_with_commit();
    let a = one_block(&content("v1", "commit", &head), &["ed25519"]);
    let source = TagSource::open(dir.path()).unwrap();
    let a_oid = source.write_tag(&a).unwrap();
    git(
        dir.path(),
        &["update-ref", "refs/tags/v1", &a_oid.to_string()],
        &[],
        None,
    );
    let b = one_block(&content("v1", "commit", &head), &["ed25519", "rsa2048"]);
    let b_oid = source.write_tag(&b).unwrap();
    assert_eq!(
        git(
            dir.path(),
            &["cat-file", "-t", &b_oid.to_string()],
            &[],
            None
        ),
        "tag"
    );
    // Wrong expected old value: refused, ref unchanged.
    assert!(
        source
            .move_ref("refs/tags/v1", b_oid, b_oid, "test")
            .is_err()
    );
    assert_eq!(
        git(dir.path(), &["rev-parse", "refs/tags/v1"], &[], None),
        a_oid.to_string()
    );
    source
        .move_ref("refs/tags/v1", a_oid, b_oid, "test")
        .unwrap();
    assert_eq!(
        git(dir.path(), &["rev-parse", "refs/tags/v1"], &[], None),
        b_oid.to_string()
    );
}
