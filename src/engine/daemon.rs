//! Runs every pair as a job: a cycle on its interval, on demand, or on the quarantine retry
//! schedule, until shutdown. Errors of a cycle go to one policy (record, maybe quarantine,
//! wait); they never stop other jobs. Jobs can be added, reconfigured and removed while the
//! daemon runs (hot reload).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::plan::Anchor;
use crate::store::{
    FencedStore, LeaseGuard, LogQuery, ProvisioningAction, StateStore, StoreError, StoreWrite,
};

use super::EngineError;
use super::cycle::{CycleKind, CycleOptions, CycleReport, run_cycle};
use super::escrow;
use super::quarantine::{self, FailureCounts, QuarantineReason};
use super::reload::ReloadOutcome;
use super::runtime::PairRuntime;
use super::status::{FullSync, JobState, JobStatus, StagedDeletes, StagedUser, StatusError};

pub use super::reset::{ResetScope, ResetScopeError};

/// What can be asked of a running job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// Run an incremental cycle now (ignored while paused or disabled; an early retry while
    /// quarantined).
    RunNow,
    /// Stop running cycles; persisted, so a paused job stays paused across restarts.
    Pause,
    /// Continue a paused job, clearing any quarantine; runs a cycle now.
    Start,
    /// Kept for existing callers: `full` = `ResetScope::full()`, `force_deletes` alone =
    /// `ForceDeletes`, neither = the portal's restart (`ResetScope::portal()`).
    Restart { full: bool, force_deletes: bool },
    /// Graph's restart with `criteria.resetScope`; runs a cycle now.
    RestartWith(ResetScope),
    /// Lets the staged deletes through in the next cycle (same as restart `ForceDeletes`).
    ApproveDeletes,
}

impl JobCommand {
    /// The reset a restart-like command asks for, if it is one.
    fn reset_scope(&self) -> Option<ResetScope> {
        match self {
            JobCommand::Restart { full: true, .. } => Some(ResetScope::full()),
            JobCommand::Restart {
                full: false,
                force_deletes: true,
            } => Some(ResetScope {
                force_deletes: true,
                ..ResetScope::default()
            }),
            JobCommand::Restart { .. } => Some(ResetScope::portal()),
            JobCommand::RestartWith(scope) => Some(*scope),
            JobCommand::ApproveDeletes => Some(ResetScope {
                force_deletes: true,
                ..ResetScope::default()
            }),
            _ => None,
        }
    }
}

/// What a job's loop receives.
#[derive(Debug)]
pub(crate) enum JobMessage {
    Command(JobCommand),
    /// A validated new configuration; `full` when mappings or scope changed.
    Reconfigure {
        runtime: Arc<PairRuntime>,
        full: bool,
    },
}

/// How the daemon runs.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Run one cycle of each pair, then stop.
    pub once: bool,
    /// Overrides every pair's interval (demos and tests).
    pub interval_override: Option<std::time::Duration>,
}

/// The jobs of a topology.
pub struct Daemon {
    handle: DaemonHandle,
    options: DaemonOptions,
    initial: Vec<JobSpawn>,
    spawns: mpsc::UnboundedReceiver<JobSpawn>,
}

/// A job to start: its runtime, its mailbox and its stop switch.
pub(crate) struct JobSpawn {
    runtime: Arc<PairRuntime>,
    messages: mpsc::Receiver<JobMessage>,
    stop: CancellationToken,
    loaded: Arc<std::sync::atomic::AtomicBool>,
}

/// What the admin API and the CLI see of a running daemon: its jobs, their status, a way to
/// send them commands, and streams of finished cycles and status changes. Cheap to clone.
#[derive(Clone)]
pub struct DaemonHandle {
    inner: Arc<HandleInner>,
}

struct JobSlot {
    runtime: Arc<PairRuntime>,
    messages: mpsc::Sender<JobMessage>,
    stop: CancellationToken,
    loaded: Arc<std::sync::atomic::AtomicBool>,
}

struct HandleInner {
    store: Arc<dyn StateStore>,
    /// Leases of the pairs this replica runs (shared store): each job's writes are fenced
    /// by its pair's guard. Empty with a single-replica store.
    guards: RwLock<BTreeMap<String, Arc<LeaseGuard>>>,
    /// Why the store cannot be used right now (unreachable), for readiness and status.
    store_problem: RwLock<Option<String>>,
    /// Set when several replicas share the store.
    replica: RwLock<Option<Arc<super::replica::ReplicaState>>>,
    jobs: RwLock<BTreeMap<String, JobSlot>>,
    cycles: broadcast::Sender<CycleReport>,
    statuses: broadcast::Sender<(String, JobStatus)>,
    reloads: broadcast::Sender<ReloadOutcome>,
    spawns: mpsc::UnboundedSender<JobSpawn>,
}

/// A command for a pair the daemon does not run, or a job that stopped.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no pair named {0}")]
    UnknownPair(String),
    #[error("the job of pair {0} is not running")]
    JobStopped(String),
}

impl DaemonHandle {
    fn jobs(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, JobSlot>> {
        // A poisoned lock means a panic while holding it; the map itself is still whole
        // (every write is a single insert or remove).
        self.inner
            .jobs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn jobs_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, JobSlot>> {
        self.inner
            .jobs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pair names, sorted.
    pub fn pairs(&self) -> Vec<String> {
        self.jobs().keys().cloned().collect()
    }

    /// The pair's current runtime (the last good configuration).
    pub fn runtime(&self, pair: &str) -> Option<Arc<PairRuntime>> {
        self.jobs().get(pair).map(|slot| slot.runtime.clone())
    }

    pub fn store(&self) -> Arc<dyn StateStore> {
        self.inner.store.clone()
    }

    /// The store as the job of `pair` writes it: fenced by the pair's lease when several
    /// replicas share the store.
    pub fn store_for(&self, pair: &str) -> (Arc<dyn StateStore>, Option<Arc<LeaseGuard>>) {
        match self.guard(pair) {
            Some(guard) => (
                Arc::new(FencedStore::new(self.inner.store.clone(), guard.clone())),
                Some(guard),
            ),
            None => (self.inner.store.clone(), None),
        }
    }

    fn guard(&self, pair: &str) -> Option<Arc<LeaseGuard>> {
        self.inner
            .guards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(pair)
            .cloned()
    }

    /// Runs `runtime`'s job under `guard` (a lease this replica just took).
    pub(crate) fn start_leased_job(&self, runtime: Arc<PairRuntime>, guard: Arc<LeaseGuard>) {
        let name = runtime.name().to_owned();
        self.inner
            .guards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.clone(), guard);
        let mut jobs = self.jobs_mut();
        if jobs.contains_key(&name) {
            return;
        }
        let (slot, spawn) = new_job(runtime);
        jobs.insert(name, slot);
        let _ = self.inner.spawns.send(spawn);
    }

    /// Fences the job of `pair` (started or not yet) with `guard`.
    pub(crate) fn set_guard(&self, pair: &str, guard: Arc<LeaseGuard>) {
        self.inner
            .guards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(pair.to_owned(), guard);
    }

    /// Stops the job of a pair whose lease this replica no longer holds (or gives up).
    pub(crate) fn stop_leased_job(&self, pair: &str) {
        if let Some(guard) = self
            .inner
            .guards
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(pair)
        {
            guard.lose();
        }
        self.remove_job(pair);
    }

    /// The leases this replica holds, by pair.
    pub fn guards(&self) -> BTreeMap<String, Arc<LeaseGuard>> {
        self.inner
            .guards
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Why the store cannot be used right now, if it cannot.
    pub fn store_problem(&self) -> Option<String> {
        self.inner
            .store_problem
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_store_problem(&self, problem: Option<String>) {
        let mut slot = self
            .inner
            .store_problem
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *slot != problem {
            match &problem {
                Some(p) => {
                    tracing::error!(problem = %p, "store unreachable: jobs pause until it is back")
                }
                None => tracing::info!("store reachable again: jobs resume"),
            }
        }
        *slot = problem;
    }

    /// This replica's part in a shared store, when there is one.
    pub fn replica(&self) -> Option<Arc<super::replica::ReplicaState>> {
        self.inner
            .replica
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_replica(&self, state: Arc<super::replica::ReplicaState>) {
        *self
            .inner
            .replica
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state);
    }

    /// The job's persisted status (`NotRun` before its first cycle).
    pub async fn status(&self, pair: &str) -> Option<JobStatus> {
        if !self.jobs().contains_key(pair) {
            return None;
        }
        Some(load_status(self.inner.store.as_ref(), pair).await)
    }

    pub async fn send(&self, pair: &str, command: JobCommand) -> Result<(), CommandError> {
        self.message(pair, JobMessage::Command(command)).await
    }

    /// Sends a restart with a Graph `resetScope` string (`"Watermark,Escrows"`, `""` = the
    /// portal's restart).
    pub async fn restart(&self, pair: &str, reset_scope: &str) -> Result<(), RestartError> {
        let scope = ResetScope::parse(reset_scope)?;
        self.send(pair, JobCommand::RestartWith(scope)).await?;
        Ok(())
    }

    pub(crate) async fn message(
        &self,
        pair: &str,
        message: JobMessage,
    ) -> Result<(), CommandError> {
        let tx = self
            .jobs()
            .get(pair)
            .map(|slot| slot.messages.clone())
            .ok_or_else(|| CommandError::UnknownPair(pair.to_owned()))?;
        tx.send(message)
            .await
            .map_err(|_| CommandError::JobStopped(pair.to_owned()))
    }

    /// Every finished cycle, as it finishes.
    pub fn subscribe_cycles(&self) -> broadcast::Receiver<CycleReport> {
        self.inner.cycles.subscribe()
    }

    /// Every saved status (after a cycle, a failure or a command), with its pair.
    pub fn subscribe_status(&self) -> broadcast::Receiver<(String, JobStatus)> {
        self.inner.statuses.subscribe()
    }

    /// Every configuration reload's outcome.
    pub fn subscribe_reloads(&self) -> broadcast::Receiver<ReloadOutcome> {
        self.inner.reloads.subscribe()
    }

    pub(crate) fn publish_reload(&self, outcome: ReloadOutcome) {
        let _ = self.inner.reloads.send(outcome);
    }

    /// True once every job has loaded its state.
    pub fn is_ready(&self) -> bool {
        self.jobs()
            .values()
            .all(|slot| slot.loaded.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Starts a job for a new pair (hot reload). False if the pair already runs.
    pub(crate) fn add_job(&self, runtime: PairRuntime) -> bool {
        let name = runtime.name().to_owned();
        let mut jobs = self.jobs_mut();
        if jobs.contains_key(&name) {
            return false;
        }
        let (slot, spawn) = new_job(Arc::new(runtime));
        jobs.insert(name, slot);
        // The receiver lives as long as `Daemon::run`; after it ends no job runs anyway.
        let _ = self.inner.spawns.send(spawn);
        true
    }

    /// Stops and forgets a removed pair's job; its cycle in flight stops between entries.
    pub(crate) fn remove_job(&self, pair: &str) -> bool {
        match self.jobs_mut().remove(pair) {
            Some(slot) => {
                slot.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Replaces a pair's runtime and tells its job.
    pub(crate) async fn reconfigure(
        &self,
        runtime: PairRuntime,
        full: bool,
    ) -> Result<(), CommandError> {
        let name = runtime.name().to_owned();
        let runtime = Arc::new(runtime);
        match self.jobs_mut().get_mut(&name) {
            Some(slot) => slot.runtime = runtime.clone(),
            None => return Err(CommandError::UnknownPair(name)),
        }
        self.message(&name, JobMessage::Reconfigure { runtime, full })
            .await
    }
}

/// A restart the handle could not send.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error(transparent)]
    Scope(#[from] ResetScopeError),
    #[error(transparent)]
    Command(#[from] CommandError),
}

fn new_job(runtime: Arc<PairRuntime>) -> (JobSlot, JobSpawn) {
    let (tx, rx) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let loaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    (
        JobSlot {
            runtime: runtime.clone(),
            messages: tx,
            stop: stop.clone(),
            loaded: loaded.clone(),
        },
        JobSpawn {
            runtime,
            messages: rx,
            stop,
            loaded,
        },
    )
}

/// The result of `--once`: which pairs failed.
#[derive(Debug, Default)]
pub struct DaemonSummary {
    pub failed_pairs: Vec<String>,
}

impl Daemon {
    pub fn new(
        runtimes: Vec<PairRuntime>,
        store: Arc<dyn StateStore>,
        options: DaemonOptions,
    ) -> Daemon {
        let mut jobs = BTreeMap::new();
        let mut initial = Vec::new();
        for rt in runtimes {
            let name = rt.name().to_owned();
            let (slot, spawn) = new_job(Arc::new(rt));
            jobs.insert(name, slot);
            initial.push(spawn);
        }
        let (cycles, _) = broadcast::channel(64);
        let (statuses, _) = broadcast::channel(64);
        let (reloads, _) = broadcast::channel(16);
        let (spawn_tx, spawns) = mpsc::unbounded_channel();
        Daemon {
            handle: DaemonHandle {
                inner: Arc::new(HandleInner {
                    store,
                    guards: RwLock::new(BTreeMap::new()),
                    store_problem: RwLock::new(None),
                    replica: RwLock::new(None),
                    jobs: RwLock::new(jobs),
                    cycles,
                    statuses,
                    reloads,
                    spawns: spawn_tx,
                }),
            },
            options,
            initial,
            spawns,
        }
    }

    pub fn handle(&self) -> DaemonHandle {
        self.handle.clone()
    }

    pub fn pairs(&self) -> Vec<String> {
        self.handle.pairs()
    }

    /// Runs until `shutdown` is cancelled (or, with `once`, after one cycle of each pair).
    /// A cycle in flight finishes its current entry and records it before the job stops.
    pub async fn run(mut self, shutdown: CancellationToken) -> DaemonSummary {
        let mut tasks = tokio::task::JoinSet::new();
        let spawn = |tasks: &mut tokio::task::JoinSet<(String, bool)>, job: JobSpawn| {
            let handle = self.handle.clone();
            let options = self.options.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let name = job.runtime.name().to_owned();
                let ok = run_job(job, handle, options, shutdown).await;
                (name, ok)
            });
        };
        for job in std::mem::take(&mut self.initial) {
            spawn(&mut tasks, job);
        }
        let mut summary = DaemonSummary::default();
        loop {
            if tasks.is_empty() && (self.options.once || shutdown.is_cancelled()) {
                break;
            }
            tokio::select! {
                Some(joined) = tasks.join_next() => match joined {
                    Ok((pair, false)) => summary.failed_pairs.push(pair),
                    Ok((_, true)) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "job task ended abnormally");
                        summary.failed_pairs.push("<unknown>".into());
                    }
                },
                Some(job) = self.spawns.recv(), if !self.options.once => {
                    if !shutdown.is_cancelled() {
                        spawn(&mut tasks, job);
                    }
                }
                () = shutdown.cancelled(), if tasks.is_empty() => break,
            }
        }
        summary.failed_pairs.sort();
        summary
    }
}

async fn load_status(store: &dyn StateStore, pair: &str) -> JobStatus {
    match store.status(pair).await {
        Ok(Some(value)) => serde_json::from_value(value).unwrap_or_else(|e| {
            tracing::warn!(pair, error = %e, "stored job status unreadable; starting fresh");
            JobStatus::default()
        }),
        Ok(None) => JobStatus::default(),
        Err(e) => {
            tracing::warn!(pair, error = %e, "cannot read job status; starting fresh");
            JobStatus::default()
        }
    }
}

/// What the next cycle should do beyond an ordinary incremental one.
#[derive(Debug, Default)]
struct Pending {
    full: bool,
    /// The staged removals an approval named (by anchor).
    approved_deletes: BTreeSet<Anchor>,
    reread: BTreeSet<String>,
}

/// One job: its runtime, status and the store, and what it does between cycles.
struct Job {
    rt: Arc<PairRuntime>,
    handle: DaemonHandle,
    store: Arc<dyn StateStore>,
    /// The pair's lease when several replicas share the store: apply stops between entries
    /// once it may have lapsed.
    lease: Option<Arc<LeaseGuard>>,
    pair: String,
    status: JobStatus,
    pending: Pending,
    /// When the next cycle runs if not at the interval: a transient failure's backoff, or
    /// Graph's `Retry-After` for deferred work.
    retry_in: Option<std::time::Duration>,
}

/// Transient failures in a row before they count as a connection failure (quarantine).
const TRANSIENT_FAILURES_BEFORE_QUARANTINE: u64 = 3;

/// 10 s, 20 s, 40 s … capped at 5 minutes (times the pair's `quarantine.timeScale`).
fn transient_backoff(failures: u64, scale: f64) -> std::time::Duration {
    let doublings = u32::try_from(failures.saturating_sub(1).min(5)).unwrap_or(5);
    let seconds = (10.0 * f64::from(1u32 << doublings)).min(300.0) * scale;
    std::time::Duration::from_secs_f64(seconds.clamp(0.1, 300.0))
}

impl Job {
    async fn save(&mut self) {
        self.status.derive_code();
        match serde_json::to_value(&self.status) {
            Ok(value) => {
                if let Err(e) = self
                    .store
                    .commit(&self.pair, vec![StoreWrite::PutStatus(value)])
                    .await
                {
                    tracing::error!(pair = %self.pair, error = %e, "cannot save job status");
                }
            }
            Err(e) => tracing::error!(pair = %self.pair, error = %e, "cannot serialize status"),
        }
        // Nobody listening is fine.
        let _ = self
            .handle
            .inner
            .statuses
            .send((self.pair.clone(), self.status.clone()));
    }

    fn runnable(&self) -> bool {
        !self.status.paused && self.status.code != JobState::Disabled
    }

    fn scale(&self) -> f64 {
        self.rt.pair.quarantine.time_scale
    }

    /// Runs one cycle and folds its outcome into the status. False when it failed.
    async fn cycle(&mut self, shutdown: &CancellationToken) -> bool {
        let began = Utc::now();
        self.retry_in = None;
        let escrows = self.store.escrows(&self.pair).await.unwrap_or_else(|e| {
            tracing::warn!(pair = %self.pair, error = %e, "cannot read escrows");
            Vec::new()
        });
        let pending = std::mem::take(&mut self.pending);
        let mut reread = escrow::due(&escrows, began);
        reread.extend(pending.reread);
        // Level-triggered: a full read of source and target heals what incremental cycles
        // missed (unlinked anchors, missing creates, stale values, orphaned intents).
        let full_due = self
            .status
            .full_sync
            .as_ref()
            .is_none_or(|f| f.next <= began);
        let options = CycleOptions {
            full: pending.full || full_due,
            approved_deletes: pending.approved_deletes,
            reread,
            cancel: Some(shutdown.clone()),
            crash: None,
            preview: false,
            lease: self.lease.clone(),
        };
        let forced = !options.approved_deletes.is_empty();
        let result = run_cycle(&self.rt, self.store.as_ref(), &options).await;
        let mut finished = None;
        let ok = match result {
            Ok(report) => {
                self.handle.set_store_problem(None);
                // Throttled work is planned again by the next cycle, not before Graph allows.
                self.retry_in = report
                    .retry_after_ms
                    .filter(|_| report.deferred > 0)
                    .map(std::time::Duration::from_millis)
                    .map(|d| d.max(self.rt.pair.interval));
                if report.kind == CycleKind::Initial {
                    let every = self.rt.pair.full_sync_interval;
                    self.status.full_sync = Some(FullSync {
                        interval_seconds: every.as_secs(),
                        last: report.started,
                        next: report.started
                            + chrono::Duration::from_std(every)
                                .unwrap_or(chrono::Duration::days(1)),
                    });
                }
                self.after_cycle(&report, forced).await;
                finished = Some(report);
                true
            }
            Err(EngineError::Cancelled) => {
                tracing::info!(pair = %self.pair, "cycle stopped by shutdown; watermark not saved");
                false
            }
            Err(EngineError::LeaseLapsed | EngineError::Store(StoreError::Fenced { .. })) => {
                // Another replica may run the pair now: this one records nothing more.
                tracing::warn!(pair = %self.pair, "cycle stopped: the pair's lease may have passed to another replica");
                return false;
            }
            Err(EngineError::Store(e)) if e.is_unavailable() => {
                // Not the pair's fault: no failure count, no quarantine; the next attempt
                // runs when the store is back.
                self.handle.set_store_problem(Some(e.to_string()));
                return false;
            }
            Err(e) => {
                tracing::error!(pair = %self.pair, error_code = %e.code(), error = %e, "cycle failed");
                self.status.record_failure(began, e.code(), e.to_string());
                let error = StatusError {
                    code: e.code(),
                    message: e.to_string(),
                    tenant_actionable: true,
                };
                let persistent = self.status.count_successive_complete_failures
                    >= TRANSIENT_FAILURES_BEFORE_QUARANTINE;
                if e.is_credential_failure() || (e.is_transient() && persistent) {
                    self.quarantine(QuarantineReason::EncounteredQuarantineException, error);
                } else if e.is_transient() && self.status.quarantine.is_none() {
                    let wait = transient_backoff(
                        self.status.count_successive_complete_failures,
                        self.scale(),
                    );
                    tracing::warn!(
                        event = "transientFailure",
                        pair = %self.pair,
                        failures = self.status.count_successive_complete_failures,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "transient failure: retrying soon, not quarantined"
                    );
                    self.retry_in = Some(wait);
                } else if let Some(q) = self.status.quarantine.clone() {
                    // Still failing: the quarantine stays in effect, one more in the series.
                    self.quarantine(q.reason, error);
                }
                false
            }
        };
        self.after_attempt();
        self.save().await;
        // After the status is saved, so a listener that sees the cycle reads its status.
        if let Some(report) = finished {
            let _ = self.handle.inner.cycles.send(report);
        }
        ok
    }

    fn quarantine(&mut self, reason: QuarantineReason, error: StatusError) {
        let q = quarantine::enter(
            self.status.quarantine.as_ref(),
            reason,
            error,
            Utc::now(),
            self.scale(),
        );
        self.status.quarantine = Some(q);
    }

    /// Quarantine bookkeeping after every attempt: disable after four weeks, and say why the
    /// job is quarantined, machine-readably, every time.
    fn after_attempt(&mut self) {
        let Some(q) = &self.status.quarantine else {
            return;
        };
        let now = Utc::now();
        if quarantine::expired(q.series_began, now, self.scale()) {
            self.status.code = JobState::Disabled;
            tracing::error!(
                event = "jobDisabled",
                pair = %self.pair,
                reason = q.reason.as_str(),
                series_began = %q.series_began,
                "quarantined for four weeks: job disabled"
            );
        }
        self.status.reason = Some(q.reason.as_str().to_owned());
        tracing::warn!(
            event = "quarantine",
            pair = %self.pair,
            reason = q.reason.as_str(),
            current_began = %q.current_began,
            next_attempt = %q.next_attempt,
            series_began = %q.series_began,
            series_count = q.series_count,
            error_code = %q.error.code,
            "job is quarantined"
        );
    }

    async fn after_cycle(&mut self, report: &CycleReport, forced: bool) {
        let escrows = self.store.escrows(&self.pair).await.unwrap_or_else(|e| {
            tracing::warn!(pair = %self.pair, error = %e, "cannot read escrows");
            Vec::new()
        });
        self.status.record_cycle(report, escrows.len());
        escrow::report_outstanding(&self.pair, &escrows);

        let staged = report.counts.get("stagedDelete").copied().unwrap_or(0);
        if staged > 0 {
            self.status.staged_deletes = Some(self.staged(report).await);
            self.status.reason = Some("TooManyDeletes".into());
            tracing::warn!(
                event = "deletionGuard",
                pair = %self.pair,
                reason = "TooManyDeletes",
                staged,
                threshold = self.rt.settings.deletion_guard.threshold,
                "deletes staged; approve with restart ForceDeletes"
            );
        } else if forced || report.kind == CycleKind::Initial {
            // Approved (or a full cycle re-planned everything): nothing is pending any more.
            self.status.staged_deletes = None;
            self.status.reason = report.blocked.clone();
        } else if self.status.staged_deletes.is_some() {
            // Still waiting for approval: the staged users are not re-read until then.
            self.status.reason = Some("TooManyDeletes".into());
        }

        let counts = FailureCounts {
            failures: escrows.iter().filter(|e| !e.reference).count() as u64,
            reference_failures: escrows.iter().filter(|e| e.reference).count() as u64,
            successes: (report.succeeded + report.manager_updates) as u64,
        };
        match quarantine::evaluate(counts, &self.rt.pair.quarantine) {
            Some(reason) => {
                let error = StatusError {
                    code: reason.as_str().to_owned(),
                    message: format!(
                        "{} failures outstanding ({} reference), {} successes in the last cycle",
                        counts.failures, counts.reference_failures, counts.successes
                    ),
                    tenant_actionable: true,
                };
                if report.kind == CycleKind::Initial {
                    self.prune_escrows(reason, &escrows).await;
                } else {
                    self.quarantine(reason, error);
                }
            }
            None => {
                if let Some(q) = self.status.quarantine.take() {
                    tracing::info!(
                        event = "quarantineLifted",
                        pair = %self.pair,
                        reason = q.reason.as_str(),
                        series_began = %q.series_began,
                        series_count = q.series_count,
                        "retry succeeded: quarantine lifted"
                    );
                }
            }
        }
    }

    /// Graph's `escrowsPruned`: an initial cycle that reaches a quarantine threshold clears
    /// its escrows instead, and the job pauses for the errors to be fixed. Loud, not silent:
    /// every failure is in the provisioning log, and the pruned ones are logged here.
    async fn prune_escrows(&mut self, reason: QuarantineReason, escrows: &[crate::store::Escrow]) {
        if let Err(e) = self
            .store
            .commit(&self.pair, vec![StoreWrite::ClearEscrows])
            .await
        {
            tracing::error!(pair = %self.pair, error = %e, "cannot prune escrows");
            return;
        }
        let anchors: Vec<String> = escrows.iter().map(|e| e.anchor.to_string()).collect();
        tracing::error!(
            event = "escrowsPruned",
            pair = %self.pair,
            reason = reason.as_str(),
            pruned = escrows.len(),
            anchors = %anchors.join(","),
            "initial cycle reached the failure threshold: escrows pruned, job paused; fix the \
             errors, then restart"
        );
        self.status.escrows_pruned = true;
        self.status.paused = true;
        self.status.quarantine = None;
        self.status.reason = Some(reason.as_str().to_owned());
    }

    /// The staged removals of `report`'s cycle, from its provisioning log entries.
    async fn staged(&self, report: &CycleReport) -> StagedDeletes {
        let query = LogQuery {
            since: Some(report.started),
            action: Some(ProvisioningAction::StagedDelete),
            status: None,
            limit: Some(u32::MAX),
        };
        let entries = self
            .store
            .provisioning_log(&self.pair, &query)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(pair = %self.pair, error = %e, "cannot read staged deletes");
                Vec::new()
            });
        let detail = |e: &crate::store::ProvisioningLogEntry, key: &str| {
            e.target_system
                .details
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let users: Vec<StagedUser> = entries
            .iter()
            .filter(|e| e.cycle_id == report.cycle_id)
            .map(|e| StagedUser {
                anchor: detail(e, "anchor"),
                source_object_id: e.source_identity.id.clone(),
                target_id: e.target_identity.id.clone(),
                user_principal_name: e
                    .source_identity
                    .details
                    .get("userPrincipalName")
                    .and_then(|v| v.as_str())
                    .unwrap_or(&e.source_identity.display_name)
                    .to_owned(),
                intended_action: detail(e, "intendedAction"),
            })
            .collect();
        let guard = &self.rt.settings.deletion_guard;
        StagedDeletes {
            cycle_id: report.cycle_id.clone(),
            staged_at: report.started,
            deletes: users
                .iter()
                .filter(|u| u.intended_action == "softDelete")
                .count(),
            disables: users
                .iter()
                .filter(|u| u.intended_action == "disable")
                .count(),
            threshold: guard.threshold,
            percentage: guard.percentage,
            users,
        }
    }

    /// Carries out a command; true when a cycle should run now.
    async fn command(&mut self, command: JobCommand) -> bool {
        tracing::info!(pair = %self.pair, command = ?command, "job command");
        if let Some(scope) = command.reset_scope() {
            self.restart(scope).await;
            return self.runnable();
        }
        match command {
            JobCommand::RunNow => {
                if !self.runnable() {
                    tracing::info!(pair = %self.pair, code = ?self.status.code, "run-now ignored: job not running");
                }
                self.runnable()
            }
            JobCommand::Pause => {
                self.status.paused = true;
                self.save().await;
                false
            }
            JobCommand::Start => {
                self.status.paused = false;
                self.status.escrows_pruned = false;
                self.status.quarantine = None;
                if self.status.code == JobState::Disabled {
                    self.status.code = JobState::Active;
                }
                self.save().await;
                true
            }
            _ => false,
        }
    }

    /// Graph's restart: each criterion resets its part; the job resumes and runs now.
    async fn restart(&mut self, scope: ResetScope) {
        if scope.watermark {
            if let Err(e) = self.store.clear_watermark(&self.pair).await {
                tracing::error!(pair = %self.pair, error = %e, "cannot clear watermark");
            }
            self.pending.full = true;
        }
        if scope.escrows
            && let Err(e) = self
                .store
                .commit(&self.pair, vec![StoreWrite::ClearEscrows])
                .await
        {
            tracing::error!(pair = %self.pair, error = %e, "cannot clear escrows");
        }
        if scope.quarantine_state {
            self.status.quarantine = None;
            if self.status.code == JobState::Disabled {
                self.status.code = JobState::Active;
            }
        }
        if scope.force_deletes {
            // The approval covers exactly the removals staged now; one that appears later is
            // judged by the guard on its own.
            match &self.status.staged_deletes {
                Some(staged) => {
                    self.pending
                        .approved_deletes
                        .extend(staged.users.iter().filter_map(|u| Anchor::parse(&u.anchor)));
                    self.pending
                        .reread
                        .extend(staged.users.iter().map(|u| u.source_object_id.clone()));
                }
                None => {
                    tracing::info!(pair = %self.pair, "ForceDeletes: no staged deletes to approve");
                }
            }
        }
        self.status.paused = false;
        self.status.escrows_pruned = false;
        self.save().await;
    }

    async fn reconfigure(&mut self, runtime: Arc<PairRuntime>, full: bool) -> bool {
        tracing::info!(pair = %self.pair, full, "configuration reloaded");
        self.rt = runtime;
        if full {
            // Entra: a mapping or scoping change starts a new initial cycle.
            if let Err(e) = self.store.clear_watermark(&self.pair).await {
                tracing::error!(pair = %self.pair, error = %e, "cannot clear watermark");
            }
            self.pending.full = true;
        }
        full && self.runnable()
    }
}

/// One job's loop. Returns false when (with `once`) its cycle failed.
async fn run_job(
    spawn: JobSpawn,
    handle: DaemonHandle,
    options: DaemonOptions,
    shutdown: CancellationToken,
) -> bool {
    let JobSpawn {
        runtime,
        mut messages,
        stop,
        loaded,
    } = spawn;
    let pair = runtime.name().to_owned();
    let (store, lease) = handle.store_for(&pair);
    let status = load_status(store.as_ref(), &pair).await;
    let mut job = Job {
        rt: runtime,
        handle,
        store,
        lease,
        pair,
        status,
        pending: Pending::default(),
        retry_in: None,
    };
    loaded.store(true, std::sync::atomic::Ordering::Release);
    // Shutdown or removal of the pair stops the job the same way.
    let stopping = CancellationToken::new();
    let stop_watch = {
        let stopping = stopping.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = stop.cancelled() => {}
            }
            stopping.cancel();
        })
    };
    // A quarantined job waits for its next attempt, except for a one-shot run.
    let mut run_now = job.runnable()
        && (options.once
            || job
                .status
                .quarantine
                .as_ref()
                .is_none_or(|q| q.next_attempt <= Utc::now()));
    let interval = |job: &Job| options.interval_override.unwrap_or(job.rt.pair.interval);
    // Commands in between do not push the next scheduled cycle back.
    let mut scheduled = tokio::time::Instant::now() + interval(&job);
    let result = loop {
        if run_now {
            let ok = job.cycle(&stopping).await;
            if options.once || stopping.is_cancelled() {
                break ok || !options.once;
            }
            scheduled = tokio::time::Instant::now() + job.retry_in.unwrap_or(interval(&job));
        } else if options.once {
            break true;
        }
        let deadline = match &job.status.quarantine {
            Some(q) => {
                tokio::time::Instant::now()
                    + (q.next_attempt - Utc::now()).to_std().unwrap_or_default()
            }
            None => scheduled,
        };
        run_now = tokio::select! {
            () = stopping.cancelled() => break true,
            () = tokio::time::sleep_until(deadline), if job.runnable() => true,
            message = messages.recv() => match message {
                None => break true,
                Some(JobMessage::Command(command)) => job.command(command).await,
                Some(JobMessage::Reconfigure { runtime, full }) => job.reconfigure(runtime, full).await,
            },
        };
    };
    stop_watch.abort();
    result
}
