//! Conditions read in one pass over the text: tokens are cut as the climber asks for them and
//! the AST is built as they come, with no token vector and no separate clause-structure pass.
//!
//! The lexing steps ([`super::string_end`], [`super::number`], [`super::word`],
//! [`super::punct`]) and the climber ([`super::Walk`]) are the ones the token-stream path uses,
//! and the clause loop here is the `conditions`/`clause`/`block` rules of tokens.pest read
//! directly, so wherever this path succeeds it builds exactly the tree that path builds. It
//! gives up (`None`) on anything else, an error of any kind included, and on text nesting
//! deeper than [`DIRECT_MAX_NESTING`]; the caller then parses the text the old way, which
//! reports any error as the grammar finds it. tests/fast_path.rs holds it to that: `Some`
//! exactly when pest alone parses the text (unless it nests that deep), and the same tree.
//!
//! Why: a 3,331-clause policy spent most of its parse in the token vectors (9 bytes a token,
//! ~80 fresh pages), the structure pass and re-reading tokens (keynote/README.md, session 10).

use super::{CLASS, Class, Mode, Tokens, Val, Walk, number, punct, skip_while, string_end, word};
use crate::ast::{Clause, ClauseValue, Conditions, StrExpr, unescape};
use crate::limits::MAX_ASSERTION_LEN;
use std::ops::Range;

/// A code no token has: the lexer met an error, and whatever reads it fails.
const FAILED: u8 = 0;

/// Deepest nesting this path reads (brackets, blocks and `!` operands); deeper text goes to
/// the token-stream path. Here the tree is built while the text is read, so the climber
/// recurses into text before anything has checked its structure: at the full `MAX_NESTING`
/// that took more than a 2 MiB test thread's stack unoptimised (a token soup of brackets in
/// the workspace test run). Real policies nest a few levels.
pub const DIRECT_MAX_NESTING: usize = 64;

/// The Conditions text with one token looked ahead.
struct Stream<'s> {
    src: &'s str,
    /// The next token's code; `None` at the end of the text.
    next: Option<u8>,
    /// The next token's bytes.
    start: usize,
    end: usize,
    /// Whether the token before the next one was an operand (a `-` after it is binary).
    after_operand: bool,
    /// Bracket depth after the next token (deeper than [`DIRECT_MAX_NESTING`] fails).
    depth: usize,
}

impl<'s> Stream<'s> {
    fn new(src: &'s str) -> Self {
        let mut s = Stream {
            src,
            next: None,
            start: 0,
            end: 0,
            after_operand: false,
            depth: 0,
        };
        s.lex(0);
        s
    }

    /// Cut the token at or after byte `i` (blanks and comments skipped), as `lex_run` does.
    /// Inlined only in optimised builds: unoptimised, each inlined copy keeps its own stack
    /// slots, and the climber's frames grew past a 2 MiB test thread at 200 nested brackets.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn lex(&mut self, mut i: usize) {
        let b = self.src.as_bytes();
        if let Some(prev) = self.next {
            self.after_operand = prev.is_ascii_lowercase() || prev == b')';
        }
        loop {
            let Some(&c) = b.get(i) else {
                self.next = None;
                self.start = i;
                self.end = i;
                return;
            };
            if c == b' ' {
                i += 1;
                continue;
            }
            let (code, end) = match CLASS[usize::from(c)] {
                Class::Space => {
                    i = skip_while(b, i + 1, |c| matches!(c, b' ' | b'\t' | b'\n'));
                    continue;
                }
                Class::Hash => {
                    i = skip_while(b, i + 1, |c| c != b'\n');
                    continue;
                }
                Class::Quote => match string_end(b, i) {
                    Some(end) => (b's', end),
                    None => (FAILED, i),
                },
                Class::Digit => number(b, i, Mode::Conditions),
                Class::Word => word(b, i, Mode::Conditions),
                Class::Punct => {
                    match punct(c, b.get(i + 1).copied().unwrap_or(0), self.after_operand) {
                        Some((code @ (b'(' | b'{'), len)) => {
                            self.depth += 1;
                            if self.depth > DIRECT_MAX_NESTING {
                                (FAILED, i)
                            } else {
                                (code, i + len)
                            }
                        }
                        Some((code @ (b')' | b'}'), len)) => {
                            self.depth = self.depth.saturating_sub(1);
                            (code, i + len)
                        }
                        Some((code, len)) => (code, i + len),
                        None => (FAILED, i),
                    }
                }
                Class::Bad => (FAILED, i),
            };
            self.next = Some(code);
            self.start = i;
            // A failed token stays the next one however often it is bumped.
            self.end = end;
            return;
        }
    }
}

impl<'s> Tokens<'s> for Stream<'s> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.next
    }

    #[inline(always)]
    fn peek_text(&self) -> &'s str {
        self.src.get(self.start..self.end).unwrap_or("")
    }

    #[inline(always)]
    fn bump(&mut self) {
        self.lex(self.end);
    }

    #[inline(always)]
    fn pos(&self) -> usize {
        self.start
    }

    fn bytes(&self, a: usize, b: usize) -> Range<usize> {
        a..b.max(a)
    }
}

/// The Conditions program of `src`, or `None` where this path gives up (see the module doc).
pub(super) fn parse_conditions(src: &str) -> Option<Conditions> {
    if src.len() > MAX_ASSERTION_LEN {
        return None;
    }
    // Every clause ends in `;`: room for all of them at once (strings and comments may hold
    // more `;`, which only costs room).
    let room = semicolons(src.as_bytes());
    let mut w = Walk::new(Stream::new(src));
    w.max_levels = DIRECT_MAX_NESTING;
    let clauses = clauses(&mut w, None, room)?;
    Some(Conditions { clauses })
}

/// `clause*` up to `close` (the `}` of a block, taken) or the end of the text.
fn clauses(w: &mut Walk<Stream<'_>>, close: Option<u8>, room: usize) -> Option<Vec<Clause>> {
    let mut out = Vec::with_capacity(room);
    loop {
        match (w.s.peek(), close) {
            (None, None) => return Some(out),
            (Some(c), Some(want)) if c == want => {
                w.s.bump();
                return Some(out);
            }
            (None, Some(_)) => return None,
            _ => out.push(clause(w)?),
        }
    }
}

/// `clause = { expr ~ (">" ~ (block | expr))? ~ ";" }`, a test and a string value.
fn clause(w: &mut Walk<Stream<'_>>) -> Option<Clause> {
    let start = w.s.pos();
    let first = w.operand_or_leaf().ok()?;
    let Ok(Val::Bool(test)) = w.climb_loop(first, start, 0) else {
        return None;
    };
    let value = if w.s.peek() == Some(b'>') {
        w.s.bump();
        if w.s.peek() == Some(b'{') {
            w.s.bump();
            ClauseValue::Block(clauses(w, Some(b'}'), 0)?)
        } else {
            ClauseValue::Value(value(w)?)
        }
    } else {
        ClauseValue::Max
    };
    if w.s.peek() != Some(b';') {
        return None;
    }
    w.s.bump();
    Some(Clause { test, value })
}

/// A clause's value: a string expression. Nearly every one is a single literal (`-> "v2"`),
/// taken here without the climb, whose result would come back through memory.
fn value(w: &mut Walk<Stream<'_>>) -> Option<StrExpr> {
    let start = w.s.pos();
    let v = if w.s.peek() == Some(b's') {
        let lit = StrExpr::Lit(unescape(w.s.peek_text()));
        w.s.bump();
        if w.s.peek() == Some(b';') {
            return Some(lit);
        }
        w.climb_from(Val::Str(lit), start, 0)
    } else {
        w.climb(0)
    };
    match v {
        Ok(Val::Str(s)) => Some(s),
        _ => None,
    }
}

/// Room for the clauses of `b`: how many `;` bytes it holds. On x86_64 memchr's SSE2 counter,
/// chosen at compile time (see `next_line_break` in assertion.rs for why not
/// `memchr::memchr_iter`, which asks the CPU first): 16 bytes a step, where a plain loop takes
/// ~4 instructions a byte (0.65M of a 3,331-clause policy's 11.3M). Short text (nearly every
/// credential: one or two clauses) is not counted; its vector grows as it is filled.
fn semicolons(b: &[u8]) -> usize {
    /// Below this many bytes the count costs more than growing the vector.
    const COUNT_MIN_LEN: usize = 256;
    if b.len() < COUNT_MIN_LEN {
        return 0;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(sse2) = memchr::arch::x86_64::sse2::memchr::One::new(b';') {
        return sse2.count(b);
    }
    b.iter().filter(|c| **c == b';').count()
}
