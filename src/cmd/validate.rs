//! `ctsync validate --config PATH`: reports every configuration problem with file:line:column
//! and exits 2, or prints one line per pair.

use std::path::PathBuf;
use std::process::ExitCode;

use ctsync::config::{self, CredentialSource, ScopeMode, SyncPair};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pair file, or a directory of *.yaml files (one topology).
    #[arg(long, env = "CTSYNC_CONFIG")]
    config: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match config::load(&args.config) {
        Ok(topology) => {
            for pair in &topology.pairs {
                println!("{}", summary(pair));
            }
            println!(
                "ok: {} pair(s), {} topology",
                topology.pairs.len(),
                topology.kind()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            for problem in &err.problems {
                println!("{problem}");
            }
            eprintln!("{} problem(s) found", err.problems.len());
            Ok(ExitCode::from(super::EXIT_USAGE))
        }
    }
}

fn summary(p: &SyncPair) -> String {
    let scope = match p.scope.mode {
        ScopeMode::All => "all members".to_owned(),
        ScopeMode::Assigned => {
            let mut parts = Vec::new();
            if p.scope.service_principal_id.is_some() {
                parts.push("app assignments".to_owned());
            }
            if !p.scope.users.is_empty() {
                parts.push(format!("{} user(s)", p.scope.users.len()));
            }
            if !p.scope.groups.is_empty() {
                parts.push(format!("{} group(s)", p.scope.groups.len()));
            }
            format!("assigned ({})", parts.join(", "))
        }
    };
    let auth = |c: &config::Credentials| match c.source {
        CredentialSource::FederatedTokenFile(_) => "federated",
        _ => "secret",
    };
    format!(
        "{}: {} -> {}, scope {}{}, mappings {}, deprovision {}, every {}, {}:{} [source auth {}, target auth {}]",
        p.name,
        p.source.tenant_id,
        p.target.tenant_id,
        scope,
        match p.scope.filters.len() {
            0 => String::new(),
            n => format!(" + {n} filter(s)"),
        },
        match &p.mappings {
            None => "default".to_owned(),
            Some(m) => format!("{} custom", m.len()),
        },
        p.deprovision.as_str(),
        humantime::format_duration(p.interval),
        p.origin.file.display(),
        p.origin.line,
        auth(&p.source.credentials),
        auth(&p.target.credentials),
    )
}
