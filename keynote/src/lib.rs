//! RFC 2704 KeyNote trust management.
//!
//! This crate is the compliance checker at the heart of gt: it parses KeyNote assertions into a
//! typed AST, evaluates Conditions, follows delegation through Licensees (including `K-of`),
//! and checks credentials' signatures with the RFC 2792 algorithms. It knows nothing of git or
//! OpenPGP; other algorithms plug in through the signature-algorithm trait.
//!
//! Start with [`Session`]: add assertions ([`Trust::Trusted`] policies and
//! [`Trust::Untrusted`] credentials), requesters, action attributes and the ordered compliance
//! values, then [`Session::query`]. Departures from the reference implementation are listed
//! in DEVIATIONS.md.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod assertion;
pub mod ast;
pub mod crypto;
pub mod env;
mod eval;
pub mod limits;
pub mod par;
pub mod parser;
pub mod session;

pub use assertion::{Assertion, Deferred, Field, ParseError, split_assertions};
pub use env::{EnvFileError, parse_action_environment};
pub use eval::EvalError;
pub use parser::{ExprError, ExprErrorKind};
pub use session::{
    AssertionId, AttributeError, Failure, FailureReason, QueryError, QueryResult, Session, Trust,
};

/// The hash map of attribute names, Local-Constants and interned principals. foldhash
/// (hashbrown's own default) hashes the short names that every clause looks up several times
/// faster than std's SipHash, and it is seeded per process, so names crafted by an
/// assertion's author cannot be made to collide on purpose.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Install pest's per-parse call limit ([`limits::PEST_CALL_LIMIT`]). The limit is global to
/// the process, so only binaries call this (the `gt` binary does at start-up); libraries
/// never change process-wide state.
pub fn install_parser_call_limit() {
    pest::set_call_limit(std::num::NonZeroUsize::new(limits::PEST_CALL_LIMIT));
}

/// Fuzzing entry point: parse arbitrary bytes as an assertion and, if that works, render and
/// query it. Must never panic. Used by fuzz/ and by tests.
#[doc(hidden)]
pub fn fuzz_assertion(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = Assertion::parse(text) {
        let _ = a.signed_body();
        let _ = a.authorizer_without_action();
        if let Deferred::Parsed(c) = a.conditions() {
            let printed = c.to_string();
            let again = parser::parse_conditions(&printed);
            assert_eq!(again.as_ref().ok(), Some(c), "round trip of {printed:?}");
        }
        let mut s = Session::default();
        s.set_values(["false", "maybe", "true"]);
        let _ = s.add_authorizer("alice");
        let _ = s.set_attribute("app_domain", "test");
        s.add_parsed(std::sync::Arc::new(a), Trust::Trusted);
        let _ = s.query();
    }
}

/// Fuzzing entry point for the action-environment parser. Must never panic.
#[doc(hidden)]
pub fn fuzz_action_environment(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_action_environment(text);
    }
}
