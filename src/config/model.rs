//! The pair document as written (serde, camelCase, unknown fields refused) and the validated
//! [`SyncPair`] the engine uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::access::{
    ClientCredential, InvitationQuota, PUBLIC_AUTHORITY, PUBLIC_GRAPH, WriteQuota,
};
use crate::mapping::AttributeMappingSpec;
use crate::scope::ScopingFilter;

/// `apiVersion` this build understands.
pub const API_VERSION: &str = "ctsync.io/v1";
/// `kind` of a pair document.
pub const KIND: &str = "SyncPair";
/// Default time between cycles (Entra CTS runs every 40 minutes).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(40 * 60);
/// Default `spec.fullSyncInterval`: a full reconcile once a day.
pub const DEFAULT_FULL_SYNC_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default deletion guard threshold (Entra CTS: 500).
pub const DEFAULT_DELETE_THRESHOLD: u32 = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncPairDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: SyncPairSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncPairSpec {
    pub source: TenantSpec,
    pub target: TenantSpec,
    pub scope: ScopeSpec,
    #[serde(default)]
    pub mappings: Option<Vec<AttributeMappingSpec>>,
    #[serde(default)]
    pub matching_attributes: Option<Vec<String>>,
    #[serde(default)]
    pub anchor_attribute: Option<String>,
    #[serde(default)]
    pub deprovision: Deprovision,
    #[serde(default)]
    pub deletion_guard: DeletionGuard,
    #[serde(default)]
    pub quarantine: QuarantineSettings,
    #[serde(default)]
    pub interval: Option<String>,
    /// How often a cycle reads source and target in full and heals what incremental cycles
    /// missed (default 24h).
    #[serde(default)]
    pub full_sync_interval: Option<String>,
    #[serde(default)]
    pub drift_correction: bool,
    #[serde(default)]
    pub actions: Actions,
    #[serde(default)]
    pub graph: GraphEndpointsSpec,
    /// Group sync: off unless present with `enabled: true`.
    #[serde(default)]
    pub groups: Option<GroupsSpec>,
}

/// `spec.groups`: security groups assigned to the pair, and their memberships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupsSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Members of nested groups count as members (Entra syncs direct members only).
    #[serde(default)]
    pub flatten: bool,
    /// Group attribute mappings (displayName, description, mailNickname); absent = the same
    /// three copied from the source group.
    #[serde(default)]
    pub mappings: Option<Vec<AttributeMappingSpec>>,
    /// Directory extension on target groups holding the anchor. Default
    /// `extension_{targetAppIdNoHyphens}_ctsyncGroupAnchor`.
    #[serde(default)]
    pub anchor_attribute: Option<String>,
    /// Adopt existing target security groups whose mapped values of these attributes equal the
    /// source group's (in precedence order). Absent or empty: never adopt.
    #[serde(default)]
    pub matching_attributes: Vec<String>,
    /// Source group deleted or unassigned: `softDelete` (default, restorable 30 days) or `none`.
    #[serde(default)]
    pub deprovision: GroupDeprovision,
    #[serde(default)]
    pub deletion_guard: GroupDeletionGuard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum GroupDeprovision {
    #[default]
    SoftDelete,
    None,
}

/// Group deletes plus membership removals in one cycle at or above which they are staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupDeletionGuard {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_threshold")]
    pub threshold: u32,
}

impl Default for GroupDeletionGuard {
    fn default() -> Self {
        GroupDeletionGuard {
            enabled: true,
            threshold: DEFAULT_DELETE_THRESHOLD,
        }
    }
}

/// Validated group sync settings of a pair.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSync {
    pub flatten: bool,
    /// `None` = displayName, description, mailNickname copied from the source group.
    pub mappings: Option<Vec<AttributeMappingSpec>>,
    pub anchor_attribute: Option<String>,
    pub matching_attributes: Vec<String>,
    pub deprovision: GroupDeprovision,
    pub deletion_guard: GroupDeletionGuard,
}

/// Target attributes a group mapping may write.
pub const GROUP_TARGETS: &[&str] = &["displayName", "description", "mailNickname"];

/// The group mappings used when `spec.groups.mappings` is absent.
pub fn default_group_mappings() -> Vec<AttributeMappingSpec> {
    GROUP_TARGETS
        .iter()
        .map(|a| AttributeMappingSpec::direct(a, a))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    pub tenant_id: String,
    pub credentials: CredentialsSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialsSpec {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<SecretRefSpec>,
    #[serde(default)]
    pub federated_token_file: Option<String>,
}

/// Where a secret is read from: never the secret itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRefSpec {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
}

/// `assigned` (users and direct members of groups assigned to the pair) or `all`.
pub use crate::scope::ScopeSetting as ScopeMode;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeSpec {
    pub mode: ScopeMode,
    #[serde(default)]
    pub service_principal_id: Option<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub filters: Vec<ScopingFilter>,
}

/// What happens to a target user whose source user left scope or was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Deprovision {
    /// `DELETE /users/{id}`: restorable for 30 days (Entra CTS behaviour).
    #[default]
    SoftDelete,
    /// Set `accountEnabled: false` and keep the user.
    Disable,
    /// Leave the target user as it is.
    None,
}

impl Deprovision {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Deprovision::SoftDelete => "softDelete",
            Deprovision::Disable => "disable",
            Deprovision::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletionGuard {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Deletes plus disables in one cycle at or above which they are staged.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// Also stage when deletes plus disables reach this share (%) of the managed users.
    #[serde(default)]
    pub percentage: Option<f64>,
}

impl Default for DeletionGuard {
    fn default() -> Self {
        DeletionGuard {
            enabled: true,
            threshold: DEFAULT_DELETE_THRESHOLD,
            percentage: None,
        }
    }
}

/// When failures put a job in quarantine and how its retries are spaced (reference §5).
/// Entra's published numbers are the defaults; small tenants lower the counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuarantineSettings {
    /// Failures (escrows, references included) below which the rates are not evaluated.
    #[serde(default = "default_min_failures")]
    pub min_failures: u64,
    /// Quarantine when more than this share (%) of provisioning events failed.
    #[serde(default = "default_failure_percentage")]
    pub failure_percentage: f64,
    /// Quarantine when more than this many non-reference failures are outstanding.
    #[serde(default = "default_total_failures")]
    pub total_failures: u64,
    /// Quarantine when more than this many failures, references included, are outstanding.
    #[serde(default = "default_absolute_failures")]
    pub absolute_failures: u64,
    /// Multiplies every retry delay (quarantine 6 h / 12 h / 24 h / daily / 28 days, escrow
    /// backoff); below 1 for demos and tests.
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
}

impl Default for QuarantineSettings {
    fn default() -> Self {
        QuarantineSettings {
            min_failures: default_min_failures(),
            failure_percentage: default_failure_percentage(),
            total_failures: default_total_failures(),
            absolute_failures: default_absolute_failures(),
            time_scale: default_time_scale(),
        }
    }
}

fn default_min_failures() -> u64 {
    5_000
}

fn default_failure_percentage() -> f64 {
    40.0
}

fn default_total_failures() -> u64 {
    40_000
}

fn default_absolute_failures() -> u64 {
    60_000
}

fn default_time_scale() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Actions {
    #[serde(default = "yes")]
    pub create: bool,
    #[serde(default = "yes")]
    pub update: bool,
    /// Off: users leaving scope are neither deleted nor disabled.
    #[serde(default = "yes")]
    pub delete: bool,
}

impl Default for Actions {
    fn default() -> Self {
        Actions {
            create: true,
            update: true,
            delete: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GraphEndpointsSpec {
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub quotas: Option<GraphQuotasSpec>,
}

/// `spec.graph.quotas` as written: counts and windows (durations such as `150s`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GraphQuotasSpec {
    #[serde(default)]
    pub writes: Option<u32>,
    #[serde(default)]
    pub write_window: Option<String>,
    #[serde(default)]
    pub invitations: Option<u32>,
    #[serde(default)]
    pub invitation_window: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_threshold() -> u32 {
    DEFAULT_DELETE_THRESHOLD
}

/// Where a pair was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: u64,
}

/// How an app proves who it is; the secret itself is read only when [`Credentials::resolve`]
/// is called (at token time), never at load time and never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    SecretEnv(String),
    SecretFile(PathBuf),
    FederatedTokenFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub source: CredentialSource,
}

/// A secret that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set or empty")]
    EnvMissing(String),
    #[error("cannot read secret file {path}: {message}")]
    File { path: String, message: String },
}

impl Credentials {
    /// Reads the secret (env var or file) into a `SecretString`. A federated token file is
    /// passed on as a path: the Graph client reads it at each token request.
    pub fn resolve(&self) -> Result<ClientCredential, SecretError> {
        match &self.source {
            CredentialSource::SecretEnv(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(ClientCredential::Secret(SecretString::from(
                    v.trim().to_owned(),
                ))),
                _ => Err(SecretError::EnvMissing(var.clone())),
            },
            CredentialSource::SecretFile(path) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(ClientCredential::Secret(SecretString::from(
                    v.trim().to_owned(),
                ))),
                Ok(_) => Err(SecretError::File {
                    path: path.display().to_string(),
                    message: "the file is empty".into(),
                }),
                Err(e) => Err(SecretError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }),
            },
            CredentialSource::FederatedTokenFile(path) => {
                Ok(ClientCredential::FederatedTokenFile(path.clone()))
            }
        }
    }

    /// `env:NAME`, `file:PATH` or `federated:PATH`, for summaries.
    pub fn describe(&self) -> String {
        match &self.source {
            CredentialSource::SecretEnv(v) => format!("secret from env {v}"),
            CredentialSource::SecretFile(p) => format!("secret from file {}", p.display()),
            CredentialSource::FederatedTokenFile(p) => {
                format!("federated token file {}", p.display())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub tenant_id: String,
    pub credentials: Credentials,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub mode: ScopeMode,
    pub service_principal_id: Option<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub filters: Vec<ScopingFilter>,
}

/// Token authority and Graph host of one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEndpoints {
    pub authority: String,
    pub base_url: String,
}

/// The quotas a pair's Graph clients pace themselves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GraphQuotas {
    /// Per (app, tenant).
    pub writes: WriteQuota,
    /// Per tenant: pairs writing one target share it through the client pool.
    pub invitations: InvitationQuota,
}

/// A validated pair, defaults applied, paths resolved against the file's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPair {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub origin: Origin,
    pub source: Tenant,
    pub target: Tenant,
    pub scope: Scope,
    /// `None` = Entra's CTS default mapping set.
    pub mappings: Option<Vec<AttributeMappingSpec>>,
    /// Target attributes used to adopt pre-existing B2B users, in precedence order: from
    /// `matchingAttributes`, else from the mappings' `matchingPriority`; empty = never adopt.
    pub matching_attributes: Vec<String>,
    /// `None` = `extension_{targetAppIdNoHyphens}_ctsyncAnchor`.
    pub anchor_attribute: Option<String>,
    pub deprovision: Deprovision,
    pub deletion_guard: DeletionGuard,
    pub quarantine: QuarantineSettings,
    pub interval: Duration,
    /// Time between full reconciles (a full read of source and target).
    pub full_sync_interval: Duration,
    pub drift_correction: bool,
    pub actions: Actions,
    pub graph: GraphEndpoints,
    /// `None` = group sync off.
    pub groups: Option<GroupSync>,
    /// The quotas the Graph clients pace themselves to (Graph's published numbers unless
    /// `spec.graph.quotas` says otherwise).
    pub quotas: GraphQuotas,
}

impl SyncPair {
    /// The anchor directory extension name on target groups.
    pub fn group_anchor_attribute(&self) -> String {
        match self
            .groups
            .as_ref()
            .and_then(|g| g.anchor_attribute.clone())
        {
            Some(a) => a,
            None => format!(
                "extension_{}_ctsyncGroupAnchor",
                self.target
                    .credentials
                    .client_id
                    .replace('-', "")
                    .to_ascii_lowercase()
            ),
        }
    }

    /// The anchor directory extension name on target users.
    pub fn anchor_attribute(&self) -> String {
        match &self.anchor_attribute {
            Some(a) => a.clone(),
            None => format!(
                "extension_{}_ctsyncAnchor",
                self.target
                    .credentials
                    .client_id
                    .replace('-', "")
                    .to_ascii_lowercase()
            ),
        }
    }
}

impl Default for GraphEndpoints {
    fn default() -> Self {
        GraphEndpoints {
            authority: PUBLIC_AUTHORITY.to_owned(),
            base_url: PUBLIC_GRAPH.to_owned(),
        }
    }
}

/// Resolves a path written in a config file against that file's directory.
pub(crate) fn relative_to(file: &Path, written: &str) -> PathBuf {
    let p = PathBuf::from(written);
    if p.is_absolute() {
        p
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}
