//! Functions on multi-valued attributes (and Join/Split, which build or flatten them).
//! A single value counts as a one-element list; null as an empty one.

use super::super::value::Value;
use super::strings::compare_is_text;
use super::{Result, arg, int_arg};
use crate::expr::error::EvalError;

pub fn count(args: &[Option<Value>]) -> Result<Value> {
    Ok(Value::Int(arg(args, 0).values().len() as i64))
}

/// 1-based; an index outside the values is an error (Cloud Sync reference: "Throws an error
/// if index is out of bounds").
pub fn item(args: &[Option<Value>]) -> Result<Value> {
    let source = arg(args, 0);
    let Some(index) = int_arg("Item", "index", args, 1)? else {
        return Ok(Value::Null);
    };
    if source.is_null() {
        return Ok(Value::Null);
    }
    let values = source.values();
    if index < 1 || index as u64 > values.len() as u64 {
        return Err(EvalError::invalid(
            "Item",
            format!(
                "index {index} is out of range: the attribute has {} value(s) (indexes start at 1)",
                values.len()
            ),
        ));
    }
    Ok(values[(index - 1) as usize].clone())
}

/// Joins every non-empty value (multi-valued sources contribute each value). Skipping
/// empty strings follows Entra's documented example `Join(", ", "", [surname], [givenName])`
/// → `"Doe, John"`. With no value at all the result is null.
pub fn join(args: &[Option<Value>]) -> Result<Value> {
    let separator = arg(args, 0).text_or_empty().into_owned();
    let mut parts: Vec<String> = Vec::new();
    let mut any_value = false;
    for i in 1..args.len() {
        for v in arg(args, i).values() {
            any_value = true;
            if let Some(t) = v.text()
                && !t.is_empty()
            {
                parts.push(t.into_owned());
            }
        }
    }
    if !any_value {
        return Ok(Value::Null);
    }
    Ok(Value::String(parts.join(&separator)))
}

/// Keeps the first of each value (case-sensitive), in order.
pub fn remove_duplicates(args: &[Option<Value>]) -> Result<Value> {
    match arg(args, 0) {
        Value::Multi(items) => {
            let mut seen: Vec<&Value> = Vec::with_capacity(items.len());
            for item in items {
                if !seen.contains(&item) {
                    seen.push(item);
                }
            }
            Ok(Value::Multi(seen.into_iter().cloned().collect()))
        }
        other => Ok(other.clone()),
    }
}

/// Splits on the delimiter and trims the pieces: Entra's example splits
/// "PermissionSetOne, PermissionSetTwo" on "," into ["PermissionSetOne", "PermissionSetTwo"].
pub fn split(args: &[Option<Value>]) -> Result<Value> {
    let delimiter = arg(args, 1).text_or_empty().into_owned();
    let source = arg(args, 0);
    let Some(text) = source.text() else {
        return Ok(Value::Null);
    };
    if delimiter.is_empty() {
        return Ok(Value::Multi(vec![Value::String(text.trim().to_string())]));
    }
    Ok(Value::Multi(
        text.split(delimiter.as_str())
            .map(|p| Value::String(p.trim().to_string()))
            .collect(),
    ))
}

/// Cloud Sync `Contains`: the 1-based index of the first value containing `value`
/// (case-sensitive unless vbTextCompare), 0 when none does.
pub fn contains(args: &[Option<Value>]) -> Result<Value> {
    let needle = arg(args, 1).text_or_empty().into_owned();
    let text_compare = compare_is_text(arg(args, 2));
    let fold = |s: &str| {
        if text_compare {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let needle = fold(&needle);
    let index = arg(args, 0)
        .values()
        .iter()
        .position(|v| fold(&v.text_or_empty()).contains(&needle))
        .map_or(0, |i| i as i64 + 1);
    Ok(Value::Int(index))
}

/// A role name from an app role assignment: the value itself, or for an assignment object
/// (JSON) its `appRoleValue`, `value` or `displayName`.
fn role_name(v: &Value) -> Option<Value> {
    let text = v.text()?;
    if text.trim_start().starts_with('{')
        && let Ok(serde_json::Value::Object(obj)) = serde_json::from_str(&text)
    {
        for key in ["appRoleValue", "value", "displayName"] {
            if let Some(serde_json::Value::String(s)) = obj.get(key) {
                return Some(Value::String(s.clone()));
            }
        }
    }
    Some(Value::String(text.into_owned()))
}

pub fn app_role_assignments_complex(args: &[Option<Value>]) -> Result<Value> {
    let source = arg(args, 0);
    if source.is_null() {
        return Ok(Value::Null);
    }
    Ok(Value::Multi(
        source.values().into_iter().filter_map(role_name).collect(),
    ))
}

pub fn single_app_role_assignment(args: &[Option<Value>]) -> Result<Value> {
    let values = arg(args, 0).values();
    match values.as_slice() {
        [] => Ok(Value::Null),
        [one] => Ok(role_name(one).unwrap_or(Value::Null)),
        many => Err(EvalError::invalid(
            "SingleAppRoleAssignment",
            format!(
                "the user has {} app role assignments; SingleAppRoleAssignment supports exactly one",
                many.len()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(v: &str) -> Value {
        Value::String(v.into())
    }
    fn multi(items: &[&str]) -> Option<Value> {
        Some(Value::Multi(items.iter().map(|s| st(s)).collect()))
    }

    #[test]
    fn count_and_item() {
        assert_eq!(count(&[multi(&["a", "b", "c"])]).unwrap(), Value::Int(3));
        assert_eq!(count(&[Some(Value::Null)]).unwrap(), Value::Int(0));
        assert_eq!(count(&[Some(st("x"))]).unwrap(), Value::Int(1));
        assert_eq!(
            item(&[multi(&["a", "b"]), Some(Value::Int(1))]).unwrap(),
            st("a")
        );
        assert!(item(&[multi(&["a", "b"]), Some(Value::Int(3))]).is_err());
        assert!(item(&[multi(&["a"]), Some(Value::Int(0))]).is_err());
    }

    #[test]
    fn join_skips_empty_and_expands_multi() {
        assert_eq!(
            join(&[
                Some(st(", ")),
                Some(st("")),
                Some(st("Doe")),
                Some(st("John"))
            ])
            .unwrap(),
            st("Doe, John")
        );
        assert_eq!(
            join(&[
                Some(st(",")),
                multi(&["a", "b"]),
                Some(Value::Null),
                Some(Value::Int(3))
            ])
            .unwrap(),
            st("a,b,3")
        );
        assert_eq!(
            join(&[Some(st(",")), Some(Value::Null)]).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn duplicates_split_contains() {
        assert_eq!(
            remove_duplicates(&[multi(&["a", "A", "a", "b"])]).unwrap(),
            Value::Multi(vec![st("a"), st("A"), st("b")])
        );
        assert_eq!(
            split(&[Some(st("One, Two,,Three")), Some(st(","))]).unwrap(),
            Value::Multi(vec![st("One"), st("Two"), st(""), st("Three")])
        );
        assert_eq!(
            contains(&[multi(&["smtp:a", "SMTP:b"]), Some(st("SMTP:"))]).unwrap(),
            Value::Int(2)
        );
        assert_eq!(
            contains(&[
                multi(&["smtp:a", "SMTP:b"]),
                Some(st("SMTP:")),
                Some(st("vbTextCompare"))
            ])
            .unwrap(),
            Value::Int(1)
        );
    }

    #[test]
    fn app_roles() {
        assert_eq!(
            single_app_role_assignment(&[multi(&["Default Assignment"])]).unwrap(),
            st("Default Assignment")
        );
        assert!(single_app_role_assignment(&[multi(&["a", "b"])]).is_err());
        assert_eq!(
            app_role_assignments_complex(&[multi(&[r#"{"appRoleValue":"Admin"}"#, "User"])])
                .unwrap(),
            Value::Multi(vec![st("Admin"), st("User")])
        );
    }
}
