//! The registry of jobs: what the admin API and the CLI see of a running daemon, and how
//! jobs are added, reconfigured and removed while it runs.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::store::{LeaseGuard, StateStore};

use super::super::cycle::CycleReport;
use super::super::reload::ReloadOutcome;
use super::super::runtime::PairRuntime;
use super::super::status::JobStatus;
use super::commands::{JobCommand, JobMessage};
use super::persist::load_status;
use super::{ResetScope, ResetScopeError};

/// A job to start: its runtime, its mailbox and its stop switch.
pub(crate) struct JobSpawn {
    pub(super) runtime: Arc<PairRuntime>,
    pub(super) messages: mpsc::Receiver<JobMessage>,
    pub(super) stop: CancellationToken,
    pub(super) loaded: Arc<std::sync::atomic::AtomicBool>,
}

/// What the admin API and the CLI see of a running daemon: its jobs, their status, a way to
/// send them commands, and streams of finished cycles and status changes. Cheap to clone.
#[derive(Clone)]
pub struct DaemonHandle {
    pub(super) inner: Arc<HandleInner>,
}

pub(super) struct JobSlot {
    pub(super) runtime: Arc<PairRuntime>,
    pub(super) messages: mpsc::Sender<JobMessage>,
    pub(super) stop: CancellationToken,
    pub(super) loaded: Arc<std::sync::atomic::AtomicBool>,
}

pub(super) struct HandleInner {
    pub(super) store: Arc<dyn StateStore>,
    /// Leases of the pairs this replica runs (shared store): each job's writes are fenced
    /// by its pair's guard. Empty with a single-replica store.
    pub(super) guards: RwLock<BTreeMap<String, Arc<LeaseGuard>>>,
    /// Why the store cannot be used right now (unreachable), for readiness and status.
    pub(super) store_problem: RwLock<Option<String>>,
    /// Set when several replicas share the store.
    pub(super) replica: RwLock<Option<Arc<super::super::replica::ReplicaState>>>,
    pub(super) jobs: RwLock<BTreeMap<String, JobSlot>>,
    pub(super) cycles: broadcast::Sender<CycleReport>,
    pub(super) statuses: broadcast::Sender<(String, JobStatus)>,
    pub(super) reloads: broadcast::Sender<ReloadOutcome>,
    pub(super) spawns: mpsc::UnboundedSender<JobSpawn>,
    /// `run --interval`: the interval every job uses instead of its pair's.
    pub(super) interval_override: Option<std::time::Duration>,
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
    pub(super) fn jobs(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, JobSlot>> {
        // A poisoned lock means a panic while holding it; the map itself is still whole
        // (every write is a single insert or remove).
        self.inner
            .jobs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn jobs_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, JobSlot>> {
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
    /// The interval the jobs run on when `run --interval` overrides the pairs' own.
    pub fn interval_override(&self) -> Option<std::time::Duration> {
        self.inner.interval_override
    }

    pub fn runtime(&self, pair: &str) -> Option<Arc<PairRuntime>> {
        self.jobs().get(pair).map(|slot| slot.runtime.clone())
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

pub(super) fn new_job(runtime: Arc<PairRuntime>) -> (JobSlot, JobSpawn) {
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
