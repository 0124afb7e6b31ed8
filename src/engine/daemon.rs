//! Runs every pair as a job: a cycle on its interval or on demand, until shutdown. Errors of a
//! cycle go to one policy (record, log, wait the interval); they never stop other jobs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::store::{StateStore, StoreWrite};

use super::cycle::{CycleOptions, CycleReport, run_cycle};
use super::runtime::PairRuntime;
use super::status::{JobState, JobStatus};

/// What can be asked of a running job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// Run a cycle now.
    RunNow,
    Pause,
    Start,
    /// Run a cycle now with these restart options.
    Restart {
        full: bool,
        force_deletes: bool,
    },
}

/// How the daemon runs.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Run one cycle of each pair, then stop.
    pub once: bool,
    /// Overrides every pair's interval (demos and tests).
    pub interval_override: Option<Duration>,
}

/// The jobs of a topology.
pub struct Daemon {
    handle: DaemonHandle,
    options: DaemonOptions,
    receivers: Vec<(Arc<PairRuntime>, mpsc::Receiver<JobCommand>)>,
}

/// What the admin API and the CLI see of a running daemon: its jobs, their status, a way to
/// send them commands, and a stream of finished cycles (for metrics). Cheap to clone.
#[derive(Clone)]
pub struct DaemonHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    store: Arc<dyn StateStore>,
    jobs: BTreeMap<String, (Arc<PairRuntime>, mpsc::Sender<JobCommand>)>,
    cycles: broadcast::Sender<CycleReport>,
    /// Jobs that have loaded their state; ready when it equals the number of jobs.
    loaded: AtomicUsize,
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
    /// Pair names, sorted.
    pub fn pairs(&self) -> Vec<String> {
        self.inner.jobs.keys().cloned().collect()
    }

    pub fn runtime(&self, pair: &str) -> Option<Arc<PairRuntime>> {
        self.inner.jobs.get(pair).map(|(rt, _)| rt.clone())
    }

    pub fn store(&self) -> Arc<dyn StateStore> {
        self.inner.store.clone()
    }

    /// The job's persisted status (`NotRun` before its first cycle).
    pub async fn status(&self, pair: &str) -> Option<JobStatus> {
        if !self.inner.jobs.contains_key(pair) {
            return None;
        }
        Some(load_status(self.inner.store.as_ref(), pair).await)
    }

    pub async fn send(&self, pair: &str, command: JobCommand) -> Result<(), CommandError> {
        let (_, tx) = self
            .inner
            .jobs
            .get(pair)
            .ok_or_else(|| CommandError::UnknownPair(pair.to_owned()))?;
        tx.send(command)
            .await
            .map_err(|_| CommandError::JobStopped(pair.to_owned()))
    }

    /// Every finished cycle, as it finishes.
    pub fn subscribe_cycles(&self) -> broadcast::Receiver<CycleReport> {
        self.inner.cycles.subscribe()
    }

    /// True once every job has loaded its state.
    pub fn is_ready(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire) >= self.inner.jobs.len()
    }
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
        let mut receivers = Vec::new();
        for rt in runtimes {
            let rt = Arc::new(rt);
            let (tx, rx) = mpsc::channel(16);
            jobs.insert(rt.name().to_owned(), (rt.clone(), tx));
            receivers.push((rt, rx));
        }
        let (cycles, _) = broadcast::channel(64);
        Daemon {
            handle: DaemonHandle {
                inner: Arc::new(HandleInner {
                    store,
                    jobs,
                    cycles,
                    loaded: AtomicUsize::new(0),
                }),
            },
            options,
            receivers,
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
    pub async fn run(self, shutdown: CancellationToken) -> DaemonSummary {
        let mut tasks = tokio::task::JoinSet::new();
        for (rt, rx) in self.receivers {
            let handle = self.handle.clone();
            let options = self.options.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let ok = run_job(rt.clone(), handle, rx, options, shutdown).await;
                (rt.name().to_owned(), ok)
            });
        }
        let mut summary = DaemonSummary::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((pair, false)) => summary.failed_pairs.push(pair),
                Ok((_, true)) => {}
                Err(e) => {
                    tracing::error!(error = %e, "job task ended abnormally");
                    summary.failed_pairs.push("<unknown>".into());
                }
            }
        }
        summary.failed_pairs.sort();
        summary
    }
}

async fn load_status(store: &dyn StateStore, pair: &str) -> JobStatus {
    match store.status(pair).await {
        Ok(Some(value)) => serde_json::from_value(value).unwrap_or_default(),
        Ok(None) => JobStatus::default(),
        Err(e) => {
            tracing::warn!(pair, error = %e, "cannot read job status; starting fresh");
            JobStatus::default()
        }
    }
}

async fn save_status(store: &dyn StateStore, pair: &str, status: &JobStatus) {
    let value = match serde_json::to_value(status) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(pair, error = %e, "cannot serialize job status");
            return;
        }
    };
    if let Err(e) = store.commit(pair, vec![StoreWrite::PutStatus(value)]).await {
        tracing::error!(pair, error = %e, "cannot save job status");
    }
}

/// One job's loop. Returns false when (with `once`) its cycle failed.
async fn run_job(
    rt: Arc<PairRuntime>,
    handle: DaemonHandle,
    mut commands: mpsc::Receiver<JobCommand>,
    options: DaemonOptions,
    shutdown: CancellationToken,
) -> bool {
    let store = handle.store();
    let pair = rt.name().to_owned();
    let interval = options.interval_override.unwrap_or(rt.pair.interval);
    let mut status = load_status(store.as_ref(), &pair).await;
    handle.inner.loaded.fetch_add(1, Ordering::AcqRel);
    let mut next = CycleOptions::default();
    loop {
        let paused = status.code == JobState::Paused;
        let ok = if paused {
            true
        } else {
            let began = Utc::now();
            let cycle = run_cycle(&rt, store.as_ref(), &next);
            let result = tokio::select! {
                result = cycle => Some(result),
                () = shutdown.cancelled() => None,
            };
            next = CycleOptions::default();
            match result {
                None => return true,
                Some(Ok(report)) => {
                    status.record_cycle(&report);
                    save_status(store.as_ref(), &pair, &status).await;
                    // Nobody listening is fine: metrics are optional.
                    let _ = handle.inner.cycles.send(report);
                    true
                }
                Some(Err(e)) => {
                    tracing::error!(pair = %pair, error_code = %e.code(), error = %e, "cycle failed");
                    status.record_failure(began, e.code(), e.to_string());
                    save_status(store.as_ref(), &pair, &status).await;
                    false
                }
            }
        };
        if options.once {
            return ok;
        }
        tokio::select! {
            () = shutdown.cancelled() => return true,
            () = tokio::time::sleep(interval) => {}
            command = commands.recv() => match command {
                None => {}
                Some(JobCommand::RunNow) => {}
                Some(JobCommand::Pause) => {
                    status.code = JobState::Paused;
                    save_status(store.as_ref(), &pair, &status).await;
                }
                Some(JobCommand::Start) => {
                    status.code = JobState::Active;
                    save_status(store.as_ref(), &pair, &status).await;
                }
                Some(JobCommand::Restart { full, force_deletes }) => {
                    next = CycleOptions { full, force_deletes };
                }
            },
        }
    }
}
