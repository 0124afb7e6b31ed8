//! Microsoft Graph client: auth, HTTP (retry, Retry-After, $batch, rate limit), typed resources.
//! Knows nothing of sync semantics.
//!
//! One [`GraphClient`] per (app, tenant): it owns the token cache, the client-side write pacing
//! (Graph's 3,000 writes per 150 s per app and tenant; the invitation pacing, 150 per 5 s, is
//! per tenant and shared through the pool) and the request counters.
//! [`GraphClientPool`] hands out the same client to every pair that uses that (app, tenant).

mod auth;
mod batch;
mod client;
mod error;
mod members;
mod ops;
mod pacing;
mod paging;
mod resources;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The pair's credential and quotas, as the client takes them (owned by `config`).
pub use crate::config::{
    ClientCredential, InvitationQuota, PUBLIC_AUTHORITY, PUBLIC_GRAPH, WriteQuota,
};
pub use batch::{BatchItemResponse, BatchRequest, BatchResult, MAX_BATCH};
pub use client::{
    GraphClient, GraphResponse, GraphSettings, RequestStats, encode_query_value, endpoint_label,
    set_instance_name, with_query,
};
pub use error::{GraphError, GraphErrorDetail, RequestContext};
pub use members::{MemberWrite, MemberWriteOutcome, MemberWriteResult, is_not_replicated_yet};
pub use ops::MEMBER_BINDS_PER_REQUEST;
pub(crate) use ops::segment;
pub use paging::{DeltaItem, DeltaPage, DeltaRound, RemovedReason};
pub use resources::*;

/// Shares one [`GraphClient`] per (authority, Graph host, tenant, client id), so pairs that
/// touch the same tenant with the same app share its token cache and write quota.
#[derive(Debug, Default)]
pub struct GraphClientPool {
    clients: Mutex<HashMap<(String, String, String, String), GraphClient>>,
    /// Invitation pacing by (authority, Graph host, tenant): Graph's quota is per tenant.
    invitations: Mutex<HashMap<(String, String, String), Arc<pacing::WindowLimiter>>>,
}

impl GraphClientPool {
    pub fn new() -> GraphClientPool {
        GraphClientPool::default()
    }

    /// The pooled client for this (app, tenant), created on first use with `credential` and
    /// `settings` (later calls reuse the first client's credential and settings).
    pub fn get_or_create(
        &self,
        tenant_id: &str,
        client_id: &str,
        credential: ClientCredential,
        settings: GraphSettings,
    ) -> Result<GraphClient, GraphError> {
        let key = (
            settings.authority.trim_end_matches('/').to_owned(),
            settings.base_url.trim_end_matches('/').to_owned(),
            tenant_id.to_ascii_lowercase(),
            client_id.to_ascii_lowercase(),
        );
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let invitations = {
            let mut limiters = self.invitations.lock().unwrap_or_else(|p| p.into_inner());
            limiters
                .entry((key.0.clone(), key.1.clone(), key.2.clone()))
                .or_insert_with(|| Arc::new(client::invitation_limiter(&settings)))
                .clone()
        };
        let client = GraphClient::with_invitation_limiter(
            tenant_id,
            client_id,
            credential,
            settings,
            invitations,
        )?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Request counters of every pooled client, by tenant id.
    pub fn stats(&self) -> Vec<(String, RequestStats)> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = clients
            .values()
            .map(|c| (c.tenant_id().to_owned(), c.stats()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    const SECRET: &str = "super-secret-value-123";

    #[test]
    fn secrets_never_appear_in_debug_or_display() {
        let cred = ClientCredential::Secret(SECRET.to_owned().into());
        assert!(!format!("{cred:?}").contains(SECRET));
        let client = GraphClient::new("t", "c", cred.clone(), GraphSettings::default()).unwrap();
        assert!(!format!("{client:?}").contains(SECRET));
        let pool = GraphClientPool::new();
        pool.get_or_create("t", "c", cred, GraphSettings::default())
            .unwrap();
        assert!(!format!("{pool:?}").contains(SECRET));
        let errors = [
            GraphError::TokenRejected {
                tenant_id: "t".into(),
                error: "invalid_client".into(),
                description: "AADSTS7000215: Invalid client secret provided.".into(),
            },
            GraphError::TokenRequest {
                tenant_id: "t".into(),
                message: "x".into(),
            },
        ];
        for e in errors {
            assert!(!format!("{e:?}").contains(SECRET));
            assert!(!e.to_string().contains(SECRET));
        }
    }
}
