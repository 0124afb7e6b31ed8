//! The HTTP core of the Graph client: tokens, pacing to the write and invitation quotas,
//! retries with `Retry-After`,
//! a per-request timeout, a fresh `client-request-id` per request, and request counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::config::{
    ClientCredential, InvitationQuota, PUBLIC_AUTHORITY, PUBLIC_GRAPH, WriteQuota,
};

use super::auth::TokenProvider;
use super::error::{self, GraphError, RequestContext};
use super::pacing::WindowLimiter;

/// Where Graph lives and how the client behaves towards it.
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// Token authority; the token URL is `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority: String,
    /// Graph host; the API root is `{base_url}/v1.0`.
    pub base_url: String,
    /// Upper bound for one HTTP request (connect + response).
    pub request_timeout: Duration,
    /// Retries of a retryable failure (429/503/504/timeout/transport) after the first attempt.
    pub max_retries: usize,
    /// First backoff delay when the server gave no `Retry-After`.
    pub min_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// Client-side write pacing per (app, tenant).
    pub write_quota: WriteQuota,
    /// Client-side invitation pacing per tenant.
    pub invitation_quota: InvitationQuota,
    /// A cached token is renewed this long before it expires.
    pub token_refresh_margin: Duration,
    /// The token's scope: Graph's resource identifier, not the URL it is called at (so the
    /// emulator, or a proxy, is reached with the public cloud's scope unless told otherwise).
    pub token_scope: String,
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings {
            authority: PUBLIC_AUTHORITY.to_owned(),
            base_url: PUBLIC_GRAPH.to_owned(),
            request_timeout: Duration::from_secs(60),
            max_retries: 6,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            write_quota: WriteQuota::default(),
            invitation_quota: InvitationQuota::default(),
            token_refresh_margin: Duration::from_secs(300),
            token_scope: format!("{PUBLIC_GRAPH}/.default"),
        }
    }
}

/// Requests sent and 429s received, for one (app, tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestStats {
    /// HTTP requests sent to Graph (each retry counts), token requests excluded.
    pub requests: u64,
    /// Responses with status 429, including 429 items inside `$batch`.
    pub throttled: u64,
}

/// A Graph response that succeeded (2xx).
#[derive(Debug, Clone)]
pub struct GraphResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The `client-request-id` sent with the request that produced this response.
    pub client_request_id: String,
}

impl GraphResponse {
    /// Decodes the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body).map_err(|e| GraphError::Decode {
            url: url.to_owned(),
            message: e.to_string(),
        })
    }
}

/// A Graph client for one app in one tenant. Cheap to clone; clones share the token cache,
/// the write limiter and the counters.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) api_root: String,
    /// `{base_url}/beta`, for the few properties Graph has only there.
    beta_root: String,
    origin: String,
    pub(crate) settings: GraphSettings,
    http: reqwest::Client,
    tokens: Arc<TokenProvider>,
    /// Writes per (app, tenant).
    writes: WindowLimiter,
    /// Invitations per tenant: shared by every client of the tenant in a pool.
    invitations: Arc<WindowLimiter>,
    requests: AtomicU64,
    pub(crate) throttled: AtomicU64,
    /// Write operations sent (a `$batch` counts its write items), and invitations among them.
    writes_sent: AtomicU64,
    invitations_sent: AtomicU64,
    /// Requests by endpoint (`PATCH users/{id}`), for `ctsync bench` and metrics.
    endpoints: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("tenant_id", &self.inner.tenant_id)
            .field("client_id", &self.inner.client_id)
            .field("api_root", &self.inner.api_root)
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

/// Names this process in every Graph request's `User-Agent` (`ctsync/VERSION (replica ID)`),
/// so a tenant's audit logs and the emulator's write log tell replicas apart. Set once, before
/// clients are built.
pub fn set_instance_name(name: &str) {
    let _ = INSTANCE.set(name.to_owned());
}

static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn user_agent() -> String {
    match INSTANCE.get() {
        Some(name) => format!("ctsync/{} (replica {name})", env!("CARGO_PKG_VERSION")),
        None => format!("ctsync/{}", env!("CARGO_PKG_VERSION")),
    }
}

impl GraphClient {
    /// Builds a client for `client_id` in `tenant_id`. Prefer [`super::GraphClientPool`] so
    /// that every user of one (app, tenant) shares the token cache and write limiter.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        credential: ClientCredential,
        settings: GraphSettings,
    ) -> Result<GraphClient, GraphError> {
        let invitations = Arc::new(invitation_limiter(&settings));
        GraphClient::with_invitation_limiter(
            tenant_id,
            client_id,
            credential,
            settings,
            invitations,
        )
    }

    /// A client whose invitations are paced by `invitations`, shared with the tenant's other
    /// clients (Graph's invitation quota is per tenant, whatever the app).
    pub(crate) fn with_invitation_limiter(
        tenant_id: &str,
        client_id: &str,
        credential: ClientCredential,
        settings: GraphSettings,
        invitations: Arc<WindowLimiter>,
    ) -> Result<GraphClient, GraphError> {
        let base = settings.base_url.trim_end_matches('/').to_owned();
        let authority = settings.authority.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base)
            .map_err(|e| GraphError::InvalidRequest(format!("bad Graph base URL {base}: {e}")))?;
        let origin = parsed.origin().ascii_serialization();
        let http = reqwest::Client::builder()
            .user_agent(user_agent())
            .build()
            .map_err(|e| GraphError::InvalidRequest(format!("cannot build HTTP client: {e}")))?;
        let tokens = TokenProvider::new(
            tenant_id.to_owned(),
            client_id.to_owned(),
            credential,
            format!("{authority}/{tenant_id}/oauth2/v2.0/token"),
            settings.token_scope.clone(),
            settings.token_refresh_margin,
            http.clone(),
        );
        if settings.write_quota.per.is_zero() || settings.invitation_quota.per.is_zero() {
            return Err(GraphError::InvalidRequest("a quota window is zero".into()));
        }
        let writes = WindowLimiter::new(settings.write_quota.writes, settings.write_quota.per);
        Ok(GraphClient {
            inner: Arc::new(Inner {
                tenant_id: tenant_id.to_owned(),
                client_id: client_id.to_owned(),
                api_root: format!("{base}/v1.0"),
                beta_root: format!("{base}/beta"),
                origin,
                settings,
                http,
                tokens,
                writes,
                invitations,
                requests: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
                writes_sent: AtomicU64::new(0),
                invitations_sent: AtomicU64::new(0),
                endpoints: Mutex::default(),
            }),
        })
    }

    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// `{base_url}/v1.0`.
    pub fn api_root(&self) -> &str {
        &self.inner.api_root
    }

    /// The absolute URL of `path` on Graph's beta endpoint (`{base_url}/beta/{path}`), for the
    /// properties Graph does not have on v1.0 yet.
    pub fn beta_url(&self, path: &str) -> String {
        format!("{}/{}", self.inner.beta_root, path.trim_start_matches('/'))
    }

    /// Requests and throttled responses so far.
    pub fn stats(&self) -> RequestStats {
        RequestStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            throttled: self.inner.throttled.load(Ordering::Relaxed),
        }
    }

    /// Requests sent so far by endpoint: method and path with ids replaced by `{id}`
    /// (`POST invitations`, `PATCH users/{id}`, `GET users/delta`), retries included.
    pub fn requests_by_endpoint(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.endpoints).clone()
    }

    /// Write operations sent so far (each `$batch` write item counts, retries included): what
    /// Graph's write quota counts.
    pub fn writes_sent(&self) -> u64 {
        self.inner.writes_sent.load(Ordering::Relaxed)
    }

    /// Invitations sent so far (alone or inside `$batch`), retries included.
    pub fn invitations_sent(&self) -> u64 {
        self.inner.invitations_sent.load(Ordering::Relaxed)
    }

    /// Tokens issued by the token endpoint to this client so far.
    pub fn tokens_issued(&self) -> u64 {
        self.inner.tokens.tokens_issued()
    }

    /// Fetches (or returns the cached) access token; used by preflight to prove the credentials
    /// work. The token itself is not returned.
    pub async fn check_token(&self) -> Result<(), GraphError> {
        self.inner.tokens.token().await.map(|_| ())
    }

    /// Takes one write permit if one is free right now, without waiting. Lets callers (and
    /// tests) see whether the client-side write quota is exhausted.
    pub fn try_reserve_write(&self) -> bool {
        self.inner.writes.try_acquire()
    }

    /// Whether `url` (an absolute link, e.g. a stored delta link) is on this client's Graph
    /// origin, so [`Self::resolve`] would follow it. Relative paths always are.
    pub fn is_own_link(&self, url: &str) -> bool {
        self.resolve(url).is_ok()
    }

    /// The Graph origin this client talks to (`scheme://host:port`), for messages.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// Resolves a path relative to the API root (`users?$select=id`) or accepts an absolute URL
    /// on the Graph host (a `@odata.nextLink`). Absolute URLs on other hosts are refused so a
    /// hostile link cannot collect our bearer token.
    pub(crate) fn resolve(&self, path_or_url: &str) -> Result<String, GraphError> {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            let parsed = url::Url::parse(path_or_url)
                .map_err(|e| GraphError::InvalidRequest(format!("bad URL {path_or_url}: {e}")))?;
            if parsed.origin().ascii_serialization() != self.inner.origin {
                return Err(GraphError::InvalidRequest(format!(
                    "refusing to follow a link to another host: {path_or_url}"
                )));
            }
            Ok(path_or_url.to_owned())
        } else {
            Ok(format!(
                "{}/{}",
                self.inner.api_root,
                path_or_url.trim_start_matches('/')
            ))
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        let s = &self.inner.settings;
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(s.min_backoff)
            .with_max_delay(s.max_backoff)
            .with_max_times(s.max_retries)
    }

    /// Sends one request with retries. `writes` is how many Graph writes it costs (0 for reads,
    /// 1 for a single POST/PATCH/PUT/DELETE, the number of write items for `$batch`).
    pub async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        extra_headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        writes: u32,
    ) -> Result<GraphResponse, GraphError> {
        let url = self.resolve(path_or_url)?;
        match self
            .send_with_retries(&method, &url, extra_headers, body, writes)
            .await
        {
            // A token the server no longer accepts (expired early, clock skew, revoked
            // session): fetch a fresh one once instead of failing the call.
            Err(GraphError::Api(detail))
                if detail.status == 401 && detail.code == "InvalidAuthenticationToken" =>
            {
                tracing::debug!(tenant_id = %self.inner.tenant_id, "token rejected; renewing");
                self.inner.tokens.invalidate().await;
                self.send_with_retries(&method, &url, extra_headers, body, writes)
                    .await
            }
            other => other,
        }
    }

    async fn send_with_retries(
        &self,
        method: &Method,
        url: &str,
        extra_headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        writes: u32,
    ) -> Result<GraphResponse, GraphError> {
        let attempt = || self.attempt(method, url, extra_headers, body, writes);
        attempt
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(GraphError::is_retryable)
            .adjust(|err, planned| match (err.retry_after(), planned) {
                // The backoff decides whether to retry at all; the server decides how long.
                (Some(server), Some(_)) => Some(server),
                (_, planned) => planned,
            })
            .notify(|err, delay| {
                tracing::warn!(
                    tenant_id = %self.inner.tenant_id,
                    status = err.status(),
                    delay_ms = delay.as_millis() as u64,
                    error = %err,
                    "graph request will be retried"
                );
            })
            .await
    }

    /// Sends a request and decodes its JSON body.
    pub async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, GraphError> {
        let writes = u32::from(method != Method::GET);
        let resp = self.send(method, path_or_url, &[], body, writes).await?;
        resp.json(path_or_url)
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        extra_headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        writes: u32,
    ) -> Result<GraphResponse, GraphError> {
        // Paced before sending so that a healthy run never meets a 429: invitations to the
        // tenant's invitation quota, every write to the (app, tenant) write quota.
        let invitations = invitation_count(method, url, body);
        if invitations > 0 {
            self.inner.invitations.acquire(invitations).await;
        }
        if writes > 0 {
            self.inner.writes.acquire(writes).await;
        }
        self.inner
            .writes_sent
            .fetch_add(u64::from(writes), Ordering::Relaxed);
        self.inner
            .invitations_sent
            .fetch_add(u64::from(invitations), Ordering::Relaxed);
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!(
            "graph_request",
            tenant_id = %self.inner.tenant_id,
            method = %method,
            url = %strip_query(url),
            client_request_id = %client_request_id,
            status = tracing::field::Empty,
        );
        self.attempt_inner(method, url, extra_headers, body, client_request_id)
            .instrument(span)
            .await
    }

    async fn attempt_inner(
        &self,
        method: &Method,
        url: &str,
        extra_headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        client_request_id: String,
    ) -> Result<GraphResponse, GraphError> {
        let token = self.inner.tokens.token().await?;
        let mut headers = HeaderMap::new();
        for (name, value) in extra_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| GraphError::InvalidRequest(format!("bad header {name}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| GraphError::InvalidRequest(format!("bad header value: {e}")))?;
            headers.insert(name, value);
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| GraphError::InvalidRequest("access token is not a header value".into()))?;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        let crid = HeaderValue::from_str(&client_request_id)
            .map_err(|_| GraphError::InvalidRequest("client-request-id".into()))?;
        headers.insert("client-request-id", crid);
        headers.insert("return-client-request-id", HeaderValue::from_static("true"));
        let mut req = self
            .inner
            .http
            .request(method.clone(), url)
            .headers(headers)
            .timeout(self.inner.settings.request_timeout);
        if let Some(body) = body {
            req = req.json(body);
        }
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        *lock(&self.inner.endpoints)
            .entry(endpoint_label(method, url))
            .or_insert(0) += 1;
        let transport = |e: reqwest::Error| {
            let request = Box::new(RequestContext {
                method: method.to_string(),
                url: strip_query(url).to_owned(),
                client_request_id: client_request_id.clone(),
            });
            if e.is_timeout() {
                GraphError::Timeout {
                    request,
                    timeout: self.inner.settings.request_timeout,
                }
            } else {
                GraphError::Transport {
                    request,
                    message: crate::graph::error::with_causes(&e.without_url()),
                }
            }
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        tracing::Span::current().record("status", status);
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?.to_vec();
        if (200..300).contains(&status) {
            tracing::debug!(status, "graph request done");
            return Ok(GraphResponse {
                status,
                headers,
                body,
                client_request_id,
            });
        }
        if status == 429 {
            self.inner.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if status == 401 {
            // The token may have been revoked or expired early: the next attempt fetches a new one.
            self.inner.tokens.invalidate().await;
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after").and_then(|v| error::parse_retry_after(&v));
        let err = error::from_response(
            status,
            &body,
            header("request-id"),
            header("location"),
            &client_request_id,
            retry_after,
        );
        tracing::debug!(status, error = %err, "graph request failed");
        Err(err)
    }
}

/// The invitation limiter for a client with these settings.
pub(crate) fn invitation_limiter(settings: &GraphSettings) -> WindowLimiter {
    WindowLimiter::new(
        settings.invitation_quota.invitations,
        settings.invitation_quota.per,
    )
}

/// Invitations a request carries: 1 for `POST /invitations`, the invitation items of a
/// `$batch`.
fn invitation_count(method: &Method, url: &str, body: Option<&serde_json::Value>) -> u32 {
    if *method != Method::POST {
        return 0;
    }
    let path = strip_query(url);
    if path.ends_with("/invitations") {
        return 1;
    }
    if !path.ends_with("/$batch") {
        return 0;
    }
    body.and_then(|b| b.get("requests"))
        .and_then(serde_json::Value::as_array)
        .map_or(0, |items| {
            items
                .iter()
                .filter(|i| {
                    i.get("method")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|m| m.eq_ignore_ascii_case("POST"))
                        && i.get("url")
                            .and_then(serde_json::Value::as_str)
                            .is_some_and(|u| {
                                strip_query(u).trim_start_matches('/') == "invitations"
                            })
                })
                .count() as u32
        })
}

/// A poisoned counter map only means a thread panicked mid-increment; the map is still valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `PATCH users/{id}` for `PATCH {root}/v1.0/users/5b..?$select=x`: ids (GUIDs, `(appId='…')`
/// keys, anything with a digit that is not a plain word) become `{id}`; a beta URL keeps a
/// `beta/` prefix (`GET beta/policies/…`).
pub fn endpoint_label(method: &Method, url: &str) -> String {
    let path = strip_query(url);
    let mut label = format!("{method} ");
    let path = match path.split_once("/v1.0/") {
        Some((_, p)) => p,
        None => match path.split_once("/beta/") {
            Some((_, p)) => {
                label.push_str("beta/");
                p
            }
            None => path,
        },
    };
    for (i, segment) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        if i > 0 {
            label.push('/');
        }
        if let Some((name, _)) = segment.split_once('(') {
            label.push_str(name);
            label.push_str("({id})");
        } else if segment.len() >= 16 && segment.bytes().any(|b| b.is_ascii_digit()) {
            label.push_str("{id}");
        } else {
            label.push_str(segment);
        }
    }
    label
}

/// The URL without its query (which may carry `$skiptoken`/`$deltatoken`), for logs and errors.
fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

/// Percent-encodes a query value the way Graph's examples show it: spaces as `%20`, OData
/// punctuation (`$ , ' ( ) :`) kept readable.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b','
            | b'\''
            | b'('
            | b')'
            | b':'
            | b'/'
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds `path?$k=v&...` with encoded values.
pub fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let mut out = path.to_owned();
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 && !path.contains('?') {
            '?'
        } else {
            '&'
        });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode_query_value(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_odata_punctuation_and_encode_spaces() {
        assert_eq!(
            with_query(
                "users",
                &[("$filter", "userType eq 'Member'"), ("$select", "id,mail")]
            ),
            "users?$filter=userType%20eq%20'Member'&$select=id,mail"
        );
        assert_eq!(encode_query_value("a#b&c"), "a%23b%26c");
    }

    #[test]
    fn invitations_are_counted_alone_and_inside_batches() {
        let root = "http://127.0.0.1:9/v1.0";
        let invite = format!("{root}/invitations");
        assert_eq!(invitation_count(&Method::POST, &invite, None), 1);
        assert_eq!(invitation_count(&Method::GET, &invite, None), 0);
        let batch = serde_json::json!({"requests": [
            {"id": "1", "method": "POST", "url": "/invitations"},
            {"id": "2", "method": "POST", "url": "invitations"},
            {"id": "3", "method": "PATCH", "url": "/users/x"},
        ]});
        let url = format!("{root}/$batch");
        assert_eq!(invitation_count(&Method::POST, &url, Some(&batch)), 2);
        assert_eq!(
            invitation_count(&Method::PATCH, &format!("{root}/users/x"), None),
            0
        );
    }

    #[test]
    fn endpoint_labels_hide_ids_and_queries() {
        let root = "http://127.0.0.1:9/v1.0";
        let cases = [
            (
                Method::POST,
                format!("{root}/invitations"),
                "POST invitations",
            ),
            (
                Method::PATCH,
                format!("{root}/users/5b000000-0000-4000-8000-000000000001"),
                "PATCH users/{id}",
            ),
            (
                Method::GET,
                format!("{root}/users/delta?$deltatoken=abc123"),
                "GET users/delta",
            ),
            (
                Method::PUT,
                format!("{root}/users/5b000000-0000-4000-8000-000000000001/manager/$ref"),
                "PUT users/{id}/manager/$ref",
            ),
            (
                Method::GET,
                format!("{root}/applications(appId='5c0ffee0')/extensionProperties?$select=name"),
                "GET applications({id})/extensionProperties",
            ),
            (
                Method::GET,
                "http://127.0.0.1:9/beta/policies/crossTenantAccessPolicy/partners/c0000000-0000-4000-8000-000000000001/identitySynchronization?$select=groupSyncInbound".to_owned(),
                "GET beta/policies/crossTenantAccessPolicy/partners/{id}/identitySynchronization",
            ),
        ];
        for (method, url, label) in cases {
            assert_eq!(endpoint_label(&method, &url), label, "{url}");
        }
    }

    #[test]
    fn links_to_other_hosts_are_refused() {
        let client = GraphClient::new(
            "t",
            "c",
            ClientCredential::Secret("s".to_owned().into()),
            GraphSettings {
                base_url: "http://127.0.0.1:9".into(),
                ..GraphSettings::default()
            },
        )
        .unwrap();
        assert!(
            client
                .resolve("http://127.0.0.1:9/v1.0/users?$skiptoken=x")
                .is_ok()
        );
        assert!(matches!(
            client.resolve("https://evil.example/v1.0/users"),
            Err(GraphError::InvalidRequest(_))
        ));
        assert_eq!(
            client.resolve("/users").unwrap(),
            "http://127.0.0.1:9/v1.0/users"
        );
    }
}
