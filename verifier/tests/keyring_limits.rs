//! The keyring's size limits at their boundary: at the limit a keyring loads, one over it is
//! refused with an error naming the file or directory. The limits are injected with
//! `Keyring::with_limits` (the defaults — 256 MiB, 100,000 certificates, 10,000 files — would
//! need huge inputs; the code path is the same), using the committed test keys.

#![allow(clippy::unwrap_used)] // tests: a failure is a test failure

mod common;

use std::path::{Path, PathBuf};

use common::testkeys;
use verifier::keyring::KeyringError;
use verifier::limits::{MAX_KEYRING_BYTES, MAX_KEYRING_CERTS, MAX_KEYRING_DIR_FILES};
use verifier::{Keyring, KeyringLimits};

fn limits(f: impl FnOnce(&mut KeyringLimits)) -> KeyringLimits {
    let mut l = KeyringLimits::default();
    f(&mut l);
    l
}

/// One file holding the public certificates of `keys`, one after the other.
fn keyring_file(dir: &Path, name: &str, keys: &[&str]) -> PathBuf {
    let mut bytes = Vec::new();
    for k in keys {
        bytes.extend(std::fs::read(testkeys().join(format!("{k}.pub.asc"))).unwrap());
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn defaults_are_the_named_constants() {
    let l = KeyringLimits::default();
    assert_eq!(l.max_file_bytes, MAX_KEYRING_BYTES);
    assert_eq!(l.max_certs, MAX_KEYRING_CERTS);
    assert_eq!(l.max_dir_files, MAX_KEYRING_DIR_FILES);
    assert_eq!(Keyring::new().limits(), l);
}

#[test]
fn file_size_at_the_limit_loads_one_byte_over_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = keyring_file(dir.path(), "two.asc", &["ed25519", "rsa2048"]);
    let size = std::fs::metadata(&file).unwrap().len();

    let mut at = Keyring::with_limits(limits(|l| l.max_file_bytes = size));
    assert_eq!(at.add_path(&file).unwrap(), 2);
    assert_eq!(at.len(), 2);

    let mut under = Keyring::with_limits(limits(|l| l.max_file_bytes = size - 1));
    let err = under.add_path(&file).unwrap_err();
    match &err {
        KeyringError::TooLarge {
            path,
            size: seen,
            limit,
        } => {
            assert_eq!(path, &file);
            assert_eq!(*seen, size);
            assert_eq!(*limit, size - 1);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("limit of {}", size - 1)), "{msg}");
    assert!(under.is_empty(), "nothing is loaded from a refused file");
}

#[cfg(unix)]
#[test]
fn a_file_that_reports_no_size_is_still_bounded() {
    // A FIFO's metadata says 0 bytes; the read itself must stop one byte past the limit
    // instead of trusting it.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.asc");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let key = std::fs::read(testkeys().join("ed25519.pub.asc")).unwrap();
    let limit = u64::try_from(key.len()).unwrap() - 1;
    let writer = {
        let fifo = fifo.clone();
        let key = key.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            // The reader stops early and closes the pipe: a write error is expected.
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let _ = f.write_all(&key);
        })
    };
    let mut k = Keyring::with_limits(limits(|l| l.max_file_bytes = limit));
    let err = k.add_path(&fifo).unwrap_err();
    writer.join().unwrap();
    match err {
        KeyringError::TooLarge { path, size, .. } => {
            assert_eq!(path, fifo);
            assert_eq!(size, limit + 1);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn certificate_count_at_the_limit_loads_one_more_is_refused_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let three = keyring_file(dir.path(), "three.asc", &["ed25519", "rsa2048", "rsa4096"]);
    let four = keyring_file(
        dir.path(),
        "four.asc",
        &["ed25519", "rsa2048", "rsa4096", "subkey"],
    );

    // Exactly at the limit, in one file.
    let mut k = Keyring::with_limits(limits(|l| l.max_certs = 3));
    assert_eq!(k.add_path(&three).unwrap(), 3);
    assert_eq!(k.len(), 3);
    // Copies of certificates it holds are merged and do not count.
    assert_eq!(k.add_path(&three).unwrap(), 3);
    assert_eq!(k.len(), 3);

    // One over, in one file.
    let mut k = Keyring::with_limits(limits(|l| l.max_certs = 3));
    let err = k.add_path(&four).unwrap_err();
    assert!(
        matches!(&err, KeyringError::TooManyCerts { origin, limit: 3 }
            if origin == &four.display().to_string()),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&four.display().to_string()), "{msg}");
    assert!(msg.contains("more than 3 certificates"), "{msg}");

    // One over across files: the error names the file that brought the extra one.
    let one = keyring_file(dir.path(), "one.asc", &["subkey"]);
    let mut k = Keyring::with_limits(limits(|l| l.max_certs = 3));
    k.add_path(&three).unwrap();
    let err = k.add_path(&one).unwrap_err();
    assert!(
        matches!(&err, KeyringError::TooManyCerts { origin, .. }
            if origin == &one.display().to_string()),
        "{err:?}"
    );
    assert_eq!(k.len(), 3);
}

#[test]
fn directory_file_count_at_the_limit_loads_one_more_is_refused_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    for k in ["ed25519", "rsa2048", "rsa4096"] {
        keyring_file(&ring, &format!("{k}.asc"), &[k]);
    }
    // Hidden files and subdirectories are not read, so they do not count.
    keyring_file(&ring, ".hidden.asc", &["subkey"]);
    std::fs::create_dir(ring.join("sub")).unwrap();

    let mut k = Keyring::with_limits(limits(|l| l.max_dir_files = 3));
    assert_eq!(k.add_path(&ring).unwrap(), 3);
    assert_eq!(k.len(), 3);

    keyring_file(&ring, "subkey.asc", &["subkey"]);
    let mut k = Keyring::with_limits(limits(|l| l.max_dir_files = 3));
    let err = k.add_path(&ring).unwrap_err();
    match &err {
        KeyringError::TooManyFiles { path, limit } => {
            assert_eq!(path, &ring);
            assert_eq!(*limit, 3);
        }
        other => panic!("expected TooManyFiles, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&ring.display().to_string()), "{msg}");
    assert!(k.is_empty(), "nothing is loaded from a refused directory");
}
