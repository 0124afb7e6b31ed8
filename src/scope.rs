//! Assignment scope and scoping filters. Pure.
//!
//! Contract used by `config`: `ScopingFilter` (serde, camelCase) is what a pair's YAML holds.

use serde::{Deserialize, Serialize};

/// One scoping filter: its clauses are ANDed; a pair's filters are ORed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopingFilter {
    pub title: String,
    pub clauses: Vec<FilterClause>,
}

/// One condition on one source attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterClause {
    pub attribute: String,
    /// Entra's operator label, e.g. `EQUALS`, `IS NOT NULL`, `Greater_Than`.
    pub operator: String,
    #[serde(default)]
    pub value: Option<String>,
}
