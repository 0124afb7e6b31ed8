//! Incremental cycles read from the store only what changed: a quiet cycle reads no managed
//! user, a change reads the changed user and the users it touches (its reports), never the
//! whole pair. Checked through a store that records what the engine asked of it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ctsync::engine::{CycleKind, CycleOptions, run_cycle};
use ctsync::plan::{Anchor, ManagedUser};
use ctsync::store::{
    CreateIntent, Escrow, GroupState, LogQuery, ProvisioningLogEntry, SqliteStore, StateStore,
    StoreResult, StoreWrite, Watermark,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::world::*;

/// What the engine read from the store.
#[derive(Debug, Default)]
struct Reads {
    /// Calls that load every managed user with its values.
    whole_pair: usize,
    /// Managed users loaded by anchor.
    users: BTreeSet<String>,
}

/// The SQLite store, recording the managed users each read returns.
struct RecordingStore {
    inner: Arc<SqliteStore>,
    reads: Mutex<Reads>,
}

impl RecordingStore {
    fn take(&self) -> Reads {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }
}

impl StateStore for RecordingStore {
    fn commit<'a>(
        &'a self,
        pair: &'a str,
        writes: Vec<StoreWrite>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        self.inner.commit(pair, writes)
    }
    fn watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Watermark>>> {
        self.inner.watermark(pair)
    }
    fn save_watermark<'a>(
        &'a self,
        pair: &'a str,
        watermark: &'a Watermark,
    ) -> BoxFuture<'a, StoreResult<()>> {
        self.inner.save_watermark(pair, watermark)
    }
    fn clear_watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        self.inner.clear_watermark(pair)
    }
    fn managed_users<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        self.reads.lock().unwrap().whole_pair += 1;
        self.inner.managed_users(pair)
    }
    fn managed_user<'a>(
        &'a self,
        pair: &'a str,
        anchor: &'a Anchor,
    ) -> BoxFuture<'a, StoreResult<Option<ManagedUser>>> {
        self.reads
            .lock()
            .unwrap()
            .users
            .insert(anchor.source_object_id().to_owned());
        self.inner.managed_user(pair, anchor)
    }
    fn managed_users_among<'a>(
        &'a self,
        pair: &'a str,
        anchors: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        Box::pin(async move {
            let found = self.inner.managed_users_among(pair, anchors).await?;
            let mut reads = self.reads.lock().unwrap();
            for m in &found {
                reads.users.insert(m.anchor.source_object_id().to_owned());
            }
            Ok(found)
        })
    }
    fn reports_of<'a>(
        &'a self,
        pair: &'a str,
        managers: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        self.inner.reports_of(pair, managers)
    }
    fn managed_anchors<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        self.inner.managed_anchors(pair)
    }
    fn live_managed_count<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<usize>> {
        self.inner.live_managed_count(pair)
    }
    fn create_intents<'a>(
        &'a self,
        pair: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<CreateIntent>>> {
        self.inner.create_intents(pair)
    }
    fn escrows<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Escrow>>> {
        self.inner.escrows(pair)
    }
    fn status<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>> {
        self.inner.status(pair)
    }
    fn provisioning_log<'a>(
        &'a self,
        pair: &'a str,
        query: &'a LogQuery,
    ) -> BoxFuture<'a, StoreResult<Vec<ProvisioningLogEntry>>> {
        self.inner.provisioning_log(pair, query)
    }
    fn prune_log<'a>(
        &'a self,
        pair: &'a str,
        before: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        self.inner.prune_log(pair, before)
    }
    fn pairs(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.inner.pairs()
    }
    fn group_state<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<GroupState>> {
        self.inner.group_state(pair)
    }
}

fn with_manager(alias: &str, manager: &str) -> Value {
    let mut u = user(alias, "contoso.com", json!({"jobTitle": "Rep"}));
    u["manager"] = json!(format!("{manager}@contoso.com"));
    u
}

#[tokio::test]
async fn incremental_cycles_read_only_the_changed_users_and_those_they_touch() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![
                user("boss", "contoso.com", json!({"jobTitle": "Head"})),
                with_manager("ann", "boss"),
                with_manager("ben", "boss"),
                user("carl", "contoso.com", json!({"jobTitle": "Rep"})),
                user("dora", "contoso.com", json!({"jobTitle": "Rep"})),
                with_manager("eve", "dora"),
            ],
        )],
    ))
    .await;
    let file = world.pair_file("reads", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let rt = world.runtime(&file, "reads");
    let store = RecordingStore {
        inner: world.store.clone(),
        reads: Mutex::default(),
    };
    let cycle = || async {
        run_cycle(&rt, &store, &CycleOptions::default())
            .await
            .unwrap_or_else(|e| panic!("cycle failed: {e}"))
    };
    let initial = cycle().await;
    assert_eq!(initial.kind, CycleKind::Initial);
    assert_eq!(initial.failed, 0, "{initial:?}");
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 6);
    store.take();

    // Nothing changed: no managed user is read.
    let quiet = cycle().await;
    assert_eq!(quiet.kind, CycleKind::Incremental);
    assert_eq!(quiet.succeeded, 0, "{quiet:?}");
    let reads = store.take();
    assert_eq!(reads.whole_pair, 0, "{reads:?}");
    assert!(reads.users.is_empty(), "{reads:?}");

    // Carl changes: Carl alone is read.
    let carl = world.source_id(CONTOSO, "carl@contoso.com").await;
    world
        .patch(CONTOSO, &carl, json!({"jobTitle": "Senior Rep"}))
        .await;
    let report = cycle().await;
    assert_eq!(report.kind, CycleKind::Incremental);
    assert_eq!(report.counts["update"], 1, "{report:?}");
    let reads = store.take();
    assert_eq!(reads.whole_pair, 0, "{reads:?}");
    assert_eq!(reads.users, BTreeSet::from([carl.clone()]), "{reads:?}");
    let target = world.b2b_user(FABRIKAM, "carl").await.expect("carl");
    assert_eq!(target.job_title.as_deref(), Some("Senior Rep"));

    // The boss leaves: the boss and the reports whose manager reference follows are read,
    // nobody else, and the reports lose the reference.
    let boss = world.source_id(CONTOSO, "boss@contoso.com").await;
    let ann = world.source_id(CONTOSO, "ann@contoso.com").await;
    let ben = world.source_id(CONTOSO, "ben@contoso.com").await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{boss}"),
            None,
        )
        .await;
    let report = cycle().await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.counts["softDelete"], 1, "{report:?}");
    assert_eq!(report.manager_updates, 2, "{report:?}");
    let reads = store.take();
    assert_eq!(reads.whole_pair, 0, "{reads:?}");
    assert_eq!(reads.users, BTreeSet::from([boss, ann, ben]), "{reads:?}");
}
