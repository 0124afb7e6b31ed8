//! `GET /users/delta`: a full enumeration in pages ending in a deltaLink, then only what changed
//! since the token's position in the tenant's change log. Tokens carry the tenant, the `$select`
//! list, the log position and when they were issued; stale or foreign tokens get a resync error.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::call::{Call, Outcome, Reply};
use super::errors::GraphError;
use super::filter;
use super::model::{ChangeKind, Obj, Tenant};
use super::odata::{decode_token, encode_token};
use super::props::DEFAULT_SELECT;
use super::users::{self, READ};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Position {
    /// Tenant the token was issued for.
    t: String,
    /// `$select` of the initial request.
    s: Option<Vec<String>>,
    /// `$filter` of the initial request (only `id eq` clauses are accepted).
    f: Option<String>,
    /// Changes after this sequence number are reported (0 = full enumeration).
    from: u64,
    /// Log head when this round started.
    to: u64,
    /// Last object id already returned in this round.
    after: Option<String>,
    /// Full enumeration round?
    full: bool,
    issued: DateTime<Utc>,
}

/// user-delta.md: `$filter` on delta is only `id eq '…'` clauses joined by `or`, at most 50.
pub const MAX_DELTA_IDS: usize = 50;

/// How many `id eq '…'` clauses an `or`-only filter has; `None` for anything else.
fn id_clauses(e: &filter::Expr) -> Option<usize> {
    match e {
        filter::Expr::Or(l, r) => Some(id_clauses(l)? + id_clauses(r)?),
        filter::Expr::Cmp {
            path,
            op: filter::CmpOp::Eq,
            value: filter::Lit::Str(_),
        } if path.len() == 1 && path[0] == "id" => Some(1),
        _ => None,
    }
}

pub fn resync(call: &Call) -> GraphError {
    resync_for(call, "users")
}

/// An expired, pruned, foreign or malformed delta token. Graph's docs disagree: the delta
/// overview shows `410 Gone` with a `Location` to restart from, a Microsoft blog on directory
/// objects shows `400 Bad Request`; both carry `syncStateNotFound`. The emulator answers
/// `--expired-delta-status` (default 400, without `Location`, the case a client cannot skip).
pub fn resync_for(call: &Call, collection: &str) -> GraphError {
    let message = "The delta token is expired or not valid. Restart the synchronization with a request without a delta token.";
    if call.settings.expired_delta_status == StatusCode::GONE {
        GraphError::new(StatusCode::GONE, "syncStateNotFound", message).with_header(
            "Location",
            format!("{}/{collection}/delta?$deltatoken=", call.graph_base),
        )
    } else {
        GraphError::new(StatusCode::BAD_REQUEST, "syncStateNotFound", message)
    }
}

pub fn delta(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    if q.top.is_some() || q.orderby.is_some() {
        return Err(GraphError::unsupported_query());
    }
    let now = call.now;
    let pos = if let Some(tok) = q.skiptoken.as_deref() {
        check(decode_token::<Position>(tok), t, call)?
    } else if let Some(tok) = q.deltatoken.as_deref().filter(|s| !s.is_empty()) {
        if tok == "latest" {
            users::validate_select(t, &q, true)?;
            return Ok(delta_link_only(
                t,
                call,
                q.select.clone(),
                q.filter_text.clone(),
            ));
        }
        let p = check(decode_token::<Position>(tok), t, call)?;
        Position {
            from: p.to,
            to: t.change_log.head(),
            after: None,
            full: false,
            issued: now,
            ..p
        }
    } else {
        users::validate_select(t, &q, true)?;
        if let Some(f) = &q.filter {
            match id_clauses(f) {
                Some(n) if n <= MAX_DELTA_IDS => {}
                Some(n) => {
                    return Err(GraphError::bad_request(format!(
                        "Too many id clauses in the delta $filter: {n}. Max allowed: {MAX_DELTA_IDS}."
                    )));
                }
                None => return Err(GraphError::unsupported_query()),
            }
        }
        Position {
            t: t.id.clone(),
            s: q.select.clone(),
            f: q.filter_text.clone(),
            from: 0,
            to: t.change_log.head(),
            after: None,
            full: true,
            issued: now,
        }
    };
    let id_filter = match &pos.f {
        Some(text) => Some(filter::parse(text).map_err(|_| resync(call))?),
        None => None,
    };
    let minimal = call
        .header("prefer")
        .is_some_and(|p| p.to_ascii_lowercase().contains("return=minimal"));
    // Pages resume after the last id returned: a range over ordered ids, so a round costs
    // O(n log n) in total rather than O(n) per page.
    let start = match &pos.after {
        Some(a) => Bound::Excluded(a.clone()),
        None => Bound::Unbounded,
    };
    let touched = if pos.full {
        BTreeMap::new()
    } else {
        touched_since(t, pos.from, pos.to)
    };
    let candidates: Box<dyn Iterator<Item = (&String, Option<&Touched>)>> = if pos.full {
        Box::new(
            t.users
                .range((start, Bound::Unbounded))
                .map(|(id, _)| (id, None)),
        )
    } else {
        Box::new(
            touched
                .range((start, Bound::Unbounded))
                .map(|(id, x)| (id, Some(x))),
        )
    };
    let tracked: Vec<String> = pos
        .s
        .clone()
        .unwrap_or_else(|| DEFAULT_SELECT.iter().map(|s| s.to_string()).collect());
    let mut value = Vec::new();
    let mut last = None;
    let mut more = false;
    for (id, touched) in candidates {
        if value.len() >= call.settings.delta_page_size {
            more = true;
            break;
        }
        last = Some(id.clone());
        let selected_by_filter =
            |obj: &Obj| id_filter.as_ref().is_none_or(|f| filter::eval(f, obj));
        if let Some(item) = render(t, id, touched, &tracked, minimal, &selected_by_filter) {
            value.push(item);
        }
    }
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(match &pos.s {
            Some(s) if pos.full => call.context(&format!("users({})", s.join(","))),
            _ => call.context("users"),
        }),
    );
    if more {
        let next = Position {
            after: last,
            ..pos.clone()
        };
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/users/delta?$skiptoken={}",
                call.graph_base,
                encode_token(&next)
            )),
        );
    } else {
        let done = Position {
            from: pos.to,
            after: None,
            full: false,
            issued: now,
            ..pos.clone()
        };
        body.insert(
            "@odata.deltaLink".into(),
            json!(format!(
                "{}/users/delta?$deltatoken={}",
                call.graph_base,
                encode_token(&done)
            )),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Reply::ok(Value::Object(body)))
}

fn delta_link_only(t: &Tenant, call: &Call, s: Option<Vec<String>>, f: Option<String>) -> Reply {
    let pos = Position {
        t: t.id.clone(),
        s,
        f,
        from: t.change_log.head(),
        to: t.change_log.head(),
        after: None,
        full: false,
        issued: call.now,
    };
    Reply::ok(json!({
        "@odata.context": call.context("users"),
        "@odata.deltaLink": format!("{}/users/delta?$deltatoken={}", call.graph_base, encode_token(&pos)),
        "value": [],
    }))
}

fn check(pos: Option<Position>, t: &Tenant, call: &Call) -> Result<Position, GraphError> {
    let pos = pos.ok_or_else(|| resync(call))?;
    // Tokens are client input: an `issued` near the end of time must not overflow.
    let expired = pos
        .issued
        .checked_add_signed(call.settings.delta_token_retention)
        .is_none_or(|until| until < call.now);
    let pruned = pos.to < t.change_log.floor || (!pos.full && pos.from < t.change_log.floor);
    if pos.t != t.id || expired || pruned || pos.to > t.change_log.head() {
        return Err(resync(call));
    }
    Ok(pos)
}

#[derive(Debug, Default)]
struct Touched {
    properties: BTreeSet<String>,
    /// Created or restored in the window: report every selected property.
    whole: bool,
}

fn touched_since(t: &Tenant, from: u64, to: u64) -> BTreeMap<String, Touched> {
    let mut out: BTreeMap<String, Touched> = BTreeMap::new();
    let entries = &t.change_log.entries;
    // Entries are in sequence order: skip to the window instead of filtering the whole log.
    let first = entries.partition_point(|c| c.seq <= from);
    for c in entries.range(first..).take_while(|c| c.seq <= to) {
        let e = out.entry(c.user_id.clone()).or_default();
        match &c.kind {
            ChangeKind::Updated { properties } => e.properties.extend(properties.iter().cloned()),
            ChangeKind::Created | ChangeKind::Restored => e.whole = true,
            ChangeKind::SoftDeleted | ChangeKind::HardDeleted => {}
        }
    }
    out
}

fn render(
    t: &Tenant,
    id: &str,
    touched: Option<&Touched>,
    tracked: &[String],
    minimal: bool,
    selected_by_filter: &dyn Fn(&Obj) -> bool,
) -> Option<Value> {
    let removed = |reason: &str| json!({"id": id, "@removed": {"reason": reason}});
    let Some(user) = t.users.get(id) else {
        if let Some(deleted) = t.deleted_users.get(id) {
            return selected_by_filter(&deleted.user).then(|| removed("changed"));
        }
        let mut probe = Obj::new();
        probe.insert("id".into(), json!(id));
        return selected_by_filter(&probe).then(|| removed("deleted"));
    };
    if !selected_by_filter(user) {
        return None;
    }
    let names: Vec<&String> = match touched {
        None => tracked.iter().collect(),
        Some(x) if x.whole => tracked.iter().collect(),
        Some(x) => {
            let changed: Vec<&String> = tracked
                .iter()
                .filter(|p| x.properties.contains(p.as_str()))
                .collect();
            if changed.is_empty() {
                // Only untracked properties changed: the object does not surface.
                return None;
            }
            if minimal {
                changed
            } else {
                tracked.iter().collect()
            }
        }
    };
    let initial = touched.is_none();
    let mut out = Obj::new();
    for name in names {
        if name == "manager" {
            let manager = t.managers.get(id).filter(|m| t.users.contains_key(*m));
            out.insert(
                "manager@delta".into(),
                json!(
                    manager
                        .map(|m| vec![json!({"@odata.type": "#microsoft.graph.user", "id": m})])
                        .unwrap_or_default()
                ),
            );
            continue;
        }
        match user.get(name.as_str()) {
            // Never-set properties are omitted; in later rounds a cleared property shows as null.
            Some(Value::Null) if initial => {}
            Some(v) => {
                out.insert(name.clone(), v.clone());
            }
            None => {}
        }
    }
    out.insert("id".into(), json!(id));
    Some(Value::Object(out))
}
