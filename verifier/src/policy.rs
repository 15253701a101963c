//! The algorithm policy signatures are judged by: sequoia's `StandardPolicy`, with one
//! documented exception for old SHA-1 self-signatures.
//!
//! `StandardPolicy` (evaluated at the caller's reference time) refuses SHA-1 everywhere since
//! 2023-02-01, including in self-signatures, which only need second pre-image resistance (RFC
//! 9580 §9.5 and sequoia's `HashAlgoSecurity` docs): no second pre-image attack on SHA-1 is
//! known, the attacks are collisions. Long-lived keys still carry user-ID self-signatures made
//! with SHA-1 years ago (git.git's release key is one), and refusing them would make every tag
//! those keys ever signed unverifiable. So [`GtPolicy`] accepts a SHA-1 *self-signature* (a
//! signature needing only second pre-image resistance) if it was made before
//! [`SHA1_SELF_SIGNATURE_CUTOFF`]; a SHA-1 self-signature made later, and any SHA-1 *data*
//! signature (which needs collision resistance), is refused as `StandardPolicy` refuses it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sequoia_openpgp as openpgp;

use openpgp::Packet;
use openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation;
use openpgp::packet::Signature;
use openpgp::packet::key;
use openpgp::policy::{AsymmetricAlgorithm, HashAlgoSecurity, Policy, StandardPolicy};
use openpgp::types::{AEADAlgorithm, HashAlgorithm, SymmetricAlgorithm};

/// 2023-02-01T00:00:00Z, seconds since the epoch: `StandardPolicy`'s cutoff for SHA-1 in
/// second-pre-image contexts. SHA-1 self-signatures made before it stay acceptable.
pub const SHA1_SELF_SIGNATURE_CUTOFF_SECS: u64 = 1_675_209_600;

/// [`SHA1_SELF_SIGNATURE_CUTOFF_SECS`] as a time.
pub fn sha1_self_signature_cutoff() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SHA1_SELF_SIGNATURE_CUTOFF_SECS)
}

/// `StandardPolicy` at a reference time, with old SHA-1 self-signatures grandfathered.
#[derive(Debug)]
pub struct GtPolicy {
    standard: StandardPolicy<'static>,
    sha1_self_sigs: StandardPolicy<'static>,
}

impl GtPolicy {
    /// The policy at reference time `time`.
    pub fn at(time: SystemTime) -> GtPolicy {
        let mut sha1_self_sigs = StandardPolicy::at(time);
        sha1_self_sigs.accept_hash_property(
            HashAlgorithm::SHA1,
            HashAlgoSecurity::SecondPreImageResistance,
        );
        GtPolicy {
            standard: StandardPolicy::at(time),
            sha1_self_sigs,
        }
    }

    /// The same policy with every weak algorithm allowed: used only to tell "refused because of
    /// an algorithm" (`weak-algorithm`) from other failures, never to accept anything.
    pub fn diagnostic_lenient(time: SystemTime) -> StandardPolicy<'static> {
        let mut p = StandardPolicy::at(time);
        for h in [
            HashAlgorithm::SHA1,
            HashAlgorithm::MD5,
            HashAlgorithm::RipeMD,
            HashAlgorithm::SHA224,
        ] {
            p.accept_hash(h);
        }
        for a in [
            AsymmetricAlgorithm::RSA1024,
            AsymmetricAlgorithm::DSA1024,
            AsymmetricAlgorithm::DSA2048,
            AsymmetricAlgorithm::DSA3072,
            AsymmetricAlgorithm::DSA4096,
            AsymmetricAlgorithm::ElGamal1024,
            AsymmetricAlgorithm::BrainpoolP256,
            AsymmetricAlgorithm::BrainpoolP384,
            AsymmetricAlgorithm::BrainpoolP512,
        ] {
            p.accept_asymmetric_algo(a);
        }
        p
    }
}

impl Policy for GtPolicy {
    fn signature(&self, sig: &Signature, sec: HashAlgoSecurity) -> openpgp::Result<()> {
        if sec == HashAlgoSecurity::SecondPreImageResistance
            && sig.hash_algo() == HashAlgorithm::SHA1
            && sig
                .signature_creation_time()
                .is_some_and(|t| t < sha1_self_signature_cutoff())
        {
            return self.sha1_self_sigs.signature(sig, sec);
        }
        self.standard.signature(sig, sec)
    }

    fn key(&self, ka: &ValidErasedKeyAmalgamation<key::PublicParts>) -> openpgp::Result<()> {
        self.standard.key(ka)
    }

    fn symmetric_algorithm(&self, algo: SymmetricAlgorithm) -> openpgp::Result<()> {
        self.standard.symmetric_algorithm(algo)
    }

    fn aead_algorithm(&self, algo: AEADAlgorithm) -> openpgp::Result<()> {
        self.standard.aead_algorithm(algo)
    }

    fn packet(&self, packet: &Packet) -> openpgp::Result<()> {
        self.standard.packet(packet)
    }
}
