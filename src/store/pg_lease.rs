//! Leases and fencing on PostgreSQL: rows in `pair_leases`, locked per row.
//!
//! Why row locks, not advisory locks: an advisory lock belongs to a connection, so a pooled
//! connection that drops (server restart, `pg_terminate_backend`, a network blip) silently gives
//! it up while the replica still believes it holds it, and it carries no epoch a write could be
//! checked against. A lease row has an epoch (the fencing token every write is checked against
//! inside its own transaction), an expiry on the database's clock (no clock agreement between
//! replicas needed), a history, and it is visible to status like any other row. Taking leases
//! uses `FOR UPDATE SKIP LOCKED`, so replicas never queue behind each other; a fenced write holds
//! `FOR SHARE` on the lease row for its transaction, so a takeover waits for an in-flight write to
//! finish and every later write of the old holder sees the new epoch.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio_postgres::types::Json;

use super::lease::{Acquired, Fence, Lease, LeaseInfo, LeaseStore, QueuedCommand};
use super::postgres::PostgresStore;
use super::types::{StoreWrite, Watermark};
use super::{StoreError, StoreResult};

/// One epoch of a pair's lease: who held it, from when, until when at the latest (the last
/// expiry it was renewed to, or when it was released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEpoch {
    pub pair: String,
    pub epoch: i64,
    pub holder: String,
    pub acquired_at: chrono::DateTime<chrono::Utc>,
    pub valid_until: chrono::DateTime<chrono::Utc>,
    /// `released`, `expired` (taken over), or None while current.
    pub ended: Option<String>,
    pub previous_holder: Option<String>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Inside `tx`: holds the pair's lease row (shared) and checks that `fence` is current.
pub(super) async fn check_fence(
    tx: &deadpool_postgres::Transaction<'_>,
    pair: &str,
    fence: &Fence,
) -> StoreResult<Result<(), (Option<String>, Option<i64>)>> {
    let stmt = tx
        .prepare_cached("SELECT holder, epoch FROM pair_leases WHERE pair = $1 FOR SHARE")
        .await?;
    let row = tx.query_opt(&stmt, &[&pair]).await?;
    let (holder, epoch): (Option<String>, Option<i64>) = match row {
        Some(r) => (r.try_get(0)?, Some(r.try_get(1)?)),
        None => (None, None),
    };
    if holder.as_deref() == Some(&*fence.holder) && epoch == Some(fence.epoch) {
        Ok(Ok(()))
    } else {
        Ok(Err((holder, epoch)))
    }
}

impl PostgresStore {
    /// Records a refused write (after its transaction rolled back) and returns the error.
    async fn refuse(
        &self,
        pair: &str,
        fence: &Fence,
        current: (Option<String>, Option<i64>),
    ) -> StoreError {
        tracing::warn!(
            pair,
            holder = %fence.holder,
            epoch = fence.epoch,
            current_holder = current.0.as_deref().unwrap_or("none"),
            current_epoch = current.1.unwrap_or(0),
            "fencing: store write refused, the lease passed to another replica"
        );
        if let Ok(client) = self.client().await {
            let _ = client
                .execute(
                    "INSERT INTO fencing_refusals (pair, holder, epoch, current_holder, current_epoch)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&pair, &&*fence.holder, &fence.epoch, &current.0, &current.1],
                )
                .await;
        }
        StoreError::Fenced {
            pair: pair.to_owned(),
            epoch: fence.epoch,
        }
    }

    pub(super) async fn fenced_commit(
        &self,
        pair: &str,
        fence: &Fence,
        writes: Vec<StoreWrite>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if let Err(current) = check_fence(&tx, pair, fence).await? {
            drop(tx);
            return Err(self.refuse(pair, fence, current).await);
        }
        for write in writes {
            super::postgres::apply_write(&tx, pair, write).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn fenced_watermark(
        &self,
        pair: &str,
        fence: &Fence,
        watermark: Option<&Watermark>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if let Err(current) = check_fence(&tx, pair, fence).await? {
            drop(tx);
            return Err(self.refuse(pair, fence, current).await);
        }
        match watermark {
            Some(w) => {
                tx.execute(
                    "INSERT INTO watermarks (pair, delta_link, saved_at) VALUES ($1, $2, $3)
                     ON CONFLICT (pair) DO UPDATE SET
                         delta_link = excluded.delta_link, saved_at = excluded.saved_at",
                    &[&pair, &w.delta_link, &super::codec::ts(w.saved_at)],
                )
                .await?;
            }
            None => {
                tx.execute("DELETE FROM watermarks WHERE pair = $1", &[&pair])
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Lease history, oldest epoch first per pair: for tests and audits that check no two
    /// replicas held a pair at once.
    pub async fn lease_history(&self) -> StoreResult<Vec<LeaseEpoch>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT pair, epoch, holder,
                        to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                        to_char(valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                        ended, previous_holder
                 FROM lease_history ORDER BY pair, epoch",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseEpoch {
                    pair: r.try_get(0)?,
                    epoch: r.try_get(1)?,
                    holder: r.try_get(2)?,
                    acquired_at: super::codec::parse_ts(r.try_get(3)?)?,
                    valid_until: super::codec::parse_ts(r.try_get(4)?)?,
                    ended: r.try_get(5)?,
                    previous_holder: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Fencing refusals recorded: (pair, refused holder, refused epoch).
    pub async fn fencing_refusals(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT pair, holder, epoch FROM fencing_refusals ORDER BY seq",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}

impl LeaseStore for PostgresStore {
    fn heartbeat<'a>(
        &'a self,
        replica: &'a str,
        ttl: Duration,
        info: &'a Value,
    ) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO replicas (id, info) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET last_seen = now(), info = excluded.info",
                    &[&replica, &Json(info)],
                )
                .await?;
            let rows = client
                .query(
                    "SELECT id FROM replicas
                     WHERE last_seen > now() - make_interval(secs => $1) ORDER BY id",
                    &[&secs(ttl)],
                )
                .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    fn renew<'a>(
        &'a self,
        replica: &'a str,
        held: &'a [Lease],
        duration: Duration,
    ) -> BoxFuture<'a, StoreResult<Vec<Lease>>> {
        Box::pin(async move {
            if held.is_empty() {
                return Ok(Vec::new());
            }
            let pairs: Vec<&str> = held.iter().map(|l| l.pair.as_str()).collect();
            let epochs: Vec<i64> = held.iter().map(|l| l.epoch).collect();
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    "UPDATE pair_leases l
                     SET expires_at = now() + make_interval(secs => $4), renewed_at = now()
                     FROM unnest($2::text[], $3::bigint[]) AS h(pair, epoch)
                     WHERE l.pair = h.pair AND l.epoch = h.epoch AND l.holder = $1
                     RETURNING l.pair, l.epoch, l.expires_at",
                    &[&replica, &pairs, &epochs, &secs(duration)],
                )
                .await?;
            tx.execute(
                "UPDATE lease_history hi SET valid_until = l.expires_at
                 FROM pair_leases l
                 WHERE hi.pair = l.pair AND hi.epoch = l.epoch AND l.holder = $1
                   AND l.pair = ANY($2::text[])",
                &[&replica, &pairs],
            )
            .await?;
            tx.commit().await?;
            rows.iter()
                .map(|r| {
                    Ok(Lease {
                        pair: r.try_get(0)?,
                        epoch: r.try_get(1)?,
                    })
                })
                .collect()
        })
    }

    fn acquire<'a>(
        &'a self,
        replica: &'a str,
        candidates: &'a [String],
        max: usize,
        duration: Duration,
    ) -> BoxFuture<'a, StoreResult<Vec<Acquired>>> {
        Box::pin(async move {
            if candidates.is_empty() || max == 0 {
                return Ok(Vec::new());
            }
            let mut client = self.client().await?;
            client
                .execute(
                    "INSERT INTO pair_leases (pair) SELECT unnest($1::text[])
                     ON CONFLICT (pair) DO NOTHING",
                    &[&candidates],
                )
                .await?;
            let tx = client.transaction().await?;
            let limit = i64::try_from(max).unwrap_or(i64::MAX);
            let free = tx
                .query(
                    "SELECT pair, holder, epoch, expires_at IS NOT NULL AND holder IS NOT NULL
                     FROM pair_leases
                     WHERE pair = ANY($1::text[])
                       AND (holder IS NULL OR expires_at IS NULL OR expires_at < now())
                     ORDER BY random() LIMIT $2
                     FOR UPDATE SKIP LOCKED",
                    &[&candidates, &limit],
                )
                .await?;
            let mut taken = Vec::new();
            for row in &free {
                let pair: String = row.try_get(0)?;
                let previous: Option<String> = row.try_get(1)?;
                let epoch: i64 = row.try_get(2)?;
                let expired: bool = row.try_get(3)?;
                let new_epoch = epoch + 1;
                tx.execute(
                    "UPDATE pair_leases SET holder = $2, epoch = $3, acquired_at = now(),
                         renewed_at = now(), expires_at = now() + make_interval(secs => $4)
                     WHERE pair = $1",
                    &[&pair, &replica, &new_epoch, &secs(duration)],
                )
                .await?;
                tx.execute(
                    "UPDATE lease_history SET ended = 'expired'
                     WHERE pair = $1 AND epoch = $2 AND ended IS NULL",
                    &[&pair, &epoch],
                )
                .await?;
                tx.execute(
                    "INSERT INTO lease_history
                         (pair, epoch, holder, acquired_at, valid_until, previous_holder)
                     VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4), $5)",
                    &[&pair, &new_epoch, &replica, &secs(duration), &previous],
                )
                .await?;
                taken.push(Acquired {
                    lease: Lease {
                        pair,
                        epoch: new_epoch,
                    },
                    taken_from: previous.filter(|_| expired),
                });
            }
            tx.commit().await?;
            Ok(taken)
        })
    }

    fn release<'a>(&'a self, replica: &'a str, lease: &'a Lease) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let released = tx
                .execute(
                    "UPDATE pair_leases SET holder = NULL, expires_at = now()
                     WHERE pair = $1 AND epoch = $2 AND holder = $3",
                    &[&lease.pair, &lease.epoch, &replica],
                )
                .await?;
            if released > 0 {
                tx.execute(
                    "UPDATE lease_history SET valid_until = now(), ended = 'released'
                     WHERE pair = $1 AND epoch = $2",
                    &[&lease.pair, &lease.epoch],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn leases(&self) -> BoxFuture<'_, StoreResult<Vec<LeaseInfo>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT pair, CASE WHEN expires_at > now() THEN holder END, epoch,
                            to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                            to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                     FROM pair_leases ORDER BY pair",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let at = |i: usize| -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                        let text: Option<String> = r.try_get(i)?;
                        text.as_deref().map(super::codec::parse_ts).transpose()
                    };
                    Ok(LeaseInfo {
                        pair: r.try_get(0)?,
                        holder: r.try_get(1)?,
                        epoch: r.try_get(2)?,
                        expires_at: at(3)?,
                        acquired_at: at(4)?,
                    })
                })
                .collect()
        })
    }

    fn queue_command<'a>(
        &'a self,
        pair: &'a str,
        command: &'a Value,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO job_commands (pair, command) VALUES ($1, $2)",
                    &[&pair, &Json(command)],
                )
                .await?;
            Ok(())
        })
    }

    fn take_commands<'a>(
        &'a self,
        pairs: &'a [String],
    ) -> BoxFuture<'a, StoreResult<Vec<QueuedCommand>>> {
        Box::pin(async move {
            if pairs.is_empty() {
                return Ok(Vec::new());
            }
            let client = self.client().await?;
            let rows = client
                .query(
                    "DELETE FROM job_commands WHERE id IN (
                         SELECT id FROM job_commands WHERE pair = ANY($1::text[])
                         ORDER BY id FOR UPDATE SKIP LOCKED)
                     RETURNING id, pair, command",
                    &[&pairs],
                )
                .await?;
            let mut out: Vec<QueuedCommand> = rows
                .iter()
                .map(|r| {
                    let Json(command): Json<Value> = r.try_get(2)?;
                    Ok(QueuedCommand {
                        id: r.try_get(0)?,
                        pair: r.try_get(1)?,
                        command,
                    })
                })
                .collect::<StoreResult<_>>()?;
            out.sort_by_key(|c| c.id);
            Ok(out)
        })
    }
}
