//! `ctsync emulator`: serve the Graph emulator until SIGINT/SIGTERM, then save state.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ctsync::emulator::generate::Generate;
use ctsync::emulator::{EmulatorOptions, Seed, spawn};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (not 8080: that is the daemon's admin API).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Seed file (YAML, or JSON when it ends in `.json`): tenants, apps, users, groups,
    /// assignments, policies.
    #[arg(long)]
    seed: PathBuf,
    /// Persist the directory in this JSON file and reload it on start (it wins over the seed).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Virtual seconds per real second (shrinks throttle windows, speeds up retention).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Turn Graph throttling off.
    #[arg(long)]
    no_throttle: bool,
    /// Access-token lifetime in (virtual) seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime: i64,
    /// Page size of `/users/delta`.
    #[arg(long, default_value_t = 100)]
    delta_page_size: usize,
    /// Add generated users and groups to a seeded tenant (repeatable), e.g.
    /// `users=100000,groups=500,disabled=5,managers=true,tenant=ID,domain=D,seed=1`.
    #[arg(long, value_name = "SPEC")]
    generate: Vec<Generate>,
    /// Status for an expired delta token: 400 (a Microsoft blog, directory objects) or 410
    /// Gone with a Location header (the delta query overview).
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u16).range(400..=410))]
    expired_delta_status: u16,
    /// Milliseconds added to every Graph request (real Graph answers in 50-300 ms).
    #[arg(long, default_value_t = 0)]
    latency: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !matches!(args.expired_delta_status, 400 | 410) {
        eprintln!("ctsync emulator: --expired-delta-status is 400 or 410");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0)
        || args.token_lifetime <= 0
        || args.delta_page_size == 0
    {
        eprintln!(
            "ctsync emulator: --time-scale, --token-lifetime and --delta-page-size must be positive"
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let mut seed = match Seed::from_file(&args.seed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ctsync emulator: {}: {e}", args.seed.display());
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    for g in &args.generate {
        if let Err(e) = g.apply_to(&mut seed) {
            eprintln!("ctsync emulator: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    }
    let options = EmulatorOptions {
        listen: args.listen,
        state_file: args.state,
        time_scale: args.time_scale,
        throttling: !args.no_throttle,
        token_lifetime: chrono::Duration::seconds(args.token_lifetime),
        delta_page_size: args.delta_page_size,
        latency: std::time::Duration::from_millis(args.latency),
        expired_delta_status: args.expired_delta_status,
        ..EmulatorOptions::default()
    };
    let handle = spawn(seed, options)
        .await
        .context("starting the emulator")?;
    tracing::info!(addr = %handle.addr(), base_url = %handle.base_url(), "ctsync emulator ready");
    wait_for_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await.context("saving emulator state")?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
