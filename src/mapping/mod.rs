//! Attribute mappings: source user → desired target attributes, with a per-attribute account of
//! how each value was produced. Pure.
//!
//! Contract used by `config`: `AttributeMappingSpec` (serde, camelCase) is one mapping as a
//! pair's YAML holds it; [`compile`] validates a pair's list once (expressions parsed here, never
//! per user) into a [`MappingSet`], whose [`MappingSet::map_user`] runs per source user.
//!
//! Semantics (reference §3, design.md "Semantics"):
//! - `direct` (`source:`), `constant` (`constant:`), `expression` (`expression:`); `apply: always`
//!   (create and update, the default) or `onCreate` (create only);
//! - `default` is used only when creating, when the mapping produced null/empty;
//! - null and empty results are not written (Entra "doesn't support provisioning null values"),
//!   except `manager`, which ctsync clears when the source clears it (an improvement on CTS);
//! - `IgnoreFlowIfNullOrEmpty` firing means "leave the target attribute alone";
//! - `manager` maps the *source* manager's object id as a [`ManagerReference`], resolved to a target
//!   id by the engine in a second pass;
//! - `matchingPriority` > 0 marks matching attributes (lowest first) used to adopt pre-existing B2B
//!   users; 0 means "not used for matching" (Graph `attributeMapping.matchingPriority`).

mod attributes;
mod compile;
mod defaults;
mod evaluate;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[cfg(test)]
pub(crate) use attributes::catalogue_examples;
pub use attributes::{TargetType, USER_TARGETS, is_directory_extension, is_user_target};
pub use compile::{MappingError, MappingField, compile};
pub use defaults::default_mappings;
pub use source::SourceAttributes;

use crate::expr::Expression;

/// When a mapping is written (Entra "Apply this mapping").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Apply {
    /// On create and on every update.
    #[default]
    Always,
    /// Only when the target user is created.
    OnCreate,
}

impl Apply {
    fn is_always(&self) -> bool {
        *self == Apply::Always
    }
}

/// One attribute mapping as configured: `target` plus exactly one of `source`, `constant`,
/// `expression`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeMappingSpec {
    /// Target attribute name (e.g. `displayName`, `extension_<appId>_costCenter`, `manager`).
    pub target: String,
    /// Direct mapping: the source attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Constant mapping. YAML scalars (`true`, `42`) are accepted and kept as their text.
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub constant: Option<String>,
    /// Expression mapping, in Entra's expression language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Used on create when the mapping produces null or empty.
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<String>,
    /// `always` (default) or `onCreate`.
    #[serde(default, skip_serializing_if = "Apply::is_always")]
    pub apply: Apply,
    /// >0: used to match pre-existing B2B users, lowest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_priority: Option<u32>,
}

impl AttributeMappingSpec {
    pub fn direct(target: &str, source: &str) -> AttributeMappingSpec {
        AttributeMappingSpec {
            target: target.into(),
            source: Some(source.into()),
            constant: None,
            expression: None,
            default: None,
            apply: Apply::Always,
            matching_priority: None,
        }
    }

    pub fn constant(target: &str, value: &str) -> AttributeMappingSpec {
        AttributeMappingSpec {
            source: None,
            constant: Some(value.into()),
            ..AttributeMappingSpec::direct(target, "")
        }
    }

    pub fn expression(target: &str, expression: &str) -> AttributeMappingSpec {
        AttributeMappingSpec {
            source: None,
            expression: Some(expression.into()),
            ..AttributeMappingSpec::direct(target, "")
        }
    }
}

/// Accepts any YAML/JSON scalar as text, so `constant: true` reads like `constant: "true"`.
fn scalar_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct Scalar;
    impl<'de> serde::de::Visitor<'de> for Scalar {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, Boolean or number")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(Scalar)
        }
    }
    deserializer.deserialize_any(Scalar)
}

/// How a compiled mapping produces its value.
#[derive(Debug, Clone)]
pub enum MappingKind {
    Direct {
        source: String,
    },
    /// Already converted to the target's type.
    Constant {
        value: serde_json::Value,
    },
    Expression {
        expression: Expression,
        /// `[attribute]`s the expression reads, for `$select` and the breakdown.
        reads: Vec<String>,
    },
}

impl MappingKind {
    pub fn label(&self) -> &'static str {
        match self {
            MappingKind::Direct { .. } => "direct",
            MappingKind::Constant { .. } => "constant",
            MappingKind::Expression { .. } => "expression",
        }
    }
}

/// One validated mapping.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    pub target: String,
    pub target_type: TargetType,
    pub kind: MappingKind,
    /// Already converted to the target's type.
    pub default: Option<serde_json::Value>,
    pub apply: Apply,
    /// `Some(p)` with p > 0 when used for matching.
    pub matching_priority: Option<u32>,
}

/// A pair's mappings, validated once per configuration.
#[derive(Debug, Clone)]
pub struct MappingSet {
    mappings: Vec<CompiledMapping>,
    source_attributes: BTreeSet<String>,
}

/// What the mapping is computed for. `Create` evaluates every mapping and fills defaults (flagged
/// [`DesiredValue::from_default`]), so its output also yields the update view
/// ([`MappedUser::split_by_apply`]); `Update` skips `onCreate` mappings and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MapMode {
    Create,
    Update,
}

/// One desired target attribute value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredValue {
    pub value: serde_json::Value,
    pub apply: Apply,
    /// The mapping produced null and its `default` was used (creates only).
    pub from_default: bool,
}

/// The `manager` reference to set on the target, in source terms: the mapping's output and the
/// planner's input alike (the manager pass resolves it through anchors).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ManagerReference {
    /// No manager mapping (or an `onCreate` one during an update): references are left alone.
    #[default]
    NotMapped,
    /// Set the target manager to the target user linked to this source object id.
    #[serde(rename_all = "camelCase")]
    Set { source_object_id: String },
    /// The source user has no manager: remove the target's (nothing to do on a create).
    Clear,
}

/// A matching attribute's value, for adopting a pre-existing B2B user (the mapping's output and
/// the planner's input).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchingValue {
    pub priority: u32,
    /// The target attribute to search.
    pub attribute: String,
    pub value: serde_json::Value,
}

/// A mapping that could not produce a value for this user (the user's export should fail).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeFailure {
    pub target: String,
    pub message: String,
}

/// What one mapping did, as on-demand provisioning shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeTrace {
    pub target: String,
    pub kind: &'static str,
    pub apply: Apply,
    /// Entra's "Expression" column: `[source]`, `"constant"` or the expression text.
    pub expression: String,
    /// The source attributes read, with their values (null when absent).
    pub source_values: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching_priority: Option<u32>,
    pub result: TraceResult,
}

/// The outcome of one mapping for one user.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TraceResult {
    /// Written with this value.
    Value(serde_json::Value),
    /// Null/empty: written as the mapping's default (create).
    Default(serde_json::Value),
    /// Null/empty: nothing is written.
    Null,
    /// `IgnoreFlowIfNullOrEmpty`: the attribute is left alone.
    Ignored,
    /// An `onCreate` mapping during an update: not evaluated.
    OnCreateOnly,
    /// The manager reference to resolve.
    Reference(ManagerReference),
    Error(String),
}

/// The mapping output for one source user.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappedUser {
    /// Attributes to write, by target name (for an update: `always` mappings only).
    pub attributes: BTreeMap<String, DesiredValue>,
    /// Attributes whose mapping asked not to be written (`IgnoreFlowIfNullOrEmpty`).
    pub ignored: BTreeSet<String>,
    /// `NotMapped` when there is no manager mapping or nothing to do about it.
    pub manager: ManagerReference,
    /// Matching values in precedence order (lowest priority first); null values are left out.
    pub matching: Vec<MatchingValue>,
    /// Mappings that failed; when not empty the user must not be exported.
    pub errors: Vec<AttributeFailure>,
    /// Per-mapping breakdown; filled only by [`MappingSet::explain_user`].
    pub breakdown: Vec<AttributeTrace>,
}

impl MappedUser {
    /// The planner's view: `(always, on_create)`. `always` is what an update writes (`always`
    /// mappings that produced a value); `on_create` adds what only a create writes (`onCreate`
    /// mappings and defaults). Computed from a [`MapMode::Create`] mapping, both views come from
    /// one evaluation.
    pub fn split_by_apply(
        &self,
    ) -> (
        BTreeMap<String, serde_json::Value>,
        BTreeMap<String, serde_json::Value>,
    ) {
        let mut always = BTreeMap::new();
        let mut on_create = BTreeMap::new();
        for (target, desired) in &self.attributes {
            if desired.apply == Apply::Always && !desired.from_default {
                always.insert(target.clone(), desired.value.clone());
            } else {
                on_create.insert(target.clone(), desired.value.clone());
            }
        }
        (always, on_create)
    }

    /// The attribute values as a Graph PATCH body (manager and ignored attributes excluded).
    pub fn patch_body(&self) -> serde_json::Map<String, serde_json::Value> {
        self.attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }
}

impl MappingSet {
    /// Same as [`compile`].
    pub fn compile(specs: &[AttributeMappingSpec]) -> Result<MappingSet, Vec<MappingError>> {
        compile(specs)
    }

    /// CTS's default mapping set, compiled.
    pub fn cts_default() -> MappingSet {
        // The default set has no expression and only valid constants; a unit test compiles it,
        // so the error arm is unreachable.
        compile(&default_mappings()).unwrap_or_else(|errors| {
            unreachable!("the built-in default mappings do not compile: {errors:?}")
        })
    }

    pub fn mappings(&self) -> &[CompiledMapping] {
        &self.mappings
    }

    /// Every source attribute any mapping reads (for Graph `$select`; `manager` needs `$expand`).
    pub fn source_attributes(&self) -> &BTreeSet<String> {
        &self.source_attributes
    }

    /// Matching target attributes in precedence order.
    pub fn matching_attributes(&self) -> Vec<(u32, &str)> {
        let mut list: Vec<(u32, &str)> = self
            .mappings
            .iter()
            .filter_map(|m| m.matching_priority.map(|p| (p, m.target.as_str())))
            .collect();
        list.sort_unstable();
        list
    }

    /// Maps one source user. `ctx` supplies the clock, randomness and uniqueness check.
    pub fn map_user(
        &self,
        user: &SourceAttributes<'_>,
        mode: MapMode,
        ctx: &mut crate::expr::EvalContext<'_>,
    ) -> MappedUser {
        evaluate::map_user(self, user, mode, ctx, false)
    }

    /// Like [`MappingSet::map_user`], and also fills [`MappedUser::breakdown`].
    pub fn explain_user(
        &self,
        user: &SourceAttributes<'_>,
        mode: MapMode,
        ctx: &mut crate::expr::EvalContext<'_>,
    ) -> MappedUser {
        evaluate::map_user(self, user, mode, ctx, true)
    }
}
