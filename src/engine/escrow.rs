//! Escrows: failed actions retried on later cycles with growing backoff, never dropped
//! silently. Entra retries a failed entry "in 40 minutes", "gradually scaling back the
//! frequency of retries" (reference §4.4); ctsync doubles the delay from 40 minutes up to a
//! day, multiplied by the pair's `quarantine.timeScale`.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::plan::{Action, Anchor};
use crate::store::{Escrow, EscrowError};

const FIRST_RETRY_MINUTES: f64 = 40.0;
const MAX_RETRY_MINUTES: f64 = 24.0 * 60.0;

/// The delay before retry number `attempts` (1 = after the first failure).
pub fn backoff(attempts: u32, scale: f64) -> ChronoDuration {
    let doublings = attempts.saturating_sub(1).min(16);
    let minutes = (FIRST_RETRY_MINUTES * f64::from(1u32 << doublings)).min(MAX_RETRY_MINUTES);
    let millis = (minutes * 60_000.0 * scale).clamp(1.0, i64::MAX as f64 / 2.0);
    ChronoDuration::milliseconds(millis as i64)
}

/// The escrow after one more failure of the same action.
pub fn next_escrow(
    previous: Option<&Escrow>,
    anchor: Anchor,
    reference: bool,
    action: Action,
    error: EscrowError,
    now: DateTime<Utc>,
    scale: f64,
) -> Escrow {
    let attempts = previous.map_or(1, |e| e.attempts.saturating_add(1));
    Escrow {
        anchor,
        reference,
        action,
        attempts,
        first_failed_at: previous.map_or(now, |e| e.first_failed_at),
        last_failed_at: now,
        next_retry_at: now + backoff(attempts, scale),
        last_error: error,
    }
}

/// Source object ids whose escrow is due: an incremental cycle re-reads them so the planner
/// plans them again although the source did not change.
pub fn due(escrows: &[Escrow], now: DateTime<Utc>) -> BTreeSet<String> {
    escrows
        .iter()
        .filter(|e| e.next_retry_at <= now)
        .map(|e| e.anchor.source_object_id().to_owned())
        .collect()
}

/// One warning line per outstanding escrow, every cycle, so a failure that keeps failing stays
/// loud in the logs as well as in the status.
pub fn report_outstanding(pair: &str, escrows: &[Escrow]) {
    for e in escrows {
        tracing::warn!(
            event = "escrowOutstanding",
            pair,
            anchor = %e.anchor,
            reference = e.reference,
            action = e.action.as_str(),
            attempts = e.attempts,
            first_failed_at = %e.first_failed_at,
            next_retry_at = %e.next_retry_at,
            error_code = %e.last_error.code,
            "escrowed action still failing"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor() -> Anchor {
        Anchor::new(
            "c0000000-0000-4000-8000-000000000001",
            "11111111-0000-4000-8000-000000000001",
        )
    }

    #[test]
    fn backoff_doubles_from_40_minutes_to_a_day_and_scales() {
        assert_eq!(backoff(1, 1.0), ChronoDuration::minutes(40));
        assert_eq!(backoff(2, 1.0), ChronoDuration::minutes(80));
        assert_eq!(backoff(3, 1.0), ChronoDuration::minutes(160));
        assert_eq!(backoff(10, 1.0), ChronoDuration::minutes(24 * 60));
        assert_eq!(backoff(u32::MAX, 1.0), ChronoDuration::minutes(24 * 60));
        assert_eq!(backoff(1, 0.5), ChronoDuration::minutes(20));
    }

    #[test]
    fn repeated_failures_keep_the_first_failure_and_count_attempts() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let error = EscrowError {
            code: "E".into(),
            message: "m".into(),
        };
        let first = next_escrow(
            None,
            anchor(),
            false,
            Action::Update,
            error.clone(),
            t0,
            1.0,
        );
        assert_eq!(first.attempts, 1);
        assert_eq!(first.next_retry_at, t0 + ChronoDuration::minutes(40));
        let t1 = first.next_retry_at;
        let second = next_escrow(
            Some(&first),
            anchor(),
            false,
            Action::Update,
            error,
            t1,
            1.0,
        );
        assert_eq!(second.attempts, 2);
        assert_eq!(second.first_failed_at, t0);
        assert_eq!(second.next_retry_at, t1 + ChronoDuration::minutes(80));
        assert!(due(std::slice::from_ref(&second), t1).is_empty());
        assert_eq!(
            due(std::slice::from_ref(&second), second.next_retry_at).len(),
            1
        );
    }
}
