//! What a job records after an attempt: the cycle's counts, staged deletes awaiting
//! approval, quarantine entry and lifting, and the escrow pruning of a failed initial cycle.

use chrono::Utc;

use crate::store::{LogQuery, ProvisioningAction, StoreWrite};

use super::super::cycle::{CycleKind, CycleReport};
use super::super::escrow;
use super::super::quarantine::{self, FailureCounts, QuarantineReason};
use super::super::status::{JobState, StagedDeletes, StagedUser, StatusError};
use super::job::Job;

impl Job {
    pub(super) fn quarantine(&mut self, reason: QuarantineReason, error: StatusError) {
        let q = quarantine::enter(
            self.status.quarantine.as_ref(),
            reason,
            error,
            Utc::now(),
            self.scale(),
        );
        self.status.quarantine = Some(q);
    }

    /// Quarantine bookkeeping after every attempt: disable after four weeks, and say why the
    /// job is quarantined, machine-readably, every time.
    pub(super) fn after_attempt(&mut self) {
        let Some(q) = &self.status.quarantine else {
            return;
        };
        let now = Utc::now();
        if quarantine::expired(q.series_began, now, self.scale()) {
            self.status.code = JobState::Disabled;
            tracing::error!(
                event = "jobDisabled",
                pair = %self.pair,
                reason = q.reason.as_str(),
                series_began = %q.series_began,
                "quarantined for four weeks: job disabled"
            );
        }
        self.status.reason = Some(q.reason.as_str().to_owned());
        tracing::warn!(
            event = "quarantine",
            pair = %self.pair,
            reason = q.reason.as_str(),
            current_began = %q.current_began,
            next_attempt = %q.next_attempt,
            series_began = %q.series_began,
            series_count = q.series_count,
            error_code = %q.error.code,
            "job is quarantined"
        );
    }

    pub(super) async fn after_cycle(&mut self, report: &CycleReport, forced: bool) {
        let escrows = self.store.escrows(&self.pair).await.unwrap_or_else(|e| {
            tracing::warn!(pair = %self.pair, error = %e, "cannot read escrows");
            Vec::new()
        });
        self.status.record_cycle(report, escrows.len());
        escrow::report_outstanding(&self.pair, &escrows);

        let staged = report.counts.get("stagedDelete").copied().unwrap_or(0);
        if staged > 0 {
            self.status.staged_deletes = Some(self.staged(report).await);
            self.status.reason = Some("TooManyDeletes".into());
            tracing::warn!(
                event = "deletionGuard",
                pair = %self.pair,
                reason = "TooManyDeletes",
                staged,
                threshold = self.rt.settings.deletion_guard.threshold,
                "deletes staged; approve with restart ForceDeletes"
            );
        } else if forced || report.kind == CycleKind::Initial {
            // Approved (or a full cycle re-planned everything): nothing is pending any more.
            self.status.staged_deletes = None;
            self.status.reason = report.blocked.clone();
        } else if self.status.staged_deletes.is_some() {
            // Still waiting for approval: the staged users are not re-read until then.
            self.status.reason = Some("TooManyDeletes".into());
        }

        let counts = FailureCounts {
            failures: escrows.iter().filter(|e| !e.reference).count() as u64,
            reference_failures: escrows.iter().filter(|e| e.reference).count() as u64,
            successes: (report.succeeded + report.manager_updates) as u64,
        };
        match quarantine::evaluate(counts, &self.rt.pair.quarantine) {
            Some(reason) => {
                let error = StatusError {
                    code: reason.as_str().to_owned(),
                    message: format!(
                        "{} failures outstanding ({} reference), {} successes in the last cycle",
                        counts.failures, counts.reference_failures, counts.successes
                    ),
                    tenant_actionable: true,
                };
                if report.kind == CycleKind::Initial {
                    self.prune_escrows(reason, &escrows).await;
                } else {
                    self.quarantine(reason, error);
                }
            }
            None => {
                if let Some(q) = self.status.quarantine.take() {
                    tracing::info!(
                        event = "quarantineLifted",
                        pair = %self.pair,
                        reason = q.reason.as_str(),
                        series_began = %q.series_began,
                        series_count = q.series_count,
                        "retry succeeded: quarantine lifted"
                    );
                }
            }
        }
    }

    /// Graph's `escrowsPruned`: an initial cycle that reaches a quarantine threshold clears
    /// its escrows instead, and the job pauses for the errors to be fixed. Loud, not silent:
    /// every failure is in the provisioning log, and the pruned ones are logged here.
    async fn prune_escrows(&mut self, reason: QuarantineReason, escrows: &[crate::store::Escrow]) {
        if let Err(e) = self
            .store
            .commit(&self.pair, vec![StoreWrite::ClearEscrows])
            .await
        {
            tracing::error!(pair = %self.pair, error = %e, "cannot prune escrows");
            return;
        }
        let anchors: Vec<String> = escrows.iter().map(|e| e.anchor.to_string()).collect();
        tracing::error!(
            event = "escrowsPruned",
            pair = %self.pair,
            reason = reason.as_str(),
            pruned = escrows.len(),
            anchors = %anchors.join(","),
            "initial cycle reached the failure threshold: escrows pruned, job paused; fix the \
             errors, then restart"
        );
        self.status.escrows_pruned = true;
        self.status.paused = true;
        self.status.quarantine = None;
        self.status.reason = Some(reason.as_str().to_owned());
    }

    /// The staged removals of `report`'s cycle, from its provisioning log entries.
    async fn staged(&self, report: &CycleReport) -> StagedDeletes {
        let query = LogQuery {
            since: Some(report.started),
            action: Some(ProvisioningAction::StagedDelete),
            status: None,
            limit: Some(u32::MAX),
        };
        let entries = self
            .store
            .provisioning_log(&self.pair, &query)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(pair = %self.pair, error = %e, "cannot read staged deletes");
                Vec::new()
            });
        let detail = |e: &crate::store::ProvisioningLogEntry, key: &str| {
            e.target_system
                .details
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let users: Vec<StagedUser> = entries
            .iter()
            .filter(|e| e.cycle_id == report.cycle_id)
            .map(|e| StagedUser {
                anchor: detail(e, "anchor"),
                source_object_id: e.source_identity.id.clone(),
                target_id: e.target_identity.id.clone(),
                user_principal_name: e
                    .source_identity
                    .details
                    .get("userPrincipalName")
                    .and_then(|v| v.as_str())
                    .unwrap_or(&e.source_identity.display_name)
                    .to_owned(),
                intended_action: detail(e, "intendedAction"),
            })
            .collect();
        let guard = &self.rt.settings.deletion_guard;
        StagedDeletes {
            cycle_id: report.cycle_id.clone(),
            staged_at: report.started,
            deletes: users
                .iter()
                .filter(|u| u.intended_action == "softDelete")
                .count(),
            disables: users
                .iter()
                .filter(|u| u.intended_action == "disable")
                .count(),
            threshold: guard.threshold,
            percentage: guard.percentage,
            users,
        }
    }
}
