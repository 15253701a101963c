//! Decoding, comparing and encoding RFC 2792 keys exactly as the reference's `kn_decode_key`,
//! `kn_keycompare` and `kn_encode_key` do: the eight public-key prefixes, the `private-`
//! prefixed private keys, and key generation for `keynote keygen`.

use super::encoding::TextEncoding;
use super::error::{KeyError, KeyGenError};
use super::fast::{DsaVerifyOp, MONTGOMERY_AFTER, RsaPublicOp, rsa_public_op_oneshot};
use super::{MAX_DSA_PRIME_BITS, MAX_ENCODED_KEY_LEN, MAX_RSA_MODULUS_BITS};
use der::asn1::{AnyRef, UintRef};
use der::{Decode, Encode, Reader, SliceReader, Tag};
use num_bigint_dig::BigUint;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::traits::PublicKeyParts;
use signature::hazmat::PrehashVerifier;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The key algorithms a KeyNote key prefix can name (reference `KEYNOTE_ALGORITHM_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// `dsa-hex:` / `dsa-base64:`: DER SEQUENCE{y, p, q, g}.
    Dsa,
    /// `rsa-hex:` / `rsa-base64:`: PKCS#1 RSAPublicKey SEQUENCE{n, e}.
    Rsa,
    /// `x509-hex:` / `x509-base64:`: a DER X.509 certificate (or a bare SubjectPublicKeyInfo).
    X509,
    /// `binary-hex:` / `binary-base64:`: opaque bytes compared byte for byte.
    Binary,
}

impl KeyAlgorithm {
    /// The lower-case word used in prefixes: "dsa", "rsa", "x509", "binary".
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Dsa => "dsa",
            KeyAlgorithm::Rsa => "rsa",
            KeyAlgorithm::X509 => "x509",
            KeyAlgorithm::Binary => "binary",
        }
    }
}

/// The eight key prefixes of the reference (`keynote_get_key_algorithm`), in its order.
const KEY_PREFIXES: [(&str, KeyAlgorithm, TextEncoding); 8] = [
    ("dsa-hex:", KeyAlgorithm::Dsa, TextEncoding::Hex),
    ("dsa-base64:", KeyAlgorithm::Dsa, TextEncoding::Base64),
    ("rsa-hex:", KeyAlgorithm::Rsa, TextEncoding::Hex),
    ("rsa-base64:", KeyAlgorithm::Rsa, TextEncoding::Base64),
    ("x509-base64:", KeyAlgorithm::X509, TextEncoding::Base64),
    ("x509-hex:", KeyAlgorithm::X509, TextEncoding::Hex),
    ("binary-hex:", KeyAlgorithm::Binary, TextEncoding::Hex),
    ("binary-base64:", KeyAlgorithm::Binary, TextEncoding::Base64),
];

/// The prefix of private keys, before a key prefix (reference `KEYNOTE_PRIVATE_KEY_PREFIX`).
pub const PRIVATE_KEY_PREFIX: &str = "private-";

/// If `s` starts with one of the eight key prefixes (any case), return the algorithm, the
/// encoding and the prefix length.
pub fn key_prefix(s: &str) -> Option<(KeyAlgorithm, TextEncoding, usize)> {
    KEY_PREFIXES.iter().find_map(|&(prefix, alg, enc)| {
        starts_with_ignore_case(s, prefix).then_some((alg, enc, prefix.len()))
    })
}

pub(crate) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// An RSA public key: modulus and public exponent (compared as numbers, as `kn_keycompare`).
#[derive(Clone)]
pub struct RsaPublicKey {
    n: BigUint,
    e: BigUint,
    /// Verification state shared by clones: key check, use count, Montgomery set-up.
    state: Arc<RsaState>,
}

/// Per-key verification state of an RSA key.
#[derive(Default)]
struct RsaState {
    /// The `rsa` crate's key checks, done once.
    checked: OnceLock<Result<(), String>>,
    /// Montgomery set-up, made at the first verification.
    op: OnceLock<Option<RsaPublicOp>>,
}

impl RsaPublicKey {
    /// Build from modulus and exponent.
    pub fn new(n: BigUint, e: BigUint) -> Self {
        RsaPublicKey {
            n,
            e,
            state: Arc::default(),
        }
    }
    /// The modulus n.
    pub fn n(&self) -> &BigUint {
        &self.n
    }
    /// The public exponent e.
    pub fn e(&self) -> &BigUint {
        &self.e
    }
    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.n.bits()
    }
    /// Size of the modulus in bytes (the length of a signature).
    pub fn size(&self) -> usize {
        self.n.bits().div_ceil(8)
    }
    /// The PKCS#1 RSAPublicKey DER encoding, SEQUENCE{n, e}.
    pub fn to_der(&self) -> Vec<u8> {
        der_uint_sequence(&[&self.n.to_bytes_be(), &self.e.to_bytes_be()])
    }
    /// The `rsa` crate's key; refuses moduli over [`MAX_RSA_MODULUS_BITS`] and exponents the
    /// crate rejects.
    pub(crate) fn crate_key(&self) -> Result<rsa::RsaPublicKey, String> {
        rsa::RsaPublicKey::new_with_max_size(self.n.clone(), self.e.clone(), MAX_RSA_MODULUS_BITS)
            .map_err(|e| e.to_string())
    }
    /// RSAVP1 (RFC 8017 §5.2.2): `sig^e mod n` as `len` bytes, `Ok(None)` when the signature
    /// is not smaller than n; `Err` when the `rsa` crate rejects the key (checked once). The
    /// Montgomery set-up (fast.rs) is made at the first use and shared by later ones; it costs
    /// one division, so even a key used once is cheaper this way. Moduli it does not cover
    /// (even, or over 4096 bits) take the one-shot `num-bigint-dig` path.
    pub(crate) fn public_op(&self, sig: &[u8], len: usize) -> Result<Option<Vec<u8>>, String> {
        self.state
            .checked
            .get_or_init(|| self.crate_key().map(|_| ()))
            .clone()?;
        let op = self
            .state
            .op
            .get_or_init(|| RsaPublicOp::new(&self.n, &self.e));
        match op {
            Some(op) => Ok(op.public_op(sig, len)),
            None => Ok(rsa_public_op_oneshot(&self.n, &self.e, sig, len)),
        }
    }
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        // kn_keycompare: modulus and exponent must be equal.
        self.n == other.n && self.e == other.e
    }
}
impl Eq for RsaPublicKey {}
impl Hash for RsaPublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.n.hash(state);
        self.e.hash(state);
    }
}
impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("n", &self.n)
            .field("e", &self.e)
            .finish()
    }
}

/// Per-key verification state of a DSA key.
#[derive(Default)]
struct DsaState {
    /// The `dsa` crate's key (its constructor checks `y^q mod p == 1`), made once.
    checked: OnceLock<Result<dsa::VerifyingKey, String>>,
    /// Verifications so far.
    uses: AtomicUsize,
    /// The fast verifier, made once the key has been used [`MONTGOMERY_AFTER`] times.
    op: OnceLock<Option<DsaVerifyOp>>,
}

/// A DSA public key: y and the domain parameters p, q, g (compared as numbers).
#[derive(Clone)]
pub struct DsaPublicKey {
    y: BigUint,
    p: BigUint,
    q: BigUint,
    g: BigUint,
    /// Verification state shared by clones: the `dsa` crate's key, use count, fast verifier.
    state: Arc<DsaState>,
}

impl DsaPublicKey {
    /// Build from the public value and domain parameters.
    pub fn new(y: BigUint, p: BigUint, q: BigUint, g: BigUint) -> Self {
        DsaPublicKey {
            y,
            p,
            q,
            g,
            state: Arc::default(),
        }
    }
    /// Public value y.
    pub fn y(&self) -> &BigUint {
        &self.y
    }
    /// Prime p.
    pub fn p(&self) -> &BigUint {
        &self.p
    }
    /// Subgroup order q.
    pub fn q(&self) -> &BigUint {
        &self.q
    }
    /// Generator g.
    pub fn g(&self) -> &BigUint {
        &self.g
    }
    /// The reference's DER encoding, SEQUENCE{y, p, q, g} (OpenSSL `i2d_DSAPublicKey` with
    /// `write_params`).
    pub fn to_der(&self) -> Vec<u8> {
        der_uint_sequence(&[
            &self.y.to_bytes_be(),
            &self.p.to_bytes_be(),
            &self.q.to_bytes_be(),
            &self.g.to_bytes_be(),
        ])
    }
    /// The `dsa` crate's key for verification (cached); refuses p over [`MAX_DSA_PRIME_BITS`],
    /// q not smaller than p and q sizes other than [`DSA_SUBGROUP_BITS`], so hostile keys
    /// cannot make verification arbitrarily slow.
    pub(crate) fn crate_key(&self) -> Result<&dsa::VerifyingKey, String> {
        self.state
            .checked
            .get_or_init(|| {
                if self.p.bits() > MAX_DSA_PRIME_BITS {
                    return Err(format!(
                        "DSA prime of {} bits exceeds the limit of {MAX_DSA_PRIME_BITS}",
                        self.p.bits()
                    ));
                }
                if self.q >= self.p {
                    return Err("DSA q is not smaller than p".to_owned());
                }
                if !DSA_SUBGROUP_BITS.contains(&self.q.bits()) {
                    return Err(format!(
                        "DSA q of {} bits (must be 160, 224 or 256)",
                        self.q.bits()
                    ));
                }
                let components = dsa::Components::from_components(
                    self.p.clone(),
                    self.q.clone(),
                    self.g.clone(),
                )
                .map_err(|_| "invalid DSA domain parameters".to_owned())?;
                dsa::VerifyingKey::from_components(components, self.y.clone())
                    .map_err(|_| "invalid DSA public value y".to_owned())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether `sig` is a valid signature on `hash`; `Err` when the key is unusable. The first
    /// [`MONTGOMERY_AFTER`] uses of a key go through the `dsa` crate; later ones through the
    /// fast verifier (fast.rs), which costs about one verification to set up.
    pub(crate) fn verify(&self, hash: &[u8], sig: &dsa::Signature) -> Result<bool, String> {
        let key = self.crate_key()?;
        if self.state.uses.fetch_add(1, Ordering::Relaxed) >= MONTGOMERY_AFTER {
            let op = self
                .state
                .op
                .get_or_init(|| DsaVerifyOp::new(&self.p, &self.q, &self.g, &self.y));
            if let Some(op) = op {
                return Ok(op.verify(hash, sig.r(), sig.s()));
            }
        }
        Ok(key.verify_prehash(hash, sig).is_ok())
    }
}

impl PartialEq for DsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        // kn_keycompare: p, q, g and the public value must all be equal.
        self.p == other.p && self.q == other.q && self.g == other.g && self.y == other.y
    }
}
impl Eq for DsaPublicKey {}
impl Hash for DsaPublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.y.hash(state);
        self.p.hash(state);
        self.q.hash(state);
        self.g.hash(state);
    }
}
impl fmt::Debug for DsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsaPublicKey")
            .field("y", &self.y)
            .field("p", &self.p)
            .field("q", &self.q)
            .field("g", &self.g)
            .finish()
    }
}

/// The sizes of the DSA subgroup order q that verification accepts (FIPS 186-4 §4.2), as
/// OpenSSL's `DSA_verify` in the reference does; this also bounds the exponents, so a hostile
/// key cannot make verification slow.
pub const DSA_SUBGROUP_BITS: [usize; 3] = [160, 224, 256];

/// The public key inside an `x509-` key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum X509Key {
    /// rsaEncryption (1.2.840.113549.1.1.1).
    Rsa(RsaPublicKey),
    /// id-dsa (1.2.840.10040.4.1) with Dss-Parms.
    Dsa(DsaPublicKey),
}

/// A decoded public key.
///
/// Equality follows `kn_keycompare`: keys of different algorithms are never equal (an
/// `x509-` key never equals an `rsa-` key, even with the same modulus); within an algorithm
/// the numbers (or, for `binary-`, the bytes) are compared, so hex and base64 spellings of the
/// same key are equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicKey {
    /// `rsa-hex:` / `rsa-base64:`.
    Rsa(RsaPublicKey),
    /// `dsa-hex:` / `dsa-base64:`.
    Dsa(DsaPublicKey),
    /// `x509-hex:` / `x509-base64:`.
    X509(X509Key),
    /// `binary-hex:` / `binary-base64:`.
    Binary(Vec<u8>),
}

impl PublicKey {
    /// Decode a key string that starts with one of the eight prefixes (any case).
    /// Returns `Ok(None)` when `s` has no key prefix (it is an opaque principal).
    pub fn parse(s: &str) -> Result<Option<PublicKey>, KeyError> {
        let Some((alg, enc, prefix_len)) = key_prefix(s) else {
            return Ok(None);
        };
        let (prefix, text) = s.split_at(prefix_len);
        let bytes = decode_text(prefix, enc, text)?;
        decode_public(prefix, alg, &bytes).map(Some)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PublicKey::Rsa(_) => KeyAlgorithm::Rsa,
            PublicKey::Dsa(_) => KeyAlgorithm::Dsa,
            PublicKey::X509(_) => KeyAlgorithm::X509,
            PublicKey::Binary(_) => KeyAlgorithm::Binary,
        }
    }

    /// The key's DER (or, for `binary-`, raw) bytes as `kn_encode_key` writes them.
    /// For `x509-` keys this is the SubjectPublicKeyInfo's key only and is therefore `None`
    /// (the certificate is not kept).
    pub fn to_der(&self) -> Option<Vec<u8>> {
        match self {
            PublicKey::Rsa(k) => Some(k.to_der()),
            PublicKey::Dsa(k) => Some(k.to_der()),
            PublicKey::X509(_) => None,
            PublicKey::Binary(b) => Some(b.clone()),
        }
    }

    /// The canonical key string, e.g. `rsa-hex:3081...` (lower-case prefix and hex).
    /// `None` for `x509-` keys (see [`PublicKey::to_der`]).
    pub fn to_key_string(&self, enc: TextEncoding) -> Option<String> {
        let der = self.to_der()?;
        Some(format!(
            "{}-{}:{}",
            self.algorithm().name(),
            enc.name(),
            enc.encode(&der)
        ))
    }
}

fn decode_text(prefix: &str, enc: TextEncoding, text: &str) -> Result<Vec<u8>, KeyError> {
    if text.len() > MAX_ENCODED_KEY_LEN {
        return Err(KeyError::TooLong {
            prefix: prefix.to_owned(),
            len: text.len(),
            limit: MAX_ENCODED_KEY_LEN,
        });
    }
    enc.decode(text).map_err(|source| KeyError::Encoding {
        prefix: prefix.to_owned(),
        source,
    })
}

fn der_error<'p>(prefix: &'p str, what: &'static str) -> impl Fn(der::Error) -> KeyError + 'p {
    move |e| KeyError::Der {
        prefix: prefix.to_owned(),
        what,
        reason: e.to_string(),
    }
}

const RSA_PUBLIC_DER: &str = "PKCS#1 RSAPublicKey SEQUENCE{n, e}";
const DSA_PUBLIC_DER: &str = "DSA public key SEQUENCE{y, p, q, g}";
const X509_DER: &str = "X.509 certificate or SubjectPublicKeyInfo";

fn big(u: UintRef<'_>) -> BigUint {
    BigUint::from_bytes_be(u.as_bytes())
}

fn decode_public(prefix: &str, alg: KeyAlgorithm, bytes: &[u8]) -> Result<PublicKey, KeyError> {
    match alg {
        KeyAlgorithm::Rsa => decode_rsa_public(bytes)
            .map(PublicKey::Rsa)
            .map_err(der_error(prefix, RSA_PUBLIC_DER)),
        KeyAlgorithm::Dsa => decode_dsa_public(bytes)
            .map(PublicKey::Dsa)
            .map_err(der_error(prefix, DSA_PUBLIC_DER)),
        KeyAlgorithm::X509 => decode_x509(prefix, bytes).map(PublicKey::X509),
        KeyAlgorithm::Binary => Ok(PublicKey::Binary(bytes.to_vec())),
    }
}

/// PKCS#1 SEQUENCE{n, e}, strict DER, nothing after it.
///
/// Deviation: OpenSSL's `d2i_RSAPublicKey` ignores bytes after the SEQUENCE; we reject them so
/// that one key has one spelling per encoding.
fn decode_rsa_public(bytes: &[u8]) -> der::Result<RsaPublicKey> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(bytes)?;
    Ok(RsaPublicKey::new(
        big(key.modulus),
        big(key.public_exponent),
    ))
}

/// SEQUENCE{y, p, q, g}, strict DER, nothing after it.
fn decode_dsa_public(bytes: &[u8]) -> der::Result<DsaPublicKey> {
    let mut reader = SliceReader::new(bytes)?;
    let key = reader.sequence(|r| {
        let y = UintRef::decode(r)?;
        let p = UintRef::decode(r)?;
        let q = UintRef::decode(r)?;
        let g = UintRef::decode(r)?;
        Ok(DsaPublicKey::new(big(y), big(p), big(q), big(g)))
    })?;
    reader.finish(key)
}

/// The reference decodes `x509-` keys with `d2i_X509` (a whole certificate) and uses its RSA
/// key. We accept a DER certificate (taking tbsCertificate.subjectPublicKeyInfo, RFC 5280
/// §4.1) and, as an extension, a bare SubjectPublicKeyInfo; RSA and DSA keys are decoded,
/// other algorithms are rejected. The certificate itself (validity, issuer, signature) is
/// not checked: KeyNote uses it only as a key container.
fn decode_x509(prefix: &str, bytes: &[u8]) -> Result<X509Key, KeyError> {
    let spki = match SubjectPublicKeyInfoRef::from_der(bytes) {
        Ok(spki) => spki,
        Err(_) => {
            let spki_der = certificate_spki(bytes).map_err(der_error(prefix, X509_DER))?;
            SubjectPublicKeyInfoRef::from_der(spki_der).map_err(der_error(prefix, X509_DER))?
        }
    };
    let oid = spki.algorithm.oid;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyError::Der {
            prefix: prefix.to_owned(),
            what: X509_DER,
            reason: "subjectPublicKey has unused bits".to_owned(),
        })?;
    if oid == rsa::pkcs1::ALGORITHM_OID {
        decode_rsa_public(key_bytes)
            .map(X509Key::Rsa)
            .map_err(der_error(prefix, RSA_PUBLIC_DER))
    } else if oid == dsa::OID {
        let params = spki.algorithm.parameters.ok_or_else(|| KeyError::Der {
            prefix: prefix.to_owned(),
            what: X509_DER,
            reason: "DSA key without Dss-Parms".to_owned(),
        })?;
        let dsa_der = |e: der::Error| KeyError::Der {
            prefix: prefix.to_owned(),
            what: "DSA SubjectPublicKeyInfo (Dss-Parms SEQUENCE{p, q, g}, INTEGER y)",
            reason: e.to_string(),
        };
        let (p, q, g) = params
            .sequence(|r: &mut SliceReader<'_>| {
                Ok((
                    UintRef::decode(r)?,
                    UintRef::decode(r)?,
                    UintRef::decode(r)?,
                ))
            })
            .map_err(dsa_der)?;
        let y = UintRef::from_der(key_bytes).map_err(dsa_der)?;
        Ok(X509Key::Dsa(DsaPublicKey::new(
            big(y),
            big(p),
            big(q),
            big(g),
        )))
    } else {
        Err(KeyError::UnsupportedX509Algorithm {
            prefix: prefix.to_owned(),
            oid: oid.to_string(),
        })
    }
}

/// The DER bytes of tbsCertificate.subjectPublicKeyInfo in a certificate (RFC 5280 §4.1):
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, signatureAlgorithm,
/// signatureValue }.
fn certificate_spki(bytes: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(bytes)?;
    let spki = reader.sequence(|cert| {
        let spki = cert.sequence(|tbs| {
            if tbs.peek_tag()?
                == (Tag::ContextSpecific {
                    constructed: true,
                    number: der::TagNumber::N0,
                })
            {
                tbs.tlv_bytes()?; // version
            }
            for _ in 0..5 {
                // serialNumber, signature, issuer, validity, subject
                tbs.tlv_bytes()?;
            }
            let spki = tbs.tlv_bytes()?;
            // issuerUniqueID, subjectUniqueID, extensions: skipped.
            let rest = tbs.remaining_len();
            tbs.read_slice(rest)?;
            Ok(spki)
        })?;
        cert.tlv_bytes()?; // signatureAlgorithm
        cert.tlv_bytes()?; // signatureValue
        Ok(spki)
    })?;
    reader.finish(spki)
}

/// DER SEQUENCE of unsigned INTEGERs (used for the reference's DSA formats).
fn der_uint_sequence(ints: &[&[u8]]) -> Vec<u8> {
    let mut content = Vec::new();
    for int in ints {
        // UintRef strips leading zeros and adds the sign byte; encoding a byte string that
        // fits in memory cannot fail.
        if let Ok(encoded) = UintRef::new(int).and_then(|u| u.to_der()) {
            content.extend_from_slice(&encoded);
        }
    }
    AnyRef::new(Tag::Sequence, &content)
        .and_then(|any| any.to_der())
        .unwrap_or_default()
}

/// A private key for signing (`private-rsa-hex:...`, `private-dsa-base64:...`).
#[derive(Clone)]
#[non_exhaustive]
pub enum PrivateKey {
    /// PKCS#1 RSAPrivateKey.
    Rsa(rsa::RsaPrivateKey),
    /// OpenSSL DSAPrivateKey SEQUENCE{0, p, q, g, y, x}.
    Dsa(dsa::SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secret numbers.
        match self {
            PrivateKey::Rsa(k) => write!(f, "PrivateKey::Rsa({} bits)", k.n().bits()),
            PrivateKey::Dsa(k) => write!(
                f,
                "PrivateKey::Dsa({} bits)",
                k.verifying_key().components().p().bits()
            ),
        }
    }
}

const RSA_PRIVATE_DER: &str = "PKCS#1 RSAPrivateKey";
const DSA_PRIVATE_DER: &str = "DSA private key SEQUENCE{0, p, q, g, y, x}";

impl PrivateKey {
    /// Decode `private-<key prefix><text>` (prefix any case), as `kn_decode_key` with
    /// `KEYNOTE_PRIVATE_KEY`.
    pub fn parse(s: &str) -> Result<PrivateKey, KeyError> {
        let not_private = || KeyError::NotPrivateKey {
            found: s.chars().take(24).collect(),
        };
        if !starts_with_ignore_case(s, PRIVATE_KEY_PREFIX) {
            return Err(not_private());
        }
        let rest = s.get(PRIVATE_KEY_PREFIX.len()..).ok_or_else(not_private)?;
        let (alg, enc, prefix_len) = key_prefix(rest).ok_or_else(not_private)?;
        let prefix = s
            .get(..PRIVATE_KEY_PREFIX.len() + prefix_len)
            .unwrap_or_default();
        let text = rest.get(prefix_len..).unwrap_or_default();
        match alg {
            KeyAlgorithm::Rsa => {
                let bytes = decode_text(prefix, enc, text)?;
                let key =
                    rsa::RsaPrivateKey::from_pkcs1_der(&bytes).map_err(|e| KeyError::Der {
                        prefix: prefix.to_owned(),
                        what: RSA_PRIVATE_DER,
                        reason: e.to_string(),
                    })?;
                if key.n().bits() > MAX_RSA_MODULUS_BITS {
                    return Err(KeyError::InvalidKey {
                        prefix: prefix.to_owned(),
                        reason: format!("modulus exceeds {MAX_RSA_MODULUS_BITS} bits"),
                    });
                }
                Ok(PrivateKey::Rsa(key))
            }
            KeyAlgorithm::Dsa => {
                let bytes = decode_text(prefix, enc, text)?;
                decode_dsa_private(prefix, &bytes).map(PrivateKey::Dsa)
            }
            KeyAlgorithm::X509 | KeyAlgorithm::Binary => Err(KeyError::UnsupportedPrivateKey {
                prefix: prefix.to_owned(),
            }),
        }
    }

    /// The key's algorithm (`Rsa` or `Dsa`).
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PrivateKey::Rsa(_) => KeyAlgorithm::Rsa,
            PrivateKey::Dsa(_) => KeyAlgorithm::Dsa,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa(k) => PublicKey::Rsa(RsaPublicKey::new(k.n().clone(), k.e().clone())),
            PrivateKey::Dsa(k) => {
                let vk = k.verifying_key();
                let c = vk.components();
                PublicKey::Dsa(DsaPublicKey::new(
                    vk.y().clone(),
                    c.p().clone(),
                    c.q().clone(),
                    c.g().clone(),
                ))
            }
        }
    }

    /// The private key's DER as `kn_encode_key` writes it (PKCS#1 RSAPrivateKey, or
    /// SEQUENCE{0, p, q, g, y, x} for DSA).
    pub fn to_der(&self) -> Result<Vec<u8>, KeyGenError> {
        match self {
            PrivateKey::Rsa(k) => {
                k.to_pkcs1_der()
                    .map(|doc| doc.as_bytes().to_vec())
                    .map_err(|e| KeyGenError::Failed {
                        reason: e.to_string(),
                    })
            }
            PrivateKey::Dsa(k) => {
                let vk = k.verifying_key();
                let c = vk.components();
                Ok(der_uint_sequence(&[
                    &[0],
                    &c.p().to_bytes_be(),
                    &c.q().to_bytes_be(),
                    &c.g().to_bytes_be(),
                    &vk.y().to_bytes_be(),
                    &k.x().to_bytes_be(),
                ]))
            }
        }
    }

    /// Generate a key pair as `keynote keygen` does: RSA with public exponent 65537 and
    /// `bits` in [`RSA_KEYGEN_BITS`]; DSA with one of the FIPS 186-4 sizes the `dsa` crate
    /// implements (1024 with a 160-bit q, 2048 with a 256-bit q, 3072).
    pub fn generate(alg: KeyAlgorithm, bits: usize) -> Result<PrivateKey, KeyGenError> {
        let mut rng = rand::rngs::OsRng;
        match alg {
            KeyAlgorithm::Rsa => {
                if !RSA_KEYGEN_BITS.contains(&bits) {
                    return Err(KeyGenError::UnsupportedSize {
                        alg: "RSA",
                        bits,
                        supported: "512 to 4096",
                    });
                }
                rsa::RsaPrivateKey::new(&mut rng, bits)
                    .map(PrivateKey::Rsa)
                    .map_err(|e| KeyGenError::Failed {
                        reason: e.to_string(),
                    })
            }
            KeyAlgorithm::Dsa => {
                #[allow(deprecated)] // DSA-1024/SHA-1 is what the reference and RFC 2792 use.
                let size = match bits {
                    1024 => dsa::KeySize::DSA_1024_160,
                    2048 => dsa::KeySize::DSA_2048_256,
                    3072 => dsa::KeySize::DSA_3072_256,
                    _ => {
                        return Err(KeyGenError::UnsupportedSize {
                            alg: "DSA",
                            bits,
                            supported: "1024, 2048, 3072",
                        });
                    }
                };
                let components = dsa::Components::generate(&mut rng, size);
                Ok(PrivateKey::Dsa(dsa::SigningKey::generate(
                    &mut rng, components,
                )))
            }
            KeyAlgorithm::X509 | KeyAlgorithm::Binary => Err(KeyGenError::UnsupportedAlgorithm {
                name: alg.name().to_owned(),
            }),
        }
    }
}

/// RSA modulus sizes `keynote keygen` accepts: 512 (the smallest the corpus uses; weak, kept
/// for compatibility) to [`MAX_RSA_MODULUS_BITS`].
pub const RSA_KEYGEN_BITS: std::ops::RangeInclusive<usize> = 512..=MAX_RSA_MODULUS_BITS;

fn decode_dsa_private(prefix: &str, bytes: &[u8]) -> Result<dsa::SigningKey, KeyError> {
    let invalid = |reason: &str| KeyError::InvalidKey {
        prefix: prefix.to_owned(),
        reason: reason.to_owned(),
    };
    let mut reader = SliceReader::new(bytes).map_err(der_error(prefix, DSA_PRIVATE_DER))?;
    let parts = reader
        .sequence(|r| {
            let version = UintRef::decode(r)?;
            let p = UintRef::decode(r)?;
            let q = UintRef::decode(r)?;
            let g = UintRef::decode(r)?;
            let y = UintRef::decode(r)?;
            let x = UintRef::decode(r)?;
            Ok((version, p, q, g, y, x))
        })
        .and_then(|parts| reader.finish(parts))
        .map_err(der_error(prefix, DSA_PRIVATE_DER))?;
    let (version, p, q, g, y, x) = parts;
    if !version.as_bytes().iter().all(|&b| b == 0) {
        return Err(invalid("version is not 0"));
    }
    let (p, q, g, y, x) = (big(p), big(q), big(g), big(y), big(x));
    if p.bits() > MAX_DSA_PRIME_BITS || q >= p {
        return Err(invalid("DSA parameters out of range"));
    }
    let components = dsa::Components::from_components(p, q, g)
        .map_err(|_| invalid("invalid DSA domain parameters"))?;
    let vk = dsa::VerifyingKey::from_components(components, y)
        .map_err(|_| invalid("invalid DSA public value y"))?;
    dsa::SigningKey::from_components(vk, x).map_err(|_| invalid("invalid DSA private value x"))
}
