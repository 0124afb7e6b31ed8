//! Group sync end to end: the engine against the emulator, the target checked through Graph.

use std::collections::BTreeSet;

use ctsync::store::StateStore;
use serde_json::{Value, json};

use crate::world::*;

const SALES: &str = "9b000000-0000-4000-8000-000000000001";
const INNER: &str = "9b000000-0000-4000-8000-000000000002";

/// Contoso: Sales (adele, bob, outsider, Inner), Inner (nested); carol outside any group.
/// The pair syncs Sales-department users of the assigned group Sales (plus nested, assigned
/// directly), and the group itself. `allow_groups` sets the target's groupSyncInbound.
fn world_seed(allow_groups: bool) -> Value {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![
                user("adele", "contoso.com", json!({"department": "Sales"})),
                user("bob", "contoso.com", json!({"department": "Sales"})),
                user("carol", "contoso.com", json!({"department": "Sales"})),
                user("nested", "contoso.com", json!({"department": "Sales"})),
                user("outsider", "contoso.com", json!({"department": "Ops"})),
            ],
        )],
    );
    seed["tenants"][0]["groups"] = json!([
        {"id": SALES, "displayName": "Sales", "description": "Sales team",
         "members": ["adele@contoso.com", "bob@contoso.com", "outsider@contoso.com", "Inner"]},
        {"id": INNER, "displayName": "Inner", "members": ["nested@contoso.com"]},
    ]);
    if allow_groups {
        for p in seed["tenants"][1]["partners"]
            .as_array_mut()
            .expect("partners")
        {
            p["identitySynchronization"]["groupSyncInbound"] = json!({"isSyncAllowed": true});
        }
    }
    seed
}

fn spec(groups_extra: &str, nested_id: &str) -> String {
    format!(
        "  scope:
    mode: assigned
    groups: [{SALES}]
    users: [{nested_id}]
    filters:
      - title: Sales only
        clauses:
          - {{attribute: department, operator: EQUALS, value: Sales}}
  groups:
    enabled: true
    mappings:
      - {{target: displayName, expression: 'Append([displayName], \" (Contoso)\")'}}
      - {{target: description, source: description}}
      - {{target: mailNickname, expression: 'Append([mailNickname], \"-contoso\")'}}
{groups_extra}"
    )
}

async fn target_group(world: &World, name: &str) -> Option<ctsync::graph::Group> {
    let filter = format!("displayName eq '{name}'");
    let mut found = world
        .admin(FABRIKAM)
        .list_groups(Some(&filter), &[])
        .await
        .expect("list target groups");
    assert!(found.len() <= 1, "one group named {name}: {found:?}");
    found.pop()
}

/// Aliases of the target group's members (B2B UPNs start with `alias_`).
async fn member_aliases(world: &World, group_id: &str) -> BTreeSet<String> {
    let admin = world.admin(FABRIKAM);
    let mut out = BTreeSet::new();
    for m in admin.group_members(group_id, false).await.expect("members") {
        let u = admin
            .get_user(&m.id, &[])
            .await
            .expect("get")
            .expect("user");
        let upn = u.user_principal_name.unwrap_or_default();
        out.insert(upn.split('_').next().unwrap_or_default().to_owned());
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn start(allow_groups: bool, groups_extra: &str) -> (World, std::path::PathBuf) {
    let world = World::start(to_seed(world_seed(allow_groups))).await;
    let nested = world.source_id(CONTOSO, "nested@contoso.com").await;
    let file = world.pair_file("groups", CONTOSO, FABRIKAM, &spec(groups_extra, &nested));
    (world, file)
}

#[tokio::test]
async fn assigned_group_is_created_and_its_membership_follows_the_source() {
    let (world, file) = start(true, "").await;
    let rt = world.runtime(&file, "groups");
    let report = world.cycle(&rt).await;
    let g = report.groups.expect("group pass ran");
    assert_eq!(g.counts["create"], 1, "{g:?}");
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    assert_eq!(group.description.as_deref(), Some("Sales team"));
    assert_eq!(group.mail_nickname.as_deref(), Some("Sales-contoso"));
    assert_eq!(group.security_enabled, Some(true));
    assert_eq!(group.mail_enabled, Some(false));
    // In-scope direct members only: not outsider (filtered out), not nested (no flatten).
    assert_eq!(
        member_aliases(&world, &group.id).await,
        set(&["adele", "bob"])
    );

    // Member added in the source.
    let carol = world.source_id(CONTOSO, "carol@contoso.com").await;
    world
        .call(
            CONTOSO,
            reqwest::Method::POST,
            &format!("groups/{SALES}/members/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{carol}")})),
        )
        .await;
    world.cycle(&rt).await;
    assert_eq!(
        member_aliases(&world, &group.id).await,
        set(&["adele", "bob", "carol"])
    );
    // Removed from the group (leaves scope: soft-deleted, and out of the target group);
    // disabled (stays, blocked); deleted in the source (leaves the group).
    let bob = world.source_id(CONTOSO, "bob@contoso.com").await;
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("groups/{SALES}/members/{bob}/$ref"),
            None,
        )
        .await;
    world
        .patch(CONTOSO, &adele, json!({"accountEnabled": false}))
        .await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{carol}"),
            None,
        )
        .await;
    let report = world.cycle(&rt).await;
    assert_eq!(report.counts["softDelete"], 2, "{report:?}");
    assert_eq!(member_aliases(&world, &group.id).await, set(&["adele"]));
    let adele_target = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert_eq!(adele_target.account_enabled, Some(false));
    // Renamed in the source: the same target group is renamed.
    world
        .call(
            CONTOSO,
            reqwest::Method::PATCH,
            &format!("groups/{SALES}"),
            Some(json!({"displayName": "Sales EMEA"})),
        )
        .await;
    world.cycle(&rt).await;
    let renamed = target_group(&world, "Sales EMEA (Contoso)")
        .await
        .expect("renamed");
    assert_eq!(renamed.id, group.id);
    // A quiet cycle: the group pass costs one request (its empty delta round).
    let before = world.cycle(&rt).await;
    let quiet = world.cycle(&rt).await;
    assert!(
        !quiet.groups.as_ref().is_some_and(|g| g.evaluated),
        "{quiet:?}"
    );
    assert!(quiet.graph_requests <= before.graph_requests, "{quiet:?}");
}

#[tokio::test]
async fn flatten_adds_in_scope_members_of_nested_groups() {
    let (world, file) = start(true, "    flatten: true\n").await;
    let rt = world.runtime(&file, "groups");
    world.cycle(&rt).await;
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    assert_eq!(
        member_aliases(&world, &group.id).await,
        set(&["adele", "bob", "nested"])
    );
}

#[tokio::test]
async fn unassigned_group_is_soft_deleted_and_restored_with_the_same_id() {
    let world = World::start(to_seed(world_seed(true))).await;
    // adele and bob are also assigned directly: unassigning the group keeps them in scope.
    let mut ids = Vec::new();
    for upn in ["nested@contoso.com", "adele@contoso.com", "bob@contoso.com"] {
        ids.push(world.source_id(CONTOSO, upn).await);
    }
    let file = world.pair_file("groups", CONTOSO, FABRIKAM, &spec("", &ids.join(", ")));
    let rt = world.runtime(&file, "groups");
    world.cycle(&rt).await;
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    // Unassign: the pair no longer lists the group (and nobody else assigns it).
    let text = std::fs::read_to_string(&file).expect("pair");
    std::fs::write(
        &file,
        text.replace(&format!("groups: [{SALES}]"), &format!("groups: [{INNER}]")),
    )
    .expect("rewrite");
    let rt2 = world.runtime(&file, "groups");
    let report = world.cycle(&rt2).await;
    assert_eq!(report.groups.expect("groups").counts["delete"], 1);
    assert!(target_group(&world, "Sales (Contoso)").await.is_none());
    let deleted = world
        .admin(FABRIKAM)
        .deleted_groups(None, &[])
        .await
        .expect("deleted groups");
    assert!(
        deleted.iter().any(|g| g.id == group.id),
        "soft-deleted, restorable"
    );
    // Reassigned within 30 days: restored, same object id.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .expect("pair")
            .replace(&format!("groups: [{INNER}]"), &format!("groups: [{SALES}]")),
    )
    .expect("rewrite");
    let rt3 = world.runtime(&file, "groups");
    let report = world.cycle(&rt3).await;
    assert_eq!(report.groups.expect("groups").counts["restore"], 1);
    let back = target_group(&world, "Sales (Contoso)")
        .await
        .expect("restored");
    assert_eq!(back.id, group.id);
    assert_eq!(
        member_aliases(&world, &back.id).await,
        set(&["adele", "bob"])
    );
}

#[tokio::test]
async fn target_side_membership_edits_are_left_reported_then_corrected() {
    let (world, file) = start(true, "").await;
    let rt = world.runtime(&file, "groups");
    world.cycle(&rt).await;
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    // By hand in the target: the admin joins, bob is removed.
    let admin = world.admin(FABRIKAM);
    let internal = admin
        .list_users(Some("userPrincipalName eq 'fabadmin@fabrikam.com'"), &[])
        .await
        .expect("list");
    let internal_id = match internal.first() {
        Some(u) => u.id.clone(),
        None => {
            let (s, u) = (
                (),
                admin
                    .send_json::<Value>(
                        reqwest::Method::POST,
                        "users",
                        Some(&json!({"accountEnabled": true, "displayName": "Fab Admin", "mailNickname": "fabadmin",
                            "userPrincipalName": "fabadmin@fabrikam.com",
                            "passwordProfile": {"password": "P@ssw0rd!x", "forceChangePasswordNextSignIn": false}})),
                    )
                    .await
                    .expect("create internal user"),
            );
            let () = s;
            u["id"].as_str().expect("id").to_owned()
        }
    };
    admin
        .add_group_member(&group.id, &internal_id)
        .await
        .expect("hand add");
    let bob_target = world.b2b_user(FABRIKAM, "bob").await.expect("bob").id;
    admin
        .remove_group_member(&group.id, &bob_target)
        .await
        .expect("hand remove");
    // Incremental cycle: left alone.
    world.cycle(&rt).await;
    assert_eq!(
        member_aliases(&world, &group.id).await,
        set(&["adele", "fabadmin@fabrikam.com"])
    );
    // Full cycle: reported, still left alone.
    world.store.clear_watermark("groups").await.expect("clear");
    let report = world.cycle(&rt).await;
    assert_eq!(report.groups.expect("groups").drift, 1);
    assert_eq!(
        member_aliases(&world, &group.id).await,
        set(&["adele", "fabadmin@fabrikam.com"])
    );
    // With drift correction: corrected on the next full cycle.
    let text = std::fs::read_to_string(&file).expect("pair");
    std::fs::write(&file, format!("{text}  driftCorrection: true\n")).expect("rewrite");
    let rt2 = world.runtime(&file, "groups");
    world.store.clear_watermark("groups").await.expect("clear");
    world.cycle(&rt2).await;
    assert_eq!(
        member_aliases(&world, &group.id).await,
        set(&["adele", "bob"])
    );
}

#[tokio::test]
async fn existing_target_group_is_disputed_without_a_rule_and_adopted_with_one() {
    let mut seed = world_seed(true);
    seed["tenants"][1]["groups"] = json!([
        {"id": "9c000000-0000-4000-8000-000000000001", "displayName": "Sales (Contoso)"},
    ]);
    let world = World::start(to_seed(seed)).await;
    let nested = world.source_id(CONTOSO, "nested@contoso.com").await;
    let file = world.pair_file("groups", CONTOSO, FABRIKAM, &spec("", &nested));
    let rt = world.runtime(&file, "groups");
    let report = world.cycle(&rt).await;
    assert_eq!(report.groups.expect("groups").counts["disputed"], 1);
    let existing = target_group(&world, "Sales (Contoso)")
        .await
        .expect("still one");
    assert!(
        member_aliases(&world, &existing.id).await.is_empty(),
        "never written"
    );
    let file = world.pair_file(
        "groups",
        CONTOSO,
        FABRIKAM,
        &spec("    matchingAttributes: [displayName]\n", &nested),
    );
    let rt = world.runtime(&file, "groups");
    let report = world.cycle(&rt).await;
    assert_eq!(report.groups.expect("groups").counts["adopt"], 1);
    let adopted = target_group(&world, "Sales (Contoso)").await.expect("one");
    assert_eq!(adopted.id, existing.id);
    assert_eq!(
        member_aliases(&world, &adopted.id).await,
        set(&["adele", "bob"])
    );
}

#[tokio::test]
async fn target_refusing_group_sync_gets_no_group_and_a_precise_reason() {
    let (world, file) = start(false, "").await;
    let rt = world.runtime(&file, "groups");
    let report = world.cycle(&rt).await;
    assert!(
        report.counts["create"] >= 2,
        "user sync goes on: {report:?}"
    );
    let g = report.groups.expect("groups");
    assert!(
        g.blocked
            .as_deref()
            .is_some_and(|b| b.contains("groupSyncInbound")),
        "{g:?}"
    );
    assert!(!g.watermark_saved);
    assert!(target_group(&world, "Sales (Contoso)").await.is_none());
}

/// Contoso's Big group: 25 Sales users, more than one request's 20 member binds.
async fn big_world() -> (World, std::path::PathBuf) {
    let mut seed = world_seed(true);
    let users: Vec<Value> = (0..25)
        .map(|i| {
            user(
                &format!("rep{i:02}"),
                "contoso.com",
                json!({"department": "Sales"}),
            )
        })
        .collect();
    seed["tenants"][0]["users"]
        .as_array_mut()
        .expect("users")
        .extend(users);
    let members: Vec<String> = (0..25).map(|i| format!("rep{i:02}@contoso.com")).collect();
    seed["tenants"][0]["groups"][0]["members"] = json!(members);
    let world = World::start(to_seed(seed)).await;
    let nested = world.source_id(CONTOSO, "nested@contoso.com").await;
    let file = world.pair_file("groups", CONTOSO, FABRIKAM, &spec("", &nested));
    (world, file)
}

#[tokio::test]
async fn crash_during_membership_writes_leaves_no_duplicate_and_loses_no_member() {
    use ctsync::engine::killpoint::{CrashAt, Step};
    for step in Step::GROUPS {
        let (world, file) = big_world().await;
        let rt = world.runtime(&file, "groups");
        let crash = std::sync::Arc::new(CrashAt::new(step, 1));
        let options = ctsync::engine::CycleOptions {
            crash: Some(crash.clone()),
            ..Default::default()
        };
        let err = ctsync::engine::run_cycle(&rt, world.store.as_ref(), &options)
            .await
            .expect_err("crashed");
        assert!(
            err.to_string().contains(step.as_str()) || crash.reached() == 1,
            "{err}"
        );
        // The group exists, half-populated; ctsync restarts (a new runtime) and carries on.
        let half = target_group(&world, "Sales (Contoso)")
            .await
            .expect("created");
        assert!(
            member_aliases(&world, &half.id).await.len() < 25,
            "{step:?}"
        );
        let rt = world.runtime(&file, "groups");
        let report = world.cycle(&rt).await;
        let g = report.groups.expect("groups");
        assert_eq!(g.failed, 0, "{step:?}: {g:?}");
        let group = target_group(&world, "Sales (Contoso)")
            .await
            .expect("one group");
        assert_eq!(group.id, half.id, "{step:?}: no duplicate");
        let expected: BTreeSet<String> = (0..25).map(|i| format!("rep{i:02}")).collect();
        assert_eq!(
            member_aliases(&world, &group.id).await,
            expected,
            "{step:?}"
        );
        // And the next cycle has nothing left to do.
        world.store.clear_watermark("groups").await.expect("clear");
        let again = world.cycle(&rt).await.groups.expect("groups");
        assert_eq!(
            again.member_adds + again.member_removals,
            0,
            "{step:?}: {again:?}"
        );
    }
}

/// In the source, bob leaves Sales and Sales is renamed "Sales EMEA".
async fn bob_leaves_and_sales_is_renamed(world: &World) {
    let bob = world.source_id(CONTOSO, "bob@contoso.com").await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("groups/{SALES}/members/{bob}/$ref"),
            None,
        )
        .await;
    world
        .call(
            CONTOSO,
            reqwest::Method::PATCH,
            &format!("groups/{SALES}"),
            Some(json!({"displayName": "Sales EMEA"})),
        )
        .await;
}

#[tokio::test]
async fn plan_shows_group_creates_and_membership_diffs_with_names_and_writes_nothing() {
    let (world, file) = start(true, "").await;
    let rt = world.runtime(&file, "groups");
    world.cycle(&rt).await;
    bob_leaves_and_sales_is_renamed(&world).await;
    let plan = ctsync::engine::groups::preview_group_plan(&rt, world.store.as_ref(), false)
        .await
        .expect("plan")
        .expect("group sync on");
    let text = plan.to_text();
    assert!(text.contains("update       Sales EMEA"), "{text}");
    assert!(
        text.contains("displayName = \"Sales EMEA (Contoso)\""),
        "{text}"
    );
    assert!(text.contains("- bob"), "{text}");
    // Nothing written: the target still has the old name and bob.
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("unchanged");
    assert_eq!(
        member_aliases(&world, &group.id).await,
        set(&["adele", "bob"])
    );
}

/// Graph's answer to a member add on a group that has not replicated yet (group-post-members:
/// 400, retry after a short delay).
fn not_replicated_yet(count: u32) -> Value {
    json!({"tenant": FABRIKAM, "method": "PATCH", "pathContains": "/groups/", "count": count,
        "status": 400, "code": "Request_BadRequest",
        "message": "The source resource object or one of the objects being referenced don't exist."})
}

#[tokio::test]
async fn a_just_created_groups_transient_400_is_retried_and_the_members_land() {
    let (world, file) = big_world().await;
    // The 5 members past the 20 bound at creation are added by a PATCH on the new group:
    // its first attempt meets the replication delay.
    world.fail_next(not_replicated_yet(1)).await;
    let rt = world.runtime(&file, "groups");
    let report = world.cycle(&rt).await;
    let g = report.groups.expect("groups");
    assert_eq!((g.succeeded, g.failed), (1, 0), "{g:?}");
    assert!(g.watermark_saved, "{g:?}");
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    let expected: BTreeSet<String> = (0..25).map(|i| format!("rep{i:02}")).collect();
    assert_eq!(member_aliases(&world, &group.id).await, expected);
    // The failed attempt reached the emulator (the fault was used up), and only one group exists.
    let writes = world.emulator.writes();
    let patches = writes
        .iter()
        .filter(|w| w.method == "PATCH" && w.path == format!("/groups/{}", group.id))
        .count();
    assert_eq!(patches, 1, "one successful member PATCH after the retry");
}

#[tokio::test]
async fn a_group_that_stays_unreplicated_fails_its_entry_and_the_next_cycle_completes_it() {
    let (world, file) = big_world().await;
    // More 400s than the retries: the entry fails, the watermark stays, nothing is lost.
    world.fail_next(not_replicated_yet(10)).await;
    let rt = world.runtime(&file, "groups");
    let g = world.cycle(&rt).await.groups.expect("groups");
    assert_eq!(g.failed, 1, "{g:?}");
    assert!(!g.watermark_saved, "{g:?}");
    world.clear_faults().await;
    let g = world.cycle(&rt).await.groups.expect("groups");
    assert_eq!(g.failed, 0, "{g:?}");
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("one group");
    assert_eq!(member_aliases(&world, &group.id).await.len(), 25);
}

/// Replaces every id the emulator generated (not the seed's fixed group ids) with a marker, and
/// sorts arrays of strings, so the snapshot does not depend on them.
fn redact_generated_ids(value: &mut Value) {
    match value {
        Value::String(s) if uuid::Uuid::parse_str(s).is_ok() && s != SALES && s != INNER => {
            *s = "[generated id]".into();
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                redact_generated_ids(item);
            }
            if items.iter().all(Value::is_string) {
                items.sort_by_key(|v| v.to_string());
            }
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                redact_generated_ids(v);
            }
        }
        _ => {}
    }
}

// Multi-threaded: the emulator keeps serving while the test waits for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_json_carries_group_creates_updates_and_member_diffs_with_names_snapshot() {
    let (world, file) = start(true, "").await;
    let rt = world.runtime(&file, "groups");
    world.cycle(&rt).await;
    // bob leaves Sales, Sales is renamed, and Inner (whose member is assigned) is assigned too.
    bob_leaves_and_sales_is_renamed(&world).await;
    let text = std::fs::read_to_string(&file).expect("pair");
    std::fs::write(
        &file,
        text.replace(
            &format!("groups: [{SALES}]"),
            &format!("groups: [{SALES}, {INNER}]"),
        ),
    )
    .expect("rewrite");
    let writes_before = world.emulator.writes().len();
    let state = world.dir.path().join("state.db");
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("ctsync")
            .expect("binary")
            .args(["plan", "--format", "json", "--config"])
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
    assert_eq!(world.emulator.writes().len(), writes_before, "plan wrote");
    let plans: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut groups = plans[0]["groups"].clone();
    let entries = groups["entries"].as_array().expect("entries");
    let create = entries
        .iter()
        .find(|e| e["action"] == "create")
        .expect("a create");
    assert_eq!(create["displayName"], "Inner", "{groups:#}");
    assert_eq!(create["addMembers"][0]["name"], "nested", "{groups:#}");
    let update = entries
        .iter()
        .find(|e| e["action"] == "update")
        .expect("an update");
    assert_eq!(update["changes"]["displayName"], "Sales EMEA (Contoso)");
    assert_eq!(update["removeMembers"][0]["name"], "bob", "{groups:#}");
    redact_generated_ids(&mut groups);
    insta::assert_json_snapshot!(groups);
}

#[tokio::test]
async fn group_sync_consent_is_read_on_graph_beta_and_turning_it_off_stops_group_writes() {
    let (world, file) = start(true, "").await;
    world.emulator.record_requests(true);
    let rt = world.runtime(&file, "groups");
    let report = world.cycle(&rt).await;
    assert_eq!(report.groups.expect("groups").counts["create"], 1);
    // groupSyncInbound exists on Graph beta only: the group pass reads it there.
    let policy =
        format!("policies/crossTenantAccessPolicy/partners/{CONTOSO}/identitySynchronization");
    let reads: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.tenant == FABRIKAM && r.path.ends_with("/identitySynchronization"))
        .map(|r| r.path)
        .collect();
    assert!(
        reads.contains(&format!("/beta/{policy}")),
        "the group consent read on beta: {reads:?}"
    );
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    // The target's admin turns group sync off (a beta PATCH, as in Graph's docs); the source
    // group is then renamed. Nothing is written to the group; the reason says why.
    let admin = world.admin(FABRIKAM);
    admin
        .send(
            reqwest::Method::PATCH,
            &admin.beta_url(&policy),
            &[],
            Some(&json!({"groupSyncInbound": {"isSyncAllowed": false}})),
            1,
        )
        .await
        .expect("beta PATCH");
    world
        .call(
            CONTOSO,
            reqwest::Method::PATCH,
            &format!("groups/{SALES}"),
            Some(json!({"displayName": "Sales EMEA"})),
        )
        .await;
    let writes_before = world.emulator.writes().len();
    let g = world.cycle(&rt).await.groups.expect("groups");
    assert!(
        g.blocked
            .as_deref()
            .is_some_and(|b| b.contains("groupSyncInbound")),
        "{g:?}"
    );
    let unchanged = target_group(&world, "Sales (Contoso)")
        .await
        .expect("already-synced groups are left as they are");
    assert_eq!(unchanged.id, group.id);
    let group_writes = world.emulator.writes()[writes_before..]
        .iter()
        .filter(|w| w.path.starts_with("/groups"))
        .count();
    assert_eq!(group_writes, 0);
}

/// `SelectUniqueValue` in a group mapping is checked against the target's groups: a name
/// another target group already holds is passed over for the next candidate, so the group is
/// created instead of clashing (disputed) with the one that has the name.
#[tokio::test]
async fn select_unique_value_in_a_group_mapping_skips_names_the_target_holds() {
    let mut seed = world_seed(true);
    seed["tenants"][1]["groups"] = json!([
        {"id": "9c000000-0000-4000-8000-000000000001", "displayName": "Sales (Contoso)"},
    ]);
    let world = World::start(to_seed(seed)).await;
    let nested = world.source_id(CONTOSO, "nested@contoso.com").await;
    let unique = "      - {target: displayName, expression: 'SelectUniqueValue(Append([displayName], \" (Contoso)\"), Append([displayName], \" (Contoso 2)\"))'}";
    let text = spec("", &nested).replace(
        "      - {target: displayName, expression: 'Append([displayName], \" (Contoso)\")'}",
        unique,
    );
    assert!(text.contains("SelectUniqueValue"), "{text}");
    let file = world.pair_file("groups", CONTOSO, FABRIKAM, &text);
    let rt = world.runtime(&file, "groups");
    let report = world.cycle(&rt).await;
    let counts = report.groups.expect("groups").counts;
    assert_eq!(counts.get("create"), Some(&1), "{counts:?}");
    assert_eq!(
        counts.get("disputed").copied().unwrap_or(0),
        0,
        "{counts:?}"
    );
    let created = target_group(&world, "Sales (Contoso 2)")
        .await
        .expect("created under the second candidate");
    assert_eq!(
        member_aliases(&world, &created.id).await,
        set(&["adele", "bob"])
    );
    let existing = target_group(&world, "Sales (Contoso)").await.expect("kept");
    assert!(member_aliases(&world, &existing.id).await.is_empty());
}

const EVERYONE: &str = "9b000000-0000-4000-8000-000000000003";

/// Sales (adele, bob) and Everyone (adele, bob, rep00–rep44), both assigned: the reps are in
/// scope through Everyone whatever Sales holds.
async fn two_group_world() -> (World, std::path::PathBuf) {
    let mut seed = world_seed(true);
    let reps: Vec<String> = (0..45).map(|i| format!("rep{i:02}")).collect();
    seed["tenants"][0]["users"]
        .as_array_mut()
        .expect("users")
        .extend(
            reps.iter()
                .map(|r| user(r, "contoso.com", json!({"department": "Sales"}))),
        );
    let mut everyone: Vec<String> = reps.iter().map(|r| format!("{r}@contoso.com")).collect();
    everyone.extend(["adele@contoso.com".to_owned(), "bob@contoso.com".to_owned()]);
    seed["tenants"][0]["groups"]
        .as_array_mut()
        .expect("groups")
        .push(json!({"id": EVERYONE, "displayName": "Everyone", "members": everyone}));
    let world = World::start(to_seed(seed)).await;
    let nested = world.source_id(CONTOSO, "nested@contoso.com").await;
    let spec = spec("", &nested).replace(
        &format!("groups: [{SALES}]"),
        &format!("groups: [{SALES}, {EVERYONE}]"),
    );
    let file = world.pair_file("groups", CONTOSO, FABRIKAM, &spec);
    (world, file)
}

#[tokio::test]
async fn member_writes_go_in_batches_a_duplicate_counts_as_done_and_each_member_is_logged() {
    let (world, file) = two_group_world().await;
    let rt = world.runtime(&file, "groups");
    let first = world.cycle(&rt).await.groups.expect("groups");
    assert_eq!((first.counts["create"], first.failed), (2, 0), "{first:?}");
    let sales = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    // In the source, the 45 reps join Sales and adele and bob leave it (they stay in scope
    // through Everyone). In the target, an admin already added rep00 by hand.
    let admin = world.admin(CONTOSO);
    for i in 0..45 {
        let rep = world
            .source_id(CONTOSO, &format!("rep{i:02}@contoso.com"))
            .await;
        admin.add_group_member(SALES, &rep).await.expect("join");
    }
    for alias in ["adele", "bob"] {
        let id = world
            .source_id(CONTOSO, &format!("{alias}@contoso.com"))
            .await;
        admin.remove_group_member(SALES, &id).await.expect("leave");
    }
    let rep00 = world.b2b_user(FABRIKAM, "rep00").await.expect("rep00").id;
    world
        .admin(FABRIKAM)
        .add_group_member(&sales.id, &rep00)
        .await
        .expect("hand add");

    world.emulator.record_requests(true);
    let report = world.cycle(&rt).await;
    let g = report.groups.clone().expect("groups");
    assert_eq!(
        (g.member_adds, g.member_removals, g.failed),
        (45, 2, 0),
        "{g:?}"
    );
    let expected: BTreeSet<String> = (0..45).map(|i| format!("rep{i:02}")).collect();
    assert_eq!(member_aliases(&world, &sales.id).await, expected);
    // 45 adds are 3 binds of at most 20, the 2 removals 2 `$ref` DELETEs: 5 requests in one
    // `$batch`. The bind chunk holding rep00 is refused whole (Graph's duplicate 400) and sent
    // again one `$ref` per member: one more `$batch`. Nothing else writes to the target.
    let target_writes: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.tenant == FABRIKAM && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        target_writes,
        vec!["POST /v1.0/$batch", "POST /v1.0/$batch"],
        "{report:?}"
    );
    // The anchor extensions were checked by the first cycle: this runtime does not ask again.
    let extension_reads: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("extensionProperties"))
        .map(|r| format!("{} {} {}", r.tenant, r.method, r.path))
        .collect();
    assert!(extension_reads.is_empty(), "{extension_reads:?}");
    // The provisioning log: one entry for the Sales update, naming every member and its result.
    let log = world
        .store
        .provisioning_log("groups", &ctsync::store::LogQuery::default())
        .await
        .expect("log");
    let groups: Vec<&ctsync::store::ProvisioningLogEntry> = log
        .iter()
        .filter(|e| e.source_identity.identity_type == "Group")
        .collect();
    let creates: BTreeSet<&str> = groups
        .iter()
        .filter(|e| e.provisioning_action == ctsync::store::ProvisioningAction::Create)
        .map(|e| e.target_identity.display_name.as_str())
        .collect();
    assert_eq!(
        creates,
        BTreeSet::from(["Sales (Contoso)", "Everyone (Contoso)"])
    );
    let update = groups
        .iter()
        .find(|e| e.provisioning_action == ctsync::store::ProvisioningAction::Update)
        .expect("the Sales update is logged");
    assert_eq!(update.source_identity.display_name, "Sales");
    assert_eq!(update.target_identity.id, sales.id);
    assert_eq!(
        update.provisioning_status_info.status,
        ctsync::store::ProvisioningResult::Success
    );
    let details = &update.target_system.details;
    assert_eq!(details["action"], "membership", "{details:?}");
    assert_eq!(details["membersRemoved"], json!(["adele", "bob"]));
    assert_eq!(
        details["membersAdded"].as_array().map(Vec::len),
        Some(45),
        "{details:?}"
    );
    let members = details["members"].as_array().expect("per-member results");
    let outcome = |name: &str| {
        members
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["outcome"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(outcome("rep00"), "alreadyMember");
    assert_eq!(outcome("rep01"), "added");
    assert_eq!(outcome("adele"), "removed");
    let members_property = update
        .modified_properties
        .iter()
        .find(|p| p.display_name == "members")
        .and_then(|p| p.new_value.clone())
        .unwrap_or_default();
    assert!(
        members_property.contains("removed: adele, bob"),
        "{members_property}"
    );
}

/// `ctsync provision --group …` as a child process against the emulator.
async fn provision_group(
    file: &std::path::Path,
    state: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let (file, state) = (file.to_owned(), state.to_owned());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("ctsync")
            .expect("binary")
            .args([
                "provision",
                "--pair",
                "groups",
                "--group",
                "Sales",
                "--config",
            ])
            .arg(&file)
            .arg("--state")
            .arg(&state)
            .args(&extra)
            .env("RUST_LOG", "error")
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("runs")
    })
    .await
    .expect("joined")
}

// Multi-threaded: the emulator keeps serving while the test waits for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_group_shows_each_member_and_dry_run_writes_nothing() {
    let (world, file) = start(true, "").await;
    let rt = world.runtime(&file, "groups");
    world.cycle(&rt).await;
    let group = target_group(&world, "Sales (Contoso)")
        .await
        .expect("created");
    // carol joins Sales (in scope, no target user yet); bob leaves it.
    let carol = world.source_id(CONTOSO, "carol@contoso.com").await;
    let bob = world.source_id(CONTOSO, "bob@contoso.com").await;
    let admin = world.admin(CONTOSO);
    admin.add_group_member(SALES, &carol).await.expect("join");
    admin.remove_group_member(SALES, &bob).await.expect("leave");
    let state = world.dir.path().join("state.db");

    let writes_before = world.emulator.writes().len();
    let out = provision_group(&file, &state, &["--dry-run", "--format", "json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        world.emulator.writes().len(),
        writes_before,
        "a dry run wrote"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["assigned"], true);
    assert_eq!(report["entry"]["action"], "update", "{report:#}");
    let row = |upn: &str| -> Value {
        report["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|r| r["userPrincipalName"] == upn || r["displayName"] == upn)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {upn}: {report:#}"))
    };
    let adele = row("adele@contoso.com");
    assert_eq!(
        (adele["inScope"].clone(), adele["action"].clone()),
        (json!(true), json!("already"))
    );
    assert!(adele["targetUserId"].is_string(), "{adele}");
    let carol_row = row("carol@contoso.com");
    assert_eq!(carol_row["inScope"], true);
    assert_eq!(carol_row["action"], "skipped");
    assert!(
        carol_row["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no target user yet")),
        "{carol_row}"
    );
    let outsider = row("outsider@contoso.com");
    assert_eq!(outsider["inScope"], false);
    assert!(
        outsider["scope"]
            .as_str()
            .is_some_and(|s| s.contains("scoping filter")),
        "{outsider}"
    );
    let bob_row = row("bob");
    assert_eq!(
        (bob_row["sourceMember"].clone(), bob_row["action"].clone()),
        (json!(false), json!("removed"))
    );

    // The text table, still a dry run.
    let out = provision_group(&file, &state, &["--dry-run"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[dry run]"), "{text}");
    assert!(text.contains("would remove"), "{text}");
    assert!(text.contains("carol@contoso.com"), "{text}");
    assert_eq!(
        world.emulator.writes().len(),
        writes_before,
        "a dry run wrote"
    );

    // For real: bob leaves the target group, and the provisioning log says so by name.
    let out = provision_group(&file, &state, &["--format", "json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["succeeded"], true, "{report:#}");
    assert_eq!(member_aliases(&world, &group.id).await, set(&["adele"]));
    let log = world
        .store
        .provisioning_log("groups", &ctsync::store::LogQuery::default())
        .await
        .expect("log");
    let on_demand = log
        .iter()
        .find(|e| e.cycle_id.starts_with("ondemand-") && e.source_identity.identity_type == "Group")
        .expect("the on-demand group write is logged");
    assert_eq!(
        on_demand.target_system.details["membersRemoved"],
        json!(["bob"])
    );
}
