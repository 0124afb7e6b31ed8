//! The group pass: after the user pass, the groups assigned to the pair are planned
//! (`plan::groups`) and the plan is carried out, entry by entry, each success recorded in the
//! store before the next. The source `groups/delta` link is the group watermark: a cycle in
//! which neither groups nor users changed costs one request (the empty delta round), and the
//! watermark moves only when every entry was done.
//!
//! Crash safety: a created group carries its anchor from the `POST` on, so a crash before its
//! link is stored finds it by anchor next cycle and carries on (no duplicate); membership adds
//! are idempotent (an "already exists" 400 counts as done) and removals tolerate 404.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::config::{GroupDeprovision, default_group_mappings};
use crate::expr::EvalContext;
use crate::graph::{GraphError, Group};
use crate::mapping::{MapMode, MappingSet, SourceAttributes};
use crate::plan::groups::{
    GroupAction, GroupEntry, GroupLinkState, GroupPlan, GroupPlanInput, GroupPlanSettings,
    SourceGroup, SourceGroupKind, TargetGroup, plan_groups,
};
use crate::store::{StateStore, StoreWrite, Watermark};

use super::EngineError;
use super::killpoint::CrashAt;
use super::read::graph_error;
use super::runtime::PairRuntime;
use super::unique;

/// What the group pass did, for the cycle report, status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPassReport {
    /// Groups were planned this cycle (false: nothing changed, one delta request).
    pub evaluated: bool,
    /// Entry counts by action.
    pub counts: BTreeMap<String, usize>,
    pub member_adds: usize,
    pub member_removals: usize,
    pub drift: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Why nothing was written (the target refuses group sync).
    pub blocked: Option<String>,
    pub guard_triggered: bool,
    pub watermark_saved: bool,
}

/// Runs the group pass for a pair with `spec.groups`; `None` when group sync is off.
pub async fn run_group_pass(
    rt: &PairRuntime,
    store: &dyn StateStore,
    cycle_id: &str,
    users_changed: bool,
    full: bool,
    crash: Option<&CrashAt>,
) -> Result<Option<(GroupPassReport, Option<GroupPlan>)>, EngineError> {
    if rt.pair.groups.is_none() {
        return Ok(None);
    }
    let source_error = |e| graph_error("source", &rt.pair.source.tenant_id, e);
    let target_error = |e| graph_error("target", &rt.pair.target.tenant_id, e);
    let anchor_attr = rt.pair.group_anchor_attribute();
    let sync = rt
        .target
        .identity_synchronization_with_groups(&rt.pair.source.tenant_id)
        .await
        .map_err(target_error)?;
    let blocked = (!sync.as_ref().is_some_and(|s| s.group_sync_allowed())).then(|| {
        "the target does not allow group sync from this source \
         (identitySynchronization groupSyncInbound.isSyncAllowed is not true)"
            .to_owned()
    });
    let state = store.group_state(rt.name()).await?;
    let start = rt.source.groups_delta_start(&[]);
    let (round, restarted) = match &state.watermark {
        // A link from another Graph endpoint (`graph.baseUrl` changed) cannot be followed.
        Some(w) if !rt.source.is_own_link(&w.delta_link) => {
            tracing::warn!(
                pair = rt.name(),
                event = "watermarkFromAnotherEndpoint",
                graph_origin = %rt.source.origin(),
                "the stored group delta link is for another Graph endpoint (graph.baseUrl \
                 changed): this pass reads the groups in full"
            );
            (
                rt.source.groups_delta(&start).await.map_err(source_error)?,
                true,
            )
        }
        Some(w) => match rt.source.groups_delta(&w.delta_link).await {
            Ok(r) => (r, false),
            Err(GraphError::DeltaResyncRequired { .. }) => (
                rt.source.groups_delta(&start).await.map_err(source_error)?,
                true,
            ),
            Err(e) => return Err(source_error(e)),
        },
        None => (
            rt.source.groups_delta(&start).await.map_err(source_error)?,
            true,
        ),
    };
    let mut report = GroupPassReport::default();
    let evaluated_before = rt
        .groups_evaluated
        .load(std::sync::atomic::Ordering::Acquire);
    let quiet = evaluated_before && !restarted && round.items.is_empty() && !users_changed && !full;
    if quiet && blocked.is_none() {
        store
            .commit(
                rt.name(),
                vec![StoreWrite::SaveGroupWatermark(Watermark {
                    delta_link: round.delta_link,
                    saved_at: Utc::now(),
                })],
            )
            .await?;
        report.watermark_saved = true;
        return Ok(Some((report, None)));
    }
    if blocked.is_none() {
        ensure_group_anchor(rt, &anchor_attr).await?;
    }
    let input = read_input(rt, store, &state.links, &anchor_attr, full, blocked, None).await?;
    let plan = plan_groups(&input);
    report.evaluated = true;
    for a in [
        GroupAction::Create,
        GroupAction::Adopt,
        GroupAction::Update,
        GroupAction::Restore,
        GroupAction::Delete,
        GroupAction::StagedDelete,
        GroupAction::NoChange,
        GroupAction::Skip,
        GroupAction::Disputed,
    ] {
        report.counts.insert(a.as_str().to_owned(), plan.count(a));
    }
    report.member_adds = plan.member_adds();
    report.member_removals = plan.member_removals();
    report.drift = plan.entries.iter().filter(|e| e.drift.is_some()).count();
    report.blocked = plan.blocked.clone();
    report.guard_triggered = plan.guard.triggered;
    for e in &plan.entries {
        log_entry(rt, e);
    }
    if plan.blocked.is_none() {
        for e in plan
            .entries
            .iter()
            .filter(|e| matches!(e.action, GroupAction::Disputed | GroupAction::StagedDelete))
        {
            super::group_apply::log_unwritten(rt, store, cycle_id, e).await?;
        }
        for e in plan.writes() {
            match super::group_apply::apply_entry(rt, store, cycle_id, e, &anchor_attr, crash).await
            {
                Ok(_) => report.succeeded += 1,
                Err(err @ EngineError::Crashed(_)) => return Err(err),
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(
                        pair = rt.name(),
                        group = %e.display_name,
                        source_group_id = %e.source_id,
                        action = e.action.as_str(),
                        error = %err,
                        "group write failed; retried next cycle"
                    );
                }
            }
        }
        rt.groups_evaluated
            .store(true, std::sync::atomic::Ordering::Release);
        if report.failed == 0 {
            store
                .commit(
                    rt.name(),
                    vec![StoreWrite::SaveGroupWatermark(Watermark {
                        delta_link: round.delta_link,
                        saved_at: Utc::now(),
                    })],
                )
                .await?;
            report.watermark_saved = true;
        }
    }
    Ok(Some((report, Some(plan))))
}

/// The group plan the next cycle would carry out, writing nothing (for `ctsync plan`).
/// Memberships count the users the store links now: users the user plan would create join
/// their groups in the cycle that creates them.
pub async fn preview_group_plan(
    rt: &PairRuntime,
    store: &dyn StateStore,
    full: bool,
) -> Result<Option<GroupPlan>, EngineError> {
    if rt.pair.groups.is_none() {
        return Ok(None);
    }
    let sync = rt
        .target
        .identity_synchronization_with_groups(&rt.pair.source.tenant_id)
        .await
        .map_err(|e| graph_error("target", &rt.pair.target.tenant_id, e))?;
    let blocked = (!sync.as_ref().is_some_and(|s| s.group_sync_allowed())).then(|| {
        "the target does not allow group sync from this source \
         (identitySynchronization groupSyncInbound.isSyncAllowed is not true)"
            .to_owned()
    });
    let state = store.group_state(rt.name()).await?;
    let anchor_attr = rt.pair.group_anchor_attribute();
    let input = read_input(rt, store, &state.links, &anchor_attr, full, blocked, None).await?;
    Ok(Some(plan_groups(&input)))
}

fn log_entry(rt: &PairRuntime, e: &GroupEntry) {
    if e.action == GroupAction::NoChange && e.drift.is_none() && e.reason.is_none() {
        return;
    }
    let members_added: Vec<&str> = e.add_members.iter().map(|m| m.name.as_str()).collect();
    let members_removed: Vec<&str> = e.remove_members.iter().map(|m| m.name.as_str()).collect();
    tracing::info!(
        event = "groupPlanned",
        pair = rt.name(),
        group = %e.display_name,
        source_group_id = %e.source_id,
        target_group_id = e.target_id.as_deref().unwrap_or(""),
        action = e.action.as_str(),
        reason = e.reason.map(|r| r.describe()).unwrap_or(""),
        members_added = %members_added.join(", "),
        members_removed = %members_removed.join(", "),
        drift = e.drift.is_some(),
        "group planned"
    );
}

/// Registers the group anchor extension (targetObjects Group) on the target app when missing;
/// once per runtime.
pub(super) async fn ensure_group_anchor(
    rt: &PairRuntime,
    attribute: &str,
) -> Result<(), EngineError> {
    rt.group_anchor_ready
        .get_or_try_init(|| {
            super::cycle::ensure_anchor_extension(
                rt,
                attribute,
                super::cycle::AnchorOf::Group,
                true,
            )
        })
        .await
        .map(|_| ())
}

/// The groups assigned to the pair: `scope.groups` plus groups assigned to its service principal.
pub(super) async fn assigned_groups(rt: &PairRuntime) -> Result<BTreeSet<String>, EngineError> {
    let mut groups: BTreeSet<String> = rt.pair.scope.groups.iter().cloned().collect();
    if let Some(sp) = &rt.pair.scope.service_principal_id {
        for a in rt
            .source
            .app_role_assigned_to(sp)
            .await
            .map_err(|e| graph_error("source", &rt.pair.source.tenant_id, e))?
        {
            if a.principal_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("Group"))
            {
                groups.insert(a.principal_id);
            }
        }
    }
    Ok(groups)
}

fn odata_escape(v: &str) -> String {
    v.replace('\'', "''")
}

fn target_group(g: &Group, anchor_attr: &str, deleted: bool) -> TargetGroup {
    let attributes: BTreeMap<String, Value> = g
        .to_attributes()
        .into_iter()
        .filter(|(k, _)| k != "id" && !k.starts_with("extension_"))
        .collect();
    let group_types_empty = g.group_types.as_ref().is_none_or(Vec::is_empty);
    // Soft-deleted security groups report securityEnabled false (a Graph bug): trust groupTypes.
    let security = group_types_empty
        && !g.mail_enabled.unwrap_or(false)
        && (deleted || g.security_enabled.unwrap_or(false));
    TargetGroup {
        id: g.id.clone(),
        display_name: g.display_name.clone().unwrap_or_default(),
        attributes,
        anchor: g.extension(anchor_attr).map(str::to_owned),
        security,
        deleted,
        members: None,
    }
}

/// Reads the source groups, the target groups and the user links into the planner's input.
/// `only`: just this source group (on-demand provisioning): the input is then not complete,
/// so no other linked group is taken for gone.
pub(super) async fn read_input(
    rt: &PairRuntime,
    store: &dyn StateStore,
    links: &[GroupLinkState],
    anchor_attr: &str,
    full: bool,
    blocked: Option<String>,
    only: Option<&str>,
) -> Result<GroupPlanInput, EngineError> {
    let settings = rt
        .pair
        .groups
        .clone()
        .ok_or_else(|| EngineError::Preflight {
            code: "GroupSyncOff".into(),
            message: "group sync is not configured".into(),
        })?;
    let source_error = |e| graph_error("source", &rt.pair.source.tenant_id, e);
    let target_error = |e| graph_error("target", &rt.pair.target.tenant_id, e);
    let specs = settings
        .mappings
        .clone()
        .unwrap_or_else(default_group_mappings);
    // Config validation compiled these already; a failure here is reported per group.
    let mappings = MappingSet::compile(&specs).map_err(|errors| EngineError::Preflight {
        code: "GroupMappingInvalid".into(),
        message: format!("{} group mapping error(s)", errors.len()),
    })?;
    let mut raw = Vec::new();
    let mut gone = BTreeSet::new();
    let mut assigned = assigned_groups(rt).await?;
    if let Some(only) = only {
        assigned.retain(|id| id == only);
    }
    let links: Vec<GroupLinkState> = links
        .iter()
        .filter(|l| only.is_none_or(|o| l.source_id == o))
        .cloned()
        .collect();
    let links = links.as_slice();
    for id in assigned {
        let Some(g) = rt.source.get_group(&id, &[]).await.map_err(source_error)? else {
            gone.insert(id);
            continue;
        };
        let users = |list: Vec<crate::graph::DirectoryObjectRef>| -> BTreeSet<String> {
            list.into_iter()
                .filter(|m| m.odata_type.is_none() || m.is_user())
                .map(|m| m.id)
                .collect()
        };
        let direct = users(
            rt.source
                .group_members(&id, false)
                .await
                .map_err(source_error)?,
        );
        let transitive = if settings.flatten {
            users(
                rt.source
                    .group_members(&id, true)
                    .await
                    .map_err(source_error)?,
            )
        } else {
            direct.clone()
        };
        raw.push((g, direct, transitive));
    }
    // SelectUniqueValue as for users: candidates checked against the target's groups (a
    // group's own linked target group does not count), evaluated again with what was learnt.
    let unique_attributes = unique::attributes_of(&mappings);
    let own: BTreeMap<&str, &str> = links
        .iter()
        .map(|l| (l.source_id.as_str(), l.target_id.as_str()))
        .collect();
    let mut oracle = unique::Oracle::default();
    let mut round = 0;
    let source_groups = loop {
        oracle.next_round();
        let mapped = map_groups(&mappings, &raw, &oracle, &own);
        round += 1;
        if unique_attributes.is_empty()
            || round == unique::MAX_ROUNDS
            || !oracle
                .check_among(rt, unique::Objects::Groups, &unique_attributes)
                .await?
        {
            break mapped;
        }
    };
    // Target side: linked groups, anchored ones, name clashes and adoption candidates.
    let mut targets: BTreeMap<String, TargetGroup> = BTreeMap::new();
    let deleted = rt
        .target
        .deleted_groups(None, &[anchor_attr])
        .await
        .map_err(target_error)?;
    for g in &deleted {
        targets.insert(g.id.clone(), target_group(g, anchor_attr, true));
    }
    for l in links {
        if targets.contains_key(&l.target_id) {
            continue;
        }
        if let Some(g) = rt
            .target
            .get_group(&l.target_id, &[anchor_attr])
            .await
            .map_err(target_error)?
        {
            targets.insert(g.id.clone(), target_group(&g, anchor_attr, false));
        }
    }
    let linked: BTreeSet<&str> = links.iter().map(|l| l.source_id.as_str()).collect();
    for sg in &source_groups {
        if linked.contains(sg.id.as_str()) {
            continue;
        }
        let mut filters = vec![format!("{anchor_attr} eq '{}'", odata_escape(&sg.id))];
        let mut attrs: Vec<&str> = vec!["displayName"];
        attrs.extend(settings.matching_attributes.iter().map(String::as_str));
        for a in attrs {
            if let Some(v) = sg.attributes.get(a).and_then(Value::as_str) {
                filters.push(format!("{a} eq '{}'", odata_escape(v)));
            }
        }
        filters.sort();
        filters.dedup();
        for f in filters {
            for g in rt
                .target
                .list_groups(Some(&f), &[anchor_attr])
                .await
                .map_err(target_error)?
            {
                targets
                    .entry(g.id.clone())
                    .or_insert_with(|| target_group(&g, anchor_attr, false));
            }
        }
    }
    if full {
        for t in targets.values_mut().filter(|t| !t.deleted) {
            let members = rt
                .target
                .group_members(&t.id, false)
                .await
                .map_err(target_error)?;
            t.members = Some(members.into_iter().map(|m| m.id).collect());
        }
    }
    let managed = store.managed_users(rt.name()).await?;
    let mut user_targets = BTreeMap::new();
    let mut user_names = BTreeMap::new();
    for m in &managed {
        // Soft-deleted users are out of scope, but keep their names for the removals.
        if m.soft_deleted_by_us_at.is_none() {
            user_targets.insert(m.anchor.source_object_id().to_owned(), m.target_id.clone());
        }
        let name = m
            .last_exported
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or(&m.target_id);
        user_names.insert(m.target_id.clone(), name.to_owned());
    }
    Ok(GroupPlanInput {
        pair: rt.name().to_owned(),
        settings: GroupPlanSettings {
            flatten: settings.flatten,
            soft_delete: settings.deprovision == GroupDeprovision::SoftDelete,
            matching_attributes: settings.matching_attributes.clone(),
            guard_enabled: settings.deletion_guard.enabled,
            guard_threshold: settings.deletion_guard.threshold,
            full_cycle: full,
            drift_correction: rt.pair.drift_correction,
            blocked,
            force: false,
        },
        source_groups,
        gone,
        links: links.to_vec(),
        target_groups: targets.into_values().collect(),
        user_targets,
        user_names,
        complete: only.is_none(),
    })
}

/// Maps the source groups (no await inside: the expression context is not `Send`).
/// `SelectUniqueValue` asks `oracle`; `own` = each source group's linked target group.
fn map_groups(
    mappings: &MappingSet,
    raw: &[(Group, BTreeSet<String>, BTreeSet<String>)],
    oracle: &unique::Oracle,
    own: &BTreeMap<&str, &str>,
) -> Vec<SourceGroup> {
    let mut random = super::cycle::rand_source();
    raw.iter()
        .map(|(g, direct, transitive)| {
            let own_target = own.get(g.id.as_str()).copied();
            let is_unique = |candidate: &str| oracle.is_unique(&g.id, own_target, candidate);
            let mut ctx = EvalContext {
                now: Utc::now(),
                random: &mut random,
                is_unique: &is_unique,
            };
            let attrs = g.to_attributes();
            let mapped =
                mappings.map_user(&SourceAttributes::new(&attrs), MapMode::Create, &mut ctx);
            let kind = SourceGroupKind::classify(
                g.group_types.as_deref().unwrap_or_default(),
                g.mail_enabled.unwrap_or(false),
                g.security_enabled.unwrap_or(false),
                g.is_assignable_to_role.unwrap_or(false),
            );
            SourceGroup {
                id: g.id.clone(),
                display_name: g.display_name.clone().unwrap_or_else(|| g.id.clone()),
                kind,
                attributes: mapped.patch_body().into_iter().collect(),
                errors: mapped.errors.iter().map(|e| format!("{e:?}")).collect(),
                direct_members: direct.clone(),
                transitive_members: transitive.clone(),
            }
        })
        .collect()
}
