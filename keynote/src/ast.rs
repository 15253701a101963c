//! The typed abstract syntax of KeyNote's expression languages (RFC 2704 4.6.2-4.6.5).
//!
//! The parser (parser.rs) turns pest's output into these types at once; the evaluator and the
//! compliance checker only ever see them. Long operator chains (`a || b || ...`, 10,000
//! clauses, `1 + 1 + ...`) are stored flat in vectors and prefix operators as counts, so no
//! walk over the tree recurses deeper than the bracket nesting, which the parser bounds
//! ([`crate::limits::MAX_NESTING`]).
//!
//! Every type implements [`std::fmt::Display`] as a canonical, fully bracketed rendering that
//! parses back to an equal tree (the round-trip property tested in tests/proptest.rs).

use std::fmt;

/// Text held by the AST (attribute names, string literals). Nearly all of them are short
/// (`app_domain`, `"v2"`, `"refs/tags/"`): up to 24 bytes live inline, without a heap
/// allocation, which halves the allocations of a typical clause (keynote/README.md, perf).
pub type Text = compact_str::CompactString;

/// A string-valued expression (RFC 2704 4.4, 4.6.5 `<StrEx>`).
#[derive(Clone, Debug, PartialEq)]
pub enum StrExpr {
    /// A quoted literal, escapes already decoded.
    Lit(Text),
    /// An attribute reference by name.
    Attr(Text),
    /// `$` applied `times` (>= 1) times: the value names another attribute (4.4).
    Deref {
        /// How many `$` were written.
        times: u32,
        /// The expression whose value is dereferenced.
        inner: Box<StrExpr>,
    },
    /// `a . b . c`: concatenation, flat.
    Concat(Vec<StrExpr>),
}

/// Binary arithmetic operators (RFC 2704 4.6.5 `<IntEx>`, `<FloatEx>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%` (integers only)
    Rem,
    /// `^`, left-associative as in the reference.
    Pow,
}

/// A numeric expression; `T` is `i64` for integer expressions and `f64` for floats.
///
/// Integers are evaluated as 64-bit values checked against the 32-bit range of RFC 2704 4.4
/// after every operation; literals are kept as written so that `-2147483648` works.
#[derive(Clone, Debug, PartialEq)]
pub enum NumExpr<T> {
    /// A literal.
    Lit(T),
    /// `@s` or `&s`: a string converted to a number.
    Convert(Box<StrExpr>),
    /// Unary minus applied `times` (>= 1) times.
    Neg {
        /// How many `-` were written.
        times: u32,
        /// The negated expression.
        inner: Box<NumExpr<T>>,
    },
    /// A left-associative chain of operators of one precedence level: `first op e op e ...`.
    Chain {
        /// The leftmost operand.
        first: Box<NumExpr<T>>,
        /// The following operators and operands, in order.
        rest: Vec<(ArithOp, NumExpr<T>)>,
    },
}

/// An integer expression.
pub type IntExpr = NumExpr<i64>;
/// A floating-point expression (C `double`, as the reference computes).
pub type FloatExpr = NumExpr<f64>;

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A test: the boolean part of a clause (RFC 2704 4.6.5 `<Test>`).
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// `true` (any case).
    True,
    /// `false` (any case).
    False,
    /// `!` applied `times` (>= 1) times.
    Not {
        /// How many `!` were written.
        times: u32,
        /// The negated test.
        inner: Box<Test>,
    },
    /// `a && b && ...`, flat, left to right.
    And(Vec<Test>),
    /// `a || b || ...`, flat, left to right.
    Or(Vec<Test>),
    /// A string comparison.
    Str(StrExpr, CmpOp, StrExpr),
    /// An integer comparison.
    Int(IntExpr, CmpOp, IntExpr),
    /// A float comparison (never `==`/`!=`, RFC 2704 4.6.5).
    Float(FloatExpr, CmpOp, FloatExpr),
    /// `s ~= regex` (POSIX extended regular expression).
    Regex(StrExpr, StrExpr),
}

/// What a clause yields when its test is true.
#[derive(Clone, Debug, PartialEq)]
pub enum ClauseValue {
    /// No `->`: `_MAX_TRUST`.
    Max,
    /// `-> "value"`: a string expression naming a compliance value.
    Value(StrExpr),
    /// `-> { clauses }`: a nested program.
    Block(Vec<Clause>),
}

/// One clause `test -> value;`.
#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    /// The test.
    pub test: Test,
    /// The value when the test holds.
    pub value: ClauseValue,
}

/// A Conditions program: clauses, possibly none (RFC 2704 4.6.5).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Conditions {
    /// The top-level clauses, in order.
    pub clauses: Vec<Clause>,
}

/// A Licensees expression (RFC 2704 4.6.4).
#[derive(Clone, Debug, PartialEq)]
pub enum Licensees {
    /// One principal, given as a string expression.
    Principal(StrExpr),
    /// `a && b && ...`: the minimum.
    And(Vec<Licensees>),
    /// `a || b || ...`: the maximum.
    Or(Vec<Licensees>),
    /// `K-of(p1, ..., pn)`: the K-th largest value, duplicates counted (RFC 2704 5.3.5).
    KOf {
        /// K, at least 1 and at most the number of principals.
        k: u32,
        /// The principals, as written.
        principals: Vec<StrExpr>,
    },
}

// ------------------------------------------------------------------ string escapes

/// Decode a quoted string token (with its quotes) as the reference lexer does: `\n \t \r \f`,
/// `\ooo` octal, backslash-newline plus the following indentation removed (RFC 2704 4.2
/// continuation), any other escaped character stands for itself.
///
/// The common case, nothing to decode (nearly every string, and all long key strings), is
/// inlined into the parser: a `Text` returned from a call is written to memory a field at a
/// time and read back whole, a stalled load at every string literal (perf annotate).
#[inline(always)]
pub(crate) fn unescape(token: &str) -> Text {
    let inner = token
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(token);
    if !inner.as_bytes().contains(&b'\\') {
        return Text::new(inner);
    }
    unescape_escaped(inner)
}

/// [`unescape`] of a string's inside that holds a backslash.
#[inline(never)]
fn unescape_escaped(inner: &str) -> Text {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('\n') => {
                while matches!(chars.peek(), Some(' ' | '\t')) {
                    chars.next();
                }
            }
            Some(d @ '0'..='7') => {
                let mut v = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(x) => {
                            v = v * 8 + x;
                            chars.next();
                        }
                        None => break,
                    }
                }
                // Octal escapes name bytes; above 0x7f they become the Latin-1 character
                // (our strings are UTF-8; see DEVIATIONS.md).
                out.push(char::from((v & 0xff) as u8));
            }
            Some(other) => out.push(other),
        }
    }
    Text::from(out)
}

/// Quote a string so that [`unescape`] gives it back.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (0x7f..=0xff).contains(&(c as u32)) => {
                out.push_str(&format!("\\{:03o}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ------------------------------------------------------------------ Display (canonical form)

impl fmt::Display for StrExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrExpr::Lit(s) => f.write_str(&quote(s)),
            StrExpr::Attr(n) => f.write_str(n),
            StrExpr::Deref { times, inner } => {
                for _ in 0..*times {
                    f.write_str("$")?;
                }
                write!(f, "({inner})")
            }
            StrExpr::Concat(parts) => {
                f.write_str("(")?;
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" . ")?;
                    }
                    write!(f, "{p}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for ArithOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
            ArithOp::Pow => "^",
        })
    }
}

/// Literal rendering for the two numeric types.
pub trait NumLit: Copy + fmt::Debug + PartialEq {
    /// Write the literal as the grammar accepts it; `conv` is `@` or `&`.
    fn write_lit(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    /// The conversion operator that yields this type.
    const CONVERT: &'static str;
}

impl NumLit for i64 {
    fn write_lit(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self < 0 {
            write!(f, "(-{})", self.unsigned_abs())
        } else {
            write!(f, "{self}")
        }
    }
    const CONVERT: &'static str = "@";
}

impl NumLit for f64 {
    fn write_lit(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Display never uses exponent notation and prints the shortest round-tripping
        // digits; the grammar needs digits on both sides of the point.
        let s = format!("{}", self.abs());
        let s = if s.contains('.') { s } else { format!("{s}.0") };
        if *self < 0.0 {
            write!(f, "(-{s})")
        } else {
            f.write_str(&s)
        }
    }
    const CONVERT: &'static str = "&";
}

impl<T: NumLit> fmt::Display for NumExpr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumExpr::Lit(v) => v.write_lit(f),
            NumExpr::Convert(s) => write!(f, "{}({s})", T::CONVERT),
            NumExpr::Neg { times, inner } => {
                f.write_str("(")?;
                for _ in 0..*times {
                    f.write_str("-")?;
                }
                write!(f, "({inner}))")
            }
            NumExpr::Chain { first, rest } => {
                write!(f, "({first}")?;
                for (op, e) in rest {
                    write!(f, " {op} {e}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::True => f.write_str("true"),
            Test::False => f.write_str("false"),
            Test::Not { times, inner } => {
                for _ in 0..*times {
                    f.write_str("!")?;
                }
                write!(f, "({inner})")
            }
            Test::And(v) | Test::Or(v) => {
                let op = if matches!(self, Test::And(_)) {
                    " && "
                } else {
                    " || "
                };
                f.write_str("(")?;
                for (i, t) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
            Test::Str(a, op, b) => write!(f, "{a} {op} {b}"),
            Test::Int(a, op, b) => write!(f, "{a} {op} {b}"),
            Test::Float(a, op, b) => write!(f, "{a} {op} {b}"),
            Test::Regex(a, b) => write!(f, "{a} ~= {b}"),
        }
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.test)?;
        match &self.value {
            ClauseValue::Max => {}
            ClauseValue::Value(v) => write!(f, " -> {v}")?,
            ClauseValue::Block(clauses) => {
                f.write_str(" -> {")?;
                for c in clauses {
                    write!(f, " {c}")?;
                }
                f.write_str(" }")?;
            }
        }
        f.write_str(";")
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Licensees {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Licensees::Principal(p) => write!(f, "{p}"),
            Licensees::And(v) | Licensees::Or(v) => {
                let op = if matches!(self, Licensees::And(_)) {
                    " && "
                } else {
                    " || "
                };
                f.write_str("(")?;
                for (i, t) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
            Licensees::KOf { k, principals } => {
                write!(f, "{k}-of(")?;
                for (i, p) in principals.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                f.write_str(")")
            }
        }
    }
}
