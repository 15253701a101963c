//! `gt tag sign` against concurrent updates of the same tag: two co-signers at once, a ref moved
//! between reading the tag and moving it, a ref lock held by another update.
//!
//! Both signers must have read the tag before either moves its ref, or the test would only show
//! two updates one after the other. So each `gt tag sign --gpg` runs real gpg through a wrapper
//! on its `PATH` that waits at a rendezvous (a file the test creates) before exec'ing gpg: the
//! test sees every signer arrive (each has read the tag and made its content), then lets them
//! all go. What is checked: exactly one signer moves the ref (compare-and-swap on the value it
//! read), the other exits with the distinct status 3 and says where its signature is; nothing
//! is lost or half-written (the ref holds the winner's object, which verifies with both
//! signatures; the loser's object exists and verifies too; `git fsck --strict` passes; no lock
//! file is left); and signing again then succeeds.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod tags_harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tags_harness::*;

/// The distinct exit status for a ref moved or held by someone else (src/cmd/tag.rs).
const EXIT_REF_MOVED: i32 = 3;

/// Upper bound on every wait of these tests (they take well under a second).
const WAIT: Duration = Duration::from_secs(30);

/// A directory with a `gpg` wrapper that waits for `<rendezvous>/go`, then runs the real gpg.
struct Rendezvous {
    bin: PathBuf,
    dir: PathBuf,
}

impl Rendezvous {
    fn new(w: &World) -> Rendezvous {
        let bin = w.path("bin");
        let dir = w.path("rendezvous");
        std::fs::create_dir(&bin).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("sh")
            .args(["-c", "command -v gpg"])
            .output()
            .unwrap();
        let real_gpg = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(!real_gpg.is_empty(), "gpg not found");
        let script = format!(
            "#!/bin/sh\n\
             # Real gpg, after a rendezvous: announce arrival, wait (bounded) for the go file.\n\
             : > '{dir}/arrived.'$$\n\
             i=0\n\
             while [ ! -e '{dir}/go' ]; do\n\
             \x20 i=$((i + 1))\n\
             \x20 if [ $i -gt 3000 ]; then echo 'rendezvous timed out' >&2; exit 1; fi\n\
             \x20 sleep 0.01\n\
             done\n\
             exec '{real_gpg}' \"$@\"\n",
            dir = dir.display()
        );
        let gpg = bin.join("gpg");
        std::fs::write(&gpg, script).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&gpg, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Rendezvous { bin, dir }
    }

    fn arrived(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("arrived.")
            })
            .count()
    }

    /// Wait until `n` signers wait at the rendezvous (panics after `WAIT`).
    fn wait_for(&self, n: usize, signers: &mut [Child]) {
        let start = Instant::now();
        while self.arrived() < n {
            for s in signers.iter_mut() {
                if let Some(status) = s.try_wait().unwrap() {
                    panic!("a signer exited before the rendezvous: {status}");
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "signers did not reach the rendezvous"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn go(&self) {
        std::fs::write(self.dir.join("go"), b"").unwrap();
    }

    /// `gt tag sign --gpg -u <key> <reference>` in `w`'s repository with the wrapper first on
    /// `PATH`, started in the background.
    fn spawn_signer(&self, w: &World, key: &str, reference: &str) -> Child {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin.clone()];
        paths.extend(std::env::split_paths(&path));
        Command::new(env!("CARGO_BIN_EXE_gt"))
            .args(["tag", "sign", "--gpg", "-u", &fingerprint(key), reference])
            .current_dir(w.repo())
            .env("PATH", std::env::join_paths(paths).unwrap())
            .env("GNUPGHOME", w.gnupghome())
            .env("HOME", w.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Exit code, stdout and stderr of a finished signer.
fn finish(child: Child) -> Gt {
    let out = child.wait_with_output().unwrap();
    Gt {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The object id a losing signer names as holding its signature.
fn orphan_of(loser: &Gt) -> String {
    let after = loser
        .stderr
        .split("it is in tag object ")
        .nth(1)
        .unwrap_or_else(|| panic!("no object named: {}", loser.stderr));
    after.chars().take_while(char::is_ascii_hexdigit).collect()
}

/// The ref's lock file, if one was left behind.
fn lock_file(repo: &Path, name: &str) -> PathBuf {
    repo.join(".git").join(format!("{name}.lock"))
}

fn rev_parse(w: &World, what: &str) -> String {
    w.git(&["rev-parse", what], &w.repo()).trim().to_owned()
}

#[test]
fn two_concurrent_cosigners_exactly_one_moves_the_ref_the_other_is_told() {
    let w = World::new(&["ed25519", "rsa2048", "rsa4096"]);
    w.signed_tag("v1", "ed25519", None);
    let original = rev_parse(&w, "refs/tags/v1");
    let r = Rendezvous::new(&w);

    let mut cosigners = vec![
        r.spawn_signer(&w, "rsa2048", "v1"),
        r.spawn_signer(&w, "rsa4096", "v1"),
    ];
    // Both have resolved the ref and read the tag (gpg is called after that).
    r.wait_for(2, &mut cosigners);
    r.go();
    let outs: Vec<Gt> = cosigners.into_iter().map(finish).collect();

    let mut codes: Vec<i32> = outs.iter().map(|o| o.code).collect();
    codes.sort_unstable();
    assert_eq!(codes, [0, EXIT_REF_MOVED], "{outs:#?}");
    let keys = ["rsa2048", "rsa4096"];
    let winner = outs.iter().position(|o| o.code == 0).unwrap();
    let (winner_out, loser_out) = (&outs[winner], &outs[1 - winner]);
    let (winner_key, loser_key) = (keys[winner], keys[1 - winner]);

    // The loser says what happened and where its signature is.
    assert!(
        loser_out
            .stderr
            .contains("refs/tags/v1 was moved by someone else")
            || loser_out
                .stderr
                .contains("refs/tags/v1 is locked by another update"),
        "{}",
        loser_out.stderr
    );
    assert!(
        loser_out
            .stderr
            .contains("your signature was not added to refs/tags/v1"),
        "{}",
        loser_out.stderr
    );
    assert!(loser_out.stdout.is_empty(), "{}", loser_out.stdout);

    // The ref holds the winner's object: the original signature plus the winner's.
    let now = rev_parse(&w, "refs/tags/v1");
    assert_ne!(now, original);
    assert!(
        winner_out
            .stdout
            .contains(&format!("{original} -> {now} (2 signatures)")),
        "{}",
        winner_out.stdout
    );
    let (code, reports) = w.verify_json(&["ed25519", "rsa2048", "rsa4096"], &["v1"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(statuses(&reports[0]), ["good", "good"]);
    let mut expected = vec![principal("ed25519"), principal(winner_key)];
    expected.sort();
    assert_eq!(signers(&reports[0]), expected);

    // The loser's signature is not lost: its object is in the repository, unreferenced, and
    // verifies with the original signature and the loser's.
    let orphan = orphan_of(loser_out);
    assert_eq!(orphan.len(), 40, "{}", loser_out.stderr);
    assert_ne!(orphan, now);
    assert_eq!(w.git(&["cat-file", "-t", &orphan], &w.repo()).trim(), "tag");
    let (code, reports) = w.verify_json(&["ed25519", "rsa2048", "rsa4096"], &[&orphan]);
    assert_eq!(code, 0, "{reports:?}");
    let mut expected = vec![principal("ed25519"), principal(loser_key)];
    expected.sort();
    assert_eq!(signers(&reports[0]), expected);

    // The repository is consistent: no lock left, fsck is clean.
    assert!(!lock_file(&w.repo(), "refs/tags/v1").exists());
    w.git(&["fsck", "--strict", "--no-dangling"], &w.repo());

    // Signing again (no race now) adds the loser's signature to the current tag.
    let out = w.gt(&[
        "tag",
        "sign",
        "--key",
        seckey(loser_key).to_str().unwrap(),
        "v1",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let (code, reports) = w.verify_json(&["ed25519", "rsa2048", "rsa4096"], &["v1"]);
    assert_eq!(code, 0, "{reports:?}");
    assert_eq!(statuses(&reports[0]), ["good", "good", "good"]);
    assert_eq!(signers(&reports[0]).len(), 3);
}

#[test]
fn a_ref_moved_while_signing_is_not_overwritten() {
    let w = World::new(&["ed25519", "rsa2048"]);
    w.signed_tag("v1", "ed25519", None);
    w.signed_tag("other", "ed25519", None);
    let original = rev_parse(&w, "refs/tags/v1");
    let other = rev_parse(&w, "refs/tags/other");
    let r = Rendezvous::new(&w);

    let mut signer = vec![r.spawn_signer(&w, "rsa2048", "v1")];
    r.wait_for(1, &mut signer);
    // Someone else moves the ref while the signer is in gpg.
    w.git(&["update-ref", "refs/tags/v1", &other], &w.repo());
    r.go();
    let out = finish(signer.pop().unwrap());

    assert_eq!(out.code, EXIT_REF_MOVED, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "refs/tags/v1 was moved by someone else: expected {original}, found {other}"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(
        rev_parse(&w, "refs/tags/v1"),
        other,
        "the other update stays"
    );
    let orphan = orphan_of(&out);
    assert_eq!(w.git(&["cat-file", "-t", &orphan], &w.repo()).trim(), "tag");
    assert!(!lock_file(&w.repo(), "refs/tags/v1").exists());
    w.git(&["fsck", "--strict", "--no-dangling"], &w.repo());
}

#[test]
fn a_held_ref_lock_is_a_concurrent_update_not_an_io_error() {
    let w = World::new(&["ed25519", "rsa2048"]);
    w.signed_tag("v1", "ed25519", None);
    let before = rev_parse(&w, "refs/tags/v1");
    // Another update holds the ref's lock (git's own lock file protocol).
    let lock = lock_file(&w.repo(), "refs/tags/v1");
    std::fs::write(&lock, format!("{before}\n")).unwrap();

    let key = seckey("rsa2048");
    let out = w.gt(&["tag", "sign", "--key", key.to_str().unwrap(), "v1"]);
    assert_eq!(out.code, EXIT_REF_MOVED, "{out:?}");
    assert!(
        out.stderr
            .contains("refs/tags/v1 is locked by another update"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("your signature was not added"),
        "{}",
        out.stderr
    );
    assert_eq!(rev_parse(&w, "refs/tags/v1"), before);
    assert!(lock.exists(), "someone else's lock is not ours to remove");

    // Once the other update is done, signing succeeds.
    std::fs::remove_file(&lock).unwrap();
    let out = w.gt(&["tag", "sign", "--key", key.to_str().unwrap(), "v1"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_ne!(rev_parse(&w, "refs/tags/v1"), before);
}
