//! The provisioning-log line of each action apply carries out: the stored
//! [`ProvisioningLogEntry`] and the structured `tracing` line an administrator reads.
//! Apply decides what happened; this module only says it.

use chrono::Utc;
use serde_json::{Map, Value};

use crate::plan::{Action, ManagerUpdate, PlanEntry, Reason};
use crate::store::{
    ErrorCategory, Initiator, InitiatorType, ModifiedProperty, ProvisionedIdentity,
    ProvisioningAction, ProvisioningErrorInfo, ProvisioningLogEntry, ProvisioningResult,
    ProvisioningStatusInfo, ProvisioningSystem,
};

use super::apply::EntryFailure;
use super::runtime::PairRuntime;

/// Skips worth a log line: the ones that need a person's attention. Unchanged users are silent.
pub(super) fn loggable_skip(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Disputed
            | Reason::TargetSoftDeletedByAdmin
            | Reason::InboundSyncDisabled
            | Reason::IncompleteSourceRead
            | Reason::ActionNotAllowed
            | Reason::DriftDetected
    )
}

fn provisioning_action(action: Action) -> ProvisioningAction {
    match action {
        Action::Create => ProvisioningAction::Create,
        Action::Adopt | Action::Update | Action::Restore => ProvisioningAction::Update,
        Action::Disable => ProvisioningAction::Disable,
        Action::SoftDelete => ProvisioningAction::Delete,
        Action::StagedDelete => ProvisioningAction::StagedDelete,
        Action::Skip => ProvisioningAction::Other,
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn log_entry(
    rt: &PairRuntime,
    cycle_id: &str,
    entry: &PlanEntry,
    target_id: Option<&str>,
    duration_ms: i64,
    status: ProvisioningResult,
    failure: Option<&EntryFailure>,
) -> ProvisioningLogEntry {
    let identity = |id: &str, name: &str| ProvisionedIdentity {
        id: id.to_owned(),
        display_name: name.to_owned(),
        identity_type: "User".into(),
        details: Map::new(),
    };
    let display = entry.user_principal_name.clone().unwrap_or_default();
    let mut details = Map::new();
    details.insert("reason".into(), Value::String(entry.reason.as_str().into()));
    details.insert(
        "planAction".into(),
        Value::String(entry.action.as_str().into()),
    );
    if let Some(intended) = entry.intended {
        details.insert(
            "intendedAction".into(),
            Value::String(intended.as_str().into()),
        );
    }
    ProvisioningLogEntry {
        id: uuid::Uuid::new_v4().to_string(),
        activity_date_time: Utc::now(),
        tenant_id: rt.pair.target.tenant_id.clone(),
        job_id: rt.name().to_owned(),
        cycle_id: cycle_id.to_owned(),
        change_id: uuid::Uuid::new_v4().to_string(),
        duration_in_milliseconds: duration_ms,
        provisioning_action: provisioning_action(entry.action),
        provisioning_status_info: ProvisioningStatusInfo {
            status,
            error_information: failure.map(|f| ProvisioningErrorInfo {
                error_code: Some(f.code.clone()),
                reason: Some(f.message.clone()),
                additional_details: None,
                error_category: Some(ErrorCategory::Failure),
                recommended_action: None,
            }),
        },
        provisioning_steps: Vec::new(),
        modified_properties: entry
            .changes
            .iter()
            .map(|c| ModifiedProperty {
                display_name: c.attribute.clone(),
                old_value: c.old.as_ref().map(render),
                new_value: Some(render(&c.new)),
            })
            .collect(),
        initiated_by: Initiator {
            id: String::new(),
            display_name: "ctsync".into(),
            initiator_type: InitiatorType::System,
        },
        source_identity: identity(entry.anchor.source_object_id(), &display),
        target_identity: identity(target_id.unwrap_or_default(), &display),
        source_system: ProvisioningSystem {
            id: rt.pair.source.tenant_id.clone(),
            display_name: "Microsoft Entra ID (source tenant)".into(),
            details: Map::new(),
        },
        target_system: ProvisioningSystem {
            id: rt.pair.target.tenant_id.clone(),
            display_name: "Microsoft Entra ID (target tenant)".into(),
            details: {
                let mut d = details;
                d.insert("anchor".into(), Value::String(entry.anchor.to_string()));
                d
            },
        },
    }
}

/// One structured log line per provisioning action, with the provisioning log's fields.
pub(super) fn emit(log: &ProvisioningLogEntry, entry: &PlanEntry) {
    let modified = serde_json::to_string(&log.modified_properties).unwrap_or_default();
    let error_code = log
        .provisioning_status_info
        .error_information
        .as_ref()
        .and_then(|e| e.error_code.clone())
        .unwrap_or_default();
    let status = log.provisioning_status_info.status.as_str();
    let action = if entry.action == Action::StagedDelete {
        "stagedDelete"
    } else {
        log.provisioning_action.as_str()
    };
    // One field list for both levels: tracing needs the level at compile time.
    macro_rules! action_line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                event = "provisioningAction",
                pair = %log.job_id,
                cycle_id = %log.cycle_id,
                change_id = %log.change_id,
                action,
                plan_action = entry.action.as_str(),
                status,
                reason = entry.reason.as_str(),
                anchor = %entry.anchor,
                source_id = %log.source_identity.id,
                target_id = %log.target_identity.id,
                user_principal_name = %log.source_identity.display_name,
                modified_properties = %modified,
                error_code = %error_code,
                $message
            )
        };
    }
    if log.provisioning_status_info.status == ProvisioningResult::Failure {
        action_line!(warn, "provisioning action failed");
    } else {
        action_line!(info, "provisioning action");
    }
}

/// The log line of a manager reference that was set or removed.
pub(super) fn emit_manager_success(
    pair: &str,
    cycle_id: &str,
    update: &ManagerUpdate,
    target_id: &str,
) {
    tracing::info!(
        event = "provisioningAction",
        pair,
        cycle_id,
        action = "update",
        status = "success",
        anchor = %update.anchor,
        target_id = %target_id,
        modified_properties = %serde_json::json!([{
            "displayName": "manager",
            "oldValue": update.old_manager.as_ref().map(ToString::to_string),
            "newValue": update.new_manager.as_ref().map(ToString::to_string),
        }]),
        "manager reference updated"
    );
}

/// The log line of a manager reference that could not be written.
pub(super) fn emit_manager_failure(
    pair: &str,
    cycle_id: &str,
    update: &ManagerUpdate,
    target_id: &str,
    failure: &EntryFailure,
) {
    tracing::warn!(
        event = "provisioningAction",
        pair,
        cycle_id,
        action = "update",
        status = "failure",
        anchor = %update.anchor,
        target_id = %target_id,
        error_code = %failure.code,
        error = %failure.message,
        "manager reference failed"
    );
}
