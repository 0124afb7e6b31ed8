//! The provisioning-log line of each action apply carries out: the stored
//! [`ProvisioningLogEntry`] (Graph's `provisioningObjectSummary`) and the structured `tracing`
//! line an administrator reads. Apply decides what happened; this module only says it.
//!
//! Every line names the user (source UPN, display name, target UPN) and calls the action what an
//! administrator calls it: a write that turns `accountEnabled` off is a `disable`, a restore is a
//! `restore`, a manager change names the managers.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Map, Value};

use crate::plan::{Action, ManagerUpdate, Plan, PlanEntry, Reason, UserNames};
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

/// An update that turns the account off: a disable, as the administrator sees it.
fn disables(entry: &PlanEntry) -> bool {
    entry.action == Action::Update
        && entry
            .changes
            .iter()
            .any(|c| c.attribute == "accountEnabled" && c.new == Value::Bool(false))
}

/// The action's name in log lines and cycle counts.
pub fn admin_action(entry: &PlanEntry) -> &'static str {
    if disables(entry) {
        return "disable";
    }
    match entry.action {
        Action::SoftDelete => "delete",
        other => other.as_str(),
    }
}

/// A cycle's counts by the plan's action names, except that a disabling update is a `disable`.
pub fn counts(plan: &Plan) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = Action::ALL
        .iter()
        .map(|a| (a.as_str().to_owned(), 0))
        .collect();
    for entry in plan.entries() {
        let key = if disables(entry) {
            "disable"
        } else {
            entry.action.as_str()
        };
        *counts.entry(key.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Graph's `provisioningAction` (it has no `restore`: a restore is an `update`, with
/// `planAction: restore` in the details).
fn provisioning_action(entry: &PlanEntry) -> ProvisioningAction {
    if disables(entry) {
        return ProvisioningAction::Disable;
    }
    match entry.action {
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

/// The names the plan knows for an entry's log line, with the source UPN filled in from the
/// entry when the name book had none. A user that appears in the target by this entry gets its
/// target names from `ChunkIo::names_after`, which reads a whole chunk back in one `$batch`.
pub(super) fn planned_names(entry: &PlanEntry) -> UserNames {
    let mut names = entry.names.clone();
    if names.user_principal_name.is_none() {
        names.user_principal_name = entry.user_principal_name.clone();
    }
    names
}

fn identity(id: &str, display_name: Option<&str>, upn: Option<&str>) -> ProvisionedIdentity {
    let mut details = Map::new();
    if let Some(upn) = upn {
        details.insert("userPrincipalName".into(), Value::String(upn.to_owned()));
    }
    ProvisionedIdentity {
        id: id.to_owned(),
        // Entra shows the display name here; the UPN goes in the details.
        display_name: display_name.or(upn).unwrap_or_default().to_owned(),
        identity_type: "User".into(),
        details,
    }
}

#[allow(clippy::too_many_arguments)] // one line's worth of facts, each from a different place
pub(super) fn log_entry(
    rt: &PairRuntime,
    cycle_id: &str,
    entry: &PlanEntry,
    names: &UserNames,
    target_id: Option<&str>,
    duration_ms: i64,
    status: ProvisioningResult,
    failure: Option<&EntryFailure>,
) -> ProvisioningLogEntry {
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
    details.insert("anchor".into(), Value::String(entry.anchor.to_string()));
    let display = names.display_name.as_deref();
    ProvisioningLogEntry {
        id: uuid::Uuid::new_v4().to_string(),
        activity_date_time: Utc::now(),
        tenant_id: rt.pair.target.tenant_id.clone(),
        job_id: rt.name().to_owned(),
        cycle_id: cycle_id.to_owned(),
        change_id: uuid::Uuid::new_v4().to_string(),
        duration_in_milliseconds: duration_ms,
        provisioning_action: provisioning_action(entry),
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
        source_identity: identity(
            entry.anchor.source_object_id(),
            display,
            names.user_principal_name.as_deref(),
        ),
        target_identity: identity(
            target_id.unwrap_or_default(),
            display,
            names.target_user_principal_name.as_deref(),
        ),
        source_system: source_system(rt),
        target_system: target_system(rt, details),
    }
}

/// The source tenant as a log entry's `sourceSystem`.
pub(super) fn source_system(rt: &PairRuntime) -> ProvisioningSystem {
    ProvisioningSystem {
        id: rt.pair.source.tenant_id.clone(),
        display_name: "Microsoft Entra ID (source tenant)".into(),
        details: Map::new(),
    }
}

/// The target tenant as a log entry's `targetSystem`, with the action's details.
pub(super) fn target_system(rt: &PairRuntime, details: Map<String, Value>) -> ProvisioningSystem {
    ProvisioningSystem {
        id: rt.pair.target.tenant_id.clone(),
        display_name: "Microsoft Entra ID (target tenant)".into(),
        details,
    }
}

/// One structured log line per provisioning action, with the provisioning log's fields.
/// `modified_properties` is JSON text that the JSON log format nests as a value
/// (see `telemetry`).
pub(super) fn emit(log: &ProvisioningLogEntry, entry: &PlanEntry, names: &UserNames) {
    let modified = serde_json::to_string(&log.modified_properties).unwrap_or_default();
    let error = log.provisioning_status_info.error_information.as_ref();
    let error_code = error.and_then(|e| e.error_code.clone()).unwrap_or_default();
    let error_message = error.and_then(|e| e.reason.clone()).unwrap_or_default();
    let status = log.provisioning_status_info.status.as_str();
    let action = admin_action(entry);
    let intended = entry.intended.map(Action::as_str).unwrap_or_default();
    let attribute_count = log.modified_properties.len();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
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
                intended_action = intended,
                status,
                reason = entry.reason.as_str(),
                user_principal_name = %text(&names.user_principal_name),
                display_name = %text(&names.display_name),
                target_user_principal_name = %text(&names.target_user_principal_name),
                anchor = %entry.anchor,
                source_id = %log.source_identity.id,
                target_id = %log.target_identity.id,
                attribute_count,
                modified_properties = %modified,
                error_code = %error_code,
                error = %error_message,
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

fn manager_label(names: Option<&UserNames>) -> Option<String> {
    names.map(UserNames::label)
}

/// The modified property of a manager change, naming the managers.
fn manager_change(update: &ManagerUpdate) -> String {
    serde_json::json!([{
        "displayName": "manager",
        "oldValue": manager_label(update.old_manager_names.as_ref())
            .or_else(|| update.old_manager.as_ref().map(ToString::to_string)),
        "newValue": manager_label(update.new_manager_names.as_ref())
            .or_else(|| update.new_manager.as_ref().map(ToString::to_string)),
    }])
    .to_string()
}

/// The log line of a manager reference that was set or removed (`failure` when it was not).
pub(super) fn emit_manager(
    pair: &str,
    cycle_id: &str,
    update: &ManagerUpdate,
    target_id: &str,
    failure: Option<&EntryFailure>,
) {
    let names = &update.names;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let modified = manager_change(update);
    let manager = update
        .new_manager_names
        .as_ref()
        .map(UserNames::label)
        .unwrap_or_else(|| "(none)".to_owned());
    macro_rules! manager_line {
        ($level:ident, $status:literal, $code:expr, $error:expr, $message:literal) => {
            tracing::$level!(
                event = "provisioningAction",
                pair,
                cycle_id,
                action = "update",
                plan_action = "managerUpdate",
                status = $status,
                user_principal_name = %text(&names.user_principal_name),
                display_name = %text(&names.display_name),
                target_user_principal_name = %text(&names.target_user_principal_name),
                manager = %manager,
                anchor = %update.anchor,
                target_id = %target_id,
                attribute_count = 1,
                modified_properties = %modified,
                error_code = %$code,
                error = %$error,
                $message
            )
        };
    }
    match failure {
        None => manager_line!(info, "success", "", "", "manager reference updated"),
        Some(f) => manager_line!(
            warn,
            "failure",
            f.code,
            f.message,
            "manager reference failed"
        ),
    }
}
