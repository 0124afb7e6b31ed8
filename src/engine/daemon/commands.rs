//! A job's mailbox: the commands the API and the CLI send (run now, pause, start, restart
//! with a reset scope, approve deletes, provision one user) and hot reconfiguration, carried
//! out between cycles: whatever writes for a pair goes through here, so nothing overlaps a
//! cycle (one writer per pair).

use std::sync::Arc;

use tokio::sync::oneshot;

use super::super::EngineError;
use super::super::group_provision::{GroupProvisionReport, provision_group_under_lease};
use super::super::provision::{ProvisionReport, provision_under_lease};
use super::super::runtime::PairRuntime;
use super::super::status::JobState;
use super::ResetScope;
use super::job::Job;
use crate::plan::Anchor;
use crate::store::StoreWrite;

/// What can be asked of a running job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCommand {
    /// Run an incremental cycle now (ignored while paused or disabled; an early retry while
    /// quarantined).
    RunNow,
    /// Stop running cycles; persisted, so a paused job stays paused across restarts.
    Pause,
    /// Continue a paused job, clearing any quarantine; runs a cycle now.
    Start,
    /// Kept for existing callers: `full` = `ResetScope::full()`, `force_deletes` alone =
    /// `ForceDeletes`, neither = the portal's restart (`ResetScope::portal()`).
    Restart { full: bool, force_deletes: bool },
    /// Graph's restart with `criteria.resetScope`; runs a cycle now.
    RestartWith(ResetScope),
    /// Lets the staged deletes through in the next cycle (same as restart `ForceDeletes`).
    ApproveDeletes,
    /// Provisions one source user (object id or UPN) between cycles, answering nobody: the
    /// form another replica queues for the holder of the pair. Its outcome is in the
    /// provisioning log. (The admin API of the holder sends [`JobMessage::Provision`].)
    ProvisionOnDemand { user: String },
}

impl JobCommand {
    /// The reset a restart-like command asks for, if it is one.
    fn reset_scope(&self) -> Option<ResetScope> {
        match self {
            JobCommand::Restart { full: true, .. } => Some(ResetScope::full()),
            JobCommand::Restart {
                full: false,
                force_deletes: true,
            } => Some(ResetScope {
                force_deletes: true,
                ..ResetScope::default()
            }),
            JobCommand::Restart { .. } => Some(ResetScope::portal()),
            JobCommand::RestartWith(scope) => Some(*scope),
            JobCommand::ApproveDeletes => Some(ResetScope {
                force_deletes: true,
                ..ResetScope::default()
            }),
            _ => None,
        }
    }
}

/// What a job's loop receives.
#[derive(Debug)]
pub(crate) enum JobMessage {
    Command(JobCommand),
    /// A validated new configuration; `full` when mappings or scope changed.
    Reconfigure {
        runtime: Arc<PairRuntime>,
        full: bool,
    },
    /// On-demand provisioning of one user, answered on `reply`; run between cycles.
    Provision {
        user: String,
        dry_run: bool,
        reply: oneshot::Sender<Result<ProvisionReport, EngineError>>,
    },
    /// On-demand provisioning of one group, answered on `reply`; run between cycles.
    ProvisionGroup {
        group: String,
        dry_run: bool,
        reply: oneshot::Sender<Result<GroupProvisionReport, EngineError>>,
    },
}

impl Job {
    /// Carries out a command; true when a cycle should run now.
    pub(super) async fn command(&mut self, command: JobCommand) -> bool {
        tracing::info!(pair = %self.pair, command = ?command, "job command");
        if let Some(scope) = command.reset_scope() {
            self.restart(scope).await;
            return self.runnable();
        }
        match command {
            JobCommand::RunNow => {
                if !self.runnable() {
                    tracing::info!(pair = %self.pair, code = ?self.status.code, "run-now ignored: job not running");
                }
                self.runnable()
            }
            JobCommand::Pause => {
                self.status.paused = true;
                self.save().await;
                false
            }
            JobCommand::Start => {
                self.status.paused = false;
                self.status.escrows_pruned = false;
                self.status.quarantine = None;
                if self.status.code == JobState::Disabled {
                    self.status.code = JobState::Active;
                }
                self.save().await;
                true
            }
            JobCommand::ProvisionOnDemand { user } => {
                let _ = self.provision(&user, false).await;
                false
            }
            _ => false,
        }
    }

    /// On-demand provisioning with the job's own store (fenced by its lease when several
    /// replicas share the store) and lease: the job is the pair's only writer. The watermark
    /// and the status are not touched.
    pub(super) async fn provision(
        &mut self,
        user: &str,
        dry_run: bool,
    ) -> Result<ProvisionReport, EngineError> {
        tracing::info!(pair = %self.pair, user, dry_run, "provisioning on demand");
        let result = provision_under_lease(
            &self.rt,
            self.store.as_ref(),
            self.lease.as_deref(),
            user,
            dry_run,
        )
        .await;
        match &result {
            Ok(report) => tracing::info!(
                pair = %self.pair,
                user_principal_name = report.user_principal_name.as_deref().unwrap_or(user),
                action = report.entry.as_ref().map(|e| e.action.to_string()).unwrap_or_default(),
                succeeded = ?report.succeeded,
                dry_run,
                "provisioned on demand"
            ),
            Err(e) => tracing::warn!(
                pair = %self.pair,
                user,
                error_code = %e.code(),
                error = %e,
                "on-demand provisioning failed"
            ),
        }
        result
    }

    /// On-demand provisioning of one group, like [`Job::provision`] for a user.
    pub(super) async fn provision_group(
        &mut self,
        group: &str,
        dry_run: bool,
    ) -> Result<GroupProvisionReport, EngineError> {
        tracing::info!(pair = %self.pair, group, dry_run, "provisioning a group on demand");
        let result = provision_group_under_lease(
            &self.rt,
            self.store.as_ref(),
            self.lease.as_deref(),
            group,
            dry_run,
        )
        .await;
        match &result {
            Ok(report) => tracing::info!(
                pair = %self.pair,
                group = %report.display_name,
                action = report.entry.as_ref().map(|e| e.action.as_str()).unwrap_or_default(),
                succeeded = ?report.succeeded,
                dry_run,
                "group provisioned on demand"
            ),
            Err(e) => tracing::warn!(
                pair = %self.pair,
                group,
                error_code = %e.code(),
                error = %e,
                "on-demand group provisioning failed"
            ),
        }
        result
    }

    /// Graph's restart: each criterion resets its part; the job resumes and runs now.
    async fn restart(&mut self, scope: ResetScope) {
        if scope.watermark {
            if let Err(e) = self.store.clear_watermark(&self.pair).await {
                tracing::error!(pair = %self.pair, error = %e, "cannot clear watermark");
            }
            self.pending.full = true;
        }
        if scope.escrows
            && let Err(e) = self
                .store
                .commit(&self.pair, vec![StoreWrite::ClearEscrows])
                .await
        {
            tracing::error!(pair = %self.pair, error = %e, "cannot clear escrows");
        }
        if scope.quarantine_state {
            self.status.quarantine = None;
            if self.status.code == JobState::Disabled {
                self.status.code = JobState::Active;
            }
        }
        if scope.force_deletes {
            self.approve_staged_deletes();
        }
        self.status.paused = false;
        self.status.escrows_pruned = false;
        self.save().await;
    }

    /// Lets the removals staged now through in the next cycle (restart `ForceDeletes`, or
    /// `run --once --approve-deletes`). The approval covers exactly this set; one that appears
    /// later is judged by the guard on its own. Returns how many were approved.
    pub(super) fn approve_staged_deletes(&mut self) -> usize {
        let Some(staged) = &self.status.staged_deletes else {
            tracing::info!(pair = %self.pair, "ForceDeletes: no staged deletes to approve");
            return 0;
        };
        for user in &staged.users {
            tracing::info!(
                pair = %self.pair,
                user_principal_name = %user.user_principal_name,
                intended_action = %user.intended_action,
                target_id = %user.target_id,
                "staged removal approved"
            );
        }
        self.pending
            .approved_deletes
            .extend(staged.users.iter().filter_map(|u| Anchor::parse(&u.anchor)));
        self.pending
            .reread
            .extend(staged.users.iter().map(|u| u.source_object_id.clone()));
        staged.users.len()
    }

    pub(super) async fn reconfigure(&mut self, runtime: Arc<PairRuntime>, full: bool) -> bool {
        tracing::info!(pair = %self.pair, full, "configuration reloaded");
        self.rt = runtime;
        if full {
            // Entra: a mapping or scoping change starts a new initial cycle.
            if let Err(e) = self.store.clear_watermark(&self.pair).await {
                tracing::error!(pair = %self.pair, error = %e, "cannot clear watermark");
            }
            self.pending.full = true;
        }
        full && self.runnable()
    }
}
