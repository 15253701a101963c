//! The OpenPGP KeyNote signature algorithm `sig-openpgp-base64:`, and signing credentials.
//!
//! A credential (an assertion whose Authorizer is `openpgp:<FINGERPRINT>`) carries
//! `Signature: "sig-openpgp-base64:<BASE64>"`, where `<BASE64>` is one binary OpenPGP
//! signature packet (type 0x00, what `gpg --detach-sign` writes) over the KeyNote signed
//! message of RFC 2704 §4.6.7: the assertion text from its first field up to, not including,
//! the `Signature` keyword, followed by the algorithm name as written (`sig-openpgp-base64:`).
//!
//! Verification ([`OpenPgpAlgorithm`]) plugs into keynote's [`Registry`] through the
//! [`SignatureAlgorithm`] trait, so the compliance checker is unchanged. It uses exactly the
//! verifier's rules for tag signatures ([`verifier::Verifier::check`]): the issuer's key must be
//! in the keyring, the signature must verify, the key must have been bound, alive, unrevoked and
//! signing-capable when the signature was made, and the algorithms must pass the verifier's
//! policy (sequoia's `StandardPolicy`) at the decision time. The good signer must be the
//! Authorizer itself (a subkey of the Authorizer's certificate counts as the Authorizer).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use keynote::Assertion;
use keynote::crypto::{Principal as KnPrincipal, Registry, SignatureAlgorithm, SignatureError};
use sequoia_openpgp as openpgp;
use verifier::{Keyring, SignatureReport, Status, Verifier};

use crate::limits::{MAX_OPENPGP_SIGNATURE_BYTES, MAX_SIGNATURE_CACHE};

/// The algorithm name, lower case, with its colon.
pub const OPENPGP_ALGORITHM: &str = "sig-openpgp-base64:";

/// (signer, signed message, signature text): what a cached verification result is for.
type CacheKey = (String, Vec<u8>, String);

/// Verifies `sig-openpgp-base64:` signatures against a keyring at a fixed decision time.
pub struct OpenPgpAlgorithm {
    keyring: Arc<Keyring>,
    time: SystemTime,
    /// Results by (signer, message, signature): see [`MAX_SIGNATURE_CACHE`].
    cache: Mutex<HashMap<CacheKey, Result<(), SignatureError>>>,
}

impl std::fmt::Debug for OpenPgpAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenPgpAlgorithm")
            .field("keyring", &self.keyring.len())
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl OpenPgpAlgorithm {
    /// An algorithm checking signatures with keys from `keyring`, as of `time`.
    pub fn new(keyring: Arc<Keyring>, time: SystemTime) -> OpenPgpAlgorithm {
        OpenPgpAlgorithm {
            keyring,
            time,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn verify_uncached(
        &self,
        signer: &KnPrincipal,
        message: &[u8],
        signature: &str,
    ) -> Result<(), SignatureError> {
        let alg = || OPENPGP_ALGORITHM.to_owned();
        let expected: verifier::Principal = match signer {
            KnPrincipal::Opaque(s) => s.parse().map_err(|_| SignatureError::AlgorithmMismatch {
                alg: alg(),
                key: "non-openpgp opaque",
            })?,
            KnPrincipal::Key(k) => {
                return Err(SignatureError::AlgorithmMismatch {
                    alg: alg(),
                    key: k.algorithm().name(),
                });
            }
        };
        if expected.as_str() != signer_text(signer) {
            // KeyNote compares opaque principals byte for byte: only the canonical spelling
            // names the key, or two spellings of one key would be two principals.
            return Err(SignatureError::UnusableKey {
                alg: alg(),
                reason: format!(
                    "the Authorizer must be written {expected} (canonical upper-case form)"
                ),
            });
        }
        let bytes = keynote::crypto::decode_base64(signature)
            .map_err(|source| SignatureError::Encoding { alg: alg(), source })?;
        if bytes.len() > MAX_OPENPGP_SIGNATURE_BYTES {
            return Err(SignatureError::Malformed {
                alg: alg(),
                reason: format!(
                    "{} bytes, more than the limit of {MAX_OPENPGP_SIGNATURE_BYTES}",
                    bytes.len()
                ),
            });
        }
        let sig =
            verifier::stack::parse_detached(&bytes).map_err(|e| SignatureError::Malformed {
                alg: alg(),
                reason: e.to_string(),
            })?;
        let base = SignatureReport {
            block: 1,
            index: 1,
            status: Status::Malformed,
            issuer: None,
            key: None,
            signer: None,
            created: None,
            hash: None,
            detail: None,
        };
        let report = Verifier::new(&self.keyring, self.time).check(&sig, message, None, base);
        let detail = || report.detail.clone().unwrap_or_default();
        match report.status {
            Status::Good if report.signer.as_ref() == Some(&expected) => Ok(()),
            Status::Good => Err(SignatureError::UnusableKey {
                alg: alg(),
                reason: format!(
                    "signed by {}, not by the Authorizer {expected}",
                    report
                        .signer
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string)
                ),
            }),
            Status::Bad => Err(SignatureError::BadSignature { alg: alg() }),
            Status::Malformed => Err(SignatureError::Malformed {
                alg: alg(),
                reason: detail(),
            }),
            status => Err(SignatureError::UnusableKey {
                alg: alg(),
                reason: format!("{status}: {}", detail()),
            }),
        }
    }
}

fn signer_text(p: &KnPrincipal) -> &str {
    match p {
        KnPrincipal::Opaque(s) => s,
        KnPrincipal::Key(_) => "",
    }
}

impl SignatureAlgorithm for OpenPgpAlgorithm {
    fn names(&self) -> &[&'static str] {
        &[OPENPGP_ALGORITHM]
    }

    fn verify(
        &self,
        _alg: &str,
        signer: &KnPrincipal,
        message: &[u8],
        signature: &str,
    ) -> Result<(), SignatureError> {
        let key = (
            signer_text(signer).to_owned(),
            message.to_vec(),
            signature.to_owned(),
        );
        if let Ok(cache) = self.cache.lock()
            && let Some(r) = cache.get(&key)
        {
            return r.clone();
        }
        let result = self.verify_uncached(signer, message, signature);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_SIGNATURE_CACHE {
                cache.clear();
            }
            cache.insert(key, result.clone());
        }
        result
    }
}

/// The registry gt uses: the RFC 2792 algorithms plus `sig-openpgp-base64:` with `keyring` at
/// `time`.
pub fn registry(keyring: Arc<Keyring>, time: SystemTime) -> Registry {
    let mut r = Registry::rfc2792();
    r.register(Arc::new(OpenPgpAlgorithm::new(keyring, time)));
    r
}

/// Why a credential could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The text is not one KeyNote assertion.
    #[error("not a KeyNote assertion: {0}")]
    Parse(#[from] keynote::ParseError),
    /// `Authorizer: "POLICY"` assertions are local trust roots and are never signed.
    #[error(
        "the assertion's Authorizer is POLICY: policy assertions are trusted because they are local, never signed"
    )]
    PolicyAssertion,
    /// The Authorizer is not an `openpgp:<FINGERPRINT>` principal.
    #[error("the Authorizer {0:?} is not an openpgp:<FINGERPRINT> principal")]
    Authorizer(String),
    /// The secret key does not belong to the Authorizer.
    #[error("the key {key} is not the Authorizer {authorizer}")]
    WrongKey {
        /// The key's principal.
        key: String,
        /// The Authorizer.
        authorizer: String,
    },
    /// No usable secret signing key in the certificate.
    #[error("{0}")]
    NoSigningKey(String),
    /// sequoia failed.
    #[error("signing failed: {0}")]
    Crypto(String),
    /// Running gpg failed.
    #[error("gpg: {0}")]
    Gpg(String),
    /// The new signature does not verify (wrong key chosen by gpg, expired key, ...).
    #[error("the new signature does not verify: {0}")]
    Verify(SignatureError),
}

/// An assertion ready to be signed: the text without any Signature field, and the bytes the
/// signature must cover.
#[derive(Debug, Clone)]
pub struct Unsigned {
    /// The assertion text up to the Signature keyword, ending with a newline.
    pub body: String,
    /// The Authorizer.
    pub authorizer: verifier::Principal,
}

impl Unsigned {
    /// Strip any Signature field from `text` and check that it can be signed.
    pub fn prepare(text: &str) -> Result<Unsigned, SignError> {
        let a = Assertion::parse(text)?;
        let authorizer = a.authorizer_without_action().unwrap_or_default();
        if authorizer == "POLICY" {
            return Err(SignError::PolicyAssertion);
        }
        let principal: verifier::Principal = authorizer
            .parse()
            .map_err(|_| SignError::Authorizer(authorizer.clone()))?;
        if principal.as_str() != authorizer {
            return Err(SignError::Authorizer(authorizer));
        }
        let mut body = String::from_utf8_lossy(a.signed_body()).into_owned();
        // A body without a Signature field runs to the end of the text: drop trailing blank
        // lines so the appended field stays part of the assertion.
        while body.ends_with("\n\n") {
            body.pop();
        }
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Ok(Unsigned {
            body,
            authorizer: principal,
        })
    }

    /// The bytes to sign: the body and the algorithm name (RFC 2704 §4.6.7).
    pub fn message(&self) -> Vec<u8> {
        let mut m = self.body.clone().into_bytes();
        m.extend_from_slice(OPENPGP_ALGORITHM.as_bytes());
        m
    }

    /// The signed assertion text, given the binary signature packet.
    pub fn attach(&self, signature_packet: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(signature_packet);
        format!("{}Signature: \"{OPENPGP_ALGORITHM}{b64}\"\n", self.body)
    }

    /// Check a signed text against `keyring` at `time`.
    pub fn check(
        &self,
        signed: &str,
        keyring: Arc<Keyring>,
        time: SystemTime,
    ) -> Result<(), SignError> {
        let a = Assertion::parse(signed)?;
        let sig = a.signature_value().unwrap_or_default();
        registry(keyring, time)
            .verify_assertion(
                &KnPrincipal::Opaque(self.authorizer.to_string()),
                a.signed_body(),
                sig,
            )
            .map_err(SignError::Verify)
    }
}

/// Sign a credential with a secret key from a certificate (unencrypted secret key material), at
/// `time`. The certificate must be the Authorizer's; its signing-capable key valid at `time`
/// (primary or subkey) signs, with SHA-512.
pub fn sign_with_cert(
    text: &str,
    cert: &openpgp::Cert,
    time: SystemTime,
) -> Result<String, SignError> {
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::serialize::MarshalInto;
    use openpgp::types::{HashAlgorithm, SignatureType};
    let unsigned = Unsigned::prepare(text)?;
    let key_principal = verifier::Principal::from_fingerprint(&cert.fingerprint());
    if key_principal != unsigned.authorizer {
        return Err(SignError::WrongKey {
            key: key_principal.to_string(),
            authorizer: unsigned.authorizer.to_string(),
        });
    }
    let policy = openpgp::policy::StandardPolicy::new();
    let ka = cert
        .keys()
        .with_policy(&policy, time)
        .alive()
        .revoked(false)
        .for_signing()
        .secret()
        .next()
        .ok_or_else(|| {
            SignError::NoSigningKey(format!(
                "{key_principal}: no unencrypted secret signing key valid at the signing time"
            ))
        })?;
    let mut pair = ka
        .key()
        .clone()
        .into_keypair()
        .map_err(|e| SignError::Crypto(format!("{e:#}")))?;
    let sig = SignatureBuilder::new(SignatureType::Binary)
        .set_signature_creation_time(time)
        .and_then(|b| {
            b.set_hash_algo(HashAlgorithm::SHA512)
                .sign_message(&mut pair, unsigned.message())
        })
        .map_err(|e| SignError::Crypto(format!("{e:#}")))?;
    let packet = openpgp::Packet::from(sig)
        .to_vec()
        .map_err(|e| SignError::Crypto(format!("{e:#}")))?;
    Ok(unsigned.attach(&packet))
}

/// Sign a credential with the user's GnuPG key: `gpg --detach-sign` over the signed message.
/// `local_user` defaults to the Authorizer's fingerprint, so gpg picks the right key (or its
/// signing subkey); `faked_time` makes gpg sign as of that time (`--faked-system-time`). The
/// result is checked against the Authorizer's certificate as exported by the same gpg, as of
/// the new signature's creation time.
pub fn sign_with_gpg(
    text: &str,
    gpg: &Path,
    local_user: Option<&str>,
    faked_time: Option<SystemTime>,
) -> Result<String, SignError> {
    let unsigned = Unsigned::prepare(text)?;
    let user = local_user
        .map(str::to_owned)
        .unwrap_or_else(|| unsigned.authorizer.fingerprint_hex().to_owned());
    let mut cmd = Command::new(gpg);
    if let Some(t) = faked_time {
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // gpg reads `@SECONDS`-less forms only: ISO "YYYYMMDDTHHMMSS" or seconds since the
        // epoch; the trailing `!` freezes its clock.
        cmd.arg(format!("--faked-system-time={secs}!"));
    }
    let mut child = cmd
        .args([
            "--batch",
            "--no-tty",
            "--yes",
            "--detach-sign",
            "--digest-algo",
            "SHA512",
        ])
        .args(["--local-user", &user, "--output", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SignError::Gpg(format!("cannot run {}: {e}", gpg.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&unsigned.message())
            .map_err(|e| SignError::Gpg(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| SignError::Gpg(e.to_string()))?;
    if !out.status.success() {
        return Err(SignError::Gpg(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    let signed = unsigned.attach(&out.stdout);
    let export = Command::new(gpg)
        .args([
            "--batch",
            "--no-tty",
            "--export",
            unsigned.authorizer.fingerprint_hex(),
        ])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| SignError::Gpg(format!("cannot run {}: {e}", gpg.display())))?;
    let mut keyring = Keyring::new();
    keyring
        .add_bytes(&export.stdout, "gpg --export")
        .map_err(|e| {
            SignError::Gpg(format!(
                "the Authorizer {} is not in gpg's keyring: {e}",
                unsigned.authorizer
            ))
        })?;
    let created = verifier::stack::parse_detached(&out.stdout)
        .ok()
        .and_then(|s| s.signature_creation_time())
        .ok_or_else(|| SignError::Gpg("gpg did not write one dated signature".to_owned()))?;
    unsigned.check(&signed, Arc::new(keyring), created)?;
    Ok(signed)
}

/// The key `gt policy sign` signs with.
#[derive(Debug)]
pub enum SigningKey<'a> {
    /// A certificate with unencrypted secret key material (signs credentials whose Authorizer
    /// is this certificate; others are left as they are).
    Cert(&'a openpgp::Cert),
    /// The user's GnuPG: `local_user` (default: each credential's Authorizer fingerprint).
    Gpg {
        /// The gpg program.
        program: &'a Path,
        /// `--local-user`; when given, only credentials whose Authorizer is that key are signed.
        local_user: Option<&'a str>,
        /// Make gpg sign as of this time (`--faked-system-time`) instead of its clock.
        faked_time: Option<SystemTime>,
    },
}

/// Why a policy file could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignFileError {
    /// An assertion could not be signed.
    #[error("{origin}: {error}")]
    Assertion {
        /// Which.
        origin: crate::Origin,
        /// Why.
        error: SignError,
    },
    /// The file does not load.
    #[error(transparent)]
    Load(#[from] crate::LoadError),
    /// No assertion in the file was the signing key's.
    #[error("no credential in {file} has the signing key as its Authorizer")]
    NothingSigned {
        /// The file.
        file: String,
    },
}

/// A signed policy file.
#[derive(Debug, Clone)]
pub struct SignedFile {
    /// The new text (everything outside the signed assertions unchanged).
    pub text: String,
    /// The assertions signed.
    pub signed: Vec<crate::Origin>,
    /// The assertions left alone, with why.
    pub skipped: Vec<(crate::Origin, String)>,
}

/// Sign every credential of a policy file that `key` can sign, replacing any old Signature.
/// A `POLICY` assertion anywhere in the file is an error: trust roots are never signed, and a
/// file meant for signing is a credential file.
pub fn sign_file(
    name: &str,
    text: &str,
    key: &SigningKey<'_>,
    time: SystemTime,
) -> Result<SignedFile, SignFileError> {
    // Parse everything first: a syntax error anywhere stops before anything is signed.
    crate::PolicyFile::parse(name, text)?;
    let mut out = String::with_capacity(text.len() + 1024);
    let mut signed = Vec::new();
    let mut skipped = Vec::new();
    let mut last = 0;
    for (line, range) in crate::file::assertion_spans(text) {
        let origin = crate::Origin {
            file: name.to_owned(),
            line,
        };
        let chunk = text.get(range.clone()).unwrap_or("");
        let err = |error| SignFileError::Assertion {
            origin: origin.clone(),
            error,
        };
        let unsigned = Unsigned::prepare(chunk).map_err(err)?;
        let mine = match key {
            SigningKey::Cert(c) => {
                verifier::Principal::from_fingerprint(&c.fingerprint()) == unsigned.authorizer
            }
            SigningKey::Gpg {
                local_user: Some(u),
                ..
            } => u
                .parse::<verifier::Principal>()
                .or_else(|_| format!("openpgp:{u}").parse())
                .map_or(true, |p| p == unsigned.authorizer),
            SigningKey::Gpg { .. } => true,
        };
        out.push_str(text.get(last..range.start).unwrap_or(""));
        if mine {
            let new = match key {
                SigningKey::Cert(c) => sign_with_cert(chunk, c, time),
                SigningKey::Gpg {
                    program,
                    local_user,
                    faked_time,
                } => sign_with_gpg(chunk, program, *local_user, *faked_time),
            }
            .map_err(err)?;
            // Keep the chunk's own line ending: the text after it starts with the blank line.
            let new = if chunk.ends_with('\n') {
                new
            } else {
                new.trim_end_matches('\n').to_owned()
            };
            out.push_str(&new);
            signed.push(origin);
        } else {
            out.push_str(chunk);
            skipped.push((
                origin,
                format!("Authorizer {} is not the signing key", unsigned.authorizer),
            ));
        }
        last = range.end;
    }
    out.push_str(text.get(last..).unwrap_or(""));
    if signed.is_empty() {
        return Err(SignFileError::NothingSigned {
            file: name.to_owned(),
        });
    }
    Ok(SignedFile {
        text: out,
        signed,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_cache_stays_within_its_limit() {
        let alg = OpenPgpAlgorithm::new(Arc::new(Keyring::new()), std::time::UNIX_EPOCH);
        let signer = KnPrincipal::Opaque(format!("openpgp:{}", "A".repeat(40)));
        for i in 0..=MAX_SIGNATURE_CACHE {
            // Not base64: refused before any cryptography, and each one a new cache key.
            let r = alg.verify(OPENPGP_ALGORITHM, &signer, b"m", &format!("!{i}"));
            assert!(matches!(r, Err(SignatureError::Encoding { .. })));
        }
        let len = alg.cache.lock().map(|c| c.len()).unwrap_or(usize::MAX);
        assert!(len <= MAX_SIGNATURE_CACHE, "{len}");
        // A remembered answer is the same answer.
        let again = alg.verify(OPENPGP_ALGORITHM, &signer, b"m", "!0");
        assert!(matches!(again, Err(SignatureError::Encoding { .. })));
    }

    #[test]
    fn non_openpgp_authorizers_cannot_use_the_algorithm() {
        let alg = OpenPgpAlgorithm::new(Arc::new(Keyring::new()), std::time::UNIX_EPOCH);
        let r = alg.verify(
            OPENPGP_ALGORITHM,
            &KnPrincipal::Opaque("alice".into()),
            b"m",
            "AAAA",
        );
        assert!(matches!(r, Err(SignatureError::AlgorithmMismatch { .. })));
        assert!(matches!(
            Unsigned::prepare("Authorizer: \"alice\"\n"),
            Err(SignError::Authorizer(_))
        ));
    }
}
