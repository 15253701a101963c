//! Policy files: several KeyNote assertions per file, each remembered with its file:line.
//!
//! A policy file holds one or more RFC 2704 assertions separated by blank lines (RFC 2704 §4.2
//! ends an assertion at an empty line). Blocks made only of `#` comment lines are skipped, so a
//! file can start with a commented header. Every assertion keeps its [`Origin`] so that
//! explanations ("granted by policies/distro.kn:12") and lint messages point at the source.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keynote::ast::{Clause, ClauseValue, Licensees, NumExpr, StrExpr, Test};
use keynote::{Assertion, Deferred, ParseError};

use crate::limits::{MAX_ASSERTIONS_PER_FILE, MAX_POLICY_FILE_BYTES};

/// Where an assertion came from: a file (or other named source) and the line its first field
/// is on, counting from 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Origin {
    /// The file name as given (or e.g. `refs/gt/policy:policy.kn`).
    pub file: String,
    /// The 1-based line of the assertion's first field.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_FILE_BYTES`].
    #[error("policy file {file} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The file is not UTF-8.
    #[error("policy file {file} is not UTF-8 (byte offset {offset})")]
    NotUtf8 {
        /// The file.
        file: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// More than [`MAX_ASSERTIONS_PER_FILE`] assertions.
    #[error("policy file {file} has more than {limit} assertions")]
    TooManyAssertions {
        /// The file.
        file: String,
        /// The limit.
        limit: usize,
    },
    /// An assertion does not parse, or one of its Licensees/Conditions fields does not.
    #[error("{origin}: {message}")]
    Syntax {
        /// File and absolute line of the error.
        origin: Origin,
        /// What is wrong (the KeyNote parser's message, its relative line number removed).
        message: String,
    },
    /// The file holds no assertion at all.
    #[error("policy file {file} holds no assertion")]
    Empty {
        /// The file.
        file: String,
    },
}

/// One assertion of a policy file.
#[derive(Debug, Clone)]
pub struct LoadedAssertion {
    /// Where it is.
    pub origin: Origin,
    /// The parsed assertion (shared with every session that uses it).
    pub assertion: Arc<Assertion>,
    /// Whether its Authorizer is `POLICY` (a trust root, when the file is trusted).
    pub is_policy: bool,
}

impl LoadedAssertion {
    /// The Authorizer as written (evaluated with the assertion's Local-Constants only).
    pub fn authorizer(&self) -> String {
        self.assertion
            .authorizer_without_action()
            .unwrap_or_default()
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, Default)]
pub struct PolicyFile {
    /// The file's name, as used in [`Origin`]s.
    pub name: String,
    /// Its assertions, in file order.
    pub assertions: Vec<LoadedAssertion>,
}

/// The non-blank, non-comment-only chunks of a policy file with their 1-based first lines.
fn chunks(text: &str) -> Vec<(usize, &str)> {
    assertion_spans(text)
        .into_iter()
        .map(|(line, range)| (line, text.get(range).unwrap_or("")))
        .collect()
}

/// Where each assertion of a policy file is: its 1-based first line and its byte range (from
/// its first non-blank character to the end of its last line). Comment-only blocks are not
/// assertions. Used to rewrite one assertion in place (`gt policy sign`).
pub fn assertion_spans(text: &str) -> Vec<(usize, std::ops::Range<usize>)> {
    let base = text.as_ptr() as usize;
    keynote::split_assertions(text)
        .into_iter()
        .filter_map(|chunk| {
            let offset = (chunk.as_ptr() as usize).saturating_sub(base);
            // Skip leading blank lines inside the chunk: the line of an assertion is the line
            // of its first non-blank character.
            let lead = chunk.len() - chunk.trim_start().len();
            let start = offset + lead;
            let body = chunk.get(lead..).unwrap_or("");
            if body
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                return None;
            }
            let line = line_at(text, start);
            Some((line, start..start + body.len()))
        })
        .collect()
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .get(..offset)
        .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
        + 1
}

/// The relative line a KeyNote parse error names, if any.
fn parse_error_line(e: &ParseError) -> Option<usize> {
    Some(match e {
        ParseError::Indented { line, .. }
        | ParseError::MissingColon { line, .. }
        | ParseError::UnknownField { line, .. }
        | ParseError::DuplicateField { line, .. }
        | ParseError::VersionNotFirst { line }
        | ParseError::BadVersion { line, .. }
        | ParseError::AfterSignature { line }
        | ParseError::BadConstant { line, .. }
        | ParseError::Field { line, .. } => *line,
        _ => return None,
    })
}

/// Drop a leading "line N: " from a message (we print absolute lines instead).
fn strip_line_prefix(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("line ")
        && let Some(colon) = rest.find(": ")
        && rest
            .get(..colon)
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        return rest.get(colon + 2..).unwrap_or("").to_owned();
    }
    message.to_owned()
}

/// Turn an assertion's parse error into a [`LoadError::Syntax`] at an absolute line.
fn syntax_error(file: &str, first_line: usize, e: &ParseError) -> LoadError {
    let line = first_line + parse_error_line(e).map_or(0, |l| l.saturating_sub(1));
    LoadError::Syntax {
        origin: Origin {
            file: file.to_owned(),
            line,
        },
        message: strip_line_prefix(&e.to_string()),
    }
}

/// Errors in the deferred fields (Licensees, Conditions), which the KeyNote parser reports
/// only when a query reaches the assertion. Policy files are checked eagerly instead.
fn deferred_errors(file: &str, first_line: usize, a: &Assertion) -> Vec<LoadError> {
    let mut out = Vec::new();
    let text = a.text();
    let mut report = |field: &str, err: &keynote::ExprError| {
        // The error's span is relative to the assertion text: find its line.
        let rel = line_at(text, err.span.start);
        out.push(LoadError::Syntax {
            origin: Origin {
                file: file.to_owned(),
                line: first_line + rel - 1,
            },
            message: format!("{field} field: {err}"),
        });
    };
    if let Deferred::Invalid(e) = a.licensees() {
        report("Licensees", e);
    }
    if let Deferred::Invalid(e) = a.conditions() {
        report("Conditions", e);
    }
    out
}

impl PolicyFile {
    /// Read and parse a policy file strictly (see [`PolicyFile::parse`]).
    pub fn read(path: &Path) -> Result<PolicyFile, LoadError> {
        let bytes = read_limited(path)?;
        let name = path.display().to_string();
        let text = utf8(&name, &bytes)?;
        PolicyFile::parse(&name, text)
    }

    /// Parse strictly: the first syntax error in any assertion — including its Licensees and
    /// Conditions, which KeyNote would otherwise only notice when a query reaches them — fails
    /// the whole file. Used for the trusted, local policy: a typo there must stop the command,
    /// not silently deny everything.
    pub fn parse(name: &str, text: &str) -> Result<PolicyFile, LoadError> {
        let (file, errors) = PolicyFile::parse_lenient(name, text)?;
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None if file.assertions.is_empty() => Err(LoadError::Empty {
                file: name.to_owned(),
            }),
            None => Ok(file),
        }
    }

    /// Parse leniently: assertions that do not parse are left out and returned as errors
    /// (lint, and credentials from a repository, where one bad credential must not hide the
    /// others). Fails only on size limits.
    pub fn parse_lenient(
        name: &str,
        text: &str,
    ) -> Result<(PolicyFile, Vec<LoadError>), LoadError> {
        if text.len() > MAX_POLICY_FILE_BYTES {
            return Err(LoadError::TooLarge {
                file: name.to_owned(),
                size: text.len(),
                limit: MAX_POLICY_FILE_BYTES,
            });
        }
        let mut file = PolicyFile {
            name: name.to_owned(),
            assertions: Vec::new(),
        };
        let mut errors = Vec::new();
        let chunks = chunks(text);
        if chunks.len() > MAX_ASSERTIONS_PER_FILE {
            return Err(LoadError::TooManyAssertions {
                file: name.to_owned(),
                limit: MAX_ASSERTIONS_PER_FILE,
            });
        }
        for (line, chunk) in chunks {
            match Assertion::parse(chunk) {
                Ok(a) => {
                    let deferred = deferred_errors(name, line, &a);
                    if !deferred.is_empty() {
                        errors.extend(deferred);
                        continue;
                    }
                    let is_policy = a.authorizer_without_action().is_ok_and(|s| s == "POLICY");
                    file.assertions.push(LoadedAssertion {
                        origin: Origin {
                            file: name.to_owned(),
                            line,
                        },
                        assertion: Arc::new(a),
                        is_policy,
                    });
                }
                Err(e) => errors.push(syntax_error(name, line, &e)),
            }
        }
        Ok((file, errors))
    }
}

/// Read at most [`MAX_POLICY_FILE_BYTES`] (+1 to detect overflow) from `path`.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(MAX_POLICY_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_POLICY_FILE_BYTES {
        return Err(LoadError::TooLarge {
            file: path.display().to_string(),
            size: bytes.len(),
            limit: MAX_POLICY_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// Check that `bytes` are UTF-8.
pub(crate) fn utf8<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(bytes).map_err(|e| LoadError::NotUtf8 {
        file: name.to_owned(),
        offset: e.valid_up_to(),
    })
}

/// The special attributes KeyNote itself defines (RFC 2704 §4.3, §5.1).
const SPECIAL_ATTRIBUTES: [&str; 4] =
    ["_MIN_TRUST", "_MAX_TRUST", "_VALUES", "_ACTION_AUTHORIZERS"];

/// Attribute names an assertion reads (in Authorizer, Licensees and Conditions) that are
/// neither its Local-Constants nor KeyNote's specials: the names a policy expects the caller
/// to set. `Deref` targets are computed at run time and cannot be listed.
pub fn attributes_used(a: &Assertion) -> Vec<String> {
    let mut names = Vec::new();
    str_attrs(a.authorizer_expr(), &mut names);
    if let Deferred::Parsed(Some(l)) = a.licensees() {
        lic_attrs(l, &mut names);
    }
    if let Deferred::Parsed(c) = a.conditions() {
        clauses_attrs(&c.clauses, &mut names);
    }
    let constants = a.local_constants();
    names.retain(|n| !constants.contains_key(n) && !SPECIAL_ATTRIBUTES.contains(&n.as_str()));
    names.sort();
    names.dedup();
    names
}

fn str_attrs(e: &StrExpr, out: &mut Vec<String>) {
    match e {
        StrExpr::Lit(_) => {}
        StrExpr::Attr(n) => out.push(n.to_string()),
        StrExpr::Deref { inner, .. } => str_attrs(inner, out),
        StrExpr::Concat(v) => v.iter().for_each(|x| str_attrs(x, out)),
    }
}

fn num_attrs<T>(e: &NumExpr<T>, out: &mut Vec<String>) {
    match e {
        NumExpr::Lit(_) => {}
        NumExpr::Convert(s) => str_attrs(s, out),
        NumExpr::Neg { inner, .. } => num_attrs(inner, out),
        NumExpr::Chain { first, rest } => {
            num_attrs(first, out);
            rest.iter().for_each(|(_, x)| num_attrs(x, out));
        }
    }
}

fn test_attrs(t: &Test, out: &mut Vec<String>) {
    match t {
        Test::True | Test::False => {}
        Test::Not { inner, .. } => test_attrs(inner, out),
        Test::And(v) | Test::Or(v) => v.iter().for_each(|x| test_attrs(x, out)),
        Test::Str(a, _, b) | Test::Regex(a, b) => {
            str_attrs(a, out);
            str_attrs(b, out);
        }
        Test::Int(a, _, b) => {
            num_attrs(a, out);
            num_attrs(b, out);
        }
        Test::Float(a, _, b) => {
            num_attrs(a, out);
            num_attrs(b, out);
        }
    }
}

fn clauses_attrs(clauses: &[Clause], out: &mut Vec<String>) {
    for c in clauses {
        test_attrs(&c.test, out);
        match &c.value {
            ClauseValue::Max => {}
            ClauseValue::Value(s) => str_attrs(s, out),
            ClauseValue::Block(b) => clauses_attrs(b, out),
        }
    }
}

fn lic_attrs(l: &Licensees, out: &mut Vec<String>) {
    match l {
        Licensees::Principal(e) => str_attrs(e, out),
        Licensees::And(v) | Licensees::Or(v) => v.iter().for_each(|x| lic_attrs(x, out)),
        Licensees::KOf { principals, .. } => principals.iter().for_each(|e| str_attrs(e, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "Authorizer: \"POLICY\"\nLicensees: \"a\"\n";

    #[test]
    fn assertions_keep_their_lines_and_comment_blocks_are_skipped() {
        let text =
            format!("# header\n# more\n\n{ROOT}\n\n\n# c\nAuthorizer: \"b\"\nLicensees: \"c\"\n");
        let f = PolicyFile::parse("f.kn", &text).unwrap();
        let lines: Vec<usize> = f.assertions.iter().map(|a| a.origin.line).collect();
        assert_eq!(lines, [4, 9]);
        assert!(f.assertions[0].is_policy && !f.assertions[1].is_policy);
        assert_eq!(f.assertions[1].origin.to_string(), "f.kn:9");
    }

    #[test]
    fn syntax_errors_name_the_absolute_line() {
        let text = format!("{ROOT}\nAuthorizer: \"POLICY\"\nConditions: a == ;\n");
        let e = PolicyFile::parse("f.kn", &text).unwrap_err();
        assert!(e.to_string().starts_with("f.kn:5: Conditions field"), "{e}");
        let text = format!("{ROOT}\nAuthorizer: \"POLICY\"\nBogus: 1\n");
        let e = PolicyFile::parse("f.kn", &text).unwrap_err();
        assert!(e.to_string().starts_with("f.kn:5: unknown field"), "{e}");
        // Lenient parsing keeps the good assertions.
        let (f, errors) = PolicyFile::parse_lenient("f.kn", &text).unwrap();
        assert_eq!((f.assertions.len(), errors.len()), (1, 1));
        assert!(matches!(
            PolicyFile::parse("f.kn", "# only a comment\n"),
            Err(LoadError::Empty { .. })
        ));
    }

    #[test]
    fn size_and_count_limits_hold_at_the_boundary() {
        // The filler is a separate comment block, so only the size is at stake.
        let mut text = format!("{ROOT}\n");
        text.push_str(&"#".repeat(MAX_POLICY_FILE_BYTES - text.len()));
        assert!(PolicyFile::parse_lenient("f", &text).is_ok());
        text.push('#');
        assert!(matches!(
            PolicyFile::parse_lenient("f", &text),
            Err(LoadError::TooLarge { .. })
        ));
        let many = "Authorizer: \"a\"\n\n".repeat(MAX_ASSERTIONS_PER_FILE);
        assert!(PolicyFile::parse_lenient("f", &many).is_ok());
        let more = format!("{many}Authorizer: \"a\"\n");
        assert!(matches!(
            PolicyFile::parse_lenient("f", &more),
            Err(LoadError::TooManyAssertions { .. })
        ));
    }

    #[test]
    fn attributes_used_skips_constants_and_specials() {
        let a = Assertion::parse(
            "Authorizer: \"POLICY\"\nLocal-Constants: K = \"x\"\nLicensees: K || who\n\
             Conditions: ref == K && @tag_time > 3 && _MIN_TRUST == \"\" -> { refx ~= \"y\"; };\n",
        )
        .unwrap();
        assert_eq!(attributes_used(&a), ["ref", "refx", "tag_time", "who"]);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in [
            "",
            "\n\n\n",
            "Authorizer",
            "Authorizer: \"POLICY\"\nConditions: ((((((((((",
            "Authorizer: \"x\"\nSignature: \"sig-openpgp-base64:AAAA\"\n",
            "\u{0}\n\nAuthorizer: \"x\"",
        ] {
            crate::fuzz_policy_file(s.as_bytes());
        }
        crate::fuzz_policy_file(&[0xff, 0xfe]);
    }
}
