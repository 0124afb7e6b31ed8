//! Accidental-deletion prevention (reference §6): when one cycle's deletes plus disables reach
//! the threshold, none of them run; they are staged, creates and updates go on.

use super::input::DeletionGuardSettings;
use super::model::{Action, GuardOutcome, Plan, Reason};

pub(super) fn outcome_not_evaluated(settings: &DeletionGuardSettings) -> GuardOutcome {
    GuardOutcome {
        enabled: settings.enabled,
        triggered: false,
        reason: None,
        forced: false,
        deletes: 0,
        disables: 0,
        managed: 0,
        threshold: settings.threshold,
        percentage: settings.percentage,
    }
}

/// Applies the guard to a plan. `managed` is the number of live users ctsync manages for the
/// pair (the base of the percentage); `force` approves this cycle's removals. Entra compares
/// with "met" (a threshold of 500 allows 499), so the test is `>=`.
pub fn deletion_guard(
    plan: Plan,
    settings: &DeletionGuardSettings,
    managed: usize,
    force: bool,
) -> Plan {
    let deletes = plan.count(Action::SoftDelete);
    let disables = plan.count(Action::Disable);
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
        forced: triggered && force,
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
    let stage = triggered && !force;
    let entries = entries
        .into_iter()
        .map(|mut entry| {
            if stage && entry.action.is_removal() {
                entry.intended = Some(entry.action);
                entry.action = Action::StagedDelete;
                entry.exported_after.clear();
            }
            entry
        })
        .collect();
    Plan::new(pair, at, blocked, outcome, entries, managers)
}
