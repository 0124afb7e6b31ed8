//! Validation of a pair's mappings into a [`MappingSet`]: every problem is reported with the
//! mapping's index and field, and expression syntax errors keep their line/column inside the
//! expression, so `config` can point at file:line:col.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;

use super::attributes::{extension_name_problem, unwritable_target};
use super::{AttributeMappingSpec, CompiledMapping, MappingKind, MappingSet, TargetType};
use crate::expr::{Expression, ParseError};

/// The field of a mapping an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MappingField {
    Target,
    Source,
    Constant,
    Expression,
    Default,
    Apply,
    MatchingPriority,
}

impl fmt::Display for MappingField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MappingField::Target => "target",
            MappingField::Source => "source",
            MappingField::Constant => "constant",
            MappingField::Expression => "expression",
            MappingField::Default => "default",
            MappingField::Apply => "apply",
            MappingField::MatchingPriority => "matchingPriority",
        })
    }
}

/// One invalid mapping field. `index` is 0-based in the pair's `mappings` list.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("mappings[{index}].{field} (target '{target}'): {message}")]
pub struct MappingError {
    pub index: usize,
    pub target: String,
    pub field: MappingField,
    pub message: String,
    /// For expression syntax/type errors: where inside the expression text.
    pub parse_error: Option<ParseError>,
}

const MANAGER_DIRECT_ONLY: &str =
    "manager is a reference attribute: map it directly (`source: manager`)";

/// Validates a pair's mappings. Expressions are parsed here, once.
pub fn compile(specs: &[AttributeMappingSpec]) -> Result<MappingSet, Vec<MappingError>> {
    let mut errors = Vec::new();
    let mut mappings = Vec::with_capacity(specs.len());
    let mut targets: HashMap<String, usize> = HashMap::new();
    let mut priorities: HashMap<u32, usize> = HashMap::new();
    for (index, spec) in specs.iter().enumerate() {
        let mut error = |field: MappingField, message: String| {
            errors.push(MappingError {
                index,
                target: spec.target.clone(),
                field,
                message,
                parse_error: None,
            });
        };
        let target = spec.target.trim();
        if target.is_empty() {
            error(
                MappingField::Target,
                "the target attribute name is empty".into(),
            );
            continue;
        }
        if let Some(problem) = extension_name_problem(target) {
            error(MappingField::Target, problem);
        }
        if let Some(why) = unwritable_target(target) {
            error(MappingField::Target, why.into());
        }
        if let Some(first) = targets.insert(target.to_ascii_lowercase(), index) {
            error(
                MappingField::Target,
                format!("'{target}' is already mapped by mappings[{first}]"),
            );
        }
        let target_type = TargetType::of(target);
        if let Some(priority) = spec.matching_priority.filter(|p| *p > 0) {
            if target_type == TargetType::Reference {
                error(
                    MappingField::MatchingPriority,
                    "a reference attribute cannot be used for matching".into(),
                );
            }
            if let Some(first) = priorities.insert(priority, index) {
                error(
                    MappingField::MatchingPriority,
                    format!("matching priority {priority} is already used by mappings[{first}]"),
                );
            }
        }

        let given: Vec<MappingField> = [
            (spec.source.is_some(), MappingField::Source),
            (spec.constant.is_some(), MappingField::Constant),
            (spec.expression.is_some(), MappingField::Expression),
        ]
        .into_iter()
        .filter_map(|(present, field)| present.then_some(field))
        .collect();
        let kind = match given.as_slice() {
            [] => {
                error(
                    MappingField::Target,
                    "one of `source`, `constant` or `expression` is required".into(),
                );
                None
            }
            [_, second, ..] => {
                error(
                    *second,
                    format!(
                        "give only one of `source`, `constant` or `expression` (found {})",
                        given
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                );
                None
            }
            [MappingField::Source] => {
                let source = spec.source.as_deref().unwrap_or_default().trim();
                if source.is_empty() {
                    error(
                        MappingField::Source,
                        "the source attribute name is empty".into(),
                    );
                    None
                } else if let Some(problem) = extension_name_problem(source) {
                    error(MappingField::Source, problem);
                    None
                } else {
                    Some(MappingKind::Direct {
                        source: source.to_owned(),
                    })
                }
            }
            [MappingField::Constant] if target_type == TargetType::Reference => {
                error(MappingField::Target, MANAGER_DIRECT_ONLY.into());
                None
            }
            [MappingField::Constant] => {
                let text = spec.constant.clone().unwrap_or_default();
                match target_type.coerce(serde_json::Value::String(text)) {
                    Ok(Some(value)) => Some(MappingKind::Constant { value }),
                    Ok(None) => {
                        error(
                            MappingField::Constant,
                            "an empty constant would never be written (Entra does not provision empty values)".into(),
                        );
                        None
                    }
                    Err(message) => {
                        error(MappingField::Constant, message);
                        None
                    }
                }
            }
            [_] => {
                let text = spec.expression.as_deref().unwrap_or_default();
                match Expression::parse(text) {
                    Ok(expression) => {
                        let reads: Vec<String> =
                            expression.referenced_attributes().into_iter().collect();
                        for name in &reads {
                            if let Some(problem) = extension_name_problem(name) {
                                error(MappingField::Expression, problem);
                            }
                        }
                        Some(MappingKind::Expression { expression, reads })
                    }
                    Err(parse_error) => {
                        errors.push(MappingError {
                            index,
                            target: spec.target.clone(),
                            field: MappingField::Expression,
                            message: parse_error.to_string(),
                            parse_error: Some(parse_error),
                        });
                        None
                    }
                }
            }
        };
        // `error` borrows `errors` mutably; re-create it after the expression arm used `errors`.
        let mut error = |field: MappingField, message: String| {
            errors.push(MappingError {
                index,
                target: spec.target.clone(),
                field,
                message,
                parse_error: None,
            });
        };

        if target_type == TargetType::Reference
            && !matches!(kind, None | Some(MappingKind::Direct { .. }))
        {
            error(MappingField::Target, MANAGER_DIRECT_ONLY.into());
        }
        let default = match spec.default.as_deref() {
            None => None,
            Some(_) if target_type == TargetType::Reference => {
                error(
                    MappingField::Default,
                    "a reference attribute cannot have a default".into(),
                );
                None
            }
            Some(_) if matches!(kind, Some(MappingKind::Constant { .. })) => {
                error(
                    MappingField::Default,
                    "a constant mapping is never null, so its default would never be used".into(),
                );
                None
            }
            Some(text) => match target_type.coerce(serde_json::Value::String(text.to_owned())) {
                Ok(value) => value,
                Err(message) => {
                    error(MappingField::Default, message);
                    None
                }
            },
        };
        if let Some(kind) = kind {
            mappings.push(CompiledMapping {
                target: target.to_owned(),
                target_type,
                kind,
                default,
                apply: spec.apply,
                matching_priority: spec.matching_priority.filter(|p| *p > 0),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let source_attributes: BTreeSet<String> = mappings
        .iter()
        .flat_map(|m| match &m.kind {
            MappingKind::Direct { source } => vec![source.clone()],
            MappingKind::Constant { .. } => Vec::new(),
            MappingKind::Expression { reads, .. } => reads.clone(),
        })
        .collect();
    Ok(MappingSet {
        mappings,
        source_attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Apply;

    fn spec(yaml_like: serde_json::Value) -> AttributeMappingSpec {
        serde_json::from_value(yaml_like).expect("spec parses")
    }

    fn errors_of(specs: Vec<serde_json::Value>) -> Vec<(usize, MappingField)> {
        let specs: Vec<AttributeMappingSpec> = specs.into_iter().map(spec).collect();
        compile(&specs)
            .expect_err("invalid")
            .into_iter()
            .map(|e| (e.index, e.field))
            .collect()
    }

    #[test]
    fn spec_reads_yaml_shapes() {
        let s = spec(
            serde_json::json!({"target": "showInAddressList", "constant": true,
            "apply": "onCreate", "matchingPriority": 2}),
        );
        assert_eq!(s.constant.as_deref(), Some("true"));
        assert_eq!(s.apply, Apply::OnCreate);
        assert_eq!(s.matching_priority, Some(2));
        assert!(
            serde_json::from_value::<AttributeMappingSpec>(
                serde_json::json!({"target": "x", "source": "y", "apply": "sometimes"})
            )
            .is_err()
        );
    }

    #[test]
    fn kind_is_required_and_unique() {
        use serde_json::json;
        assert_eq!(
            errors_of(vec![json!({"target": "displayName"})]),
            vec![(0, MappingField::Target)]
        );
        assert_eq!(
            errors_of(vec![
                json!({"target": "displayName", "source": "displayName", "constant": "x"})
            ]),
            vec![(0, MappingField::Constant)]
        );
    }

    #[test]
    fn targets_are_checked() {
        use serde_json::json;
        assert_eq!(
            errors_of(vec![
                json!({"target": "displayName", "source": "displayName"}),
                json!({"target": "DisplayName", "source": "givenName"}),
                json!({"target": "otherMails", "source": "mail"}),
                json!({"target": "extension_abc_cost", "source": "department"}),
                // Read-only in Graph (user.md); a source attribute only.
                json!({"target": "imAddresses", "source": "imAddresses"}),
            ]),
            vec![
                (1, MappingField::Target),
                (2, MappingField::Target),
                (3, MappingField::Target),
                (4, MappingField::Target)
            ]
        );
    }

    #[test]
    fn constants_defaults_and_manager_are_checked() {
        use serde_json::json;
        assert_eq!(
            errors_of(vec![
                json!({"target": "accountEnabled", "constant": "maybe"}),
                json!({"target": "department", "constant": "x", "default": "y"}),
                json!({"target": "manager", "constant": "x"}),
                json!({"target": "showInAddressList", "source": "x", "default": "no"}),
                json!({"target": "city", "source": "extension_nothex_city"}),
            ]),
            vec![
                (0, MappingField::Constant),
                (1, MappingField::Default),
                (2, MappingField::Target),
                (3, MappingField::Default),
                (4, MappingField::Source),
            ]
        );
    }

    #[test]
    fn matching_priorities_must_be_unique() {
        use serde_json::json;
        assert_eq!(
            errors_of(vec![
                json!({"target": "mail", "source": "mail", "matchingPriority": 1}),
                json!({"target": "employeeId", "source": "employeeId", "matchingPriority": 1}),
                json!({"target": "manager", "source": "manager", "matchingPriority": 2}),
            ]),
            vec![
                (1, MappingField::MatchingPriority),
                (2, MappingField::MatchingPriority)
            ]
        );
    }

    #[test]
    fn error_message_names_index_field_and_target() {
        let errors = compile(&[AttributeMappingSpec::constant("accountEnabled", "maybe")])
            .expect_err("invalid");
        assert_eq!(
            errors[0].to_string(),
            "mappings[0].constant (target 'accountEnabled'): 'maybe' is not a Boolean (expected true or false)"
        );
    }
}
