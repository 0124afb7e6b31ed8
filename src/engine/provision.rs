//! On-demand provisioning of one user, with Entra's steps: import, scope (with the filter
//! explanation), match, action — and the per-attribute breakdown. The same planner and executor
//! as a cycle, for one anchor; the watermark is not touched.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::expr::EvalContext;
use crate::mapping::{AttributeTrace, MapMode, SourceAttributes};
use crate::plan::{
    self, Anchor, PendingCreate, PlanEntry, PlanInput, SourceCoverage, SourceReadKind,
};
use crate::scope::{self, ScopeDecision};
use crate::store::StateStore;

use super::EngineError;
use super::apply::{self, ApplyOutcome};
use super::cycle::{
    CycleKind, PlannedCycle, evaluate_source_user, preflight, preflight_preview, rand_source,
};
use super::read;
use super::runtime::PairRuntime;
use super::unique;

/// One row of the per-attribute table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeRow {
    pub target: String,
    /// Entra's "Expression" column: `[source]`, `"constant"` or the expression.
    pub expression: String,
    pub source_values: BTreeMap<String, Value>,
    pub old_target_value: Option<Value>,
    pub new_target_value: Option<Value>,
    pub changed: bool,
}

/// What on-demand provisioning did (or, with `dry_run`, would do) for one user.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionReport {
    pub pair: String,
    pub dry_run: bool,
    pub source_id: String,
    pub user_principal_name: Option<String>,
    /// Step 1, import: the source attributes read.
    pub imported: BTreeMap<String, Value>,
    /// Step 2, scoping.
    pub scope: ScopeDecision,
    /// Why the user is not provisioned, one sentence per reason (empty when in scope).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scope_explanation: Vec<String>,
    /// Step 3, matching: the target user tied to the anchor, if any.
    pub anchor: Anchor,
    pub matched_target_id: Option<String>,
    /// Step 4, the action with its reason and attribute diff.
    pub entry: Option<PlanEntry>,
    pub attributes: Vec<AttributeRow>,
    /// Whether the action succeeded (None for a dry run or a skip).
    pub succeeded: Option<bool>,
}

impl ProvisionReport {
    /// True when the target already matched the source (Entra's `RedundantExport`).
    pub fn no_change(&self) -> bool {
        self.entry
            .as_ref()
            .is_none_or(|e| !e.action.writes() && e.changes.is_empty())
    }

    /// The report as people read it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let upn = self.user_principal_name.as_deref().unwrap_or("?");
        out.push_str(&format!(
            "pair {}: {upn} ({}){}\n",
            self.pair,
            self.source_id,
            if self.dry_run { " [dry run]" } else { "" }
        ));
        out.push_str(&format!(
            "1. import: {} attributes read\n",
            self.imported.len()
        ));
        out.push_str(&format!(
            "2. scope: {:?}{}\n",
            self.scope.disposition,
            self.scope
                .reason
                .map(|r| format!(" ({r:?})"))
                .unwrap_or_default()
        ));
        for (clause, passed) in &self.scope.scope_evaluation_result {
            out.push_str(&format!("     {clause} → {passed}\n"));
        }
        for reason in &self.scope_explanation {
            out.push_str(&format!("     why: {reason}\n"));
        }
        out.push_str(&format!(
            "3. match: {} → {}\n",
            self.anchor,
            self.matched_target_id
                .as_deref()
                .unwrap_or("no target user")
        ));
        match &self.entry {
            Some(e) => out.push_str(&format!(
                "4. action: {} ({}) — {}\n",
                e.action,
                e.reason,
                match self.succeeded {
                    Some(true) => "succeeded",
                    Some(false) => "FAILED (escrowed)",
                    None => "not applied",
                }
            )),
            None => out.push_str("4. action: none\n"),
        }
        let width = self
            .attributes
            .iter()
            .map(|a| a.target.len())
            .max()
            .unwrap_or(9)
            .max(9);
        out.push_str(&format!(
            "\n  {:<width$}  {:<28}  {:<24}  {:<24}\n",
            "attribute", "expression", "old target value", "new target value"
        ));
        for row in &self.attributes {
            let show = |v: &Option<Value>| match v {
                None => "-".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            out.push_str(&format!(
                "{} {:<width$}  {:<28}  {:<24}  {:<24}\n",
                if row.changed { "*" } else { " " },
                row.target,
                row.expression,
                show(&row.old_target_value),
                show(&row.new_target_value),
            ));
        }
        out
    }
}

/// Provisions (or previews) one source user given by object id or UPN, outside any daemon
/// (`ctsync provision`). A running daemon provisions through the job's mailbox instead
/// ([`crate::engine::DaemonHandle::provision`]), so that it never overlaps a cycle.
pub async fn provision_on_demand(
    rt: &PairRuntime,
    store: &dyn StateStore,
    user: &str,
    dry_run: bool,
) -> Result<ProvisionReport, EngineError> {
    provision_under_lease(rt, store, None, user, dry_run).await
}

/// [`provision_on_demand`] by the pair's job: its writes stop before they start once the
/// pair's `lease` (several replicas) may have lapsed, as a cycle's do.
pub(crate) async fn provision_under_lease(
    rt: &PairRuntime,
    store: &dyn StateStore,
    lease: Option<&crate::store::LeaseGuard>,
    user: &str,
    dry_run: bool,
) -> Result<ProvisionReport, EngineError> {
    let now = Utc::now();
    // A dry run checks the same policies read-only: it never registers the anchor extension
    // (the write a real preflight may make) and reads the target without the anchor when the
    // extension is not there yet.
    let (inbound_sync_allowed, anchor_registered) = if dry_run {
        preflight_preview(rt).await?
    } else {
        (preflight(rt).await?, true)
    };
    let Some(attrs) = read::source_user(rt, user).await? else {
        return Err(EngineError::Preflight {
            code: "SourceUserNotFound".into(),
            message: format!(
                "no user {user} in source tenant {}",
                rt.pair.source.tenant_id
            ),
        });
    };
    let source_id = attrs
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(user)
        .to_owned();
    let assignments = match rt.scope_setting() {
        scope::ScopeSetting::Assigned => Some(read::assignments(rt).await?),
        scope::ScopeSetting::All => None,
    };
    let managed = store.managed_users(rt.name()).await?;
    let intents = store.create_intents(rt.name()).await?;
    let target_users = read::target_users_with(rt, anchor_registered).await?;

    // SelectUniqueValue as in a cycle: evaluate, check the candidates asked about against the
    // target, evaluate again with what was learnt.
    let unique_attributes = unique::attributes(rt);
    let own_target = managed
        .iter()
        .find(|m| m.anchor.source_object_id() == source_id)
        .map(|m| m.target_id.clone());
    let mut oracle = unique::Oracle::default();
    let mut round = 0;
    let (planned_user, decision, explained) = loop {
        oracle.next_round();
        // The evaluation context holds a thread-local RNG: keep it out of the awaits so the
        // future stays `Send`.
        let evaluated = {
            let mut random = rand_source();
            let is_unique =
                |candidate: &str| oracle.is_unique(&source_id, own_target.as_deref(), candidate);
            let mut ctx = EvalContext {
                now,
                random: &mut random,
                is_unique: &is_unique,
            };
            let (planned_user, decision) =
                evaluate_source_user(rt, &source_id, &attrs, assignments.as_ref(), &mut ctx);
            let explained =
                rt.mappings
                    .explain_user(&SourceAttributes::new(&attrs), MapMode::Create, &mut ctx);
            (planned_user, decision, explained)
        };
        round += 1;
        if unique_attributes.is_empty()
            || round == unique::MAX_ROUNDS
            || !oracle.check(rt, &unique_attributes).await?
        {
            break evaluated;
        }
    };
    let scope_explanation = super::why::scope_explanation(rt, &source_id, &decision).await?;
    let anchor = Anchor::new(&rt.pair.source.tenant_id, &source_id);
    let input = PlanInput {
        pair: rt.name().to_owned(),
        source_tenant_id: rt.pair.source.tenant_id.clone(),
        now,
        settings: rt.settings.clone(),
        // Only this user is read: absence of the others proves nothing.
        source_read: SourceCoverage {
            kind: SourceReadKind::Delta,
            complete: true,
        },
        inbound_sync_allowed,
        approved_deletes: Default::default(),
        source_users: vec![planned_user],
        managed: managed.clone(),
        live_managed: None,
        pending_creates: intents.iter().map(PendingCreate::from).collect(),
        target_users: target_users.clone(),
        target_read_complete: true,
        escrowed: store
            .escrows(rt.name())
            .await?
            .into_iter()
            .map(|e| crate::plan::EscrowedAction {
                anchor: e.anchor,
                reference: e.reference,
            })
            .collect(),
    };
    let plan = plan::plan(&input);
    let entry = plan.entry(&anchor).cloned();
    let matched_target_id = entry
        .as_ref()
        .and_then(|e| e.target_id.clone())
        .or_else(|| {
            managed
                .iter()
                .find(|m| m.anchor == anchor)
                .map(|m| m.target_id.clone())
        });
    let target_now = matched_target_id
        .as_deref()
        .and_then(|id| target_users.iter().find(|t| t.id == id));
    let attributes = explained
        .breakdown
        .iter()
        .map(|trace: &AttributeTrace| {
            let change = entry
                .as_ref()
                .and_then(|e| e.changes.iter().find(|c| c.attribute == trace.target));
            let old = target_now
                .and_then(|t| t.attributes.get(&trace.target))
                .filter(|v| !v.is_null())
                .cloned();
            let new = match change {
                Some(c) => Some(c.new.clone()),
                None => old.clone(),
            };
            AttributeRow {
                target: trace.target.clone(),
                expression: trace.expression.clone(),
                source_values: trace.source_values.clone(),
                old_target_value: old,
                new_target_value: new,
                changed: change.is_some(),
            }
        })
        .collect();
    let mut succeeded = None;
    if !dry_run && entry.as_ref().is_some_and(|e| e.action.writes()) {
        let planned = PlannedCycle {
            kind: CycleKind::Incremental,
            plan,
            delta_link: String::new(),
            source_pages: 0,
        };
        let cycle_id = format!("ondemand-{}", uuid::Uuid::new_v4());
        let outcome: ApplyOutcome = apply::apply(
            rt,
            store,
            &planned.plan,
            &cycle_id,
            apply::ApplyContext {
                lease,
                ..Default::default()
            },
        )
        .await?;
        succeeded = Some(outcome.failed == 0);
    }
    Ok(ProvisionReport {
        pair: rt.name().to_owned(),
        dry_run,
        user_principal_name: attrs
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        imported: attrs.into_iter().collect(),
        source_id,
        scope_explanation,
        scope: decision,
        anchor,
        matched_target_id,
        entry,
        attributes,
        succeeded,
    })
}
