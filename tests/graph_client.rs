//! The Graph client against small scripted Graph servers on 127.0.0.1: tokens (cache, refresh,
//! federated assertion, rejection), paging, delta (incl. resync), `$batch` per-item results and
//! retries, 429 with fractional `Retry-After`, 503/504 backoff, error mapping, timeouts,
//! `client-request-id`, the write limiter and request counters.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ctsync::graph::{
    BatchRequest, ClientCredential, DeltaItem, GraphClient, GraphClientPool, GraphError,
    GraphSettings, InvitationQuota, RemovedReason, User, WriteQuota,
};
use serde_json::{Value, json};

const TENANT: &str = "11111111-1111-4111-8111-111111111111";
const CLIENT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SECRET: &str = "the-client-secret-value";

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Option<Duration>,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
        delay: None,
    }
}

impl Reply {
    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query as received.
    uri: String,
    headers: HeaderMap,
    body: String,
    at: Instant,
}

#[derive(Default)]
struct Script {
    /// Replies per path (without query), popped in order; the last one repeats.
    replies: HashMap<String, VecDeque<Reply>>,
    seen: Vec<Seen>,
    token_lifetime: u64,
    token_error: Option<Reply>,
    tokens_issued: u64,
}

#[derive(Clone)]
struct Mock {
    base: String,
    script: Arc<Mutex<Script>>,
}

impl Mock {
    async fn start() -> Mock {
        let script = Arc::new(Mutex::new(Script {
            token_lifetime: 3599,
            ..Script::default()
        }));
        let app = Router::new().fallback(handle).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Mock { base, script }
    }

    fn on(&self, path: &str, replies: Vec<Reply>) {
        self.script
            .lock()
            .unwrap()
            .replies
            .insert(path.to_owned(), replies.into());
    }

    /// Requests to Graph (token requests excluded).
    fn graph_requests(&self) -> Vec<Seen> {
        self.script
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.uri.starts_with("/v1.0/"))
            .cloned()
            .collect()
    }

    fn token_requests(&self) -> Vec<Seen> {
        self.script
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.uri.ends_with("/oauth2/v2.0/token"))
            .cloned()
            .collect()
    }

    fn settings(&self) -> GraphSettings {
        GraphSettings {
            authority: self.base.clone(),
            base_url: self.base.clone(),
            request_timeout: Duration::from_secs(10),
            max_retries: 3,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..GraphSettings::default()
        }
    }

    fn client(&self) -> GraphClient {
        self.client_with(self.settings())
    }

    fn client_with(&self, settings: GraphSettings) -> GraphClient {
        GraphClient::new(
            TENANT,
            CLIENT,
            ClientCredential::Secret(SECRET.to_owned().into()),
            settings,
        )
        .unwrap()
    }
}

async fn handle(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let reply = {
        let mut s = script.lock().unwrap();
        s.seen.push(Seen {
            method: method.to_string(),
            uri: uri.to_string(),
            headers: headers.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        if path.ends_with("/oauth2/v2.0/token") {
            match s.token_error.clone() {
                Some(r) => r,
                None => {
                    s.tokens_issued += 1;
                    reply(
                        200,
                        json!({
                            "token_type": "Bearer",
                            "expires_in": s.token_lifetime,
                            "access_token": format!("access-token-{}", s.tokens_issued),
                        }),
                    )
                }
            }
        } else {
            match s.replies.get_mut(&path) {
                Some(q) if q.len() > 1 => q.pop_front().unwrap(),
                Some(q) if q.len() == 1 => q[0].clone(),
                _ => reply(
                    404,
                    json!({"error": {"code": "Request_ResourceNotFound", "message": format!("no script for {path}")}}),
                ),
            }
        }
    };
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (k, v) in reply.headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

// ---- tokens -------------------------------------------------------------------------------

#[tokio::test]
async fn token_is_requested_once_and_cached() {
    let mock = Mock::start().await;
    mock.on("/v1.0/users/u1", vec![reply(200, json!({"id": "u1"}))]);
    let client = mock.client();
    for _ in 0..3 {
        client.get_user("u1", &[]).await.unwrap().unwrap();
    }
    let tokens = mock.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].uri, format!("/{TENANT}/oauth2/v2.0/token"));
    let f = form(&tokens[0].body);
    assert_eq!(f["grant_type"], "client_credentials");
    assert_eq!(f["client_id"], CLIENT);
    assert_eq!(f["client_secret"], SECRET);
    // The scope names Graph's resource, not the host it is reached at.
    assert_eq!(f["scope"], "https://graph.microsoft.com/.default");
    for r in mock.graph_requests() {
        assert_eq!(header(&r, "authorization"), "Bearer access-token-1");
    }
    assert_eq!(client.tokens_issued(), 1);
    let shown = format!("{client:?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains("access-token-1"),
        "{shown}"
    );
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    let mock = Mock::start().await;
    // 60 s of lifetime is inside the 300 s refresh margin: every call needs a fresh token.
    mock.script.lock().unwrap().token_lifetime = 60;
    mock.on("/v1.0/users/u1", vec![reply(200, json!({"id": "u1"}))]);
    let client = mock.client();
    client.get_user("u1", &[]).await.unwrap();
    client.get_user("u1", &[]).await.unwrap();
    assert_eq!(mock.token_requests().len(), 2);
    let auth: Vec<String> = mock
        .graph_requests()
        .iter()
        .map(|r| header(r, "authorization").to_owned())
        .collect();
    assert_eq!(auth, vec!["Bearer access-token-1", "Bearer access-token-2"]);
}

#[tokio::test]
async fn federated_assertion_is_read_from_the_file_on_each_token_request() {
    let mock = Mock::start().await;
    mock.script.lock().unwrap().token_lifetime = 1;
    mock.on("/v1.0/users/u1", vec![reply(200, json!({"id": "u1"}))]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "jwt-one\n").unwrap();
    let client = GraphClient::new(
        TENANT,
        CLIENT,
        ClientCredential::FederatedTokenFile(file.clone()),
        mock.settings(),
    )
    .unwrap();
    client.get_user("u1", &[]).await.unwrap();
    // Kubernetes rotates the projected token file; the next token request must use the new one.
    std::fs::write(&file, "jwt-two\n").unwrap();
    client.get_user("u1", &[]).await.unwrap();
    let tokens = mock.token_requests();
    assert_eq!(tokens.len(), 2);
    for (t, jwt) in tokens.iter().zip(["jwt-one", "jwt-two"]) {
        let f = form(&t.body);
        assert_eq!(f["client_assertion"], jwt);
        assert_eq!(
            f["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        assert_eq!(f["client_id"], CLIENT);
        assert!(!f.contains_key("client_secret"));
    }
    std::fs::remove_file(&file).unwrap();
    let err = client.get_user("u1", &[]).await.unwrap_err();
    assert!(
        matches!(err, GraphError::FederatedTokenFile { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn rejected_token_request_is_a_typed_error_without_the_secret() {
    let mock = Mock::start().await;
    mock.script.lock().unwrap().token_error = Some(reply(
        401,
        json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215]
        }),
    ));
    let client = mock.client();
    let err = client.get_user("u1", &[]).await.unwrap_err();
    match &err {
        GraphError::TokenRejected {
            tenant_id,
            error,
            description,
        } => {
            assert_eq!(tenant_id, TENANT);
            assert_eq!(error, "invalid_client");
            assert!(description.starts_with("AADSTS7000215"));
        }
        other => panic!("expected TokenRejected, got {other:?}"),
    }
    assert!(!err.to_string().contains(SECRET));
    assert!(!format!("{err:?}").contains(SECRET));
    assert!(mock.graph_requests().is_empty());
}

#[tokio::test]
async fn rejected_access_token_is_renewed_once() {
    let mock = Mock::start().await;
    let expired = reply(
        401,
        json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}}),
    );
    mock.on(
        "/v1.0/users/u1",
        vec![
            expired.clone(),
            reply(200, json!({"id": "u1"})),
            expired.clone(),
            expired,
        ],
    );
    let client = mock.client();
    client.get_user("u1", &[]).await.unwrap().unwrap();
    let auth: Vec<String> = mock
        .graph_requests()
        .iter()
        .map(|r| header(r, "authorization").to_owned())
        .collect();
    assert_eq!(auth, vec!["Bearer access-token-1", "Bearer access-token-2"]);
    // A token that is refused again right after renewal is an error, not a loop.
    let err = client.get_user("u1", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAuthenticationToken"));
    assert_eq!(mock.token_requests().len(), 3);
    assert_eq!(mock.graph_requests().len(), 4);
}

// ---- reads --------------------------------------------------------------------------------

#[tokio::test]
async fn paging_follows_next_links_and_resends_headers() {
    let mock = Mock::start().await;
    let b = &mock.base;
    mock.on(
        "/v1.0/users",
        vec![
            reply(200, json!({"value": [{"id": "1", "displayName": "One", "unknownThing": 5}], "@odata.nextLink": format!("{b}/v1.0/users?$skiptoken=p2")})),
            reply(200, json!({"value": [], "@odata.nextLink": format!("{b}/v1.0/users?$skiptoken=p3")})),
            reply(200, json!({"value": [{"id": "2", "extension_abc_ctsyncAnchor": "t/1"}]})),
        ],
    );
    let client = mock.client();
    let users: Vec<User> = client
        .list_all(
            "users?$select=id,displayName",
            &[("ConsistencyLevel", "eventual")],
        )
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].display_name.as_deref(), Some("One"));
    assert_eq!(users[1].extensions["extension_abc_ctsyncAnchor"], "t/1");
    let seen = mock.graph_requests();
    let uris: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        vec![
            "/v1.0/users?$select=id,displayName",
            "/v1.0/users?$skiptoken=p2",
            "/v1.0/users?$skiptoken=p3"
        ]
    );
    assert!(
        seen.iter()
            .all(|s| header(s, "consistencylevel") == "eventual")
    );
}

#[tokio::test]
async fn list_users_always_selects() {
    let mock = Mock::start().await;
    mock.on("/v1.0/users", vec![reply(200, json!({"value": []}))]);
    mock.client()
        .list_users(
            Some("userType eq 'Member'"),
            &["extension_abc_ctsyncAnchor"],
        )
        .await
        .unwrap();
    let uri = &mock.graph_requests()[0].uri;
    assert!(uri.contains("$select=id,userPrincipalName,"), "{uri}");
    assert!(uri.contains(",extension_abc_ctsyncAnchor&"), "{uri}");
    // reqwest's URL parser (WHATWG) encodes the quote itself.
    assert!(
        uri.ends_with("&$filter=userType%20eq%20%27Member%27"),
        "{uri}"
    );
}

#[tokio::test]
async fn next_links_to_other_hosts_are_not_followed() {
    let mock = Mock::start().await;
    mock.on(
        "/v1.0/users",
        vec![reply(200, json!({"value": [], "@odata.nextLink": "https://attacker.example/v1.0/users?$skiptoken=x"}))],
    );
    let err = mock
        .client()
        .list_all::<User>("users?$select=id", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::InvalidRequest(_)), "{err:?}");
    assert_eq!(mock.graph_requests().len(), 1);
}

#[tokio::test]
async fn delta_round_collects_pages_removals_and_the_delta_link() {
    let mock = Mock::start().await;
    let b = &mock.base;
    mock.on(
        "/v1.0/users/delta",
        vec![
            reply(
                200,
                json!({"value": [
                {"id": "u1", "displayName": "Adele", "accountEnabled": true},
                {"id": "u2", "@removed": {"reason": "changed"}}
            ], "@odata.nextLink": format!("{b}/v1.0/users/delta?$skiptoken=s2")}),
            ),
            reply(
                200,
                json!({"value": [
                {"id": "u3", "@removed": {"reason": "deleted"}},
                {"id": "u1", "displayName": "Adele V."}
            ], "@odata.deltaLink": format!("{b}/v1.0/users/delta?$deltatoken=d1")}),
            ),
            reply(410, Value::Null)
                .header("location", &format!("{b}/v1.0/users/delta?$deltatoken=")),
        ],
    );
    let client = mock.client();
    let start = client.users_delta_start(&[]);
    assert!(start.starts_with("users/delta?$select=id,"));
    assert!(start.ends_with(",manager"));
    let round = client.users_delta(&start).await.unwrap();
    assert_eq!(round.pages, 2);
    assert_eq!(
        round.delta_link,
        format!("{b}/v1.0/users/delta?$deltatoken=d1")
    );
    assert_eq!(round.items.len(), 4);
    assert!(
        matches!(&round.items[0], DeltaItem::Upsert(u) if u.id == "u1" && u.account_enabled == Some(true))
    );
    assert_eq!(
        round.items[1],
        DeltaItem::Removed {
            id: "u2".into(),
            reason: RemovedReason::Changed
        }
    );
    assert_eq!(
        round.items[2],
        DeltaItem::Removed {
            id: "u3".into(),
            reason: RemovedReason::Deleted
        }
    );
    // The saved watermark has expired: the engine gets a typed error telling it to resync.
    let err = client.users_delta(&round.delta_link).await.unwrap_err();
    match err {
        GraphError::DeltaResyncRequired {
            status,
            location,
            client_request_id,
            ..
        } => {
            assert_eq!(status, 410);
            assert_eq!(
                location.as_deref(),
                Some(format!("{b}/v1.0/users/delta?$deltatoken=").as_str())
            );
            assert!(!client_request_id.is_empty());
        }
        other => panic!("expected DeltaResyncRequired, got {other:?}"),
    }
}

#[tokio::test]
async fn sync_state_not_found_also_requires_resync() {
    let mock = Mock::start().await;
    mock.on(
        "/v1.0/users/delta",
        vec![reply(400, json!({"error": {"code": "syncStateNotFound", "message": "The sync state could not be found."}}))],
    );
    let err = mock
        .client()
        .users_delta("users/delta?$deltatoken=old")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::DeltaResyncRequired { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(
        mock.graph_requests().len(),
        1,
        "a resync error is not retried"
    );
}

// ---- errors, retries, throttling ------------------------------------------------------------

#[tokio::test]
async fn graph_errors_keep_status_code_message_and_request_ids() {
    let mock = Mock::start().await;
    mock.on(
        "/v1.0/invitations",
        vec![reply(403, json!({"error": {
            "code": "Authorization_RequestDenied",
            "message": "Insufficient privileges to complete the operation.",
            "innerError": {"date": "2024-01-01T00:00:00", "request-id": "inner-rid", "client-request-id": "x"}
        }})).header("request-id", "hdr-rid")],
    );
    let client = mock.client();
    let err = client
        .invite(&ctsync::graph::NewInvitation {
            invited_user_email_address: "a@contoso.com".into(),
            invite_redirect_url: "https://myapps.microsoft.com".into(),
            invited_user_display_name: None,
            invited_user_type: "Member".into(),
            send_invitation_message: false,
        })
        .await
        .unwrap_err();
    let sent = mock.graph_requests();
    assert_eq!(sent.len(), 1, "403 is not retried");
    let GraphError::Api(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.status, 403);
    assert_eq!(d.code, "Authorization_RequestDenied");
    assert_eq!(
        d.message,
        "Insufficient privileges to complete the operation."
    );
    assert_eq!(d.request_id.as_deref(), Some("hdr-rid"));
    assert_eq!(d.client_request_id, header(&sent[0], "client-request-id"));
    let text = err.to_string();
    assert!(
        text.contains("HTTP 403 Authorization_RequestDenied") && text.contains("hdr-rid"),
        "{text}"
    );
}

#[tokio::test]
async fn every_request_carries_a_fresh_client_request_id() {
    let mock = Mock::start().await;
    mock.on("/v1.0/users/u1", vec![reply(200, json!({"id": "u1"}))]);
    let client = mock.client();
    client.get_user("u1", &[]).await.unwrap();
    client.get_user("u1", &[]).await.unwrap();
    let ids: Vec<String> = mock
        .graph_requests()
        .iter()
        .map(|s| header(s, "client-request-id").to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    for id in ids {
        uuid::Uuid::parse_str(&id).unwrap();
    }
}

/// A `Write` that appends to a shared buffer, to read what the client logged.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_carry_the_client_request_id_sent_to_graph() {
    let mock = Mock::start().await;
    mock.on(
        "/v1.0/users/u1",
        vec![reply(
            404,
            json!({"error": {"code": "Request_ResourceNotFound", "message": "gone"}}),
        )],
    );
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let client = mock.client();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        assert!(client.get_user("u1", &[]).await.unwrap().is_none());
    }
    let sent = header(&mock.graph_requests()[0], "client-request-id").to_owned();
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("graph request failed"))
        .unwrap_or_else(|| panic!("no failure line in {logs}"));
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["span"]["client_request_id"], sent.as_str(), "{line}");
    assert_eq!(v["span"]["tenant_id"], TENANT);
    assert!(!logs.contains(SECRET) && !logs.contains("access-token-1"));
}

#[tokio::test]
async fn throttled_request_waits_the_fractional_retry_after_then_succeeds() {
    let mock = Mock::start().await;
    mock.on(
        "/v1.0/users/u1",
        vec![
            reply(429, json!({"error": {"code": "TooManyRequests", "message": "Please retry again later."}}))
                .header("retry-after", "0.25"),
            reply(200, json!({"id": "u1"})),
        ],
    );
    // A backoff far longer than Retry-After: finishing quickly proves the header was used,
    // and the gap below proves it was waited for.
    let client = mock.client_with(GraphSettings {
        min_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(30),
        ..mock.settings()
    });
    tokio::time::timeout(Duration::from_secs(20), client.get_user("u1", &[]))
        .await
        .expect("Retry-After, not the 30 s backoff, decides the wait")
        .unwrap()
        .unwrap();
    let seen = mock.graph_requests();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].at.duration_since(seen[0].at) >= Duration::from_millis(250));
    assert_ne!(
        header(&seen[0], "client-request-id"),
        header(&seen[1], "client-request-id")
    );
    let stats = client.stats();
    assert_eq!((stats.requests, stats.throttled), (2, 1));
}

#[tokio::test]
async fn service_unavailable_is_retried_with_backoff() {
    let mock = Mock::start().await;
    let unavailable = reply(
        503,
        json!({"error": {"code": "serviceNotAvailable", "message": "Service unavailable"}}),
    );
    mock.on(
        "/v1.0/users/u1",
        vec![
            unavailable.clone(),
            unavailable,
            reply(200, json!({"id": "u1"})),
        ],
    );
    let client = mock.client();
    assert!(client.get_user("u1", &[]).await.unwrap().is_some());
    assert_eq!(client.stats().requests, 3);
    assert_eq!(client.stats().throttled, 0);
}

#[tokio::test]
async fn retries_stop_at_the_limit() {
    let mock = Mock::start().await;
    mock.on(
        "/v1.0/users/u1",
        vec![reply(
            504,
            json!({"error": {"code": "GatewayTimeout", "message": "late"}}),
        )],
    );
    let client = mock.client_with(GraphSettings {
        max_retries: 2,
        ..mock.settings()
    });
    let err = client.get_user("u1", &[]).await.unwrap_err();
    assert_eq!(err.status(), Some(504));
    assert_eq!(mock.graph_requests().len(), 3);
}

#[tokio::test]
async fn a_slow_response_times_out() {
    let mock = Mock::start().await;
    let mut slow = reply(200, json!({"id": "u1"}));
    slow.delay = Some(Duration::from_secs(30));
    mock.on("/v1.0/users/u1", vec![slow]);
    let client = mock.client_with(GraphSettings {
        request_timeout: Duration::from_millis(200),
        max_retries: 0,
        ..mock.settings()
    });
    let err = client.get_user("u1", &[]).await.unwrap_err();
    assert!(matches!(err, GraphError::Timeout { .. }), "{err:?}");
}

// ---- $batch -------------------------------------------------------------------------------

#[tokio::test]
async fn batch_returns_per_item_results_and_retries_only_throttled_items() {
    let mock = Mock::start().await;
    mock.on(
        "/v1.0/$batch",
        vec![
            reply(200, json!({"responses": [
                {"id": "2", "status": 404, "headers": {"content-type": "application/json"},
                 "body": {"error": {"code": "Request_ResourceNotFound", "message": "Resource 'x' does not exist."}}},
                {"id": "3", "status": 429, "headers": {"Retry-After": "0.01"},
                 "body": {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}},
                {"id": "1", "status": 204, "headers": {}}
            ]})),
            reply(200, json!({"responses": [{"id": "3", "status": 204, "headers": {}}]})),
        ],
    );
    let client = mock.client();
    let requests = vec![
        BatchRequest::new("1", reqwest::Method::PATCH, "/users/a")
            .with_json(json!({"department": "Sales"})),
        BatchRequest::new("2", reqwest::Method::PATCH, "/users/x")
            .with_json(json!({"department": "Sales"})),
        BatchRequest::new("3", reqwest::Method::DELETE, "/users/b"),
    ];
    let result = client.batch(&requests).await.unwrap();
    let statuses: Vec<(String, u16)> = result
        .responses
        .iter()
        .map(|r| (r.id.clone(), r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![("1".into(), 204), ("2".into(), 404), ("3".into(), 204)]
    );
    let err = result.responses[1]
        .error(&result.client_request_id)
        .unwrap();
    assert!(err.is_not_found());
    assert_eq!(err.code(), Some("Request_ResourceNotFound"));
    assert!(result.responses[0].error("c").is_none());
    let sent = mock.graph_requests();
    assert_eq!(sent.len(), 2);
    let first: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(first["requests"].as_array().unwrap().len(), 3);
    assert_eq!(
        first["requests"][0]["headers"]["Content-Type"],
        "application/json"
    );
    let second: Value = serde_json::from_str(&sent[1].body).unwrap();
    assert_eq!(
        second["requests"],
        json!([{"id": "3", "method": "DELETE", "url": "/users/b"}])
    );
    assert!(sent[1].at.duration_since(sent[0].at) >= Duration::from_millis(10));
    assert_eq!(client.stats().throttled, 1);
}

#[tokio::test]
async fn batch_limits_are_enforced_before_sending() {
    let mock = Mock::start().await;
    let client = mock.client();
    let too_many: Vec<BatchRequest> = (0..21)
        .map(|i| BatchRequest::new(i.to_string(), reqwest::Method::GET, "/users"))
        .collect();
    assert!(matches!(
        client.batch(&too_many).await,
        Err(GraphError::InvalidRequest(_))
    ));
    let dup = vec![
        BatchRequest::new("a", reqwest::Method::GET, "/users"),
        BatchRequest::new("A", reqwest::Method::GET, "/groups"),
    ];
    assert!(matches!(
        client.batch(&dup).await,
        Err(GraphError::InvalidRequest(_))
    ));
    assert!(mock.graph_requests().is_empty());
}

// ---- write limiter and counters -------------------------------------------------------------

/// The most requests that arrived within any `window`.
fn busiest_window(seen: &[Seen], window: Duration) -> usize {
    let mut at: Vec<Instant> = seen.iter().map(|s| s.at).collect();
    at.sort();
    (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t < at[i] + window).count())
        .max()
        .unwrap_or(0)
}

/// Graph counts writes and invitations in windows: a client that bursts its whole quota and
/// then keeps a steady rate (a token bucket) sends up to twice the quota in one window and
/// meets 429s. Paced on a sliding window, no window ever holds more than the quota, even with
/// many writers at once.
#[tokio::test]
async fn concurrent_writes_and_invitations_never_exceed_a_quota_window() {
    let mock = Mock::start().await;
    mock.on("/v1.0/users/u1", vec![reply(204, Value::Null)]);
    mock.on("/v1.0/invitations", vec![reply(201, json!({"id": "i"}))]);
    let client = mock.client_with(GraphSettings {
        write_quota: WriteQuota {
            writes: NonZeroU32::new(6).unwrap(),
            per: Duration::from_millis(600),
        },
        invitation_quota: InvitationQuota {
            invitations: NonZeroU32::new(3).unwrap(),
            per: Duration::from_millis(400),
        },
        ..mock.settings()
    });
    let mut change = serde_json::Map::new();
    change.insert("jobTitle".into(), json!("Engineer"));
    let patches = (0..10).map(|_| client.update_user("u1", &change));
    let invitation = json!({"invitedUserEmailAddress": "a@b.c"});
    let invites = (0..5).map(|_| {
        client.send(
            reqwest::Method::POST,
            "invitations",
            &[],
            Some(&invitation),
            1,
        )
    });
    let (patched, invited) = tokio::join!(
        futures::future::join_all(patches),
        futures::future::join_all(invites)
    );
    assert!(patched.iter().all(Result::is_ok) && invited.iter().all(Result::is_ok));
    let seen = mock.graph_requests();
    assert_eq!(seen.len(), 15);
    assert!(busiest_window(&seen, Duration::from_millis(600)) <= 6);
    let invitations: Vec<Seen> = seen
        .into_iter()
        .filter(|s| s.uri.ends_with("/invitations"))
        .collect();
    assert!(busiest_window(&invitations, Duration::from_millis(400)) <= 3);
    assert_eq!(client.writes_sent(), 15);
    assert_eq!(client.invitations_sent(), 5);
}

#[tokio::test]
async fn writes_are_paced_by_the_client_side_quota_and_reads_are_not() {
    let mock = Mock::start().await;
    mock.on("/v1.0/users/u1", vec![reply(204, Value::Null)]);
    let client = mock.client_with(GraphSettings {
        write_quota: WriteQuota {
            writes: NonZeroU32::new(3).unwrap(),
            per: Duration::from_secs(3600),
        },
        ..mock.settings()
    });
    mock.on("/v1.0/users/u2", vec![reply(200, json!({"id": "u2"}))]);
    for _ in 0..5 {
        client.get_user("u2", &[]).await.unwrap();
    }
    let mut change = serde_json::Map::new();
    change.insert("jobTitle".into(), json!("Engineer"));
    client.update_user("u1", &change).await.unwrap();
    client.delete_user("u1").await.unwrap();
    // Two of three write permits used; reads took none. The third is free, the fourth is not
    // (it would wait about 20 minutes for the bucket to refill).
    assert!(client.try_reserve_write());
    assert!(!client.try_reserve_write());
    let methods: Vec<String> = mock
        .graph_requests()
        .iter()
        .map(|s| s.method.clone())
        .collect();
    assert_eq!(methods.iter().filter(|m| *m == "GET").count(), 5);
    assert_eq!(methods[5..], ["PATCH".to_owned(), "DELETE".to_owned()]);
}

#[tokio::test]
async fn pool_shares_one_client_per_app_and_tenant() {
    let mock = Mock::start().await;
    mock.on("/v1.0/users/u1", vec![reply(200, json!({"id": "u1"}))]);
    let pool = GraphClientPool::new();
    let cred = || ClientCredential::Secret(SECRET.to_owned().into());
    let a = pool
        .get_or_create(TENANT, CLIENT, cred(), mock.settings())
        .unwrap();
    let b = pool
        .get_or_create(&TENANT.to_uppercase(), CLIENT, cred(), mock.settings())
        .unwrap();
    a.get_user("u1", &[]).await.unwrap();
    b.get_user("u1", &[]).await.unwrap();
    assert_eq!(mock.token_requests().len(), 1, "one token cache");
    assert_eq!(a.stats().requests, 2);
    assert_eq!(pool.stats(), vec![(TENANT.to_owned(), a.stats())]);
}

// ---- typed calls --------------------------------------------------------------------------

#[tokio::test]
async fn typed_calls_use_the_documented_paths_and_select() {
    let mock = Mock::start().await;
    let source = "22222222-2222-4222-8222-222222222222";
    mock.on(
        &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{source}/identitySynchronization"),
        vec![reply(200, json!({"tenantId": source, "displayName": "x", "userSyncInbound": {"isSyncAllowed": true}}))],
    );
    mock.on(
        &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{source}"),
        vec![reply(200, json!({"tenantId": source, "automaticUserConsentSettings": {"inboundAllowed": true, "outboundAllowed": null}, "crossCloudMeetingConfiguration": {}}))],
    );
    mock.on(
        "/v1.0/invitations",
        vec![reply(201, json!({"id": "inv1", "status": "Completed", "invitedUserType": "Member", "invitedUser": {"id": "new-user"}}))],
    );
    mock.on(
        "/v1.0/groups/g1/members",
        vec![reply(200, json!({"value": [{"@odata.type": "#microsoft.graph.user", "id": "u1"}, {"@odata.type": "#microsoft.graph.group", "id": "g2"}]}))],
    );
    mock.on(
        "/v1.0/servicePrincipals/sp1/appRoleAssignedTo",
        vec![reply(200, json!({"value": [{"id": "x", "appRoleId": "00000000-0000-0000-0000-000000000000", "principalId": "g1", "principalType": "Group"}]}))],
    );
    mock.on(
        "/v1.0/directory/deletedItems/u9/restore",
        vec![reply(
            200,
            json!({"@odata.type": "#microsoft.graph.user", "id": "u9"}),
        )],
    );
    mock.on("/v1.0/users/u1/manager/$ref", vec![reply(204, Value::Null)]);
    let client = mock.client();

    let sync = client
        .identity_synchronization(source)
        .await
        .unwrap()
        .unwrap();
    assert!(sync.inbound_sync_allowed());
    let partner = client.cross_tenant_partner(source).await.unwrap().unwrap();
    assert_eq!(
        partner
            .automatic_user_consent_settings
            .unwrap()
            .inbound_allowed,
        Some(true)
    );
    assert!(
        client
            .cross_tenant_partner("33333333-3333-4333-8333-333333333333")
            .await
            .unwrap()
            .is_none()
    );
    let inv = client
        .invite(&ctsync::graph::NewInvitation {
            invited_user_email_address: "adele@contoso.com".into(),
            invite_redirect_url: "https://myapps.microsoft.com".into(),
            invited_user_display_name: Some("Adele".into()),
            invited_user_type: "Member".into(),
            send_invitation_message: false,
        })
        .await
        .unwrap();
    assert_eq!(inv.invited_user.id, "new-user");
    let members = client.group_members("g1", false).await.unwrap();
    assert!(members[0].is_user() && members[1].is_group());
    let assignments = client.app_role_assigned_to("sp1").await.unwrap();
    assert_eq!(assignments[0].principal_type.as_deref(), Some("Group"));
    assert_eq!(client.restore_deleted("u9").await.unwrap().id, "u9");
    client.set_manager("u1", "m1").await.unwrap();
    client.remove_manager("u1").await.unwrap();

    let seen = mock.graph_requests();
    let reads: Vec<&Seen> = seen.iter().filter(|s| s.method == "GET").collect();
    assert!(
        reads.iter().all(|s| s.uri.contains("$select=")),
        "{:?}",
        reads.iter().map(|s| &s.uri).collect::<Vec<_>>()
    );
    let invite: Value = serde_json::from_str(
        &seen
            .iter()
            .find(|s| s.uri == "/v1.0/invitations")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(invite["sendInvitationMessage"], false);
    assert_eq!(invite["invitedUserType"], "Member");
    let put = seen.iter().find(|s| s.method == "PUT").unwrap();
    let body: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["@odata.id"], format!("{}/v1.0/users/m1", mock.base));
}

// ---- end to end against the emulator ------------------------------------------------------

mod against_emulator {
    use super::*;
    use ctsync::emulator::{self, EmulatorHandle, EmulatorOptions, Seed};

    const SOURCE: &str = "a0a0a0a0-0000-4000-8000-00000000000a";
    const TARGET: &str = "b0b0b0b0-0000-4000-8000-00000000000b";
    const APP: &str = "c0c0c0c0-0000-4000-8000-00000000000c";
    const APP_SECRET: &str = "emulator-app-secret";

    fn seed() -> Seed {
        Seed::from_yaml(&format!(
            r#"
apps:
  - appId: {APP}
    clientSecrets: [{APP_SECRET}]
    federatedCredentials:
      - {{ issuer: "https://k8s.example", subject: "system:serviceaccount:ctsync:ctsync" }}
tenants:
  - id: {SOURCE}
    domains: [contoso.onmicrosoft.com]
    servicePrincipals:
      - appId: {APP}
        id: 5e5e5e5e-0000-4000-8000-000000000001
        permissions: [Directory.ReadWrite.All, User.ReadWrite.All, Policy.Read.All, GroupMember.Read.All, Application.ReadWrite.All]
    users:
      - {{ userPrincipalName: adele@contoso.onmicrosoft.com, displayName: Adele, accountEnabled: true, userType: Member, department: Sales }}
      - {{ userPrincipalName: alex@contoso.onmicrosoft.com, displayName: Alex, accountEnabled: true, userType: Member, manager: adele@contoso.onmicrosoft.com }}
      - {{ userPrincipalName: bianca@contoso.onmicrosoft.com, displayName: Bianca, accountEnabled: false, userType: Member }}
    groups:
      - {{ displayName: Collaborators, members: [adele@contoso.onmicrosoft.com, alex@contoso.onmicrosoft.com] }}
    appRoleAssignments:
      - {{ appId: {APP}, principal: Collaborators }}
    partners:
      - tenantId: {TARGET}
        automaticUserConsentSettings: {{ outboundAllowed: true }}
  - id: {TARGET}
    domains: [fabrikam.onmicrosoft.com]
    servicePrincipals:
      - appId: {APP}
        permissions: [Directory.ReadWrite.All, User.ReadWrite.All, User.Invite.All, User.DeleteRestore.All, Policy.Read.All, Application.ReadWrite.All]
    applications:
      - appId: {APP}
        id: 0a0a0a0a-0000-4000-8000-0000000000aa
        extensionProperties: [{{ name: ctsyncAnchor }}]
    partners:
      - tenantId: {SOURCE}
        automaticUserConsentSettings: {{ inboundAllowed: true }}
        identitySynchronization: {{ displayName: from contoso, userSyncInbound: {{ isSyncAllowed: true }} }}
"#
        ))
        .unwrap()
    }

    async fn start() -> EmulatorHandle {
        emulator::spawn(
            seed(),
            EmulatorOptions {
                page_size: 2,
                delta_page_size: 2,
                ..EmulatorOptions::default()
            },
        )
        .await
        .unwrap()
    }

    fn settings(emu: &EmulatorHandle) -> GraphSettings {
        GraphSettings {
            authority: emu.base_url(),
            base_url: emu.base_url(),
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..GraphSettings::default()
        }
    }

    fn client(emu: &EmulatorHandle, tenant: &str) -> GraphClient {
        GraphClient::new(
            tenant,
            APP,
            ClientCredential::Secret(APP_SECRET.to_owned().into()),
            settings(emu),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn reads_pages_and_follows_delta_until_a_resync() {
        let emu = start().await;
        let source = client(&emu, SOURCE);
        let users = source.list_users(None, &[]).await.unwrap();
        assert_eq!(users.len(), 3, "three users over two pages of two");
        let adele = users
            .iter()
            .find(|u| u.display_name.as_deref() == Some("Adele"))
            .unwrap();
        assert_eq!(adele.department.as_deref(), Some("Sales"));
        assert_eq!(
            adele.account_enabled,
            Some(true),
            "$select returns accountEnabled"
        );

        let round = source
            .users_delta(&source.users_delta_start(&[]))
            .await
            .unwrap();
        assert!(round.pages >= 2);
        assert_eq!(
            round
                .items
                .iter()
                .filter(|i| matches!(i, DeltaItem::Upsert(_)))
                .count(),
            3
        );
        let alex = round
            .items
            .iter()
            .find_map(|i| match i {
                DeltaItem::Upsert(u) if u.display_name.as_deref() == Some("Alex") => Some(u),
                _ => None,
            })
            .unwrap();
        assert_eq!(alex.manager_change(), Some(Some(adele.id.as_str())));

        // A change and a soft delete show up in the next round.
        let mut change = serde_json::Map::new();
        change.insert("department".into(), json!("Marketing"));
        source.update_user(&adele.id, &change).await.unwrap();
        source.delete_user(&alex.id).await.unwrap();
        let next = source.users_delta(&round.delta_link).await.unwrap();
        assert!(next.items.iter().any(|i| matches!(i, DeltaItem::Upsert(u) if u.id == adele.id && u.department.as_deref() == Some("Marketing"))));
        assert!(next.items.contains(&DeltaItem::Removed {
            id: alex.id.clone(),
            reason: RemovedReason::Changed
        }));

        // Seven days later the watermark is gone: a typed resync error with the restart URL.
        // Both answers Graph documents (400, and 410 Gone with a Location) are the same typed error.
        emu.advance_clock(chrono::Duration::days(8));
        let err = source.users_delta(&next.delta_link).await.unwrap_err();
        match err {
            GraphError::DeltaResyncRequired {
                status,
                code,
                location,
                ..
            } => {
                assert_eq!((status, code.as_str()), (400, "syncStateNotFound"));
                assert_eq!(location, None);
            }
            other => panic!("expected DeltaResyncRequired, got {other:?}"),
        }
        emu.set_expired_delta_status(410);
        let err = source.users_delta(&next.delta_link).await.unwrap_err();
        match err {
            GraphError::DeltaResyncRequired {
                status,
                code,
                location,
                ..
            } => {
                assert_eq!((status, code.as_str()), (410, "syncStateNotFound"));
                assert!(location.unwrap().ends_with("/users/delta?$deltatoken="));
            }
            other => panic!("expected DeltaResyncRequired, got {other:?}"),
        }
        emu.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn writes_invitation_update_manager_delete_and_restore() {
        let emu = start().await;
        let target = client(&emu, TARGET);
        let source = client(&emu, SOURCE);

        let sync = target
            .identity_synchronization(SOURCE)
            .await
            .unwrap()
            .unwrap();
        assert!(sync.inbound_sync_allowed());
        let partner = target.cross_tenant_partner(SOURCE).await.unwrap().unwrap();
        assert_eq!(
            partner
                .automatic_user_consent_settings
                .unwrap()
                .inbound_allowed,
            Some(true)
        );
        let out = source.cross_tenant_partner(TARGET).await.unwrap().unwrap();
        assert_eq!(
            out.automatic_user_consent_settings
                .unwrap()
                .outbound_allowed,
            Some(true)
        );

        let extensions = target
            .extension_properties("0a0a0a0a-0000-4000-8000-0000000000aa")
            .await
            .unwrap();
        let anchor = format!("extension_{}_ctsyncAnchor", APP.replace('-', ""));
        assert_eq!(extensions[0].name, anchor);
        let created = target
            .create_extension_property(
                "0a0a0a0a-0000-4000-8000-0000000000aa",
                &ctsync::graph::ExtensionProperty {
                    id: None,
                    name: "costCenter".into(),
                    data_type: "String".into(),
                    target_objects: vec!["User".into()],
                    is_multi_valued: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            created.name,
            format!("extension_{}_costCenter", APP.replace('-', ""))
        );
        assert_eq!(
            target
                .extension_properties("0a0a0a0a-0000-4000-8000-0000000000aa")
                .await
                .unwrap()
                .len(),
            2
        );

        let invitation = |mail: &str| ctsync::graph::NewInvitation {
            invited_user_email_address: mail.into(),
            invite_redirect_url: "https://myapps.microsoft.com".into(),
            invited_user_display_name: None,
            invited_user_type: "Member".into(),
            send_invitation_message: false,
        };
        let adele = target
            .invite(&invitation("adele@contoso.onmicrosoft.com"))
            .await
            .unwrap();
        let boss = target
            .invite(&invitation("boss@contoso.onmicrosoft.com"))
            .await
            .unwrap();
        let mut patch = serde_json::Map::new();
        patch.insert("displayName".into(), json!("Adele Vance"));
        patch.insert(anchor.clone(), json!(format!("{SOURCE}/adele")));
        target
            .update_user(&adele.invited_user.id, &patch)
            .await
            .unwrap();
        target
            .set_manager(&adele.invited_user.id, &boss.invited_user.id)
            .await
            .unwrap();

        let user = target
            .get_user(&adele.invited_user.id, &[&anchor])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.display_name.as_deref(), Some("Adele Vance"));
        assert_eq!(user.user_type.as_deref(), Some("Member"));
        assert_eq!(user.creation_type.as_deref(), Some("Invitation"));
        assert_eq!(user.extensions[&anchor], json!(format!("{SOURCE}/adele")));
        let found = target
            .list_users(Some(&format!("{anchor} eq '{SOURCE}/adele'")), &[&anchor])
            .await
            .unwrap();
        assert_eq!(found.len(), 1);

        target.remove_manager(&adele.invited_user.id).await.unwrap();
        target.remove_manager(&adele.invited_user.id).await.unwrap();
        target.delete_user(&adele.invited_user.id).await.unwrap();
        assert!(
            target
                .get_user(&adele.invited_user.id, &[])
                .await
                .unwrap()
                .is_none()
        );
        let deleted = target.deleted_users(None, &[]).await.unwrap();
        assert!(
            deleted
                .iter()
                .any(|u| u.id == adele.invited_user.id && u.deleted_date_time.is_some())
        );
        let restored = target
            .restore_deleted(&adele.invited_user.id)
            .await
            .unwrap();
        assert_eq!(restored.id, adele.invited_user.id, "same object id");
        assert!(
            target
                .get_user(&adele.invited_user.id, &[])
                .await
                .unwrap()
                .is_some()
        );
        emu.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn assignments_groups_and_batches() {
        let emu = start().await;
        let source = client(&emu, SOURCE);
        let assignments = source
            .app_role_assigned_to("5e5e5e5e-0000-4000-8000-000000000001")
            .await
            .unwrap();
        assert_eq!(assignments.len(), 1);
        assert_eq!(assignments[0].principal_type.as_deref(), Some("Group"));
        let members = source
            .group_members(&assignments[0].principal_id, false)
            .await
            .unwrap();
        assert_eq!(members.len(), 2);
        assert!(members.iter().all(|m| m.is_user()));

        let result = source
            .batch(&[
                BatchRequest::new(
                    "1",
                    reqwest::Method::PATCH,
                    format!("/users/{}", members[0].id),
                )
                .with_json(json!({"jobTitle": "Lead"})),
                BatchRequest::new(
                    "2",
                    reqwest::Method::PATCH,
                    "/users/00000000-0000-4000-8000-000000000000",
                )
                .with_json(json!({"jobTitle": "Ghost"})),
                BatchRequest::new(
                    "3",
                    reqwest::Method::GET,
                    format!("/users/{}?$select=id,jobTitle", members[0].id),
                ),
            ])
            .await
            .unwrap();
        assert_eq!(result.responses[0].status, 204);
        let err = result.responses[1]
            .error(&result.client_request_id)
            .unwrap();
        assert_eq!(
            (err.status(), err.code()),
            (Some(404), Some("Request_ResourceNotFound"))
        );
        assert_eq!(result.responses[2].status, 200);
        emu.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn throttling_from_the_emulator_is_waited_out() {
        let emu = start().await;
        let source = client(&emu, SOURCE);
        source.list_users(None, &[]).await.unwrap();
        let control = reqwest::Client::new();
        let resp = control
            .post(format!("{}/_emulator/faults/fail-next", emu.base_url()))
            .json(&json!({"pathContains": "/users", "count": 2, "status": 429, "code": "TooManyRequests", "retryAfter": 0.05}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let before = source.stats();
        assert_eq!(source.list_users(None, &[]).await.unwrap().len(), 3);
        let after = source.stats();
        assert_eq!(after.throttled - before.throttled, 2);
        assert_eq!(
            after.requests - before.requests,
            3,
            "two 429s, then the one page ($top=999)"
        );
        emu.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn federated_workload_identity_and_bad_secrets() {
        use base64::Engine as _;
        let emu = start().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let payload = json!({
            "iss": "https://k8s.example",
            "sub": "system:serviceaccount:ctsync:ctsync",
            "aud": "api://AzureADTokenExchange",
            "exp": chrono::Utc::now().timestamp() + 3600,
        });
        let jwt = format!(
            "e30.{}.sig",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        std::fs::write(&file, jwt).unwrap();
        let federated = GraphClient::new(
            SOURCE,
            APP,
            ClientCredential::FederatedTokenFile(file),
            settings(&emu),
        )
        .unwrap();
        assert_eq!(federated.list_users(None, &[]).await.unwrap().len(), 3);

        let wrong = GraphClient::new(
            SOURCE,
            APP,
            ClientCredential::Secret("not-the-secret".to_owned().into()),
            settings(&emu),
        )
        .unwrap();
        let err = wrong.check_token().await.unwrap_err();
        assert!(
            matches!(&err, GraphError::TokenRejected { error, .. } if error == "invalid_client"),
            "{err:?}"
        );
        assert!(!err.to_string().contains("not-the-secret"));
        emu.shutdown().await.unwrap();
    }
}
