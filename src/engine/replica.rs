//! Several replicas on one shared store: the lease keeper of this replica.
//!
//! Every renew interval it records itself alive, renews the leases it holds (a lease missing
//! from the answer was taken over: its job stops), stops the jobs whose lease could not be
//! renewed in time (their writes are already refused by the guard), and balances: with P pairs
//! and N live replicas it holds at most ⌈P/N⌉, taking free or expired leases up to that and
//! letting go of the excess — by no longer renewing it, so the job's last entry is long
//! recorded before another replica can take the pair. Commands queued in the store for the
//! pairs it holds (admin mutations sent to another replica) reach their job here. On shutdown
//! it releases its leases once its jobs stopped, so others take over at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::store::{Fence, Lease, LeaseGuard, LeaseInfo, LeaseStore, LeaseTiming};

use super::daemon::{DaemonHandle, JobCommand};
use super::reset::ResetScope;
use super::runtime::PairRuntime;

/// This replica's identity, timing and counters, for status and metrics.
#[derive(Debug)]
pub struct ReplicaState {
    pub id: Arc<str>,
    pub timing: LeaseTiming,
    pub leases: Arc<dyn LeaseStore>,
    pub takeovers: AtomicU64,
    pub acquired: AtomicU64,
    pub lost: AtomicU64,
    /// Writes refused by fencing (locally or by the store), summed over leases held so far.
    refusals_of_past_leases: AtomicU64,
    live_replicas: AtomicU64,
}

impl std::fmt::Debug for dyn LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseStore")
    }
}

impl ReplicaState {
    pub fn fencing_refusals(&self, handle: &DaemonHandle) -> u64 {
        self.refusals_of_past_leases.load(Ordering::Relaxed)
            + handle.guards().values().map(|g| g.refusals()).sum::<u64>()
    }

    pub fn live_replicas(&self) -> u64 {
        self.live_replicas.load(Ordering::Relaxed)
    }

    /// Every pair's lease (holder, epoch, expiry), from the store.
    pub async fn lease_table(&self) -> Result<Vec<LeaseInfo>, crate::store::StoreError> {
        self.leases.leases().await
    }
}

/// Queues `command` for whichever replica holds `pair` (admin API on a replica that does not).
pub async fn queue_command(
    leases: &dyn LeaseStore,
    pair: &str,
    command: &JobCommand,
) -> Result<(), crate::store::StoreError> {
    leases.queue_command(pair, &encode(command)).await
}

fn encode(command: &JobCommand) -> Value {
    match command {
        JobCommand::RunNow => json!({"command": "runNow"}),
        JobCommand::Pause => json!({"command": "pause"}),
        JobCommand::Start => json!({"command": "start"}),
        JobCommand::Restart {
            full,
            force_deletes,
        } => json!({"command": "restart", "full": full, "forceDeletes": force_deletes}),
        JobCommand::RestartWith(scope) => {
            json!({"command": "restartWith", "resetScope": scope.to_string()})
        }
        JobCommand::ApproveDeletes => json!({"command": "approveDeletes"}),
        JobCommand::ProvisionOnDemand { user } => {
            json!({"command": "provisionOnDemand", "user": user})
        }
    }
}

fn decode(value: &Value) -> Option<JobCommand> {
    Some(match value.get("command")?.as_str()? {
        "runNow" => JobCommand::RunNow,
        "pause" => JobCommand::Pause,
        "start" => JobCommand::Start,
        "restart" => JobCommand::Restart {
            full: value.get("full")?.as_bool()?,
            force_deletes: value.get("forceDeletes")?.as_bool()?,
        },
        "restartWith" => {
            JobCommand::RestartWith(ResetScope::parse(value.get("resetScope")?.as_str()?).ok()?)
        }
        "approveDeletes" => JobCommand::ApproveDeletes,
        "provisionOnDemand" => JobCommand::ProvisionOnDemand {
            user: value.get("user")?.as_str()?.to_owned(),
        },
        _ => return None,
    })
}

/// Runs `daemon` as one replica of several: jobs start and stop with the leases the keeper
/// takes and loses. Returns when `shutdown` stopped the jobs and the leases were released.
pub async fn run_replica(
    daemon: super::daemon::Daemon,
    state: Arc<ReplicaState>,
    runtimes: Vec<PairRuntime>,
    info: Value,
    shutdown: CancellationToken,
) -> super::daemon::DaemonSummary {
    let handle = daemon.handle();
    handle.set_replica(state.clone());
    let jobs_done = CancellationToken::new();
    let keeper = tokio::spawn(keep_leases(
        handle,
        state,
        runtimes,
        info,
        shutdown.clone(),
        jobs_done.clone(),
    ));
    let summary = daemon.run(shutdown).await;
    jobs_done.cancel();
    if let Err(e) = keeper.await {
        tracing::error!(error = %e, "lease keeper ended abnormally");
    }
    summary
}

/// `--once` on a shared store: takes the lease of every pair (refused while a running replica
/// holds one), runs one cycle of each under renewal, and releases them.
pub async fn run_once_leased(
    daemon: super::daemon::Daemon,
    state: Arc<ReplicaState>,
    shutdown: CancellationToken,
) -> Result<super::daemon::DaemonSummary, String> {
    let handle = daemon.handle();
    let pairs = handle.pairs();
    let timing = state.timing;
    let sent = Instant::now();
    let taken = state
        .leases
        .acquire(&state.id, &pairs, pairs.len(), timing.duration)
        .await
        .map_err(|e| format!("cannot take the pairs' leases: {e}"))?;
    let release = |taken: Vec<crate::store::Acquired>| {
        let state = state.clone();
        async move {
            for a in taken {
                let _ = state.leases.release(&state.id, &a.lease).await;
            }
        }
    };
    if taken.len() < pairs.len() {
        let busy: Vec<&String> = pairs
            .iter()
            .filter(|p| !taken.iter().any(|a| &a.lease.pair == *p))
            .collect();
        release(taken).await;
        return Err(format!(
            "pairs held by a running replica: {busy:?}; stop it or use its admin API"
        ));
    }
    for a in &taken {
        let guard = LeaseGuard::new(
            Fence {
                holder: state.id.clone(),
                epoch: a.lease.epoch,
            },
            sent,
            &timing,
        );
        handle.set_guard(&a.lease.pair, guard);
    }
    let renewer = {
        let handle = handle.clone();
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(timing.renew_every).await;
                let sent = Instant::now();
                let guards = handle.guards();
                let held: Vec<Lease> = guards
                    .iter()
                    .map(|(p, g)| Lease {
                        pair: p.clone(),
                        epoch: g.fence().epoch,
                    })
                    .collect();
                if let Ok(kept) = state.leases.renew(&state.id, &held, timing.duration).await {
                    for lease in kept {
                        if let Some(g) = guards.get(&lease.pair) {
                            g.renewed(sent, &timing);
                        }
                    }
                }
            }
        })
    };
    let summary = daemon.run(shutdown).await;
    renewer.abort();
    release(taken).await;
    Ok(summary)
}

/// Runs the keeper until `shutdown`; then waits for `jobs_done` and releases every lease.
pub async fn keep_leases(
    handle: DaemonHandle,
    state: Arc<ReplicaState>,
    runtimes: Vec<PairRuntime>,
    info: Value,
    shutdown: CancellationToken,
    jobs_done: CancellationToken,
) {
    let runtimes: BTreeMap<String, Arc<PairRuntime>> = runtimes
        .into_iter()
        .map(|rt| (rt.name().to_owned(), Arc::new(rt)))
        .collect();
    let pairs: Vec<String> = runtimes.keys().cloned().collect();
    let timing = state.timing;
    let id = state.id.clone();
    tracing::info!(replica = %id, pairs = pairs.len(), lease = ?timing.duration, renew = ?timing.renew_every, "replica joins");
    let mut tick = tokio::time::interval(timing.renew_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        round(&handle, &state, &runtimes, &pairs, &info).await;
    }
    // Stop renewing; once every job stopped, give the leases back so others start at once.
    jobs_done.cancelled().await;
    for (pair, guard) in handle.guards() {
        let lease = Lease {
            pair: pair.clone(),
            epoch: guard.fence().epoch,
        };
        handle.stop_leased_job(&pair);
        if let Err(e) = state.leases.release(&id, &lease).await {
            tracing::warn!(pair, error = %e, "cannot release lease; it expires on its own");
        } else {
            tracing::info!(pair, epoch = lease.epoch, "lease released");
        }
    }
}

async fn round(
    handle: &DaemonHandle,
    state: &ReplicaState,
    runtimes: &BTreeMap<String, Arc<PairRuntime>>,
    pairs: &[String],
    info: &Value,
) {
    let timing = state.timing;
    let id = &state.id;
    let sent = Instant::now();
    let live = match state.leases.heartbeat(id, timing.duration, info).await {
        Ok(live) => {
            handle.set_store_problem(None);
            live
        }
        Err(e) => {
            handle.set_store_problem(Some(e.to_string()));
            stop_lapsed(handle, state);
            return;
        }
    };
    let live_count = live.len().max(1);
    state.live_replicas.store(
        u64::try_from(live_count).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );

    // Renew what is held; a lease missing from the answer was taken over.
    let guards = handle.guards();
    let held: Vec<Lease> = guards
        .iter()
        .map(|(pair, g)| Lease {
            pair: pair.clone(),
            epoch: g.fence().epoch,
        })
        .collect();
    let share = pairs.len().div_ceil(live_count);
    // Beyond the share: not renewed, so it lapses and another replica takes it.
    let keep: Vec<Lease> = held.iter().take(share).cloned().collect();
    match state.leases.renew(id, &keep, timing.duration).await {
        Ok(kept) => {
            for lease in &held {
                let renewed = kept.iter().any(|k| k == lease);
                if renewed {
                    if let Some(g) = guards.get(&lease.pair) {
                        g.renewed(sent, &timing);
                    }
                    continue;
                }
                let excess = !keep.contains(lease);
                if excess {
                    tracing::info!(pair = %lease.pair, epoch = lease.epoch, share, "giving the pair up to balance the replicas");
                } else {
                    tracing::warn!(pair = %lease.pair, epoch = lease.epoch, "lease lost to another replica: job stops");
                    state.lost.fetch_add(1, Ordering::Relaxed);
                }
                drop_job(handle, state, &lease.pair);
            }
        }
        Err(e) => {
            handle.set_store_problem(Some(e.to_string()));
            stop_lapsed(handle, state);
            return;
        }
    }

    // Take free or expired pairs up to the share.
    let running = handle.guards();
    if running.len() < share {
        let free: Vec<String> = pairs
            .iter()
            .filter(|p| !running.contains_key(*p))
            .cloned()
            .collect();
        match state
            .leases
            .acquire(id, &free, share - running.len(), timing.duration)
            .await
        {
            Ok(taken) => {
                for acquired in taken {
                    let Some(rt) = runtimes.get(&acquired.lease.pair) else {
                        continue;
                    };
                    state.acquired.fetch_add(1, Ordering::Relaxed);
                    if let Some(from) = &acquired.taken_from {
                        state.takeovers.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(pair = %acquired.lease.pair, epoch = acquired.lease.epoch, from = %from, "took over an expired lease");
                    } else {
                        tracing::info!(pair = %acquired.lease.pair, epoch = acquired.lease.epoch, "lease acquired");
                    }
                    let guard = LeaseGuard::new(
                        Fence {
                            holder: id.clone(),
                            epoch: acquired.lease.epoch,
                        },
                        sent,
                        &timing,
                    );
                    handle.start_leased_job(rt.clone(), guard);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot take leases this round"),
        }
    }

    // Commands other replicas queued for the pairs held here.
    let held_now: Vec<String> = handle.guards().keys().cloned().collect();
    match state.leases.take_commands(&held_now).await {
        Ok(commands) => {
            for queued in commands {
                match decode(&queued.command) {
                    Some(command) => {
                        tracing::info!(pair = %queued.pair, command = ?command, "command from another replica");
                        if let Err(e) = handle.send(&queued.pair, command).await {
                            tracing::warn!(pair = %queued.pair, error = %e, "queued command not delivered");
                        }
                    }
                    None => {
                        tracing::warn!(pair = %queued.pair, "unreadable queued command dropped")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read queued commands"),
    }
}

/// Stops the jobs whose leases may have lapsed (renewals failing): their writes are already
/// refused; the pair is taken again, at a new epoch, once the store answers.
fn stop_lapsed(handle: &DaemonHandle, state: &ReplicaState) {
    for (pair, guard) in handle.guards() {
        if !guard.may_write() {
            tracing::warn!(
                pair,
                epoch = guard.fence().epoch,
                "lease could not be renewed in time: job stops"
            );
            drop_job(handle, state, &pair);
        }
    }
}

fn drop_job(handle: &DaemonHandle, state: &ReplicaState, pair: &str) {
    if let Some(guard) = handle.guards().get(pair) {
        state
            .refusals_of_past_leases
            .fetch_add(guard.refusals(), Ordering::Relaxed);
    }
    handle.stop_leased_job(pair);
}

impl ReplicaState {
    pub fn new(id: Arc<str>, timing: LeaseTiming, leases: Arc<dyn LeaseStore>) -> Arc<Self> {
        Arc::new(Self {
            id,
            timing,
            leases,
            takeovers: AtomicU64::new(0),
            acquired: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            refusals_of_past_leases: AtomicU64::new(0),
            live_replicas: AtomicU64::new(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_survive_the_queue() {
        for command in [
            JobCommand::RunNow,
            JobCommand::Pause,
            JobCommand::Start,
            JobCommand::Restart {
                full: true,
                force_deletes: false,
            },
            JobCommand::ApproveDeletes,
            JobCommand::ProvisionOnDemand {
                user: "adele@contoso.com".into(),
            },
        ] {
            assert_eq!(decode(&encode(&command)), Some(command));
        }
        assert_eq!(decode(&json!({"command": "selfDestruct"})), None);
    }
}
