//! Who signed this git tag?
//!
//! The verifier reads tag objects (with gix), splits their signature blocks by the one canonical
//! parse documented in [`parse`], and verifies every signature with sequoia-openpgp under its
//! `StandardPolicy`. Only this crate can build a [`VerifiedTag`], the proof value the policy layer
//! requires. Verification says who signed; whether that is enough is `policy`'s job.
//!
//! # What "verified" means
//!
//! A signature is **good** ([`Status::Good`]) when all of these hold:
//!
//! 1. the object is a git tag object that [`TagObject::parse`] accepts (size limits, headers, and
//!    one of the accepted signature layouts, see [`parse`]);
//! 2. the signature is an OpenPGP *binary* signature (type 0x00) over exactly the bytes git signs:
//!    the tag object up to its first `-----BEGIN PGP SIGNATURE-----` line (plus, in the onion
//!    layout, the earlier blocks, byte for byte);
//! 3. the public-key operation succeeds with a key from the caller's [`Keyring`];
//! 4. that key (the primary key or a subkey) is bound to its certificate by a valid
//!    self-signature — the one in force at the signature's creation time, or, if the binding was
//!    re-issued only later (as when an expiry is extended), the one in force at the reference
//!    time, as gpg does — and, by that binding, at the signature's creation time the key existed,
//!    the certificate and the key had not expired, neither was revoked, and the key was
//!    signing-capable;
//! 5. [`policy::GtPolicy`] — sequoia's `StandardPolicy` evaluated at the caller's reference
//!    time, with SHA-1 self-signatures made before 2023-02-01 grandfathered — accepts the
//!    signature's hash algorithm (so SHA-1 data signatures are refused: they are forgeable by
//!    collision), the key's public-key algorithm and size (so RSA-1024 and DSA-1024 are
//!    refused) and the self-signatures binding the key;
//! 6. the signature is alive at the reference time: not created more than
//!    [`limits::CLOCK_SKEW_TOLERANCE`] in the future, and not past its own expiration time.
//!
//! The signer is the *primary* key's fingerprint, as a [`Principal`] (`openpgp:<FINGERPRINT>`),
//! also when a subkey made the signature. A principal counts once however many signatures it made.
//!
//! A tag is **verified** ([`TagReport::verified`]) when every level (a tag chain has several) has
//! at least one good signature and no signature anywhere is [`Status::Bad`] or
//! [`Status::Malformed`]. Signatures by unknown, expired or revoked keys, or with weak algorithms,
//! do not count and do not spoil the tag: anybody can append a signature, so a stranger's
//! signature must not be able to veto a tag.
//!
//! # What "verified" does not mean
//!
//! - that the signer is *allowed* to sign this tag or move this ref: that is `policy`'s job;
//! - anything about the key's owner: user IDs are not looked at, the keyring *is* the trust input;
//! - anything about the tagged commit or its tree: only the tag object is read (its target may be
//!   absent from the repository);
//! - that the tag name matches the ref it was found under: the caller compares
//!   [`VerifiedTag::name`] with the ref.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod keyring;
pub mod limits;
pub mod parse;
pub mod policy;
pub mod principal;
pub mod repo;
pub mod stack;
pub mod verify;

pub use keyring::{Keyring, KeyringLimits};
pub use parse::TagObject;
pub use principal::Principal;
pub use repo::TagSource;
pub use verify::{
    LayoutKind, LevelReport, SelfSignatureCheck, SignatureReport, Status, TagReport, VerifiedLevel,
    VerifiedTag, Verifier, verify_tag,
};

#[doc(hidden)]
pub use parse::fuzz_parse_tag;
