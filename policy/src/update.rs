//! What is being decided: one ref update, with the names gt gives its parts.

use gix::ObjectId;

/// The ref that holds a repository's own policy (credentials only; see the crate docs).
pub const POLICY_REF: &str = "refs/gt/policy";

/// The file in the tree of [`POLICY_REF`]'s commit that holds the credentials.
pub const POLICY_FILE_NAME: &str = "policy.kn";

/// Who asks for the decision (the `source` action attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A person running `gt policy check`.
    Cli,
    /// git's pre-receive hook on a push.
    PreReceive,
    /// `gt pull`.
    Pull,
    /// gt-node, for a ref announced on the DHT by the node with this key (`announcer`).
    Dht {
        /// The announcing node's key, as text.
        announcer: String,
    },
}

impl Source {
    /// The `source` attribute value: `cli`, `pre-receive`, `pull` or `dht`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::PreReceive => "pre-receive",
            Source::Pull => "pull",
            Source::Dht { .. } => "dht",
        }
    }

    /// The `announcer` attribute value ("" unless `dht`).
    pub fn announcer(&self) -> &str {
        match self {
            Source::Dht { announcer } => announcer,
            _ => "",
        }
    }
}

/// The `ref_kind` attribute: what the ref name says the ref holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/tags/*`: must hold a signed tag object named like the ref.
    Tag,
    /// `refs/heads/*`.
    Branch,
    /// [`POLICY_REF`].
    Policy,
    /// Anything else.
    Other,
}

impl RefKind {
    /// Classify a full ref name.
    pub fn of(ref_name: &str) -> RefKind {
        if ref_name == POLICY_REF {
            RefKind::Policy
        } else if ref_name.starts_with("refs/tags/") {
            RefKind::Tag
        } else if ref_name.starts_with("refs/heads/") {
            RefKind::Branch
        } else {
            RefKind::Other
        }
    }

    /// The attribute value: `tag`, `branch`, `policy`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Tag => "tag",
            RefKind::Branch => "branch",
            RefKind::Policy => "policy",
            RefKind::Other => "other",
        }
    }
}

/// The `operation` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The ref did not exist (old id is zero).
    Create,
    /// The ref moves from one object to another.
    Update,
    /// The ref is removed (new id is zero).
    Delete,
}

impl Operation {
    /// The attribute value: `create`, `update`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// One ref update to decide, as git's hooks describe it (`old new ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// Repository identifier (the `repo` attribute): a path name or a DHT `publisher/name`.
    pub repo: String,
    /// Full ref name, e.g. `refs/tags/v1.2`.
    pub ref_name: String,
    /// The ref's current value; the zero id when it does not exist.
    pub old: ObjectId,
    /// The proposed value; the zero id to delete.
    pub new: ObjectId,
    /// Who asks.
    pub source: Source,
}

impl RefUpdate {
    /// An update of `ref_name` from `old` to `new`.
    pub fn new(
        repo: impl Into<String>,
        ref_name: impl Into<String>,
        old: ObjectId,
        new: ObjectId,
        source: Source,
    ) -> RefUpdate {
        RefUpdate {
            repo: repo.into(),
            ref_name: ref_name.into(),
            old,
            new,
            source,
        }
    }

    /// The ref's kind by its name.
    pub fn kind(&self) -> RefKind {
        RefKind::of(&self.ref_name)
    }

    /// Create, update or delete; `None` when both ids are zero (nothing to do, and nothing a
    /// policy can grant).
    pub fn operation(&self) -> Option<Operation> {
        match (self.old.is_null(), self.new.is_null()) {
            (true, true) => None,
            (true, false) => Some(Operation::Create),
            (false, true) => Some(Operation::Delete),
            (false, false) => Some(Operation::Update),
        }
    }
}

/// The all-zero object id git uses for "no object" in hook input.
pub fn zero_oid() -> ObjectId {
    ObjectId::null(gix::hash::Kind::Sha1)
}
