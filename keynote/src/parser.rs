//! Parsing of KeyNote's expression languages: pest (keynote.pest) in, typed AST (ast.rs) out.
//!
//! Each entry point checks the input length and bracket nesting *before* pest runs, so that
//! pest's recursive descent and our conversion (which recurse once per bracket level) stay
//! within [`MAX_NESTING`] levels. Long flat sequences are collected iteratively. Typing rules
//! of RFC 2704 4.6.5 (no mixed int/float/string operands, no float equality, `%` on integers
//! only) are enforced here, so the evaluator only sees well-typed trees.

use crate::ast::{
    ArithOp, Clause, ClauseValue, CmpOp, Conditions, FloatExpr, IntExpr, Licensees, NumExpr,
    StrExpr, Test, unescape,
};
use crate::limits::{MAX_ASSERTION_LEN, MAX_NESTING};
use pest::Parser as _;
use pest::iterators::Pair;
use std::ops::Range;
use thiserror::Error;

mod grammar {
    //! The pest-generated parser; private so that no pest type leaves this module.
    #[derive(pest_derive::Parser)]
    #[grammar = "keynote.pest"]
    pub(crate) struct KeyNoteParser;
}
use grammar::{KeyNoteParser, Rule};

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
    fn at(kind: ExprErrorKind, pair: &Pair<'_, Rule>) -> Self {
        let s = pair.as_span();
        ExprError::new(kind, s.start()..s.end())
    }
    fn ty(msg: &'static str, pair: &Pair<'_, Rule>) -> Self {
        ExprError::at(ExprErrorKind::Type(msg), pair)
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

// ------------------------------------------------------------------ public entry points

/// Parse a Conditions field value (RFC 2704 4.6.5). Empty text gives no clauses.
pub fn parse_conditions(src: &str) -> Result<Conditions> {
    let top = run(Rule::conditions, src)?;
    let mut clauses = Vec::new();
    for p in top.into_inner() {
        if p.as_rule() == Rule::clause {
            clauses.push(clause(p)?);
        }
    }
    Ok(Conditions { clauses })
}

/// Parse a Licensees field value (RFC 2704 4.6.4); `None` when it is empty.
pub fn parse_licensees(src: &str) -> Result<Option<Licensees>> {
    let top = run(Rule::licensees, src)?;
    match top.into_inner().find(|p| p.as_rule() == Rule::lic_or) {
        Some(p) => lic_or(p).map(Some),
        None => Ok(None),
    }
}

/// Parse a string expression standing alone (the Authorizer field, RFC 2704 4.6.3).
pub fn parse_str_expr(src: &str) -> Result<StrExpr> {
    let top = run(Rule::authorizer, src)?;
    let inner = first(top, Rule::str_expr)?;
    str_expr(inner)
}

/// Parse a Local-Constants field value into `(name, value)` pairs in order (RFC 2704
/// 4.6.2). Names and duplicates are checked by the caller, which knows the field's position.
pub fn parse_local_constants(src: &str) -> Result<Vec<(String, String, Range<usize>)>> {
    let top = run(Rule::local_constants, src)?;
    let mut out = Vec::new();
    for a in top.into_inner() {
        if a.as_rule() != Rule::assignment {
            continue;
        }
        let span = a.as_span().start()..a.as_span().end();
        let mut it = a.into_inner();
        let (Some(n), Some(v)) = (it.next(), it.next()) else {
            return Err(ExprError::new(syntax("assignment"), span));
        };
        out.push((n.as_str().to_owned(), unescape(v.as_str()), span));
    }
    Ok(out)
}

/// Parse a KeyNote-Version field value: an integer or a string; returns its text.
pub fn parse_version(src: &str) -> Result<String> {
    let top = run(Rule::version, src)?;
    for p in top.into_inner() {
        match p.as_rule() {
            Rule::int => return Ok(p.as_str().to_owned()),
            Rule::string => return Ok(unescape(p.as_str())),
            _ => {}
        }
    }
    Err(ExprError::new(syntax("version"), 0..src.len()))
}

/// Parse an action-environment file of the reference CLI: `(name, value, span)` triples.
pub(crate) fn parse_env_assignments(src: &str) -> Result<Vec<(String, String, Range<usize>)>> {
    let top = run(Rule::env_file, src)?;
    let mut out = Vec::new();
    for a in top.into_inner() {
        if a.as_rule() != Rule::env_assignment {
            continue;
        }
        let span = a.as_span().start()..a.as_span().end();
        let mut it = a.into_inner();
        let (Some(n), Some(v)) = (it.next(), it.next()) else {
            return Err(ExprError::new(syntax("assignment"), span));
        };
        out.push((n.as_str().to_owned(), unescape(v.as_str()), span));
    }
    Ok(out)
}

// ------------------------------------------------------------------ conversion helpers

fn first(pair: Pair<'_, Rule>, rule: Rule) -> Result<Pair<'_, Rule>> {
    let span = pair.as_span().start()..pair.as_span().end();
    pair.into_inner()
        .find(|p| p.as_rule() == rule)
        .ok_or_else(|| ExprError::new(syntax(&format!("{rule:?}")), span))
}

fn only(pair: Pair<'_, Rule>) -> Result<Pair<'_, Rule>> {
    let span = pair.as_span().start()..pair.as_span().end();
    pair.into_inner()
        .next()
        .ok_or_else(|| ExprError::new(syntax("expression"), span))
}

fn clause(pair: Pair<'_, Rule>) -> Result<Clause> {
    let whole = pair.clone();
    let mut it = pair.into_inner();
    let t = it
        .next()
        .ok_or_else(|| ExprError::at(syntax("test"), &whole))?;
    let test = match expr(t.clone())? {
        Val::Bool(b) => b,
        _ => return Err(ExprError::ty("a clause test must be a test", &t)),
    };
    let value = match it.next() {
        None => ClauseValue::Max,
        Some(p) if p.as_rule() == Rule::block => {
            let mut clauses = Vec::new();
            for c in p.into_inner() {
                clauses.push(clause(c)?);
            }
            ClauseValue::Block(clauses)
        }
        Some(p) => match expr(p.clone())? {
            Val::Str(s) => ClauseValue::Value(s),
            _ => return Err(ExprError::ty("a clause value must be a string", &p)),
        },
    };
    Ok(Clause { test, value })
}

/// A typed expression, while it is being built.
enum Val {
    Bool(Test),
    Str(StrExpr),
    Int(IntExpr),
    Float(FloatExpr),
}

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
    fn parse(s: &str) -> Op {
        match s {
            "||" => Op::Or,
            "&&" => Op::And,
            "==" => Op::Cmp(Some(CmpOp::Eq)),
            "!=" => Op::Cmp(Some(CmpOp::Ne)),
            "<" => Op::Cmp(Some(CmpOp::Lt)),
            "<=" => Op::Cmp(Some(CmpOp::Le)),
            ">" => Op::Cmp(Some(CmpOp::Gt)),
            ">=" => Op::Cmp(Some(CmpOp::Ge)),
            "~=" => Op::Cmp(None),
            "." => Op::Concat,
            "+" => Op::Arith(ArithOp::Add),
            "-" => Op::Arith(ArithOp::Sub),
            "*" => Op::Arith(ArithOp::Mul),
            "/" => Op::Arith(ArithOp::Div),
            "%" => Op::Arith(ArithOp::Rem),
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

/// `!` applies to a whole comparison: its operand is parsed at comparison strength.
const NOT_OPERAND: u8 = 4;

fn arith_level(a: ArithOp) -> u8 {
    match a {
        ArithOp::Add | ArithOp::Sub => 5,
        ArithOp::Mul | ArithOp::Div | ArithOp::Rem => 6,
        ArithOp::Pow => 7,
    }
}

/// One operand of a flat expression: its prefix operators and its atom.
struct Item<'i> {
    prefixes: Vec<Pair<'i, Rule>>,
    atom: Pair<'i, Rule>,
}

/// Precedence climbing over `operand (infix operand)*`. Left-associative chains are built
/// in a loop; recursion goes only as deep as the number of precedence levels (and brackets,
/// via `atom`), never per operand.
struct Climber<'i> {
    items: Vec<Item<'i>>,
    ops: Vec<Pair<'i, Rule>>,
    /// The next item to consume.
    pos: usize,
    /// How many prefixes of `items[pos]` were already consumed (by `!`).
    skip: usize,
}

fn expr(pair: Pair<'_, Rule>) -> Result<Val> {
    let whole = pair.clone();
    let mut items = Vec::new();
    let mut ops = Vec::new();
    let mut prefixes = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::prefix => prefixes.push(p),
            Rule::infix => ops.push(p),
            _ => items.push(Item {
                prefixes: std::mem::take(&mut prefixes),
                atom: p,
            }),
        }
    }
    if items.len() != ops.len() + 1 {
        return Err(ExprError::at(syntax("operand"), &whole));
    }
    let mut c = Climber {
        items,
        ops,
        pos: 0,
        skip: 0,
    };
    let v = c.climb(0)?;
    if c.pos != c.items.len() {
        return Err(ExprError::at(syntax("operator"), &whole));
    }
    Ok(v)
}

impl<'i> Climber<'i> {
    fn climb(&mut self, min: u8) -> Result<Val> {
        let mut lhs = self.operand()?;
        while let Some(op_pair) = self.pos.checked_sub(1).and_then(|i| self.ops.get(i)) {
            let op = Op::parse(op_pair.as_str());
            let power = op.power();
            if power < min {
                break;
            }
            let op_pair = op_pair.clone();
            // Left-associative: the right operand binds strictly tighter.
            let rhs = self.climb(power + 1)?;
            lhs = combine(op, lhs, rhs, &op_pair)?;
        }
        Ok(lhs)
    }

    fn operand(&mut self) -> Result<Val> {
        let Some(item) = self.items.get(self.pos) else {
            return Err(ExprError::new(syntax("operand"), 0..0));
        };
        let prefixes = item.prefixes.get(self.skip..).unwrap_or(&[]);
        let nots = prefixes.iter().take_while(|p| p.as_str() == "!").count();
        if nots > 0 {
            let at = prefixes.first().cloned();
            self.skip += nots;
            let inner = self.climb(NOT_OPERAND)?;
            return match inner {
                Val::Bool(Test::Not { times, inner }) => Ok(Val::Bool(Test::Not {
                    times: times.saturating_add(nots as u32),
                    inner,
                })),
                Val::Bool(t) => Ok(Val::Bool(Test::Not {
                    times: nots as u32,
                    inner: Box::new(t),
                })),
                _ => Err(match at {
                    Some(p) => ExprError::ty("`!` applies to tests", &p),
                    None => ExprError::new(syntax("test"), 0..0),
                }),
            };
        }
        let prefixes: Vec<Pair<'i, Rule>> = prefixes.to_vec();
        let atom_pair = item.atom.clone();
        self.pos += 1;
        self.skip = 0;
        let mut v = atom(atom_pair)?;
        for p in prefixes.iter().rev() {
            v = match (p.as_str(), v) {
                ("$", Val::Str(s)) => Val::Str(deref(1, s)),
                ("@", Val::Str(s)) => Val::Int(NumExpr::Convert(Box::new(s))),
                ("&", Val::Str(s)) => Val::Float(NumExpr::Convert(Box::new(s))),
                ("-", Val::Int(e)) => Val::Int(negate(e)),
                ("-", Val::Float(e)) => Val::Float(negate(e)),
                ("-", _) => return Err(ExprError::ty("`-` applies to numbers", p)),
                ("!", _) => return Err(ExprError::ty("`!` applies to tests", p)),
                _ => return Err(ExprError::ty("`$`, `@`, `&` apply to strings", p)),
            };
        }
        Ok(v)
    }
}

fn combine(op: Op, lhs: Val, rhs: Val, at: &Pair<'_, Rule>) -> Result<Val> {
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
        (Op::Or | Op::And, _, _) => return Err(ExprError::ty("`&&`/`||` join tests", at)),
        (Op::Cmp(None), Val::Str(a), Val::Str(b)) => Val::Bool(Test::Regex(a, b)),
        (Op::Cmp(None), _, _) => return Err(ExprError::ty("`~=` needs string operands", at)),
        (Op::Cmp(Some(c)), Val::Str(a), Val::Str(b)) => Val::Bool(Test::Str(a, c, b)),
        (Op::Cmp(Some(c)), Val::Int(a), Val::Int(b)) => Val::Bool(Test::Int(a, c, b)),
        (Op::Cmp(Some(CmpOp::Eq | CmpOp::Ne)), Val::Float(_), Val::Float(_)) => {
            return Err(ExprError::ty(
                "floats cannot be compared for equality (RFC 2704 4.6.5)",
                at,
            ));
        }
        (Op::Cmp(Some(c)), Val::Float(a), Val::Float(b)) => Val::Bool(Test::Float(a, c, b)),
        (Op::Cmp(_), _, _) => return Err(ExprError::ty("comparison of different types", at)),
        (Op::Concat, Val::Str(a), Val::Str(b)) => Val::Str(match a {
            StrExpr::Concat(mut v) => {
                v.push(b);
                StrExpr::Concat(v)
            }
            a => StrExpr::Concat(vec![a, b]),
        }),
        (Op::Concat, _, _) => return Err(ExprError::ty("`.` joins strings", at)),
        (Op::Arith(ArithOp::Rem), Val::Float(_), Val::Float(_)) => {
            return Err(ExprError::ty("`%` is not defined on floats", at));
        }
        (Op::Arith(o), Val::Int(a), Val::Int(b)) => Val::Int(extend(a, o, b)),
        (Op::Arith(o), Val::Float(a), Val::Float(b)) => Val::Float(extend(a, o, b)),
        (Op::Arith(_), _, _) => return Err(ExprError::ty("arithmetic on mixed types", at)),
    })
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

fn atom(p: Pair<'_, Rule>) -> Result<Val> {
    match p.as_rule() {
        Rule::float => p
            .as_str()
            .parse::<f64>()
            .map(|f| Val::Float(NumExpr::Lit(f)))
            .map_err(|_| ExprError::at(syntax("float"), &p)),
        // Out-of-range literals are kept (saturated) and rejected when evaluated: an
        // integer outside the 32-bit range of RFC 2704 4.4 is a runtime error.
        Rule::int => Ok(Val::Int(NumExpr::Lit(
            p.as_str().parse::<i64>().unwrap_or(i64::MAX),
        ))),
        Rule::string => Ok(Val::Str(StrExpr::Lit(unescape(p.as_str())))),
        Rule::kw_true => Ok(Val::Bool(Test::True)),
        Rule::kw_false => Ok(Val::Bool(Test::False)),
        Rule::cond_name => Ok(Val::Str(StrExpr::Attr(p.as_str().to_owned()))),
        Rule::paren => expr(only(p)?),
        _ => Err(ExprError::at(syntax("operand"), &p)),
    }
}

fn str_expr(pair: Pair<'_, Rule>) -> Result<StrExpr> {
    let mut parts = Vec::new();
    for p in pair.into_inner() {
        if p.as_rule() == Rule::str_unary {
            parts.push(str_unary(p)?);
        }
    }
    if parts.len() == 1 {
        parts
            .pop()
            .ok_or_else(|| ExprError::new(syntax("string"), 0..0))
    } else {
        Ok(StrExpr::Concat(parts))
    }
}

fn str_unary(pair: Pair<'_, Rule>) -> Result<StrExpr> {
    let mut derefs = 0u32;
    let mut prim = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::deref => derefs = derefs.saturating_add(1),
            _ => prim = Some(p),
        }
    }
    let prim = prim.ok_or_else(|| ExprError::new(syntax("string"), 0..0))?;
    let p = only(prim)?;
    let base = match p.as_rule() {
        Rule::string => StrExpr::Lit(unescape(p.as_str())),
        Rule::name => StrExpr::Attr(p.as_str().to_owned()),
        Rule::str_expr => str_expr(p)?,
        _ => return Err(ExprError::at(syntax("string"), &p)),
    };
    Ok(if derefs == 0 {
        base
    } else {
        deref(derefs, base)
    })
}

fn lic_or(pair: Pair<'_, Rule>) -> Result<Licensees> {
    let mut terms = Vec::new();
    for p in pair.into_inner() {
        terms.push(lic_and(p)?);
    }
    Ok(if terms.len() == 1 {
        terms
            .pop()
            .ok_or_else(|| ExprError::new(syntax("principal"), 0..0))?
    } else {
        Licensees::Or(terms)
    })
}

fn lic_and(pair: Pair<'_, Rule>) -> Result<Licensees> {
    let mut terms = Vec::new();
    for p in pair.into_inner() {
        terms.push(lic_atom(p)?);
    }
    Ok(if terms.len() == 1 {
        terms
            .pop()
            .ok_or_else(|| ExprError::new(syntax("principal"), 0..0))?
    } else {
        Licensees::And(terms)
    })
}

fn lic_atom(pair: Pair<'_, Rule>) -> Result<Licensees> {
    let p = only(pair)?;
    match p.as_rule() {
        Rule::lic_or => lic_or(p),
        Rule::principal => Ok(Licensees::Principal(str_expr(only(p)?)?)),
        Rule::k_of => {
            let whole = p.clone();
            let mut it = p.into_inner();
            let k_text = it.next().map(|k| k.as_str().to_owned()).unwrap_or_default();
            let k: u64 = k_text.trim_end_matches("-of").parse().unwrap_or(u64::MAX);
            let mut principals = Vec::new();
            for q in it {
                principals.push(str_expr(only(q)?)?);
            }
            let n = principals.len();
            match u32::try_from(k) {
                Ok(k) if (k as usize) <= n => Ok(Licensees::KOf { k, principals }),
                _ => Err(ExprError::at(ExprErrorKind::Threshold { k, n }, &whole)),
            }
        }
        _ => Err(ExprError::at(syntax("principal"), &p)),
    }
}
