//! Verification of parsed tag objects: one report per signature, and the [`VerifiedTag`] proof.
//!
//! Every signature packet gets exactly one [`Status`], decided in a fixed order (see
//! [`Verifier::check`]) so that git, gpg and gt cannot disagree through gt being vague: the
//! issuer is looked up, a collision-broken signature hash is refused outright, the public-key
//! operation is done, and only a mathematically valid signature is then judged on its key
//! (bound, alive, unrevoked, signing-capable at the signature's creation time) and on its
//! algorithms ([`GtPolicy`] at the reference time).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use gix::ObjectId;
use sequoia_openpgp as openpgp;

use openpgp::cert::amalgamation::ValidateAmalgamation;
use openpgp::packet::Signature;
use openpgp::policy::{HashAlgoSecurity, Policy, StandardPolicy};
use openpgp::types::{RevocationStatus, SignatureType};
use openpgp::{Cert, Fingerprint, KeyHandle};

use crate::keyring::Keyring;
use crate::limits::{CLOCK_SKEW_TOLERANCE, MAX_CHAIN_DEPTH};
use crate::parse::{ParseError, TagObject, Tagger};
use crate::policy::GtPolicy;
use crate::principal::Principal;
use crate::repo::{RepoError, TagSource};

/// The verdict on one signature packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Status {
    /// Verified: see the crate documentation for every condition.
    Good,
    /// The issuer's key is in the keyring, but the signature does not verify over the bytes it
    /// must cover: the tag was altered, or the signature was made over something else.
    Bad,
    /// No key in the keyring has the issuer's fingerprint or key id.
    UnknownKey,
    /// The certificate or the signing key had expired when the signature was made.
    ExpiredKey,
    /// The certificate or the signing key is revoked (a hard revocation at any time, a soft
    /// one — superseded, retired — before the signature was made).
    RevokedKey,
    /// The policy refuses an algorithm involved: the signature's hash (e.g. SHA-1; then the
    /// public-key operation is not even done, as the signature could never count), or — for a
    /// mathematically valid signature — the key's algorithm or size (e.g. RSA-1024) or the hash
    /// of the self-signature binding the key. The report's detail names which.
    WeakAlgorithm,
    /// The key is bound to the certificate but not marked for signing.
    NotSigningCapable,
    /// The key is in a certificate, but no valid self-signature binds it at the signature's
    /// creation time (the signature predates the key or its binding, or the binding is invalid).
    UnboundKey,
    /// The signature carries an expiration time that is before the reference time.
    ExpiredSignature,
    /// The signature claims to be made after the reference time (beyond
    /// [`CLOCK_SKEW_TOLERANCE`]).
    FutureSignature,
    /// The signature (or the whole tag) does not have the required form: no issuer, no creation
    /// time, not a binary signature, an unparsable packet, a block in the wrong layout, or a tag
    /// object rejected by the canonical parse.
    Malformed,
}

impl Status {
    /// The status as it appears in JSON and human output (`good`, `unknown-key`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Good => "good",
            Status::Bad => "bad",
            Status::UnknownKey => "unknown-key",
            Status::ExpiredKey => "expired-key",
            Status::RevokedKey => "revoked-key",
            Status::WeakAlgorithm => "weak-algorithm",
            Status::NotSigningCapable => "not-signing-capable",
            Status::UnboundKey => "unbound-key",
            Status::ExpiredSignature => "expired-signature",
            Status::FutureSignature => "future-signature",
            Status::Malformed => "malformed",
        }
    }

    /// Whether this status makes the whole tag fail (a forged or broken signature is evidence of
    /// tampering; an unknown or expired key is not).
    pub fn spoils_tag(self) -> bool {
        matches!(self, Status::Bad | Status::Malformed)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was found about one signature packet.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignatureReport {
    /// 1-based number of the armored block holding the packet.
    pub block: usize,
    /// 1-based number of the packet within its block.
    pub index: usize,
    /// The verdict.
    pub status: Status,
    /// The issuer named by the signature: its issuer fingerprint if it has one, else its key id
    /// (upper-case hex). `None` if the signature names none (then it is malformed).
    pub issuer: Option<String>,
    /// The fingerprint of the key (primary or subkey) that made the signature, when it verified.
    pub key: Option<String>,
    /// The signer principal (primary key), when the signature verified mathematically with a
    /// key from the keyring (statuses good, expired-key, revoked-key, not-signing-capable, ...).
    /// For `weak-algorithm` because of the signature's own hash (SHA-1), it is the certificate
    /// the issuer names, and the signature was not checked (see `detail`).
    pub signer: Option<Principal>,
    /// The signature's creation time, seconds since the Unix epoch.
    pub created: Option<i64>,
    /// The hash algorithm, e.g. `SHA256`.
    pub hash: Option<String>,
    /// Why the status is not `good`, in words.
    pub detail: Option<String>,
}

/// The signature layout of one tag object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LayoutKind {
    /// No signature at all.
    Unsigned,
    /// One armored block, N packets over the content.
    OneBlock,
    /// Several blocks, block i over the content and blocks 1..i-1.
    Onion,
    /// Refused by the canonical parse.
    Malformed,
}

/// The verification of one tag object (one level of a chain).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LevelReport {
    /// The object id.
    #[serde(serialize_with = "ser_oid")]
    pub oid: ObjectId,
    /// The `tag` header, when the header parsed.
    pub name: Option<String>,
    /// The `object` header.
    #[serde(serialize_with = "ser_opt_oid")]
    pub target: Option<ObjectId>,
    /// The `type` header.
    #[serde(serialize_with = "ser_opt_kind")]
    pub target_kind: Option<gix::objs::Kind>,
    /// The `tagger` header.
    pub tagger: Option<Tagger>,
    /// The layout found.
    pub layout: LayoutKind,
    /// One entry per signature packet, in order.
    pub signatures: Vec<SignatureReport>,
    /// Why the object was refused by the canonical parse, if it was.
    pub error: Option<String>,
}

fn ser_oid<S: serde::Serializer>(oid: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&oid.to_string())
}
fn ser_opt_oid<S: serde::Serializer>(oid: &Option<ObjectId>, s: S) -> Result<S::Ok, S::Error> {
    match oid {
        Some(o) => s.serialize_str(&o.to_string()),
        None => s.serialize_none(),
    }
}
fn ser_opt_kind<S: serde::Serializer>(
    k: &Option<gix::objs::Kind>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match k {
        Some(k) => s.serialize_str(&k.to_string()),
        None => s.serialize_none(),
    }
}

impl LevelReport {
    /// The distinct principals with at least one good signature at this level.
    pub fn signers(&self) -> BTreeSet<Principal> {
        self.signatures
            .iter()
            .filter(|s| s.status == Status::Good)
            .filter_map(|s| s.signer.clone())
            .collect()
    }

    /// At least one good signature, nothing bad or malformed, and the object parsed.
    pub fn is_verified(&self) -> bool {
        self.error.is_none()
            && self.signatures.iter().any(|s| s.status == Status::Good)
            && !self.signatures.iter().any(|s| s.status.spoils_tag())
    }
}

/// The verification of a tag: one [`LevelReport`] per level of its chain, outermost first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TagReport {
    /// The levels, outermost tag first. A plain signed tag has one.
    pub levels: Vec<LevelReport>,
    /// Why the chain could not be followed to its end (an inner tag absent from the repository,
    /// deeper than [`MAX_CHAIN_DEPTH`], or not available without a repository).
    pub chain_error: Option<String>,
    #[serde(skip)]
    time: SystemTime,
}

impl TagReport {
    /// Every signature of every level, with its level (0 = outermost).
    pub fn signatures(&self) -> impl Iterator<Item = (usize, &SignatureReport)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.signatures.iter().map(move |s| (i, s)))
    }

    /// The distinct good signers over all levels, in canonical order.
    pub fn signers(&self) -> BTreeSet<Principal> {
        self.levels.iter().flat_map(LevelReport::signers).collect()
    }

    /// Whether the tag is verified: the chain was followed to its end, and every level has a good
    /// signature and nothing bad or malformed.
    pub fn is_verified(&self) -> bool {
        self.chain_error.is_none()
            && !self.levels.is_empty()
            && self.levels.iter().all(LevelReport::is_verified)
    }

    /// The proof value, if the tag is verified (see [`TagReport::is_verified`]).
    pub fn verified(&self) -> Option<VerifiedTag> {
        if !self.is_verified() {
            return None;
        }
        let mut levels = Vec::with_capacity(self.levels.len());
        for l in &self.levels {
            levels.push(VerifiedLevel {
                oid: l.oid,
                name: l.name.clone()?,
                target: l.target?,
                target_kind: l.target_kind?,
                tagger: l.tagger.clone(),
                signers: l.signers(),
            });
        }
        Some(VerifiedTag {
            signers: self.signers(),
            levels,
            time: self.time,
        })
    }
}

/// One verified level of a tag chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLevel {
    oid: ObjectId,
    name: String,
    target: ObjectId,
    target_kind: gix::objs::Kind,
    tagger: Option<Tagger>,
    signers: BTreeSet<Principal>,
}

impl VerifiedLevel {
    /// The tag object's id.
    pub fn oid(&self) -> ObjectId {
        self.oid
    }
    /// Its `tag` header.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its `object` header.
    pub fn target(&self) -> ObjectId {
        self.target
    }
    /// Its `type` header.
    pub fn target_kind(&self) -> gix::objs::Kind {
        self.target_kind
    }
    /// Its `tagger` header.
    pub fn tagger(&self) -> Option<&Tagger> {
        self.tagger.as_ref()
    }
    /// The distinct good signers of this level.
    pub fn signers(&self) -> &BTreeSet<Principal> {
        &self.signers
    }
}

/// A tag whose signatures were verified: the proof the policy layer requires.
///
/// Only this crate constructs it (from a [`TagReport`] that [`TagReport::is_verified`]), so code
/// holding a `VerifiedTag` cannot have skipped verification. It does not say the signers are
/// *allowed* to sign: that is the policy's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTag {
    levels: Vec<VerifiedLevel>,
    signers: BTreeSet<Principal>,
    time: SystemTime,
}

impl VerifiedTag {
    fn outer(&self) -> Option<&VerifiedLevel> {
        self.levels.first()
    }
    /// The (outermost) tag object's id.
    pub fn oid(&self) -> ObjectId {
        self.outer()
            .map_or_else(|| ObjectId::null(gix::hash::Kind::Sha1), |l| l.oid)
    }
    /// The (outermost) tag's `tag` header.
    pub fn name(&self) -> &str {
        self.outer().map_or("", |l| l.name.as_str())
    }
    /// What the outermost tag points at.
    pub fn target(&self) -> ObjectId {
        self.outer()
            .map_or_else(|| ObjectId::null(gix::hash::Kind::Sha1), |l| l.target)
    }
    /// The kind of what the outermost tag points at.
    pub fn target_kind(&self) -> gix::objs::Kind {
        self.outer()
            .map_or(gix::objs::Kind::Commit, |l| l.target_kind)
    }
    /// What the innermost tag points at (the peeled target) and its kind.
    pub fn peeled_target(&self) -> (ObjectId, gix::objs::Kind) {
        self.levels.last().map_or_else(
            || {
                (
                    ObjectId::null(gix::hash::Kind::Sha1),
                    gix::objs::Kind::Commit,
                )
            },
            |l| (l.target, l.target_kind),
        )
    }
    /// The (outermost) tag's tagger.
    pub fn tagger(&self) -> Option<&Tagger> {
        self.outer().and_then(|l| l.tagger.as_ref())
    }
    /// The distinct good signers over all levels, in canonical order; never empty.
    pub fn signers(&self) -> &BTreeSet<Principal> {
        &self.signers
    }
    /// The levels, outermost first; a plain signed tag has one.
    pub fn levels(&self) -> &[VerifiedLevel] {
        &self.levels
    }
    /// The reference time the verification used.
    pub fn time(&self) -> SystemTime {
        self.time
    }
}

/// Verifies tags against one keyring, one policy and one reference time.
///
/// Holding the three together means one tag is never judged under two clocks or two policies.
pub struct Verifier<'k> {
    keyring: &'k Keyring,
    policy: GtPolicy,
    /// The same policy with every algorithm allowed: a signature that fails under `policy` but
    /// passes under this one failed only because of an algorithm, so it is `WeakAlgorithm`.
    lenient: StandardPolicy<'static>,
    time: SystemTime,
}

impl std::fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keyring", self.keyring)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// Checks the self-signatures of one certificate component (the primary key, a user ID, a user
/// attribute or a subkey) ahead of verification: see [`Verifier::self_signature_checks`].
pub struct SelfSignatureCheck<'k> {
    run: Box<dyn Fn() + Send + Sync + 'k>,
}

impl SelfSignatureCheck<'_> {
    /// Verify the component's self-signatures and self-revocations now (sequoia caches each
    /// result in the certificate; a second run costs nothing).
    pub fn run(&self) {
        (self.run)();
    }
}

impl std::fmt::Debug for SelfSignatureCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSignatureCheck").finish_non_exhaustive()
    }
}

/// A check that touches every self-signature and self-revocation of `bundle`: sequoia verifies
/// them lazily on first use and remembers each verdict in the certificate.
fn bundle_check<'k, C: Send + Sync>(
    bundle: &'k openpgp::cert::bundle::ComponentBundle<C>,
) -> SelfSignatureCheck<'k> {
    SelfSignatureCheck {
        run: Box::new(move || {
            let _ = bundle.self_signatures().count();
            let _ = bundle.self_revocations().count();
        }),
    }
}

/// Verify one raw tag object (no chain following) at reference time `time`.
///
/// If the tag's target is itself a tag, the report's `chain_error` says the inner tag was not
/// verified; use [`Verifier::verify_chain`] with a repository to follow it.
pub fn verify_tag(bytes: &[u8], keyring: &Keyring, time: SystemTime) -> TagReport {
    Verifier::new(keyring, time).verify_bytes(bytes)
}

impl<'k> Verifier<'k> {
    /// A verifier using [`GtPolicy`] (sequoia's `StandardPolicy`, old SHA-1 self-signatures
    /// grandfathered) with `time` as its reference time.
    pub fn new(keyring: &'k Keyring, time: SystemTime) -> Verifier<'k> {
        let policy = GtPolicy::at(time);
        let lenient = GtPolicy::diagnostic_lenient(time);
        Verifier {
            keyring,
            policy,
            lenient,
            time,
        }
    }

    /// The self-signature checks that verifying `objects` will need, one per certificate
    /// component, so that a caller verifying many tags on several threads can spread them over
    /// the threads *before* the tags.
    ///
    /// Why: sequoia verifies a certificate's self-signatures lazily, on the first validation
    /// that needs them, and caches the verdicts; two threads validating the same certificate at
    /// once both do the (RSA-4096: ~0.5 ms each) work. Running these checks first, one component
    /// per job, shares that work between the threads instead. The verdicts cannot change: the
    /// checks only fill the cache that verification fills anyway (every self-signature, by the
    /// same function); verification still decides everything on its own.
    ///
    /// Components: for every certificate named by a signature that will reach the public-key
    /// operation (binary type, a creation time, a hash the policy accepts), its primary key,
    /// user IDs and user attributes (they decide the certificate's liveness and primary user
    /// ID) and the subkeys the signatures name (verification validates the issuing key only).
    pub fn self_signature_checks<'a>(
        &self,
        tags: impl IntoIterator<Item = &'a TagObject>,
    ) -> Vec<SelfSignatureCheck<'k>> {
        let keyring: &'k Keyring = self.keyring;
        // Each certificate a signature names, with the handles that named it.
        let mut certs: Vec<(&'k Cert, Vec<KeyHandle>)> = Vec::new();
        for tag in tags {
            for p in tag.packets() {
                let Ok(sig) = &p.signature else { continue };
                if !self.reaches_public_key_operation(sig) {
                    continue;
                }
                for h in sig.get_issuers() {
                    for cert in keyring.lookup(&h) {
                        let at = match certs
                            .iter()
                            .position(|(c, _)| c.fingerprint() == cert.fingerprint())
                        {
                            Some(at) => at,
                            None => {
                                certs.push((cert, Vec::new()));
                                certs.len() - 1
                            }
                        };
                        if let Some((_, issuers)) = certs.get_mut(at)
                            && !issuers.contains(&h)
                        {
                            issuers.push(h.clone());
                        }
                    }
                }
            }
        }
        let mut checks = Vec::new();
        for (cert, issuers) in certs {
            // Only the subkeys that signatures name: verification validates the issuing key
            // alone (see `validate`). They come first: a signing subkey's check is two
            // public-key operations (its binding and the binding's embedded back-signature),
            // the others one, and starting the longest jobs first balances the threads.
            checks.extend(
                cert.keys()
                    .subkeys()
                    .filter(|ka| issuers.iter().any(|h| h.aliases(ka.key().key_handle())))
                    .map(|ka| bundle_check(ka.bundle())),
            );
            checks.push(bundle_check(cert.primary_key().bundle()));
            checks.extend(cert.userids().map(|ua| bundle_check(ua.bundle())));
            checks.extend(cert.user_attributes().map(|ua| bundle_check(ua.bundle())));
        }
        checks
    }

    /// How many of `tag`'s signatures will need a public-key operation (those whose issuer is in
    /// the keyring and that the checks before it do not settle): a scheduling hint for callers
    /// verifying many tags at once, e.g. to start the expensive ones first. Says nothing about
    /// the verdicts.
    pub fn public_key_operations(&self, tag: &TagObject) -> usize {
        tag.packets()
            .iter()
            .filter_map(|p| p.signature.as_ref().ok())
            .filter(|sig| {
                self.reaches_public_key_operation(sig)
                    && sig
                        .get_issuers()
                        .iter()
                        .any(|h| !self.keyring.lookup(h).is_empty())
            })
            .count()
    }

    /// Whether [`Verifier::check`] gets past the form and hash checks to the public-key
    /// operation (given a key for the issuer).
    fn reaches_public_key_operation(&self, sig: &Signature) -> bool {
        sig.typ() == SignatureType::Binary
            && sig.signature_creation_time().is_some()
            && !sig.get_issuers().is_empty()
            && self
                .policy
                .signature(sig, HashAlgoSecurity::CollisionResistance)
                .is_ok()
    }

    /// The reference time.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// Verify one raw tag object (no chain following; see [`verify_tag`]).
    pub fn verify_bytes(&self, bytes: &[u8]) -> TagReport {
        self.verify_parsed(bytes, TagObject::parse(bytes).as_ref())
    }

    /// Verify the tag `oid` read from `source`, and every tag below it in its chain.
    ///
    /// Errors only when `oid` itself cannot be read or is not a tag; problems further down the
    /// chain are reported in [`TagReport::chain_error`].
    pub fn verify_chain(&self, source: &TagSource, oid: ObjectId) -> Result<TagReport, RepoError> {
        let bytes = source.read_tag(oid)?;
        Ok(self.verify_bytes_in(Some(source), &bytes))
    }

    /// Verify the raw tag object `bytes`; if its target is a tag, follow the chain through
    /// `source` (without a source, the report's `chain_error` says the inner tags were not
    /// verified).
    pub fn verify_bytes_in(&self, source: Option<&TagSource>, bytes: &[u8]) -> TagReport {
        let mut report = self.verify_bytes(bytes);
        let Some(source) = source else {
            return report;
        };
        while let Some(last) = report.levels.last() {
            if last.target_kind != Some(gix::objs::Kind::Tag) || last.error.is_some() {
                report.chain_error = None;
                break;
            }
            let Some(next) = last.target else { break };
            if report.levels.len() == MAX_CHAIN_DEPTH {
                report.chain_error = Some(format!(
                    "tag chain deeper than {MAX_CHAIN_DEPTH} levels; stopped at {next}"
                ));
                break;
            }
            match source.read_tag(next) {
                Ok(bytes) => {
                    let level = self.verify_level(&bytes);
                    report.levels.push(level);
                }
                Err(e) => {
                    report.chain_error = Some(format!("inner tag {next}: {e}"));
                    break;
                }
            }
        }
        report
    }

    /// Parse and verify one tag object.
    pub fn verify_level(&self, bytes: &[u8]) -> LevelReport {
        self.verify_parsed_level(bytes, TagObject::parse(bytes).as_ref())
    }

    /// Verify one raw tag object already parsed by [`TagObject::parse`] (no chain following;
    /// the same report as [`Verifier::verify_bytes`] on `bytes`). For callers that parse first
    /// to plan work, e.g. [`Verifier::self_signature_checks`].
    pub fn verify_parsed(
        &self,
        bytes: &[u8],
        parsed: Result<&TagObject, &ParseError>,
    ) -> TagReport {
        self.verify_parsed_gated(bytes, parsed, &|| {})
    }

    /// [`Verifier::verify_parsed`], calling `gate` before each step that uses a certificate's
    /// self-signatures (that is, after the public-key operation on a tag signature, before the
    /// issuing key's binding and liveness are judged). The report is the same.
    ///
    /// For callers that run [`Verifier::self_signature_checks`] on other threads: waiting in
    /// `gate` for those checks to finish, instead of before the whole tag, lets this thread do
    /// the tag signature's own public-key operation meanwhile, and still never verifies a
    /// self-signature that another thread is verifying.
    pub fn verify_parsed_gated(
        &self,
        bytes: &[u8],
        parsed: Result<&TagObject, &ParseError>,
        gate: &dyn Fn(),
    ) -> TagReport {
        let level = match parsed {
            Ok(tag) => self.verify_object_gated(tag, gate),
            Err(_) => self.verify_parsed_level(bytes, parsed),
        };
        let chain_error = (level.target_kind == Some(gix::objs::Kind::Tag))
            .then(|| "the target is a tag; its signatures were not verified".to_owned());
        TagReport {
            levels: vec![level],
            chain_error,
            time: self.time,
        }
    }

    fn verify_parsed_level(
        &self,
        bytes: &[u8],
        parsed: Result<&TagObject, &ParseError>,
    ) -> LevelReport {
        match parsed {
            Ok(tag) => self.verify_object(tag),
            Err(e) => LevelReport {
                oid: gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Tag, bytes)
                    .unwrap_or_else(|_| ObjectId::null(gix::hash::Kind::Sha1)),
                name: None,
                target: None,
                target_kind: None,
                tagger: None,
                layout: LayoutKind::Malformed,
                signatures: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    }

    /// Verify every signature of a parsed tag object.
    pub fn verify_object(&self, tag: &TagObject) -> LevelReport {
        self.verify_object_gated(tag, &|| {})
    }

    fn verify_object_gated(&self, tag: &TagObject, gate: &dyn Fn()) -> LevelReport {
        let header = tag.header();
        let layout = match tag.blocks().len() {
            0 => LayoutKind::Unsigned,
            1 => LayoutKind::OneBlock,
            _ => LayoutKind::Onion,
        };
        let signatures = tag
            .packets()
            .iter()
            .map(|p| {
                let base = SignatureReport {
                    block: p.block + 1,
                    index: p.index + 1,
                    status: Status::Malformed,
                    issuer: None,
                    key: None,
                    signer: None,
                    created: None,
                    hash: None,
                    detail: None,
                };
                match (&p.signature, tag.signed_bytes(p.block)) {
                    (Ok(sig), Some(msg)) => {
                        let content = (p.block > 0).then(|| tag.content());
                        self.check_gated(sig, msg, content, base, gate)
                    }
                    (Err(reason), _) => SignatureReport {
                        detail: Some(format!("unparsable signature packet: {reason}")),
                        ..base
                    },
                    (_, None) => base,
                }
            })
            .collect();
        LevelReport {
            oid: tag.oid(),
            name: Some(header.name.clone()),
            target: Some(header.target),
            target_kind: Some(header.target_kind),
            tagger: header.tagger.clone(),
            layout,
            signatures,
            error: None,
        }
    }

    /// Judge one signature over `msg`. `content` is the plain tag content when the signature is
    /// in a later onion block (to recognise independently appended blocks, a refused layout).
    ///
    /// Order: form (issuer, creation time, binary type) → issuer lookup → signature hash
    /// policy → public-key operation → signature liveness → certificate revocation → key binding at
    /// creation time → certificate and key liveness → key revocation → signing capability.
    /// A failure after the public-key operation that disappears when every algorithm is allowed
    /// is reported as `WeakAlgorithm`.
    pub fn check(
        &self,
        sig: &Signature,
        msg: &[u8],
        content: Option<&[u8]>,
        report: SignatureReport,
    ) -> SignatureReport {
        self.check_gated(sig, msg, content, report, &|| {})
    }

    fn check_gated(
        &self,
        sig: &Signature,
        msg: &[u8],
        content: Option<&[u8]>,
        mut report: SignatureReport,
        gate: &dyn Fn(),
    ) -> SignatureReport {
        let issuers = sig.get_issuers();
        report.issuer = issuers
            .iter()
            .find(|h| matches!(h, KeyHandle::Fingerprint(_)))
            .or_else(|| issuers.first())
            .map(|h| h.to_hex());
        report.hash = Some(sig.hash_algo().to_string());
        let created = sig.signature_creation_time();
        report.created = created.map(unix);
        let malformed = |mut r: SignatureReport, why: &str| {
            r.status = Status::Malformed;
            r.detail = Some(why.to_owned());
            r
        };
        if issuers.is_empty() {
            return malformed(report, "the signature names no issuer");
        }
        let Some(created) = created else {
            return malformed(report, "the signature has no creation time");
        };
        if sig.typ() != SignatureType::Binary {
            return malformed(
                report,
                &format!(
                    "signature type is {}; git signs tags with binary (0x00) signatures",
                    sig.typ()
                ),
            );
        }

        // Candidate keys: every key in the keyring that the issuer subpackets name.
        let mut candidates: Vec<(&Cert, Fingerprint)> = Vec::new();
        for h in &issuers {
            for cert in self.keyring.lookup(h) {
                for ka in cert.keys().key_handle(h.clone()) {
                    let fpr = ka.key().fingerprint();
                    if !candidates
                        .iter()
                        .any(|(c, f)| *f == fpr && c.fingerprint() == cert.fingerprint())
                    {
                        candidates.push((cert, fpr));
                    }
                }
            }
        }
        if candidates.is_empty() {
            report.status = Status::UnknownKey;
            report.detail = Some("no key in the keyring matches the issuer".to_owned());
            return report;
        }

        // A hash the policy refuses (SHA-1, MD5) settles the verdict before any public-key
        // operation: such a signature can never count, and with a collision-broken hash a
        // "valid" result would not even prove that the key holder signed *these* bytes. The
        // signer reported is the certificate the issuer names (checked: no; said so in detail).
        if let Err(e) = self
            .policy
            .signature(sig, HashAlgoSecurity::CollisionResistance)
            && let Some((cert, fpr)) = candidates.first()
        {
            report.status = Status::WeakAlgorithm;
            report.key = Some(fpr.to_hex());
            report.signer = Some(Principal::from_fingerprint(&cert.fingerprint()));
            report.detail = Some(format!(
                "{} signature refused by the algorithm policy (the issuer's certificate is \
                 named, the signature itself was not checked): {e:#}",
                sig.hash_algo()
            ));
            return report;
        }

        let verifies = |cert: &Cert, fpr: &Fingerprint, m: &[u8]| {
            cert.keys()
                .key_handle(fpr.clone())
                .any(|ka| sig.verify_message(ka.key(), m).is_ok())
        };
        let Some((cert, fpr)) = candidates.iter().find(|(c, f)| verifies(c, f, msg)) else {
            if let Some(content) = content
                && candidates.iter().any(|(c, f)| verifies(c, f, content))
            {
                return malformed(
                    report,
                    "this later block signs the tag content alone, not the content and the \
                     blocks before it: independently appended blocks are not an accepted \
                     layout (put all signatures in one block)",
                );
            }
            report.status = Status::Bad;
            report.detail = Some(format!(
                "does not verify with key {}",
                candidates
                    .first()
                    .map(|(_, f)| f.to_hex())
                    .unwrap_or_default()
            ));
            return report;
        };
        report.key = Some(fpr.to_hex());
        report.signer = Some(Principal::from_fingerprint(&cert.fingerprint()));

        gate();
        match self.validate(&self.policy, sig, cert, fpr, created) {
            Ok(()) => report.status = Status::Good,
            Err((status, detail)) => {
                let weak = status != Status::WeakAlgorithm
                    && self
                        .validate(&self.lenient, sig, cert, fpr, created)
                        .is_ok();
                report.status = if weak { Status::WeakAlgorithm } else { status };
                report.detail = Some(if weak {
                    format!("refused by the algorithm policy: {detail}")
                } else {
                    detail
                });
            }
        }
        report
    }

    /// The checks after the public-key operation, under `policy`.
    fn validate(
        &self,
        policy: &dyn Policy,
        sig: &Signature,
        cert: &Cert,
        fpr: &Fingerprint,
        created: SystemTime,
    ) -> Result<(), (Status, String)> {
        if let Err(e) = policy.signature(sig, HashAlgoSecurity::CollisionResistance) {
            return Err((
                Status::WeakAlgorithm,
                format!("{} signature: {e:#}", sig.hash_algo()),
            ));
        }
        if sig
            .signature_alive(self.time, CLOCK_SKEW_TOLERANCE)
            .is_err()
        {
            return Err(if created > self.time + CLOCK_SKEW_TOLERANCE {
                (
                    Status::FutureSignature,
                    "the signature is dated after the reference time".to_owned(),
                )
            } else {
                (
                    Status::ExpiredSignature,
                    "the signature expired before the reference time".to_owned(),
                )
            });
        }
        if let RevocationStatus::Revoked(_) = cert.revocation_status(policy, created) {
            return Err((
                Status::RevokedKey,
                format!("certificate {} is revoked", cert.fingerprint()),
            ));
        }
        if let Some(ka) = cert.keys().subkeys().key_handle(fpr.clone()).next()
            && let RevocationStatus::Revoked(_) = ka.revocation_status(policy, created)
        {
            return Err((Status::RevokedKey, format!("key {fpr} is revoked")));
        }
        // The binding in force when the signature was made; if there is none because the
        // binding was re-issued later (an extended expiry: git.git's signing subkey has only a
        // 2020 binding but signed tags since 2012), the binding in force at the reference time.
        // Either way the expiry and capabilities it states are applied at the signature's
        // creation time below. This is what gpg does, and what keeps old tags verifiable.
        //
        // Only the issuing key is validated (`with_policy` on its amalgamation: the primary key
        // and then this key's binding), not every key of the certificate as
        // `ValidCert::keys()` would before filtering by handle: other subkeys' bindings say
        // nothing about this signature, and each costs a public-key operation.
        let unbound = || {
            (
                Status::UnboundKey,
                format!("key {fpr} is not validly bound to its certificate"),
            )
        };
        let key = cert
            .keys()
            .key_handle(fpr.clone())
            .next()
            .ok_or_else(unbound)?;
        let at_signing = cert.with_policy(policy, created).ok().and_then(|vc| {
            key.clone()
                .with_policy(policy, created)
                .ok()
                .map(|ka| (vc, ka))
        });
        let (vc, ka) = match at_signing {
            Some(valid) => valid,
            None => {
                let vc = cert.with_policy(policy, self.time).map_err(|e| {
                    (
                        Status::UnboundKey,
                        format!(
                            "certificate {} has no valid self-signature: {e:#}",
                            cert.fingerprint()
                        ),
                    )
                })?;
                let ka = key.with_policy(policy, self.time).map_err(|_| unbound())?;
                (vc, ka)
            }
        };
        if ka.key().creation_time() > created {
            return Err((
                Status::UnboundKey,
                format!("key {fpr} was created after the signature"),
            ));
        }
        let primary_expiry = vc.primary_key().key_expiration_time();
        if let Some(exp) = primary_expiry.filter(|exp| *exp <= created) {
            return Err((
                Status::ExpiredKey,
                format!(
                    "certificate {} expired at {} (before the signature)",
                    cert.fingerprint(),
                    unix(exp)
                ),
            ));
        }
        if let Some(exp) = ka.key_expiration_time().filter(|exp| *exp <= created) {
            return Err((
                Status::ExpiredKey,
                format!("key {fpr} expired at {} (before the signature)", unix(exp)),
            ));
        }
        if !ka.for_signing() {
            return Err((
                Status::NotSigningCapable,
                format!("key {fpr} is not marked for signing"),
            ));
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch (negative before it).
fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
