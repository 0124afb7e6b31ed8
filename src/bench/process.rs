//! CPU time and resident memory of this process, from `/proc` (Linux). The emulator runs in the
//! same process on threads named [`EMULATOR_THREAD`], so the client's CPU time can be told
//! apart from the emulator's; memory cannot be split, so the report gives the process's peak
//! and its growth during a phase.

use std::time::Duration;

/// Name of the emulator's runtime threads (the kernel keeps 15 bytes of a thread name).
pub const EMULATOR_THREAD: &str = "ctsync-emulator";

/// One reading of the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// On-CPU time of the threads that are not the emulator's (live threads only: a thread that
    /// exited takes its time with it, so blocking-pool threads are kept alive by the bench).
    pub client_cpu: Duration,
    /// On-CPU time of the emulator's threads.
    pub emulator_cpu: Duration,
    /// Resident set size now.
    pub rss_bytes: u64,
}

/// Reads the process now. Zeros where `/proc` is not available.
pub fn sample() -> Sample {
    let mut s = Sample {
        rss_bytes: status_kib("VmRSS:").unwrap_or(0) * 1024,
        ..Sample::default()
    };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return s;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let Some(cpu) = thread_cpu(&path) else {
            continue;
        };
        if comm.trim_end().starts_with(EMULATOR_THREAD) {
            s.emulator_cpu += cpu;
        } else {
            s.client_cpu += cpu;
        }
    }
    s
}

/// A thread's on-CPU time: `schedstat` (nanoseconds) when the kernel keeps it, else `stat`'s
/// utime + stime in clock ticks (100 per second on Linux).
fn thread_cpu(task: &std::path::Path) -> Option<Duration> {
    if let Ok(text) = std::fs::read_to_string(task.join("schedstat"))
        && let Some(ns) = text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
    {
        return Some(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A `/proc/self/status` line in KiB (`VmRSS:`, `VmHWM:`).
fn status_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resets the peak resident set size (`VmHWM`) to the current one, so that a phase's peak
/// is its own. Returns false when the kernel does not allow it (then the peak is the
/// process's since start).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size since start or the last [`reset_peak_rss`].
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:").unwrap_or(0) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        // Burn a little CPU so the reading cannot be zero on Linux.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let s = sample();
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(s.rss_bytes > 0);
            assert!(s.client_cpu > Duration::ZERO);
            assert!(peak_rss_bytes() >= s.rss_bytes / 2);
        }
    }
}
