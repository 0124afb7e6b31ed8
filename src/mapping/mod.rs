//! Attribute mappings: source user → desired target attributes, with a per-attribute account of
//! how each value was produced. Pure.
//!
//! Contract used by `config`: `AttributeMappingSpec` (serde, camelCase) is one mapping as a
//! pair's YAML holds it.

use serde::{Deserialize, Serialize};

/// One attribute mapping as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeMappingSpec {
    /// Target attribute name (e.g. `displayName`, `extension_<appId>_costCenter`, `manager`).
    pub target: String,
    /// Direct mapping: the source attribute.
    #[serde(default)]
    pub source: Option<String>,
    /// Constant mapping.
    #[serde(default)]
    pub constant: Option<String>,
    /// Expression mapping.
    #[serde(default)]
    pub expression: Option<String>,
    /// Used on create when the source evaluates to null.
    #[serde(default)]
    pub default: Option<String>,
    /// `always` (default) or `onCreate`.
    #[serde(default)]
    pub apply: Option<String>,
    /// >0: used to match pre-existing B2B users, lowest first.
    #[serde(default)]
    pub matching_priority: Option<u32>,
}
