//! Named limits on attacker-supplied input, each with the reason for its value.
//!
//! Tag objects arrive from pushes and from peers on the DHT, keyrings from files: every size and
//! count the verifier handles is bounded here, so a hostile input costs bounded time and memory.

use std::time::Duration;

/// Largest tag object the verifier reads, in bytes (1 MiB).
///
/// Real annotated tags are a few KiB (git.git's largest release tag is under 4 KiB); an armored
/// RSA-4096 signature is about 900 bytes, so even [`MAX_SIGNATURES_PER_TAG`] signatures plus long
/// release notes fit with a wide margin. Anything larger is refused before any parsing.
pub const MAX_TAG_OBJECT_BYTES: usize = 1024 * 1024;

/// Most signature packets one tag object may carry, over all its blocks (64).
///
/// Every packet costs a public-key operation (up to ~0.7 ms for RSA-4096 with the pure-Rust
/// backend), so this bounds the verification cost of one object at well under a second; no
/// real project needs more co-signers on one tag.
pub const MAX_SIGNATURES_PER_TAG: usize = 64;

/// Most armored blocks in the onion layout (16).
///
/// Block *i* is checked over the content plus blocks 1..i-1, so the hashed bytes grow
/// quadratically with the number of blocks; 16 keeps that below 16 × the object size.
pub const MAX_SIGNATURE_BLOCKS: usize = 16;

/// Deepest tag chain (a signed tag whose target is a signed tag, ...) that is followed (8).
///
/// Each level is a separate object read and verified; git itself puts no limit on the chain,
/// so a cycle-free but very long chain would otherwise cost unbounded reads. Real chains have
/// two or three levels.
pub const MAX_CHAIN_DEPTH: usize = 8;

/// Largest keyring file read, in bytes (256 MiB).
///
/// The Debian keyring (about 900 certificates with all their certifications) is ~40 MiB;
/// this leaves room for larger distribution keyrings while refusing to read an arbitrary
/// device or a mistaken path into memory.
pub const MAX_KEYRING_BYTES: u64 = 256 * 1024 * 1024;

/// Most certificates one [`Keyring`](crate::Keyring) holds (100,000).
///
/// Loading indexes every key of every certificate; the bound keeps a runaway directory scan
/// from exhausting memory. It is two orders of magnitude above the largest real keyrings.
pub const MAX_KEYRING_CERTS: usize = 100_000;

/// Most files read from one keyring directory (10,000), for the same reason as
/// [`MAX_KEYRING_CERTS`].
pub const MAX_KEYRING_DIR_FILES: usize = 10_000;

/// How far in the future (relative to the reference time) a signature's creation time may be
/// (5 minutes).
///
/// Signers' clocks drift; a tag signed a few seconds "in the future" must not fail. A signature
/// dated further ahead than this is refused, as sequoia's own verifier does with the same
/// tolerance.
pub const CLOCK_SKEW_TOLERANCE: Duration = Duration::from_secs(5 * 60);
