//! Parsing of KeyNote's expression languages: pest in, typed AST (ast.rs) out.
//!
//! A Conditions text is read in one pass where it can be (the `direct` submodule: tokens cut
//! as the climber asks for them). Otherwise, and for Licensees and Authorizer text, it is first
//! cut into tokens by a small hand-written lexer (strings with escapes and continuations,
//! comments, names, numbers, operators); the token codes, one character each, are then parsed
//! by the pest grammar in tokens.pest. The remaining small languages (Local-Constants,
//! KeyNote-Version, the CLI's environment file) are parsed by keynote.pest directly.
//!
//! Each entry point checks the input length and bracket nesting *before* pest runs, so that
//! pest's recursive descent and our conversion (which recurse once per bracket level) stay
//! within [`MAX_NESTING`] levels; `!` operands nested without brackets are bounded as the tree
//! is built ([`MAX_NOT_NESTING`], [`MAX_OPERAND_NESTING`]). Long flat sequences are collected iteratively. Typing rules
//! of RFC 2704 4.6.5 (no mixed int/float/string operands, no float equality, `%` on integers
//! only) are enforced here, so the evaluator only sees well-typed trees.

use crate::ast::{
    ArithOp, Clause, ClauseValue, CmpOp, Conditions, FloatExpr, IntExpr, Licensees, NumExpr,
    StrExpr, Test, Text, unescape,
};
use crate::limits::{MAX_ASSERTION_LEN, MAX_NESTING, MAX_NOT_NESTING, MAX_OPERAND_NESTING};
use pest::Parser as _;
use pest::iterators::Pair;
use std::ops::Range;
use thiserror::Error;

mod grammar {
    //! The pest-generated text-level parser; private so that no pest type leaves this module.
    #[derive(pest_derive::Parser)]
    #[grammar = "keynote.pest"]
    pub(crate) struct KeyNoteParser;
}
use grammar::{KeyNoteParser, Rule};

mod token_grammar {
    //! The pest-generated parser over token codes; private like `grammar`.
    #[derive(pest_derive::Parser)]
    #[grammar = "tokens.pest"]
    pub(crate) struct TokenParser;
}
use token_grammar::{Rule as T, TokenParser};

mod direct;

/// Why an expression (a field value or an environment file) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} at bytes {}..{}", span.start, span.end)]
pub struct ExprError {
    /// What went wrong.
    pub kind: ExprErrorKind,
    /// Where, as byte offsets into the text given to the parser.
    pub span: Range<usize>,
}

/// The kinds of expression errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ExprErrorKind {
    /// The text does not match the grammar; `expected` lists what could have come next.
    #[error("syntax error (expected {expected})")]
    Syntax {
        /// Human-readable list of expected tokens.
        expected: String,
    },
    /// Operands of different types meet (RFC 2704 4.6.5), e.g. `@x == "5"` or `&x > 1`.
    #[error("type error: {0}")]
    Type(&'static str),
    /// `K-of(...)` with fewer than K principals (RFC 2704 4.6.4), or K out of range.
    #[error("threshold {k} exceeds the {n} principals listed")]
    Threshold {
        /// The K written.
        k: u64,
        /// The number of principals listed.
        n: usize,
    },
    /// Brackets nested deeper than [`MAX_NESTING`].
    #[error("brackets nested deeper than {MAX_NESTING}")]
    TooDeep,
    /// The text is longer than [`MAX_ASSERTION_LEN`].
    #[error("text longer than {MAX_ASSERTION_LEN} bytes")]
    TooLong,
    /// The parser's call budget ([`crate::limits::PEST_CALL_LIMIT`]) ran out.
    #[error("expression too complex to parse")]
    TooComplex,
}

impl ExprError {
    fn new(kind: ExprErrorKind, span: Range<usize>) -> Self {
        ExprError { kind, span }
    }
}

type Result<T> = std::result::Result<T, ExprError>;

/// Reject over-long or over-nested input before pest sees it. Strings and comments are
/// skipped the way the grammar reads them, so brackets inside them do not count.
fn precheck(src: &str) -> Result<()> {
    if src.len() > MAX_ASSERTION_LEN {
        return Err(ExprError::new(ExprErrorKind::TooLong, 0..src.len()));
    }
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    if c == b'\\' {
                        i += 2;
                        continue;
                    }
                    if c == b'"' {
                        break;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while let Some(&c) = bytes.get(i) {
                    if c == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'(' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ExprError::new(ExprErrorKind::TooDeep, i..i + 1));
                }
            }
            b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn run(rule: Rule, src: &str) -> Result<Pair<'_, Rule>> {
    precheck(src)?;
    match KeyNoteParser::parse(rule, src) {
        Ok(mut pairs) => pairs
            .next()
            .ok_or_else(|| ExprError::new(syntax("input"), 0..src.len())),
        Err(e) => Err(from_pest(&e, src)),
    }
}

fn syntax(expected: &str) -> ExprErrorKind {
    ExprErrorKind::Syntax {
        expected: expected.to_owned(),
    }
}

fn from_pest(e: &pest::error::Error<Rule>, src: &str) -> ExprError {
    use pest::error::{ErrorVariant, InputLocation};
    let span = match e.location {
        InputLocation::Pos(p) => p..p.min(src.len()),
        InputLocation::Span((a, b)) => a..b,
    };
    let kind = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let names: Vec<String> = positives.iter().map(|r| format!("{r:?}")).collect();
            syntax(&names.join(", "))
        }
        ErrorVariant::CustomError { message } => {
            if message.contains("call limit") || message.contains("stack limit") {
                ExprErrorKind::TooComplex
            } else {
                syntax(message)
            }
        }
    };
    ExprError::new(kind, span)
}

// ------------------------------------------------------------------ lexer

/// Which language a token stream is for: in Conditions `true`/`false` are keywords; in
/// Licensees and Authorizer they are names, and `K-of` is a token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Conditions,
    Principals,
}

/// A token stream: one code character per token (see tokens.pest) and each token's bytes.
struct Cx<'s> {
    src: &'s str,
    codes: String,
    /// Byte offsets (start, end) of each token; `u32` is enough below [`MAX_ASSERTION_LEN`]
    /// and halves the memory of a 10,000-clause token stream.
    spans: Vec<(u32, u32)>,
}

impl<'s> Cx<'s> {
    /// The source text of the token at code position `i`.
    fn text(&self, i: usize) -> &'s str {
        self.spans
            .get(i)
            .and_then(|&(a, b)| self.src.get(a as usize..b as usize))
            .unwrap_or("")
    }

    /// The byte span covered by code positions `a..b`.
    fn bytes(&self, a: usize, b: usize) -> Range<usize> {
        let end = self.src.len();
        let start = self.spans.get(a).map_or(end, |r| r.0 as usize);
        let stop = if b > a {
            self.spans.get(b - 1).map_or(end, |r| r.1 as usize)
        } else {
            start
        };
        start..stop
    }

    fn err(&self, kind: ExprErrorKind, pair: &Pair<'_, T>) -> ExprError {
        let s = pair.as_span();
        ExprError::new(kind, self.bytes(s.start(), s.end()))
    }
}

const fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Cut `src` into tokens (RFC 2704 4.2: whitespace is space, TAB and newline; `#` starts a
/// comment to the end of the line outside strings).
///
/// The checks of [`precheck`] are made on the way (same string and comment skipping, so the
/// same first over-deep bracket); on a lexical error `precheck` runs over the whole text
/// first, so that its errors still win as they did when it ran before lexing.
fn lex(src: &str, mode: Mode) -> Result<Cx<'_>> {
    if src.len() > MAX_ASSERTION_LEN {
        return Err(ExprError::new(ExprErrorKind::TooLong, 0..src.len()));
    }
    lex_inner(src, mode).map_err(|e| precheck(src).err().unwrap_or(e))
}

// Token offsets are stored as u32 (see `Cx::spans`).
const _: () = assert!(MAX_ASSERTION_LEN < u32::MAX as usize);

fn lex_inner(src: &str, mode: Mode) -> Result<Cx<'_>> {
    let run = lex_run(src, mode, 0..src.len())?;
    Ok(Cx {
        src,
        codes: run.codes,
        spans: run.spans,
    })
}

/// The tokens of one stretch of the text, and the lexer's state where it stopped.
struct LexRun {
    codes: String,
    spans: Vec<(u32, u32)>,
    /// Where the lexer stopped: the first token boundary at or after the stretch's end.
    end: usize,
    /// Bracket depth at `end`.
    depth: usize,
    /// Deepest bracket nesting seen.
    max_depth: usize,
    /// Whether the last token was an operand (a `-` after it is binary).
    after_operand: bool,
}

/// What the lexer does with a byte that may start a token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Not a token start: a lexical error.
    Bad,
    /// Space, TAB, newline (RFC 2704 4.2).
    Space,
    /// `#`: a comment to the end of the line.
    Hash,
    /// `"`: a string literal.
    Quote,
    /// `0`-`9`: a number (or, among principals, `K-of`).
    Digit,
    /// A letter or `_`: a name, or `true`/`false` in Conditions.
    Word,
    /// An operator, bracket or separator.
    Punct,
}

/// The [`Class`] of every byte value: one table look-up per token instead of a chain of
/// comparisons (the lexer reads every byte of a 10,000-clause policy).
static CLASS: [Class; 256] = {
    let mut t = [Class::Bad; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b' ' | b'\t' | b'\n' => Class::Space,
            b'#' => Class::Hash,
            b'"' => Class::Quote,
            b'0'..=b'9' => Class::Digit,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => Class::Word,
            b'|' | b'&' | b'=' | b'!' | b'<' | b'>' | b'~' | b'-' | b'+' | b'.' | b'*' | b'/'
            | b'%' | b'^' | b'@' | b'$' | b'(' | b'{' | b')' | b'}' | b';' | b',' => Class::Punct,
            _ => Class::Bad,
        };
        c += 1;
    }
    t
};

/// Bytes that continue a name: letters, digits, `_`.
static IDENT: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = is_ident(c as u8);
        c += 1;
    }
    t
};

/// The end of the run of bytes from `i` on that `keep` accepts.
fn skip_while(b: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while let Some(&c) = b.get(i) {
        if !keep(c) {
            break;
        }
        i += 1;
    }
    i
}

/// The end of the string literal whose opening quote is at `i` (after its closing quote);
/// `None` when it is not closed. Only `\` and `"` matter inside; strings are short (`"v0"`,
/// `"refs/tags/"`), so a plain loop beats a vector search's set-up.
#[inline(always)]
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut i = i + 1;
    loop {
        i = skip_while(b, i, |c| c != b'"' && c != b'\\');
        match b.get(i)? {
            b'"' => return Some(i + 1),
            _ => i += 2,
        }
    }
}

/// The code and end of the number whose first digit is at `i`: an integer, a float
/// (`digits.digits`), or among principals `K-of`.
#[inline(always)]
fn number(b: &[u8], i: usize, mode: Mode) -> (u8, usize) {
    let i = skip_while(b, i + 1, |c| c.is_ascii_digit());
    if mode == Mode::Principals && b.get(i..i + 3) == Some(b"-of") {
        (b'#', i + 3)
    } else if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        (b'd', skip_while(b, i + 2, |c| c.is_ascii_digit()))
    } else {
        (b'i', i)
    }
}

/// The code and end of the name whose first letter (or `_`) is at `i`: in Conditions `true`
/// and `false` (any case) are keywords.
#[inline(always)]
fn word(b: &[u8], i: usize, mode: Mode) -> (u8, usize) {
    let end = skip_while(b, i + 1, |c| IDENT[usize::from(c)]);
    let w = b.get(i..end).unwrap_or(&[]);
    let code = match mode {
        Mode::Conditions if w.eq_ignore_ascii_case(b"true") => b't',
        Mode::Conditions if w.eq_ignore_ascii_case(b"false") => b'f',
        _ => b'n',
    };
    (code, end)
}

/// The code and length of the operator, bracket or separator token that starts with byte `c`
/// followed by `next`; `after_operand` tells a binary `-` from a unary one. Brackets are their
/// own codes (the caller counts their depth). `None` for a lone `|`, `=` or `~`.
#[inline(always)]
fn punct(c: u8, next: u8, after_operand: bool) -> Option<(u8, usize)> {
    Some(match (c, next) {
        (b'|', b'|') => (b'O', 2),
        (b'&', b'&') => (b'A', 2),
        (b'=', b'=') => (b'E', 2),
        (b'!', b'=') => (b'N', 2),
        (b'<', b'=') => (b'P', 2),
        (b'>', b'=') => (b'H', 2),
        (b'~', b'=') => (b'X', 2),
        (b'-', b'>') => (b'>', 2),
        (b'<', _) => (b'L', 1),
        (b'>', _) => (b'G', 1),
        (b'+', _) => (b'S', 1),
        // Binary minus after an operand, unary minus anywhere else: the grammar can then
        // match every prefix with one character range.
        (b'-', _) if after_operand => (b'M', 1),
        (b'-', _) => (b'%', 1),
        (b'.', _) => (b'C', 1),
        (b'*', _) => (b'T', 1),
        (b'/', _) => (b'D', 1),
        (b'%', _) => (b'R', 1),
        (b'^', _) => (b'W', 1),
        (b'!', _) => (b'!', 1),
        (b'@', _) => (b'"', 1),
        (b'&', _) => (b'&', 1),
        (b'$', _) => (b'$', 1),
        (b'(' | b'{' | b')' | b'}' | b';' | b',', _) => (c, 1),
        _ => return None,
    })
}

/// Lex from `range.start` (a token boundary outside strings and comments, at depth 0, after
/// no operand) to the first token boundary at or after `range.end`.
///
/// Byte classes come from a table and runs (names, digits, blanks, string bodies) are skipped
/// in tight loops; `lex_run_reference` (tests) is the plain reading it is held equal to.
fn lex_run(src: &str, mode: Mode, range: Range<usize>) -> Result<LexRun> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let capacity = (range.end - range.start) / 3;
    let mut codes: Vec<u8> = Vec::with_capacity(capacity);
    let mut spans = Vec::with_capacity(capacity);
    let mut i = range.start;
    let mut after_operand = false;
    while i < range.end {
        let Some(&c) = b.get(i) else { break };
        // The one space between tokens, by far the most common byte: skipped before the
        // table's jump (b3: ~11% of the lexer's instructions).
        if c == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        let code = match CLASS[usize::from(c)] {
            Class::Space => {
                // Blanks at or after `range.end` are the next run's (see lex_parallel).
                let stretch = b.get(..range.end).unwrap_or(b);
                i = skip_while(stretch, i + 1, |c| matches!(c, b' ' | b'\t' | b'\n'));
                continue;
            }
            Class::Hash => {
                i = skip_while(b, i + 1, |c| c != b'\n');
                continue;
            }
            Class::Quote => {
                let Some(end) = string_end(b, i) else {
                    return Err(ExprError::new(syntax("closing quote"), start..src.len()));
                };
                i = end;
                b's'
            }
            Class::Digit => {
                let code;
                (code, i) = number(b, i, mode);
                code
            }
            Class::Word => {
                let code;
                (code, i) = word(b, i, mode);
                code
            }
            Class::Punct => {
                let Some((code, len)) = punct(c, b.get(i + 1).copied().unwrap_or(0), after_operand)
                else {
                    // A lone `|`, `=` or `~`.
                    return Err(ExprError::new(syntax("a token"), i..i + 1));
                };
                match code {
                    b'(' | b'{' => {
                        depth += 1;
                        if depth > MAX_NESTING {
                            return Err(ExprError::new(ExprErrorKind::TooDeep, i..i + 1));
                        }
                        max_depth = max_depth.max(depth);
                    }
                    b')' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                i += len;
                code
            }
            Class::Bad => {
                let end = src
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(i + 1, |ch| i + ch.len_utf8());
                return Err(ExprError::new(syntax("a token"), i..end));
            }
        };
        after_operand = code.is_ascii_lowercase() || code == b')';
        codes.push(code);
        // Both fit: lex() refuses text longer than MAX_ASSERTION_LEN (< 2^32) first.
        spans.push((start as u32, i as u32));
    }
    Ok(LexRun {
        // Every code is ASCII.
        codes: String::from_utf8(codes).unwrap_or_default(),
        spans,
        end: i,
        depth,
        max_depth,
        after_operand,
    })
}

/// The first lexer, kept as the oracle that [`lex_run`] is tested against (`lex_tests`): a
/// plain byte-at-a-time reading of the token rules, with the same contract.
#[cfg(test)]
fn lex_run_reference(src: &str, mode: Mode, range: Range<usize>) -> Result<LexRun> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let capacity = (range.end - range.start) / 3;
    let mut codes = String::with_capacity(capacity);
    let mut spans = Vec::with_capacity(capacity);
    let mut i = range.start;
    let mut after_operand = false;
    while let Some(&c) = b.get(i) {
        if i >= range.end {
            break;
        }
        let start = i;
        let code = match c {
            b' ' | b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => {
                while b.get(i).is_some_and(|c| *c != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => {
                            return Err(ExprError::new(syntax("closing quote"), start..src.len()));
                        }
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                's'
            }
            b'0'..=b'9' => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if mode == Mode::Principals && b.get(i..i + 3) == Some(b"-of") {
                    i += 3;
                    '#'
                } else if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while b.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                    'd'
                } else {
                    'i'
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while b.get(i).is_some_and(|c| is_ident(*c)) {
                    i += 1;
                }
                let word = src.get(start..i).unwrap_or("");
                match mode {
                    Mode::Conditions if word.eq_ignore_ascii_case("true") => 't',
                    Mode::Conditions if word.eq_ignore_ascii_case("false") => 'f',
                    _ => 'n',
                }
            }
            _ => {
                let two = b.get(i..i + 2).unwrap_or(&[]);
                let (code, len) = match two {
                    b"||" => ('O', 2),
                    b"&&" => ('A', 2),
                    b"==" => ('E', 2),
                    b"!=" => ('N', 2),
                    b"<=" => ('P', 2),
                    b">=" => ('H', 2),
                    b"~=" => ('X', 2),
                    b"->" => ('>', 2),
                    _ => match c {
                        b'<' => ('L', 1),
                        b'>' => ('G', 1),
                        b'+' => ('S', 1),
                        // Binary minus after an operand, unary minus anywhere else: the
                        // grammar can then match every prefix with one character range.
                        b'-' if after_operand => ('M', 1),
                        b'-' => ('%', 1),
                        b'.' => ('C', 1),
                        b'*' => ('T', 1),
                        b'/' => ('D', 1),
                        b'%' => ('R', 1),
                        b'^' => ('W', 1),
                        b'!' => ('!', 1),
                        b'@' => ('"', 1),
                        b'&' => ('&', 1),
                        b'$' => ('$', 1),
                        b'(' | b'{' => {
                            depth += 1;
                            if depth > MAX_NESTING {
                                return Err(ExprError::new(ExprErrorKind::TooDeep, i..i + 1));
                            }
                            max_depth = max_depth.max(depth);
                            (c as char, 1)
                        }
                        b')' | b'}' => {
                            depth = depth.saturating_sub(1);
                            (c as char, 1)
                        }
                        b';' => (';', 1),
                        b',' => (',', 1),
                        _ => {
                            let end = src
                                .get(i..)
                                .and_then(|r| r.chars().next())
                                .map_or(i + 1, |ch| i + ch.len_utf8());
                            return Err(ExprError::new(syntax("a token"), i..end));
                        }
                    },
                };
                i += len;
                code
            }
        };
        after_operand = code.is_ascii_lowercase() || code == ')';
        codes.push(code);
        // Both fit: lex() refuses text longer than MAX_ASSERTION_LEN (< 2^32) first.
        spans.push((start as u32, i as u32));
    }
    Ok(LexRun {
        codes,
        spans,
        end: i,
        depth,
        max_depth,
        after_operand,
    })
}

/// Text shorter than this (bytes) is lexed on one thread.
const PARALLEL_LEX_MIN_LEN: usize = 32 * 1024;

/// About this many bytes make one piece when lexing is shared between threads: small enough
/// that a helper that starts late still finds pieces left (see [`crate::par`]), large enough
/// that handing one out costs nothing next to lexing it (~0.1 ms).
const LEX_PIECE_LEN: usize = 16 * 1024;

/// [`lex`] on up to `threads` threads for long text (see [`lex_pieces`]).
fn lex_parallel(src: &str, mode: Mode, threads: usize) -> Result<Cx<'_>> {
    if threads < 2 || src.len() < PARALLEL_LEX_MIN_LEN {
        return lex(src, mode);
    }
    lex_pieces(src, mode, src.len().div_ceil(LEX_PIECE_LEN), threads)
}

/// [`lex`] in `pieces` stretches shared between `threads` threads: each stretch from the first
/// line start at or after its share of the text. The stretches are joined only when each
/// lexer before a stretch reached its start as a token boundary of its own (not inside a
/// string or a comment), the brackets stay within [`MAX_NESTING`] counted from the depth
/// before each stretch (an upper bound: a stretch lexed on its own cannot close brackets it
/// did not open), and a `-` opening a stretch gets the code the token before it calls for;
/// otherwise, or on any error, the text is lexed again on one thread, so tokens and errors are
/// [`lex`]'s.
fn lex_pieces(src: &str, mode: Mode, pieces: usize, threads: usize) -> Result<Cx<'_>> {
    if src.len() > MAX_ASSERTION_LEN {
        return lex(src, mode);
    }
    match joined_pieces(src, mode, pieces, threads) {
        Some(cx) => Ok(cx),
        None => lex(src, mode),
    }
}

/// The pieces of [`lex_pieces`] lexed and joined; `None` where they cannot be joined (or one
/// of them has an error), and the text is to be lexed on one thread.
fn joined_pieces(src: &str, mode: Mode, pieces: usize, threads: usize) -> Option<Cx<'_>> {
    let b = src.as_bytes();
    let mut starts = vec![0];
    for k in 1..pieces {
        // No overflow: the text is at most MAX_ASSERTION_LEN (4 MiB) long.
        let at = src.len() * k / pieces;
        let line = b
            .get(at..)
            .and_then(|rest| rest.iter().position(|c| *c == b'\n'))
            .map(|p| at + p + 1);
        if let Some(line) = line.filter(|l| *l < src.len() && starts.last() < Some(l)) {
            starts.push(line);
        }
    }
    if starts.len() < 2 {
        return None;
    }
    let ends = starts.iter().skip(1).copied().chain([src.len()]);
    let stretches: Vec<Range<usize>> = starts
        .iter()
        .copied()
        .zip(ends)
        .map(|(a, e)| a..e)
        .collect();
    let runs = crate::par::share(&stretches, threads, |r| lex_run(src, mode, r.clone()));
    let mut runs = runs.into_iter().zip(&stretches);
    let mut all = runs.next()?.0.ok()?;
    // Upper bound on the one-lexer bracket depth where `all` ends.
    let mut depth = all.depth;
    for (run, stretch) in runs {
        let mut run = run.ok()?;
        if all.end != stretch.start || depth + run.max_depth > MAX_NESTING {
            return None;
        }
        // A `-` opening the stretch: binary after an operand, as one lexer would have coded it.
        if run.codes.starts_with(['M', '%']) && all.after_operand {
            run.codes.replace_range(..1, "M");
        }
        depth += run.depth;
        all.end = run.end;
        if !run.codes.is_empty() {
            all.after_operand = run.after_operand;
        }
        all.codes.push_str(&run.codes);
        all.spans.extend_from_slice(&run.spans);
    }
    Some(Cx {
        src,
        codes: all.codes,
        spans: all.spans,
    })
}

fn run_tokens<'c>(rule: T, cx: &'c Cx<'_>) -> Result<Pair<'c, T>> {
    match TokenParser::parse(rule, &cx.codes) {
        Ok(mut pairs) => pairs
            .next()
            .ok_or_else(|| ExprError::new(syntax("input"), 0..cx.src.len())),
        Err(e) => {
            use pest::error::{ErrorVariant, InputLocation};
            let pos = match e.location {
                InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
            };
            let kind = match &e.variant {
                ErrorVariant::ParsingError { positives, .. } => {
                    let names: Vec<String> = positives.iter().map(|r| format!("{r:?}")).collect();
                    syntax(&names.join(", "))
                }
                ErrorVariant::CustomError { message } => {
                    if message.contains("call limit") || message.contains("stack limit") {
                        ExprErrorKind::TooComplex
                    } else {
                        syntax(message)
                    }
                }
            };
            let at = cx.spans.get(pos).map_or(cx.src.len(), |r| r.0 as usize);
            let end = cx.spans.get(pos).map_or(cx.src.len(), |r| r.1 as usize);
            Err(ExprError::new(kind, at..end.max(at)))
        }
    }
}

// ------------------------------------------------------------------ public entry points

/// Parse a Conditions field value (RFC 2704 4.6.5). Empty text gives no clauses.
///
/// Nearly every text is read in one pass by `direct` (tokens cut as the climber needs them);
/// where that gives up, on errors above all, the text is lexed into a token stream, which is
/// first read by [`shape_fast`], a hand-written recognizer of exactly the
/// `conditions` rule of tokens.pest (which is LL(1) over token codes, so a recognizer needs no
/// backtracking); whenever it does not accept the stream, pest parses it, so every syntax
/// error comes from pest. Either way the same conversion builds the AST; `pest_only` and the
/// differential tests (tests/fast_path.rs) hold the two recognizers to the same answers.
pub fn parse_conditions(src: &str) -> Result<Conditions> {
    if let Some(c) = direct::parse_conditions(src) {
        return Ok(c);
    }
    let cx = lex(src, Mode::Conditions)?;
    let shape = match shape_fast(cx.codes.as_bytes()) {
        Some(s) => s,
        None => shape_pest(&cx)?,
    };
    build_conditions(&shape, &cx)
}

/// Conditions of fewer tokens than this are built on one thread even when more are offered:
/// starting a thread costs about as much as building 2,000 tokens' worth of AST.
pub const PARALLEL_MIN_TOKENS: usize = 8 * 1024;

/// Most threads one Conditions field is built on.
pub const MAX_PARSE_THREADS: usize = 8;

/// [`parse_conditions`] with the AST built on up to `threads` threads. The text is lexed and
/// its clause structure recognized once, as always; then the clauses are built in runs of about
/// equal size side by side, or, for a program of one long clause, the operands of its top-level
/// `||` chain are. Building is independent per clause (and per operand), the pieces are joined
/// in order, and the first error in text order is the one reported, so the result, AST or error,
/// is exactly the one-thread parse (tests/fast_path.rs holds the two equal).
pub fn parse_conditions_parallel(src: &str, threads: usize) -> Result<Conditions> {
    let threads = threads.clamp(1, MAX_PARSE_THREADS);
    if threads == 1 || src.len() < PARALLEL_LEX_MIN_LEN {
        return parse_conditions(src);
    }
    let cx = lex_parallel(src, Mode::Conditions, threads)?;
    let shape = match shape_fast(cx.codes.as_bytes()) {
        Some(s) => s,
        None => shape_pest(&cx)?,
    };
    if threads == 1 || cx.codes.len() < PARALLEL_MIN_TOKENS {
        return build_conditions(&shape, &cx);
    }
    if let [only] = shape.as_slice() {
        return Ok(Conditions {
            clauses: vec![build_clause_parallel(only, &cx, threads)?],
        });
    }
    // Runs of whole clauses of about BUILD_RUN_TOKENS tokens each, handed out one at a time.
    let mut runs: Vec<&[ClauseShape]> = Vec::new();
    let mut rest = shape.as_slice();
    while !rest.is_empty() {
        let start = rest.first().map_or(0, |c| c.span.start);
        let n = rest
            .iter()
            .position(|c| c.span.end - start >= BUILD_RUN_TOKENS)
            .map_or(rest.len(), |i| i + 1);
        let (run, tail) = rest.split_at(n);
        runs.push(run);
        rest = tail;
    }
    let built = crate::par::share(&runs, threads, |run| build_conditions(run, &cx));
    let mut clauses = Vec::with_capacity(shape.len());
    for run in built {
        clauses.extend(run?.clauses);
    }
    Ok(Conditions { clauses })
}

/// About this many tokens make one piece of AST building when it is shared between threads
/// (see [`LEX_PIECE_LEN`] for the trade-off): ~0.2 ms of building.
const BUILD_RUN_TOKENS: usize = 2048;

/// [`build_clause`] for a clause whose test is a long top-level `||` chain: its operands are
/// built in groups on `threads` threads and joined left to right with the same [`combine`] as
/// [`Walk::climb`] uses, in the same order, so the AST and the first error are the same.
fn build_clause_parallel(c: &ClauseShape, cx: &Cx<'_>, threads: usize) -> Result<Clause> {
    let codes = cx.codes.as_bytes();
    // Operands of the top-level `||` chain: token ranges between depth-0 `O` codes.
    let mut operands = Vec::new();
    let (mut depth, mut from) = (0usize, c.test.start);
    for i in c.test.clone() {
        match codes.get(i) {
            Some(b'(') => depth += 1,
            Some(b')') => depth = depth.saturating_sub(1),
            Some(b'O') if depth == 0 => {
                operands.push(from..i);
                from = i + 1;
            }
            _ => {}
        }
    }
    operands.push(from..c.test.end);
    if operands.len() < threads * 2 {
        return build_clause(c, cx);
    }
    // Groups of operands of about BUILD_RUN_TOKENS tokens each.
    let per_group = (BUILD_RUN_TOKENS * operands.len()).div_ceil(c.test.len().max(1));
    let groups: Vec<&[Range<usize>]> = operands.chunks(per_group.max(1)).collect();
    let built = crate::par::share(&groups, threads, |group| {
        group
            .iter()
            .map(|r| {
                let mut w = Walk::new(CxTokens::at(cx, r.start));
                // As the chain's own loop does: above `||` strength, so the climb stops at
                // the next depth-0 `||` (the first operand comes out the same as under
                // `climb(0)`, whose loop only differs in also taking `||`).
                let v = w.climb(OR_OPERAND)?;
                Ok((v, w.s.pos, r.end))
            })
            .collect::<Result<Vec<_>>>()
    });
    // Join as Walk::climb(0) does: the first operand, then `combine(Or, lhs, rhs)` for each
    // next one, the combination checked right after its right operand was built.
    let mut w = Walk::new(CxTokens::at(cx, c.test.start));
    let mut lhs: Option<Val> = None;
    for group in built {
        for (v, end, operand_end) in group? {
            w.s.pos = end;
            // What `combine(Or, ..)` builds, with room for the whole chain at once rather
            // than growing a 10,000-operand vector by copying.
            lhs = Some(match (lhs, v) {
                (None, Val::Bool(Test::Or(mut terms))) => {
                    terms.reserve(operands.len());
                    Val::Bool(Test::Or(terms))
                }
                (None, v) => v,
                (Some(Val::Bool(a)), Val::Bool(b)) if !matches!(a, Test::Or(_)) => {
                    let mut terms = Vec::with_capacity(operands.len());
                    terms.push(a);
                    terms.push(b);
                    Val::Bool(Test::Or(terms))
                }
                (Some(l), v) => combine(Op::Or, l, v, &w, c.test.start)?,
            });
            // Where climb(0) would have stopped short of the next `||` (or the end).
            if end != operand_end {
                return Err(w.error(syntax("operator"), w.s.pos));
            }
        }
    }
    match lhs {
        Some(test) => clause_of(test, c, cx),
        None => build_clause(c, cx),
    }
}

/// Parse a Licensees field value (RFC 2704 4.6.4); `None` when it is empty.
///
/// Flat lists of string literals and `K-of` over string literals (nearly every credential)
/// are built directly from the token codes; anything else goes through pest (see
/// [`parse_conditions`] for how the two are kept equal).
pub fn parse_licensees(src: &str) -> Result<Option<Licensees>> {
    if let Some(text) = single_literal(src) {
        return Ok(Some(Licensees::Principal(StrExpr::Lit(Text::new(text)))));
    }
    let cx = lex(src, Mode::Principals)?;
    if let Some(r) = licensees_fast(&cx) {
        return r;
    }
    licensees_pest(&cx)
}

/// Parse a string expression standing alone (the Authorizer field, RFC 2704 4.6.3).
pub fn parse_str_expr(src: &str) -> Result<StrExpr> {
    if let Some(text) = single_literal(src) {
        return Ok(StrExpr::Lit(Text::new(text)));
    }
    let cx = lex(src, Mode::Principals)?;
    if cx.codes == "s" {
        // `authorizer = { SOI ~ str_expr ~ EOI }` on one string token: a literal.
        return Ok(StrExpr::Lit(unescape(cx.text(0))));
    }
    str_expr_pest(&cx)
}

/// The text of a field that is one string literal with nothing to decode (`"P0002"`: nearly
/// every Authorizer and Licensees field): what lexing it would give as its one `s` token,
/// without building a token stream. A 1,000-credential query parses 2,000 of them (~1,000
/// instructions each through the lexer). Anything else, comments and escapes included, is
/// lexed as before.
fn single_literal(src: &str) -> Option<&str> {
    if src.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let inner = src
        .trim_matches([' ', '\t', '\n'])
        .strip_prefix('"')?
        .strip_suffix('"')?;
    (!inner.contains(['"', '\\'])).then_some(inner)
}

/// The one-pass Conditions reader alone: `None` where it gives up and [`parse_conditions`]
/// takes the token-stream path. Public only so that the differential tests can check that it
/// gives up exactly where pest alone finds an error (or the text nests deeper than
/// [`DIRECT_MAX_NESTING`]).
#[doc(hidden)]
pub fn direct_conditions(src: &str) -> Option<Conditions> {
    direct::parse_conditions(src)
}

#[doc(hidden)]
pub use direct::DIRECT_MAX_NESTING;

/// The parsers of this module without their fast paths: pest reads every token stream.
/// Public only so that the differential tests can compare the two.
#[doc(hidden)]
pub mod pest_only {
    use super::*;

    /// [`super::parse_conditions`] through pest alone.
    pub fn parse_conditions(src: &str) -> Result<Conditions> {
        let cx = lex(src, Mode::Conditions)?;
        let shape = shape_pest(&cx)?;
        build_conditions(&shape, &cx)
    }

    /// [`super::parse_licensees`] through pest alone.
    pub fn parse_licensees(src: &str) -> Result<Option<Licensees>> {
        licensees_pest(&lex(src, Mode::Principals)?)
    }

    /// [`super::parse_str_expr`] through pest alone.
    pub fn parse_str_expr(src: &str) -> Result<StrExpr> {
        str_expr_pest(&lex(src, Mode::Principals)?)
    }

    /// [`super::parse_env_assignments`] through pest alone.
    pub fn parse_env_assignments(src: &str) -> Result<EnvList> {
        env_pest(src)
    }

    /// [`super::parse_version`] through pest alone.
    pub fn parse_version(src: &str) -> Result<String> {
        version_pest(src)
    }
}

fn licensees_pest(cx: &Cx<'_>) -> Result<Option<Licensees>> {
    let top = run_tokens(T::licensees, cx)?;
    match top.into_inner().find(|p| p.as_rule() == T::lic_or) {
        Some(p) => lic_or(p, cx).map(Some),
        None => Ok(None),
    }
}

fn str_expr_pest(cx: &Cx<'_>) -> Result<StrExpr> {
    let top = run_tokens(T::authorizer, cx)?;
    let inner = tfirst(top, cx)?;
    str_expr(inner, cx)
}

// ------------------------------------------------------------------ clause structure

/// The clause structure of a Conditions token stream, as token-code ranges: what the
/// `conditions`, `clause` and `block` rules of tokens.pest find. Expressions inside are
/// read by [`Walk`] in both paths.
#[derive(Debug, PartialEq, Eq)]
struct ClauseShape {
    test: Range<usize>,
    value: ValueShape,
    /// The whole clause, for error spans.
    span: Range<usize>,
}

#[derive(Debug, PartialEq, Eq)]
enum ValueShape {
    Max,
    Expr(Range<usize>),
    Block(Vec<ClauseShape>),
}

fn shape_pest(cx: &Cx<'_>) -> Result<Vec<ClauseShape>> {
    let top = run_tokens(T::conditions, cx)?;
    let mut clauses = Vec::new();
    for p in top.into_inner() {
        if p.as_rule() == T::clause {
            clauses.push(clause_shape(p, cx)?);
        }
    }
    Ok(clauses)
}

fn range_of(p: &Pair<'_, T>) -> Range<usize> {
    let s = p.as_span();
    s.start()..s.end()
}

fn clause_shape(pair: Pair<'_, T>, cx: &Cx<'_>) -> Result<ClauseShape> {
    let span = range_of(&pair);
    let whole = pair.clone();
    let mut it = pair.into_inner();
    let t = it.next().ok_or_else(|| cx.err(syntax("test"), &whole))?;
    let value = match it.next() {
        None => ValueShape::Max,
        Some(p) if p.as_rule() == T::block => {
            let mut clauses = Vec::new();
            for c in p.into_inner() {
                clauses.push(clause_shape(c, cx)?);
            }
            ValueShape::Block(clauses)
        }
        Some(p) => ValueShape::Expr(range_of(&p)),
    };
    Ok(ClauseShape {
        test: range_of(&t),
        value,
        span,
    })
}

/// A recognizer for the `conditions` rule of tokens.pest over token codes; `None` when the
/// stream does not match (pest then reports why). Recursion is once per bracket level, which
/// [`precheck`] has bounded by [`MAX_NESTING`].
fn shape_fast(codes: &[u8]) -> Option<Vec<ClauseShape>> {
    let mut s = Scan { c: codes, pos: 0 };
    // Every clause ends in `;`: room for all of them at once, instead of a growing vector
    // copied into fresh memory at each doubling (3,331 clauses: twelve copies).
    let ends = codes.iter().filter(|c| **c == b';').count();
    let clauses = s.clauses(None, ends)?;
    (s.pos == codes.len()).then_some(clauses)
}

struct Scan<'a> {
    c: &'a [u8],
    pos: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.c.get(self.pos).copied()
    }

    fn eat(&mut self, code: u8) -> Option<()> {
        (self.peek() == Some(code)).then(|| self.pos += 1)
    }

    /// `clause*` followed by `close` (`}` of a block) or the end of the stream; `room` clauses
    /// are reserved.
    fn clauses(&mut self, close: Option<u8>, room: usize) -> Option<Vec<ClauseShape>> {
        let mut out = Vec::with_capacity(room);
        loop {
            match (self.peek(), close) {
                (None, None) => return Some(out),
                (Some(c), Some(want)) if c == want => {
                    self.pos += 1;
                    return Some(out);
                }
                (None, Some(_)) => return None,
                _ => out.push(self.clause()?),
            }
        }
    }

    /// `clause = { expr ~ (">" ~ (block | expr))? ~ ";" }`
    fn clause(&mut self) -> Option<ClauseShape> {
        let start = self.pos;
        let test = self.expr()?;
        let value = if self.eat(b'>').is_some() {
            if self.eat(b'{').is_some() {
                ValueShape::Block(self.clauses(Some(b'}'), 0)?)
            } else {
                ValueShape::Expr(self.expr()?)
            }
        } else {
            ValueShape::Max
        };
        self.eat(b';')?;
        Some(ClauseShape {
            test,
            value,
            span: start..self.pos,
        })
    }

    /// `expr_body = _{ operand ~ (infix ~ operand)* }`, infix `'A'..'Z'`.
    fn expr(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        self.operand()?;
        while self.peek().is_some_and(|c| c.is_ascii_uppercase()) {
            self.pos += 1;
            self.operand()?;
        }
        Some(start..self.pos)
    }

    /// `operand = _{ prefix* ~ (leaf | paren) }`, prefix `'!'..'&'`, leaf `'a'..'z'`.
    fn operand(&mut self) -> Option<()> {
        while self.peek().is_some_and(|c| (b'!'..=b'&').contains(&c)) {
            self.pos += 1;
        }
        match self.peek()? {
            c if c.is_ascii_lowercase() => {
                self.pos += 1;
                Some(())
            }
            b'(' => {
                self.pos += 1;
                self.expr()?;
                self.eat(b')')
            }
            _ => None,
        }
    }
}

fn build_conditions(shape: &[ClauseShape], cx: &Cx<'_>) -> Result<Conditions> {
    let mut clauses = Vec::with_capacity(shape.len());
    for c in shape {
        clauses.push(build_clause(c, cx)?);
    }
    Ok(Conditions { clauses })
}

fn build_clause(c: &ClauseShape, cx: &Cx<'_>) -> Result<Clause> {
    clause_of(expr(c.test.clone(), cx)?, c, cx)
}

/// The clause of test `test` (which must be a test) and the value of shape `c`.
fn clause_of(test: Val, c: &ClauseShape, cx: &Cx<'_>) -> Result<Clause> {
    let test = match test {
        Val::Bool(b) => b,
        _ => {
            return Err(ExprError::new(
                ExprErrorKind::Type("a clause test must be a test"),
                cx.bytes(c.test.start, c.test.end),
            ));
        }
    };
    let value = build_value(c, cx)?;
    Ok(Clause { test, value })
}

/// What a clause yields: `_MAX_TRUST`, a nested block, or a string expression.
fn build_value(c: &ClauseShape, cx: &Cx<'_>) -> Result<ClauseValue> {
    Ok(match &c.value {
        ValueShape::Max => ClauseValue::Max,
        ValueShape::Block(inner) => ClauseValue::Block(build_conditions(inner, cx)?.clauses),
        // Nearly every value is one string literal (`-> "v2"`): no climb needed for it.
        ValueShape::Expr(r) if r.len() == 1 && cx.codes.as_bytes().get(r.start) == Some(&b's') => {
            ClauseValue::Value(StrExpr::Lit(unescape(cx.text(r.start))))
        }
        ValueShape::Expr(r) => match expr(r.clone(), cx)? {
            Val::Str(s) => ClauseValue::Value(s),
            _ => {
                return Err(ExprError::new(
                    ExprErrorKind::Type("a clause value must be a string"),
                    cx.bytes(r.start, r.end),
                ));
            }
        },
    })
}

/// Licensees made only of string literals joined by `&&`/`||` (without brackets), or of
/// `K-of` lists of string literals: built from the token codes as the `lic_or`/`lic_and`
/// rules would. `None` for anything else.
fn licensees_fast(cx: &Cx<'_>) -> Option<Result<Option<Licensees>>> {
    let c = cx.codes.as_bytes();
    if c.is_empty() {
        return Some(Ok(None));
    }
    let mut ors = Vec::new();
    let mut ands = Vec::new();
    // A threshold error is reported only once the whole stream is known to be well-formed,
    // as pest's path reports syntax errors before any conversion error.
    let mut first_err = None;
    let mut i = 0;
    loop {
        let atom = match c.get(i)? {
            b's' => {
                i += 1;
                Licensees::Principal(StrExpr::Lit(unescape(cx.text(i - 1))))
            }
            b'#' => {
                let start = i;
                if c.get(i + 1) != Some(&b'(') {
                    return None;
                }
                i += 2;
                let mut principals = Vec::new();
                loop {
                    if c.get(i) != Some(&b's') {
                        return None;
                    }
                    principals.push(StrExpr::Lit(unescape(cx.text(i))));
                    i += 1;
                    match c.get(i)? {
                        b',' => i += 1,
                        b')' => break,
                        _ => return None,
                    }
                }
                i += 1;
                match k_of(cx, start, principals, cx.bytes(start, i)) {
                    Ok(l) => l,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        Licensees::And(Vec::new())
                    }
                }
            }
            _ => return None,
        };
        ands.push(atom);
        match c.get(i) {
            None => break,
            Some(b'A') => i += 1,
            Some(b'O') => {
                i += 1;
                ors.push(join(std::mem::take(&mut ands), Licensees::And)?);
            }
            Some(_) => return None,
        }
    }
    ors.push(join(ands, Licensees::And)?);
    if let Some(e) = first_err {
        return Some(Err(e));
    }
    Some(Ok(Some(join(ors, Licensees::Or)?)))
}

/// One term stays itself; several are joined by `make`.
fn join(mut terms: Vec<Licensees>, make: fn(Vec<Licensees>) -> Licensees) -> Option<Licensees> {
    if terms.len() == 1 {
        terms.pop()
    } else {
        Some(make(terms))
    }
}

/// `K-of(principals)` whose K token is at code position `k_at`; `span` is the whole list.
fn k_of(
    cx: &Cx<'_>,
    k_at: usize,
    principals: Vec<StrExpr>,
    span: Range<usize>,
) -> Result<Licensees> {
    let k_text = cx.text(k_at);
    let k: u64 = k_text.trim_end_matches("-of").parse().unwrap_or(u64::MAX);
    let n = principals.len();
    match u32::try_from(k) {
        Ok(k) if k >= 1 && (k as usize) <= n => Ok(Licensees::KOf { k, principals }),
        _ => Err(ExprError::new(ExprErrorKind::Threshold { k, n }, span)),
    }
}

/// Parse a Local-Constants field value into `(name, value)` pairs in order (RFC 2704
/// 4.6.2). Names and duplicates are checked by the caller, which knows the field's position.
pub fn parse_local_constants(src: &str) -> Result<Vec<(String, String, Range<usize>)>> {
    assignments(src, Rule::local_constants, Rule::assignment)
}

/// The `name = "value"` pairs of a `top` rule's `item` children, in order, with their spans:
/// Local-Constants fields and action-environment files share this shape.
fn assignments(src: &str, top: Rule, item: Rule) -> Result<Vec<(String, String, Range<usize>)>> {
    let top = run(top, src)?;
    let mut out = Vec::new();
    for a in top.into_inner() {
        if a.as_rule() != item {
            continue;
        }
        let span = a.as_span().start()..a.as_span().end();
        let mut it = a.into_inner();
        let (Some(n), Some(v)) = (it.next(), it.next()) else {
            return Err(ExprError::new(syntax("assignment"), span));
        };
        out.push((
            n.as_str().to_owned(),
            unescape(v.as_str()).into_string(),
            span,
        ));
    }
    Ok(out)
}

/// Parse a KeyNote-Version field value: an integer or a string; returns its text.
pub fn parse_version(src: &str) -> Result<String> {
    // `version = { SOI ~ (int | string) ~ EOI }` with WHITESPACE around: a bare run of
    // digits needs no parser.
    let t = src.trim_matches([' ', '\t', '\n']);
    if !t.is_empty() && t.len() <= MAX_ASSERTION_LEN && t.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(t.to_owned());
    }
    version_pest(src)
}

fn version_pest(src: &str) -> Result<String> {
    let top = run(Rule::version, src)?;
    for p in top.into_inner() {
        match p.as_rule() {
            Rule::int => return Ok(p.as_str().to_owned()),
            Rule::string => return Ok(unescape(p.as_str()).into_string()),
            _ => {}
        }
    }
    Err(ExprError::new(syntax("version"), 0..src.len()))
}

/// An environment file's `(name, value, span)` triples.
type EnvList = Vec<(String, String, Range<usize>)>;

/// Parse an action-environment file of the reference CLI: `(name, value, span)` triples.
///
/// Files of plain `name = "value"` lines (all real ones) are read by [`env_fast`]; anything
/// it does not accept is parsed by pest, which reports the error. Public only for the
/// differential tests.
#[doc(hidden)]
pub fn parse_env_assignments(src: &str) -> Result<EnvList> {
    match env_fast(src) {
        Some(list) => Ok(list),
        None => env_pest(src),
    }
}

/// A recognizer for the `env_file` rule of keynote.pest (`env_assignment+` with WHITESPACE
/// and COMMENT skipped between tokens); `None` when the text does not match it. Valid files
/// have no brackets outside strings and comments, so [`precheck`] cannot object to them.
fn env_fast(src: &str) -> Option<EnvList> {
    if src.len() > MAX_ASSERTION_LEN {
        return None;
    }
    let b = src.as_bytes();
    let skip = |mut i: usize| -> usize {
        loop {
            match b.get(i) {
                Some(b' ' | b'\t' | b'\n') => i += 1,
                Some(b'#') => {
                    while b.get(i).is_some_and(|c| *c != b'\n') {
                        i += 1;
                    }
                }
                _ => return i,
            }
        }
    };
    let mut out = Vec::new();
    let mut i = skip(0);
    loop {
        // env_name = @{ ASCII_ALPHANUMERIC ~ (ASCII_ALPHANUMERIC | "_")* }
        let start = i;
        if !b.get(i)?.is_ascii_alphanumeric() {
            return None;
        }
        while b.get(i).is_some_and(|c| is_ident(*c)) {
            i += 1;
        }
        let name_end = i;
        i = skip(i);
        if b.get(i) != Some(&b'=') {
            return None;
        }
        i = skip(i + 1);
        // string = @{ "\"" ~ (("\\" ~ ANY) | (!("\"" | "\\") ~ ANY))* ~ "\"" }
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let value_start = i;
        i += 1;
        loop {
            match b.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        i += 1;
        out.push((
            src.get(start..name_end)?.to_owned(),
            unescape(src.get(value_start..i)?).into_string(),
            start..i,
        ));
        i = skip(i);
        if i >= b.len() {
            return Some(out);
        }
    }
}

fn env_pest(src: &str) -> Result<EnvList> {
    assignments(src, Rule::env_file, Rule::env_assignment)
}

// ------------------------------------------------------------------ conversion helpers

fn tfirst<'c>(pair: Pair<'c, T>, cx: &Cx<'_>) -> Result<Pair<'c, T>> {
    let whole = pair.clone();
    pair.into_inner()
        .next()
        .ok_or_else(|| cx.err(syntax("expression"), &whole))
}

/// A typed expression, while it is being built.
///
/// Aligned to 16 bytes so that every move of one (each return from [`Walk::climb`]) is
/// whole 16-byte chunks: at its natural 8-byte alignment the compiler copies the 72-byte value
/// with an overlapping tail store, and the caller's next 16-byte load straddles two stores and
/// cannot be forwarded from them, a stall after every return (perf annotate: the two loads
/// after the recursive call held ~30% of `climb`'s samples). 5% off a 3,331-clause policy's
/// whole run (keynote/README.md, session 4).
#[repr(align(16))]
enum Val {
    Bool(Test),
    Str(StrExpr),
    Int(IntExpr),
    Float(FloatExpr),
}

/// An operand's prefix operators (`@ & $ -`, token code and position), innermost last.
type Prefixes = smallvec::SmallVec<[(u8, usize); 4]>;

/// Binary operators of the Conditions language, with their binding power.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Or,
    And,
    Cmp(Option<CmpOp>),
    Concat,
    Arith(ArithOp),
}

impl Op {
    /// The operator of an infix token code (see tokens.pest).
    fn from_code(c: u8) -> Op {
        match c {
            b'O' => Op::Or,
            b'A' => Op::And,
            b'E' => Op::Cmp(Some(CmpOp::Eq)),
            b'N' => Op::Cmp(Some(CmpOp::Ne)),
            b'L' => Op::Cmp(Some(CmpOp::Lt)),
            b'P' => Op::Cmp(Some(CmpOp::Le)),
            b'G' => Op::Cmp(Some(CmpOp::Gt)),
            b'H' => Op::Cmp(Some(CmpOp::Ge)),
            b'X' => Op::Cmp(None),
            b'C' => Op::Concat,
            b'S' => Op::Arith(ArithOp::Add),
            b'M' => Op::Arith(ArithOp::Sub),
            b'T' => Op::Arith(ArithOp::Mul),
            b'D' => Op::Arith(ArithOp::Div),
            b'R' => Op::Arith(ArithOp::Rem),
            _ => Op::Arith(ArithOp::Pow),
        }
    }

    /// Binding power: `||` 1, `&&` 2, (`!` 3), comparisons 4, `+ - .` 5, `* / %` 6, `^` 7.
    fn power(self) -> u8 {
        match self {
            Op::Or => 1,
            Op::And => 2,
            Op::Cmp(_) => NOT_OPERAND,
            Op::Concat => 5,
            Op::Arith(a) => arith_level(a),
        }
    }
}

/// The right operand of `||` binds at least as tightly as `&&`.
const OR_OPERAND: u8 = 2;

/// `!` applies to a whole comparison: its operand is parsed at comparison strength.
const NOT_OPERAND: u8 = 4;

fn arith_level(a: ArithOp) -> u8 {
    match a {
        ArithOp::Add | ArithOp::Sub => 5,
        ArithOp::Mul | ArithOp::Div | ArithOp::Rem => 6,
        ArithOp::Pow => 7,
    }
}

/// Where a [`Walk`] reads its tokens: a lexed stream ([`CxTokens`]) or the text itself
/// (`direct`). Positions are whatever the source counts in (token indices, byte offsets); only
/// errors use them.
trait Tokens<'s> {
    /// The code of the next token (see tokens.pest); `None` at the end.
    fn peek(&self) -> Option<u8>;
    /// The source text of the next token.
    fn peek_text(&self) -> &'s str;
    /// Move past the next token.
    fn bump(&mut self);
    /// The position of the next token.
    fn pos(&self) -> usize;
    /// The bytes of the text from position `a` up to (not including) position `b`.
    fn bytes(&self, a: usize, b: usize) -> Range<usize>;
}

/// A lexed token stream read from a token index on.
struct CxTokens<'c, 's> {
    cx: &'c Cx<'s>,
    codes: &'c [u8],
    /// The next token.
    pos: usize,
}

impl<'c, 's> CxTokens<'c, 's> {
    fn at(cx: &'c Cx<'s>, pos: usize) -> Self {
        CxTokens {
            cx,
            codes: cx.codes.as_bytes(),
            pos,
        }
    }
}

impl<'s> Tokens<'s> for CxTokens<'_, 's> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.codes.get(self.pos).copied()
    }

    #[inline(always)]
    fn peek_text(&self) -> &'s str {
        self.cx.text(self.pos)
    }

    #[inline(always)]
    fn bump(&mut self) {
        self.pos += 1;
    }

    #[inline(always)]
    fn pos(&self) -> usize {
        self.pos
    }

    fn bytes(&self, a: usize, b: usize) -> Range<usize> {
        self.cx.bytes(a, b)
    }
}

/// Precedence climbing over the tokens of one `expr`: `operand (infix operand)*` with
/// operands `prefix* (leaf | "(" expr ")")`. Left-associative chains are built in a loop;
/// recursion goes only as deep as the number of precedence levels, the bracket nesting (which
/// the lexer bounds) and the `!` operands nested without brackets ([`MAX_NOT_NESTING`]).
struct Walk<S> {
    s: S,
    /// `!` operands open around the current token since the innermost open bracket
    /// (`!a == !b == ...` nests one per `!`), bounded by [`MAX_NOT_NESTING`].
    nots: usize,
    /// Operands open around the current token, brackets and `!` operands together, bounded by
    /// `max_levels` ([`MAX_OPERAND_NESTING`] unless the reader asks for less).
    levels: usize,
    max_levels: usize,
}

fn expr(span: Range<usize>, cx: &Cx<'_>) -> Result<Val> {
    let mut w = Walk::new(CxTokens::at(cx, span.start));
    let v = w.climb(0)?;
    if w.s.pos != span.end {
        return Err(w.error(syntax("operator"), w.s.pos));
    }
    Ok(v)
}

impl<'s, S: Tokens<'s>> Walk<S> {
    fn new(s: S) -> Self {
        Walk {
            s,
            nots: 0,
            levels: 0,
            max_levels: MAX_OPERAND_NESTING,
        }
    }

    fn error(&self, kind: ExprErrorKind, at: usize) -> ExprError {
        ExprError::new(kind, self.s.bytes(at, at + 1))
    }

    fn ty(&self, msg: &'static str, a: usize, b: usize) -> ExprError {
        ExprError::new(ExprErrorKind::Type(msg), self.s.bytes(a, b))
    }

    fn climb(&mut self, min: u8) -> Result<Val> {
        let start = self.s.pos();
        let lhs = self.operand_or_leaf()?;
        self.climb_from(lhs, start, min)
    }

    /// [`Walk::operand`], with its most common cases first: a plain leaf (`app_domain`, `"x"`,
    /// `2`) is the operand whatever follows, with no prefix or bracket to look for, and so is
    /// one prefix on a name or string literal (`@n`). Both are built in the caller's frame:
    /// an 80-byte `Val` returned from a call is written to memory a field at a time and read
    /// back in 16-byte pieces, loads the processor cannot serve from its store buffer (perf
    /// annotate: the load after such a return held a tenth of a policy's parse).
    #[inline(always)]
    fn operand_or_leaf(&mut self) -> Result<Val> {
        match self.s.peek() {
            Some(c) if c.is_ascii_lowercase() => {
                let at = self.s.pos();
                let text = self.s.peek_text();
                self.s.bump();
                self.leaf(c, text, at)
            }
            // A string-to-number conversion or a `$` of a name or literal (`@n`, `&t`,
            // `$a`): built here, not returned from `operand` through memory.
            Some(p @ (b'"' | b'&' | b'$')) => {
                let at = self.s.pos();
                self.s.bump();
                let Some(c @ (b'n' | b's')) = self.s.peek() else {
                    return self.prefixed(at, smallvec::smallvec![(p, at)]);
                };
                let text = self.s.peek_text();
                self.s.bump();
                Ok(string_prefix(p, string_leaf(c, text)))
            }
            _ => self.operand(),
        }
    }

    /// The binding power of the infix operator at the next token, if there is one there.
    #[inline(always)]
    fn next_power(&self) -> Option<(Op, u8)> {
        let c = self.s.peek()?;
        if !c.is_ascii_uppercase() {
            return None;
        }
        let op = Op::from_code(c);
        Some((op, op.power()))
    }

    /// Go on with `lhs` (the operand that began at position `start`) as [`Walk::climb`] does.
    ///
    /// The right operand of each operator is `climb(power + 1)`. When no tighter operator
    /// follows that operand (`a == "x"`, `@n > 2`: most of them), that climb would return
    /// the operand as it is, so it is taken without the recursive call and the move of its
    /// result. With [`Walk::operand_or_leaf`], 3.3% of a 3,331-clause policy's instructions
    /// (13.08M -> 12.65M, whole process) and 4.7% of a 10,000-term `||`'s (37.11M -> 35.38M).
    fn climb_from(&mut self, lhs: Val, start: usize, min: u8) -> Result<Val> {
        self.climb_loop(lhs, start, min)
    }

    /// The loop of [`Walk::climb_from`], inlined into callers that are not themselves part of
    /// the recursion (a clause's test), where the result then stays in the caller's frame.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn climb_loop(&mut self, mut lhs: Val, start: usize, min: u8) -> Result<Val> {
        while let Some((op, power)) = self.next_power() {
            if power < min {
                break;
            }
            self.s.bump();
            // Left-associative: the right operand binds strictly tighter.
            let right = self.s.pos();
            let mut rhs = self.operand_or_leaf()?;
            if self.next_power().is_some_and(|(_, p)| p > power) {
                rhs = self.climb_from(rhs, right, power + 1)?;
            }
            lhs = combine(op, lhs, rhs, self, start)?;
        }
        Ok(lhs)
    }

    fn operand(&mut self) -> Result<Val> {
        let start = self.s.pos();
        let mut nots = 0u32;
        while self.s.peek() == Some(b'!') {
            nots = nots.saturating_add(1);
            self.s.bump();
        }
        if nots > 0 {
            if self.nots >= MAX_NOT_NESTING || self.levels >= self.max_levels {
                return Err(self.error(ExprErrorKind::TooDeep, start));
            }
            self.nots += 1;
            self.levels += 1;
            let inner = self.climb(NOT_OPERAND);
            self.nots -= 1;
            self.levels -= 1;
            return match inner? {
                Val::Bool(Test::Not { times, inner }) => Ok(Val::Bool(Test::Not {
                    times: times.saturating_add(nots),
                    inner,
                })),
                Val::Bool(t) => Ok(Val::Bool(Test::Not {
                    times: nots,
                    inner: Box::new(t),
                })),
                _ => Err(self.ty("`!` applies to tests", start, self.s.pos())),
            };
        }
        if self.s.peek() == Some(b'(') {
            // No prefix: the bracket's value is the operand, returned where it was built.
            return self.bracket();
        }
        self.prefixed(start, Prefixes::new())
    }

    /// An operand after `!`s: prefixes (those in `prefixes`, code and position, are taken
    /// already), then a leaf or a bracket; the operand began at `start`.
    fn prefixed(&mut self, start: usize, mut prefixes: Prefixes) -> Result<Val> {
        // Innermost last; nearly always none or one.
        while let Some(p @ (b'"' | b'&' | b'$' | b'%')) = self.s.peek() {
            prefixes.push((p, self.s.pos()));
            self.s.bump();
        }
        let atom_at = self.s.pos();
        let mut v = match self.s.peek() {
            Some(b'(') => self.bracket()?,
            Some(b'!') => {
                let end = self.s.pos() + 1;
                return Err(self.ty("`!` applies to tests", start, end));
            }
            Some(c) => {
                let text = self.s.peek_text();
                self.s.bump();
                self.leaf(c, text, atom_at)?
            }
            None => return Err(self.error(syntax("operand"), self.s.pos())),
        };
        for &(p, at) in prefixes.iter().rev() {
            v = match (p, v) {
                (b'$' | b'"' | b'&', Val::Str(s)) => string_prefix(p, s),
                (b'%', Val::Int(e)) => Val::Int(negate(e)),
                (b'%', Val::Float(e)) => Val::Float(negate(e)),
                (b'%', _) => return Err(self.ty("`-` applies to numbers", at, self.s.pos())),
                _ => return Err(self.ty("`$`, `@`, `&` apply to strings", at, self.s.pos())),
            };
        }
        Ok(v)
    }

    /// `"(" expr ")"`, at the `(`. The result is passed on untouched (no `?` and rebuild), so
    /// that the optimiser can build it in the caller's slot instead of copying it out.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn bracket(&mut self) -> Result<Val> {
        if self.levels >= self.max_levels {
            return Err(self.error(ExprErrorKind::TooDeep, self.s.pos()));
        }
        self.s.bump();
        let outer_nots = std::mem::take(&mut self.nots);
        self.levels += 1;
        let v = self.climb(0);
        self.nots = outer_nots;
        self.levels -= 1;
        if v.is_ok() {
            if self.s.peek() != Some(b')') {
                return Err(self.error(syntax("`)`"), self.s.pos()));
            }
            self.s.bump();
        }
        v
    }

    /// The operand of leaf token `code` with text `text` at position `at`.
    #[inline(always)]
    fn leaf(&self, code: u8, text: &str, at: usize) -> Result<Val> {
        match code {
            b'd' => text
                .parse::<f64>()
                .map(|f| Val::Float(NumExpr::Lit(f)))
                .map_err(|_| self.error(syntax("float"), at)),
            // Out-of-range literals are kept (saturated) and rejected when evaluated: an
            // integer outside the 32-bit range of RFC 2704 4.4 is a runtime error.
            b'i' => Ok(Val::Int(NumExpr::Lit(
                text.parse::<i64>().unwrap_or(i64::MAX),
            ))),
            b's' | b'n' => Ok(Val::Str(string_leaf(code, text))),
            b't' => Ok(Val::Bool(Test::True)),
            b'f' => Ok(Val::Bool(Test::False)),
            _ => Err(self.error(syntax("operand"), at)),
        }
    }
}

/// Join `lhs op rhs` (tokens `start..w.pos`), applying the typing rules of RFC 2704 4.6.5.
/// Inlined into the climber in optimised builds, so that its 80-byte operands and result are
/// not copied through memory for each call (3,331-clause policy: 13.39M -> 13.08M
/// instructions). Not in unoptimised ones: there the inlined temporaries made each level of
/// the recursive climb so large that 256 nested brackets overflowed a test thread's 2 MiB.
#[cfg_attr(not(debug_assertions), inline(always))]
fn combine<'s, S: Tokens<'s>>(
    op: Op,
    lhs: Val,
    rhs: Val,
    w: &Walk<S>,
    start: usize,
) -> Result<Val> {
    let ty = |msg: &'static str| w.ty(msg, start, w.s.pos());
    Ok(match (op, lhs, rhs) {
        (Op::Or, Val::Bool(a), Val::Bool(b)) => Val::Bool(match a {
            Test::Or(mut v) => {
                v.push(b);
                Test::Or(v)
            }
            a => Test::Or(vec![a, b]),
        }),
        (Op::And, Val::Bool(a), Val::Bool(b)) => Val::Bool(match a {
            Test::And(mut v) => {
                v.push(b);
                Test::And(v)
            }
            a => Test::And(vec![a, b]),
        }),
        (Op::Or | Op::And, _, _) => return Err(ty("`&&`/`||` join tests")),
        (Op::Cmp(None), Val::Str(a), Val::Str(b)) => Val::Bool(Test::Regex(a, b)),
        (Op::Cmp(None), _, _) => return Err(ty("`~=` needs string operands")),
        (Op::Cmp(Some(c)), Val::Str(a), Val::Str(b)) => Val::Bool(Test::Str(a, c, b)),
        (Op::Cmp(Some(c)), Val::Int(a), Val::Int(b)) => Val::Bool(Test::Int(a, c, b)),
        (Op::Cmp(Some(CmpOp::Eq | CmpOp::Ne)), Val::Float(_), Val::Float(_)) => {
            return Err(ty(
                "floats cannot be compared for equality (RFC 2704 4.6.5)",
            ));
        }
        (Op::Cmp(Some(c)), Val::Float(a), Val::Float(b)) => Val::Bool(Test::Float(a, c, b)),
        (Op::Cmp(_), _, _) => return Err(ty("comparison of different types")),
        (Op::Concat, Val::Str(a), Val::Str(b)) => Val::Str(match a {
            StrExpr::Concat(mut v) => {
                v.push(b);
                StrExpr::Concat(v)
            }
            a => StrExpr::Concat(vec![a, b]),
        }),
        (Op::Concat, _, _) => return Err(ty("`.` joins strings")),
        (Op::Arith(ArithOp::Rem), Val::Float(_), Val::Float(_)) => {
            return Err(ty("`%` is not defined on floats"));
        }
        (Op::Arith(o), Val::Int(a), Val::Int(b)) => Val::Int(extend(a, o, b)),
        (Op::Arith(o), Val::Float(a), Val::Float(b)) => Val::Float(extend(a, o, b)),
        (Op::Arith(_), _, _) => return Err(ty("arithmetic on mixed types")),
    })
}

/// The string operand of leaf token `code` (`s` a quoted literal, otherwise `n` a name).
#[inline(always)]
fn string_leaf(code: u8, text: &str) -> StrExpr {
    if code == b's' {
        StrExpr::Lit(unescape(text))
    } else {
        StrExpr::Attr(Text::new(text))
    }
}

/// Prefix `p`, one of those that apply to strings (`$`, `@` coded `"`, `&`), applied to `s`.
#[inline(always)]
fn string_prefix(p: u8, s: StrExpr) -> Val {
    match p {
        b'$' => Val::Str(deref(1, s)),
        b'"' => Val::Int(NumExpr::Convert(Box::new(s))),
        _ => Val::Float(NumExpr::Convert(Box::new(s))),
    }
}

/// Append `op rhs` to a left-associative chain of the same precedence level.
fn extend<T>(lhs: NumExpr<T>, op: ArithOp, rhs: NumExpr<T>) -> NumExpr<T> {
    match lhs {
        NumExpr::Chain { first, mut rest }
            if rest
                .first()
                .is_some_and(|(o, _)| arith_level(*o) == arith_level(op)) =>
        {
            rest.push((op, rhs));
            NumExpr::Chain { first, rest }
        }
        lhs => NumExpr::Chain {
            first: Box::new(lhs),
            rest: vec![(op, rhs)],
        },
    }
}

fn deref(times: u32, s: StrExpr) -> StrExpr {
    match s {
        StrExpr::Deref { times: t, inner } => StrExpr::Deref {
            times: t.saturating_add(times),
            inner,
        },
        other => StrExpr::Deref {
            times,
            inner: Box::new(other),
        },
    }
}

fn negate<T>(e: NumExpr<T>) -> NumExpr<T> {
    match e {
        NumExpr::Neg { times, inner } => NumExpr::Neg {
            times: times.saturating_add(1),
            inner,
        },
        other => NumExpr::Neg {
            times: 1,
            inner: Box::new(other),
        },
    }
}

fn str_expr(pair: Pair<'_, T>, cx: &Cx<'_>) -> Result<StrExpr> {
    let whole = pair.clone();
    let mut parts = Vec::new();
    for p in pair.into_inner() {
        if p.as_rule() == T::str_unary {
            parts.push(str_unary(p, cx)?);
        }
    }
    if parts.len() == 1 {
        parts.pop().ok_or_else(|| cx.err(syntax("string"), &whole))
    } else {
        Ok(StrExpr::Concat(parts))
    }
}

fn str_unary(pair: Pair<'_, T>, cx: &Cx<'_>) -> Result<StrExpr> {
    let whole = pair.clone();
    let mut derefs = 0u32;
    let mut prim = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            T::deref => derefs = derefs.saturating_add(1),
            _ => prim = Some(p),
        }
    }
    let p = prim.ok_or_else(|| cx.err(syntax("string"), &whole))?;
    let base = match p.as_rule() {
        T::str_paren => str_expr(tfirst(p, cx)?, cx)?,
        _ => {
            let text = cx.text(p.as_span().start());
            if p.as_str() == "s" {
                StrExpr::Lit(unescape(text))
            } else {
                StrExpr::Attr(Text::new(text))
            }
        }
    };
    Ok(if derefs == 0 {
        base
    } else {
        deref(derefs, base)
    })
}

fn lic_or(pair: Pair<'_, T>, cx: &Cx<'_>) -> Result<Licensees> {
    lic_chain(pair, cx, lic_and, Licensees::Or)
}

fn lic_and(pair: Pair<'_, T>, cx: &Cx<'_>) -> Result<Licensees> {
    lic_chain(pair, cx, lic_atom, Licensees::And)
}

/// A flat `&&` or `||` chain: one term stands for itself, several are joined by `join`
/// (flat, so a 10,000-term chain needs no deep recursion).
fn lic_chain(
    pair: Pair<'_, T>,
    cx: &Cx<'_>,
    term: fn(Pair<'_, T>, &Cx<'_>) -> Result<Licensees>,
    join: fn(Vec<Licensees>) -> Licensees,
) -> Result<Licensees> {
    let whole = pair.clone();
    let mut terms = Vec::new();
    for p in pair.into_inner() {
        terms.push(term(p, cx)?);
    }
    if terms.len() == 1 {
        terms
            .pop()
            .ok_or_else(|| cx.err(syntax("principal"), &whole))
    } else {
        Ok(join(terms))
    }
}

fn lic_atom(p: Pair<'_, T>, cx: &Cx<'_>) -> Result<Licensees> {
    match p.as_rule() {
        T::lic_paren => lic_or(tfirst(p, cx)?, cx),
        T::principal => Ok(Licensees::Principal(str_expr(tfirst(p, cx)?, cx)?)),
        T::k_of => {
            let r = range_of(&p);
            let mut principals = Vec::new();
            for q in p.into_inner() {
                principals.push(str_expr(tfirst(q, cx)?, cx)?);
            }
            k_of(cx, r.start, principals, cx.bytes(r.start, r.end))
        }
        _ => Err(cx.err(syntax("principal"), &p)),
    }
}

#[cfg(test)]
mod lex_tests {
    use super::*;

    /// Everything a lexer run gives, for comparing the two lexers.
    type RunParts = (String, Vec<(u32, u32)>, usize, usize, usize, bool);

    fn run_parts(r: Result<LexRun>) -> Result<RunParts> {
        r.map(|r| {
            (
                r.codes,
                r.spans,
                r.end,
                r.depth,
                r.max_depth,
                r.after_operand,
            )
        })
    }

    /// [`lex_run`] and the reference lexer agree on `src` read up to every `end` in `ends`.
    fn lexers_agree(src: &str, ends: &[usize]) {
        for mode in [Mode::Conditions, Mode::Principals] {
            for &end in ends.iter().chain([&src.len()]) {
                let end = end.min(src.len());
                assert_eq!(
                    run_parts(lex_run(src, mode, 0..end)),
                    run_parts(lex_run_reference(src, mode, 0..end)),
                    "{src:?} up to {end}"
                );
            }
        }
    }

    #[test]
    fn table_lexer_matches_the_reference_on_hand_picked_text() {
        for src in [
            "",
            "a == \"b\" && @n > 0 -> \"v0\";",
            "  \t\n  x  ",
            "TRUE && False || true_ || falsey",
            "2-of(\"a\", \"b\") 3-o 4-", // K-of only among principals
            "1.5 1. 1.x .5 12.34.56",
            "\"esc \\\" quote\" \"unterminated \\",
            "\"ends in backslash\\",
            "# comment \" ( \n a # to the end",
            "a->b - -c -> -d",
            "| = ~ |= == != <= >= ~= < > + . * / % ^ ! @ & $ ; ,",
            "((({{{ }}})))) ) }",
            "bad\r byte",
            "caf\u{e9} == 1",
            "a ` b",
        ] {
            let ends: Vec<usize> = (0..=src.len()).collect();
            lexers_agree(src, &ends);
        }
    }

    #[test]
    fn table_lexer_matches_the_reference_on_deep_nesting() {
        let deep = "(".repeat(MAX_NESTING + 1);
        let ok = "(".repeat(MAX_NESTING);
        for src in [
            format!("{deep}a"),
            format!("{ok}a)"),
            format!("\"{deep}\" {ok}"),
        ] {
            lexers_agree(&src, &[src.len() / 2]);
        }
    }

    proptest::proptest! {
        /// Any mix of the lexer's significant bytes (and a few it refuses), read up to every end.
        #[test]
        fn table_lexer_matches_the_reference(
            src in "[ \t\n#\"\\\\0-9a-zA-Z_.|&=!<>~+*/%^@$(){};,\r`\u{e9}-]{0,64}",
        ) {
            let ends: Vec<usize> = (0..=src.len()).collect();
            lexers_agree(&src, &ends);
        }
    }

    /// `x` between two long newline-free fillers, so that the first line start after the
    /// middle (where [`lex_pieces`] splits in two) is the first one after `x`'s middle.
    fn centred(x: &str) -> String {
        let filler = "a == \"b\"; ".repeat(4000);
        format!("{filler}{x}{filler}")
    }

    fn tokens(r: Result<Cx<'_>>) -> Result<(String, Vec<(u32, u32)>)> {
        r.map(|cx| (cx.codes, cx.spans))
    }

    #[test]
    fn lexing_in_two_halves_gives_the_one_thread_tokens() {
        for x in [
            // Split at a plain line start.
            "c == \"d\" -> \"e\";\nf == \"g\";",
            // A `-` opening the second half after an operand is binary.
            "@nnnnnnnnnnnnnnnn\n- 1 > 0;",
            "(@n)))))))))))))\n- 1 > 0;",
            // ... and unary after an operator.
            "@n == 1 +++++++++\n- 1;",
            // The line break is inside a string: not a token boundary.
            "a == \"xxxxxxxxxxxxxx\nyy\";",
            // ... where the rest, read from the line start, would lex too (a comment there).
            "a == \"xxxxxxxxxxxxxxxxxxxxxxxx\nzz # \"\n;",
            // The line break ends a comment that holds a quote and a bracket.
            "# comment \" ( xxxxxxxxxxxx\nb;",
            // Nesting within bounds across the halves, and beyond them.
            &format!("{}\n{}", "(".repeat(200), "(".repeat(50)),
            &format!("{}\n{}", "(".repeat(200), "(".repeat(100)),
            // A lexical error in either half.
            "a == \"b\" ?????????????\nc;",
            "a == \"b\";;;;;;;;;;;;;;\nc ?;",
        ] {
            let src = centred(x);
            let one = tokens(lex(&src, Mode::Conditions));
            assert_eq!(
                tokens(lex_parallel(&src, Mode::Conditions, 2)),
                one,
                "{x:?}"
            );
            // Two pieces split at `x`; more pieces add line starts inside `x` (pieces
            // with no tokens, or that do not start at a token boundary) and in the filler.
            for (pieces, threads) in [(2, 2), (3, 2), (7, 3), (40, 2)] {
                let many = tokens(lex_pieces(&src, Mode::Conditions, pieces, threads));
                assert_eq!(many, one, "{x:?} in {pieces} pieces");
            }
        }
    }

    /// Many pieces over text whose line starts fall everywhere: before a `-` that continues
    /// an expression, on blank lines and comments, at depth > 0; then inside a string, where
    /// the pieces cannot be joined.
    #[test]
    fn lexing_in_many_pieces_gives_the_one_thread_tokens() {
        let lines = [
            "app_domain == \"d0\" && @n > 0 -> \"v0\";",
            "(@n",
            "- 1 > 0) -> \"v1\";",
            "",
            "a == \"b\";  # a comment with \" and (",
            "{ b == \"c\" -> { d == \"e\"; };",
            "};",
            "@n + 1",
            "-2 == 3;",
            "x == -1;",
            // Pieces of only a blank line and a comment between an operand and a `-`.
            "@n",
            "",
            "# just a comment",
            "- 1 > 0;",
        ];
        let text: String = (0..400)
            .map(|i| lines[i % lines.len()].to_owned() + "\n")
            .collect();
        let one = tokens(lex(&text, Mode::Conditions));
        assert!(one.is_ok());
        for pieces in [2, 3, 5, 17, 64, 399, 1000] {
            for threads in [1, 2, 4] {
                let joined = joined_pieces(&text, Mode::Conditions, pieces, threads)
                    .map(|cx| (cx.codes, cx.spans));
                assert_eq!(
                    joined,
                    one.clone().ok(),
                    "{pieces} pieces on {threads} threads"
                );
            }
        }
        // A string over a line start: not joined, lexed again, the same tokens.
        let split = format!("{text}a == \"two\nlines\";\n{text}");
        assert!(joined_pieces(&split, Mode::Conditions, 1000, 2).is_none());
        let one = tokens(lex(&split, Mode::Conditions));
        assert!(one.is_ok());
        assert_eq!(tokens(lex_pieces(&split, Mode::Conditions, 1000, 2)), one);
        // Brackets opened one per line, one line per piece: too deep only counted across
        // the pieces.
        let deep = "(\n".repeat(MAX_NESTING + 1);
        let one = tokens(lex(&deep, Mode::Conditions));
        assert!(one.is_err());
        assert_eq!(tokens(lex_pieces(&deep, Mode::Conditions, 1000, 2)), one);
        // An error in a late piece is the one-thread error.
        let bad = format!("{text}a ? b;\n{text}");
        let one = tokens(lex(&bad, Mode::Conditions));
        assert!(one.is_err());
        assert_eq!(tokens(lex_pieces(&bad, Mode::Conditions, 50, 2)), one);
    }

    /// The lexer's own nesting check gives exactly what running [`precheck`] first gave.
    #[test]
    fn nesting_checked_while_lexing_as_before() {
        let deep = "(".repeat(MAX_NESTING + 1);
        let ok = "(".repeat(MAX_NESTING);
        let cases = [
            format!("{deep}a"),
            format!("{ok}a"),
            format!("\"{deep}\" {ok}"),
            format!("# {deep}\n{ok}"),
            format!("a ` {deep}"),
            format!("{deep} `"),
            format!("\"unterminated {deep}"),
            format!("{ok} \"unterminated {deep}"),
            format!("{ok}){ok}"),
            format!("{}{deep}", "{".repeat(3)),
            "\"a\\\"(((\" ` ".to_owned(),
        ];
        for src in &cases {
            for mode in [Mode::Conditions, Mode::Principals] {
                let before = precheck(src).and_then(|()| lex_inner(src, mode).map(|cx| cx.codes));
                let now = lex(src, mode).map(|cx| cx.codes);
                assert_eq!(now, before, "{src:?}");
            }
        }
        assert!(matches!(
            lex(&format!("{deep}a"), Mode::Conditions),
            Err(ExprError {
                kind: ExprErrorKind::TooDeep,
                ..
            })
        ));
    }
}
