//! One Graph request as handlers see it, and what they answer.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::errors::GraphError;
use super::model::Obj;
use super::odata::Query;

/// Runtime settings handlers read (a copy of the relevant options).
#[derive(Debug, Clone)]
pub struct Settings {
    pub page_size: usize,
    pub delta_page_size: usize,
    pub delta_token_retention: chrono::Duration,
    /// Status of an expired delta token: 400 (default) or 410 (with `Location`).
    pub expired_delta_status: StatusCode,
    pub soft_delete_retention: chrono::Duration,
}

/// Graph's two API versions: `/v1.0` and `/beta`. Both reach the same directory; a few
/// properties exist only on beta (identitySynchronization's `groupSyncInbound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    /// The path segment: `v1.0` or `beta`.
    pub fn segment(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

#[derive(Debug)]
pub struct Call<'a> {
    pub method: Method,
    pub version: ApiVersion,
    /// Path segments after `/v1.0/` (or `/beta/`), percent-decoded.
    pub segments: Vec<String>,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub permissions: &'a BTreeSet<String>,
    pub now: DateTime<Utc>,
    /// `{base}/v1.0` (or `{base}/beta`), for `@odata.context` and links.
    pub graph_base: &'a str,
    pub settings: &'a Settings,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    Json(Value),
    Text(String),
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: ReplyBody,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: ReplyBody::Json(body),
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Reply {
        Self::json(StatusCode::OK, body)
    }

    pub fn created(body: Value) -> Reply {
        Self::json(StatusCode::CREATED, body)
    }

    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: ReplyBody::Empty,
            headers: Vec::new(),
        }
    }

    pub fn text(body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: ReplyBody::Text(body),
            headers: Vec::new(),
        }
    }
}

pub type Outcome = Result<Reply, GraphError>;

impl Call<'_> {
    /// 403 unless the token carries one of `any_of`.
    pub fn require(&self, any_of: &[&str]) -> Result<(), GraphError> {
        if any_of.iter().any(|p| self.permissions.contains(*p)) {
            Ok(())
        } else {
            Err(GraphError::forbidden())
        }
    }

    pub fn query(&self) -> Result<Query, GraphError> {
        Query::parse(self.raw_query)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `ConsistencyLevel: eventual` present (advanced query capabilities).
    pub fn eventual(&self) -> bool {
        self.header("consistencylevel")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
    }

    /// The body as a JSON object, or Graph's 400 for anything else.
    pub fn json_object(&self) -> Result<Obj, GraphError> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(o)) => Ok(o),
            _ => Err(GraphError::unreadable_body()),
        }
    }

    pub fn context(&self, fragment: &str) -> String {
        format!("{}/$metadata#{fragment}", self.graph_base)
    }
}

/// Reads `{"@odata.id": ".../{id}"}` and returns the trailing id.
pub fn reference_id(body: &Obj) -> Result<String, GraphError> {
    let url = body
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("Missing '@odata.id' in the request body."))?;
    let id = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let id = id
        .trim_start_matches("directoryObjects('")
        .trim_end_matches("')");
    if id.is_empty() {
        return Err(GraphError::bad_request(
            "Invalid '@odata.id' in the request body.",
        ));
    }
    Ok(id.to_string())
}

/// One page of `items`, and the offset of the next page if there is one.
pub fn page<T: Clone>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Option<usize>) {
    let start = offset.min(items.len());
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then_some(end);
    (items[start..end].to_vec(), next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_id_takes_the_last_segment() {
        let body = json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/abc"});
        assert_eq!(
            reference_id(body.as_object().unwrap_or(&Obj::new())).ok(),
            Some("abc".to_string())
        );
        assert!(reference_id(&Obj::new()).is_err());
    }

    #[test]
    fn page_reports_the_next_offset() {
        let items = [1, 2, 3, 4, 5];
        assert_eq!(page(&items, 0, 2), (vec![1, 2], Some(2)));
        assert_eq!(page(&items, 4, 2), (vec![5], None));
        assert_eq!(page(&items, 9, 2), (vec![], None));
    }
}
