//! Input limits: every bound on attacker-controlled size or depth, in one place.
//!
//! The reference implementation has no such limits and overflows its parser stack instead
//! (10,000 nested brackets, more than 3,331 clauses; see docs/REFERENCE-QUIRKS.md). We accept
//! everything the reference accepts up to generous sizes, iterate over long flat sequences,
//! and reject the rest with a typed error before any recursive work starts.

/// Longest assertion text accepted (bytes). The largest legitimate inputs we know of (a
/// 10,000-clause policy, ~450 KB) fit with room to spare; larger text is refused before
/// parsing so that a hostile credential cannot make us allocate without bound.
pub const MAX_ASSERTION_LEN: usize = 4 * 1024 * 1024;

/// Deepest bracket nesting (`(`, `{`) accepted in any field. The pest parser and the AST
/// walks recurse once per level; 256 levels keep that well inside a 2 MiB thread stack while
/// being far beyond what any real policy needs (the reference's own limit is ~3,300 blocks).
pub const MAX_NESTING: usize = 256;

/// Deepest nesting of `!` operands without a bracket between them (`!a == !b == !c ...`: each
/// `!` takes the rest of the comparison chain as its operand). Building the tree recurses once
/// per level, and unlike brackets nothing else bounded them: 20,000 of them in a 140 KB
/// assertion overflowed the stack. Any such nesting is a type error anyway (a test is never an
/// operand of a comparison, `.` or arithmetic), so a small bound only changes which error a
/// hostile text gets; 32 keeps even an unoptimised build's frames far inside a 2 MiB stack.
pub const MAX_NOT_NESTING: usize = 32;

/// Deepest nesting of operands in one expression, brackets and `!` operands together, as the
/// tree is built. A well-typed text has at most one `!` operand per bracket level, so it stays
/// within twice [`MAX_NESTING`]; only texts that are type errors reach this, by nesting up to
/// [`MAX_NOT_NESTING`] `!` operands inside each bracket.
pub const MAX_OPERAND_NESTING: usize = 2 * MAX_NESTING;

/// Longest action-environment file accepted (bytes).
pub const MAX_ENV_FILE_LEN: usize = 16 * 1024 * 1024;

/// Largest compiled regular expression (bytes of NFA), and the lazy DFA's cache size: a
/// hostile `~=` pattern such as `(a{1000}){1000}` is a runtime error instead of a memory
/// blow-up (RFC 2704 5.3.4: an invalid regex makes its test false).
pub const MAX_REGEX_SIZE: usize = 1 << 20;

/// Most distinct regular expressions compiled and cached during one query; beyond this,
/// patterns are still evaluated but compiled afresh each time, so memory stays bounded.
pub const MAX_REGEX_CACHE: usize = 256;

/// Pest's per-parse call budget that the `gt` binary installs (see
/// [`crate::install_parser_call_limit`]): a parse that would take more steps than this is
/// refused, bounding parse time on pathological input. Generous: a 4 MiB assertion of
/// 10,000 clauses takes about 3 million calls.
pub const PEST_CALL_LIMIT: usize = 200_000_000;

/// Longest string a single `.` concatenation or `$` dereference may produce during
/// evaluation (bytes); longer results are a runtime error, so `a . a . a ...` chains over
/// large attributes cannot exhaust memory.
pub const MAX_STRING_LEN: usize = 16 * 1024 * 1024;
