//! How a source attribute is read from a Graph user object, shared by scoping, mappings and
//! expressions so that `[extensionAttribute1]` or `manager` mean the same thing everywhere.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use crate::expr::{AttributeSource, Value};

/// A source user's attributes as Graph returned them (`$select`ed properties, directory
/// extensions as top-level `extension_<appId>_<name>` keys, `manager` expanded or as an id),
/// read by Entra's attribute-name rules: what scoping filters, mappings and expressions see.
#[derive(Debug, Clone, Copy)]
pub struct SourceAttributes<'a> {
    attributes: &'a Map<String, Json>,
}

impl<'a> SourceAttributes<'a> {
    pub fn new(attributes: &'a Map<String, Json>) -> SourceAttributes<'a> {
        SourceAttributes { attributes }
    }

    pub fn raw(&self) -> &'a Map<String, Json> {
        self.attributes
    }

    /// The attribute's JSON value, or `None` when absent. Lookup order:
    /// 1. the exact key; 2. a key equal ignoring ASCII case (Entra attribute names are not case
    ///    sensitive); 3. `extensionAttribute1..15` inside `onPremisesExtensionAttributes`, where Graph
    ///    nests them while Entra's schema shows them flat.
    ///
    /// `manager` expanded as an object yields its `id`, the only part a mapping uses.
    pub fn json(&self, name: &str) -> Option<Cow<'a, Json>> {
        let found = self.attributes.get(name).or_else(|| {
            self.attributes
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        let found = match found {
            Some(v) => Some(v),
            None if is_on_premises_extension_attribute(name) => self
                .attributes
                .get("onPremisesExtensionAttributes")
                .and_then(Json::as_object)
                .and_then(|nested| {
                    nested
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                }),
            None => None,
        }?;
        if name.eq_ignore_ascii_case("manager")
            && let Json::Object(manager) = found
        {
            return Some(Cow::Owned(manager.get("id").cloned().unwrap_or(Json::Null)));
        }
        Some(Cow::Borrowed(found))
    }

    /// The source object id of the user's manager, if one is set.
    pub fn manager_id(&self) -> Option<String> {
        match self.json("manager")?.as_ref() {
            Json::String(id) if !id.is_empty() => Some(id.clone()),
            _ => None,
        }
    }
}

fn is_on_premises_extension_attribute(name: &str) -> bool {
    name.len() > "extensionAttribute".len()
        && name[.."extensionAttribute".len()].eq_ignore_ascii_case("extensionAttribute")
        && name["extensionAttribute".len()..]
            .parse::<u8>()
            .is_ok_and(|n| (1..=15).contains(&n))
}

impl AttributeSource for SourceAttributes<'_> {
    fn attribute(&self, name: &str) -> Value {
        self.json(name)
            .map(|v| Value::from_json(v.as_ref()))
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: Json) -> Map<String, Json> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn reads_exact_then_case_insensitive() {
        let u = user(json!({"department": "Sales", "JobTitle": "Dev"}));
        let s = SourceAttributes::new(&u);
        assert_eq!(s.json("department").as_deref(), Some(&json!("Sales")));
        assert_eq!(s.json("jobTitle").as_deref(), Some(&json!("Dev")));
        assert_eq!(s.json("city"), None);
        assert_eq!(s.attribute("city"), Value::Null);
    }

    #[test]
    fn reads_nested_on_premises_extension_attributes() {
        let u = user(json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "x"}}));
        let s = SourceAttributes::new(&u);
        assert_eq!(s.json("extensionAttribute3").as_deref(), Some(&json!("x")));
        assert_eq!(s.json("extensionAttribute16"), None);
    }

    #[test]
    fn manager_as_object_or_id() {
        let expanded =
            user(json!({"manager": {"@odata.type": "#microsoft.graph.user", "id": "m1"}}));
        assert_eq!(
            SourceAttributes::new(&expanded).manager_id().as_deref(),
            Some("m1")
        );
        let plain = user(json!({"manager": "m2"}));
        assert_eq!(
            SourceAttributes::new(&plain).manager_id().as_deref(),
            Some("m2")
        );
        let none = user(json!({"manager": null}));
        assert_eq!(SourceAttributes::new(&none).manager_id(), None);
    }
}
