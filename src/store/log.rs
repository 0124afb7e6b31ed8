//! Provisioning log entries in the shape of Graph's `provisioningObjectSummary` (reference §9;
//! enum members as in the v1.0 CSDL), so the admin API can serve them as Graph would.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One immutable record per action tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningLogEntry {
    pub id: String,
    pub activity_date_time: DateTime<Utc>,
    /// The target tenant.
    pub tenant_id: String,
    /// The pair name.
    pub job_id: String,
    pub cycle_id: String,
    pub change_id: String,
    pub duration_in_milliseconds: i64,
    pub provisioning_action: ProvisioningAction,
    pub provisioning_status_info: ProvisioningStatusInfo,
    #[serde(default)]
    pub provisioning_steps: Vec<ProvisioningStep>,
    #[serde(default)]
    pub modified_properties: Vec<ModifiedProperty>,
    pub initiated_by: Initiator,
    pub source_identity: ProvisionedIdentity,
    pub target_identity: ProvisionedIdentity,
    pub source_system: ProvisioningSystem,
    pub target_system: ProvisioningSystem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProvisioningAction {
    Other,
    Create,
    Delete,
    Disable,
    Update,
    StagedDelete,
}

impl ProvisioningAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Other => "other",
            Self::Create => "create",
            Self::Delete => "delete",
            Self::Disable => "disable",
            Self::Update => "update",
            Self::StagedDelete => "stagedDelete",
        }
    }

    /// Accepts Graph's spelling, case-insensitively (the docs also write `stageddelete`).
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Other,
            Self::Create,
            Self::Delete,
            Self::Disable,
            Self::Update,
            Self::StagedDelete,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(text))
    }
}

/// Graph's `provisioningResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProvisioningResult {
    Success,
    Failure,
    Skipped,
    Warning,
}

impl ProvisioningResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Skipped => "skipped",
            Self::Warning => "warning",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Success, Self::Failure, Self::Skipped, Self::Warning]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningStatusInfo {
    pub status: ProvisioningResult,
    pub error_information: Option<ProvisioningErrorInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningErrorInfo {
    pub error_code: Option<String>,
    pub reason: Option<String>,
    pub additional_details: Option<String>,
    pub error_category: Option<ErrorCategory>,
    pub recommended_action: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCategory {
    Failure,
    NonServiceFailure,
    Success,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningStep {
    pub name: String,
    pub provisioning_step_type: ProvisioningStepType,
    pub status: ProvisioningResult,
    pub description: String,
    #[serde(default)]
    pub details: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProvisioningStepType {
    Import,
    Scoping,
    Matching,
    Processing,
    ReferenceResolution,
    Export,
}

/// Graph's `modifiedProperty`: old and new values are strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedProperty {
    pub display_name: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Initiator {
    pub id: String,
    pub display_name: String,
    pub initiator_type: InitiatorType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InitiatorType {
    User,
    Application,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedIdentity {
    pub id: String,
    pub display_name: String,
    pub identity_type: String,
    #[serde(default)]
    pub details: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningSystem {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub details: Map<String, Value>,
}

/// Filters for reading the log back (`GET …/provisioningLogs?since=&action=&status=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Entries at or after this instant.
    pub since: Option<DateTime<Utc>>,
    pub action: Option<ProvisioningAction>,
    pub status: Option<ProvisioningResult>,
    /// At most this many entries, oldest first; None = [`LogQuery::DEFAULT_LIMIT`].
    pub limit: Option<u32>,
}

impl LogQuery {
    pub const DEFAULT_LIMIT: u32 = 1000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_results_parse_graph_spellings() {
        assert_eq!(
            ProvisioningAction::parse("stageddelete"),
            Some(ProvisioningAction::StagedDelete)
        );
        assert_eq!(
            serde_json::to_value(ProvisioningAction::StagedDelete).unwrap(),
            "stagedDelete"
        );
        assert_eq!(ProvisioningAction::parse("bogus"), None);
        assert_eq!(
            ProvisioningResult::parse("Skipped"),
            Some(ProvisioningResult::Skipped)
        );
    }

    #[test]
    fn graph_example_entry_deserializes() {
        // Shape of the docs' example (provisioningObjectSummary-list, Example 2) trimmed to
        // the fields this type keeps.
        let text = r#"{
            "id": "75b5b0ae-9fc5-8d0e-e0a9-7y6a4728de56",
            "activityDateTime": "2019-05-04T03:00:54Z",
            "tenantId": "74beb175-3b80-7b63-b9d5-6f0b76082b16",
            "jobId": "aws.74beb",
            "cycleId": "b6502552",
            "changeId": "b6502552-1",
            "durationInMilliseconds": 3236,
            "provisioningAction": "create",
            "provisioningStatusInfo": {"status": "failure", "errorInformation": {
                "errorCode": "InvitationCreationFailure", "reason": "r", "additionalDetails": null,
                "errorCategory": "nonServiceFailure", "recommendedAction": null}},
            "provisioningSteps": [{"name": "EntryImport", "provisioningStepType": "import",
                "status": "success", "description": "d", "details": {}}],
            "modifiedProperties": [{"displayName": "displayName", "oldValue": null, "newValue": "C"}],
            "initiatedBy": {"id": "", "displayName": "Azure AD Provisioning Service", "initiatorType": "system"},
            "sourceIdentity": {"id": "s", "displayName": "", "identityType": "User", "details": {}},
            "targetIdentity": {"id": "t", "displayName": "", "identityType": "User", "details": {}},
            "sourceSystem": {"id": "a", "displayName": "Azure Active Directory", "details": {}},
            "targetSystem": {"id": "b", "displayName": "Azure Active Directory (target tenant)", "details": {}}
        }"#;
        let entry: ProvisioningLogEntry = serde_json::from_str(text).unwrap();
        assert_eq!(entry.provisioning_action, ProvisioningAction::Create);
        assert_eq!(
            entry
                .provisioning_status_info
                .error_information
                .unwrap()
                .error_category,
            Some(ErrorCategory::NonServiceFailure)
        );
    }
}
