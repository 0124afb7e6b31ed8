//! What the planner is given: the pair's settings, the source users as the engine saw them, the
//! store's knowledge and the target users the engine read. Plain data, independent of how the
//! engine obtained it (the mapping's output is adapted into `DesiredAttributes` by the engine).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Anchor;
use crate::mapping::{ManagerReference, MatchingValue};
use crate::scope::{Membership, OutOfScopeReason};

/// Everything one cycle's plan depends on. Time comes in as `now`: the planner reads no clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInput {
    pub pair: String,
    pub source_tenant_id: String,
    pub now: DateTime<Utc>,
    pub settings: PlanSettings,
    pub source_read: SourceCoverage,
    /// The target's `identitySynchronization.userSyncInbound.isSyncAllowed` for this source.
    pub inbound_sync_allowed: bool,
    /// Staged removals an approval let through, by anchor: these pass the deletion guard; any
    /// other removal is counted afresh (the guard approves a set, not a cycle).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub approved_deletes: BTreeSet<Anchor>,
    pub source_users: Vec<SourceUser>,
    /// The store's knowledge: one record per anchor linked to a target user. On a full read,
    /// every one; on a delta read, at least those of the source users read and of their
    /// managers (the engine reads no more than the cycle touches).
    pub managed: Vec<ManagedUser>,
    /// How many live users ctsync manages (the deletion guard's base) when `managed` holds only
    /// some of them; None: count `managed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_managed: Option<usize>,
    /// Creates recorded as intended but not yet resolved (invariant 6).
    pub pending_creates: Vec<PendingCreate>,
    /// Target users the engine read this cycle: users carrying an anchor and candidate B2B users
    /// for adoption. Empty on incremental cycles that do not read the target.
    pub target_users: Vec<TargetUser>,
    /// True when `target_users` holds every anchored target user (initial cycles, drift
    /// correction): only then does a linked user missing from it count as `targetMissing`.
    pub target_read_complete: bool,
    /// The store's open escrows: an entry that settles one says so (`Record::ClearEscrow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escrowed: Vec<EscrowedAction>,
}

/// An escrowed action the store holds: the object's own (`reference` false) or its manager
/// reference's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EscrowedAction {
    pub anchor: Anchor,
    pub reference: bool,
}

/// The pair settings that change what the plan does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSettings {
    /// Target attribute holding the anchor (written on create and adopt).
    pub anchor_attribute: String,
    pub deprovision: DeprovisionAction,
    pub allowed: AllowedActions,
    /// Correct target-side edits on cycles that read the target (off in CTS).
    pub drift_correction: bool,
    pub deletion_guard: DeletionGuardSettings,
}

/// What leaving scope does to a linked target user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeprovisionAction {
    SoftDelete,
    Disable,
    None,
}

/// Entra's "Target object actions" checkboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedActions {
    pub create: bool,
    pub update: bool,
    pub delete: bool,
}

impl Default for AllowedActions {
    fn default() -> Self {
        Self {
            create: true,
            update: true,
            delete: true,
        }
    }
}

/// Accidental-deletion prevention. Deletes plus disables of one cycle are held back when they
/// reach `threshold` or `percentage` % of the managed users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionGuardSettings {
    pub enabled: bool,
    pub threshold: u32,
    pub percentage: Option<u32>,
}

impl Default for DeletionGuardSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 500,
            percentage: None,
        }
    }
}

/// How much of the source this cycle's read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceCoverage {
    pub kind: SourceReadKind,
    /// False when a page failed or the read stopped early: absence proves nothing then, and no
    /// delete or deprovisioning disable is planned.
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SourceReadKind {
    /// Every source user was read: a managed user that is absent was deleted in the source.
    Full,
    /// Only changed users were read: an absent managed user is unchanged.
    Delta,
}

/// A source user as the engine saw it, already run through scope and mapping (the vocabulary
/// types — membership, out-of-scope reason, manager reference, matching value — are scope's and
/// mapping's own, so nothing is converted between look-alike enums).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceUser {
    pub object_id: String,
    pub user_principal_name: Option<String>,
    /// Deleted in the source (delta `@removed`, soft or hard).
    pub deleted: bool,
    pub account_enabled: bool,
    /// Only internal members are ever provisioned (invariant 4).
    pub membership: Membership,
    /// Assignment and scoping filters, evaluated without regard to `accountEnabled` (a disabled
    /// user stays in scope and is disabled in the target).
    pub scope: ScopeVerdict,
    pub desired: DesiredAttributes,
    pub manager: ManagerReference,
    /// Matching attributes with this user's values, in precedence order.
    pub matching: Vec<MatchingValue>,
    /// Set when a mapping failed for this user: nothing is written for it (the engine escrows
    /// it), but it is still known to exist, so a full read does not take it for deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_error: Option<String>,
}

/// Scope without regard to `accountEnabled`; the reason is scope's own (`NotEffectivelyEntitled`:
/// not assigned to the pair; `OutOfScope`: no scoping filter passed; `ExternalUser`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum ScopeVerdict {
    InScope,
    OutOfScope { reason: OutOfScopeReason },
}

impl ScopeVerdict {
    /// The verdict of a scoping decision.
    pub fn of(decision: &crate::scope::ScopeDecision) -> ScopeVerdict {
        match decision.reason {
            Some(reason) => ScopeVerdict::OutOfScope { reason },
            None => ScopeVerdict::InScope,
        }
    }
}

/// Desired target attribute values from the mapping. `null` values are never exported (Entra
/// does not provision nulls).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredAttributes {
    pub always: BTreeMap<String, Value>,
    pub on_create: BTreeMap<String, Value>,
}

/// What the store knows about one anchor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedUser {
    pub anchor: Anchor,
    pub target_id: String,
    /// Last value exported per attribute (`manager` holds the manager's anchor as a string).
    pub last_exported: BTreeMap<String, Value>,
    /// Entra's documented case: disabled first, then removed from scope — the user stays.
    pub disabled_before_scope_exit: bool,
    /// When ctsync soft-deleted the target user (None if it did not).
    pub soft_deleted_by_us_at: Option<DateTime<Utc>>,
}

/// A create recorded before it was issued and not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCreate {
    pub anchor: Anchor,
    pub intent_id: String,
}

/// A target user as read from Graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetUser {
    pub id: String,
    /// Value of the anchor attribute, when the user carries one.
    pub anchor: Option<Anchor>,
    /// Graph `creationType`: `Invitation` for B2B users; None for internal users.
    pub creation_type: Option<String>,
    pub user_type: Option<String>,
    /// Soft-deleted (in `directory/deletedItems`).
    pub deleted: bool,
    pub deleted_date_time: Option<DateTime<Utc>>,
    pub attributes: BTreeMap<String, Value>,
}

impl TargetUser {
    /// B2B users created by invitation are the only ones ctsync may adopt (invariant 3).
    pub fn is_b2b(&self) -> bool {
        self.creation_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Invitation"))
    }
}
