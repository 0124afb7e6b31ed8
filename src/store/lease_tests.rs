//! Leases and fencing on PostgreSQL: takeover only after expiry, a new epoch each time, stale
//! writes refused and recorded, renewals that report a lost lease, history without overlap.

use std::time::Duration;

use serde_json::json;

use super::harness::Harness;
use super::*;
use crate::plan::{Anchor, ManagedUser};

async fn pg(test: &str) -> Option<(Harness, PostgresStore)> {
    let h = Harness::postgres(test)?;
    let Harness::Postgres { url, schema } = &h else {
        return None;
    };
    let store = PostgresStore::connect(&PostgresOptions {
        url: secrecy::SecretString::from(url.clone()),
        schema: Some(schema.clone()),
    })
    .await
    .expect("store");
    Some((h, store))
}

fn user(n: u32) -> ManagedUser {
    ManagedUser {
        anchor: Anchor::new("t", &format!("u{n}")),
        target_id: format!("target-{n}"),
        last_exported: Default::default(),
        disabled_before_scope_exit: false,
        soft_deleted_by_us_at: None,
    }
}

fn fence(holder: &str, epoch: i64) -> Fence {
    Fence {
        holder: holder.into(),
        epoch,
    }
}

fn pairs(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("pair-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_the_old_holder_is_fenced() {
    let Some((_h, store)) = pg("lease_takeover").await else {
        return;
    };
    let short = Duration::from_millis(1500);
    let all = pairs(3);
    let r1 = store.acquire("r1", &all, 10, short).await.unwrap();
    assert_eq!(r1.len(), 3);
    assert!(
        r1.iter()
            .all(|a| a.lease.epoch == 1 && a.taken_from.is_none())
    );
    assert!(
        store
            .acquire("r2", &all, 10, short)
            .await
            .unwrap()
            .is_empty(),
        "held leases are not taken"
    );
    store
        .commit_fenced(
            "pair-0",
            &fence("r1", 1),
            vec![StoreWrite::PutManaged(user(1))],
        )
        .await
        .unwrap();

    // r1 stops renewing; once the lease expired r2 takes the pair at epoch 2.
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    let r2 = store.acquire("r2", &all[..1], 10, short).await.unwrap();
    assert_eq!(r2.len(), 1);
    assert_eq!(r2[0].lease.epoch, 2);
    assert_eq!(r2[0].taken_from.as_deref(), Some("r1"));

    // r1 wakes up: every write is refused and nothing lands.
    let stale = store
        .commit_fenced(
            "pair-0",
            &fence("r1", 1),
            vec![StoreWrite::PutManaged(user(2))],
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Fenced { epoch: 1, .. })),
        "{stale:?}"
    );
    let w = Watermark {
        delta_link: "stale".into(),
        saved_at: chrono::Utc::now(),
    };
    assert!(matches!(
        store
            .save_watermark_fenced("pair-0", &fence("r1", 1), &w)
            .await,
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        store
            .clear_watermark_fenced("pair-0", &fence("r1", 1))
            .await,
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(store.managed_users("pair-0").await.unwrap(), vec![user(1)]);
    assert_eq!(store.watermark("pair-0").await.unwrap(), None);
    assert_eq!(
        store.fencing_refusals().await.unwrap(),
        vec![
            ("pair-0".to_owned(), "r1".to_owned(), 1),
            ("pair-0".to_owned(), "r1".to_owned(), 1),
            ("pair-0".to_owned(), "r1".to_owned(), 1)
        ]
    );
    // The new holder writes.
    store
        .commit_fenced(
            "pair-0",
            &fence("r2", 2),
            vec![StoreWrite::PutManaged(user(3))],
        )
        .await
        .unwrap();

    // r1's renewal tells it which leases it lost; the others (expired, not taken) it keeps.
    let held: Vec<Lease> = r1.iter().map(|a| a.lease.clone()).collect();
    let kept = store.renew("r1", &held, short).await.unwrap();
    let mut kept_pairs: Vec<String> = kept.into_iter().map(|l| l.pair).collect();
    kept_pairs.sort();
    assert_eq!(kept_pairs, ["pair-1", "pair-2"]);

    // History: epoch 1 of pair-0 ended before epoch 2 began.
    let history = store.lease_history().await.unwrap();
    let pair0: Vec<&LeaseEpoch> = history.iter().filter(|e| e.pair == "pair-0").collect();
    assert_eq!(pair0.len(), 2);
    assert_eq!(pair0[0].ended.as_deref(), Some("expired"));
    assert!(pair0[0].valid_until < pair0[1].acquired_at, "{pair0:?}");
    assert_eq!(pair0[1].previous_holder.as_deref(), Some("r1"));

    let infos = store.leases().await.unwrap();
    assert_eq!(infos[0].holder.as_deref(), Some("r2"));
    assert_eq!(infos[0].epoch, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_is_free_at_once_and_commands_reach_the_holder_once() {
    let Some((_h, store)) = pg("lease_release").await else {
        return;
    };
    let long = Duration::from_secs(60);
    let all = pairs(2);
    let got = store.acquire("r1", &all, 1, long).await.unwrap();
    assert_eq!(got.len(), 1, "at most max");
    let lease = got[0].lease.clone();
    store.release("r1", &lease).await.unwrap();
    let again = store
        .acquire("r2", std::slice::from_ref(&lease.pair), 5, long)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].taken_from, None, "a release is not a takeover");
    assert!(matches!(
        store
            .commit_fenced(
                &lease.pair,
                &fence("r1", lease.epoch),
                vec![StoreWrite::ClearEscrows]
            )
            .await,
        Err(StoreError::Fenced { .. })
    ));

    store
        .queue_command("pair-0", &json!({"pause": true}))
        .await
        .unwrap();
    store
        .queue_command("pair-1", &json!({"runNow": true}))
        .await
        .unwrap();
    store
        .queue_command("pair-0", &json!({"start": true}))
        .await
        .unwrap();
    let taken = store.take_commands(&["pair-0".into()]).await.unwrap();
    assert_eq!(
        taken.iter().map(|c| c.command.clone()).collect::<Vec<_>>(),
        vec![json!({"pause": true}), json!({"start": true})]
    );
    assert!(
        store
            .take_commands(&["pair-0".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.take_commands(&all).await.unwrap().len(), 1);

    let live = store
        .heartbeat(
            "r1",
            Duration::from_secs(30),
            &json!({"admin": "127.0.0.1:1"}),
        )
        .await
        .unwrap();
    assert_eq!(live, ["r1"]);
    let live = store
        .heartbeat("r2", Duration::from_secs(30), &json!({}))
        .await
        .unwrap();
    assert_eq!(live, ["r1", "r2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replicas_never_take_the_same_pair() {
    let Some((_h, store)) = pg("lease_race").await else {
        return;
    };
    let all = pairs(40);
    let mut tasks = Vec::new();
    for r in 0..4 {
        let store = store.clone();
        let all = all.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("r{r}");
            let mut mine = Vec::new();
            for _ in 0..10 {
                mine.extend(
                    store
                        .acquire(&me, &all, 3, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|a| a.lease.pair),
                );
            }
            mine
        }));
    }
    let mut taken = Vec::new();
    for t in tasks {
        taken.extend(t.await.unwrap());
    }
    let count = taken.len();
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), count, "a pair was granted twice");
    assert_eq!(count, 40);
}

#[tokio::test]
async fn the_fenced_store_refuses_writes_once_the_guard_lapsed() {
    let inner: std::sync::Arc<dyn StateStore> =
        std::sync::Arc::new(SqliteStore::open_in_memory().unwrap());
    let timing = LeaseTiming::for_duration(Duration::from_secs(3));
    let guard = LeaseGuard::new(fence("r1", 1), std::time::Instant::now(), &timing);
    let store = FencedStore::new(inner.clone(), guard.clone());
    store
        .commit("p", vec![StoreWrite::PutManaged(user(1))])
        .await
        .unwrap();
    guard.lose();
    let refused = store
        .commit("p", vec![StoreWrite::PutManaged(user(2))])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    assert_eq!(inner.managed_users("p").await.unwrap(), vec![user(1)]);
    assert_eq!(guard.refusals(), 1);
}
