//! A job's mailbox: the commands the API and the CLI send (run now, pause, start, restart
//! with a reset scope, approve deletes) and hot reconfiguration, carried out between cycles.

use std::sync::Arc;

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
            _ => false,
        }
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
