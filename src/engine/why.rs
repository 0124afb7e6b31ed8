//! Why a user is out of scope, in words an administrator can act on: which assignment or
//! clause decided it, and why (on-demand provisioning's scoping step).

use crate::scope::{Assignment, Disposition, Membership, ScopeDecision, ScopeSetting};

use super::EngineError;
use super::read::{self, graph_error};
use super::runtime::PairRuntime;

/// One sentence per reason the decision did not provision the user; empty when it did.
/// With assignment scoping and no assignment, the assigned groups' transitive members are read
/// to tell "in a nested group" from "not assigned at all".
pub async fn scope_explanation(
    rt: &PairRuntime,
    source_id: &str,
    decision: &ScopeDecision,
) -> Result<Vec<String>, EngineError> {
    if decision.disposition == Disposition::Provision {
        return Ok(Vec::new());
    }
    let mut why = Vec::new();
    match &decision.membership {
        Membership::External(reason) => why.push(format!(
            "the source user is not a member of the source tenant ({reason:?}): only internal \
             members are synchronized, an external or invited user never is"
        )),
        Membership::InternalGuest => why.push(
            "the source user is a guest (userType Guest): only members are synchronized".into(),
        ),
        Membership::InternalMember => {}
    }
    if decision.scope == ScopeSetting::Assigned && decision.assignment == Assignment::None {
        why.push(assignment_explanation(rt, source_id).await?);
    }
    if !decision.active {
        why.push(
            "accountEnabled is false in the source: a disabled user is not created (one already \
             synchronized is disabled in the target)"
                .into(),
        );
    }
    for filter in decision.filters.filters.iter().filter(|f| !f.passed) {
        for clause in filter.clauses.iter().filter(|c| !c.passed) {
            why.push(format!(
                "scoping filter \"{}\": {} is false (the user's {} is {}){}",
                filter.title,
                clause.rendered,
                clause.attribute,
                clause.actual,
                clause
                    .note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(why)
}

/// Not assigned: through a nested group of an assigned group, or not at all.
async fn assignment_explanation(rt: &PairRuntime, source_id: &str) -> Result<String, EngineError> {
    let (_, groups) = read::assigned_principals(rt).await?;
    for group in &groups {
        let members = match rt.source.group_members(group, true).await {
            Ok(members) => members,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(graph_error("source", &rt.pair.source.tenant_id, e)),
        };
        if members.iter().any(|m| m.id == source_id) {
            return Ok(format!(
                "member of a nested group inside assigned group {group}; only direct members of \
                 an assigned group count (as in Entra): assign the nested group itself, or add \
                 the user to {group} directly"
            ));
        }
    }
    Ok(format!(
        "not assigned: the user is not in scope.users, not assigned to the app, and not a \
         direct member of any of the {} assigned group(s)",
        groups.len()
    ))
}
