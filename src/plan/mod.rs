//! Pure planning: situations, diff, the immutable `Plan`, the deletion guard. No IO, no clock:
//! `now` is part of [`PlanInput`] (design.md invariant 1).
//!
//! The planner takes its own plain input types, not the mapping's output: the engine adapts what
//! scope, mapping, the store and the target read produced into a [`PlanInput`], calls [`plan`],
//! and applies the entries (then the manager updates) in order.
//!
//! Contract with the engine, per entry, once its action succeeded (the idempotence tests hold the
//! planner to it through a simulated apply):
//! - `create`: record the intent before inviting (`resumes_intent` reuses one); after the PATCH,
//!   store the link with `exported_after` and resolve the intent, flags cleared.
//! - `adopt`, `update`, `restore`, `disable`: store the link with `exported_after`, flags cleared
//!   (`restore` first `POST /directory/deletedItems/{id}/restore`, then PATCH `changes`).
//! - `softDelete`: `DELETE /users/{id}`, then record `soft_deleted_by_us_at = now`.
//! - `skip` with a non-empty `exported_after` (an in-scope user, nothing to write): store the
//!   link with it, flags cleared; `skip` `DisabledBeforeLeavingScope`: set that flag.
//! - `stagedDelete` and other skips: nothing; log them.
//! - manager updates, after every create has an id: resolve anchors to target ids, then set or
//!   clear the reference and record `manager` = the manager's anchor in the exported values.
//!
//! Decisions where Entra is silent: a disabled source user is not adopted either; `restore` is
//! gated by the `create` toggle and adoption by `update`; a user deleted in the source is soft
//! deleted even if it was disabled first (Entra documents the exception for removal from scope
//! only); a manager who is not in scope leaves the reference alone; internal target users are
//! never candidates, so a source user whose only match is internal is created (and Graph may
//! refuse the invitation, which escrows it).

mod compute;
pub mod groups;
mod guard;
mod input;
mod matching;
mod model;
mod names;
mod render;

#[cfg(test)]
mod tests;

/// The planner's input speaks scope's and mapping's vocabulary for these.
pub use crate::mapping::{ManagerReference, MatchingValue};
pub use crate::scope::{ExternalReason, Membership, OutOfScopeReason};
pub use compute::{MANAGER_ATTRIBUTE, RESTORE_WINDOW_DAYS, plan};
pub use guard::deletion_guard;
pub use input::{
    AllowedActions, DeletionGuardSettings, DeprovisionAction, DesiredAttributes, EscrowedAction,
    ManagedUser, PendingCreate, PlanInput, PlanSettings, ScopeVerdict, SourceCoverage,
    SourceReadKind, SourceUser, TargetUser,
};
pub use model::{
    Action, Anchor, AttributeChange, GuardOutcome, ManagerUpdate, Plan, PlanBlock, PlanEntry,
    Reason, Record, Situation,
};
pub use names::{NameBook, UserNames, invited_address};
