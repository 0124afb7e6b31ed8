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
use ctsync::store::SqliteStore;
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
