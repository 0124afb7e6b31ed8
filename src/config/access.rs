//! What a pair says about reaching Graph that the Graph client takes as it is: the app's
//! credential, the public cloud's hosts and Graph's published quotas. They live here, not in
//! `graph`, so that `config` depends on nothing of the client (`tests/architecture.rs`); the
//! engine builds the client's settings from the pair (`engine::runtime::graph_settings`).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// How the app proves who it is to the token endpoint.
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret (`client_secret`).
    Secret(SecretString),
    /// A file holding a JWT issued by an external IdP (Kubernetes workload identity), sent as
    /// `client_assertion`. Read on every token request, so a rotated file is picked up.
    FederatedTokenFile(PathBuf),
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("ClientCredential::Secret([redacted])"),
            ClientCredential::FederatedTokenFile(p) => {
                write!(f, "ClientCredential::FederatedTokenFile({})", p.display())
            }
        }
    }
}

/// Public-cloud token authority.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Public-cloud Graph host.
pub const PUBLIC_GRAPH: &str = "https://graph.microsoft.com";

/// Graph's write quota per (app, tenant): 3,000 writes per 150 s (throttling-limits.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteQuota {
    pub writes: NonZeroU32,
    pub per: Duration,
}

impl Default for WriteQuota {
    fn default() -> Self {
        WriteQuota {
            writes: NonZeroU32::new(3000).unwrap_or(NonZeroU32::MIN),
            per: Duration::from_secs(150),
        }
    }
}

/// Graph's invitation quota per tenant: 150 invitations per 5 s (throttling-limits.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitationQuota {
    pub invitations: NonZeroU32,
    pub per: Duration,
}

impl Default for InvitationQuota {
    fn default() -> Self {
        InvitationQuota {
            invitations: NonZeroU32::new(150).unwrap_or(NonZeroU32::MIN),
            per: Duration::from_secs(5),
        }
    }
}
