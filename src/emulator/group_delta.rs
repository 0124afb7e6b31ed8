//! `GET /groups/delta`: a full enumeration ending in a deltaLink, then only the groups that
//! changed since the token's position in the tenant's group log. With `members` in `$select`,
//! membership comes as `members@delta` (only ids and `@odata.type`); removed members carry
//! `@removed`. A group's members are spread over several items of 20 at most (Graph splits big
//! groups over pages and repeats the group), so clients must merge items by group id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::call::{Call, Outcome, Reply};
use super::errors::GraphError;
use super::filter;
use super::group_log::{Touched, touched_since};
use super::groups::{GROUP_PROPS, READ, project_group};
use super::model::{Obj, Tenant};
use super::odata::{decode_token, encode_token};

/// Members per `members@delta` item before the group repeats in another item.
pub const MEMBERS_PER_ITEM: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Position {
    t: String,
    s: Option<Vec<String>>,
    f: Option<String>,
    from: u64,
    to: u64,
    /// Items of this round already returned (the round's item list is recomputed per page).
    skip: usize,
    full: bool,
    issued: DateTime<Utc>,
}

fn resync(call: &Call) -> GraphError {
    super::delta::resync_for(call, "groups")
}

fn validate_select(select: Option<&[String]>) -> Result<(), GraphError> {
    for name in select.unwrap_or_default() {
        let known = name == "members"
            || GROUP_PROPS.contains(&name.as_str())
            || super::props::is_extension_name(name);
        if !known {
            return Err(GraphError::bad_request(format!(
                "Could not find a property named '{name}' on type 'microsoft.graph.group'."
            )));
        }
    }
    Ok(())
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
            validate_select(q.select.as_deref())?;
            let head = t.group_log.head();
            let pos = Position {
                t: t.id.clone(),
                s: q.select.clone(),
                f: q.filter_text.clone(),
                from: head,
                to: head,
                skip: 0,
                full: false,
                issued: now,
            };
            return Ok(Reply::ok(json!({
                "@odata.context": call.context("groups"),
                "@odata.deltaLink": format!("{}/groups/delta?$deltatoken={}", call.graph_base, encode_token(&pos)),
                "value": [],
            })));
        }
        let p = check(decode_token::<Position>(tok), t, call)?;
        Position {
            from: p.to,
            to: t.group_log.head(),
            skip: 0,
            full: false,
            issued: now,
            ..p
        }
    } else {
        validate_select(q.select.as_deref())?;
        if let Some(f) = &q.filter {
            let a = filter::analyze(f);
            if a.properties.iter().any(|p| p != "id") {
                return Err(GraphError::unsupported_query());
            }
        }
        Position {
            t: t.id.clone(),
            s: q.select.clone(),
            f: q.filter_text.clone(),
            from: 0,
            to: t.group_log.head(),
            skip: 0,
            full: true,
            issued: now,
        }
    };
    let id_filter = match &pos.f {
        Some(text) => Some(filter::parse(text).map_err(|_| resync(call))?),
        None => None,
    };
    let items = round_items(t, &pos, id_filter.as_ref());
    let page_size = call.settings.delta_page_size.max(1);
    let end = (pos.skip + page_size).min(items.len());
    let value: Vec<Value> = items[pos.skip.min(end)..end].to_vec();
    let mut body = Obj::new();
    body.insert("@odata.context".into(), json!(call.context("groups")));
    if end < items.len() {
        let next = Position {
            skip: end,
            ..pos.clone()
        };
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/groups/delta?$skiptoken={}",
                call.graph_base,
                encode_token(&next)
            )),
        );
    } else {
        let done = Position {
            from: pos.to,
            skip: 0,
            full: false,
            issued: now,
            ..pos.clone()
        };
        body.insert(
            "@odata.deltaLink".into(),
            json!(format!(
                "{}/groups/delta?$deltatoken={}",
                call.graph_base,
                encode_token(&done)
            )),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Reply::ok(Value::Object(body)))
}

fn check(pos: Option<Position>, t: &Tenant, call: &Call) -> Result<Position, GraphError> {
    let pos = pos.ok_or_else(|| resync(call))?;
    let expired = pos
        .issued
        .checked_add_signed(call.settings.delta_token_retention)
        .is_none_or(|until| until < call.now);
    let pruned = pos.to < t.group_log.floor || (!pos.full && pos.from < t.group_log.floor);
    if pos.t != t.id || expired || pruned || pos.to > t.group_log.head() {
        return Err(resync(call));
    }
    Ok(pos)
}

/// Every item of the round, in group id order. The state is read at request time, so a round
/// whose pages straddle writes reports the newer state (Graph makes the same promise: replays
/// happen, clients apply idempotently).
fn round_items(t: &Tenant, pos: &Position, id_filter: Option<&filter::Expr>) -> Vec<Value> {
    let tracked: Vec<String> = pos.s.clone().unwrap_or_else(|| {
        super::groups::GROUP_DEFAULT
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let with_members = tracked.iter().any(|s| s == "members");
    let props: Vec<String> = tracked.into_iter().filter(|s| s != "members").collect();
    let selected = |obj: &Obj| id_filter.is_none_or(|f| filter::eval(f, obj));
    let mut out = Vec::new();
    if pos.full {
        for (id, g) in &t.groups {
            if !selected(&g.props) {
                continue;
            }
            let members: Vec<Value> = g
                .members
                .iter()
                .filter_map(|m| member_entry(t, m))
                .collect();
            push_group(
                &mut out,
                id,
                project_group(g, Some(&props)),
                with_members.then_some(members),
            );
        }
        return out;
    }
    for (id, touched) in touched_since(&t.group_log, pos.from, pos.to) {
        if let Some(g) = t.groups.get(&id) {
            if !selected(&g.props) {
                continue;
            }
            if let Some((obj, members)) = changed_group(t, g, &touched, &props, with_members) {
                push_group(&mut out, &id, obj, members);
            }
        } else {
            let reason = match t.deleted_groups.get(&id) {
                Some(d) if selected(&d.group.props) => "changed",
                Some(_) => continue,
                None => "deleted",
            };
            let mut probe = Obj::new();
            probe.insert("id".into(), json!(id));
            if reason == "deleted" && !selected(&probe) {
                continue;
            }
            out.push(json!({"id": id, "@removed": {"reason": reason}}));
        }
    }
    out
}

fn changed_group(
    t: &Tenant,
    g: &super::model::Group,
    touched: &Touched,
    props: &[String],
    with_members: bool,
) -> Option<(Obj, Option<Vec<Value>>)> {
    if touched.whole {
        let members = g
            .members
            .iter()
            .filter_map(|m| member_entry(t, m))
            .collect();
        return Some((
            project_group(g, Some(props)),
            with_members.then_some(members),
        ));
    }
    let changed_props: Vec<String> = props
        .iter()
        .filter(|p| touched.properties.contains(p.as_str()))
        .cloned()
        .collect();
    let member_changes: Vec<Value> = if with_members {
        touched
            .members
            .iter()
            .map(|m| {
                if g.members.contains(m)
                    && let Some(entry) = member_entry(t, m)
                {
                    entry
                } else {
                    removed_member(t, m)
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    if changed_props.is_empty() && member_changes.is_empty() {
        return None;
    }
    // Like users/delta without `Prefer: return=minimal`: the selected properties in full.
    Some((
        project_group(g, Some(props)),
        (!member_changes.is_empty()).then_some(member_changes),
    ))
}

fn push_group(out: &mut Vec<Value>, id: &str, mut obj: Obj, members: Option<Vec<Value>>) {
    obj.insert("id".into(), json!(id));
    let Some(members) = members else {
        out.push(Value::Object(obj));
        return;
    };
    let mut chunks = members.chunks(MEMBERS_PER_ITEM);
    let first = chunks.next().map(<[Value]>::to_vec).unwrap_or_default();
    obj.insert("members@delta".into(), Value::Array(first));
    out.push(Value::Object(obj));
    for chunk in chunks {
        out.push(json!({"id": id, "members@delta": chunk}));
    }
}

/// An active member as Graph lists it in `members@delta`: its type and id only.
fn member_entry(t: &Tenant, id: &str) -> Option<Value> {
    let kind = t.object_kind(id)?;
    Some(json!({"@odata.type": kind.odata_type(), "id": id}))
}

/// A member that left (or whose object was deleted): Graph says `deleted` in both cases.
fn removed_member(t: &Tenant, id: &str) -> Value {
    let odata_type = if t.groups.contains_key(id) || t.deleted_groups.contains_key(id) {
        "#microsoft.graph.group"
    } else {
        "#microsoft.graph.user"
    };
    json!({"@odata.type": odata_type, "id": id, "@removed": {"reason": "deleted"}})
}
