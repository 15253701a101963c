//! What a node publishes in the DHT for one repository, and how followers read it.
//!
//! Per repository a publisher puts one BEP 44 mutable item signed by its ed25519 node key and
//! salted by the repository name ([`salt`]). Its value ([`encode_item`]) is a bencoded dictionary
//! with a format version and either
//! - `r`: the ref map itself, `{refname: 20-byte oid}`, when that fits in BEP 44's 1000-byte
//!   value limit ([`MAX_ITEM_VALUE_BYTES`]); or
//! - `m` + `n`: the SHA-256 of a *ref manifest* and its ref count, when it does not. The manifest
//!   (the same `{v, r}` dictionary, unbounded by BEP 44) is fetched from a serving peer over the
//!   wire protocol and accepted only if it hashes to `m` ([`decode_manifest`]).
//!
//! mainline reports an oversized value as a query *timeout* rather than a size error (storing
//! nodes answer error 205 and the client gives up), so the size is checked here, before putting.
//!
//! Serving nodes are found with BEP 5 `get_peers` on [`info_hash`], derived from the publisher key
//! and repository name. Sequence numbers only grow ([`next_seq`]); a follower ignores any item
//! whose seq is not greater than the last one it acted on ([`is_newer`]).

use std::collections::BTreeMap;

use gix::ObjectId;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha1::Digest as _;

use crate::wire::{MAX_MANIFEST_BYTES, check_bencode};

/// Version of the item and manifest format; readers refuse other versions.
pub const ITEM_FORMAT_VERSION: i64 = 1;

/// BEP 44: "the size of the `v` field must not exceed 1000 bytes". mainline does not check it
/// on the client side (an oversized put times out), so we do.
pub const MAX_ITEM_VALUE_BYTES: usize = 1000;

/// BEP 44 limits salts to 64 bytes; the salt is [`SALT_PREFIX`] plus the name.
pub const MAX_REPO_NAME_BYTES: usize = 64 - SALT_PREFIX.len();

/// Prefix of every salt, so gt items never collide with other uses of the same key.
pub const SALT_PREFIX: &[u8] = b"gt1/";

/// Most refs accepted in one manifest: bounds the work a follower does per update (one staged
/// fetch per changed ref).
pub const MAX_MANIFEST_REFS: usize = 10_000;

/// Longest ref name accepted from the DHT or a manifest (git itself has no hard limit; PATH_MAX
/// is the practical one).
pub const MAX_REF_NAME_BYTES: usize = 1024;

/// Deepest bencode nesting in an item or manifest: `{v, r: {name: oid}}` is two levels.
const ITEM_MAX_DEPTH: usize = 4;

/// A repository's refs: full ref name → object id.
pub type RefMap = BTreeMap<String, ObjectId>;

/// What a DHT item carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemContent {
    /// The ref map itself.
    Refs(RefMap),
    /// The refs are in a manifest with this SHA-256 and this many refs.
    Manifest {
        /// SHA-256 of the manifest bytes.
        sha256: [u8; 32],
        /// Number of refs in the manifest.
        count: u64,
    },
}

/// An encoded item value, and the manifest it refers to when the refs did not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedItem {
    /// The BEP 44 value, at most [`MAX_ITEM_VALUE_BYTES`].
    pub value: Vec<u8>,
    /// The manifest to serve to followers, when the value holds only its hash.
    pub manifest: Option<Vec<u8>>,
}

/// Errors building or reading items, manifests, salts and info-hashes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// The repository name is empty, too long, or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid repository name {name:?}: {reason}")]
    RepoName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A ref name is not a valid git ref name under `refs/`.
    #[error("invalid ref name {name:?}: {reason}")]
    RefName {
        /// The name (lossily decoded).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object id in the map is not 20 bytes.
    #[error("ref {name:?}: object id of {len} bytes, want 20")]
    Oid {
        /// The ref.
        name: String,
        /// Its length.
        len: usize,
    },
    /// The bytes are not the expected bencoded dictionary.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `item` or `manifest`.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A format version other than [`ITEM_FORMAT_VERSION`].
    #[error("{what} format version {found}, this node reads {ITEM_FORMAT_VERSION}")]
    Version {
        /// `item` or `manifest`.
        what: &'static str,
        /// The version found.
        found: i64,
    },
    /// The manifest does not hash to the value published in the item.
    #[error("manifest hash mismatch: item says {expected}, manifest hashes to {actual}")]
    ManifestHash {
        /// Hex SHA-256 from the item.
        expected: String,
        /// Hex SHA-256 of the bytes received.
        actual: String,
    },
    /// The manifest's ref count differs from the item's.
    #[error("manifest has {actual} refs, item says {expected}")]
    ManifestCount {
        /// From the item.
        expected: u64,
        /// In the manifest.
        actual: usize,
    },
    /// Too many refs, or a manifest larger than the limits.
    #[error("{what}: {count} exceeds the limit of {max}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
}

#[derive(Serialize, Deserialize)]
struct RawItem {
    v: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<BTreeMap<ByteBuf, ByteBuf>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
}

/// Check a repository name: 1..=[`MAX_REPO_NAME_BYTES`] bytes of `[A-Za-z0-9._-]`, not starting
/// with `.` or `-` (it becomes a directory name and a salt).
pub fn validate_repo_name(name: &str) -> Result<(), AnnounceError> {
    let bad = |reason| AnnounceError::RepoName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_REPO_NAME_BYTES {
        return Err(bad("longer than 60 bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad("only A-Z a-z 0-9 . _ - are allowed"));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(bad("must not start with '.' or '-'"));
    }
    Ok(())
}

/// The BEP 44 salt for a repository: [`SALT_PREFIX`] + name (at most 64 bytes).
pub fn salt(repo: &str) -> Result<Vec<u8>, AnnounceError> {
    validate_repo_name(repo)?;
    let mut s = SALT_PREFIX.to_vec();
    s.extend_from_slice(repo.as_bytes());
    Ok(s)
}

/// The BEP 5 info-hash on which nodes serving `repo` of `publisher` announce themselves:
/// SHA-1("gt-node/v1\0" || publisher key || "\0" || repo name).
pub fn info_hash(publisher: &[u8; 32], repo: &str) -> [u8; 20] {
    let mut h = sha1::Sha1::new();
    h.update(b"gt-node/v1\0");
    h.update(publisher);
    h.update(b"\0");
    h.update(repo.as_bytes());
    h.finalize().into()
}

/// Check one ref name: valid per git's rules (gix-validate), under `refs/`, bounded length.
pub fn validate_ref_name(name: &[u8]) -> Result<String, AnnounceError> {
    let lossy = || String::from_utf8_lossy(name).into_owned();
    if name.len() > MAX_REF_NAME_BYTES {
        return Err(AnnounceError::RefName {
            name: lossy(),
            reason: "too long".into(),
        });
    }
    let s = std::str::from_utf8(name).map_err(|_| AnnounceError::RefName {
        name: lossy(),
        reason: "not UTF-8".into(),
    })?;
    if !s.starts_with("refs/") {
        return Err(AnnounceError::RefName {
            name: lossy(),
            reason: "not under refs/".into(),
        });
    }
    gix::validate::reference::name(s.as_bytes().into()).map_err(|e| AnnounceError::RefName {
        name: lossy(),
        reason: e.to_string(),
    })?;
    Ok(s.to_owned())
}

fn raw_refs(refs: &RefMap) -> BTreeMap<ByteBuf, ByteBuf> {
    refs.iter()
        .map(|(k, v)| {
            (
                ByteBuf::from(k.as_bytes().to_vec()),
                ByteBuf::from(v.as_bytes().to_vec()),
            )
        })
        .collect()
}

fn typed_refs(raw: BTreeMap<ByteBuf, ByteBuf>) -> Result<RefMap, AnnounceError> {
    let mut out = RefMap::new();
    for (k, v) in raw {
        let name = validate_ref_name(&k)?;
        if v.len() != 20 {
            return Err(AnnounceError::Oid { name, len: v.len() });
        }
        out.insert(name, ObjectId::from_bytes_or_panic(&v));
    }
    Ok(out)
}

fn decode_raw(bytes: &[u8], what: &'static str) -> Result<RawItem, AnnounceError> {
    check_bencode(bytes, ITEM_MAX_DEPTH).map_err(|e| AnnounceError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    let raw: RawItem = serde_bencode::from_bytes(bytes).map_err(|e| AnnounceError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if raw.v != ITEM_FORMAT_VERSION {
        return Err(AnnounceError::Version { what, found: raw.v });
    }
    Ok(raw)
}

/// Encode a manifest: `{v: 1, r: {refname: oid}}`.
pub fn encode_manifest(refs: &RefMap) -> Result<Vec<u8>, AnnounceError> {
    if refs.len() > MAX_MANIFEST_REFS {
        let (count, max) = (refs.len(), MAX_MANIFEST_REFS);
        return Err(AnnounceError::TooLarge {
            what: "refs in a manifest",
            count,
            max,
        });
    }
    let raw = RawItem {
        v: ITEM_FORMAT_VERSION,
        r: Some(raw_refs(refs)),
        m: None,
        n: None,
    };
    let bytes = serde_bencode::to_bytes(&raw).map_err(|e| AnnounceError::Malformed {
        what: "manifest",
        reason: e.to_string(),
    })?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        let (count, max) = (bytes.len(), MAX_MANIFEST_BYTES);
        return Err(AnnounceError::TooLarge {
            what: "manifest bytes",
            count,
            max,
        });
    }
    Ok(bytes)
}

/// SHA-256 of manifest bytes.
pub fn manifest_hash(manifest: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(manifest).into()
}

/// Encode the DHT value for `refs`: the ref map if it fits in [`MAX_ITEM_VALUE_BYTES`], else a
/// manifest reference (and the manifest itself, to be served to followers).
pub fn encode_item(refs: &RefMap) -> Result<EncodedItem, AnnounceError> {
    let manifest = encode_manifest(refs)?;
    // The inline item and the manifest have the same encoding.
    if manifest.len() <= MAX_ITEM_VALUE_BYTES {
        return Ok(EncodedItem {
            value: manifest,
            manifest: None,
        });
    }
    let raw = RawItem {
        v: ITEM_FORMAT_VERSION,
        r: None,
        m: Some(ByteBuf::from(manifest_hash(&manifest).to_vec())),
        n: Some(refs.len() as u64),
    };
    let value = serde_bencode::to_bytes(&raw).map_err(|e| AnnounceError::Malformed {
        what: "item",
        reason: e.to_string(),
    })?;
    check_value_size(&value)?;
    Ok(EncodedItem {
        value,
        manifest: Some(manifest),
    })
}

/// Refuse a value BEP 44 nodes would refuse (checked before every put).
pub fn check_value_size(value: &[u8]) -> Result<(), AnnounceError> {
    if value.len() > MAX_ITEM_VALUE_BYTES {
        let (count, max) = (value.len(), MAX_ITEM_VALUE_BYTES);
        return Err(AnnounceError::TooLarge {
            what: "DHT item value bytes",
            count,
            max,
        });
    }
    Ok(())
}

/// Decode a DHT value (from any node: hostile input).
pub fn decode_item(value: &[u8]) -> Result<ItemContent, AnnounceError> {
    check_value_size(value)?;
    let raw = decode_raw(value, "item")?;
    match (raw.r, raw.m, raw.n) {
        (Some(r), None, None) => Ok(ItemContent::Refs(typed_refs(r)?)),
        (None, Some(m), Some(n)) => {
            let sha256 =
                <[u8; 32]>::try_from(m.as_slice()).map_err(|_| AnnounceError::Malformed {
                    what: "item",
                    reason: "`m` is not 32 bytes".into(),
                })?;
            if n > MAX_MANIFEST_REFS as u64 {
                let (count, max) = (n as usize, MAX_MANIFEST_REFS);
                return Err(AnnounceError::TooLarge {
                    what: "refs in a manifest",
                    count,
                    max,
                });
            }
            Ok(ItemContent::Manifest { sha256, count: n })
        }
        _ => Err(AnnounceError::Malformed {
            what: "item",
            reason: "needs either `r`, or `m` and `n`".into(),
        }),
    }
}

/// Decode a manifest received from a peer, accepting it only if it hashes to `sha256` and holds
/// `count` refs.
pub fn decode_manifest(
    bytes: &[u8],
    sha256: &[u8; 32],
    count: u64,
) -> Result<RefMap, AnnounceError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        let (count, max) = (bytes.len(), MAX_MANIFEST_BYTES);
        return Err(AnnounceError::TooLarge {
            what: "manifest bytes",
            count,
            max,
        });
    }
    let actual = manifest_hash(bytes);
    if &actual != sha256 {
        return Err(AnnounceError::ManifestHash {
            expected: hex::encode(sha256),
            actual: hex::encode(actual),
        });
    }
    let raw = decode_raw(bytes, "manifest")?;
    let refs = match (raw.r, raw.m, raw.n) {
        (Some(r), None, None) => typed_refs(r)?,
        _ => {
            return Err(AnnounceError::Malformed {
                what: "manifest",
                reason: "needs exactly `v` and `r`".into(),
            });
        }
    };
    if refs.len() as u64 != count {
        return Err(AnnounceError::ManifestCount {
            expected: count,
            actual: refs.len(),
        });
    }
    Ok(refs)
}

/// The seq for the next put: greater than the previous one, and at least `now_unix` (seconds), so
/// a publisher that lost its state still outbids its earlier items after a restart.
pub fn next_seq(previous: Option<i64>, now_unix: i64) -> i64 {
    match previous {
        Some(p) => p.saturating_add(1).max(now_unix),
        None => now_unix.max(1),
    }
}

/// Whether an item with `seq` is news to a follower that last acted on `last_seen`: strictly
/// greater only. Repeated and stale items change nothing.
pub fn is_newer(last_seen: Option<i64>, seq: i64) -> bool {
    last_seen.is_none_or(|last| seq > last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(n: usize) -> RefMap {
        (0..n)
            .map(|i| {
                (
                    format!("refs/tags/v1.{i}"),
                    ObjectId::from_bytes_or_panic(&[i as u8; 20]),
                )
            })
            .collect()
    }

    #[test]
    fn small_ref_map_is_inline_and_round_trips() {
        let r = refs(3);
        let enc = encode_item(&r).unwrap();
        assert!(enc.manifest.is_none());
        assert!(
            enc.value.starts_with(b"d1:rd"),
            "{:?}",
            String::from_utf8_lossy(&enc.value)
        );
        assert_eq!(decode_item(&enc.value).unwrap(), ItemContent::Refs(r));
    }

    #[test]
    fn size_boundary_switches_to_a_manifest() {
        // Find the largest map that fits inline; one more ref must switch to a manifest.
        let mut n = 1;
        while encode_manifest(&refs(n + 1)).unwrap().len() <= MAX_ITEM_VALUE_BYTES {
            n += 1;
        }
        let fits = encode_item(&refs(n)).unwrap();
        assert!(fits.manifest.is_none() && fits.value.len() <= MAX_ITEM_VALUE_BYTES);
        let over = encode_item(&refs(n + 1)).unwrap();
        let manifest = over.manifest.clone().unwrap();
        assert!(manifest.len() > MAX_ITEM_VALUE_BYTES);
        assert!(over.value.len() <= MAX_ITEM_VALUE_BYTES);
        let ItemContent::Manifest { sha256, count } = decode_item(&over.value).unwrap() else {
            panic!("expected a manifest item");
        };
        assert_eq!(count, (n + 1) as u64);
        assert_eq!(
            decode_manifest(&manifest, &sha256, count).unwrap(),
            refs(n + 1)
        );
        // A manifest that does not hash to the item's value is refused.
        let mut tampered = manifest.clone();
        let last = tampered.len() - 3;
        tampered[last] ^= 1;
        assert!(matches!(
            decode_manifest(&tampered, &sha256, count),
            Err(AnnounceError::ManifestHash { .. })
        ));
        assert!(matches!(
            decode_manifest(&manifest, &sha256, count + 1),
            Err(AnnounceError::ManifestCount { .. })
        ));
        // 20-byte values and short tag names: about two dozen refs fit inline.
        assert!((20..40).contains(&n), "{n}");
    }

    #[test]
    fn oversized_values_are_refused() {
        assert!(check_value_size(&[b'x'; MAX_ITEM_VALUE_BYTES]).is_ok());
        assert!(matches!(
            check_value_size(&[b'x'; MAX_ITEM_VALUE_BYTES + 1]),
            Err(AnnounceError::TooLarge { .. })
        ));
        assert!(decode_item(&[b'x'; MAX_ITEM_VALUE_BYTES + 1]).is_err());
        assert!(encode_manifest(&refs(MAX_MANIFEST_REFS + 1)).is_err());
    }

    #[test]
    fn hostile_items_are_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"de",
            b"d1:vi2ee",
            b"d1:rde1:vi2ee",
            b"d1:rd9:refs/tags3:abce1:vi1ee",
            b"d1:rd4:HEAD20:aaaaaaaaaaaaaaaaaaaae1:vi1ee",
            b"d1:rd12:refs/tags/..20:aaaaaaaaaaaaaaaaaaaae1:vi1ee",
            b"d1:m3:abc1:ni1e1:vi1ee",
            b"d1:rde1:m32:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1:ni1e1:vi1ee",
            b"d1:rdllllllllllllllleeeeeeeeeeeeeee1:vi1ee",
        ];
        for c in cases {
            assert!(decode_item(c).is_err(), "{}", String::from_utf8_lossy(c));
        }
        assert_eq!(
            decode_item(b"d1:rde1:vi1ee").unwrap(),
            ItemContent::Refs(RefMap::new())
        );
    }

    #[test]
    fn names_salts_and_info_hashes() {
        assert!(validate_repo_name("gt").is_ok());
        assert!(validate_repo_name(&"a".repeat(MAX_REPO_NAME_BYTES)).is_ok());
        assert!(validate_repo_name(&"a".repeat(MAX_REPO_NAME_BYTES + 1)).is_err());
        for bad in ["", ".git", "-x", "a/b", "a b", "é"] {
            assert!(validate_repo_name(bad).is_err(), "{bad}");
        }
        assert_eq!(salt(&"a".repeat(MAX_REPO_NAME_BYTES)).unwrap().len(), 64);
        assert_eq!(salt("demo").unwrap(), b"gt1/demo");
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_ne!(info_hash(&a, "x"), info_hash(&b, "x"));
        assert_ne!(info_hash(&a, "x"), info_hash(&a, "y"));
        assert_eq!(info_hash(&a, "x"), info_hash(&a, "x"));
    }

    #[test]
    fn seq_is_monotonic_and_stale_items_are_not_news() {
        assert_eq!(next_seq(None, 1000), 1000);
        assert_eq!(next_seq(Some(1000), 1000), 1001);
        assert_eq!(next_seq(Some(5000), 1000), 5001);
        assert_eq!(next_seq(Some(5), 1000), 1000);
        assert!(is_newer(None, 1));
        assert!(is_newer(Some(1), 2));
        assert!(!is_newer(Some(2), 2));
        assert!(!is_newer(Some(2), 1));
    }
}
