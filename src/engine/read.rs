//! Reading what a cycle needs from Graph: the source users (a full delta enumeration or the
//! changes since the watermark), the pair's assignments, and the target's B2B users.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::graph::{DeltaItem, GraphError, RemovedReason, User, with_query};
use crate::plan::{Anchor, TargetUser};
use crate::scope::AssignmentIndex;

use super::EngineError;
use super::runtime::PairRuntime;

/// A source user's full attribute set as Graph returned it (`manager` as the manager's id).
pub type Attributes = Map<String, Value>;

/// What the source said this cycle.
#[derive(Debug, Default)]
pub struct SourceRead {
    /// Users read in full, by object id.
    pub users: BTreeMap<String, Attributes>,
    /// Users delta reported as removed (soft or hard deleted), by object id.
    pub removed: BTreeMap<String, RemovedReason>,
    /// The watermark to save once the cycle is recorded.
    pub delta_link: String,
    /// Graph pages read.
    pub pages: usize,
}

pub(crate) fn graph_error(side: &'static str, tenant: &str, source: GraphError) -> EngineError {
    EngineError::Graph {
        side,
        tenant: tenant.to_owned(),
        source: Box::new(source),
    }
}

fn source_error(rt: &PairRuntime) -> impl Fn(GraphError) -> EngineError + '_ {
    move |e| graph_error("source", &rt.pair.source.tenant_id, e)
}

/// Runs a delta round from `start_or_link`. Items are folded so that the last word on each id
/// wins (delta may replay objects).
pub async fn source_delta(rt: &PairRuntime, start_or_link: &str) -> Result<SourceRead, GraphError> {
    let mut progress = crate::telemetry::progress::Progress::new(rt.name(), "read", None);
    let round = rt
        .source
        .users_delta_with(start_or_link, &mut |read| {
            progress.update(read as u64);
        })
        .await?;
    let mut read = SourceRead {
        delta_link: round.delta_link,
        pages: round.pages,
        ..SourceRead::default()
    };
    for item in round.items {
        match item {
            DeltaItem::Upsert(user) => {
                read.removed.remove(&user.id);
                let id = user.id.clone();
                let attrs = user.to_attributes();
                // A later partial page for the same id refines the earlier one.
                read.users
                    .entry(id)
                    .and_modify(|existing| existing.extend(attrs.clone()))
                    .or_insert(attrs);
            }
            DeltaItem::Removed { id, reason } => {
                read.users.remove(&id);
                read.removed.insert(id, reason);
            }
        }
    }
    Ok(read)
}

/// The first URL of a full delta enumeration for this pair.
pub fn delta_start(rt: &PairRuntime) -> String {
    let select = rt.source_select();
    let refs: Vec<&str> = select.iter().map(String::as_str).collect();
    rt.source.users_delta_start(&refs)
}

/// One source user in full, with its manager's id; None when it no longer exists.
pub async fn source_user(rt: &PairRuntime, id: &str) -> Result<Option<Attributes>, EngineError> {
    let select = rt.source_select();
    let refs: Vec<&str> = select.iter().map(String::as_str).collect();
    let Some(user) = rt
        .source
        .get_user(id, &refs)
        .await
        .map_err(source_error(rt))?
    else {
        return Ok(None);
    };
    let mut attrs = user.to_attributes();
    let manager_url = with_query(
        &format!("users/{}/manager", crate::graph::encode_query_value(id)),
        &[("$select", "id")],
    );
    match rt
        .source
        .send_json::<ManagerId>(reqwest::Method::GET, &manager_url, None)
        .await
    {
        Ok(manager) => {
            attrs.insert("manager".into(), Value::String(manager.id));
        }
        Err(e) if e.is_not_found() => {
            attrs.insert("manager".into(), Value::Null);
        }
        Err(e) => return Err(source_error(rt)(e)),
    }
    Ok(Some(attrs))
}

#[derive(serde::Deserialize)]
struct ManagerId {
    id: String,
}

/// The pair's assignments: configured users and groups plus, with a service principal, its
/// `appRoleAssignedTo`; each assigned group expanded to its direct members.
pub async fn assignments(rt: &PairRuntime) -> Result<AssignmentIndex, EngineError> {
    let (users, groups) = assigned_principals(rt).await?;
    let mut expanded = Vec::with_capacity(groups.len());
    for group in groups {
        let members = match rt.source.group_members(&group, false).await {
            Ok(members) => members,
            // An assigned group that was deleted assigns nobody.
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(source_error(rt)(e)),
        };
        let ids: Vec<String> = members
            .into_iter()
            .filter(|m| m.odata_type.is_none() || m.is_user())
            .map(|m| m.id)
            .collect();
        expanded.push((group, ids));
    }
    Ok(AssignmentIndex::new(users, expanded))
}

/// The assigned users and groups (not expanded): the configured ones plus, with a service
/// principal, its `appRoleAssignedTo`.
pub async fn assigned_principals(
    rt: &PairRuntime,
) -> Result<(BTreeSet<String>, BTreeSet<String>), EngineError> {
    let mut users: BTreeSet<String> = rt.pair.scope.users.iter().cloned().collect();
    let mut groups: BTreeSet<String> = rt.pair.scope.groups.iter().cloned().collect();
    if let Some(sp) = &rt.pair.scope.service_principal_id {
        for assignment in rt
            .source
            .app_role_assigned_to(sp)
            .await
            .map_err(source_error(rt))?
        {
            match assignment.principal_type.as_deref() {
                Some(t) if t.eq_ignore_ascii_case("Group") => {
                    groups.insert(assignment.principal_id);
                }
                Some(t) if t.eq_ignore_ascii_case("User") => {
                    users.insert(assignment.principal_id);
                }
                _ => {}
            }
        }
    }
    Ok((users, groups))
}

/// Every B2B (invited) user of the target, live and soft-deleted, with the anchor attribute and
/// the mapped attributes: the anchored users and the candidates for adoption.
pub async fn target_users(rt: &PairRuntime) -> Result<Vec<TargetUser>, EngineError> {
    target_users_with(rt, true).await
}

/// [`target_users`]; without the anchor in `$select` when the anchor extension is not
/// registered yet (a preview before the first cycle: Graph refuses an unknown property, and no
/// user can carry it).
pub async fn target_users_with(
    rt: &PairRuntime,
    anchor_registered: bool,
) -> Result<Vec<TargetUser>, EngineError> {
    let mut select = rt.target_select();
    if !anchor_registered {
        select.retain(|a| a != &rt.settings.anchor_attribute);
    }
    let refs: Vec<&str> = select.iter().map(String::as_str).collect();
    let target_error = |e| graph_error("target", &rt.pair.target.tenant_id, e);
    let live = rt
        .target
        .list_users(Some("creationType eq 'Invitation'"), &refs)
        .await
        .map_err(target_error)?;
    let deleted = rt
        .target
        .deleted_users(None, &refs)
        .await
        .map_err(target_error)?;
    let anchor_attribute = &rt.settings.anchor_attribute;
    let convert = |user: User, deleted: bool| -> TargetUser {
        let deleted_date_time = user
            .deleted_date_time
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&chrono::Utc));
        let attributes: BTreeMap<String, Value> = user.to_attributes().into_iter().collect();
        TargetUser {
            anchor: attributes
                .get(anchor_attribute)
                .and_then(Value::as_str)
                .and_then(Anchor::parse),
            creation_type: user.creation_type.clone(),
            user_type: user.user_type.clone(),
            deleted,
            deleted_date_time,
            id: user.id,
            attributes,
        }
    };
    let mut users: Vec<TargetUser> = live.into_iter().map(|u| convert(u, false)).collect();
    users.extend(
        deleted
            .into_iter()
            .filter(|u| {
                u.creation_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("Invitation"))
            })
            .map(|u| convert(u, true)),
    );
    users.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(users)
}
