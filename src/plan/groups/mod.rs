//! Pure group planning: which target security groups to create, adopt, update, restore or
//! delete, and which memberships to add or remove, for the groups assigned to a pair. No IO,
//! no clock; the user pass runs first, so the input knows each in-scope source user's target
//! counterpart.
//!
//! Decisions where Entra is silent (documented in README, "Group sync"):
//! - A source group deleted or unassigned soft-deletes its target group (restorable 30 days);
//!   back in scope within that time, the same target group is restored (same object id).
//! - A target group that the target's admin deleted is reported, not re-created or restored.
//! - A target group ctsync neither created nor adopted is never written. Adoption needs an
//!   explicit rule (`matchingAttributes`) and exactly one candidate; a display-name clash without
//!   an adoption match is `disputed`.
//! - Memberships: ctsync remembers the members it maintains. Incremental cycles write only what
//!   the source changed. Full cycles compare with the target's real members: a member added or
//!   removed by hand there is drift — reported, and corrected only with drift correction.
//! - A member who is in scope but has no target user yet is left for a later cycle.

mod compute;
mod input;
mod model;
mod render;

#[cfg(test)]
mod tests;

pub use compute::plan_groups;
pub use input::{
    GroupLinkState, GroupPlanInput, GroupPlanSettings, SourceGroup, SourceGroupKind, TargetGroup,
};
pub use model::{
    GroupAction, GroupDrift, GroupEntry, GroupGuard, GroupPlan, GroupReason, MemberChange,
};
