//! `directory/deletedItems/microsoft.graph.group`: soft-deleted groups stay restorable (same id,
//! same memberships) for the retention period, then they are purged.
//!
//! Graph's documented bug is modelled: a soft-deleted security group reports
//! `securityEnabled: false`, so clients must recognise security groups by `groupTypes == []`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::call::{Call, Outcome, Reply, page};
use super::errors::GraphError;
use super::filter;
use super::group_log::{GroupChangeKind, member_object_changed};
use super::groups::{self, project_group};
use super::model::{Group, Obj, Tenant, str_prop};
use super::odata::{decode_token, encode_token};

fn deleted_view(g: &Group) -> Group {
    let mut v = g.clone();
    v.props.insert("securityEnabled".into(), json!(false));
    v
}

fn projection(select: Option<&[String]>) -> Vec<String> {
    match select {
        Some(s) => s.to_vec(),
        None => groups::GROUP_DEFAULT
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

pub fn list(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(groups::READ)?;
    let q = call.query()?;
    let select = projection(q.select.as_deref());
    let all: Vec<Group> = t
        .deleted_groups
        .values()
        .map(|d| deleted_view(&d.group))
        .filter(|g| q.filter.as_ref().is_none_or(|f| filter::eval(f, &g.props)))
        .collect();
    let offset = match &q.skiptoken {
        Some(tok) => decode_token::<usize>(tok)
            .ok_or_else(|| GraphError::bad_request("Invalid skip token."))?,
        None => 0,
    };
    let (items, next) = page(&all, offset, q.top.unwrap_or(call.settings.page_size));
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("directory/deletedItems/microsoft.graph.group")),
    );
    if q.count && call.eventual() && q.skiptoken.is_none() {
        body.insert("@odata.count".into(), json!(all.len()));
    }
    if let Some(n) = next {
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/directory/deletedItems/microsoft.graph.group?{}",
                call.graph_base,
                q.next_link_query(&encode_token(&n))
            )),
        );
    }
    let value: Vec<Value> = items
        .iter()
        .map(|g| Value::Object(project_group(g, Some(&select))))
        .collect();
    body.insert("value".into(), Value::Array(value));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn get(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    call.require(groups::READ)?;
    let d = t
        .deleted_groups
        .get(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("directoryObjects/$entity")),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.group"));
    body.extend(project_group(&deleted_view(&d.group), None));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn restore(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    call.require(groups::WRITE)?;
    if !call.body.iter().all(u8::is_ascii_whitespace) {
        let options = call.json_object()?;
        if let Some(k) = options.keys().next() {
            return Err(GraphError::bad_request(format!(
                "Property '{k}' does not exist as a declared property or extension property."
            )));
        }
    }
    let mut group = t
        .deleted_groups
        .remove(id)
        .ok_or_else(|| GraphError::not_found(id))?
        .group;
    group.props.insert("deletedDateTime".into(), Value::Null);
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("directoryObjects/$entity")),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.group"));
    body.extend(project_group(&group, None));
    t.groups.insert(id.to_string(), group);
    t.group_log.record(call.now, id, GroupChangeKind::Restored);
    member_object_changed(t, id, call.now);
    Ok(Reply::ok(Value::Object(body)))
}

pub fn hard_delete(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    call.require(groups::WRITE)?;
    if !t.deleted_groups.contains_key(id) {
        return Err(GraphError::not_found(id));
    }
    purge(t, id, call.now);
    Ok(Reply::no_content())
}

/// Removes every trace of a group: nested memberships and app role assignments.
fn purge(t: &mut Tenant, id: &str, now: DateTime<Utc>) {
    member_object_changed(t, id, now);
    t.deleted_groups.remove(id);
    for g in t.groups.values_mut() {
        g.members.remove(id);
    }
    for d in t.deleted_groups.values_mut() {
        d.group.members.remove(id);
    }
    t.assignments
        .retain(|_, a| str_prop(a, "principalId") != Some(id));
    t.group_log.record(now, id, GroupChangeKind::HardDeleted);
}

/// Purges soft-deleted groups whose retention has passed. Returns how many were purged.
pub fn purge_expired(t: &mut Tenant, now: DateTime<Utc>, retention: chrono::Duration) -> usize {
    let expired: Vec<String> = t
        .deleted_groups
        .iter()
        .filter(|(_, d)| {
            d.deleted_at
                .checked_add_signed(retention)
                .is_none_or(|purge_at| purge_at <= now)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in &expired {
        purge(t, id, now);
    }
    expired.len()
}
