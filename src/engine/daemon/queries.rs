//! The daemon's query interface: what the admin API reads (stored status, escrows, the
//! provisioning log, a preview of the next plan) and the on-demand provisioning it asks for.
//! The API reaches the store only through these methods, never directly (guarded by
//! `tests/architecture.rs`).

use serde_json::Value;
use tokio::sync::oneshot;

use crate::plan::groups::GroupPlan;
use crate::store::{Escrow, LogQuery, ProvisioningLogEntry, StoreError};

use super::super::EngineError;
use super::super::cycle::{CycleOptions, PlannedCycle, compute_plan};
use super::super::group_provision::GroupProvisionReport;
use super::super::groups::preview_group_plan;
use super::super::provision::ProvisionReport;
use super::commands::JobMessage;
use super::{CommandError, DaemonHandle};

/// A query the daemon could not answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The next cycle's plan, as `plan` shows it: users, and groups when the pair syncs them.
pub struct Preview {
    pub users: PlannedCycle,
    pub groups: Option<GroupPlan>,
    /// The preview is the periodic full reconcile the job will run next.
    pub full_reconcile: bool,
}

impl Preview {
    /// The next cycle as `ctsync plan --format json` names it: initial, incremental or full.
    pub fn cycle(&self) -> &'static str {
        match self.users.kind {
            super::super::CycleKind::Incremental => "incremental",
            super::super::CycleKind::Initial if self.full_reconcile => "full",
            super::super::CycleKind::Initial => "initial",
        }
    }
}

impl DaemonHandle {
    /// The pair's provisioning log entries matching `query`.
    pub async fn provisioning_log(
        &self,
        pair: &str,
        query: &LogQuery,
    ) -> Result<Vec<ProvisioningLogEntry>, StoreError> {
        self.inner.store.provisioning_log(pair, query).await
    }

    /// The pair's outstanding escrows.
    pub async fn escrows(&self, pair: &str) -> Result<Vec<Escrow>, StoreError> {
        self.inner.store.escrows(pair).await
    }

    /// The stored status of any pair in the store, also one another replica runs.
    pub async fn stored_status(&self, pair: &str) -> Result<Option<Value>, StoreError> {
        self.inner.store.status(pair).await
    }

    /// The next cycle's plan against the live tenants; writes nothing.
    pub async fn preview(&self, pair: &str) -> Result<Preview, QueryError> {
        let rt = self
            .runtime(pair)
            .ok_or_else(|| CommandError::UnknownPair(pair.to_owned()))?;
        let store = self.inner.store.as_ref();
        // The cycle the job will run: the periodic full reconcile when it is due.
        let full = super::full_reconcile_due(store, pair, chrono::Utc::now())
            .await
            .map_err(EngineError::from)?;
        let options = CycleOptions {
            full,
            preview: true,
            ..CycleOptions::default()
        };
        let users = compute_plan(&rt, store, &options).await?;
        let groups = preview_group_plan(&rt, store, full).await?;
        Ok(Preview {
            users,
            groups,
            full_reconcile: full,
        })
    }

    /// Provisions (or previews) one user of `pair` through its job's mailbox: the job runs it
    /// between cycles, so it never overlaps one (one writer per pair), and answers here.
    pub async fn provision(
        &self,
        pair: &str,
        user: &str,
        dry_run: bool,
    ) -> Result<ProvisionReport, QueryError> {
        self.ask(pair, |reply| JobMessage::Provision {
            user: user.to_owned(),
            dry_run,
            reply,
        })
        .await
    }

    /// Provisions (or previews) one group of `pair` through its job's mailbox, like
    /// [`DaemonHandle::provision`] for a user.
    pub async fn provision_group(
        &self,
        pair: &str,
        group: &str,
        dry_run: bool,
    ) -> Result<GroupProvisionReport, QueryError> {
        self.ask(pair, |reply| JobMessage::ProvisionGroup {
            group: group.to_owned(),
            dry_run,
            reply,
        })
        .await
    }

    /// Sends `pair`'s job a message that carries a reply channel, and waits for the answer.
    async fn ask<T>(
        &self,
        pair: &str,
        message: impl FnOnce(oneshot::Sender<Result<T, EngineError>>) -> JobMessage,
    ) -> Result<T, QueryError> {
        let (reply, answer) = oneshot::channel();
        self.message(pair, message(reply)).await?;
        // The job dropped the reply: it stopped (shutdown, pair removed, lease lost).
        let result = answer
            .await
            .map_err(|_| CommandError::JobStopped(pair.to_owned()))?;
        Ok(result?)
    }
}
