//! Typed Graph resources for what sync uses. Unknown properties are ignored; directory
//! extensions (`extension_{appId}_{name}`) are kept in a map.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// User properties sync reads. Most are "returned only on `$select`" (user.md), so every read
/// sends [`USER_SELECT`] plus the extension names the caller needs.
pub const USER_SELECT: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "mailNickname",
    "otherMails",
    "proxyAddresses",
    "accountEnabled",
    "userType",
    "creationType",
    "externalUserState",
    "showInAddressList",
    "department",
    "jobTitle",
    "companyName",
    "employeeId",
    "employeeType",
    "officeLocation",
    "preferredLanguage",
    "usageLocation",
    "city",
    "country",
    "state",
    "streetAddress",
    "postalCode",
    "mobilePhone",
    "businessPhones",
    "faxNumber",
    "identities",
    "onPremisesExtensionAttributes",
    "ageGroup",
    "consentProvidedForMinor",
    "imAddresses",
];

/// `objectIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity {
    #[serde(default)]
    pub sign_in_type: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub issuer_assigned_id: Option<String>,
}

/// A user as sync sees it. Every property is optional because `$select` and delta decide what
/// is present; `null` and absent are both `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_mails: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_addresses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_in_address_list: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_phones: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fax_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<ObjectIdentity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_extension_attributes: Option<BTreeMap<String, Option<String>>>,
    /// `null`, `minor`, `notAdult` or `adult`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_group: Option<String>,
    /// `null`, `granted`, `denied` or `notRequired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_provided_for_minor: Option<String>,
    /// SIP addresses; read-only in Graph, so a source attribute only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub im_addresses: Option<Vec<String>>,
    /// Set on items of `deletedItems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_date_time: Option<String>,
    /// The manager's id when `$expand=manager($select=id)` or delta `manager` tracking is used.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "manager_id"
    )]
    #[serde(rename = "manager")]
    pub manager_id: Option<String>,
    /// `manager@delta` of a users delta round with `$select=manager` (an empty list or an
    /// `@removed` entry when the manager was cleared); see [`User::manager_change`].
    #[serde(default, rename = "manager@delta", skip_serializing)]
    pub manager_delta: Option<Vec<DeltaReference>>,
    /// Directory extension values (`extension_{appIdNoHyphens}_{name}`).
    #[serde(flatten, deserialize_with = "only_extensions")]
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// Any other property the read `$select`ed that has no field above (a mapping or scoping
    /// filter may read any user property): kept, so that nothing asked for is dropped. OData
    /// annotations (`@odata.context`, `x@delta`) are not properties and are left out; `null`
    /// is left out like absent, as for the fields above.
    #[serde(flatten, deserialize_with = "other_properties")]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// An entry of a `...@delta` reference collection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeltaReference {
    pub id: String,
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

impl User {
    /// The manager change a delta round reported: `None` when it said nothing about the
    /// manager, `Some(None)` when the manager was removed, `Some(Some(id))` when set.
    pub fn manager_change(&self) -> Option<Option<&str>> {
        let refs = self.manager_delta.as_ref()?;
        Some(
            refs.iter()
                .rev()
                .find(|r| r.removed.is_none())
                .map(|r| r.id.as_str()),
        )
    }

    /// The user as a JSON object of its present properties, as the mapping layer reads them.
    /// `manager` is the manager's id: from `$expand=manager`, or from a delta round's
    /// `manager@delta` (`null` when delta reported it cleared).
    pub fn to_attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // Serializing a struct of strings, bools and maps cannot produce anything else.
            _ => serde_json::Map::new(),
        };
        if self.manager_id.is_none()
            && let Some(change) = self.manager_change()
        {
            map.insert(
                "manager".into(),
                change.map_or(serde_json::Value::Null, |id| id.into()),
            );
        }
        map
    }
}

fn only_extensions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, serde_json::Value>, D::Error> {
    let all = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    Ok(all
        .into_iter()
        .filter(|(k, _)| k.starts_with("extension_"))
        .collect())
}

fn other_properties<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, serde_json::Value>, D::Error> {
    let all = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    Ok(all
        .into_iter()
        .filter(|(k, v)| !k.starts_with("extension_") && !k.contains('@') && !v.is_null())
        .collect())
}

fn manager_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    // `manager` is an object; delta reports it as `manager@delta`, an array of at most one.
    let object = match v {
        Some(serde_json::Value::Array(items)) => items.into_iter().next(),
        other => other,
    };
    Ok(object.and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned)))
}

/// `POST /invitations` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInvitation {
    pub invited_user_email_address: String,
    pub invite_redirect_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_user_display_name: Option<String>,
    /// `Member` or `Guest`.
    pub invited_user_type: String,
    pub send_invitation_message: bool,
}

/// `POST /invitations` response.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: String,
    #[serde(default)]
    pub invited_user_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub invite_redeem_url: Option<String>,
    pub invited_user: InvitedUser,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvitedUser {
    /// Object id of the created (or existing) B2B user in the target tenant.
    pub id: String,
}

/// An item of `/groups/{id}/members` or `transitiveMembers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DirectoryObjectRef {
    pub id: String,
    /// e.g. `#microsoft.graph.user`, `#microsoft.graph.group`.
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
}

impl DirectoryObjectRef {
    pub fn is_user(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.user")
    }
    pub fn is_group(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.group")
    }
}

/// `appRoleAssignment` (assignment scope).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: String,
    #[serde(default)]
    pub app_role_id: Option<String>,
    pub principal_id: String,
    /// `User`, `Group` or `ServicePrincipal`.
    #[serde(default)]
    pub principal_type: Option<String>,
    #[serde(default)]
    pub principal_display_name: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
}

pub(crate) const APP_ROLE_ASSIGNMENT_SELECT: &str =
    "id,appRoleId,principalId,principalType,principalDisplayName,resourceId";

/// `inboundAllowed`/`outboundAllowed` of a partner's `automaticUserConsentSettings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticUserConsentSettings {
    #[serde(default)]
    pub inbound_allowed: Option<bool>,
    #[serde(default)]
    pub outbound_allowed: Option<bool>,
}

/// `crossTenantAccessPolicyConfigurationPartner` (the parts preflight checks).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantAccessPolicyPartner {
    pub tenant_id: String,
    #[serde(default)]
    pub automatic_user_consent_settings: Option<AutomaticUserConsentSettings>,
    #[serde(default)]
    pub is_service_provider: Option<bool>,
    #[serde(default)]
    pub is_in_multi_tenant_organization: Option<bool>,
}

pub(crate) const PARTNER_SELECT: &str =
    "tenantId,automaticUserConsentSettings,isServiceProvider,isInMultiTenantOrganization";

/// `crossTenantIdentitySyncPolicyPartner`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySyncPolicyPartner {
    pub tenant_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_sync_inbound: Option<UserSyncInbound>,
    /// Beta property; see [`IdentitySyncPolicyPartner::group_sync_allowed`].
    #[serde(default)]
    pub group_sync_inbound: Option<GroupSyncInbound>,
}

impl IdentitySyncPolicyPartner {
    /// Inbound group sync is allowed only when `groupSyncInbound.isSyncAllowed` is `true`
    /// (absent = not allowed: both sides opt in).
    pub fn group_sync_allowed(&self) -> bool {
        self.group_sync_inbound
            .as_ref()
            .and_then(|g| g.is_sync_allowed)
            .unwrap_or(false)
    }

    /// Inbound user sync is allowed only when `userSyncInbound.isSyncAllowed` is `true`.
    pub fn inbound_sync_allowed(&self) -> bool {
        self.user_sync_inbound
            .as_ref()
            .and_then(|u| u.is_sync_allowed)
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSyncInbound {
    #[serde(default)]
    pub is_sync_allowed: Option<bool>,
}

pub(crate) const IDENTITY_SYNC_SELECT: &str = "tenantId,displayName,userSyncInbound";
/// With `groupSyncInbound`, a beta property (read only when a pair syncs groups).
pub(crate) const IDENTITY_SYNC_GROUPS_SELECT: &str =
    "tenantId,displayName,userSyncInbound,groupSyncInbound";

/// `crossTenantGroupSyncInbound` (beta): may the source sync groups into this tenant?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSyncInbound {
    #[serde(default)]
    pub is_sync_allowed: Option<bool>,
}

/// A group as ctsync reads it (source groups from delta, target groups by id or filter).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub group_types: Option<Vec<String>>,
    #[serde(default)]
    pub mail_enabled: Option<bool>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
    #[serde(default)]
    pub is_assignable_to_role: Option<bool>,
    #[serde(default)]
    pub deleted_date_time: Option<String>,
    /// `members@delta` of a delta item: `None` when the item carries no membership.
    #[serde(default, rename = "members@delta")]
    pub members_delta: Option<Vec<MemberDelta>>,
    /// Directory extensions (`extension_*`), e.g. the group anchor.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One entry of `members@delta`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MemberDelta {
    pub id: String,
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

impl Group {
    /// A directory extension's string value.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.other.get(name).and_then(|v| v.as_str())
    }

    /// The group's properties as mapping input (what group mappings read as `[attribute]`).
    pub fn to_attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), serde_json::json!(self.id));
        for (k, v) in [
            ("displayName", &self.display_name),
            ("description", &self.description),
            ("mailNickname", &self.mail_nickname),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), serde_json::json!(v));
            }
        }
        for (k, v) in &self.other {
            if k.starts_with("extension_") {
                m.insert(k.clone(), v.clone());
            }
        }
        m
    }
}

pub(crate) const GROUP_SELECT: &str = "id,displayName,description,mailNickname,groupTypes,mailEnabled,securityEnabled,isAssignableToRole";

/// `extensionProperty` of an application (directory extension definitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProperty {
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
    /// Full name, e.g. `extension_{appIdNoHyphens}_ctsyncAnchor`; on create, the short name.
    pub name: String,
    /// `String`, `Boolean`, `Integer`, `LargeInteger`, `DateTime`, `Binary`.
    pub data_type: String,
    #[serde(default)]
    pub target_objects: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_multi_valued: Option<bool>,
}

pub(crate) const EXTENSION_PROPERTY_SELECT: &str = "id,name,dataType,targetObjects,isMultiValued";

/// A restored directory object (`POST /directory/deletedItems/{id}/restore`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RestoredObject {
    pub id: String,
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keeps_every_selected_property_and_drops_annotations() {
        let json = serde_json::json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "id": "u1",
            "displayName": "Adele",
            "accountEnabled": true,
            "employeeHireDate": "2020-01-01T00:00:00Z",
            "extension_abc_ctsyncAnchor": "src/u1",
            "manager": {"id": "m1", "displayName": "Boss"},
            "givenName": null,
            "ageGroup": "adult",
            "consentProvidedForMinor": "notRequired",
            "imAddresses": ["sip:adele@contoso.com"]
        });
        let user: User = serde_json::from_value(json).unwrap();
        assert_eq!(user.display_name.as_deref(), Some("Adele"));
        assert_eq!(user.given_name, None);
        assert_eq!(user.manager_id.as_deref(), Some("m1"));
        assert_eq!(user.age_group.as_deref(), Some("adult"));
        assert_eq!(
            user.consent_provided_for_minor.as_deref(),
            Some("notRequired")
        );
        assert_eq!(
            user.im_addresses.as_deref(),
            Some(&["sip:adele@contoso.com".to_owned()][..])
        );
        assert_eq!(
            user.extensions.keys().collect::<Vec<_>>(),
            vec!["extension_abc_ctsyncAnchor"]
        );
        assert_eq!(
            user.other.keys().collect::<Vec<_>>(),
            vec!["employeeHireDate"]
        );
        let attrs = user.to_attributes();
        assert_eq!(attrs["extension_abc_ctsyncAnchor"], "src/u1");
        assert_eq!(attrs["employeeHireDate"], "2020-01-01T00:00:00Z");
        assert_eq!(attrs["ageGroup"], "adult");
        assert!(!attrs.keys().any(|k| k.contains('@')), "{attrs:?}");
    }

    /// Every user property a mapping may target is kept through the typed user into the
    /// attributes mappings, filters and the planner read (reads `$select` what is mapped).
    #[test]
    fn every_user_property_the_mapping_catalogue_knows_survives_a_read() {
        for (name, value) in crate::mapping::catalogue_examples() {
            let json = serde_json::json!({"id": "u1", name: value.clone()});
            let user: User = serde_json::from_value(json).unwrap();
            assert_eq!(
                user.to_attributes().get(name),
                Some(&value),
                "{name} was dropped by graph::User"
            );
        }
    }

    #[test]
    fn manager_changes_from_delta() {
        let set: User = serde_json::from_value(serde_json::json!({
            "id": "u1",
            "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m1"}]
        }))
        .unwrap();
        assert_eq!(set.manager_change(), Some(Some("m1")));
        assert_eq!(set.to_attributes()["manager"], "m1");
        let cleared: User = serde_json::from_value(serde_json::json!({
            "id": "u1",
            "manager@delta": [{"id": "m1", "@removed": {"reason": "deleted"}}]
        }))
        .unwrap();
        assert_eq!(cleared.manager_change(), Some(None));
        assert_eq!(cleared.to_attributes()["manager"], serde_json::Value::Null);
        let emptied: User =
            serde_json::from_value(serde_json::json!({"id": "u1", "manager@delta": []})).unwrap();
        assert_eq!(emptied.manager_change(), Some(None));
        let silent: User = serde_json::from_value(serde_json::json!({"id": "u1"})).unwrap();
        assert_eq!(silent.manager_change(), None);
        assert!(!silent.to_attributes().contains_key("manager@delta"));
        assert!(!silent.to_attributes().contains_key("manager"));
    }

    #[test]
    fn identity_sync_defaults_to_not_allowed() {
        let p: IdentitySyncPolicyPartner =
            serde_json::from_value(serde_json::json!({"tenantId": "t"})).unwrap();
        assert!(!p.inbound_sync_allowed());
        let p: IdentitySyncPolicyPartner = serde_json::from_value(
            serde_json::json!({"tenantId": "t", "userSyncInbound": {"isSyncAllowed": true}}),
        )
        .unwrap();
        assert!(p.inbound_sync_allowed());
    }
}
