//! A pair made ready to run: its Graph clients, compiled mappings and filters, plan settings.
//! Built once per configuration (expressions and regexes are compiled here, not per user).

use crate::config::{Deprovision, ScopeMode, SyncPair};
use crate::graph::{GraphClient, GraphClientPool, GraphSettings};
use crate::mapping::MappingSet;
use crate::plan::{AllowedActions, DeletionGuardSettings, DeprovisionAction, PlanSettings};
use crate::scope::{CompiledFilters, ScopeSetting};

use super::EngineError;

/// Everything a job needs to run cycles of one pair.
pub struct PairRuntime {
    pub pair: SyncPair,
    pub source: GraphClient,
    pub target: GraphClient,
    pub mappings: MappingSet,
    pub filters: CompiledFilters,
    pub settings: PlanSettings,
    /// Set once the anchor extension is known to be registered in the target.
    pub(super) anchor_ready: tokio::sync::OnceCell<()>,
    /// Set once the group anchor extension is known to be registered in the target.
    pub(super) group_anchor_ready: tokio::sync::OnceCell<()>,
    /// The group pass evaluated every assigned group once with this configuration: a new
    /// runtime (start, config reload) re-evaluates them, as Entra resyncs on a config change.
    pub(super) groups_evaluated: std::sync::atomic::AtomicBool,
    /// The last preflight's verdict (inbound sync allowed) and when it was read.
    pub(super) preflight: std::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

impl std::fmt::Debug for PairRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairRuntime")
            .field("pair", &self.pair.name)
            .field("source", &self.pair.source.tenant_id)
            .field("target", &self.pair.target.tenant_id)
            .finish_non_exhaustive()
    }
}

impl PairRuntime {
    /// A runtime with clients of its own. Prefer [`PairRuntime::with_pool`] for a topology.
    pub fn new(pair: SyncPair) -> Result<PairRuntime, EngineError> {
        PairRuntime::with_pool(pair, &GraphClientPool::new())
    }

    /// A runtime whose Graph clients come from `pool`, so that pairs sharing an (app, tenant)
    /// share its token cache and its write quota (a hub is written by every spoke's pair).
    pub fn with_pool(pair: SyncPair, pool: &GraphClientPool) -> Result<PairRuntime, EngineError> {
        let config_error = |message: String| EngineError::Config {
            pair: pair.name.clone(),
            message,
        };
        let mappings = match &pair.mappings {
            Some(specs) => MappingSet::compile(specs).map_err(|errors| {
                config_error(
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?,
            None => MappingSet::cts_default(),
        };
        let filters = CompiledFilters::compile(&pair.scope.filters).map_err(|errors| {
            config_error(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let settings = PlanSettings {
            anchor_attribute: pair.anchor_attribute(),
            deprovision: match pair.deprovision {
                Deprovision::SoftDelete => DeprovisionAction::SoftDelete,
                Deprovision::Disable => DeprovisionAction::Disable,
                Deprovision::None => DeprovisionAction::None,
            },
            allowed: AllowedActions {
                create: pair.actions.create,
                update: pair.actions.update,
                delete: pair.actions.delete,
            },
            drift_correction: pair.drift_correction,
            deletion_guard: DeletionGuardSettings {
                enabled: pair.deletion_guard.enabled,
                threshold: pair.deletion_guard.threshold,
                percentage: pair
                    .deletion_guard
                    .percentage
                    .map(|p| p.clamp(0.0, 100.0).round() as u32),
            },
        };
        let client = |tenant: &crate::config::Tenant| -> Result<GraphClient, EngineError> {
            let credential = tenant
                .credentials
                .resolve()
                .map_err(|e| config_error(e.to_string()))?;
            pool.get_or_create(
                &tenant.tenant_id,
                &tenant.credentials.client_id,
                credential,
                graph_settings(&pair),
            )
            .map_err(|e| config_error(e.to_string()))
        };
        let source = client(&pair.source)?;
        let target = client(&pair.target)?;
        Ok(PairRuntime {
            anchor_ready: tokio::sync::OnceCell::new(),
            group_anchor_ready: tokio::sync::OnceCell::new(),
            groups_evaluated: std::sync::atomic::AtomicBool::new(false),
            preflight: std::sync::Mutex::new(None),
            source,
            target,
            mappings,
            filters,
            settings,
            pair,
        })
    }

    pub fn name(&self) -> &str {
        &self.pair.name
    }

    pub fn scope_setting(&self) -> ScopeSetting {
        match self.pair.scope.mode {
            ScopeMode::Assigned => ScopeSetting::Assigned,
            ScopeMode::All => ScopeSetting::All,
        }
    }

    /// Source attributes to `$select` on top of the client's default set.
    pub fn source_select(&self) -> Vec<String> {
        let mut select: Vec<String> = self.mappings.source_attributes().iter().cloned().collect();
        for filter in &self.pair.scope.filters {
            for clause in &filter.clauses {
                select.push(clause.attribute.clone());
            }
        }
        select.retain(|a| a != "manager" && !a.eq_ignore_ascii_case("IsSoftDeleted"));
        select.sort();
        select.dedup();
        select
    }

    /// Target attributes to `$select`: the anchor and every mapped target attribute.
    pub fn target_select(&self) -> Vec<String> {
        let mut select: Vec<String> = self
            .mappings
            .mappings()
            .iter()
            .map(|m| m.target.clone())
            .filter(|t| t != "manager")
            .collect();
        select.push(self.settings.anchor_attribute.clone());
        select.sort();
        select.dedup();
        select
    }
}

/// Graph client settings for this pair's endpoints (other knobs at their defaults). The
/// token scope is the Graph host's `/.default` for an https host (public or sovereign
/// cloud, e.g. `https://graph.microsoft.us/.default`); for a loopback http host (the
/// emulator) it stays the public cloud's, as Graph's resource is not the URL it is
/// reached at.
pub fn graph_settings(pair: &SyncPair) -> GraphSettings {
    let defaults = GraphSettings::default();
    let token_scope = if pair.graph.base_url.starts_with("https://") {
        format!("{}/.default", pair.graph.base_url)
    } else {
        defaults.token_scope.clone()
    };
    GraphSettings {
        authority: pair.graph.authority.clone(),
        base_url: pair.graph.base_url.clone(),
        token_scope,
        write_quota: pair.quotas.writes,
        invitation_quota: pair.quotas.invitations,
        ..defaults
    }
}
