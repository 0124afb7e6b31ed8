//! Progress lines for long work: a cycle's source read and its apply log how far they are
//! every [`Cadence::users`] users or [`Cadence::seconds`], whichever comes first, so a first
//! cycle over 100,000 users is not an hour of silence. `plan` writes the same lines on stderr.
//!
//! The cadence comes from `CTSYNC_PROGRESS_EVERY_USERS` (default 1000) and
//! `CTSYNC_PROGRESS_EVERY_SECONDS` (default 10), read once.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often progress is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub users: u64,
    pub seconds: u64,
}

impl Default for Cadence {
    fn default() -> Cadence {
        Cadence {
            users: 1000,
            seconds: 10,
        }
    }
}

impl Cadence {
    /// The process's cadence (the environment, else the defaults); a value that is not a
    /// positive whole number is ignored.
    pub fn current() -> Cadence {
        static CADENCE: OnceLock<Cadence> = OnceLock::new();
        *CADENCE.get_or_init(|| {
            let read = |name: &str| {
                std::env::var(name)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|n| *n > 0)
            };
            let default = Cadence::default();
            Cadence {
                users: read("CTSYNC_PROGRESS_EVERY_USERS").unwrap_or(default.users),
                seconds: read("CTSYNC_PROGRESS_EVERY_SECONDS").unwrap_or(default.seconds),
            }
        })
    }
}

/// One phase of one pair's cycle (`read` or `apply`), counting users.
#[derive(Debug)]
pub struct Progress {
    pair: String,
    phase: &'static str,
    total: Option<u64>,
    cadence: Cadence,
    started: Instant,
    last_at: Instant,
    last_done: u64,
}

impl Progress {
    /// `total` when it is known up front (apply knows its entries; a read does not).
    pub fn new(pair: &str, phase: &'static str, total: Option<u64>) -> Progress {
        Progress::with_cadence(pair, phase, total, Cadence::current())
    }

    pub fn with_cadence(
        pair: &str,
        phase: &'static str,
        total: Option<u64>,
        cadence: Cadence,
    ) -> Progress {
        let now = Instant::now();
        Progress {
            pair: pair.to_owned(),
            phase,
            total,
            cadence,
            started: now,
            last_at: now,
            last_done: 0,
        }
    }

    /// `done` users so far: logs a line when the cadence says so. Returns whether it did.
    pub fn update(&mut self, done: u64) -> bool {
        let due = done.saturating_sub(self.last_done) >= self.cadence.users
            || self.last_at.elapsed() >= Duration::from_secs(self.cadence.seconds);
        if !due || done == self.last_done {
            return false;
        }
        self.last_done = done;
        self.last_at = Instant::now();
        let elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match self.total {
            Some(total) => tracing::info!(
                event = "cycleProgress",
                pair = %self.pair,
                phase = self.phase,
                done,
                total,
                elapsed_ms,
                "{}: {done} of {total} users",
                self.phase
            ),
            None => tracing::info!(
                event = "cycleProgress",
                pair = %self.pair,
                phase = self.phase,
                done,
                elapsed_ms,
                "{}: {done} users so far",
                self.phase
            ),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_every_n_users_and_not_in_between() {
        let cadence = Cadence {
            users: 2,
            seconds: 3600,
        };
        let mut p = Progress::with_cadence("p", "read", None, cadence);
        let logged: Vec<bool> = (1..=5).map(|n| p.update(n)).collect();
        assert_eq!(logged, [false, true, false, true, false]);
        // A page that brings nothing new logs nothing.
        assert!(!p.update(4));
    }
}
