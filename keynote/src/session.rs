//! The compliance checker of RFC 2704 section 5 and the session API around it.
//!
//! A [`Session`] collects trusted (policy) and untrusted (credential) assertions, the action
//! authorizers (requesters), the action attributes and the ordered compliance values, and
//! answers queries. The answer is the value of the principal `POLICY` (RFC 2704 5.3):
//!
//! 1. *Reach*: starting from trusted assertions whose Authorizer is `POLICY`, follow Licensees
//!    to the assertions authorized by each licensee (an index by authorizer principal makes
//!    this linear). Only reached assertions are evaluated, signature-checked and reported, as
//!    in the reference; an assertion whose Conditions give `_MIN_TRUST` is not explored
//!    further, since its licensees cannot change its value.
//! 2. *Fixpoint*: principal values start at `_MIN_TRUST` (requesters at `_MAX_TRUST`) and rise
//!    by worklist propagation until stable: an assertion's value is the minimum of its
//!    Conditions value and its Licensees value (`&&` min, `||` max, K-of the K-th largest with
//!    multiplicity, RFC 2704 5.3.5), a principal's value the maximum over the assertions it
//!    authorizes. This least fixpoint gives the same answer whatever the order of assertions
//!    or cycles among them; the reference's depth-first search does not (DEVIATIONS.md).
//!
//! Each value only rises, at most `values - 1` times, so the work is bounded by
//! `values x (total Licensees size)`.

use crate::Map;
use crate::assertion::{Assertion, Deferred, ParseError};
use crate::ast::{Clause, Licensees, StrExpr};
use crate::crypto::{KeyError, Principal, PublicKey, Registry, SignatureError};
use crate::eval::{EvalError, Evaluator, RegexCache, Scope, Specials, eval_str_plain};
use crate::parser::ExprError;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use thiserror::Error;

/// Conditions programs of fewer clauses than this are evaluated on one thread even when the
/// session may use more ([`Session::set_parallelism`]). On a quiet machine starting a thread
/// costs about as much as evaluating 500 clauses; on a busy 2-core VM the first thread of a
/// process waited up to 1.9 ms for its CPU, the time 16,000 clauses take on one thread.
pub const PARALLEL_EVAL_MIN_CLAUSES: usize = 16 * 1024;

/// Most threads one Conditions program is evaluated on.
pub const MAX_EVAL_THREADS: usize = 8;

/// Clauses per piece of a program evaluated on several threads: small enough that a helper
/// that starts late still finds pieces left ([`crate::par`]), large enough that handing one
/// out costs nothing next to evaluating it.
const EVAL_RUN_CLAUSES: usize = 256;

/// Signatures per piece when they are checked on several threads (an RSA-1024 check takes
/// ~20 µs, a DSA one ~60 µs: a piece is a fraction of a millisecond).
const SIGNATURE_RUN: usize = 8;

/// An assertion's number in its session: the order in which it was added, from 0.
pub type AssertionId = usize;

/// Whether an assertion is trusted without a signature check (RFC 2704 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A local policy assertion: may be authorized by `POLICY`; its signature is not checked.
    Trusted,
    /// A credential: must carry a valid signature by its Authorizer, checked when reached.
    Untrusted,
}

/// Why an action attribute was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// Names starting with `_` are reserved for the checker (RFC 2704 4.3).
    #[error("attribute name {0:?} is reserved (starts with '_')")]
    Reserved(String),
    /// The empty name.
    #[error("empty attribute name")]
    Empty,
}

/// Why a query could not run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No compliance values were set (RFC 2704 5.1 needs at least one).
    #[error("no compliance values set")]
    NoValues,
}

/// Why an assertion reached during a query was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// A Licensees or Conditions field that does not parse or type-check.
    Syntax(ExprError),
    /// A principal in the Authorizer or Licensees field that looks like a key but does not
    /// decode (RFC 2792 encodings).
    Key(KeyError),
    /// A string expression that could not be evaluated.
    Eval(crate::EvalError),
    /// An untrusted assertion without a Signature field, or with an unparsable one.
    Unsigned,
    /// The signature did not verify.
    Signature(SignatureError),
}

impl FailureReason {
    /// True for signature failures (`... due to signature verification failure.`), false for
    /// syntax or semantic errors.
    pub fn is_signature(&self) -> bool {
        matches!(self, FailureReason::Unsigned | FailureReason::Signature(_))
    }
}

/// One assertion that failed during a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which assertion.
    pub assertion: AssertionId,
    /// Why.
    pub reason: FailureReason,
}

/// The outcome of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// The index of the answer in the ordered compliance values (0 = `_MIN_TRUST`).
    pub index: usize,
    /// The answer itself.
    pub value: String,
    /// Assertions that were reached but failed, in id order.
    pub failures: Vec<Failure>,
    /// Every reached assertion whose value rose above `_MIN_TRUST`, with that value's index:
    /// the assertions that granted something, for explanations.
    pub granted: Vec<(AssertionId, usize)>,
}

struct Entry {
    assertion: Arc<Assertion>,
    trust: Trust,
}

/// A KeyNote session: assertions, requesters, attributes, values; then queries.
pub struct Session {
    registry: Arc<Registry>,
    entries: Vec<Entry>,
    authorizers: Vec<(String, Principal)>,
    attributes: Map<String, String>,
    values: Vec<String>,
    parallelism: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("assertions", &self.entries.len())
            .field("authorizers", &self.authorizers.len())
            .field("attributes", &self.attributes.len())
            .field("values", &self.values)
            .finish()
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new(Arc::new(Registry::default()))
    }
}

/// A compiled Licensees expression over interned principals.
enum Lic {
    P(usize),
    And(Vec<Lic>),
    Or(Vec<Lic>),
    KOf(usize, Vec<usize>),
}

impl Lic {
    fn principals(&self, out: &mut Vec<usize>) {
        match self {
            Lic::P(p) => out.push(*p),
            Lic::And(v) | Lic::Or(v) => v.iter().for_each(|l| l.principals(out)),
            Lic::KOf(_, v) => out.extend_from_slice(v),
        }
    }

    fn value(&self, pval: &[usize]) -> usize {
        match self {
            Lic::P(p) => pval.get(*p).copied().unwrap_or(0),
            Lic::And(v) => v.iter().map(|l| l.value(pval)).min().unwrap_or(0),
            Lic::Or(v) => v.iter().map(|l| l.value(pval)).max().unwrap_or(0),
            Lic::KOf(k, v) => {
                let mut vals: Vec<usize> = v
                    .iter()
                    .map(|p| pval.get(*p).copied().unwrap_or(0))
                    .collect();
                vals.sort_unstable_by(|a, b| b.cmp(a));
                vals.get(k.saturating_sub(1)).copied().unwrap_or(0)
            }
        }
    }
}

/// Interns principals so that comparisons are integer compares (RFC 2704 5.2: keys compare
/// after decoding; opaque strings byte for byte).
///
/// An opaque principal is its text, so `by_text` alone finds it; `by_key` holds only decoded
/// keys, which several texts (hex or base64, any case of the prefix) can name. Texts are
/// borrowed from the assertions and the session for the query's lifetime `'q` (only a name
/// built by concatenation is owned), so a 1,000-link chain of literal names interns them
/// without copying any.
struct Interner<'q> {
    by_text: Map<Cow<'q, str>, usize>,
    by_key: Map<Principal, usize>,
    list: Vec<Named<'q>>,
}

/// One interned principal.
enum Named<'q> {
    /// A decoded key.
    Key(Principal),
    /// An opaque name: its text.
    Opaque(Cow<'q, str>),
}

impl<'q> Interner<'q> {
    /// Room for `n` principals without growing: a query interns about one new principal per
    /// assertion, and each growth of a table copies it into fresh memory, which on our build
    /// VMs costs more to touch than the copy itself (for a 1,000-link chain both tables were
    /// allocated ten times on the way). The key table starts empty: decoded keys are few.
    fn with_capacity(n: usize) -> Self {
        Interner {
            by_text: Map::with_capacity_and_hasher(n, Default::default()),
            by_key: Map::default(),
            list: Vec::with_capacity(n),
        }
    }
    fn intern(&mut self, text: Cow<'q, str>) -> Result<usize, KeyError> {
        if let Some(id) = self.by_text.get(text.as_ref()) {
            return Ok(*id);
        }
        let id = match PublicKey::parse(&text)? {
            Some(key) => self.intern_key(Principal::Key(key)),
            None => self.push(Named::Opaque(text.clone())),
        };
        self.by_text.insert(text, id);
        Ok(id)
    }
    fn intern_principal(&mut self, p: &'q Principal) -> usize {
        match p {
            Principal::Key(_) => self.intern_key(p.clone()),
            Principal::Opaque(text) => self.intern_opaque(text),
        }
    }
    /// A name known not to be a key.
    fn intern_opaque(&mut self, text: &'q str) -> usize {
        if let Some(id) = self.by_text.get(text) {
            return *id;
        }
        let id = self.push(Named::Opaque(Cow::Borrowed(text)));
        self.by_text.insert(Cow::Borrowed(text), id);
        id
    }
    /// A decoded key's id, by value (whatever text named it).
    fn intern_key(&mut self, key: Principal) -> usize {
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let id = self.push(Named::Key(key.clone()));
        self.by_key.insert(key, id);
        id
    }
    /// Add a principal known to be new.
    fn push(&mut self, p: Named<'q>) -> usize {
        let id = self.list.len();
        self.list.push(p);
        id
    }
    fn len(&self) -> usize {
        self.list.len()
    }
    /// Principal `id` as the signature algorithms take it (an opaque one is copied: only a
    /// credential whose Authorizer is not a key asks, and its check is far dearer).
    fn principal(&self, id: usize) -> Option<Cow<'_, Principal>> {
        Some(match self.list.get(id)? {
            Named::Key(p) => Cow::Borrowed(p),
            Named::Opaque(text) => Cow::Owned(Principal::Opaque(text.to_string())),
        })
    }
}

/// The text of a principal expression: a literal is borrowed from its assertion, anything
/// else evaluated (and owned, since an attribute's value lives only in its scope).
fn principal_text<'q>(e: &'q StrExpr, scope: &Scope<'_>) -> Result<Cow<'q, str>, EvalError> {
    match e {
        StrExpr::Lit(s) => Ok(Cow::Borrowed(s)),
        _ => eval_str_plain(e, scope).map(|s| Cow::Owned(s.into_owned())),
    }
}

/// Assertion ids grouped by principal (compressed rows: one offset table and one id list,
/// not a vector per principal): which assertions each principal authorizes, or uses.
struct Index {
    start: Vec<usize>,
    ids: Vec<AssertionId>,
}

impl Index {
    /// Group the `(principal, id)` pairs, all principals below `n`; each group keeps the
    /// pairs' order. `pairs` is walked twice (count, then place).
    fn build<I: Iterator<Item = (usize, AssertionId)>>(n: usize, pairs: impl Fn() -> I) -> Self {
        let mut start = vec![0usize; n + 1];
        for (p, _) in pairs() {
            if let Some(c) = start.get_mut(p + 1) {
                *c += 1;
            }
        }
        let mut total = 0;
        for c in &mut start {
            total += *c;
            *c = total;
        }
        let mut ids = vec![0; start.last().copied().unwrap_or(0)];
        let mut next = start.clone();
        for (p, id) in pairs() {
            if let Some(at) = next.get_mut(p)
                && let Some(slot) = ids.get_mut(*at)
            {
                *slot = id;
                *at += 1;
            }
        }
        Index { start, ids }
    }
    fn get(&self, p: usize) -> &[AssertionId] {
        match (self.start.get(p), self.start.get(p + 1)) {
            (Some(a), Some(b)) => self.ids.get(*a..*b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// A recursion-free compiler from the AST to [`Lic`]: Licensees nesting is bounded by the
/// parser, so plain recursion is fine here.
fn compile_lic<'q>(
    l: &'q Licensees,
    scope: &Scope<'_>,
    interner: &mut Interner<'q>,
) -> Result<Lic, FailureReason> {
    let principal = |e, interner: &mut Interner<'q>| -> Result<usize, FailureReason> {
        let s = principal_text(e, scope).map_err(FailureReason::Eval)?;
        interner.intern(s).map_err(FailureReason::Key)
    };
    Ok(match l {
        Licensees::Principal(e) => Lic::P(principal(e, interner)?),
        Licensees::And(v) => Lic::And(
            v.iter()
                .map(|x| compile_lic(x, scope, interner))
                .collect::<Result<_, _>>()?,
        ),
        Licensees::Or(v) => Lic::Or(
            v.iter()
                .map(|x| compile_lic(x, scope, interner))
                .collect::<Result<_, _>>()?,
        ),
        Licensees::KOf { k, principals } => Lic::KOf(
            *k as usize,
            principals
                .iter()
                .map(|e| principal(e, interner))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The Licensees of one assertion, ready for the fixpoint.
enum LicState {
    /// Missing field: `_MAX_TRUST` (RFC 2704 5.3.5).
    Missing,
    /// Empty field: `_MIN_TRUST`.
    Empty,
    /// A compiled expression.
    Expr(Lic),
    /// Invalid: the assertion counts as `_MIN_TRUST`.
    Invalid,
}

impl Session {
    /// A session that verifies signatures with `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Session {
            registry,
            entries: Vec::new(),
            authorizers: Vec::new(),
            attributes: Map::default(),
            values: Vec::new(),
            parallelism: 1,
        }
    }

    /// Check credentials' signatures on up to `threads` threads during a query (default 1:
    /// a library does not start threads unless its caller asks). Signature verification is
    /// the dominant cost of queries over many signed credentials.
    pub fn set_parallelism(&mut self, threads: usize) {
        self.parallelism = threads.max(1);
    }

    /// Parse and add an assertion; its id is the number of assertions added before it.
    pub fn add_assertion(&mut self, text: &str, trust: Trust) -> Result<AssertionId, ParseError> {
        let a = Assertion::parse(text)?;
        Ok(self.add_parsed(Arc::new(a), trust))
    }

    /// Room for `additional` more assertions without growing the list, for a caller that
    /// knows how many it will add (each growth copies the list into memory not touched before).
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// Add an already parsed assertion.
    pub fn add_parsed(&mut self, assertion: Arc<Assertion>, trust: Trust) -> AssertionId {
        self.entries.push(Entry { assertion, trust });
        self.entries.len() - 1
    }

    /// The assertion with this id.
    pub fn assertion(&self, id: AssertionId) -> Option<&Arc<Assertion>> {
        self.entries.get(id).map(|e| &e.assertion)
    }

    /// Add an action authorizer (a requester, RFC 2704 5.1), given as a principal string.
    /// Fails when the string looks like a key but does not decode.
    pub fn add_authorizer(&mut self, principal: &str) -> Result<(), KeyError> {
        let p = Principal::parse(principal)?;
        self.authorizers.push((principal.to_owned(), p));
        Ok(())
    }

    /// Set an action attribute (RFC 2704 4.3); a later value for the same name replaces the
    /// earlier one.
    pub fn set_attribute(&mut self, name: &str, value: &str) -> Result<(), AttributeError> {
        if name.is_empty() {
            return Err(AttributeError::Empty);
        }
        if name.starts_with('_') {
            return Err(AttributeError::Reserved(name.to_owned()));
        }
        self.attributes.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// Set the ordered compliance values, lowest (`_MIN_TRUST`) first (RFC 2704 5.1).
    pub fn set_values<I, S>(&mut self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.values = values.into_iter().map(Into::into).collect();
    }

    /// Run the query: the compliance value of `POLICY` for the current action
    /// (RFC 2704 5.3), with the failures met on the way.
    pub fn query(&self) -> Result<QueryResult, QueryError> {
        let n_values = self.values.len();
        if n_values == 0 {
            return Err(QueryError::NoValues);
        }
        let max = n_values - 1;
        let values_joined = self.values.join(",");
        // The reference lists requesters most recent first.
        let authorizers_joined = self
            .authorizers
            .iter()
            .rev()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let specials = || Specials {
            values: &self.values,
            values_joined: &values_joined,
            authorizers_joined: &authorizers_joined,
        };

        // POLICY, the requesters, and about one new principal per assertion (its Licensees;
        // its Authorizer is, in a chain, the Licensees of the one before).
        let mut interner = Interner::with_capacity(self.entries.len() + self.authorizers.len() + 2);
        let mut failures: HashMap<AssertionId, FailureReason> = HashMap::new();
        let policy = interner.intern_opaque("POLICY");
        let requesters: Vec<usize> = self
            .authorizers
            .iter()
            .map(|(_, p)| interner.intern_principal(p))
            .collect();

        // Authorizer and Licensees of every assertion, evaluated against the action
        // attributes. The reference checks these for all assertions when a query starts, so
        // their failures are reported whether or not the assertion is reached.
        let n = self.entries.len();
        let mut auth: Vec<Option<usize>> = Vec::with_capacity(n);
        let mut lics: Vec<LicState> = Vec::with_capacity(n);
        for (id, e) in self.entries.iter().enumerate() {
            let a = &e.assertion;
            let scope = Scope::new(a.local_constants(), &self.attributes).with_specials(specials());
            let au = match a.authorizer_error() {
                Some(err) => Err(FailureReason::Syntax(err.clone())),
                None => principal_text(a.authorizer_expr(), &scope)
                    .map_err(FailureReason::Eval)
                    .and_then(|s| interner.intern(s).map_err(FailureReason::Key)),
            };
            match au {
                Ok(p) if !(p == policy && e.trust == Trust::Untrusted) => auth.push(Some(p)),
                Ok(_) => auth.push(None),
                Err(r) => {
                    failures.insert(id, r);
                    auth.push(None);
                }
            }
            // A Signature field that does not parse is a syntax error of the assertion,
            // reported like Licensees errors (a non-literal value is only unusable).
            if let Some(err) = a.signature_error()
                && !matches!(err.kind, crate::parser::ExprErrorKind::Type(_))
            {
                failures
                    .entry(id)
                    .or_insert(FailureReason::Syntax(err.clone()));
            }
            let lic = match a.licensees() {
                Deferred::Missing => LicState::Missing,
                Deferred::Parsed(None) => LicState::Empty,
                Deferred::Parsed(Some(l)) => match compile_lic(l, &scope, &mut interner) {
                    Ok(l) => LicState::Expr(l),
                    Err(r) => {
                        failures.entry(id).or_insert(r);
                        LicState::Invalid
                    }
                },
                Deferred::Invalid(err) => {
                    failures
                        .entry(id)
                        .or_insert(FailureReason::Syntax(err.clone()));
                    LicState::Invalid
                }
            };
            lics.push(lic);
        }
        let n_principals = interner.len();
        let mut is_requester = vec![false; n_principals];
        for r in &requesters {
            if let Some(x) = is_requester.get_mut(*r) {
                *x = true;
            }
        }
        // Index: principal -> assertions it authorizes.
        let by_auth = Index::build(n_principals, || {
            auth.iter()
                .enumerate()
                .filter_map(|(id, p)| p.map(|p| (p, id)))
        });

        // Phase 1: reach from POLICY, evaluating Conditions and signatures on the way.
        let mut regexes = RegexCache::default();
        let mut reached = vec![false; n];
        let mut cond = vec![0usize; n];
        let mut usable = vec![false; n];
        let mut queue: VecDeque<AssertionId> = VecDeque::new();
        let roots: Vec<AssertionId> = by_auth
            .get(policy)
            .iter()
            .copied()
            .filter(|id| {
                self.entries
                    .get(*id)
                    .is_some_and(|e| e.trust == Trust::Trusted)
            })
            .collect();
        for r in &roots {
            if let Some(x) = reached.get_mut(*r) {
                *x = true;
            }
            queue.push_back(*r);
        }
        let mut scratch = Vec::new();
        let mut to_verify: Vec<AssertionId> = Vec::new();
        while let Some(id) = queue.pop_front() {
            let Some(e) = self.entries.get(id) else {
                continue;
            };
            let a = &e.assertion;
            let c = match a.conditions() {
                Deferred::Missing => max,
                Deferred::Invalid(err) => {
                    failures
                        .entry(id)
                        .or_insert(FailureReason::Syntax(err.clone()));
                    0
                }
                Deferred::Parsed(conds) => {
                    let scope =
                        Scope::new(a.local_constants(), &self.attributes).with_specials(specials());
                    let clauses = &conds.clauses;
                    let threads = self.parallelism.min(MAX_EVAL_THREADS);
                    if threads > 1 && clauses.len() >= PARALLEL_EVAL_MIN_CLAUSES {
                        self.program_parallel(a, clauses, threads, specials(), max)
                    } else {
                        Evaluator::new(scope, &mut regexes).program(clauses, &self.values, max)
                    }
                }
            };
            if let Some(x) = cond.get_mut(id) {
                *x = c;
            }
            if c == 0 {
                continue;
            }
            if let Some(LicState::Expr(l)) = lics.get(id) {
                scratch.clear();
                l.principals(&mut scratch);
                for p in &scratch {
                    if is_requester.get(*p).copied().unwrap_or(false) {
                        continue;
                    }
                    for b in by_auth.get(*p) {
                        if let Some(r) = reached.get_mut(*b)
                            && !*r
                        {
                            *r = true;
                            queue.push_back(*b);
                        }
                    }
                }
            }
            let lic_ok = !matches!(lics.get(id), Some(LicState::Invalid));
            if let Some(u) = usable.get_mut(id) {
                *u = lic_ok;
            }
            // Reaching does not depend on signatures (the reference explores a credential's
            // licensees before checking it), so all checks can run after the walk, in
            // parallel when allowed.
            if e.trust == Trust::Untrusted && lic_ok {
                to_verify.push(id);
            }
        }
        for (id, outcome) in self.verify_all(&to_verify, &auth, &interner) {
            if let Err(r) = outcome {
                failures.entry(id).or_insert(r);
                if let Some(u) = usable.get_mut(id) {
                    *u = false;
                }
            }
        }

        // Phase 2: least fixpoint by worklist propagation.
        let mut pval = vec![0usize; n_principals];
        for r in &requesters {
            if let Some(x) = pval.get_mut(*r) {
                *x = max;
            }
        }
        // Index: principal -> usable assertions whose Licensees name it (once each).
        let mut uses: Vec<(usize, AssertionId)> = Vec::new();
        for id in 0..n {
            if !usable.get(id).copied().unwrap_or(false) {
                continue;
            }
            if let Some(LicState::Expr(l)) = lics.get(id) {
                scratch.clear();
                l.principals(&mut scratch);
                scratch.sort_unstable();
                scratch.dedup();
                uses.extend(scratch.iter().map(|p| (*p, id)));
            }
        }
        let users = Index::build(n_principals, || uses.iter().copied());
        let mut aval = vec![0usize; n];
        let mut queued = vec![false; n];
        let mut work: VecDeque<AssertionId> = VecDeque::new();
        for (id, q) in queued.iter_mut().enumerate() {
            if usable.get(id).copied().unwrap_or(false) {
                *q = true;
                work.push_back(id);
            }
        }
        while let Some(id) = work.pop_front() {
            if let Some(q) = queued.get_mut(id) {
                *q = false;
            }
            let lv = match lics.get(id) {
                Some(LicState::Missing) => max,
                Some(LicState::Expr(l)) => l.value(&pval),
                _ => 0,
            };
            let v = lv.min(cond.get(id).copied().unwrap_or(0));
            if v <= aval.get(id).copied().unwrap_or(0) {
                continue;
            }
            if let Some(x) = aval.get_mut(id) {
                *x = v;
            }
            let Some(p) = auth.get(id).copied().flatten() else {
                continue;
            };
            if is_requester.get(p).copied().unwrap_or(false) {
                continue;
            }
            if pval.get(p).is_some_and(|old| v > *old) {
                if let Some(x) = pval.get_mut(p) {
                    *x = v;
                }
                for u in users.get(p) {
                    if let Some(q) = queued.get_mut(*u)
                        && !*q
                    {
                        *q = true;
                        work.push_back(*u);
                    }
                }
            }
        }

        // The answer: the best trusted POLICY assertion. A requester named POLICY is not
        // itself the answer (reference behaviour, kept: see DEVIATIONS.md).
        let index = roots
            .iter()
            .filter(|id| usable.get(**id).copied().unwrap_or(false))
            .map(|id| aval.get(*id).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let mut failures: Vec<Failure> = failures
            .into_iter()
            .map(|(assertion, reason)| Failure { assertion, reason })
            .collect();
        failures.sort_by_key(|f| f.assertion);
        let granted = (0..n)
            .filter(|id| aval.get(*id).copied().unwrap_or(0) > 0)
            .map(|id| (id, aval.get(id).copied().unwrap_or(0)))
            .collect();
        Ok(QueryResult {
            index,
            value: self.values.get(index).cloned().unwrap_or_default(),
            failures,
            granted,
        })
    }

    /// A long Conditions program evaluated on `threads` threads, in runs of
    /// [`EVAL_RUN_CLAUSES`] clauses handed out one at a time ([`crate::par`]). Clauses are
    /// independent (each starts with no error and no captures, RFC 2704 5.3.4 takes the maximum
    /// over them, and `_MAX_TRUST` ends the search wherever it is found), so the maximum of the
    /// runs' maxima is the one-thread answer. Each run compiles regular expressions into a
    /// cache of its own.
    fn program_parallel(
        &self,
        a: &Assertion,
        clauses: &[Clause],
        threads: usize,
        specials: Specials,
        max: usize,
    ) -> usize {
        let runs: Vec<&[Clause]> = clauses.chunks(EVAL_RUN_CLAUSES).collect();
        let (values, attributes, constants) = (&self.values, &self.attributes, a.local_constants());
        crate::par::share(&runs, threads, |run| {
            let mut own = RegexCache::default();
            let scope = Scope::new(constants, attributes).with_specials(specials);
            Evaluator::new(scope, &mut own).program(run, values, max)
        })
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Check the signatures of `ids`, on up to [`Session::set_parallelism`] threads.
    fn verify_all(
        &self,
        ids: &[AssertionId],
        auth: &[Option<usize>],
        interner: &Interner,
    ) -> Vec<(AssertionId, Result<(), FailureReason>)> {
        let check = |id: &AssertionId| {
            let outcome = match self.entries.get(*id) {
                Some(e) => {
                    self.check_signature(&e.assertion, auth.get(*id).copied().flatten(), interner)
                }
                None => Err(FailureReason::Unsigned),
            };
            (*id, outcome)
        };
        let workers = self.parallelism.clamp(1, 64);
        if workers == 1 || ids.len() < 2 * workers {
            return ids.iter().map(check).collect();
        }
        // Pieces of a few signatures each, handed out one at a time (crate::par).
        crate::par::share_in_pieces(ids, SIGNATURE_RUN, workers, check)
    }

    fn check_signature(
        &self,
        a: &Assertion,
        authorizer: Option<usize>,
        interner: &Interner,
    ) -> Result<(), FailureReason> {
        let Some(sig) = a.signature_value() else {
            return Err(FailureReason::Unsigned);
        };
        let Some(p) = authorizer.and_then(|id| interner.principal(id)) else {
            return Err(FailureReason::Unsigned);
        };
        self.registry
            .verify_assertion(&p, a.signed_body(), sig)
            .map_err(FailureReason::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::Index;

    #[test]
    fn index_groups_ids_by_principal_in_the_order_given() {
        let pairs = [(2, 0), (0, 1), (2, 2), (4, 3), (2, 4), (0, 5)];
        let index = Index::build(5, || pairs.iter().copied());
        assert_eq!(index.get(0), [1, 5]);
        assert!(index.get(1).is_empty());
        assert_eq!(index.get(2), [0, 2, 4]);
        assert!(index.get(3).is_empty());
        assert_eq!(index.get(4), [3]);
        // Past the end, and a principal out of range in the pairs, give nothing.
        assert!(index.get(5).is_empty());
        let index = Index::build(2, || [(7, 1), (1, 0)].into_iter());
        assert_eq!(index.get(1), [0]);
        assert!(index.get(7).is_empty());
        assert!(Index::build(0, std::iter::empty).get(0).is_empty());
    }
}
