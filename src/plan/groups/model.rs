//! The group plan: one entry per source group (or gone link), with membership changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupAction {
    /// `POST /groups`, then the anchor and the members.
    Create,
    /// Take over an existing target security group matched by the adoption rule.
    Adopt,
    /// `PATCH` attributes (and/or members) of a linked group.
    Update,
    /// `POST /directory/deletedItems/{id}/restore`: back in scope within 30 days.
    Restore,
    /// `DELETE /groups/{id}` (soft).
    Delete,
    /// Delete held back by the deletion guard.
    StagedDelete,
    /// Nothing to write.
    NoChange,
    /// Not written, with a reason.
    Skip,
    /// A name clash with a group ctsync does not own, or several adoption candidates.
    Disputed,
}

impl GroupAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupAction::Create => "create",
            GroupAction::Adopt => "adopt",
            GroupAction::Update => "update",
            GroupAction::Restore => "restore",
            GroupAction::Delete => "delete",
            GroupAction::StagedDelete => "stagedDelete",
            GroupAction::NoChange => "noChange",
            GroupAction::Skip => "skip",
            GroupAction::Disputed => "disputed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupReason {
    MailEnabledSecurity,
    Distribution,
    RoleAssignable,
    MappingFailed,
    NameClash,
    SeveralAdoptionCandidates,
    DeletedByTargetAdmin,
    TooManyRemovals,
    SyncNotAllowed,
    SourceGone,
    DeprovisionOff,
}

impl GroupReason {
    pub fn describe(self) -> &'static str {
        match self {
            GroupReason::MailEnabledSecurity => {
                "mail-enabled security groups are not synced (Entra syncs security and Microsoft 365 groups)"
            }
            GroupReason::Distribution => "distribution groups are not synced",
            GroupReason::RoleAssignable => "role-assignable groups are not synced",
            GroupReason::MappingFailed => "a group mapping failed",
            GroupReason::NameClash => {
                "a target group with this name exists and ctsync did not create or adopt it"
            }
            GroupReason::SeveralAdoptionCandidates => {
                "several target groups match the adoption rule"
            }
            GroupReason::DeletedByTargetAdmin => {
                "the target group was deleted in the target; ctsync does not restore it"
            }
            GroupReason::TooManyRemovals => {
                "group deletes and membership removals reached the deletion guard threshold"
            }
            GroupReason::SyncNotAllowed => "the target does not allow group sync from this source",
            GroupReason::SourceGone => "the source group was deleted or unassigned",
            GroupReason::DeprovisionOff => "deprovision is none: the target group is left as it is",
        }
    }
}

/// One member added or removed, with a name for people.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    pub target_user_id: String,
    pub name: String,
}

/// Target-side membership edits seen on a full cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupDrift {
    /// Members added by hand in the target (not in scope for this group).
    pub added_in_target: Vec<MemberChange>,
    /// Members ctsync maintains that were removed by hand in the target.
    pub removed_in_target: Vec<MemberChange>,
    /// Corrected this cycle (drift correction on)?
    pub corrected: bool,
}

impl GroupDrift {
    pub fn is_empty(&self) -> bool {
        self.added_in_target.is_empty() && self.removed_in_target.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupEntry {
    pub source_id: String,
    pub display_name: String,
    /// Target group id, when one exists (adopt, update, restore, delete).
    pub target_id: Option<String>,
    pub action: GroupAction,
    pub reason: Option<GroupReason>,
    /// Attributes to write (all mapped ones on create/adopt, the changes otherwise).
    pub changes: BTreeMap<String, Value>,
    pub add_members: Vec<MemberChange>,
    pub remove_members: Vec<MemberChange>,
    pub drift: Option<GroupDrift>,
    /// After success: the attribute values and the members the store keeps for this link.
    pub exported_after: BTreeMap<String, Value>,
    pub members_after: BTreeSet<String>,
    /// Candidate target group ids for `disputed`.
    pub candidates: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupGuard {
    pub enabled: bool,
    pub triggered: bool,
    pub forced: bool,
    pub deletes: usize,
    pub member_removals: usize,
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPlan {
    pub pair: String,
    /// Sorted by source group id.
    pub entries: Vec<GroupEntry>,
    pub guard: GroupGuard,
    /// The target refuses group sync: entries are all skips.
    pub blocked: Option<String>,
}

impl GroupPlan {
    pub fn count(&self, action: GroupAction) -> usize {
        self.entries.iter().filter(|e| e.action == action).count()
    }

    pub fn member_adds(&self) -> usize {
        self.entries.iter().map(|e| e.add_members.len()).sum()
    }

    pub fn member_removals(&self) -> usize {
        self.entries.iter().map(|e| e.remove_members.len()).sum()
    }

    /// Entries that write something.
    pub fn writes(&self) -> impl Iterator<Item = &GroupEntry> {
        self.entries.iter().filter(|e| {
            matches!(
                e.action,
                GroupAction::Create
                    | GroupAction::Adopt
                    | GroupAction::Update
                    | GroupAction::Restore
                    | GroupAction::Delete
            ) || !e.add_members.is_empty()
                || !e.remove_members.is_empty()
        })
    }
}
