//! Test control under `/_emulator/` (no authentication; loopback only). Documented in
//! `config/emulator/README.md`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::clock::iso;
use super::faults::{FailRule, TenantFaults};
use super::server::{Emulator, lock};

type Shared = State<Arc<Emulator>>;

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"code": "BadRequest", "message": message.into()}})),
    )
        .into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| problem(StatusCode::BAD_REQUEST, e.to_string()))
}

pub fn router() -> axum::Router<Arc<Emulator>> {
    axum::Router::new()
        .route(
            "/_emulator/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/_emulator/clock", get(clock))
        .route("/_emulator/clock/advance", post(advance))
        .route("/_emulator/export", get(export))
        .route("/_emulator/throttling", put(throttling))
        .route("/_emulator/faults", axum::routing::delete(clear_faults))
        .route("/_emulator/faults/fail-next", post(fail_next))
        .route("/_emulator/tenants/{tenant}/faults", put(tenant_faults))
        .route("/_emulator/apps/{app}/secrets", put(set_secrets))
        .route(
            "/_emulator/tenants/{tenant}/apps/{app}/permissions",
            put(set_permissions),
        )
        .route(
            "/_emulator/tenants/{tenant}/partners/{partner}",
            put(set_partner),
        )
        .route("/_emulator/tokens", axum::routing::delete(revoke_tokens))
        .route("/_emulator/latency", put(latency))
        .route("/_emulator/delta", put(delta_settings))
}

async fn clock(State(emu): Shared) -> Json<Value> {
    Json(json!({"now": iso(emu.clock.now()), "timeScale": emu.clock.scale()}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    seconds: f64,
    #[serde(default)]
    days: f64,
}

async fn advance(State(emu): Shared, body: axum::body::Bytes) -> Response {
    let a: Advance = match parse(&body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let total = a.seconds + a.days * 86_400.0;
    if !total.is_finite() || !(0.0..=1e10).contains(&total) {
        return problem(
            StatusCode::BAD_REQUEST,
            "advance by a non-negative number of seconds/days",
        );
    }
    let now = emu
        .clock
        .advance(chrono::Duration::milliseconds((total * 1000.0) as i64));
    {
        let mut dir = lock(&emu.dir);
        emu.upkeep(&mut dir);
    }
    tracing::info!(now = %iso(now), "emulator clock advanced");
    Json(json!({"now": iso(now)})).into_response()
}

async fn export(State(emu): Shared) -> Response {
    let mut dir = lock(&emu.dir);
    emu.upkeep(&mut dir);
    Json(serde_json::to_value(&*dir).unwrap_or(Value::Null)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

async fn throttling(State(emu): Shared, body: axum::body::Bytes) -> Response {
    match parse::<Enabled>(&body) {
        Ok(e) => {
            emu.throttling.store(e.enabled, Ordering::Release);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

async fn clear_faults(State(emu): Shared) -> StatusCode {
    let mut f = lock(&emu.faults);
    f.rules.clear();
    f.tenants.clear();
    StatusCode::NO_CONTENT
}

async fn fail_next(State(emu): Shared, body: axum::body::Bytes) -> Response {
    let rule: FailRule = match parse(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(m) = rule.validate() {
        return problem(StatusCode::BAD_REQUEST, m);
    }
    lock(&emu.faults).rules.push(rule);
    StatusCode::NO_CONTENT.into_response()
}

async fn tenant_faults(
    State(emu): Shared,
    Path(tenant): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let f: TenantFaults = match parse(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(m) = f.validate() {
        return problem(StatusCode::BAD_REQUEST, m);
    }
    lock(&emu.faults).tenants.insert(tenant, f);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Secrets {
    client_secrets: Vec<String>,
}

/// Replaces an app's client secrets (an empty list revokes them all).
async fn set_secrets(
    State(emu): Shared,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let s: Secrets = match parse(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut dir = lock(&emu.dir);
    let Some(a) = dir.apps.get_mut(&app) else {
        return problem(StatusCode::NOT_FOUND, format!("no app {app}"));
    };
    a.client_secrets = s.client_secrets;
    emu.mark_dirty();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Permissions {
    permissions: Vec<String>,
}

/// Replaces an app's permissions in a tenant; tokens issued later carry the new set.
async fn set_permissions(
    State(emu): Shared,
    Path((tenant, app)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let p: Permissions = match parse(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut dir = lock(&emu.dir);
    let Some(sp) = dir.tenants.get_mut(&tenant).and_then(|t| {
        t.service_principals
            .values_mut()
            .find(|sp| sp.app_id == app)
    }) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no service principal for {app} in {tenant}"),
        );
    };
    sp.permissions = p.permissions.into_iter().collect();
    emu.mark_dirty();
    StatusCode::NO_CONTENT.into_response()
}

/// Replaces a partner configuration (and optionally its identitySynchronization) wholesale.
async fn set_partner(
    State(emu): Shared,
    Path((tenant, partner)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let mut config: serde_json::Map<String, Value> = match parse(&body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let identity_sync = config
        .remove("identitySynchronization")
        .and_then(|v| match v {
            Value::Object(mut o) => {
                o.insert("tenantId".into(), json!(partner));
                Some(o)
            }
            _ => None,
        });
    let mut merged = super::policy::default_partner(&partner);
    merged.extend(config);
    merged.insert("tenantId".into(), json!(partner));
    let mut dir = lock(&emu.dir);
    let Some(t) = dir.tenants.get_mut(&tenant) else {
        return problem(StatusCode::NOT_FOUND, format!("no tenant {tenant}"));
    };
    t.partners.insert(
        partner,
        super::model::Partner {
            config: merged,
            identity_sync,
        },
    );
    emu.mark_dirty();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Latency {
    ms: f64,
}

/// Sets the latency added to every Graph request (`{"ms": 100}`; 0 turns it off).
async fn latency(State(emu): Shared, body: axum::body::Bytes) -> Response {
    let l: Latency = match parse(&body) {
        Ok(l) => l,
        Err(r) => return r,
    };
    if !l.ms.is_finite() || !(0.0..=600_000.0).contains(&l.ms) {
        return problem(StatusCode::BAD_REQUEST, "ms: 0 to 600000");
    }
    emu.set_latency(std::time::Duration::from_micros((l.ms * 1000.0) as u64));
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeltaSettings {
    expired_token_status: u16,
}

/// How expired delta tokens are answered: `{"expiredTokenStatus": 400 | 410}`.
async fn delta_settings(State(emu): Shared, body: axum::body::Bytes) -> Response {
    let d: DeltaSettings = match parse(&body) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let status = match d.expired_token_status {
        400 => StatusCode::BAD_REQUEST,
        410 => StatusCode::GONE,
        _ => return problem(StatusCode::BAD_REQUEST, "expiredTokenStatus: 400 or 410"),
    };
    lock(&emu.settings).expired_delta_status = status;
    StatusCode::NO_CONTENT.into_response()
}

async fn revoke_tokens(State(emu): Shared) -> StatusCode {
    lock(&emu.tokens).clear();
    StatusCode::NO_CONTENT
}
