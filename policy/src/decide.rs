//! The one decision: may this ref update be rejected, accepted or propagated?
//!
//! [`Evaluator`] bundles everything a decision depends on — the trusted policy set, the
//! keyrings and the decision time — so that no caller can decide under a different clock or
//! keyring by accident. [`Evaluator::decide`] runs, in order:
//!
//! 1. the **structural checks** (no policy can override them; each rejection names its check):
//!    a valid ref name and a real operation; the new object exists and has the type the ref
//!    kind needs (`refs/tags/*` must hold a tag object; `refs/gt/policy` a commit whose tree
//!    has `policy.kn`); a tag object parses canonically and verifies (a
//!    [`verifier::VerifiedTag`] is required), and its `tag` header equals the ref's short name;
//!    a new `refs/gt/policy` holds only parsable, correctly signed credentials;
//! 2. the **KeyNote query** (RFC 2704 §5) with the compliance values
//!    `["reject", "accept", "propagate"]`, the action attributes of [`crate::ATTRIBUTES`] and
//!    the verified signers as `_ACTION_AUTHORIZERS`;
//! 3. for a tag moved to another object or deleted, the **explicit-grant check**: the grant
//!    must depend on the `operation` attribute (the same query with `operation` unset must
//!    give less), so a policy written for new releases never lets a release be rewritten.
//!
//! Anything undefined, unreadable or unverifiable rejects (deny by default).

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gix::ObjectId;
use keynote::ast::{Licensees, StrExpr};
use keynote::crypto::Registry;
use keynote::{Assertion, Deferred, Session, Trust};
use verifier::{Keyring, TagReport, TagSource, Verifier};

use crate::Decision;
use crate::file::{LoadError, LoadedAssertion, Origin, PolicyFile};
use crate::limits::MAX_EXPLAINED_PRINCIPALS;
use crate::openpgp::registry;
use crate::update::{Operation, POLICY_FILE_NAME, POLICY_REF, RefKind, RefUpdate};

/// Most commits walked to decide `fast_forward`: a push of a long-lived branch rebased onto
/// a far history must not make the hook walk the whole repository. Beyond it the answer is
/// `false` (deny by default), with a warning.
pub const MAX_FAST_FORWARD_WALK: usize = 200_000;

/// Deepest delegation explained in a rejection reason.
const MAX_EXPLAIN_DEPTH: usize = 4;

/// The trusted policy set: local policy files (their `POLICY` assertions are trust roots, the
/// rest are credentials that must be signed) and credentials from untrusted places (the
/// repository's `refs/gt/policy`, a peer), whose `POLICY` assertions are ignored.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    entries: Vec<(LoadedAssertion, Trust)>,
    warnings: Vec<String>,
}

impl PolicySet {
    /// An empty set (which rejects everything).
    pub fn new() -> PolicySet {
        PolicySet::default()
    }

    /// Read local, trusted policy files (strict parse).
    pub fn load(paths: &[PathBuf]) -> Result<PolicySet, LoadError> {
        let mut set = PolicySet::new();
        for p in paths {
            set.add_trusted(PolicyFile::read(p)?);
        }
        Ok(set)
    }

    /// Add a local policy file: its `POLICY` assertions are trust roots.
    pub fn add_trusted(&mut self, file: PolicyFile) {
        for a in file.assertions {
            let trust = if a.is_policy {
                Trust::Trusted
            } else {
                Trust::Untrusted
            };
            self.entries.push((a, trust));
        }
    }

    /// Add credentials from an untrusted source; `POLICY` assertions in it are dropped with a
    /// warning (only the local configuration may say what `POLICY` trusts).
    pub fn add_credentials(&mut self, file: PolicyFile) {
        for a in file.assertions {
            if a.is_policy {
                self.warnings.push(format!(
                    "{}: Authorizer \"POLICY\" ignored: trust roots count only from local policy files",
                    a.origin
                ));
                continue;
            }
            self.entries.push((a, Trust::Untrusted));
        }
    }

    /// Every assertion with its trust.
    pub fn entries(&self) -> &[(LoadedAssertion, Trust)] {
        &self.entries
    }

    /// Warnings met while assembling the set.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The number of trust roots.
    pub fn roots(&self) -> usize {
        self.entries
            .iter()
            .filter(|(a, t)| a.is_policy && *t == Trust::Trusted)
            .count()
    }
}

/// Why the repository's own policy could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoPolicyError {
    /// Reading an object failed.
    #[error("{POLICY_REF}: {0}")]
    Repo(#[from] verifier::repo::RepoError),
    /// The ref's object is not a commit, or its tree has no `policy.kn` blob.
    #[error("{POLICY_REF}: {0}")]
    Shape(String),
    /// The policy file does not load.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Read the `policy.kn` of the commit `oid` (the value of `refs/gt/policy`): its text.
pub fn read_policy_commit(objects: &TagSource, oid: ObjectId) -> Result<String, RepoPolicyError> {
    let (kind, data) = objects.read_object(oid)?;
    if kind != gix::objs::Kind::Commit {
        return Err(RepoPolicyError::Shape(format!(
            "{oid} is a {kind}, not a commit"
        )));
    }
    let commit = gix::objs::CommitRef::from_bytes(&data, gix::hash::Kind::Sha1)
        .map_err(|e| RepoPolicyError::Shape(format!("commit {oid} does not parse: {e}")))?;
    let tree_id = commit.tree();
    let (kind, tree) = objects.read_object(tree_id)?;
    if kind != gix::objs::Kind::Tree {
        return Err(RepoPolicyError::Shape(format!("{tree_id} is not a tree")));
    }
    let tree = gix::objs::TreeRef::from_bytes(&tree, gix::hash::Kind::Sha1)
        .map_err(|e| RepoPolicyError::Shape(format!("tree {tree_id} does not parse: {e}")))?;
    let entry = tree
        .entries
        .iter()
        .find(|e| e.filename == POLICY_FILE_NAME.as_bytes())
        .ok_or_else(|| RepoPolicyError::Shape(format!("commit {oid} has no {POLICY_FILE_NAME}")))?;
    let blob_id = entry.oid.to_owned();
    let (kind, blob) = objects.read_object(blob_id)?;
    if kind != gix::objs::Kind::Blob || !entry.mode.is_blob() {
        return Err(RepoPolicyError::Shape(format!(
            "{POLICY_FILE_NAME} in {oid} is not a file"
        )));
    }
    if blob.len() > crate::limits::MAX_POLICY_FILE_BYTES {
        return Err(LoadError::TooLarge {
            file: format!("{POLICY_REF}:{POLICY_FILE_NAME}"),
            size: blob.len(),
            limit: crate::limits::MAX_POLICY_FILE_BYTES,
        }
        .into());
    }
    let name = format!("{POLICY_REF}:{POLICY_FILE_NAME}");
    Ok(crate::file::utf8(&name, &blob)?.to_owned())
}

/// Why an evaluator could not be configured from paths.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A policy file did not load.
    #[error(transparent)]
    Policy(#[from] LoadError),
    /// A keyring did not load.
    #[error(transparent)]
    Keyring(#[from] verifier::keyring::KeyringError),
    /// No policy file was given: nothing could ever be accepted.
    #[error("no policy file given (use --policy FILE or git config gt.policy)")]
    NoPolicy,
    /// The policy files hold no `Authorizer: "POLICY"` assertion: nothing could be accepted.
    #[error("the policy files hold no Authorizer: \"POLICY\" assertion (no trust root)")]
    NoRoot,
}

/// One decision context: the trusted policy set, the keyrings and the decision time.
pub struct Evaluator {
    policies: PolicySet,
    keyring: Arc<Keyring>,
    now: SystemTime,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("assertions", &self.policies.entries.len())
            .field("keyring", &self.keyring.len())
            .field("now", &self.now)
            .finish()
    }
}

/// The verdict on one ref update.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The full ref name.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The ref's old value (hex).
    pub old_oid: String,
    /// The proposed value (hex).
    pub new_oid: String,
    /// The decision.
    pub decision: Decision,
    /// The verified signers (`openpgp:<FPR>`), sorted.
    pub signers: Vec<String>,
    /// The assertions that granted the decision: the trust root(s) and the credentials of the
    /// delegation path. Empty for a rejection.
    pub granted_by: Vec<Origin>,
    /// Why it was rejected (for humans), or empty.
    pub reasons: Vec<String>,
    /// Things worth knowing that did not decide (a credential with a bad signature, ...).
    pub warnings: Vec<String>,
    /// The action attributes the query ran with (empty when a structural check rejected
    /// before any could be computed).
    pub env: BTreeMap<String, String>,
}

/// A verdict in words, the same wherever gt explains one: `gt policy check`, the pre-receive
/// hook's messages, gt-node's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// `REJECT`, `accept` or `propagate` (upper case marks the denial).
    pub word: &'static str,
    /// The ref and who signed: `refs/tags/v1  (signed by A, B)`.
    pub summary: String,
    /// `granted by …` (the delegation path, root first), then one `why: …` per reason and one
    /// `note: …` per warning.
    pub details: Vec<String>,
}

impl Verdict {
    /// This verdict in words; signers are named by their keyring user IDs where known.
    pub fn explain(&self, keyring: &Keyring) -> Explanation {
        let word = match self.decision {
            Decision::Reject => "REJECT",
            Decision::Accept => "accept",
            Decision::Propagate => "propagate",
        };
        let signers = if self.signers.is_empty() {
            "no verified signer".to_owned()
        } else {
            let names: Vec<String> = self
                .signers
                .iter()
                .map(|s| label_text(keyring, s))
                .collect();
            format!("signed by {}", names.join(", "))
        };
        let mut details = Vec::new();
        if self.is_allowed() {
            let by: Vec<String> = self.granted_by.iter().map(ToString::to_string).collect();
            details.push(format!("granted by {}", by.join(" <- ")));
        }
        details.extend(self.reasons.iter().map(|r| format!("why: {r}")));
        details.extend(self.warnings.iter().map(|w| format!("note: {w}")));
        Explanation {
            word,
            summary: format!("{}  ({signers})", self.ref_name),
            details,
        }
    }

    /// Whether the update may happen (accept or propagate).
    pub fn is_allowed(&self) -> bool {
        self.decision > Decision::Reject
    }
}

/// What the structural phase found out.
struct Facts {
    env: BTreeMap<String, String>,
    signers: BTreeSet<verifier::Principal>,
    warnings: Vec<String>,
    kind: RefKind,
    op: Operation,
}

/// A rejection before policy: the reasons, and the verified signers if the tag verified.
struct Structural(Vec<String>, BTreeSet<verifier::Principal>);

fn reject(why: impl Into<String>) -> Structural {
    Structural(vec![why.into()], BTreeSet::new())
}

/// Decide `update` with `evaluator`, reading objects from `objects`. See [`Evaluator::decide`].
pub fn decide(evaluator: &Evaluator, update: &RefUpdate, objects: &TagSource) -> Verdict {
    evaluator.decide(update, objects)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Evaluator {
    /// A decision context. The keyring serves both tag signatures and credential signatures.
    pub fn new(policies: PolicySet, keyring: Keyring, now: SystemTime) -> Evaluator {
        let keyring = Arc::new(keyring);
        let registry = Arc::new(registry(keyring.clone(), now));
        Evaluator {
            policies,
            keyring,
            now,
            registry,
        }
    }

    /// Load policy files and keyrings (files or directories) from paths — what `gt policy
    /// check`, the pre-receive hook (`gt.policy`, `gt.keyring` git config values) and `gt
    /// pull` do. Fails when no policy or no trust root is given.
    pub fn from_paths(
        policies: &[PathBuf],
        keyrings: &[PathBuf],
        now: SystemTime,
    ) -> Result<Evaluator, ConfigError> {
        if policies.is_empty() {
            return Err(ConfigError::NoPolicy);
        }
        let set = PolicySet::load(policies)?;
        if set.roots() == 0 {
            return Err(ConfigError::NoRoot);
        }
        let mut keyring = Keyring::new();
        for k in keyrings {
            keyring.add_path(k)?;
        }
        Ok(Evaluator::new(set, keyring, now))
    }

    /// Add the repository's own policy (`refs/gt/policy`, if the ref exists) as untrusted
    /// credentials. Returns whether one was found. Credentials that do not parse are skipped
    /// with a warning.
    pub fn add_repository_policy(&mut self, objects: &TagSource) -> Result<bool, RepoPolicyError> {
        let Ok((oid, _)) = objects.resolve(POLICY_REF) else {
            return Ok(false);
        };
        let text = read_policy_commit(objects, oid)?;
        let name = format!("{POLICY_REF}:{POLICY_FILE_NAME}");
        let (file, errors) = PolicyFile::parse_lenient(&name, &text)?;
        for e in errors {
            self.policies
                .warnings
                .push(format!("{e} (credential skipped)"));
        }
        self.policies.add_credentials(file);
        Ok(true)
    }

    /// The policy set.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The decision time.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// The signature registry (RFC 2792 + OpenPGP) bound to this keyring and time.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Decide one ref update. Never fails: every problem is a rejection with a reason.
    pub fn decide(&self, update: &RefUpdate, objects: &TagSource) -> Verdict {
        let mut verdict = Verdict {
            ref_name: update.ref_name.clone(),
            old_oid: update.old.to_string(),
            new_oid: update.new.to_string(),
            decision: Decision::Reject,
            signers: Vec::new(),
            granted_by: Vec::new(),
            reasons: Vec::new(),
            warnings: self.policies.warnings.clone(),
            env: BTreeMap::new(),
        };
        let facts = match self.structural(update, objects) {
            Ok(f) => f,
            Err(Structural(reasons, signers)) => {
                verdict.reasons = reasons;
                verdict.signers = signers.iter().map(ToString::to_string).collect();
                return verdict;
            }
        };
        verdict.signers = facts.signers.iter().map(ToString::to_string).collect();
        verdict.warnings.extend(facts.warnings.iter().cloned());
        verdict.env = facts.env.clone();

        let result = match self.query(&facts.env, &facts.signers) {
            Ok(r) => r,
            Err(e) => {
                verdict.reasons.push(format!("policy query failed: {e}"));
                return verdict;
            }
        };
        for f in &result.failures {
            if let Some((a, _)) = self.policies.entries.get(f.assertion) {
                verdict.warnings.push(format!(
                    "{}: assertion by {} not used: {}",
                    a.origin,
                    label_text(&self.keyring, &a.authorizer()),
                    failure_text(&f.reason)
                ));
            }
        }
        let mut decision = decision_of(result.index);

        // Explicit grant for moving or deleting a tag.
        if facts.kind == RefKind::Tag
            && matches!(facts.op, Operation::Update | Operation::Delete)
            && decision > Decision::Reject
        {
            let mut env = facts.env.clone();
            env.insert("operation".to_owned(), String::new());
            let without = self.query(&env, &facts.signers).map_or(0, |r| r.index);
            if without >= result.index {
                verdict.reasons.push(format!(
                    "{} of a tag must be granted explicitly: no policy assertion grants it under a \
                     condition on operation == \"{}\" (tags are immutable releases by default)",
                    if facts.op == Operation::Delete {
                        "deletion"
                    } else {
                        "moving (retargeting)"
                    },
                    facts.op.as_str()
                ));
                decision = Decision::Reject;
            }
        }

        verdict.decision = decision;
        if decision > Decision::Reject {
            verdict.granted_by = result
                .granted
                .iter()
                .filter(|(_, v)| *v >= result.index)
                .filter_map(|(id, _)| self.policies.entries.get(*id))
                .map(|(a, _)| a.origin.clone())
                .collect();
        } else if verdict.reasons.is_empty() {
            verdict.reasons = self.explain(&facts, &result);
        }
        verdict
    }

    fn query(
        &self,
        env: &BTreeMap<String, String>,
        signers: &BTreeSet<verifier::Principal>,
    ) -> Result<keynote::QueryResult, keynote::QueryError> {
        let mut s = Session::new(self.registry.clone());
        for (a, trust) in &self.policies.entries {
            s.add_parsed(a.assertion.clone(), *trust);
        }
        for p in signers {
            // `openpgp:` principals are opaque strings to KeyNote: this cannot fail.
            let _ = s.add_authorizer(p.as_str());
        }
        for (k, v) in env {
            let _ = s.set_attribute(k, v);
        }
        s.set_values(Decision::VALUES);
        s.query()
    }

    fn structural(&self, update: &RefUpdate, objects: &TagSource) -> Result<Facts, Structural> {
        let kind = update.kind();
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("app_domain", crate::APP_DOMAIN.to_owned());
        set("repo", update.repo.clone());
        set("ref", update.ref_name.clone());
        set("ref_kind", kind.as_str().to_owned());
        set("old_oid", update.old.to_string());
        set("new_oid", update.new.to_string());
        set("source", update.source.as_str().to_owned());
        set("announcer", update.source.announcer().to_owned());
        set("now", unix(self.now).to_string());
        for k in [
            "tag_name",
            "target_oid",
            "target_type",
            "tagger_email",
            "tag_time",
            "fast_forward",
        ] {
            set(k, String::new());
        }
        set("signer_count", "0".to_owned());
        set("signers", String::new());

        if gix::refs::FullName::try_from(update.ref_name.as_str()).is_err()
            || !update.ref_name.starts_with("refs/")
        {
            return Err(reject(format!(
                "ref name check: {:?} is not a valid full ref name (refs/...)",
                update.ref_name
            )));
        }
        let op = update.operation().ok_or_else(|| {
            reject("operation check: both the old and the new object id are zero")
        })?;
        set("operation", op.as_str().to_owned());
        let mut warnings = Vec::new();
        let mut signers = BTreeSet::new();

        // The new object is read once: its bytes are verified below if it is a tag.
        let (object_kind, new_bytes) = if op == Operation::Delete {
            (None, Vec::new())
        } else {
            let (k, bytes) = objects
                .read_object(update.new)
                .map_err(|e| reject(format!("object check: the new object cannot be read: {e}")))?;
            (Some(k), bytes)
        };
        set(
            "object_type",
            object_kind.map_or_else(String::new, |k| k.to_string()),
        );

        match (kind, object_kind) {
            (RefKind::Tag, Some(k)) if k != gix::objs::Kind::Tag => {
                return Err(reject(format!(
                    "object type check: {} must hold an annotated, signed tag object, but {} is a \
                     {k} (a lightweight tag cannot carry signatures)",
                    update.ref_name, update.new
                )));
            }
            (RefKind::Policy, Some(k)) if k != gix::objs::Kind::Commit => {
                return Err(reject(format!(
                    "object type check: {POLICY_REF} must hold a commit, but {} is a {k}",
                    update.new
                )));
            }
            _ => {}
        }

        if object_kind == Some(gix::objs::Kind::Tag) {
            let verifier = Verifier::new(&self.keyring, self.now);
            let report = verifier.verify_bytes_in(Some(objects), &new_bytes);
            let Some(tag) = report.verified() else {
                return Err(Structural(
                    unverified_reasons(&report, &self.keyring),
                    BTreeSet::new(),
                ));
            };
            if kind == RefKind::Tag {
                let short = update.ref_name.get("refs/tags/".len()..).unwrap_or("");
                if tag.name() != short {
                    return Err(Structural(
                        vec![format!(
                            "tag name check: {} holds a tag object whose `tag` header says {:?}; a \
                         tag must be published under its own name (refs/tags/{})",
                            update.ref_name,
                            tag.name(),
                            tag.name()
                        )],
                        tag.signers().clone(),
                    ));
                }
            }
            set("tag_name", tag.name().to_owned());
            let (target, target_kind) = tag.peeled_target();
            set("target_oid", target.to_string());
            set("target_type", target_kind.to_string());
            if let Some(t) = tag.tagger() {
                set("tagger_email", t.email.clone());
                set("tag_time", t.time.to_string());
            }
            signers = tag.signers().clone();
            set("signer_count", signers.len().to_string());
            set(
                "signers",
                signers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }

        if kind == RefKind::Branch && op == Operation::Update {
            let ff = match is_ancestor(objects, update.old, update.new, MAX_FAST_FORWARD_WALK) {
                Ok(ff) => ff,
                Err(why) => {
                    warnings.push(format!("fast_forward set to false: {why}"));
                    false
                }
            };
            set("fast_forward", ff.to_string());
        }

        if kind == RefKind::Policy && op != Operation::Delete {
            let text = read_policy_commit(objects, update.new)
                .map_err(|e| reject(format!("policy ref check: {e}")))?;
            let name = format!("{POLICY_REF}:{POLICY_FILE_NAME}");
            let (file, errors) = PolicyFile::parse_lenient(&name, &text)
                .map_err(|e| reject(format!("policy ref check: {e}")))?;
            let mut problems: Vec<String> = errors
                .iter()
                .map(|e| format!("policy ref check: the new policy has an error: {e}"))
                .collect();
            for a in &file.assertions {
                if a.is_policy {
                    warnings.push(format!(
                        "{}: Authorizer \"POLICY\" in a repository policy is ignored",
                        a.origin
                    ));
                    continue;
                }
                if let Err(why) = check_credential_signature(&self.registry, a) {
                    problems.push(format!(
                        "policy ref check: {} credential by {} is not correctly signed: {why}",
                        a.origin,
                        label_text(&self.keyring, &a.authorizer())
                    ));
                }
            }
            if !problems.is_empty() {
                return Err(Structural(problems, BTreeSet::new()));
            }
        }

        Ok(Facts {
            env,
            signers,
            warnings,
            kind,
            op,
        })
    }

    /// Human reasons for a rejection, from the trust roots that apply.
    fn explain(&self, facts: &Facts, result: &keynote::QueryResult) -> Vec<String> {
        let signer_strs: HashSet<String> = facts.signers.iter().map(ToString::to_string).collect();
        let granted: HashSet<usize> = result.granted.iter().map(|(id, _)| *id).collect();
        let mut reasons = Vec::new();
        for (a, trust) in &self.policies.entries {
            if !(a.is_policy && *trust == Trust::Trusted) {
                continue;
            }
            let Some(cap) = self.conditions_value(&a.assertion, &facts.env) else {
                continue;
            };
            if cap == 0 {
                continue;
            }
            let value = Decision::VALUES.get(cap).copied().unwrap_or("?");
            let Deferred::Parsed(Some(l)) = a.assertion.licensees() else {
                continue;
            };
            let needs = self.describe(l, &a.assertion, &facts.env, &signer_strs, &granted, 0);
            // "got" lists only the signers this assertion names; a signer it does not name
            // (who could count only through a delegation) is listed apart, so that
            // "needs 2 of {A, B, C}; got {A, D}" cannot be misread as two of the three.
            let mut named = Vec::new();
            lic_principals(l, &a.assertion, &facts.env, &mut named);
            let (counted, others): (Vec<_>, Vec<_>) = facts
                .signers
                .iter()
                .partition(|p| named.iter().any(|n| n == p.as_str()));
            let label = |v: &[&verifier::Principal]| {
                self.list(v.iter().map(|p| label_text(&self.keyring, p.as_str())))
            };
            let got = if facts.signers.is_empty() {
                "no verified signer".to_owned()
            } else if counted.is_empty() {
                "none of them".to_owned()
            } else {
                label(&counted)
            };
            let also = if others.is_empty() {
                String::new()
            } else {
                format!(" (also signed by {}, not named here)", label(&others))
            };
            reasons.push(format!(
                "{} (grants {value}) needs {needs}; got {got}{also}",
                a.origin
            ));
        }
        if reasons.is_empty() {
            reasons.push(format!(
                "no trusted policy assertion applies to {} {} of {} (ref_kind={}); deny by default",
                facts.op.as_str(),
                if facts.kind == RefKind::Tag {
                    "of a tag"
                } else {
                    "of a ref"
                },
                facts.env.get("ref").map_or("", String::as_str),
                facts.kind.as_str()
            ));
        }
        reasons
    }

    /// The Conditions value of a trusted root alone (its Licensees assumed satisfied), or
    /// `None` if that cannot be computed.
    fn conditions_value(
        &self,
        a: &Arc<Assertion>,
        env: &BTreeMap<String, String>,
    ) -> Option<usize> {
        let mut s = Session::new(self.registry.clone());
        s.add_parsed(a.clone(), Trust::Trusted);
        let mut principals = Vec::new();
        if let Deferred::Parsed(Some(l)) = a.licensees() {
            lic_principals(l, a, env, &mut principals);
        }
        for p in &principals {
            s.add_authorizer(p).ok()?;
        }
        for (k, v) in env {
            let _ = s.set_attribute(k, v);
        }
        s.set_values(Decision::VALUES);
        s.query().ok().map(|r| r.index)
    }

    /// Describe what a Licensees expression needs, relative to the signers.
    fn describe(
        &self,
        l: &Licensees,
        a: &Assertion,
        env: &BTreeMap<String, String>,
        signers: &HashSet<String>,
        granted: &HashSet<usize>,
        depth: usize,
    ) -> String {
        let name = |e: &StrExpr| {
            resolve(e, a, env).map_or_else(
                || "(computed principal)".to_owned(),
                |p| self.principal_text(&p, env, signers, granted, depth),
            )
        };
        match l {
            Licensees::Principal(e) => name(e),
            Licensees::KOf { k, principals } => format!(
                "{k} of {}",
                self.list(principals.iter().map(|e| {
                    resolve(e, a, env).map_or_else(
                        || "(computed)".to_owned(),
                        |p| label_text(&self.keyring, &p),
                    )
                }))
            ),
            Licensees::And(v) => format!(
                "all of ({})",
                v.iter()
                    .map(|x| self.describe(x, a, env, signers, granted, depth))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Licensees::Or(v) => format!(
                "one of ({})",
                v.iter()
                    .map(|x| self.describe(x, a, env, signers, granted, depth))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A principal, and for one that is not a signer, the credentials it issued.
    fn principal_text(
        &self,
        p: &str,
        env: &BTreeMap<String, String>,
        signers: &HashSet<String>,
        granted: &HashSet<usize>,
        depth: usize,
    ) -> String {
        let label = label_text(&self.keyring, p);
        if signers.contains(p) || depth >= MAX_EXPLAIN_DEPTH {
            return label;
        }
        let creds: Vec<String> = self
            .policies
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (c, t))| *t == Trust::Untrusted && c.authorizer() == p)
            .map(|(id, (c, _))| {
                let needs = match c.assertion.licensees() {
                    Deferred::Parsed(Some(l)) => {
                        self.describe(l, &c.assertion, env, signers, granted, depth + 1)
                    }
                    _ => "nothing".to_owned(),
                };
                let state = if granted.contains(&id) {
                    ""
                } else {
                    " (does not apply or not valid here)"
                };
                format!("credential {}{state} delegating to {needs}", c.origin)
            })
            .collect();
        if creds.is_empty() {
            label
        } else {
            format!("{label} [or via {}]", creds.join("; "))
        }
    }

    /// `{A, B, C, ...}` with at most [`MAX_EXPLAINED_PRINCIPALS`] names.
    /// Items are produced lazily: only the ones shown are labelled (a 900-key list costs 6).
    fn list(&self, items: impl ExactSizeIterator<Item = String>) -> String {
        let n = items.len();
        let mut shown: Vec<String> = items.take(MAX_EXPLAINED_PRINCIPALS).collect();
        if n > MAX_EXPLAINED_PRINCIPALS {
            shown.push(format!("... {} more", n - MAX_EXPLAINED_PRINCIPALS));
        }
        format!("{{{}}}", shown.join(", "))
    }
}

/// The Decision at a compliance value index.
fn decision_of(index: usize) -> Decision {
    match index {
        0 => Decision::Reject,
        1 => Decision::Accept,
        _ => Decision::Propagate,
    }
}

/// The signature check of one credential, outside a query (for a new `refs/gt/policy`).
fn check_credential_signature(registry: &Registry, a: &LoadedAssertion) -> Result<(), String> {
    let authorizer = a
        .assertion
        .authorizer_without_action()
        .map_err(|e| e.to_string())?;
    let principal = keynote::crypto::Principal::parse(&authorizer).map_err(|e| e.to_string())?;
    let Some(sig) = a.assertion.signature_value() else {
        return Err("it has no Signature field".to_owned());
    };
    registry
        .verify_assertion(&principal, a.assertion.signed_body(), sig)
        .map_err(|e| e.to_string())
}

/// A failure reason in words.
fn failure_text(r: &keynote::FailureReason) -> String {
    use keynote::FailureReason as F;
    match r {
        F::Unsigned => {
            "credential is not signed (credentials must carry a valid Signature)".to_owned()
        }
        F::Signature(e) => format!("signature: {e}"),
        F::Syntax(e) => format!("syntax: {e}"),
        F::Key(e) => format!("key: {e}"),
        F::Eval(e) => format!("evaluation: {e}"),
        other => format!("{other:?}"),
    }
}

/// Evaluate a principal expression for explanations: literals, Local-Constants and action
/// attributes; `None` for `$` dereferences.
fn resolve(e: &StrExpr, a: &Assertion, env: &BTreeMap<String, String>) -> Option<String> {
    match e {
        StrExpr::Lit(s) => Some(s.to_string()),
        StrExpr::Attr(n) => Some(
            a.local_constants()
                .get(n.as_str())
                .or_else(|| env.get(n.as_str()))
                .cloned()
                .unwrap_or_default(),
        ),
        StrExpr::Concat(v) => v.iter().map(|x| resolve(x, a, env)).collect(),
        StrExpr::Deref { .. } => None,
    }
}

fn lic_principals(
    l: &Licensees,
    a: &Assertion,
    env: &BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    match l {
        Licensees::Principal(e) => out.extend(resolve(e, a, env)),
        Licensees::And(v) | Licensees::Or(v) => {
            v.iter().for_each(|x| lic_principals(x, a, env, out));
        }
        Licensees::KOf { principals, .. } => {
            out.extend(principals.iter().filter_map(|e| resolve(e, a, env)));
        }
    }
}

/// A principal for humans: the first user ID of its certificate, or `openpgp:` and the
/// fingerprint's last 16 digits.
pub fn label_text(keyring: &Keyring, principal: &str) -> String {
    let Ok(p) = principal.parse::<verifier::Principal>() else {
        return principal.to_owned();
    };
    let short = p
        .fingerprint_hex()
        .get(p.fingerprint_hex().len().saturating_sub(16)..)
        .unwrap_or("");
    let uid = sequoia_openpgp::Fingerprint::from_hex(p.fingerprint_hex())
        .ok()
        .and_then(|f| keyring.get(&f))
        .and_then(|c| {
            c.userids()
                .next()
                .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
        });
    // The keyring is trusted input, so its user IDs are fit to name its keys; the full
    // fingerprint is in the JSON output.
    match uid {
        Some(u) if !u.trim().is_empty() => u.chars().filter(|c| !c.is_control()).collect(),
        _ => format!("openpgp:{short}"),
    }
}

/// Why a tag did not verify, one reason per problem.
fn unverified_reasons(report: &TagReport, keyring: &Keyring) -> Vec<String> {
    let mut reasons = Vec::new();
    for (i, level) in report.levels.iter().enumerate() {
        let which = if report.levels.len() > 1 {
            format!("tag level {} ({})", i + 1, level.oid)
        } else {
            format!("tag {}", level.oid)
        };
        if let Some(e) = &level.error {
            reasons.push(format!("tag check: {which} is malformed: {e}"));
            continue;
        }
        if level.signatures.is_empty() {
            reasons.push(format!(
                "signature check: {which} is not signed (tags must carry OpenPGP signatures)"
            ));
            continue;
        }
        for s in &level.signatures {
            if s.status == verifier::Status::Good {
                continue;
            }
            let who = s
                .signer
                .as_ref()
                .map(|p| label_text(keyring, p.as_str()))
                .or_else(|| s.issuer.clone())
                .unwrap_or_else(|| "unknown issuer".to_owned());
            reasons.push(format!(
                "signature check: {which} signature {}.{} by {who}: {}{}",
                s.block,
                s.index,
                s.status,
                s.detail
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
        if !level.is_verified() && level.signatures.iter().all(|s| !s.status.spoils_tag()) {
            reasons.push(format!(
                "signature check: {which} has no good signature by a key in the keyring"
            ));
        }
    }
    if let Some(e) = &report.chain_error {
        reasons.push(format!("tag chain check: {e}"));
    }
    if reasons.is_empty() {
        reasons.push("signature check: the tag is not verified".to_owned());
    }
    reasons
}

/// Whether `old` is an ancestor of (or equal to) `new`, walking parents breadth first through
/// `objects` (which sees a push's quarantine, unlike gix's own graph walk).
fn is_ancestor(
    objects: &TagSource,
    old: ObjectId,
    new: ObjectId,
    limit: usize,
) -> Result<bool, String> {
    if old == new {
        return Ok(true);
    }
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut queue = VecDeque::from([new]);
    seen.insert(new);
    while let Some(oid) = queue.pop_front() {
        if seen.len() > limit {
            return Err(format!(
                "more than {limit} commits between the old and new values"
            ));
        }
        let (kind, data) = objects.read_object(oid).map_err(|e| e.to_string())?;
        if kind != gix::objs::Kind::Commit {
            return Ok(false);
        }
        let commit = gix::objs::CommitRef::from_bytes(&data, gix::hash::Kind::Sha1)
            .map_err(|e| format!("commit {oid} does not parse: {e}"))?;
        for p in commit.parents() {
            if p == old {
                return Ok(true);
            }
            if seen.insert(p) {
                queue.push_back(p);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@gt.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@gt.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn the_fast_forward_walk_is_bounded_at_its_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        git(dir, &["init", "-q"]);
        let mut ids = Vec::new();
        for i in 0..4 {
            git(
                dir,
                &["commit", "-q", "--allow-empty", "-m", &i.to_string()],
            );
            ids.push(ObjectId::from_hex(git(dir, &["rev-parse", "HEAD"]).as_bytes()).unwrap());
        }
        let objects = TagSource::open(dir).unwrap();
        let (first, last) = (ids[0], ids[3]);
        // Walking from the 4th commit back to the 1st visits 3 commits.
        assert_eq!(is_ancestor(&objects, first, last, 3), Ok(true));
        assert!(is_ancestor(&objects, first, last, 2).is_err());
        assert_eq!(is_ancestor(&objects, last, first, 10), Ok(false));
        assert_eq!(is_ancestor(&objects, last, last, 0), Ok(true));
    }
}
