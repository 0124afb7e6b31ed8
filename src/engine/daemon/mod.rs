//! Runs every pair as a job: a cycle on its interval, on demand, or on the quarantine retry
//! schedule, until shutdown. Errors of a cycle go to one policy (record, maybe quarantine,
//! wait); they never stop other jobs. Jobs can be added, reconfigured and removed while the
//! daemon runs (hot reload).
//!
//! - [`handle`]: the registry of jobs and what the API and the CLI see of them;
//! - [`leases`]: which pairs this replica holds, and the store as each job writes it;
//! - [`job`]: one job's loop and schedule, and how a cycle's outcome is folded in;
//! - [`commands`]: the job's mailbox (run now, pause, restart, reconfigure);
//! - [`bookkeeping`]: after a cycle: staged deletes, quarantine, escrow pruning;
//! - [`persist`]: the job status in the store;
//! - [`queries`]: what the admin API may read, and on-demand provisioning through the mailbox.

mod bookkeeping;
mod commands;
mod handle;
mod job;
mod leases;
mod persist;
mod queries;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::store::StateStore;

use super::runtime::PairRuntime;

pub use super::reset::{ResetScope, ResetScopeError};
pub use commands::JobCommand;
pub use handle::{CommandError, DaemonHandle, RestartError};
use handle::{HandleInner, JobSpawn, new_job};
use job::run_job;
pub use persist::{full_reconcile_due, load_status};
pub use queries::{Preview, QueryError};

/// How the daemon runs.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Run one cycle of each pair, then stop.
    pub once: bool,
    /// Overrides every pair's interval (demos and tests).
    pub interval_override: Option<std::time::Duration>,
    /// With `once`: approve, before the cycle, the deletes the deletion guard had staged (the
    /// set a person reviewed after the previous run exited 3). Deletes staged by this run's
    /// own cycle stay staged.
    pub approve_staged_deletes: bool,
}

/// The jobs of a topology.
pub struct Daemon {
    handle: DaemonHandle,
    options: DaemonOptions,
    initial: Vec<JobSpawn>,
    spawns: mpsc::UnboundedReceiver<JobSpawn>,
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
                    interval_override: options.interval_override,
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
