//! The emulator clock: real elapsed time × time scale, plus manual advances. Everything with a
//! lifetime (tokens, soft-delete retention, delta tokens, throttle windows) reads this clock, so
//! tests can move a month forward in one call and throttle windows shrink with the scale.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

#[derive(Debug)]
pub struct Clock {
    scale: f64,
    inner: Mutex<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    origin_real: Instant,
    origin_virtual: DateTime<Utc>,
    advanced: Duration,
}

impl Clock {
    /// `scale` ≤ 0 or not finite is treated as 1 (validated earlier by the options).
    pub fn new(start: DateTime<Utc>, scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        Clock {
            scale,
            inner: Mutex::new(ClockState {
                origin_real: Instant::now(),
                origin_virtual: start,
                advanced: Duration::zero(),
            }),
        }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn now(&self) -> DateTime<Utc> {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let real = state.origin_real.elapsed().as_secs_f64() * self.scale;
        let scaled = Duration::microseconds((real * 1_000_000.0) as i64);
        state
            .origin_virtual
            .checked_add_signed(scaled)
            .and_then(|t| t.checked_add_signed(state.advanced))
            .unwrap_or(state.origin_virtual)
    }

    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        {
            let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            // Advances that would leave chrono's range are ignored rather than overflowing.
            if let Some(total) = state.advanced.checked_add(&by)
                && state.origin_virtual.checked_add_signed(total).is_some()
            {
                state.advanced = total;
            }
        }
        self.now()
    }

    /// Converts a virtual duration into the real seconds a client has to wait.
    pub fn real_seconds(&self, virtual_duration: Duration) -> f64 {
        let secs = virtual_duration.num_microseconds().unwrap_or(i64::MAX) as f64 / 1_000_000.0;
        (secs / self.scale).max(0.0)
    }
}

/// Graph's `innerError.date` format.
pub fn error_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// ISO-8601 with a `Z`, as Graph renders `DateTimeOffset` values.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_virtual_time_forward() {
        let start = Utc::now();
        let clock = Clock::new(start, 1.0);
        let later = clock.advance(Duration::days(30));
        assert!(later - start >= Duration::days(30));
    }

    #[test]
    fn real_seconds_divides_by_scale() {
        let clock = Clock::new(Utc::now(), 10.0);
        assert!((clock.real_seconds(Duration::seconds(10)) - 1.0).abs() < 1e-9);
    }
}
