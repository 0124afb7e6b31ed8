//! `ctsync migrate-store --from sqlite:FILE --to postgres://…`: moves an installation's state
//! onto another store. Stop the daemon first; the target must be empty.

use std::process::ExitCode;

use ctsync::store::{StoreError, StoreSpec, copy_store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store to read: `sqlite:FILE` (or `postgres://…`).
    #[arg(long)]
    pub from: String,
    /// The store to fill: `postgres://…` (or `sqlite:FILE`); also `CTSYNC_STORE`.
    #[arg(long, env = "CTSYNC_STORE", hide_env_values = true)]
    pub to: String,
    /// PostgreSQL schema of the target store.
    #[arg(long, env = "CTSYNC_STORE_SCHEMA")]
    pub to_schema: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let usage = |e: String| {
        eprintln!("ctsync migrate-store: {e}");
        Ok(ExitCode::from(super::EXIT_USAGE))
    };
    let from = match StoreSpec::parse(&args.from, None) {
        Ok(s) => s,
        Err(e) => return usage(format!("--from: {e}")),
    };
    let to = match StoreSpec::parse(&args.to, args.to_schema.clone()) {
        Ok(s) => s,
        Err(e) => return usage(format!("--to: {e}")),
    };
    if let StoreSpec::Sqlite(path) = &from
        && !path.exists()
    {
        return usage(format!("--from: no such file {}", path.display()));
    }
    if from.describe() == to.describe() {
        return usage("--from and --to are the same store".into());
    }
    let source = from
        .open()
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", from.describe()))?;
    let target = match to.open().await {
        Ok(t) => t,
        Err(StoreError::Config(e)) => return usage(format!("--to {}: {e}", to.describe())),
        Err(e) => anyhow::bail!("cannot open {}: {e}", to.describe()),
    };
    let report = match copy_store(source.as_ref(), target.as_ref()).await {
        Ok(r) => r,
        Err(StoreError::Config(e)) => return usage(format!("{}: {e}", to.describe())),
        Err(e) => anyhow::bail!("copying into {}: {e}", to.describe()),
    };
    for pair in &report {
        println!(
            "{}: {} managed users, {} create intents, {} escrows, {} log entries, watermark {}",
            pair.pair,
            pair.managed_users,
            pair.create_intents,
            pair.escrows,
            pair.log_entries,
            if pair.watermark { "copied" } else { "none" }
        );
    }
    println!(
        "moved {} pairs from {} to {}",
        report.len(),
        from.describe(),
        to.describe()
    );
    Ok(ExitCode::SUCCESS)
}
