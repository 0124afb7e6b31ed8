//! Records the store keeps besides managed users (which are `plan::ManagedUser`, so the engine
//! hands them to the planner unchanged).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::log::ProvisioningLogEntry;
use crate::plan::groups::GroupLinkState;
use crate::plan::{Action, Anchor, ManagedUser};

/// The source `@odata.deltaLink` after a durably recorded cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Watermark {
    pub delta_link: String,
    pub saved_at: DateTime<Utc>,
}

/// A create recorded before the invitation is sent, resolved once the target user is linked.
/// On restart the engine re-invites the same address: Graph returns the existing B2B user, so
/// the create resolves without a duplicate (invariant 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIntent {
    pub anchor: Anchor,
    pub intent_id: String,
    /// The address the invitation is sent for (the source UPN).
    pub invited_address: String,
    pub recorded_at: DateTime<Utc>,
}

/// A failed action retried on later cycles. One per anchor for the object itself and one for
/// its references: Entra counts reference failures apart when deciding on quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escrow {
    pub anchor: Anchor,
    /// True for a manager reference failure.
    pub reference: bool,
    pub action: Action,
    pub attempts: u32,
    pub first_failed_at: DateTime<Utc>,
    pub last_failed_at: DateTime<Utc>,
    pub next_retry_at: DateTime<Utc>,
    pub last_error: EscrowError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EscrowError {
    pub code: String,
    pub message: String,
}

/// One write inside an atomic [`super::StateStore::commit`].
#[derive(Debug, Clone, PartialEq)]
pub enum StoreWrite {
    /// Inserts or replaces the link, its flags and the whole set of last exported values.
    PutManaged(ManagedUser),
    /// Sets (`Some`) or removes (`None`) one last exported value of a managed user.
    SetExported {
        anchor: Anchor,
        attribute: String,
        value: Option<Value>,
    },
    /// Records (`Some`) or clears (`None`) ctsync's soft delete of the target user.
    SetSoftDeleted {
        anchor: Anchor,
        at: Option<DateTime<Utc>>,
    },
    SetDisabledBeforeScopeExit {
        anchor: Anchor,
        value: bool,
    },
    /// Forgets the link and its exported values.
    RemoveManaged {
        anchor: Anchor,
    },
    RecordCreateIntent(CreateIntent),
    ResolveCreateIntent {
        anchor: Anchor,
    },
    PutEscrow(Escrow),
    RemoveEscrow {
        anchor: Anchor,
        reference: bool,
    },
    /// Restart with `Escrows`.
    ClearEscrows,
    AppendLog(Box<ProvisioningLogEntry>),
    /// Replaces the job status blob.
    PutStatus(Value),
    /// Inserts or replaces the link of a group ctsync manages (group sync).
    PutGroupLink(GroupLinkState),
    /// Saves the source `groups/delta` link; the group pass saves it last, like the users'.
    SaveGroupWatermark(Watermark),
}

/// What the store keeps for a pair's group sync.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupState {
    /// Sorted by source group id.
    pub links: Vec<GroupLinkState>,
    pub watermark: Option<Watermark>,
}

impl From<&CreateIntent> for crate::plan::PendingCreate {
    fn from(intent: &CreateIntent) -> Self {
        Self {
            anchor: intent.anchor.clone(),
            intent_id: intent.intent_id.clone(),
        }
    }
}
