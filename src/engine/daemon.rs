//! Runs every pair as a job: a cycle on its interval or on demand, until shutdown. Errors of a
//! cycle go to one policy (record, log, wait the interval); they never stop other jobs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::{StateStore, StoreWrite};

use super::cycle::{CycleOptions, run_cycle};
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
    store: Arc<dyn StateStore>,
    runtimes: Vec<Arc<PairRuntime>>,
    options: DaemonOptions,
    commands: BTreeMap<String, mpsc::Sender<JobCommand>>,
    receivers: Vec<(Arc<PairRuntime>, mpsc::Receiver<JobCommand>)>,
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
        let mut commands = BTreeMap::new();
        let mut receivers = Vec::new();
        let runtimes: Vec<Arc<PairRuntime>> = runtimes.into_iter().map(Arc::new).collect();
        for rt in &runtimes {
            let (tx, rx) = mpsc::channel(16);
            commands.insert(rt.name().to_owned(), tx);
            receivers.push((rt.clone(), rx));
        }
        Daemon {
            store,
            runtimes,
            options,
            commands,
            receivers,
        }
    }

    /// A handle to send commands to a job by pair name.
    pub fn commander(&self, pair: &str) -> Option<mpsc::Sender<JobCommand>> {
        self.commands.get(pair).cloned()
    }

    pub fn runtimes(&self) -> &[Arc<PairRuntime>] {
        &self.runtimes
    }

    /// Runs until `shutdown` is cancelled (or, with `once`, after one cycle of each pair).
    /// A cycle in flight finishes its current entry and records it before the job stops.
    pub async fn run(self, shutdown: CancellationToken) -> DaemonSummary {
        let mut tasks = tokio::task::JoinSet::new();
        for (rt, rx) in self.receivers {
            let store = self.store.clone();
            let options = self.options.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let ok = run_job(rt.clone(), store, rx, options, shutdown).await;
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
    store: Arc<dyn StateStore>,
    mut commands: mpsc::Receiver<JobCommand>,
    options: DaemonOptions,
    shutdown: CancellationToken,
) -> bool {
    let pair = rt.name().to_owned();
    let interval = options.interval_override.unwrap_or(rt.pair.interval);
    let mut status = load_status(store.as_ref(), &pair).await;
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
