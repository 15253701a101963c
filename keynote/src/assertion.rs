//! One KeyNote assertion: splitting its text into fields (RFC 2704 4.2, 4.6) and parsing each
//! field's value into the typed AST.
//!
//! Field splitting is line-oriented and done by hand, following the reference implementation's
//! observable rules (docs/REFERENCE-QUIRKS.md "Assertion syntax"): field names are matched
//! case-insensitively *by prefix*; a field continues on lines that start with whitespace or
//! `#`; a blank line ends the assertion; KeyNote-Version must come first and Signature last.
//! Field values then go through the pest grammar (parser.rs).
//!
//! Errors that the reference reports when an assertion is *added* (structure, version,
//! Local-Constants, Authorizer) make [`Assertion::parse`] fail. Errors in Licensees and
//! Conditions are kept inside the assertion and reported only when a query reaches it, as the
//! reference does (RFC 2704 5.3 evaluates only assertions on a delegation path).

use crate::Map;
use crate::ast::{Conditions, Licensees, StrExpr, Text};
use crate::eval::{Scope, eval_str_plain};
use crate::limits::MAX_ASSERTION_LEN;
use crate::parser::{
    ExprError, parse_conditions_parallel, parse_licensees, parse_local_constants, parse_str_expr,
    parse_version,
};
use std::borrow::Cow;
use std::ops::Range;
use thiserror::Error;

/// The fields of an assertion (RFC 2704 4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `KeyNote-Version` (4.6.1).
    Version,
    /// `Local-Constants` (4.6.2).
    LocalConstants,
    /// `Authorizer` (4.6.3).
    Authorizer,
    /// `Licensees` (4.6.4).
    Licensees,
    /// `Conditions` (4.6.5).
    Conditions,
    /// `Comment` (4.6.6).
    Comment,
    /// `Signature` (4.6.7).
    Signature,
}

impl Field {
    /// Field names in the order the reference tries them when matching a prefix, so that
    /// `L:` means Local-Constants and `C:` means Conditions.
    const ORDER: [(Field, &'static str); 7] = [
        (Field::Version, "keynote-version"),
        (Field::LocalConstants, "local-constants"),
        (Field::Authorizer, "authorizer"),
        (Field::Licensees, "licensees"),
        (Field::Conditions, "conditions"),
        (Field::Signature, "signature"),
        (Field::Comment, "comment"),
    ];

    /// The field's slot in per-assertion tables.
    fn index(self) -> usize {
        match self {
            Field::Version => 0,
            Field::LocalConstants => 1,
            Field::Authorizer => 2,
            Field::Licensees => 3,
            Field::Conditions => 4,
            Field::Signature => 5,
            Field::Comment => 6,
        }
    }

    fn from_keyword(k: &str) -> Option<Field> {
        if k.is_empty() {
            return None;
        }
        let first = k.as_bytes()[0].to_ascii_lowercase();
        Self::ORDER.iter().find_map(|(f, name)| {
            // The first letter rules out all but one or two names at once (a 1,000-credential
            // chain compared every keyword with every name: ~700 instructions a file).
            let n = name.as_bytes();
            (n[0].to_ascii_lowercase() == first
                && k.len() <= n.len()
                && n[..k.len()].eq_ignore_ascii_case(k.as_bytes()))
            .then_some(*f)
        })
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Version => "KeyNote-Version",
            Field::LocalConstants => "Local-Constants",
            Field::Authorizer => "Authorizer",
            Field::Licensees => "Licensees",
            Field::Conditions => "Conditions",
            Field::Comment => "Comment",
            Field::Signature => "Signature",
        })
    }
}

/// Why an assertion was rejected when parsed. Offsets are bytes into the text given to
/// [`Assertion::parse`]; lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text is longer than [`MAX_ASSERTION_LEN`].
    #[error("assertion is {len} bytes, more than the {MAX_ASSERTION_LEN} allowed")]
    TooLong {
        /// The length given.
        len: usize,
    },
    /// Nothing but whitespace.
    #[error("empty assertion")]
    Empty,
    /// The first field does not start at the beginning of a line (RFC 2704 4.2).
    #[error("line {line}: the first field is indented (offset {offset})")]
    Indented {
        /// Line number.
        line: usize,
        /// Byte offset.
        offset: usize,
    },
    /// A field without the `:` that ends its name.
    #[error("line {line}: field name without ':' (offset {offset})")]
    MissingColon {
        /// Line number.
        line: usize,
        /// Byte offset.
        offset: usize,
    },
    /// A field name that is not a prefix of any RFC 2704 field name.
    #[error("line {line}: unknown field {name:?}")]
    UnknownField {
        /// The name as written.
        name: String,
        /// Line number.
        line: usize,
        /// Byte offset.
        offset: usize,
    },
    /// A field given twice (RFC 2704 4.6).
    #[error("line {line}: duplicate {field} field")]
    DuplicateField {
        /// The field.
        field: Field,
        /// Line number of the second occurrence.
        line: usize,
    },
    /// KeyNote-Version present but not the first field (RFC 2704 4.6.1).
    #[error("line {line}: KeyNote-Version must be the first field")]
    VersionNotFirst {
        /// Line number.
        line: usize,
    },
    /// KeyNote-Version other than 2 (RFC 2704 4.6.1).
    #[error("line {line}: unsupported KeyNote-Version {version:?}")]
    BadVersion {
        /// The version written.
        version: String,
        /// Line number.
        line: usize,
    },
    /// Non-blank text after the Signature field (RFC 2704 4.6.7: Signature is last).
    #[error("line {line}: text after the Signature field")]
    AfterSignature {
        /// Line number.
        line: usize,
    },
    /// No Authorizer field (RFC 2704 4.6.3: mandatory).
    #[error("no Authorizer field")]
    MissingAuthorizer,
    /// A Local-Constants name defined twice, or starting with `_` (RFC 2704 4.6.2, 4.3).
    #[error("line {line}: invalid local constant {name:?}")]
    BadConstant {
        /// The name.
        name: String,
        /// Line number.
        line: usize,
    },
    /// A field value that does not parse.
    #[error("line {line}: {field} field: {source}")]
    Field {
        /// The field.
        field: Field,
        /// Line number where the error is.
        line: usize,
        /// The expression error, with a span relative to the whole assertion text.
        source: ExprError,
    },
}

/// A field whose value may fail to parse; the failure is reported when a query reaches it.
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred<T> {
    /// The field is absent.
    Missing,
    /// The field parsed.
    Parsed(T),
    /// The field did not parse; the error's span is relative to the assertion text.
    Invalid(ExprError),
}

/// A parsed assertion (RFC 2704 4). Cheap to query; immutable.
#[derive(Debug, Clone)]
pub struct Assertion {
    text: String,
    body: Range<usize>,
    constants: Map<String, String>,
    authorizer: StrExpr,
    authorizer_error: Option<ExprError>,
    licensees: Deferred<Option<Licensees>>,
    conditions: Deferred<Conditions>,
    signature: Option<Result<String, ExprError>>,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl Assertion {
    /// Parse one assertion. Text after the first blank line, or after a NUL byte, is ignored
    /// (as the reference's `verify` does with a file); use [`split_assertions`] for files that
    /// hold several.
    pub fn parse(text: &str) -> Result<Assertion, ParseError> {
        Self::parse_parallel(text, 1)
    }

    /// [`Assertion::parse`], with a long Conditions field parsed on up to `threads` threads
    /// (see [`crate::parser::parse_conditions_parallel`]); the result is the same.
    pub fn parse_parallel(text: &str, threads: usize) -> Result<Assertion, ParseError> {
        Self::parse_cow(Cow::Borrowed(text), threads)
    }

    /// [`Assertion::parse_parallel`] of text the caller gives up: the assertion keeps that
    /// string instead of a copy. For a file's text, read only to be parsed: the copy of a
    /// 154-460 KB policy was that much more fresh memory to fault in, beside its tree
    /// (keynote/README.md, session 11).
    pub fn parse_owned(text: String, threads: usize) -> Result<Assertion, ParseError> {
        Self::parse_cow(Cow::Owned(text), threads)
    }

    fn parse_cow(src: Cow<'_, str>, threads: usize) -> Result<Assertion, ParseError> {
        let text: &str = &src;
        if text.len() > MAX_ASSERTION_LEN {
            return Err(ParseError::TooLong { len: text.len() });
        }
        let text = match text.find('\0') {
            Some(n) => text.get(..n).unwrap_or(text),
            None => text,
        };
        let b = text.as_bytes();
        let len = b.len();
        let mut i = b.iter().take_while(|c| is_c_space(**c)).count();
        if i >= len {
            return Err(ParseError::Empty);
        }
        if i != 0 && b.get(i - 1) != Some(&b'\n') {
            return Err(ParseError::Indented {
                line: line_of(text, i),
                offset: i,
            });
        }
        let start = i;
        let mut seen_field = false;
        let mut fields: [Option<Range<usize>>; 7] = Default::default();
        let mut body_end = None;
        while i < len {
            let ks = i;
            if b.get(i) == Some(&b'#') {
                // A comment line before a field (RFC 2704 4.2); it counts as a field for the
                // "KeyNote-Version first" rule, as in the reference.
                seen_field = true;
                while i < len && b.get(i) != Some(&b'\n') {
                    i += 1;
                }
                i += 1;
                continue;
            }
            let Some(colon) = b[i..].iter().position(|c| *c == b':').map(|p| p + i) else {
                return Err(ParseError::MissingColon {
                    line: line_of(text, i),
                    offset: i,
                });
            };
            let ts = colon + 1;
            // The field runs to the end of the text, to a blank line (end of the assertion),
            // or to a newline followed by something other than whitespace or `#`.
            let mut j = colon;
            let mut end_of_assertion = false;
            let te = loop {
                // Straight to the next line break (a Conditions field can be 400 KB long).
                match b.get(j + 1..).and_then(next_line_break) {
                    Some(p) => j += 1 + p,
                    None => j = len,
                }
                if j >= len {
                    end_of_assertion = true;
                    break len;
                }
                if b.get(j) == Some(&b'\n') {
                    match b.get(j + 1) {
                        Some(b'\n') => {
                            end_of_assertion = true;
                            break j;
                        }
                        Some(c) if is_c_space(*c) || *c == b'#' => {}
                        _ => break j,
                    }
                }
            };
            i = te + 1;
            let keyword = text.get(ks..colon).unwrap_or("");
            let Some(field) = Field::from_keyword(keyword) else {
                return Err(ParseError::UnknownField {
                    name: keyword.to_owned(),
                    line: line_of(text, ks),
                    offset: ks,
                });
            };
            // Line numbers are only for errors: counting them costs a pass over the text
            // before each field (~270 instructions a field of a 1,000-credential chain).
            let line = || line_of(text, ks);
            if field == Field::Version && seen_field {
                return Err(ParseError::VersionNotFirst { line: line() });
            }
            let slot = fields
                .get_mut(field.index())
                .ok_or(ParseError::MissingAuthorizer)?;
            if slot.is_some() {
                return Err(ParseError::DuplicateField {
                    field,
                    line: line(),
                });
            }
            *slot = Some(ts..te);
            seen_field = true;
            if field == Field::Signature {
                end_of_assertion = true;
                body_end = Some(ks);
            }
            if end_of_assertion {
                // Only whitespace may follow on the next line (RFC 2704 4.6.7).
                if te + 1 < len {
                    let rest = &b[te + 1..];
                    let next_line = rest.split(|c| *c == b'\n').next().unwrap_or(&[]);
                    if !next_line.iter().all(|c| is_c_space(*c)) {
                        return Err(ParseError::AfterSignature {
                            line: line_of(text, te + 1),
                        });
                    }
                }
                break;
            }
        }
        let value = |f: Field| {
            fields
                .get(f.index())
                .and_then(Option::as_ref)
                .and_then(|r| text.get(r.clone()).map(|s| (r.start, s)))
        };
        let field_err = |field: Field, base: usize, e: ExprError| {
            let span = e.span.start + base..e.span.end + base;
            ParseError::Field {
                field,
                line: line_of(text, span.start),
                source: ExprError { kind: e.kind, span },
            }
        };
        if let Some((base, v)) = value(Field::Version) {
            let version = parse_version(v).map_err(|e| field_err(Field::Version, base, e))?;
            if version != "2" {
                return Err(ParseError::BadVersion {
                    version,
                    line: line_of(text, base),
                });
            }
        }
        let mut constants = Map::default();
        if let Some((base, v)) = value(Field::LocalConstants) {
            let list =
                parse_local_constants(v).map_err(|e| field_err(Field::LocalConstants, base, e))?;
            for (name, val, span) in list {
                let line = line_of(text, base + span.start);
                if name.starts_with('_') || constants.contains_key(&name) {
                    return Err(ParseError::BadConstant { name, line });
                }
                constants.insert(name, val);
            }
        }
        let Some((base, v)) = value(Field::Authorizer) else {
            return Err(ParseError::MissingAuthorizer);
        };
        let shift = |base: usize, e: ExprError| ExprError {
            kind: e.kind,
            span: e.span.start + base..e.span.end + base,
        };
        // Like Licensees, the Authorizer is only evaluated when a query starts (the reference
        // adds the assertion and reports the error then, for every assertion).
        let (authorizer, authorizer_error) = match parse_str_expr(v) {
            Ok(e) => (e, None),
            Err(e) => (StrExpr::Lit(Text::new("")), Some(shift(base, e))),
        };
        let licensees = match value(Field::Licensees) {
            None => Deferred::Missing,
            Some((base, v)) => match parse_licensees(v) {
                Ok(l) => Deferred::Parsed(l),
                Err(e) => Deferred::Invalid(shift(base, e)),
            },
        };
        let conditions = match value(Field::Conditions) {
            None => Deferred::Missing,
            Some((base, v)) => match parse_conditions_parallel(v, threads) {
                Ok(c) => Deferred::Parsed(c),
                Err(e) => Deferred::Invalid(shift(base, e)),
            },
        };
        let signature = value(Field::Signature).map(|(base, v)| match parse_str_expr(v) {
            Ok(StrExpr::Lit(s)) => Ok(s.into_string()),
            Ok(_) => Err(ExprError {
                kind: crate::parser::ExprErrorKind::Type("the signature must be a string literal"),
                span: base..base + v.len(),
            }),
            Err(e) => Err(shift(base, e)),
        });
        let body_end = body_end.unwrap_or(len);
        let text = match src {
            Cow::Owned(mut owned) => {
                // `len` is where a NUL byte cut the text (an ASCII byte: a char boundary).
                owned.truncate(len);
                owned
            }
            Cow::Borrowed(borrowed) => borrowed.get(..len).unwrap_or(borrowed).to_owned(),
        };
        Ok(Assertion {
            body: start..body_end,
            text,
            constants,
            authorizer,
            authorizer_error,
            licensees,
            conditions,
            signature,
        })
    }

    /// The assertion text as parsed (up to a NUL byte, if any).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Bytes from the first field up to, not including, the Signature keyword: what the
    /// signature covers (RFC 2704 4.6.7), before the algorithm name is appended.
    pub fn signed_body(&self) -> &[u8] {
        self.text.as_bytes().get(self.body.clone()).unwrap_or(&[])
    }

    /// The Signature field's decoded string value, if present and a plain string.
    pub fn signature_value(&self) -> Option<&str> {
        match &self.signature {
            Some(Ok(s)) => Some(s),
            _ => None,
        }
    }

    /// The parse error of the Signature field's value, if it has one that does not parse.
    pub fn signature_error(&self) -> Option<&ExprError> {
        match &self.signature {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// Whether the assertion has a Signature field at all.
    pub fn has_signature(&self) -> bool {
        self.signature.is_some()
    }

    /// The Authorizer expression (an empty literal when the field does not parse; see
    /// [`Assertion::authorizer_error`]).
    pub fn authorizer_expr(&self) -> &StrExpr {
        &self.authorizer
    }

    /// Why the Authorizer field does not parse, if it does not.
    pub fn authorizer_error(&self) -> Option<&ExprError> {
        self.authorizer_error.as_ref()
    }

    /// The Licensees field: missing, parsed (`None` when empty) or invalid.
    pub fn licensees(&self) -> &Deferred<Option<Licensees>> {
        &self.licensees
    }

    /// The Conditions field: missing, parsed or invalid.
    pub fn conditions(&self) -> &Deferred<Conditions> {
        &self.conditions
    }

    /// The Local-Constants of this assertion (RFC 2704 4.6.2).
    pub fn local_constants(&self) -> &Map<String, String> {
        &self.constants
    }

    /// The Authorizer evaluated with this assertion's Local-Constants only (no action
    /// attributes), as `keynote sigver` needs. Undefined names evaluate to "".
    pub fn authorizer_without_action(&self) -> Result<String, crate::EvalError> {
        if let Some(e) = &self.authorizer_error {
            return Err(crate::EvalError::InvalidAuthorizer(e.clone()));
        }
        let empty = Map::default();
        let scope = Scope::new(&self.constants, &empty);
        eval_str_plain(&self.authorizer, &scope).map(std::borrow::Cow::into_owned)
    }
}

/// Split a buffer holding several assertions separated by blank lines, as the reference's
/// `kn_read_asserts` (used by `keynote sigver`) does: returns the non-blank chunks.
pub fn split_assertions(buf: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = buf.as_bytes();
    let mut start = 0;
    let mut prev_nl = false;
    let mut valid = false;
    for (i, c) in b.iter().enumerate() {
        if *c == b'\n' {
            if prev_nl {
                if valid {
                    out.push(buf.get(start..i).unwrap_or(""));
                }
                valid = false;
                prev_nl = false;
                start = i + 1;
            } else {
                prev_nl = true;
            }
            continue;
        }
        prev_nl = false;
        if !is_c_space(*c) {
            valid = true;
        }
    }
    if valid {
        out.push(buf.get(start..).unwrap_or(""));
    }
    out
}

/// The offset of the first `\n` in `rest`. On x86_64 this is memchr's SSE2 searcher, chosen at
/// compile time (SSE2 is part of the x86_64 baseline); `memchr::memchr` would first ask the CPU
/// whether it has AVX2, and the CPUID instructions behind that question trap to the hypervisor
/// on virtual machines (~11 µs each on ours: more than parsing a small assertion).
fn next_line_break(rest: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(sse2) = memchr::arch::x86_64::sse2::memchr::One::new(b'\n') {
        return sse2.find(rest);
    }
    memchr::memchr(b'\n', rest)
}
