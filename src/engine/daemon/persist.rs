//! The job status in the store: read when a job starts, written after every change.

use crate::store::{StateStore, StoreError, StoreWrite};

use super::super::status::JobStatus;
use super::job::Job;

/// Whether the pair's next cycle is the periodic full reconcile, as its job decides it
/// (`JobStatus::full_sync_due`): a watermark exists (without one the next cycle is the initial
/// one anyway) and `fullSyncInterval` has passed since the last full read, or none is recorded.
/// `plan` and the admin API's plan preview ask this, so they show the cycle the job will run.
pub async fn full_reconcile_due(
    store: &dyn StateStore,
    pair: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    if store.watermark(pair).await?.is_none() {
        return Ok(false);
    }
    Ok(load_status(store, pair).await.full_sync_due(now))
}

/// The pair's stored status (`NotRun` when none or unreadable).
pub async fn load_status(store: &dyn StateStore, pair: &str) -> JobStatus {
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

impl Job {
    /// Persists the status and tells the status listeners.
    pub(super) async fn save(&mut self) {
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
}
