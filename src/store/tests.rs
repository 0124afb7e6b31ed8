//! Store tests, run against both backends (SQLite, and PostgreSQL when
//! `CTSYNC_TEST_POSTGRES_URL` is set): every record kind round-trips, a store survives reopening,
//! migrations are idempotent, commits are atomic, and several tasks can use one store at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, json};

use super::harness::{Harness, on_both_backends};
use super::*;
use crate::plan::{Action, Anchor, MANAGER_ATTRIBUTE, ManagedUser};

on_both_backends!(
    watermark_round_trips_and_clears,
    managed_users_and_exported_values_round_trip,
    create_intents_are_recorded_then_resolved,
    escrows_round_trip_update_and_clear,
    job_status_round_trips,
    provisioning_log_is_append_only_and_queryable,
    a_failing_write_rolls_back_the_whole_commit,
    file_store_keeps_everything_across_reopen,
    migrations_are_idempotent,
    a_newer_schema_is_refused_not_damaged,
    several_tasks_share_one_store,
    stored_managed_users_feed_the_planner_unchanged,
    copying_a_store_moves_every_record_of_every_pair,
    group_links_and_group_watermark_round_trip,
    reads_by_anchor_return_only_the_users_asked_for,
);

const PAIR: &str = "contoso-to-fabrikam";

fn t0() -> DateTime<Utc> {
    // Sub-second precision on purpose: timestamps must round-trip exactly.
    "2026-03-01T12:00:00.123456789Z".parse().unwrap()
}

fn anchor(n: u32) -> Anchor {
    Anchor::new(
        "aaaaaaaa-0000-0000-0000-000000000001",
        &format!("user-{n:03}"),
    )
}

fn managed(n: u32) -> ManagedUser {
    ManagedUser {
        anchor: anchor(n),
        target_id: format!("target-{n:03}"),
        last_exported: BTreeMap::from([
            ("accountEnabled".into(), json!(true)),
            ("displayName".into(), json!(format!("User {n}"))),
            ("otherMails".into(), json!(["a@x.test", "b@x.test"])),
        ]),
        disabled_before_scope_exit: false,
        soft_deleted_by_us_at: None,
    }
}

fn escrow(n: u32, reference: bool) -> Escrow {
    Escrow {
        anchor: anchor(n),
        reference,
        action: if reference {
            Action::Update
        } else {
            Action::Create
        },
        attempts: 1,
        first_failed_at: t0(),
        last_failed_at: t0(),
        next_retry_at: t0() + Duration::hours(6),
        last_error: EscrowError {
            code: "InvitationCreationFailure".into(),
            message: "the invitation failed".into(),
        },
    }
}

fn log_entry(
    id: &str,
    at: DateTime<Utc>,
    action: ProvisioningAction,
    status: ProvisioningResult,
) -> ProvisioningLogEntry {
    let system = |name: &str| ProvisioningSystem {
        id: format!("{name}-tenant"),
        display_name: name.into(),
        details: Map::new(),
    };
    let identity = |id: &str| ProvisionedIdentity {
        id: id.into(),
        display_name: "User 1".into(),
        identity_type: "User".into(),
        details: Map::new(),
    };
    ProvisioningLogEntry {
        id: id.into(),
        activity_date_time: at,
        tenant_id: "target-tenant".into(),
        job_id: PAIR.into(),
        cycle_id: "cycle-1".into(),
        change_id: format!("change-{id}"),
        duration_in_milliseconds: 42,
        provisioning_action: action,
        provisioning_status_info: ProvisioningStatusInfo {
            status,
            error_information: (status == ProvisioningResult::Failure).then(|| {
                ProvisioningErrorInfo {
                    error_code: Some("AzureActiveDirectoryForbidden".into()),
                    reason: Some("Guest invitations not allowed".into()),
                    additional_details: None,
                    error_category: Some(ErrorCategory::NonServiceFailure),
                    recommended_action: None,
                }
            }),
        },
        provisioning_steps: vec![ProvisioningStep {
            name: "EntryExportAdd".into(),
            provisioning_step_type: ProvisioningStepType::Export,
            status,
            description: "User 'u1' was created".into(),
            details: Map::from_iter([("ReportableIdentifier".to_owned(), json!("u1"))]),
        }],
        modified_properties: vec![ModifiedProperty {
            display_name: "displayName".into(),
            old_value: None,
            new_value: Some("User 1".into()),
        }],
        initiated_by: Initiator {
            id: String::new(),
            display_name: "ctsync".into(),
            initiator_type: InitiatorType::System,
        },
        source_identity: identity("source-1"),
        target_identity: identity("target-1"),
        source_system: system("Contoso"),
        target_system: system("Fabrikam"),
    }
}

async fn watermark_round_trips_and_clears(h: Harness) {
    let store = h.open().await;
    assert_eq!(store.watermark(PAIR).await.unwrap(), None);
    let w = Watermark {
        delta_link: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=abc".into(),
        saved_at: t0(),
    };
    store.save_watermark(PAIR, &w).await.unwrap();
    assert_eq!(store.watermark(PAIR).await.unwrap(), Some(w.clone()));
    let newer = Watermark {
        delta_link: "…token=def".into(),
        saved_at: t0() + Duration::minutes(40),
    };
    store.save_watermark(PAIR, &newer).await.unwrap();
    assert_eq!(store.watermark(PAIR).await.unwrap(), Some(newer));
    assert_eq!(store.watermark("other-pair").await.unwrap(), None);
    store.clear_watermark(PAIR).await.unwrap();
    assert_eq!(store.watermark(PAIR).await.unwrap(), None);
}

async fn managed_users_and_exported_values_round_trip(h: Harness) {
    let store = h.open().await;
    let mut one = managed(1);
    one.soft_deleted_by_us_at = Some(t0());
    one.disabled_before_scope_exit = true;
    store
        .commit(
            PAIR,
            vec![
                StoreWrite::PutManaged(managed(2)),
                StoreWrite::PutManaged(one.clone()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.managed_users(PAIR).await.unwrap(),
        vec![one.clone(), managed(2)]
    );
    assert_eq!(
        store.managed_user(PAIR, &anchor(2)).await.unwrap(),
        Some(managed(2))
    );
    assert_eq!(store.managed_user(PAIR, &anchor(9)).await.unwrap(), None);
    assert!(store.managed_users("other-pair").await.unwrap().is_empty());

    // Single values, flags.
    store
        .commit(
            PAIR,
            vec![
                StoreWrite::SetExported {
                    anchor: anchor(2),
                    attribute: "manager".into(),
                    value: Some(json!(anchor(1).to_string())),
                },
                StoreWrite::SetExported {
                    anchor: anchor(2),
                    attribute: "otherMails".into(),
                    value: None,
                },
                StoreWrite::SetSoftDeleted {
                    anchor: anchor(1),
                    at: None,
                },
                StoreWrite::SetDisabledBeforeScopeExit {
                    anchor: anchor(1),
                    value: false,
                },
            ],
        )
        .await
        .unwrap();
    let two = store.managed_user(PAIR, &anchor(2)).await.unwrap().unwrap();
    assert_eq!(two.last_exported["manager"], json!(anchor(1).to_string()));
    assert!(!two.last_exported.contains_key("otherMails"));
    let one_after = store.managed_user(PAIR, &anchor(1)).await.unwrap().unwrap();
    assert_eq!(
        (
            one_after.soft_deleted_by_us_at,
            one_after.disabled_before_scope_exit
        ),
        (None, false)
    );

    // PutManaged replaces the whole set of exported values; RemoveManaged forgets them.
    let mut replaced = managed(2);
    replaced.target_id = "target-new".into();
    replaced.last_exported = BTreeMap::from([("department".into(), json!("Research"))]);
    store
        .commit(PAIR, vec![StoreWrite::PutManaged(replaced.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.managed_user(PAIR, &anchor(2)).await.unwrap(),
        Some(replaced)
    );
    store
        .commit(PAIR, vec![StoreWrite::RemoveManaged { anchor: anchor(2) }])
        .await
        .unwrap();
    assert_eq!(store.managed_user(PAIR, &anchor(2)).await.unwrap(), None);
    store
        .commit(PAIR, vec![StoreWrite::PutManaged(managed(2))])
        .await
        .unwrap();
    assert_eq!(
        store.managed_user(PAIR, &anchor(2)).await.unwrap(),
        Some(managed(2))
    );
}

async fn create_intents_are_recorded_then_resolved(h: Harness) {
    let store = h.open().await;
    let intent = CreateIntent {
        anchor: anchor(1),
        intent_id: "intent-1".into(),
        invited_address: "user1@contoso.test".into(),
        recorded_at: t0(),
    };
    store
        .commit(PAIR, vec![StoreWrite::RecordCreateIntent(intent.clone())])
        .await
        .unwrap();
    assert_eq!(store.create_intents(PAIR).await.unwrap(), vec![intent]);
    // Resolution and the link land together.
    store
        .commit(
            PAIR,
            vec![
                StoreWrite::PutManaged(managed(1)),
                StoreWrite::ResolveCreateIntent { anchor: anchor(1) },
            ],
        )
        .await
        .unwrap();
    assert!(store.create_intents(PAIR).await.unwrap().is_empty());
    assert!(
        store
            .managed_user(PAIR, &anchor(1))
            .await
            .unwrap()
            .is_some()
    );
}

async fn escrows_round_trip_update_and_clear(h: Harness) {
    let store = h.open().await;
    store
        .commit(
            PAIR,
            vec![
                StoreWrite::PutEscrow(escrow(2, false)),
                StoreWrite::PutEscrow(escrow(1, true)),
                StoreWrite::PutEscrow(escrow(1, false)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.escrows(PAIR).await.unwrap(),
        vec![escrow(1, false), escrow(1, true), escrow(2, false)]
    );

    let mut retried = escrow(1, false);
    retried.attempts = 2;
    retried.last_failed_at = t0() + Duration::hours(6);
    retried.next_retry_at = t0() + Duration::hours(12);
    retried.last_error.code = "TooManyRequests".into();
    store
        .commit(PAIR, vec![StoreWrite::PutEscrow(retried.clone())])
        .await
        .unwrap();
    assert_eq!(store.escrows(PAIR).await.unwrap()[0], retried);

    store
        .commit(
            PAIR,
            vec![StoreWrite::RemoveEscrow {
                anchor: anchor(1),
                reference: true,
            }],
        )
        .await
        .unwrap();
    assert_eq!(store.escrows(PAIR).await.unwrap().len(), 2);
    store
        .commit("other-pair", vec![StoreWrite::PutEscrow(escrow(3, false))])
        .await
        .unwrap();
    store
        .commit(PAIR, vec![StoreWrite::ClearEscrows])
        .await
        .unwrap();
    assert!(store.escrows(PAIR).await.unwrap().is_empty());
    assert_eq!(
        store.escrows("other-pair").await.unwrap().len(),
        1,
        "clearing is per pair"
    );
}

async fn job_status_round_trips(h: Harness) {
    let store = h.open().await;
    assert_eq!(store.status(PAIR).await.unwrap(), None);
    let status = json!({
        "code": "Quarantine",
        "countSuccessiveCompleteFailures": 3,
        "escrowsPruned": false,
        "quarantine": {"reason": "TooManyDeletes", "seriesCount": 1},
        "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z"
    });
    store
        .commit(PAIR, vec![StoreWrite::PutStatus(status.clone())])
        .await
        .unwrap();
    assert_eq!(store.status(PAIR).await.unwrap(), Some(status));
    store
        .commit(PAIR, vec![StoreWrite::PutStatus(json!({"code": "Active"}))])
        .await
        .unwrap();
    assert_eq!(
        store.status(PAIR).await.unwrap(),
        Some(json!({"code": "Active"}))
    );
}

async fn provisioning_log_is_append_only_and_queryable(h: Harness) {
    use ProvisioningAction::{Create, Delete, StagedDelete};
    use ProvisioningResult::{Failure, Skipped, Success};
    let store = h.open().await;
    let entries = vec![
        log_entry("e1", t0(), Create, Success),
        log_entry("e2", t0() + Duration::seconds(1), Create, Failure),
        log_entry("e3", t0() + Duration::seconds(2), StagedDelete, Skipped),
        log_entry("e4", t0() + Duration::seconds(3), Delete, Success),
    ];
    // Appended out of order: reads come back by time.
    let writes = entries
        .iter()
        .rev()
        .cloned()
        .map(|e| StoreWrite::AppendLog(Box::new(e)))
        .collect();
    store.commit(PAIR, writes).await.unwrap();

    let all = store
        .provisioning_log(PAIR, &LogQuery::default())
        .await
        .unwrap();
    assert_eq!(all, entries);

    let ids = |v: Vec<ProvisioningLogEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let since = LogQuery {
        since: Some(t0() + Duration::seconds(1)),
        ..LogQuery::default()
    };
    assert_eq!(
        ids(store.provisioning_log(PAIR, &since).await.unwrap()),
        ["e2", "e3", "e4"]
    );
    let creates = LogQuery {
        action: Some(Create),
        ..LogQuery::default()
    };
    assert_eq!(
        ids(store.provisioning_log(PAIR, &creates).await.unwrap()),
        ["e1", "e2"]
    );
    let failed = LogQuery {
        status: Some(Failure),
        ..LogQuery::default()
    };
    assert_eq!(
        ids(store.provisioning_log(PAIR, &failed).await.unwrap()),
        ["e2"]
    );
    let both = LogQuery {
        action: Some(Create),
        status: Some(Success),
        ..LogQuery::default()
    };
    assert_eq!(
        ids(store.provisioning_log(PAIR, &both).await.unwrap()),
        ["e1"]
    );
    let limited = LogQuery {
        limit: Some(2),
        ..LogQuery::default()
    };
    assert_eq!(
        ids(store.provisioning_log(PAIR, &limited).await.unwrap()),
        ["e1", "e2"]
    );
    assert!(
        store
            .provisioning_log("other-pair", &LogQuery::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Replaying an entry keeps the first version.
    let mut changed = entries[0].clone();
    changed.duration_in_milliseconds = 9999;
    store
        .commit(PAIR, vec![StoreWrite::AppendLog(Box::new(changed))])
        .await
        .unwrap();
    assert_eq!(
        store
            .provisioning_log(PAIR, &LogQuery::default())
            .await
            .unwrap(),
        entries
    );

    assert_eq!(
        store
            .prune_log(PAIR, t0() + Duration::seconds(2))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        ids(store
            .provisioning_log(PAIR, &LogQuery::default())
            .await
            .unwrap()),
        ["e3", "e4"]
    );
}

async fn a_failing_write_rolls_back_the_whole_commit(h: Harness) {
    let store = h.open().await;
    let result = store
        .commit(
            PAIR,
            vec![
                StoreWrite::PutManaged(managed(1)),
                StoreWrite::AppendLog(Box::new(log_entry(
                    "e1",
                    t0(),
                    ProvisioningAction::Create,
                    ProvisioningResult::Success,
                ))),
                // No managed user 9: the foreign key refuses the value.
                StoreWrite::SetExported {
                    anchor: anchor(9),
                    attribute: "displayName".into(),
                    value: Some(json!("x")),
                },
            ],
        )
        .await;
    // The backend refuses the statement; nothing about it is an outage.
    assert!(
        matches!(result, Err(ref e) if !e.is_unavailable()),
        "{result:?}"
    );
    assert!(store.managed_users(PAIR).await.unwrap().is_empty());
    assert!(
        store
            .provisioning_log(PAIR, &LogQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn file_store_keeps_everything_across_reopen(h: Harness) {
    let watermark = Watermark {
        delta_link: "delta-1".into(),
        saved_at: t0(),
    };
    {
        let store = h.open().await;
        store
            .commit(
                PAIR,
                vec![
                    StoreWrite::PutManaged(managed(1)),
                    StoreWrite::PutEscrow(escrow(1, false)),
                    StoreWrite::RecordCreateIntent(CreateIntent {
                        anchor: anchor(2),
                        intent_id: "i2".into(),
                        invited_address: "u2@contoso.test".into(),
                        recorded_at: t0(),
                    }),
                    StoreWrite::PutStatus(json!({"code": "Active"})),
                    StoreWrite::AppendLog(Box::new(log_entry(
                        "e1",
                        t0(),
                        ProvisioningAction::Create,
                        ProvisioningResult::Success,
                    ))),
                ],
            )
            .await
            .unwrap();
        store.save_watermark(PAIR, &watermark).await.unwrap();
    }
    let store = h.open().await;
    assert_eq!(store.managed_users(PAIR).await.unwrap(), vec![managed(1)]);
    assert_eq!(store.escrows(PAIR).await.unwrap(), vec![escrow(1, false)]);
    assert_eq!(store.create_intents(PAIR).await.unwrap().len(), 1);
    assert_eq!(
        store.status(PAIR).await.unwrap(),
        Some(json!({"code": "Active"}))
    );
    assert_eq!(
        store
            .provisioning_log(PAIR, &LogQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.watermark(PAIR).await.unwrap(), Some(watermark));
}

async fn migrations_are_idempotent(h: Harness) {
    let store = h.open().await;
    let version = h.schema_version().await;
    assert!(version >= 1);
    store
        .commit(PAIR, vec![StoreWrite::PutManaged(managed(1))])
        .await
        .unwrap();
    h.migrate().await;
    h.migrate().await;
    drop(store);
    let reopened = h.open().await;
    assert_eq!(h.schema_version().await, version);
    assert_eq!(
        reopened.managed_users(PAIR).await.unwrap(),
        vec![managed(1)]
    );
}

async fn a_newer_schema_is_refused_not_damaged(h: Harness) {
    let store = h.open().await;
    store
        .commit(PAIR, vec![StoreWrite::PutManaged(managed(1))])
        .await
        .unwrap();
    drop(store);
    h.set_schema_version(999).await;
    let Err(err) = h.try_open().await else {
        panic!("a newer schema was opened");
    };
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
}

async fn several_tasks_share_one_store(h: Harness) {
    let store: Arc<dyn StateStore> = h.open().await;
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let pair = format!("pair-{}", task % 2);
            for n in 0..25u32 {
                let mut m = managed(task * 100 + n);
                m.last_exported.insert("task".into(), json!(task));
                let entry = log_entry(
                    &format!("t{task}-{n}"),
                    t0(),
                    ProvisioningAction::Update,
                    ProvisioningResult::Success,
                );
                store
                    .commit(
                        &pair,
                        vec![
                            StoreWrite::PutManaged(m),
                            StoreWrite::AppendLog(Box::new(entry)),
                        ],
                    )
                    .await
                    .unwrap();
                // Reads interleave with other tasks' writes.
                store.managed_users(&pair).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for pair in ["pair-0", "pair-1"] {
        let users = store.managed_users(pair).await.unwrap();
        assert_eq!(users.len(), 100);
        assert!(users.iter().all(|u| u.last_exported.len() == 4));
        let log = store
            .provisioning_log(
                pair,
                &LogQuery {
                    limit: Some(1000),
                    ..LogQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(log.len(), 100);
    }
}

async fn stored_managed_users_feed_the_planner_unchanged(h: Harness) {
    use crate::plan::{
        AllowedActions, DeletionGuardSettings, DeprovisionAction, DesiredAttributes,
        ManagerReference, Membership, PlanInput, PlanSettings, Reason, ScopeVerdict,
        SourceCoverage, SourceReadKind, SourceUser, plan,
    };
    let store = h.open().await;
    let record = managed(1);
    store
        .commit(PAIR, vec![StoreWrite::PutManaged(record.clone())])
        .await
        .unwrap();
    let input = PlanInput {
        pair: PAIR.into(),
        source_tenant_id: anchor(1).source_tenant_id().into(),
        now: t0(),
        settings: PlanSettings {
            anchor_attribute: "extension_x_ctsyncAnchor".into(),
            deprovision: DeprovisionAction::SoftDelete,
            allowed: AllowedActions::default(),
            drift_correction: false,
            deletion_guard: DeletionGuardSettings::default(),
        },
        source_read: SourceCoverage {
            kind: SourceReadKind::Delta,
            complete: true,
        },
        inbound_sync_allowed: true,
        approved_deletes: Default::default(),
        source_users: vec![SourceUser {
            object_id: anchor(1).source_object_id().into(),
            user_principal_name: None,
            deleted: false,
            account_enabled: true,
            membership: Membership::InternalMember,
            scope: ScopeVerdict::InScope,
            desired: DesiredAttributes {
                always: record.last_exported.clone(),
                on_create: BTreeMap::new(),
            },
            manager: ManagerReference::NotMapped,
            matching: vec![],
            mapping_error: None,
        }],
        managed: store.managed_users(PAIR).await.unwrap(),
        live_managed: None,
        pending_creates: vec![],
        target_users: vec![],
        target_read_complete: false,
        escrowed: vec![],
    };
    let p = plan(&input);
    assert_eq!(
        p.entries()[0].reason,
        Reason::RedundantExport,
        "{}",
        p.to_text()
    );
    assert_eq!(p.entries()[0].target_id.as_deref(), Some("target-001"));
}

/// `migrate-store`: a SQLite store with two pairs is copied into the backend under test; every
/// reader returns the same, `pairs` lists both, and a second copy into it is refused.
async fn copying_a_store_moves_every_record_of_every_pair(h: Harness) {
    let source_dir = tempfile::tempdir().unwrap();
    let source = SqliteStore::open(source_dir.path().join("old.db")).unwrap();
    let mut soft = managed(2);
    soft.soft_deleted_by_us_at = Some(t0());
    soft.disabled_before_scope_exit = true;
    for pair in [PAIR, "northwind-to-fabrikam"] {
        source
            .commit(
                pair,
                vec![
                    StoreWrite::PutManaged(managed(1)),
                    StoreWrite::PutManaged(soft.clone()),
                    StoreWrite::RecordCreateIntent(CreateIntent {
                        anchor: anchor(3),
                        intent_id: "i3".into(),
                        invited_address: "u3@contoso.test".into(),
                        recorded_at: t0(),
                    }),
                    StoreWrite::PutEscrow(escrow(1, true)),
                    StoreWrite::AppendLog(Box::new(log_entry(
                        "e2",
                        t0() + Duration::seconds(1),
                        ProvisioningAction::Update,
                        ProvisioningResult::Failure,
                    ))),
                    StoreWrite::AppendLog(Box::new(log_entry(
                        "e1",
                        t0(),
                        ProvisioningAction::Create,
                        ProvisioningResult::Success,
                    ))),
                    StoreWrite::PutStatus(json!({"code": "Active", "pair": pair})),
                    StoreWrite::PutGroupLink(crate::plan::groups::GroupLinkState {
                        source_id: format!("{pair}-group"),
                        target_id: "target-group".into(),
                        display_name: "Sales".into(),
                        exported: BTreeMap::new(),
                        members: ["target-001".to_string()].into(),
                        deleted_by_us: false,
                    }),
                ],
            )
            .await
            .unwrap();
    }
    let watermark = Watermark {
        delta_link: "delta-7".into(),
        saved_at: t0(),
    };
    source.save_watermark(PAIR, &watermark).await.unwrap();
    source
        .commit(
            PAIR,
            vec![StoreWrite::SaveGroupWatermark(Watermark {
                delta_link: "groups-delta-3".into(),
                saved_at: t0(),
            })],
        )
        .await
        .unwrap();

    let target = h.open().await;
    assert!(target.pairs().await.unwrap().is_empty());
    let report = copy_store(&source, target.as_ref()).await.unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!(
        (
            report[0].managed_users,
            report[0].log_entries,
            report[0].watermark
        ),
        (2, 2, true),
        "{report:?}"
    );
    let mut pairs = vec![PAIR.to_owned(), "northwind-to-fabrikam".to_owned()];
    pairs.sort();
    assert_eq!(target.pairs().await.unwrap(), pairs);
    for pair in &pairs {
        let all = LogQuery::default();
        assert_eq!(
            target.managed_users(pair).await.unwrap(),
            source.managed_users(pair).await.unwrap()
        );
        assert_eq!(
            target.create_intents(pair).await.unwrap(),
            source.create_intents(pair).await.unwrap()
        );
        assert_eq!(
            target.escrows(pair).await.unwrap(),
            source.escrows(pair).await.unwrap()
        );
        assert_eq!(
            target.provisioning_log(pair, &all).await.unwrap(),
            source.provisioning_log(pair, &all).await.unwrap()
        );
        assert_eq!(
            target.status(pair).await.unwrap(),
            source.status(pair).await.unwrap()
        );
        assert_eq!(
            target.watermark(pair).await.unwrap(),
            source.watermark(pair).await.unwrap()
        );
        assert_eq!(
            target.group_state(pair).await.unwrap(),
            source.group_state(pair).await.unwrap()
        );
    }
    assert!(target.group_state(PAIR).await.unwrap().watermark.is_some());
    let again = copy_store(&source, target.as_ref()).await;
    assert!(
        matches!(again, Err(StoreError::Config(ref m)) if m.contains("already holds")),
        "{again:?}"
    );
}

#[tokio::test]
async fn sqlite_file_store_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    assert_eq!(store.journal_mode().await.unwrap(), "wal");
}

#[test]
fn polling_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let store = SqliteStore::open_in_memory().unwrap();
    let result = futures::executor::block_on(store.watermark(PAIR));
    assert!(matches!(result, Err(StoreError::Task(_))), "{result:?}");
}

async fn group_links_and_group_watermark_round_trip(h: Harness) {
    use crate::plan::groups::GroupLinkState;
    let store = h.open().await;
    assert_eq!(
        store.group_state(PAIR).await.unwrap(),
        GroupState::default()
    );
    let link = |n: u32, members: &[&str]| GroupLinkState {
        source_id: format!("source-group-{n}"),
        target_id: format!("target-group-{n}"),
        display_name: format!("Group {n}"),
        exported: BTreeMap::from([("displayName".into(), json!(format!("Group {n}")))]),
        members: members.iter().map(|m| m.to_string()).collect(),
        deleted_by_us: false,
    };
    let w = Watermark {
        delta_link: "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=g1".into(),
        saved_at: t0(),
    };
    store
        .commit(
            PAIR,
            vec![
                StoreWrite::PutGroupLink(link(2, &["t1"])),
                StoreWrite::PutGroupLink(link(1, &["t1", "t2"])),
                StoreWrite::SaveGroupWatermark(w.clone()),
            ],
        )
        .await
        .unwrap();
    let state = store.group_state(PAIR).await.unwrap();
    assert_eq!(state.links, vec![link(1, &["t1", "t2"]), link(2, &["t1"])]);
    assert_eq!(state.watermark, Some(w));
    // Replacing a link keeps one row; other pairs see nothing; the user watermark is separate.
    let mut deleted = link(1, &[]);
    deleted.deleted_by_us = true;
    store
        .commit(PAIR, vec![StoreWrite::PutGroupLink(deleted.clone())])
        .await
        .unwrap();
    let state = store.group_state(PAIR).await.unwrap();
    assert_eq!(state.links[0], deleted);
    assert_eq!(state.links.len(), 2);
    assert_eq!(
        store.group_state("other-pair").await.unwrap(),
        GroupState::default()
    );
    assert_eq!(store.watermark(PAIR).await.unwrap(), None);
}

/// What an incremental cycle reads: the managed users among some anchors (with their values,
/// flags included), the reports of some managers, the anchors alone, and the live count.
async fn reads_by_anchor_return_only_the_users_asked_for(h: Harness) {
    let store = h.open().await;
    let with_manager = |n: u32, boss: u32| {
        let mut m = managed(n);
        m.last_exported
            .insert(MANAGER_ATTRIBUTE.into(), json!(anchor(boss).to_string()));
        m
    };
    let mut gone = with_manager(5, 1);
    gone.soft_deleted_by_us_at = Some(t0());
    gone.disabled_before_scope_exit = true;
    let mut writes: Vec<StoreWrite> = (1..=3)
        .map(|n| StoreWrite::PutManaged(managed(n)))
        .collect();
    writes.push(StoreWrite::PutManaged(with_manager(4, 1)));
    writes.push(StoreWrite::PutManaged(gone.clone()));
    writes.push(StoreWrite::PutManaged(with_manager(6, 2)));
    store.commit(PAIR, writes).await.unwrap();
    // Another pair's link with the same manager and anchors is never returned.
    store
        .commit(
            "other-pair",
            vec![
                StoreWrite::PutManaged(with_manager(7, 1)),
                StoreWrite::PutManaged(managed(2)),
            ],
        )
        .await
        .unwrap();

    // Among: unsorted and repeated anchors in, sorted and unique out; unknown ones left out.
    let among = store
        .managed_users_among(PAIR, &[anchor(5), anchor(9), anchor(2), anchor(5)])
        .await
        .unwrap();
    assert_eq!(among, vec![managed(2), gone.clone()]);
    assert!(
        store
            .managed_users_among(PAIR, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .managed_users_among("no-such-pair", &[anchor(2)])
            .await
            .unwrap()
            .is_empty()
    );

    // Reports: by the manager's anchor, whatever the report's own flags.
    assert_eq!(
        store.reports_of(PAIR, &[anchor(1)]).await.unwrap(),
        vec![anchor(4), anchor(5)]
    );
    assert_eq!(
        store
            .reports_of(PAIR, &[anchor(2), anchor(1), anchor(3)])
            .await
            .unwrap(),
        vec![anchor(4), anchor(5), anchor(6)]
    );
    assert!(store.reports_of(PAIR, &[]).await.unwrap().is_empty());
    // A changed manager value moves the report; a removed one drops it.
    store
        .commit(
            PAIR,
            vec![
                StoreWrite::SetExported {
                    anchor: anchor(4),
                    attribute: MANAGER_ATTRIBUTE.into(),
                    value: Some(json!(anchor(2).to_string())),
                },
                StoreWrite::SetExported {
                    anchor: anchor(6),
                    attribute: MANAGER_ATTRIBUTE.into(),
                    value: None,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.reports_of(PAIR, &[anchor(1)]).await.unwrap(),
        vec![anchor(5)]
    );
    assert_eq!(
        store.reports_of(PAIR, &[anchor(2)]).await.unwrap(),
        vec![anchor(4)]
    );

    assert_eq!(
        store.managed_anchors(PAIR).await.unwrap(),
        (1..=6).map(anchor).collect::<Vec<_>>()
    );
    // Five live links: the one soft-deleted by ctsync does not count.
    assert_eq!(store.live_managed_count(PAIR).await.unwrap(), 5);
    assert_eq!(store.live_managed_count("no-such-pair").await.unwrap(), 0);
}
