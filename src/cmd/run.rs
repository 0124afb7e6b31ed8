use std::path::PathBuf;
use std::process::ExitCode;

use ctsync::engine::{Daemon, DaemonOptions, PairRuntime};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pair file or a directory of pair files.
    #[arg(long)]
    pub config: PathBuf,
    /// Run one cycle of each pair and exit: 1 if any failed, 3 if the deletion guard staged
    /// deletes (nothing failed, but a person must look).
    #[arg(long)]
    pub once: bool,
    /// With --once: let the deletes the deletion guard had staged (review them with `ctsync
    /// plan`) through in this run. Deletes this run's cycle stages anew stay staged (exit 3).
    #[arg(long, requires = "once")]
    pub approve_deletes: bool,
    /// The SQLite state file.
    #[arg(long, default_value = "ctsync-state.db", env = "CTSYNC_STATE")]
    pub state: PathBuf,
    #[command(flatten)]
    pub store: super::store::StoreArgs,
    /// Override every pair's interval (e.g. `30s`), for demos and tests.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub interval: Option<std::time::Duration>,
    /// Do not watch the configuration for changes (hot reload is on by default).
    #[arg(long)]
    pub no_reload: bool,
    /// Where the admin API listens (`none` turns it off).
    #[arg(long, default_value = "127.0.0.1:8080", env = "CTSYNC_ADMIN_LISTEN")]
    pub admin_listen: String,
    /// A file holding the admin API's bearer token; without one, mutations are refused.
    #[arg(long, env = "CTSYNC_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Serve the admin API's reads (jobs, logs, plan, metrics, status page) without the token.
    #[arg(long)]
    pub open_reads: bool,
    /// This replica's name in a shared store's leases (default: host name plus a random
    /// suffix).
    #[arg(long, env = "CTSYNC_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// How long a pair's lease lasts without renewal (shared store); renewed every third,
    /// writes stop after two thirds without a renewal.
    #[arg(long, env = "CTSYNC_LEASE_DURATION", value_parser = humantime::parse_duration, default_value = "30s")]
    pub lease_duration: std::time::Duration,
    /// How many replicas share Graph's write quota (shared store): each paces its writes at
    /// 1/N of the per-(app, tenant) quota. Set it to the Deployment's replica count.
    #[arg(long, env = "CTSYNC_WRITE_SHARE", default_value_t = 1)]
    pub write_share: u32,
}

fn replica_id(given: Option<&str>) -> String {
    if let Some(id) = given {
        return id.to_owned();
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ctsync".into());
    format!("{host}-{:04x}", rand::random::<u16>())
}

/// Reads the admin token file; an unreadable file is a configuration error.
fn admin_token(path: Option<&std::path::Path>) -> anyhow::Result<Option<secrecy::SecretString>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read admin token file {}: {e}", path.display()))?;
    Ok(Some(secrecy::SecretString::from(text)))
}

/// Loads the topology and builds every pair's runtime; configuration problems exit 2.
pub fn load_runtimes(config: &std::path::Path) -> Result<Vec<PairRuntime>, ExitCode> {
    load_runtimes_sharing(config, 1)
}

/// [`load_runtimes`] for one of `share` replicas: each paces its Graph writes and invitations
/// at `1/share` of every quota (per (app, tenant) and per tenant), so the replicas together
/// stay within what Graph allows one application.
pub fn load_runtimes_sharing(
    config: &std::path::Path,
    share: u32,
) -> Result<Vec<PairRuntime>, ExitCode> {
    let topology = match ctsync::config::load(config) {
        Ok(t) => t,
        Err(e) => {
            for problem in &e.problems {
                eprintln!("{problem}");
            }
            return Err(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let mut runtimes = Vec::new();
    let pool = ctsync::graph::GraphClientPool::new();
    for mut pair in topology.pairs {
        if share > 1 {
            pair.quotas.writes.per = pair.quotas.writes.per.saturating_mul(share);
            pair.quotas.invitations.per = pair.quotas.invitations.per.saturating_mul(share);
        }
        match PairRuntime::with_pool(pair, &pool) {
            Ok(rt) => runtimes.push(rt),
            Err(e) => {
                eprintln!("ctsync: {e}");
                return Err(ExitCode::from(super::EXIT_USAGE));
            }
        }
    }
    Ok(runtimes)
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let replica_name = replica_id(args.replica_id.as_deref());
    if args.store.spec(&args.state).is_ok_and(|s| s.is_shared()) {
        ctsync::graph::set_instance_name(&replica_name);
    }
    let runtimes = match load_runtimes_sharing(&args.config, args.write_share.max(1)) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let (spec, store, leases) = match args.store.open_with_leases(&args.state).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    tracing::info!(store = %spec.describe(), "store opened");
    let timing = ctsync::store::LeaseTiming::for_duration(args.lease_duration);
    if let Err(e) = timing.check() {
        eprintln!("ctsync: --lease-duration: {e}");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let replica = leases.map(|leases| {
        ctsync::engine::replica::ReplicaState::new(replica_name.clone().into(), timing, leases)
    });
    let options = DaemonOptions {
        once: args.once,
        interval_override: args.interval,
        approve_staged_deletes: args.approve_deletes,
    };
    // Read back after a --once run: did a cycle stage deletes?
    let status_store = store.clone();
    let pair_names: Vec<String> = runtimes.iter().map(|rt| rt.name().to_owned()).collect();
    // With several replicas, a job starts only once this replica holds the pair's lease.
    let (daemon, leased_runtimes) = match (&replica, args.once) {
        (Some(_), false) => (Daemon::new(Vec::new(), store, options), Some(runtimes)),
        _ => (Daemon::new(runtimes, store, options), None),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(super::shutdown_on_signal(shutdown.clone()));
    if !args.once && args.admin_listen != "none" {
        let token = match admin_token(args.admin_token_file.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("ctsync: {e}");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
        };
        if token.is_none() {
            tracing::warn!("no admin token configured: the admin API refuses every change");
        }
        let listener = tokio::net::TcpListener::bind(&args.admin_listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.admin_listen))?;
        if args.open_reads
            && listener
                .local_addr()
                .is_ok_and(|addr| !addr.ip().is_loopback())
        {
            tracing::warn!(
                address = %args.admin_listen,
                "admin API reads are open on a non-loopback address"
            );
        }
        let api = ctsync::api::AdminApi::new(
            daemon.handle(),
            ctsync::api::AdminOptions {
                token,
                open_reads: args.open_reads,
            },
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = api.serve(listener, stop).await {
                tracing::error!(error = %e, "admin API stopped");
            }
        });
    }
    if replica.is_some() && !args.once && !args.no_reload {
        tracing::warn!("hot reload is off with a shared store: roll the replicas to change pairs");
    } else if !args.once && !args.no_reload {
        ctsync::engine::reload::watch(daemon.handle(), args.config.clone(), shutdown.clone())
            .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", args.config.display()))?;
    }
    tracing::info!(
        pairs = ?daemon.pairs(),
        once = args.once,
        "daemon starting"
    );
    let summary = match (replica, leased_runtimes) {
        (Some(state), Some(runtimes)) => {
            tracing::info!(replica = %state.id, "running as one replica of a shared store");
            let info = serde_json::json!({
                "adminListen": args.admin_listen,
                "version": env!("CARGO_PKG_VERSION"),
            });
            ctsync::engine::replica::run_replica(daemon, state, runtimes, info, shutdown).await
        }
        (Some(state), None) => {
            match ctsync::engine::replica::run_once_leased(daemon, state, shutdown).await {
                Ok(summary) => summary,
                Err(e) => {
                    tracing::error!(error = %e, "cannot run once");
                    eprintln!("ctsync: {e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        _ => daemon.run(shutdown).await,
    };
    let mut staged = Vec::new();
    if args.once {
        for pair in &pair_names {
            let status = status_store.status(pair).await.ok().flatten();
            let count = status
                .as_ref()
                .and_then(|s| s.pointer("/lastCycle/counts/stagedDelete"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            if count > 0 {
                staged.push(format!("{pair} ({count})"));
            }
        }
    }
    if summary.failed_pairs.is_empty() && !staged.is_empty() {
        tracing::warn!(pairs = ?staged, "deletes were staged by the deletion guard");
        eprintln!(
            "ctsync: the deletion guard staged deletes in {}: review them with `ctsync plan`, \
             then approve them with `ctsync run --once --approve-deletes` (or, in a running \
             daemon, `ctsync restart --force-deletes --pair NAME`)",
            staged.join(", ")
        );
        Ok(ExitCode::from(super::EXIT_STAGED_DELETES))
    } else if summary.failed_pairs.is_empty() {
        tracing::info!("daemon stopped");
        Ok(ExitCode::SUCCESS)
    } else {
        tracing::error!(failed = ?summary.failed_pairs, "pairs failed");
        Ok(ExitCode::FAILURE)
    }
}
