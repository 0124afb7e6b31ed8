//! Pure planning: situations, diff, the immutable `Plan`, the deletion guard. No IO, no clock:
//! `now` is part of [`PlanInput`] (design.md invariant 1).
//!
//! The planner takes its own plain input types, not the mapping's output: the engine adapts what
//! scope, mapping, the store and the target read produced into a [`PlanInput`], calls [`plan`],
//! and applies the entries (then the manager updates) in order.

mod compute;
mod guard;
mod input;
mod matching;
mod model;
mod render;

#[cfg(test)]
mod tests;

pub use compute::{MANAGER_ATTRIBUTE, RESTORE_WINDOW_DAYS, plan};
pub use guard::deletion_guard;
pub use input::{
    AllowedActions, DeletionGuardSettings, DeprovisionAction, DesiredAttributes, ManagedUser,
    ManagerRef, MatchingValue, OutOfScopeReason, PendingCreate, PlanInput, PlanSettings,
    ScopeVerdict, SourceRead, SourceReadKind, SourceUser, SourceUserKind, TargetUser,
};
pub use model::{
    Action, Anchor, AttributeChange, GuardOutcome, ManagerUpdate, Plan, PlanBlock, PlanEntry,
    Reason, Situation,
};
