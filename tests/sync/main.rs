//! The sync engine end to end: pairs in YAML, the daemon's cycles against the Graph emulator
//! over loopback HTTP, each scenario asserting the target's state through Graph.

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
                user("adele", "contoso.com", json!({"department": "Sales", "jobTitle": "Rep"})),
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
