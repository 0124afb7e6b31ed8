//! What the group planner reads: settings, the source groups in scope, the store's links and
//! the target's groups.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

/// The pair's group settings, as the planner needs them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPlanSettings {
    /// Members of nested groups count (in-scope transitive members).
    pub flatten: bool,
    /// Source group gone or unassigned: soft delete the target group (else leave it).
    pub soft_delete: bool,
    /// Adoption rule: target attributes compared, in precedence order; empty = never adopt.
    pub matching_attributes: Vec<String>,
    pub guard_enabled: bool,
    /// Group deletes plus membership removals at or above which they are staged.
    pub guard_threshold: u32,
    /// This cycle read the target's members (full cycle): drift is detected.
    pub full_cycle: bool,
    /// Correct drift (hand-made membership and attribute edits) on full cycles.
    pub drift_correction: bool,
    /// `Some(reason)`: the target does not allow group sync; nothing is written.
    pub blocked: Option<String>,
    /// The operator approved this cycle's removals despite the guard.
    pub force: bool,
}

/// Kinds of source group, as Graph describes them (`groupTypes`, `mailEnabled`,
/// `securityEnabled`, `isAssignableToRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SourceGroupKind {
    Security,
    DynamicSecurity,
    Microsoft365,
    MailEnabledSecurity,
    Distribution,
    RoleAssignable,
}

impl SourceGroupKind {
    /// Classifies a group from its Graph properties.
    pub fn classify(
        group_types: &[String],
        mail_enabled: bool,
        security_enabled: bool,
        role_assignable: bool,
    ) -> SourceGroupKind {
        let has = |t: &str| group_types.iter().any(|g| g.eq_ignore_ascii_case(t));
        if role_assignable {
            SourceGroupKind::RoleAssignable
        } else if has("Unified") {
            SourceGroupKind::Microsoft365
        } else if mail_enabled && security_enabled {
            SourceGroupKind::MailEnabledSecurity
        } else if mail_enabled {
            SourceGroupKind::Distribution
        } else if has("DynamicMembership") {
            SourceGroupKind::DynamicSecurity
        } else {
            SourceGroupKind::Security
        }
    }

    /// Entra syncs security groups (static or dynamic) and Microsoft 365 groups.
    pub fn is_synced(self) -> bool {
        matches!(
            self,
            SourceGroupKind::Security
                | SourceGroupKind::DynamicSecurity
                | SourceGroupKind::Microsoft365
        )
    }
}

/// A source group assigned to the pair, mapped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceGroup {
    pub id: String,
    pub display_name: String,
    pub kind: SourceGroupKind,
    /// Mapped target attributes (displayName, description, mailNickname).
    pub attributes: BTreeMap<String, Value>,
    /// Mapping errors: the group is not written.
    pub errors: Vec<String>,
    /// Source user ids that are direct members.
    pub direct_members: BTreeSet<String>,
    /// Source user ids reachable through nested groups too.
    pub transitive_members: BTreeSet<String>,
}

/// What the store remembers of a group ctsync manages.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupLinkState {
    pub source_id: String,
    pub target_id: String,
    /// Display name last seen, for messages about a source group that is gone.
    pub display_name: String,
    /// Attribute values last written.
    pub exported: BTreeMap<String, Value>,
    /// Target user ids ctsync maintains in the group.
    pub members: BTreeSet<String>,
    /// ctsync soft-deleted the target group (source gone or unassigned).
    pub deleted_by_us: bool,
}

/// A target group as read this cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroup {
    pub id: String,
    pub display_name: String,
    /// Mapped attributes as the target holds them.
    pub attributes: BTreeMap<String, Value>,
    /// Value of the group anchor extension (a source group id), if any.
    pub anchor: Option<String>,
    /// Static, non-mail-enabled security group (what ctsync may adopt or write).
    pub security: bool,
    /// Soft-deleted (in `directory/deletedItems`).
    pub deleted: bool,
    /// Real members (target object ids), when this cycle read them.
    pub members: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPlanInput {
    pub pair: String,
    pub settings: GroupPlanSettings,
    /// Source groups assigned to the pair (after their delta or full read).
    pub source_groups: Vec<SourceGroup>,
    /// Source groups this cycle knows are gone (deleted or unassigned) by id.
    pub gone: BTreeSet<String>,
    pub links: Vec<GroupLinkState>,
    /// Target groups relevant to this cycle: linked ones, anchored ones, and candidates for
    /// adoption or clashes (same display name).
    pub target_groups: Vec<TargetGroup>,
    /// In-scope source user id → target user id (after the user pass).
    pub user_targets: BTreeMap<String, String>,
    /// Display names of target users, for readable plans.
    pub user_names: BTreeMap<String, String>,
    /// A full read: every assigned group is in `source_groups`, so a linked group missing there
    /// is gone too.
    pub complete: bool,
}
