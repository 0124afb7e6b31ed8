//! Running a compiled [`MappingSet`] against one source user.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{
    Apply, AttributeFailure, AttributeTrace, CompiledMapping, DesiredValue, ManagerReference,
    MapMode, MappedUser, MappingKind, MappingSet, MatchingValue, SourceUser, TargetType,
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
    user: &SourceUser<'_>,
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
            map_manager(mapping, user, mode, writes, &mut out)
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
    user: &SourceUser<'_>,
    mode: MapMode,
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
    let reference = match (id, mode) {
        (Some(source_object_id), _) => ManagerReference::Set { source_object_id },
        (None, MapMode::Update) => ManagerReference::Clear,
        // Nothing to clear on a user being created.
        (None, MapMode::Create) => return TraceResult::Null,
    };
    if writes {
        out.manager = Some(reference.clone());
    }
    TraceResult::Reference(reference)
}

fn map_value(
    mapping: &CompiledMapping,
    user: &SourceUser<'_>,
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

fn trace(mapping: &CompiledMapping, user: &SourceUser<'_>, result: TraceResult) -> AttributeTrace {
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
