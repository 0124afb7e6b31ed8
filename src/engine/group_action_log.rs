//! The provisioning-log entry and log line of each group action: Graph's
//! `provisioningObjectSummary` with `identityType: Group`, the group's display names, the
//! attribute changes, and the membership changes by member name with each member's result.
//!
//! Graph's `provisioningAction` has no `restore` or `adopt`: those are `update`, with the plan's
//! action in the details (`planAction`), as for users.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::plan::groups::{GroupAction, GroupEntry};
use crate::store::{
    ErrorCategory, Initiator, InitiatorType, ModifiedProperty, ProvisionedIdentity,
    ProvisioningAction, ProvisioningErrorInfo, ProvisioningLogEntry, ProvisioningResult,
    ProvisioningStatusInfo,
};

use super::group_apply::{Attempt, MemberOutcome, MemberResult};
use super::runtime::PairRuntime;

fn provisioning_action(action: GroupAction) -> ProvisioningAction {
    match action {
        GroupAction::Create => ProvisioningAction::Create,
        GroupAction::Adopt | GroupAction::Update | GroupAction::Restore | GroupAction::NoChange => {
            ProvisioningAction::Update
        }
        GroupAction::Delete => ProvisioningAction::Delete,
        GroupAction::StagedDelete => ProvisioningAction::StagedDelete,
        GroupAction::Skip | GroupAction::Disputed => ProvisioningAction::Other,
    }
}

/// The action's name as an administrator reads it: `members` for an update that only changed
/// memberships.
pub fn admin_action(e: &GroupEntry) -> &'static str {
    match e.action {
        GroupAction::NoChange | GroupAction::Update
            if e.changes.is_empty()
                && (!e.add_members.is_empty() || !e.remove_members.is_empty()) =>
        {
            "membership"
        }
        other => other.as_str(),
    }
}

fn identity(id: &str, display_name: &str) -> ProvisionedIdentity {
    ProvisionedIdentity {
        id: id.to_owned(),
        display_name: display_name.to_owned(),
        identity_type: "Group".into(),
        details: Map::new(),
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The members whose outcome is one of `outcomes`, by name, sorted.
fn named(members: &[MemberResult], outcomes: &[MemberOutcome]) -> Vec<String> {
    let mut names: Vec<String> = members
        .iter()
        .filter(|m| outcomes.contains(&m.outcome))
        .map(|m| m.name.clone())
        .collect();
    names.sort();
    names
}

pub(super) fn log_entry(
    rt: &PairRuntime,
    cycle_id: &str,
    e: &GroupEntry,
    attempt: &Attempt,
    duration: Duration,
) -> ProvisioningLogEntry {
    let target_name = e
        .changes
        .get("displayName")
        .or_else(|| e.exported_after.get("displayName"))
        .and_then(Value::as_str)
        .unwrap_or(&e.display_name);
    let mut modified: Vec<ModifiedProperty> = e
        .changes
        .iter()
        .map(|(k, v)| ModifiedProperty {
            display_name: k.clone(),
            old_value: None,
            new_value: Some(render(v)),
        })
        .collect();
    let added = named(
        &attempt.members,
        &[MemberOutcome::Added, MemberOutcome::AlreadyMember],
    );
    let removed = named(
        &attempt.members,
        &[MemberOutcome::Removed, MemberOutcome::AlreadyRemoved],
    );
    if !added.is_empty() || !removed.is_empty() {
        let mut text = Vec::new();
        if !added.is_empty() {
            text.push(format!("added: {}", added.join(", ")));
        }
        if !removed.is_empty() {
            text.push(format!("removed: {}", removed.join(", ")));
        }
        modified.push(ModifiedProperty {
            display_name: "members".into(),
            old_value: None,
            new_value: Some(text.join("; ")),
        });
    }
    let mut details = Map::new();
    details.insert("planAction".into(), json!(e.action.as_str()));
    details.insert("action".into(), json!(admin_action(e)));
    if let Some(reason) = e.reason {
        details.insert("reason".into(), json!(reason.describe()));
    }
    details.insert("sourceGroupDisplayName".into(), json!(e.display_name));
    details.insert("membersAdded".into(), json!(added));
    details.insert("membersRemoved".into(), json!(removed));
    details.insert(
        "members".into(),
        serde_json::to_value(&attempt.members).unwrap_or(Value::Null),
    );
    let failed_members = attempt.members.iter().filter(|m| !m.is_ok()).count();
    let status = match (&attempt.failure, e.action) {
        (Some(_), _) => ProvisioningResult::Failure,
        (None, GroupAction::StagedDelete | GroupAction::Skip | GroupAction::Disputed) => {
            ProvisioningResult::Skipped
        }
        (None, _) => ProvisioningResult::Success,
    };
    let error_information = match &attempt.failure {
        Some(failure) => Some(ProvisioningErrorInfo {
            error_code: Some(failure.code()),
            reason: Some(failure.to_string()),
            additional_details: (failed_members > 0)
                .then(|| format!("{failed_members} member write(s) failed")),
            error_category: Some(ErrorCategory::Failure),
            recommended_action: Some("retried by the next cycle".into()),
        }),
        None => e.reason.map(|r| ProvisioningErrorInfo {
            error_code: Some(format!("{r:?}")),
            reason: Some(r.describe().to_owned()),
            additional_details: None,
            error_category: Some(ErrorCategory::NonServiceFailure),
            recommended_action: None,
        }),
    };
    ProvisioningLogEntry {
        id: uuid::Uuid::new_v4().to_string(),
        activity_date_time: Utc::now(),
        tenant_id: rt.pair.target.tenant_id.clone(),
        job_id: rt.name().to_owned(),
        cycle_id: cycle_id.to_owned(),
        change_id: uuid::Uuid::new_v4().to_string(),
        duration_in_milliseconds: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        provisioning_action: provisioning_action(e.action),
        provisioning_status_info: ProvisioningStatusInfo {
            status,
            error_information,
        },
        provisioning_steps: Vec::new(),
        modified_properties: modified,
        initiated_by: Initiator {
            id: String::new(),
            display_name: "ctsync".into(),
            initiator_type: InitiatorType::System,
        },
        source_identity: identity(&e.source_id, &e.display_name),
        target_identity: identity(
            attempt
                .target_id
                .as_deref()
                .or(e.target_id.as_deref())
                .unwrap_or_default(),
            target_name,
        ),
        source_system: super::action_log::source_system(rt),
        target_system: super::action_log::target_system(rt, details),
    }
}

/// One structured line per group action, with the log entry's names.
pub(super) fn emit(log: &ProvisioningLogEntry, e: &GroupEntry, attempt: &Attempt) {
    let status = log.provisioning_status_info.status.as_str();
    let details = &log.target_system.details;
    let list = |key: &str| {
        details
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let modified = serde_json::to_string(&log.modified_properties).unwrap_or_default();
    let error = log
        .provisioning_status_info
        .error_information
        .as_ref()
        .and_then(|i| i.reason.clone())
        .unwrap_or_default();
    macro_rules! group_line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                event = "provisioningAction",
                identity_type = "Group",
                pair = %log.job_id,
                cycle_id = %log.cycle_id,
                action = admin_action(e),
                plan_action = e.action.as_str(),
                status,
                group = %e.display_name,
                target_group = %log.target_identity.display_name,
                source_id = %e.source_id,
                target_id = %log.target_identity.id,
                members_added = %list("membersAdded"),
                members_removed = %list("membersRemoved"),
                members_failed = attempt.members.iter().filter(|m| !m.is_ok()).count(),
                modified_properties = %modified,
                error = %error,
                $message
            )
        };
    }
    if attempt.failure.is_some() {
        group_line!(warn, "group provisioning action failed");
    } else {
        group_line!(info, "group provisioning action");
    }
}
