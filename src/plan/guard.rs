//! Accidental-deletion prevention (reference §6): when one cycle's deletes plus disables reach
//! the threshold, none of them run; they are staged, creates and updates go on.

use std::collections::BTreeSet;

use super::input::DeletionGuardSettings;
use super::model::{Action, Anchor, GuardOutcome, Plan, PlanEntry, Reason};

pub(super) fn outcome_not_evaluated(settings: &DeletionGuardSettings) -> GuardOutcome {
    GuardOutcome {
        enabled: settings.enabled,
        triggered: false,
        reason: None,
        forced: false,
        approved: 0,
        deletes: 0,
        disables: 0,
        managed: 0,
        threshold: settings.threshold,
        percentage: settings.percentage,
    }
}

/// Applies the guard to a plan. `managed` is the number of live users ctsync manages for the
/// pair (the base of the percentage); `approved` names the staged removals an approval let
/// through. Those pass; every other removal is counted on its own, so an approval never lets
/// through a removal nobody saw staged. Entra compares with "met" (a threshold of 500 allows
/// 499), so the test is `>=`.
pub fn deletion_guard(
    plan: Plan,
    settings: &DeletionGuardSettings,
    managed: usize,
    approved: &BTreeSet<Anchor>,
) -> Plan {
    let is_approved = |e: &PlanEntry| e.action.is_removal() && approved.contains(&e.anchor);
    let unapproved = |action: Action| {
        plan.entries()
            .iter()
            .filter(|e| e.action == action && !is_approved(e))
            .count()
    };
    let deletes = unapproved(Action::SoftDelete);
    let disables = unapproved(Action::Disable);
    let approved_count = plan.entries().iter().filter(|e| is_approved(e)).count();
    let removals = deletes + disables;
    let over_count = u64::try_from(removals).unwrap_or(u64::MAX) >= u64::from(settings.threshold);
    let over_share = settings.percentage.is_some_and(|pct| {
        managed > 0 && (removals as u128) * 100 >= u128::from(pct) * (managed as u128)
    });
    let triggered = settings.enabled && removals > 0 && (over_count || over_share);
    let outcome = GuardOutcome {
        enabled: settings.enabled,
        triggered,
        reason: triggered.then_some(Reason::TooManyDeletes),
        forced: approved_count > 0,
        approved: approved_count,
        deletes,
        disables,
        managed,
        threshold: settings.threshold,
        percentage: settings.percentage,
    };
    let pair = plan.pair().to_owned();
    let at = plan.computed_at();
    let blocked = plan.blocked();
    let (entries, managers) = plan.into_parts();
    let entries = entries
        .into_iter()
        .map(|mut entry| {
            if triggered && entry.action.is_removal() && !is_approved(&entry) {
                entry.intended = Some(entry.action);
                entry.action = Action::StagedDelete;
                // Nothing is written for a staged removal, not even its records; a settled
                // escrow or intent is settled again once the removal runs.
                entry.records.clear();
            }
            entry
        })
        .collect();
    Plan::new(pair, at, blocked, outcome, entries, managers)
}
