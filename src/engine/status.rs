//! Job status in the shape of Graph's `synchronizationStatus`, kept in the store. The daemon
//! folds each cycle (or failure) into it; the admin API serves it as is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cycle::CycleReport;
use super::quarantine::Quarantine;

/// Graph's `synchronizationStatusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum JobState {
    #[default]
    NotRun,
    Active,
    Paused,
    Quarantine,
    Disabled,
}

/// Graph's `synchronizationTaskExecution`, reduced to what ctsync knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskExecution {
    pub activity_identifier: String,
    pub time_began: DateTime<Utc>,
    pub time_ended: DateTime<Utc>,
    /// `Succeeded`, `Failed` or `EntryLevelErrors`.
    pub state: String,
    pub count_entitled: usize,
    pub count_exported: usize,
    /// Escrows outstanding after the execution (this cycle's failures and older ones not yet
    /// retried), not just this cycle's failures.
    pub count_escrowed: usize,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<StatusError>,
}

/// Graph's `synchronizationError`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusError {
    pub code: String,
    pub message: String,
    pub tenant_actionable: bool,
}

/// Graph's `synchronizationProgress`, in users (Entra's portal counts pages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub completed_units: u64,
    pub total_units: u64,
    pub units: String,
    pub progress_observation_date_time: DateTime<Utc>,
}

/// One removal the deletion guard held back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedUser {
    pub anchor: String,
    pub source_object_id: String,
    pub target_id: String,
    pub user_principal_name: String,
    /// `softDelete` or `disable`.
    pub intended_action: String,
}

/// What the deletion guard staged in the last cycle that triggered it, until approved or no
/// longer pending. ctsync keeps the job running (creates and updates go on) rather than
/// quarantining it as Entra does; the reason is `TooManyDeletes` either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedDeletes {
    pub cycle_id: String,
    pub staged_at: DateTime<Utc>,
    pub deletes: usize,
    pub disables: usize,
    pub threshold: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub percentage: Option<u32>,
    pub users: Vec<StagedUser>,
}

/// Graph's `synchronizationStatus` plus ctsync's own `reason`, staged deletes and last cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub code: JobState,
    /// A machine-readable reason when the job is not healthy (`InboundSyncDisabled`,
    /// `TooManyDeletes`, a quarantine reason, an error code, ...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_execution: Option<TaskExecution>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_successful_execution: Option<TaskExecution>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_successful_execution_with_exports: Option<TaskExecution>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub steady_state_first_achieved_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub steady_state_last_achieved_time: Option<DateTime<Utc>>,
    pub count_successive_complete_failures: u64,
    pub escrows_pruned: bool,
    /// Graph shows `null` when the job is not quarantined.
    #[serde(default)]
    pub quarantine: Option<Quarantine>,
    #[serde(default)]
    pub progress: Vec<Progress>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub staged_deletes: Option<StagedDeletes>,
    /// The full reconcile (`spec.fullSyncInterval`): when the last one ran and the next is due.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub full_sync: Option<FullSync>,
    /// Pause survives restarts: a paused job stays paused until started.
    #[serde(default)]
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_cycle: Option<CycleReport>,
}

/// When the job last read source and target in full, and when it will again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FullSync {
    pub interval_seconds: u64,
    pub last: DateTime<Utc>,
    pub next: DateTime<Utc>,
}

impl JobStatus {
    /// Whether the next cycle is the periodic full reconcile (level-triggered: a full read of
    /// source and target heals what incremental cycles missed): none has run yet, or
    /// `fullSyncInterval` has passed since the last.
    pub fn full_sync_due(&self, now: DateTime<Utc>) -> bool {
        self.full_sync.as_ref().is_none_or(|f| f.next <= now)
    }

    /// Folds a finished cycle into the status. `escrowed` = escrows outstanding after it.
    pub fn record_cycle(&mut self, report: &CycleReport, escrowed: usize) {
        let ended = report.started + chrono::Duration::milliseconds(report.duration_ms as i64);
        let state = if report.failed > 0 || escrowed > 0 {
            "EntryLevelErrors"
        } else {
            "Succeeded"
        };
        let execution = TaskExecution {
            activity_identifier: report.cycle_id.clone(),
            time_began: report.started,
            time_ended: ended,
            state: state.into(),
            count_entitled: report.counts.values().sum(),
            count_exported: report.succeeded,
            count_escrowed: escrowed,
            error: None,
        };
        self.count_successive_complete_failures = 0;
        self.last_execution = Some(execution.clone());
        if report.failed == 0 {
            self.last_successful_execution = Some(execution.clone());
            if report.exported() {
                self.last_successful_execution_with_exports = Some(execution);
            }
        }
        let writes: usize = report
            .counts
            .iter()
            .filter(|(action, _)| !matches!(action.as_str(), "skip" | "stagedDelete"))
            .map(|(_, n)| n)
            .sum();
        if writes == 0 && report.failed == 0 && escrowed == 0 && !report.guard_triggered {
            self.steady_state_first_achieved_time.get_or_insert(ended);
            self.steady_state_last_achieved_time = Some(ended);
        }
        self.progress = vec![Progress {
            completed_units: (report.succeeded + report.failed) as u64,
            total_units: writes as u64,
            units: "users".into(),
            progress_observation_date_time: ended,
        }];
        self.reason = if report.guard_triggered {
            Some("TooManyDeletes".into())
        } else {
            report.blocked.clone()
        };
        self.last_cycle = Some(report.clone());
    }

    /// Folds a cycle that could not run.
    pub fn record_failure(&mut self, began: DateTime<Utc>, code: String, message: String) {
        let execution = TaskExecution {
            activity_identifier: uuid::Uuid::new_v4().to_string(),
            time_began: began,
            time_ended: Utc::now(),
            state: "Failed".into(),
            count_entitled: 0,
            count_exported: 0,
            count_escrowed: self.last_execution.as_ref().map_or(0, |e| e.count_escrowed),
            error: Some(StatusError {
                code: code.clone(),
                message,
                tenant_actionable: true,
            }),
        };
        self.count_successive_complete_failures += 1;
        self.last_execution = Some(execution);
        self.reason = Some(code);
    }

    /// The state code the status should show, derived from pause, quarantine and history.
    pub fn derive_code(&mut self) {
        self.code = match (&self.quarantine, self.paused) {
            _ if self.code == JobState::Disabled => JobState::Disabled,
            (_, true) => JobState::Paused,
            (Some(_), false) => JobState::Quarantine,
            (None, false) if self.last_execution.is_some() => JobState::Active,
            (None, false) => JobState::NotRun,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_status_serializes_with_a_null_quarantine_like_graph() {
        let value = serde_json::to_value(JobStatus::default()).unwrap();
        assert_eq!(value["code"], "NotRun");
        assert!(value["quarantine"].is_null());
        assert_eq!(value["countSuccessiveCompleteFailures"], 0);
        assert_eq!(value["progress"], serde_json::json!([]));
    }

    #[test]
    fn pause_wins_over_quarantine_and_disabled_wins_over_both() {
        let mut s = JobStatus {
            paused: true,
            ..JobStatus::default()
        };
        s.derive_code();
        assert_eq!(s.code, JobState::Paused);
        s.paused = false;
        s.derive_code();
        assert_eq!(s.code, JobState::NotRun);
        s.code = JobState::Disabled;
        s.derive_code();
        assert_eq!(s.code, JobState::Disabled);
    }
}
