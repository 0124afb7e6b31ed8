//! Entra's attribute-mapping expression language: lexer, parser, AST, evaluator and function
//! library. Pure: no IO, and time and randomness come from the caller.
//!
//! Public API contract used by `mapping` (keep these names and shapes stable):
//! `Expression::parse`, `Expression::evaluate`, `Expression::referenced_attributes`,
//! `Expression::source`, `Value`, `AttributeSource`, `EvalContext`, `Outcome`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

/// A value as Entra's expression engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    String(String),
    /// A multi-valued attribute or result (e.g. `Split`).
    Multi(Vec<Value>),
}

impl Value {
    /// Converts a Graph JSON value (absent/null → `Null`).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::String(n.to_string()),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Multi(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(_) => Value::String(v.to_string()),
        }
    }

    /// Renders the value as Entra does in JSON (strings, `null`, arrays for multi-valued).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Multi(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
        }
    }
}

/// Where `[attribute]` references are read from. An absent attribute is `Value::Null`.
pub trait AttributeSource {
    fn attribute(&self, name: &str) -> Value;
}

impl AttributeSource for serde_json::Map<String, serde_json::Value> {
    fn attribute(&self, name: &str) -> Value {
        self.get(name).map(Value::from_json).unwrap_or(Value::Null)
    }
}

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

/// A syntax or type error found before evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct ParseError {
    pub message: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
}

/// A failure at evaluation time (bad argument value, index out of range, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{function}: {message}")]
pub struct EvalError {
    pub function: String,
    pub message: String,
}

/// A parsed, type-checked expression. Parse once per configuration, evaluate per user.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
}

impl Expression {
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        Err(ParseError {
            message: format!("expression language not built yet: {source}"),
            line: 1,
            column: 1,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every `[attribute]` the expression reads.
    pub fn referenced_attributes(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }

    pub fn evaluate(
        &self,
        _attributes: &dyn AttributeSource,
        _ctx: &mut EvalContext<'_>,
    ) -> Result<Outcome, EvalError> {
        Err(EvalError {
            function: String::new(),
            message: "not built yet".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_round_trip() {
        let json = serde_json::json!(["a", 1, true, null]);
        assert_eq!(Value::from_json(&json).to_json(), json);
    }
}
