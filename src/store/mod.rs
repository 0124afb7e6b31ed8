//! State store: a trait and its SQLite implementation (embedded default).
//!
//! Everything is keyed by pair name. Reads are one call each; writes of one step of a cycle
//! (a link, its exported values, the resolved intent, the log entry, the escrow) go through
//! [`StateStore::commit`] and land atomically. The watermark has its own call,
//! [`StateStore::save_watermark`], which the engine makes last (design.md invariant 6).
//!
//! The trait is async with boxed futures rather than sync: a PostgreSQL implementation
//! (tokio-postgres) is natively async and should not need a blocking thread per call, while the
//! SQLite implementation moves its blocking work onto `spawn_blocking` itself. Boxed futures keep
//! the trait dyn-compatible (`Arc<dyn StateStore>`), so the engine picks the backend at startup.

mod codec;
mod lease;
mod log;
mod migrate;
mod pg_lease;
mod pg_schema;
mod postgres;
mod schema;
mod spec;
mod sqlite;
mod types;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod tests;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::plan::{Anchor, ManagedUser};

pub use lease::{
    Acquired, Fence, FencedStore, Lease, LeaseGuard, LeaseInfo, LeaseStore, LeaseTiming,
    QueuedCommand, SingleReplica,
};
pub use log::{
    ErrorCategory, Initiator, InitiatorType, LogQuery, ModifiedProperty, ProvisionedIdentity,
    ProvisioningAction, ProvisioningErrorInfo, ProvisioningLogEntry, ProvisioningResult,
    ProvisioningStatusInfo, ProvisioningStep, ProvisioningStepType, ProvisioningSystem,
};
pub use migrate::{MigratedPair, copy_store};
pub use pg_lease::LeaseEpoch;
pub use postgres::{PostgresOptions, PostgresStore};
pub use spec::StoreSpec;
pub use sqlite::SqliteStore;
pub use types::{CreateIntent, Escrow, EscrowError, GroupState, StoreWrite, Watermark};

/// Everything that can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached (no connection within the timeout).
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
    /// The store's settings are wrong (connection string, schema name).
    #[error("{0}")]
    Config(String),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("store schema version {found} is newer than this build understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A write of a job whose lease is no longer current (another replica took the pair over,
    /// or this one could not renew in time). Nothing was written.
    #[error("write for pair {pair} refused: lease epoch {epoch} is no longer current")]
    Fenced { pair: String, epoch: i64 },
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error("store task failed: {0}")]
    Task(String),
    #[error("store connection lock poisoned by an earlier panic")]
    Poisoned,
}

impl StoreError {
    /// True when the database could not be reached or dropped the connection: the job should
    /// pause and retry, nothing is wrong with the data. A refused statement is not this.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Postgres(e) => match e.as_db_error() {
                // Class 08: connection exception; 57P01..57P03: the server is shutting down,
                // crashed, or not yet accepting connections (also `pg_terminate_backend`).
                Some(db) => {
                    let code = db.code().code();
                    code.starts_with("08") || code.starts_with("57P")
                }
                // No server answer: the connection failed, broke, closed or timed out (type
                // conversion errors also come without one, and are not an outage).
                None => {
                    e.is_closed()
                        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                        || e.to_string().starts_with("timeout")
                }
            },
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Durable state of every pair. Implementations must make each `commit` atomic.
pub trait StateStore: Send + Sync {
    /// Applies `writes` for `pair` in one transaction: all or nothing.
    fn commit<'a>(
        &'a self,
        pair: &'a str,
        writes: Vec<StoreWrite>,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// [`StateStore::commit`] for the job holding `fence`: refused with
    /// [`StoreError::Fenced`], writing nothing, unless `fence` is the pair's current lease. The
    /// check and the writes are one transaction. A single-replica store has no other writer.
    fn commit_fenced<'a>(
        &'a self,
        pair: &'a str,
        fence: &'a Fence,
        writes: Vec<StoreWrite>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        let _ = fence;
        self.commit(pair, writes)
    }

    /// [`StateStore::save_watermark`] under the same fence as [`StateStore::commit_fenced`].
    fn save_watermark_fenced<'a>(
        &'a self,
        pair: &'a str,
        fence: &'a Fence,
        watermark: &'a Watermark,
    ) -> BoxFuture<'a, StoreResult<()>> {
        let _ = fence;
        self.save_watermark(pair, watermark)
    }

    /// [`StateStore::clear_watermark`] under the same fence as [`StateStore::commit_fenced`].
    fn clear_watermark_fenced<'a>(
        &'a self,
        pair: &'a str,
        fence: &'a Fence,
    ) -> BoxFuture<'a, StoreResult<()>> {
        let _ = fence;
        self.clear_watermark(pair)
    }

    /// The saved source delta link, if any.
    fn watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Watermark>>>;

    /// Saves the watermark. The engine calls this last in a cycle, after every record of the
    /// cycle is committed, so a crash before it replays the cycle instead of losing it.
    fn save_watermark<'a>(
        &'a self,
        pair: &'a str,
        watermark: &'a Watermark,
    ) -> BoxFuture<'a, StoreResult<()>>;

    /// Forgets the watermark (restart with `Watermark`): the next cycle is a full one.
    fn clear_watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<()>>;

    /// Every managed user with its last exported values, sorted by anchor.
    fn managed_users<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>>;

    fn managed_user<'a>(
        &'a self,
        pair: &'a str,
        anchor: &'a Anchor,
    ) -> BoxFuture<'a, StoreResult<Option<ManagedUser>>>;

    /// The managed users among `anchors` with their last exported values, sorted by anchor; an
    /// anchor ctsync does not manage is left out. What an incremental cycle reads: the users
    /// that changed and their managers, never the whole pair.
    fn managed_users_among<'a>(
        &'a self,
        pair: &'a str,
        anchors: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>>;

    /// The anchors of the managed users whose last exported manager is one of `managers`,
    /// sorted (the delta does not name the reports of a manager who changed or left).
    fn reports_of<'a>(
        &'a self,
        pair: &'a str,
        managers: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<Anchor>>>;

    /// Every managed anchor, sorted, without the exported values (assignment reconciliation).
    fn managed_anchors<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Anchor>>>;

    /// How many managed users are live (not soft-deleted by ctsync): the deletion guard's base.
    fn live_managed_count<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<usize>>;

    /// Creates recorded but not resolved, sorted by anchor.
    fn create_intents<'a>(&'a self, pair: &'a str)
    -> BoxFuture<'a, StoreResult<Vec<CreateIntent>>>;

    /// Escrowed actions, sorted by anchor then object/reference.
    fn escrows<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Escrow>>>;

    /// The job status blob (Graph `synchronizationStatus` shape), if one was saved.
    fn status<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>>;

    /// Log entries matching `query`, oldest first.
    fn provisioning_log<'a>(
        &'a self,
        pair: &'a str,
        query: &'a LogQuery,
    ) -> BoxFuture<'a, StoreResult<Vec<ProvisioningLogEntry>>>;

    /// Drops log entries older than `before` (retention); returns how many went.
    fn prune_log<'a>(
        &'a self,
        pair: &'a str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, StoreResult<u64>>;

    /// Every pair the store holds any record of, sorted (moving a store, status of all pairs).
    fn pairs(&self) -> BoxFuture<'_, StoreResult<Vec<String>>>;

    /// Group sync: the links of the groups ctsync manages and the groups delta watermark.
    fn group_state<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<GroupState>>;
}
