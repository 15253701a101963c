//! Harness for the tag tests: a temporary GNUPGHOME with the committed test keys, a real git
//! repository with signed tags made by `git tag -s`, and a wrapper that runs the `gt` binary.
//! Nothing touches the user's own GnuPG or git configuration.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn testkeys() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testkeys"))
}

pub fn fingerprint(name: &str) -> String {
    let s = std::fs::read_to_string(testkeys().join("FINGERPRINTS")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no key {name}"))
}

pub fn principal(name: &str) -> String {
    format!("openpgp:{}", fingerprint(name))
}

pub fn pubkey(name: &str) -> PathBuf {
    testkeys().join(format!("{name}.pub.asc"))
}

pub fn seckey(name: &str) -> PathBuf {
    testkeys().join(format!("{name}.sec.asc"))
}

/// A temp dir with its own GNUPGHOME, HOME and a git repository with one commit.
pub struct World {
    pub dir: tempfile::TempDir,
}

impl World {
    /// Secret keys of `keys` imported into the world's GNUPGHOME.
    pub fn new(keys: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let w = World { dir };
        std::fs::create_dir(w.gnupghome()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(w.gnupghome(), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        for k in keys {
            w.gpg_import(&seckey(k));
        }
        w.git(&["init", "-q", "-b", "main", "repo"], w.dir.path());
        w.git(&["commit", "-q", "--allow-empty", "-m", "first"], &w.repo());
        w
    }

    pub fn gnupghome(&self) -> PathBuf {
        self.dir.path().join("gnupg")
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("GNUPGHOME", self.gnupghome())
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "gt tests")
            .env("GIT_AUTHOR_EMAIL", "tests@gt.invalid")
            .env("GIT_COMMITTER_NAME", "gt tests")
            .env("GIT_COMMITTER_EMAIL", "tests@gt.invalid")
            .env_remove("GIT_DIR")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES");
    }

    pub fn gpg_import(&self, file: &Path) {
        let mut cmd = Command::new("gpg");
        self.env(&mut cmd);
        let out = cmd
            .args(["--batch", "--quiet", "--import"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg --import {}: {:?}",
            file.display(),
            out
        );
    }

    /// Run git in `cwd`; panics on failure; returns stdout.
    pub fn git(&self, args: &[&str], cwd: &Path) -> String {
        let out = self.git_output(args, cwd);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn git_output(&self, args: &[&str], cwd: &Path) -> Output {
        let mut cmd = Command::new("git");
        self.env(&mut cmd);
        cmd.args(args).current_dir(cwd).output().unwrap()
    }

    /// Git with stdin.
    pub fn git_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        let mut cmd = Command::new("git");
        self.env(&mut cmd);
        let mut child = cmd
            .args(args)
            .current_dir(self.repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `git tag -s -u KEY -m MSG name [target]`, signed by gpg with test key `key`.
    pub fn signed_tag(&self, name: &str, key: &str, target: Option<&str>) {
        let fpr = fingerprint(key);
        let mut args = vec!["tag", "-s", "-u", &fpr, "-m", "release"];
        args.push(name);
        if let Some(t) = target {
            args.push(t);
        }
        self.git(&args, &self.repo());
    }

    /// The raw tag object.
    pub fn cat_tag(&self, name: &str) -> Vec<u8> {
        let out = self.git_output(&["cat-file", "tag", name], &self.repo());
        assert!(out.status.success());
        out.stdout
    }

    /// Write a tag object and point `refs/tags/<name>` at it.
    pub fn put_tag(&self, name: &str, bytes: &[u8]) -> String {
        let oid = self
            .git_stdin(&["hash-object", "-t", "tag", "-w", "--stdin"], bytes)
            .trim()
            .to_owned();
        self.git(
            &["update-ref", &format!("refs/tags/{name}"), &oid],
            &self.repo(),
        );
        oid
    }

    /// An armored detached signature by gpg (as git makes them) over `data`.
    pub fn gpg_sign(&self, key: &str, data: &[u8]) -> Vec<u8> {
        let mut cmd = Command::new("gpg");
        self.env(&mut cmd);
        let mut child = cmd
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(["-bsau", &fingerprint(key)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "gpg sign: {out:?}");
        out.stdout
    }

    /// `git verify-tag NAME` succeeded?
    pub fn git_verify(&self, name: &str) -> bool {
        self.git_output(&["verify-tag", name], &self.repo())
            .status
            .success()
    }

    /// Run `gt ARGS` in the repository with this world's environment.
    pub fn gt(&self, args: &[&str]) -> Gt {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gt"));
        self.env(&mut cmd);
        let out = cmd.args(args).current_dir(self.repo()).output().unwrap();
        Gt {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `gt verify-tag --json --keyring K... REFS...`: exit code and one JSON value per tag.
    pub fn verify_json(&self, keyrings: &[&str], refs: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let mut args = vec!["verify-tag".to_owned(), "--json".to_owned()];
        for k in keyrings {
            args.push("--keyring".to_owned());
            args.push(pubkey(k).display().to_string());
        }
        args.extend(refs.iter().map(|r| (*r).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.gt(&args);
        let values = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.code, values)
    }
}

impl Drop for World {
    /// Stop the gpg-agent that gpg started for this GNUPGHOME before the directory goes.
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.gnupghome())
            .args(["--kill", "all"])
            .output();
    }
}

/// What a `gt` run printed and returned.
#[derive(Debug)]
pub struct Gt {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The statuses of a JSON report's signatures, in order.
pub fn statuses(v: &serde_json::Value) -> Vec<String> {
    v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect()
}

/// The distinct good signers of a JSON report.
pub fn signers(v: &serde_json::Value) -> Vec<String> {
    v["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Append bytes to a tag object's bytes.
pub fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    v
}

/// The content of a signed tag object: everything before the first signature line.
pub fn content_of(tag: &[u8]) -> Vec<u8> {
    let marker = b"-----BEGIN PGP SIGNATURE-----";
    let pos = tag.windows(marker.len()).position(|w| w == marker).unwrap();
    tag[..pos].to_vec()
}
