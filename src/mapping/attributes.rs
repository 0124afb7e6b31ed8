//! What ctsync knows about target attributes: their Graph type (to turn mapping results into the
//! JSON Graph accepts), directory extension names, and attributes that must never be written.

use serde::Serialize;
use serde_json::Value as Json;

/// The shape a target attribute takes in Graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetType {
    String,
    Boolean,
    /// A collection of strings (`businessPhones`).
    StringCollection,
    /// `manager`: resolved by the engine, never written as a value.
    Reference,
    /// `extension_<appId>_<name>`: single-valued (multi-valued extensions are not supported by CTS).
    DirectoryExtension,
    /// Not known to ctsync: written as produced.
    Unknown,
}

const BOOLEAN: &[&str] = &["accountEnabled", "showInAddressList"];
const STRING_COLLECTIONS: &[&str] = &["businessPhones"];
const STRINGS: &[&str] = &[
    "ageGroup",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "department",
    "displayName",
    "employeeId",
    "employeeType",
    "faxNumber",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "postalCode",
    "preferredLanguage",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// Every property of Graph v1.0's `user` a mapping may target (the CSDL's writable ones), and
/// `manager` (a reference the engine resolves). Read-only properties are refused separately,
/// with their own reason ([`unwritable_target`]).
pub const USER_TARGETS: &[&str] = &[
    "accountEnabled",
    "ageGroup",
    "businessPhones",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "faxNumber",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "manager",
    "mobilePhone",
    "officeLocation",
    "onPremisesExtensionAttributes",
    "passwordPolicies",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "showInAddressList",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// Is `name` a Graph user property (writable or not) or `manager`? Directory extensions are
/// not: see [`is_directory_extension`].
pub fn is_user_target(name: &str) -> bool {
    USER_TARGETS.iter().any(|a| a.eq_ignore_ascii_case(name)) || unwritable_target(name).is_some()
}

/// Target attributes Graph or CTS does not let a sync write (Microsoft "known issues": `otherMails`
/// is computed, `proxyAddresses` is read-only; the rest are read-only in Graph).
pub(crate) fn unwritable_target(name: &str) -> Option<&'static str> {
    const READ_ONLY: &[&str] = &[
        "id",
        "proxyAddresses",
        "creationType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "createdDateTime",
        "deletedDateTime",
        "identities",
        "onPremisesSyncEnabled",
        "onPremisesImmutableId",
        // user.md: "imAddresses … Read-only." (a source attribute only)
        "imAddresses",
    ];
    if name.eq_ignore_ascii_case("otherMails") {
        Some(
            "otherMails is computed by the target directory and must not be mapped (Entra known issue)",
        )
    } else if READ_ONLY.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        Some("this attribute is read-only in Microsoft Graph")
    } else {
        None
    }
}

/// Every user property a mapping may target (`manager` aside), with an example value of its
/// shape: what a read of the source or target must not drop (`graph::User` keeps each).
#[cfg(test)]
pub(crate) fn catalogue_examples() -> Vec<(&'static str, Json)> {
    USER_TARGETS
        .iter()
        .filter(|n| **n != "manager")
        .map(|n| {
            let example = match TargetType::of(n) {
                TargetType::Boolean => Json::Bool(false),
                TargetType::StringCollection => serde_json::json!(["+1 555 0100"]),
                _ if *n == "onPremisesExtensionAttributes" => {
                    serde_json::json!({"extensionAttribute1": "x"})
                }
                _ if *n == "employeeOrgData" => serde_json::json!({"division": "x"}),
                _ => Json::String("x".into()),
            };
            (*n, example)
        })
        .collect()
}

impl TargetType {
    pub fn of(name: &str) -> TargetType {
        let is = |list: &[&str]| list.iter().any(|a| a.eq_ignore_ascii_case(name));
        if name.eq_ignore_ascii_case("manager") {
            TargetType::Reference
        } else if is_directory_extension(name) {
            TargetType::DirectoryExtension
        } else if is(BOOLEAN) {
            TargetType::Boolean
        } else if is(STRING_COLLECTIONS) {
            TargetType::StringCollection
        } else if is(STRINGS) {
            TargetType::String
        } else {
            TargetType::Unknown
        }
    }
}

/// `extension_<appId without hyphens: 32 hex digits>_<name>`.
pub fn is_directory_extension(name: &str) -> bool {
    extension_name_problem(name).is_none() && name.starts_with("extension_")
}

/// Why a name that starts with `extension_` is not a valid directory extension name.
pub(crate) fn extension_name_problem(name: &str) -> Option<String> {
    let rest = name.strip_prefix("extension_")?;
    let (app_id, attribute) = rest.split_once('_').unwrap_or((rest, ""));
    if app_id.len() != 32 || !app_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(format!(
            "'{name}' is not a directory extension name: expected extension_<application id without hyphens (32 hex digits)>_<name>"
        ));
    }
    if attribute.is_empty()
        || !attribute
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Some(format!(
            "'{name}' is not a directory extension name: the part after the application id must be letters, digits or '_'"
        ));
    }
    None
}

fn is_empty(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        Json::Array(items) => items.iter().all(is_empty),
        _ => false,
    }
}

/// .NET `Boolean.TryParse`.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn scalar_text(value: Json) -> Result<String, String> {
    match value {
        Json::String(s) => Ok(s),
        // .NET Boolean.ToString().
        Json::Bool(true) => Ok("True".into()),
        Json::Bool(false) => Ok("False".into()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Array(_) => {
            Err("a multi-valued result cannot be written to a single-valued attribute".into())
        }
        Json::Object(_) | Json::Null => {
            Err("a complex value cannot be written to this attribute".into())
        }
    }
}

impl TargetType {
    /// Converts a mapping result to what Graph accepts for this attribute. `Ok(None)`: null or empty,
    /// nothing to write.
    pub fn coerce(self, value: Json) -> Result<Option<Json>, String> {
        if is_empty(&value) {
            return Ok(None);
        }
        match (self, value) {
            (TargetType::String, value @ Json::String(_)) => Ok(Some(value)),
            (TargetType::String, value) => scalar_text(value).map(|s| Some(Json::String(s))),
            (TargetType::Boolean, value @ Json::Bool(_)) => Ok(Some(value)),
            (TargetType::Boolean, Json::String(s)) => parse_bool(&s)
                .map(|b| Some(Json::Bool(b)))
                .ok_or_else(|| format!("'{s}' is not a Boolean (expected true or false)")),
            (TargetType::Boolean, value) => {
                Err(format!("{value} is not a Boolean (expected true or false)"))
            }
            (TargetType::StringCollection, Json::Array(items)) => items
                .into_iter()
                .filter(|v| !is_empty(v))
                .map(|v| scalar_text(v).map(Json::String))
                .collect::<Result<Vec<_>, _>>()
                .map(|items| Some(Json::Array(items))),
            (TargetType::StringCollection, value) => {
                scalar_text(value).map(|s| Some(Json::Array(vec![Json::String(s)])))
            }
            (TargetType::DirectoryExtension, Json::Array(_)) => Err(
                "multi-valued directory extensions are not supported by cross-tenant synchronization"
                    .into(),
            ),
            (TargetType::DirectoryExtension | TargetType::Unknown, Json::Object(_)) => {
                Err("a complex value cannot be written to this attribute".into())
            }
            (TargetType::DirectoryExtension | TargetType::Unknown, value) => Ok(Some(value)),
            (TargetType::Reference, _) => Err("a reference attribute takes a direct mapping".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_of_known_attributes() {
        assert_eq!(TargetType::of("accountEnabled"), TargetType::Boolean);
        assert_eq!(TargetType::of("displayName"), TargetType::String);
        assert_eq!(TargetType::of("manager"), TargetType::Reference);
        assert_eq!(
            TargetType::of("extension_0123456789abcdef0123456789ABCDEF_costCenter"),
            TargetType::DirectoryExtension
        );
        assert_eq!(
            TargetType::of("extension_123_costCenter"),
            TargetType::Unknown
        );
        assert_eq!(TargetType::of("somethingElse"), TargetType::Unknown);
        assert!(!is_user_target("somethingElse"));
        assert!(is_user_target("Department") && is_user_target("manager"));
    }

    #[test]
    fn extension_names_are_checked() {
        assert!(
            extension_name_problem("extension_0123456789abcdef0123456789abcdef_cost_Center1")
                .is_none()
        );
        assert!(extension_name_problem("extension_0123-4567_cost").is_some());
        assert!(extension_name_problem("extension_0123456789abcdef0123456789abcdef_").is_some());
        assert!(extension_name_problem("extension_0123456789abcdef0123456789abcdef_a-b").is_some());
        assert!(extension_name_problem("department").is_none());
    }

    #[test]
    fn coercion() {
        assert_eq!(
            TargetType::Boolean.coerce(json!("True")),
            Ok(Some(json!(true)))
        );
        assert_eq!(
            TargetType::Boolean.coerce(json!(false)),
            Ok(Some(json!(false)))
        );
        assert!(TargetType::Boolean.coerce(json!("yes")).is_err());
        assert_eq!(
            TargetType::String.coerce(json!(true)),
            Ok(Some(json!("True")))
        );
        assert_eq!(TargetType::String.coerce(json!(7)), Ok(Some(json!("7"))));
        assert_eq!(TargetType::String.coerce(json!("")), Ok(None));
        assert_eq!(TargetType::String.coerce(json!(null)), Ok(None));
        assert!(TargetType::String.coerce(json!(["a", "b"])).is_err());
        assert_eq!(
            TargetType::StringCollection.coerce(json!("a")),
            Ok(Some(json!(["a"])))
        );
        assert_eq!(
            TargetType::StringCollection.coerce(json!(["a", "", 1])),
            Ok(Some(json!(["a", "1"])))
        );
        assert!(TargetType::DirectoryExtension.coerce(json!(["a"])).is_err());
        assert_eq!(
            TargetType::DirectoryExtension.coerce(json!(12)),
            Ok(Some(json!(12)))
        );
    }
}
