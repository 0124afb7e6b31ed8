//! Carries out a plan: each entry's Graph writes, then its planned store records, then the
//! manager references. Writes go out as `$batch` requests of 20 (the invitations of a chunk
//! of creates in one batch, then their PATCHes with the chunk's other writes in a second),
//! a few chunks in flight at once; the client paces them to Graph's quotas. Every manager
//! reference follows all entries, so a manager is set only once both users exist. The executor decides nothing: what to write to the target and to the
//! store was decided by the planner; it only adds what a result brings (the id a create got,
//! an escrow for a failure, the provisioning log).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Map, Value};

use futures::StreamExt;
use futures::stream::FuturesOrdered;

use crate::graph::{BatchRequest, BatchResult, GraphError, Invitation, MAX_BATCH, NewInvitation};
use crate::plan::{
    Action, Anchor, MANAGER_ATTRIBUTE, ManagedUser, ManagerUpdate, Plan, PlanEntry, Record,
    UserNames,
};
use crate::store::{CreateIntent, Escrow, EscrowError, ProvisioningResult, StateStore, StoreWrite};

use super::action_log::{self, emit, log_entry, loggable_skip};
use super::killpoint::{self, CrashAt, Step};
use super::runtime::PairRuntime;
use super::{EngineError, escrow};

/// Write entries per chunk: one `$batch` of invitations, one of the other writes.
const CHUNK: usize = MAX_BATCH;
/// Chunks in flight at once per pair: enough to keep Graph's write quota busy at its
/// latency (20 users per two round trips), few enough to stay polite and bounded in memory.
const CHUNKS_IN_FLIGHT: usize = 4;

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
        EntryFailure::of(&e)
    }
}

impl EntryFailure {
    fn of(e: &GraphError) -> Self {
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
    let mut writing = Vec::new();
    for entry in plan.entries() {
        // Between entries only: the ones in flight finish and is recorded first.
        if let Some(stop) = ctx.stop() {
            return Err(stop);
        }
        if entry.action.writes() {
            writing.push(entry);
        } else {
            executor.record_skip(entry).await?;
        }
    }
    executor.write_entries(&writing).await?;
    executor.manager_updates(plan.manager_updates()).await?;
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
            let names = action_log::planned_names(entry);
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

    /// Checked between chunks: shutdown, or a lease that may have passed to another replica.
    fn stop(&self) -> Option<EngineError> {
        self.ctx.stop()
    }

    /// Every writing entry, chunk by chunk, a few chunks in flight; each result is recorded
    /// in plan order as its chunk completes. On shutdown no new chunk starts and the ones in
    /// flight finish and are recorded.
    async fn write_entries(&mut self, entries: &[&PlanEntry]) -> Result<(), EngineError> {
        let io = ChunkIo {
            rt: self.rt,
            store: self.store,
            ctx: self.ctx,
        };
        let mut chunks = entries.chunks(CHUNK);
        let mut progress = crate::telemetry::progress::Progress::new(
            self.rt.name(),
            "apply",
            Some(entries.len() as u64),
        );
        let mut finished = 0u64;
        let mut inflight = FuturesOrdered::new();
        let mut stopped = None;
        loop {
            while inflight.len() < CHUNKS_IN_FLIGHT && stopped.is_none() {
                stopped = self.stop();
                if stopped.is_some() {
                    break;
                }
                match chunks.next() {
                    Some(chunk) => inflight.push_back(io.write(chunk)),
                    None => break,
                }
            }
            let Some(done) = inflight.next().await else {
                break;
            };
            for (entry, elapsed, result, names) in done? {
                self.finish_entry(entry, elapsed, result, &names).await?;
                finished += 1;
            }
            progress.update(finished);
        }
        match stopped {
            Some(stop) if chunks.next().is_some() => Err(stop),
            _ => Ok(()),
        }
    }

    /// Records an entry's result: the planned records (or the escrow of the failure) with the
    /// log entry in one commit.
    async fn finish_entry(
        &mut self,
        entry: &PlanEntry,
        elapsed: Duration,
        result: Result<String, EntryFailure>,
        names: &UserNames,
    ) -> Result<(), EngineError> {
        let duration = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
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
        let log = log_entry(
            self.rt,
            self.cycle_id,
            entry,
            names,
            target_id.as_deref(),
            duration,
            status,
            failure.as_ref(),
        );
        emit(&log, entry, names);
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

    /// The manager references, 20 per `$batch`, a few batches in flight. A reference waits
    /// (skipped this cycle) while its user's entry is unfinished, or while its manager has no
    /// target user yet.
    async fn manager_updates(&mut self, updates: &[ManagerUpdate]) -> Result<(), EngineError> {
        let mut ready = Vec::new();
        for update in updates {
            if self.unfinished.contains(&update.anchor) {
                continue;
            }
            let Some(target_id) = update
                .target_id
                .clone()
                .or_else(|| self.created.get(&update.anchor).cloned())
            else {
                continue;
            };
            let manager_id = match &update.new_manager {
                Some(manager) => match update
                    .new_manager_target_id
                    .clone()
                    .or_else(|| self.created.get(manager).cloned())
                {
                    Some(id) => Some(id),
                    None => continue,
                },
                None => None,
            };
            ready.push(ManagerWrite {
                update,
                target_id,
                manager_id,
            });
        }
        let target = &self.rt.target;
        let mut chunks = ready.chunks(CHUNK);
        let mut inflight = FuturesOrdered::new();
        let mut stopped = None;
        loop {
            while inflight.len() < CHUNKS_IN_FLIGHT && stopped.is_none() {
                stopped = self.stop();
                if stopped.is_some() {
                    break;
                }
                match chunks.next() {
                    Some(chunk) => inflight.push_back(async move {
                        let requests: Vec<BatchRequest> = chunk
                            .iter()
                            .enumerate()
                            .map(|(i, w)| w.request(i, target.api_root()))
                            .collect();
                        (chunk, target.batch(&requests).await)
                    }),
                    None => break,
                }
            }
            let Some((chunk, result)) = inflight.next().await else {
                break;
            };
            for (i, write) in chunk.iter().enumerate() {
                let result = item_result(&result, i, write.manager_id.is_none());
                self.record_manager(write, result).await?;
            }
        }
        match stopped {
            Some(stop) if chunks.next().is_some() => Err(stop),
            _ => Ok(()),
        }
    }

    async fn record_manager(
        &mut self,
        write: &ManagerWrite<'_>,
        result: Result<(), EntryFailure>,
    ) -> Result<(), EngineError> {
        let update = write.update;
        let target_id = &write.target_id;
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
                action_log::emit_manager(pair, cycle_id, update, target_id, None);
                self.crash_here(Step::BeforeCommit)?;
            }
            Err(failure) => {
                action_log::emit_manager(pair, cycle_id, update, target_id, Some(&failure));
                self.fail(&mut writes, &update.anchor, true, Action::Update, &failure);
            }
        }
        if !writes.is_empty() {
            self.store.commit(pair, writes).await?;
        }
        Ok(())
    }
}

/// A manager reference ready to write: its user's and its manager's target ids.
struct ManagerWrite<'a> {
    update: &'a ManagerUpdate,
    target_id: String,
    /// `None` clears the manager.
    manager_id: Option<String>,
}

impl ManagerWrite<'_> {
    fn request(&self, i: usize, api_root: &str) -> BatchRequest {
        let url = format!(
            "/users/{}/manager/$ref",
            crate::graph::segment(&self.target_id)
        );
        match &self.manager_id {
            Some(manager) => BatchRequest::new(i.to_string(), reqwest::Method::PUT, url).with_json(
                serde_json::json!({
                    "@odata.id": format!("{api_root}/users/{}", crate::graph::segment(manager))
                }),
            ),
            None => BatchRequest::new(i.to_string(), reqwest::Method::DELETE, url),
        }
    }
}

/// The result of item `i` of a batch; `absent_ok` when a 404 means the goal holds (a
/// delete of something already gone).
fn item_result(
    batch: &Result<BatchResult, GraphError>,
    i: usize,
    absent_ok: bool,
) -> Result<(), EntryFailure> {
    match batch {
        Err(e) => Err(EntryFailure::of(e)),
        Ok(result) => match result.responses.get(i) {
            None => Err(EntryFailure::missing(
                "BatchResponseMissing",
                format!("no $batch response for item {i}"),
            )),
            Some(item) => match item.error(&result.client_request_id) {
                None => Ok(()),
                Some(e) if absent_ok && e.is_not_found() => Ok(()),
                Some(e) => Err(EntryFailure::of(&e)),
            },
        },
    }
}

/// The Graph side of a chunk of writing entries; borrows nothing of the executor's state, so
/// several chunks can be in flight while results are recorded.
#[derive(Clone, Copy)]
struct ChunkIo<'a> {
    rt: &'a PairRuntime,
    store: &'a dyn StateStore,
    ctx: ApplyContext<'a>,
}

/// An entry's result with the time it took (its chunk's time) and the names for its log line.
type EntryResult<'e> = (
    &'e PlanEntry,
    Duration,
    Result<String, EntryFailure>,
    UserNames,
);

impl ChunkIo<'_> {
    fn crash_here(&self, step: Step) -> Result<(), EngineError> {
        if killpoint::reached(step, self.ctx.crash) {
            return Err(EngineError::Crashed(step.as_str()));
        }
        Ok(())
    }

    /// One chunk: the creates' intents in one commit (before any invitation, so a crash in
    /// between is resolved on restart: the invitation of an existing B2B user returns that
    /// user), a `$batch` of invitations, restores one by one, then a `$batch` of the PATCHes
    /// and DELETEs. The outer error is a crash or the store; each entry carries its own result.
    async fn write<'e>(
        self,
        chunk: &'e [&'e PlanEntry],
    ) -> Result<Vec<EntryResult<'e>>, EngineError> {
        let started = Instant::now();
        let creates = self.record_intents(chunk).await?;
        let mut progress = ChunkProgress::new(chunk);
        self.invite(&mut progress).await?;
        self.resolve_targets(&mut progress).await;
        self.patch_and_delete(&mut progress).await;
        if creates {
            self.crash_here(Step::AfterPatch)?;
        }
        let results = progress.finish();
        let names = self.names_after(chunk, &results).await;
        let elapsed = started.elapsed();
        Ok(chunk
            .iter()
            .zip(results)
            .zip(names)
            .map(|((entry, result), names)| (*entry, elapsed, result, names))
            .collect())
    }

    /// Records an intent for each create of the chunk in one commit; `true` when there was one.
    async fn record_intents(&self, chunk: &[&PlanEntry]) -> Result<bool, EngineError> {
        let intents: Vec<StoreWrite> = chunk
            .iter()
            .filter(|e| e.action == Action::Create)
            .map(|entry| {
                StoreWrite::RecordCreateIntent(CreateIntent {
                    anchor: entry.anchor.clone(),
                    intent_id: entry
                        .resumes_intent
                        .clone()
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                    invited_address: entry.user_principal_name.clone().unwrap_or_default(),
                    recorded_at: Utc::now(),
                })
            })
            .collect();
        if intents.is_empty() {
            return Ok(false);
        }
        self.store.commit(self.rt.name(), intents).await?;
        self.crash_here(Step::AfterIntent)?;
        Ok(true)
    }

    /// The creates' invitations in one `$batch`; each invited user's id becomes its target id.
    async fn invite(&self, progress: &mut ChunkProgress<'_>) -> Result<(), EngineError> {
        let mut invited = Vec::new();
        for (i, entry) in progress.chunk.iter().enumerate() {
            if entry.action != Action::Create {
                continue;
            }
            match invitation_request(i, entry, &progress.bodies[i]) {
                Ok(request) => invited.push((i, request)),
                Err(failure) => progress.results[i] = Some(Err(failure)),
            }
        }
        if invited.is_empty() {
            return Ok(());
        }
        let requests: Vec<BatchRequest> = invited.iter().map(|(_, r)| r.clone()).collect();
        let batch = self.rt.target.batch(&requests).await;
        for (n, (i, _)) in invited.iter().enumerate() {
            if let Err(failure) = item_result(&batch, n, false) {
                progress.results[*i] = Some(Err(failure));
                continue;
            }
            let id = batch
                .as_ref()
                .ok()
                .and_then(|b| b.responses.get(n))
                .and_then(|item| item.body.clone())
                .and_then(|body| serde_json::from_value::<Invitation>(body).ok())
                .map(|inv| inv.invited_user.id);
            match id {
                Some(id) => progress.ids[*i] = Some(id),
                None => {
                    progress.results[*i] = Some(Err(EntryFailure::missing(
                        "InvalidInvitationResponse",
                        "the invitation's answer has no invitedUser id".into(),
                    )))
                }
            }
        }
        self.crash_here(Step::AfterInvite)
    }

    /// The other entries' target ids; restores are carried out here (rare, one by one).
    async fn resolve_targets(&self, progress: &mut ChunkProgress<'_>) {
        for (i, entry) in progress.chunk.iter().enumerate() {
            if entry.action == Action::Create || progress.results[i].is_some() {
                continue;
            }
            match target_id(entry) {
                Err(e) => progress.results[i] = Some(Err(e)),
                Ok(id) if entry.action == Action::Restore => {
                    match self.rt.target.restore_deleted(&id).await {
                        Ok(_) => progress.ids[i] = Some(id),
                        Err(e) => progress.results[i] = Some(Err(e.into())),
                    }
                }
                Ok(id) => progress.ids[i] = Some(id),
            }
        }
    }

    /// The PATCHes and DELETEs of every entry with a target id and no result yet, in one
    /// `$batch`; an entry with nothing to PATCH is done as it is.
    async fn patch_and_delete(&self, progress: &mut ChunkProgress<'_>) {
        let mut writes = Vec::new();
        for (i, entry) in progress.chunk.iter().enumerate() {
            let (Some(id), None) = (&progress.ids[i], &progress.results[i]) else {
                continue;
            };
            let url = format!("/users/{}", crate::graph::segment(id));
            if entry.action == Action::SoftDelete {
                writes.push((
                    i,
                    BatchRequest::new(i.to_string(), reqwest::Method::DELETE, url),
                ));
            } else if progress.bodies[i].is_empty() {
                progress.results[i] = Some(Ok(id.clone()));
            } else {
                writes.push((
                    i,
                    BatchRequest::new(i.to_string(), reqwest::Method::PATCH, url)
                        .with_json(Value::Object(progress.bodies[i].clone())),
                ));
            }
        }
        if writes.is_empty() {
            return;
        }
        let requests: Vec<BatchRequest> = writes.iter().map(|(_, r)| r.clone()).collect();
        let batch = self.rt.target.batch(&requests).await;
        for (n, (i, _)) in writes.iter().enumerate() {
            // Already gone: the goal of a delete holds.
            let absent_ok = progress.chunk[*i].action == Action::SoftDelete;
            let id = progress.ids[*i].clone().unwrap_or_default();
            progress.results[*i] = Some(item_result(&batch, n, absent_ok).map(|()| id));
        }
    }

    /// The names for each entry's log line. A created or restored user's target names did not
    /// exist at planning: they are read back in one `$batch` for the whole chunk.
    async fn names_after(
        &self,
        chunk: &[&PlanEntry],
        results: &[Result<String, EntryFailure>],
    ) -> Vec<UserNames> {
        let mut names: Vec<UserNames> = chunk
            .iter()
            .map(|entry| action_log::planned_names(entry))
            .collect();
        let lookups: Vec<(usize, BatchRequest)> = chunk
            .iter()
            .zip(results)
            .enumerate()
            .filter_map(|(i, (entry, result))| {
                let id = result.as_ref().ok()?;
                let appeared = matches!(entry.action, Action::Create | Action::Restore);
                (appeared && names[i].target_user_principal_name.is_none()).then(|| {
                    let url = format!(
                        "/users/{}?$select=id,userPrincipalName,displayName",
                        crate::graph::segment(id)
                    );
                    (
                        i,
                        BatchRequest::new(i.to_string(), reqwest::Method::GET, url),
                    )
                })
            })
            .collect();
        if lookups.is_empty() {
            return names;
        }
        let requests: Vec<BatchRequest> = lookups.iter().map(|(_, r)| r.clone()).collect();
        match self.rt.target.batch(&requests).await {
            Ok(answers) => {
                for ((i, _), item) in lookups.iter().zip(&answers.responses) {
                    let text = |k: &str| {
                        item.body
                            .as_ref()
                            .filter(|_| item.is_success())
                            .and_then(|b| b.get(k))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    names[*i].fill_from(&UserNames {
                        user_principal_name: None,
                        display_name: text("displayName"),
                        target_user_principal_name: text("userPrincipalName"),
                    });
                }
            }
            Err(e) => tracing::debug!(error = %e, "created users' name lookup failed"),
        }
        names
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

/// How far a chunk's entries have come: each one's PATCH body, its target id once known and
/// its result once settled. Filled step by step by `ChunkIo::write`.
struct ChunkProgress<'e> {
    chunk: &'e [&'e PlanEntry],
    bodies: Vec<Map<String, Value>>,
    ids: Vec<Option<String>>,
    results: Vec<Option<Result<String, EntryFailure>>>,
}

impl<'e> ChunkProgress<'e> {
    fn new(chunk: &'e [&'e PlanEntry]) -> Self {
        ChunkProgress {
            chunk,
            bodies: chunk.iter().map(|e| patch_body(e)).collect(),
            ids: vec![None; chunk.len()],
            results: chunk.iter().map(|_| None).collect(),
        }
    }

    /// Every entry's result; one that no step settled was not executed.
    fn finish(self) -> Vec<Result<String, EntryFailure>> {
        self.chunk
            .iter()
            .zip(self.results)
            .map(|(entry, result)| {
                result.unwrap_or_else(|| {
                    Err(EntryFailure::missing(
                        "NotExecuted",
                        format!("{} was not executed", entry.anchor),
                    ))
                })
            })
            .collect()
    }
}

/// The invitation of a create: its address is the source UPN, its display name and user type
/// those the PATCH will set.
fn invitation_request(
    i: usize,
    entry: &PlanEntry,
    body: &Map<String, Value>,
) -> Result<BatchRequest, EntryFailure> {
    let Some(address) = entry.user_principal_name.clone() else {
        return Err(EntryFailure::missing(
            "MissingUserPrincipalName",
            "the source user has no userPrincipalName to invite".into(),
        ));
    };
    let invitation = NewInvitation {
        invited_user_email_address: address,
        invite_redirect_url: INVITE_REDIRECT_URL.into(),
        invited_user_display_name: body
            .get("displayName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        invited_user_type: body
            .get("userType")
            .and_then(Value::as_str)
            .unwrap_or("Member")
            .to_owned(),
        send_invitation_message: false,
    };
    let json = serde_json::to_value(&invitation)
        .map_err(|e| EntryFailure::missing("InvalidInvitation", e.to_string()))?;
    Ok(BatchRequest::new(i.to_string(), reqwest::Method::POST, "/invitations").with_json(json))
}
