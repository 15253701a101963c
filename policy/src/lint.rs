//! `gt policy lint`: everything wrong with a policy file, each with its file:line.
//!
//! Reported: syntax errors (including Licensees and Conditions, which KeyNote itself only
//! checks when a query reaches them); credentials without a signature or whose signature does
//! not verify with the given keyrings; attribute names gt never sets (they always evaluate to
//! "", so a condition on one is almost always a typo); compliance values other than
//! `reject`/`accept`/`propagate`; `openpgp:` principals not in the canonical upper-case form
//! (KeyNote compares opaque principals byte for byte, so `openpgp:abcd…` would never match a
//! signer); signed POLICY assertions; and POLICY assertions in a repository policy.

use std::sync::Arc;
use std::time::SystemTime;

use keynote::Deferred;
use keynote::ast::{Clause, ClauseValue, Licensees, StrExpr};
use verifier::Keyring;

use crate::file::{Origin, PolicyFile, attributes_used, line_at};
use crate::{ATTRIBUTES, Decision};

/// How serious a lint message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look; the policy works as written.
    Warning,
    /// The policy does not do what it seems to (or does not load).
    Error,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LintMessage {
    /// Where.
    pub origin: Origin,
    /// How serious.
    pub severity: Severity,
    /// What.
    pub message: String,
}

impl std::fmt::Display for LintMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {s}: {}", self.origin, self.message)
    }
}

/// Where the linted file is meant to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A local, trusted policy file.
    Local,
    /// The repository's `refs/gt/policy` (credentials only).
    Repository,
}

/// Lint `text` (named `name`). Signatures are checked with `keyring` at `now`; a credential
/// whose signer is not in `keyring` is reported as a warning (not checked) when `keyring` is
/// empty, and as an error otherwise.
pub fn lint(
    name: &str,
    text: &str,
    keyring: Arc<Keyring>,
    now: SystemTime,
    placement: Placement,
) -> Vec<LintMessage> {
    let mut out = Vec::new();
    let (file, errors) = match PolicyFile::parse_lenient(name, text) {
        Ok(x) => x,
        Err(e) => {
            out.push(LintMessage {
                origin: Origin {
                    file: name.to_owned(),
                    line: 1,
                },
                severity: Severity::Error,
                message: e.to_string(),
            });
            return out;
        }
    };
    for e in errors {
        let (origin, message) = match e {
            crate::file::LoadError::Syntax { origin, message } => (origin, message),
            other => (
                Origin {
                    file: name.to_owned(),
                    line: 1,
                },
                other.to_string(),
            ),
        };
        out.push(LintMessage {
            origin,
            severity: Severity::Error,
            message,
        });
    }
    if file.assertions.is_empty() && out.is_empty() {
        out.push(LintMessage {
            origin: Origin {
                file: name.to_owned(),
                line: 1,
            },
            severity: Severity::Error,
            message: "the file holds no assertion".to_owned(),
        });
    }
    let no_keys = keyring.is_empty();
    let registry = crate::openpgp::registry(keyring, now);
    for a in &file.assertions {
        let at = |needle: &str| {
            let text = a.assertion.text();
            let rel = text.find(needle).map_or(1, |off| line_at(text, off));
            Origin {
                file: a.origin.file.clone(),
                line: a.origin.line + rel - 1,
            }
        };
        let mut push = |origin: Origin, severity, message: String| {
            out.push(LintMessage {
                origin,
                severity,
                message,
            });
        };
        for attr in attributes_used(&a.assertion) {
            if !ATTRIBUTES.iter().any(|(n, _)| *n == attr) {
                push(
                    at(&attr),
                    Severity::Error,
                    format!(
                        "unknown attribute {attr:?}: gt never sets it, so it is always \"\" \
                         (known: {})",
                        ATTRIBUTES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if let Deferred::Parsed(c) = a.assertion.conditions() {
            let mut values = Vec::new();
            clause_values(&c.clauses, &mut values);
            for v in values {
                if !Decision::VALUES.contains(&v.as_str()) {
                    push(
                        at(&format!("\"{v}\"")),
                        Severity::Error,
                        format!(
                            "compliance value {v:?} is not one of reject, accept, propagate \
                             (it would count as reject)"
                        ),
                    );
                }
            }
        }
        let mut principals = Vec::new();
        principals.push(a.authorizer());
        if let Deferred::Parsed(Some(l)) = a.assertion.licensees() {
            lic_literals(l, &a.assertion, &mut principals);
        }
        for p in principals {
            if p.to_ascii_lowercase().starts_with("openpgp:") {
                match p.parse::<verifier::Principal>() {
                    Ok(canon) if canon.as_str() == p => {}
                    Ok(canon) => push(
                        at(&p),
                        Severity::Error,
                        format!(
                            "principal {p:?} must be written {canon} (principals compare byte for byte)"
                        ),
                    ),
                    Err(e) => push(at(&p), Severity::Error, format!("bad principal: {e}")),
                }
            }
        }
        if a.is_policy {
            if placement == Placement::Repository {
                push(
                    a.origin.clone(),
                    Severity::Warning,
                    "Authorizer \"POLICY\" in a repository policy is ignored: trust roots count \
                     only from local policy files"
                        .to_owned(),
                );
            }
            if a.assertion.has_signature() {
                push(
                    at("Signature"),
                    Severity::Warning,
                    "a POLICY assertion's Signature is never checked (policy is trusted because \
                     it is local)"
                        .to_owned(),
                );
            }
            continue;
        }
        let authorizer = a.authorizer();
        let Some(sig) = a.assertion.signature_value() else {
            push(
                a.origin.clone(),
                Severity::Error,
                format!(
                    "credential by {authorizer} is not signed: it will never be trusted (sign it \
                     with `gt policy sign`)"
                ),
            );
            continue;
        };
        let principal = match keynote::crypto::Principal::parse(&authorizer) {
            Ok(p) => p,
            Err(e) => {
                push(
                    at("Authorizer"),
                    Severity::Error,
                    format!("Authorizer: {e}"),
                );
                continue;
            }
        };
        if let Err(e) = registry.verify_assertion(&principal, a.assertion.signed_body(), sig) {
            let unknown = matches!(&e, keynote::crypto::SignatureError::UnusableKey { reason, .. }
                if reason.starts_with("unknown-key"));
            let severity = if unknown && no_keys {
                Severity::Warning
            } else {
                Severity::Error
            };
            let message = if unknown && no_keys {
                format!(
                    "credential by {authorizer}: signature not checked (its key is not in any \
                     --keyring)"
                )
            } else {
                format!("credential by {authorizer}: bad signature: {e}")
            };
            push(at("Signature"), severity, message);
        }
    }
    out.sort_by(|a, b| a.origin.cmp(&b.origin));
    out
}

fn clause_values(clauses: &[Clause], out: &mut Vec<String>) {
    for c in clauses {
        match &c.value {
            ClauseValue::Max => {}
            ClauseValue::Value(StrExpr::Lit(s)) => out.push(s.to_string()),
            ClauseValue::Value(_) => {}
            ClauseValue::Block(b) => clause_values(b, out),
        }
    }
}

fn lic_literals(l: &Licensees, a: &keynote::Assertion, out: &mut Vec<String>) {
    let lit = |e: &StrExpr| match e {
        StrExpr::Lit(s) => Some(s.to_string()),
        StrExpr::Attr(n) => a.local_constants().get(n.as_str()).cloned(),
        _ => None,
    };
    match l {
        Licensees::Principal(e) => out.extend(lit(e)),
        Licensees::And(v) | Licensees::Or(v) => v.iter().for_each(|x| lic_literals(x, a, out)),
        Licensees::KOf { principals, .. } => out.extend(principals.iter().filter_map(lit)),
    }
}
