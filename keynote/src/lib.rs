//! RFC 2704 KeyNote trust management.
//!
//! This crate is the compliance checker at the heart of gt: it parses KeyNote assertions into a
//! typed AST, evaluates Conditions, follows delegation through Licensees (including `K-of`),
//! and checks credentials' signatures with the RFC 2792 algorithms. It knows nothing of git or
//! OpenPGP; other algorithms plug in through the signature-algorithm trait.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod crypto;
