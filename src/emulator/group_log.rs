//! What happened to groups, in the order it happened: `groups/delta` tokens are positions in
//! this log, as `users/delta` tokens are positions in the users' change log. Membership changes
//! are logged per group with the member ids they touched, so a delta round can report exactly
//! the members added or removed since its token.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Group, Tenant};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupLog {
    pub next_seq: u64,
    /// Changes with `seq < floor` were pruned; tokens before it need a resync.
    pub floor: u64,
    pub entries: VecDeque<GroupChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupChange {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub group_id: String,
    pub kind: GroupChangeKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum GroupChangeKind {
    Created,
    Updated {
        properties: BTreeSet<String>,
    },
    /// Members added or removed (or members whose own object was deleted or restored).
    Members {
        members: BTreeSet<String>,
    },
    SoftDeleted,
    Restored,
    HardDeleted,
}

impl GroupLog {
    pub fn record(&mut self, at: DateTime<Utc>, group_id: &str, kind: GroupChangeKind) {
        self.next_seq += 1;
        self.entries.push_back(GroupChange {
            seq: self.next_seq,
            at,
            group_id: group_id.to_string(),
            kind,
        });
    }

    pub fn head(&self) -> u64 {
        self.next_seq
    }

    /// Drops entries older than `keep_after`; tokens pointing before them must resync.
    pub fn prune(&mut self, keep_after: DateTime<Utc>) {
        while let Some(first) = self.entries.front() {
            if first.at >= keep_after {
                break;
            }
            self.floor = first.seq;
            self.entries.pop_front();
        }
    }
}

/// A soft-deleted group: restorable with the same id (and its memberships) until retention ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedGroup {
    pub group: Group,
    pub deleted_at: DateTime<Utc>,
}

/// Records, in every group that holds `member` directly, that this member changed: its object
/// was deleted, restored or purged, which `members@delta` reports as a removal or an addition.
pub fn member_object_changed(t: &mut Tenant, member: &str, at: DateTime<Utc>) {
    let holders: Vec<String> = t
        .groups
        .iter()
        .filter(|(_, g)| g.members.contains(member))
        .map(|(id, _)| id.clone())
        .collect();
    for gid in holders {
        t.group_log.record(
            at,
            &gid,
            GroupChangeKind::Members {
                members: [member.to_string()].into(),
            },
        );
    }
}

/// What changed per group between two log positions.
#[derive(Debug, Default)]
pub struct Touched {
    pub properties: BTreeSet<String>,
    pub members: BTreeSet<String>,
    /// Created or restored in the window: report every selected property and every member.
    pub whole: bool,
}

pub fn touched_since(log: &GroupLog, from: u64, to: u64) -> BTreeMap<String, Touched> {
    let mut out: BTreeMap<String, Touched> = BTreeMap::new();
    for c in log.entries.iter().filter(|c| c.seq > from && c.seq <= to) {
        let e = out.entry(c.group_id.clone()).or_default();
        match &c.kind {
            GroupChangeKind::Updated { properties } => {
                e.properties.extend(properties.iter().cloned())
            }
            GroupChangeKind::Members { members } => e.members.extend(members.iter().cloned()),
            GroupChangeKind::Created | GroupChangeKind::Restored => e.whole = true,
            GroupChangeKind::SoftDeleted | GroupChangeKind::HardDeleted => {}
        }
    }
    out
}
