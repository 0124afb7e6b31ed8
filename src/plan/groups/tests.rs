use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::*;

fn settings() -> GroupPlanSettings {
    GroupPlanSettings {
        flatten: false,
        soft_delete: true,
        matching_attributes: Vec::new(),
        guard_enabled: true,
        guard_threshold: 500,
        full_cycle: false,
        drift_correction: false,
        blocked: None,
        force: false,
    }
}

fn attrs(name: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("displayName".to_string(), json!(name)),
        ("mailNickname".to_string(), json!(name.replace(' ', ""))),
    ])
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn source(id: &str, name: &str, direct: &[&str], transitive: &[&str]) -> SourceGroup {
    SourceGroup {
        id: id.into(),
        display_name: name.into(),
        kind: SourceGroupKind::Security,
        attributes: attrs(name),
        errors: Vec::new(),
        direct_members: set(direct),
        transitive_members: set(transitive),
    }
}

fn target(id: &str, name: &str, anchor: Option<&str>, members: Option<&[&str]>) -> TargetGroup {
    TargetGroup {
        id: id.into(),
        display_name: name.into(),
        attributes: attrs(name),
        anchor: anchor.map(str::to_string),
        security: true,
        deleted: false,
        members: members.map(set),
    }
}

fn link(source: &str, target: &str, name: &str, members: &[&str]) -> GroupLinkState {
    GroupLinkState {
        source_id: source.into(),
        target_id: target.into(),
        display_name: name.into(),
        exported: attrs(name),
        members: set(members),
        deleted_by_us: false,
    }
}

/// Source users u1..u4 are in scope with target users t1..t4; u9 is out of scope.
fn input() -> GroupPlanInput {
    GroupPlanInput {
        pair: "contoso-to-fabrikam".into(),
        settings: settings(),
        source_groups: Vec::new(),
        gone: BTreeSet::new(),
        links: Vec::new(),
        target_groups: Vec::new(),
        user_targets: (1..=4)
            .map(|i| (format!("u{i}"), format!("t{i}")))
            .collect(),
        user_names: (1..=4)
            .map(|i| (format!("t{i}"), format!("User {i}")))
            .collect(),
        complete: false,
    }
}

fn ids(m: &[MemberChange]) -> Vec<&str> {
    m.iter().map(|c| c.target_user_id.as_str()).collect()
}

#[test]
fn new_group_is_created_with_its_in_scope_direct_members() {
    let mut i = input();
    i.source_groups = vec![source(
        "s1",
        "Sales",
        &["u1", "u2", "u9"],
        &["u1", "u2", "u3", "u9"],
    )];
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(e.action, GroupAction::Create);
    assert_eq!(ids(&e.add_members), vec!["t1", "t2"]);
    assert_eq!(e.members_after, set(&["t1", "t2"]));
    i.settings.flatten = true;
    let p = plan_groups(&i);
    assert_eq!(ids(&p.entries[0].add_members), vec!["t1", "t2", "t3"]);
}

#[test]
fn skipped_kinds_carry_their_reason() {
    let mut i = input();
    for (id, kind) in [
        ("a", SourceGroupKind::MailEnabledSecurity),
        ("b", SourceGroupKind::Distribution),
        ("c", SourceGroupKind::RoleAssignable),
        ("d", SourceGroupKind::Microsoft365),
        ("e", SourceGroupKind::DynamicSecurity),
    ] {
        let mut g = source(id, id, &["u1"], &["u1"]);
        g.kind = kind;
        i.source_groups.push(g);
    }
    let p = plan_groups(&i);
    let actions: Vec<(&str, GroupAction, Option<GroupReason>)> = p
        .entries
        .iter()
        .map(|e| (e.source_id.as_str(), e.action, e.reason))
        .collect();
    assert_eq!(
        actions,
        vec![
            (
                "a",
                GroupAction::Skip,
                Some(GroupReason::MailEnabledSecurity)
            ),
            ("b", GroupAction::Skip, Some(GroupReason::Distribution)),
            ("c", GroupAction::Skip, Some(GroupReason::RoleAssignable)),
            ("d", GroupAction::Create, None),
            ("e", GroupAction::Create, None),
        ]
    );
    assert_eq!(
        SourceGroupKind::classify(&["DynamicMembership".into()], false, true, false),
        SourceGroupKind::DynamicSecurity
    );
    assert_eq!(
        SourceGroupKind::classify(&[], true, true, false),
        SourceGroupKind::MailEnabledSecurity
    );
}

#[test]
fn incremental_membership_follows_the_source_and_scope() {
    let mut i = input();
    // u2 left the group, u3 joined, u1 left scope (no target counterpart any more).
    i.user_targets.remove("u1");
    i.source_groups = vec![source("s1", "Sales", &["u1", "u3"], &[])];
    i.links = vec![link("s1", "g1", "Sales", &["t1", "t2"])];
    i.target_groups = vec![target("g1", "Sales", Some("s1"), None)];
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(e.action, GroupAction::Update);
    assert_eq!(ids(&e.add_members), vec!["t3"]);
    assert_eq!(ids(&e.remove_members), vec!["t1", "t2"]);
    assert!(e.changes.is_empty());
    assert_eq!(e.members_after, set(&["t3"]));
}

#[test]
fn rename_is_an_attribute_update() {
    let mut i = input();
    i.source_groups = vec![source("s1", "Sales EMEA", &["u1"], &[])];
    i.links = vec![link("s1", "g1", "Sales", &["t1"])];
    i.target_groups = vec![target("g1", "Sales", Some("s1"), None)];
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(e.action, GroupAction::Update);
    assert_eq!(e.changes["displayName"], json!("Sales EMEA"));
    assert_eq!(e.changes["mailNickname"], json!("SalesEMEA"));
    // Applied: planning again is a no-op.
    i.links = vec![GroupLinkState {
        exported: e.exported_after.clone(),
        members: e.members_after.clone(),
        ..link("s1", "g1", "Sales EMEA", &[])
    }];
    assert_eq!(plan_groups(&i).entries[0].action, GroupAction::NoChange);
}

#[test]
fn full_cycle_reports_target_side_edits_and_corrects_them_on_request() {
    let mut i = input();
    i.settings.full_cycle = true;
    i.source_groups = vec![source("s1", "Sales", &["u1", "u2"], &[])];
    i.links = vec![link("s1", "g1", "Sales", &["t1", "t2"])];
    // By hand in the target: t2 removed, t4 added.
    i.target_groups = vec![target("g1", "Sales", Some("s1"), Some(&["t1", "t4"]))];
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(e.action, GroupAction::NoChange);
    let d = e.drift.as_ref().expect("drift");
    assert_eq!(ids(&d.added_in_target), vec!["t4"]);
    assert_eq!(ids(&d.removed_in_target), vec!["t2"]);
    assert!(!d.corrected);
    i.settings.drift_correction = true;
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(ids(&e.add_members), vec!["t2"]);
    assert_eq!(ids(&e.remove_members), vec!["t4"]);
    assert!(e.drift.as_ref().is_some_and(|d| d.corrected));
    // Incremental cycles leave target-side edits alone.
    i.settings.full_cycle = false;
    assert_eq!(plan_groups(&i).entries[0].action, GroupAction::NoChange);
}

#[test]
fn member_back_in_scope_is_added_on_the_next_cycle() {
    let mut i = input();
    i.source_groups = vec![source("s1", "Sales", &["u1", "u2"], &[])];
    i.links = vec![link("s1", "g1", "Sales", &["t1"])];
    i.target_groups = vec![target("g1", "Sales", Some("s1"), None)];
    assert_eq!(ids(&plan_groups(&i).entries[0].add_members), vec!["t2"]);
}

#[test]
fn gone_source_group_is_soft_deleted_and_restored_when_back() {
    let mut i = input();
    i.links = vec![link("s1", "g1", "Sales", &["t1"])];
    i.target_groups = vec![target("g1", "Sales", Some("s1"), None)];
    i.gone = set(&["s1"]);
    let p = plan_groups(&i);
    assert_eq!(p.entries[0].action, GroupAction::Delete);
    assert_eq!(p.entries[0].target_id.as_deref(), Some("g1"));
    // Applied: the link says ctsync deleted it; back in scope → restore, same id.
    i.links[0].deleted_by_us = true;
    i.target_groups[0].deleted = true;
    i.gone.clear();
    assert!(plan_groups(&i).entries.is_empty());
    i.source_groups = vec![source("s1", "Sales", &["u1", "u2"], &[])];
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(e.action, GroupAction::Restore);
    assert_eq!(e.target_id.as_deref(), Some("g1"));
    assert_eq!(ids(&e.add_members), vec!["t2"]);
    // Deleted by the target's admin instead: reported, not restored.
    i.links[0].deleted_by_us = false;
    let p = plan_groups(&i);
    assert_eq!(p.entries[0].reason, Some(GroupReason::DeletedByTargetAdmin));
    // deprovision none: left alone.
    i.settings.soft_delete = false;
    i.source_groups.clear();
    i.gone = set(&["s1"]);
    i.target_groups[0].deleted = false;
    assert_eq!(plan_groups(&i).entries[0].action, GroupAction::Skip);
}

#[test]
fn adoption_by_rule_and_a_disputed_clash() {
    let mut i = input();
    i.source_groups = vec![source("s1", "Sales", &["u1"], &[])];
    i.target_groups = vec![target("x1", "Sales", None, None)];
    // No rule: a name clash is disputed, never merged.
    let p = plan_groups(&i);
    assert_eq!(p.entries[0].action, GroupAction::Disputed);
    assert_eq!(p.entries[0].reason, Some(GroupReason::NameClash));
    assert_eq!(p.entries[0].candidates, vec!["x1"]);
    // Rule on displayName: adopted, anchor and attributes written, members added.
    i.settings.matching_attributes = vec!["displayName".into()];
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(e.action, GroupAction::Adopt);
    assert_eq!(e.target_id.as_deref(), Some("x1"));
    assert_eq!(ids(&e.add_members), vec!["t1"]);
    // Two candidates: disputed.
    i.target_groups.push(target("x2", "sales", None, None));
    let p = plan_groups(&i);
    assert_eq!(p.entries[0].action, GroupAction::Disputed);
    assert_eq!(
        p.entries[0].reason,
        Some(GroupReason::SeveralAdoptionCandidates)
    );
    // A mail-enabled or non-security target group is never adopted.
    i.target_groups.pop();
    i.target_groups[0].security = false;
    assert_eq!(plan_groups(&i).entries[0].action, GroupAction::Disputed);
}

#[test]
fn anchored_group_without_a_link_is_continued_not_duplicated() {
    let mut i = input();
    i.source_groups = vec![source("s1", "Sales", &["u1", "u2"], &[])];
    i.target_groups = vec![target("g1", "Sales", Some("s1"), None)];
    let p = plan_groups(&i);
    let e = &p.entries[0];
    assert_eq!(e.action, GroupAction::Update);
    assert_eq!(e.target_id.as_deref(), Some("g1"));
    assert_eq!(ids(&e.add_members), vec!["t1", "t2"]);
}

#[test]
fn guard_stages_group_deletes_and_member_removals() {
    let mut i = input();
    i.settings.guard_threshold = 3;
    i.source_groups = vec![source("s1", "Sales", &[], &[])];
    i.links = vec![
        link("s1", "g1", "Sales", &["t1", "t2"]),
        link("s2", "g2", "Ops", &[]),
    ];
    i.target_groups = vec![
        target("g1", "Sales", Some("s1"), None),
        target("g2", "Ops", Some("s2"), None),
    ];
    i.gone = set(&["s2"]);
    let p = plan_groups(&i);
    assert!(p.guard.triggered);
    assert_eq!(p.count(GroupAction::StagedDelete), 1);
    assert_eq!(p.member_removals(), 0);
    assert_eq!(p.entries[0].members_after, set(&["t1", "t2"]));
    i.settings.force = true;
    let p = plan_groups(&i);
    assert!(p.guard.forced);
    assert_eq!(p.count(GroupAction::Delete), 1);
    assert_eq!(p.member_removals(), 2);
}

#[test]
fn target_refusing_group_sync_blocks_every_write() {
    let mut i = input();
    i.settings.blocked = Some("groupSyncInbound.isSyncAllowed is false".into());
    i.source_groups = vec![source("s1", "Sales", &["u1"], &[])];
    i.links = vec![link("s2", "g2", "Ops", &["t1"])];
    i.target_groups = vec![target("g2", "Ops", Some("s2"), None)];
    i.gone = set(&["s2"]);
    let p = plan_groups(&i);
    assert!(p.writes().next().is_none());
    assert!(
        p.entries
            .iter()
            .all(|e| e.reason == Some(GroupReason::SyncNotAllowed))
    );
}

#[test]
fn plan_is_the_same_whatever_the_input_order() {
    let mut i = input();
    i.source_groups = vec![
        source("s2", "Ops", &["u2"], &[]),
        source("s1", "Sales", &["u1"], &[]),
    ];
    let a = plan_groups(&i);
    i.source_groups.reverse();
    assert_eq!(a, plan_groups(&i));
}

#[test]
fn snapshot_group_plan_text() {
    let mut i = input();
    i.settings.full_cycle = true;
    i.settings.matching_attributes = vec!["displayName".into()];
    i.source_groups = vec![
        source("s1", "Sales", &["u1", "u2"], &[]),
        source("s2", "Engineering", &["u3"], &[]),
        source("s3", "Finance", &["u4"], &[]),
        {
            let mut g = source("s4", "All staff (mail)", &["u1"], &[]);
            g.kind = SourceGroupKind::MailEnabledSecurity;
            g
        },
    ];
    i.links = vec![
        link("s1", "g1", "Sales", &["t1", "t2"]),
        link("s5", "g5", "Old project", &["t1"]),
    ];
    i.target_groups = vec![
        target("g1", "Sales", Some("s1"), Some(&["t1", "t4"])),
        target("x3", "Finance", None, Some(&[])),
        target("g5", "Old project", Some("s5"), None),
    ];
    i.gone = set(&["s5"]);
    insta::assert_snapshot!(plan_groups(&i).to_text());
}
