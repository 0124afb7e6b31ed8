//! Entra's attribute-mapping expression language: lexer, parser, AST, evaluator and function
//! library. Pure: no IO, and time and randomness come from the caller.
//!
//! Public API contract used by `mapping` (keep these names and shapes stable):
//! `Expression::parse`, `Expression::evaluate`, `Expression::referenced_attributes`,
//! `Expression::source`, `Value`, `AttributeSource`, `EvalContext`, `Outcome`.
//!
//! Module map: `lexer` → `parser` (→ `ast`, which also prints) → `check` (types and arity,
//! against `catalog`) → `eval` (special forms) → `functions::*` (one file per family);
//! `dotnet` holds .NET date/time format parsing and formatting, `diacritics` Entra's
//! NormalizeDiacritics table.
//!
//! Decisions where Microsoft's reference is silent (each is tested):
//! - Null in, null out for string functions, except `Left`/`Word` (documented `""`).
//! - String functions given a multi-valued value apply to each value (Cloud Sync documents
//!   this for `Trim([proxyAddresses])`).
//! - `Join` skips null and empty sources (documented example `Join(", ", "", ...)`); with no
//!   value at all it is null. `Split` trims the pieces (documented example output).
//! - `Switch`: a null source matches the `""` key; an omitted default is null.
//! - `IIF`: a comparison in the condition that reads a null or empty attribute makes the IIF
//!   null ("the condition check fails"); function conditions like `IsPresent` evaluate.
//! - Comparisons: case-sensitive ordinal strings; numeric when a side is a number.
//! - Dates render as `M/d/yyyy h:mm:ss tt` in UTC; inputs without an offset are UTC; the
//!   host culture is en-US and its zone UTC (as Entra's `Now()` output shows).

mod ast;
mod catalog;
mod check;
mod diacritics;
mod dotnet;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod value;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use ast::{CmpOp, Node, NodeKind, Span};
pub use catalog::{FUNCTIONS, Param, ParamKind, Signature};
pub use error::{EvalError, EvalErrorKind, ParseError};
pub use parser::MAX_EXPRESSION_CHARS;
pub use value::{AttributeSource, Value};

/// Everything an evaluation may need from outside: the clock, randomness and a uniqueness
/// check, so that evaluation stays pure and tests are deterministic.
pub struct EvalContext<'a> {
    /// What `Now()` returns.
    pub now: DateTime<Utc>,
    /// Source of randomness for `Guid()` and `RandomString()`: returns uniformly random `u64`s.
    pub random: &'a mut dyn FnMut() -> u64,
    /// Asked by `SelectUniqueValue`: is this candidate value free in the target?
    pub is_unique: &'a dyn Fn(&str) -> bool,
}

/// The result of evaluating a mapping expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Value(Value),
    /// `IgnoreFlowIfNullOrEmpty` fired: do not write the target attribute at all.
    Ignore,
}

/// A parsed, type-checked expression. Parse once per configuration, evaluate per user:
/// cloning shares the tree.
#[derive(Debug, Clone)]
pub struct Expression {
    source: Arc<str>,
    root: Arc<Node>,
}

impl Expression {
    /// Parses and type-checks `source`. Errors carry line, column and a caret rendering
    /// (`ParseError::render`).
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        let root = parser::parse(source)?;
        check::check(source, &root)?;
        Ok(Expression {
            source: Arc::from(source),
            root: Arc::new(root),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax tree (spans index into `source()`).
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The expression in canonical form (what `ctsync validate` and logs show).
    pub fn canonical(&self) -> String {
        self.root.to_string()
    }

    /// Every `[attribute]` the expression reads.
    pub fn referenced_attributes(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.root.walk(&mut |node| {
            if let NodeKind::Attribute(name) = &node.kind {
                names.insert(name.clone());
            }
        });
        names
    }

    /// Whether the result must be shown as `[Redact]` in logs (the expression uses `Redact`).
    pub fn is_redacted(&self) -> bool {
        let mut found = false;
        self.root.walk(&mut |node| {
            if matches!(&node.kind, NodeKind::Call { name, .. } if name == "Redact") {
                found = true;
            }
        });
        found
    }

    /// Whether the top-level function is `SelectUniqueValue` (an `EvalErrorKind::NoUniqueValue`
    /// failure then means "escrow the entry").
    pub fn selects_unique_value(&self) -> bool {
        matches!(&self.root.kind, NodeKind::Call { name, .. } if name == "SelectUniqueValue")
    }

    pub fn evaluate(
        &self,
        attributes: &dyn AttributeSource,
        ctx: &mut EvalContext<'_>,
    ) -> Result<Outcome, EvalError> {
        eval::evaluate(&self.root, attributes, ctx)
    }
}

/// Reads a date/time the way `CDate` does (ISO 8601 with or without offset, en-US
/// `M/d/yyyy h:mm:ss tt`, ...), as UTC. Handy for test clocks such as `__now_utc`.
pub fn parse_utc(text: &str) -> Result<DateTime<Utc>, String> {
    dotnet::parse_lenient(text).map(|at| at.and_utc())
}

impl std::fmt::Display for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn expression_is_shareable() {
        assert_send_sync_clone::<Expression>();
    }

    #[test]
    fn referenced_attributes_and_redaction() {
        let e = Expression::parse("Redact(Join(\"@\", [mailNickname], [domain], [mailNickname]))")
            .unwrap();
        assert_eq!(
            e.referenced_attributes().into_iter().collect::<Vec<_>>(),
            vec!["domain".to_string(), "mailNickname".to_string()]
        );
        assert!(e.is_redacted());
        assert!(!Expression::parse("[a]").unwrap().is_redacted());
    }
}
