//! JSON endpoints: health, readiness, metrics, jobs, control, logs, plan.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::{CommandError, JobCommand, PairRuntime, Preview, QueryError};
use crate::store::{LogQuery, ProvisioningAction, ProvisioningResult};

use super::AppState;
use super::auth::Access;
use super::error::ApiError;

type Shared = State<Arc<AppState>>;

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(super) async fn readyz(State(state): Shared) -> Response {
    if let Some(problem) = state.handle.store_problem() {
        // The jobs pause until the store answers again; say so.
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "StoreUnavailable",
            format!("jobs paused: {problem}"),
        )
        .into_response();
    }
    if state.handle.is_ready() {
        match state.handle.replica() {
            Some(replica) => Json(json!({
                "status": "ready",
                "replica": &*replica.id,
                "liveReplicas": replica.live_replicas(),
                "leasesHeld": state.handle.guards().keys().collect::<Vec<_>>(),
            }))
            .into_response(),
            None => Json(json!({"status": "ready"})).into_response(),
        }
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NotReady",
            "jobs are still loading their state",
        )
        .into_response()
    }
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "no such endpoint")
}

pub(super) async fn metrics(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.policy.check(Access::Read, &headers)?;
    let text = state.metrics.render(&state.handle).await.map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "MetricsEncoding",
            "cannot encode metrics",
        )
    })?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

fn runtime(state: &AppState, pair: &str) -> Result<Arc<PairRuntime>, ApiError> {
    state
        .handle
        .runtime(pair)
        .ok_or_else(|| ApiError::unknown_pair(pair))
}

/// Graph's `synchronizationSchedule.interval` is an ISO 8601 duration.
fn iso_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || (h == 0 && m == 0) {
        out.push_str(&format!("{s}S"));
    }
    out
}

/// A job in the shape of Graph's `synchronizationJob` (id, schedule, status), plus the tenants.
async fn job_json(state: &AppState, pair: &str) -> Result<Value, ApiError> {
    let rt = runtime(state, pair)?;
    let status = state
        .handle
        .status(pair)
        .await
        .ok_or_else(|| ApiError::unknown_pair(pair))?;
    // The interval in force: `run --interval` overrides the pair file's.
    let overridden = state.handle.interval_override();
    let mut schedule = json!({
        "interval": iso_duration(overridden.unwrap_or(rt.pair.interval)),
        "state": if status.paused { "Paused" } else { "Active" },
    });
    if overridden.is_some() {
        schedule["configuredInterval"] = json!(iso_duration(rt.pair.interval));
    }
    Ok(json!({
        "id": pair,
        "sourceTenantId": rt.pair.source.tenant_id,
        "targetTenantId": rt.pair.target.tenant_id,
        "schedule": schedule,
        "status": status,
        "heldBy": state.handle.replica().map(|r| r.id.to_string()),
    }))
}

/// Pairs other replicas run (shared store): their stored status and who holds them, so any
/// replica answers for every pair.
async fn other_replicas_jobs(state: &AppState) -> Vec<Value> {
    let Some(replica) = state.handle.replica() else {
        return Vec::new();
    };
    let mine = state.handle.pairs();
    let table = match replica.lease_table().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the lease table");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for lease in table.into_iter().filter(|l| !mine.contains(&l.pair)) {
        let status = state.handle.stored_status(&lease.pair).await.ok().flatten();
        out.push(json!({
            "id": lease.pair,
            "heldBy": lease.holder,
            "leaseEpoch": lease.epoch,
            "leaseExpires": lease.expires_at,
            "status": status,
        }));
    }
    out
}

pub(super) async fn list(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.policy.check(Access::Read, &headers)?;
    let mut jobs = Vec::new();
    for pair in state.handle.pairs() {
        match job_json(&state, &pair).await {
            Ok(job) => jobs.push(job),
            // Removed by a reload between listing and reading: not a job any more.
            Err(e) if e.status == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    jobs.extend(other_replicas_jobs(&state).await);
    Ok(Json(json!({"value": jobs})))
}

pub(super) async fn get_job(
    State(state): Shared,
    Path(pair): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.policy.check(Access::Read, &headers)?;
    Ok(Json(job_json(&state, &pair).await?))
}

async fn command(
    state: &AppState,
    headers: &HeaderMap,
    pair: &str,
    command: JobCommand,
) -> Result<StatusCode, ApiError> {
    state.policy.check(Access::Mutate, headers)?;
    match state.handle.send(pair, command.clone()).await {
        Ok(()) => {}
        // Another replica runs the pair: the command waits in the store for its holder.
        Err(CommandError::UnknownPair(_)) if state.handle.replica().is_some() => {
            queue_for_holder(state, pair, &command).await?;
            return Ok(StatusCode::ACCEPTED);
        }
        Err(e) => return Err(e.into()),
    }
    // Graph answers its job actions with 204; the job carries the command out right away.
    Ok(StatusCode::NO_CONTENT)
}

/// Queues `command` in the store for the replica holding `pair` (which takes it on its next
/// renewal); a pair no replica holds is unknown.
async fn queue_for_holder(
    state: &AppState,
    pair: &str,
    command: &JobCommand,
) -> Result<(), ApiError> {
    let replica = state
        .handle
        .replica()
        .ok_or_else(|| ApiError::unknown_pair(pair))?;
    held_by_a_replica(state, pair).await?;
    crate::engine::replica::queue_command(replica.leases.as_ref(), pair, command)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "StoreUnavailable",
                e.to_string(),
            )
        })
}

pub(super) async fn pause(
    State(state): Shared,
    Path(pair): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    command(&state, &headers, &pair, JobCommand::Pause).await
}

pub(super) async fn start(
    State(state): Shared,
    Path(pair): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    command(&state, &headers, &pair, JobCommand::Start).await
}

pub(super) async fn run_now(
    State(state): Shared,
    Path(pair): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    command(&state, &headers, &pair, JobCommand::RunNow).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestartBody {
    #[serde(default)]
    criteria: Option<RestartCriteria>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestartCriteria {
    #[serde(default)]
    reset_scope: Option<String>,
}

fn json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(body_problem(&e)))
}

/// What is wrong with a rejected body, by position only: serde's own message quotes the
/// offending value, and a body is never echoed back (it may be a script aimed at a browser,
/// or a secret pasted into the wrong place).
fn body_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => "is not valid JSON",
        Category::Data => "does not have the expected fields and types",
    };
    format!(
        "the request body {what} (line {}, column {}); see the admin API in README.md",
        e.line(),
        e.column()
    )
}

/// Graph's restart: `{"criteria":{"resetScope":"Watermark, Escrows, ..."}}`; no body (or no
/// resetScope) is the portal's restart.
pub(super) async fn restart(
    State(state): Shared,
    Path(pair): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    state.policy.check(Access::Mutate, &headers)?;
    let body: RestartBody = json_body(&body)?;
    let scope = body
        .criteria
        .and_then(|c| c.reset_scope)
        .unwrap_or_default();
    match state.handle.restart(&pair, &scope).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        // Not `e.to_string()`: that quotes the rejected value from the body.
        Err(crate::engine::daemon::RestartError::Scope(e)) => Err(ApiError::bad_request(match e {
            crate::engine::reset::ResetScopeError::Unknown(_) => {
                "criteria.resetScope holds a value that is not one of Watermark, Escrows, \
                 QuarantineState, ForceDeletes, Full or None"
                    .to_owned()
            }
            other => other.to_string(),
        })),
        Err(crate::engine::daemon::RestartError::Command(e)) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionBody {
    #[serde(default)]
    user_id: Option<String>,
    /// A group instead of a user: object id or display name.
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Graph's `provisionOnDemand`. The job runs it between cycles (one writer per pair) and the
/// answer waits for it. A pair another replica holds gets the provisioning queued for its
/// holder, like every other mutation (202; the outcome is in the provisioning log); a dry run
/// cannot be answered from here and is refused with the holder's name.
pub(super) async fn provision_on_demand(
    State(state): Shared,
    Path(pair): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    state.policy.check(Access::Mutate, &headers)?;
    let body: ProvisionBody = json_body(&body)?;
    let group = body.group_id.filter(|g| !g.trim().is_empty());
    if body.user_id.is_some() && group.is_some() {
        return Err(ApiError::bad_request(
            "the body names a userId and a groupId: provision one at a time",
        ));
    }
    if let Some(group) = group {
        return provision_group(&state, &pair, group.trim(), body.dry_run).await;
    }
    let user = body.user_id.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "the body needs a userId (object id or UPN) or a groupId (object id or display name)",
        )
    })?;
    let user = user.trim().to_owned();
    let dry_run = body.dry_run;
    let report = match state.handle.provision(&pair, &user, dry_run).await {
        Ok(report) => report,
        Err(QueryError::Command(CommandError::UnknownPair(_)))
            if state.handle.replica().is_some() =>
        {
            if dry_run {
                held_by_a_replica(&state, &pair).await?;
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "HeldByAnotherReplica",
                    format!(
                        "pair {pair} runs on another replica; ask that replica for a dry run \
                         (GET /v1/jobs lists who holds it)"
                    ),
                ));
            }
            let command = JobCommand::ProvisionOnDemand { user };
            queue_for_holder(&state, &pair, &command).await?;
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"queued": true, "pair": pair})),
            )
                .into_response());
        }
        Err(QueryError::Command(e)) => return Err(e.into()),
        Err(QueryError::Engine(e)) => return Err(engine_error(e)),
    };
    serde_json::to_value(&report)
        .map(|v| Json(v).into_response())
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Serialization",
                e.to_string(),
            )
        })
}

/// 404 unless some replica holds `pair` (shared store).
async fn held_by_a_replica(state: &AppState, pair: &str) -> Result<(), ApiError> {
    let known = match state.handle.replica() {
        Some(replica) => replica
            .lease_table()
            .await
            .map(|t| t.iter().any(|l| l.pair == pair))
            .unwrap_or(false),
        None => false,
    };
    if known {
        Ok(())
    } else {
        Err(ApiError::unknown_pair(pair))
    }
}

/// On-demand provisioning of one group through the job's mailbox. A pair held by another
/// replica is answered 409 with where to ask (group provisioning is not queued across replicas).
async fn provision_group(
    state: &super::AppState,
    pair: &str,
    group: &str,
    dry_run: bool,
) -> Result<Response, ApiError> {
    let report = match state.handle.provision_group(pair, group, dry_run).await {
        Ok(report) => report,
        Err(QueryError::Command(CommandError::UnknownPair(_)))
            if state.handle.replica().is_some() =>
        {
            held_by_a_replica(state, pair).await?;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "HeldByAnotherReplica",
                format!(
                    "pair {pair} runs on another replica; provision the group through that \
                     replica (GET /v1/jobs lists who holds it)"
                ),
            ));
        }
        Err(QueryError::Command(e)) => return Err(e.into()),
        Err(QueryError::Engine(e)) => return Err(engine_error(e)),
    };
    serde_json::to_value(&report)
        .map(|v| Json(v).into_response())
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Serialization",
                e.to_string(),
            )
        })
}

/// Engine failures: a missing user or group is the caller's problem, the rest is upstream's.
fn engine_error(e: crate::engine::EngineError) -> ApiError {
    let code = e.code();
    match code.as_str() {
        "SourceUserNotFound" => {
            return ApiError::new(StatusCode::NOT_FOUND, "SourceUserNotFound", e.to_string());
        }
        "SourceGroupNotFound" => {
            return ApiError::new(StatusCode::NOT_FOUND, "SourceGroupNotFound", e.to_string());
        }
        "SourceGroupAmbiguous" => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "SourceGroupAmbiguous",
                e.to_string(),
            );
        }
        _ => {}
    }
    if matches!(e, crate::engine::EngineError::Config { .. }) {
        return ApiError::new(StatusCode::BAD_REQUEST, "ConfigurationError", e.to_string());
    }
    tracing::warn!(error_code = %code, error = %e, "admin API: engine call failed");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "EngineError",
        format!("{code}: {e}"),
    )
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct LogParams {
    since: Option<String>,
    action: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
}

impl LogParams {
    fn to_query(&self) -> Result<LogQuery, ApiError> {
        let since = match &self.since {
            None => None,
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        ApiError::bad_request(format!("since: not an RFC 3339 time ({e})"))
                    })?,
            ),
        };
        let action = match &self.action {
            None => None,
            Some(text) => Some(ProvisioningAction::parse(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "action: {text:?} is not one of create, update, delete, disable, stagedDelete, other"
                ))
            })?),
        };
        let status = match &self.status {
            None => None,
            Some(text) => Some(ProvisioningResult::parse(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status: {text:?} is not one of success, failure, skipped, warning"
                ))
            })?),
        };
        Ok(LogQuery {
            since,
            action,
            status,
            limit: self.limit,
        })
    }
}

pub(super) async fn provisioning_logs(
    State(state): Shared,
    Path(pair): Path<String>,
    Query(params): Query<LogParams>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.policy.check(Access::Read, &headers)?;
    runtime(&state, &pair)?;
    let query = params.to_query()?;
    let entries = state
        .handle
        .provisioning_log(&pair, &query)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "StateStoreError",
                e.to_string(),
            )
        })?;
    Ok(Json(json!({"value": entries})))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PlanParams {
    format: Option<String>,
}

/// The next cycle's plan against the live tenants; writes nothing.
pub(super) async fn plan(
    State(state): Shared,
    Path(pair): Path<String>,
    Query(params): Query<PlanParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.policy.check(Access::Read, &headers)?;
    let preview = state.handle.preview(&pair).await.map_err(|e| match e {
        QueryError::Command(e) => e.into(),
        QueryError::Engine(e) => engine_error(e),
    })?;
    let cycle = preview.cycle();
    let Preview {
        users: planned,
        groups,
        ..
    } = preview;
    let serialization = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Serialization",
            e.to_string(),
        )
    };
    match params.format.as_deref() {
        Some("text") => {
            let mut text = planned.plan.to_text();
            if let Some(g) = &groups {
                text.push_str(&g.to_text());
            }
            Ok(text.into_response())
        }
        None | Some("json") => {
            let mut value: Value =
                serde_json::from_str(&planned.plan.to_json()).map_err(serialization)?;
            if let Value::Object(map) = &mut value {
                map.insert("cycle".into(), Value::from(cycle));
                // `null` when the pair does not sync groups.
                map.insert(
                    "groups".into(),
                    serde_json::to_value(&groups).map_err(serialization)?,
                );
            }
            Ok(Json(value).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "format: {other:?} is not text or json"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_iso_8601_durations() {
        use std::time::Duration;
        assert_eq!(iso_duration(Duration::from_secs(40 * 60)), "PT40M");
        assert_eq!(iso_duration(Duration::from_secs(3600 + 5)), "PT1H5S");
        assert_eq!(iso_duration(Duration::from_secs(0)), "PT0S");
    }

    #[test]
    fn log_params_reject_unknown_values() {
        let bad = LogParams {
            action: Some("explode".into()),
            ..LogParams::default()
        };
        assert_eq!(bad.to_query().unwrap_err().status, StatusCode::BAD_REQUEST);
        let good = LogParams {
            since: Some("2026-01-01T00:00:00Z".into()),
            action: Some("StagedDelete".into()),
            status: Some("failure".into()),
            limit: Some(3),
        };
        let q = good.to_query().unwrap();
        assert_eq!(q.action, Some(ProvisioningAction::StagedDelete));
        assert_eq!(q.status, Some(ProvisioningResult::Failure));
        assert!(q.since.is_some());
    }
}
