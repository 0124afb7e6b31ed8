//! Quarantine (reference §5): when a job stops trying every interval and retries on Entra's
//! schedule instead. Pure: the daemon feeds it counts and clocks and stores what it returns.
//!
//! Mapping of Entra's published thresholds to Graph's `synchronizationQuarantine.reason`
//! values (Microsoft documents the numbers but not which enum value each one raises; this is
//! ctsync's decision):
//! - credential or connection failure → `EncounteredQuarantineException` (documented);
//! - more than 40 % of events failed → `EncounteredEscrowProportionThreshold` (documented);
//! - more than 40,000 non-reference failures → `EncounteredTotalEscrowThreshold`;
//! - more than 60,000 failures, references included → `EncounteredBaseEscrowThreshold` (the
//!   "absolute" threshold: the base every failure counts toward).
//!
//! None is evaluated below the minimum (5,000 failures, references included).

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::QuarantineSettings;

use super::status::StatusError;

/// Graph's `quarantineReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuarantineReason {
    EncounteredBaseEscrowThreshold,
    EncounteredTotalEscrowThreshold,
    EncounteredEscrowProportionThreshold,
    EncounteredQuarantineException,
    Unknown,
    QuarantinedOnDemand,
    TooManyDeletes,
    IngestionInterrupted,
}

impl QuarantineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::EncounteredBaseEscrowThreshold => "EncounteredBaseEscrowThreshold",
            QuarantineReason::EncounteredTotalEscrowThreshold => "EncounteredTotalEscrowThreshold",
            QuarantineReason::EncounteredEscrowProportionThreshold => {
                "EncounteredEscrowProportionThreshold"
            }
            QuarantineReason::EncounteredQuarantineException => "EncounteredQuarantineException",
            QuarantineReason::Unknown => "Unknown",
            QuarantineReason::QuarantinedOnDemand => "QuarantinedOnDemand",
            QuarantineReason::TooManyDeletes => "TooManyDeletes",
            QuarantineReason::IngestionInterrupted => "IngestionInterrupted",
        }
    }
}

/// Graph's `synchronizationQuarantine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantine {
    /// When the current quarantine began (the last time the reason changed).
    pub current_began: DateTime<Utc>,
    pub next_attempt: DateTime<Utc>,
    pub reason: QuarantineReason,
    /// When this series of quarantines began (first quarantine since the job was healthy).
    pub series_began: DateTime<Utc>,
    /// Times the quarantine was re-evaluated and left in effect in this series.
    pub series_count: u64,
    pub error: StatusError,
}

/// What the last cycle's failures look like. Failures are outstanding escrows (a failure
/// retried and failing again counts once); events are this cycle's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts {
    /// Outstanding non-reference failures.
    pub failures: u64,
    /// Outstanding reference (manager) failures: not counted toward the proportion or total.
    pub reference_failures: u64,
    /// Successful actions of the cycle.
    pub successes: u64,
}

/// The failure-rate rules. `None` = no quarantine.
pub fn evaluate(counts: FailureCounts, settings: &QuarantineSettings) -> Option<QuarantineReason> {
    let all = counts.failures.saturating_add(counts.reference_failures);
    if all < settings.min_failures {
        return None;
    }
    let events = counts.failures.saturating_add(counts.successes);
    if events > 0
        && (counts.failures as f64) * 100.0 > settings.failure_percentage * (events as f64)
    {
        return Some(QuarantineReason::EncounteredEscrowProportionThreshold);
    }
    if counts.failures > settings.total_failures {
        return Some(QuarantineReason::EncounteredTotalEscrowThreshold);
    }
    if all > settings.absolute_failures {
        return Some(QuarantineReason::EncounteredBaseEscrowThreshold);
    }
    None
}

const HOUR_SECONDS: f64 = 3600.0;
/// After this long in one series the job is disabled (Entra: four weeks).
const DISABLE_AFTER_HOURS: f64 = 28.0 * 24.0;

fn scaled_hours(hours: f64, scale: f64) -> ChronoDuration {
    let millis = (hours * HOUR_SECONDS * 1000.0 * scale).clamp(1.0, i64::MAX as f64 / 2.0);
    ChronoDuration::milliseconds(millis as i64)
}

/// Entra's retry schedule, counted from the series' first failure: 6 h, 12 h, 24 h, then
/// every 24 h. `attempts` = retries already made in the series.
pub fn next_attempt(series_began: DateTime<Utc>, attempts: u64, scale: f64) -> DateTime<Utc> {
    let hours = match attempts {
        0 => 6.0,
        1 => 12.0,
        n => 24.0 * (n as f64 - 1.0),
    };
    series_began + scaled_hours(hours, scale)
}

/// True once the series has lasted longer than four weeks (scaled): the job is disabled.
pub fn expired(series_began: DateTime<Utc>, now: DateTime<Utc>, scale: f64) -> bool {
    now >= series_began + scaled_hours(DISABLE_AFTER_HOURS, scale)
}

/// Enters quarantine or keeps it, continuing the series. A changed reason begins a new
/// current quarantine inside the same series.
pub fn enter(
    previous: Option<&Quarantine>,
    reason: QuarantineReason,
    error: StatusError,
    now: DateTime<Utc>,
    scale: f64,
) -> Quarantine {
    match previous {
        Some(q) => {
            let series_count = q.series_count.saturating_add(1);
            Quarantine {
                current_began: if q.reason == reason {
                    q.current_began
                } else {
                    now
                },
                next_attempt: next_attempt(q.series_began, series_count, scale).max(now),
                reason,
                series_began: q.series_began,
                series_count,
                error,
            }
        }
        None => Quarantine {
            current_began: now,
            next_attempt: next_attempt(now, 0, scale),
            reason,
            series_began: now,
            series_count: 0,
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> QuarantineSettings {
        QuarantineSettings::default()
    }

    fn counts(failures: u64, reference_failures: u64, successes: u64) -> FailureCounts {
        FailureCounts {
            failures,
            reference_failures,
            successes,
        }
    }

    #[test]
    fn entras_worked_examples() {
        let s = settings();
        // 4,000 failures: below the minimum, not evaluated even at 100 %.
        assert_eq!(evaluate(counts(4_000, 0, 0), &s), None);
        // 45,000 failed → quarantine.
        assert!(evaluate(counts(45_000, 0, 0), &s).is_some());
        // 30,000 failed + 5,000 succeeded → more than 40 %.
        assert_eq!(
            evaluate(counts(30_000, 0, 5_000), &s),
            Some(QuarantineReason::EncounteredEscrowProportionThreshold)
        );
        // 20,000 failed + 100,000 succeeded → no.
        assert_eq!(evaluate(counts(20_000, 0, 100_000), &s), None);
        // 40,000 user + 21,000 manager failures: the absolute threshold.
        assert_eq!(
            evaluate(counts(40_000, 21_000, 1_000_000), &s),
            Some(QuarantineReason::EncounteredBaseEscrowThreshold)
        );
        assert_eq!(
            evaluate(counts(40_001, 0, 1_000_000), &s),
            Some(QuarantineReason::EncounteredTotalEscrowThreshold)
        );
    }

    #[test]
    fn reference_failures_do_not_count_toward_the_proportion() {
        let s = settings();
        assert_eq!(evaluate(counts(100, 10_000, 1_000), &s), None);
    }

    #[test]
    fn small_tenants_lower_the_minimum() {
        let s = QuarantineSettings {
            min_failures: 2,
            ..settings()
        };
        assert_eq!(
            evaluate(counts(3, 0, 1), &s),
            Some(QuarantineReason::EncounteredEscrowProportionThreshold)
        );
        assert_eq!(evaluate(counts(1, 0, 0), &s), None);
        assert_eq!(
            evaluate(counts(2, 0, 3), &s),
            None,
            "40 % is not more than 40 %"
        );
    }

    #[test]
    fn retry_schedule_is_6_12_24_hours_then_daily_and_scales() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let h = |n: i64| t0 + ChronoDuration::hours(n);
        assert_eq!(next_attempt(t0, 0, 1.0), h(6));
        assert_eq!(next_attempt(t0, 1, 1.0), h(12));
        assert_eq!(next_attempt(t0, 2, 1.0), h(24));
        assert_eq!(next_attempt(t0, 3, 1.0), h(48));
        assert_eq!(next_attempt(t0, 4, 1.0), h(72));
        assert_eq!(next_attempt(t0, 0, 0.5), h(3));
        assert!(!expired(t0, h(28 * 24 - 1), 1.0));
        assert!(expired(t0, h(28 * 24), 1.0));
        assert!(expired(t0, h(14 * 24), 0.5));
    }

    #[test]
    fn a_series_continues_and_a_new_reason_restarts_the_current_quarantine() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let error = StatusError {
            code: "x".into(),
            message: "y".into(),
            tenant_actionable: true,
        };
        let first = enter(
            None,
            QuarantineReason::EncounteredQuarantineException,
            error.clone(),
            t0,
            1.0,
        );
        assert_eq!(first.series_count, 0);
        assert_eq!(first.next_attempt, t0 + ChronoDuration::hours(6));
        let later = t0 + ChronoDuration::hours(6);
        let second = enter(
            Some(&first),
            QuarantineReason::EncounteredQuarantineException,
            error.clone(),
            later,
            1.0,
        );
        assert_eq!(second.series_count, 1);
        assert_eq!(second.current_began, t0);
        assert_eq!(second.next_attempt, t0 + ChronoDuration::hours(12));
        let third = enter(
            Some(&second),
            QuarantineReason::EncounteredEscrowProportionThreshold,
            error,
            later,
            1.0,
        );
        assert_eq!(third.current_began, later);
        assert_eq!(third.series_began, t0);
    }
}
