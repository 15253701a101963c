//! RFC 2792 keys and signatures for KeyNote: decoding principals, verifying and making
//! assertion signatures, generating keys — as the reference implementation (KeyNote 2.3,
//! OpenBSD libkeynote) does, so that its credentials and keys work unchanged.
//!
//! # What the reference does (and we do)
//! * Principals ([`Principal::parse`]): a string starting with `dsa-hex:`, `dsa-base64:`,
//!   `rsa-hex:`, `rsa-base64:`, `x509-hex:`, `x509-base64:`, `binary-hex:` or
//!   `binary-base64:` (any case) is a key and is compared after decoding, so the hex and base64
//!   spellings of one key are the same principal. Anything else is an opaque string compared
//!   byte for byte (`"RSA:abc"` too, whatever RFC 2704 §4.6.4 suggests).
//! * Key encodings (RFC 2792 §3; the reference departs from the RFC's field order): RSA =
//!   PKCS#1 SEQUENCE{n, e}; DSA = DER SEQUENCE{y, p, q, g}; private keys `private-rsa-hex:`
//!   (PKCS#1 RSAPrivateKey) and `private-dsa-hex:` (SEQUENCE{0, p, q, g, y, x}).
//! * Signatures (RFC 2704 §4.6.7, RFC 2792 §4): the signed bytes are the assertion text from
//!   its first field up to, not including, the `Signature` keyword, followed by the algorithm
//!   name as written up to and including its colon. RSA = PKCS#1 v1.5 type 1 padding over a DER
//!   OCTET STRING of the hash (no DigestInfo); DSA = DER SEQUENCE{r, s}. The algorithm must fit
//!   the Authorizer's key type.
//!
//! # Weak algorithms, on purpose
//! MD5, SHA-1, DSA-1024 and RSA keys down to 512 bits are what RFC 2792 and the reference
//! speak; they are kept **only for compatibility** with existing KeyNote credentials and the
//! conformance corpus. gt's own policies are signed with OpenPGP signatures, which plug into the
//! same [`Registry`] through the [`SignatureAlgorithm`] trait.
//!
//! # Deviations (safer readings)
//! * Hex must be hex digits (the reference's `strtoul` pairs accept junk such as `"1g"`).
//! * DER must be strict with nothing after the key (OpenSSL's `d2i_*` ignore trailing bytes).
//! * `x509-` keys: a DER certificate (as the reference) or a bare SubjectPublicKeyInfo, RSA or
//!   DSA inside; `sig-x509-sha1-*` signatures are not implemented.
//! * Size limits ([`MAX_ENCODED_KEY_LEN`], [`MAX_RSA_MODULUS_BITS`], [`MAX_DSA_PRIME_BITS`],
//!   and q of [`DSA_SUBGROUP_BITS`] as OpenSSL's `DSA_verify` demands) bound the work a hostile
//!   credential can cause.
//!
//! # Speed
//! Verification does the public-key arithmetic on crypto-bigint with per-key precomputation
//! (fast.rs), cross-checked against the `rsa` and `dsa` crates in the tests. Callers that meet
//! the same key string many times should keep the decoded [`Principal`] (clones share the
//! precomputation).

mod encoding;
mod error;
mod fast;
mod key;
mod rfc2792;

pub use encoding::{DecodeError, TextEncoding, decode_base64, decode_hex, print_key};
pub use error::{KeyError, KeyGenError, SignatureError};
pub use fast::{FIXED_BASE_AFTER, MONTGOMERY_AFTER};
pub use key::{
    DSA_SUBGROUP_BITS, DsaPublicKey, KeyAlgorithm, PRIVATE_KEY_PREFIX, PrivateKey, PublicKey,
    RSA_KEYGEN_BITS, RsaPublicKey, X509Key, key_prefix,
};
pub use rfc2792::{
    Backend, HashAlgorithm, RFC2792_ALGORITHMS, Rfc2792, Rfc2792Algorithm, check_signer,
    sign_assertion,
};

use std::sync::Arc;

/// Longest encoded key text (after its prefix) we decode: 64 KiB is ample for an 8192-bit RSA
/// key in hex (~2 KiB) or an X.509 certificate (a few KiB), and bounds the work per principal.
pub const MAX_ENCODED_KEY_LEN: usize = 64 * 1024;

/// Largest RSA modulus we verify or sign with (bits). Matches the `rsa` crate's default
/// limit; verification cost grows with the square of the size, so hostile credentials with
/// huge moduli are refused rather than slowly checked.
pub const MAX_RSA_MODULUS_BITS: usize = 4096;

/// Largest DSA prime p we verify or sign with (bits): above FIPS 186-4's largest size
/// (3072), below anything that makes verification slow.
pub const MAX_DSA_PRIME_BITS: usize = 4096;

/// A principal as KeyNote compares it (RFC 2704 §4.6.x, reference `kn_decode_key`): a decoded
/// key (hex/base64 encodings of the same key compare equal; prefix matched case-insensitively)
/// or an opaque string compared byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A string with one of the eight key prefixes, decoded.
    Key(PublicKey),
    /// Any other string, compared byte for byte.
    Opaque(String),
}

impl Principal {
    /// `Err(KeyError)` when the string starts with a key prefix (`dsa-hex:`, `dsa-base64:`,
    /// `rsa-hex:`, `rsa-base64:`, `x509-hex:`, `x509-base64:`, `binary-hex:`,
    /// `binary-base64:`, any case) but does not decode. `Ok(Opaque)` for anything else (e.g.
    /// `"alice"`, `"openpgp:ABCD..."`, `"RSA:abc"`).
    pub fn parse(s: &str) -> Result<Principal, KeyError> {
        Ok(match PublicKey::parse(s)? {
            Some(key) => Principal::Key(key),
            None => Principal::Opaque(s.to_owned()),
        })
    }

    /// The decoded key, if this principal is one.
    pub fn key(&self) -> Option<&PublicKey> {
        match self {
            Principal::Key(k) => Some(k),
            Principal::Opaque(_) => None,
        }
    }
}

/// A family of signature algorithms that can check assertion signatures.
///
/// Later the policy crate registers an OpenPGP algorithm (`sig-openpgp-base64:`) without
/// touching the checker.
pub trait SignatureAlgorithm: Send + Sync {
    /// Lower-case algorithm names this handles, each with its trailing colon,
    /// e.g. `["sig-rsa-sha1-hex:", "sig-rsa-sha1-base64:"]`.
    fn names(&self) -> &[&'static str];

    /// Verify `signature` made by `signer` over `message`.
    ///
    /// * `alg`: the algorithm name, lower-cased, with its colon (one of [`Self::names`]).
    /// * `message`: the complete signed bytes (assertion body followed by the algorithm name
    ///   as written, colon included).
    /// * `signature`: the Signature value's text after the algorithm's colon, exactly as in
    ///   the decoded string value (string escapes and line continuations already resolved by
    ///   the assertion parser; nothing else is stripped).
    fn verify(
        &self,
        alg: &str,
        signer: &Principal,
        message: &[u8],
        signature: &str,
    ) -> Result<(), SignatureError>;
}

/// The registry of signature algorithms; `Default` = the RFC 2792 set.
#[derive(Clone)]
pub struct Registry {
    algorithms: Vec<Arc<dyn SignatureAlgorithm>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .algorithms
            .iter()
            .flat_map(|a| a.names().iter().copied())
            .collect();
        f.debug_struct("Registry")
            .field("algorithms", &names)
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::rfc2792()
    }
}

impl Registry {
    /// The six RFC 2792 algorithms.
    pub fn rfc2792() -> Self {
        Registry {
            algorithms: vec![Arc::new(Rfc2792)],
        }
    }

    /// A registry with no algorithms (every signature fails as unknown).
    pub fn empty() -> Self {
        Registry {
            algorithms: Vec::new(),
        }
    }

    /// Add an algorithm family. A name registered later takes precedence over the same name
    /// registered earlier.
    pub fn register(&mut self, alg: Arc<dyn SignatureAlgorithm>) {
        self.algorithms.push(alg);
    }

    /// The algorithm family handling `name` (lower case, with colon).
    fn find(&self, name: &str) -> Option<&Arc<dyn SignatureAlgorithm>> {
        self.algorithms
            .iter()
            .rev()
            .find(|a| a.names().contains(&name))
    }

    /// Verify an assertion's Signature field.
    ///
    /// `body`: the assertion text from the start of its first field up to, not including, the
    /// `Signature` keyword (RFC 2704 §4.6.7). `signature_value`: the Signature field's decoded
    /// string value (e.g. `"sig-rsa-sha1-hex:2ecd54..."`). The signed message is `body`
    /// followed by the algorithm name up to and including its first colon, as written (its
    /// case included); the algorithm is looked up case-insensitively.
    pub fn verify_assertion(
        &self,
        authorizer: &Principal,
        body: &[u8],
        signature_value: &str,
    ) -> Result<(), SignatureError> {
        let unknown = || SignatureError::UnknownAlgorithm {
            name: signature_value.chars().take(40).collect(),
        };
        let colon = signature_value.find(':').ok_or_else(unknown)?;
        let (written, rest) = signature_value.split_at(colon + 1);
        let name = written.to_ascii_lowercase();
        let algorithm = self.find(&name).ok_or_else(unknown)?;
        let mut message = Vec::with_capacity(body.len() + written.len());
        message.extend_from_slice(body);
        message.extend_from_slice(written.as_bytes());
        algorithm.verify(&name, authorizer, &message, rest)
    }
}

/// Fuzz entry point: decode arbitrary bytes as a principal and as a private key; must never
/// panic. Fuzz target `decode_key` (fuzz/fuzz_targets/decode_key.rs).
#[doc(hidden)]
pub fn fuzz_decode_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(Principal::Key(key)) = Principal::parse(&text) {
        // Re-encoding a decoded key must give the same key back.
        if let Some(s) = key.to_key_string(TextEncoding::Hex) {
            assert_eq!(Principal::parse(&s).ok(), Some(Principal::Key(key)));
        }
    }
    let _ = PrivateKey::parse(&text);
    for prefix in [
        "rsa-hex:",
        "dsa-base64:",
        "x509-hex:",
        "private-rsa-hex:",
        "private-dsa-hex:",
    ] {
        // Steer the fuzzer past the prefix check: the remaining bytes as hex/base64 key text.
        let encoded = if prefix.contains("hex") {
            hex::encode(data)
        } else {
            TextEncoding::Base64.encode(data)
        };
        let s = format!("{prefix}{encoded}");
        let _ = Principal::parse(&s);
        let _ = PrivateKey::parse(&s);
    }
}

/// Fuzz entry point: verify arbitrary signature values against fixed RSA and DSA keys; must
/// never panic and never succeed. Fuzz target `signature` (fuzz/fuzz_targets/signature.rs).
#[doc(hidden)]
pub fn fuzz_verify_signature(data: &[u8]) {
    use std::sync::OnceLock;
    static KEYS: OnceLock<[Principal; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        // Keys of the conformance corpus ("bob" RSA-1024, "alice" DSA-1024).
        let rsa = Principal::parse(FUZZ_RSA_KEY).unwrap_or(Principal::Opaque(String::new()));
        let dsa = Principal::parse(FUZZ_DSA_KEY).unwrap_or(Principal::Opaque(String::new()));
        [rsa, dsa]
    });
    let registry = Registry::rfc2792();
    let text = String::from_utf8_lossy(data);
    for key in keys {
        assert!(registry.verify_assertion(key, b"body", &text).is_err());
        for algorithm in RFC2792_ALGORITHMS {
            // The raw bytes as an encoded signature of each algorithm.
            let sig = format!("{}{}", algorithm.name, algorithm.encoding.encode(data));
            assert!(registry.verify_assertion(key, b"body", &sig).is_err());
        }
    }
}

const FUZZ_RSA_KEY: &str = "rsa-hex:3081890281810092b8e988230c8d7eaa91fc9083c8b51dcb284be9a740e8\
c700e0042787066ae8998b1d827202fcd2688c708839a10c348ad1bc7753059d0593474daff5373d0dec65384e30ec1a0\
07d66830040711e4cd65d6835dd501656f4707fa04cbe083506bf945b2dfa1b80acd0352ab7b4149bda95e35382622a01\
5b0d2f7b9599fc670203010001";

const FUZZ_DSA_KEY: &str = "dsa-hex:308201a20281803212edd6ae60b26e5124cd4c6c43f6599cab02ef586d099\
bc0c5328f35b3f76158974accdd771d48b753e44565e211ecae97b512f471ca87f251b14736b9e34808cc12c8d64074532\
54f6806112e4ff9f9c32b93d17ee9dc7e2dfa993334203c2d42f15e0a83d3e4e45755a74755ff021298dcaef89d78dea90\
e57c438d50b4e02818100e4248d73ec6effbbccd83804f5f753ba992585780cf1610c004544cbd34682194be8adf0ac9cb\
15f4402ae5a8d0112fd2964614a86b76ddf9f2a9b9fbe7ea79651affac0e739aa161b7c103bbc26ca122de4dbd140c34b3\
0c9fb7f487a88380f6e1c37e5652a18b64630b58e73a45aa502abc6fc75a43bac566b6c16b17f71ef021500d9665511de3\
56fcc1d15c1acb832a2e899bd7ff502818100c01304868498305afda998dbdabf9970c18f80806c3b6a215c96ee8c1196b\
38b9f9533e4c175d0d4959b02ee91d21c82b09e2f7696eff0c15110e675434ce57a664cdd4a9e88f2f904837aad5127a16\
fdec32610fc876385162059603526af998d86d47fe142ef0cc709e7082c98e7e5cb517818ba26c4cedeb737a36d3c47b5";
