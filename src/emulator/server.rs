//! The HTTP side: shared state, the request pipeline every Graph call (and every `$batch` item)
//! goes through — faults, throttling, directory upkeep, dispatch — and rendering.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

use super::auth::{self, Grant};
use super::call::{ApiVersion, Call, Reply, ReplyBody, Settings};
use super::clock::{Clock, error_date};
use super::deleted_items;
use super::dispatch::dispatch;
use super::errors::GraphError;
use super::faults::Faults;
use super::model::Directory;
use super::throttle::{self, Throttle, Verdict};

pub const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Everything the running emulator holds. Tests may read the directory through
/// [`super::EmulatorHandle::directory`].
#[derive(Debug)]
pub struct Emulator {
    pub dir: Mutex<Directory>,
    pub clock: Clock,
    pub tokens: Mutex<HashMap<String, Grant>>,
    pub throttle: Mutex<Throttle>,
    pub throttling: AtomicBool,
    /// Added latency per Graph request, in microseconds.
    pub latency_us: AtomicU64,
    pub faults: Mutex<Faults>,
    pub dirty: AtomicBool,
    pub settings: Mutex<Settings>,
    pub token_lifetime: chrono::Duration,
    pub base_url: String,
    /// Every successful write, in order (tests check who wrote when).
    pub writes: Mutex<Vec<WriteRecord>>,
    /// Every authenticated Graph round trip, in order (a `$batch` is one), while
    /// `recording_requests` is on (off by default: a long run would keep them all).
    pub requests: Mutex<Vec<RequestRecord>>,
    pub recording_requests: AtomicBool,
}

/// One Graph round trip as the emulator received it: a `$batch` is one request, whatever it
/// holds (its items are in [`WriteRecord`]s when they write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub tenant: String,
    pub method: String,
    /// With the version: `/v1.0/groups/{id}`, `/beta/policies/…`, `/v1.0/$batch`.
    pub path: String,
}

/// One successful Graph write as the emulator saw it: when (wall clock, not the emulator's
/// scaled clock, so it compares with other processes' clocks), to which tenant, and who sent
/// it (`User-Agent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    pub at: chrono::DateTime<chrono::Utc>,
    pub tenant: String,
    pub method: String,
    pub path: String,
    pub user_agent: Option<String>,
    /// The request body (JSON text), for telling which pair a write served.
    pub body: String,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the directory half-written in a way later
    // requests could not handle (every handler validates before mutating), so keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Emulator {
    pub fn graph_base(&self, version: ApiVersion) -> String {
        format!("{}/{}", self.base_url, version.segment())
    }

    pub fn set_latency(&self, latency: std::time::Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::Release);
    }

    /// Sleeps for the configured per-request latency (outside every lock).
    pub async fn delay(&self) {
        let us = self.latency_us.load(Ordering::Acquire);
        if us > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(us)).await;
        }
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Purges expired soft-deleted users and old change-log entries in every tenant.
    pub fn upkeep(&self, dir: &mut Directory) {
        let now = self.clock.now();
        let settings = lock(&self.settings).clone();
        for t in dir.tenants.values_mut() {
            if deleted_items::purge_expired(t, now, settings.soft_delete_retention) > 0 {
                self.mark_dirty();
            }
            t.change_log.prune(now - settings.delta_token_retention);
            t.group_log.prune(now - settings.delta_token_retention);
        }
    }
}

pub struct RequestIds {
    pub request_id: String,
    /// The client's `client-request-id`, or the `request-id` when it sent none (Graph always
    /// returns one, in the header and in `innerError`).
    pub client_request_id: Option<String>,
}

impl RequestIds {
    pub fn new(headers: &HeaderMap) -> RequestIds {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds {
            request_id,
            client_request_id: Some(client),
        }
    }
}

pub fn error_reply(emu: &Emulator, err: &GraphError, ids: &RequestIds) -> Reply {
    let body = err.body(
        &error_date(emu.clock.now()),
        &ids.request_id,
        ids.client_request_id.as_deref(),
    );
    Reply {
        status: err.status,
        body: ReplyBody::Json(body),
        headers: err.headers.clone(),
    }
}

pub fn render(reply: Reply, ids: &RequestIds) -> Response {
    let mut builder = Response::builder().status(reply.status);
    let content_type = match &reply.body {
        ReplyBody::Json(_) => Some(JSON_CONTENT_TYPE),
        ReplyBody::Text(_) => Some("text/plain;charset=utf-8"),
        ReplyBody::Empty => None,
    };
    if let Some(ct) = content_type {
        builder = builder.header("Content-Type", ct);
    }
    builder = builder
        .header("request-id", &ids.request_id)
        .header("OData-Version", "4.0");
    if let Some(c) = &ids.client_request_id {
        builder = builder.header("client-request-id", c);
    }
    for (k, v) in &reply.headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            builder = builder.header(k.as_str(), v);
        }
    }
    let body = match reply.body {
        ReplyBody::Json(v) => Body::from(serde_json::to_vec(&v).unwrap_or_default()),
        ReplyBody::Text(t) => Body::from(t),
        ReplyBody::Empty => Body::empty(),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Splits `/v1.0/a/b%23c` (or `/beta/…`) into its version and decoded segments; `None` if the
/// path is under neither.
pub fn graph_segments(path: &str) -> Option<(ApiVersion, Vec<String>)> {
    let (version, rest) = [ApiVersion::V1, ApiVersion::Beta]
        .into_iter()
        .find_map(|v| {
            path.strip_prefix('/')
                .and_then(|p| p.strip_prefix(v.segment()))
                .map(|rest| (v, rest))
        })?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some((
        version,
        rest.split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect(),
    ))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| s.to_string())
}

/// Looks up the bearer token; 401 in Graph's shape when missing, unknown or expired.
pub fn authenticate(emu: &Emulator, headers: &HeaderMap) -> Result<Grant, GraphError> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GraphError::unauthenticated("Access token is empty."))?;
    let grant = lock(&emu.tokens).get(token).cloned().ok_or_else(|| {
        GraphError::unauthenticated("Access token validation failure. Invalid audience.")
    })?;
    if grant.expires <= emu.clock.now() {
        return Err(GraphError::unauthenticated(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    Ok(grant)
}

/// One Graph request through faults, throttling and dispatch. Used for top-level requests and
/// for each `$batch` item.
/// A Graph request after routing to `/v1.0` or `/beta` (top-level or a `$batch` item).
pub struct Incoming<'a> {
    pub method: Method,
    pub version: ApiVersion,
    pub segments: Vec<String>,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A write with a body must say it is JSON (`Content-Type: application/json`), as Graph requires;
/// body-less writes (DELETE, a restore without options) need no header.
fn check_content_type(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<(), GraphError> {
    let writes_body = matches!(*method, Method::POST | Method::PATCH | Method::PUT)
        && !body.iter().all(u8::is_ascii_whitespace);
    if !writes_body {
        return Ok(());
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "A supported MIME type could not be found that matches the content type of the response. None of the supported type(s) 'application/json' matches the content type of the request.",
        ))
    }
}

pub async fn process(emu: &Emulator, grant: &Grant, req: Incoming<'_>, ids: &RequestIds) -> Reply {
    let Incoming {
        method,
        version,
        segments,
        raw_query,
        headers,
        body,
    } = req;
    let path = format!("/{}", segments.join("/"));
    if let Err(err) = check_content_type(&method, headers, body) {
        return error_reply(emu, &err, ids);
    }
    let (latency, fault) = lock(&emu.faults).decide(&grant.tenant_id, method.as_str(), &path);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    if let Some(err) = fault {
        tracing::info!(tenant = %grant.tenant_id, %path, status = err.status.as_u16(), "injected fault");
        return error_reply(emu, &err, ids);
    }
    let cost = throttle::cost(&method, &segments, raw_query);
    let mut extra_headers = Vec::new();
    if emu.throttling.load(Ordering::Acquire) {
        let size = lock(&emu.dir)
            .tenants
            .get(&grant.tenant_id)
            .map(|t| t.effective_size_class())
            .unwrap_or(super::seed::SizeClass::S);
        let verdict =
            lock(&emu.throttle).check(&grant.tenant_id, &grant.app_id, size, cost, emu.clock.now());
        match verdict {
            Verdict::Allowed {
                resource_units,
                limit_percentage,
            } => {
                extra_headers.push(("x-ms-resource-unit".to_string(), resource_units.to_string()));
                if let Some(p) = limit_percentage {
                    extra_headers.push((
                        "x-ms-throttle-limit-percentage".to_string(),
                        format!("{p:.2}"),
                    ));
                }
            }
            Verdict::Throttled {
                retry_after,
                scope,
                information,
            } => {
                let secs = emu.clock.real_seconds(retry_after).max(0.001);
                tracing::info!(tenant = %grant.tenant_id, app = %grant.app_id, %path, retry_after = secs, information, "throttled");
                let mut err = GraphError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Please retry again later.",
                );
                err.inner_extra = vec![
                    ("code".into(), "429".into()),
                    ("message".into(), "Please retry after".into()),
                    ("status".into(), "429".into()),
                ];
                err.headers = vec![
                    ("Retry-After".into(), format!("{secs:.3}")),
                    ("x-ms-throttle-scope".into(), scope),
                    ("x-ms-throttle-information".into(), information.to_string()),
                ];
                return error_reply(emu, &err, ids);
            }
        }
    } else {
        extra_headers.push((
            "x-ms-resource-unit".to_string(),
            cost.resource_units.to_string(),
        ));
    }
    let settings = lock(&emu.settings).clone();
    let graph_base = emu.graph_base(version);
    let outcome = {
        let mut dir = lock(&emu.dir);
        emu.upkeep(&mut dir);
        let call = Call {
            method: method.clone(),
            version,
            segments,
            raw_query,
            headers,
            body,
            permissions: &grant.permissions,
            now: emu.clock.now(),
            graph_base: &graph_base,
            settings: &settings,
        };
        dispatch(&mut dir, &grant.tenant_id, &call)
    };
    let mut reply = match outcome {
        Ok(reply) => {
            if method != Method::GET {
                emu.mark_dirty();
                lock(&emu.writes).push(WriteRecord {
                    at: chrono::Utc::now(),
                    tenant: grant.tenant_id.clone(),
                    method: method.to_string(),
                    path: path.clone(),
                    user_agent: headers
                        .get(axum::http::header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body: String::from_utf8_lossy(body).into_owned(),
                });
            }
            reply
        }
        Err(err) => error_reply(emu, &err, ids),
    };
    reply.headers.extend(extra_headers);
    reply
}

pub async fn graph(
    State(emu): State<Arc<Emulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ids = RequestIds::new(&headers);
    let Some((version, segments)) = graph_segments(uri.path()) else {
        let seg = uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        return render(
            error_reply(&emu, &GraphError::unknown_segment(&seg), &ids),
            &ids,
        );
    };
    // One round trip, one delay: a `$batch` pays it once, like a real one.
    emu.delay().await;
    let grant = match authenticate(&emu, &headers) {
        Ok(g) => g,
        Err(e) => return render(error_reply(&emu, &e, &ids), &ids),
    };
    if emu.recording_requests.load(Ordering::Acquire) {
        lock(&emu.requests).push(RequestRecord {
            tenant: grant.tenant_id.clone(),
            method: method.to_string(),
            path: uri.path().to_owned(),
        });
    }
    if segments.first().map(String::as_str) == Some("$batch") && segments.len() == 1 {
        let reply = if method == Method::POST {
            super::batch::run(
                &emu,
                &grant,
                version,
                &body,
                &ids,
                headers.get(axum::http::header::USER_AGENT),
            )
            .await
        } else {
            error_reply(&emu, &GraphError::method_not_allowed(), &ids)
        };
        return render(reply, &ids);
    }
    let req = Incoming {
        method,
        version,
        segments,
        raw_query: uri.query(),
        headers: &headers,
        body: &body,
    };
    let reply = process(&emu, &grant, req, &ids).await;
    render(reply, &ids)
}

pub async fn token(
    State(emu): State<Arc<Emulator>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok());
    let now = emu.clock.now();
    let result = {
        let dir = lock(&emu.dir);
        auth::authorize(&dir, &tenant, &form, basic, now, emu.token_lifetime)
    };
    match result {
        Ok(grant) => {
            let token = auth::new_token();
            tracing::debug!(tenant = %grant.tenant_id, app = %grant.app_id, "token issued");
            lock(&emu.tokens).insert(token.clone(), grant);
            let expires_in = emu.clock.real_seconds(emu.token_lifetime).floor().max(1.0) as u64;
            let body = json!({
                "token_type": "Bearer",
                "expires_in": expires_in,
                "access_token": token,
            });
            (
                StatusCode::OK,
                [("Content-Type", "application/json; charset=utf-8")],
                body.to_string(),
            )
                .into_response()
        }
        Err(e) => {
            tracing::info!(tenant = %tenant, error = e.error, aadsts = e.aadsts, "token request refused");
            let id = uuid::Uuid::new_v4().to_string();
            let ts = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
            let body: Value = e.body(&id, &id, &ts);
            (
                e.status,
                [("Content-Type", "application/json; charset=utf-8")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// Anything outside the token endpoint and `/_emulator`: Graph (`/v1.0`, `/beta`) or a 400.
pub async fn fallback(
    State(emu): State<Arc<Emulator>>,
    uri: Uri,
    headers: HeaderMap,
    method: Method,
    body: Bytes,
) -> Response {
    if graph_segments(uri.path()).is_some() {
        return graph(State(emu), method, uri, headers, body).await;
    }
    let ids = RequestIds::new(&headers);
    let seg = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    render(
        error_reply(&emu, &GraphError::unknown_segment(&seg), &ids),
        &ids,
    )
}
