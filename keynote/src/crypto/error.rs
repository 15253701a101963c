//! The typed errors of `keynote::crypto`: one enum for key decoding, one for signatures, one
//! for key generation.

use super::encoding::DecodeError;
use thiserror::Error;

/// Why a key string could not be decoded (reference `kn_decode_key` failing).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The encoded key is longer than [`super::MAX_ENCODED_KEY_LEN`].
    #[error("{prefix} key is {len} characters long; the limit is {limit}")]
    TooLong {
        /// The key's prefix as written (e.g. `rsa-hex:`).
        prefix: String,
        /// Length of the text after the prefix.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The hex or base64 text after the prefix does not decode.
    #[error("{prefix} key: {source}")]
    Encoding {
        /// The key's prefix as written.
        prefix: String,
        /// What was wrong with the text.
        source: DecodeError,
    },
    /// The decoded bytes are not the DER structure the prefix promises.
    #[error("{prefix} key: malformed DER {what}: {reason}")]
    Der {
        /// The key's prefix as written.
        prefix: String,
        /// The structure expected, e.g. "PKCS#1 RSAPublicKey SEQUENCE{n, e}".
        what: &'static str,
        /// What the DER decoder reported (includes the byte position).
        reason: String,
    },
    /// An X.509 key whose SubjectPublicKeyInfo names an algorithm other than RSA or DSA.
    #[error("{prefix} key: unsupported SubjectPublicKeyInfo algorithm {oid}")]
    UnsupportedX509Algorithm {
        /// The key's prefix as written.
        prefix: String,
        /// The algorithm OID found.
        oid: String,
    },
    /// A private key string that does not start with `private-` and a DSA or RSA key prefix.
    #[error(
        "not a KeyNote private key (expected private-rsa-hex:, private-dsa-base64:, ...): {found:?}"
    )]
    NotPrivateKey {
        /// The first characters of the string.
        found: String,
    },
    /// A private key of a kind the reference cannot sign with (`private-binary-...`,
    /// `private-x509-...`).
    #[error("{prefix} private keys cannot sign")]
    UnsupportedPrivateKey {
        /// The prefix as written.
        prefix: String,
    },
    /// The decoded numbers do not form a valid key (the RSA or DSA library rejected them).
    #[error("{prefix} key: invalid key: {reason}")]
    InvalidKey {
        /// The prefix as written.
        prefix: String,
        /// Why the key was rejected.
        reason: String,
    },
}

/// Why a signature did not verify, or could not be made.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature value names no registered algorithm (or has no colon at all).
    #[error("unknown signature algorithm {name:?}")]
    UnknownAlgorithm {
        /// The algorithm name as written (up to its colon), or the start of the value.
        name: String,
    },
    /// The algorithm does not fit the signer's key type (RFC 2792 §3: an RSA algorithm needs
    /// an RSA key, a DSA algorithm a DSA key; opaque principals cannot sign).
    #[error("signature algorithm {alg} cannot be used with a {key} authorizer")]
    AlgorithmMismatch {
        /// The algorithm (lower case, with colon).
        alg: String,
        /// The key type found: "rsa", "dsa", "x509", "binary", "opaque" or "rsa private".
        key: &'static str,
    },
    /// The signature text after the algorithm name is not valid hex/base64. The reference
    /// reports this as a syntax error rather than as a failed signature.
    #[error("{alg} signature: {source}")]
    Encoding {
        /// The algorithm (lower case, with colon).
        alg: String,
        /// What was wrong with the text.
        source: DecodeError,
    },
    /// The base64 signature decodes to fewer than two bytes (the reference rejects this as an
    /// error of unknown kind before trying to verify).
    #[error("{alg} signature decodes to only {len} byte(s)")]
    TooShort {
        /// The algorithm (lower case, with colon).
        alg: String,
        /// Decoded length.
        len: usize,
    },
    /// The decoded signature is not the expected structure (DSA: DER SEQUENCE{r, s} with
    /// 0 < r, s < q; RSA: at most as long as the modulus).
    #[error("{alg} signature is malformed: {reason}")]
    Malformed {
        /// The algorithm (lower case, with colon).
        alg: String,
        /// What is wrong.
        reason: String,
    },
    /// The signer's key cannot be used (too large, or its numbers are invalid).
    #[error("{alg}: the signer's key is unusable: {reason}")]
    UnusableKey {
        /// The algorithm (lower case, with colon).
        alg: String,
        /// Why.
        reason: String,
    },
    /// The signature is well-formed but wrong: the signed text, the signature or the key
    /// differ from what was signed.
    #[error("{alg} signature does not verify")]
    BadSignature {
        /// The algorithm (lower case, with colon).
        alg: String,
    },
    /// Signing: the algorithm name does not end with a colon.
    #[error("signature algorithm {alg:?} must end with a colon")]
    MissingColon {
        /// The name as given.
        alg: String,
    },
    /// Signing: the private key did not decode.
    #[error("private key: {0}")]
    PrivateKey(#[from] KeyError),
    /// Signing failed inside the RSA/DSA library.
    #[error("{alg}: signing failed: {reason}")]
    SigningFailed {
        /// The algorithm (lower case, with colon).
        alg: String,
        /// What the library reported.
        reason: String,
    },
}

impl SignatureError {
    /// True when the reference would report this as an error while parsing the assertion
    /// (`keynote sigver` prints "Syntax error while parsing assertion N.") rather than as a
    /// signature that did not verify: bad hex/base64 text of the signature.
    pub fn is_syntax_error(&self) -> bool {
        matches!(self, SignatureError::Encoding { .. })
    }
}

/// Why a key pair could not be generated.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyGenError {
    /// The algorithm name is not `rsa-hex:`, `rsa-base64:`, `dsa-hex:` or `dsa-base64:`.
    #[error("Unknown/unsupported algorithm [{name}]")]
    UnsupportedAlgorithm {
        /// The name as given.
        name: String,
    },
    /// A key size the generator does not support.
    #[error("unsupported {alg} key size {bits} (supported: {supported})")]
    UnsupportedSize {
        /// "RSA" or "DSA".
        alg: &'static str,
        /// Requested size in bits.
        bits: usize,
        /// The supported sizes, for the message.
        supported: &'static str,
    },
    /// The RSA/DSA library failed.
    #[error("key generation failed: {reason}")]
    Failed {
        /// What the library reported.
        reason: String,
    },
}
