//! Who is in scope for a pair: assignment scope, internal membership, activity and scoping
//! filters, with an explanation of the decision. Pure.
//!
//! Contract used by `config`: `ScopingFilter` / `FilterClause` (serde, camelCase) are what a
//! pair's YAML holds, and `ScopeSetting` is its `scope: assigned | all`.
//!
//! The decision (reference §2.3, design.md "Semantics"):
//! - `assigned`: users assigned to the pair and **direct** members of assigned groups (no nesting);
//!   `all`: every user;
//! - only internal members (see [`membership`]);
//! - scoping filters on top (clauses AND, filters OR);
//! - a user disabled in the source (`accountEnabled: false`) that passes all of the above is
//!   [`Disposition::Disable`]: never created, but an existing linked target user is disabled
//!   (CTS: "blocked from sign-in", not deleted). The planner also needs [`ScopeDecision::active`]
//!   for Entra's documented case "disabled first, then removed from scope: stays disabled".

pub mod filter;
pub mod membership;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use filter::{
    ClauseExplanation, CompiledFilters, FilterClause, FilterError, FilterExplanation,
    FilterOperator, FiltersExplanation, ScopingFilter,
};
pub use membership::{ExternalReason, Membership};

use crate::mapping::SourceAttributes;

/// The pair's scope setting (Entra: "Sync only assigned users and groups" / "Sync all").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScopeSetting {
    #[default]
    Assigned,
    All,
}

/// How a user is assigned to the pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Assignment {
    Direct,
    /// A direct member of this assigned group.
    ViaGroup {
        group_id: String,
    },
    /// Not assigned (nested members of assigned groups land here too: no cascade).
    None,
}

/// The pair's assignments as read from the source (`appRoleAssignedTo` plus each assigned group's
/// direct `members`), indexed for per-user lookups.
#[derive(Debug, Clone, Default)]
pub struct AssignmentIndex {
    users: HashSet<String>,
    via_group: HashMap<String, String>,
}

impl AssignmentIndex {
    /// `groups` yields each assigned group id with its **direct** member ids.
    pub fn new<U, G, M>(assigned_users: U, groups: G) -> AssignmentIndex
    where
        U: IntoIterator<Item = String>,
        G: IntoIterator<Item = (String, M)>,
        M: IntoIterator<Item = String>,
    {
        let users = assigned_users.into_iter().collect();
        let mut via_group = HashMap::new();
        for (group_id, members) in groups {
            for member in members {
                // Keep the smallest group id so the explanation does not depend on read order.
                via_group
                    .entry(member)
                    .and_modify(|g: &mut String| {
                        if group_id < *g {
                            g.clone_from(&group_id);
                        }
                    })
                    .or_insert_with(|| group_id.clone());
            }
        }
        AssignmentIndex { users, via_group }
    }

    /// Every assigned user id, directly or through a group.
    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.users
            .iter()
            .chain(self.via_group.keys())
            .map(String::as_str)
    }

    pub fn assignment_of(&self, user_id: &str) -> Assignment {
        if self.users.contains(user_id) {
            Assignment::Direct
        } else if let Some(group_id) = self.via_group.get(user_id) {
            Assignment::ViaGroup {
                group_id: group_id.clone(),
            }
        } else {
            Assignment::None
        }
    }
}

/// What scope means for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Disposition {
    /// In scope and active: create if unmatched, update if linked.
    Provision,
    /// In scope but disabled in the source: never created; a linked target user is disabled.
    Disable,
    /// Out of scope: a linked target user is deprovisioned (subject to the planner's rules).
    OutOfScope,
}

/// Why a user is out of scope; the first failing check in the order membership, assignment,
/// filters. Codes match Entra's skip reasons where Entra has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutOfScopeReason {
    /// Guest or external user in the source.
    ExternalUser,
    /// Not assigned to the pair (Entra's `NotEffectivelyEntitled`).
    NotEffectivelyEntitled,
    /// No scoping filter passed.
    OutOfScope,
}

/// A scoping decision with everything on-demand provisioning shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeDecision {
    pub disposition: Disposition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<OutOfScopeReason>,
    pub membership: Membership,
    pub scope: ScopeSetting,
    pub assignment: Assignment,
    /// Entra's "Assigned to the application" (always true with `all`).
    pub assigned: bool,
    /// Entra's "Active in the source system": `accountEnabled` is not `false`.
    pub active: bool,
    pub filters: FiltersExplanation,
    /// Entra's `ScopeEvaluationResult`: `<title>.<attribute> <OPERATOR> '<value>'` → bool.
    pub scope_evaluation_result: BTreeMap<String, bool>,
}

impl ScopeDecision {
    /// In scope (whether or not the user is active): a linked target user is kept.
    pub fn in_scope(&self) -> bool {
        self.disposition != Disposition::OutOfScope
    }

    /// May a target user be created for this source user?
    pub fn may_create(&self) -> bool {
        self.disposition == Disposition::Provision
    }
}

/// Decides scope for one source user. `membership` is normally `Membership::of(user)`; callers that
/// know better (e.g. from tenant domains) may pass their own.
pub fn decide(
    setting: ScopeSetting,
    assignment: Assignment,
    membership: Membership,
    user: &SourceAttributes<'_>,
    filters: &CompiledFilters,
) -> ScopeDecision {
    let assigned = setting == ScopeSetting::All || assignment != Assignment::None;
    let active = !matches!(
        user.json("accountEnabled").as_deref(),
        Some(serde_json::Value::Bool(false))
    );
    let explanation = filters.evaluate(user);
    let reason = if !membership.is_internal_member() {
        Some(OutOfScopeReason::ExternalUser)
    } else if !assigned {
        Some(OutOfScopeReason::NotEffectivelyEntitled)
    } else if !explanation.passed {
        Some(OutOfScopeReason::OutOfScope)
    } else {
        None
    };
    let disposition = match (reason, active) {
        (Some(_), _) => Disposition::OutOfScope,
        (None, true) => Disposition::Provision,
        (None, false) => Disposition::Disable,
    };
    ScopeDecision {
        disposition,
        reason,
        membership,
        scope: setting,
        assignment,
        assigned,
        active,
        scope_evaluation_result: explanation.scope_evaluation_result(),
        filters: explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().expect("object").clone()
    }

    fn sales_filter() -> CompiledFilters {
        let filters: Vec<ScopingFilter> = serde_json::from_value(json!([{"title": "Sales",
            "clauses": [{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]}]))
        .expect("parses");
        CompiledFilters::compile(&filters).expect("compiles")
    }

    fn decide_for(
        setting: ScopeSetting,
        assignment: Assignment,
        u: serde_json::Value,
    ) -> ScopeDecision {
        let u = user(u);
        let s = SourceAttributes::new(&u);
        decide(setting, assignment, Membership::of(&s), &s, &sales_filter())
    }

    #[test]
    fn assigned_scope_needs_an_assignment() {
        let u = json!({"department": "Sales", "accountEnabled": true});
        assert!(decide_for(ScopeSetting::Assigned, Assignment::Direct, u.clone()).may_create());
        let via = Assignment::ViaGroup {
            group_id: "g".into(),
        };
        assert!(decide_for(ScopeSetting::Assigned, via, u.clone()).may_create());
        let none = decide_for(ScopeSetting::Assigned, Assignment::None, u.clone());
        assert_eq!(none.reason, Some(OutOfScopeReason::NotEffectivelyEntitled));
        assert!(!none.in_scope());
        assert!(decide_for(ScopeSetting::All, Assignment::None, u).may_create());
    }

    #[test]
    fn filters_apply_on_top_of_assignment() {
        let d = decide_for(
            ScopeSetting::All,
            Assignment::None,
            json!({"department": "HR"}),
        );
        assert_eq!(d.reason, Some(OutOfScopeReason::OutOfScope));
        assert_eq!(
            d.scope_evaluation_result,
            BTreeMap::from([("Sales.department EQUALS 'Sales'".to_string(), false)])
        );
    }

    #[test]
    fn guests_and_externals_are_never_in_scope() {
        let guest = decide_for(
            ScopeSetting::All,
            Assignment::Direct,
            json!({"department": "Sales", "userType": "Guest"}),
        );
        assert_eq!(guest.reason, Some(OutOfScopeReason::ExternalUser));
        let b2b = decide_for(
            ScopeSetting::All,
            Assignment::Direct,
            json!({"department": "Sales", "creationType": "Invitation"}),
        );
        assert_eq!(b2b.disposition, Disposition::OutOfScope);
    }

    #[test]
    fn disabled_users_are_disabled_not_created() {
        let d = decide_for(
            ScopeSetting::All,
            Assignment::Direct,
            json!({"department": "Sales", "accountEnabled": false}),
        );
        assert_eq!(d.disposition, Disposition::Disable);
        assert!(d.in_scope());
        assert!(!d.may_create());
        assert!(!d.active);
        // Disabled and out of scope: out of scope, and `active` tells the planner it was disabled.
        let gone = decide_for(
            ScopeSetting::Assigned,
            Assignment::None,
            json!({"department": "Sales", "accountEnabled": false}),
        );
        assert_eq!(gone.disposition, Disposition::OutOfScope);
        assert!(!gone.active);
    }

    #[test]
    fn assignment_index_counts_direct_members_only() {
        let index = AssignmentIndex::new(
            ["u1".to_string()],
            [
                ("g2".to_string(), vec!["u2".to_string(), "u3".to_string()]),
                ("g1".to_string(), vec!["u3".to_string()]),
            ],
        );
        assert_eq!(index.assignment_of("u1"), Assignment::Direct);
        assert_eq!(
            index.assignment_of("u2"),
            Assignment::ViaGroup {
                group_id: "g2".into()
            }
        );
        assert_eq!(
            index.assignment_of("u3"),
            Assignment::ViaGroup {
                group_id: "g1".into()
            }
        );
        assert_eq!(index.assignment_of("u4"), Assignment::None);
    }
}
