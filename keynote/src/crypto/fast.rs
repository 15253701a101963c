//! The public-key halves of RSA and DSA verification on crypto-bigint's Montgomery arithmetic,
//! with per-key precomputation, so that checking many credentials by one key is cheap.
//!
//! Why not just the `rsa` and `dsa` crates: they recompute the Montgomery set-up of the
//! modulus (RSA) and run two full exponentiations (DSA) for every signature; `keynote sigver`
//! and the checker verify hundreds of credentials by the same few keys. Here the modulus
//! parameters are computed once per key (RSA: at the first use, with one variable-time
//! division; DSA: from its [`MONTGOMERY_AFTER`]th use on, the `dsa` crate's one-shot path
//! before that), and a DSA key used for more than
//! [`FIXED_BASE_AFTER`] further signatures gets fixed-base tables for g and y (4-bit windows),
//! which turn each exponentiation into about `bits(q) / 4` multiplications.
//!
//! Only public data is involved (keys, signatures, hashes), so the variable-time table
//! lookups leak nothing secret. All arithmetic is crypto-bigint's (RustCrypto); this module only
//! chooses which products to form. Both operations are tested against the `rsa` and `dsa`
//! crates (tests/crypto_properties.rs), which stay the reference implementation.

use crypto_bigint::modular::montgomery_reduction;
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Limb, Uint};
use num_bigint_dig::{BigUint, ModInverse};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A DSA key gets fixed-base tables once it has verified this many signatures: building them
/// costs about as much as four verifications, each later verification about a fifth.
pub const FIXED_BASE_AFTER: usize = 4;

/// A DSA key's first verifications take the `dsa` crate's one-shot path; from the next one on
/// it uses a Montgomery set-up made once, which costs about one verification (46 µs for a
/// 1024-bit modulus), so keys seen once or twice never pay for it. (RSA keys make their cheaper
/// set-up at the first use; see [`RsaOp`].)
pub const MONTGOMERY_AFTER: usize = 2;

/// RSAVP1 without any set-up: `sig^e mod n` by square-and-multiply with `num-bigint-dig`
/// products and remainders (variable time; everything here is public), as `len` bytes. Only
/// for moduli [`RsaPublicOp`] does not cover (even ones).
/// `None` when the signature is not smaller than n or does not fit in `len` bytes.
pub(crate) fn rsa_public_op_oneshot(
    n: &BigUint,
    e: &BigUint,
    sig: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let s = BigUint::from_bytes_be(sig);
    if &s >= n {
        return None;
    }
    let mut acc = s.clone();
    let e_bytes = e.to_bytes_be();
    let bits = e_bytes
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |i| byte >> i & 1 == 1))
        .skip_while(|bit| !bit)
        .skip(1);
    for bit in bits {
        acc = (&acc * &acc) % n;
        if bit {
            acc = (&acc * &s) % n;
        }
    }
    let bytes = acc.to_bytes_be();
    let pad = len.checked_sub(bytes.len())?;
    let mut out = vec![0u8; pad];
    out.extend_from_slice(&bytes);
    Some(out)
}

/// Window width of the fixed-base tables (bits of exponent per multiplication).
const WINDOW: usize = 4;
/// Table entries per window (digits 1..2^WINDOW).
const ENTRIES: usize = (1 << WINDOW) - 1;

/// `bytes` (big-endian, any leading zeros) as a `Uint<L>`, if it fits.
fn bytes_to_uint<const L: usize>(bytes: &[u8]) -> Option<Uint<L>> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = bytes.get(first..)?;
    let size = Uint::<L>::BYTES;
    let start = size.checked_sub(bytes.len())?;
    let mut padded = vec![0u8; size];
    padded.get_mut(start..)?.copy_from_slice(bytes);
    Some(Uint::from_be_slice(&padded))
}

/// Montgomery parameters for an odd modulus greater than one.
fn modulus_params<const L: usize>(m: &BigUint) -> Option<DynResidueParams<L>> {
    let odd = m.to_bytes_be().last().is_some_and(|b| b & 1 == 1);
    if !odd || m.bits() < 2 {
        return None;
    }
    Some(DynResidueParams::new(&big_to_uint::<L>(m)?))
}

fn big_to_uint<const L: usize>(x: &BigUint) -> Option<Uint<L>> {
    bytes_to_uint(&x.to_bytes_be())
}

fn uint_to_bytes<const L: usize>(x: &Uint<L>) -> Vec<u8> {
    x.as_words()
        .iter()
        .rev()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

fn uint_to_big<const L: usize>(x: &Uint<L>) -> BigUint {
    BigUint::from_bytes_be(&uint_to_bytes(x))
}

/// `base^exponent` with a public exponent of at most `bits` bits.
fn pow<const L: usize>(base: &DynResidue<L>, exponent: &Uint<L>, bits: usize) -> DynResidue<L> {
    if bits == 0 {
        DynResidue::one(*base.params())
    } else {
        base.pow_bounded_exp(exponent, bits)
    }
}

/// RSA public operation for one modulus size (`L` 64-bit limbs): Montgomery multiplication
/// with crypto-bigint's `mul_wide`/`square_wide`/`montgomery_reduction`.
///
/// crypto-bigint's own `DynResidueParams::new` derives R mod n and R^2 mod n with its
/// constant-time, bit-serial remainder, which costs as much as a whole verification (~46 µs
/// for 1,024 bits). Everything here is public, so R^2 mod n is one variable-time division
/// (num-bigint-dig) instead, and the set-up becomes cheap enough for keys that sign a single
/// credential (a chain of 1,000 credentials by 1,000 keys, perf input a').
#[derive(Clone, Debug)]
pub(crate) struct RsaOp<const L: usize> {
    /// The modulus n (odd).
    n: Uint<L>,
    /// R^2 mod n, R = 2^(64 L): multiplying by it (and reducing) enters Montgomery form.
    r2: Uint<L>,
    /// -n^-1 mod 2^64.
    n_neg_inv: Limb,
    /// The public exponent's bits, most significant first, without the leading one.
    e_tail: Vec<bool>,
}

impl<const L: usize> RsaOp<L> {
    fn new(n: &BigUint, e: &BigUint) -> Option<Self> {
        let odd = n.to_bytes_be().last().is_some_and(|b| b & 1 == 1);
        if !odd || n.bits() < 2 {
            return None;
        }
        let r2 = (BigUint::from(1u8) << (2 * Limb::BITS * L)) % n;
        let n_uint = big_to_uint::<L>(n)?;
        let low = Uint::<1>::from_words([n_uint.as_words().first().copied()?]);
        let n_neg_inv = Limb(0u64.wrapping_sub(low.inv_mod2k_vartime(64).as_words()[0]));
        let bits: Vec<bool> = e
            .to_bytes_be()
            .iter()
            .flat_map(|byte| (0..8).rev().map(move |i| byte >> i & 1 == 1))
            .skip_while(|bit| !bit)
            .collect();
        Some(RsaOp {
            n: n_uint,
            r2: big_to_uint::<L>(&r2)?,
            n_neg_inv,
            e_tail: bits.get(1..)?.to_vec(),
        })
    }

    /// `a * b * R^-1 mod n` for `a, b < n`.
    fn mont_mul(&self, a: &Uint<L>, b: &Uint<L>) -> Uint<L> {
        montgomery_reduction(&a.mul_wide(b), &self.n, self.n_neg_inv)
    }

    fn public_op(&self, sig: &[u8], len: usize) -> Option<Vec<u8>> {
        let s = bytes_to_uint::<L>(sig)?;
        if s >= self.n {
            return None;
        }
        // Left-to-right square-and-multiply: the exponent is public, so variable time is fine,
        // and for e = 65537 this is 17 products instead of a windowed method's ~36.
        let base = self.mont_mul(&s, &self.r2);
        let mut acc = base;
        for &bit in &self.e_tail {
            acc = montgomery_reduction(&acc.square_wide(), &self.n, self.n_neg_inv);
            if bit {
                acc = self.mont_mul(&acc, &base);
            }
        }
        // Leave Montgomery form: reduce acc * 1.
        let m = montgomery_reduction(&(acc, Uint::ZERO), &self.n, self.n_neg_inv);
        let bytes = uint_to_bytes(&m);
        let cut = bytes.len().checked_sub(len)?;
        // m < n < 2^(8 len): the bytes before `cut` are zero.
        bytes.get(cut..).map(<[u8]>::to_vec)
    }
}

/// The RSA public operation `s^e mod n` for a modulus of up to 4096 bits.
#[derive(Clone, Debug)]
pub(crate) enum RsaPublicOp {
    /// Up to 1024 bits.
    L16(Box<RsaOp<16>>),
    /// Up to 2048 bits.
    L32(Box<RsaOp<32>>),
    /// Up to 4096 bits.
    L64(Box<RsaOp<64>>),
}

impl RsaPublicOp {
    /// Set up for modulus `n` and exponent `e`; `None` for an even modulus or one over 4096
    /// bits (callers validate keys with the `rsa` crate first).
    pub(crate) fn new(n: &BigUint, e: &BigUint) -> Option<Self> {
        match n.bits() {
            0..=1024 => RsaOp::new(n, e).map(|op| RsaPublicOp::L16(Box::new(op))),
            1025..=2048 => RsaOp::new(n, e).map(|op| RsaPublicOp::L32(Box::new(op))),
            2049..=4096 => RsaOp::new(n, e).map(|op| RsaPublicOp::L64(Box::new(op))),
            _ => None,
        }
    }

    /// `sig^e mod n` as `len` big-endian bytes; `None` when the signature, read as a number,
    /// is not smaller than n (RFC 8017 §5.2.2 RSAVP1 "signature representative out of range").
    pub(crate) fn public_op(&self, sig: &[u8], len: usize) -> Option<Vec<u8>> {
        match self {
            RsaPublicOp::L16(op) => op.public_op(sig, len),
            RsaPublicOp::L32(op) => op.public_op(sig, len),
            RsaPublicOp::L64(op) => op.public_op(sig, len),
        }
    }
}

/// Fixed-base exponentiation table: entry `i * ENTRIES + d - 1` is `base^(d * 16^i)`.
#[derive(Debug)]
struct FixedBase<const L: usize> {
    windows: usize,
    table: Vec<DynResidue<L>>,
}

impl<const L: usize> FixedBase<L> {
    fn new(base: &DynResidue<L>, exponent_bits: usize) -> Self {
        let windows = exponent_bits.div_ceil(WINDOW);
        let mut table = Vec::with_capacity(windows * ENTRIES);
        let mut b = *base; // base^(16^i)
        for _ in 0..windows {
            let mut acc = b;
            table.push(acc);
            for _ in 1..ENTRIES {
                acc *= b;
                table.push(acc);
            }
            b = acc * b;
        }
        FixedBase { windows, table }
    }

    fn pow(&self, exponent: &BigUint, one: DynResidue<L>) -> Option<DynResidue<L>> {
        if exponent.bits() > self.windows * WINDOW {
            return None;
        }
        let mut result = one;
        for (i, byte) in exponent.to_bytes_le().iter().enumerate() {
            for (half, digit) in [(0, byte & 0x0f), (1, byte >> 4)] {
                if digit != 0 {
                    let index = (2 * i + half) * ENTRIES + usize::from(digit) - 1;
                    result *= self.table.get(index)?;
                }
            }
        }
        Some(result)
    }
}

/// DSA verification equation for one prime size.
#[derive(Debug)]
pub(crate) struct DsaOp<const L: usize> {
    g: DynResidue<L>,
    y: DynResidue<L>,
    q: BigUint,
    uses: AtomicUsize,
    tables: OnceLock<(FixedBase<L>, FixedBase<L>)>,
}

impl<const L: usize> DsaOp<L> {
    fn new(p: &BigUint, q: &BigUint, g: &BigUint, y: &BigUint) -> Option<Self> {
        let params = modulus_params::<L>(p)?;
        Some(DsaOp {
            g: DynResidue::new(&big_to_uint(g)?, params),
            y: DynResidue::new(&big_to_uint(y)?, params),
            q: q.clone(),
            uses: AtomicUsize::new(0),
            tables: OnceLock::new(),
        })
    }

    /// `g^u1 * y^u2 mod p`.
    fn combine(&self, u1: &BigUint, u2: &BigUint) -> Option<BigUint> {
        let one = DynResidue::one(*self.g.params());
        let product = if self.uses.fetch_add(1, Ordering::Relaxed) >= FIXED_BASE_AFTER {
            let (tg, ty) = self.tables.get_or_init(|| {
                let bits = self.q.bits();
                (FixedBase::new(&self.g, bits), FixedBase::new(&self.y, bits))
            });
            tg.pow(u1, one)? * ty.pow(u2, one)?
        } else {
            pow(&self.g, &big_to_uint(u1)?, u1.bits()) * pow(&self.y, &big_to_uint(u2)?, u2.bits())
        };
        Some(uint_to_big(&product.retrieve()))
    }

    fn verify(&self, hash: &[u8], r: &BigUint, s: &BigUint) -> bool {
        let q = &self.q;
        // FIPS 186-4 §4.7: 0 < r < q and 0 < s < q.
        if r.bits() == 0 || s.bits() == 0 || r >= q || s >= q {
            return false;
        }
        let Some(w) = s.mod_inverse(q).and_then(|w| w.to_biguint()) else {
            return false;
        };
        // The leftmost min(N, outlen) bits of the hash, in whole bytes as OpenSSL and the
        // `dsa` crate take them.
        let z_len = (q.bits() / 8).min(hash.len());
        let z = BigUint::from_bytes_be(hash.get(..z_len).unwrap_or(hash));
        let u1 = (z * &w) % q;
        let u2 = (r * &w) % q;
        self.combine(&u1, &u2).is_some_and(|v| (v % q) == *r)
    }
}

/// DSA verification for a prime p of up to 4096 bits.
#[derive(Debug)]
pub(crate) enum DsaVerifyOp {
    /// p up to 1024 bits.
    L16(Box<DsaOp<16>>),
    /// p up to 2048 bits.
    L32(Box<DsaOp<32>>),
    /// p up to 4096 bits.
    L64(Box<DsaOp<64>>),
}

impl DsaVerifyOp {
    /// Set up for a key already validated by the `dsa` crate; `None` for an even p or one over
    /// 4096 bits.
    pub(crate) fn new(p: &BigUint, q: &BigUint, g: &BigUint, y: &BigUint) -> Option<Self> {
        match p.bits() {
            0..=1024 => DsaOp::new(p, q, g, y).map(|op| DsaVerifyOp::L16(Box::new(op))),
            1025..=2048 => DsaOp::new(p, q, g, y).map(|op| DsaVerifyOp::L32(Box::new(op))),
            2049..=4096 => DsaOp::new(p, q, g, y).map(|op| DsaVerifyOp::L64(Box::new(op))),
            _ => None,
        }
    }

    /// Whether (r, s) is a valid signature on `hash` (FIPS 186-4 §4.7).
    pub(crate) fn verify(&self, hash: &[u8], r: &BigUint, s: &BigUint) -> bool {
        match self {
            DsaVerifyOp::L16(op) => op.verify(hash, r, s),
            DsaVerifyOp::L32(op) => op.verify(hash, r, s),
            DsaVerifyOp::L64(op) => op.verify(hash, r, s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_base_matches_plain_exponentiation() {
        let p = BigUint::parse_bytes(b"e4248d73ec6effbbccd83804f5f753ba992585780cf1610c004544cbd34682194be8adf0ac9cb15f4402ae5a8d0112fd2964614a86b76ddf9f2a9b9fbe7ea79651affac0e739aa161b7c103bbc26ca122de4dbd140c34b30c9fb7f487a88380f6e1c37e5652a18b64630b58e73a45aa502abc6fc75a43bac566b6c16b17f71ef", 16).unwrap();
        let params = DynResidueParams::new(&big_to_uint::<16>(&p).unwrap());
        let base = DynResidue::new(&big_to_uint(&BigUint::from(7u8)).unwrap(), params);
        let table = FixedBase::new(&base, 160);
        let one = DynResidue::one(params);
        for e in [
            BigUint::from(0u8),
            BigUint::from(1u8),
            BigUint::from(16u8),
            BigUint::from(0xffff_ffff_u32),
            (BigUint::from(1u8) << 160) - 1u8,
        ] {
            let expected = BigUint::from(7u8).modpow(&e, &p);
            let got = uint_to_big(&table.pow(&e, one).unwrap().retrieve());
            assert_eq!(got, expected, "exponent {e}");
            let plain = uint_to_big(&pow(&base, &big_to_uint(&e).unwrap(), e.bits()).retrieve());
            assert_eq!(plain, expected);
        }
        assert!(table.pow(&(BigUint::from(1u8) << 160), one).is_none());
    }

    #[test]
    fn rsa_public_op_matches_modpow() {
        let n = BigUint::parse_bytes(b"92b8e988230c8d7eaa91fc9083c8b51dcb284be9a740e8c700e0042787066ae8998b1d827202fcd2688c708839a10c348ad1bc7753059d0593474daff5373d0dec65384e30ec1a007d66830040711e4cd65d6835dd501656f4707fa04cbe083506bf945b2dfa1b80acd0352ab7b4149bda95e35382622a015b0d2f7b9599fc67", 16).unwrap();
        let s = BigUint::parse_bytes(b"123456789abcdef0123456789abcdef", 16).unwrap();
        for e in [3u64, 17, 65537, (1 << 33) - 1] {
            let e = BigUint::from(e);
            let op = RsaPublicOp::new(&n, &e).unwrap();
            let got = op.public_op(&s.to_bytes_be(), 128).unwrap();
            let want = s.modpow(&e, &n).to_bytes_be();
            assert_eq!(
                BigUint::from_bytes_be(&got),
                BigUint::from_bytes_be(&want),
                "e = {e}"
            );
            assert_eq!(got.len(), 128);
        }
        // s >= n is out of range.
        let op = RsaPublicOp::new(&n, &BigUint::from(3u8)).unwrap();
        assert!(op.public_op(&n.to_bytes_be(), 128).is_none());
        assert!(rsa_public_op_oneshot(&n, &BigUint::from(3u8), &n.to_bytes_be(), 128).is_none());
        // Even moduli are refused.
        assert!(RsaPublicOp::new(&(n + 1u8), &BigUint::from(3u8)).is_none());
    }

    #[test]
    fn rsa_montgomery_matches_modpow_on_many_moduli() {
        // Odd moduli of every limb count the three sizes cover (and the edges of each), with
        // bases near 0 and near n: the cheap R^2 set-up must give exactly modpow's answers.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for bits in [
            2usize, 63, 64, 65, 512, 1023, 1024, 1025, 2048, 3000, 4095, 4096,
        ] {
            for round in 0..4 {
                let words: Vec<u8> = (0..bits.div_ceil(64))
                    .flat_map(|_| next().to_be_bytes())
                    .collect();
                let mut n = BigUint::from_bytes_be(&words) >> (words.len() * 8 - bits);
                n |= BigUint::from(1u8) << (bits - 1);
                n |= BigUint::from(1u8);
                let s = match round {
                    0 => BigUint::from(0u8),
                    1 => &n - 1u8,
                    _ => BigUint::from_bytes_be(&words) % &n,
                };
                for e in [3u64, 65537, next() | 1] {
                    let e = BigUint::from(e);
                    let len = bits.div_ceil(8);
                    let op = RsaPublicOp::new(&n, &e).unwrap();
                    let got = op.public_op(&s.to_bytes_be(), len).unwrap();
                    assert_eq!(
                        BigUint::from_bytes_be(&got),
                        s.modpow(&e, &n),
                        "{bits} bits, round {round}, e = {e}"
                    );
                    assert_eq!(got.len(), len);
                }
            }
        }
    }

    #[test]
    fn conversions_round_trip_and_bound() {
        let x = BigUint::parse_bytes(b"0102030405060708090a", 16).unwrap();
        assert_eq!(uint_to_big(&big_to_uint::<16>(&x).unwrap()), x);
        assert!(bytes_to_uint::<1>(&[1; 9]).is_none());
        assert!(bytes_to_uint::<1>(&[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]).is_some());
    }
}
