//! Properties of `keynote::crypto`: sign/verify round trips for every algorithm, tampering
//! detection, agreement of the fast verifier with the `rsa`/`dsa` crates, key normalisation,
//! typed errors for invalid encodings, and the size limits at their boundaries.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use keynote::crypto::{
    Backend, DSA_SUBGROUP_BITS, DecodeError, FIXED_BASE_AFTER, KeyAlgorithm, KeyError,
    MAX_DSA_PRIME_BITS, MAX_ENCODED_KEY_LEN, MAX_RSA_MODULUS_BITS, MONTGOMERY_AFTER, Principal,
    PrivateKey, PublicKey, RFC2792_ALGORITHMS, Registry, Rfc2792Algorithm, SignatureError,
    TextEncoding, X509Key, sign_assertion,
};
use proptest::prelude::*;
use std::sync::OnceLock;

const BODY: &str =
    "KeyNote-Version: 2\nAuthorizer: \"k\"\nLicensees: \"user\"\nConditions: op == \"read\";\n";

/// The corpus's private keys ("bob" RSA-1024 hex, "alice" DSA-1024 hex), as
/// `keynote keygen` wrote them, continuation lines joined.
const BOB: &str = "private-rsa-hex:3082025b0201000281810092b8e988230c8d7eaa91fc9083c8b51dcb284be9a740e8c700e0042787066ae8998b1d827202fcd2688c708839a10c348ad1bc7753059d0593474daff5373d0dec65384e30ec1a007d66830040711e4cd65d6835dd501656f4707fa04cbe083506bf945b2dfa1b80acd0352ab7b4149bda95e35382622a015b0d2f7b9599fc67020301000102818037a90a7ee8bcf4589f20aeadac30d1f4b18361f90bc8260688a0733303983daa6bc548b699c5e45f75e60132cc99f9e55cdc6020ec4feed7949db22d145b963f44e8c256b55b2ac90403de1985aff27e600f0a5b2a38245b3979988fe7883b6ee06b8d3881107a34bc49c7a2b88c38ec25188ca56939587859070726c2a50ea1024100c2622c39e51e1f5ec5619a72b90248724903366a7dcc4af4282d3b36ed8dc8461e12aa42836f58d82773dee8bf69aabd75161b2e706c135e9515b4fe9d653e4f024100c13b21aabc6ec5e3b156754bdba55d9554c4547e1ecbc8b71c32efa1f1129b01f5a5223bf0b1d0421a7eaad9f3079269f5ab17cd32c25c399b484e8b1e98326902403e3ad9b7cb2f0291ff94c8b253a274790a00da49eb6e1cccdf93e37229490bc5ced8e0e31c5ae8518307e86410eb8e3acb22419f7364562b20856b855bf44ea70240065791805014f6abc57b47f8486a420b0fb02df1c1c300807a0d75ee03c28f91dde5209d8505e106fa65a3e7e9611b3e1d111383e9a19573529469f788f687d9024024451276d2bf7ee74135b9d5c2433775aea50cf8dacda68e3852ab8cd242e108fe70673d1043d9a2b9c48294fe5300419a14651131de4e45fbab26579a84c66b";
const ALICE: &str = "private-dsa-hex:308201bc02010002818100e4248d73ec6effbbccd83804f5f753ba992585780cf1610c004544cbd34682194be8adf0ac9cb15f4402ae5a8d0112fd2964614a86b76ddf9f2a9b9fbe7ea79651affac0e739aa161b7c103bbc26ca122de4dbd140c34b30c9fb7f487a88380f6e1c37e5652a18b64630b58e73a45aa502abc6fc75a43bac566b6c16b17f71ef021500d9665511de356fcc1d15c1acb832a2e899bd7ff502818100c01304868498305afda998dbdabf9970c18f80806c3b6a215c96ee8c1196b38b9f9533e4c175d0d4959b02ee91d21c82b09e2f7696eff0c15110e675434ce57a664cdd4a9e88f2f904837aad5127a16fdec32610fc876385162059603526af998d86d47fe142ef0cc709e7082c98e7e5cb517818ba26c4cedeb737a36d3c47b50281803212edd6ae60b26e5124cd4c6c43f6599cab02ef586d099bc0c5328f35b3f76158974accdd771d48b753e44565e211ecae97b512f471ca87f251b14736b9e34808cc12c8d6407453254f6806112e4ff9f9c32b93d17ee9dc7e2dfa993334203c2d42f15e0a83d3e4e45755a74755ff021298dcaef89d78dea90e57c438d50b4e0215009bf0c2d910dbe9ebf6c02e16a6246e086aab9de6";

fn public_of(private: &str) -> Principal {
    Principal::Key(PrivateKey::parse(private).unwrap().public_key())
}

/// A freshly generated 512-bit RSA key (private string, public principal), made once.
fn rsa512() -> &'static (String, Principal) {
    static KEY: OnceLock<(String, Principal)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = PrivateKey::generate(KeyAlgorithm::Rsa, 512).unwrap();
        let text = format!("private-rsa-hex:{}", hex::encode(key.to_der().unwrap()));
        (text, Principal::Key(key.public_key()))
    })
}

fn private_for(alg: &Rfc2792Algorithm) -> &'static str {
    match alg.key {
        KeyAlgorithm::Dsa => ALICE,
        _ => BOB,
    }
}

fn verify(
    signer: &Principal,
    body: &[u8],
    sig: &str,
    backend: Backend,
) -> Result<(), SignatureError> {
    let colon = sig.find(':').unwrap();
    let mut message = body.to_vec();
    message.extend_from_slice(&sig.as_bytes()[..=colon]);
    Rfc2792Algorithm::by_name(&sig[..=colon])
        .unwrap()
        .verify_message_with(signer, &message, &sig[colon + 1..], backend)
}

#[test]
fn every_algorithm_round_trips_on_both_backends() {
    for alg in RFC2792_ALGORITHMS {
        let private = private_for(&alg);
        let signer = public_of(private);
        let sig = sign_assertion(alg.name, private, BODY.as_bytes()).unwrap();
        assert!(sig.starts_with(alg.name));
        for backend in [Backend::Fast, Backend::Crates] {
            verify(&signer, BODY.as_bytes(), &sig, backend)
                .unwrap_or_else(|e| panic!("{} {backend:?}: {e}", alg.name));
        }
        Registry::default()
            .verify_assertion(&signer, BODY.as_bytes(), &sig)
            .unwrap();
        // Upper-case algorithm names are accepted when signing, and sign what is written.
        let upper = alg.name.to_ascii_uppercase();
        let sig = sign_assertion(&upper, private, BODY.as_bytes()).unwrap();
        Registry::default()
            .verify_assertion(&signer, BODY.as_bytes(), &sig)
            .unwrap();
    }
}

#[test]
fn generated_keys_round_trip() {
    let (private, public) = rsa512();
    for name in ["sig-rsa-sha1-hex:", "sig-rsa-md5-base64:"] {
        let sig = sign_assertion(name, private, BODY.as_bytes()).unwrap();
        Registry::default()
            .verify_assertion(public, BODY.as_bytes(), &sig)
            .unwrap();
        // ...and not with the corpus key.
        assert!(
            Registry::default()
                .verify_assertion(&public_of(BOB), BODY.as_bytes(), &sig)
                .is_err()
        );
    }
}

#[test]
fn generated_dsa_key_round_trips() {
    let key = PrivateKey::generate(KeyAlgorithm::Dsa, 1024).unwrap();
    let text = format!(
        "private-dsa-base64:{}",
        TextEncoding::Base64.encode(&key.to_der().unwrap())
    );
    let reparsed = PrivateKey::parse(&text).unwrap();
    let public = Principal::Key(reparsed.public_key());
    assert_eq!(public, Principal::Key(key.public_key()));
    let sig = sign_assertion("sig-dsa-sha1-base64:", &text, BODY.as_bytes()).unwrap();
    Registry::default()
        .verify_assertion(&public, BODY.as_bytes(), &sig)
        .unwrap();
}

#[test]
fn every_body_byte_is_covered() {
    for alg in RFC2792_ALGORITHMS {
        let private = private_for(&alg);
        let signer = public_of(private);
        let sig = sign_assertion(alg.name, private, BODY.as_bytes()).unwrap();
        for i in 0..BODY.len() {
            let mut body = BODY.as_bytes().to_vec();
            body[i] ^= 0x01;
            for backend in [Backend::Fast, Backend::Crates] {
                assert!(
                    matches!(
                        verify(&signer, &body, &sig, backend),
                        Err(SignatureError::BadSignature { .. })
                    ),
                    "{} byte {i} {backend:?}",
                    alg.name
                );
            }
        }
        // A longer or shorter body fails too.
        let longer = format!("{BODY}\n");
        assert!(verify(&signer, longer.as_bytes(), &sig, Backend::Fast).is_err());
        assert!(verify(&signer, &BODY.as_bytes()[1..], &sig, Backend::Fast).is_err());
    }
}

#[test]
fn signature_bit_flips_are_detected() {
    for alg in RFC2792_ALGORITHMS {
        let private = private_for(&alg);
        let signer = public_of(private);
        let sig = sign_assertion(alg.name, private, BODY.as_bytes()).unwrap();
        let raw = alg.encoding.decode(&sig[alg.name.len()..]).unwrap();
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = raw.clone();
                bad[i] ^= bit;
                let text = format!("{}{}", alg.name, alg.encoding.encode(&bad));
                for backend in [Backend::Fast, Backend::Crates] {
                    assert!(
                        verify(&signer, BODY.as_bytes(), &text, backend).is_err(),
                        "{} byte {i} bit {bit:#x} {backend:?}",
                        alg.name
                    );
                }
            }
        }
    }
}

#[test]
fn rsa_montgomery_set_up_made_once_judges_like_the_rsa_crate() {
    // The same key object: its Montgomery set-up is made at the first verification and serves
    // every later one; good and bad signatures are judged as the `rsa` crate judges them.
    let signer = public_of(BOB);
    for n in 0..(MONTGOMERY_AFTER * 4) {
        let body = format!("{BODY}# {n}\n");
        let sig = sign_assertion("sig-rsa-md5-hex:", BOB, body.as_bytes()).unwrap();
        for backend in [Backend::Fast, Backend::Crates] {
            assert!(
                verify(&signer, body.as_bytes(), &sig, backend).is_ok(),
                "{n}"
            );
            let other = format!("{body} ");
            assert!(matches!(
                verify(&signer, other.as_bytes(), &sig, backend),
                Err(SignatureError::BadSignature { .. })
            ));
        }
    }
}

#[test]
fn rsa_signature_with_leading_zeros_dropped_still_verifies() {
    // OpenSSL works on the number: a signature whose first byte(s) are zero may be written
    // shorter. Find such a body by trying a few.
    let signer = public_of(BOB);
    for n in 0..2000 {
        let body = format!("{BODY}# {n}\n");
        let sig = sign_assertion("sig-rsa-sha1-hex:", BOB, body.as_bytes()).unwrap();
        let hex_part = &sig["sig-rsa-sha1-hex:".len()..];
        if let Some(stripped) = hex_part.strip_prefix("00") {
            let short = format!("sig-rsa-sha1-hex:{stripped}");
            for backend in [Backend::Fast, Backend::Crates] {
                verify(&signer, body.as_bytes(), &short, backend).unwrap();
            }
            return;
        }
    }
    panic!("no signature with a leading zero byte in 2000 tries");
}

#[test]
fn fast_dsa_tables_agree_with_the_dsa_crate() {
    // One key object verifies many signatures, so the fast verifier (after MONTGOMERY_AFTER
    // uses) and its fixed-base tables (FIXED_BASE_AFTER uses later) kick in; valid and invalid
    // signatures must be judged as the crate does all along.
    let signer = public_of(ALICE);
    for n in 0..(MONTGOMERY_AFTER + FIXED_BASE_AFTER * 3) {
        let body = format!("{BODY}# {n}\n");
        let sig = sign_assertion("sig-dsa-sha1-hex:", ALICE, body.as_bytes()).unwrap();
        assert!(
            verify(&signer, body.as_bytes(), &sig, Backend::Fast).is_ok(),
            "{n}"
        );
        assert!(verify(&signer, body.as_bytes(), &sig, Backend::Crates).is_ok());
        let other = format!("{body} ");
        assert!(verify(&signer, other.as_bytes(), &sig, Backend::Fast).is_err());
        assert!(verify(&signer, other.as_bytes(), &sig, Backend::Crates).is_err());
    }
}

#[test]
fn signature_errors_are_typed() {
    let rsa = public_of(BOB);
    let dsa = public_of(ALICE);
    let registry = Registry::default();
    let body = BODY.as_bytes();
    let check = |signer: &Principal, value: &str| registry.verify_assertion(signer, body, value);
    assert!(matches!(
        check(&rsa, "no colon"),
        Err(SignatureError::UnknownAlgorithm { .. })
    ));
    assert!(matches!(
        check(&rsa, "sig-foo:00"),
        Err(SignatureError::UnknownAlgorithm { .. })
    ));
    assert!(matches!(
        check(&rsa, "sig-rsa-sha1-hex:abc"),
        Err(SignatureError::Encoding {
            source: DecodeError::OddHexLength { len: 3 },
            ..
        })
    ));
    assert!(matches!(
        check(&rsa, "sig-rsa-sha1-hex:zz"),
        Err(SignatureError::Encoding {
            source: DecodeError::InvalidHexDigit { offset: 0, .. },
            ..
        })
    ));
    assert!(matches!(
        check(&rsa, "sig-rsa-sha1-base64:abc"),
        Err(SignatureError::Encoding {
            source: DecodeError::Base64Length { len: 3 },
            ..
        })
    ));
    assert!(matches!(
        check(&rsa, "sig-rsa-sha1-base64:a*c="),
        Err(SignatureError::Encoding {
            source: DecodeError::InvalidBase64 { .. },
            ..
        })
    ));
    assert!(matches!(
        check(&rsa, "sig-rsa-sha1-base64:AA=="),
        Err(SignatureError::TooShort { len: 1, .. })
    ));
    assert!(matches!(
        check(&rsa, "sig-rsa-sha1-base64:"),
        Err(SignatureError::TooShort { len: 0, .. })
    ));
    // Empty hex is a (bad) signature, not an encoding error, as in the reference.
    assert!(matches!(
        check(&rsa, "sig-rsa-sha1-hex:"),
        Err(SignatureError::BadSignature { .. })
    ));
    let too_long = format!("sig-rsa-sha1-hex:{}", "11".repeat(129));
    assert!(matches!(
        check(&rsa, &too_long),
        Err(SignatureError::Malformed { .. })
    ));
    // A signature number >= n.
    let big = format!("sig-rsa-sha1-hex:{}", "ff".repeat(128));
    assert!(matches!(
        check(&rsa, &big),
        Err(SignatureError::BadSignature { .. })
    ));
    assert!(matches!(
        check(&dsa, "sig-dsa-sha1-hex:3000"),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        check(&dsa, "sig-dsa-sha1-hex:300602010002010001"),
        Err(SignatureError::Malformed { .. })
    ));
    assert!(matches!(
        check(&dsa, "sig-rsa-md5-hex:00"),
        Err(SignatureError::AlgorithmMismatch { key: "dsa", .. })
    ));
    assert!(matches!(
        check(&rsa, "sig-dsa-sha1-hex:00"),
        Err(SignatureError::AlgorithmMismatch { key: "rsa", .. })
    ));
    let binary = Principal::parse("binary-hex:0011").unwrap();
    assert!(matches!(
        check(&binary, "sig-rsa-sha1-hex:00"),
        Err(SignatureError::AlgorithmMismatch { key: "binary", .. })
    ));
    // r = q is out of range.
    let q = hex::decode("d9665511de356fcc1d15c1acb832a2e899bd7ff5").unwrap();
    let sig = format!(
        "sig-dsa-sha1-hex:{}",
        hex::encode(tlv(0x30, &[der_uint(&q), der_uint(&[1])].concat()))
    );
    assert!(matches!(
        check(&dsa, &sig),
        Err(SignatureError::BadSignature { .. })
    ));
    assert!(
        SignatureError::Encoding {
            alg: String::new(),
            source: DecodeError::OddHexLength { len: 1 }
        }
        .is_syntax_error()
    );
    assert!(!SignatureError::BadSignature { alg: String::new() }.is_syntax_error());
}

#[test]
fn key_errors_are_typed() {
    assert!(matches!(
        Principal::parse("rsa-hex:3000"),
        Err(KeyError::Der { .. })
    ));
    // Trailing bytes after the SEQUENCE.
    let bob = public_of(BOB)
        .key()
        .unwrap()
        .to_key_string(TextEncoding::Hex)
        .unwrap();
    assert!(matches!(
        Principal::parse(&format!("{bob}00")),
        Err(KeyError::Der { .. })
    ));
    // A negative modulus.
    assert!(matches!(
        Principal::parse("rsa-hex:3006020180020103"),
        Err(KeyError::Der { .. })
    ));
    // Non-minimal INTEGER encoding.
    assert!(matches!(
        Principal::parse("rsa-hex:300702020001020103"),
        Err(KeyError::Der { .. })
    ));
    assert!(matches!(
        Principal::parse("dsa-base64:MAA="),
        Err(KeyError::Der { .. })
    ));
    assert!(matches!(
        Principal::parse("x509-hex:3000"),
        Err(KeyError::Der { .. })
    ));
    assert!(matches!(
        Principal::parse("DSA-BASE64:###="),
        Err(KeyError::Encoding { .. })
    ));
    // binary keys are any bytes, even none.
    assert_eq!(
        Principal::parse("binary-hex:").unwrap(),
        Principal::Key(PublicKey::Binary(vec![]))
    );
    assert!(matches!(
        PrivateKey::parse("rsa-hex:00"),
        Err(KeyError::NotPrivateKey { .. })
    ));
    assert!(matches!(
        PrivateKey::parse("private-"),
        Err(KeyError::NotPrivateKey { .. })
    ));
    assert!(matches!(
        PrivateKey::parse("private-binary-hex:00"),
        Err(KeyError::UnsupportedPrivateKey { .. })
    ));
    assert!(matches!(
        PrivateKey::parse("private-x509-hex:00"),
        Err(KeyError::UnsupportedPrivateKey { .. })
    ));
    assert!(matches!(
        PrivateKey::parse("private-rsa-hex:3000"),
        Err(KeyError::Der { .. })
    ));
    assert!(matches!(
        PrivateKey::parse("private-dsa-hex:3000"),
        Err(KeyError::Der { .. })
    ));
    // A DSA private key with a version other than 0.
    let alice = PrivateKey::parse(ALICE).unwrap();
    let der = alice.to_der().unwrap();
    assert_eq!(&der[4..7], &[0x02, 0x01, 0x00]);
    let mut bad = der.clone();
    bad[6] = 1;
    assert!(matches!(
        PrivateKey::parse(&format!("private-dsa-hex:{}", hex::encode(bad))),
        Err(KeyError::InvalidKey { .. })
    ));
    // Private keys never print their secrets.
    assert_eq!(format!("{alice:?}"), "PrivateKey::Dsa(1024 bits)");
}

#[test]
fn encoded_key_length_limit_boundary() {
    let at_limit = format!("binary-hex:{}", "a".repeat(MAX_ENCODED_KEY_LEN));
    assert!(
        matches!(Principal::parse(&at_limit), Ok(Principal::Key(PublicKey::Binary(b))) if b.len() == MAX_ENCODED_KEY_LEN / 2)
    );
    let over = format!("binary-hex:{}", "a".repeat(MAX_ENCODED_KEY_LEN + 2));
    assert!(
        matches!(Principal::parse(&over), Err(KeyError::TooLong { len, .. }) if len == MAX_ENCODED_KEY_LEN + 2)
    );
}

/// DER TLV with the minimal definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.push(0x82);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

/// DER INTEGER of an unsigned big-endian number without leading zeros.
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(bytes);
    tlv(0x02, &content)
}

/// `bits` one-bits, big-endian.
fn ones(bits: usize) -> Vec<u8> {
    let mut n = vec![0xffu8; bits.div_ceil(8)];
    if !bits.is_multiple_of(8) {
        n[0] = (1u8 << (bits % 8)) - 1;
    }
    n
}

/// An RSA public key string with an odd modulus of exactly `bits` bits.
fn rsa_key_of_bits(bits: usize) -> Principal {
    let der = tlv(
        0x30,
        &[der_uint(&ones(bits)), der_uint(&[1, 0, 1])].concat(),
    );
    Principal::parse(&format!("rsa-hex:{}", hex::encode(der))).unwrap()
}

#[test]
fn rsa_modulus_limit_boundary() {
    let ok = rsa_key_of_bits(MAX_RSA_MODULUS_BITS);
    let Principal::Key(PublicKey::Rsa(k)) = &ok else {
        panic!()
    };
    assert_eq!(k.bits(), MAX_RSA_MODULUS_BITS);
    let sig = format!("sig-rsa-sha1-hex:{}", "01".repeat(MAX_RSA_MODULUS_BITS / 8));
    assert!(matches!(
        Registry::default().verify_assertion(&ok, b"x", &sig),
        Err(SignatureError::BadSignature { .. })
    ));
    let over = rsa_key_of_bits(MAX_RSA_MODULUS_BITS + 1);
    assert!(matches!(
        Registry::default().verify_assertion(&over, b"x", &sig),
        Err(SignatureError::UnusableKey { .. })
    ));
}

#[test]
fn dsa_prime_limit_boundary() {
    // Domain parameters that are not a real group: the limit check comes first.
    let key = |p_bits: usize| {
        let content = [
            der_uint(&[3]),
            der_uint(&ones(p_bits)),
            der_uint(&ones(160)),
            der_uint(&[2]),
        ]
        .concat();
        Principal::parse(&format!("dsa-hex:{}", hex::encode(tlv(0x30, &content)))).unwrap()
    };
    let sig = "sig-dsa-sha1-hex:3006020101020101";
    let over = Registry::default().verify_assertion(&key(MAX_DSA_PRIME_BITS + 1), b"x", sig);
    assert!(
        matches!(&over, Err(SignatureError::UnusableKey { reason, .. }) if reason.contains("exceeds")),
        "{over:?}"
    );
    let at = Registry::default().verify_assertion(&key(MAX_DSA_PRIME_BITS), b"x", sig);
    assert!(
        !matches!(&at, Err(SignatureError::UnusableKey { reason, .. }) if reason.contains("exceeds")),
        "{at:?}"
    );
}

#[test]
fn dsa_subgroup_sizes_are_those_of_openssl() {
    // q must have 160, 224 or 256 bits, as the reference's DSA_verify demands; a large q
    // would make the key check and each verification slow.
    let key = |q: &[u8]| {
        let content = [
            der_uint(&[3]),
            der_uint(&ones(1024)),
            der_uint(q),
            der_uint(&[2]),
        ]
        .concat();
        Principal::parse(&format!("dsa-hex:{}", hex::encode(tlv(0x30, &content)))).unwrap()
    };
    let sig = "sig-dsa-sha1-hex:3006020101020101";
    for bits in [159usize, 161, 512, 1000] {
        let err = Registry::default().verify_assertion(&key(&ones(bits)), b"x", sig);
        assert!(
            matches!(&err, Err(SignatureError::UnusableKey { reason, .. }) if reason.contains("must be 160")),
            "{bits}: {err:?}"
        );
    }
    for bits in DSA_SUBGROUP_BITS {
        let err = Registry::default().verify_assertion(&key(&ones(bits)), b"x", sig);
        assert!(
            !matches!(&err, Err(SignatureError::UnusableKey { reason, .. }) if reason.contains("must be 160")),
            "{bits}: {err:?}"
        );
    }
}

#[test]
fn x509_keys_from_spki_and_certificates() {
    let bob = public_of(BOB);
    let rsa_der = bob.key().unwrap().to_der().unwrap();
    // rsaEncryption AlgorithmIdentifier with NULL parameters.
    let alg_id = tlv(
        0x30,
        &[
            tlv(0x06, &hex::decode("2a864886f70d010101").unwrap()),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let mut bits = vec![0u8];
    bits.extend_from_slice(&rsa_der);
    let spki = tlv(0x30, &[alg_id.clone(), tlv(0x03, &bits)].concat());
    let from_spki = Principal::parse(&format!("x509-hex:{}", hex::encode(&spki))).unwrap();
    let Principal::Key(PublicKey::X509(X509Key::Rsa(_))) = &from_spki else {
        panic!("{from_spki:?}")
    };
    // A minimal certificate around the same SubjectPublicKeyInfo.
    let name = tlv(0x30, &[]);
    let tbs = tlv(
        0x30,
        &[
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            alg_id.clone(),
            name.clone(),
            tlv(0x30, &[]),
            name,
            spki.clone(),
        ]
        .concat(),
    );
    let cert = tlv(0x30, &[tbs, alg_id, tlv(0x03, &[0])].concat());
    let from_cert = Principal::parse(&format!(
        "X509-BASE64:{}",
        TextEncoding::Base64.encode(&cert)
    ))
    .unwrap();
    assert_eq!(from_cert, from_spki);
    // Same numbers, different algorithm: not the same principal (kn_keycompare).
    assert_ne!(from_cert, bob);
    // But an x509 RSA key verifies sig-rsa-* signatures, as in the reference.
    let sig = sign_assertion("sig-rsa-sha1-hex:", BOB, BODY.as_bytes()).unwrap();
    Registry::default()
        .verify_assertion(&from_cert, BODY.as_bytes(), &sig)
        .unwrap();
    // Unsupported algorithms are named.
    let ec = tlv(
        0x30,
        &[
            tlv(0x30, &tlv(0x06, &hex::decode("2a8648ce3d0201").unwrap())),
            tlv(0x03, &[0, 4]),
        ]
        .concat(),
    );
    assert!(matches!(
        Principal::parse(&format!("x509-hex:{}", hex::encode(ec))),
        Err(KeyError::UnsupportedX509Algorithm { oid, .. }) if oid == "1.2.840.10045.2.1"
    ));
}

fn flip_case(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().cycle())
        .map(|(c, &up)| {
            if up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn keys_compare_after_decoding(mask in proptest::collection::vec(any::<bool>(), 1..64), dsa in any::<bool>()) {
        let key = public_of(if dsa { ALICE } else { BOB });
        let public = key.key().unwrap();
        let hex_form = public.to_key_string(TextEncoding::Hex).unwrap();
        // Any case of the prefix and of the hex digits is the same principal.
        prop_assert_eq!(Principal::parse(&flip_case(&hex_form, &mask)).unwrap(), key.clone());
        // base64 (case matters in the data, not in the prefix).
        let b64 = public.to_key_string(TextEncoding::Base64).unwrap();
        let colon = b64.find(':').unwrap() + 1;
        let b64 = format!("{}{}", flip_case(&b64[..colon], &mask), &b64[colon..]);
        prop_assert_eq!(Principal::parse(&b64).unwrap(), key);
    }

    #[test]
    fn decoding_never_panics(s in "(?i:(private-)?(rsa|dsa|x509|binary)-(hex|base64):)?[0-9a-fA-F+/=: ]{0,300}") {
        let _ = Principal::parse(&s);
        let _ = PrivateKey::parse(&s);
    }

    #[test]
    fn der_shaped_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), prefix in 0usize..5) {
        let prefix = ["rsa-hex:", "dsa-hex:", "x509-hex:", "private-rsa-hex:", "private-dsa-hex:"][prefix];
        let mut der = vec![0x30, 0x82, (bytes.len() >> 8) as u8, bytes.len() as u8];
        der.extend_from_slice(&bytes);
        let s = format!("{prefix}{}", hex::encode(der));
        let _ = Principal::parse(&s);
        let _ = PrivateKey::parse(&s);
    }

    #[test]
    fn random_signatures_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..200), alg in 0usize..6) {
        let alg = RFC2792_ALGORITHMS[alg];
        let signer = public_of(private_for(&alg));
        let sig = format!("{}{}", alg.name, alg.encoding.encode(&bytes));
        let fast = verify(&signer, BODY.as_bytes(), &sig, Backend::Fast);
        let crates = verify(&signer, BODY.as_bytes(), &sig, Backend::Crates);
        prop_assert!(fast.is_err());
        prop_assert_eq!(fast, crates);
    }
}
