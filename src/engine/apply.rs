//! Carries out a plan: each entry's Graph writes, then the manager references; every result is
//! recorded (link, exported values, escrow, provisioning log) in one store commit per entry.
//! The executor decides nothing: what to do was decided by the planner.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use serde_json::{Map, Value};

use crate::graph::{GraphError, NewInvitation};
use crate::plan::{Action, Anchor, MANAGER_ATTRIBUTE, ManagedUser, PlanEntry};
use crate::scope::Disposition;
use crate::store::{CreateIntent, Escrow, EscrowError, ProvisioningResult, StateStore, StoreWrite};

use super::action_log::{self, emit, log_entry, loggable_skip};
use super::cycle::PlannedCycle;
use super::runtime::PairRuntime;
use super::{EngineError, escrow};

/// Where invited users would be sent if they ever opened an invitation (none is sent).
const INVITE_REDIRECT_URL: &str = "https://myapplications.microsoft.com";

/// Counts of what apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub succeeded: usize,
    pub failed: usize,
    pub manager_updates: usize,
}

/// Why one entry failed: the Graph error, kept for the escrow and the log.
pub(super) struct EntryFailure {
    pub(super) code: String,
    pub(super) message: String,
}

impl EntryFailure {
    fn escrow_error(&self) -> EscrowError {
        EscrowError {
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

impl From<GraphError> for EntryFailure {
    fn from(e: GraphError) -> Self {
        EntryFailure {
            code: e.code().unwrap_or("GraphRequestFailed").to_owned(),
            message: e.to_string(),
        }
    }
}

fn patch_body(entry: &PlanEntry) -> Map<String, Value> {
    entry
        .changes
        .iter()
        .filter(|c| c.attribute != MANAGER_ATTRIBUTE)
        .map(|c| (c.attribute.clone(), c.new.clone()))
        .collect()
}

/// Applies every writing entry, then the manager pass.
pub async fn apply(
    rt: &PairRuntime,
    store: &dyn StateStore,
    planned: &PlannedCycle,
    cycle_id: &str,
    cancel: Option<&tokio_util::sync::CancellationToken>,
) -> Result<ApplyOutcome, EngineError> {
    let scale = rt.pair.quarantine.time_scale;
    let mut outcome = ApplyOutcome::default();
    let managed: BTreeMap<&Anchor, &ManagedUser> =
        planned.managed.iter().map(|m| (&m.anchor, m)).collect();
    let escrows: BTreeMap<(Anchor, bool), Escrow> = store
        .escrows(rt.name())
        .await?
        .into_iter()
        .map(|e| ((e.anchor.clone(), e.reference), e))
        .collect();
    // Target ids known after this cycle's creates, for the manager pass.
    let mut target_ids: BTreeMap<Anchor, String> = planned
        .managed
        .iter()
        .map(|m| (m.anchor.clone(), m.target_id.clone()))
        .collect();

    for entry in planned.plan.entries() {
        // Between entries only: the one in flight finishes and is recorded first.
        if cancel.is_some_and(|c| c.is_cancelled()) {
            return Err(EngineError::Cancelled);
        }
        match entry.action {
            Action::Skip => {
                if escrow::settled_by_skip(entry.reason)
                    && escrows.contains_key(&(entry.anchor.clone(), false))
                {
                    store
                        .commit(
                            rt.name(),
                            vec![StoreWrite::RemoveEscrow {
                                anchor: entry.anchor.clone(),
                                reference: false,
                            }],
                        )
                        .await?;
                }
                if loggable_skip(entry.reason) {
                    let names = action_log::names_after(rt, entry, None).await;
                    let log = log_entry(
                        rt,
                        cycle_id,
                        entry,
                        &names,
                        None,
                        0,
                        ProvisioningResult::Skipped,
                        None,
                    );
                    emit(&log, entry, &names);
                    store
                        .commit(rt.name(), vec![StoreWrite::AppendLog(Box::new(log))])
                        .await?;
                }
                continue;
            }
            Action::StagedDelete => {
                let names = action_log::names_after(rt, entry, None).await;
                let log = log_entry(
                    rt,
                    cycle_id,
                    entry,
                    &names,
                    entry.target_id.as_deref(),
                    0,
                    ProvisioningResult::Skipped,
                    None,
                );
                emit(&log, entry, &names);
                store
                    .commit(rt.name(), vec![StoreWrite::AppendLog(Box::new(log))])
                    .await?;
                continue;
            }
            _ => {}
        }
        let started = Instant::now();
        if entry.action == Action::Create {
            // Recorded before the invitation so a crash in between is resolved on restart
            // (the invitation of an existing B2B user returns that user).
            let intent = CreateIntent {
                anchor: entry.anchor.clone(),
                intent_id: entry
                    .resumes_intent
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                invited_address: entry.user_principal_name.clone().unwrap_or_default(),
                recorded_at: Utc::now(),
            };
            store
                .commit(rt.name(), vec![StoreWrite::RecordCreateIntent(intent)])
                .await?;
        }
        let result = execute(rt, entry).await;
        let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let mut writes = Vec::new();
        let key = (entry.anchor.clone(), false);
        match result {
            Ok(target_id) => {
                outcome.succeeded += 1;
                target_ids.insert(entry.anchor.clone(), target_id.clone());
                writes.extend(record_success(
                    entry,
                    &target_id,
                    managed.get(&entry.anchor).copied(),
                    planned
                        .decisions
                        .get(entry.anchor.source_object_id())
                        .map(|d| d.disposition),
                ));
                if escrows.contains_key(&key) {
                    writes.push(StoreWrite::RemoveEscrow {
                        anchor: entry.anchor.clone(),
                        reference: false,
                    });
                }
                let names = action_log::names_after(rt, entry, Some(&target_id)).await;
                let log = log_entry(
                    rt,
                    cycle_id,
                    entry,
                    &names,
                    Some(&target_id),
                    duration,
                    ProvisioningResult::Success,
                    None,
                );
                emit(&log, entry, &names);
                writes.push(StoreWrite::AppendLog(Box::new(log)));
            }
            Err(failure) => {
                outcome.failed += 1;
                writes.push(StoreWrite::PutEscrow(escrow::next_escrow(
                    escrows.get(&key),
                    entry.anchor.clone(),
                    false,
                    entry.action,
                    failure.escrow_error(),
                    Utc::now(),
                    scale,
                )));
                let names = action_log::names_after(rt, entry, None).await;
                let log = log_entry(
                    rt,
                    cycle_id,
                    entry,
                    &names,
                    entry.target_id.as_deref(),
                    duration,
                    ProvisioningResult::Failure,
                    Some(&failure),
                );
                emit(&log, entry, &names);
                writes.push(StoreWrite::AppendLog(Box::new(log)));
            }
        }
        store.commit(rt.name(), writes).await?;
    }

    for update in planned.plan.manager_updates() {
        let Some(target_id) = update
            .target_id
            .clone()
            .or_else(|| target_ids.get(&update.anchor).cloned())
        else {
            continue;
        };
        let result = match &update.new_manager {
            Some(manager) => {
                let Some(manager_id) = update
                    .new_manager_target_id
                    .clone()
                    .or_else(|| target_ids.get(manager).cloned())
                else {
                    continue;
                };
                rt.target.set_manager(&target_id, &manager_id).await
            }
            None => rt.target.remove_manager(&target_id).await,
        };
        let key = (update.anchor.clone(), true);
        let mut writes = Vec::new();
        match result {
            Ok(()) => {
                outcome.manager_updates += 1;
                writes.push(StoreWrite::SetExported {
                    anchor: update.anchor.clone(),
                    attribute: MANAGER_ATTRIBUTE.to_owned(),
                    value: update
                        .new_manager
                        .as_ref()
                        .map(|m| Value::String(m.to_string())),
                });
                if escrows.contains_key(&key) {
                    writes.push(StoreWrite::RemoveEscrow {
                        anchor: update.anchor.clone(),
                        reference: true,
                    });
                }
                action_log::emit_manager(rt.name(), cycle_id, update, &target_id, None);
            }
            Err(e) => {
                outcome.failed += 1;
                let failure = EntryFailure::from(e);
                action_log::emit_manager(rt.name(), cycle_id, update, &target_id, Some(&failure));
                writes.push(StoreWrite::PutEscrow(escrow::next_escrow(
                    escrows.get(&key),
                    update.anchor.clone(),
                    true,
                    Action::Update,
                    failure.escrow_error(),
                    Utc::now(),
                    scale,
                )));
            }
        }
        store.commit(rt.name(), writes).await?;
    }
    Ok(outcome)
}

/// The Graph calls of one entry; returns the target object id.
async fn execute(rt: &PairRuntime, entry: &PlanEntry) -> Result<String, EntryFailure> {
    let target = &rt.target;
    let body = patch_body(entry);
    match entry.action {
        Action::Create => {
            let address = entry.user_principal_name.clone().ok_or(EntryFailure {
                code: "MissingUserPrincipalName".into(),
                message: "the source user has no userPrincipalName to invite".into(),
            })?;
            let invited_type = body
                .get("userType")
                .and_then(Value::as_str)
                .unwrap_or("Member")
                .to_owned();
            let invitation = target
                .invite(&NewInvitation {
                    invited_user_email_address: address,
                    invite_redirect_url: INVITE_REDIRECT_URL.into(),
                    invited_user_display_name: body
                        .get("displayName")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    invited_user_type: invited_type,
                    send_invitation_message: false,
                })
                .await?;
            let id = invitation.invited_user.id;
            target.update_user(&id, &body).await?;
            Ok(id)
        }
        Action::Adopt | Action::Update | Action::Disable => {
            let id = target_id(entry)?;
            if !body.is_empty() {
                target.update_user(&id, &body).await?;
            }
            Ok(id)
        }
        Action::Restore => {
            let id = target_id(entry)?;
            target.restore_deleted(&id).await?;
            if !body.is_empty() {
                target.update_user(&id, &body).await?;
            }
            Ok(id)
        }
        Action::SoftDelete => {
            let id = target_id(entry)?;
            match target.delete_user(&id).await {
                // Already gone: the goal of the action holds.
                Err(e) if e.is_not_found() => Ok(id),
                other => other.map(|()| id).map_err(EntryFailure::from),
            }
        }
        Action::Skip | Action::StagedDelete => target_id(entry),
    }
}

fn target_id(entry: &PlanEntry) -> Result<String, EntryFailure> {
    entry.target_id.clone().ok_or(EntryFailure {
        code: "MissingTargetId".into(),
        message: format!("{} has no target user id", entry.anchor),
    })
}

/// The store writes after an entry succeeded.
fn record_success(
    entry: &PlanEntry,
    target_id: &str,
    managed: Option<&ManagedUser>,
    disposition: Option<Disposition>,
) -> Vec<StoreWrite> {
    let mut writes = Vec::new();
    if entry.action == Action::Create {
        writes.push(StoreWrite::ResolveCreateIntent {
            anchor: entry.anchor.clone(),
        });
    }
    if entry.action == Action::SoftDelete {
        writes.push(StoreWrite::SetSoftDeleted {
            anchor: entry.anchor.clone(),
            at: Some(Utc::now()),
        });
        return writes;
    }
    let exported_disabled = entry
        .exported_after
        .get("accountEnabled")
        .is_some_and(|v| v == &Value::Bool(false));
    // Entra's documented case: a user disabled while still in scope, then removed from scope,
    // stays (disabled). Remember that it was disabled in scope.
    let disabled_in_scope = match disposition {
        Some(Disposition::Disable) => true,
        Some(Disposition::Provision) => false,
        _ => managed.is_some_and(|m| m.disabled_before_scope_exit) && exported_disabled,
    };
    let mut last_exported = entry.exported_after.clone();
    if let Some(manager) = managed.and_then(|m| m.last_exported.get(MANAGER_ATTRIBUTE)) {
        last_exported
            .entry(MANAGER_ATTRIBUTE.to_owned())
            .or_insert_with(|| manager.clone());
    }
    writes.push(StoreWrite::PutManaged(ManagedUser {
        anchor: entry.anchor.clone(),
        target_id: target_id.to_owned(),
        last_exported,
        disabled_before_scope_exit: disabled_in_scope && exported_disabled,
        soft_deleted_by_us_at: None,
    }));
    writes
}
