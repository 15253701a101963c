//! The decision point of a DHT-driven ref update: given the update and the tag objects fetched
//! for it, reject, accept or propagate.
//!
//! gt-node never decides itself. The `policy` crate implements [`Gate`] with the same call every
//! other gt command uses (DESIGN: "One library call answers it"); tests may use small
//! implementations. For a tag, the gate runs after only the tag chain has been fetched, so a
//! rejected tag costs those objects and nothing more. A branch update (a commit) is decided by
//! [`Gate::decide_received`] once its pack is in quarantine, because its decision needs the
//! history (`fast_forward`); a rejected branch update costs its new commits, never a ref.

use gix::ObjectId;
use gix::objs::Kind;

/// The three outcomes, ordered as KeyNote compliance values: reject < accept < propagate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Do not take the update.
    Reject,
    /// Take the update into the local repository.
    Accept,
    /// Take it, and announce and serve it to other peers.
    Propagate,
}

/// A decision and the reason for it (logged, shown by `gt node status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateDecision {
    /// What to do.
    pub verdict: Verdict,
    /// Why, in words (e.g. which policy assertion matched, which signers verified).
    pub explanation: String,
}

impl GateDecision {
    /// A decision with its explanation.
    pub fn new(verdict: Verdict, explanation: impl Into<String>) -> Self {
        GateDecision {
            verdict,
            explanation: explanation.into(),
        }
    }
}

/// Everything known about a ref update arriving from the DHT, apart from the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdateCtx {
    /// Repository name as published.
    pub repo: String,
    /// The publisher's ed25519 key (the DHT item's signer).
    pub publisher: [u8; 32],
    /// The key of the node that served the objects (authenticated in HELLO).
    pub served_by: [u8; 32],
    /// Full ref name, e.g. `refs/tags/v1.2`.
    pub ref_name: String,
    /// Current local value, `None` when the ref is new here.
    pub old: Option<ObjectId>,
    /// The announced value.
    pub new: ObjectId,
    /// Type of the object `new` names (`tag` or `commit`).
    pub new_kind: Kind,
    /// The DHT item's sequence number.
    pub seq: i64,
    /// Decision time, unix seconds (explicit: never read from the clock inside the gate).
    pub now: i64,
}

/// Decides ref updates. Implementations must be cheap to call from async code (a few
/// signature verifications) and must not perform I/O on the network.
pub trait Gate: Send + Sync {
    /// Decide `ctx`. `tag_objects` are the raw tag objects (without git headers) from the one
    /// `ctx.new` names down the tag-of-tag chain, outermost first; empty when `ctx.new` is a
    /// commit.
    fn decide(&self, ctx: &RefUpdateCtx, tag_objects: &[Vec<u8>]) -> GateDecision;

    /// Decide an update whose objects are already received but not yet visible: `object_dirs`
    /// are git object directories, searched in order, holding `ctx.new`, its history and the
    /// local repository's objects (the received pack's quarantine, then the repository). Used
    /// for branch updates (`ctx.new` a commit): a branch carries no signature, and its decision
    /// needs the commit and its ancestry (`fast_forward`), so it is made after the pack arrived
    /// and before the ref moves. The default ignores the objects and calls [`Gate::decide`].
    fn decide_received(
        &self,
        ctx: &RefUpdateCtx,
        tag_objects: &[Vec<u8>],
        object_dirs: &[std::path::PathBuf],
    ) -> GateDecision {
        let _ = object_dirs;
        self.decide(ctx, tag_objects)
    }

    /// Identifies the rules in force (e.g. a digest of the policy files and keyrings). A node
    /// remembers rejected (ref, object) pairs so it does not fetch them again; when this value
    /// differs from the one they were rejected under, it decides them again. `None` (the
    /// default): the rules never change, rejections stay final.
    fn fingerprint(&self) -> Option<String> {
        None
    }
}
