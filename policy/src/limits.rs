//! Named limits of the policy layer, each with the reason for its value.

/// Largest policy file read (bytes). A distro keyring policy with 1,000 `openpgp:` principals
/// is ~60 KiB; 16 MiB leaves room for large delegation sets while bounding what a hostile
/// `refs/gt/policy` blob can make us parse.
pub const MAX_POLICY_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Most assertions in one policy file: each is parsed once and evaluated per decision, so the
/// count bounds the work a repository-supplied policy can cause per ref update.
pub const MAX_ASSERTIONS_PER_FILE: usize = 10_000;

/// Most credential signature results remembered by the OpenPGP signature algorithm. A push of
/// thousands of tags checks the same few credentials again and again; remembering the answer
/// (keyed by the exact signed bytes and signature) turns that into a lookup. Bounded so a
/// hostile stream of distinct credentials cannot grow memory without limit.
pub const MAX_SIGNATURE_CACHE: usize = 4096;

/// Most principals named in one human explanation ("needs 2 of {A, B, C, ...}"): a distro
/// policy names ~900 keys, and a reason listing all of them would hide the point.
pub const MAX_EXPLAINED_PRINCIPALS: usize = 6;

/// Largest decoded `sig-openpgp-base64:` signature (bytes): an RSA-16384 signature packet is
/// ~2.1 KiB; anything much larger is not one signature.
pub const MAX_OPENPGP_SIGNATURE_BYTES: usize = 16 * 1024;
