use ctsync::engine::escrow::backoff;
use ctsync::store::StateStore;
use serde_json::json;

use crate::harness::*;
use crate::world::*;

/// adele is synced, then her title changes in the source and the target refuses the update.
async fn failed_update(time_scale: &str) -> (World, Running, String) {
    let world = two_tenants(sales(&["adele"])).await;
    let file = world.pair_file(
        PAIR,
        CONTOSO,
        FABRIKAM,
        &format!("{SALES_SCOPE}  quarantine:\n    timeScale: {time_scale}\n"),
    );
    let mut daemon = start(&world, &file);
    daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(CONTOSO, &adele, json!({"jobTitle": "Director"}))
        .await;
    fail_next(&world, "PATCH", "/users/", 1).await;
    let failed = daemon.run_now(PAIR).await;
    assert_eq!(failed.last_execution.expect("ran").count_escrowed, 1);
    (world, daemon, adele)
}

#[tokio::test]
async fn an_escrow_waits_for_its_backoff_and_is_reported_every_cycle() {
    let (world, mut daemon, _) = failed_update("1").await;
    let escrows = world.store.escrows(PAIR).await.unwrap();
    assert_eq!(escrows.len(), 1);
    let e = &escrows[0];
    assert_eq!(e.attempts, 1);
    assert_eq!(e.next_retry_at - e.last_failed_at, backoff(1, 1.0));
    assert_eq!(e.last_error.code, "Request_BadRequest");

    // Not due for 40 minutes: a cycle now does not retry it, and it stays reported.
    let later = daemon.run_now(PAIR).await;
    let execution = later.last_execution.expect("ran");
    assert_eq!(execution.count_escrowed, 1);
    assert_eq!(execution.state, "EntryLevelErrors");
    assert_eq!(world.store.escrows(PAIR).await.unwrap()[0].attempts, 1);
    let adele = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert_ne!(adele.job_title.as_deref(), Some("Director"));
    daemon.stop().await;
}

#[tokio::test]
async fn a_due_escrow_is_retried_with_growing_backoff_and_removed_on_success() {
    // Backoff scaled to milliseconds: every cycle after the first failure finds it due.
    let (world, mut daemon, _) = failed_update("0.00001").await;
    // The retry fails once more: attempts grow, the first failure is kept, the delay doubles.
    fail_next(&world, "PATCH", "/users/", 1).await;
    let first = world.store.escrows(PAIR).await.unwrap()[0].clone();
    let mut second = first.clone();
    for _ in 0..50 {
        daemon.run_now(PAIR).await;
        second = world.store.escrows(PAIR).await.unwrap()[0].clone();
        if second.attempts > 1 {
            break;
        }
    }
    assert_eq!(second.attempts, 2);
    assert_eq!(second.first_failed_at, first.first_failed_at);
    assert_eq!(
        second.next_retry_at - second.last_failed_at,
        backoff(2, 0.00001)
    );
    // Then it succeeds: the target has the change and the escrow is gone.
    let mut status = None;
    for _ in 0..50 {
        let s = daemon.run_now(PAIR).await;
        if world.store.escrows(PAIR).await.unwrap().is_empty() {
            status = Some(s);
            break;
        }
    }
    let status = status.expect("the escrow was retried and removed");
    assert_eq!(status.last_execution.expect("ran").count_escrowed, 0);
    let adele = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert_eq!(adele.job_title.as_deref(), Some("Director"));
    daemon.stop().await;
}
