//! Errors as JSON in Graph's shape: `{"error":{"code","message"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error: the HTTP status, a machine-readable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unknown_pair(pair: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "PairNotFound",
            format!("no pair named {pair:?}"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ctsync-admin\""),
            );
        }
        response
    }
}

impl From<crate::engine::CommandError> for ApiError {
    fn from(e: crate::engine::CommandError) -> ApiError {
        match e {
            crate::engine::CommandError::UnknownPair(pair) => ApiError::unknown_pair(&pair),
            crate::engine::CommandError::JobStopped(_) => {
                ApiError::new(StatusCode::CONFLICT, "JobNotRunning", e.to_string())
            }
        }
    }
}
