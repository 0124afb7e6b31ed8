//! One cycle of one pair: preflight → read → plan → (guard, inside the planner) → apply →
//! record. [`compute_plan`] stops after planning and writes nothing (`ctsync plan`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::expr::EvalContext;
use crate::graph::GraphError;
use crate::mapping::{ManagerReference, MapMode, SourceAttributes};
use crate::plan::{
    self, Action, Anchor, DesiredAttributes, EscrowedAction, ManagedUser, PendingCreate, Plan,
    PlanInput, ScopeVerdict, SourceCoverage, SourceReadKind, SourceUser,
};
use crate::scope::{self, AssignmentIndex, Membership, ScopeDecision};
use crate::store::{StateStore, Watermark};

use super::apply::{self, ApplyContext, ApplyOutcome};
use super::killpoint::{self, CrashAt, Step};
use super::read::{self, Attributes, SourceRead};
use super::runtime::PairRuntime;
use super::unique;
use super::{EngineError, read::graph_error};
use super::{action_log, names};

/// Initial cycles read everything; incremental ones only what changed since the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CycleKind {
    Initial,
    Incremental,
}

/// What the caller asks of a cycle.
#[derive(Debug, Clone, Default)]
pub struct CycleOptions {
    /// Staged removals approved (restart with `ForceDeletes`), by anchor: only these pass the
    /// guard; anything else is counted afresh.
    pub approved_deletes: BTreeSet<Anchor>,
    /// Read the whole source even when a watermark exists.
    pub full: bool,
    /// A preview (`ctsync plan`, the admin API's plan): the preflight registers nothing in
    /// the target (a missing anchor extension is reported, not created).
    pub preview: bool,
    /// Source object ids an incremental cycle re-reads although the delta does not name them
    /// (due escrows, approved staged deletes).
    pub reread: BTreeSet<String>,
    /// Stops apply between entries (shutdown); the watermark is then not saved.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// Crash tests: stop at a step boundary as if the process died there.
    pub crash: Option<std::sync::Arc<CrashAt>>,
    /// The pair's lease (several replicas): apply stops between entries once it may lapse.
    pub lease: Option<std::sync::Arc<crate::store::LeaseGuard>>,
}

/// A computed, not yet applied cycle.
#[derive(Debug)]
pub struct PlannedCycle {
    pub kind: CycleKind,
    pub plan: Plan,
    /// The watermark to save after the cycle is recorded.
    pub delta_link: String,
    pub source_pages: usize,
}

/// What one applied cycle did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleReport {
    pub pair: String,
    pub cycle_id: String,
    pub kind: CycleKind,
    pub started: DateTime<Utc>,
    pub duration_ms: u64,
    pub counts: BTreeMap<String, usize>,
    pub succeeded: usize,
    pub failed: usize,
    pub manager_updates: usize,
    pub guard_triggered: bool,
    pub blocked: Option<String>,
    /// Entries throttled or unreachable past the client's retries: planned again next cycle.
    #[serde(default)]
    pub deferred: usize,
    /// The next cycle should not start before this many milliseconds (Graph's `Retry-After`).
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// False when the cycle kept its watermark (blocked, or work deferred): its changes are
    /// read again by the next one.
    #[serde(default)]
    pub watermark_saved: bool,
    pub graph_requests: u64,
    pub throttled_requests: u64,
    /// The group pass (pairs with `spec.groups`).
    #[serde(default)]
    pub groups: Option<super::groups::GroupPassReport>,
}

impl CycleReport {
    /// Exports that changed the target (for `lastSuccessfulExecutionWithExports`).
    pub fn exported(&self) -> bool {
        self.succeeded > 0
    }
}

/// How long a preflight verdict serves cycles that write nothing. A cycle that writes always
/// checks the policies again first, so nothing is written on a stale verdict.
pub const PREFLIGHT_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// The preflight verdict: the cached one when it is younger than [`PREFLIGHT_TTL`] (and
/// `true` as the second value), otherwise a fresh one.
pub(super) async fn preflight_cached(rt: &PairRuntime) -> Result<(bool, bool), EngineError> {
    let cached = *rt.preflight.lock().unwrap_or_else(|p| p.into_inner());
    match cached {
        Some((at, allowed)) if at.elapsed() < PREFLIGHT_TTL => Ok((allowed, true)),
        _ => preflight(rt).await.map(|allowed| (allowed, false)),
    }
}

/// The preflight of a preview: the same checks, nothing registered, nothing cached. Returns
/// (inbound sync allowed, anchor extension registered).
pub(super) async fn preflight_preview(rt: &PairRuntime) -> Result<(bool, bool), EngineError> {
    let allowed = preflight_checks(rt, false).await?;
    let registered = rt.anchor_ready.get().is_some() || !allowed || anchor_registered(rt).await?;
    Ok((allowed, registered))
}

/// Whether the anchor extension exists in the target (read only).
async fn anchor_registered(rt: &PairRuntime) -> Result<bool, EngineError> {
    let attribute = &rt.settings.anchor_attribute;
    let Some((app_id, _)) = parse_extension_name(attribute) else {
        return Ok(false);
    };
    #[derive(serde::Deserialize)]
    struct Listing {
        value: Vec<crate::graph::ExtensionProperty>,
    }
    let path = format!("applications(appId='{app_id}')/extensionProperties?$select=name");
    match rt
        .target
        .send_json::<Listing>(reqwest::Method::GET, &path, None)
        .await
    {
        Ok(listing) => Ok(listing
            .value
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(attribute))),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(graph_error("target", &rt.pair.target.tenant_id, e)),
    }
}

/// Forgets the cached preflight verdict, so the next cycle checks the policies again (after a
/// cycle with failures: a refused write may mean a policy changed).
pub fn forget_preflight(rt: &PairRuntime) {
    *rt.preflight.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Whether applying `plan` writes anything to the target.
fn plan_writes(plan: &Plan) -> bool {
    !plan.manager_updates().is_empty()
        || plan
            .entries()
            .iter()
            .any(|e| !matches!(e.action, Action::Skip | Action::StagedDelete))
}

/// Checks that both tenants answer and the target still allows inbound sync from the source.
/// Returns whether inbound sync is allowed; a missing policy means it is not. The verdict is
/// cached for [`preflight_cached`]; a failed check clears the cache.
pub(super) async fn preflight(rt: &PairRuntime) -> Result<bool, EngineError> {
    forget_preflight(rt);
    let allowed = preflight_uncached(rt).await?;
    *rt.preflight.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((std::time::Instant::now(), allowed));
    Ok(allowed)
}

async fn preflight_uncached(rt: &PairRuntime) -> Result<bool, EngineError> {
    preflight_checks(rt, true).await
}

async fn preflight_checks(rt: &PairRuntime, register: bool) -> Result<bool, EngineError> {
    rt.source
        .check_token()
        .await
        .map_err(|e| graph_error("source", &rt.pair.source.tenant_id, e))?;
    rt.target
        .check_token()
        .await
        .map_err(|e| graph_error("target", &rt.pair.target.tenant_id, e))?;
    let sync = rt
        .target
        .identity_synchronization(&rt.pair.source.tenant_id)
        .await
        .map_err(|e| graph_error("target", &rt.pair.target.tenant_id, e))?;
    let allowed = sync.as_ref().is_some_and(|s| s.inbound_sync_allowed());
    if !allowed {
        return Ok(false);
    }
    let anchor = &rt.settings.anchor_attribute;
    if register {
        rt.anchor_ready
            .get_or_try_init(|| ensure_anchor_extension(rt, anchor, AnchorOf::User, true))
            .await?;
    } else if rt.anchor_ready.get().is_none() {
        ensure_anchor_extension(rt, anchor, AnchorOf::User, false).await?;
    }
    let target_partner = rt
        .target
        .cross_tenant_partner(&rt.pair.source.tenant_id)
        .await
        .map_err(|e| graph_error("target", &rt.pair.target.tenant_id, e))?;
    let inbound_consent = target_partner
        .as_ref()
        .and_then(|p| p.automatic_user_consent_settings)
        .is_some_and(|c| c.inbound_allowed.unwrap_or(false));
    let source_partner = rt
        .source
        .cross_tenant_partner(&rt.pair.target.tenant_id)
        .await
        .map_err(|e| graph_error("source", &rt.pair.source.tenant_id, e))?;
    let outbound_consent = source_partner
        .as_ref()
        .and_then(|p| p.automatic_user_consent_settings)
        .is_some_and(|c| c.outbound_allowed.unwrap_or(false));
    if !inbound_consent || !outbound_consent {
        return Err(EngineError::Preflight {
            code: "AzureDirectoryB2BManagementPolicyCheckFailure".into(),
            message: format!(
                "Policy permitting auto-redemption of invitations not configured. \
                 (target inbound automatic consent: {inbound_consent}, source outbound \
                 automatic consent: {outbound_consent})"
            ),
        });
    }
    Ok(true)
}

/// `extension_{appIdNoHyphens}_{name}` → (app id as a GUID, short name).
fn parse_extension_name(attribute: &str) -> Option<(String, &str)> {
    let rest = attribute.strip_prefix("extension_")?;
    let (app, name) = rest.split_once('_')?;
    if app.len() != 32 || !app.chars().all(|c| c.is_ascii_hexdigit()) || name.is_empty() {
        return None;
    }
    let guid = format!(
        "{}-{}-{}-{}-{}",
        &app[..8],
        &app[8..12],
        &app[12..16],
        &app[16..20],
        &app[20..]
    );
    Some((guid, name))
}

/// The object type an anchor extension is registered for, with the words its errors use.
#[derive(Debug, Clone, Copy)]
pub(super) enum AnchorOf {
    User,
    Group,
}

impl AnchorOf {
    fn target_object(self) -> &'static str {
        match self {
            AnchorOf::User => "User",
            AnchorOf::Group => "Group",
        }
    }

    fn invalid_code(self) -> &'static str {
        match self {
            AnchorOf::User => "AnchorAttributeInvalid",
            AnchorOf::Group => "GroupAnchorAttributeInvalid",
        }
    }

    fn label(self) -> &'static str {
        match self {
            AnchorOf::User => "anchor",
            AnchorOf::Group => "group anchor",
        }
    }

    /// The pair file's setting that names the attribute.
    fn setting(self) -> &'static str {
        match self {
            AnchorOf::User => "spec.anchorAttribute",
            AnchorOf::Group => "spec.groups.anchorAttribute",
        }
    }
}

/// Registers the anchor's directory extension on its application in the target tenant when it
/// is missing, so a new pair works without a manual step (the user anchor for `User`, the group
/// anchor for `Group`). Callers run it once per runtime (`anchor_ready`, `group_anchor_ready`).
/// With `register` false (a preview) a missing extension is only reported.
pub(super) async fn ensure_anchor_extension(
    rt: &PairRuntime,
    attribute: &str,
    of: AnchorOf,
    register: bool,
) -> Result<(), EngineError> {
    let Some((app_id, name)) = parse_extension_name(attribute) else {
        return Err(EngineError::Preflight {
            code: of.invalid_code().into(),
            message: format!(
                "{} attribute {attribute} is not a directory extension \
                 (extension_{{appIdWithoutHyphens}}_{{name}})",
                of.label()
            ),
        });
    };
    let path = format!("applications(appId='{app_id}')/extensionProperties");
    let target_error = |e| graph_error("target", &rt.pair.target.tenant_id, e);
    #[derive(serde::Deserialize)]
    struct Listing {
        value: Vec<crate::graph::ExtensionProperty>,
    }
    let listing: Listing = match rt
        .target
        .send_json(reqwest::Method::GET, &format!("{path}?$select=name"), None)
        .await
    {
        Ok(listing) => listing,
        Err(e) if e.is_not_found() => {
            return Err(EngineError::Preflight {
                code: "AnchorExtensionMissing".into(),
                message: format!(
                    "the {} {attribute} belongs to application {app_id}, which has no \
                     registration in target tenant {}: register the extension there, or set \
                     {} to an extension of an application of the target",
                    of.label(),
                    rt.pair.target.tenant_id,
                    of.setting()
                ),
            });
        }
        Err(e) => return Err(target_error(e)),
    };
    if listing
        .value
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case(attribute))
    {
        return Ok(());
    }
    if !register {
        tracing::warn!(
            pair = rt.name(),
            attribute = %attribute,
            "the {} extension is not registered in the target; the first cycle registers it (a plan does not)",
            of.label()
        );
        return Ok(());
    }
    let body = serde_json::json!({"name": name, "dataType": "String", "targetObjects": [of.target_object()]});
    rt.target
        .send(reqwest::Method::POST, &path, &[], Some(&body), 1)
        .await
        .map_err(target_error)?;
    tracing::info!(pair = rt.name(), attribute = %attribute, "registered the {} extension in the target", of.label());
    Ok(())
}

/// Reads the source for this cycle: a full enumeration without a watermark (or when asked, or
/// when Graph says the token expired), otherwise the delta since the watermark with each
/// changed user re-read in full. An incremental read asks the store only about the users the
/// delta names (and, with assignment scoping, the anchors alone): never every managed user.
async fn read_source(
    rt: &PairRuntime,
    store: &dyn StateStore,
    watermark: Option<&Watermark>,
    full: bool,
    assignments: Option<&AssignmentIndex>,
    reread: &BTreeSet<String>,
) -> Result<(CycleKind, SourceRead), EngineError> {
    let source_error = |e| graph_error("source", &rt.pair.source.tenant_id, e);
    let tenant = rt.pair.source.tenant_id.as_str();
    // A delta link from another Graph endpoint (`graph.baseUrl` changed, a new port say)
    // cannot be followed: the client refuses links to other hosts. Start over from a full read.
    let watermark = watermark.filter(|w| {
        let own = rt.source.is_own_link(&w.delta_link);
        if !own {
            tracing::warn!(
                pair = rt.name(),
                event = "watermarkFromAnotherEndpoint",
                stored_origin = %link_origin(&w.delta_link),
                graph_origin = %rt.source.origin(),
                "the stored delta link is for another Graph endpoint (graph.baseUrl changed): \
                 this cycle reads the source in full"
            );
        }
        own
    });
    if let (Some(watermark), false) = (watermark, full) {
        match read::source_delta(rt, &watermark.delta_link).await {
            Ok(mut changes) => {
                // Delta carries only the changed properties; planning needs the whole user.
                let mut wanted: BTreeSet<String> = changes.users.keys().cloned().collect();
                wanted.extend(reread.iter().cloned());
                // A report's manager reference follows its manager, but when the manager is
                // deleted or changes (leaves scope, say), the delta does not name the report:
                // re-read the linked users whose exported manager is one of the changed users.
                let touched: Vec<Anchor> = changes
                    .users
                    .keys()
                    .chain(changes.removed.keys())
                    .map(|id| Anchor::new(tenant, id))
                    .collect();
                for report in store.reports_of(rt.name(), &touched).await? {
                    wanted.insert(report.source_object_id().to_owned());
                }
                // Assignment changes do not show in the users' delta: re-evaluate users whose
                // assignment and link disagree. (Assignment scoping reads every assignment each
                // cycle anyway; this reads the linked anchors alone, not their values.)
                if let Some(index) = assignments {
                    let anchors = store.managed_anchors(rt.name()).await?;
                    let linked: BTreeSet<&str> =
                        anchors.iter().map(Anchor::source_object_id).collect();
                    for id in &linked {
                        if index.assignment_of(id) == scope::Assignment::None {
                            wanted.insert((*id).to_owned());
                        }
                    }
                    for id in index.user_ids() {
                        if !linked.contains(id) {
                            wanted.insert(id.to_owned());
                        }
                    }
                }
                // The reverse: a user who may be created or restored in this cycle (changed,
                // and not linked or soft-deleted by us) can be the manager of linked users whose
                // reference could not be set while it was missing; the delta does not name them.
                let changed: Vec<Anchor> = changes
                    .users
                    .keys()
                    .map(|id| Anchor::new(tenant, id))
                    .collect();
                let linked_live: BTreeSet<Anchor> = store
                    .managed_users_among(rt.name(), &changed)
                    .await?
                    .into_iter()
                    .filter(|m| m.soft_deleted_by_us_at.is_none())
                    .map(|m| m.anchor)
                    .collect();
                let newcomers = changed.iter().filter(|a| !linked_live.contains(*a));
                for anchor in newcomers {
                    let reports = rt
                        .source
                        .direct_reports(anchor.source_object_id())
                        .await
                        .map_err(source_error)?;
                    wanted.extend(reports.into_iter().map(|r| r.id));
                }
                let mut users = BTreeMap::new();
                for id in wanted {
                    if changes.removed.contains_key(&id) {
                        continue;
                    }
                    match read::source_user(rt, &id).await? {
                        Some(attrs) => {
                            users.insert(id, attrs);
                        }
                        None => {
                            changes
                                .removed
                                .insert(id, crate::graph::RemovedReason::Changed);
                        }
                    }
                }
                changes.users = users;
                return Ok((CycleKind::Incremental, changes));
            }
            Err(GraphError::DeltaResyncRequired { .. }) => {
                tracing::warn!(pair = rt.name(), "delta token expired: full resync");
            }
            Err(e) => return Err(source_error(e)),
        }
    }
    let read = read::source_delta(rt, &read::delta_start(rt))
        .await
        .map_err(source_error)?;
    Ok((CycleKind::Initial, read))
}

/// `scheme://host:port` of a link, without its path and query (a delta link's token is not
/// for logs).
fn link_origin(link: &str) -> String {
    url::Url::parse(link)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "(not a URL)".to_owned())
}

/// What the store knows that this cycle needs. A cycle that reads everything (initial, or the
/// target in full for drift correction) loads every managed user; an incremental one loads the
/// users it read and, once their managers are known, those managers
/// ([`ManagedView::add_managers`]), and counts the live links for the deletion guard.
struct ManagedView {
    users: Vec<ManagedUser>,
    /// None when `users` holds every managed user.
    live_count: Option<usize>,
}

impl ManagedView {
    async fn load(
        rt: &PairRuntime,
        store: &dyn StateStore,
        everything: bool,
        source: &SourceRead,
    ) -> Result<ManagedView, EngineError> {
        if everything {
            return Ok(ManagedView {
                users: store.managed_users(rt.name()).await?,
                live_count: None,
            });
        }
        let tenant = rt.pair.source.tenant_id.as_str();
        let anchors: Vec<Anchor> = source
            .users
            .keys()
            .chain(source.removed.keys())
            .map(|id| Anchor::new(tenant, id))
            .collect();
        Ok(ManagedView {
            users: store.managed_users_among(rt.name(), &anchors).await?,
            live_count: Some(store.live_managed_count(rt.name()).await?),
        })
    }

    /// Loads the managers the source users name that are not loaded yet (the manager pass
    /// resolves a reference through the manager's link).
    async fn add_managers(
        &mut self,
        rt: &PairRuntime,
        store: &dyn StateStore,
        users: &[SourceUser],
    ) -> Result<(), EngineError> {
        if self.live_count.is_none() {
            return Ok(());
        }
        let loaded: BTreeSet<&Anchor> = self.users.iter().map(|m| &m.anchor).collect();
        let missing: Vec<Anchor> = users
            .iter()
            .filter_map(|u| match &u.manager {
                ManagerReference::Set { source_object_id } => {
                    Some(Anchor::new(&rt.pair.source.tenant_id, source_object_id))
                }
                _ => None,
            })
            .filter(|a| !loaded.contains(a))
            .collect();
        if !missing.is_empty() {
            self.users
                .extend(store.managed_users_among(rt.name(), &missing).await?);
            self.users.sort_by(|a, b| a.anchor.cmp(&b.anchor));
        }
        Ok(())
    }
}

/// Evaluates one source user's scope and mappings into the planner's view of it (and the scoping
/// decision, which on-demand provisioning shows).
pub(super) fn evaluate_source_user(
    rt: &PairRuntime,
    id: &str,
    attrs: &Attributes,
    assignments: Option<&AssignmentIndex>,
    ctx: &mut EvalContext<'_>,
) -> (SourceUser, ScopeDecision) {
    let user = SourceAttributes::new(attrs);
    let assignment = match assignments {
        Some(index) => index.assignment_of(id),
        None => scope::Assignment::Direct,
    };
    let membership = Membership::of(&user);
    let decision = scope::decide(
        rt.scope_setting(),
        assignment,
        membership,
        &user,
        &rt.filters,
    );
    let mapped = rt.mappings.map_user(&user, MapMode::Create, ctx);
    let (always, on_create) = mapped.split_by_apply();
    let mapping_error = (!mapped.errors.is_empty()).then(|| {
        mapped
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.target, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let planned = SourceUser {
        object_id: id.to_owned(),
        user_principal_name: attrs
            .get("userPrincipalName")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        deleted: false,
        account_enabled: decision.active,
        membership,
        scope: ScopeVerdict::of(&decision),
        desired: DesiredAttributes { always, on_create },
        manager: mapped.manager,
        matching: mapped.matching,
        mapping_error,
    };
    (planned, decision)
}

fn deleted_source_user(id: &str) -> SourceUser {
    SourceUser {
        object_id: id.to_owned(),
        user_principal_name: None,
        deleted: true,
        account_enabled: false,
        membership: Membership::InternalMember,
        scope: ScopeVerdict::OutOfScope {
            reason: scope::OutOfScopeReason::NotEffectivelyEntitled,
        },
        desired: DesiredAttributes::default(),
        manager: ManagerReference::NotMapped,
        matching: Vec::new(),
        mapping_error: None,
    }
}

/// Everything up to and including the plan. Writes nothing.
pub async fn compute_plan(
    rt: &PairRuntime,
    store: &dyn StateStore,
    options: &CycleOptions,
) -> Result<PlannedCycle, EngineError> {
    let now = Utc::now();
    let (inbound_sync_allowed, preflight_was_cached, anchor_registered) = if options.preview {
        let (allowed, registered) = preflight_preview(rt).await?;
        (allowed, false, registered)
    } else {
        let (allowed, cached) = preflight_cached(rt).await?;
        (allowed, cached, true)
    };
    let watermark = store.watermark(rt.name()).await?;
    let intents = store.create_intents(rt.name()).await?;
    let escrows = store.escrows(rt.name()).await?;
    let assignments = match rt.scope_setting() {
        scope::ScopeSetting::Assigned => Some(read::assignments(rt).await?),
        scope::ScopeSetting::All => None,
    };
    let (kind, source) = read_source(
        rt,
        store,
        watermark.as_ref(),
        options.full,
        assignments.as_ref(),
        &options.reread,
    )
    .await?;
    let read_target = kind == CycleKind::Initial || rt.pair.drift_correction;
    // Reading the whole target (link conflicts, adoption candidates) needs every link.
    let mut managed = ManagedView::load(rt, store, read_target, &source).await?;
    let target_users = if read_target {
        read::target_users_with(rt, anchor_registered).await?
    } else {
        Vec::new()
    };

    let mut source_users = Vec::with_capacity(source.users.len() + source.removed.len());
    // SelectUniqueValue: evaluate, check the candidates asked about against the target,
    // evaluate again with what was learnt.
    let unique_attributes = unique::attributes(rt);
    let linked: BTreeMap<&str, &str> = managed
        .users
        .iter()
        .map(|m| (m.anchor.source_object_id(), m.target_id.as_str()))
        .collect();
    let mut oracle = unique::Oracle::default();
    for round in 0..unique::MAX_ROUNDS {
        source_users.clear();
        oracle.next_round();
        {
            // Scoped: the RNG is not `Send` and must not live across the awaits below.
            let mut random = rand_source();
            for (id, attrs) in &source.users {
                let own = linked.get(id.as_str()).copied();
                let is_unique = |candidate: &str| oracle.is_unique(id, own, candidate);
                let mut ctx = EvalContext {
                    now,
                    random: &mut random,
                    is_unique: &is_unique,
                };
                let (user, _) = evaluate_source_user(rt, id, attrs, assignments.as_ref(), &mut ctx);
                source_users.push(user);
            }
        }
        if unique_attributes.is_empty()
            || round + 1 == unique::MAX_ROUNDS
            || !oracle.check(rt, &unique_attributes).await?
        {
            break;
        }
    }
    for id in source.removed.keys() {
        source_users.push(deleted_source_user(id));
    }
    managed.add_managers(rt, store, &source_users).await?;
    let input = PlanInput {
        pair: rt.name().to_owned(),
        source_tenant_id: rt.pair.source.tenant_id.clone(),
        now,
        settings: rt.settings.clone(),
        source_read: SourceCoverage {
            kind: match kind {
                CycleKind::Initial => SourceReadKind::Full,
                CycleKind::Incremental => SourceReadKind::Delta,
            },
            complete: true,
        },
        inbound_sync_allowed,
        approved_deletes: options.approved_deletes.clone(),
        source_users,
        managed: managed.users,
        live_managed: managed.live_count,
        pending_creates: intents
            .iter()
            .map(|i| PendingCreate {
                anchor: i.anchor.clone(),
                intent_id: i.intent_id.clone(),
            })
            .collect(),
        target_users,
        target_read_complete: read_target,
        escrowed: escrows
            .iter()
            .map(|e| EscrowedAction {
                anchor: e.anchor.clone(),
                reference: e.reference,
            })
            .collect(),
    };
    let mut plan = plan::plan(&input);
    let book = names::read_names(rt, source.users.iter(), &input.target_users, &input.managed);
    // A cached verdict only serves cycles that write nothing: before writing, check again,
    // and plan again if the target's policy changed meanwhile.
    if preflight_was_cached && plan_writes(&plan) {
        let allowed = preflight(rt).await?;
        if allowed != input.inbound_sync_allowed {
            let input = PlanInput {
                inbound_sync_allowed: allowed,
                ..input
            };
            plan = plan::plan(&input);
        }
    }
    names::annotate(rt, &mut plan, book).await;
    Ok(PlannedCycle {
        kind,
        plan,
        delta_link: source.delta_link,
        source_pages: source.pages,
    })
}

/// Randomness for `Guid()`/`RandomString()` in mappings.
pub(super) fn rand_source() -> impl FnMut() -> u64 {
    let mut rng = rand::rng();
    move || rand::Rng::random::<u64>(&mut rng)
}

/// Runs one whole cycle and records it. The watermark is saved last, only when every action
/// either succeeded or was escrowed (invariant 6).
pub async fn run_cycle(
    rt: &PairRuntime,
    store: &dyn StateStore,
    options: &CycleOptions,
) -> Result<CycleReport, EngineError> {
    let started = Utc::now();
    let clock = Instant::now();
    let before_source = rt.source.stats();
    let before_target = rt.target.stats();
    let cycle_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(
        event = "cycleStarted",
        pair = rt.name(),
        cycle_id = %cycle_id,
        full = options.full,
        "cycle started"
    );
    // Planning writes nothing, so shutdown may drop it; apply stops between entries instead.
    let planned = match &options.cancel {
        Some(cancel) => tokio::select! {
            planned = compute_plan(rt, store, options) => planned?,
            () = cancel.cancelled() => return Err(EngineError::Cancelled),
        },
        None => compute_plan(rt, store, options).await?,
    };
    let ctx = ApplyContext {
        cancel: options.cancel.as_ref(),
        crash: options.crash.as_deref(),
        lease: options.lease.as_deref(),
    };
    let outcome: ApplyOutcome = apply::apply(rt, store, &planned.plan, &cycle_id, ctx).await?;
    if outcome.failed > 0 {
        // A refused write (403) may mean a policy changed: the next cycle checks again.
        forget_preflight(rt);
    }
    // The watermark moves only over work that was done: a blocked cycle wrote nothing, and a
    // deferred entry (throttled) is planned again only if its change is read again.
    let watermark_saved = planned.plan.blocked().is_none() && outcome.deferred == 0;
    if killpoint::reached(Step::BeforeWatermark, ctx.crash) {
        return Err(EngineError::Crashed(Step::BeforeWatermark.as_str()));
    }
    if watermark_saved {
        store
            .save_watermark(
                rt.name(),
                &Watermark {
                    delta_link: planned.delta_link.clone(),
                    saved_at: Utc::now(),
                },
            )
            .await?;
    }
    // Groups after users: memberships need the users' target counterparts. Only when the
    // user pass was not blocked (the target refusing user sync refuses everything).
    let group_pass = if planned.plan.blocked().is_none() {
        let users_changed = outcome.succeeded > 0 || outcome.failed > 0;
        super::groups::run_group_pass(
            rt,
            store,
            &cycle_id,
            users_changed,
            planned.kind == CycleKind::Initial,
            ctx.crash,
        )
        .await?
    } else {
        None
    };
    let after_source = rt.source.stats();
    let after_target = rt.target.stats();
    let counts = action_log::counts(&planned.plan);
    let report = CycleReport {
        pair: rt.name().to_owned(),
        cycle_id,
        kind: planned.kind,
        started,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        counts,
        succeeded: outcome.succeeded,
        failed: outcome.failed,
        manager_updates: outcome.manager_updates,
        guard_triggered: planned.plan.guard().triggered,
        blocked: planned.plan.blocked().map(|b| format!("{b:?}")),
        deferred: outcome.deferred,
        retry_after_ms: outcome
            .retry_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        watermark_saved,
        graph_requests: (after_source.requests - before_source.requests)
            + (after_target.requests - before_target.requests),
        throttled_requests: (after_source.throttled - before_source.throttled)
            + (after_target.throttled - before_target.throttled),
        groups: group_pass.as_ref().map(|(r, _)| r.clone()),
    };
    tracing::info!(
        event = "cycleSummary",
        pair = %report.pair,
        cycle_id = %report.cycle_id,
        kind = ?report.kind,
        duration_ms = report.duration_ms,
        counts = %serde_json::to_string(&report.counts).unwrap_or_default(),
        succeeded = report.succeeded,
        failed = report.failed,
        deferred = report.deferred,
        watermark_saved = report.watermark_saved,
        manager_updates = report.manager_updates,
        guard_triggered = report.guard_triggered,
        blocked = report.blocked.as_deref().unwrap_or(""),
        source_pages = planned.source_pages,
        graph_requests = report.graph_requests,
        throttled_requests = report.throttled_requests,
        "cycle finished"
    );
    Ok(report)
}
