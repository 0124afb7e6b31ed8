//! Values as Entra's expression engine sees them, and the conversions functions share.

use std::borrow::Cow;

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

    /// Renders the value in JSON keeping its type (booleans and numbers stay JSON scalars).
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

    /// Renders the value as Entra's expression evaluation does: every scalar as a string
    /// (`"True"`, `"7"`), `null`, and arrays for multi-valued results.
    pub fn to_entra_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Multi(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_entra_json).collect())
            }
            scalar => match scalar.text() {
                Some(t) => serde_json::Value::String(t.into_owned()),
                None => serde_json::Value::Null,
            },
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Null, the empty string, or a multi-valued value without values.
    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Multi(items) => items.iter().all(Value::is_null_or_empty),
            Value::Bool(_) | Value::Int(_) => false,
        }
    }

    /// The value as text, .NET style (`True`/`False`, decimal integers). A multi-valued value
    /// stands for its first value where one string is needed; `None` for null.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Null => None,
            Value::Bool(true) => Some(Cow::Borrowed("True")),
            Value::Bool(false) => Some(Cow::Borrowed("False")),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::String(s) => Some(Cow::Borrowed(s)),
            Value::Multi(items) => items.first().and_then(Value::text),
        }
    }

    /// Text, with null as the empty string.
    pub fn text_or_empty(&self) -> Cow<'_, str> {
        self.text().unwrap_or(Cow::Borrowed(""))
    }

    /// An integer, from a number or a string holding one (surrounding spaces allowed).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::String(s) => parse_int(s),
            Value::Multi(items) if items.len() == 1 => items[0].as_int(),
            _ => None,
        }
    }

    /// A boolean as .NET's `Convert.ToBoolean` reads one: `True`/`False` in any case, or a
    /// number (non-zero is true).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            Value::String(s) => {
                let t = s.trim();
                if t.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if t.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    parse_int(t).map(|i| i != 0)
                }
            }
            Value::Multi(items) if items.len() == 1 => items[0].as_bool(),
            _ => None,
        }
    }

    /// The values of a multi-valued value, or the value itself as a one-element list (none
    /// for null).
    pub fn values(&self) -> Vec<&Value> {
        match self {
            Value::Null => Vec::new(),
            Value::Multi(items) => items.iter().filter(|v| !v.is_null()).collect(),
            other => vec![other],
        }
    }
}

/// Integer parsing as VBA does for numeric strings: decimal, optional sign, and a
/// fractional part truncated toward zero.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(i);
    }
    if let Some(hex) = t.strip_prefix("&H").or_else(|| t.strip_prefix("&h")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    let f: f64 = t.parse().ok()?;
    (f.is_finite() && f.abs() < 9.2e18).then(|| f.trunc() as i64)
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

impl AttributeSource for std::collections::HashMap<String, Value> {
    fn attribute(&self, name: &str) -> Value {
        self.get(name).cloned().unwrap_or(Value::Null)
    }
}

impl AttributeSource for std::collections::BTreeMap<String, Value> {
    fn attribute(&self, name: &str) -> Value {
        self.get(name).cloned().unwrap_or(Value::Null)
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

    #[test]
    fn entra_rendering_uses_strings() {
        let v = Value::Multi(vec![Value::Bool(true), Value::Int(7), Value::Null]);
        assert_eq!(v.to_entra_json(), serde_json::json!(["True", "7", null]));
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::String(" 12 ".into()).as_int(), Some(12));
        assert_eq!(Value::String("1.9".into()).as_int(), Some(1));
        assert_eq!(Value::String("TRUE".into()).as_bool(), Some(true));
        assert_eq!(Value::String("maybe".into()).as_bool(), None);
        assert!(Value::Multi(vec![Value::String(String::new())]).is_null_or_empty());
    }
}
