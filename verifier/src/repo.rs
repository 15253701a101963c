//! Reading tag objects from a git repository with gix, including a push's quarantine.
//!
//! git runs a pre-receive hook with the pushed objects in a quarantine directory
//! (`GIT_OBJECT_DIRECTORY`) and the repository's own objects as an alternate
//! (`GIT_ALTERNATE_OBJECT_DIRECTORIES`). gix 0.90 ignores both variables when it opens a
//! repository, so a hook that simply opens the repository cannot see the tag being pushed.
//! [`TagSource::open_quarantine`] and [`TagSource::from_git_env`] search the given object
//! directories first, then the repository's own store.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::objs::Find;

use crate::limits::MAX_TAG_OBJECT_BYTES;

/// Why a tag could not be read from the repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The repository could not be opened.
    #[error("cannot open repository {path}: {reason}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// gix's message.
        reason: String,
    },
    /// An object directory (quarantine or alternate) could not be opened.
    #[error("cannot open object directory {path}: {source}")]
    ObjectDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The name is neither a full object id nor a reference.
    #[error("{spec:?} is neither a reference nor a full object id{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    NotFound {
        /// The name asked for.
        spec: String,
        /// gix's message, when lookup failed for another reason than absence.
        reason: Option<String>,
    },
    /// The object is not in any object store.
    #[error("object {0} is not in the repository")]
    MissingObject(ObjectId),
    /// Reading the object store failed.
    #[error("cannot read object {oid}: {reason}")]
    Read {
        /// The object.
        oid: ObjectId,
        /// gix's message.
        reason: String,
    },
    /// The object exists but is not a tag.
    #[error("object {oid} is a {kind}, not a tag")]
    NotATag {
        /// The object.
        oid: ObjectId,
        /// Its kind.
        kind: gix::objs::Kind,
    },
    /// The tag object is larger than [`MAX_TAG_OBJECT_BYTES`].
    #[error("tag object {oid} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The object.
        oid: ObjectId,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Writing an object or moving a reference failed.
    #[error("cannot update the repository: {0}")]
    Write(String),
    /// A compare-and-swap reference move found the reference no longer at the expected value:
    /// someone else moved it since it was read. Nothing was changed.
    #[error("{name} was moved by someone else: expected {expected}, found {actual}")]
    RefMoved {
        /// The full reference name.
        name: String,
        /// The value the caller read and expected.
        expected: ObjectId,
        /// The value found while holding the reference's lock (an object id, or `ref: <name>`).
        actual: String,
    },
    /// The reference's lock file (`<ref>.lock`) stayed held by someone else for longer than
    /// git's `core.filesRefLockTimeout` (100 ms by default): a concurrent update in progress, or
    /// a stale lock left by a crashed process. Nothing was changed.
    #[error("{name} is locked by another update ({reason})")]
    RefLocked {
        /// The full reference name.
        name: String,
        /// gix's messages, outermost first (they name the lock file).
        reason: String,
    },
}

/// A repository to read tags from, optionally with extra object directories searched first.
///
/// A `TagSource` is `Send` but not `Sync` (gix keeps per-handle caches): to read from several
/// threads, give each its own [`Clone`], which shares the repository's object store and
/// reference files.
#[derive(Clone)]
pub struct TagSource {
    repo: gix::Repository,
    /// Searched before the repository's own store (a quarantine and its alternates).
    extra: Vec<gix::odb::Handle>,
}

// Reading tags on several threads moves a clone of the source to each.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<TagSource>();
};

impl std::fmt::Debug for TagSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagSource")
            .field("git_dir", &self.repo.git_dir())
            .field("extra_stores", &self.extra.len())
            .finish()
    }
}

impl TagSource {
    /// Open the repository at (or above) `dir`.
    pub fn open(dir: &Path) -> Result<TagSource, RepoError> {
        let repo = gix::discover(dir).map_err(|e| RepoError::Open {
            path: dir.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(TagSource {
            repo,
            extra: Vec::new(),
        })
    }

    /// Open the repository at `dir`, searching `objects` (a push's quarantine directory) and then
    /// `alternates` before the repository's own object store.
    pub fn open_quarantine(
        dir: &Path,
        objects: &Path,
        alternates: &[PathBuf],
    ) -> Result<TagSource, RepoError> {
        let mut source = TagSource::open(dir)?;
        for path in std::iter::once(objects).chain(alternates.iter().map(PathBuf::as_path)) {
            let handle = gix::odb::at(path, gix::hash::Kind::Sha1).map_err(|source| {
                RepoError::ObjectDir {
                    path: path.to_owned(),
                    source,
                }
            })?;
            source.extra.push(handle);
        }
        Ok(source)
    }

    /// Open the repository at `dir` the way git's hooks see it: if `GIT_OBJECT_DIRECTORY` is set,
    /// search it and the colon-separated `GIT_ALTERNATE_OBJECT_DIRECTORIES` first.
    pub fn from_git_env(dir: &Path) -> Result<TagSource, RepoError> {
        match std::env::var_os("GIT_OBJECT_DIRECTORY") {
            Some(objects) => {
                let alternates: Vec<PathBuf> = std::env::var_os("GIT_ALTERNATE_OBJECT_DIRECTORIES")
                    .map(|a| std::env::split_paths(&a).collect())
                    .unwrap_or_default();
                TagSource::open_quarantine(dir, Path::new(&objects), &alternates)
            }
            None => TagSource::open(dir),
        }
    }

    /// The gix repository (for callers that need refs or other objects).
    pub fn repository(&self) -> &gix::Repository {
        &self.repo
    }

    /// Resolve `spec`, a full hex object id or a reference name (`v1.0`, `tags/v1.0`,
    /// `refs/tags/v1.0`, git's lookup rules), to the object it names *without* peeling tags.
    /// Returns the full reference name too, when `spec` was a reference.
    pub fn resolve(&self, spec: &str) -> Result<(ObjectId, Option<String>), RepoError> {
        if spec.len() == 40
            && spec.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(oid) = ObjectId::from_hex(spec.as_bytes())
        {
            return Ok((oid, None));
        }
        let not_found = |reason: Option<String>| RepoError::NotFound {
            spec: spec.to_owned(),
            reason,
        };
        let mut r = self
            .repo
            .try_find_reference(spec)
            .map_err(|e| not_found(Some(e.to_string())))?
            .ok_or_else(|| not_found(None))?;
        let name = r.name().as_bstr().to_string();
        let id = r
            .follow_to_object()
            .map_err(|e| not_found(Some(e.to_string())))?;
        Ok((id.detach(), Some(name)))
    }

    /// Read any object: its kind and bytes.
    pub fn read_object(&self, oid: ObjectId) -> Result<(gix::objs::Kind, Vec<u8>), RepoError> {
        let mut buf = Vec::new();
        for store in &self.extra {
            match store.try_find(&oid, &mut buf) {
                Ok(Some(data)) => return Ok((data.kind, data.data.to_vec())),
                Ok(None) => {}
                Err(e) => {
                    return Err(RepoError::Read {
                        oid,
                        reason: e.to_string(),
                    });
                }
            }
        }
        match self.repo.try_find_object(oid) {
            Ok(Some(obj)) => Ok((obj.kind, obj.data.clone())),
            Ok(None) => Err(RepoError::MissingObject(oid)),
            Err(e) => Err(RepoError::Read {
                oid,
                reason: e.to_string(),
            }),
        }
    }

    /// Read a tag object's bytes; errors if the object is not a tag or is too large.
    pub fn read_tag(&self, oid: ObjectId) -> Result<Vec<u8>, RepoError> {
        let (kind, data) = self.read_object(oid)?;
        if kind != gix::objs::Kind::Tag {
            return Err(RepoError::NotATag { oid, kind });
        }
        if data.len() > MAX_TAG_OBJECT_BYTES {
            return Err(RepoError::TooLarge {
                oid,
                size: data.len(),
                limit: MAX_TAG_OBJECT_BYTES,
            });
        }
        Ok(data)
    }

    /// Write a tag object into the repository's own store and return its id.
    pub fn write_tag(&self, bytes: &[u8]) -> Result<ObjectId, RepoError> {
        use gix::objs::Write;
        self.repo
            .write_buf(gix::objs::Kind::Tag, bytes)
            .map_err(|e| RepoError::Write(e.to_string()))
    }

    /// Move the reference `name` (a full name) from `old` to `new`, failing if it does not
    /// currently point at `old` (compare-and-swap, so a concurrent update is never lost).
    ///
    /// Losing a race is told apart from other failures: [`RepoError::RefMoved`] when the
    /// reference no longer points at `old`, [`RepoError::RefLocked`] when another update held its
    /// lock throughout git's lock timeout.
    pub fn move_ref(
        &self,
        name: &str,
        old: ObjectId,
        new: ObjectId,
        message: &str,
    ) -> Result<(), RepoError> {
        use gix::refs::transaction::PreviousValue;
        self.repo
            .reference(
                name,
                new,
                PreviousValue::MustExistAndMatch(gix::refs::Target::Object(old)),
                message,
            )
            .map_err(|e| {
                if let Some(moved) = e
                    .downcast_any_ref::<gix::refs::file::transaction::prepare::ReferenceOutOfDate>()
                {
                    RepoError::RefMoved {
                        name: name.to_owned(),
                        expected: old,
                        actual: moved.actual.to_string(),
                    }
                } else if e
                    .downcast_any_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::AlreadyExists)
                {
                    RepoError::RefLocked {
                        name: name.to_owned(),
                        // The whole chain: the lock's own message names the lock file.
                        reason: {
                            let mut chain: Vec<String> =
                                e.iter_errors().map(ToString::to_string).collect();
                            chain.dedup();
                            chain.join(": ")
                        },
                    }
                } else {
                    RepoError::Write(format!("{name}: {e}"))
                }
            })?;
        Ok(())
    }
}
