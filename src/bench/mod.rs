//! `ctsync bench`: the daemon's real code path, over loopback HTTP, against an in-process
//! emulator holding a generated source tenant and an empty target, measured phase by phase:
//!
//! 1. `plan`: `ctsync plan` on a fresh state (preflight, full source read, plan; no write).
//! 2. `initial`: the daemon's first cycle (creates every in-scope user, then the managers).
//! 3. `incremental`: M changes made in the source through Graph, then one cycle.
//! 4. `quiet`: one more cycle with nothing changed.
//!
//! Each phase reports wall time, throughput and its ratio to Graph's quota, HTTP requests by
//! endpoint, 429s, CPU time (the client's threads; the emulator's apart) and memory. Time
//! scaling shrinks both the emulator's quota windows and the client's (through the pair's
//! `spec.graph.quotas`), so a scaled run keeps its ratios.

pub mod generate;
pub mod process;
mod world;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use world::BenchWorld;

/// Graph's published quotas (throttling-limits.md): the bench's yardstick.
pub const GRAPH_WRITES_PER_SECOND: f64 = 3000.0 / 150.0;
pub const GRAPH_INVITATIONS_PER_SECOND: f64 = 150.0 / 5.0;

/// Whether the emulator enforces Graph's quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum QuotaMode {
    /// The emulator throttles at Graph's numbers; the client paces itself to them.
    Graph,
    /// No throttling and no client pacing: what the code costs without the quota.
    Off,
}

/// What to run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchOptions {
    /// Generated source users.
    pub users: usize,
    /// Source changes before the incremental cycle.
    pub changes: usize,
    /// Added to every Graph request by the emulator, in Graph's milliseconds: divided by the
    /// time scale like the quota windows (100 at time scale 10 waits 10 real ms).
    pub latency_ms: u64,
    pub quota: QuotaMode,
    /// Virtual seconds per real second for the emulator's windows and the client's pacing.
    pub time_scale: f64,
    /// Stop after the `plan` phase (for sizes whose initial cycle would take too long).
    pub plan_only: bool,
    /// After the quiet cycle, this many soak rounds (0: none): `changes` source changes and one
    /// daemon cycle each, memory sampled after every cycle.
    #[serde(default)]
    pub soak_rounds: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            users: 1000,
            changes: 100,
            latency_ms: 0,
            quota: QuotaMode::Graph,
            time_scale: 1.0,
            plan_only: false,
            soak_rounds: 0,
        }
    }
}

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bad option: {0}")]
    Usage(String),
    #[error("cannot set up the bench: {0}")]
    Setup(String),
    #[error("{phase}: {message}")]
    Phase { phase: String, message: String },
}

/// Requests of one client during a phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCounts {
    pub requests: u64,
    /// Write operations (each `$batch` write item counts): what Graph's write quota counts.
    pub writes: u64,
    pub invitations: u64,
    pub throttled: u64,
    pub token_requests: u64,
    pub by_endpoint: BTreeMap<String, u64>,
}

impl ClientCounts {
    fn minus(&self, before: &ClientCounts) -> ClientCounts {
        ClientCounts {
            requests: self.requests - before.requests,
            writes: self.writes - before.writes,
            invitations: self.invitations - before.invitations,
            throttled: self.throttled - before.throttled,
            token_requests: self.token_requests - before.token_requests,
            by_endpoint: self
                .by_endpoint
                .iter()
                .filter_map(|(k, v)| {
                    let d = v - before.by_endpoint.get(k).copied().unwrap_or(0);
                    (d > 0).then(|| (k.clone(), d))
                })
                .collect(),
        }
    }

    /// Round trips that write (everything but GET; a `$batch` is one).
    fn write_requests(&self) -> u64 {
        self.by_endpoint
            .iter()
            .filter(|(k, _)| !k.starts_with("GET "))
            .map(|(_, v)| v)
            .sum()
    }
}

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseReport {
    pub name: String,
    pub wall_seconds: f64,
    /// Users the phase created, updated, disabled, deleted or restored (plan entries that
    /// write), and per wall second.
    pub users_changed: u64,
    pub users_per_second: f64,
    pub created: u64,
    /// Target write operations (what Graph's quota counts: each `$batch` item) and per second.
    pub writes: u64,
    /// Target round trips that write (a `$batch` is one).
    pub write_requests: u64,
    pub writes_per_second: f64,
    /// writes/s ÷ Graph's 20 writes/s × time scale (≤ 1 when the quota is kept).
    pub write_quota_ratio: f64,
    pub invitations: u64,
    /// invitations/s ÷ Graph's 30 invitations/s × time scale.
    pub invitation_quota_ratio: f64,
    /// Every HTTP round trip to Graph (both tenants, token requests excluded).
    pub requests: u64,
    /// Target round trips per created user (`null` when nothing was created).
    pub requests_per_created_user: Option<f64>,
    /// 429s received (both tenants, `$batch` items included).
    pub throttled: u64,
    pub source: ClientCounts,
    pub target: ClientCounts,
    /// On-CPU time of the client's threads (everything but the in-process emulator).
    pub cpu_seconds: f64,
    pub emulator_cpu_seconds: f64,
    /// Resident memory of the whole process (the emulator's directory included) at the start
    /// and at its peak during the phase; the growth is the phase's own.
    pub rss_start_bytes: u64,
    pub peak_rss_bytes: u64,
    pub rss_growth_bytes: u64,
    /// Plan or cycle counts by action.
    pub actions: BTreeMap<String, usize>,
    /// Target users holding an anchor after the phase.
    pub target_users_after: Option<usize>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    pub options: BenchOptions,
    /// Users the pair should provision (in scope), and the generated users.
    pub expected_in_scope: usize,
    pub setup_seconds: f64,
    pub phases: Vec<PhaseReport>,
    /// The target holds exactly the in-scope users after the initial cycle (and after the
    /// incremental one, the in-scope users as changed).
    pub target_matches: Option<bool>,
    /// The soak, when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakReport>,
    /// How CPU and memory were read.
    pub measurement: String,
}

/// What the phases produced (the report's middle part).
pub(crate) struct Phases {
    pub phases: Vec<PhaseReport>,
    pub target_matches: Option<bool>,
    pub soak: Option<SoakReport>,
}

/// How the target differs from the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    /// Enabled in-scope source users with no target user.
    pub missing: usize,
    /// Target users of ctsync's whose source user is gone or out of scope.
    pub extra: usize,
}

/// A day of churn through the daemon: memory after each cycle, and whether the target still
/// matches the source at the end.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakReport {
    pub rounds: usize,
    pub changes_per_round: usize,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub requests: u64,
    pub throttled: u64,
    /// Entries the soak's cycles wrote, and those that failed (escrowed).
    pub written: usize,
    pub failed: usize,
    /// Resident memory of the whole process (emulator included) after each round's cycle.
    pub rss_bytes: Vec<u64>,
    /// Growth from the end of the first quarter of the rounds (allocator and caches warmed up)
    /// to the end; negative when memory shrank.
    pub rss_growth_after_warmup_bytes: i64,
    pub rss_max_bytes: u64,
    pub target_matches: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<Mismatch>,
}

impl SoakReport {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        options: &BenchOptions,
        rss_bytes: Vec<u64>,
        wall: Duration,
        cpu_seconds: f64,
        requests: u64,
        throttled: u64,
        written: usize,
        failed: usize,
        mismatch: Option<Mismatch>,
    ) -> SoakReport {
        let warm = rss_bytes
            .get(rss_bytes.len().saturating_sub(1) / 4)
            .copied()
            .unwrap_or(0);
        let last = rss_bytes.last().copied().unwrap_or(0);
        SoakReport {
            rounds: options.soak_rounds,
            changes_per_round: options.changes,
            wall_seconds: round(wall.as_secs_f64(), 3),
            cpu_seconds: round(cpu_seconds, 4),
            requests,
            throttled,
            written,
            failed,
            rss_growth_after_warmup_bytes: i64::try_from(last).unwrap_or(i64::MAX)
                - i64::try_from(warm).unwrap_or(i64::MAX),
            rss_max_bytes: rss_bytes.iter().copied().max().unwrap_or(0),
            rss_bytes,
            target_matches: mismatch.is_none(),
            mismatch,
        }
    }
}

/// A phase in progress: the readings taken at its start.
pub(crate) struct Probe {
    name: String,
    started: Instant,
    sample: process::Sample,
    source: ClientCounts,
    target: ClientCounts,
}

impl Probe {
    pub(crate) fn start(name: &str, world: &BenchWorld) -> Probe {
        let (source, target) = world.counts();
        let sample = process::sample();
        process::reset_peak_rss();
        Probe {
            name: name.to_owned(),
            started: Instant::now(),
            sample,
            source,
            target,
        }
    }

    pub(crate) fn finish(
        self,
        world: &BenchWorld,
        options: &BenchOptions,
        actions: BTreeMap<String, usize>,
    ) -> PhaseReport {
        let wall = self.started.elapsed();
        let after = process::sample();
        let peak = process::peak_rss_bytes().max(after.rss_bytes);
        let (source, target) = world.counts();
        let source = source.minus(&self.source);
        let target = target.minus(&self.target);
        let secs = wall.as_secs_f64().max(1e-9);
        let count = |a: &str| actions.get(a).copied().unwrap_or(0) as u64;
        let created = count("create");
        let users_changed = [
            "create",
            "adopt",
            "update",
            "disable",
            "softDelete",
            "restore",
        ]
        .iter()
        .map(|a| count(a))
        .sum();
        let writes = target.writes;
        let write_requests = target.write_requests();
        let invitations = target.invitations;
        let scale = options.time_scale;
        PhaseReport {
            name: self.name,
            wall_seconds: round(secs, 3),
            users_changed,
            users_per_second: round(users_changed as f64 / secs, 2),
            created,
            writes,
            write_requests,
            writes_per_second: round(writes as f64 / secs, 2),
            write_quota_ratio: round(writes as f64 / secs / (GRAPH_WRITES_PER_SECOND * scale), 3),
            invitations,
            invitation_quota_ratio: round(
                invitations as f64 / secs / (GRAPH_INVITATIONS_PER_SECOND * scale),
                3,
            ),
            requests: source.requests + target.requests,
            requests_per_created_user: (created > 0)
                .then(|| round(target.requests as f64 / created as f64, 3)),
            throttled: source.throttled + target.throttled,
            cpu_seconds: round(
                after
                    .client_cpu
                    .saturating_sub(self.sample.client_cpu)
                    .as_secs_f64(),
                4,
            ),
            emulator_cpu_seconds: round(
                after
                    .emulator_cpu
                    .saturating_sub(self.sample.emulator_cpu)
                    .as_secs_f64(),
                4,
            ),
            rss_start_bytes: self.sample.rss_bytes,
            peak_rss_bytes: peak,
            rss_growth_bytes: peak.saturating_sub(self.sample.rss_bytes),
            source,
            target,
            actions,
            target_users_after: Some(world.target_user_count()),
        }
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Runs the bench. Must be called inside a multi-threaded tokio runtime; the emulator gets a
/// runtime (and threads) of its own so its CPU time can be told apart.
pub async fn run(options: BenchOptions) -> Result<BenchReport, BenchError> {
    if options.users == 0 {
        return Err(BenchError::Usage("--users must be at least 1".into()));
    }
    if options.changes > options.users {
        return Err(BenchError::Usage(format!(
            "--changes {} exceeds --users {}",
            options.changes, options.users
        )));
    }
    if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
        return Err(BenchError::Usage(
            "--time-scale must be a positive number".into(),
        ));
    }
    let setup = Instant::now();
    let world = BenchWorld::start(&options).await?;
    let setup_seconds = round(setup.elapsed().as_secs_f64(), 3);
    if options.soak_rounds > 0 && options.plan_only {
        return Err(BenchError::Usage(
            "--soak runs the daemon: it cannot be combined with --plan-only".into(),
        ));
    }
    let result = world.run_phases(&options).await;
    world.stop().await;
    let Phases {
        phases,
        target_matches,
        soak,
    } = result?;
    Ok(BenchReport {
        expected_in_scope: generate::in_scope(options.users),
        options,
        setup_seconds,
        phases,
        target_matches,
        soak,
        measurement: "CPU: /proc/self/task/*/schedstat, client threads vs the emulator's; \
                      memory: VmRSS/VmHWM of the whole process (emulator included), peak \
                      reset per phase through /proc/self/clear_refs"
            .into(),
    })
}

/// The report for people.
pub fn render_text(report: &BenchReport) -> String {
    use std::fmt::Write as _;
    let o = &report.options;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ctsync bench: {} users ({} in scope), {} changes, latency {} ms, quota {:?}, time scale {}",
        o.users, report.expected_in_scope, o.changes, o.latency_ms, o.quota, o.time_scale
    );
    let _ = writeln!(
        out,
        "setup (seed + emulator): {:.2} s",
        report.setup_seconds
    );
    for p in &report.phases {
        let _ = writeln!(out, "\n{}:", p.name);
        let _ = writeln!(
            out,
            "  wall {:.3} s, {} users changed ({:.1}/s), {} created",
            p.wall_seconds, p.users_changed, p.users_per_second, p.created
        );
        let _ = writeln!(
            out,
            "  writes {} ({:.1}/s, {:.2} of the quota), invitations {} ({:.2} of the quota)",
            p.writes,
            p.writes_per_second,
            p.write_quota_ratio,
            p.invitations,
            p.invitation_quota_ratio
        );
        let per_user = p
            .requests_per_created_user
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        let _ = writeln!(
            out,
            "  requests {} ({} per created user), 429s {}, tokens {}",
            p.requests,
            per_user,
            p.throttled,
            p.source.token_requests + p.target.token_requests
        );
        let _ = writeln!(
            out,
            "  CPU {:.3} s (emulator {:.3} s), RSS {:.1} MB at start, peak {:.1} MB (+{:.1} MB)",
            p.cpu_seconds,
            p.emulator_cpu_seconds,
            mb(p.rss_start_bytes),
            mb(p.peak_rss_bytes),
            mb(p.rss_growth_bytes)
        );
        for (side, counts) in [("source", &p.source), ("target", &p.target)] {
            for (endpoint, n) in &counts.by_endpoint {
                let _ = writeln!(out, "    {side:6} {endpoint:48} {n}");
            }
        }
    }
    if let Some(soak) = &report.soak {
        let _ = writeln!(
            out,
            "\nsoak: {} rounds of {} changes, wall {:.1} s, CPU {:.2} s, {} requests, 429s {}, \
             {} entries written, {} failed",
            soak.rounds,
            soak.changes_per_round,
            soak.wall_seconds,
            soak.cpu_seconds,
            soak.requests,
            soak.throttled,
            soak.written,
            soak.failed
        );
        let first = soak.rss_bytes.first().copied().unwrap_or(0);
        let last = soak.rss_bytes.last().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  RSS {:.1} MB after the first round, {:.1} MB after the last, max {:.1} MB, \
             {:+.1} MB after warm-up",
            mb(first),
            mb(last),
            mb(soak.rss_max_bytes),
            soak.rss_growth_after_warmup_bytes as f64 / 1_048_576.0
        );
        let _ = writeln!(
            out,
            "  target matches the source after the soak: {}",
            match soak.mismatch {
                None => "yes".to_owned(),
                Some(m) => format!("NO ({} missing, {} extra)", m.missing, m.extra),
            }
        );
    }
    if let Some(ok) = report.target_matches {
        let _ = writeln!(
            out,
            "\ntarget matches the source: {}",
            if ok { "yes" } else { "NO" }
        );
    }
    out
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// How long the bench waits for one cycle before giving up.
pub(crate) const CYCLE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
