//! Per-pair leases with fencing, so several replicas can share one store.
//!
//! A lease is a row (pair, holder, epoch, expiry) in the store; the expiry is on the database's
//! clock. Taking a lease that is free or expired bumps the epoch. Every store write of a job
//! carries its epoch ([`Fence`]) and the store refuses it ([`StoreError::Fenced`]) unless that
//! epoch is still the pair's current one, so a replica that was paused or cut off cannot write
//! a stale record after another took over. Graph has no such fence, so a replica also stops
//! its own Graph writes before its lease could have lapsed: [`LeaseGuard::may_write`] turns
//! false once the last successful renewal is older than the write deadline, which is shorter
//! than the lease (checked between plan entries and before every store write).
//!
//! SQLite is single-replica: [`SingleReplica`] grants every lease at once and never loses one.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use super::types::{StoreWrite, Watermark};
use super::{StateStore, StoreError, StoreResult};
use crate::plan::{Anchor, ManagedUser};

/// What a job's writes carry: who holds the pair's lease, at which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: Arc<str>,
    pub epoch: i64,
}

/// A lease this replica holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub pair: String,
    pub epoch: i64,
}

/// A pair's lease as the store has it (status, `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseInfo {
    pub pair: String,
    pub holder: Option<String>,
    pub epoch: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub acquired_at: Option<DateTime<Utc>>,
}

/// A command for a pair's job, queued in the store for whichever replica holds the pair.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedCommand {
    pub id: i64,
    pub pair: String,
    pub command: Value,
}

/// The lease table of a shared store.
pub trait LeaseStore: Send + Sync {
    /// Records that `replica` is alive (with `info`: address, version) and returns the
    /// replicas seen within `ttl`, sorted, itself included.
    fn heartbeat<'a>(
        &'a self,
        replica: &'a str,
        ttl: Duration,
        info: &'a Value,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>>;

    /// Extends the leases `replica` holds at these epochs by `duration` from now (database
    /// clock); returns those it still holds. A lease missing from the answer was lost.
    fn renew<'a>(
        &'a self,
        replica: &'a str,
        held: &'a [Lease],
        duration: Duration,
    ) -> BoxFuture<'a, StoreResult<Vec<Lease>>>;

    /// Takes up to `max` of `candidates` that nobody holds or whose lease expired, each at a
    /// new epoch. Pairs another transaction is using are skipped, not waited for.
    fn acquire<'a>(
        &'a self,
        replica: &'a str,
        candidates: &'a [String],
        max: usize,
        duration: Duration,
    ) -> BoxFuture<'a, StoreResult<Vec<Acquired>>>;

    /// Gives a lease back (shutdown, rebalancing): another replica may take it at once.
    fn release<'a>(&'a self, replica: &'a str, lease: &'a Lease) -> BoxFuture<'a, StoreResult<()>>;

    /// Every pair's lease.
    fn leases(&self) -> BoxFuture<'_, StoreResult<Vec<LeaseInfo>>>;

    /// Queues a command for the holder of `pair`.
    fn queue_command<'a>(
        &'a self,
        pair: &'a str,
        command: &'a Value,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Takes the queued commands of `pairs` (in order; each is handed out once).
    fn take_commands<'a>(
        &'a self,
        pairs: &'a [String],
    ) -> BoxFuture<'a, StoreResult<Vec<QueuedCommand>>>;
}

/// A lease taken by [`LeaseStore::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    pub lease: Lease,
    /// The replica that held it before, when its lease expired rather than being released:
    /// a takeover.
    pub taken_from: Option<String>,
}

/// The lease of a single-replica store (SQLite): granted at once, never lost, no fencing
/// needed because no other process writes the file.
#[derive(Debug, Default)]
pub struct SingleReplica {
    commands: Mutex<Vec<QueuedCommand>>,
    next_id: AtomicU64,
}

impl LeaseStore for SingleReplica {
    fn heartbeat<'a>(
        &'a self,
        replica: &'a str,
        _ttl: Duration,
        _info: &'a Value,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move { Ok(vec![replica.to_owned()]) })
    }

    fn renew<'a>(
        &'a self,
        _replica: &'a str,
        held: &'a [Lease],
        _duration: Duration,
    ) -> BoxFuture<'a, StoreResult<Vec<Lease>>> {
        Box::pin(async move { Ok(held.to_vec()) })
    }

    fn acquire<'a>(
        &'a self,
        _replica: &'a str,
        candidates: &'a [String],
        max: usize,
        _duration: Duration,
    ) -> BoxFuture<'a, StoreResult<Vec<Acquired>>> {
        Box::pin(async move {
            Ok(candidates
                .iter()
                .take(max)
                .map(|pair| Acquired {
                    lease: Lease {
                        pair: pair.clone(),
                        epoch: 1,
                    },
                    taken_from: None,
                })
                .collect())
        })
    }

    fn release<'a>(
        &'a self,
        _replica: &'a str,
        _lease: &'a Lease,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }

    fn leases(&self) -> BoxFuture<'_, StoreResult<Vec<LeaseInfo>>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn queue_command<'a>(
        &'a self,
        pair: &'a str,
        command: &'a Value,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let id = i64::try_from(self.next_id.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
            self.commands
                .lock()
                .map_err(|_| StoreError::Poisoned)?
                .push(QueuedCommand {
                    id,
                    pair: pair.to_owned(),
                    command: command.clone(),
                });
            Ok(())
        })
    }

    fn take_commands<'a>(
        &'a self,
        pairs: &'a [String],
    ) -> BoxFuture<'a, StoreResult<Vec<QueuedCommand>>> {
        Box::pin(async move {
            let mut queue = self.commands.lock().map_err(|_| StoreError::Poisoned)?;
            let (taken, kept): (Vec<_>, Vec<_>) =
                queue.drain(..).partition(|c| pairs.contains(&c.pair));
            *queue = kept;
            Ok(taken)
        })
    }
}

/// Timing of leases: a lease lasts `duration`, is renewed every `renew_every`, and this
/// replica writes (Graph or store) only while its last successful renewal is younger than
/// `write_deadline` (< `duration`), so it stops before the lease can pass to another replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    pub duration: Duration,
    pub renew_every: Duration,
    pub write_deadline: Duration,
}

impl LeaseTiming {
    /// Renew every third of the lease, stop writing after two thirds without a renewal.
    pub fn for_duration(duration: Duration) -> Self {
        Self {
            duration,
            renew_every: duration / 3,
            write_deadline: duration * 2 / 3,
        }
    }

    /// The rules the timing must follow, as a message for a bad setting.
    pub fn check(&self) -> Result<(), String> {
        if self.duration < Duration::from_secs(1) {
            return Err("the lease duration must be at least 1s".into());
        }
        if self.renew_every.is_zero() || self.renew_every >= self.write_deadline {
            return Err(format!(
                "the renew interval ({:?}) must be shorter than the write deadline ({:?})",
                self.renew_every, self.write_deadline
            ));
        }
        if self.write_deadline >= self.duration {
            return Err(format!(
                "the write deadline ({:?}) must be shorter than the lease ({:?})",
                self.write_deadline, self.duration
            ));
        }
        Ok(())
    }
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self::for_duration(Duration::from_secs(30))
    }
}

/// This replica's view of one lease it holds: the fence its writes carry and until when it
/// may write. Shared by the job (which checks it) and the lease keeper (which renews it).
#[derive(Debug)]
pub struct LeaseGuard {
    fence: Fence,
    base: Instant,
    /// Nanoseconds after `base` until which writes are allowed.
    writable_until: AtomicU64,
    lost: AtomicBool,
    refusals: AtomicU64,
    /// A lease that never lapses (single replica).
    permanent: bool,
}

impl LeaseGuard {
    /// A lease whose renewal was sent at `renewed_at`.
    pub fn new(fence: Fence, renewed_at: Instant, timing: &LeaseTiming) -> Arc<Self> {
        let guard = Arc::new(Self {
            fence,
            base: renewed_at,
            writable_until: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            refusals: AtomicU64::new(0),
            permanent: false,
        });
        guard.renewed(renewed_at, timing);
        guard
    }

    /// The always-held lease of a single-replica store.
    pub fn permanent(pair_holder: &str) -> Arc<Self> {
        Arc::new(Self {
            fence: Fence {
                holder: Arc::from(pair_holder),
                epoch: 1,
            },
            base: Instant::now(),
            writable_until: AtomicU64::new(u64::MAX),
            lost: AtomicBool::new(false),
            refusals: AtomicU64::new(0),
            permanent: true,
        })
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// A renewal sent at `sent_at` succeeded: writes may go on until `sent_at` plus the write
    /// deadline (the database set the expiry after the request left, so it is later still).
    pub fn renewed(&self, sent_at: Instant, timing: &LeaseTiming) {
        let until = sent_at
            .saturating_duration_since(self.base)
            .saturating_add(timing.write_deadline);
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.writable_until.fetch_max(nanos, Ordering::SeqCst);
    }

    /// The store said another replica holds the pair now.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// True while this replica may still write for the pair (Graph or store).
    pub fn may_write(&self) -> bool {
        if self.permanent {
            return true;
        }
        if self.is_lost() {
            return false;
        }
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.writable_until.load(Ordering::SeqCst)
    }

    /// Writes refused so far (locally or by the store).
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    fn refused(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }
}

/// A pair's view of the store for the job that holds its lease: reads pass through, writes
/// carry the lease's fence and are refused once the lease may have lapsed.
pub struct FencedStore {
    inner: Arc<dyn StateStore>,
    guard: Arc<LeaseGuard>,
}

impl FencedStore {
    pub fn new(inner: Arc<dyn StateStore>, guard: Arc<LeaseGuard>) -> Self {
        Self { inner, guard }
    }

    pub fn guard(&self) -> &Arc<LeaseGuard> {
        &self.guard
    }

    fn check(&self, pair: &str) -> StoreResult<()> {
        if self.guard.may_write() {
            return Ok(());
        }
        self.guard.refused();
        tracing::warn!(
            pair,
            epoch = self.guard.fence.epoch,
            lost = self.guard.is_lost(),
            "store write refused: the lease may have lapsed"
        );
        Err(StoreError::Fenced {
            pair: pair.to_owned(),
            epoch: self.guard.fence.epoch,
        })
    }

    fn counted<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if matches!(result, Err(StoreError::Fenced { .. })) {
            self.guard.refused();
            self.guard.lose();
        }
        result
    }
}

impl StateStore for FencedStore {
    fn commit<'a>(
        &'a self,
        pair: &'a str,
        writes: Vec<StoreWrite>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.check(pair)?;
            let result = self
                .inner
                .commit_fenced(pair, &self.guard.fence, writes)
                .await;
            self.counted(result)
        })
    }

    fn watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Watermark>>> {
        self.inner.watermark(pair)
    }

    fn save_watermark<'a>(
        &'a self,
        pair: &'a str,
        watermark: &'a Watermark,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.check(pair)?;
            let result = self
                .inner
                .save_watermark_fenced(pair, &self.guard.fence, watermark)
                .await;
            self.counted(result)
        })
    }

    fn clear_watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.check(pair)?;
            let result = self
                .inner
                .clear_watermark_fenced(pair, &self.guard.fence)
                .await;
            self.counted(result)
        })
    }

    fn managed_users<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        self.inner.managed_users(pair)
    }

    fn managed_user<'a>(
        &'a self,
        pair: &'a str,
        anchor: &'a Anchor,
    ) -> BoxFuture<'a, StoreResult<Option<ManagedUser>>> {
        self.inner.managed_user(pair, anchor)
    }

    fn managed_users_among<'a>(
        &'a self,
        pair: &'a str,
        anchors: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        self.inner.managed_users_among(pair, anchors)
    }

    fn reports_of<'a>(
        &'a self,
        pair: &'a str,
        managers: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        self.inner.reports_of(pair, managers)
    }

    fn managed_anchors<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        self.inner.managed_anchors(pair)
    }

    fn live_managed_count<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<usize>> {
        self.inner.live_managed_count(pair)
    }

    fn create_intents<'a>(
        &'a self,
        pair: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<super::CreateIntent>>> {
        self.inner.create_intents(pair)
    }

    fn escrows<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<super::Escrow>>> {
        self.inner.escrows(pair)
    }

    fn status<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>> {
        self.inner.status(pair)
    }

    fn group_state<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<super::GroupState>> {
        self.inner.group_state(pair)
    }

    fn provisioning_log<'a>(
        &'a self,
        pair: &'a str,
        query: &'a super::LogQuery,
    ) -> BoxFuture<'a, StoreResult<Vec<super::ProvisioningLogEntry>>> {
        self.inner.provisioning_log(pair, query)
    }

    fn prune_log<'a>(
        &'a self,
        pair: &'a str,
        before: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            self.check(pair)?;
            self.inner.prune_log(pair, before).await
        })
    }

    fn pairs(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.inner.pairs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> LeaseTiming {
        LeaseTiming::for_duration(Duration::from_secs(3))
    }

    #[test]
    fn timing_rules_hold_for_the_default_and_refuse_bad_settings() {
        assert_eq!(LeaseTiming::default().check(), Ok(()));
        let bad = LeaseTiming {
            duration: Duration::from_secs(10),
            renew_every: Duration::from_secs(5),
            write_deadline: Duration::from_secs(10),
        };
        assert!(bad.check().unwrap_err().contains("shorter than the lease"));
        let bad = LeaseTiming {
            renew_every: Duration::from_secs(8),
            ..LeaseTiming::for_duration(Duration::from_secs(10))
        };
        assert!(bad.check().unwrap_err().contains("renew interval"));
    }

    #[test]
    fn a_guard_stops_writes_at_the_deadline_and_when_lost() {
        let fence = Fence {
            holder: Arc::from("r1"),
            epoch: 4,
        };
        let past = Instant::now() - Duration::from_secs(5);
        let guard = LeaseGuard::new(fence.clone(), past, &timing());
        assert!(
            !guard.may_write(),
            "the last renewal is older than the deadline"
        );
        guard.renewed(Instant::now(), &timing());
        assert!(guard.may_write());
        // An older renewal's answer never moves the deadline back.
        guard.renewed(past, &timing());
        assert!(guard.may_write());
        guard.lose();
        assert!(!guard.may_write());
        assert!(LeaseGuard::permanent("r1").may_write());
    }
}
