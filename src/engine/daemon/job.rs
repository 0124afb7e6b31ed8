//! One job's loop and schedule: when the next cycle runs (interval, on demand, quarantine
//! retry, transient backoff, `Retry-After`), and how a cycle's outcome is folded into the
//! status.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::plan::Anchor;
use crate::store::{LeaseGuard, StateStore, StoreError};

use super::super::EngineError;
use super::super::cycle::{CycleKind, CycleOptions, CycleReport, run_cycle};
use super::super::escrow;
use super::super::quarantine::QuarantineReason;
use super::super::runtime::PairRuntime;
use super::super::status::{FullSync, JobState, JobStatus, StatusError};
use super::commands::JobMessage;
use super::handle::JobSpawn;
use super::persist::load_status;
use super::{DaemonHandle, DaemonOptions};

/// What the next cycle should do beyond an ordinary incremental one.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub(super) full: bool,
    /// The staged removals an approval named (by anchor).
    pub(super) approved_deletes: BTreeSet<Anchor>,
    pub(super) reread: BTreeSet<String>,
}

/// One job: its runtime, status and the store, and what it does between cycles.
pub(super) struct Job {
    pub(super) rt: Arc<PairRuntime>,
    pub(super) handle: DaemonHandle,
    pub(super) store: Arc<dyn StateStore>,
    /// The pair's lease when several replicas share the store: apply stops between entries
    /// once it may have lapsed.
    pub(super) lease: Option<Arc<LeaseGuard>>,
    pub(super) pair: String,
    pub(super) status: JobStatus,
    pub(super) pending: Pending,
    /// When the next cycle runs if not at the interval: a transient failure's backoff, or
    /// Graph's `Retry-After` for deferred work.
    pub(super) retry_in: Option<std::time::Duration>,
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
    pub(super) fn runnable(&self) -> bool {
        !self.status.paused && self.status.code != JobState::Disabled
    }

    pub(super) fn scale(&self) -> f64 {
        self.rt.pair.quarantine.time_scale
    }

    /// Runs one cycle and folds its outcome into the status. False when it failed.
    pub(super) async fn cycle(&mut self, shutdown: &CancellationToken) -> bool {
        let began = Utc::now();
        self.retry_in = None;
        let options = self.next_cycle_options(began, shutdown).await;
        let forced = !options.approved_deletes.is_empty();
        let result = run_cycle(&self.rt, self.store.as_ref(), &options).await;
        let mut finished = None;
        let ok = match result {
            Ok(report) => {
                self.succeeded(&report, forced).await;
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
                self.failed(began, &e);
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

    /// What the next cycle does: the pending approvals and re-reads, the escrows due, and a
    /// full read when one was asked for or the full reconcile is due.
    async fn next_cycle_options(
        &mut self,
        began: chrono::DateTime<Utc>,
        shutdown: &CancellationToken,
    ) -> CycleOptions {
        let escrows = self.store.escrows(&self.pair).await.unwrap_or_else(|e| {
            tracing::warn!(pair = %self.pair, error = %e, "cannot read escrows");
            Vec::new()
        });
        let pending = std::mem::take(&mut self.pending);
        let mut reread = escrow::due(&escrows, began);
        reread.extend(pending.reread);
        CycleOptions {
            full: pending.full || self.status.full_sync_due(began),
            approved_deletes: pending.approved_deletes,
            reread,
            cancel: Some(shutdown.clone()),
            crash: None,
            preview: false,
            lease: self.lease.clone(),
        }
    }

    async fn succeeded(&mut self, report: &CycleReport, forced: bool) {
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
                    + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::days(1)),
            });
        }
        self.after_cycle(report, forced).await;
    }

    /// One failure policy: credential failures quarantine at once, transient ones back off
    /// and quarantine only when they persist, anything else extends a quarantine in effect.
    fn failed(&mut self, began: chrono::DateTime<Utc>, e: &EngineError) {
        tracing::error!(pair = %self.pair, error_code = %e.code(), error = %e, "cycle failed");
        self.status.record_failure(began, e.code(), e.to_string());
        let error = StatusError {
            code: e.code(),
            message: e.to_string(),
            tenant_actionable: true,
        };
        let persistent =
            self.status.count_successive_complete_failures >= TRANSIENT_FAILURES_BEFORE_QUARANTINE;
        if e.is_credential_failure() || (e.is_transient() && persistent) {
            self.quarantine(QuarantineReason::EncounteredQuarantineException, error);
        } else if e.is_transient() && self.status.quarantine.is_none() {
            let wait =
                transient_backoff(self.status.count_successive_complete_failures, self.scale());
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
    }
}

/// One job's loop. Returns false when (with `once`) its cycle failed.
pub(super) async fn run_job(
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
    if options.once && options.approve_staged_deletes {
        job.approve_staged_deletes();
    }
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
                Some(JobMessage::Provision { user, dry_run, reply }) => {
                    // The caller may have gone away; the provisioning log has the outcome.
                    let _ = reply.send(job.provision(&user, dry_run).await);
                    false
                }
                Some(JobMessage::ProvisionGroup { group, dry_run, reply }) => {
                    let _ = reply.send(job.provision_group(&group, dry_run).await);
                    false
                }
            },
        };
    };
    stop_watch.abort();
    result
}
