//! The set of OpenPGP certificates that signatures are checked against.
//!
//! Sources: armored or binary keyring files (many certificates per file, e.g. a distribution
//! keyring), directories of such files, and the user's GnuPG public keyring through
//! `gpg --export` (GnuPG 2.1+ keeps it in a keybox, `pubring.kbx`, which sequoia does not read).
//!
//! Loading is cheap on purpose: certificates are only *split* and indexed by the fingerprint and
//! key id of every key (sequoia's `RawCertParser`); the full parse and the self-signature checks
//! happen the first time a signature names one of the certificate's keys. A certificate that
//! appears several times (in two files, or twice in one) is merged (`Cert::merge_public`), so
//! newer self-signatures and revocations from any source are seen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sequoia_openpgp as openpgp;

use openpgp::cert::raw::RawCertParser;
use openpgp::parse::Parse;
use openpgp::serialize::Marshal;
use openpgp::{Cert, Fingerprint, KeyHandle, KeyID};

use crate::limits::{MAX_KEYRING_BYTES, MAX_KEYRING_CERTS, MAX_KEYRING_DIR_FILES};

/// Why a keyring source could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The file or directory could not be read.
    #[error("cannot read keyring {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`KeyringLimits::max_file_bytes`] ([`MAX_KEYRING_BYTES`] by
    /// default).
    #[error("keyring {path} is larger than the limit of {limit} bytes ({size} bytes seen)")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size, or — for a file that grew while read, or a device — the bytes read before
        /// giving up (one more than the limit).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More distinct certificates than [`KeyringLimits::max_certs`] ([`MAX_KEYRING_CERTS`] by
    /// default) in total; `origin` is the source that brought one too many.
    #[error("{origin}: more than {limit} certificates in the keyring")]
    TooManyCerts {
        /// Where the certificate over the limit came from.
        origin: String,
        /// The limit.
        limit: usize,
    },
    /// A directory with more files than [`KeyringLimits::max_dir_files`]
    /// ([`MAX_KEYRING_DIR_FILES`] by default).
    #[error("keyring directory {path} has more than {limit} files")]
    TooManyFiles {
        /// The directory.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// The source holds no certificate at all (it is not an OpenPGP keyring).
    #[error("{origin}: no OpenPGP certificate found{}", first_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    NoCerts {
        /// The file, or `gpg --export`.
        origin: String,
        /// The first parse error met, if any.
        first_error: Option<String>,
    },
    /// `gpg` could not be run, or failed.
    #[error("gpg --export failed: {reason}")]
    Gpg {
        /// What went wrong (spawn error or gpg's stderr).
        reason: String,
    },
}

/// The size limits a [`Keyring`] enforces while loading.
///
/// [`Default`] gives the crate's limits ([`MAX_KEYRING_BYTES`], [`MAX_KEYRING_CERTS`],
/// [`MAX_KEYRING_DIR_FILES`], where each value's reason is given); [`Keyring::with_limits`]
/// takes others (smaller ones for a constrained caller, or for tests at the boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyringLimits {
    /// Largest keyring file read, in bytes; a larger file is refused before it is read.
    pub max_file_bytes: u64,
    /// Most distinct certificates (by primary key) the keyring holds; copies of a certificate
    /// it already holds are merged and do not count.
    pub max_certs: usize,
    /// Most regular, non-hidden files read from one keyring directory.
    pub max_dir_files: usize,
}

impl Default for KeyringLimits {
    fn default() -> KeyringLimits {
        KeyringLimits {
            max_file_bytes: MAX_KEYRING_BYTES,
            max_certs: MAX_KEYRING_CERTS,
            max_dir_files: MAX_KEYRING_DIR_FILES,
        }
    }
}

/// One distinct certificate (by primary fingerprint), possibly from several sources.
struct Entry {
    /// The serialized copies seen, in load order.
    copies: Vec<Vec<u8>>,
    /// The merged, fully parsed certificate, made on first use.
    cert: OnceLock<Result<Cert, String>>,
}

impl Entry {
    fn cert(&self) -> Result<&Cert, &str> {
        self.cert
            .get_or_init(|| {
                let mut merged: Option<Cert> = None;
                for copy in &self.copies {
                    let c = Cert::from_bytes(copy).map_err(|e| format!("{e:#}"))?;
                    merged = Some(match merged {
                        None => c,
                        Some(m) => m.merge_public(c).map_err(|e| format!("{e:#}"))?,
                    });
                }
                merged.ok_or_else(|| "empty entry".to_owned())
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// A set of OpenPGP certificates, indexed by every key's fingerprint and key id.
#[derive(Default)]
pub struct Keyring {
    entries: Vec<Entry>,
    by_primary: HashMap<Fingerprint, usize>,
    by_fingerprint: HashMap<Fingerprint, Vec<usize>>,
    by_keyid: HashMap<KeyID, Vec<usize>>,
    warnings: Vec<String>,
    limits: KeyringLimits,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("certs", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// An empty keyring with the default [`KeyringLimits`].
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// An empty keyring that enforces `limits` instead of the defaults.
    pub fn with_limits(limits: KeyringLimits) -> Keyring {
        Keyring {
            limits,
            ..Keyring::default()
        }
    }

    /// The limits this keyring enforces.
    pub fn limits(&self) -> KeyringLimits {
        self.limits
    }

    /// Number of distinct certificates (by primary key fingerprint).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the keyring holds no certificate.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Certificates that were skipped while loading, and why (a keyring with one broken
    /// certificate still loads the others).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Add every certificate in `bytes` (armored or binary, any number of certificates).
    /// `origin` names the source in errors. Returns how many certificates were read.
    pub fn add_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<usize, KeyringError> {
        let mut count = 0;
        let mut first_error = None;
        let parser = match RawCertParser::from_bytes(bytes) {
            Ok(p) => p,
            Err(e) => {
                return Err(KeyringError::NoCerts {
                    origin: origin.to_owned(),
                    first_error: Some(format!("{e:#}")),
                });
            }
        };
        for raw in parser {
            let raw = match raw {
                Ok(r) => r,
                Err(e) => {
                    let msg = format!("{origin}: skipped a certificate: {e:#}");
                    first_error.get_or_insert_with(|| format!("{e:#}"));
                    self.warnings.push(msg);
                    continue;
                }
            };
            let primary = raw.fingerprint();
            let mut copy = Vec::new();
            if let Err(e) = raw.serialize(&mut copy) {
                self.warnings
                    .push(format!("{origin}: skipped certificate {primary}: {e:#}"));
                continue;
            }
            count += 1;
            if let Some(&i) = self.by_primary.get(&primary) {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.copies.push(copy);
                    entry.cert = OnceLock::new();
                }
                // Index keys a later copy may add (a new subkey).
                let keys: Vec<Fingerprint> = raw.keys().map(|k| k.fingerprint()).collect();
                self.index(i, keys);
                continue;
            }
            if self.entries.len() >= self.limits.max_certs {
                return Err(KeyringError::TooManyCerts {
                    origin: origin.to_owned(),
                    limit: self.limits.max_certs,
                });
            }
            let i = self.entries.len();
            self.entries.push(Entry {
                copies: vec![copy],
                cert: OnceLock::new(),
            });
            self.by_primary.insert(primary, i);
            let keys: Vec<Fingerprint> = raw.keys().map(|k| k.fingerprint()).collect();
            self.index(i, keys);
        }
        if count == 0 {
            return Err(KeyringError::NoCerts {
                origin: origin.to_owned(),
                first_error,
            });
        }
        Ok(count)
    }

    fn index(&mut self, entry: usize, keys: Vec<Fingerprint>) {
        for fpr in keys {
            let ids = self.by_keyid.entry(KeyID::from(&fpr)).or_default();
            if !ids.contains(&entry) {
                ids.push(entry);
            }
            let fs = self.by_fingerprint.entry(fpr).or_default();
            if !fs.contains(&entry) {
                fs.push(entry);
            }
        }
    }

    /// Add a keyring file, or every regular file in a directory (not recursive, sorted by name,
    /// hidden files skipped). Returns how many certificates were read.
    pub fn add_path(&mut self, path: &Path) -> Result<usize, KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_dir() {
            return self.add_file(path);
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let p = entry.path();
            if std::fs::metadata(&p).map(|m| m.is_file()).unwrap_or(false) {
                if files.len() >= self.limits.max_dir_files {
                    return Err(KeyringError::TooManyFiles {
                        path: path.to_owned(),
                        limit: self.limits.max_dir_files,
                    });
                }
                files.push(p);
            }
        }
        files.sort();
        let mut total = 0;
        for f in files {
            match self.add_file(&f) {
                Ok(n) => total += n,
                // A directory may hold a README or other non-key files: note and go on.
                Err(KeyringError::NoCerts {
                    origin,
                    first_error,
                }) => self.warnings.push(format!(
                    "{origin}: not a keyring, skipped{}",
                    first_error.map(|e| format!(" ({e})")).unwrap_or_default()
                )),
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Add one keyring file.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.to_owned(),
            source,
        };
        let limit = self.limits.max_file_bytes;
        let too_large = |size| KeyringError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > limit {
            return Err(too_large(size));
        }
        // Read at most one byte past the limit: the size above can be stale (a growing file)
        // or meaningless (a device or FIFO reports 0).
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut file, limit.saturating_add(1)),
            &mut bytes,
        )
        .map_err(io)?;
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if read > limit {
            return Err(too_large(read));
        }
        self.add_bytes(&bytes, &path.display().to_string())
    }

    /// Add the public keys of the user's GnuPG keyring, by running `gpg --batch --export`.
    ///
    /// `gpg` is the program to run (`gpg` on `PATH` if `None`); `GNUPGHOME` is honoured as gpg
    /// itself honours it. An empty GnuPG keyring is an error ([`KeyringError::NoCerts`]).
    pub fn add_gpg(&mut self, gpg: Option<&Path>) -> Result<usize, KeyringError> {
        let program = gpg.map_or_else(|| PathBuf::from("gpg"), Path::to_owned);
        let out = Command::new(&program)
            .args(["--batch", "--no-tty", "--export"])
            .output()
            .map_err(|e| KeyringError::Gpg {
                reason: format!("cannot run {}: {e}", program.display()),
            })?;
        if !out.status.success() {
            return Err(KeyringError::Gpg {
                reason: format!(
                    "{} exited with {}: {}",
                    program.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        self.add_bytes(&out.stdout, "gpg --export")
    }

    /// Every certificate holding a key that `handle` names (a fingerprint or a key id), fully
    /// parsed and merged. Certificates that fail to parse are left out.
    pub fn lookup(&self, handle: &KeyHandle) -> Vec<&Cert> {
        let idx: &[usize] = match handle {
            KeyHandle::Fingerprint(f) => self.by_fingerprint.get(f).map_or(&[], Vec::as_slice),
            KeyHandle::KeyID(k) => self.by_keyid.get(k).map_or(&[], Vec::as_slice),
        };
        idx.iter()
            .filter_map(|&i| self.entries.get(i))
            .filter_map(|e| e.cert().ok())
            .collect()
    }

    /// The certificate with this primary key fingerprint.
    pub fn get(&self, primary: &Fingerprint) -> Option<&Cert> {
        let &i = self.by_primary.get(primary)?;
        self.entries.get(i)?.cert().ok()
    }

    /// All certificates, fully parsed (this parses every certificate: slow for big keyrings).
    pub fn certs(&self) -> impl Iterator<Item = &Cert> {
        self.entries.iter().filter_map(|e| e.cert().ok())
    }
}
