//! The `ctsync` binary: argument parsing and dispatch. Each subcommand lives in `cmd/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ctsync::telemetry::{self, LogFormat};

mod cmd;

#[derive(Debug, Parser)]
#[command(
    name = "ctsync",
    version,
    about = "Cross-tenant user synchronization for Microsoft Entra, as software you run"
)]
struct Cli {
    /// How log lines are written to stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Json, env = "CTSYNC_LOG_FORMAT")]
    log_format: LogFormat,
    /// More detail: -v shows each action's attributes in text logs, -vv logs at debug level.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the daemon against the in-process emulator: throughput, quota use, requests,
    /// CPU and memory of an initial, an incremental and a quiet cycle.
    Bench(cmd::bench::Args),
    /// Run the demo: the embedded emulator, a hub-and-spoke topology and scripted changes.
    Demo(cmd::demo::Args),
    /// Run the sync daemon (every pair on its interval).
    Run(cmd::run::Args),
    /// Show the next cycle's plan of each pair without writing anything.
    Plan(cmd::plan::Args),
    /// Provision one user on demand (or preview it with --dry-run).
    Provision(cmd::provision::Args),
    /// Serve the Microsoft Graph emulator.
    Emulator(cmd::emulator::Args),
    /// Evaluate a mapping expression, like Entra's expression builder.
    Expr(cmd::expr::Args),
    /// Evaluate scoping filters against users.
    Filter(cmd::filter::Args),
    /// Move an installation's state to another store (SQLite to PostgreSQL).
    MigrateStore(cmd::migrate_store::Args),
    /// Validate pair configuration files.
    Validate(cmd::validate::Args),
    /// Show the jobs of a running daemon (through its admin API).
    Status(cmd::control::StatusArgs),
    /// Pause a job of a running daemon.
    Pause(cmd::control::PairArgs),
    /// Start (resume) a paused or quarantined job.
    Start(cmd::control::PairArgs),
    /// Restart a job with Graph's reset criteria.
    Restart(cmd::control::RestartArgs),
    /// Run an incremental cycle of a job now.
    RunNow(cmd::control::PairArgs),
    /// Check that a running daemon is alive (its admin API's /healthz); for container health checks.
    Health(cmd::control::HealthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("ctsync: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Bench(args) => cmd::bench::run(args).await,
            Command::Demo(args) => cmd::demo::run(args).await,
            Command::Run(args) => cmd::run::run(args).await,
            Command::Plan(args) => cmd::plan::run(args).await,
            Command::Provision(args) => cmd::provision::run(args).await,
            Command::Emulator(args) => cmd::emulator::run(args).await,
            Command::Expr(args) => cmd::expr::run(args).await,
            Command::Filter(args) => cmd::filter::run(args).await,
            Command::Validate(args) => cmd::validate::run(args).await,
            Command::MigrateStore(args) => cmd::migrate_store::run(args).await,
            Command::Status(args) => cmd::control::status(args).await,
            Command::Pause(args) => cmd::control::pause(args).await,
            Command::Start(args) => cmd::control::start(args).await,
            Command::Restart(args) => cmd::control::restart(args).await,
            Command::Health(args) => cmd::control::health(args).await,
            Command::RunNow(args) => cmd::control::run_now(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ctsync: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag of every subcommand says what it does in `--help`.
    #[test]
    fn every_flag_has_a_help_text() {
        let cli = super::Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{} --{}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }
}
