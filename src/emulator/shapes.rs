//! The complex types clients write (nested in user and policy bodies), from the v1.0 CSDL.
//! Graph refuses a body naming a property its type does not declare, at any depth
//! (`inboundTrust.isMfaAcepted` → 400), and a value of the wrong JSON kind.

use serde_json::Value;

use super::errors::GraphError;

#[derive(Debug, Clone, Copy)]
enum Shape {
    Bool,
    String,
    Complex(&'static str),
    Collection(&'static str),
}

use Shape::{Bool, Collection, Complex, String as Str};

const TARGET_CONFIGURATION: &str = "crossTenantAccessPolicyTargetConfiguration";

/// Declared properties of each complex type (v1.0 CSDL, plus beta's `crossTenantGroupSyncInbound`;
/// `policy.rs` accepts `groupSyncInbound` on beta paths only).
fn declared(type_name: &str) -> Option<&'static [(&'static str, Shape)]> {
    Some(match type_name {
        "crossTenantAccessPolicyConfigurationPartner" => &[
            ("tenantId", Str),
            (
                "appServiceConnectInbound",
                Complex("crossTenantAccessPolicyAppServiceConnectSetting"),
            ),
            (
                "automaticUserConsentSettings",
                Complex("inboundOutboundPolicyConfiguration"),
            ),
            (
                "b2bCollaborationInbound",
                Complex("crossTenantAccessPolicyB2BSetting"),
            ),
            (
                "b2bCollaborationOutbound",
                Complex("crossTenantAccessPolicyB2BSetting"),
            ),
            (
                "b2bDirectConnectInbound",
                Complex("crossTenantAccessPolicyB2BSetting"),
            ),
            (
                "b2bDirectConnectOutbound",
                Complex("crossTenantAccessPolicyB2BSetting"),
            ),
            (
                "inboundTrust",
                Complex("crossTenantAccessPolicyInboundTrust"),
            ),
            ("isInMultiTenantOrganization", Bool),
            ("isServiceProvider", Bool),
            (
                "m365CollaborationInbound",
                Complex("crossTenantAccessPolicyM365CollaborationInboundSetting"),
            ),
            (
                "m365CollaborationOutbound",
                Complex("crossTenantAccessPolicyM365CollaborationOutboundSetting"),
            ),
            (
                "tenantRestrictions",
                Complex("crossTenantAccessPolicyTenantRestrictions"),
            ),
        ],
        "crossTenantAccessPolicyAppServiceConnectSetting" => {
            &[("applications", Complex(TARGET_CONFIGURATION))]
        }
        "crossTenantAccessPolicyB2BSetting" => &[
            ("applications", Complex(TARGET_CONFIGURATION)),
            ("usersAndGroups", Complex(TARGET_CONFIGURATION)),
        ],
        "crossTenantAccessPolicyTenantRestrictions" => &[
            ("applications", Complex(TARGET_CONFIGURATION)),
            ("usersAndGroups", Complex(TARGET_CONFIGURATION)),
            ("devices", Complex("devicesFilter")),
        ],
        "devicesFilter" => &[("mode", Str), ("rule", Str)],
        "crossTenantAccessPolicyTargetConfiguration" => &[
            ("accessType", Str),
            ("targets", Collection("crossTenantAccessPolicyTarget")),
        ],
        "crossTenantAccessPolicyTarget" => &[("target", Str), ("targetType", Str)],
        "inboundOutboundPolicyConfiguration" => {
            &[("inboundAllowed", Bool), ("outboundAllowed", Bool)]
        }
        "crossTenantAccessPolicyInboundTrust" => &[
            ("isCompliantDeviceAccepted", Bool),
            ("isHybridAzureADJoinedDeviceAccepted", Bool),
            ("isMfaAccepted", Bool),
        ],
        "crossTenantAccessPolicyM365CollaborationInboundSetting" => {
            &[("users", Complex(TARGET_CONFIGURATION))]
        }
        "crossTenantAccessPolicyM365CollaborationOutboundSetting" => {
            &[("usersAndGroups", Complex(TARGET_CONFIGURATION))]
        }
        "crossTenantIdentitySyncPolicyPartner" => &[
            ("tenantId", Str),
            ("displayName", Str),
            ("userSyncInbound", Complex("crossTenantUserSyncInbound")),
            ("groupSyncInbound", Complex("crossTenantGroupSyncInbound")),
        ],
        "crossTenantUserSyncInbound" | "crossTenantGroupSyncInbound" => &[("isSyncAllowed", Bool)],
        "passwordProfile" => &[
            ("forceChangePasswordNextSignIn", Bool),
            ("forceChangePasswordNextSignInWithMfa", Bool),
            ("password", Str),
        ],
        "employeeOrgData" => &[("costCenter", Str), ("division", Str)],
        "objectIdentity" => &[
            ("issuer", Str),
            ("issuerAssignedId", Str),
            ("signInType", Str),
        ],
        "onPremisesExtensionAttributes" => &[
            ("extensionAttribute1", Str),
            ("extensionAttribute2", Str),
            ("extensionAttribute3", Str),
            ("extensionAttribute4", Str),
            ("extensionAttribute5", Str),
            ("extensionAttribute6", Str),
            ("extensionAttribute7", Str),
            ("extensionAttribute8", Str),
            ("extensionAttribute9", Str),
            ("extensionAttribute10", Str),
            ("extensionAttribute11", Str),
            ("extensionAttribute12", Str),
            ("extensionAttribute13", Str),
            ("extensionAttribute14", Str),
            ("extensionAttribute15", Str),
        ],
        "invitedUserMessageInfo" => &[
            ("ccRecipients", Collection("recipient")),
            ("customizedMessageBody", Str),
            ("messageLanguage", Str),
        ],
        "recipient" => &[("emailAddress", Complex("emailAddress"))],
        "emailAddress" => &[("address", Str), ("name", Str)],
        _ => return None,
    })
}

/// The complex type of a user property clients write, if it is one.
pub fn user_property_type(name: &str) -> Option<&'static str> {
    match name {
        "passwordProfile" => Some("passwordProfile"),
        "employeeOrgData" => Some("employeeOrgData"),
        "identities" => Some("objectIdentity"),
        "onPremisesExtensionAttributes" => Some("onPremisesExtensionAttributes"),
        _ => None,
    }
}

fn invalid(path: &str) -> GraphError {
    GraphError::bad_request(format!("Invalid value specified for property '{path}'."))
}

/// Checks `value` against complex type `type_name`: every member declared (or an `@odata.`
/// annotation), of the declared kind, recursively. `null` is accepted for any property.
pub fn check(type_name: &str, value: &Value, path: &str) -> Result<(), GraphError> {
    let Some(props) = declared(type_name) else {
        return Ok(());
    };
    let obj = match value {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        _ => return Err(invalid(path)),
    };
    for (k, v) in obj {
        if k.starts_with("@odata.") {
            continue;
        }
        let Some((_, shape)) = props.iter().find(|(n, _)| n == k) else {
            return Err(GraphError::unknown_property(k, type_name));
        };
        let here = format!("{path}.{k}");
        check_shape(*shape, v, &here)?;
    }
    Ok(())
}

/// Checks the value of `property` of `type_name` (a top-level body member).
pub fn check_property(type_name: &str, property: &str, value: &Value) -> Result<(), GraphError> {
    let Some(props) = declared(type_name) else {
        return Ok(());
    };
    match props.iter().find(|(n, _)| *n == property) {
        Some((_, shape)) => check_shape(*shape, value, property),
        None => Err(GraphError::unknown_property(property, type_name)),
    }
}

fn check_shape(shape: Shape, v: &Value, path: &str) -> Result<(), GraphError> {
    match (shape, v) {
        (_, Value::Null) | (Bool, Value::Bool(_)) | (Str, Value::String(_)) => Ok(()),
        (Complex(t), v) => check(t, v, path),
        (Collection(t), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check(t, item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => Err(invalid(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_typos_and_wrong_kinds_are_refused() {
        let p = "crossTenantAccessPolicyConfigurationPartner";
        assert!(check_property(p, "inboundTrust", &json!({"isMfaAccepted": true})).is_ok());
        let e = check_property(p, "inboundTrust", &json!({"isMfaAcepted": true}))
            .expect_err("typo refused");
        assert!(e.message.contains("isMfaAcepted"), "{}", e.message);
        assert!(check_property(p, "inboundTrust", &json!({"isMfaAccepted": "yes"})).is_err());
        assert!(
            check_property(
                p,
                "b2bCollaborationInbound",
                &json!({"usersAndGroups": {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetTyp": "user"}]}})
            )
            .is_err()
        );
        assert!(check_property(p, "automaticUserConsentSettings", &json!(null)).is_ok());
        assert!(
            check(
                "objectIdentity",
                &json!({"signInType": "x", "issuer": "y"}),
                "identities[0]"
            )
            .is_ok()
        );
        assert!(
            check(
                "passwordProfile",
                &json!({"pasword": "x"}),
                "passwordProfile"
            )
            .is_err()
        );
    }
}
