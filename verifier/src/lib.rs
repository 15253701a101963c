//! Who signed this git tag?
//!
//! The verifier reads tag objects (with gix), splits their signature blocks by the one canonical
//! parse documented in this crate, and verifies every signature with sequoia-openpgp under its
//! StandardPolicy. Only this crate can build a `VerifiedTag`, the proof value the policy layer
//! requires. Verification says who signed; whether that is enough is `policy`'s job.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
