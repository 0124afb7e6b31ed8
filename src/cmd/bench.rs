//! `ctsync bench`: runs [`ctsync::bench`] and prints its report as text or JSON.

use std::process::ExitCode;

use ctsync::bench::{self, BenchError, BenchOptions, QuotaMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Quota {
    /// The emulator throttles at Graph's published quotas; the client paces itself to them.
    Graph,
    /// No throttling and no pacing: what the code itself costs.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generated source users.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Source changes (updates, manager moves, disables, leavers, joiners) before the
    /// incremental cycle.
    #[arg(long, default_value_t = 100)]
    pub changes: usize,
    /// Milliseconds the emulator adds to every request (Graph answers in 50-300 ms); scaled by
    /// --time-scale like the quota windows.
    #[arg(long, default_value_t = 0)]
    pub latency: u64,
    /// Which throttling the emulator applies (see the values).
    #[arg(long, value_enum, default_value_t = Quota::Graph)]
    pub quota: Quota,
    /// Speeds up the emulator's clock and the client's quota windows alike (10 = a 150 s
    /// write window lasts 15 s), so ratios to the quota stay true.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Only the `plan` phase (fresh state): for sizes whose initial cycle would take hours.
    #[arg(long)]
    pub plan_only: bool,
    /// After the quiet cycle, a soak: --soak-rounds rounds of --changes source changes
    /// (joiners, leavers, renames, manager moves, disables, updates), one daemon cycle each,
    /// memory sampled after every cycle; fails when the target no longer matches the source.
    #[arg(long)]
    pub soak: bool,
    /// Soak rounds: 48 is a day of cycles 30 minutes apart (idle time between cycles is not
    /// waited for: it changes nothing the soak measures).
    #[arg(long, default_value_t = 48, requires = "soak")]
    pub soak_rounds: usize,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = BenchOptions {
        users: args.users,
        changes: args.changes,
        latency_ms: args.latency,
        quota: match args.quota {
            Quota::Graph => QuotaMode::Graph,
            Quota::Off => QuotaMode::Off,
        },
        time_scale: args.time_scale,
        plan_only: args.plan_only,
        soak_rounds: if args.soak { args.soak_rounds } else { 0 },
    };
    let report = match bench::run(options).await {
        Ok(report) => report,
        Err(BenchError::Usage(message)) => {
            eprintln!("ctsync bench: {message}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
        Err(e) => return Err(e.into()),
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", bench::render_text(&report)),
    }
    let soak_failed = report.soak.as_ref().is_some_and(|s| !s.target_matches);
    if soak_failed {
        eprintln!("ctsync bench: the target no longer matches the source after the soak");
    }
    Ok(if report.target_matches == Some(false) || soak_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
