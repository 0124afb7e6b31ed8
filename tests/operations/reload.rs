use ctsync::engine::reload::{self, ReloadOutcome};
use ctsync::engine::{CycleKind, JobCommand};
use tokio::sync::broadcast;

use crate::harness::*;
use crate::world::*;

async fn next_reload(rx: &mut broadcast::Receiver<ReloadOutcome>) -> ReloadOutcome {
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            match rx.recv().await {
                Ok(ReloadOutcome::Unchanged) => {}
                Ok(outcome) => return outcome,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("reload stream ended: {e}"),
            }
        }
    })
    .await
    .expect("the watcher never reloaded")
}

#[test]
fn the_quarantine_block_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    let write = |extra: &str| {
        let path = dir.path().join("p.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: ctsync.io/v1\nkind: SyncPair\nmetadata:\n  name: p\nspec:\n  source:\n    tenantId: {CONTOSO}\n    credentials:\n      clientId: {APP}\n      clientSecret: {{ file: secret.txt }}\n  target:\n    tenantId: {FABRIKAM}\n    credentials:\n      clientId: {APP}\n      clientSecret: {{ file: secret.txt }}\n  scope:\n    mode: all\n{extra}"
            ),
        )
        .unwrap();
        ctsync::config::load(&path)
    };
    let ok = write(
        "  quarantine:\n    minFailures: 10\n    failurePercentage: 50\n    timeScale: 0.5\n",
    )
    .expect("valid");
    let q = ok.pairs[0].quarantine;
    assert_eq!(
        (q.min_failures, q.failure_percentage, q.time_scale),
        (10, 50.0, 0.5)
    );
    assert_eq!(q.total_failures, 40_000);
    let defaults = write("").expect("valid");
    assert_eq!(defaults.pairs[0].quarantine.min_failures, 5_000);
    assert!(write("  quarantine:\n    timeScale: 0\n").is_err());
    assert!(write("  quarantine:\n    failurePercentage: 140\n").is_err());
    assert!(write("  quarantine:\n    minFailure: 3\n").is_err());
}

#[tokio::test]
async fn hot_reload_applies_a_good_change_rejects_a_bad_one_and_follows_added_and_removed_pairs() {
    let world = World::start(seed(
        &[
            (CONTOSO, "contoso.com"),
            (FABRIKAM, "fabrikam.com"),
            (NORTHWIND, "northwind.com"),
        ],
        &[(
            CONTOSO,
            vec![
                user(
                    "adele",
                    "contoso.com",
                    serde_json::json!({"department": "Sales"}),
                ),
                user(
                    "bob",
                    "contoso.com",
                    serde_json::json!({"department": "Engineering"}),
                ),
            ],
        )],
    ))
    .await;
    world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let config = world.dir.path().to_path_buf();
    let mut daemon = start(&world, &config);
    let mut reloads = daemon.handle.subscribe_reloads();
    let watcher = reload::watch(
        daemon.handle.clone(),
        config.clone(),
        daemon.shutdown.clone(),
    )
    .expect("watch");
    assert_eq!(daemon.cycle(PAIR).await.kind, CycleKind::Initial);
    assert!(world.b2b_user(FABRIKAM, "bob").await.is_none());

    // A bad edit: rejected, logged, and the job keeps running its last good configuration.
    let path = world.dir.path().join(format!("{PAIR}.yaml"));
    let good_text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good_text.replace("operator: EQUALS", "operator: LIKE"),
    )
    .unwrap();
    match next_reload(&mut reloads).await {
        ReloadOutcome::Rejected { errors } => assert!(!errors.is_empty()),
        other => panic!("accepted a bad file: {other:?}"),
    }
    daemon.command(PAIR, JobCommand::RunNow).await;
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Incremental);
    assert!(world.b2b_user(FABRIKAM, "bob").await.is_none());

    // A good scope change: accepted, and it starts a full cycle that brings bob in.
    world.pair_file(PAIR, CONTOSO, FABRIKAM, "  scope:\n    mode: all\n");
    match next_reload(&mut reloads).await {
        ReloadOutcome::Applied { changed, full, .. } => {
            assert_eq!(changed, vec![PAIR.to_owned()]);
            assert_eq!(full, vec![PAIR.to_owned()]);
        }
        other => panic!("good change not applied: {other:?}"),
    }
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Initial);
    assert!(world.b2b_user(FABRIKAM, "bob").await.is_some());

    // A new pair file starts a job; deleting it stops the job.
    let other = "contoso-to-northwind";
    let other_file = world.pair_file(other, CONTOSO, NORTHWIND, SALES_SCOPE);
    match next_reload(&mut reloads).await {
        ReloadOutcome::Applied { added, .. } => assert_eq!(added, vec![other.to_owned()]),
        outcome => panic!("pair not added: {outcome:?}"),
    }
    assert_eq!(daemon.cycle(other).await.kind, CycleKind::Initial);
    assert!(world.b2b_user(NORTHWIND, "adele").await.is_some());
    std::fs::remove_file(&other_file).unwrap();
    match next_reload(&mut reloads).await {
        ReloadOutcome::Applied { removed, .. } => assert_eq!(removed, vec![other.to_owned()]),
        outcome => panic!("pair not removed: {outcome:?}"),
    }
    assert_eq!(daemon.handle.pairs(), vec![PAIR.to_owned()]);
    daemon.stop().await;
    watcher.await.expect("watcher stops at shutdown");
}
