//! Signed KeyNote policies that decide git ref updates.
//!
//! One call answers gt's one question: may this ref update be rejected, accepted (taken into
//! the local repository) or propagated (taken in and passed on to peers)? Every caller — `gt
//! policy check`, the pre-receive hook, `gt pull`, gt-node — uses that call:
//!
//! ```no_run
//! # use std::path::PathBuf;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use policy::{Evaluator, RefUpdate, Source, zero_oid};
//! let now = std::time::SystemTime::now(); // binaries pick the time; libraries never do
//! let evaluator = Evaluator::from_paths(
//!     &[PathBuf::from("policies/single-maintainer.kn")],
//!     &[PathBuf::from("testkeys/ed25519.pub.asc")],
//!     now,
//! )?;
//! let objects = verifier::TagSource::open(std::path::Path::new("."))?;
//! let (new, _) = objects.resolve("refs/tags/v1.0")?;
//! let update = RefUpdate::new("example", "refs/tags/v1.0", zero_oid(), new, Source::Cli);
//! let verdict = evaluator.decide(&update, &objects);
//! println!("{}: {}", verdict.ref_name, verdict.decision.as_str());
//! # Ok(()) }
//! ```
//!
//! * [`file`]: policy files, several assertions each, with file:line ([`Origin`]).
//! * [`openpgp`]: the `sig-openpgp-base64:` KeyNote signature algorithm and credential signing.
//! * [`decide`]: [`Evaluator`], [`Verdict`], the structural checks and the explanation.
//! * [`lint`]: `gt policy lint`.
//! * [`to_policy`]: `gt keyring to-policy`.
//!
//! The policy language for users (every attribute, every check) is docs/policy.md.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod decide;
pub mod file;
pub mod limits;
pub mod lint;
pub mod openpgp;
pub mod to_policy;
pub mod update;

pub use decide::{
    ConfigError, Evaluator, Explanation, PolicySet, RepoPolicyError, Verdict, decide, label_text,
    read_policy_commit,
};
pub use file::{LoadError, LoadedAssertion, Origin, PolicyFile};
pub use lint::{LintMessage, Placement, Severity, lint};
pub use openpgp::{
    OPENPGP_ALGORITHM, OpenPgpAlgorithm, SignError, SignFileError, SignedFile, SigningKey,
    registry, sign_file, sign_with_cert, sign_with_gpg,
};
pub use update::{Operation, POLICY_FILE_NAME, POLICY_REF, RefKind, RefUpdate, Source, zero_oid};

/// The `app_domain` attribute gt sets (RFC 2704 §4.3 recommends one per application).
pub const APP_DOMAIN: &str = "gittorrent";

/// Every action attribute gt sets, with its meaning (docs/policy.md has the full table). All
/// values are strings (RFC 2704 §4.3); those not applicable to an update are "".
pub const ATTRIBUTES: [(&str, &str); 20] = [
    ("app_domain", "always \"gittorrent\""),
    (
        "repo",
        "repository identifier (path name, or DHT publisher/name)",
    ),
    ("ref", "full ref name, e.g. refs/tags/v1.2"),
    ("ref_kind", "tag | branch | policy (refs/gt/policy) | other"),
    (
        "old_oid",
        "the ref's current object id, 40 hex; the zero id on create",
    ),
    (
        "new_oid",
        "the proposed object id, 40 hex; the zero id on delete",
    ),
    ("operation", "create | update | delete"),
    (
        "object_type",
        "type of new_oid: tag, commit, tree, blob; \"\" on delete",
    ),
    ("tag_name", "the `tag` header of the (outermost) tag object"),
    ("target_oid", "what the fully peeled tag points at"),
    ("target_type", "the type of target_oid"),
    ("tagger_email", "e-mail of the outermost tag's tagger"),
    ("tag_time", "the outermost tag's tagger time, unix seconds"),
    (
        "signer_count",
        "number of distinct verified signers over all levels of a tag chain",
    ),
    (
        "signers",
        "verified signer principals openpgp:<FPR>, sorted, comma-separated",
    ),
    (
        "fast_forward",
        "true | false for branch updates, \"\" otherwise",
    ),
    ("source", "cli | pre-receive | pull | dht"),
    (
        "announcer",
        "for dht: the announcing node's key; \"\" otherwise",
    ),
    ("now", "decision time, unix seconds"),
    (
        "_ACTION_AUTHORIZERS",
        "KeyNote special: the verified signers",
    ),
];

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
        match self {
            Decision::Reject => "reject",
            Decision::Accept => "accept",
            Decision::Propagate => "propagate",
        }
    }
}

impl serde::Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Fuzzing entry point for the policy-file loader and linter: arbitrary bytes as a policy
/// file. Must never panic.
#[doc(hidden)]
pub fn fuzz_policy_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((file, _)) = PolicyFile::parse_lenient("fuzz", text) {
        for a in &file.assertions {
            let _ = file::attributes_used(&a.assertion);
        }
    }
    let _ = lint(
        "fuzz",
        text,
        std::sync::Arc::new(verifier::Keyring::new()),
        std::time::UNIX_EPOCH,
        Placement::Repository,
    );
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
