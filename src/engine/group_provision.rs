//! On-demand provisioning of one group (`ctsync provision --group`, the admin API's
//! `provisionOnDemand` with a `groupId`): the same planner and executor as the group pass, for
//! one assigned source group, with a table of its source members — in scope or not and why,
//! the target counterpart, and what was done (added, removed, already, skipped). The group
//! watermark is not touched. Members with no target user yet are skipped (on-demand
//! provisioning of a group does not create users; `provision --user` or the next cycle does).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::expr::EvalContext;
use crate::plan::groups::{GroupAction, GroupEntry, plan_groups};
use crate::scope::{self, Disposition, ScopeDecision};
use crate::store::{LeaseGuard, StateStore};

use super::EngineError;
use super::cycle::{evaluate_source_user, rand_source};
use super::group_apply::{self, MemberOutcome, MemberResult};
use super::groups::{assigned_groups, ensure_group_anchor, read_input};
use super::read::{self, graph_error};
use super::runtime::PairRuntime;

/// What happened (or, in a dry run, would happen) to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MemberAction {
    Added,
    Removed,
    /// Already a member of the target group: nothing to write.
    Already,
    Skipped,
    Failed,
}

impl MemberAction {
    fn as_str(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (MemberAction::Added, true) => "would add",
            (MemberAction::Removed, true) => "would remove",
            (MemberAction::Added, false) => "added",
            (MemberAction::Removed, false) => "removed",
            (MemberAction::Already, _) => "already",
            (MemberAction::Skipped, _) => "skipped",
            (MemberAction::Failed, _) => "FAILED",
        }
    }
}

/// One row of the per-member table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRow {
    /// The source user (empty for a former member the target group still holds).
    pub source_id: String,
    pub user_principal_name: Option<String>,
    pub display_name: Option<String>,
    /// Still a (direct, or with `flatten` transitive) member of the source group.
    pub source_member: bool,
    pub in_scope: bool,
    /// Why in or out of scope, in Entra's words where it has them.
    pub scope: String,
    pub target_user_id: Option<String>,
    pub target_name: Option<String>,
    pub action: MemberAction,
    /// Why skipped, or the error of a failed write.
    pub detail: Option<String>,
}

/// What on-demand provisioning did (or, with `dry_run`, would do) for one group.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupProvisionReport {
    pub pair: String,
    pub dry_run: bool,
    pub source_group_id: String,
    pub display_name: String,
    /// Assigned to the pair (only assigned groups are synced).
    pub assigned: bool,
    /// Why nothing is written (the target refuses group sync, or the group is not assigned).
    pub blocked: Option<String>,
    /// The group's plan entry: action, reason, attribute changes, member diff.
    pub entry: Option<GroupEntry>,
    pub members: Vec<MemberRow>,
    /// Whether the writes succeeded (None for a dry run or nothing to write).
    pub succeeded: Option<bool>,
}

impl GroupProvisionReport {
    /// The report as people read it.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "pair {}: group {} ({}){}\n",
            self.pair,
            self.display_name,
            self.source_group_id,
            if self.dry_run { " [dry run]" } else { "" }
        );
        out.push_str(&format!(
            "1. scope: {}\n",
            if self.assigned {
                "assigned to the pair"
            } else {
                "NOT assigned to the pair: not synced"
            }
        ));
        if let Some(b) = &self.blocked {
            out.push_str(&format!("   blocked: {b}\n"));
        }
        match &self.entry {
            Some(e) => {
                out.push_str(&format!(
                    "2. action: {}{}{} — {}\n",
                    e.action.as_str(),
                    e.target_id
                        .as_deref()
                        .map(|t| format!(" → {t}"))
                        .unwrap_or_default(),
                    e.reason
                        .map(|r| format!(" ({})", r.describe()))
                        .unwrap_or_default(),
                    match self.succeeded {
                        Some(true) => "succeeded",
                        Some(false) => "FAILED (retried by the next cycle)",
                        None => "not applied",
                    }
                ));
                for (k, v) in &e.changes {
                    out.push_str(&format!("     {k} = {v}\n"));
                }
            }
            None => out.push_str("2. action: none\n"),
        }
        out.push_str(&format!(
            "\n  {:<28}  {:<8}  {:<40}  {:<24}  {}\n",
            "member", "in scope", "why", "target user", "action"
        ));
        for row in &self.members {
            let who = row
                .user_principal_name
                .as_deref()
                .or(row.display_name.as_deref())
                .unwrap_or(if row.source_id.is_empty() {
                    "(former member)"
                } else {
                    &row.source_id
                });
            let action = row.action.as_str(self.dry_run);
            out.push_str(&format!(
                "  {:<28}  {:<8}  {:<40}  {:<24}  {}{}\n",
                who,
                if row.in_scope { "yes" } else { "no" },
                row.scope,
                row.target_name
                    .as_deref()
                    .or(row.target_user_id.as_deref())
                    .unwrap_or("-"),
                action,
                row.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
            ));
        }
        out
    }
}

fn scope_words(d: &ScopeDecision) -> String {
    match (d.disposition, d.reason) {
        (Disposition::Provision, _) => "in scope".into(),
        (Disposition::Disable, _) => "in scope, disabled in the source".into(),
        (_, Some(scope::OutOfScopeReason::ExternalUser)) => {
            "guest or external user in the source".into()
        }
        (_, Some(scope::OutOfScopeReason::NotEffectivelyEntitled)) => {
            "not assigned to the pair (NotEffectivelyEntitled)".into()
        }
        (_, Some(scope::OutOfScopeReason::OutOfScope)) => {
            let failed: Vec<&str> = d
                .scope_evaluation_result
                .iter()
                .filter(|(_, passed)| !**passed)
                .map(|(clause, _)| clause.as_str())
                .collect();
            format!("scoping filter: {}", failed.join(", "))
        }
        (_, None) => "out of scope".into(),
    }
}

/// Finds the source group by object id or display name (exactly one).
async fn find_group(rt: &PairRuntime, group: &str) -> Result<crate::graph::Group, EngineError> {
    let source_error = |e| graph_error("source", &rt.pair.source.tenant_id, e);
    if uuid::Uuid::parse_str(group).is_ok()
        && let Some(g) = rt
            .source
            .get_group(group, &[])
            .await
            .map_err(source_error)?
    {
        return Ok(g);
    }
    let filter = format!("displayName eq '{}'", group.replace('\'', "''"));
    let mut found = rt
        .source
        .list_groups(Some(&filter), &[])
        .await
        .map_err(source_error)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(EngineError::Preflight {
            code: "SourceGroupNotFound".into(),
            message: format!(
                "no group {group} in source tenant {} (looked up by object id and displayName)",
                rt.pair.source.tenant_id
            ),
        }),
        n => Err(EngineError::Preflight {
            code: "SourceGroupAmbiguous".into(),
            message: format!(
                "{n} groups named {group} in source tenant {}: give the object id",
                rt.pair.source.tenant_id
            ),
        }),
    }
}

/// Provisions (or previews) one source group given by object id or display name, outside any
/// daemon (`ctsync provision --group`); a daemon runs it through the job's mailbox.
pub async fn provision_group_on_demand(
    rt: &PairRuntime,
    store: &dyn StateStore,
    group: &str,
    dry_run: bool,
) -> Result<GroupProvisionReport, EngineError> {
    provision_group_under_lease(rt, store, None, group, dry_run).await
}

/// [`provision_group_on_demand`] by the pair's job: no write once the pair's lease may have
/// lapsed.
pub(crate) async fn provision_group_under_lease(
    rt: &PairRuntime,
    store: &dyn StateStore,
    lease: Option<&LeaseGuard>,
    group: &str,
    dry_run: bool,
) -> Result<GroupProvisionReport, EngineError> {
    let Some(settings) = rt.pair.groups.as_ref() else {
        return Err(EngineError::Config {
            pair: rt.name().to_owned(),
            message: "this pair does not sync groups (spec.groups.enabled)".into(),
        });
    };
    let g = find_group(rt, group).await?;
    let source_error = |e| graph_error("source", &rt.pair.source.tenant_id, e);
    let sync = rt
        .target
        .identity_synchronization_with_groups(&rt.pair.source.tenant_id)
        .await
        .map_err(|e| graph_error("target", &rt.pair.target.tenant_id, e))?;
    let assigned = assigned_groups(rt).await?.contains(&g.id);
    let mut blocked = (!sync.as_ref().is_some_and(|s| s.group_sync_allowed())).then(|| {
        "the target does not allow group sync from this source \
         (identitySynchronization groupSyncInbound.isSyncAllowed is not true)"
            .to_owned()
    });
    let anchor_attr = rt.pair.group_anchor_attribute();
    if !dry_run && blocked.is_none() && assigned {
        ensure_group_anchor(rt, &anchor_attr).await?;
    }
    let state = store.group_state(rt.name()).await?;
    // A full read of this one group: its real target members, so "already" is true.
    let input = read_input(
        rt,
        store,
        &state.links,
        &anchor_attr,
        true,
        blocked.clone(),
        Some(&g.id),
    )
    .await?;
    let plan = plan_groups(&input);
    let entry = plan.entries.iter().find(|e| e.source_id == g.id).cloned();
    if !assigned {
        blocked.get_or_insert_with(|| "the group is not assigned to the pair".into());
    }

    // The member table: every source member, scoped like the user pass scopes it.
    let members = rt
        .source
        .group_members(&g.id, settings.flatten)
        .await
        .map_err(source_error)?;
    let assignments = match rt.scope_setting() {
        scope::ScopeSetting::Assigned => Some(read::assignments(rt).await?),
        scope::ScopeSetting::All => None,
    };
    let managed = store.managed_users(rt.name()).await?;
    let links: BTreeMap<&str, &crate::plan::ManagedUser> = managed
        .iter()
        .map(|m| (m.anchor.source_object_id(), m))
        .collect();
    let mut sources = Vec::new();
    for m in members
        .iter()
        .filter(|m| m.odata_type.is_none() || m.is_user())
    {
        if let Some(attrs) = read::source_user(rt, &m.id).await? {
            sources.push((m.id.clone(), attrs));
        }
    }
    let decisions: Vec<ScopeDecision> = {
        // The evaluation context is not `Send`: no await inside.
        let mut random = rand_source();
        let is_unique = |_: &str| true;
        let mut ctx = EvalContext {
            now: Utc::now(),
            random: &mut random,
            is_unique: &is_unique,
        };
        sources
            .iter()
            .map(|(id, attrs)| {
                evaluate_source_user(rt, id, attrs, assignments.as_ref(), &mut ctx).1
            })
            .collect()
    };

    let mut succeeded = None;
    let mut results: Vec<MemberResult> = Vec::new();
    let writes = entry.as_ref().is_some_and(|e| {
        matches!(
            e.action,
            GroupAction::Create
                | GroupAction::Adopt
                | GroupAction::Update
                | GroupAction::Restore
                | GroupAction::Delete
        ) || !e.add_members.is_empty()
            || !e.remove_members.is_empty()
    });
    if let Some(e) = entry.as_ref().filter(|_| !dry_run && writes && assigned) {
        if lease.is_some_and(|l| !l.may_write()) {
            return Err(EngineError::LeaseLapsed);
        }
        let cycle_id = format!("ondemand-{}", uuid::Uuid::new_v4());
        match group_apply::apply_entry(rt, store, &cycle_id, e, &anchor_attr, None).await {
            Ok(r) => {
                results = r;
                succeeded = Some(true);
            }
            Err(err) => {
                tracing::warn!(pair = rt.name(), group = %e.display_name, error = %err, "on-demand group provisioning failed");
                succeeded = Some(false);
            }
        }
    }

    let adds: BTreeSet<&str> = entry
        .iter()
        .flat_map(|e| e.add_members.iter().map(|m| m.target_user_id.as_str()))
        .collect();
    let removes: BTreeSet<&str> = entry
        .iter()
        .flat_map(|e| e.remove_members.iter().map(|m| m.target_user_id.as_str()))
        .collect();
    let kept: BTreeSet<&str> = entry
        .iter()
        .flat_map(|e| e.members_after.iter().map(String::as_str))
        .collect();
    let result_of = |target: &str| results.iter().find(|r| r.target_user_id == target);
    let mut rows = Vec::new();
    let mut seen_targets = BTreeSet::new();
    for ((id, attrs), decision) in sources.iter().zip(&decisions) {
        let text = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_owned);
        let link = links.get(id.as_str()).copied();
        let target = link.filter(|l| l.soft_deleted_by_us_at.is_none());
        let target_id = target.map(|l| l.target_id.clone());
        let target_name = target.and_then(|l| {
            l.last_exported
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let in_scope = decision.disposition != Disposition::OutOfScope;
        let (action, detail) = match target_id.as_deref() {
            _ if blocked.is_some() => (MemberAction::Skipped, blocked.clone()),
            Some(t) if adds.contains(t) => match result_of(t).map(|r| r.outcome) {
                Some(MemberOutcome::AlreadyMember) => (MemberAction::Already, None),
                Some(MemberOutcome::Failed) => (
                    MemberAction::Failed,
                    result_of(t).and_then(|r| r.error.clone()),
                ),
                _ if succeeded == Some(false) && result_of(t).is_none() => {
                    (MemberAction::Failed, Some("the group write failed".into()))
                }
                _ => (MemberAction::Added, None),
            },
            Some(t) if removes.contains(t) => (MemberAction::Removed, None),
            Some(t) if kept.contains(t) => (MemberAction::Already, None),
            Some(_) => (
                MemberAction::Skipped,
                Some("removed by hand in the target; drift correction is off".into()),
            ),
            None if !in_scope => (MemberAction::Skipped, Some("out of scope".into())),
            None if link.is_some() => (
                MemberAction::Skipped,
                Some("its target user is soft-deleted".into()),
            ),
            None => (
                MemberAction::Skipped,
                Some(
                    "no target user yet (ctsync provision --user, or the next cycle, creates it)"
                        .into(),
                ),
            ),
        };
        if let Some(t) = &target_id {
            seen_targets.insert(t.clone());
        }
        rows.push(MemberRow {
            source_id: id.clone(),
            user_principal_name: text("userPrincipalName"),
            display_name: text("displayName"),
            source_member: true,
            in_scope,
            scope: scope_words(decision),
            target_user_id: target_id,
            target_name,
            action,
            detail,
        });
    }
    // Former members the target group still holds, removed now.
    for m in entry.iter().flat_map(|e| e.remove_members.iter()) {
        if seen_targets.contains(&m.target_user_id) {
            continue;
        }
        let failed = result_of(&m.target_user_id).filter(|r| !r.is_ok());
        rows.push(MemberRow {
            source_id: String::new(),
            user_principal_name: None,
            display_name: Some(m.name.clone()),
            source_member: false,
            in_scope: false,
            scope: "no longer a member of the source group, or out of scope".into(),
            target_user_id: Some(m.target_user_id.clone()),
            target_name: Some(m.name.clone()),
            action: if failed.is_some() {
                MemberAction::Failed
            } else {
                MemberAction::Removed
            },
            detail: failed.and_then(|r| r.error.clone()),
        });
    }
    Ok(GroupProvisionReport {
        pair: rt.name().to_owned(),
        dry_run,
        source_group_id: g.id.clone(),
        display_name: g.display_name.clone().unwrap_or_else(|| g.id.clone()),
        assigned,
        blocked,
        entry,
        members: rows,
        succeeded,
    })
}
