//! `POST /$batch`: up to 20 requests, fully parallel (run concurrently) or fully sequential
//! (one `dependsOn` chain); each item goes through the same pipeline as a top-level request
//! (so items are throttled and fault-injected one by one). A failed dependency makes its
//! dependants 424. Responses come back in no particular order.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::auth::Grant;
use super::call::{ApiVersion, Reply, ReplyBody};
use super::errors::GraphError;
use super::server::{
    Emulator, Incoming, JSON_CONTENT_TYPE, RequestIds, error_reply, graph_segments, process,
};

pub const MAX_REQUESTS: usize = 20;

#[derive(Debug)]
struct Item {
    id: String,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    depends_on: Vec<String>,
}

fn bad(msg: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", msg)
}

fn parse(body: &[u8]) -> Result<Vec<Item>, GraphError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad("Invalid batch payload format."))?;
    let requests = v
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("Invalid batch payload format."))?;
    if requests.is_empty() {
        return Err(bad("Invalid batch payload format."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad(format!(
            "Number of included requests exceeds the maximum of {MAX_REQUESTS}."
        )));
    }
    let mut items = Vec::new();
    let mut ids = BTreeSet::new();
    for r in requests {
        let o = r
            .as_object()
            .ok_or_else(|| bad("Invalid batch payload format."))?;
        let id = match o.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(bad("Request id is required for each request in a batch.")),
        };
        if !ids.insert(id.to_lowercase()) {
            return Err(bad(format!(
                "Request id '{id}' must be unique across all requests in the batch."
            )));
        }
        let method = o
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or_else(|| bad(format!("Request '{id}' has an invalid method.")))?;
        let url = o
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("Request '{id}' has no url.")))?
            .to_string();
        let mut headers = HeaderMap::new();
        if let Some(h) = o.get("headers") {
            let h = h
                .as_object()
                .ok_or_else(|| bad(format!("Request '{id}' has invalid headers.")))?;
            for (k, v) in h {
                let (Ok(name), Some(Ok(value))) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    v.as_str().map(HeaderValue::from_str),
                ) else {
                    return Err(bad(format!("Request '{id}' has an invalid header '{k}'.")));
                };
                headers.insert(name, value);
            }
        }
        let body = match o.get("body") {
            None | Some(Value::Null) => None,
            Some(b) => {
                if !headers.contains_key("content-type") {
                    return Err(bad(format!(
                        "Write request id : {id} does not contain Content-Type header or body."
                    )));
                }
                Some(serde_json::to_vec(b).unwrap_or_default())
            }
        };
        let depends_on = match o.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| d.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("Request '{id}' has an invalid dependsOn.")))?,
            Some(_) => return Err(bad(format!("Request '{id}' has an invalid dependsOn."))),
        };
        items.push(Item {
            id,
            method,
            url,
            headers,
            body,
            depends_on,
        });
    }
    for it in &items {
        for d in &it.depends_on {
            if !ids.contains(&d.to_lowercase()) || d.eq_ignore_ascii_case(&it.id) {
                return Err(bad(format!(
                    "Request '{}' depends on unknown request '{d}'.",
                    it.id
                )));
            }
        }
    }
    Ok(items)
}

/// `/users?x` or `users?x` or an absolute Graph URL → (segments, query). Items are relative to
/// the version the `$batch` was posted to.
fn split_url(url: &str, version: ApiVersion) -> Option<(Vec<String>, Option<String>)> {
    let rel = url
        .strip_prefix(&format!(
            "https://graph.microsoft.com/{}",
            version.segment()
        ))
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = match rel.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (rel, None),
    };
    let (_, segments) = graph_segments(&format!("/{}/{path}", version.segment()))?;
    Some((segments, query))
}

fn item_json(id: &str, reply: Reply) -> Value {
    let mut headers = Map::new();
    for (k, v) in &reply.headers {
        headers.insert(k.clone(), json!(v));
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("status".into(), json!(reply.status.as_u16()));
    match reply.body {
        ReplyBody::Json(b) => {
            headers.insert("Content-Type".into(), json!(JSON_CONTENT_TYPE));
            out.insert("headers".into(), Value::Object(headers));
            out.insert("body".into(), b);
        }
        ReplyBody::Text(t) => {
            headers.insert("Content-Type".into(), json!("text/plain"));
            out.insert("headers".into(), Value::Object(headers));
            out.insert("body".into(), json!(t));
        }
        ReplyBody::Empty => {
            out.insert("headers".into(), Value::Object(headers));
        }
    }
    Value::Object(out)
}

/// "Batch should be either fully sequential or fully parallel" (json-batching.md): no item
/// depends on another, or the items form one chain (each depends on exactly the one before,
/// in some order). Returns the execution order for a chain, `None` for a parallel batch.
fn execution_order(items: &[Item]) -> Result<Option<Vec<usize>>, GraphError> {
    if items.iter().all(|it| it.depends_on.is_empty()) {
        return Ok(None);
    }
    let mixed = || bad("Batch should be either fully sequential or fully parallel.");
    let index_of = |id: &str| items.iter().position(|it| it.id.eq_ignore_ascii_case(id));
    let heads: Vec<usize> = (0..items.len())
        .filter(|i| items[*i].depends_on.is_empty())
        .collect();
    if heads.len() != 1 || items.iter().any(|it| it.depends_on.len() > 1) {
        return Err(mixed());
    }
    let mut order = vec![heads[0]];
    while order.len() < items.len() {
        let last = &items[order[order.len() - 1]].id;
        let next: Vec<usize> = (0..items.len())
            .filter(|i| {
                items[*i]
                    .depends_on
                    .first()
                    .is_some_and(|d| d.eq_ignore_ascii_case(last))
            })
            .collect();
        match next.as_slice() {
            [n] if !order.contains(n) => order.push(*n),
            [] if index_of(last).is_some() => {
                // Unreachable items: a cycle elsewhere or a second chain.
                return Err(mixed());
            }
            _ => return Err(mixed()),
        }
    }
    Ok(Some(order))
}

async fn run_item(
    emu: &Emulator,
    grant: &Grant,
    version: ApiVersion,
    it: &Item,
    ids: &RequestIds,
) -> Reply {
    match split_url(&it.url, version) {
        Some((segments, query)) => {
            let body = it.body.clone().unwrap_or_default();
            let req = Incoming {
                method: it.method.clone(),
                version,
                segments,
                raw_query: query.as_deref(),
                headers: &it.headers,
                body: &body,
            };
            process(emu, grant, req, ids).await
        }
        None => error_reply(emu, &GraphError::unknown_segment(&it.url), ids),
    }
}

/// Runs a batch: a parallel one concurrently, a sequential one in chain order with 424 for
/// everything after a failure. Responses come back shuffled, never in request order (Graph
/// does not promise any order; a client must match them by `id`).
pub async fn run(
    emu: &Emulator,
    grant: &Grant,
    version: ApiVersion,
    body: &[u8],
    ids: &RequestIds,
    user_agent: Option<&HeaderValue>,
) -> Reply {
    let items = match parse(body).and_then(|items| execution_order(&items).map(|o| (items, o))) {
        Ok(x) => x,
        Err(e) => return error_reply(emu, &e, ids),
    };
    let (mut items, order) = items;
    // The batch's caller is every item's caller (write log, audit).
    if let Some(agent) = user_agent {
        for item in &mut items {
            if !item.headers.contains_key(axum::http::header::USER_AGENT) {
                item.headers
                    .insert(axum::http::header::USER_AGENT, agent.clone());
            }
        }
    }
    let mut responses: Vec<Value> = match order {
        None => {
            let replies = futures::future::join_all(
                items
                    .iter()
                    .map(|it| run_item(emu, grant, version, it, ids)),
            )
            .await;
            items
                .iter()
                .zip(replies)
                .map(|(it, reply)| item_json(&it.id, reply))
                .collect()
        }
        Some(order) => {
            let mut out = Vec::with_capacity(order.len());
            let mut failed = false;
            for i in order {
                let it = &items[i];
                let reply = if failed {
                    let e = GraphError::new(
                        StatusCode::FAILED_DEPENDENCY,
                        "FailedDependency",
                        "The request failed because one of the requests it depends on failed.",
                    );
                    error_reply(emu, &e, ids)
                } else {
                    run_item(emu, grant, version, it, ids).await
                };
                failed |= reply.status.as_u16() >= 400;
                out.push(item_json(&it.id, reply));
            }
            out
        }
    };
    shuffle_out_of_order(&mut responses);
    Reply::ok(json!({ "responses": responses }))
}

/// Shuffles `responses` so that, with two or more, they are never in their original order.
fn shuffle_out_of_order(responses: &mut [Value]) {
    use rand::seq::SliceRandom;
    if responses.len() < 2 {
        return;
    }
    let original: Vec<Value> = responses.to_vec();
    responses.shuffle(&mut rand::rng());
    if responses == original.as_slice() {
        responses.rotate_left(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_batches() {
        let many: Vec<Value> = (0..21)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
            .collect();
        for bad_body in [
            json!({}),
            json!({"requests": []}),
            json!({"requests": many}),
            json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}]}),
            json!({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]}),
            json!({"requests": [{"id": "1", "method": "POST", "url": "/users", "body": {}}]}),
            json!({"requests": [{"method": "GET", "url": "/users"}]}),
        ] {
            assert!(
                parse(bad_body.to_string().as_bytes()).is_err(),
                "{bad_body}"
            );
        }
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn urls_may_be_relative_with_or_without_slash() {
        assert_eq!(
            split_url("users?$top=1", ApiVersion::V1),
            Some((vec!["users".to_string()], Some("$top=1".to_string())))
        );
        assert_eq!(
            split_url("/users/a%23b", ApiVersion::Beta).map(|(s, _)| s),
            Some(vec!["users".to_string(), "a#b".to_string()])
        );
    }
}
