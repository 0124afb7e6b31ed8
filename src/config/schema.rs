//! Structural validation of a YAML tree against `config/syncpair.schema.json`, the same file
//! editors use, so the CLI and the editor cannot disagree. Supports the JSON Schema subset that
//! file uses: `type`, `properties`, `additionalProperties`, `required`, `enum`, `items`,
//! `$ref` (local), `pattern`, `minimum`, `maximum`, `exclusiveMinimum`, `minLength`,
//! `minItems`, plus the `x-ctsync-hint` annotation for the fix shown to the user.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value as Json;

use super::tree::{Node, Pos, Value};

/// The schema, embedded at build time.
pub const SCHEMA_JSON: &str = include_str!("../../config/syncpair.schema.json");

/// One structural problem.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaProblem {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

struct Schema {
    root: Json,
    patterns: HashMap<String, Regex>,
}

fn schema() -> Result<&'static Schema, String> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let root: Json = serde_json::from_str(SCHEMA_JSON)
                .map_err(|e| format!("embedded schema is not JSON: {e}"))?;
            let mut patterns = HashMap::new();
            collect_patterns(&root, &mut patterns)?;
            Ok(Schema { root, patterns })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn collect_patterns(v: &Json, out: &mut HashMap<String, Regex>) -> Result<(), String> {
    match v {
        Json::Object(map) => {
            if let Some(Json::String(p)) = map.get("pattern") {
                let re = Regex::new(p).map_err(|e| format!("bad pattern {p}: {e}"))?;
                out.insert(p.clone(), re);
            }
            map.values().try_for_each(|c| collect_patterns(c, out))
        }
        Json::Array(items) => items.iter().try_for_each(|c| collect_patterns(c, out)),
        _ => Ok(()),
    }
}

/// Checks one document against the schema, returning every problem found.
pub fn validate(doc: &Node) -> Vec<SchemaProblem> {
    let schema = match schema() {
        Ok(s) => s,
        Err(e) => {
            return vec![SchemaProblem {
                pos: doc.pos,
                message: e,
                hint: None,
            }];
        }
    };
    let mut out = Vec::new();
    let mut path = Vec::new();
    check(
        schema,
        &schema.root,
        doc,
        doc.pos,
        &mut path,
        &mut out,
        None,
    );
    out
}

/// Checks a node against one `$defs` entry (used to hold the Rust types to the schema).
#[cfg(test)]
fn validate_def(def: &str, node: &Node) -> Vec<SchemaProblem> {
    let schema = schema().expect("embedded schema");
    let mut out = Vec::new();
    let s = &schema.root["$defs"][def];
    assert!(s.is_object(), "no $defs/{def}");
    check(schema, s, node, node.pos, &mut Vec::new(), &mut out, None);
    out
}

fn resolve<'a>(schema: &'a Schema, mut s: &'a Json) -> &'a Json {
    // `$ref` chains are short; the bound guards against a self-referencing schema.
    for _ in 0..16 {
        match s.get("$ref").and_then(Json::as_str) {
            Some(r) => match r
                .strip_prefix("#/$defs/")
                .and_then(|n| schema.root["$defs"].get(n))
            {
                Some(target) => s = target,
                None => return s,
            },
            None => return s,
        }
    }
    s
}

fn hint_of(s: &Json) -> Option<String> {
    s.get("x-ctsync-hint")
        .and_then(Json::as_str)
        .map(str::to_owned)
}

fn type_matches(ty: &str, node: &Node) -> bool {
    matches!(
        (ty, &node.value),
        ("null", Value::Null)
            | ("boolean", Value::Bool(_))
            | ("integer", Value::Int(_))
            | ("number", Value::Int(_) | Value::Float(_))
            | ("string", Value::String(_))
            | ("array", Value::Seq(_))
            | ("object", Value::Map(_))
    )
}

fn describe_type(ty: &str) -> &str {
    match ty {
        "boolean" => "true or false",
        "integer" => "a whole number",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        "null" => "null",
        other => other,
    }
}

fn display_path(path: &[String]) -> String {
    if path.is_empty() {
        "the document".to_owned()
    } else {
        format!("`{}`", path.join("."))
    }
}

/// `anchor` is where the node is named: its key in the parent mapping, or its own position
/// for list items and the document (a missing field is reported there).
fn check(
    schema: &Schema,
    s: &Json,
    node: &Node,
    anchor: Pos,
    path: &mut Vec<String>,
    out: &mut Vec<SchemaProblem>,
    outer_hint: Option<String>,
) {
    let s = resolve(schema, s);
    let hint = hint_of(s).or(outer_hint);
    if let Some(ty) = s.get("type") {
        let types: Vec<&str> = match ty {
            Json::String(t) => vec![t.as_str()],
            Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.iter().any(|t| type_matches(t, node)) {
            let expected: Vec<&str> = types.iter().map(|t| describe_type(t)).collect();
            out.push(SchemaProblem {
                pos: node.pos,
                message: format!(
                    "{} must be {}, found {}",
                    display_path(path),
                    expected.join(" or "),
                    node.kind()
                ),
                hint,
            });
            return;
        }
    }
    if let Some(Json::Array(allowed)) = s.get("enum") {
        let here = node.to_json();
        if !allowed.contains(&here) {
            let names: Vec<String> = allowed
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let got = match &here {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            let suggestion = closest(&got, names.iter().map(String::as_str));
            out.push(SchemaProblem {
                pos: node.pos,
                message: format!("{} has unknown value `{got}`", display_path(path)),
                hint: Some(match suggestion {
                    Some(sug) => format!("did you mean `{sug}`? allowed: {}", names.join(", ")),
                    None => format!("allowed: {}", names.join(", ")),
                }),
            });
            return;
        }
    }
    match &node.value {
        Value::String(text) => {
            if let Some(min) = s.get("minLength").and_then(Json::as_u64)
                && (text.chars().count() as u64) < min
            {
                out.push(SchemaProblem {
                    pos: node.pos,
                    message: format!("{} must not be empty", display_path(path)),
                    hint: hint.clone(),
                });
            }
            if let Some(p) = s.get("pattern").and_then(Json::as_str)
                && let Some(re) = schema.patterns.get(p)
                && !re.is_match(text)
            {
                out.push(SchemaProblem {
                    pos: node.pos,
                    message: format!("{} has an invalid value `{text}`", display_path(path)),
                    hint: hint.or_else(|| Some(format!("it must match {p}"))),
                });
            }
        }
        Value::Int(_) | Value::Float(_) => {
            let v = match node.value {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
                _ => 0.0,
            };
            let bound = |k: &str| s.get(k).and_then(Json::as_f64);
            let mut fail = |msg: String| {
                out.push(SchemaProblem {
                    pos: node.pos,
                    message: format!("{} {msg}", display_path(path)),
                    hint: hint.clone(),
                })
            };
            if let Some(min) = bound("minimum")
                && v < min
            {
                fail(format!("must be at least {min}"));
            }
            if let Some(min) = bound("exclusiveMinimum")
                && v <= min
            {
                fail(format!("must be greater than {min}"));
            }
            if let Some(max) = bound("maximum")
                && v > max
            {
                fail(format!("must be at most {max}"));
            }
        }
        Value::Seq(items) => {
            if let Some(min) = s.get("minItems").and_then(Json::as_u64)
                && (items.len() as u64) < min
            {
                out.push(SchemaProblem {
                    pos: node.pos,
                    message: format!(
                        "{} needs at least {min} item{}",
                        display_path(path),
                        if min == 1 { "" } else { "s" }
                    ),
                    hint: hint.clone(),
                });
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    check(schema, item_schema, item, item.pos, path, out, None);
                    path.pop();
                }
            }
        }
        Value::Map(entries) => {
            let props = s.get("properties").and_then(Json::as_object);
            if let Some(Json::Array(required)) = s.get("required") {
                for r in required.iter().filter_map(Json::as_str) {
                    if !entries.iter().any(|(k, _)| k.name == r) {
                        out.push(SchemaProblem {
                            pos: anchor,
                            message: format!(
                                "{} is missing the required field `{r}`",
                                display_path(path)
                            ),
                            hint: Some(format!("add `{r}:`")),
                        });
                    }
                }
            }
            for (key, value) in entries {
                let prop = props.and_then(|p| p.get(&key.name));
                match (prop, s.get("additionalProperties")) {
                    (Some(ps), _) => {
                        path.push(key.name.clone());
                        check(schema, ps, value, key.pos, path, out, None);
                        path.pop();
                    }
                    (None, Some(Json::Bool(false))) => {
                        let known: Vec<&str> = props
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let hint = match closest(&key.name, known.iter().copied()) {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => format!("allowed here: {}", known.join(", ")),
                        };
                        out.push(SchemaProblem {
                            pos: key.pos,
                            message: format!(
                                "unknown field `{}` in {}",
                                key.name,
                                display_path(path)
                            ),
                            hint: Some(hint),
                        });
                    }
                    (None, Some(extra @ Json::Object(_))) => {
                        path.push(key.name.clone());
                        check(schema, extra, value, key.pos, path, out, None);
                        path.pop();
                    }
                    (None, _) => {}
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let c = ["tenantId", "credentials"];
        assert_eq!(closest("tenantid", c.iter().copied()), Some("tenantId"));
        assert_eq!(closest("tenant_Id", c.iter().copied()), Some("tenantId"));
        assert_eq!(closest("zzz", c.iter().copied()), None);
    }

    /// Every field of the Rust types owned by `mapping` and `scope` is in the schema (a new
    /// field there must be added to `config/syncpair.schema.json` too, or pairs using it
    /// would be refused), and every filter operator the scope module knows is allowed.
    #[test]
    fn rust_types_fit_the_schema() {
        let mapping = crate::mapping::AttributeMappingSpec {
            target: "mail".into(),
            source: Some("mail".into()),
            constant: Some("c".into()),
            expression: Some("[mail]".into()),
            default: Some("d".into()),
            apply: crate::mapping::Apply::OnCreate,
            matching_priority: Some(1),
        };
        let filter = crate::scope::ScopingFilter {
            title: "t".into(),
            clauses: vec![crate::scope::FilterClause {
                attribute: "department".into(),
                operator: crate::scope::FilterOperator::Equals,
                value: Some("Sales".into()),
            }],
        };
        let cases = [
            ("mapping", serde_json::to_string(&mapping).unwrap()),
            ("scopingFilter", serde_json::to_string(&filter).unwrap()),
        ];
        let mut cases = cases.to_vec();
        for op in crate::scope::FilterOperator::ALL {
            let clause = crate::scope::FilterClause {
                attribute: "department".into(),
                operator: op,
                value: Some("1".into()),
            };
            cases.push(("filterClause", serde_json::to_string(&clause).unwrap()));
        }
        for (def, json) in cases {
            // JSON is YAML: parse it with the same tree builder the loader uses.
            let docs = super::super::tree::parse_documents(&json).unwrap();
            let problems = validate_def(def, &docs[0]);
            assert!(problems.is_empty(), "{def}: {problems:?}");
        }
    }

    #[test]
    fn embedded_schema_loads_and_every_pattern_compiles() {
        assert!(schema().is_ok());
    }
}
