//! Carrying out one group plan entry: the group write (create, restore, attributes, delete),
//! then its members through [`GraphClient::write_group_members`] (binds of 20, `$batch`es of
//! 20 requests), one result per member. The link (what ctsync now maintains) and the
//! provisioning-log entry are committed together, on success and on failure alike, so a
//! partial membership write is remembered exactly and its failed members are planned again.
//!
//! [`GraphClient::write_group_members`]: crate::graph::GraphClient::write_group_members

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::graph::{GraphError, MemberWrite, MemberWriteResult};
use crate::plan::groups::{GroupAction, GroupEntry, GroupLinkState, MemberChange};
use crate::store::{StateStore, StoreWrite};

use super::EngineError;
use super::group_action_log;
use super::killpoint::{self, CrashAt, Step};
use super::read::graph_error;
use super::runtime::PairRuntime;

/// Tries of a member write that meets a group not replicated yet (the first included).
const REPLICATION_TRIES: u32 = 4;
/// Pause before the n-th retry: n × this.
const REPLICATION_PAUSE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MemberOutcome {
    Added,
    /// Graph said the member was already there (a replay, or added by hand): done.
    AlreadyMember,
    Removed,
    /// Graph said the member was already gone: done.
    AlreadyRemoved,
    Failed,
}

/// What happened to one member of a group entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberResult {
    pub name: String,
    pub target_user_id: String,
    pub outcome: MemberOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MemberResult {
    pub fn is_ok(&self) -> bool {
        self.outcome != MemberOutcome::Failed
    }
}

/// What one entry did, for the log and the caller.
pub(super) struct Attempt {
    /// The link to store (after success, or the progress made before a failure).
    pub link: Option<GroupLinkState>,
    /// The target group's id once known.
    pub target_id: Option<String>,
    pub members: Vec<MemberResult>,
    pub failure: Option<EngineError>,
}

impl Attempt {
    fn failed(failure: EngineError) -> Attempt {
        Attempt {
            link: None,
            target_id: None,
            members: Vec::new(),
            failure: Some(failure),
        }
    }
}

/// Carries out one entry, then commits its link and its provisioning-log entry in one step.
/// `Ok` with the member results when everything was done; the entry's failure otherwise
/// (what was done is recorded all the same).
pub(super) async fn apply_entry(
    rt: &PairRuntime,
    store: &dyn StateStore,
    cycle_id: &str,
    e: &GroupEntry,
    anchor_attr: &str,
    crash: Option<&CrashAt>,
) -> Result<Vec<MemberResult>, EngineError> {
    let started = Instant::now();
    let attempt = attempt(rt, store, e, anchor_attr, crash).await?;
    let log = group_action_log::log_entry(rt, cycle_id, e, &attempt, started.elapsed());
    group_action_log::emit(&log, e, &attempt);
    let mut writes = Vec::new();
    if let Some(link) = attempt.link {
        writes.push(StoreWrite::PutGroupLink(link));
    }
    writes.push(StoreWrite::AppendLog(Box::new(log)));
    store.commit(rt.name(), writes).await?;
    match attempt.failure {
        None => Ok(attempt.members),
        Some(failure) => Err(failure),
    }
}

/// Records a group entry that writes nothing but needs a person's attention (disputed, staged
/// delete) in the provisioning log.
pub(super) async fn log_unwritten(
    rt: &PairRuntime,
    store: &dyn StateStore,
    cycle_id: &str,
    e: &GroupEntry,
) -> Result<(), EngineError> {
    let attempt = Attempt {
        link: None,
        target_id: e.target_id.clone(),
        members: Vec::new(),
        failure: None,
    };
    let log = group_action_log::log_entry(rt, cycle_id, e, &attempt, Duration::ZERO);
    group_action_log::emit(&log, e, &attempt);
    store
        .commit(rt.name(), vec![StoreWrite::AppendLog(Box::new(log))])
        .await?;
    Ok(())
}

async fn attempt(
    rt: &PairRuntime,
    store: &dyn StateStore,
    e: &GroupEntry,
    anchor_attr: &str,
    crash: Option<&CrashAt>,
) -> Result<Attempt, EngineError> {
    let target_error = |err| graph_error("target", &rt.pair.target.tenant_id, err);
    let mut link = GroupLinkState {
        source_id: e.source_id.clone(),
        target_id: e.target_id.clone().unwrap_or_default(),
        display_name: e.display_name.clone(),
        exported: e.exported_after.clone(),
        members: e.members_after.clone(),
        deleted_by_us: false,
    };
    let mut members = Vec::new();
    let mut adds: &[MemberChange] = &e.add_members;
    match e.action {
        GroupAction::Create => {
            let mut body: serde_json::Map<String, Value> = e.changes.clone().into_iter().collect();
            body.insert(anchor_attr.to_owned(), json!(e.source_id));
            let first = &e.add_members[..e
                .add_members
                .len()
                .min(crate::graph::MEMBER_BINDS_PER_REQUEST)];
            let first_ids: Vec<String> = first.iter().map(|m| m.target_user_id.clone()).collect();
            let created = match rt.target.create_security_group(&body, &first_ids).await {
                Ok(g) => g,
                Err(err) => return Ok(Attempt::failed(target_error(err))),
            };
            link.target_id = created.id.clone();
            tracing::info!(
                event = "groupCreated",
                pair = rt.name(),
                group = %e.display_name,
                target_group_id = %created.id,
                members_added = %names(first),
                "group created"
            );
            members.extend(first.iter().map(|m| result(m, MemberOutcome::Added, None)));
            if killpoint::reached(Step::GroupAfterCreate, crash) {
                return Err(EngineError::Crashed(Step::GroupAfterCreate.as_str()));
            }
            adds = &e.add_members[first.len()..];
            if !adds.is_empty() {
                // Record the group before the rest of its members: a failure below leaves a
                // linked group whose remaining members are planned again next cycle.
                let mut partial = link.clone();
                partial.members = first_ids.into_iter().collect();
                store
                    .commit(rt.name(), vec![StoreWrite::PutGroupLink(partial)])
                    .await?;
                if killpoint::reached(Step::GroupMembers, crash) {
                    return Err(EngineError::Crashed(Step::GroupMembers.as_str()));
                }
            }
        }
        GroupAction::Restore => {
            if let Err(err) = rt.target.restore_deleted(&link.target_id).await {
                return Ok(Attempt::failed(target_error(err)));
            }
            tracing::info!(pair = rt.name(), group = %e.display_name, target_group_id = %link.target_id, "group restored");
            if let Err(err) = write_attributes(rt, e, &link.target_id, anchor_attr).await {
                return Ok(Attempt::failed(target_error(err)));
            }
        }
        GroupAction::Adopt | GroupAction::Update | GroupAction::NoChange => {
            if let Err(err) = write_attributes(rt, e, &link.target_id, anchor_attr).await {
                return Ok(Attempt::failed(target_error(err)));
            }
        }
        GroupAction::Delete => {
            match rt.target.delete_group(&link.target_id).await {
                Ok(()) => {}
                Err(err) if err.is_not_found() => {}
                Err(err) => return Ok(Attempt::failed(target_error(err))),
            }
            tracing::info!(pair = rt.name(), group = %e.display_name, target_group_id = %link.target_id, "group soft-deleted");
            link.deleted_by_us = true;
            return Ok(Attempt {
                target_id: Some(link.target_id.clone()),
                link: Some(link),
                members: Vec::new(),
                failure: None,
            });
        }
        GroupAction::StagedDelete | GroupAction::Skip | GroupAction::Disputed => {
            return Ok(Attempt {
                link: None,
                target_id: e.target_id.clone(),
                members: Vec::new(),
                failure: None,
            });
        }
    }
    let (written, failure) = write_members(rt, &link.target_id, adds, &e.remove_members).await;
    // The store keeps what is true now: failed adds are not members, failed removals still are.
    for r in &written {
        if r.outcome == MemberOutcome::Failed {
            if e.add_members
                .iter()
                .any(|m| m.target_user_id == r.target_user_id)
            {
                link.members.remove(&r.target_user_id);
            } else {
                link.members.insert(r.target_user_id.clone());
            }
        }
    }
    members.extend(written);
    if !adds.is_empty() || !e.remove_members.is_empty() {
        let added: Vec<&str> = members
            .iter()
            .filter(|m| {
                matches!(
                    m.outcome,
                    MemberOutcome::Added | MemberOutcome::AlreadyMember
                )
            })
            .map(|m| m.name.as_str())
            .collect();
        let removed: Vec<&str> = members
            .iter()
            .filter(|m| {
                matches!(
                    m.outcome,
                    MemberOutcome::Removed | MemberOutcome::AlreadyRemoved
                )
            })
            .map(|m| m.name.as_str())
            .collect();
        tracing::info!(
            event = "groupWritten",
            pair = rt.name(),
            group = %e.display_name,
            target_group_id = %link.target_id,
            action = e.action.as_str(),
            members_added = %added.join(", "),
            members_removed = %removed.join(", "),
            members_failed = members.iter().filter(|m| !m.is_ok()).count(),
            "group members written"
        );
    }
    Ok(Attempt {
        target_id: Some(link.target_id.clone()),
        link: Some(link),
        members,
        failure: failure.map(target_error),
    })
}

fn names(members: &[MemberChange]) -> String {
    members
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn result(m: &MemberChange, outcome: MemberOutcome, error: Option<String>) -> MemberResult {
    MemberResult {
        name: m.name.clone(),
        target_user_id: m.target_user_id.clone(),
        outcome,
        error,
    }
}

/// The planned attribute changes (and the anchor, on adoption) in one `PATCH`.
async fn write_attributes(
    rt: &PairRuntime,
    e: &GroupEntry,
    target_id: &str,
    anchor_attr: &str,
) -> Result<(), GraphError> {
    let mut changes: serde_json::Map<String, Value> = e.changes.clone().into_iter().collect();
    if e.action == GroupAction::Adopt {
        changes.insert(anchor_attr.to_owned(), json!(e.source_id));
    }
    if !changes.is_empty() {
        rt.target.update_group(target_id, &changes).await?;
        tracing::info!(
            event = "groupUpdated",
            pair = rt.name(),
            group = %e.display_name,
            target_group_id = %target_id,
            action = e.action.as_str(),
            attributes = changes.len(),
            "group attributes written"
        );
    }
    Ok(())
}

/// An owned copy of a member's error, for the entry's failure.
fn owned(e: &Arc<GraphError>) -> GraphError {
    match e.as_ref() {
        GraphError::Api(detail) => GraphError::Api(detail.clone()),
        other => GraphError::InvalidRequest(other.to_string()),
    }
}

/// Writes the members, trying again (after a short pause) those a just-created group refused
/// because it had not replicated yet. One result per member; the first failure, if any.
pub(super) async fn write_members(
    rt: &PairRuntime,
    group_id: &str,
    adds: &[MemberChange],
    removes: &[MemberChange],
) -> (Vec<MemberResult>, Option<GraphError>) {
    let mut out = Vec::with_capacity(adds.len() + removes.len());
    let mut first_failure = None;
    let mut pending_adds: Vec<&MemberChange> = adds.iter().collect();
    let mut pending_removes: Vec<&MemberChange> = removes.iter().collect();
    for attempt in 1..=REPLICATION_TRIES {
        if pending_adds.is_empty() && pending_removes.is_empty() {
            break;
        }
        if attempt > 1 {
            tokio::time::sleep(REPLICATION_PAUSE * (attempt - 1)).await;
        }
        let add_ids: Vec<String> = pending_adds
            .iter()
            .map(|m| m.target_user_id.clone())
            .collect();
        let remove_ids: Vec<String> = pending_removes
            .iter()
            .map(|m| m.target_user_id.clone())
            .collect();
        let outcomes = match rt
            .target
            .write_group_members(group_id, &add_ids, &remove_ids)
            .await
        {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // The requests could not be made at all: every pending member failed.
                let text = err.to_string();
                for m in pending_adds.drain(..).chain(pending_removes.drain(..)) {
                    out.push(result(m, MemberOutcome::Failed, Some(text.clone())));
                }
                first_failure.get_or_insert(err);
                break;
            }
        };
        let changes: Vec<&MemberChange> = pending_adds
            .drain(..)
            .chain(pending_removes.drain(..))
            .collect();
        for (m, o) in changes.into_iter().zip(outcomes) {
            let add = o.write == MemberWrite::Add;
            match o.result {
                MemberWriteResult::Done => out.push(result(
                    m,
                    if add {
                        MemberOutcome::Added
                    } else {
                        MemberOutcome::Removed
                    },
                    None,
                )),
                MemberWriteResult::Already => out.push(result(
                    m,
                    if add {
                        MemberOutcome::AlreadyMember
                    } else {
                        MemberOutcome::AlreadyRemoved
                    },
                    None,
                )),
                MemberWriteResult::NotReplicatedYet(err) if attempt < REPLICATION_TRIES => {
                    tracing::debug!(group_id, error = %err, "group not replicated yet; member write retried");
                    if add {
                        pending_adds.push(m);
                    } else {
                        pending_removes.push(m);
                    }
                }
                MemberWriteResult::NotReplicatedYet(err) | MemberWriteResult::Failed(err) => {
                    out.push(result(m, MemberOutcome::Failed, Some(err.to_string())));
                    first_failure.get_or_insert_with(|| owned(&err));
                }
            }
        }
    }
    (out, first_failure)
}
