//! Shared harness for gt's end-to-end tests: a throwaway world (HOME, GNUPGHOME with the committed
//! test keys imported, git identity and dates pinned), git and gpg helpers that assert success,
//! signed tags in the stacked layouts made by the real gpg, and a way to run the built `gt`.
//!
//! Every test gets its own [`World`]; nothing touches the developer's own git config or keyring.
//! Signatures are made by gpg at the fixed time [`SIGNED_AT`] (`--faked-system-time`), and
//! decisions are pinned at [`DECIDE_AT`] through the `GT_AT` environment variable, so results do
//! not depend on the wall clock.
#![allow(dead_code)]
// Test helpers may unwrap: a failure is a test failure (clippy.toml allows it in #[test] only).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// 2025-01-01T00:00:00Z: when the test signatures are made (after every key's creation and after
/// `expired`'s expiry).
pub const SIGNED_AT: u64 = 1_735_689_600;

/// 2026-06-01T00:00:00Z: the decision time of these tests (passed as `GT_AT`).
pub const DECIDE_AT: u64 = 1_780_272_000;

/// The all-zero object id git uses for "no object" (create / delete).
pub const ZERO: &str = "0000000000000000000000000000000000000000";

/// The committed test keys (no security value, see testkeys/README.md).
pub fn testkeys() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testkeys"))
}

/// The public certificate file of test key `name`.
pub fn pubkey(name: &str) -> PathBuf {
    testkeys().join(format!("{name}.pub.asc"))
}

/// The primary fingerprint of test key `name`.
pub fn fingerprint(name: &str) -> String {
    let s = std::fs::read_to_string(testkeys().join("FINGERPRINTS")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no test key {name}"))
}

/// The KeyNote principal of test key `name`: `openpgp:<FPR>`.
pub fn principal(name: &str) -> String {
    format!("openpgp:{}", fingerprint(name))
}

/// How several signatures are stacked on one tag (see verifier::parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One armored block holding one signature packet per signer, each over the content.
    OneBlock,
    /// One block per signer, block i signing the content plus blocks 1..i-1.
    Onion,
}

/// A throwaway environment: temp dir, HOME, GNUPGHOME with test keys, pinned git identity.
pub struct World {
    /// Owns the temporary directory; everything lives under it.
    pub tmp: tempfile::TempDir,
    /// `$HOME` for every child process.
    pub home: PathBuf,
    /// `$GNUPGHOME` with the secret test keys imported.
    pub gnupghome: PathBuf,
}

impl World {
    /// A world whose gpg holds the secret halves of the named test keys.
    pub fn new(keys: &[&str]) -> World {
        let tmp = tempfile::Builder::new().prefix("gt-e2e").tempdir().unwrap();
        let home = tmp.path().join("home");
        let gnupghome = tmp.path().join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&gnupghome).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&gnupghome, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let world = World {
            tmp,
            home,
            gnupghome,
        };
        if !keys.is_empty() {
            let mut args: Vec<String> = ["--batch", "--quiet", "--import"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            for k in keys {
                args.push(
                    testkeys()
                        .join(format!("{k}.sec.asc"))
                        .display()
                        .to_string(),
                );
            }
            let out = world.cmd("gpg").args(&args).output().unwrap();
            assert!(out.status.success(), "gpg --import: {}", stderr(&out));
        }
        world
    }

    /// A path under the world's temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// A command with the world's environment: HOME, GNUPGHOME, no system git config, pinned
    /// git identity and dates, and the pinned decision time `GT_AT`.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", &self.home)
            .env("GNUPGHOME", &self.gnupghome)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .env("GIT_AUTHOR_NAME", "gt tests")
            .env("GIT_AUTHOR_EMAIL", "tests@gt.invalid")
            .env("GIT_COMMITTER_NAME", "gt tests")
            .env("GIT_COMMITTER_EMAIL", "tests@gt.invalid")
            .env("GIT_AUTHOR_DATE", format!("@{SIGNED_AT} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{SIGNED_AT} +0000"))
            .env("GT_AT", DECIDE_AT.to_string())
            .env("LC_ALL", "C")
            .env_remove("RUST_LOG");
        c
    }

    /// `git -C dir ARGS`, asserting success; returns trimmed stdout.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {}: {}",
            dir.display(),
            stderr(&out)
        );
        stdout(&out).trim().to_owned()
    }

    /// `git -C dir ARGS` without asserting.
    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// `git -C dir ARGS` with `input` on stdin, asserting success; returns trimmed stdout.
    pub fn git_stdin(&self, dir: &Path, args: &[&str], input: &[u8]) -> String {
        let out = run_with_stdin(self.cmd("git").arg("-C").arg(dir).args(args), input);
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_owned()
    }

    /// The built `gt` binary with the world's environment.
    pub fn gt_cmd(&self) -> Command {
        self.cmd(env!("CARGO_BIN_EXE_gt"))
    }

    /// Run `gt ARGS` in `dir`.
    pub fn gt(&self, dir: &Path, args: &[&str]) -> Output {
        self.gt_cmd().current_dir(dir).args(args).output().unwrap()
    }

    /// Run `gt ARGS` in `dir` with `input` on stdin.
    pub fn gt_stdin(&self, dir: &Path, args: &[&str], input: &[u8]) -> Output {
        run_with_stdin(self.gt_cmd().current_dir(dir).args(args), input)
    }

    /// A new non-bare repository `name` with one commit on `main`.
    pub fn repo(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.git(&dir, &["init", "-q", "-b", "main"]);
        self.commit(&dir, "initial");
        dir
    }

    /// A new bare repository `name`.
    pub fn bare(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.git(&dir, &["init", "-q", "--bare", "-b", "main"]);
        dir
    }

    /// Add a file and commit it on the current branch; returns the commit id.
    pub fn commit(&self, repo: &Path, msg: &str) -> String {
        let file = repo.join(format!("{}.txt", msg.replace(' ', "-")));
        std::fs::write(&file, format!("{msg}\n")).unwrap();
        self.git(repo, &["add", "."]);
        self.git(repo, &["commit", "-q", "-m", msg]);
        self.git(repo, &["rev-parse", "HEAD"])
    }

    /// gpg's armored detached signature(s) over `data` by the named keys, made at [`SIGNED_AT`].
    /// Several keys give one armored block with one signature packet each.
    pub fn gpg_sign(&self, data: &[u8], keys: &[&str]) -> Vec<u8> {
        let mut c = self.cmd("gpg");
        c.args([
            "--batch",
            "--quiet",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--faked-system-time",
            &format!("{}!", gpg_time(SIGNED_AT)),
            "--digest-algo",
            "SHA512",
            "--armor",
            "--detach-sign",
        ]);
        for k in keys {
            c.args(["--local-user", &fingerprint(k)]);
        }
        let out = run_with_stdin(&mut c, data);
        assert!(out.status.success(), "gpg --detach-sign: {}", stderr(&out));
        out.stdout
    }

    /// The content (unsigned part) of a tag object named `name` pointing at `target`.
    pub fn tag_content(&self, name: &str, target: &str, kind: &str) -> Vec<u8> {
        format!(
            "object {target}\ntype {kind}\ntag {name}\ntagger gt tests <tests@gt.invalid> \
             {SIGNED_AT} +0000\n\nRelease {name}\n"
        )
        .into_bytes()
    }

    /// Write a tag object (bytes) into `repo` with `git mktag` (git's own format checks);
    /// returns its id. The ref is not touched.
    pub fn mktag(&self, repo: &Path, bytes: &[u8]) -> String {
        self.git_stdin(repo, &["mktag"], bytes)
    }

    /// A tag object with header `tag NAME`, pointing at commit `target`, signed by `keys` in
    /// `layout`, written into `repo` (ref untouched); returns its id.
    pub fn make_tag(
        &self,
        repo: &Path,
        name: &str,
        target: &str,
        keys: &[&str],
        layout: Layout,
    ) -> String {
        let kind = self.git(repo, &["cat-file", "-t", target]);
        let mut bytes = self.tag_content(name, target, &kind);
        match layout {
            Layout::OneBlock => {
                if !keys.is_empty() {
                    let sig = self.gpg_sign(&bytes, keys);
                    bytes.extend(sig);
                }
            }
            Layout::Onion => {
                for k in keys {
                    let sig = self.gpg_sign(&bytes, &[k]);
                    bytes.extend(sig);
                }
            }
        }
        self.mktag(repo, &bytes)
    }

    /// [`World::make_tag`] then point `refs/tags/NAME` at it; returns the tag's id.
    pub fn signed_tag(&self, repo: &Path, name: &str, target: &str, keys: &[&str]) -> String {
        self.tag_ref(repo, name, name, target, keys, Layout::OneBlock)
    }

    /// [`World::make_tag`] (header `tag NAME`) then point `refs/tags/AT` at it (`at` differs
    /// from `name` for a tag published under another name); returns the tag's id.
    pub fn tag_ref(
        &self,
        repo: &Path,
        at: &str,
        name: &str,
        target: &str,
        keys: &[&str],
        layout: Layout,
    ) -> String {
        let oid = self.make_tag(repo, name, target, keys, layout);
        self.git(repo, &["update-ref", &format!("refs/tags/{at}"), &oid]);
        oid
    }

    /// `git for-each-ref` in a stable format: the repository's visible state.
    pub fn refs(&self, repo: &Path) -> String {
        self.git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"])
    }

    /// Every object id in the repository's object store (loose and packed, reachable or not).
    pub fn objects(&self, repo: &Path) -> BTreeSet<String> {
        let out = self.git(
            repo,
            &[
                "cat-file",
                "--batch-all-objects",
                "--batch-check=%(objectname)",
            ],
        );
        out.lines().map(str::to_owned).collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // gpg started an agent for this GNUPGHOME; stop it so it does not outlive the test.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.gnupghome)
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// gpg's `--faked-system-time` spelling of unix seconds (`YYYYMMDDTHHMMSS`, UTC).
pub fn gpg_time(secs: u64) -> String {
    // Civil-from-days (Howard Hinnant's algorithm) keeps the harness free of a date crate.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Run `cmd` with `input` on its stdin and collect its output.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit before reading everything (e.g. on a bad first line).
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// A child's stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn gpg_time_spells_known_instants() {
    assert_eq!(gpg_time(0), "19700101T000000");
    assert_eq!(gpg_time(SIGNED_AT), "20250101T000000");
    assert_eq!(gpg_time(DECIDE_AT), "20260601T000000");
    assert_eq!(gpg_time(951_782_400 + 3661), "20000229T010101");
}
