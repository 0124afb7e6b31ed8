//! What the emulator knows about user properties: JSON kinds, the default `$select` set,
//! which are writable, filterable (indexed) or not stored in the directory (501 on collections).
//! Names and kinds follow the v1.0 CSDL `user` type.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Bool,
    DateTime,
    Strings,
    Object,
    Objects,
}

/// Properties a client may write (POST/PATCH), with their kind.
const WRITABLE: &[(&str, Kind)] = &[
    ("accountEnabled", Kind::Bool),
    ("ageGroup", Kind::String),
    ("businessPhones", Kind::Strings),
    ("city", Kind::String),
    ("companyName", Kind::String),
    ("consentProvidedForMinor", Kind::String),
    ("country", Kind::String),
    ("department", Kind::String),
    ("displayName", Kind::String),
    ("employeeHireDate", Kind::DateTime),
    ("employeeId", Kind::String),
    ("employeeLeaveDateTime", Kind::DateTime),
    ("employeeOrgData", Kind::Object),
    ("employeeType", Kind::String),
    ("faxNumber", Kind::String),
    ("givenName", Kind::String),
    ("identities", Kind::Objects),
    ("jobTitle", Kind::String),
    ("mail", Kind::String),
    ("mailNickname", Kind::String),
    ("mobilePhone", Kind::String),
    ("officeLocation", Kind::String),
    ("onPremisesExtensionAttributes", Kind::Object),
    ("onPremisesImmutableId", Kind::String),
    ("otherMails", Kind::Strings),
    ("passwordPolicies", Kind::String),
    ("passwordProfile", Kind::Object),
    ("postalCode", Kind::String),
    ("preferredDataLocation", Kind::String),
    ("preferredLanguage", Kind::String),
    ("showInAddressList", Kind::Bool),
    ("state", Kind::String),
    ("streetAddress", Kind::String),
    ("surname", Kind::String),
    ("usageLocation", Kind::String),
    ("userPrincipalName", Kind::String),
    ("userType", Kind::String),
];

/// Read-only properties the directory maintains.
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "creationType",
    "deletedDateTime",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "proxyAddresses",
    "assignedLicenses",
    "assignedPlans",
    "provisionedPlans",
    "imAddresses",
    "lastPasswordChangeDateTime",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "securityIdentifier",
    "signInSessionsValidFromDateTime",
    "legalAgeGroupClassification",
    "isResourceAccount",
    "identityParentId",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesUserPrincipalName",
    "onPremisesProvisioningErrors",
    "serviceProvisioningErrors",
    "licenseAssignmentStates",
    "authorizationInfo",
    "customSecurityAttributes",
    "isManagementRestricted",
    "signInActivity",
    "deviceEnrollmentLimit",
];

/// Stored outside Entra (SharePoint/Exchange): `$select` on a collection answers 501.
const NOT_IN_DIRECTORY: &[&str] = &[
    "aboutMe",
    "birthday",
    "hireDate",
    "interests",
    "mailboxSettings",
    "mySite",
    "pastProjects",
    "preferredName",
    "print",
    "responsibilities",
    "schools",
    "skills",
];

/// Returned when no `$select` is given (user-list.md).
pub const DEFAULT_SELECT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Collection-valued properties declared NOT NULL in the CSDL: rendered `[]` when empty.
pub const NON_NULL_COLLECTIONS: &[&str] = &[
    "businessPhones",
    "otherMails",
    "proxyAddresses",
    "assignedLicenses",
    "assignedPlans",
    "provisionedPlans",
];

pub fn writable_kind(name: &str) -> Option<Kind> {
    WRITABLE.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

pub fn is_read_only(name: &str) -> bool {
    READ_ONLY.contains(&name)
}

pub fn is_not_in_directory(name: &str) -> bool {
    NOT_IN_DIRECTORY.contains(&name)
}

pub fn is_extension_name(name: &str) -> bool {
    name.starts_with("extension_")
}

/// A property the `user` type declares (independent of whether a client may write it).
pub fn is_user_property(name: &str) -> bool {
    writable_kind(name).is_some() || is_read_only(name) || is_not_in_directory(name)
}

/// Does `value` have the JSON shape `kind` requires (null is always accepted)?
pub fn value_fits(kind: Kind, value: &Value) -> bool {
    match (kind, value) {
        (_, Value::Null) => true,
        (Kind::String, Value::String(_)) => true,
        (Kind::Bool, Value::Bool(_)) => true,
        (Kind::DateTime, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        (Kind::Strings, Value::Array(items)) => items.iter().all(Value::is_string),
        (Kind::Object, Value::Object(_)) => true,
        (Kind::Objects, Value::Array(items)) => items.iter().all(Value::is_object),
        _ => false,
    }
}

/// Directory extension values: `dataType` of the registered `extensionProperty`.
pub fn extension_value_fits(data_type: &str, value: &Value) -> bool {
    match (data_type, value) {
        (_, Value::Null) => true,
        ("String", Value::String(s)) => s.chars().count() <= 256,
        ("Boolean", Value::Bool(_)) => true,
        ("Integer", Value::Number(n)) => n.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
        ("LargeInteger", Value::Number(n)) => n.is_i64(),
        ("DateTime", Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        ("Binary", Value::String(_)) => true,
        _ => false,
    }
}

/// The values user.md allows for string properties that take a fixed set ("Allowed values: null,
/// minor, notAdult and adult"); anything else is a 400. Compared ignoring case (a choice: the
/// docs do not say).
pub fn allowed_values(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "ageGroup" => Some(&["minor", "notAdult", "adult"]),
        "consentProvidedForMinor" => Some(&["granted", "denied", "notRequired"]),
        _ => None,
    }
}

/// Maximum lengths from user.md; longer values are a 400.
pub fn max_length(name: &str) -> Option<usize> {
    match name {
        "displayName" => Some(256),
        "givenName" | "surname" | "mailNickname" | "department" | "companyName" => Some(64),
        "jobTitle" => Some(128),
        "userPrincipalName" => Some(113),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_check_json_shapes() {
        assert!(value_fits(Kind::Strings, &json!(["a"])));
        assert!(!value_fits(Kind::Strings, &json!([1])));
        assert!(!value_fits(Kind::Bool, &json!("true")));
        assert!(value_fits(Kind::DateTime, &json!("2024-01-01T00:00:00Z")));
        assert!(extension_value_fits("Integer", &json!(5)));
        assert!(!extension_value_fits("String", &json!(5)));
    }

    #[test]
    fn not_in_directory_is_a_user_property() {
        assert!(is_user_property("skills"));
        assert!(!is_user_property("bogus"));
    }
}
