//! Running past one machine: the PostgreSQL store from the real binary, moving an installation
//! from SQLite (`migrate-store`), and several replicas sharing pairs through leases.
//! Tests need `CTSYNC_TEST_POSTGRES_URL` and report a skip without it.

#[allow(dead_code)]
#[path = "../sync/world.rs"]
mod world;

mod outage;
mod pg;
mod three;

use std::process::Output;

use serde_json::{Value, json};
use world::*;

fn ctsync() -> std::process::Command {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("ctsync"));
    command.env("RUST_LOG", "warn");
    command
}

async fn output(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("ctsync runs"))
        .await
        .expect("joined")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Entries of `ctsync plan --full --format json`: how many, and those that would write
/// (anything but a skip).
async fn full_plan(config: &std::path::Path, store_args: &[String]) -> (usize, Vec<Value>) {
    let mut command = ctsync();
    command
        .args(["plan", "--full", "--format", "json", "--config"])
        .arg(config)
        .args(store_args);
    let out = output(command).await;
    assert!(out.status.success(), "plan: {}", stderr(&out));
    let plans: Vec<Value> = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let entries: Vec<Value> = plans
        .iter()
        .flat_map(|p| p["entries"].as_array().cloned().unwrap_or_default())
        .collect();
    let total = entries.len();
    let writing = entries
        .into_iter()
        .filter(|e| e["action"] != "skip")
        .collect();
    (total, writing)
}

fn sales_people(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            user(
                &format!("p{i:02}"),
                "contoso.com",
                json!({"department": "Sales"}),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_on_postgres_and_its_next_full_plan_is_quiet() {
    let Some(db) = pg::PgSchema::new("daemon_on_postgres") else {
        return;
    };
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, sales_people(6))],
    ))
    .await;
    let file = world.pair_file("pg", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let mut run = World::run_command(&file, &world.dir.path().join("unused.db"));
    run.arg("--once").args(db.args()).env("RUST_LOG", "warn");
    let out = output(run).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !world.dir.path().join("unused.db").exists(),
        "--store wins over --state"
    );
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 6);

    // The links live in PostgreSQL: a full re-read finds nothing to write.
    let store = db.store().await;
    use ctsync::store::StateStore;
    assert_eq!(store.managed_users("pg").await.unwrap().len(), 6);
    assert!(store.watermark("pg").await.unwrap().is_some());
    assert_eq!(full_plan(&file, &db.args()).await, (6, Vec::<Value>::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_password_never_reaches_the_output() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, sales_people(1))],
    ))
    .await;
    let file = world.pair_file("pw", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    // Nothing listens on port 1; the connection string comes from a file, as from a Secret.
    let secret_file = world.dir.path().join("store-url");
    std::fs::write(
        &secret_file,
        "postgres://ctsync:Canary-Pw-7731@127.0.0.1:1/ctsync\n",
    )
    .unwrap();
    let mut run = World::run_command(&file, &world.dir.path().join("state.db"));
    run.arg("--once")
        .arg("--store-file")
        .arg(&secret_file)
        .env("RUST_LOG", "debug");
    let out = output(run).await;
    assert!(!out.status.success());
    let text = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("127.0.0.1:1/ctsync"), "{text}");
    assert!(!text.contains("Canary-Pw-7731"), "{text}");

    // A malformed connection string is a usage error (exit 2), also without the password.
    let mut run = World::run_command(&file, &world.dir.path().join("state.db"));
    run.arg("--once")
        .args(["--store", "postgres://ctsync:Canary-Pw-7731@db:notaport/x"]);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Canary-Pw-7731"), "{}", stderr(&out));
}

/// `migrate-store` round trip: an installation that ran on SQLite moves to PostgreSQL, and its
/// next cycle there is a quiet one (no write, no new log entry, the same target users).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_installation_moves_to_postgres_and_its_next_cycle_is_quiet() {
    let Some(db) = pg::PgSchema::new("migrate_round_trip") else {
        return;
    };
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, sales_people(5))],
    ))
    .await;
    let file = world.pair_file("moved", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let state = world.dir.path().join("state.db");
    let mut run = World::run_command(&file, &state);
    run.arg("--once").env("RUST_LOG", "warn");
    let out = output(run).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let before = world.b2b_users(FABRIKAM).await;
    assert_eq!(before.len(), 5);

    let mut migrate = ctsync();
    migrate
        .arg("migrate-store")
        .arg("--from")
        .arg(format!("sqlite:{}", state.display()))
        .args(["--to", &db.url, "--to-schema", &db.schema]);
    let out = output(migrate).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("moved: 5 managed users") && printed.contains("watermark copied"),
        "{printed}"
    );

    use ctsync::store::{LogQuery, StateStore};
    let store = db.store().await;
    let logged = store
        .provisioning_log("moved", &LogQuery::default())
        .await
        .unwrap()
        .len();
    assert!(logged >= 5, "the creates' log entries moved too ({logged})");
    assert_eq!(full_plan(&file, &db.args()).await, (5, Vec::<Value>::new()));

    let mut run = World::run_command(&file, &world.dir.path().join("unused.db"));
    run.arg("--once").args(db.args()).env("RUST_LOG", "warn");
    let out = output(run).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        store
            .provisioning_log("moved", &LogQuery::default())
            .await
            .unwrap()
            .len(),
        logged,
        "the first cycle on PostgreSQL wrote nothing"
    );
    let after = world.b2b_users(FABRIKAM).await;
    assert_eq!(
        serde_json::to_value(&before).unwrap(),
        serde_json::to_value(&after).unwrap()
    );

    // Moving into a store that already holds pairs is refused (exit 2).
    let mut again = ctsync();
    again
        .arg("migrate-store")
        .arg("--from")
        .arg(format!("sqlite:{}", state.display()))
        .args(["--to", &db.url, "--to-schema", &db.schema]);
    let out = output(again).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already holds"), "{}", stderr(&out));
}
