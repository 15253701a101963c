//! The modular exponentiation under RSA verification in the default build.
//!
//! sequoia's pure-Rust backend verifies RSA signatures with RustCrypto's `rsa`, which computes
//! `s^e mod n` with num-bigint-dig's `BigUint::modpow`. The workspace patches that function
//! (vendor/num-bigint-dig/PATCHED.md: square-and-multiply for one-digit exponents instead of
//! a fixed window). These tests hold the patched `modpow` to an independent computation:
//! square-and-multiply with plain multiplication and long division, no Montgomery form.

use num_bigint_dig::BigUint;
use proptest::prelude::*;

/// `base^exp mod m` by the schoolbook method: nothing shared with `modpow`'s Montgomery code.
fn reference(base: &BigUint, exp: &BigUint, m: &BigUint) -> BigUint {
    let mut acc = BigUint::from(1u32) % m;
    let base = base % m;
    for i in (0..exp.bits()).rev() {
        acc = &acc * &acc % m;
        if (exp >> i) & BigUint::from(1u32) == BigUint::from(1u32) {
            acc = &acc * &base % m;
        }
    }
    acc
}

/// An odd modulus of `digits` 64-bit digits with its top bit set (as RSA moduli are) or not.
fn modulus(bytes: &[u8], top_bit: bool) -> BigUint {
    let mut b = bytes.to_vec();
    if let Some(last) = b.last_mut() {
        *last |= 1;
    }
    if top_bit && let Some(first) = b.first_mut() {
        *first |= 0x80;
    }
    BigUint::from_bytes_be(&b)
}

/// The exponents RSA meets (3, 65537), the edges of one 64-bit digit, and two-digit ones that
/// take the unpatched window path.
const EXPONENTS: &[u128] = &[
    1,
    2,
    3,
    17,
    65_537,
    (1 << 63) + 1,
    u64::MAX as u128,
    1 << 64,
    (1 << 64) + 65_537,
    u128::MAX,
];

#[test]
fn fixed_exponents_on_rsa_sized_moduli() {
    // A deterministic spread of bytes (no RNG needed for a fixed table).
    let bytes: Vec<u8> = (0u32..1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for bits in [1024usize, 2048, 3072, 4096] {
        let m = modulus(&bytes[..bits / 8], true);
        let below = BigUint::from_bytes_be(&bytes[3..bits / 8]) % &m;
        // Same number of digits as m but not reduced: modpow must cope (rsa passes s < n, but
        // modpow itself promises the right answer for any base).
        let same_len_above = &m + BigUint::from(12_345u32);
        let longer = BigUint::from_bytes_be(&bytes[..bits / 8 + 40]);
        let minus_one = &m - BigUint::from(1u32);
        for base in [
            BigUint::from(0u32),
            BigUint::from(1u32),
            BigUint::from(2u32),
            minus_one,
            below,
            same_len_above,
            longer,
        ] {
            for &e in EXPONENTS {
                let e = BigUint::from_bytes_be(&e.to_be_bytes());
                assert_eq!(
                    base.modpow(&e, &m),
                    reference(&base, &e, &m),
                    "{bits}-bit modulus, exponent {e}, base of {} bits",
                    base.bits()
                );
            }
        }
    }
}

#[test]
fn small_moduli() {
    for m in [1u32, 3, 5, 7, 65_537, u32::MAX] {
        let m = BigUint::from(m);
        for base in [0u32, 1, 2, 4, 65_536, u32::MAX] {
            let base = BigUint::from(base);
            for &e in EXPONENTS {
                let e = BigUint::from_bytes_be(&e.to_be_bytes());
                assert_eq!(
                    base.modpow(&e, &m),
                    reference(&base, &e, &m),
                    "{base}^{e} mod {m}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random moduli of 1 to 64 digits (up to RSA-4096), random bases (some longer than the
    /// modulus), and random one-digit exponents: the patched path.
    #[test]
    fn one_digit_exponents_match_the_schoolbook_method(
        m_bytes in proptest::collection::vec(any::<u8>(), 1..=512),
        top_bit in any::<bool>(),
        base_bytes in proptest::collection::vec(any::<u8>(), 0..=560),
        e in 1u64..,
    ) {
        let m = modulus(&m_bytes, top_bit);
        let base = BigUint::from_bytes_be(&base_bytes);
        let e = BigUint::from(e);
        prop_assert_eq!(base.modpow(&e, &m), reference(&base, &e, &m));
    }

    /// Random two-digit exponents: upstream's window path, moved into its own function.
    #[test]
    fn two_digit_exponents_match_the_schoolbook_method(
        m_bytes in proptest::collection::vec(any::<u8>(), 1..=128),
        base_bytes in proptest::collection::vec(any::<u8>(), 0..=128),
        e in (1u128 << 64)..,
    ) {
        let m = modulus(&m_bytes, true);
        let base = BigUint::from_bytes_be(&base_bytes);
        let e = BigUint::from_bytes_be(&e.to_be_bytes());
        prop_assert_eq!(base.modpow(&e, &m), reference(&base, &e, &m));
    }
}
