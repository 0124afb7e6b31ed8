//! The plan's vocabulary (design.md): anchors, situations, actions, reasons, and the immutable
//! `Plan` itself.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::names::{NameBook, UserNames};

/// `{sourceTenantId}/{sourceObjectId}`: the only key tying a target user to a source user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Anchor(String);

impl Anchor {
    pub fn new(source_tenant_id: &str, source_object_id: &str) -> Self {
        Self(format!("{source_tenant_id}/{source_object_id}"))
    }

    /// Parses a stored or target-side anchor; None unless it is `tenant/object` with both parts.
    pub fn parse(text: &str) -> Option<Self> {
        let (tenant, object) = text.split_once('/')?;
        if tenant.is_empty() || object.is_empty() || object.contains('/') {
            return None;
        }
        Some(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn source_tenant_id(&self) -> &str {
        self.0.split_once('/').map_or("", |(t, _)| t)
    }

    pub fn source_object_id(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, o)| o)
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a (source user, target user) pair is, before any action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Situation {
    Unmatched,
    Linked,
    LinkedChanged,
    OutOfScope,
    SourceDeleted,
    Disputed,
    TargetMissing,
    SoftDeletedInTarget,
}

impl Situation {
    /// The design vocabulary's spelling (also the JSON one).
    pub fn as_str(self) -> &'static str {
        match self {
            Situation::Unmatched => "unmatched",
            Situation::Linked => "linked",
            Situation::LinkedChanged => "linkedChanged",
            Situation::OutOfScope => "outOfScope",
            Situation::SourceDeleted => "sourceDeleted",
            Situation::Disputed => "disputed",
            Situation::TargetMissing => "targetMissing",
            Situation::SoftDeletedInTarget => "softDeletedInTarget",
        }
    }
}

impl fmt::Display for Situation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the plan does about a situation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Adopt,
    Update,
    Restore,
    Disable,
    SoftDelete,
    /// A disable or soft delete held back by the deletion guard.
    StagedDelete,
    Skip,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Create,
        Action::Adopt,
        Action::Update,
        Action::Restore,
        Action::Disable,
        Action::SoftDelete,
        Action::StagedDelete,
        Action::Skip,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Adopt => "adopt",
            Action::Update => "update",
            Action::Restore => "restore",
            Action::Disable => "disable",
            Action::SoftDelete => "softDelete",
            Action::StagedDelete => "stagedDelete",
            Action::Skip => "skip",
        }
    }

    /// Inverse of [`Action::as_str`].
    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// Removals counted by the deletion guard (Entra counts disables too).
    pub fn is_removal(self) -> bool {
        matches!(self, Action::Disable | Action::SoftDelete)
    }

    /// True when applying it writes to the target.
    pub fn writes(self) -> bool {
        !matches!(self, Action::Skip | Action::StagedDelete)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an entry has its action. Skip reasons use Entra's codes where Entra has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    // create / adopt
    NoMatchingTargetUser,
    MatchedExistingB2bUser,
    ResumeCreateIntent,
    TargetMissing,
    // update / restore
    SourceChanged,
    DriftCorrected,
    BackInScope,
    // deprovisioning
    LeftScope,
    NotAssigned,
    DeletedInSource,
    // staged
    TooManyDeletes,
    // skips
    RedundantExport,
    /// A full read found target values edited by hand; reported, not corrected
    /// (`driftCorrection` off, as in Entra).
    DriftDetected,
    NotEffectivelyEntitled,
    OutOfScope,
    ExternalUser,
    Disputed,
    SourceDisabled,
    TargetSoftDeletedByAdmin,
    ActionNotAllowed,
    InboundSyncDisabled,
    IncompleteSourceRead,
    DisabledBeforeLeavingScope,
    DeprovisionNone,
    AlreadyDeprovisioned,
    MappingFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoMatchingTargetUser => "NoMatchingTargetUser",
            Reason::MatchedExistingB2bUser => "MatchedExistingB2bUser",
            Reason::ResumeCreateIntent => "ResumeCreateIntent",
            Reason::TargetMissing => "TargetMissing",
            Reason::SourceChanged => "SourceChanged",
            Reason::DriftCorrected => "DriftCorrected",
            Reason::BackInScope => "BackInScope",
            Reason::LeftScope => "LeftScope",
            Reason::NotAssigned => "NotAssigned",
            Reason::DeletedInSource => "DeletedInSource",
            Reason::TooManyDeletes => "TooManyDeletes",
            Reason::RedundantExport => "RedundantExport",
            Reason::DriftDetected => "DriftDetected",
            Reason::NotEffectivelyEntitled => "NotEffectivelyEntitled",
            Reason::OutOfScope => "OutOfScope",
            Reason::ExternalUser => "ExternalUser",
            Reason::Disputed => "Disputed",
            Reason::SourceDisabled => "SourceDisabled",
            Reason::TargetSoftDeletedByAdmin => "TargetSoftDeletedByAdmin",
            Reason::ActionNotAllowed => "ActionNotAllowed",
            Reason::InboundSyncDisabled => "InboundSyncDisabled",
            Reason::IncompleteSourceRead => "IncompleteSourceRead",
            Reason::DisabledBeforeLeavingScope => "DisabledBeforeLeavingScope",
            Reason::DeprovisionNone => "DeprovisionNone",
            Reason::AlreadyDeprovisioned => "AlreadyDeprovisioned",
            Reason::MappingFailed => "MappingFailed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attribute the action writes: what the target held (as far as ctsync knows) and what it
/// will hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeChange {
    pub attribute: String,
    pub old: Option<Value>,
    pub new: Value,
}

/// One source user's line in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    pub anchor: Anchor,
    pub user_principal_name: Option<String>,
    /// The target user this entry concerns; None for a create.
    pub target_id: Option<String>,
    pub situation: Situation,
    pub action: Action,
    pub reason: Reason,
    /// The action that would have run when this one was held back (guard, disabled inbound
    /// sync, a disallowed action).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub intended: Option<Action>,
    /// Sorted by attribute. For create and adopt this includes the anchor attribute.
    pub changes: Vec<AttributeChange>,
    /// The create intent this create resumes after a crash (invariant 6).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resumes_intent: Option<String>,
    /// The store writes the plan asks for, in order, once the action succeeded (at once for a
    /// skip). The executor makes exactly these and no others.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub records: Vec<Record>,
    /// Who this is, for people (set by the engine through [`Plan::annotate_names`]).
    #[serde(skip_serializing_if = "UserNames::is_empty", default)]
    pub names: UserNames,
}

impl PlanEntry {
    /// The exported values the entry links with, if it links.
    pub fn exported_after(&self) -> Option<&BTreeMap<String, Value>> {
        self.records.iter().find_map(|r| match r {
            Record::Link { exported, .. } => Some(exported),
            _ => None,
        })
    }
}

/// One store write of a plan entry. Planned, like the Graph writes, so that what the store holds
/// after a cycle follows from the plan alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "record")]
pub enum Record {
    /// Store the link to the entry's target user (for a create: the user the invitation
    /// returned) with the whole set of last exported values; ctsync's soft-delete mark cleared.
    #[serde(rename_all = "camelCase")]
    Link {
        exported: BTreeMap<String, Value>,
        /// Entra's documented case: disabled while in scope, the user stays when it then leaves.
        disabled_before_scope_exit: bool,
    },
    /// ctsync soft-deleted the linked target user (stamped with the executor's clock).
    SoftDeleted,
    /// The create intent of this anchor is settled (created, linked, or no longer wanted).
    ResolveIntent,
    /// The escrowed action of this anchor is settled (it succeeded, or is no longer wanted).
    ClearEscrow,
}

/// A manager reference set or cleared in the second pass, after creates have ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagerUpdate {
    pub anchor: Anchor,
    /// None when the user is created in this cycle: resolve through its anchor after apply.
    pub target_id: Option<String>,
    pub old_manager: Option<Anchor>,
    /// None clears the reference.
    pub new_manager: Option<Anchor>,
    /// None when the manager is created in this cycle (or on clear).
    pub new_manager_target_id: Option<String>,
    /// A reference escrow of this anchor is settled once the update succeeded.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub clears_escrow: bool,
    /// The user whose manager changes, for people.
    #[serde(skip_serializing_if = "UserNames::is_empty", default)]
    pub names: UserNames,
    /// The managers, for people (a manager is a person, not a composite anchor).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old_manager_names: Option<UserNames>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub new_manager_names: Option<UserNames>,
}

/// The deletion guard's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardOutcome {
    pub enabled: bool,
    pub triggered: bool,
    /// Set when the guard held removals back: `TooManyDeletes`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<Reason>,
    pub forced: bool,
    /// Removals that went through because an approval named them (by anchor).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub approved: usize,
    pub deletes: usize,
    pub disables: usize,
    pub managed: usize,
    pub threshold: u32,
    pub percentage: Option<u32>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why the plan writes nothing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanBlock {
    InboundSyncDisabled,
}

impl PlanBlock {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanBlock::InboundSyncDisabled => "InboundSyncDisabled",
        }
    }
}

/// The sorted, immutable list of actions for one cycle. Built only by [`super::plan`] and
/// [`super::guard::deletion_guard`]; fields are read through accessors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub(super) pair: String,
    pub(super) computed_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(super) blocked: Option<PlanBlock>,
    pub(super) counts: BTreeMap<Action, usize>,
    pub(super) guard: GuardOutcome,
    pub(super) entries: Vec<PlanEntry>,
    pub(super) manager_updates: Vec<ManagerUpdate>,
}

impl Plan {
    pub(super) fn new(
        pair: String,
        computed_at: DateTime<Utc>,
        blocked: Option<PlanBlock>,
        guard: GuardOutcome,
        mut entries: Vec<PlanEntry>,
        mut manager_updates: Vec<ManagerUpdate>,
    ) -> Self {
        entries.sort_by(|a, b| a.anchor.cmp(&b.anchor));
        manager_updates.sort_by(|a, b| a.anchor.cmp(&b.anchor));
        let mut counts: BTreeMap<Action, usize> = Action::ALL.iter().map(|a| (*a, 0)).collect();
        for entry in &entries {
            *counts.entry(entry.action).or_insert(0) += 1;
        }
        Self {
            pair,
            computed_at,
            blocked,
            counts,
            guard,
            entries,
            manager_updates,
        }
    }

    pub fn pair(&self) -> &str {
        &self.pair
    }

    pub fn computed_at(&self) -> DateTime<Utc> {
        self.computed_at
    }

    pub fn blocked(&self) -> Option<PlanBlock> {
        self.blocked
    }

    pub fn entries(&self) -> &[PlanEntry] {
        &self.entries
    }

    pub fn manager_updates(&self) -> &[ManagerUpdate] {
        &self.manager_updates
    }

    pub fn guard(&self) -> &GuardOutcome {
        &self.guard
    }

    /// How many entries have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.counts.get(&action).copied().unwrap_or(0)
    }

    pub fn entry(&self, anchor: &Anchor) -> Option<&PlanEntry> {
        self.entries
            .binary_search_by(|e| e.anchor.cmp(anchor))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// True when applying the plan writes nothing, to the target or to the store.
    pub fn is_noop(&self) -> bool {
        self.writes_nothing_to_target() && self.entries.iter().all(|e| e.records.is_empty())
    }

    /// True when applying the plan makes no Graph write (store records may remain).
    pub fn writes_nothing_to_target(&self) -> bool {
        self.entries.iter().all(|e| !e.action.writes()) && self.manager_updates.is_empty()
    }

    /// Puts names on every entry and manager update. Names only: what the plan does is
    /// unchanged.
    pub fn annotate_names(&mut self, book: &NameBook) {
        let target_of: BTreeMap<Anchor, Option<String>> = self
            .entries
            .iter()
            .map(|e| (e.anchor.clone(), e.target_id.clone()))
            .collect();
        for entry in &mut self.entries {
            let mut names = book.lookup(&entry.anchor, entry.target_id.as_deref());
            if names.user_principal_name.is_none() {
                names.user_principal_name = entry.user_principal_name.clone();
            }
            entry.names = names;
        }
        for update in &mut self.manager_updates {
            let target = update
                .target_id
                .clone()
                .or_else(|| target_of.get(&update.anchor).cloned().flatten());
            update.names = book.lookup(&update.anchor, target.as_deref());
            update.old_manager_names = update
                .old_manager
                .as_ref()
                .map(|m| book.lookup(m, target_of.get(m).cloned().flatten().as_deref()));
            update.new_manager_names = update.new_manager.as_ref().map(|m| {
                let target = update
                    .new_manager_target_id
                    .clone()
                    .or_else(|| target_of.get(m).cloned().flatten());
                book.lookup(m, target.as_deref())
            });
        }
    }

    pub(super) fn into_parts(self) -> (Vec<PlanEntry>, Vec<ManagerUpdate>) {
        (self.entries, self.manager_updates)
    }
}
