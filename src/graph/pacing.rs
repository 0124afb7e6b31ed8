//! Client-side pacing to Graph's quotas: at most `limit` units in any `window`, measured on a
//! sliding window so that no burst exceeds what Graph's own window allows (a token bucket with
//! a full-quota burst would let twice the quota through in one of Graph's windows).
//!
//! Graph counts a request when it arrives, not when it was sent; the window is padded by a
//! little (2 %, at least 100 ms) so that uneven latency cannot push one window's requests into
//! the next one's count.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// At most `limit` units in any `window`. Waiters are served in arrival order (the lock is
/// fair and held while waiting), so a large batch is not starved by single requests.
#[derive(Debug)]
pub struct WindowLimiter {
    limit: u32,
    window: Duration,
    /// Units taken, oldest first: (when, how many).
    taken: Mutex<VecDeque<(Instant, u32)>>,
}

impl WindowLimiter {
    pub fn new(limit: std::num::NonZeroU32, window: Duration) -> WindowLimiter {
        let pad = (window / 50).max(Duration::from_millis(100));
        WindowLimiter {
            limit: limit.get(),
            window: window + pad,
            taken: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes `n` units (at most the limit), waiting until they fit.
    pub async fn acquire(&self, n: u32) {
        let n = n.clamp(1, self.limit);
        let mut taken = self.taken.lock().await;
        loop {
            let now = Instant::now();
            let used = expire(&mut taken, now, self.window);
            if used + n <= self.limit {
                taken.push_back((now, n));
                return;
            }
            // Wait until enough of the oldest units leave the window.
            let mut freed = 0;
            let mut until = now;
            for (at, units) in taken.iter() {
                freed += units;
                until = *at + self.window;
                if used - freed + n <= self.limit {
                    break;
                }
            }
            tokio::time::sleep_until(until).await;
        }
    }

    /// Takes one unit if it fits right now, without waiting.
    pub fn try_acquire(&self) -> bool {
        let Ok(mut taken) = self.taken.try_lock() else {
            return false;
        };
        let now = Instant::now();
        if expire(&mut taken, now, self.window) < self.limit {
            taken.push_back((now, 1));
            true
        } else {
            false
        }
    }
}

/// Drops what left the window; returns the units still in it.
fn expire(taken: &mut VecDeque<(Instant, u32)>, now: Instant, window: Duration) -> u32 {
    while taken.front().is_some_and(|(at, _)| *at + window <= now) {
        taken.pop_front();
    }
    taken.iter().map(|(_, n)| n).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn limiter(limit: u32, window_ms: u64) -> WindowLimiter {
        WindowLimiter::new(
            NonZeroU32::new(limit).unwrap(),
            Duration::from_millis(window_ms),
        )
    }

    /// Any window holds at most the limit: the old limiter (a token bucket with a full-quota
    /// burst) let the quota through at once and then kept refilling, twice the quota in one
    /// of Graph's windows.
    #[tokio::test]
    async fn no_window_ever_holds_more_than_the_limit() {
        let l = limiter(5, 200);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..17 {
            l.acquire(1).await;
            times.push(start.elapsed());
        }
        let window = Duration::from_millis(200);
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|u| **u < *t + window).count();
            assert!(
                in_window <= 5,
                "{in_window} in the window starting at {t:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_batch_waits_for_room_for_all_its_units() {
        let l = limiter(20, 200);
        l.acquire(15).await;
        assert!(l.try_acquire());
        let start = Instant::now();
        l.acquire(10).await;
        assert!(start.elapsed() >= Duration::from_millis(200));
        // A batch above the limit is paced as a full window, not refused.
        l.acquire(50).await;
    }
}
