//! Signed KeyNote policies that decide git ref updates.
//!
//! One call answers gt's one question: may this ref update be rejected, accepted (taken into
//! the local repository) or propagated (taken in and passed on to peers)? Every caller — `gt
//! policy check`, the pre-receive hook, `gt pull`, gt-node — uses that call.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

/// The ordered compliance values for ref updates: `reject < accept < propagate`.
///
/// KeyNote compliance values are ordered strings; gt always queries with exactly these three,
/// lowest first, so anything a policy leaves undefined falls to `Reject` (deny by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    /// The update is refused; no ref changes.
    Reject,
    /// The update may be taken into the local repository.
    Accept,
    /// The update may be taken in and passed on to other peers.
    Propagate,
}

impl Decision {
    /// The compliance values in KeyNote order (`_MIN_TRUST` first), as passed to a query.
    pub const VALUES: [&'static str; 3] = ["reject", "accept", "propagate"];

    /// The KeyNote compliance value naming this decision.
    pub fn as_str(self) -> &'static str {
        Self::VALUES[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_ordered_like_their_values() {
        assert!(Decision::Reject < Decision::Accept && Decision::Accept < Decision::Propagate);
        assert_eq!(Decision::Propagate.as_str(), "propagate");
        assert_eq!(Decision::Reject.as_str(), Decision::VALUES[0]);
    }
}
