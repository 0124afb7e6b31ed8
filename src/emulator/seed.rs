//! The seed file: tenants, apps and their credentials, users, groups, assignments, policies.
//! Documented in `config/emulator/README.md`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::errors::EmulatorError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// App registrations and their credentials, valid in every tenant that grants them.
    #[serde(default)]
    pub apps: Vec<AppSeed>,
    #[serde(default)]
    pub tenants: Vec<TenantSeed>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSeed {
    pub app_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub client_secrets: Vec<String>,
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredentialSeed>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialSeed {
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
}

fn default_audiences() -> Vec<String> {
    vec!["api://AzureADTokenExchange".to_string()]
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SizeClass {
    S,
    M,
    L,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSeed {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Verified domains; the first is the initial (`*.onmicrosoft.com`) domain.
    pub domains: Vec<String>,
    /// Throttling size class; derived from the user count when absent.
    #[serde(default)]
    pub size_class: Option<SizeClass>,
    /// `false` models "no one in the organization can invite guests": `POST /invitations` → 403.
    #[serde(default = "yes")]
    pub guest_invites_allowed: bool,
    /// Service principals of apps granted in this tenant, with their application permissions.
    #[serde(default)]
    pub service_principals: Vec<ServicePrincipalSeed>,
    /// App registrations homed in this tenant (owners of directory extension properties).
    #[serde(default)]
    pub applications: Vec<ApplicationSeed>,
    #[serde(default)]
    pub users: Vec<UserSeed>,
    #[serde(default)]
    pub groups: Vec<GroupSeed>,
    #[serde(default)]
    pub app_role_assignments: Vec<AssignmentSeed>,
    /// Cross-tenant access policy partner configurations.
    #[serde(default)]
    pub partners: Vec<PartnerSeed>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalSeed {
    pub app_id: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub app_roles: Vec<AppRoleSeed>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleSeed {
    pub id: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSeed {
    pub app_id: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub extension_properties: Vec<ExtensionPropertySeed>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionPropertySeed {
    /// Short name; the property becomes `extension_{appIdNoHyphens}_{name}`.
    pub name: String,
    #[serde(default = "string_type")]
    pub data_type: String,
    #[serde(default = "user_target")]
    pub target_objects: Vec<String>,
}

fn string_type() -> String {
    "String".to_string()
}

fn user_target() -> Vec<String> {
    vec!["User".to_string()]
}

/// A user: any Graph user properties, plus `manager` (UPN or id of another seeded user).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSeed {
    #[serde(default)]
    pub manager: Option<String>,
    #[serde(flatten)]
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupSeed {
    #[serde(default)]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// UPNs or ids of users, or display names or ids of other groups.
    #[serde(default)]
    pub members: Vec<String>,
    /// `[]` (security, the default), `["Unified"]` (Microsoft 365), `["DynamicMembership"]`.
    #[serde(default)]
    pub group_types: Vec<String>,
    /// Mail-enabled (with `securityEnabled`: mail-enabled security; without: distribution).
    #[serde(default)]
    pub mail_enabled: bool,
    #[serde(default = "default_true")]
    pub security_enabled: bool,
    #[serde(default)]
    pub is_assignable_to_role: bool,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub membership_rule: Option<String>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentSeed {
    /// appId of the resource service principal in this tenant.
    pub app_id: String,
    /// UPN/id of a user or display name/id of a group.
    pub principal: String,
    #[serde(default)]
    pub app_role_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerSeed {
    pub tenant_id: String,
    /// `crossTenantIdentitySyncPolicyPartner` without `tenantId` (`displayName`, `userSyncInbound`).
    #[serde(default)]
    pub identity_synchronization: Option<Map<String, Value>>,
    /// Any other `crossTenantAccessPolicyConfigurationPartner` properties.
    #[serde(flatten)]
    pub properties: Map<String, Value>,
}

impl Seed {
    pub fn from_yaml(text: &str) -> Result<Seed, EmulatorError> {
        serde_saphyr::from_str(text).map_err(|e| EmulatorError::Seed(e.to_string()))
    }

    /// JSON has no size budget, so seeds of 100k+ users load from it quickly.
    pub fn from_json(text: &[u8]) -> Result<Seed, EmulatorError> {
        serde_json::from_slice(text).map_err(|e| EmulatorError::Seed(e.to_string()))
    }

    /// `.json` files are read as JSON, anything else as YAML.
    pub fn from_file(path: &std::path::Path) -> Result<Seed, EmulatorError> {
        let text = std::fs::read(path).map_err(|source| EmulatorError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if json {
            return Self::from_json(&text);
        }
        let text = String::from_utf8(text)
            .map_err(|e| EmulatorError::Seed(format!("{}: not UTF-8: {e}", path.display())))?;
        Self::from_yaml(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_seed() {
        let seed = Seed::from_yaml(
            r#"
apps:
  - appId: 11111111-1111-1111-1111-111111111111
    clientSecrets: [s3cret]
tenants:
  - id: aaaaaaaa-0000-0000-0000-000000000001
    domains: [contoso.onmicrosoft.com]
    sizeClass: S
    servicePrincipals:
      - appId: 11111111-1111-1111-1111-111111111111
        permissions: [User.Read.All]
    users:
      - userPrincipalName: adele@contoso.onmicrosoft.com
        displayName: Adele
        accountEnabled: true
        manager: boss@contoso.onmicrosoft.com
    partners:
      - tenantId: bbbbbbbb-0000-0000-0000-000000000002
        automaticUserConsentSettings: {inboundAllowed: true}
        identitySynchronization: {userSyncInbound: {isSyncAllowed: true}}
"#,
        )
        .expect("seed parses");
        assert_eq!(
            seed.tenants[0].users[0].manager.as_deref(),
            Some("boss@contoso.onmicrosoft.com")
        );
        assert_eq!(
            seed.tenants[0].users[0].properties["accountEnabled"],
            Value::Bool(true)
        );
        assert!(
            seed.tenants[0].partners[0]
                .properties
                .contains_key("automaticUserConsentSettings")
        );
    }

    #[test]
    fn the_example_seed_builds_a_directory() {
        let seed = Seed::from_yaml(include_str!("../../config/emulator/seed.yaml"))
            .expect("example seed parses");
        let dir = crate::emulator::build::directory_from_seed(&seed, chrono::Utc::now())
            .expect("example seed builds");
        assert_eq!(dir.tenants.len(), 2);
        let contoso = &dir.tenants["3f6d1a2b-1111-4c5d-8e9f-0a1b2c3d4e01"];
        assert_eq!(contoso.assignments.len(), 1);
        assert_eq!(contoso.managers.len(), 1);
    }

    #[test]
    fn rejects_unknown_tenant_fields() {
        assert!(Seed::from_yaml("tenants: [{id: x, domains: [a], bogus: 1}]").is_err());
    }
}
