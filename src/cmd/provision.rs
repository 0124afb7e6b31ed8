use std::path::PathBuf;
use std::process::ExitCode;

use ctsync::engine::{provision_group_on_demand, provision_on_demand};

use super::plan::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pair file or a directory of pair files.
    #[arg(long)]
    pub config: PathBuf,
    /// The pair to provision through, by its metadata.name.
    #[arg(long)]
    pub pair: String,
    /// The source user: object id or userPrincipalName.
    #[arg(long, required_unless_present = "group", conflicts_with = "group")]
    pub user: Option<String>,
    /// A source group instead (object id or display name): the group and its members'
    /// memberships, with a per-member table.
    #[arg(long)]
    pub group: Option<String>,
    /// Show what would happen without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The SQLite state file the daemon uses.
    #[arg(long, default_value = "ctsync-state.db", env = "CTSYNC_STATE")]
    pub state: PathBuf,
    #[command(flatten)]
    pub store: super::store::StoreArgs,
}

/// On-demand provisioning of one user, with Entra's steps and the per-attribute table, or of
/// one group, with the per-member table.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut runtimes = match super::run::load_runtimes(&args.config) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    runtimes.retain(|rt| rt.name() == args.pair);
    let Some(rt) = runtimes.first() else {
        eprintln!(
            "ctsync provision: no pair named {} in {}",
            args.pair,
            args.config.display()
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    };
    if !args.dry_run && args.store.spec(&args.state).is_ok_and(|s| s.is_shared()) {
        // Writing outside the pair's lease could race the replica that runs the pair.
        eprintln!(
            "ctsync provision: with a shared store, provision through a replica's admin API \
             (POST /v1/jobs/{}/provisionOnDemand), or add --dry-run",
            args.pair
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    // A dry run writes nothing, not even an empty state file.
    let opened = if args.dry_run {
        args.store
            .open_for_reading(&args.state, "provision")
            .await?
    } else {
        args.store
            .open(&args.state)
            .await?
            .map(|(_spec, store)| store)
    };
    let store = match opened {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    if let Some(group) = &args.group {
        let report = match provision_group_on_demand(rt, store.as_ref(), group, args.dry_run).await
        {
            Ok(report) => report,
            Err(e) if e.code() == "SourceGroupNotFound" || e.code() == "SourceGroupAmbiguous" => {
                eprintln!("ctsync provision: {e}");
                return Ok(ExitCode::FAILURE);
            }
            Err(e @ ctsync::engine::EngineError::Config { .. }) => {
                eprintln!("ctsync provision: {e}; add spec.groups to the pair file to sync groups");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
            Err(e) => return Err(anyhow::anyhow!("pair {}: {e}", rt.name())),
        };
        match args.format {
            Format::Text => print!("{}", report.to_text()),
            Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        }
        return Ok(if report.succeeded == Some(false) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let Some(user) = &args.user else {
        // clap requires --user unless --group is given.
        return Ok(ExitCode::from(super::EXIT_USAGE));
    };
    let report = match provision_on_demand(rt, store.as_ref(), user, args.dry_run).await {
        Ok(report) => report,
        Err(e) if e.code() == "SourceUserNotFound" => {
            eprintln!(
                "ctsync provision: user {} was not found in the source tenant {} of pair {} \
                 (looked up by object id or userPrincipalName); check the spelling, and that \
                 the user exists there",
                user,
                rt.pair.source.tenant_id,
                rt.name()
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(anyhow::anyhow!("pair {}: {e}", rt.name())),
    };
    match args.format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.succeeded == Some(false) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
