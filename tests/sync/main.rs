//! The sync engine end to end: pairs in YAML, the daemon's cycles against the Graph emulator
//! over loopback HTTP, each scenario asserting the target's state through Graph.

mod executor;
mod groups;
mod heal;
mod store_reads;
mod world;

use serde_json::json;
use world::*;

#[tokio::test]
async fn initial_sync_creates_in_scope_members_with_mapped_attributes() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![
                user(
                    "adele",
                    "contoso.com",
                    json!({"department": "Sales", "jobTitle": "Rep"}),
                ),
                user("bob", "contoso.com", json!({"department": "Engineering"})),
                user("guest", "contoso.com", json!({"userType": "Guest"})),
            ],
        )],
    ))
    .await;
    let file = world.pair_file(
        "contoso-to-fabrikam",
        CONTOSO,
        FABRIKAM,
        "  scope:
    mode: all
    filters:
      - title: Sales only
        clauses:
          - { attribute: department, operator: EQUALS, value: Sales }
",
    );
    let rt = world.runtime(&file, "contoso-to-fabrikam");
    let report = world.cycle(&rt).await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.counts["create"], 1, "{report:?}");

    let adele = world
        .b2b_user(FABRIKAM, "adele")
        .await
        .expect("adele was created in the target");
    assert_eq!(adele.department.as_deref(), Some("Sales"));
    assert_eq!(adele.job_title.as_deref(), Some("Rep"));
    assert_eq!(adele.user_type.as_deref(), Some("Member"));
    assert_eq!(adele.show_in_address_list, Some(true));
    assert_eq!(adele.creation_type.as_deref(), Some("Invitation"));
    let source_id = world.source_id(CONTOSO, "adele@contoso.com").await;
    assert_eq!(
        adele.extensions.get(&anchor_attribute()),
        Some(&json!(format!("{CONTOSO}/{source_id}")))
    );
    assert!(world.b2b_user(FABRIKAM, "bob").await.is_none());
    assert!(world.b2b_user(FABRIKAM, "guest").await.is_none());

    // A second cycle is incremental and changes nothing.
    let again = world.cycle(&rt).await;
    assert_eq!(again.succeeded, 0, "{again:?}");
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 1);
}

/// `ageGroup`, `consentProvidedForMinor` and `imAddresses` reach the target through mappings:
/// the typed Graph user once dropped them, so the mappings saw null and wrote nothing.
/// `imAddresses` is read-only in Graph, so it is mapped into a directory extension.
#[tokio::test]
async fn age_group_consent_and_im_addresses_are_mapped_into_the_target() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user(
                "minnie",
                "contoso.com",
                json!({
                    "ageGroup": "notAdult",
                    "consentProvidedForMinor": "granted",
                    "imAddresses": ["sip:minnie@contoso.com", "sip:m@contoso.com"],
                }),
            )],
        )],
    );
    for tenant in seed["tenants"].as_array_mut().expect("tenants") {
        tenant["applications"][0]["extensionProperties"]
            .as_array_mut()
            .expect("extension properties")
            .push(json!({"name": "sipAddresses"}));
    }
    let world = World::start(to_seed(seed)).await;
    let sip = format!("extension_{}_sipAddresses", APP.replace('-', ""));
    let spec = format!(
        "  scope: {{ mode: all }}
  mappings:
    - {{ target: displayName, source: displayName }}
    - {{ target: ageGroup, source: ageGroup }}
    - {{ target: consentProvidedForMinor, source: consentProvidedForMinor }}
    - {{ target: {sip}, expression: 'Join(\";\", [imAddresses])' }}
    - {{ target: userType, constant: Member, apply: onCreate }}
"
    );
    let file = world.pair_file("minors", CONTOSO, FABRIKAM, &spec);
    let rt = world.runtime(&file, "minors");
    let report = world.cycle(&rt).await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.counts["create"], 1, "{report:?}");
    let minnie: ctsync::graph::User = world
        .admin(FABRIKAM)
        .list_users(Some("creationType eq 'Invitation'"), &[sip.as_str()])
        .await
        .expect("list target users")
        .pop()
        .expect("minnie was created");
    assert_eq!(minnie.age_group.as_deref(), Some("notAdult"));
    assert_eq!(
        minnie.consent_provided_for_minor.as_deref(),
        Some("granted")
    );
    assert_eq!(
        minnie.extensions.get(&sip),
        Some(&json!("sip:minnie@contoso.com;sip:m@contoso.com"))
    );

    // A change in the source reaches the target on the next (incremental) cycle.
    let source_id = world.source_id(CONTOSO, "minnie@contoso.com").await;
    world
        .call(
            CONTOSO,
            reqwest::Method::PATCH,
            &format!("users/{source_id}"),
            Some(json!({"ageGroup": "adult", "consentProvidedForMinor": "notRequired"})),
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["update"], 1, "{report:?}");
    let minnie = world.b2b_user(FABRIKAM, "minnie").await.expect("minnie");
    assert_eq!(minnie.age_group.as_deref(), Some("adult"));
    assert_eq!(
        minnie.consent_provided_for_minor.as_deref(),
        Some("notRequired")
    );
}

/// A Contoso → Fabrikam world with these Contoso users and a pair that syncs the Sales
/// department only; nothing synced yet.
async fn sales_pair(
    name: &str,
    users: Vec<serde_json::Value>,
) -> (World, ctsync::engine::PairRuntime, std::path::PathBuf) {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, users)],
    ))
    .await;
    let file = world.pair_file(
        name,
        CONTOSO,
        FABRIKAM,
        "  scope:
    mode: all
    filters:
      - title: Sales
        clauses:
          - { attribute: department, operator: EQUALS, value: Sales }
",
    );
    let rt = world.runtime(&file, name);
    (world, rt, file)
}

/// Contoso → Fabrikam with a department filter, after its first cycle.
async fn sales_world(extra_users: Vec<serde_json::Value>) -> (World, ctsync::engine::PairRuntime) {
    let mut users = vec![
        user(
            "adele",
            "contoso.com",
            json!({"department": "Sales", "jobTitle": "Rep"}),
        ),
        user(
            "bob",
            "contoso.com",
            json!({"department": "Sales", "jobTitle": "Lead"}),
        ),
    ];
    users.extend(extra_users);
    let (world, rt, _) = sales_pair("sales", users).await;
    let first = world.cycle(&rt).await;
    assert_eq!(first.failed, 0, "{first:?}");
    (world, rt)
}

/// A cycle with nothing to do costs one Graph request (the source delta): the policies and
/// the anchor extension checked by the first cycle are not read again until a cycle has
/// something to write (or ten minutes passed).
#[tokio::test]
async fn a_quiet_cycle_reads_only_the_source_delta() {
    let (world, rt) = sales_world(vec![]).await;
    let quiet = world.cycle(&rt).await;
    assert_eq!(quiet.succeeded, 0, "{quiet:?}");
    assert_eq!(quiet.graph_requests, 1, "{quiet:?}");
    // A change to write: the policies are checked again before writing.
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(CONTOSO, &adele, json!({"jobTitle": "Principal"}))
        .await;
    let busy = world.cycle(&rt).await;
    assert_eq!(busy.succeeded, 1, "{busy:?}");
    assert!(busy.graph_requests >= 6, "{busy:?}");
}

#[tokio::test]
async fn attribute_change_updates_the_target_on_the_next_incremental_cycle() {
    let (world, rt) = sales_world(vec![]).await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(
            CONTOSO,
            &adele,
            json!({"jobTitle": "Senior Rep", "city": "Oslo"}),
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.kind, ctsync::engine::CycleKind::Incremental);
    assert_eq!(report.counts["update"], 1, "{report:?}");
    let target = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert_eq!(target.job_title.as_deref(), Some("Senior Rep"));
    assert_eq!(target.city.as_deref(), Some("Oslo"));
    // bob did not change: no write for him.
    assert_eq!(report.succeeded, 1);
}

#[tokio::test]
async fn disabled_source_user_is_disabled_in_the_target_not_deleted() {
    let (world, rt) = sales_world(vec![]).await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(CONTOSO, &adele, json!({"accountEnabled": false}))
        .await;
    let report = world.cycle(&rt).await;
    // Counted as what it is for the administrator: a disable (the plan writes it as an update).
    assert_eq!(report.counts["disable"], 1, "{report:?}");
    assert_eq!(report.counts["update"], 0, "{report:?}");
    let target = world
        .b2b_user(FABRIKAM, "adele")
        .await
        .expect("still there");
    assert_eq!(target.account_enabled, Some(false));
}

#[tokio::test]
async fn a_disabled_source_user_is_never_created() {
    let (world, _rt) = sales_world(vec![user(
        "carol",
        "contoso.com",
        json!({"department": "Sales", "accountEnabled": false}),
    )])
    .await;
    assert!(world.b2b_user(FABRIKAM, "carol").await.is_none());
}

#[tokio::test]
async fn leaving_scope_soft_deletes_and_returning_within_30_days_restores_the_same_user() {
    let (world, rt) = sales_world(vec![]).await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    let target_id = world.b2b_user(FABRIKAM, "adele").await.expect("adele").id;

    world
        .patch(CONTOSO, &adele, json!({"department": "Marketing"}))
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["softDelete"], 1, "{report:?}");
    let (_, deleted) = world
        .target_user_by_id(FABRIKAM, &target_id)
        .await
        .expect("in deletedItems");
    assert!(deleted, "soft-deleted, restorable");

    world.emulator.advance_clock(chrono::Duration::days(10));
    world
        .patch(CONTOSO, &adele, json!({"department": "Sales"}))
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["restore"], 1, "{report:?}");
    let (user, deleted) = world
        .target_user_by_id(FABRIKAM, &target_id)
        .await
        .expect("restored");
    assert!(!deleted);
    assert_eq!(user.department.as_deref(), Some("Sales"));
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 2, "no duplicate");
}

#[tokio::test]
async fn deleted_in_source_soft_deletes_the_target() {
    let (world, rt) = sales_world(vec![]).await;
    let bob = world.source_id(CONTOSO, "bob@contoso.com").await;
    let target_id = world.b2b_user(FABRIKAM, "bob").await.expect("bob").id;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{bob}"),
            None,
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["softDelete"], 1, "{report:?}");
    let (_, deleted) = world
        .target_user_by_id(FABRIKAM, &target_id)
        .await
        .expect("soft-deleted");
    assert!(deleted);
}

#[tokio::test]
async fn disabled_then_removed_from_scope_stays_disabled_as_entra_documents() {
    let (world, rt) = sales_world(vec![]).await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(CONTOSO, &adele, json!({"accountEnabled": false}))
        .await;
    world.cycle(&rt).await;
    world
        .patch(CONTOSO, &adele, json!({"department": "Marketing"}))
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["softDelete"], 0, "{report:?}");
    let target = world.b2b_user(FABRIKAM, "adele").await.expect("stays");
    assert_eq!(target.account_enabled, Some(false));
}

#[tokio::test]
async fn guests_and_external_users_of_the_source_are_never_synced() {
    let (world, _rt) = sales_world(vec![
        user(
            "guesty",
            "contoso.com",
            json!({"department": "Sales", "userType": "Guest"}),
        ),
        json!({
            "userPrincipalName": "ext_partner.com#EXT#@contoso.com",
            "displayName": "External",
            "mail": "ext@partner.com",
            "accountEnabled": true,
            "userType": "Member",
            "creationType": "Invitation",
            "department": "Sales",
        }),
    ])
    .await;
    let names: Vec<String> = world
        .b2b_users(FABRIKAM)
        .await
        .into_iter()
        .filter_map(|u| u.user_principal_name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("adele_") || n.starts_with("bob_"))
    );
}

#[tokio::test]
async fn target_edits_are_left_alone_until_the_source_changes() {
    let (world, rt) = sales_world(vec![]).await;
    let target = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    world
        .patch(
            FABRIKAM,
            &target.id,
            json!({"jobTitle": "Edited in target"}),
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.succeeded, 0, "{report:?}");
    let now = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert_eq!(now.job_title.as_deref(), Some("Edited in target"));

    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(CONTOSO, &adele, json!({"jobTitle": "Principal"}))
        .await;
    world.cycle(&rt).await;
    let now = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert_eq!(now.job_title.as_deref(), Some("Principal"));
}

#[tokio::test]
async fn target_that_turned_inbound_sync_off_gets_no_writes_and_a_precise_reason() {
    let (world, rt) = sales_world(vec![]).await;
    world
        .call(
            FABRIKAM,
            reqwest::Method::PATCH,
            &format!("policies/crossTenantAccessPolicy/partners/{CONTOSO}/identitySynchronization"),
            Some(json!({"userSyncInbound": {"isSyncAllowed": false}})),
        )
        .await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(
            CONTOSO,
            &adele,
            json!({"jobTitle": "Changed", "department": "Marketing"}),
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.succeeded, 0, "{report:?}");
    assert_eq!(report.blocked.as_deref(), Some("InboundSyncDisabled"));
    let target = world.b2b_user(FABRIKAM, "adele").await.expect("untouched");
    assert_eq!(target.job_title.as_deref(), Some("Rep"));
}

const MATCH_ON_MAIL: &str = "  mappings:
    - { target: mail, source: mail, matchingPriority: 1 }
    - { target: displayName, source: displayName }
    - { target: department, source: department }
    - { target: accountEnabled, source: accountEnabled }
    - { target: userType, constant: Member, apply: onCreate }
";

#[tokio::test]
async fn a_pre_existing_b2b_user_is_adopted_by_its_matching_attribute() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("adele", "contoso.com", json!({"department": "Sales"}))],
        )],
    );
    seed["tenants"][1]["users"] = json!([{
        "userPrincipalName": "adele_contoso.com#EXT#@fabrikam.com",
        "displayName": "Adele (invited by hand)",
        "mail": "adele@contoso.com",
        "accountEnabled": true,
        "userType": "Guest",
        "creationType": "Invitation",
    }]);
    let world = World::start(to_seed(seed)).await;
    let existing = world
        .b2b_user(FABRIKAM, "adele")
        .await
        .expect("pre-existing")
        .id;
    let file = world.pair_file(
        "adopt",
        CONTOSO,
        FABRIKAM,
        &format!("  scope: {{ mode: all }}\n{MATCH_ON_MAIL}"),
    );
    let rt = world.runtime(&file, "adopt");
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["adopt"], 1, "{report:?}");
    let users = world.b2b_users(FABRIKAM).await;
    assert_eq!(users.len(), 1, "adopted, not duplicated");
    assert_eq!(users[0].id, existing);
    assert_eq!(users[0].department.as_deref(), Some("Sales"));
    assert!(users[0].extensions.contains_key(&anchor_attribute()));
    // userType is onCreate only: an adopted guest stays a guest (Entra's documented behaviour).
    assert_eq!(users[0].user_type.as_deref(), Some("Guest"));
}

#[tokio::test]
async fn two_source_users_matching_one_target_user_are_disputed_and_neither_written() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![
                user(
                    "adele",
                    "contoso.com",
                    json!({"mail": "shared@contoso.com"}),
                ),
                user(
                    "adele2",
                    "contoso.com",
                    json!({"mail": "shared@contoso.com"}),
                ),
            ],
        )],
    );
    seed["tenants"][1]["users"] = json!([{
        "userPrincipalName": "shared_contoso.com#EXT#@fabrikam.com",
        "displayName": "Shared",
        "mail": "shared@contoso.com",
        "accountEnabled": true,
        "userType": "Member",
        "creationType": "Invitation",
    }]);
    let world = World::start(to_seed(seed)).await;
    let file = world.pair_file(
        "dispute",
        CONTOSO,
        FABRIKAM,
        &format!("  scope: {{ mode: all }}\n{MATCH_ON_MAIL}"),
    );
    let rt = world.runtime(&file, "dispute");
    let planned = ctsync::engine::compute_plan(&rt, world.store.as_ref(), &Default::default())
        .await
        .expect("plan");
    let disputed: Vec<_> = planned
        .plan
        .entries()
        .iter()
        .filter(|e| e.situation == ctsync::plan::Situation::Disputed)
        .collect();
    assert_eq!(disputed.len(), 2, "{}", planned.plan.to_text());
    let report = world.cycle(&rt).await;
    assert_eq!(report.succeeded, 0, "{report:?}");
    let users = world.b2b_users(FABRIKAM).await;
    assert_eq!(users.len(), 1);
    assert!(!users[0].extensions.contains_key(&anchor_attribute()));
}

#[tokio::test]
async fn manager_is_set_and_cleared_when_the_source_clears_it() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("boss", "contoso.com", json!({})), {
                let mut u = user("worker", "contoso.com", json!({}));
                u["manager"] = json!("boss@contoso.com");
                u
            }],
        )],
    ))
    .await;
    let file = world.pair_file("managers", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let rt = world.runtime(&file, "managers");
    let report = world.cycle(&rt).await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.manager_updates, 1, "{report:?}");
    let admin = world.admin(FABRIKAM);
    let worker = world.b2b_user(FABRIKAM, "worker").await.expect("worker");
    let boss = world.b2b_user(FABRIKAM, "boss").await.expect("boss");
    let manager: serde_json::Value = admin
        .send_json(
            reqwest::Method::GET,
            &format!("users/{}/manager", worker.id),
            None,
        )
        .await
        .expect("manager set");
    assert_eq!(manager["id"], json!(boss.id));

    let worker_source = world.source_id(CONTOSO, "worker@contoso.com").await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{worker_source}/manager/$ref"),
            None,
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.manager_updates, 1, "{report:?}");
    let gone = admin
        .send_json::<serde_json::Value>(
            reqwest::Method::GET,
            &format!("users/{}/manager", worker.id),
            None,
        )
        .await;
    assert!(gone.is_err_and(|e| e.is_not_found()), "manager cleared");
}

#[tokio::test]
async fn assigned_scope_follows_groups_and_removal_from_the_group_soft_deletes() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![
                user("adele", "contoso.com", json!({})),
                user("bob", "contoso.com", json!({})),
                user("nested", "contoso.com", json!({})),
                user("direct", "contoso.com", json!({})),
            ],
        )],
    );
    seed["tenants"][0]["groups"] = json!([
        {"id": "9a000000-0000-4000-8000-000000000001", "displayName": "Sync",
         "members": ["adele@contoso.com", "bob@contoso.com", "Inner"]},
        {"id": "9a000000-0000-4000-8000-000000000002", "displayName": "Inner",
         "members": ["nested@contoso.com"]},
    ]);
    seed["tenants"][0]["appRoleAssignments"] = json!([
        {"appId": APP, "principal": "Sync"},
        {"appId": APP, "principal": "direct@contoso.com"},
    ]);
    let world = World::start(to_seed(seed)).await;
    let file = world.pair_file(
        "assigned",
        CONTOSO,
        FABRIKAM,
        &format!(
            "  scope:\n    mode: assigned\n    servicePrincipalId: {}\n",
            service_principal(CONTOSO)
        ),
    );
    let rt = world.runtime(&file, "assigned");
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["create"], 3, "{report:?}");
    assert!(
        world.b2b_user(FABRIKAM, "nested").await.is_none(),
        "no cascade to nested groups"
    );

    let bob = world.source_id(CONTOSO, "bob@contoso.com").await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("groups/9a000000-0000-4000-8000-000000000001/members/{bob}/$ref"),
            None,
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["softDelete"], 1, "{report:?}");
    assert!(world.b2b_user(FABRIKAM, "bob").await.is_none());
    assert!(world.b2b_user(FABRIKAM, "adele").await.is_some());
}

#[tokio::test]
async fn a_mesh_of_three_tenants_syncs_members_once_and_never_loops() {
    let tenants = [
        (CONTOSO, "contoso.com"),
        (FABRIKAM, "fabrikam.com"),
        (NORTHWIND, "northwind.com"),
    ];
    let world = World::start(seed(
        &tenants,
        &[
            (CONTOSO, vec![user("ann", "contoso.com", json!({}))]),
            (FABRIKAM, vec![user("fred", "fabrikam.com", json!({}))]),
            (NORTHWIND, vec![user("nina", "northwind.com", json!({}))]),
        ],
    ))
    .await;
    let mut runtimes = Vec::new();
    for (source, _) in &tenants {
        for (target, _) in &tenants {
            if source == target {
                continue;
            }
            let name = format!("{}-to-{}", &source[..1], &target[..1]);
            let file = world.pair_file(&name, source, target, "  scope: { mode: all }\n");
            runtimes.push(world.runtime(&file, &name));
        }
    }
    for _round in 0..3 {
        for rt in &runtimes {
            let report = world.cycle(rt).await;
            assert_eq!(report.failed, 0, "{report:?}");
        }
    }
    for (tenant, _) in &tenants {
        let b2b = world.b2b_users(tenant).await;
        assert_eq!(
            b2b.len(),
            2,
            "each tenant holds the two other members, once: {b2b:?}"
        );
        for u in &b2b {
            let upn = u.user_principal_name.as_deref().unwrap_or_default();
            assert_eq!(upn.matches("#EXT#").count(), 1, "no B2B of a B2B: {upn}");
        }
    }
}

#[tokio::test]
async fn provision_on_demand_previews_applies_and_then_reports_no_change() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("adele", "contoso.com", json!({"department": "Sales"}))],
        )],
    ))
    .await;
    let file = world.pair_file("ondemand", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let rt = world.runtime(&file, "ondemand");
    let store = world.store.as_ref();

    let preview = ctsync::engine::provision_on_demand(&rt, store, "adele@contoso.com", true)
        .await
        .expect("dry run");
    let entry = preview.entry.as_ref().expect("an action");
    assert_eq!(entry.action, ctsync::plan::Action::Create);
    assert!(preview.succeeded.is_none());
    assert!(
        world.b2b_user(FABRIKAM, "adele").await.is_none(),
        "dry run writes nothing"
    );
    let department = preview
        .attributes
        .iter()
        .find(|a| a.target == "department")
        .expect("department row");
    assert_eq!(department.expression, "[department]");
    assert_eq!(department.new_target_value, Some(json!("Sales")));
    assert!(department.changed);
    assert!(preview.to_text().contains("4. action: create"));

    let applied = ctsync::engine::provision_on_demand(&rt, store, "adele@contoso.com", false)
        .await
        .expect("provision");
    assert_eq!(applied.succeeded, Some(true));
    let target = world.b2b_user(FABRIKAM, "adele").await.expect("created");
    assert_eq!(target.department.as_deref(), Some("Sales"));

    let again = ctsync::engine::provision_on_demand(&rt, store, "adele@contoso.com", false)
        .await
        .expect("second run");
    assert!(again.no_change(), "{}", again.to_text());
    assert_eq!(
        again.entry.as_ref().map(|e| e.reason),
        Some(ctsync::plan::Reason::RedundantExport)
    );
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 1);
}

// Multi-threaded: the emulator keeps serving while the test waits for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_command_previews_the_next_cycle_as_text_snapshot() {
    let users = vec![
        user(
            "adele",
            "contoso.com",
            json!({"id": "00000000-0000-4000-8000-00000000a001", "department": "Sales", "jobTitle": "Rep"}),
        ),
        user(
            "bob",
            "contoso.com",
            json!({"id": "00000000-0000-4000-8000-00000000b002", "department": "Sales", "jobTitle": "Lead"}),
        ),
        user(
            "carol",
            "contoso.com",
            json!({"id": "00000000-0000-4000-8000-00000000c003", "department": "Sales", "accountEnabled": false}),
        ),
    ];
    let (world, _, file) = sales_pair("preview", users).await;
    // The first cycle as the daemon runs it, so the job status records the full read it made
    // and the preview below is the incremental cycle that comes next, not the full reconcile
    // that a watermark without a recorded full read calls for.
    let state = world.dir.path().join("state.db");
    let mut command = World::run_command(&file, &state);
    command.arg("--once");
    let ran = World::output(command).await;
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    world
        .patch(
            CONTOSO,
            "00000000-0000-4000-8000-00000000a001",
            json!({"department": "Marketing"}),
        )
        .await;
    world
        .patch(
            CONTOSO,
            "00000000-0000-4000-8000-00000000b002",
            json!({"jobTitle": "Director"}),
        )
        .await;
    world
        .patch(
            CONTOSO,
            "00000000-0000-4000-8000-00000000c003",
            json!({"accountEnabled": true}),
        )
        .await;
    let before = world.b2b_users(FABRIKAM).await;

    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("ctsync")
            .expect("binary")
            .args(["plan", "--config"])
            .arg(&file)
            .arg("--state")
            .arg(state)
            .env("RUST_LOG", "error")
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    // Target object ids come from the emulator at random, and the plan carries its time.
    let mut redacted = text.clone();
    for u in &before {
        redacted = redacted.replace(&u.id, "<target-id>");
    }
    let redacted = regex::Regex::new(r"at \d{4}-\d\d-\d\dT[0-9:.]+Z")
        .expect("regex")
        .replace_all(&redacted, "at <now>")
        .into_owned();
    insta::assert_snapshot!(redacted);
    // The preview wrote nothing.
    let after = world.b2b_users(FABRIKAM).await;
    assert_eq!(
        serde_json::to_value(&before).expect("json"),
        serde_json::to_value(&after).expect("json")
    );
}

/// Kills the daemon (SIGKILL) at random points of its cycles, restarts it, and checks that in the
/// end every in-scope user exists exactly once with the latest values (invariant 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_and_restarted_loses_nothing_and_duplicates_nothing() {
    use rand::{Rng, SeedableRng};
    let people: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            user(
                &format!("u{i:02}"),
                "contoso.com",
                json!({"department": "Sales"}),
            )
        })
        .collect();
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, people)],
    ))
    .await;
    let file = world.pair_file("crash", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let state = world.dir.path().join("state.db");
    // Replay a failing schedule with CTSYNC_KILL_SEED=<the printed seed>.
    let seed_value: u64 = std::env::var("CTSYNC_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill schedule seed: {seed_value} (replay with CTSYNC_KILL_SEED={seed_value})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed_value);
    for round in 0..4 {
        if round == 2 {
            // A change made between crashes must not be lost.
            let id = world.source_id(CONTOSO, "u07@contoso.com").await;
            world
                .patch(CONTOSO, &id, json!({"jobTitle": "Changed mid-crash"}))
                .await;
        }
        let delay = std::time::Duration::from_millis(rng.random_range(30..700));
        let mut child = World::run_command(&file, &state)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("daemon starts");
        tokio::time::sleep(delay).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
    let mut command = World::run_command(&file, &state);
    command.arg("--once").env("RUST_LOG", "error");
    let finish = World::output(command).await;
    assert!(
        finish.status.success(),
        "{}",
        String::from_utf8_lossy(&finish.stderr)
    );

    let users = world.b2b_users(FABRIKAM).await;
    assert_eq!(users.len(), 40, "one target user per source user");
    let mut anchors: Vec<String> = users
        .iter()
        .map(|u| {
            u.extensions
                .get(&anchor_attribute())
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("{:?} has no anchor", u.user_principal_name))
                .to_owned()
        })
        .collect();
    anchors.sort();
    anchors.dedup();
    assert_eq!(anchors.len(), 40, "anchors are unique");
    let u07 = world.b2b_user(FABRIKAM, "u07").await.expect("u07");
    assert_eq!(u07.job_title.as_deref(), Some("Changed mid-crash"));
    // The store agrees: every user linked to the target user carrying its anchor, no open
    // intent, a watermark.
    use ctsync::store::StateStore;
    let store = ctsync::store::SqliteStore::open(&state).expect("store");
    let managed = store.managed_users("crash").await.expect("managed");
    assert_eq!(managed.len(), 40, "seed {seed_value}: every user linked");
    for m in &managed {
        let user = users
            .iter()
            .find(|u| u.id == m.target_id)
            .unwrap_or_else(|| panic!("seed {seed_value}: {} linked to a missing user", m.anchor));
        assert_eq!(
            user.extensions
                .get(&anchor_attribute())
                .and_then(|v| v.as_str()),
            Some(m.anchor.as_str()),
            "seed {seed_value}"
        );
    }
    assert!(
        store
            .create_intents("crash")
            .await
            .expect("intents")
            .is_empty(),
        "seed {seed_value}"
    );
    assert!(
        store.watermark("crash").await.expect("watermark").is_some(),
        "seed {seed_value}"
    );
}

/// The README's first command: the demo shows every kind of action and exits cleanly.
#[test]
fn demo_runs_its_script_and_shows_each_kind_of_action() {
    let output = assert_cmd::Command::cargo_bin("ctsync")
        .expect("binary")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--pause", "0s"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    for action in [
        "\"plan_action\":\"create\"",
        "\"plan_action\":\"update\"",
        "\"plan_action\":\"softDelete\"",
        "\"plan_action\":\"restore\"",
    ] {
        assert!(log.contains(action), "missing {action} in\n{log}");
    }
    assert!(
        log.lines().any(|l| l.contains("contoso-to-northwind")
            && l.contains("\"plan_action\":\"update\"")
            && l.contains("accountEnabled")),
        "the disable is an update of accountEnabled in Northwind"
    );
    assert!(
        log.lines().any(|l| l.contains("\"event\":\"groupCreated\"")
            && l.contains("Sales Team")
            && l.contains("Megan Bowen")),
        "the Sales Team group is created in Fabrikam with Megan in it\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("\"event\":\"groupWritten\"")
            && l.contains("\"members_removed\":\"Megan Bowen\"")),
        "Megan leaves the group when she leaves scope\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("\"event\":\"groupWritten\"")
            && l.contains("\"members_added\":\"Megan Bowen\"")),
        "and comes back with her\n{log}"
    );
    assert!(
        !log.contains("demo-only-not-a-secret"),
        "the demo secret never reaches logs"
    );
    // The closing summary README shows: per pair, by name.
    let summary = String::from_utf8_lossy(&output.stdout);
    for line in [
        "contoso-to-fabrikam",
        "  created    2  Adele Vance, Megan Bowen",
        "  restored   1  Megan Bowen",
        "  groups     3  Sales Team: create +Adele Vance +Megan Bowen; Sales Team: membership -Megan Bowen; Sales Team: membership +Megan Bowen",
        "contoso-to-northwind",
        "  disabled   1  Alex Wilber",
        "  deleted    1  Lynne Robbins",
    ] {
        assert!(
            summary.lines().any(|l| l == line),
            "missing {line:?} in\n{summary}"
        );
    }
}

#[tokio::test]
async fn a_target_user_soft_deleted_by_the_target_admin_is_reported_not_recreated() {
    let (world, rt) = sales_world(vec![]).await;
    let target = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    world
        .call(
            FABRIKAM,
            reqwest::Method::DELETE,
            &format!("users/{}", target.id),
            None,
        )
        .await;
    let options = ctsync::engine::CycleOptions {
        full: true,
        ..Default::default()
    };
    let planned = ctsync::engine::compute_plan(&rt, world.store.as_ref(), &options)
        .await
        .expect("plan");
    let anchor = ctsync::plan::Anchor::new(
        CONTOSO,
        &world.source_id(CONTOSO, "adele@contoso.com").await,
    );
    let entry = planned.plan.entry(&anchor).expect("adele is planned");
    assert_eq!(entry.action, ctsync::plan::Action::Skip);
    assert_eq!(entry.reason, ctsync::plan::Reason::TargetSoftDeletedByAdmin);
    let report = ctsync::engine::run_cycle(&rt, world.store.as_ref(), &options)
        .await
        .expect("cycle");
    assert_eq!(report.counts["create"], 0, "{report:?}");
    assert!(
        world.b2b_user(FABRIKAM, "adele").await.is_none(),
        "no duplicate"
    );
    let (_, deleted) = world
        .target_user_by_id(FABRIKAM, &target.id)
        .await
        .expect("still in deletedItems");
    assert!(deleted);
}

#[tokio::test]
async fn the_anchor_extension_is_registered_in_the_target_when_missing() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, vec![user("adele", "contoso.com", json!({}))])],
    );
    seed["tenants"][1]["applications"][0]["extensionProperties"] = json!([]);
    let world = World::start(to_seed(seed)).await;
    let file = world.pair_file("fresh", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let rt = world.runtime(&file, "fresh");
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["create"], 1, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    let adele = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert!(adele.extensions.contains_key(&anchor_attribute()));
}

#[tokio::test]
async fn an_anchor_on_an_application_unknown_to_the_target_stops_the_cycle_with_a_clear_error() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, vec![user("adele", "contoso.com", json!({}))])],
    ))
    .await;
    let file = world.pair_file(
        "elsewhere",
        CONTOSO,
        FABRIKAM,
        "  scope: { mode: all }\n  anchorAttribute: extension_0123456789abcdef0123456789abcdef_anchor\n",
    );
    let rt = world.runtime(&file, "elsewhere");
    let error = ctsync::engine::run_cycle(&rt, world.store.as_ref(), &Default::default())
        .await
        .expect_err("no such application in the target");
    assert_eq!(error.code(), "AnchorExtensionMissing", "{error}");
    assert!(
        world.b2b_users(FABRIKAM).await.is_empty(),
        "nothing written"
    );
}

/// SIGTERM: the daemon finishes what it is doing, records it and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_cleanly_after_recording_its_cycle() {
    use std::io::BufRead;
    let (world, _rt, file) = sales_pair(
        "term",
        vec![user("adele", "contoso.com", json!({"department": "Sales"}))],
    )
    .await;
    let state = world.dir.path().join("state.db");
    let mut child = World::run_command(&file, &state)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("daemon starts");
    let stderr = child.stderr.take().expect("stderr");
    let pid = child.id().to_string();
    let log = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        let mut reader = std::io::BufReader::new(stderr);
        let mut signalled = false;
        let mut line = String::new();
        while reader.read_line(&mut line).expect("read") > 0 {
            if !signalled && line.contains("cycleSummary") {
                let status = std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .expect("kill");
                assert!(status.success());
                signalled = true;
            }
            lines.push(std::mem::take(&mut line));
        }
        lines.join("")
    })
    .await
    .expect("joined");
    let status = child.wait().expect("exit");
    assert!(status.success(), "{log}");
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("daemon stopped"), "{log}");
    assert!(world.b2b_user(FABRIKAM, "adele").await.is_some());
    // The cycle was recorded: the next run is incremental and writes nothing.
    let rt = world.runtime(&file, "term");
    let report = world.cycle(&rt).await;
    assert_eq!(
        report.kind,
        ctsync::engine::CycleKind::Incremental,
        "{report:?}"
    );
    assert_eq!(report.succeeded, 0, "{report:?}");
}

/// Graph answers an expired delta token with 400 (directory objects, per a Microsoft blog) or
/// 410 Gone + Location (the delta overview): either way the next cycle is a full round that
/// still applies what changed meanwhile.
#[tokio::test]
async fn an_expired_delta_token_restarts_a_full_round_on_400_and_on_410() {
    let (world, rt) = sales_world(vec![]).await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    for (status, title) in [(400, "Buyer"), (410, "Lead Buyer")] {
        world.emulator.set_expired_delta_status(status);
        world.emulator.advance_clock(chrono::Duration::days(8));
        world
            .patch(CONTOSO, &adele, json!({"jobTitle": title}))
            .await;
        let report = world.cycle(&rt).await;
        assert_eq!(
            report.kind,
            ctsync::engine::CycleKind::Initial,
            "{status}: {report:?}"
        );
        let target = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
        assert_eq!(target.job_title.as_deref(), Some(title), "{status}");
    }
}
