//! Typed Graph errors. Every variant that comes from a Graph response keeps what an operator
//! needs to open a support case: HTTP status, `code`, `message`, `request-id` and the
//! `client-request-id` we sent. No variant ever carries a secret or a token.

use std::time::Duration;

use serde::Deserialize;

/// What Graph said when a request failed, in its error envelope
/// (`{"error":{"code","message","innerError":{"request-id","client-request-id","date"}}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphErrorDetail {
    pub status: u16,
    /// Graph's top-level `error.code` (e.g. `Request_ResourceNotFound`). Branch on this.
    pub code: String,
    pub message: String,
    /// `request-id` from the response header or `innerError`.
    pub request_id: Option<String>,
    /// The `client-request-id` we sent with the request.
    pub client_request_id: String,
    /// `error.details[].code` values (e.g. `ObjectConflict`).
    pub detail_codes: Vec<String>,
    /// `Retry-After` of a 429/503 response, if present.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for GraphErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} {}: {} (request-id {}, client-request-id {})",
            self.status,
            self.code,
            self.message,
            self.request_id.as_deref().unwrap_or("-"),
            self.client_request_id
        )
    }
}

/// Which request failed, for transport-level errors (boxed: it keeps `GraphError` small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub method: String,
    /// Without the query, which may carry `$skiptoken`/`$deltatoken`.
    pub url: String,
    pub client_request_id: String,
}

/// Errors of the Graph client.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status.
    #[error("Graph request failed: {0}")]
    Api(Box<GraphErrorDetail>),
    /// The delta token is expired or unknown (`410 Gone`, `syncStateNotFound`,
    /// `resyncRequired`): the caller must start a full enumeration again.
    #[error(
        "delta token expired or invalid (HTTP {status} {code}); a full resync is required (client-request-id {client_request_id})"
    )]
    DeltaResyncRequired {
        status: u16,
        code: String,
        /// The `Location` header of a 410, if Graph sent one: the initial delta URL to restart with.
        location: Option<String>,
        client_request_id: String,
    },
    /// The token endpoint refused to issue a token (OAuth error, e.g. `invalid_client`).
    #[error("token request for tenant {tenant_id} rejected: {error}: {description}")]
    TokenRejected {
        tenant_id: String,
        error: String,
        description: String,
    },
    /// The token could not be requested at all (network, unparsable response).
    #[error("token request for tenant {tenant_id} failed: {message}")]
    TokenRequest { tenant_id: String, message: String },
    /// The federated token file (workload identity) could not be read.
    #[error("cannot read federated token file {path}: {message}")]
    FederatedTokenFile { path: String, message: String },
    /// The request did not complete within the per-request timeout.
    #[error(
        "{} {} timed out after {timeout:?} (client-request-id {})",
        request.method, request.url, request.client_request_id
    )]
    Timeout {
        request: Box<RequestContext>,
        timeout: Duration,
    },
    /// Connection-level failure.
    #[error(
        "{} {} failed: {message} (client-request-id {})",
        request.method, request.url, request.client_request_id
    )]
    Transport {
        request: Box<RequestContext>,
        message: String,
    },
    /// A success response whose body is not what the resource type expects.
    #[error("unexpected response body from {url}: {message}")]
    Decode { url: String, message: String },
    /// A caller error: e.g. more than 20 requests in one `$batch`, or an unusable URL.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// An error and its chain of causes on one line ("error sending request: connection refused"):
/// the top-level text of a transport error rarely says why.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

impl GraphError {
    /// HTTP status Graph answered with, if the error came from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api(d) => Some(d.status),
            GraphError::DeltaResyncRequired { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Graph's `error.code`, if the error came from a Graph response.
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Api(d) => Some(&d.code),
            GraphError::DeltaResyncRequired { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True for 404 `Request_ResourceNotFound` and friends.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Worth retrying: throttling, service unavailable, gateway timeout, timeouts and transport
    /// failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Api(d) => matches!(d.status, 429 | 503 | 504),
            GraphError::Timeout { .. } | GraphError::Transport { .. } => true,
            _ => false,
        }
    }

    /// `Retry-After` the server asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Api(d) => d.retry_after,
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner_error: Option<InnerError>,
    #[serde(default)]
    details: Vec<DetailEntry>,
}

#[derive(Deserialize)]
struct InnerError {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct DetailEntry {
    #[serde(default)]
    code: String,
}

/// Delta error codes that mean "start over" (delta-query-overview.md, concepts/errors.md).
const RESYNC_CODES: [&str; 2] = ["syncStateNotFound", "resyncRequired"];

/// Builds the typed error for a non-success response.
pub(crate) fn from_response(
    status: u16,
    body: &[u8],
    request_id_header: Option<String>,
    location: Option<String>,
    client_request_id: &str,
    retry_after: Option<Duration>,
) -> GraphError {
    let parsed = serde_json::from_slice::<Envelope>(body).ok();
    let (code, message, inner_request_id, detail_codes) = match parsed {
        Some(env) => (
            env.error.code,
            env.error.message,
            env.error.inner_error.and_then(|i| i.request_id),
            env.error.details.into_iter().map(|d| d.code).collect(),
        ),
        None => (
            String::new(),
            String::from_utf8_lossy(body).chars().take(500).collect(),
            None,
            Vec::new(),
        ),
    };
    if status == 410 || RESYNC_CODES.iter().any(|c| c.eq_ignore_ascii_case(&code)) {
        return GraphError::DeltaResyncRequired {
            status,
            code,
            location,
            client_request_id: client_request_id.to_owned(),
        };
    }
    GraphError::Api(Box::new(GraphErrorDetail {
        status,
        code,
        message,
        request_id: request_id_header.or(inner_request_id),
        client_request_id: client_request_id.to_owned(),
        detail_codes,
        retry_after,
    }))
}

/// Parses `Retry-After` as decimal seconds (Graph sends e.g. `2.128`). HTTP-dates are not used
/// by Graph and are ignored.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_fractional_seconds() {
        assert_eq!(
            parse_retry_after("2.128"),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn envelope_maps_code_message_and_request_id() {
        let body = br#"{"error":{"code":"Request_BadRequest","message":"Another object with the same value for property userPrincipalName already exists.","innerError":{"date":"2020-01-01T00:00:00","request-id":"rid-1","client-request-id":"x"},"details":[{"target":"userPrincipalName","code":"ObjectConflict"}]}}"#;
        let err = from_response(400, body, None, None, "crid", None);
        let GraphError::Api(d) = &err else {
            panic!("expected Api, got {err:?}")
        };
        assert_eq!(d.code, "Request_BadRequest");
        assert_eq!(d.request_id.as_deref(), Some("rid-1"));
        assert_eq!(d.client_request_id, "crid");
        assert_eq!(d.detail_codes, vec!["ObjectConflict".to_owned()]);
        assert!(!err.is_retryable());
    }

    #[test]
    fn gone_and_sync_state_codes_require_resync() {
        let err = from_response(410, b"", None, Some("https://x/delta".into()), "c", None);
        assert!(matches!(
            err,
            GraphError::DeltaResyncRequired {
                location: Some(_),
                ..
            }
        ));
        let body = br#"{"error":{"code":"syncStateNotFound","message":"gone"}}"#;
        let err = from_response(400, body, None, None, "c", None);
        assert!(matches!(
            err,
            GraphError::DeltaResyncRequired { status: 400, .. }
        ));
    }

    #[test]
    fn non_json_body_still_gives_an_error() {
        let err = from_response(
            502,
            b"<html>bad gateway</html>",
            Some("h".into()),
            None,
            "c",
            None,
        );
        assert_eq!(err.status(), Some(502));
        assert!(err.to_string().contains("bad gateway"));
    }
}
