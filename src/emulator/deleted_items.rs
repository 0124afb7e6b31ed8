//! `directory/deletedItems`: soft-deleted users stay restorable (same object id) until the
//! retention period passes on the emulator clock, then they are purged like a hard delete.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::call::{Call, Outcome, Reply, page};
use super::errors::GraphError;
use super::filter;
use super::group_log::member_object_changed;
use super::model::{ChangeKind, Obj, Tenant, str_prop};
use super::odata::decode_token;
use super::{deleted_groups, users};

pub const READ: &[&str] = &[
    "User.DeleteRestore.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Doc versions disagree for application permissions; we follow @05c1078f (User.ReadWrite.All
/// restores) and the 2025 least-privilege `User.DeleteRestore.All`.
pub const WRITE: &[&str] = &[
    "User.DeleteRestore.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// Graph prefixes a soft-deleted user's UPN with its object id (without hyphens).
fn deleted_view(id: &str, user: &Obj) -> Obj {
    let mut u = user.clone();
    if let Some(upn) = str_prop(user, "userPrincipalName") {
        u.insert(
            "userPrincipalName".into(),
            json!(format!("{}{}", id.replace('-', ""), upn)),
        );
    }
    u
}

pub fn list_users(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    users::validate_select(t, &q, true)?;
    super::filter_rules::check_user_query(t, &q, call.eventual(), true)?;
    let select: Vec<String> = match &q.select {
        Some(s) => s.clone(),
        None => {
            let mut s: Vec<String> = super::props::DEFAULT_SELECT
                .iter()
                .map(|s| s.to_string())
                .collect();
            s.push("deletedDateTime".into());
            s
        }
    };
    let all: Vec<Obj> = t
        .deleted_users
        .iter()
        .map(|(id, d)| deleted_view(id, &d.user))
        .filter(|u| q.filter.as_ref().is_none_or(|f| filter::eval(f, u)))
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
        json!(call.context("directory/deletedItems/microsoft.graph.user")),
    );
    if q.count && call.eventual() && q.skiptoken.is_none() {
        body.insert("@odata.count".into(), json!(all.len()));
    }
    if let Some(n) = next {
        let tok = super::odata::encode_token(&n);
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/directory/deletedItems/microsoft.graph.user?{}",
                call.graph_base,
                q.next_link_query(&tok)
            )),
        );
    }
    let value: Vec<Value> = items
        .iter()
        .map(|u| Value::Object(users::project(u, Some(&select))))
        .collect();
    body.insert("value".into(), Value::Array(value));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn get(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    if t.deleted_groups.contains_key(id) {
        return deleted_groups::get(t, call, id);
    }
    call.require(READ)?;
    let d = t
        .deleted_users
        .get(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("directoryObjects/$entity")),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    let mut select: Vec<String> = super::props::DEFAULT_SELECT
        .iter()
        .map(|s| s.to_string())
        .collect();
    select.push("deletedDateTime".into());
    body.extend(users::project(&deleted_view(id, &d.user), Some(&select)));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn restore(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    if t.deleted_groups.contains_key(id) {
        return deleted_groups::restore(t, call, id);
    }
    call.require(WRITE)?;
    let options = if call.body.iter().all(u8::is_ascii_whitespace) {
        Obj::new()
    } else {
        call.json_object()?
    };
    let mut user = t
        .deleted_users
        .get(id)
        .ok_or_else(|| GraphError::not_found(id))?
        .user
        .clone();
    if let Some(new_upn) = options.get("newUserPrincipalName") {
        let upn = new_upn
            .as_str()
            .ok_or_else(|| GraphError::bad_request("Invalid value for newUserPrincipalName."))?;
        user.insert("userPrincipalName".into(), json!(upn));
    }
    if let Some(v) = str_prop(&user, "userPrincipalName")
        && t.value_taken("userPrincipalName", v, None)
    {
        return Err(GraphError::conflict("userPrincipalName"));
    }
    // Proxy conflicts (mail / proxyAddresses held by an active user meanwhile) refuse the
    // restore unless `autoReconcileProxyConflict` is true, which drops the conflicting ones.
    let reconcile = match options.get("autoReconcileProxyConflict") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(GraphError::bad_request(
                "Invalid value for autoReconcileProxyConflict.",
            ));
        }
    };
    for key in options.keys() {
        if !matches!(
            key.as_str(),
            "newUserPrincipalName" | "autoReconcileProxyConflict"
        ) {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' does not exist as a declared property of action 'restore'."
            )));
        }
    }
    let proxy_taken = |addr: &str| {
        let bare = addr.get(5..).filter(|_| {
            addr.get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("smtp:"))
        });
        let bare = bare.unwrap_or(addr);
        t.value_taken("proxyAddresses", bare, None) || t.value_taken("mail", bare, None)
    };
    let mail_conflict = str_prop(&user, "mail").is_some_and(&proxy_taken);
    let proxies: Vec<String> = user
        .get("proxyAddresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let conflicting: Vec<&String> = proxies.iter().filter(|p| proxy_taken(p)).collect();
    if (mail_conflict || !conflicting.is_empty()) && !reconcile {
        return Err(GraphError::conflict("proxyAddresses"));
    }
    if reconcile && !conflicting.is_empty() {
        let kept: Vec<Value> = proxies
            .iter()
            .filter(|p| !conflicting.contains(p))
            .map(|p| json!(p))
            .collect();
        user.insert("proxyAddresses".into(), Value::Array(kept));
    }
    user.insert("deletedDateTime".into(), Value::Null);
    t.deleted_users.remove(id);
    t.put_user(id, user.clone());
    t.change_log.record(call.now, id, ChangeKind::Restored);
    member_object_changed(t, id, call.now);
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("directoryObjects/$entity")),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    body.extend(users::project(&user, None));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn hard_delete(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    if t.deleted_groups.contains_key(id) {
        return deleted_groups::hard_delete(t, call, id);
    }
    call.require(WRITE)?;
    if !t.deleted_users.contains_key(id) {
        return Err(GraphError::not_found(id));
    }
    purge_user(t, id, call.now);
    Ok(Reply::no_content())
}

/// Removes every trace of a user (memberships, assignments, manager links) and logs it as deleted.
pub fn purge_user(t: &mut Tenant, id: &str, now: DateTime<Utc>) {
    member_object_changed(t, id, now);
    t.deleted_users.remove(id);
    t.take_user(id);
    for g in t.groups.values_mut() {
        g.members.remove(id);
    }
    for d in t.deleted_groups.values_mut() {
        d.group.members.remove(id);
    }
    t.assignments
        .retain(|_, a| str_prop(a, "principalId") != Some(id));
    t.managers
        .retain(|user, manager| user != id && manager != id);
    t.change_log.record(now, id, ChangeKind::HardDeleted);
}

/// Purges soft-deleted users whose retention has passed. Returns how many were purged.
pub fn purge_expired(t: &mut Tenant, now: DateTime<Utc>, retention: chrono::Duration) -> usize {
    let expired: Vec<String> = t
        .deleted_users
        .iter()
        .filter(|(_, d)| {
            d.deleted_at
                .checked_add_signed(retention)
                .is_some_and(|purge_at| purge_at <= now)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in &expired {
        purge_user(t, id, now);
    }
    expired.len() + deleted_groups::purge_expired(t, now, retention)
}
