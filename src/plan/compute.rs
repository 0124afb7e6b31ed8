//! The rules: each source user (and, on a full read, each managed user the source no longer has)
//! becomes one entry with a situation and an action; then the manager pass.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::guard::deletion_guard;
use super::input::{
    DeprovisionAction, ManagedUser, PlanInput, ScopeVerdict, SourceReadKind, SourceUser, TargetUser,
};
use super::matching::{Link, Links, MatchOutcome};
use super::model::{
    Action, Anchor, AttributeChange, ManagerUpdate, Plan, PlanBlock, PlanEntry, Reason, Record,
    Situation,
};
use super::names::UserNames;
use crate::mapping::ManagerReference;
use crate::scope::OutOfScopeReason;

/// Soft-deleted users stay restorable this long (Entra: 30 days), then are purged.
pub const RESTORE_WINDOW_DAYS: i64 = 30;

const ACCOUNT_ENABLED: &str = "accountEnabled";
/// Key under which the store's last exported values keep the manager's anchor.
pub const MANAGER_ATTRIBUTE: &str = "manager";

/// Computes the plan for one cycle. Pure and deterministic: the same input gives the same plan.
pub fn plan(input: &PlanInput) -> Plan {
    let links = Links::new(input);
    let sources = index_sources(input);
    let pending: BTreeMap<&Anchor, &str> = input
        .pending_creates
        .iter()
        .map(|p| (&p.anchor, p.intent_id.as_str()))
        .collect();

    let seekers: Vec<(&Anchor, &SourceUser)> = sources
        .iter()
        .filter(|(anchor, user)| {
            matches!(links.link(anchor), Link::Unlinked)
                && wants_target(user)
                && user.account_enabled
                && user.mapping_error.is_none()
                && !pending.contains_key(anchor)
        })
        .map(|(a, u)| (a, *u))
        .collect();
    let matches = links.match_all(&seekers);

    let mut entries: Vec<PlanEntry> = sources
        .iter()
        .map(|(anchor, user)| {
            let link = links.link(anchor);
            let outcome = matches
                .get(anchor)
                .copied()
                .unwrap_or(MatchOutcome::NoCandidate);
            let intent = pending.get(anchor).copied();
            plan_source_user(input, anchor, user, link, outcome, intent)
        })
        .collect();

    if input.source_read.kind == SourceReadKind::Full {
        for anchor in links.managed_anchors() {
            if anchor.source_tenant_id() == input.source_tenant_id && !sources.contains_key(anchor)
            {
                entries.push(plan_vanished(input, anchor, links.link(anchor)));
            }
        }
    }

    if input.source_read.kind == SourceReadKind::Full {
        // Intents of users a full read no longer returns and no target user carries: the
        // create is no longer wanted.
        let planned: BTreeSet<Anchor> = entries.iter().map(|e| e.anchor.clone()).collect();
        for anchor in pending.keys() {
            if anchor.source_tenant_id() == input.source_tenant_id && !planned.contains(*anchor) {
                let b = EntryBuilder { anchor, upn: None };
                entries.push(b.skip(None, Situation::SourceDeleted, Reason::AlreadyDeprovisioned));
            }
        }
    }
    let escrowed: BTreeSet<(&Anchor, bool)> = input
        .escrowed
        .iter()
        .map(|e| (&e.anchor, e.reference))
        .collect();
    for entry in &mut entries {
        settle(entry, pending.contains_key(&entry.anchor), &escrowed);
    }

    let mut manager_updates = if input.settings.allowed.update {
        manager_pass(input, &sources, &links, &entries)
    } else {
        Vec::new()
    };
    for update in &mut manager_updates {
        update.clears_escrow = escrowed.contains(&(&update.anchor, true));
    }

    let managed_count = input.live_managed.unwrap_or_else(|| {
        input
            .managed
            .iter()
            .filter(|m| m.soft_deleted_by_us_at.is_none())
            .count()
    });
    let guard = super::guard::outcome_not_evaluated(&input.settings.deletion_guard);
    let raw = Plan::new(
        input.pair.clone(),
        input.now,
        None,
        guard,
        entries,
        manager_updates,
    );
    let guarded = deletion_guard(
        raw,
        &input.settings.deletion_guard,
        managed_count,
        &input.approved_deletes,
    );
    if input.inbound_sync_allowed {
        guarded
    } else {
        block(guarded, PlanBlock::InboundSyncDisabled)
    }
}

/// Adds the records that settle an intent or an escrow. A create resolves its own intent (the
/// executor records one before inviting); any other entry resolves a pending intent unless it
/// keeps the user waiting for a retry (mapping failed, disputed). An escrow is settled by a
/// write that succeeds or by a skip that means the action is no longer wanted.
fn settle(entry: &mut PlanEntry, intent_pending: bool, escrowed: &BTreeSet<(&Anchor, bool)>) {
    let keeps_waiting = matches!(entry.reason, Reason::MappingFailed | Reason::Disputed);
    if entry.action == Action::Create || (intent_pending && !keeps_waiting) {
        entry.records.push(Record::ResolveIntent);
    }
    let settles =
        entry.action.writes() || (entry.action == Action::Skip && settled_by_skip(entry.reason));
    if settles && escrowed.contains(&(&entry.anchor, false)) {
        entry.records.push(Record::ClearEscrow);
    }
}

/// A skip that means an escrowed action is no longer wanted (the target already holds the
/// value, or the user left scope), so the escrow is settled rather than retried forever.
pub fn settled_by_skip(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::RedundantExport
            | Reason::DriftDetected
            | Reason::OutOfScope
            | Reason::NotEffectivelyEntitled
            | Reason::AlreadyDeprovisioned
            | Reason::DeprovisionNone
            | Reason::ExternalUser
            | Reason::DisabledBeforeLeavingScope
    )
}

/// The link record of an entry that writes nothing to the target, when the store does not
/// already hold exactly it (a user found by anchor with no link, new exported values, a flag).
fn link_if_changed(
    managed: Option<&ManagedUser>,
    exported: &BTreeMap<String, Value>,
    disabled_before_scope_exit: bool,
) -> Option<Record> {
    let same = managed.is_some_and(|m| {
        &m.last_exported == exported
            && m.disabled_before_scope_exit == disabled_before_scope_exit
            && m.soft_deleted_by_us_at.is_none()
    });
    (!same).then(|| Record::Link {
        exported: exported.clone(),
        disabled_before_scope_exit,
    })
}

fn link(exported: BTreeMap<String, Value>, disabled_before_scope_exit: bool) -> Record {
    Record::Link {
        exported,
        disabled_before_scope_exit,
    }
}

fn index_sources(input: &PlanInput) -> BTreeMap<Anchor, &SourceUser> {
    input
        .source_users
        .iter()
        .map(|u| (Anchor::new(&input.source_tenant_id, &u.object_id), u))
        .collect()
}

/// Only in-scope internal members that exist in the source are wanted in the target.
fn wants_target(user: &SourceUser) -> bool {
    !user.deleted && user.membership.is_internal_member() && user.scope == ScopeVerdict::InScope
}

/// Where the linked target user stands, from the read or, failing that, the store.
#[derive(Debug, Clone, Copy)]
enum TargetState<'a> {
    /// Live; `Some` when it was read this cycle.
    Present(Option<&'a TargetUser>),
    SoftDeleted {
        by_us: bool,
        at: Option<DateTime<Utc>>,
    },
    Missing,
}

fn target_state<'a>(
    input: &PlanInput,
    managed: Option<&ManagedUser>,
    target: Option<&'a TargetUser>,
) -> TargetState<'a> {
    let ours = managed.and_then(|m| m.soft_deleted_by_us_at);
    match target {
        Some(t) if t.deleted => TargetState::SoftDeleted {
            by_us: ours.is_some(),
            at: t.deleted_date_time.or(ours),
        },
        Some(t) => TargetState::Present(Some(t)),
        None if input.target_read_complete => TargetState::Missing,
        None => match ours {
            Some(at) if !restorable(input.now, Some(at)) => TargetState::Missing,
            Some(at) => TargetState::SoftDeleted {
                by_us: true,
                at: Some(at),
            },
            None => TargetState::Present(None),
        },
    }
}

fn restorable(now: DateTime<Utc>, deleted_at: Option<DateTime<Utc>>) -> bool {
    deleted_at.is_none_or(|at| now - at <= Duration::days(RESTORE_WINDOW_DAYS))
}

struct EntryBuilder<'a> {
    anchor: &'a Anchor,
    upn: Option<String>,
}

impl EntryBuilder<'_> {
    fn entry(
        &self,
        target_id: Option<&str>,
        situation: Situation,
        action: Action,
        reason: Reason,
    ) -> PlanEntry {
        PlanEntry {
            anchor: self.anchor.clone(),
            user_principal_name: self.upn.clone(),
            target_id: target_id.map(str::to_owned),
            situation,
            action,
            reason,
            intended: None,
            changes: Vec::new(),
            resumes_intent: None,
            records: Vec::new(),
            names: UserNames::default(),
        }
    }

    fn skip(&self, target_id: Option<&str>, situation: Situation, reason: Reason) -> PlanEntry {
        self.entry(target_id, situation, Action::Skip, reason)
    }
}

/// Turns an entry into a skip that records what it would have done.
fn hold(mut entry: PlanEntry, reason: Reason) -> PlanEntry {
    entry.intended = Some(entry.intended.unwrap_or(entry.action));
    entry.action = Action::Skip;
    entry.reason = reason;
    entry.changes.clear();
    entry.resumes_intent = None;
    entry.records.clear();
    entry
}

fn plan_source_user(
    input: &PlanInput,
    anchor: &Anchor,
    user: &SourceUser,
    link: Link<'_>,
    outcome: MatchOutcome<'_>,
    intent: Option<&str>,
) -> PlanEntry {
    let b = EntryBuilder {
        anchor,
        upn: user.user_principal_name.clone(),
    };
    if wants_target(user) && user.mapping_error.is_some() {
        return match link {
            Link::Conflict => b.skip(None, Situation::Disputed, Reason::Disputed),
            Link::Unlinked => b.skip(None, Situation::Unmatched, Reason::MappingFailed),
            Link::Linked { target_id, .. } => {
                b.skip(Some(target_id), Situation::Linked, Reason::MappingFailed)
            }
        };
    }
    match link {
        Link::Conflict => b.skip(None, Situation::Disputed, Reason::Disputed),
        Link::Unlinked => plan_unlinked(input, &b, user, outcome, intent),
        Link::Linked {
            target_id,
            managed,
            target,
        } => {
            let state = target_state(input, managed, target);
            if wants_target(user) {
                plan_wanted_linked(input, &b, user, target_id, managed, state)
            } else {
                let (situation, reason) = leave_reason(user);
                plan_deprovision(input, &b, target_id, managed, state, situation, reason)
            }
        }
    }
}

fn leave_reason(user: &SourceUser) -> (Situation, Reason) {
    if user.deleted {
        return (Situation::SourceDeleted, Reason::DeletedInSource);
    }
    match user.scope {
        ScopeVerdict::OutOfScope {
            reason: OutOfScopeReason::NotEffectivelyEntitled,
        } => (Situation::OutOfScope, Reason::NotAssigned),
        _ => (Situation::OutOfScope, Reason::LeftScope),
    }
}

fn plan_unlinked(
    input: &PlanInput,
    b: &EntryBuilder<'_>,
    user: &SourceUser,
    outcome: MatchOutcome<'_>,
    intent: Option<&str>,
) -> PlanEntry {
    if user.deleted {
        return b.skip(None, Situation::SourceDeleted, Reason::OutOfScope);
    }
    if !user.membership.is_internal_member() {
        return b.skip(None, Situation::OutOfScope, Reason::ExternalUser);
    }
    if let ScopeVerdict::OutOfScope { reason } = user.scope {
        let skip = match reason {
            OutOfScopeReason::NotEffectivelyEntitled => Reason::NotEffectivelyEntitled,
            OutOfScopeReason::OutOfScope | OutOfScopeReason::ExternalUser => Reason::OutOfScope,
        };
        return b.skip(None, Situation::OutOfScope, skip);
    }
    if !user.account_enabled {
        return b.skip(None, Situation::Unmatched, Reason::SourceDisabled);
    }
    if let Some(intent_id) = intent {
        let mut entry = create_entry(
            input,
            b,
            user,
            Situation::Unmatched,
            Reason::ResumeCreateIntent,
        );
        entry.resumes_intent = Some(intent_id.to_owned());
        return gate(entry, input.settings.allowed.create);
    }
    match outcome {
        MatchOutcome::Disputed => b.skip(None, Situation::Disputed, Reason::Disputed),
        MatchOutcome::Unique(candidate) => gate(
            adopt_entry(input, b, user, candidate),
            input.settings.allowed.update,
        ),
        MatchOutcome::NoCandidate => gate(
            create_entry(
                input,
                b,
                user,
                Situation::Unmatched,
                Reason::NoMatchingTargetUser,
            ),
            input.settings.allowed.create,
        ),
    }
}

fn gate(entry: PlanEntry, allowed: bool) -> PlanEntry {
    if allowed {
        entry
    } else {
        hold(entry, Reason::ActionNotAllowed)
    }
}

/// Non-null desired values; a disabled source user is always disabled in the target.
fn desired_always(user: &SourceUser) -> BTreeMap<String, Value> {
    let mut desired: BTreeMap<String, Value> = user
        .desired
        .always
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !user.account_enabled {
        desired.insert(ACCOUNT_ENABLED.to_owned(), Value::Bool(false));
    }
    desired
}

fn create_entry(
    input: &PlanInput,
    b: &EntryBuilder<'_>,
    user: &SourceUser,
    situation: Situation,
    reason: Reason,
) -> PlanEntry {
    let mut values: BTreeMap<String, Value> = user
        .desired
        .on_create
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    values.extend(desired_always(user));
    values.insert(
        input.settings.anchor_attribute.clone(),
        Value::String(b.anchor.to_string()),
    );
    let mut entry = b.entry(None, situation, Action::Create, reason);
    entry.changes = values
        .iter()
        .map(|(attribute, new)| AttributeChange {
            attribute: attribute.clone(),
            old: None,
            new: new.clone(),
        })
        .collect();
    entry.records.push(link(values, false));
    entry
}

fn adopt_entry(
    input: &PlanInput,
    b: &EntryBuilder<'_>,
    user: &SourceUser,
    candidate: &TargetUser,
) -> PlanEntry {
    let mut desired = desired_always(user);
    desired.insert(
        input.settings.anchor_attribute.clone(),
        Value::String(b.anchor.to_string()),
    );
    let mut entry = b.entry(
        Some(&candidate.id),
        Situation::Unmatched,
        Action::Adopt,
        Reason::MatchedExistingB2bUser,
    );
    entry.changes = desired
        .iter()
        .filter_map(|(attribute, new)| {
            let old = candidate.attributes.get(attribute).filter(|v| !v.is_null());
            (old != Some(new)).then(|| AttributeChange {
                attribute: attribute.clone(),
                old: old.cloned(),
                new: new.clone(),
            })
        })
        .collect();
    entry.records.push(link(desired, false));
    entry
}

fn plan_wanted_linked(
    input: &PlanInput,
    b: &EntryBuilder<'_>,
    user: &SourceUser,
    target_id: &str,
    managed: Option<&ManagedUser>,
    state: TargetState<'_>,
) -> PlanEntry {
    let empty = BTreeMap::new();
    let last = managed.map_or(&empty, |m| &m.last_exported);
    // A source user disabled while in scope: remembered, so leaving scope later keeps it.
    let flag = !user.account_enabled;
    match state {
        TargetState::Present(target) => {
            let desired = desired_always(user);
            let diff = diff(&desired, last, target, input.settings.drift_correction);
            let mut after = last.clone();
            after.extend(desired);
            if diff.changes.is_empty() && !diff.drift.is_empty() {
                let mut entry = b.skip(Some(target_id), Situation::Linked, Reason::DriftDetected);
                entry.changes = diff.drift;
                entry.records.extend(link_if_changed(managed, &after, flag));
                return entry;
            }
            if diff.changes.is_empty() {
                let mut entry = b.skip(Some(target_id), Situation::Linked, Reason::RedundantExport);
                entry.records.extend(link_if_changed(managed, &after, flag));
                return entry;
            }
            let reason = if diff.source_changed {
                Reason::SourceChanged
            } else {
                Reason::DriftCorrected
            };
            let mut entry = b.entry(
                Some(target_id),
                Situation::LinkedChanged,
                Action::Update,
                reason,
            );
            entry.changes = diff.changes;
            entry.records.push(link(after, flag));
            gate(entry, input.settings.allowed.update)
        }
        TargetState::SoftDeleted { by_us: false, .. } => b.skip(
            Some(target_id),
            Situation::SoftDeletedInTarget,
            Reason::TargetSoftDeletedByAdmin,
        ),
        TargetState::SoftDeleted { by_us: true, at } if restorable(input.now, at) => {
            let desired = desired_always(user);
            // After a restore the user holds what it held when deleted: diff from the store.
            let diff = diff(&desired, last, None, false);
            let mut after = last.clone();
            after.extend(desired);
            let mut entry = b.entry(
                Some(target_id),
                Situation::SoftDeletedInTarget,
                Action::Restore,
                Reason::BackInScope,
            );
            entry.changes = diff.changes;
            entry.records.push(link(after, flag));
            gate(entry, input.settings.allowed.create)
        }
        TargetState::SoftDeleted { .. } | TargetState::Missing => {
            if !user.account_enabled {
                return b.skip(
                    Some(target_id),
                    Situation::TargetMissing,
                    Reason::SourceDisabled,
                );
            }
            gate(
                create_entry(
                    input,
                    b,
                    user,
                    Situation::TargetMissing,
                    Reason::TargetMissing,
                ),
                input.settings.allowed.create,
            )
        }
    }
}

struct Diff {
    changes: Vec<AttributeChange>,
    source_changed: bool,
    /// Without drift correction: target values edited by hand (known and not what ctsync
    /// exported), reported only.
    drift: Vec<AttributeChange>,
}

/// Attributes whose desired value differs from what was last exported (or, with no export
/// on record, from the target's value); with drift correction also from the target's value.
fn diff(
    desired: &BTreeMap<String, Value>,
    last: &BTreeMap<String, Value>,
    target: Option<&TargetUser>,
    drift_correction: bool,
) -> Diff {
    let mut changes = Vec::new();
    let mut source_changed = false;
    let mut drift = Vec::new();
    for (attribute, want) in desired {
        let exported = last.get(attribute).filter(|v| !v.is_null());
        let current = target.map(|t| t.attributes.get(attribute).unwrap_or(&Value::Null));
        let current_known = current.filter(|v| !v.is_null());
        let baseline = exported.or(current_known);
        let changed = baseline != Some(want);
        let drifted = drift_correction && current.is_some_and(|c| c != want);
        if changed || drifted {
            source_changed |= changed;
            changes.push(AttributeChange {
                attribute: attribute.clone(),
                old: current_known.or(exported).cloned(),
                new: want.clone(),
            });
        } else if current_known.is_some_and(|c| c != want) {
            drift.push(AttributeChange {
                attribute: attribute.clone(),
                old: current_known.cloned(),
                new: want.clone(),
            });
        }
    }
    Diff {
        changes,
        source_changed,
        drift,
    }
}

/// A managed user a full read no longer returned: deleted in the source.
fn plan_vanished(input: &PlanInput, anchor: &Anchor, link: Link<'_>) -> PlanEntry {
    let b = EntryBuilder { anchor, upn: None };
    match link {
        Link::Linked {
            target_id,
            managed,
            target,
        } => {
            let state = target_state(input, managed, target);
            plan_deprovision(
                input,
                &b,
                target_id,
                managed,
                state,
                Situation::SourceDeleted,
                Reason::DeletedInSource,
            )
        }
        // `anchor` came from the links, so it cannot be unlinked; a conflict is never written.
        Link::Conflict | Link::Unlinked => b.skip(None, Situation::Disputed, Reason::Disputed),
    }
}

fn plan_deprovision(
    input: &PlanInput,
    b: &EntryBuilder<'_>,
    target_id: &str,
    managed: Option<&ManagedUser>,
    state: TargetState<'_>,
    situation: Situation,
    reason: Reason,
) -> PlanEntry {
    let target = match state {
        TargetState::Present(target) => target,
        TargetState::SoftDeleted { .. } | TargetState::Missing => {
            return b.skip(Some(target_id), situation, Reason::AlreadyDeprovisioned);
        }
    };
    let exported_disabled = managed
        .and_then(|m| m.last_exported.get(ACCOUNT_ENABLED))
        .is_some_and(|v| v == &Value::Bool(false));
    let target_enabled = target
        .and_then(|t| t.attributes.get(ACCOUNT_ENABLED))
        .is_some_and(|v| v == &Value::Bool(true));
    let already_disabled = exported_disabled && !target_enabled;
    // Entra's documented case (reference §7): disabled first, then removed from scope — stays.
    if situation == Situation::OutOfScope
        && (already_disabled || managed.is_some_and(|m| m.disabled_before_scope_exit))
    {
        let mut entry = b.skip(
            Some(target_id),
            situation,
            Reason::DisabledBeforeLeavingScope,
        );
        let exported = managed.map(|m| m.last_exported.clone()).unwrap_or_default();
        entry
            .records
            .extend(link_if_changed(managed, &exported, true));
        return entry;
    }
    let mut entry = match input.settings.deprovision {
        DeprovisionAction::None => {
            return b.skip(Some(target_id), situation, Reason::DeprovisionNone);
        }
        DeprovisionAction::Disable if already_disabled => {
            return b.skip(Some(target_id), situation, Reason::AlreadyDeprovisioned);
        }
        DeprovisionAction::Disable => {
            let mut entry = b.entry(Some(target_id), situation, Action::Disable, reason);
            let old = target
                .and_then(|t| t.attributes.get(ACCOUNT_ENABLED))
                .or_else(|| managed.and_then(|m| m.last_exported.get(ACCOUNT_ENABLED)))
                .filter(|v| !v.is_null())
                .cloned();
            entry.changes = vec![AttributeChange {
                attribute: ACCOUNT_ENABLED.to_owned(),
                old,
                new: Value::Bool(false),
            }];
            let mut after = managed.map(|m| m.last_exported.clone()).unwrap_or_default();
            after.insert(ACCOUNT_ENABLED.to_owned(), Value::Bool(false));
            let flag = managed.is_some_and(|m| m.disabled_before_scope_exit);
            entry.records.push(link(after, flag));
            entry
        }
        DeprovisionAction::SoftDelete => {
            let mut entry = b.entry(Some(target_id), situation, Action::SoftDelete, reason);
            if managed.is_none() {
                // Found by anchor with no link (a lost store): linked first, so the store
                // knows the soft delete was ctsync's and a return restores the same user.
                entry.records.push(link(BTreeMap::new(), false));
            }
            entry.records.push(Record::SoftDeleted);
            entry
        }
    };
    if !input.source_read.complete {
        entry = hold(entry, Reason::IncompleteSourceRead);
    } else if !input.settings.allowed.delete {
        entry = hold(entry, Reason::ActionNotAllowed);
    }
    entry
}

/// Second pass: manager references, resolved through anchors. Both ends must be in scope and
/// live in the target after this cycle; an unresolvable manager leaves the reference alone.
fn manager_pass(
    input: &PlanInput,
    sources: &BTreeMap<Anchor, &SourceUser>,
    links: &Links<'_>,
    entries: &[PlanEntry],
) -> Vec<ManagerUpdate> {
    let mut live: BTreeMap<&Anchor, Option<&str>> = BTreeMap::new();
    for entry in entries {
        if ends_live(entry) {
            live.insert(&entry.anchor, entry.target_id.as_deref());
        }
    }
    let planned: BTreeSet<&Anchor> = entries.iter().map(|e| &e.anchor).collect();
    for m in &input.managed {
        if !planned.contains(&m.anchor)
            && m.soft_deleted_by_us_at.is_none()
            && !m.disabled_before_scope_exit
        {
            live.insert(&m.anchor, Some(m.target_id.as_str()));
        }
    }

    let mut updates = Vec::new();
    for entry in entries.iter().filter(|e| ends_live(e)) {
        let Some(user) = sources.get(&entry.anchor) else {
            continue;
        };
        let wanted = match &user.manager {
            ManagerReference::NotMapped => continue,
            ManagerReference::Clear => None,
            ManagerReference::Set {
                source_object_id: object_id,
            } => {
                let manager = Anchor::new(&input.source_tenant_id, object_id);
                match live.get(&manager) {
                    Some(target_id) => Some((manager, target_id.map(str::to_owned))),
                    None => continue,
                }
            }
        };
        let linked = links.managed(&entry.anchor);
        let old = match entry.action {
            Action::Create | Action::Adopt => None,
            _ => linked
                .and_then(|m| m.last_exported.get(MANAGER_ATTRIBUTE))
                .and_then(Value::as_str)
                .and_then(Anchor::parse),
        };
        let new = wanted.as_ref().map(|(a, _)| a.clone());
        // A user linked in this cycle (re-linked after a lost state file, or adopted) has no
        // manager ctsync knows it wrote: whatever the target holds may be stale, so "no
        // manager" is written too (a clear of an absent manager is a no-op in Graph).
        let known = entry.action == Action::Create || linked.is_some();
        if old == new && known {
            continue;
        }
        updates.push(ManagerUpdate {
            anchor: entry.anchor.clone(),
            target_id: entry.target_id.clone(),
            old_manager: old,
            new_manager: new,
            new_manager_target_id: wanted.and_then(|(_, id)| id),
            clears_escrow: false,
            names: UserNames::default(),
            old_manager_names: None,
            new_manager_names: None,
        });
    }
    updates
}

/// The entry leaves a linked, live, in-scope target user behind once applied.
fn ends_live(entry: &PlanEntry) -> bool {
    match entry.action {
        Action::Create | Action::Adopt | Action::Update | Action::Restore => true,
        Action::Skip => matches!(
            entry.reason,
            Reason::RedundantExport | Reason::DriftDetected
        ),
        Action::Disable | Action::SoftDelete | Action::StagedDelete => false,
    }
}

/// The target refused inbound sync: nothing is written, every would-be write says why.
fn block(plan: Plan, why: PlanBlock) -> Plan {
    let pair = plan.pair().to_owned();
    let at = plan.computed_at();
    let guard = plan.guard().clone();
    let (entries, _managers) = plan.into_parts();
    // Nothing at all: not even store records, so the next allowed cycle replans everything.
    let entries = entries
        .into_iter()
        .map(|mut e| {
            if e.action == Action::Skip {
                e.records.clear();
                e
            } else {
                hold(e, Reason::InboundSyncDisabled)
            }
        })
        .collect();
    Plan::new(pair, at, Some(why), guard, entries, Vec::new())
}
