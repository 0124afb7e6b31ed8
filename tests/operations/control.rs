use ctsync::engine::{CycleKind, JobCommand, JobState};
use ctsync::store::StateStore;
use serde_json::json;

use crate::harness::*;
use crate::world::*;

async fn retitle(world: &World, alias: &str, title: &str) {
    let id = world
        .source_id(CONTOSO, &format!("{alias}@contoso.com"))
        .await;
    world.patch(CONTOSO, &id, json!({"jobTitle": title})).await;
}

async fn target_title(world: &World, alias: &str) -> Option<String> {
    world
        .b2b_user(FABRIKAM, alias)
        .await
        .expect("synced")
        .job_title
}

#[tokio::test]
async fn pause_holds_across_a_daemon_restart_and_start_continues() {
    let world = two_tenants(sales(&["adele"])).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let mut daemon = start(&world, &file);
    let first = daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;

    daemon.command(PAIR, JobCommand::Pause).await;
    let paused = daemon
        .status_where(PAIR, |s| s.code == JobState::Paused)
        .await;
    assert_eq!(paused.last_execution, first.last_execution);
    retitle(&world, "adele", "Director").await;
    // Run-now is refused while paused; the next command's status proves it was handled.
    daemon.command(PAIR, JobCommand::RunNow).await;
    daemon.command(PAIR, JobCommand::Pause).await;
    let still = daemon
        .status_where(PAIR, |s| s.code == JobState::Paused)
        .await;
    assert_eq!(still.last_execution, first.last_execution);
    daemon.stop().await;

    // A new daemon over the same store: the job stays paused and runs no cycle.
    let mut daemon = start(&world, &file);
    assert_eq!(
        daemon.handle.status(PAIR).await.expect("pair").code,
        JobState::Paused
    );
    daemon.command(PAIR, JobCommand::Pause).await;
    let reloaded = daemon
        .status_where(PAIR, |s| s.code == JobState::Paused)
        .await;
    assert_eq!(reloaded.last_execution, first.last_execution);
    assert_ne!(
        target_title(&world, "adele").await.as_deref(),
        Some("Director")
    );

    // Start continues from the watermark: an incremental cycle picks up the change.
    daemon.command(PAIR, JobCommand::Start).await;
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Incremental);
    let active = daemon
        .status_where(PAIR, |s| s.code == JobState::Active)
        .await;
    assert!(!active.paused);
    assert_eq!(
        target_title(&world, "adele").await.as_deref(),
        Some("Director")
    );
    daemon.stop().await;
}

#[tokio::test]
async fn run_now_runs_an_incremental_cycle() {
    let world = two_tenants(sales(&["adele"])).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let mut daemon = start(&world, &file);
    assert_eq!(daemon.cycle(PAIR).await.kind, CycleKind::Initial);
    retitle(&world, "adele", "Director").await;
    daemon.command(PAIR, JobCommand::RunNow).await;
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Incremental);
    assert_eq!(report.counts["update"], 1, "{report:?}");
    daemon.stop().await;
}

/// A pair with one escrowed update; returns the daemon after the failing cycle.
async fn with_escrow(world: &World) -> Running {
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let mut daemon = start(world, &file);
    assert_eq!(daemon.cycle(PAIR).await.kind, CycleKind::Initial);
    retitle(world, "adele", "Director").await;
    fail_next(world, "PATCH", "/users/", 1).await;
    daemon.command(PAIR, JobCommand::RunNow).await;
    daemon.cycle(PAIR).await;
    assert_eq!(world.store.escrows(PAIR).await.unwrap().len(), 1);
    daemon
}

#[tokio::test]
async fn restart_watermark_reevaluates_everyone_and_keeps_escrows() {
    let world = two_tenants(sales(&["adele"])).await;
    let mut daemon = with_escrow(&world).await;
    daemon.restart(PAIR, "Watermark").await.expect("restart");
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Initial);
    // The full evaluation re-planned adele's update, which now succeeds and settles the escrow.
    assert!(world.store.escrows(PAIR).await.unwrap().is_empty());
    assert_eq!(
        target_title(&world, "adele").await.as_deref(),
        Some("Director")
    );
    daemon.stop().await;
}

#[tokio::test]
async fn restart_escrows_stops_retrying_failures_without_a_full_cycle() {
    let world = two_tenants(sales(&["adele"])).await;
    let mut daemon = with_escrow(&world).await;
    daemon.restart(PAIR, "Escrows").await.expect("restart");
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Incremental);
    assert!(world.store.escrows(PAIR).await.unwrap().is_empty());
    assert_ne!(
        target_title(&world, "adele").await.as_deref(),
        Some("Director")
    );
    daemon.stop().await;
}

#[tokio::test]
async fn restart_with_empty_criteria_is_the_portal_restart_and_full_does_everything() {
    let world = two_tenants(sales(&["adele"])).await;
    let mut daemon = with_escrow(&world).await;
    daemon.restart(PAIR, "").await.expect("restart");
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Initial);
    assert!(world.store.escrows(PAIR).await.unwrap().is_empty());

    revoke_credentials(&world).await;
    daemon.run_now(PAIR).await;
    restore_credentials(&world).await;
    daemon.restart(PAIR, "Full").await.expect("restart");
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Initial);
    let status = daemon.handle.status(PAIR).await.expect("pair");
    assert!(status.quarantine.is_none());
    assert_eq!(status.code, JobState::Active);

    assert!(daemon.restart(PAIR, "Watermark,Bogus").await.is_err());
    assert!(daemon.restart(PAIR, "ConnectorDataStore").await.is_err());
    daemon.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_the_entry_in_flight_and_does_not_save_the_watermark() {
    // More users than the executor has in flight at once (4 chunks of 20), so that shutdown
    // lands mid-cycle: the chunks in flight finish and are recorded, no new one starts.
    let names: Vec<String> = (0..120).map(|i| format!("u{i}")).collect();
    let aliases: Vec<&str> = names.iter().map(String::as_str).collect();
    let world = two_tenants(sales(&aliases)).await;
    // Slow target: each create takes a while, so shutdown lands mid-cycle.
    control(
        &world,
        reqwest::Method::PUT,
        &format!("/_emulator/tenants/{FABRIKAM}/faults"),
        Some(json!({"latencyMs": 20})),
    )
    .await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let daemon = start(&world, &file);
    let query = ctsync::store::LogQuery::default();
    // Wait for the first recorded entry, then stop.
    loop {
        if !world
            .store
            .provisioning_log(PAIR, &query)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    daemon.stop().await;
    control(&world, reqwest::Method::DELETE, "/_emulator/faults", None).await;
    let logged = world.store.provisioning_log(PAIR, &query).await.unwrap();
    assert!(logged.len() < aliases.len(), "the cycle was not cut short");
    // Every user created in the target was recorded, none half-way.
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), logged.len());
    assert_eq!(
        world.store.managed_users(PAIR).await.unwrap().len(),
        logged.len()
    );
    assert!(world.store.watermark(PAIR).await.unwrap().is_none());
}
