//! The node's repositories on disk: reading refs and objects, generating packs for wants and
//! haves, receiving packs through a quarantine, and compare-and-swap ref updates.
//!
//! Receiving is ordered so that a process killed at any moment leaves every ref pointing at
//! objects that exist:
//! 1. the pack is written and indexed (gix-pack, `Mode::Verify`: every object's hash is
//!    recomputed) into `<git-dir>/gt-quarantine/<unique>/`, invisible to the repository;
//! 2. connectivity is checked from the wanted tips: every object reachable from them is in the
//!    quarantine or already in the repository, and every new commit, tree and tag parses;
//! 3. the pack, then its index, are fsynced and renamed into `objects/pack/` (an index without
//!    its pack is never visible);
//! 4. only then is the ref changed, with the expected old value (compare-and-swap);
//! 5. the `.keep` file gix leaves next to a received pack is removed.
//!
//! [`Repo::cleanup_quarantine`] (run at node start-up) deletes whatever a crash left in step 1–2,
//! and [`Repo::remove_stale_ref_locks`] the lock file a crash in step 4 leaves, which would
//! otherwise block that ref for good.
//!
//! All functions here block (gix is synchronous); async callers use `spawn_blocking`.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use gix::ObjectId;
use gix::objs::Kind;
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use crate::announce::RefMap;
use crate::wire::{MAX_PACK_BYTES, MAX_PACK_OBJECTS, MAX_TAG_CHAIN};

/// Most commits walked to decide whether an announced commit is older than the current one;
/// beyond it the update is treated as new and goes to the gate.
pub const MAX_ANCESTRY_WALK: usize = 100_000;

/// Name of the quarantine directory inside the git directory.
pub const QUARANTINE_DIR: &str = "gt-quarantine";

/// Limits applied to one pack, sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackLimits {
    /// Most bytes.
    pub max_bytes: u64,
    /// Most objects.
    pub max_objects: u32,
}

impl Default for PackLimits {
    fn default() -> Self {
        PackLimits {
            max_bytes: MAX_PACK_BYTES,
            max_objects: MAX_PACK_OBJECTS,
        }
    }
}

/// Repository storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A gix operation failed.
    #[error("{what} in {repo}: {detail}")]
    Git {
        /// What we were doing.
        what: &'static str,
        /// The repository.
        repo: PathBuf,
        /// gix's error chain.
        detail: String,
    },
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// An object the operation needs is not in the repository.
    #[error("object {oid} not found in {repo}")]
    MissingObject {
        /// The object.
        oid: ObjectId,
        /// The repository.
        repo: PathBuf,
    },
    /// A received pack does not contain everything reachable from the wanted tips.
    #[error("received pack is not connected: {oid} (reachable from {tip}) is missing")]
    NotConnected {
        /// The missing object.
        oid: ObjectId,
        /// The tip it is reachable from.
        tip: ObjectId,
    },
    /// A received object does not parse.
    #[error("received {kind} {oid} is malformed: {detail}")]
    Malformed {
        /// Object type.
        kind: Kind,
        /// Object id.
        oid: ObjectId,
        /// Parser message.
        detail: String,
    },
    /// A pack (sent or received) exceeds the limits.
    #[error("pack exceeds the limit: {what} {count} > {max}")]
    TooLarge {
        /// `bytes` or `objects`.
        what: &'static str,
        /// The count.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// Indexing or verifying a received pack failed (bad checksum, hash mismatch, truncation).
    #[error("received pack is invalid: {0}")]
    BadPack(String),
    /// The ref did not have the expected old value (someone else moved it first).
    #[error("ref {name} was not at the expected value {expected}: {detail}")]
    RefConflict {
        /// The ref.
        name: String,
        /// What we expected (`none` for "must not exist").
        expected: String,
        /// gix's message.
        detail: String,
    },
    /// An invalid ref name.
    #[error("invalid ref name {0:?}")]
    RefName(String),
}

/// A bare git repository owned (or served) by the node.
#[derive(Debug, Clone)]
pub struct Repo {
    path: PathBuf,
}

/// A pack written to a file by [`Repo::generate_pack`].
#[derive(Debug)]
pub struct GeneratedPack {
    /// The pack file, positioned at its end.
    pub file: fs::File,
    /// Its size.
    pub bytes: u64,
    /// Objects in it.
    pub objects: u32,
}

/// A received pack, indexed and connectivity-checked, still in quarantine.
#[derive(Debug)]
pub struct Quarantined {
    repo: Repo,
    dir: PathBuf,
    pack: Option<PathBuf>,
    index: Option<PathBuf>,
    keep: Option<PathBuf>,
    /// Objects in the pack.
    pub objects: u32,
    /// Objects walked by the connectivity check.
    pub checked: u64,
}

fn git_err<E: std::fmt::Debug>(what: &'static str, repo: &Path) -> impl FnOnce(E) -> StoreError {
    let repo = repo.to_owned();
    move |e| StoreError::Git {
        what,
        repo,
        detail: format!("{e:?}"),
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { what, path, source }
}

static QUARANTINE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Repo {
    /// Use the repository at `path` (its git directory, or a work tree containing `.git`).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let repo = gix::open(&path).map_err(git_err("open repository", &path))?;
        Ok(Repo {
            path: repo.git_dir().to_owned(),
        })
    }

    /// Create a bare repository at `path` (or use the one there).
    pub fn init_bare(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        if path.join("HEAD").exists() {
            return Self::open(path);
        }
        fs::create_dir_all(&path).map_err(io_err("create repository directory", &path))?;
        let repo = gix::init_bare(&path).map_err(git_err("init bare repository", &path))?;
        Ok(Repo {
            path: repo.git_dir().to_owned(),
        })
    }

    /// The git directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn gix(&self) -> Result<gix::Repository, StoreError> {
        gix::open(&self.path).map_err(git_err("open repository", &self.path))
    }

    /// Delete every quarantine directory (left by a crash during a receive). Run at start-up,
    /// before any receive on this repository.
    pub fn cleanup_quarantine(&self) -> Result<(), StoreError> {
        let q = self.path.join(QUARANTINE_DIR);
        match fs::remove_dir_all(&q) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove quarantine", &q)(e)),
        }
    }

    /// Delete the ref lock files (`*.lock` under `refs/`, and `packed-refs.lock`) that a
    /// process killed in the middle of a ref update leaves behind: git and gix refuse to change
    /// such a ref until the file is gone ("might need manual deletion"). Returns how many were
    /// removed.
    ///
    /// Only for a repository that no other process writes while this runs: gt-node calls it at
    /// start-up on the repositories it follows, which live in its own data directory (one
    /// daemon per data directory), never on a shared repository, which is the user's.
    pub fn remove_stale_ref_locks(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut remove = |path: &Path| match fs::remove_file(path) {
            Ok(()) => {
                removed += 1;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove stale ref lock", path)(e)),
        };
        remove(&self.path.join("packed-refs.lock"))?;
        let mut dirs = vec![self.path.join("refs")];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list refs", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("list refs", &dir))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(io_err("list refs", &path))?;
                if kind.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "lock") {
                    remove(&path)?;
                }
            }
        }
        Ok(removed)
    }

    /// All refs under `refs/` and their direct targets (symbolic refs are skipped).
    pub fn refs(&self) -> Result<RefMap, StoreError> {
        let repo = self.gix()?;
        let platform = repo
            .references()
            .map_err(git_err("list refs", &self.path))?;
        let iter = platform.prefixed("refs/").map_err(|e| StoreError::Git {
            what: "list refs",
            repo: self.path.clone(),
            detail: e.to_string(),
        })?;
        let mut out = RefMap::new();
        for r in iter {
            let r = r.map_err(|e| StoreError::Git {
                what: "read ref",
                repo: self.path.clone(),
                detail: e.to_string(),
            })?;
            if let Some(id) = r.target().try_id() {
                out.insert(r.name().as_bstr().to_string(), id.to_owned());
            }
        }
        Ok(out)
    }

    /// The current value of one ref.
    pub fn ref_value(&self, name: &str) -> Result<Option<ObjectId>, StoreError> {
        let repo = self.gix()?;
        let r = repo
            .try_find_reference(name)
            .map_err(git_err("read ref", &self.path))?;
        Ok(r.and_then(|r| r.target().try_id().map(ToOwned::to_owned)))
    }

    /// Whether the object is in the repository.
    pub fn has_object(&self, oid: &ObjectId) -> Result<bool, StoreError> {
        Ok(self.gix()?.has_object(oid))
    }

    /// One object's type and bytes, if present.
    pub fn read_object(&self, oid: &ObjectId) -> Result<Option<(Kind, Vec<u8>)>, StoreError> {
        let repo = self.gix()?;
        let obj = repo
            .try_find_object(*oid)
            .map_err(git_err("read object", &self.path))?;
        Ok(obj.map(|o| (o.kind, o.data.clone())))
    }

    /// Whether commit `ancestor` is in the history of `descendant` (peeled to a commit),
    /// walking at most [`MAX_ANCESTRY_WALK`] commits. `false` when either is missing here or
    /// is not a commit, or when the walk hits the bound.
    pub fn is_ancestor(
        &self,
        ancestor: ObjectId,
        descendant: ObjectId,
    ) -> Result<bool, StoreError> {
        let repo = self.gix()?;
        let peel = |id: ObjectId| -> Option<ObjectId> {
            let obj = repo.try_find_object(id).ok()??;
            obj.peel_to_kind(Kind::Commit).ok().map(|c| c.id)
        };
        // Only a commit can be "older": a tag object is a statement of its own (a re-signed tag
        // for the same commit is a real update), so tags always go to the gate.
        let is_commit = repo
            .try_find_object(ancestor)
            .ok()
            .flatten()
            .is_some_and(|o| o.kind == Kind::Commit);
        let (true, Some(d)) = (is_commit, peel(descendant)) else {
            return Ok(false);
        };
        let a = ancestor;
        let walk = repo
            .rev_walk([d])
            .all()
            .map_err(git_err("walk history", &self.path))?;
        for info in walk.take(MAX_ANCESTRY_WALK) {
            let info = info.map_err(|e| StoreError::Git {
                what: "walk history",
                repo: self.path.clone(),
                detail: e.to_string(),
            })?;
            if info.id == a {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The given objects and, for tags among them, every object down their tag chains (at most
    /// [`MAX_TAG_CHAIN`] levels): what a follower may serve for the refs it propagates.
    pub fn tag_chains(&self, roots: &[ObjectId]) -> Result<HashSet<ObjectId>, StoreError> {
        let repo = self.gix()?;
        let mut out = HashSet::new();
        for root in roots {
            let mut id = *root;
            for _ in 0..=MAX_TAG_CHAIN {
                out.insert(id);
                let Some(obj) = repo
                    .try_find_object(id)
                    .map_err(git_err("read object", &self.path))?
                else {
                    break;
                };
                if obj.kind != Kind::Tag {
                    break;
                }
                id = obj
                    .into_tag()
                    .target_id()
                    .map_err(git_err("read tag", &self.path))?
                    .detach();
            }
        }
        Ok(out)
    }

    /// Write a pack of everything reachable from `wants` but not from those `haves` this
    /// repository knows, into an anonymous temporary file. Objects the client has are left out
    /// by walking commits with the haves hidden and sending, per commit, only the tree entries
    /// new relative to its parents (gix-pack `TreeAdditionsComparedToAncestor`); deltas are
    /// copied from existing packs, never thin (the receiver can index it alone).
    pub fn generate_pack(
        &self,
        wants: &[ObjectId],
        haves: &[ObjectId],
        limits: PackLimits,
    ) -> Result<GeneratedPack, StoreError> {
        let repo = self.gix()?;
        let mut inputs: Vec<ObjectId> = Vec::new();
        let mut tips = Vec::new();
        for want in wants {
            // Tags (and chains of them) go in as themselves; the walk starts at the commit.
            let mut id = *want;
            for _ in 0..=MAX_TAG_CHAIN {
                let obj = repo
                    .try_find_object(id)
                    .map_err(git_err("read wanted object", &self.path))?
                    .ok_or_else(|| StoreError::MissingObject {
                        oid: id,
                        repo: self.path.clone(),
                    })?;
                match obj.kind {
                    Kind::Tag => {
                        inputs.push(id);
                        id = obj
                            .into_tag()
                            .target_id()
                            .map_err(git_err("read tag", &self.path))?
                            .detach();
                    }
                    Kind::Commit => {
                        tips.push(id);
                        break;
                    }
                    Kind::Tree | Kind::Blob => {
                        inputs.push(id);
                        break;
                    }
                }
            }
        }
        let mut hidden = Vec::new();
        for have in haves {
            // Unknown haves are the client's business; peel the known ones to commits.
            if let Ok(Some(obj)) = repo.try_find_object(*have)
                && let Ok(commit) = obj.peel_to_kind(Kind::Commit)
            {
                hidden.push(commit.id);
            }
        }
        let walk = repo
            .rev_walk(tips.iter().copied())
            .with_hidden(hidden)
            .all()
            .map_err(git_err("walk history", &self.path))?;
        for info in walk {
            let info = info.map_err(|e| StoreError::Git {
                what: "walk history",
                repo: self.path.clone(),
                detail: e.to_string(),
            })?;
            inputs.push(info.id);
            if inputs.len() as u64 > u64::from(limits.max_objects) {
                break;
            }
        }

        let mut db = repo.objects.clone().into_inner();
        // Required by gix-pack's location lookups (they keep pack offsets across calls).
        db.prevent_pack_unload();
        db.ignore_replacements = true;
        let interrupt = AtomicBool::new(false);
        let (counts, _) = gix_pack::data::output::count::objects_unthreaded(
            &db,
            &mut inputs.into_iter().map(Ok),
            &gix::progress::Discard,
            &interrupt,
            gix_pack::data::output::count::objects::ObjectExpansion::TreeAdditionsComparedToAncestor,
        )
        .map_err(git_err("count objects", &self.path))?;
        if counts.len() as u64 > u64::from(limits.max_objects) {
            return Err(StoreError::TooLarge {
                what: "objects",
                count: counts.len() as u64,
                max: u64::from(limits.max_objects),
            });
        }
        let objects = counts.len() as u32;
        let entries = gix_pack::data::output::entry::iter_from_counts(
            counts,
            db,
            Box::new(gix::progress::Discard),
            gix_pack::data::output::entry::iter_from_counts::Options {
                thread_limit: Some(1),
                allow_thin_pack: false,
                ..Default::default()
            },
        )
        .map_err(git_err("prepare pack entries", &self.path))?;
        let entries = gix::parallel::InOrderIter::from(entries);

        let tmp = tempfile::tempfile().map_err(io_err("create temporary pack", &self.path))?;
        let mut writer = std::io::BufWriter::new(tmp);
        let mut written = 0u64;
        {
            let iter = gix_pack::data::output::bytes::FromEntriesIter::new(
                entries,
                &mut writer,
                objects,
                gix_pack::data::Version::V2,
                gix::hash::Kind::Sha1,
            );
            for n in iter {
                written += n.map_err(git_err("write pack", &self.path))?;
                if written > limits.max_bytes {
                    return Err(StoreError::TooLarge {
                        what: "bytes",
                        count: written,
                        max: limits.max_bytes,
                    });
                }
            }
        }
        writer.flush().map_err(io_err("write pack", &self.path))?;
        let file = writer
            .into_inner()
            .map_err(|e| io_err("write pack", &self.path)(e.into_error()))?;
        Ok(GeneratedPack {
            file,
            bytes: written,
            objects,
        })
    }

    /// Index `pack` into a fresh quarantine (verifying every object's hash), then check that
    /// everything reachable from `tips` is in the quarantine or already in the repository, and
    /// that every new commit, tree and tag parses. Nothing in the repository changes.
    pub fn receive_pack(
        &self,
        pack: &mut dyn BufRead,
        tips: &[ObjectId],
        limits: PackLimits,
    ) -> Result<Quarantined, StoreError> {
        let unique = format!(
            "{}-{}",
            std::process::id(),
            QUARANTINE_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.path.join(QUARANTINE_DIR).join(unique);
        let pack_dir = dir.join("pack");
        fs::create_dir_all(&pack_dir).map_err(io_err("create quarantine", &pack_dir))?;
        let mut q = Quarantined {
            repo: self.clone(),
            dir,
            pack: None,
            index: None,
            keep: None,
            objects: 0,
            checked: 0,
        };
        let interrupt = AtomicBool::new(false);
        let outcome = gix_pack::Bundle::write_to_directory(
            pack,
            Some(&pack_dir),
            &mut gix::progress::Discard,
            &interrupt,
            None::<gix::objs::find::Never>,
            gix::hash::Kind::Sha1,
            gix_pack::bundle::write::Options {
                thread_limit: Some(1),
                iteration_mode: gix_pack::data::input::Mode::Verify,
                index_version: gix_pack::index::Version::V2,
                // No single object may need more memory than the whole pack may have.
                alloc_limit_bytes: Some(usize::try_from(limits.max_bytes).unwrap_or(usize::MAX)),
                ..Default::default()
            },
        )
        .map_err(|e| StoreError::BadPack(format!("{e:?}")))?;
        q.pack = outcome.data_path.clone();
        q.index = outcome.index_path.clone();
        q.keep = outcome.keep_path.clone();
        q.objects = outcome.index.num_objects;
        if q.objects > limits.max_objects {
            return Err(StoreError::TooLarge {
                what: "objects",
                count: u64::from(q.objects),
                max: u64::from(limits.max_objects),
            });
        }
        q.checked = self.check_connectivity(&q.dir, tips, limits)?;
        Ok(q)
    }

    fn check_connectivity(
        &self,
        quarantine: &Path,
        tips: &[ObjectId],
        limits: PackLimits,
    ) -> Result<u64, StoreError> {
        use gix::objs::Find as _;
        let repo = self.gix()?;
        let qdb = gix::odb::at(quarantine, gix::hash::Kind::Sha1)
            .map_err(io_err("open quarantine", quarantine))?;
        let mut seen: HashSet<ObjectId> = HashSet::new();
        let mut buf = Vec::new();
        let mut walked = 0u64;
        for tip in tips {
            let mut stack = vec![*tip];
            while let Some(oid) = stack.pop() {
                if !seen.insert(oid) {
                    continue;
                }
                // Objects already in the repository are complete: only connected closures are
                // ever moved in (this check), so their reachable objects are there too.
                if repo.has_object(oid) {
                    continue;
                }
                walked += 1;
                if walked > u64::from(limits.max_objects) {
                    return Err(StoreError::TooLarge {
                        what: "objects",
                        count: walked,
                        max: u64::from(limits.max_objects),
                    });
                }
                let data = qdb
                    .try_find(&oid, &mut buf)
                    .map_err(|e| StoreError::BadPack(format!("reading {oid}: {e:?}")))?
                    .ok_or(StoreError::NotConnected { oid, tip: *tip })?;
                let malformed = |kind, e: &dyn std::fmt::Debug| StoreError::Malformed {
                    kind,
                    oid,
                    detail: format!("{e:?}"),
                };
                let kind = data.kind;
                match kind {
                    Kind::Tag => {
                        let tag = gix::objs::TagRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                            .map_err(|e| malformed(kind, &e))?;
                        stack.push(tag.target());
                    }
                    Kind::Commit => {
                        let c = gix::objs::CommitRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                            .map_err(|e| malformed(kind, &e))?;
                        stack.push(c.tree());
                        stack.extend(c.parents());
                    }
                    Kind::Tree => {
                        let t = gix::objs::TreeRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                            .map_err(|e| malformed(kind, &e))?;
                        // Submodule entries (gitlinks) point into other repositories.
                        stack.extend(
                            t.entries
                                .iter()
                                .filter(|e| !e.mode.is_commit())
                                .map(|e| e.oid.to_owned()),
                        );
                    }
                    Kind::Blob => {}
                }
            }
        }
        Ok(walked)
    }

    /// The repository's own object directory.
    pub fn objects_dir(&self) -> PathBuf {
        self.path.join("objects")
    }

    /// Set ref `name` to `new` if it currently is `expected_old` (`None`: must not exist).
    ///
    /// gix's `MustNotExist` also succeeds when the ref already exists with the same target
    /// (it is idempotent); that is harmless here since the outcome is the same ref value.
    pub fn update_ref(
        &self,
        name: &str,
        expected_old: Option<ObjectId>,
        new: ObjectId,
    ) -> Result<(), StoreError> {
        let repo = self.gix()?;
        let full: gix::refs::FullName = name
            .try_into()
            .map_err(|_| StoreError::RefName(name.to_owned()))?;
        let expected = match expected_old {
            Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
            None => PreviousValue::MustNotExist,
        };
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "gt-node: update from peer".into(),
                },
                expected,
                new: Target::Object(new),
            },
            name: full,
            deref: false,
        };
        repo.edit_references_as([edit], None)
            .map_err(|e| StoreError::RefConflict {
                name: name.to_owned(),
                expected: expected_old.map_or_else(|| "none".into(), |o| o.to_string()),
                detail: format!("{e:?}"),
            })?;
        Ok(())
    }

    /// Delete ref `name` if it currently is `expected_old` (compare-and-swap, like
    /// [`Repo::update_ref`]); the objects stay (git's gc collects them once unreferenced).
    pub fn delete_ref(&self, name: &str, expected_old: ObjectId) -> Result<(), StoreError> {
        let repo = self.gix()?;
        let full: gix::refs::FullName = name
            .try_into()
            .map_err(|_| StoreError::RefName(name.to_owned()))?;
        let edit = RefEdit {
            change: Change::Delete {
                expected: PreviousValue::MustExistAndMatch(Target::Object(expected_old)),
                log: RefLog::AndReference,
            },
            name: full,
            deref: false,
        };
        repo.edit_references_as([edit], None)
            .map_err(|e| StoreError::RefConflict {
                name: name.to_owned(),
                expected: expected_old.to_string(),
                detail: format!("{e:?}"),
            })?;
        Ok(())
    }
}

fn fsync(path: &Path) -> Result<(), StoreError> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err("fsync", path))
}

impl Quarantined {
    /// Move the pack into the repository (pack first, then index, both fsynced), then update
    /// `name` from `expected_old` to `new`, then drop the `.keep` and the quarantine.
    pub fn commit(
        mut self,
        name: &str,
        expected_old: Option<ObjectId>,
        new: ObjectId,
    ) -> Result<(), StoreError> {
        self.move_in()?;
        let updated = self.repo.update_ref(name, expected_old, new);
        // Whether or not the ref moved, the pack is complete and connected: it may be
        // collected like any other once unreferenced, so its keep file goes either way.
        if let Some(keep) = self.keep.take() {
            let dest = self
                .repo
                .path
                .join("objects/pack")
                .join(keep.file_name().unwrap_or_default());
            let _ = fs::remove_file(dest);
        }
        updated
    }

    /// Move the pack into the repository without changing any ref (the caller, e.g. git
    /// running a remote helper, updates refs itself), then drop the `.keep`.
    pub fn commit_objects(mut self) -> Result<(), StoreError> {
        self.move_in()?;
        if let Some(keep) = self.keep.take() {
            let dest = self
                .repo
                .path
                .join("objects/pack")
                .join(keep.file_name().unwrap_or_default());
            let _ = fs::remove_file(dest);
        }
        Ok(())
    }

    /// Move the pack and index into `objects/pack` (no ref change).
    fn move_in(&mut self) -> Result<(), StoreError> {
        let dest_dir = self.repo.path.join("objects").join("pack");
        fs::create_dir_all(&dest_dir).map_err(io_err("create pack directory", &dest_dir))?;
        // The keep file first (protects the pack from a concurrent gc), then the pack, then the
        // index: git and gix find packs through their index.
        for src in [self.keep.as_ref(), self.pack.as_ref(), self.index.as_ref()]
            .into_iter()
            .flatten()
        {
            fsync(src)?;
            let dest = dest_dir.join(src.file_name().unwrap_or_default());
            fs::rename(src, &dest).map_err(io_err("move pack into place", &dest))?;
        }
        fsync(&dest_dir)?;
        Ok(())
    }
}

impl Quarantined {
    /// The quarantine's object directory (it holds `pack/` with the received pack and its
    /// index): a decision that needs the received objects reads them from here before
    /// anything is moved into the repository.
    pub fn objects_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Quarantined {
    fn drop(&mut self) {
        // Committed or abandoned, the quarantine directory goes; whatever was moved out stays.
        let _ = fs::remove_dir_all(&self.dir);
    }
}
