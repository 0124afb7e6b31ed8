//! Jobs, cycles, apply, schedule, shutdown. The only layer that calls `graph` and `store`
//! (design.md invariant 2).
//!
//! A cycle is: preflight → read → plan (pure) → guard (pure) → apply → record, with the
//! watermark saved last (invariant 6). [`cycle::run_cycle`] does one; [`daemon::Daemon`] runs
//! every pair on its interval, on demand, until shutdown.

pub mod action_log;
pub mod apply;
pub mod cycle;
pub mod daemon;
pub mod escrow;
mod group_action_log;
pub mod group_apply;
pub mod group_provision;
pub mod groups;
pub mod killpoint;
mod names;
pub mod provision;
pub mod quarantine;
pub mod read;
pub mod reload;
pub mod replica;
pub mod reset;
pub mod runtime;
pub mod status;
mod unique;
pub mod why;

pub use cycle::{CycleKind, CycleOptions, CycleReport, PlannedCycle, compute_plan, run_cycle};
pub use daemon::{
    CommandError, Daemon, DaemonHandle, DaemonOptions, JobCommand, Preview, QueryError, ResetScope,
};
pub use group_provision::{GroupProvisionReport, provision_group_on_demand};
pub use provision::{ProvisionReport, provision_on_demand};
pub use quarantine::{Quarantine, QuarantineReason};
pub use runtime::PairRuntime;
pub use status::{JobState, JobStatus};

use crate::graph::GraphError;
use crate::store::StoreError;

/// Why a cycle could not run or finish. Per-user failures are not errors: they are escrowed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("pair {pair}: {message}")]
    Config { pair: String, message: String },
    #[error("{tenant} ({side}): {source}")]
    Graph {
        side: &'static str,
        tenant: String,
        #[source]
        source: Box<GraphError>,
    },
    #[error("preflight failed: {code}: {message}")]
    Preflight { code: String, message: String },
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// Shutdown stopped the cycle between two entries; what ran is recorded, the watermark
    /// is not saved.
    #[error("cycle cancelled by shutdown")]
    Cancelled,
    /// The pair's lease may have lapsed (several replicas): apply stopped between entries so
    /// that no Graph write can overlap the next holder's.
    #[error("the pair's lease may have passed to another replica; stopped between entries")]
    LeaseLapsed,
    /// A crash test stopped the cycle at a step boundary, as if the process had died there.
    #[error("crash injected at {0}")]
    Crashed(&'static str),
}

impl EngineError {
    /// Credential failures quarantine a job at once (Entra's `EncounteredQuarantineException`):
    /// a rejected secret, an unreadable federated token file, 401/403, a failed preflight.
    pub fn is_credential_failure(&self) -> bool {
        match self {
            EngineError::Graph { source, .. } => match source.as_ref() {
                GraphError::TokenRejected { .. } | GraphError::FederatedTokenFile { .. } => true,
                other => matches!(other.status(), Some(401) | Some(403)),
            },
            EngineError::Preflight { .. } => true,
            _ => false,
        }
    }

    /// Failures that say nothing about the job's configuration: Graph (or its token endpoint)
    /// unreachable, timing out, throttling or unavailable. Retried after a short backoff; they
    /// quarantine only when they persist across several cycles.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Graph { source, .. } => match source.as_ref() {
                GraphError::TokenRequest { .. }
                | GraphError::Transport { .. }
                | GraphError::Timeout { .. } => true,
                other => matches!(other.status(), Some(429 | 500 | 502 | 503 | 504)),
            },
            _ => false,
        }
    }

    /// Kept for callers that ask "is this a connection-level failure" in one question.
    pub fn is_connection_failure(&self) -> bool {
        self.is_credential_failure() || self.is_transient()
    }

    /// A short machine-readable code for status and logs.
    pub fn code(&self) -> String {
        match self {
            EngineError::Config { .. } => "ConfigurationError".into(),
            EngineError::Graph { source, .. } => source
                .code()
                .map(str::to_owned)
                .unwrap_or_else(|| "GraphRequestFailed".into()),
            EngineError::Preflight { code, .. } => code.clone(),
            EngineError::Store(_) => "StateStoreError".into(),
            EngineError::Cancelled => "Cancelled".into(),
            EngineError::LeaseLapsed => "LeaseLapsed".into(),
            EngineError::Crashed(_) => "Crashed".into(),
        }
    }
}
