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

/// Publishes `files` into `dir` exactly as the kubelet's AtomicWriter updates a ConfigMap volume:
/// the data goes to a fresh `..<timestamp>` directory, `..data_tmp` is pointed at it and renamed
/// over `..data`, the visible names are symlinks into `..data` (made once), and the previous
/// timestamped directory is removed.
#[cfg(unix)]
fn kubelet_publish(dir: &std::path::Path, generation: u32, files: &[(&str, &str)]) {
    use std::os::unix::fs::symlink;
    let stamped = format!("..2026_11_29_20_00_{generation:02}.{}", 1000 + generation);
    std::fs::create_dir(dir.join(&stamped)).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(&stamped).join(name), text).unwrap();
    }
    let previous = std::fs::read_link(dir.join("..data")).ok();
    symlink(&stamped, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for (name, _) in files {
        let visible = dir.join(name);
        if std::fs::symlink_metadata(&visible).is_err() {
            symlink(format!("..data/{name}"), &visible).unwrap();
        }
    }
    if let Some(previous) = previous {
        std::fs::remove_dir_all(dir.join(previous)).unwrap();
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_configmap_update_is_reloaded_as_the_kubelet_swaps_it() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
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
    // The pair text as the world writes it, moved into a ConfigMap-style volume beside it.
    let pair_text = |scope: &str| {
        let path = world.pair_file(PAIR, CONTOSO, FABRIKAM, scope);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(path).unwrap();
        text.replace("file: secret.txt", "file: ../secret.txt")
    };
    let volume = world.dir.path().join("pairs");
    std::fs::create_dir(&volume).unwrap();
    let name = format!("{PAIR}.yaml");
    kubelet_publish(&volume, 1, &[(&name, &pair_text(SALES_SCOPE))]);

    let mut daemon = start(&world, &volume);
    let mut reloads = daemon.handle.subscribe_reloads();
    let watcher = reload::watch(
        daemon.handle.clone(),
        volume.clone(),
        daemon.shutdown.clone(),
    )
    .expect("watch");
    assert_eq!(daemon.cycle(PAIR).await.kind, CycleKind::Initial);
    assert!(world.b2b_user(FABRIKAM, "bob").await.is_none());

    // A bad ConfigMap edit: the swap is seen, the change rejected.
    let bad = pair_text(SALES_SCOPE).replace("operator: EQUALS", "operator: LIKE");
    kubelet_publish(&volume, 2, &[(&name, &bad)]);
    match next_reload(&mut reloads).await {
        ReloadOutcome::Rejected { errors } => assert!(!errors.is_empty()),
        other => panic!("accepted a bad ConfigMap: {other:?}"),
    }

    // The fix: a scope change, applied with a full cycle that brings bob in.
    kubelet_publish(
        &volume,
        3,
        &[(&name, &pair_text("  scope:\n    mode: all\n"))],
    );
    match next_reload(&mut reloads).await {
        ReloadOutcome::Applied { changed, full, .. } => {
            assert_eq!(changed, vec![PAIR.to_owned()]);
            assert_eq!(full, vec![PAIR.to_owned()]);
        }
        other => panic!("ConfigMap update not applied: {other:?}"),
    }
    assert_eq!(daemon.cycle(PAIR).await.kind, CycleKind::Initial);
    assert!(world.b2b_user(FABRIKAM, "bob").await.is_some());
    // The kubelet's own entries (`..data`, `..<timestamp>/`) are not pair files.
    assert_eq!(daemon.handle.pairs(), vec![PAIR.to_owned()]);
    daemon.stop().await;
    watcher.await.expect("watcher stops at shutdown");
}
