//! `ctsync demo`: the embedded Graph emulator seeded from `config/demo/`, a hub-and-spoke
//! topology, and a script of source changes, each followed by a cycle of every pair, so that
//! creates, updates, disables, soft deletes and restores scroll by in the log, and the Sales
//! Team group appears in Fabrikam with its membership following Megan out of scope and back.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ctsync::config::GraphEndpoints;
use ctsync::emulator::{self, EmulatorOptions, Seed};
use ctsync::engine::{CycleOptions, PairRuntime, run_cycle};
use ctsync::graph::{ClientCredential, GraphClient, GraphClientPool, GraphSettings};
use ctsync::store::{
    LogQuery, ProvisioningAction, ProvisioningLogEntry, ProvisioningResult, SqliteStore, StateStore,
};
use secrecy::SecretString;
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The demo folder: `seed.yaml`, `pairs/`, `demo-secret.txt`.
    #[arg(long, default_value = "config/demo")]
    pub dir: PathBuf,
    /// Pause between the scripted steps.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub pause: Duration,
}

const HUB: &str = "11111111-1111-4111-8111-111111111111";

/// One scripted change in the hub.
struct Step {
    title: &'static str,
    method: reqwest::Method,
    path: &'static str,
    body: Option<Value>,
}

fn script() -> Vec<Step> {
    let patch = |title, path, body| Step {
        title,
        method: reqwest::Method::PATCH,
        path,
        body: Some(body),
    };
    vec![
        patch(
            "Adele Vance is promoted: her new title flows to Fabrikam",
            "users/00000000-0000-4000-8000-0000000000a1",
            json!({"jobTitle": "Senior Account Executive"}),
        ),
        patch(
            "Alex Wilber's account is disabled: blocked in Northwind, not deleted",
            "users/00000000-0000-4000-8000-0000000000a3",
            json!({"accountEnabled": false}),
        ),
        patch(
            "Megan Bowen moves to Marketing: out of scope, soft-deleted in Fabrikam and out of its Sales Team group",
            "users/00000000-0000-4000-8000-0000000000a2",
            json!({"department": "Marketing"}),
        ),
        patch(
            "Megan Bowen returns to Sales: restored in Fabrikam, same object id, back in Sales Team",
            "users/00000000-0000-4000-8000-0000000000a2",
            json!({"department": "Sales"}),
        ),
        Step {
            title: "Lynne Robbins leaves Contoso: soft-deleted in Northwind",
            method: reqwest::Method::DELETE,
            path: "users/00000000-0000-4000-8000-0000000000a4",
            body: None,
        },
    ]
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let seed = match Seed::from_file(&args.dir.join("seed.yaml")) {
        Ok(seed) => seed,
        Err(e) => {
            eprintln!("ctsync demo: {e} (run it from the repository root, or pass --dir)");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let emulator = emulator::spawn(seed, EmulatorOptions::default()).await?;
    let base = emulator.base_url();
    tracing::info!(base_url = %base, "demo: embedded Graph emulator ready");

    let mut topology = match ctsync::config::load(&args.dir.join("pairs")) {
        Ok(t) => t,
        Err(e) => {
            for problem in &e.problems {
                eprintln!("{problem}");
            }
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let pool = GraphClientPool::new();
    let mut runtimes = Vec::new();
    for mut pair in topology.pairs.drain(..) {
        pair.graph = GraphEndpoints {
            authority: base.clone(),
            base_url: base.clone(),
        };
        runtimes.push(PairRuntime::with_pool(pair, &pool)?);
    }
    let store = SqliteStore::open_in_memory()?;
    let secret = std::fs::read_to_string(args.dir.join("demo-secret.txt"))?;
    let hub_admin = GraphClient::new(
        HUB,
        &runtimes
            .first()
            .map(|rt| rt.pair.source.credentials.client_id.clone())
            .unwrap_or_default(),
        ClientCredential::Secret(SecretString::from(secret.trim().to_owned())),
        GraphSettings {
            authority: base.clone(),
            base_url: base.clone(),
            ..GraphSettings::default()
        },
    )?;

    tracing::info!(step = 0, "demo: initial cycle of every pair");
    let mut failed = false;
    for rt in &runtimes {
        failed |= cycle(rt, &store).await;
    }
    for (number, step) in script().into_iter().enumerate() {
        tokio::time::sleep(args.pause).await;
        tracing::info!(step = number + 1, "demo: {}", step.title);
        hub_admin
            .send(step.method, step.path, &[], step.body.as_ref(), 1)
            .await?;
        for rt in &runtimes {
            failed |= cycle(rt, &store).await;
        }
    }
    emulator.shutdown().await?;
    tracing::info!("demo: done");
    println!("demo summary: what each pair did, by name");
    for rt in &runtimes {
        let logs = store
            .provisioning_log(
                rt.name(),
                &LogQuery {
                    limit: Some(u32::MAX),
                    ..LogQuery::default()
                },
            )
            .await?;
        print!("{}", summary(rt.name(), &logs));
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one cycle; returns true when it failed.
async fn cycle(rt: &PairRuntime, store: &SqliteStore) -> bool {
    match run_cycle(rt, store, &CycleOptions::default()).await {
        Ok(report) => report.failed > 0,
        Err(e) => {
            tracing::error!(pair = rt.name(), error = %e, "demo: cycle failed");
            true
        }
    }
}

/// The closing summary of one pair: what was done, by name, per kind of action.
fn summary(pair: &str, logs: &[ProvisioningLogEntry]) -> String {
    let kinds = [
        "created", "updated", "disabled", "deleted", "restored", "staged", "failed",
    ];
    let mut names: Vec<Vec<String>> = vec![Vec::new(); kinds.len()];
    let mut groups = Vec::new();
    for log in logs {
        if log.source_identity.identity_type == "Group" {
            groups.push(group_line(log));
            continue;
        }
        let plan_action = log
            .target_system
            .details
            .get("planAction")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = match (
            log.provisioning_status_info.status,
            log.provisioning_action,
            plan_action,
        ) {
            (ProvisioningResult::Failure, _, _) => "failed",
            (_, ProvisioningAction::Create, _) => "created",
            (_, ProvisioningAction::Update, "restore") => "restored",
            (_, ProvisioningAction::Update, _) => "updated",
            (_, ProvisioningAction::Disable, _) => "disabled",
            (_, ProvisioningAction::Delete, _) => "deleted",
            (_, ProvisioningAction::StagedDelete, _) => "staged",
            _ => continue,
        };
        if let Some(i) = kinds.iter().position(|k| *k == kind) {
            names[i].push(log.source_identity.display_name.clone());
        }
    }
    let mut out = format!("{pair}\n");
    for (kind, who) in kinds.iter().zip(&names) {
        if who.is_empty() && matches!(*kind, "staged" | "failed") {
            continue;
        }
        out.push_str(format!("  {kind:<9} {:>2}  {}\n", who.len(), who.join(", ")).trim_end());
        out.push('\n');
    }
    if !groups.is_empty() {
        out.push_str(&format!(
            "  groups    {:>2}  {}\n",
            groups.len(),
            groups.join("; ")
        ));
    }
    out
}

/// One group action in the summary: `Sales Team: create +Megan Bowen`.
fn group_line(log: &ProvisioningLogEntry) -> String {
    let details = &log.target_system.details;
    let action = details
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut line = format!("{}: {action}", log.source_identity.display_name);
    if log.provisioning_status_info.status == ProvisioningResult::Failure {
        line.push_str(" (failed)");
    }
    for (key, sign) in [("membersAdded", '+'), ("membersRemoved", '-')] {
        for name in details
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            line.push_str(&format!(" {sign}{name}"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_who_was_created_disabled_and_restored() {
        let log = |action: &str, plan: &str, name: &str| -> ProvisioningLogEntry {
            serde_json::from_value(json!({
                "id": "x", "activityDateTime": "2026-01-01T00:00:00Z", "tenantId": "t",
                "jobId": "p", "cycleId": "c", "changeId": "c", "durationInMilliseconds": 1,
                "provisioningAction": action,
                "provisioningStatusInfo": {"status": "success"},
                "initiatedBy": {"id": "", "displayName": "ctsync", "initiatorType": "system"},
                "sourceIdentity": {"id": "s", "displayName": name, "identityType": "User"},
                "targetIdentity": {"id": "t", "displayName": name, "identityType": "User"},
                "sourceSystem": {"id": "s", "displayName": "s"},
                "targetSystem": {"id": "t", "displayName": "t", "details": {"planAction": plan}},
            }))
            .expect("log entry")
        };
        let text = summary(
            "contoso-to-fabrikam",
            &[
                log("create", "create", "Adele Vance"),
                log("create", "create", "Megan Bowen"),
                log("disable", "update", "Alex Wilber"),
                log("update", "restore", "Megan Bowen"),
            ],
        );
        assert_eq!(
            text,
            "contoso-to-fabrikam\n  created    2  Adele Vance, Megan Bowen\n  updated    0\n  \
             disabled   1  Alex Wilber\n  deleted    0\n  restored   1  Megan Bowen\n"
        );
    }
}
