//! Job status in the shape of Graph's `synchronizationStatus`, kept in the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cycle::CycleReport;

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

/// Graph's `synchronizationStatus` plus ctsync's own `reason` and last cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub code: JobState,
    /// A machine-readable reason when the job is not healthy (`InboundSyncDisabled`,
    /// `TooManyDeletes`, an error code, ...).
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
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_cycle: Option<CycleReport>,
}

impl JobStatus {
    /// Folds a finished cycle into the status.
    pub fn record_cycle(&mut self, report: &CycleReport) {
        let ended = report.started + chrono::Duration::milliseconds(report.duration_ms as i64);
        let state = if report.failed > 0 {
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
            count_escrowed: report.failed,
            error: None,
        };
        self.count_successive_complete_failures = 0;
        self.last_execution = Some(execution.clone());
        self.last_successful_execution = Some(execution.clone());
        if report.exported() {
            self.last_successful_execution_with_exports = Some(execution);
        }
        let writes: usize = report
            .counts
            .iter()
            .filter(|(action, _)| !matches!(action.as_str(), "skip" | "stagedDelete"))
            .map(|(_, n)| n)
            .sum();
        if writes == 0 && report.failed == 0 {
            self.steady_state_first_achieved_time.get_or_insert(ended);
            self.steady_state_last_achieved_time = Some(ended);
        }
        self.reason = if report.guard_triggered {
            Some("TooManyDeletes".into())
        } else {
            report.blocked.clone()
        };
        if self.code != JobState::Paused {
            self.code = JobState::Active;
        }
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
            count_escrowed: 0,
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
}
