use std::path::PathBuf;
use std::process::ExitCode;

use ctsync::engine::{CycleOptions, compute_plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pair file or a directory of pair files.
    #[arg(long)]
    pub config: PathBuf,
    /// Only this pair.
    #[arg(long)]
    pub pair: Option<String>,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The SQLite state file the daemon uses.
    #[arg(long, default_value = "ctsync-state.db", env = "CTSYNC_STATE")]
    pub state: PathBuf,
    #[command(flatten)]
    pub store: super::store::StoreArgs,
    /// Plan a full cycle even when a watermark exists.
    #[arg(long)]
    pub full: bool,
}

/// Computes the next cycle's plan of each pair against the live tenants and prints it. Writes
/// nothing to the tenants; the state file is only read.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut runtimes = match super::run::load_runtimes(&args.config) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if let Some(name) = &args.pair {
        runtimes.retain(|rt| rt.name() == name);
        if runtimes.is_empty() {
            eprintln!(
                "ctsync plan: no pair named {name} in {}",
                args.config.display()
            );
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    }
    let (_spec, store) = match args.store.open(&args.state).await? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let options = CycleOptions {
        full: args.full,
        approved_deletes: Default::default(),
        crash: None,
        ..CycleOptions::default()
    };
    let mut plans = Vec::new();
    let mut group_plans = Vec::new();
    for rt in &runtimes {
        let planned = compute_plan(rt, store.as_ref(), &options)
            .await
            .map_err(|e| anyhow::anyhow!("pair {}: {e}", rt.name()))?;
        plans.push(planned.plan);
        let groups = ctsync::engine::groups::preview_group_plan(rt, store.as_ref(), args.full)
            .await
            .map_err(|e| anyhow::anyhow!("pair {} (groups): {e}", rt.name()))?;
        group_plans.push(groups);
    }
    match args.format {
        Format::Text => {
            for (plan, groups) in plans.iter().zip(&group_plans) {
                print!("{}", plan.to_text());
                if let Some(g) = groups {
                    print!("{}", g.to_text());
                }
            }
        }
        Format::Json => {
            let values: Vec<serde_json::Value> = plans
                .iter()
                .map(|p| serde_json::from_str(&p.to_json()).unwrap_or(serde_json::Value::Null))
                .collect();
            println!("{}", serde_json::to_string_pretty(&values)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
