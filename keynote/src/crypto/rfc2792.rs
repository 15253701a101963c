//! The six RFC 2792 signature algorithms (`sig-{rsa,dsa}-{sha1,md5}-{hex,base64}:`) as the
//! reference computes them: RSA = PKCS#1 v1.5 block type 1 over a DER OCTET STRING holding
//! the hash (OpenSSL `RSA_sign_ASN1_OCTET_STRING`, *not* a DigestInfo); DSA = DER
//! SEQUENCE{r, s} over the SHA-1 hash.

use super::encoding::TextEncoding;
use super::error::SignatureError;
use super::key::{KeyAlgorithm, PrivateKey, PublicKey, X509Key};
use super::{Principal, SignatureAlgorithm};
use der::{Decode, Encode};
use md5::Md5;
use rsa::Pkcs1v15Sign;
use sha1::{Digest, Sha1};
use signature::hazmat::PrehashVerifier;

/// The hash an RFC 2792 algorithm applies to the signed text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (20 bytes). Collision-weak; required by RFC 2792.
    Sha1,
    /// MD5 (16 bytes). Broken; required by RFC 2792 and the reference.
    Md5,
}

impl HashAlgorithm {
    /// Hash `message`.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha1 => Sha1::digest(message).to_vec(),
            HashAlgorithm::Md5 => Md5::digest(message).to_vec(),
        }
    }
}

/// One RFC 2792 signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rfc2792Algorithm {
    /// Lower-case name with its colon, e.g. `sig-rsa-sha1-hex:`.
    pub name: &'static str,
    /// The key type it needs (`Rsa` or `Dsa`).
    pub key: KeyAlgorithm,
    /// The hash over the signed text.
    pub hash: HashAlgorithm,
    /// How the signature bytes are written.
    pub encoding: TextEncoding,
}

/// The RFC 2792 algorithms, in the reference's order (`keynote_get_sig_algorithm`).
///
/// `sig-x509-sha1-*` (an RSA DigestInfo variant of the reference for `x509-` keys with PEM
/// private keys) is not implemented: RFC 2792 does not define it and nothing in the corpus
/// uses it. `x509-` keys holding RSA keys verify `sig-rsa-*` signatures, as in the reference.
pub const RFC2792_ALGORITHMS: [Rfc2792Algorithm; 6] = [
    alg(
        "sig-dsa-sha1-hex:",
        KeyAlgorithm::Dsa,
        HashAlgorithm::Sha1,
        TextEncoding::Hex,
    ),
    alg(
        "sig-dsa-sha1-base64:",
        KeyAlgorithm::Dsa,
        HashAlgorithm::Sha1,
        TextEncoding::Base64,
    ),
    alg(
        "sig-rsa-md5-hex:",
        KeyAlgorithm::Rsa,
        HashAlgorithm::Md5,
        TextEncoding::Hex,
    ),
    alg(
        "sig-rsa-sha1-hex:",
        KeyAlgorithm::Rsa,
        HashAlgorithm::Sha1,
        TextEncoding::Hex,
    ),
    alg(
        "sig-rsa-md5-base64:",
        KeyAlgorithm::Rsa,
        HashAlgorithm::Md5,
        TextEncoding::Base64,
    ),
    alg(
        "sig-rsa-sha1-base64:",
        KeyAlgorithm::Rsa,
        HashAlgorithm::Sha1,
        TextEncoding::Base64,
    ),
];

const fn alg(
    name: &'static str,
    key: KeyAlgorithm,
    hash: HashAlgorithm,
    encoding: TextEncoding,
) -> Rfc2792Algorithm {
    Rfc2792Algorithm {
        name,
        key,
        hash,
        encoding,
    }
}

const NAMES: [&str; 6] = [
    RFC2792_ALGORITHMS[0].name,
    RFC2792_ALGORITHMS[1].name,
    RFC2792_ALGORITHMS[2].name,
    RFC2792_ALGORITHMS[3].name,
    RFC2792_ALGORITHMS[4].name,
    RFC2792_ALGORITHMS[5].name,
];

/// Signer's key kind, for error messages.
fn key_kind(signer: &Principal) -> &'static str {
    match signer {
        Principal::Opaque(_) => "opaque",
        Principal::Key(PublicKey::Rsa(_)) => "rsa",
        Principal::Key(PublicKey::Dsa(_)) => "dsa",
        Principal::Key(PublicKey::X509(_)) => "x509",
        Principal::Key(PublicKey::Binary(_)) => "binary",
    }
}

/// DER OCTET STRING holding `hash` (at most 20 bytes here, so the short length form).
fn octet_string(hash: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hash.len() + 2);
    out.push(0x04);
    out.push(u8::try_from(hash.len()).unwrap_or(0));
    out.extend_from_slice(hash);
    out
}

impl Rfc2792Algorithm {
    /// The algorithm called `name` (with its colon, any case), if any.
    pub fn by_name(name: &str) -> Option<Rfc2792Algorithm> {
        RFC2792_ALGORITHMS
            .iter()
            .copied()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Check the signer's key type as the reference does: RSA algorithms take `rsa-` keys and
    /// `x509-` keys holding RSA keys; DSA algorithms take `dsa-` keys.
    fn signer_key<'k>(&self, signer: &'k Principal) -> Result<SignerKey<'k>, SignatureError> {
        match (self.key, signer) {
            (KeyAlgorithm::Rsa, Principal::Key(PublicKey::Rsa(k)))
            | (KeyAlgorithm::Rsa, Principal::Key(PublicKey::X509(X509Key::Rsa(k)))) => {
                Ok(SignerKey::Rsa(k))
            }
            (KeyAlgorithm::Dsa, Principal::Key(PublicKey::Dsa(k))) => Ok(SignerKey::Dsa(k)),
            _ => Err(SignatureError::AlgorithmMismatch {
                alg: self.name.to_owned(),
                key: key_kind(signer),
            }),
        }
    }

    /// Decode the signature text the way the reference does before verifying.
    fn decode_signature(&self, text: &str) -> Result<Vec<u8>, SignatureError> {
        let bytes = self
            .encoding
            .decode(text)
            .map_err(|source| SignatureError::Encoding {
                alg: self.name.to_owned(),
                source,
            })?;
        // keynote_sigverify_assertion rejects base64 signatures of 0 or 1 bytes up front.
        if self.encoding == TextEncoding::Base64 && bytes.len() < 2 {
            return Err(SignatureError::TooShort {
                alg: self.name.to_owned(),
                len: bytes.len(),
            });
        }
        Ok(bytes)
    }

    /// Verify `signature` (the encoded text after the algorithm's colon, with no whitespace
    /// other than what base64 tolerates) by `signer` over `message` (the complete signed
    /// bytes: assertion body followed by the algorithm name and colon).
    pub fn verify_message(
        &self,
        signer: &Principal,
        message: &[u8],
        signature: &str,
    ) -> Result<(), SignatureError> {
        self.verify_message_with(signer, message, signature, Backend::Fast)
    }

    /// [`Self::verify_message`] with a chosen implementation of the public-key operation
    /// (for differential tests and benchmarks).
    #[doc(hidden)]
    pub fn verify_message_with(
        &self,
        signer: &Principal,
        message: &[u8],
        signature: &str,
        backend: Backend,
    ) -> Result<(), SignatureError> {
        let key = self.signer_key(signer)?;
        let hash = self.hash.digest(message);
        let sig = self.decode_signature(signature)?;
        let bad = || SignatureError::BadSignature {
            alg: self.name.to_owned(),
        };
        let unusable = |reason: String| SignatureError::UnusableKey {
            alg: self.name.to_owned(),
            reason,
        };
        match key {
            SignerKey::Rsa(k) => {
                let size = k.size();
                if sig.len() > size {
                    return Err(SignatureError::Malformed {
                        alg: self.name.to_owned(),
                        reason: format!("{} bytes, longer than the {size}-byte modulus", sig.len()),
                    });
                }
                // OpenSSL accepts a signature with its leading zero bytes dropped (it works on
                // the number); PKCS#1 wants exactly the modulus length.
                let mut padded = vec![0u8; size - sig.len()];
                padded.extend_from_slice(&sig);
                let t = octet_string(&hash);
                match backend {
                    Backend::Fast => {
                        // RFC 8017 §8.2.2: recompute the encoded message and compare.
                        let em = k
                            .public_op(&padded, size)
                            .map_err(unusable)?
                            .ok_or_else(bad)?;
                        let expected = emsa_pkcs1_v15(&t, size).ok_or_else(bad)?;
                        if em == expected { Ok(()) } else { Err(bad()) }
                    }
                    Backend::Crates => {
                        let key = k.crate_key().map_err(unusable)?;
                        key.verify(Pkcs1v15Sign::new_unprefixed(), &t, &padded)
                            .map_err(|_| bad())
                    }
                }
            }
            SignerKey::Dsa(k) => {
                let sig =
                    dsa::Signature::from_der(&sig).map_err(|e| SignatureError::Malformed {
                        alg: self.name.to_owned(),
                        reason: format!("not a DER SEQUENCE{{r, s}} with r, s > 0: {e}"),
                    })?;
                let ok = match backend {
                    Backend::Fast => k.verify(&hash, &sig).map_err(unusable)?,
                    Backend::Crates => k
                        .crate_key()
                        .map_err(unusable)?
                        .verify_prehash(&hash, &sig)
                        .is_ok(),
                };
                if ok { Ok(()) } else { Err(bad()) }
            }
        }
    }

    /// Sign `message` (body followed by the algorithm name) with `key`; returns the encoded
    /// signature text that follows the algorithm name. RSA signatures are deterministic;
    /// DSA signatures use RFC 6979 deterministic nonces (the reference draws random ones;
    /// both verify the same way).
    pub fn sign_message(&self, key: &PrivateKey, message: &[u8]) -> Result<String, SignatureError> {
        let failed = |reason: String| SignatureError::SigningFailed {
            alg: self.name.to_owned(),
            reason,
        };
        let hash = self.hash.digest(message);
        let bytes = match (self.key, key) {
            (KeyAlgorithm::Rsa, PrivateKey::Rsa(k)) => k
                .sign_with_rng(
                    &mut rand::rngs::OsRng,
                    Pkcs1v15Sign::new_unprefixed(),
                    &octet_string(&hash),
                )
                .map_err(|e| failed(e.to_string()))?,
            (KeyAlgorithm::Dsa, PrivateKey::Dsa(k)) => k
                .sign_prehashed_rfc6979::<Sha1>(&hash)
                .map_err(|e| failed(e.to_string()))?
                .to_der()
                .map_err(|e| failed(e.to_string()))?,
            (_, key) => {
                return Err(SignatureError::AlgorithmMismatch {
                    alg: self.name.to_owned(),
                    key: match key {
                        PrivateKey::Rsa(_) => "rsa private",
                        PrivateKey::Dsa(_) => "dsa private",
                    },
                });
            }
        };
        Ok(self.encoding.encode(&bytes))
    }
}

/// Which implementation performs the public-key operation of a verification.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// crypto-bigint with per-key precomputation (fast.rs); the default.
    Fast,
    /// The `rsa` and `dsa` crates' own verification.
    Crates,
}

/// EMSA-PKCS1-v1_5 encoding (RFC 8017 §9.2 steps 3-5) of `t` for a `k`-byte modulus:
/// `00 01 FF..FF 00 t`, at least eight FF bytes.
fn emsa_pkcs1_v15(t: &[u8], k: usize) -> Option<Vec<u8>> {
    let ps = k.checked_sub(t.len() + 3).filter(|ps| *ps >= 8)?;
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(2 + ps, 0xff);
    em.push(0x00);
    em.extend_from_slice(t);
    Some(em)
}

enum SignerKey<'k> {
    Rsa(&'k super::key::RsaPublicKey),
    Dsa(&'k super::key::DsaPublicKey),
}

/// The RFC 2792 algorithm family as a [`SignatureAlgorithm`] for the [`super::Registry`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Rfc2792;

impl SignatureAlgorithm for Rfc2792 {
    fn names(&self) -> &[&'static str] {
        &NAMES
    }

    fn verify(
        &self,
        alg: &str,
        signer: &Principal,
        message: &[u8],
        signature: &str,
    ) -> Result<(), SignatureError> {
        let algorithm =
            Rfc2792Algorithm::by_name(alg).ok_or_else(|| SignatureError::UnknownAlgorithm {
                name: alg.to_owned(),
            })?;
        algorithm.verify_message(signer, message, signature)
    }
}

/// Make the full Signature value (`<alg><encoded>`) for an assertion body, as `keynote sign`.
///
/// `alg` must be exactly one of the six names (any case) with its colon; it is written into
/// the signed text and the result as given. `private_key` is the decoded private-key string
/// (`private-rsa-hex:...`). Checking that the algorithm fits the assertion's Authorizer is the
/// caller's job ([`check_signer`]).
pub fn sign_assertion(alg: &str, private_key: &str, body: &[u8]) -> Result<String, SignatureError> {
    if !alg.ends_with(':') {
        return Err(SignatureError::MissingColon {
            alg: alg.to_owned(),
        });
    }
    let algorithm =
        Rfc2792Algorithm::by_name(alg).ok_or_else(|| SignatureError::UnknownAlgorithm {
            name: alg.to_owned(),
        })?;
    let key = PrivateKey::parse(private_key)?;
    let mut message = Vec::with_capacity(body.len() + alg.len());
    message.extend_from_slice(body);
    message.extend_from_slice(alg.as_bytes());
    let encoded = algorithm.sign_message(&key, &message)?;
    Ok(format!("{alg}{encoded}"))
}

/// Check, as the reference's `keynote_sign_assertion` does before signing, that `alg` can
/// sign for `authorizer` (RSA algorithm with an RSA or X.509-RSA key, DSA with DSA).
pub fn check_signer(alg: &str, authorizer: &Principal) -> Result<(), SignatureError> {
    let algorithm =
        Rfc2792Algorithm::by_name(alg).ok_or_else(|| SignatureError::UnknownAlgorithm {
            name: alg.to_owned(),
        })?;
    algorithm.signer_key(authorizer).map(|_| ())
}
