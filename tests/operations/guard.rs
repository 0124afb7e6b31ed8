use ctsync::engine::JobCommand;
use ctsync::store::StateStore;
use serde_json::json;

use crate::harness::*;
use crate::world::*;

const GUARDED: &str = "  deletionGuard:
    threshold: 3
";

/// Moves these Contoso users out of Sales (and so out of scope).
async fn leave_sales(world: &World, aliases: &[&str]) {
    for alias in aliases {
        let id = world
            .source_id(CONTOSO, &format!("{alias}@contoso.com"))
            .await;
        world
            .patch(CONTOSO, &id, json!({"department": "Marketing"}))
            .await;
    }
}

async fn live_target_users(world: &World) -> usize {
    world.b2b_users(FABRIKAM).await.len()
}

#[tokio::test]
async fn a_mass_scope_change_is_staged_until_approved_and_approval_lets_it_through_once() {
    let world = two_tenants(sales(&["adele", "bob", "carol", "dan"])).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, &format!("{SALES_SCOPE}{GUARDED}"));
    let mut daemon = start(&world, &file);
    daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    assert_eq!(live_target_users(&world).await, 4);

    leave_sales(&world, &["adele", "bob", "carol"]).await;
    let staged = daemon.run_now(PAIR).await;
    assert_eq!(staged.reason.as_deref(), Some("TooManyDeletes"));
    let list = staged.staged_deletes.clone().expect("staged list");
    assert_eq!((list.deletes, list.disables, list.threshold), (3, 0, 3));
    let mut names: Vec<&str> = list
        .users
        .iter()
        .map(|u| u.user_principal_name.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["adele@contoso.com", "bob@contoso.com", "carol@contoso.com"]
    );
    assert!(list.users.iter().all(|u| !u.target_id.is_empty()));
    assert_eq!(live_target_users(&world).await, 4, "nothing deleted yet");
    // Visible in the provisioning log as stagedDelete too.
    let logged = world
        .store
        .provisioning_log(
            PAIR,
            &ctsync::store::LogQuery {
                action: Some(ctsync::store::ProvisioningAction::StagedDelete),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logged.len(), 3);

    // Without approval the next cycle deletes nothing and the list stays.
    let waiting = daemon.run_now(PAIR).await;
    assert_eq!(waiting.reason.as_deref(), Some("TooManyDeletes"));
    assert_eq!(waiting.staged_deletes, staged.staged_deletes);
    assert_eq!(live_target_users(&world).await, 4);

    // Approved: exactly those deletes run in the next cycle.
    daemon.restart(PAIR, "ForceDeletes").await.expect("approve");
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.counts["softDelete"], 3, "{report:?}");
    assert_eq!(report.counts["stagedDelete"], 0, "{report:?}");
    let approved = daemon
        .status_where(PAIR, |s| s.staged_deletes.is_none())
        .await;
    assert_eq!(approved.reason, None);
    assert_eq!(live_target_users(&world).await, 1);

    // The guard is armed again: the next mass removal is staged, not run.
    for alias in ["erin", "fay", "gus"] {
        world
            .call(
                CONTOSO,
                reqwest::Method::POST,
                "/users",
                Some(user(
                    alias,
                    "contoso.com",
                    json!({"department": "Sales", "passwordProfile": {"password": "x-Secret-1"}}),
                )),
            )
            .await;
    }
    daemon.run_now(PAIR).await;
    assert_eq!(live_target_users(&world).await, 4);
    leave_sales(&world, &["erin", "fay", "gus"]).await;
    let again = daemon.run_now(PAIR).await;
    assert_eq!(again.reason.as_deref(), Some("TooManyDeletes"));
    assert_eq!(again.staged_deletes.expect("staged").deletes, 3);
    assert_eq!(live_target_users(&world).await, 4);
    daemon.stop().await;
}

#[tokio::test]
async fn approve_deletes_command_is_the_same_approval() {
    let world = two_tenants(sales(&["adele", "bob", "carol"])).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, &format!("{SALES_SCOPE}{GUARDED}"));
    let mut daemon = start(&world, &file);
    daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    leave_sales(&world, &["adele", "bob", "carol"]).await;
    let staged = daemon.run_now(PAIR).await;
    assert!(staged.staged_deletes.is_some());
    daemon.command(PAIR, JobCommand::ApproveDeletes).await;
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.counts["softDelete"], 3, "{report:?}");
    assert_eq!(live_target_users(&world).await, 0);
    daemon.stop().await;
}

/// Failure 4: the approval names the staged set. A staged user who came back into scope is not
/// deleted, and users who left scope after the staging are judged by the guard on their own
/// (here: staged again), never deleted by an approval nobody gave for them.
#[tokio::test]
async fn approval_lets_through_exactly_the_staged_set_and_nothing_that_left_later() {
    let aliases: Vec<String> = (0..12).map(|i| format!("s{i:02}")).collect();
    let refs: Vec<&str> = aliases.iter().map(String::as_str).collect();
    let world = two_tenants(sales(&refs)).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, &format!("{SALES_SCOPE}{GUARDED}"));
    let mut daemon = start(&world, &file);
    daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    assert_eq!(live_target_users(&world).await, 12);

    leave_sales(&world, &refs[0..5]).await;
    let staged = daemon.run_now(PAIR).await;
    assert_eq!(staged.staged_deletes.expect("staged").deletes, 5);
    // Before the approval: s00 comes back, s05..s08 leave too.
    let s00 = world.source_id(CONTOSO, "s00@contoso.com").await;
    world
        .patch(CONTOSO, &s00, json!({"department": "Sales"}))
        .await;
    leave_sales(&world, &refs[5..9]).await;

    daemon.restart(PAIR, "ForceDeletes").await.expect("approve");
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.counts["softDelete"], 4, "s01..s04 only: {report:?}");
    assert_eq!(
        report.counts["stagedDelete"], 4,
        "s05..s08 staged: {report:?}"
    );
    let live: Vec<String> = world
        .b2b_users(FABRIKAM)
        .await
        .into_iter()
        .filter_map(|u| u.user_principal_name)
        .map(|upn| upn[..3].to_owned())
        .collect();
    for alias in ["s00", "s05", "s06", "s07", "s08", "s09", "s10", "s11"] {
        assert!(
            live.iter().any(|l| l == alias),
            "{alias} must stay: {live:?}"
        );
    }
    for alias in ["s01", "s02", "s03", "s04"] {
        assert!(
            !live.iter().any(|l| l == alias),
            "{alias} approved: {live:?}"
        );
    }
    daemon.stop().await;
}
