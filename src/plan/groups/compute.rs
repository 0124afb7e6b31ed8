//! The group planner proper. See the module docs for the decisions it encodes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::input::{GroupLinkState, GroupPlanInput, SourceGroup, SourceGroupKind, TargetGroup};
use super::model::{
    GroupAction, GroupDrift, GroupEntry, GroupGuard, GroupPlan, GroupReason, MemberChange,
};

/// Plans one cycle of group sync. Same input, same plan (entries sorted by source group id).
pub fn plan_groups(input: &GroupPlanInput) -> GroupPlan {
    let links: BTreeMap<&str, &GroupLinkState> = input
        .links
        .iter()
        .map(|l| (l.source_id.as_str(), l))
        .collect();
    let targets: BTreeMap<&str, &TargetGroup> = input
        .target_groups
        .iter()
        .map(|t| (t.id.as_str(), t))
        .collect();
    let mut sources: Vec<&SourceGroup> = input.source_groups.iter().collect();
    sources.sort_by(|a, b| a.id.cmp(&b.id));
    sources.dedup_by(|a, b| a.id == b.id);
    let mut entries: Vec<GroupEntry> = sources
        .iter()
        .map(|sg| plan_source_group(input, sg, links.get(sg.id.as_str()).copied(), &targets))
        .collect();
    let in_scope: BTreeSet<&str> = sources.iter().map(|s| s.id.as_str()).collect();
    for link in &input.links {
        let gone = input.gone.contains(&link.source_id)
            || (input.complete && !in_scope.contains(link.source_id.as_str()));
        if gone
            && !in_scope.contains(link.source_id.as_str())
            && let Some(e) = plan_gone(input, link, &targets)
        {
            entries.push(e);
        }
    }
    entries.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    if let Some(reason) = &input.settings.blocked {
        for e in &mut entries {
            block(e);
        }
        return GroupPlan {
            pair: input.pair.clone(),
            entries,
            guard: guard_outcome(input, 0, 0, false),
            blocked: Some(reason.clone()),
        };
    }
    apply_guard(input, entries)
}

fn entry(source_id: &str, name: &str, action: GroupAction) -> GroupEntry {
    GroupEntry {
        source_id: source_id.to_owned(),
        display_name: name.to_owned(),
        target_id: None,
        action,
        reason: None,
        changes: BTreeMap::new(),
        add_members: Vec::new(),
        remove_members: Vec::new(),
        drift: None,
        exported_after: BTreeMap::new(),
        members_after: BTreeSet::new(),
        candidates: Vec::new(),
    }
}

fn skip(sg: &SourceGroup, reason: GroupReason) -> GroupEntry {
    let mut e = entry(&sg.id, &sg.display_name, GroupAction::Skip);
    e.reason = Some(reason);
    e
}

/// The target refuses group sync: nothing is written; the link state stays as it was.
fn block(e: &mut GroupEntry) {
    if e.action != GroupAction::Disputed {
        e.action = GroupAction::Skip;
        e.reason = Some(GroupReason::SyncNotAllowed);
    }
    e.changes.clear();
    e.add_members.clear();
    e.remove_members.clear();
    e.exported_after.clear();
    e.members_after.clear();
}

fn desired_members(input: &GroupPlanInput, sg: &SourceGroup) -> BTreeSet<String> {
    let source = if input.settings.flatten {
        &sg.transitive_members
    } else {
        &sg.direct_members
    };
    source
        .iter()
        .filter_map(|u| input.user_targets.get(u).cloned())
        .collect()
}

fn plan_source_group(
    input: &GroupPlanInput,
    sg: &SourceGroup,
    link: Option<&GroupLinkState>,
    targets: &BTreeMap<&str, &TargetGroup>,
) -> GroupEntry {
    match sg.kind {
        SourceGroupKind::MailEnabledSecurity => return skip(sg, GroupReason::MailEnabledSecurity),
        SourceGroupKind::Distribution => return skip(sg, GroupReason::Distribution),
        SourceGroupKind::RoleAssignable => return skip(sg, GroupReason::RoleAssignable),
        _ => {}
    }
    if !sg.errors.is_empty() {
        return skip(sg, GroupReason::MappingFailed);
    }
    let desired = desired_members(input, sg);
    let linked_target = link.and_then(|l| targets.get(l.target_id.as_str()).copied());
    let anchored = || {
        input
            .target_groups
            .iter()
            .find(|t| t.anchor.as_deref() == Some(sg.id.as_str()))
    };
    match (link, linked_target) {
        (Some(l), Some(t)) if t.deleted && !l.deleted_by_us => {
            let mut e = skip(sg, GroupReason::DeletedByTargetAdmin);
            e.target_id = Some(t.id.clone());
            e
        }
        (Some(l), Some(t)) => existing(input, sg, t, &l.exported, &l.members, &desired),
        // Linked but the target group is gone for good (purged): create it again.
        (Some(_), None) | (None, _) => match anchored() {
            // Anchored but not linked: created by ctsync (a crash before the link was
            // stored) — carry on with it rather than create a duplicate.
            Some(t) => {
                let stored = BTreeSet::new();
                existing(input, sg, t, &t.attributes, &stored, &desired)
            }
            None => unlinked(input, sg, &desired),
        },
    }
}

/// A group ctsync owns (linked or anchored): restore if ctsync deleted it, update attributes
/// and memberships.
fn existing(
    input: &GroupPlanInput,
    sg: &SourceGroup,
    t: &TargetGroup,
    exported: &BTreeMap<String, Value>,
    stored: &BTreeSet<String>,
    desired: &BTreeSet<String>,
) -> GroupEntry {
    let s = &input.settings;
    let action = if t.deleted {
        GroupAction::Restore
    } else {
        GroupAction::Update
    };
    let mut e = entry(&sg.id, &sg.display_name, action);
    e.target_id = Some(t.id.clone());
    let compare_with_target = t.deleted || (s.full_cycle && s.drift_correction);
    for (k, v) in &sg.attributes {
        let differs =
            exported.get(k) != Some(v) || (compare_with_target && t.attributes.get(k) != Some(v));
        if differs {
            e.changes.insert(k.clone(), v.clone());
        }
    }
    let actual = if s.full_cycle {
        t.members.as_ref()
    } else {
        None
    };
    let (adds, removes, drift) = membership(input, desired, stored, actual);
    e.add_members = adds;
    e.remove_members = removes;
    e.drift = drift;
    if e.action == GroupAction::Update
        && e.changes.is_empty()
        && e.add_members.is_empty()
        && e.remove_members.is_empty()
    {
        e.action = GroupAction::NoChange;
    }
    e.exported_after = sg.attributes.clone();
    e.members_after = desired.clone();
    e
}

fn unlinked(input: &GroupPlanInput, sg: &SourceGroup, desired: &BTreeSet<String>) -> GroupEntry {
    let candidates_free = |t: &&TargetGroup| !t.deleted && t.security && t.anchor.is_none();
    for attr in &input.settings.matching_attributes {
        let Some(want) = sg.attributes.get(attr) else {
            continue;
        };
        let matches: Vec<&TargetGroup> = input
            .target_groups
            .iter()
            .filter(candidates_free)
            .filter(|t| t.attributes.get(attr).is_some_and(|v| same_value(v, want)))
            .collect();
        match matches.as_slice() {
            [] => continue,
            [t] => {
                let stored = BTreeSet::new();
                let mut e = existing(input, sg, t, &BTreeMap::new(), &stored, desired);
                e.action = GroupAction::Adopt;
                // Adoption writes every mapped attribute and the anchor.
                e.changes = sg.attributes.clone();
                if !input.settings.full_cycle || t.members.is_none() {
                    // Members unknown: add every desired member (duplicates are fine).
                    e.add_members = names(input, desired.iter());
                }
                return e;
            }
            many => {
                let mut e = skip(sg, GroupReason::SeveralAdoptionCandidates);
                e.action = GroupAction::Disputed;
                e.candidates = many.iter().map(|t| t.id.clone()).collect();
                return e;
            }
        }
    }
    let name = sg
        .attributes
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or(&sg.display_name);
    let clashes: Vec<String> = input
        .target_groups
        .iter()
        .filter(|t| !t.deleted && t.anchor.as_deref() != Some(sg.id.as_str()))
        .filter(|t| t.display_name.to_lowercase() == name.to_lowercase())
        .map(|t| t.id.clone())
        .collect();
    if !clashes.is_empty() {
        let mut e = skip(sg, GroupReason::NameClash);
        e.action = GroupAction::Disputed;
        e.candidates = clashes;
        return e;
    }
    let mut e = entry(&sg.id, &sg.display_name, GroupAction::Create);
    e.changes = sg.attributes.clone();
    e.add_members = names(input, desired.iter());
    e.exported_after = sg.attributes.clone();
    e.members_after = desired.clone();
    e
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    }
}

fn names<'a>(input: &GroupPlanInput, ids: impl Iterator<Item = &'a String>) -> Vec<MemberChange> {
    ids.map(|id| MemberChange {
        target_user_id: id.clone(),
        name: input
            .user_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.clone()),
    })
    .collect()
}

/// Membership writes: from what ctsync maintains (`stored`) to `desired`; on full cycles also
/// against the target's real members, where hand-made edits are drift.
fn membership(
    input: &GroupPlanInput,
    desired: &BTreeSet<String>,
    stored: &BTreeSet<String>,
    actual: Option<&BTreeSet<String>>,
) -> (Vec<MemberChange>, Vec<MemberChange>, Option<GroupDrift>) {
    let Some(actual) = actual else {
        let adds = names(input, desired.difference(stored));
        let removes = names(input, stored.difference(desired));
        return (adds, removes, None);
    };
    let correct = input.settings.drift_correction;
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    let mut drift = GroupDrift {
        corrected: correct,
        ..GroupDrift::default()
    };
    for m in names(input, desired.difference(actual)) {
        if stored.contains(&m.target_user_id) {
            drift.removed_in_target.push(m.clone());
            if correct {
                adds.push(m);
            }
        } else {
            adds.push(m);
        }
    }
    for m in names(input, actual.difference(desired)) {
        if stored.contains(&m.target_user_id) {
            removes.push(m);
        } else {
            drift.added_in_target.push(m.clone());
            if correct {
                removes.push(m);
            }
        }
    }
    let drift = (!drift.is_empty()).then_some(drift);
    (adds, removes, drift)
}

/// A linked group whose source group is gone or unassigned.
fn plan_gone(
    input: &GroupPlanInput,
    link: &GroupLinkState,
    targets: &BTreeMap<&str, &TargetGroup>,
) -> Option<GroupEntry> {
    if link.deleted_by_us {
        return None;
    }
    let target = targets.get(link.target_id.as_str());
    if target.is_some_and(|t| t.deleted) {
        return None;
    }
    let mut e = entry(&link.source_id, &link.display_name, GroupAction::Delete);
    e.target_id = Some(link.target_id.clone());
    e.reason = Some(GroupReason::SourceGone);
    if !input.settings.soft_delete {
        e.action = GroupAction::Skip;
        e.reason = Some(GroupReason::DeprovisionOff);
    }
    Some(e)
}

fn guard_outcome(
    input: &GroupPlanInput,
    deletes: usize,
    member_removals: usize,
    triggered: bool,
) -> GroupGuard {
    GroupGuard {
        enabled: input.settings.guard_enabled,
        triggered,
        forced: triggered && input.settings.force,
        deletes,
        member_removals,
        threshold: input.settings.guard_threshold,
    }
}

/// Group deletes plus membership removals at or above the threshold: none of them run
/// (staged), unless forced; creates, updates and additions go on.
fn apply_guard(input: &GroupPlanInput, mut entries: Vec<GroupEntry>) -> GroupPlan {
    let deletes = entries
        .iter()
        .filter(|e| e.action == GroupAction::Delete)
        .count();
    let member_removals: usize = entries.iter().map(|e| e.remove_members.len()).sum();
    let removals = deletes + member_removals;
    let triggered = input.settings.guard_enabled
        && removals > 0
        && u64::try_from(removals).unwrap_or(u64::MAX) >= u64::from(input.settings.guard_threshold);
    if triggered && !input.settings.force {
        for e in &mut entries {
            if e.action == GroupAction::Delete {
                e.action = GroupAction::StagedDelete;
                e.reason = Some(GroupReason::TooManyRemovals);
            }
            if !e.remove_members.is_empty() {
                // Kept members stay maintained: they are removed once the guard is lifted.
                for m in e.remove_members.drain(..) {
                    e.members_after.insert(m.target_user_id);
                }
                if e.action == GroupAction::NoChange {
                    e.reason = Some(GroupReason::TooManyRemovals);
                }
            }
        }
    }
    GroupPlan {
        pair: input.pair.clone(),
        entries,
        guard: guard_outcome(input, deletes, member_removals, triggered),
        blocked: None,
    }
}
