//! Evaluation of Conditions programs and string expressions (RFC 2704 4.4, 4.6.5, 5.3.4).
//!
//! Semantics follow the RFC and, where it is silent, the reference implementation
//! (docs/REFERENCE-QUIRKS.md "Conditions language"):
//! - integers are 32-bit; unlike the reference, which wraps, a result outside the 32-bit range
//!   is a runtime error (RFC 2704 4.4 gives the range; 5.3.4 makes runtime errors false);
//! - division or remainder by zero and invalid regular expressions are runtime errors that
//!   make the whole test of the clause false (RFC 2704 5.3.4);
//! - `&&`/`||` short-circuit, and a nested `&&`/`||` switches error checking back on inside a
//!   skipped operand, exactly as the reference's parser-driven evaluation does;
//! - `~=` sets `_0` (number of groups) and `_1`, `_2`, ... up to the first group that did not
//!   take part in the match; captures are cleared after each clause.
//!
//! Nothing here recurses deeper than the bracket nesting that the parser bounds.

use crate::Map;
use crate::ast::{ArithOp, Clause, ClauseValue, CmpOp, NumExpr, StrExpr, Test};
use crate::limits::{MAX_REGEX_CACHE, MAX_REGEX_SIZE, MAX_STRING_LEN};
use regex::{Regex, RegexBuilder};
use std::borrow::Cow;
use thiserror::Error;

/// Why a string expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A concatenation or dereference produced a string longer than
    /// [`crate::limits::MAX_STRING_LEN`].
    #[error("string longer than {MAX_STRING_LEN} bytes")]
    StringTooLong,
    /// The Authorizer field does not parse.
    #[error("Authorizer field: {0}")]
    InvalidAuthorizer(crate::parser::ExprError),
}

/// Query-wide names (RFC 2704 4.3): the ordered compliance values and the action authorizers.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Specials<'a> {
    pub values: &'a [String],
    pub values_joined: &'a str,
    pub authorizers_joined: &'a str,
}

/// Where attribute names are looked up: regex captures and special attributes, then the
/// assertion's Local-Constants (which override, RFC 2704 4.6.2), then the action attributes.
pub(crate) struct Scope<'a> {
    constants: &'a Map<String, String>,
    action: &'a Map<String, String>,
    specials: Specials<'a>,
    captures: Vec<String>,
}

impl<'a> Scope<'a> {
    pub fn new(constants: &'a Map<String, String>, action: &'a Map<String, String>) -> Self {
        Scope {
            constants,
            action,
            specials: Specials::default(),
            captures: Vec::new(),
        }
    }

    pub fn with_specials(mut self, specials: Specials<'a>) -> Self {
        self.specials = specials;
        self
    }

    fn lookup(&self, name: &str) -> &str {
        if let Some(rest) = name.strip_prefix('_') {
            let s = &self.specials;
            return match rest {
                "MIN_TRUST" => s.values.first().map_or("", String::as_str),
                "MAX_TRUST" => s.values.last().map_or("", String::as_str),
                "VALUES" => s.values_joined,
                "ACTION_AUTHORIZERS" => s.authorizers_joined,
                digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    digits
                        .parse::<usize>()
                        .ok()
                        .and_then(|n| self.captures.get(n))
                        .map_or("", String::as_str)
                }
                _ => "",
            };
        }
        if let Some(v) = self.constants.get(name) {
            return v;
        }
        self.action.get(name).map_or("", String::as_str)
    }
}

/// Evaluate a string expression without runtime state (Authorizer, Licensees principals),
/// borrowing the literal or attribute value when there is nothing to build: a query
/// evaluates two of these per assertion and only needs to look each one up.
pub(crate) fn eval_str_plain<'s>(
    e: &'s StrExpr,
    scope: &'s Scope<'_>,
) -> Result<Cow<'s, str>, EvalError> {
    str_value(e, scope)
}

fn str_value<'s>(e: &'s StrExpr, scope: &'s Scope<'_>) -> Result<Cow<'s, str>, EvalError> {
    Ok(match e {
        StrExpr::Lit(s) => Cow::Borrowed(s.as_str()),
        StrExpr::Attr(n) => Cow::Borrowed(scope.lookup(n)),
        StrExpr::Deref { times, inner } => {
            let mut name = str_value(inner, scope)?;
            for _ in 0..*times {
                name = Cow::Borrowed(scope.lookup(&name));
            }
            name
        }
        StrExpr::Concat(parts) => {
            let mut out = String::new();
            for p in parts {
                let v = str_value(p, scope)?;
                if out.len() + v.len() > MAX_STRING_LEN {
                    return Err(EvalError::StringTooLong);
                }
                out.push_str(&v);
            }
            Cow::Owned(out)
        }
    })
}

/// The numeric string test of the reference's `@` and `&`: digits with at most one `.`;
/// anything else (signs, letters, the empty string) converts to zero (RFC 2704 4.6.5).
fn numeric_prefix(s: &str) -> f64 {
    let mut dots = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => {}
            b'.' => dots += 1,
            _ => return 0.0,
        }
    }
    if dots > 1 {
        return 0.0;
    }
    s.parse::<f64>().unwrap_or(0.0)
}

/// `@s`: the floor of the numeric value; values beyond the 32-bit range give
/// -2147483648, as the reference's C conversion does.
fn to_int(s: &str) -> i64 {
    // Up to nine digits (the usual `@n` on a counter or date) is an exact integer in range:
    // skip the float conversion.
    if (1..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .bytes()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    }
    let f = numeric_prefix(s).floor();
    if f > f64::from(i32::MAX) || f < f64::from(i32::MIN) || f.is_nan() {
        i64::from(i32::MIN)
    } else {
        f as i64
    }
}

const I32: std::ops::RangeInclusive<i64> = (i32::MIN as i64)..=(i32::MAX as i64);

/// A runtime error inside a test (RFC 2704 5.3.4).
#[derive(Debug)]
struct RuntimeError;

/// The state of evaluating one assertion's Conditions.
pub(crate) struct Evaluator<'a, 'c> {
    scope: Scope<'a>,
    /// Inside the skipped operand of `&&`/`||`: runtime errors are not raised.
    dont_eval: bool,
    /// A runtime error happened in the current test.
    error: bool,
    regexes: &'c mut RegexCache,
}

/// Compiled regular expressions, shared by all assertions of one query.
#[derive(Default)]
pub(crate) struct RegexCache {
    map: Map<String, Option<Regex>>,
}

impl RegexCache {
    fn get(&mut self, pattern: &str) -> Option<Regex> {
        if let Some(r) = self.map.get(pattern) {
            return r.clone();
        }
        let compiled = compile_posix(pattern);
        if self.map.len() < MAX_REGEX_CACHE {
            self.map.insert(pattern.to_owned(), compiled.clone());
        }
        compiled
    }
}

/// Compile a POSIX extended regular expression with the `regex` crate (linear-time
/// matching, bounded size). POSIX `.` matches a newline and `^`/`$` anchor the whole string,
/// which is the crate's behaviour once `.` is allowed to match `\n`. Back-references are not
/// supported and fail to compile (a runtime error; see DEVIATIONS.md).
pub(crate) fn compile_posix(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .dot_matches_new_line(true)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .build()
        .ok()
}

impl<'a, 'c> Evaluator<'a, 'c> {
    pub fn new(scope: Scope<'a>, regexes: &'c mut RegexCache) -> Self {
        Evaluator {
            scope,
            dont_eval: false,
            error: false,
            regexes,
        }
    }

    /// The compliance value (index into the ordered values) of a Conditions program: the
    /// maximum over clauses whose test holds (RFC 2704 5.3.4); `max` is `_MAX_TRUST`.
    pub fn program(&mut self, clauses: &[Clause], values: &[String], max: usize) -> usize {
        let mut best = 0;
        for c in clauses {
            self.error = false;
            self.dont_eval = false;
            let holds = self.test(&c.test) && !self.error;
            if holds {
                let v = match &c.value {
                    ClauseValue::Max => max,
                    ClauseValue::Value(e) => match str_value(e, &self.scope) {
                        Ok(s) => values.iter().position(|v| *v == *s).unwrap_or(0),
                        Err(_) => 0,
                    },
                    ClauseValue::Block(inner) => self.program(inner, values, max),
                };
                best = best.max(v);
            }
            self.scope.captures.clear();
            if best == max {
                break;
            }
        }
        best
    }

    fn fail(&mut self) {
        if !self.dont_eval {
            self.error = true;
        }
    }

    fn test(&mut self, t: &Test) -> bool {
        match t {
            Test::True => true,
            Test::False => false,
            Test::Not { times, inner } => {
                let v = self.test(inner);
                if times % 2 == 1 { !v } else { v }
            }
            Test::And(terms) | Test::Or(terms) => {
                let is_and = matches!(t, Test::And(_));
                let mut iter = terms.iter();
                let mut acc = match iter.next() {
                    Some(first) => self.test(first),
                    None => return is_and,
                };
                for term in iter {
                    // The reference stops raising errors in the operand it does not need,
                    // and turns them back on at the end of every `&&`/`||`. An unneeded
                    // operand whose evaluation can change nothing (`inert`) is skipped: all
                    // that evaluating it would leave is that reset.
                    if acc != is_and {
                        if inert(term) {
                            self.dont_eval = false;
                            continue;
                        }
                        self.dont_eval = true;
                    }
                    let v = self.test(term);
                    self.dont_eval = false;
                    acc = if is_and { acc && v } else { acc || v };
                }
                acc
            }
            Test::Str(a, op, b) => {
                // Two names or literals (`app_domain == "perf"`): compared in place, as the
                // general path would, without building and matching two `Result<Cow, _>`s.
                if let (Some(x), Some(y)) = (self.direct(a), self.direct(b)) {
                    return cmp(x.as_bytes().cmp(y.as_bytes()), *op);
                }
                match (str_value(a, &self.scope), str_value(b, &self.scope)) {
                    (Ok(x), Ok(y)) => cmp(x.as_bytes().cmp(y.as_bytes()), *op),
                    _ => {
                        self.fail();
                        false
                    }
                }
            }
            Test::Int(a, op, b) => match (self.int(a), self.int(b)) {
                (Ok(x), Ok(y)) if I32.contains(&x) && I32.contains(&y) => cmp(x.cmp(&y), *op),
                _ => {
                    self.fail();
                    false
                }
            },
            Test::Float(a, op, b) => match (self.float(a), self.float(b)) {
                (Ok(x), Ok(y)) => match x.partial_cmp(&y) {
                    Some(o) => cmp(o, *op),
                    None => false,
                },
                _ => {
                    self.fail();
                    false
                }
            },
            Test::Regex(s, p) => self.regex(s, p),
        }
    }

    /// A literal's or a name's value; `None` for anything to be computed.
    fn direct<'e>(&'e self, e: &'e StrExpr) -> Option<&'e str> {
        match e {
            StrExpr::Lit(s) => Some(s),
            StrExpr::Attr(n) => Some(self.scope.lookup(n)),
            _ => None,
        }
    }

    fn regex(&mut self, s: &StrExpr, p: &StrExpr) -> bool {
        self.scope.captures.clear();
        let (subject, pattern) = match (str_value(s, &self.scope), str_value(p, &self.scope)) {
            (Ok(a), Ok(b)) => (a.into_owned(), b.into_owned()),
            _ => {
                self.fail();
                return false;
            }
        };
        if self.dont_eval {
            return false;
        }
        let Some(re) = self.regexes.get(&pattern) else {
            self.fail();
            return false;
        };
        let Some(caps) = re.captures(&subject) else {
            return false;
        };
        let groups = re.captures_len().saturating_sub(1);
        let mut out = Vec::with_capacity(groups + 1);
        out.push(groups.to_string());
        for g in 1..=groups {
            match caps.get(g) {
                Some(m) => out.push(m.as_str().to_owned()),
                None => break,
            }
        }
        self.scope.captures = out;
        true
    }

    fn int(&mut self, e: &NumExpr<i64>) -> Result<i64, RuntimeError> {
        Ok(match e {
            NumExpr::Lit(v) => *v,
            NumExpr::Convert(s) => match str_value(s, &self.scope) {
                Ok(v) => to_int(&v),
                Err(_) => return Err(RuntimeError),
            },
            NumExpr::Neg { times, inner } => {
                let v = self.int(inner)?;
                if times % 2 == 1 {
                    v.checked_neg().ok_or(RuntimeError)?
                } else {
                    v
                }
            }
            NumExpr::Chain { first, rest } => {
                let mut acc = self.int(first)?;
                for (op, e) in rest {
                    let rhs = self.int(e)?;
                    if !I32.contains(&acc) || !I32.contains(&rhs) {
                        return Err(RuntimeError);
                    }
                    acc = int_op(acc, *op, rhs)?;
                }
                acc
            }
        })
    }

    fn float(&mut self, e: &NumExpr<f64>) -> Result<f64, RuntimeError> {
        Ok(match e {
            NumExpr::Lit(v) => *v,
            NumExpr::Convert(s) => match str_value(s, &self.scope) {
                Ok(v) => numeric_prefix(&v),
                Err(_) => return Err(RuntimeError),
            },
            NumExpr::Neg { times, inner } => {
                let v = self.float(inner)?;
                if times % 2 == 1 { -v } else { v }
            }
            NumExpr::Chain { first, rest } => {
                let mut acc = self.float(first)?;
                for (op, e) in rest {
                    let rhs = self.float(e)?;
                    acc = match op {
                        ArithOp::Add => acc + rhs,
                        ArithOp::Sub => acc - rhs,
                        ArithOp::Mul => acc * rhs,
                        ArithOp::Div if rhs == 0.0 => return Err(RuntimeError),
                        ArithOp::Div => acc / rhs,
                        ArithOp::Pow => acc.powf(rhs),
                        ArithOp::Rem => return Err(RuntimeError),
                    };
                }
                acc
            }
        })
    }
}

/// One 32-bit integer operation on in-range operands, computed exactly in 64 bits; the
/// result is range-checked by the consumer.
fn int_op(a: i64, op: ArithOp, b: i64) -> Result<i64, RuntimeError> {
    Ok(match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div if b == 0 => return Err(RuntimeError),
        ArithOp::Div => a / b,
        ArithOp::Rem if b == 0 => return Err(RuntimeError),
        ArithOp::Rem => a % b,
        ArithOp::Pow => {
            // A negative exponent gives 0 in the reference's integer power.
            if b < 0 {
                0
            } else {
                match a {
                    0 => i64::from(b == 0),
                    1 => 1,
                    -1 => {
                        if b % 2 == 0 {
                            1
                        } else {
                            -1
                        }
                    }
                    _ => {
                        let mut acc: i64 = 1;
                        for _ in 0..b {
                            acc = acc.checked_mul(a).ok_or(RuntimeError)?;
                            if !I32.contains(&acc) {
                                return Err(RuntimeError);
                            }
                        }
                        acc
                    }
                }
            }
        }
    })
}

fn cmp(o: std::cmp::Ordering, op: CmpOp) -> bool {
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Eq => o == Equal,
        CmpOp::Ne => o != Equal,
        CmpOp::Lt => o == Less,
        CmpOp::Le => o != Greater,
        CmpOp::Gt => o == Greater,
        CmpOp::Ge => o != Less,
    }
}

/// Whether evaluating `t` when its value is not needed (errors off, see `Evaluator::test`) can
/// change nothing: no nested `&&`/`||`, which turns errors back on for the rest of the operand
/// (docs/REFERENCE-QUIRKS.md), and no `~=`, which clears the captures. Comparisons and
/// constants only compute a value, so skipping them is exact; it keeps a 10,000-clause policy
/// from converting every `@n` of the clauses its first comparison already ruled out.
fn inert(t: &Test) -> bool {
    let mut t = t;
    loop {
        match t {
            Test::True | Test::False | Test::Str(..) | Test::Int(..) | Test::Float(..) => {
                return true;
            }
            Test::Not { inner, .. } => t = inner,
            Test::And(_) | Test::Or(_) | Test::Regex(..) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_int_digit_fast_path_matches_the_float_conversion() {
        let slow = |s: &str| {
            let f = numeric_prefix(s).floor();
            if f > f64::from(i32::MAX) || f < f64::from(i32::MIN) || f.is_nan() {
                i64::from(i32::MIN)
            } else {
                f as i64
            }
        };
        for s in [
            "",
            "0",
            "7",
            "007",
            "123",
            "999999999",
            "1000000000",
            "2147483647",
            "2147483648",
            "99999999999",
            "1.5",
            "12.",
            ".5",
            "-1",
            "+1",
            "12a",
            " 1",
            "1e3",
            "000000000",
        ] {
            assert_eq!(to_int(s), slow(s), "{s:?}");
        }
        for n in (0..1_000_000_000i64).step_by(7_919_993) {
            assert_eq!(to_int(&n.to_string()), n);
        }
    }
}
