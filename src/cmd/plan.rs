use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use ctsync::engine::daemon::full_reconcile_due;
use ctsync::engine::{CycleKind, CycleOptions, compute_plan};
use ctsync::store::StateStore;

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
/// nothing: no Graph write (the preflight only checks), no state file created.
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
    // A plan writes nothing, not even an empty state file.
    let store: Arc<dyn StateStore> = match args.store.open_for_reading(&args.state, "plan").await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let mut plans = Vec::new();
    let mut group_plans = Vec::new();
    for rt in &runtimes {
        eprintln!("ctsync plan: reading {} ...", rt.name());
        // As the daemon decides: the periodic full reconcile when `fullSyncInterval` has
        // passed since the last one.
        // Without a watermark the next cycle is the initial one whatever the status says.
        let reconcile = !args.full
            && full_reconcile_due(store.as_ref(), rt.name(), chrono::Utc::now())
                .await
                .map_err(|e| anyhow::anyhow!("pair {}: {e}", rt.name()))?;
        let full = args.full || reconcile;
        let options = CycleOptions {
            full,
            preview: true,
            ..CycleOptions::default()
        };
        let planned = compute_plan(rt, store.as_ref(), &options)
            .await
            .map_err(|e| anyhow::anyhow!("pair {}: {e}", rt.name()))?;
        plans.push((cycle_kind(planned.kind, args.full, reconcile), planned.plan));
        let groups = ctsync::engine::groups::preview_group_plan(rt, store.as_ref(), full)
            .await
            .map_err(|e| anyhow::anyhow!("pair {} (groups): {e}", rt.name()))?;
        group_plans.push(groups);
    }
    match args.format {
        Format::Text => {
            for ((kind, plan), groups) in plans.iter().zip(&group_plans) {
                println!("next cycle: {}", kind.describe());
                print!("{}", plan.to_text());
                if let Some(g) = groups {
                    print!("{}", g.to_text());
                }
            }
        }
        Format::Json => {
            let mut values = Vec::with_capacity(plans.len());
            for ((kind, p), groups) in plans.iter().zip(&group_plans) {
                let mut value: serde_json::Value = serde_json::from_str(&p.to_json())?;
                if let serde_json::Value::Object(map) = &mut value {
                    map.insert("cycle".into(), serde_json::Value::from(kind.as_str()));
                    // `null` when the pair does not sync groups.
                    map.insert("groups".into(), serde_json::to_value(groups)?);
                }
                values.push(value);
            }
            println!("{}", serde_json::to_string_pretty(&values)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the next cycle is, as the header says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextCycle {
    /// No watermark: the first cycle, or one after a reset.
    Initial,
    /// Changes since the watermark.
    Incremental,
    /// Asked for (`--full`): everything read again although a watermark exists.
    Full,
    /// The periodic full reconcile: `fullSyncInterval` has passed since the last one.
    Reconcile,
}

impl NextCycle {
    fn as_str(self) -> &'static str {
        match self {
            NextCycle::Initial => "initial",
            NextCycle::Incremental => "incremental",
            NextCycle::Full | NextCycle::Reconcile => "full",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            NextCycle::Initial => "initial (no watermark: every source user is read)",
            NextCycle::Incremental => "incremental (the changes since the last cycle)",
            NextCycle::Full => "full (--full: every source user is read again)",
            NextCycle::Reconcile => {
                "full (the full reconcile is due: fullSyncInterval has passed; source and \
                 target are read again)"
            }
        }
    }
}

/// `asked`: `--full`; `reconcile`: the full reconcile is due. A full cycle reports itself as
/// `Initial`, so these tell a first cycle (no watermark) from a full one.
fn cycle_kind(kind: CycleKind, asked: bool, reconcile: bool) -> NextCycle {
    match kind {
        CycleKind::Incremental => NextCycle::Incremental,
        CycleKind::Initial if asked => NextCycle::Full,
        CycleKind::Initial if reconcile => NextCycle::Reconcile,
        CycleKind::Initial => NextCycle::Initial,
    }
}
