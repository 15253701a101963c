//! The action-environment file of the reference `keynote verify -e`: `name = "value"`
//! assignments, `#` comments, C-style string escapes (see the conformance corpus README).

use crate::limits::MAX_ENV_FILE_LEN;
use crate::parser::{ExprError, parse_env_assignments};
use thiserror::Error;

/// Why an action-environment file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnvFileError {
    /// The text does not match `name = "value"` assignments (at least one is required).
    #[error("syntax error at line {line}")]
    Syntax {
        /// Line number, from 1.
        line: usize,
        /// The underlying parse error, with byte offsets into the file.
        source: ExprError,
    },
    /// A name starting with `_`: those are reserved for the checker (RFC 2704 4.3).
    #[error("line {line}: reserved attribute name {name:?}")]
    Reserved {
        /// The name.
        name: String,
        /// Line number, from 1.
        line: usize,
    },
    /// The file is longer than [`MAX_ENV_FILE_LEN`].
    #[error("environment file longer than {MAX_ENV_FILE_LEN} bytes")]
    TooLong,
}

impl EnvFileError {
    /// The line the error is on (1 for size errors).
    pub fn line(&self) -> usize {
        match self {
            EnvFileError::Syntax { line, .. } | EnvFileError::Reserved { line, .. } => *line,
            EnvFileError::TooLong => 1,
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Parse an action-environment file into `(name, value)` pairs, in file order.
pub fn parse_action_environment(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    if text.len() > MAX_ENV_FILE_LEN {
        return Err(EnvFileError::TooLong);
    }
    let list = parse_env_assignments(text).map_err(|e| EnvFileError::Syntax {
        line: line_of(text, e.span.start),
        source: e,
    })?;
    list.into_iter()
        .map(|(name, value, span)| {
            if name.starts_with('_') {
                Err(EnvFileError::Reserved {
                    name,
                    line: line_of(text, span.start),
                })
            } else {
                Ok((name, value))
            }
        })
        .collect()
}
