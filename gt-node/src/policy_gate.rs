//! The real [`Gate`]: a ref update arriving from the DHT is decided by `policy::Evaluator`, the
//! same call `gt policy check`, the pre-receive hook and `gt pull` make.
//!
//! Each decision loads the policy files and keyrings afresh at the decision time the node passes
//! in (`RefUpdateCtx::now`, read from the node's clock at the decision point), so one decision
//! is one (policy, time) pair and an edited policy file takes effect at the next decision. The
//! received tag objects are written into a throw-away bare repository (a quarantine, never the
//! followed repository) and read from there through `verifier::TagSource`, so nothing a peer sent
//! reaches the node's repositories before the verdict.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use policy::{Decision, Evaluator, RefUpdate, Source, zero_oid};
use tracing::{info, warn};
use verifier::TagSource;

use crate::gate::{Gate, GateDecision, RefUpdateCtx, Verdict};
use crate::store::Repo;

/// Decides DHT ref updates with signed KeyNote policies (see the module doc).
#[derive(Debug, Clone)]
pub struct PolicyGate {
    policies: Vec<PathBuf>,
    keyrings: Vec<PathBuf>,
    scratch: Option<PathBuf>,
}

impl PolicyGate {
    /// A gate over these policy files and keyrings (files or directories). `scratch` is where
    /// per-decision quarantine repositories are made (the node's data directory); `None` uses
    /// the system temporary directory.
    pub fn new(policies: Vec<PathBuf>, keyrings: Vec<PathBuf>, scratch: Option<PathBuf>) -> Self {
        PolicyGate {
            policies,
            keyrings,
            scratch,
        }
    }

    /// Load the policies and keyrings once at `now`, to report configuration errors (no policy,
    /// no trust root, unreadable keyring) at start-up rather than as rejections later.
    pub fn check(&self, now: SystemTime) -> Result<(), policy::ConfigError> {
        Evaluator::from_paths(&self.policies, &self.keyrings, now).map(|_| ())
    }

    /// The full verdict of the policy on `ctx` with `tag_objects` (see [`Gate::decide`]), or the
    /// reason no verdict could be reached (each a rejection).
    pub fn verdict(
        &self,
        ctx: &RefUpdateCtx,
        tag_objects: &[Vec<u8>],
    ) -> Result<(policy::Verdict, String), String> {
        self.verdict_received(ctx, tag_objects, &[])
    }

    /// [`PolicyGate::verdict`] with received objects readable from `object_dirs` (git object
    /// directories, searched in order before the throw-away repository holding the tags): the
    /// new commit, its history and the follower's, so `fast_forward` is computed as the
    /// pre-receive hook computes it on a push.
    pub fn verdict_received(
        &self,
        ctx: &RefUpdateCtx,
        tag_objects: &[Vec<u8>],
        object_dirs: &[PathBuf],
    ) -> Result<(policy::Verdict, String), String> {
        let now = UNIX_EPOCH + Duration::from_secs(u64::try_from(ctx.now).unwrap_or(0));
        let evaluator = Evaluator::from_paths(&self.policies, &self.keyrings, now)
            .map_err(|e| format!("policy did not load: {e}"))?;
        let tmp = match &self.scratch {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("scratch directory {}: {e}", dir.display()))?;
                tempfile::Builder::new()
                    .prefix("gate-quarantine")
                    .tempdir_in(dir)
            }
            None => tempfile::Builder::new().prefix("gt-gate").tempdir(),
        }
        .map_err(|e| format!("gate quarantine: {e}"))?;
        let objects = quarantine(tmp.path(), tag_objects, object_dirs)?;
        let update = RefUpdate::new(
            format!("{}/{}", hex::encode(ctx.publisher), ctx.repo),
            ctx.ref_name.clone(),
            ctx.old.unwrap_or_else(zero_oid),
            ctx.new,
            Source::Dht {
                announcer: hex::encode(ctx.publisher),
            },
        );
        let verdict = evaluator.decide(&update, &objects);
        let text = explain(&verdict, evaluator.keyring());
        Ok((verdict, text))
    }
}

/// A bare repository at `dir` holding `tag_objects`, opened for the verifier, with
/// `object_dirs` searched first.
fn quarantine(
    dir: &Path,
    tag_objects: &[Vec<u8>],
    object_dirs: &[PathBuf],
) -> Result<TagSource, String> {
    Repo::init_bare(dir).map_err(|e| format!("gate quarantine: {e}"))?;
    let objects = match object_dirs.split_first() {
        None => TagSource::open(dir),
        Some((first, rest)) => TagSource::open_quarantine(dir, first, rest),
    }
    .map_err(|e| format!("gate quarantine: {e}"))?;
    for t in tag_objects {
        objects
            .write_tag(t)
            .map_err(|e| format!("gate quarantine: {e}"))?;
    }
    Ok(objects)
}

/// The explanation `gt policy check` prints for a verdict, on one line per item.
pub fn explain(v: &policy::Verdict, keyring: &verifier::Keyring) -> String {
    let e = v.explain(keyring);
    let mut out = format!("{} {}", e.word, e.summary);
    for d in &e.details {
        out.push_str("; ");
        out.push_str(d);
    }
    out
}

/// Most files of one keyring directory read for [`PolicyGate::fingerprint`] (the verifier's
/// own limit on keyring directories is of the same order; past it the digest covers the names
/// and sizes only).
pub const MAX_FINGERPRINT_FILES: usize = 4096;

impl PolicyGate {
    /// SHA-256 over the policy files and keyrings as they are on disk now: for each path its
    /// name and content (a directory: each regular, non-hidden file in name order, as the
    /// verifier reads it), or that it is missing. Editing, replacing or removing any of them
    /// changes the digest, and the node then re-decides the refs it rejected.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let file = |h: &mut sha2::Sha256, p: &Path, read: bool| {
            h.update(p.as_os_str().as_encoded_bytes());
            h.update([0]);
            match (read, std::fs::read(p)) {
                (true, Ok(bytes)) => {
                    h.update((bytes.len() as u64).to_be_bytes());
                    h.update(&bytes);
                }
                (false, _) => {
                    let len = std::fs::metadata(p).map_or(u64::MAX, |m| m.len());
                    h.update(len.to_be_bytes());
                }
                (true, Err(e)) => h.update(format!("unreadable: {e}").as_bytes()),
            }
        };
        for p in &self.policies {
            file(&mut h, p, true);
        }
        for k in &self.keyrings {
            if !k.is_dir() {
                file(&mut h, k, true);
                continue;
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(k)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            let read = files.len() <= MAX_FINGERPRINT_FILES;
            for f in &files {
                file(&mut h, f, read);
            }
        }
        hex::encode(h.finalize())
    }
}

impl Gate for PolicyGate {
    fn fingerprint(&self) -> Option<String> {
        Some(self.digest())
    }

    fn decide(&self, ctx: &RefUpdateCtx, tag_objects: &[Vec<u8>]) -> GateDecision {
        self.decide_received(ctx, tag_objects, &[])
    }

    fn decide_received(
        &self,
        ctx: &RefUpdateCtx,
        tag_objects: &[Vec<u8>],
        object_dirs: &[PathBuf],
    ) -> GateDecision {
        let repo = format!("{}/{}", hex::encode(ctx.publisher), ctx.repo);
        match self.verdict_received(ctx, tag_objects, object_dirs) {
            Ok((v, text)) => {
                let verdict = match v.decision {
                    Decision::Reject => Verdict::Reject,
                    Decision::Accept => Verdict::Accept,
                    Decision::Propagate => Verdict::Propagate,
                };
                if verdict == Verdict::Reject {
                    warn!(%repo, r#ref = %ctx.ref_name, new = %ctx.new, seq = ctx.seq, now = ctx.now, decision = "reject", "policy decision: {text}");
                } else {
                    info!(%repo, r#ref = %ctx.ref_name, new = %ctx.new, seq = ctx.seq, now = ctx.now, decision = v.decision.as_str(), "policy decision: {text}");
                }
                GateDecision::new(verdict, text)
            }
            Err(why) => {
                let text = format!("REJECT {}; why: {why}", ctx.ref_name);
                warn!(%repo, r#ref = %ctx.ref_name, new = %ctx.new, decision = "reject", "policy decision: {text}");
                GateDecision::new(Verdict::Reject, text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix::ObjectId;
    use gix::objs::Kind;

    fn ctx(new: ObjectId) -> RefUpdateCtx {
        RefUpdateCtx {
            repo: "proj".into(),
            publisher: [7; 32],
            served_by: [8; 32],
            ref_name: "refs/tags/v1".into(),
            old: None,
            new,
            new_kind: Kind::Tag,
            seq: 1,
            now: 1_780_272_000,
        }
    }

    fn root() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    }

    #[test]
    fn the_fingerprint_follows_policy_and_keyring_files_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let policy = tmp.path().join("p.kn");
        let keys = tmp.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        std::fs::write(&policy, "a").unwrap();
        let gate = PolicyGate::new(vec![policy.clone()], vec![keys.clone()], None);
        let first = gate.fingerprint().unwrap();
        assert_eq!(gate.fingerprint().unwrap(), first);
        std::fs::write(&policy, "b").unwrap();
        let edited = gate.fingerprint().unwrap();
        assert_ne!(edited, first);
        // A hidden file is not read by the verifier, so it changes nothing; a key file does.
        std::fs::write(keys.join(".hidden"), "x").unwrap();
        assert_eq!(gate.fingerprint().unwrap(), edited);
        std::fs::write(keys.join("k.asc"), "x").unwrap();
        let with_key = gate.fingerprint().unwrap();
        assert_ne!(with_key, edited);
        std::fs::remove_file(&policy).unwrap();
        assert_ne!(gate.fingerprint().unwrap(), with_key);
    }

    #[test]
    fn no_policy_is_a_rejection_with_the_reason() {
        let gate = PolicyGate::new(Vec::new(), Vec::new(), None);
        let d = gate.decide(&ctx(ObjectId::null(gix::hash::Kind::Sha1)), &[]);
        assert_eq!(d.verdict, Verdict::Reject);
        assert!(
            d.explanation.contains("no policy file"),
            "{}",
            d.explanation
        );
        assert!(gate.check(SystemTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn an_unsigned_tag_is_rejected_by_the_real_policy() {
        let tmp = tempfile::tempdir().unwrap();
        let gate = PolicyGate::new(
            vec![root().join("policies/single-maintainer.kn")],
            vec![root().join("testkeys")],
            Some(tmp.path().to_owned()),
        );
        gate.check(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000))
            .unwrap();
        let tag = b"object 1111111111111111111111111111111111111111\ntype commit\ntag v1\n\
                    tagger T <t@example.org> 1700000000 +0000\n\nunsigned\n"
            .to_vec();
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Tag, &tag).unwrap();
        let d = gate.decide(&ctx(id), &[tag]);
        assert_eq!(d.verdict, Verdict::Reject);
        assert!(
            d.explanation.starts_with("REJECT refs/tags/v1"),
            "{}",
            d.explanation
        );
        assert!(d.explanation.contains("why:"), "{}", d.explanation);
        // The per-decision quarantine is gone.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
