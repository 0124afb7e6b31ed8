//! `$batch`: up to 20 requests in one call, per-item results, per-item 429/503/504 retried
//! after the longest `Retry-After` of the items that asked for it.

use std::collections::{BTreeMap, HashSet};

use backon::BackoffBuilder;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::GraphClient;
use super::error::{self, GraphError};

/// Graph's limit on requests per `$batch`.
pub const MAX_BATCH: usize = 20;

/// One request inside a `$batch`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRequest {
    /// Unique within the batch (case-insensitive).
    pub id: String,
    pub method: String,
    /// Relative to the API root, e.g. `/users/{id}`.
    pub url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

impl BatchRequest {
    pub fn new(id: impl Into<String>, method: Method, url: impl Into<String>) -> BatchRequest {
        BatchRequest {
            id: id.into(),
            method: method.to_string(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
        }
    }

    /// Adds a JSON body (and the `Content-Type` header Graph requires with it).
    pub fn with_json(mut self, body: serde_json::Value) -> BatchRequest {
        self.headers
            .insert("Content-Type".into(), "application/json".into());
        self.body = Some(body);
        self
    }

    fn is_write(&self) -> bool {
        !self.method.eq_ignore_ascii_case("GET")
    }
}

/// The result of one item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchItemResponse {
    pub id: String,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl BatchItemResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The item's failure as a typed error (`None` when it succeeded). `client_request_id` is
    /// the one of the `$batch` request that carried it.
    pub fn error(&self, client_request_id: &str) -> Option<GraphError> {
        if self.is_success() {
            return None;
        }
        let body = self
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        Some(error::from_response(
            self.status,
            &body,
            self.header("request-id").map(str::to_owned),
            self.header("location").map(str::to_owned),
            client_request_id,
            self.header("retry-after")
                .and_then(error::parse_retry_after),
        ))
    }

    fn retryable(&self) -> bool {
        matches!(self.status, 429 | 503 | 504)
    }
}

/// The answers of a batch, in the order of the requests.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    pub responses: Vec<BatchItemResponse>,
    /// `client-request-id` of the last `$batch` call (what to quote for the items).
    pub client_request_id: String,
}

#[derive(Serialize)]
struct BatchBody<'a> {
    requests: Vec<&'a BatchRequest>,
}

#[derive(Deserialize)]
struct BatchResponseBody {
    responses: Vec<BatchItemResponse>,
}

impl GraphClient {
    /// Sends up to 20 requests as one `$batch`. Items answered 429/503/504 are sent again in a
    /// new batch after the longest `Retry-After` among them (or the backoff), up to the retry
    /// limit; their last answer is returned otherwise. Other item failures are returned as they
    /// are: see [`BatchItemResponse::error`].
    pub async fn batch(&self, requests: &[BatchRequest]) -> Result<BatchResult, GraphError> {
        if requests.is_empty() {
            return Ok(BatchResult {
                responses: Vec::new(),
                client_request_id: String::new(),
            });
        }
        if requests.len() > MAX_BATCH {
            return Err(GraphError::InvalidRequest(format!(
                "a $batch holds at most {MAX_BATCH} requests, got {}",
                requests.len()
            )));
        }
        let mut seen = HashSet::new();
        for r in requests {
            if !seen.insert(r.id.to_ascii_lowercase()) {
                return Err(GraphError::InvalidRequest(format!(
                    "duplicate $batch request id {}",
                    r.id
                )));
            }
        }
        let s = &self.inner.settings;
        let mut backoff = backon::ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(s.min_backoff)
            .with_max_delay(s.max_backoff)
            .with_max_times(s.max_retries)
            .build();
        let mut done: BTreeMap<String, BatchItemResponse> = BTreeMap::new();
        let mut pending: Vec<&BatchRequest> = requests.iter().collect();
        let mut client_request_id;
        loop {
            let writes = pending.iter().filter(|r| r.is_write()).count() as u32;
            let body = serde_json::to_value(BatchBody {
                requests: pending.clone(),
            })
            .map_err(|e| GraphError::InvalidRequest(e.to_string()))?;
            let resp = self
                .send(Method::POST, "$batch", &[], Some(&body), writes)
                .await?;
            client_request_id = resp.client_request_id.clone();
            let parsed: BatchResponseBody = resp.json("$batch")?;
            let mut retry = Vec::new();
            let mut wait = None;
            for item in parsed.responses {
                if item.status == 429 {
                    self.inner
                        .throttled
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let key = item.id.to_ascii_lowercase();
                if item.retryable()
                    && let Some(req) = pending.iter().find(|r| r.id.eq_ignore_ascii_case(&key))
                {
                    let ra = item
                        .header("retry-after")
                        .and_then(error::parse_retry_after);
                    wait = wait.max(ra);
                    retry.push(*req);
                }
                done.insert(key, item);
            }
            if retry.is_empty() {
                break;
            }
            let Some(planned) = backoff.next() else {
                break;
            };
            let delay = wait.unwrap_or(planned);
            tracing::warn!(
                tenant_id = %self.inner.tenant_id,
                items = retry.len(),
                delay_ms = delay.as_millis() as u64,
                "graph $batch items throttled; retrying them"
            );
            tokio::time::sleep(delay).await;
            pending = retry;
        }
        let mut responses = Vec::with_capacity(requests.len());
        for r in requests {
            match done.remove(&r.id.to_ascii_lowercase()) {
                Some(item) => responses.push(item),
                None => {
                    return Err(GraphError::Decode {
                        url: "$batch".into(),
                        message: format!("no response for request id {}", r.id),
                    });
                }
            }
        }
        Ok(BatchResult {
            responses,
            client_request_id,
        })
    }
}
