//! RFC 2792 keys and signatures for KeyNote: decoding principals, verifying and making
//! signatures, generating keys — exactly as the reference implementation (KeyNote 2.3) does.
//!
//! (Skeleton: the public API is fixed; bodies are being filled in.)

use std::sync::Arc;
use thiserror::Error;

/// Why a key string could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not implemented yet (skeleton).
    #[error("key decoding not implemented yet")]
    Unimplemented,
}

/// Why a signature could not be verified or made.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not implemented yet (skeleton).
    #[error("signatures not implemented yet")]
    Unimplemented,
}

/// A decoded public key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// Opaque binary key (`binary-hex:` / `binary-base64:`).
    Binary(Vec<u8>),
}

/// A principal as KeyNote compares it (RFC 2704 §4.6.x, reference `kn_decode_key`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A decoded key.
    Key(PublicKey),
    /// Any other string, compared byte for byte.
    Opaque(String),
}

impl Principal {
    /// Decode a principal string.
    pub fn parse(s: &str) -> Result<Principal, KeyError> {
        Ok(Principal::Opaque(s.to_owned()))
    }
}

/// One family of signature algorithms.
pub trait SignatureAlgorithm: Send + Sync {
    /// Lower-case algorithm names this handles, each with its trailing colon.
    fn names(&self) -> &[&'static str];
    /// Verify `signature` (the text after "<alg>:") made by `signer` over `message`.
    fn verify(
        &self,
        alg: &str,
        signer: &Principal,
        message: &[u8],
        signature: &str,
    ) -> Result<(), SignatureError>;
}

/// The registry of signature algorithms; `Default` = the RFC 2792 set.
#[derive(Clone, Default)]
pub struct Registry {
    algorithms: Vec<Arc<dyn SignatureAlgorithm>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("algorithms", &self.algorithms.len())
            .finish()
    }
}

impl Registry {
    /// The RFC 2792 algorithms.
    pub fn rfc2792() -> Self {
        Registry::default()
    }
    /// Add an algorithm.
    pub fn register(&mut self, alg: Arc<dyn SignatureAlgorithm>) {
        self.algorithms.push(alg);
    }
    /// Verify an assertion's Signature field.
    pub fn verify_assertion(
        &self,
        authorizer: &Principal,
        body: &[u8],
        signature_value: &str,
    ) -> Result<(), SignatureError> {
        let _ = (authorizer, body, signature_value);
        Err(SignatureError::Unimplemented)
    }
}

/// Signing: returns the full signature value "<alg>:<encoded>".
pub fn sign_assertion(alg: &str, private_key: &str, body: &[u8]) -> Result<String, SignatureError> {
    let _ = (alg, private_key, body);
    Err(SignatureError::Unimplemented)
}
