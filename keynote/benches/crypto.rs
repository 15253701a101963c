//! Benchmarks of `keynote::crypto` alone: decoding principals, verifying RFC 2792 signatures
//! (the fast path against the `rsa`/`dsa` crates' own verification) and signing, on the
//! conformance corpus's 1024-bit keys; plus the signature checks of the perf inputs
//! benches/perf/sigver (1,000 credentials each) without parsing or process start-up.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use keynote::crypto::{Backend, Principal, Registry, Rfc2792Algorithm, sign_assertion};
use std::hint::black_box;
use std::path::Path;

const RSA_PUBLIC: &str = "rsa-hex:3081890281810092b8e988230c8d7eaa91fc9083c8b51dcb284be9a740e8c700e0042787066ae8998b1d827202fcd2688c708839a10c348ad1bc7753059d0593474daff5373d0dec65384e30ec1a007d66830040711e4cd65d6835dd501656f4707fa04cbe083506bf945b2dfa1b80acd0352ab7b4149bda95e35382622a015b0d2f7b9599fc670203010001";
const RSA_PRIVATE: &str = "private-rsa-hex:3082025b0201000281810092b8e988230c8d7eaa91fc9083c8b51dcb284be9a740e8c700e0042787066ae8998b1d827202fcd2688c708839a10c348ad1bc7753059d0593474daff5373d0dec65384e30ec1a007d66830040711e4cd65d6835dd501656f4707fa04cbe083506bf945b2dfa1b80acd0352ab7b4149bda95e35382622a015b0d2f7b9599fc67020301000102818037a90a7ee8bcf4589f20aeadac30d1f4b18361f90bc8260688a0733303983daa6bc548b699c5e45f75e60132cc99f9e55cdc6020ec4feed7949db22d145b963f44e8c256b55b2ac90403de1985aff27e600f0a5b2a38245b3979988fe7883b6ee06b8d3881107a34bc49c7a2b88c38ec25188ca56939587859070726c2a50ea1024100c2622c39e51e1f5ec5619a72b90248724903366a7dcc4af4282d3b36ed8dc8461e12aa42836f58d82773dee8bf69aabd75161b2e706c135e9515b4fe9d653e4f024100c13b21aabc6ec5e3b156754bdba55d9554c4547e1ecbc8b71c32efa1f1129b01f5a5223bf0b1d0421a7eaad9f3079269f5ab17cd32c25c399b484e8b1e98326902403e3ad9b7cb2f0291ff94c8b253a274790a00da49eb6e1cccdf93e37229490bc5ced8e0e31c5ae8518307e86410eb8e3acb22419f7364562b20856b855bf44ea70240065791805014f6abc57b47f8486a420b0fb02df1c1c300807a0d75ee03c28f91dde5209d8505e106fa65a3e7e9611b3e1d111383e9a19573529469f788f687d9024024451276d2bf7ee74135b9d5c2433775aea50cf8dacda68e3852ab8cd242e108fe70673d1043d9a2b9c48294fe5300419a14651131de4e45fbab26579a84c66b";
const DSA_PRIVATE: &str = "private-dsa-hex:308201bc02010002818100e4248d73ec6effbbccd83804f5f753ba992585780cf1610c004544cbd34682194be8adf0ac9cb15f4402ae5a8d0112fd2964614a86b76ddf9f2a9b9fbe7ea79651affac0e739aa161b7c103bbc26ca122de4dbd140c34b30c9fb7f487a88380f6e1c37e5652a18b64630b58e73a45aa502abc6fc75a43bac566b6c16b17f71ef021500d9665511de356fcc1d15c1acb832a2e899bd7ff502818100c01304868498305afda998dbdabf9970c18f80806c3b6a215c96ee8c1196b38b9f9533e4c175d0d4959b02ee91d21c82b09e2f7696eff0c15110e675434ce57a664cdd4a9e88f2f904837aad5127a16fdec32610fc876385162059603526af998d86d47fe142ef0cc709e7082c98e7e5cb517818ba26c4cedeb737a36d3c47b50281803212edd6ae60b26e5124cd4c6c43f6599cab02ef586d099bc0c5328f35b3f76158974accdd771d48b753e44565e211ecae97b512f471ca87f251b14736b9e34808cc12c8d6407453254f6806112e4ff9f9c32b93d17ee9dc7e2dfa993334203c2d42f15e0a83d3e4e45755a74755ff021298dcaef89d78dea90e57c438d50b4e0215009bf0c2d910dbe9ebf6c02e16a6246e086aab9de6";

const BODY: &[u8] =
    b"KeyNote-Version: 2\nAuthorizer: \"k\"\nLicensees: \"user\"\nConditions: op == \"read\";\n";

/// Verify one signature value with a chosen backend.
fn verify(signer: &Principal, sig: &str, backend: Backend) -> bool {
    let colon = sig.find(':').unwrap_or(0);
    let (name, rest) = sig.split_at(colon + 1);
    let mut message = BODY.to_vec();
    message.extend_from_slice(name.as_bytes());
    Rfc2792Algorithm::by_name(name).is_some_and(|a| {
        a.verify_message_with(signer, &message, rest, backend)
            .is_ok()
    })
}

fn dsa_public() -> Principal {
    let key = keynote::crypto::PrivateKey::parse(DSA_PRIVATE).expect("corpus DSA key");
    Principal::Key(key.public_key())
}

/// (Authorizer, signed body, signature value) of every credential in a perf file, extracted
/// with a minimal splitter (each credential: literal Authorizer, Signature last).
fn credentials(file: &str) -> Vec<(String, Vec<u8>, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/perf/sigver")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("perf input");
    let literal = |s: &str| -> String {
        let s = s.trim_start().trim_start_matches('"');
        let end = s.find('"').unwrap_or(s.len());
        s[..end]
            .split("\\\n")
            .map(str::trim_start)
            .collect::<String>()
    };
    text.split("\n\n")
        .filter(|a| !a.trim().is_empty())
        .map(|a| {
            let sig_at = a.find("\nSignature:").map_or(a.len(), |i| i + 1);
            let auth_at = a.find("Authorizer:").unwrap_or(0) + "Authorizer:".len();
            (
                literal(&a[auth_at..]),
                a.as_bytes()[..sig_at].to_vec(),
                literal(a.get(sig_at + "Signature:".len()..).unwrap_or("")),
            )
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let rsa = Principal::parse(RSA_PUBLIC).expect("corpus RSA key");
    let dsa = dsa_public();
    let dsa_text = dsa
        .key()
        .and_then(|k| k.to_key_string(keynote::crypto::TextEncoding::Hex))
        .unwrap_or_default();

    let mut g = c.benchmark_group("principal_parse");
    g.bench_function("rsa_1024_hex", |b| {
        b.iter(|| Principal::parse(black_box(RSA_PUBLIC)))
    });
    g.bench_function("dsa_1024_hex", |b| {
        b.iter(|| Principal::parse(black_box(&dsa_text)))
    });
    g.finish();

    let rsa_sig = sign_assertion("sig-rsa-sha1-hex:", RSA_PRIVATE, BODY).expect("sign");
    let dsa_sig = sign_assertion("sig-dsa-sha1-hex:", DSA_PRIVATE, BODY).expect("sign");
    assert!(verify(&rsa, &rsa_sig, Backend::Fast) && verify(&dsa, &dsa_sig, Backend::Fast));

    for _ in 0..=keynote::crypto::MONTGOMERY_AFTER {
        verify(&rsa, &rsa_sig, Backend::Fast);
    }
    let mut g = c.benchmark_group("verify");
    g.bench_function("rsa_1024_sha1_fast_first_use", |b| {
        b.iter_batched(
            || Principal::parse(RSA_PUBLIC).expect("corpus RSA key"),
            |fresh| verify(&fresh, black_box(&rsa_sig), Backend::Fast),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("rsa_1024_sha1_fast_warm", |b| {
        b.iter(|| verify(&rsa, black_box(&rsa_sig), Backend::Fast))
    });
    g.bench_function("rsa_1024_sha1_rsa_crate", |b| {
        b.iter(|| verify(&rsa, black_box(&rsa_sig), Backend::Crates))
    });
    // Warm both keys up past the one-shot uses and, for DSA, until its fixed-base tables exist.
    for _ in 0..=(keynote::crypto::MONTGOMERY_AFTER + keynote::crypto::FIXED_BASE_AFTER) {
        verify(&rsa, &rsa_sig, Backend::Fast);
        verify(&dsa, &dsa_sig, Backend::Fast);
    }
    g.bench_function("dsa_1024_sha1_fast_tables", |b| {
        b.iter(|| verify(&dsa, black_box(&dsa_sig), Backend::Fast))
    });
    g.bench_function("dsa_1024_sha1_fast_first_use", |b| {
        b.iter_batched(
            dsa_public,
            |fresh| verify(&fresh, black_box(&dsa_sig), Backend::Fast),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("dsa_1024_sha1_dsa_crate", |b| {
        b.iter(|| verify(&dsa, black_box(&dsa_sig), Backend::Crates))
    });
    g.finish();

    let mut g = c.benchmark_group("sign");
    g.bench_function("rsa_1024_sha1", |b| {
        b.iter(|| sign_assertion("sig-rsa-sha1-hex:", RSA_PRIVATE, black_box(BODY)))
    });
    g.bench_function("dsa_1024_sha1", |b| {
        b.iter(|| sign_assertion("sig-dsa-sha1-hex:", DSA_PRIVATE, black_box(BODY)))
    });
    g.finish();

    // The 1,000 signature checks of `keynote sigver` on the perf inputs, one thread, with the
    // Authorizer decoded once per distinct string (as gt keynote sigver caches it).
    let mut g = c.benchmark_group("perf_sigver_crypto_only");
    g.sample_size(20);
    for file in ["rsa-1000.kn", "dsa-1000.kn"] {
        let creds = credentials(file);
        let run = || {
            let registry = Registry::rfc2792();
            let mut keys = std::collections::HashMap::new();
            creds
                .iter()
                .filter(|(auth, body, sig)| {
                    let key = keys
                        .entry(auth.as_str())
                        .or_insert_with(|| Principal::parse(auth).ok());
                    key.as_ref()
                        .is_some_and(|k| registry.verify_assertion(k, body, sig).is_ok())
                })
                .count()
        };
        assert_eq!(run(), 1000, "{file}");
        g.bench_function(file, |b| b.iter(|| black_box(run())));
    }
    g.finish();
}

criterion_group!(crypto_benches, benches);
criterion_main!(crypto_benches);
