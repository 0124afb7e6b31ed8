//! Graph error envelopes and the library's own error type.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// Errors from starting or running the emulator as a library.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid seed: {0}")]
    Seed(String),
    #[error("invalid state file {path}: {message}")]
    State { path: String, message: String },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// One detail entry of a Graph error (`details[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetail {
    pub target: String,
    pub code: String,
    pub message: Option<String>,
}

/// A Graph error about to be rendered as `{"error":{...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Vec<ErrorDetail>,
    /// Extra members of `innerError` (the throttling body carries `code`, `status`, `message`).
    pub inner_extra: Vec<(String, String)>,
    /// Extra response headers (`Retry-After`, `Location`, throttle headers).
    pub headers: Vec<(String, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: Vec::new(),
            inner_extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    /// Body that is not JSON, or JSON of the wrong shape at the top level.
    pub fn unreadable_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    }

    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    /// A path Graph does not serve: `400 BadRequest` "Resource not found for the segment" (the
    /// OData URI parser refuses it before any resource is looked up, so not a 404).
    pub fn unknown_segment(segment: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    /// 401 with the `WWW-Authenticate` challenge Graph sends (where to get a token).
    pub fn unauthenticated(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
        .with_header(
            "WWW-Authenticate",
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        )
    }

    pub fn unsupported_query() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )
    }

    pub fn not_indexed() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "The request uses a filter property that is not indexed",
        )
    }

    pub fn not_implemented() -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "This operation target is not yet supported.",
        )
    }

    pub fn unknown_property(name: &str, type_name: &str) -> Self {
        Self::bad_request(format!(
            "Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
        ))
    }

    /// Uniqueness violation, as Graph reports duplicate UPN/mail/proxy addresses.
    pub fn conflict(property: &str) -> Self {
        let mut err = Self::bad_request(format!(
            "Another object with the same value for property {property} already exists."
        ));
        err.details.push(ErrorDetail {
            target: property.to_string(),
            code: "ObjectConflict".to_string(),
            message: None,
        });
        err
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The `{"error":{...}}` body with `innerError` filled for this request.
    pub fn body(&self, date: &str, request_id: &str, client_request_id: Option<&str>) -> Value {
        let mut inner = serde_json::Map::new();
        for (k, v) in &self.inner_extra {
            inner.insert(k.clone(), Value::String(v.clone()));
        }
        inner.insert("date".into(), Value::String(date.to_string()));
        inner.insert("request-id".into(), Value::String(request_id.to_string()));
        if let Some(c) = client_request_id {
            inner.insert("client-request-id".into(), Value::String(c.to_string()));
        }
        let mut error = serde_json::Map::new();
        error.insert("code".into(), Value::String(self.code.clone()));
        error.insert("message".into(), Value::String(self.message.clone()));
        error.insert("innerError".into(), Value::Object(inner));
        if !self.details.is_empty() {
            let details: Vec<Value> = self
                .details
                .iter()
                .map(|d| {
                    let mut o = json!({"target": d.target, "code": d.code});
                    if let (Some(m), Some(obj)) = (&d.message, o.as_object_mut()) {
                        obj.insert("message".into(), Value::String(m.clone()));
                    }
                    o
                })
                .collect();
            error.insert("details".into(), Value::Array(details));
        }
        json!({ "error": Value::Object(error) })
    }
}

/// An OAuth (AADSTS) error from the token endpoint; not the Graph envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub aadsts: u32,
    pub description: String,
}

impl OAuthError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        aadsts: u32,
        description: impl Into<String>,
    ) -> Self {
        OAuthError {
            status,
            error,
            aadsts,
            description: description.into(),
        }
    }

    pub fn body(&self, trace_id: &str, correlation_id: &str, timestamp: &str) -> Value {
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.aadsts, self.description
            ),
            "error_codes": [self.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_body_has_details_and_inner_error() {
        let body = GraphError::conflict("userPrincipalName").body("d", "r", Some("c"));
        assert_eq!(body["error"]["code"], "Request_BadRequest");
        assert_eq!(body["error"]["details"][0]["code"], "ObjectConflict");
        assert_eq!(body["error"]["innerError"]["client-request-id"], "c");
    }

    #[test]
    fn oauth_error_description_starts_with_aadsts() {
        let e = OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", 70011, "bad scope");
        let b = e.body("t", "c", "2026-01-01 00:00:00Z");
        assert!(
            b["error_description"]
                .as_str()
                .unwrap_or("")
                .starts_with("AADSTS70011: bad scope\r\nTrace ID: t")
        );
        assert_eq!(b["error_codes"][0], 70011);
    }
}
