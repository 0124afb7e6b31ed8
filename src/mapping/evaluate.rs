//! Running a compiled [`MappingSet`] against one source user.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{
    Apply, AttributeFailure, AttributeTrace, CompiledMapping, DesiredValue, ManagerReference,
    MapMode, MappedUser, MappingKind, MappingSet, MatchingValue, SourceAttributes, TargetType,
    TraceResult,
};
use crate::expr::{EvalContext, Outcome};

/// What one mapping produced before target typing and defaults.
enum Produced {
    Value(Json),
    Ignore,
    Failed(String),
}

pub(super) fn map_user(
    set: &MappingSet,
    user: &SourceAttributes<'_>,
    mode: MapMode,
    ctx: &mut EvalContext<'_>,
    explain: bool,
) -> MappedUser {
    let mut out = MappedUser::default();
    for mapping in &set.mappings {
        let writes = mode == MapMode::Create || mapping.apply == Apply::Always;
        let result = if !writes && mapping.matching_priority.is_none() {
            // Not evaluated: `onCreate` mappings may call Guid()/SelectUniqueValue, whose side
            // effects (randomness, uniqueness queries) must not happen on updates.
            TraceResult::OnCreateOnly
        } else if mapping.target_type == TargetType::Reference {
            map_manager(mapping, user, writes, &mut out)
        } else {
            map_value(mapping, user, mode, ctx, writes, &mut out)
        };
        if explain {
            out.breakdown.push(trace(mapping, user, result));
        }
    }
    out.matching.sort_by_key(|m| m.priority);
    out
}

fn map_manager(
    mapping: &CompiledMapping,
    user: &SourceAttributes<'_>,
    writes: bool,
    out: &mut MappedUser,
) -> TraceResult {
    let MappingKind::Direct { source } = &mapping.kind else {
        // `compile` only accepts direct mappings for reference targets.
        return TraceResult::Error("a reference attribute takes a direct mapping".into());
    };
    let id = user.json(source).and_then(|v| match v.as_ref() {
        Json::String(id) if !id.is_empty() => Some(id.clone()),
        _ => None,
    });
    // `Clear` also on create: the same output may serve a later update (see
    // `MappedUser::split_by_apply`), and clearing nothing on a new user is harmless.
    let reference = match id {
        Some(source_object_id) => ManagerReference::Set { source_object_id },
        None => ManagerReference::Clear,
    };
    if writes {
        out.manager = reference.clone();
    }
    TraceResult::Reference(reference)
}

fn map_value(
    mapping: &CompiledMapping,
    user: &SourceAttributes<'_>,
    mode: MapMode,
    ctx: &mut EvalContext<'_>,
    writes: bool,
    out: &mut MappedUser,
) -> TraceResult {
    let produced = match &mapping.kind {
        MappingKind::Direct { source } => Produced::Value(
            user.json(source)
                .map(|v| v.into_owned())
                .unwrap_or(Json::Null),
        ),
        MappingKind::Constant { value } => Produced::Value(value.clone()),
        MappingKind::Expression { expression, .. } => match expression.evaluate(user, ctx) {
            Ok(Outcome::Value(value)) => Produced::Value(value.to_json()),
            Ok(Outcome::Ignore) => Produced::Ignore,
            Err(e) => Produced::Failed(e.to_string()),
        },
    };
    let typed = match produced {
        Produced::Ignore => {
            if writes {
                out.ignored.insert(mapping.target.clone());
            }
            return TraceResult::Ignored;
        }
        Produced::Failed(message) => Err(message),
        Produced::Value(value) => mapping.target_type.coerce(value),
    };
    let (value, from_default) = match typed {
        Err(message) => {
            out.errors.push(AttributeFailure {
                target: mapping.target.clone(),
                message: message.clone(),
            });
            return TraceResult::Error(message);
        }
        Ok(Some(value)) => (value, false),
        Ok(None) => match (&mapping.default, mode) {
            (Some(default), MapMode::Create) => (default.clone(), true),
            _ => return TraceResult::Null,
        },
    };
    if let Some(priority) = mapping.matching_priority {
        out.matching.push(MatchingValue {
            priority,
            attribute: mapping.target.clone(),
            value: value.clone(),
        });
    }
    if !writes {
        return TraceResult::OnCreateOnly;
    }
    let result = if from_default {
        TraceResult::Default(value.clone())
    } else {
        TraceResult::Value(value.clone())
    };
    out.attributes.insert(
        mapping.target.clone(),
        DesiredValue {
            value,
            apply: mapping.apply,
            from_default,
        },
    );
    result
}

fn trace(
    mapping: &CompiledMapping,
    user: &SourceAttributes<'_>,
    result: TraceResult,
) -> AttributeTrace {
    let read = |names: &mut dyn Iterator<Item = &String>| -> BTreeMap<String, Json> {
        names
            .map(|n| {
                (
                    n.clone(),
                    user.json(n).map(|v| v.into_owned()).unwrap_or(Json::Null),
                )
            })
            .collect()
    };
    let (expression, source_values) = match &mapping.kind {
        MappingKind::Direct { source } => {
            (format!("[{source}]"), read(&mut std::iter::once(source)))
        }
        MappingKind::Constant { value } => (
            match value {
                Json::String(s) => format!("\"{s}\""),
                other => other.to_string(),
            },
            BTreeMap::new(),
        ),
        MappingKind::Expression { expression, reads } => {
            (expression.source().to_owned(), read(&mut reads.iter()))
        }
    };
    AttributeTrace {
        target: mapping.target.clone(),
        kind: mapping.kind.label(),
        apply: mapping.apply,
        expression,
        source_values,
        matching_priority: mapping.matching_priority,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{AttributeMappingSpec, compile};
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    const EXT: &str = "extension_0123456789abcdef0123456789abcdef_costCenter";

    fn run(specs: &[AttributeMappingSpec], user: Json, mode: MapMode) -> MappedUser {
        let set = compile(specs).expect("compiles");
        let map = user.as_object().expect("object").clone();
        let mut random = || 4_u64;
        let is_unique = |_: &str| true;
        let mut ctx = EvalContext {
            now: Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("valid date"),
            random: &mut random,
            is_unique: &is_unique,
        };
        set.explain_user(&SourceAttributes::new(&map), mode, &mut ctx)
    }

    fn value(mapped: &MappedUser, target: &str) -> Option<Json> {
        mapped.attributes.get(target).map(|d| d.value.clone())
    }

    #[test]
    fn direct_copies_the_source_value() {
        let m = run(
            &[AttributeMappingSpec::direct("displayName", "displayName")],
            json!({"displayName": "Ada"}),
            MapMode::Update,
        );
        assert_eq!(value(&m, "displayName"), Some(json!("Ada")));
        assert_eq!(m.breakdown[0].expression, "[displayName]");
        assert_eq!(m.breakdown[0].source_values["displayName"], json!("Ada"));
        assert_eq!(m.breakdown[0].result, TraceResult::Value(json!("Ada")));
    }

    #[test]
    fn direct_can_rename_and_null_is_not_written() {
        let specs = [AttributeMappingSpec::direct("jobTitle", "department")];
        let m = run(&specs, json!({"department": "R&D"}), MapMode::Update);
        assert_eq!(value(&m, "jobTitle"), Some(json!("R&D")));
        for empty in [
            json!({}),
            json!({"department": null}),
            json!({"department": ""}),
        ] {
            let m = run(&specs, empty, MapMode::Update);
            assert!(m.attributes.is_empty());
            assert_eq!(m.breakdown[0].result, TraceResult::Null);
        }
    }

    #[test]
    fn constant_is_typed_for_the_target() {
        let m = run(
            &[
                AttributeMappingSpec::constant("showInAddressList", "true"),
                AttributeMappingSpec::constant("companyName", "Contoso"),
            ],
            json!({}),
            MapMode::Update,
        );
        assert_eq!(value(&m, "showInAddressList"), Some(json!(true)));
        assert_eq!(value(&m, "companyName"), Some(json!("Contoso")));
        assert_eq!(m.breakdown[1].expression, "\"Contoso\"");
    }

    #[test]
    fn default_applies_on_create_only() {
        let specs = [AttributeMappingSpec {
            default: Some("Unknown".into()),
            ..AttributeMappingSpec::direct("department", "department")
        }];
        let created = run(&specs, json!({}), MapMode::Create);
        assert_eq!(
            created.attributes.get("department"),
            Some(&DesiredValue {
                value: json!("Unknown"),
                apply: Apply::Always,
                from_default: true
            })
        );
        assert_eq!(
            created.breakdown[0].result,
            TraceResult::Default(json!("Unknown"))
        );
        let updated = run(&specs, json!({}), MapMode::Update);
        assert!(updated.attributes.is_empty());
        // A present source value wins over the default.
        let present = run(&specs, json!({"department": "Sales"}), MapMode::Create);
        assert_eq!(value(&present, "department"), Some(json!("Sales")));
    }

    #[test]
    fn create_output_splits_into_update_and_create_views() {
        let specs = [
            AttributeMappingSpec {
                apply: Apply::OnCreate,
                ..AttributeMappingSpec::constant("userType", "Member")
            },
            AttributeMappingSpec {
                default: Some("n/a".into()),
                ..AttributeMappingSpec::direct("department", "department")
            },
            AttributeMappingSpec::direct("city", "city"),
        ];
        let m = run(&specs, json!({"city": "Oslo"}), MapMode::Create);
        let (always, on_create) = m.split_by_apply();
        assert_eq!(
            always,
            BTreeMap::from([("city".to_string(), json!("Oslo"))])
        );
        assert_eq!(
            on_create,
            BTreeMap::from([
                ("department".to_string(), json!("n/a")),
                ("userType".to_string(), json!("Member")),
            ])
        );
    }

    #[test]
    fn on_create_mappings_are_skipped_on_update() {
        let specs = [
            AttributeMappingSpec {
                apply: Apply::OnCreate,
                ..AttributeMappingSpec::constant("userType", "Member")
            },
            AttributeMappingSpec::direct("city", "city"),
        ];
        let created = run(&specs, json!({"city": "Oslo"}), MapMode::Create);
        assert_eq!(value(&created, "userType"), Some(json!("Member")));
        assert_eq!(created.attributes["userType"].apply, Apply::OnCreate);
        let updated = run(&specs, json!({"city": "Oslo"}), MapMode::Update);
        assert_eq!(value(&updated, "userType"), None);
        assert_eq!(value(&updated, "city"), Some(json!("Oslo")));
        assert_eq!(updated.breakdown[0].result, TraceResult::OnCreateOnly);
    }

    #[test]
    fn directory_extensions_on_either_side() {
        let specs = [
            AttributeMappingSpec::direct(EXT, "department"),
            AttributeMappingSpec::direct("employeeId", EXT),
        ];
        let m = run(
            &specs,
            json!({"department": "D1", EXT: "CC-7"}),
            MapMode::Update,
        );
        assert_eq!(value(&m, EXT), Some(json!("D1")));
        assert_eq!(value(&m, "employeeId"), Some(json!("CC-7")));
        // Multi-valued extensions are not supported: the attribute fails, the user is not exported.
        let multi = run(&specs, json!({"department": ["a", "b"]}), MapMode::Update);
        assert_eq!(multi.errors.len(), 1);
        assert_eq!(multi.errors[0].target, EXT);
    }

    #[test]
    fn manager_is_a_source_reference_and_is_cleared_on_update() {
        let specs = [AttributeMappingSpec::direct("manager", "manager")];
        let set = run(
            &specs,
            json!({"manager": {"id": "src-mgr"}}),
            MapMode::Update,
        );
        let expected = ManagerReference::Set {
            source_object_id: "src-mgr".into(),
        };
        assert_eq!(set.manager, expected.clone());
        assert!(
            set.attributes.is_empty(),
            "manager is never a plain attribute"
        );
        assert_eq!(set.breakdown[0].result, TraceResult::Reference(expected));
        let cleared = run(&specs, json!({"manager": null}), MapMode::Update);
        assert_eq!(cleared.manager, ManagerReference::Clear);
        let created = run(&specs, json!({}), MapMode::Create);
        assert_eq!(created.manager, ManagerReference::Clear);
    }

    #[test]
    fn matching_values_in_precedence_order() {
        let specs = [
            AttributeMappingSpec {
                matching_priority: Some(2),
                ..AttributeMappingSpec::direct("mail", "mail")
            },
            AttributeMappingSpec {
                matching_priority: Some(1),
                ..AttributeMappingSpec::direct("employeeId", "employeeId")
            },
            AttributeMappingSpec {
                matching_priority: Some(3),
                ..AttributeMappingSpec::direct("city", "city")
            },
            AttributeMappingSpec {
                matching_priority: Some(0),
                ..AttributeMappingSpec::direct("state", "state")
            },
        ];
        let m = run(
            &specs,
            json!({"mail": "a@x.com", "employeeId": "42", "state": "WA"}),
            MapMode::Create,
        );
        let order: Vec<(u32, &str, Json)> = m
            .matching
            .iter()
            .map(|v| (v.priority, v.attribute.as_str(), v.value.clone()))
            .collect();
        assert_eq!(
            order,
            vec![
                (1, "employeeId", json!("42")),
                (2, "mail", json!("a@x.com"))
            ]
        );
        let set = compile(&specs).expect("compiles");
        assert_eq!(
            set.matching_attributes(),
            vec![(1, "employeeId"), (2, "mail"), (3, "city")]
        );
    }

    #[test]
    fn on_create_matching_mapping_still_matches_on_update() {
        let specs = [AttributeMappingSpec {
            matching_priority: Some(1),
            apply: Apply::OnCreate,
            ..AttributeMappingSpec::direct("mail", "mail")
        }];
        let m = run(&specs, json!({"mail": "a@x.com"}), MapMode::Update);
        assert!(m.attributes.is_empty());
        assert_eq!(m.matching.len(), 1);
    }

    #[test]
    fn type_errors_are_reported_per_attribute() {
        let specs = [
            AttributeMappingSpec::direct("accountEnabled", "department"),
            AttributeMappingSpec::direct("city", "city"),
        ];
        let m = run(
            &specs,
            json!({"department": "Sales", "city": "Oslo"}),
            MapMode::Update,
        );
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].target, "accountEnabled");
        assert_eq!(value(&m, "city"), Some(json!("Oslo")));
        assert!(matches!(m.breakdown[0].result, TraceResult::Error(_)));
    }

    #[test]
    fn default_set_maps_a_typical_user() {
        let m = run(
            &crate::mapping::default_mappings(),
            json!({"id": "u1", "accountEnabled": true, "displayName": "Ada Lovelace",
                   "givenName": "Ada", "surname": "Lovelace", "mail": "ada@contoso.com",
                   "mailNickname": "ada", "department": null, "manager": {"id": "m1"}}),
            MapMode::Create,
        );
        assert_eq!(
            Json::Object(m.patch_body()),
            json!({"accountEnabled": true, "displayName": "Ada Lovelace", "givenName": "Ada",
                   "mail": "ada@contoso.com", "mailNickname": "ada", "showInAddressList": true,
                   "surname": "Lovelace", "userType": "Member"})
        );
        assert_eq!(
            m.manager,
            ManagerReference::Set {
                source_object_id: "m1".into()
            }
        );
        assert!(m.errors.is_empty() && m.ignored.is_empty() && m.matching.is_empty());
        assert_eq!(m.breakdown.len(), crate::mapping::default_mappings().len());
    }

    #[test]
    fn map_user_leaves_the_breakdown_empty() {
        let set = crate::mapping::MappingSet::cts_default();
        let map = json!({"displayName": "A"})
            .as_object()
            .expect("object")
            .clone();
        let mut random = || 0_u64;
        let is_unique = |_: &str| true;
        let mut ctx = EvalContext {
            now: Utc::now(),
            random: &mut random,
            is_unique: &is_unique,
        };
        let m = set.map_user(&SourceAttributes::new(&map), MapMode::Update, &mut ctx);
        assert!(m.breakdown.is_empty());
        assert_eq!(value(&m, "displayName"), Some(json!("A")));
        assert!(set.source_attributes().contains("manager"));
    }

    #[test]
    fn expression_result_and_breakdown() {
        let specs = [AttributeMappingSpec::expression(
            "displayName",
            r#"Join(" ", [givenName], [surname])"#,
        )];
        let m = run(
            &specs,
            json!({"givenName": "Ada", "surname": "Lovelace"}),
            MapMode::Update,
        );
        assert_eq!(value(&m, "displayName"), Some(json!("Ada Lovelace")));
        let t = &m.breakdown[0];
        assert_eq!(t.kind, "expression");
        assert_eq!(t.expression, r#"Join(" ", [givenName], [surname])"#);
        assert_eq!(
            t.source_values,
            BTreeMap::from([
                ("givenName".to_string(), json!("Ada")),
                ("surname".to_string(), json!("Lovelace")),
            ])
        );
        let set = compile(&specs).expect("compiles");
        assert!(set.source_attributes().contains("givenName"));
        assert!(set.source_attributes().contains("surname"));
    }

    #[test]
    fn ignore_flow_leaves_the_attribute_alone() {
        let specs = [AttributeMappingSpec::expression(
            "department",
            "IgnoreFlowIfNullOrEmpty([department])",
        )];
        let m = run(&specs, json!({}), MapMode::Update);
        assert!(m.attributes.is_empty());
        assert!(m.ignored.contains("department"));
        assert_eq!(m.breakdown[0].result, TraceResult::Ignored);
        let present = run(&specs, json!({"department": "Sales"}), MapMode::Update);
        assert_eq!(value(&present, "department"), Some(json!("Sales")));
        assert!(present.ignored.is_empty());
    }

    #[test]
    fn expression_null_takes_the_default_on_create() {
        let specs = [AttributeMappingSpec {
            default: Some("none".into()),
            ..AttributeMappingSpec::expression("jobTitle", "[title]")
        }];
        let created = run(&specs, json!({}), MapMode::Create);
        assert_eq!(
            created.breakdown[0].result,
            TraceResult::Default(json!("none"))
        );
        let updated = run(&specs, json!({}), MapMode::Update);
        assert_eq!(updated.breakdown[0].result, TraceResult::Null);
    }

    #[test]
    fn expression_over_an_extension_attribute() {
        let specs = [AttributeMappingSpec::expression(
            "department",
            &format!("Left([{EXT}], 2)"),
        )];
        let m = run(&specs, json!({EXT: "CC-7"}), MapMode::Update);
        assert_eq!(value(&m, "department"), Some(json!("CC")));
    }

    #[test]
    fn expression_syntax_errors_keep_their_position() {
        let errors = compile(&[
            AttributeMappingSpec::direct("city", "city"),
            AttributeMappingSpec::expression(
                "displayName",
                "Join(\" \",\n  Lefft([givenName], 2))",
            ),
        ])
        .expect_err("invalid");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            (errors[0].index, errors[0].field),
            (1, crate::mapping::MappingField::Expression)
        );
        let position = errors[0].parse_error.as_ref().expect("parse error kept");
        assert_eq!((position.line, position.column), (2, 3), "{position:?}");
        assert!(
            errors[0]
                .to_string()
                .starts_with("mappings[1].expression (target 'displayName'): ")
        );
    }
}
