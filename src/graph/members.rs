//! Group membership writes, few requests, one result per member.
//!
//! Adds are bound 20 per `PATCH /groups/{id}` (`members@odata.bind`, Graph's limit); removals are
//! `DELETE /groups/{id}/members/{memberId}/$ref` (never without `$ref`, which would delete the
//! member object). When there is more than one such request they go out as `$batch`es of up to
//! 20. Graph fails a whole bind PATCH when one of its members is already there; that chunk is
//! sent again one `POST /groups/{id}/members/$ref` per member (batched the same way), so every
//! member gets its own result and a member already there counts as done.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;

use super::batch::{BatchRequest, MAX_BATCH};
use super::client::GraphClient;
use super::error::GraphError;
use super::ops::{MEMBER_BINDS_PER_REQUEST, is_already_member, segment};

/// What was asked for one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberWrite {
    Add,
    Remove,
}

/// How one member's write ended. (A refused bind chunk gives each of its members the same
/// error, hence the `Arc`.)
#[derive(Debug, Clone)]
pub enum MemberWriteResult {
    /// Added, or removed.
    Done,
    /// Already a member (Graph's duplicate 400), or already gone (404 on removal).
    Already,
    /// The group (or the member) has not replicated yet: Graph's 400 "… don't exist" on a
    /// just-created group. Worth trying again after a short pause.
    NotReplicatedYet(Arc<GraphError>),
    Failed(Arc<GraphError>),
}

impl MemberWriteResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, MemberWriteResult::Done | MemberWriteResult::Already)
    }
}

#[derive(Debug, Clone)]
pub struct MemberWriteOutcome {
    pub member_id: String,
    pub write: MemberWrite,
    pub result: MemberWriteResult,
}

/// Graph's answer when a group (or a member) created moments ago has not replicated yet
/// (group-post-members: 400, "retry after a short delay").
pub fn is_not_replicated_yet(e: &GraphError) -> bool {
    e.status() == Some(400) && e.to_string().contains("don't exist")
}

/// One request of a membership write.
enum Op<'a> {
    /// Up to 20 members in one `PATCH` (`members@odata.bind`).
    Bind(&'a [String]),
    /// One member, `POST …/members/$ref`.
    Ref(&'a str),
    /// One member, `DELETE …/members/{id}/$ref`.
    Unref(&'a str),
}

impl GraphClient {
    fn member_op_request(&self, group_id: &str, op: &Op<'_>, id: usize) -> BatchRequest {
        let group = format!("/groups/{}", segment(group_id));
        match op {
            Op::Bind(members) => {
                let binds: Vec<String> = members
                    .iter()
                    .map(|m| self.directory_object_url(m))
                    .collect();
                BatchRequest::new(id.to_string(), Method::PATCH, group)
                    .with_json(json!({"members@odata.bind": binds}))
            }
            Op::Ref(member) => BatchRequest::new(
                id.to_string(),
                Method::POST,
                format!("{group}/members/$ref"),
            )
            .with_json(json!({"@odata.id": self.directory_object_url(member)})),
            Op::Unref(member) => BatchRequest::new(
                id.to_string(),
                Method::DELETE,
                format!("{group}/members/{}/$ref", segment(member)),
            ),
        }
    }

    /// Sends the ops (one alone, several as `$batch`es of 20); one result per op, in order.
    /// `Err` only when a request could not be made at all.
    async fn send_member_ops(
        &self,
        group_id: &str,
        ops: &[Op<'_>],
    ) -> Result<Vec<Result<(), GraphError>>, GraphError> {
        let requests: Vec<BatchRequest> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| self.member_op_request(group_id, op, i + 1))
            .collect();
        if let [one] = requests.as_slice() {
            let method = Method::from_bytes(one.method.as_bytes())
                .map_err(|e| GraphError::InvalidRequest(e.to_string()))?;
            let sent = self.send(method, &one.url, &[], one.body.as_ref(), 1).await;
            return Ok(vec![sent.map(|_| ())]);
        }
        let mut results = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(MAX_BATCH) {
            let answered = self.batch(chunk).await?;
            for item in answered.responses {
                results.push(match item.error(&answered.client_request_id) {
                    None => Ok(()),
                    Some(e) => Err(e),
                });
            }
        }
        Ok(results)
    }

    /// Adds `adds` to and removes `removes` from the group, with as few requests as Graph
    /// allows; one outcome per member (adds first, in order, then removals).
    pub async fn write_group_members(
        &self,
        group_id: &str,
        adds: &[String],
        removes: &[String],
    ) -> Result<Vec<MemberWriteOutcome>, GraphError> {
        let mut ops: Vec<Op<'_>> = adds
            .chunks(MEMBER_BINDS_PER_REQUEST)
            .map(Op::Bind)
            .collect();
        ops.extend(removes.iter().map(|m| Op::Unref(m)));
        let results = self.send_member_ops(group_id, &ops).await?;
        let mut add_results: Vec<Option<MemberWriteResult>> = vec![None; adds.len()];
        let mut remove_results = Vec::with_capacity(removes.len());
        // Chunks refused because a member is already there: their members one by one.
        let mut one_by_one: Vec<usize> = Vec::new();
        let mut offset = 0;
        for (op, result) in ops.iter().zip(results) {
            match op {
                Op::Bind(chunk) => {
                    let range = offset..offset + chunk.len();
                    offset += chunk.len();
                    let each = match result {
                        Ok(()) => MemberWriteResult::Done,
                        Err(e) if is_already_member(&e) => {
                            one_by_one.extend(range);
                            continue;
                        }
                        Err(e) if is_not_replicated_yet(&e) => {
                            MemberWriteResult::NotReplicatedYet(Arc::new(e))
                        }
                        Err(e) => MemberWriteResult::Failed(Arc::new(e)),
                    };
                    for slot in &mut add_results[range] {
                        *slot = Some(each.clone());
                    }
                }
                Op::Unref(_) => remove_results.push(match result {
                    Ok(()) => MemberWriteResult::Done,
                    Err(e) if e.is_not_found() => MemberWriteResult::Already,
                    Err(e) if is_not_replicated_yet(&e) => {
                        MemberWriteResult::NotReplicatedYet(Arc::new(e))
                    }
                    Err(e) => MemberWriteResult::Failed(Arc::new(e)),
                }),
                Op::Ref(_) => {}
            }
        }
        if !one_by_one.is_empty() {
            let singles: Vec<Op<'_>> = one_by_one.iter().map(|&i| Op::Ref(&adds[i])).collect();
            let results = self.send_member_ops(group_id, &singles).await?;
            for (&i, result) in one_by_one.iter().zip(results) {
                add_results[i] = Some(match result {
                    Ok(()) => MemberWriteResult::Done,
                    Err(e) if is_already_member(&e) => MemberWriteResult::Already,
                    Err(e) if is_not_replicated_yet(&e) => {
                        MemberWriteResult::NotReplicatedYet(Arc::new(e))
                    }
                    Err(e) => MemberWriteResult::Failed(Arc::new(e)),
                });
            }
        }
        let adds_out = adds
            .iter()
            .zip(add_results)
            .map(|(m, r)| MemberWriteOutcome {
                member_id: m.clone(),
                write: MemberWrite::Add,
                // Every chunk's slots are filled above; a gap would be a bug, reported as a failure.
                result: r.unwrap_or_else(|| {
                    MemberWriteResult::Failed(Arc::new(GraphError::InvalidRequest(
                        "no result for this member".into(),
                    )))
                }),
            });
        let removes_out =
            removes
                .iter()
                .zip(remove_results)
                .map(|(m, result)| MemberWriteOutcome {
                    member_id: m.clone(),
                    write: MemberWrite::Remove,
                    result,
                });
        Ok(adds_out.chain(removes_out).collect())
    }
}
