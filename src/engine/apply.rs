//! Carries out a plan: each entry's Graph writes, then its planned store records, then the
//! manager references. The executor decides nothing: what to write to the target and to the
//! store was decided by the planner; it only adds what a result brings (the id a create got,
//! an escrow for a failure, the provisioning log).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Map, Value};

use crate::graph::{GraphError, NewInvitation};
use crate::plan::{
    Action, Anchor, MANAGER_ATTRIBUTE, ManagedUser, ManagerUpdate, Plan, PlanEntry, Record,
};
use crate::store::{CreateIntent, Escrow, EscrowError, ProvisioningResult, StateStore, StoreWrite};

use super::action_log::{self, emit, log_entry, loggable_skip};
use super::killpoint::{self, CrashAt, Step};
use super::runtime::PairRuntime;
use super::{EngineError, escrow};

/// Where invited users would be sent if they ever opened an invitation (none is sent).
const INVITE_REDIRECT_URL: &str = "https://myapplications.microsoft.com";

/// Counts of what apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub succeeded: usize,
    /// Failures escrowed for a later retry.
    pub failed: usize,
    pub manager_updates: usize,
    /// Entries Graph throttled or could not reach past the client's retries: not escrowed (not
    /// the user's fault); the cycle keeps its watermark so the next one plans them again.
    pub deferred: usize,
    /// The longest `Retry-After` among the deferred entries: the next cycle waits at least that.
    pub retry_after: Option<Duration>,
}

/// How the executor runs besides the plan.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApplyContext<'a> {
    /// Stops between entries (shutdown).
    pub cancel: Option<&'a tokio_util::sync::CancellationToken>,
    /// An in-process crash at a step boundary (crash tests).
    pub crash: Option<&'a CrashAt>,
    /// The pair's lease (several replicas): no entry starts once it may have lapsed.
    pub lease: Option<&'a crate::store::LeaseGuard>,
}

impl ApplyContext<'_> {
    /// Checked between entries: shutdown, or a lease that may have passed to another replica.
    fn stop(&self) -> Option<EngineError> {
        if self.cancel.is_some_and(|c| c.is_cancelled()) {
            return Some(EngineError::Cancelled);
        }
        if self.lease.is_some_and(|l| !l.may_write()) {
            return Some(EngineError::LeaseLapsed);
        }
        None
    }
}

/// Why one entry failed: the Graph error, kept for the escrow and the log.
pub(crate) struct EntryFailure {
    pub(crate) code: String,
    pub(crate) message: String,
    /// Throttling or an unreachable Graph: retried next cycle, never escrowed.
    transient: bool,
    retry_after: Option<Duration>,
}

impl EntryFailure {
    fn escrow_error(&self) -> EscrowError {
        EscrowError {
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }

    fn missing(code: &str, message: String) -> Self {
        EntryFailure {
            code: code.into(),
            message,
            transient: false,
            retry_after: None,
        }
    }
}

impl From<GraphError> for EntryFailure {
    fn from(e: GraphError) -> Self {
        let transient = matches!(e.status(), Some(429 | 503 | 504))
            || matches!(e, GraphError::Transport { .. } | GraphError::Timeout { .. });
        EntryFailure {
            code: e.code().unwrap_or("GraphRequestFailed").to_owned(),
            message: e.to_string(),
            transient,
            retry_after: e.retry_after(),
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

/// One apply: the plan, the store, and what the results taught so far.
struct Executor<'a> {
    rt: &'a PairRuntime,
    store: &'a dyn StateStore,
    cycle_id: &'a str,
    ctx: ApplyContext<'a>,
    /// Open escrows before apply: only to count attempts when the same action fails again.
    escrows: BTreeMap<(Anchor, bool), Escrow>,
    /// Target ids of this cycle's creates, for the manager pass.
    created: BTreeMap<Anchor, String>,
    /// Anchors whose entry failed or was deferred: their manager update waits for them.
    unfinished: BTreeSet<Anchor>,
    outcome: ApplyOutcome,
}

/// Applies every entry in order, then the manager pass. Each entry's results land in one store
/// commit; a skip's planned records too.
pub async fn apply(
    rt: &PairRuntime,
    store: &dyn StateStore,
    plan: &Plan,
    cycle_id: &str,
    ctx: ApplyContext<'_>,
) -> Result<ApplyOutcome, EngineError> {
    let escrows = store
        .escrows(rt.name())
        .await?
        .into_iter()
        .map(|e| ((e.anchor.clone(), e.reference), e))
        .collect();
    let mut executor = Executor {
        rt,
        store,
        cycle_id,
        ctx,
        escrows,
        created: BTreeMap::new(),
        unfinished: BTreeSet::new(),
        outcome: ApplyOutcome::default(),
    };
    for entry in plan.entries() {
        // Between entries only: the one in flight finishes and is recorded first.
        if let Some(stop) = ctx.stop() {
            return Err(stop);
        }
        if entry.action.writes() {
            executor.write_entry(entry).await?;
        } else {
            executor.record_skip(entry).await?;
        }
    }
    for update in plan.manager_updates() {
        if let Some(stop) = ctx.stop() {
            return Err(stop);
        }
        executor.manager_update(update).await?;
    }
    Ok(executor.outcome)
}

/// The store writes a plan entry's records become, given the target id the action ended with.
pub(crate) fn record_writes(
    anchor: &Anchor,
    target_id: Option<&str>,
    records: &[Record],
) -> Vec<StoreWrite> {
    records
        .iter()
        .filter_map(|record| match record {
            Record::Link {
                exported,
                disabled_before_scope_exit,
            } => target_id.map(|id| {
                StoreWrite::PutManaged(ManagedUser {
                    anchor: anchor.clone(),
                    target_id: id.to_owned(),
                    last_exported: exported.clone(),
                    disabled_before_scope_exit: *disabled_before_scope_exit,
                    soft_deleted_by_us_at: None,
                })
            }),
            Record::SoftDeleted => Some(StoreWrite::SetSoftDeleted {
                anchor: anchor.clone(),
                at: Some(Utc::now()),
            }),
            Record::ResolveIntent => Some(StoreWrite::ResolveCreateIntent {
                anchor: anchor.clone(),
            }),
            Record::ClearEscrow => Some(StoreWrite::RemoveEscrow {
                anchor: anchor.clone(),
                reference: false,
            }),
        })
        .collect()
}

impl Executor<'_> {
    fn crash_here(&self, step: Step) -> Result<(), EngineError> {
        if killpoint::reached(step, self.ctx.crash) {
            return Err(EngineError::Crashed(step.as_str()));
        }
        Ok(())
    }

    /// A skip or a staged removal: no Graph call; its records and, when it needs a person's
    /// attention, its log line.
    async fn record_skip(&mut self, entry: &PlanEntry) -> Result<(), EngineError> {
        let mut writes = record_writes(&entry.anchor, entry.target_id.as_deref(), &entry.records);
        if entry.action == Action::StagedDelete || loggable_skip(entry.reason) {
            let names = action_log::names_after(self.rt, entry, None).await;
            let log = log_entry(
                self.rt,
                self.cycle_id,
                entry,
                &names,
                entry.target_id.as_deref(),
                0,
                ProvisioningResult::Skipped,
                None,
            );
            emit(&log, entry, &names);
            writes.push(StoreWrite::AppendLog(Box::new(log)));
        }
        if !writes.is_empty() {
            self.store.commit(self.rt.name(), writes).await?;
        }
        Ok(())
    }

    /// An entry that writes to the target: intent first for a create, the Graph calls, then
    /// the planned records (or the escrow of the failure) with the log entry in one commit.
    async fn write_entry(&mut self, entry: &PlanEntry) -> Result<(), EngineError> {
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
            self.store
                .commit(self.rt.name(), vec![StoreWrite::RecordCreateIntent(intent)])
                .await?;
            self.crash_here(Step::AfterIntent)?;
        }
        let result = self.execute(entry).await?;
        let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let mut writes = Vec::new();
        let (status, target_id, failure) = match result {
            Ok(target_id) => {
                self.outcome.succeeded += 1;
                self.created.insert(entry.anchor.clone(), target_id.clone());
                writes.extend(record_writes(
                    &entry.anchor,
                    Some(&target_id),
                    &entry.records,
                ));
                (ProvisioningResult::Success, Some(target_id), None)
            }
            Err(failure) => {
                self.unfinished.insert(entry.anchor.clone());
                self.fail(&mut writes, &entry.anchor, false, entry.action, &failure);
                (
                    ProvisioningResult::Failure,
                    entry.target_id.clone(),
                    Some(failure),
                )
            }
        };
        let succeeded = failure.is_none().then_some(target_id.as_deref()).flatten();
        let names = action_log::names_after(self.rt, entry, succeeded).await;
        let log = log_entry(
            self.rt,
            self.cycle_id,
            entry,
            &names,
            target_id.as_deref(),
            duration,
            status,
            failure.as_ref(),
        );
        emit(&log, entry, &names);
        writes.push(StoreWrite::AppendLog(Box::new(log)));
        if failure.is_none() {
            self.crash_here(Step::BeforeCommit)?;
        }
        self.store.commit(self.rt.name(), writes).await?;
        Ok(())
    }

    /// Books a failure: a transient one is deferred to the next cycle, any other escrowed.
    fn fail(
        &mut self,
        writes: &mut Vec<StoreWrite>,
        anchor: &Anchor,
        reference: bool,
        action: Action,
        failure: &EntryFailure,
    ) {
        if failure.transient {
            self.outcome.deferred += 1;
            self.outcome.retry_after = self.outcome.retry_after.max(failure.retry_after);
            return;
        }
        self.outcome.failed += 1;
        writes.push(StoreWrite::PutEscrow(escrow::next_escrow(
            self.escrows.get(&(anchor.clone(), reference)),
            anchor.clone(),
            reference,
            action,
            failure.escrow_error(),
            Utc::now(),
            self.rt.pair.quarantine.time_scale,
        )));
    }

    /// The Graph calls of one entry; the outer error is a crash or the store, the inner one
    /// the entry's own failure.
    async fn execute(
        &self,
        entry: &PlanEntry,
    ) -> Result<Result<String, EntryFailure>, EngineError> {
        let target = &self.rt.target;
        let body = patch_body(entry);
        let result = match entry.action {
            Action::Create => {
                let Some(address) = entry.user_principal_name.clone() else {
                    return Ok(Err(EntryFailure::missing(
                        "MissingUserPrincipalName",
                        "the source user has no userPrincipalName to invite".into(),
                    )));
                };
                let invited_type = body
                    .get("userType")
                    .and_then(Value::as_str)
                    .unwrap_or("Member")
                    .to_owned();
                let invited = target
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
                    .await;
                let id = match invited {
                    Ok(invitation) => invitation.invited_user.id,
                    Err(e) => return Ok(Err(e.into())),
                };
                self.crash_here(Step::AfterInvite)?;
                if let Err(e) = target.update_user(&id, &body).await {
                    return Ok(Err(e.into()));
                }
                self.crash_here(Step::AfterPatch)?;
                Ok(id)
            }
            Action::Adopt | Action::Update | Action::Disable => match target_id(entry) {
                Ok(id) if body.is_empty() => Ok(id),
                Ok(id) => target
                    .update_user(&id, &body)
                    .await
                    .map(|()| id)
                    .map_err(EntryFailure::from),
                Err(e) => Err(e),
            },
            Action::Restore => match target_id(entry) {
                Ok(id) => match target.restore_deleted(&id).await {
                    Ok(_) if body.is_empty() => Ok(id),
                    Ok(_) => target
                        .update_user(&id, &body)
                        .await
                        .map(|()| id)
                        .map_err(EntryFailure::from),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            },
            Action::SoftDelete => match target_id(entry) {
                Ok(id) => match target.delete_user(&id).await {
                    // Already gone: the goal of the action holds.
                    Err(e) if e.is_not_found() => Ok(id),
                    other => other.map(|()| id).map_err(EntryFailure::from),
                },
                Err(e) => Err(e),
            },
            Action::Skip | Action::StagedDelete => target_id(entry),
        };
        Ok(result)
    }

    /// One manager reference; waits (skipped this cycle) while its user's entry is unfinished.
    async fn manager_update(&mut self, update: &ManagerUpdate) -> Result<(), EngineError> {
        if self.unfinished.contains(&update.anchor) {
            return Ok(());
        }
        let Some(target_id) = update
            .target_id
            .clone()
            .or_else(|| self.created.get(&update.anchor).cloned())
        else {
            return Ok(());
        };
        let result = match &update.new_manager {
            Some(manager) => {
                let Some(manager_id) = update
                    .new_manager_target_id
                    .clone()
                    .or_else(|| self.created.get(manager).cloned())
                else {
                    return Ok(());
                };
                self.rt.target.set_manager(&target_id, &manager_id).await
            }
            None => self.rt.target.remove_manager(&target_id).await,
        };
        let mut writes = Vec::new();
        let pair = self.rt.name();
        let cycle_id = self.cycle_id;
        match result {
            Ok(()) => {
                self.outcome.manager_updates += 1;
                writes.push(StoreWrite::SetExported {
                    anchor: update.anchor.clone(),
                    attribute: MANAGER_ATTRIBUTE.to_owned(),
                    value: update
                        .new_manager
                        .as_ref()
                        .map(|m| Value::String(m.to_string())),
                });
                if update.clears_escrow {
                    writes.push(StoreWrite::RemoveEscrow {
                        anchor: update.anchor.clone(),
                        reference: true,
                    });
                }
                action_log::emit_manager(pair, cycle_id, update, &target_id, None);
                self.crash_here(Step::BeforeCommit)?;
            }
            Err(e) => {
                let failure = EntryFailure::from(e);
                action_log::emit_manager(pair, cycle_id, update, &target_id, Some(&failure));
                self.fail(&mut writes, &update.anchor, true, Action::Update, &failure);
            }
        }
        if !writes.is_empty() {
            self.store.commit(pair, writes).await?;
        }
        Ok(())
    }
}

fn target_id(entry: &PlanEntry) -> Result<String, EntryFailure> {
    entry.target_id.clone().ok_or_else(|| {
        EntryFailure::missing(
            "MissingTargetId",
            format!("{} has no target user id", entry.anchor),
        )
    })
}
