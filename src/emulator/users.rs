//! `/users`: list (with `$select`, `$filter`, `$orderby`, `$top`, `$count`, paging), `$count`,
//! get, create, update, soft delete, and the manager reference.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::build::{new_user, sync_proxy_addresses};
use super::call::{Call, Outcome, Reply, page, reference_id};
use super::errors::GraphError;
use super::filter;
use super::model::{ChangeKind, DeletedUser, Obj, Tenant, new_id, str_prop};
use super::odata::{Query, decode_token, encode_token};
use super::props::{self, DEFAULT_SELECT, NON_NULL_COLLECTIONS};
use super::shapes;

pub const READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub const WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
pub const DELETE: &[&str] = &[
    "User.ReadWrite.All",
    "User.DeleteRestore.All",
    "Directory.ReadWrite.All",
];

/// Rejects `$select` entries the user type does not declare (400) or that live outside the
/// directory (501 on collections, as Graph does).
pub fn validate_select(t: &Tenant, q: &Query, collection: bool) -> Result<(), GraphError> {
    for name in q.select.iter().flatten() {
        if name == "manager" {
            continue;
        }
        // Only registered directory extensions; `extension_{appId with hyphens}_x` is not one.
        if props::is_extension_name(name) {
            if t.extension(name).is_none() {
                return Err(GraphError::unknown_property(name, "user"));
            }
            continue;
        }
        if !props::is_user_property(name) {
            return Err(GraphError::unknown_property(name, "user"));
        }
        if collection && props::is_not_in_directory(name) {
            return Err(GraphError::not_implemented());
        }
    }
    Ok(())
}

/// `user` with the selected properties (the default set without `$select`).
pub fn project(user: &Obj, select: Option<&[String]>) -> Obj {
    let mut out = Obj::new();
    let names: Vec<&str> = match select {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_SELECT.to_vec(),
    };
    for name in names {
        if name == "manager" {
            continue;
        }
        match user.get(name) {
            Some(v) => {
                out.insert(name.to_string(), v.clone());
            }
            None if props::is_extension_name(name) => {}
            None if NON_NULL_COLLECTIONS.contains(&name) => {
                out.insert(name.to_string(), json!([]));
            }
            // Declared NOT NULL; Intune's default enrollment limit.
            None if name == "deviceEnrollmentLimit" => {
                out.insert(name.to_string(), json!(5));
            }
            None => {
                out.insert(name.to_string(), Value::Null);
            }
        }
    }
    out
}

pub fn select_context(call: &Call, set: &str, q: &Query) -> String {
    match &q.select {
        Some(list) => call.context(&format!("{set}({})", list.join(","))),
        None => call.context(set),
    }
}

fn validate_filter(t: &Tenant, call: &Call, q: &Query) -> Result<(), GraphError> {
    super::filter_rules::check_user_query(t, q, call.eventual(), false)
}

#[derive(Serialize, Deserialize)]
struct ListPosition {
    /// Position in the sorted result (with `$orderby`).
    #[serde(default)]
    offset: usize,
    /// Without `$orderby` users come in id order: the last id returned, so the next page
    /// starts there instead of scanning the tenant again (a full listing stays O(n)).
    #[serde(default)]
    after: Option<String>,
}

fn matching_users<'a>(t: &'a Tenant, q: &Query) -> Result<Vec<&'a Obj>, GraphError> {
    let mut users: Vec<&Obj> = t
        .users
        .values()
        .filter(|u| q.filter.as_ref().is_none_or(|f| filter::eval(f, u)))
        .collect();
    if let Some((prop, desc)) = &q.orderby {
        if !matches!(
            prop.as_str(),
            "displayName"
                | "userPrincipalName"
                | "mail"
                | "givenName"
                | "surname"
                | "createdDateTime"
                | "id"
        ) {
            return Err(GraphError::unsupported_query());
        }
        let key = |u: &Obj| str_prop(u, prop).map(str::to_lowercase);
        users.sort_by_key(|u| key(u));
        if *desc {
            users.reverse();
        }
    }
    Ok(users)
}

pub fn list(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    validate_select(t, &q, true)?;
    validate_filter(t, call, &q)?;
    let position = match &q.skiptoken {
        Some(tok) => decode_token::<ListPosition>(tok)
            .ok_or_else(|| GraphError::bad_request("Invalid skip token."))?,
        None => ListPosition {
            offset: 0,
            after: None,
        },
    };
    let size = q.top.unwrap_or(call.settings.page_size);
    let counted = q.count && call.eventual() && q.skiptoken.is_none();
    let (items, next, total) = if q.orderby.is_none() {
        let start = match &position.after {
            Some(a) => std::ops::Bound::Excluded(a.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut matching = t
            .users
            .range((start, std::ops::Bound::Unbounded))
            .filter(|(_, u)| q.filter.as_ref().is_none_or(|f| filter::eval(f, u)));
        let items: Vec<(&String, &Obj)> = matching.by_ref().take(size).collect();
        let more = matching.next().is_some();
        let next = more.then(|| ListPosition {
            offset: 0,
            after: items.last().map(|(id, _)| (*id).clone()),
        });
        let total = counted.then(|| matching_users(t, &q).map(|u| u.len()));
        let items: Vec<&Obj> = items.into_iter().map(|(_, u)| u).collect();
        (items, next, total)
    } else {
        let users = matching_users(t, &q)?;
        let (items, next) = page(&users, position.offset, size);
        let next = next.map(|offset| ListPosition {
            offset,
            after: None,
        });
        (items, next, counted.then_some(Ok(users.len())))
    };
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(select_context(call, "users", &q)),
    );
    if let Some(total) = total {
        body.insert("@odata.count".into(), json!(total?));
    }
    if let Some(next) = next {
        let tok = encode_token(&next);
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/users?{}",
                call.graph_base,
                q.next_link_query(&tok)
            )),
        );
    }
    let value: Vec<Value> = items
        .into_iter()
        .map(|u| Value::Object(project(u, q.select.as_deref())))
        .collect();
    body.insert("value".into(), Value::Array(value));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn count(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(READ)?;
    if !call.eventual() {
        return Err(GraphError::bad_request(
            "$count is not currently supported.",
        ));
    }
    let q = call.query()?;
    validate_filter(
        t,
        call,
        &Query {
            count: true,
            ..q.clone()
        },
    )?;
    let n = matching_users(t, &q)?.len();
    Ok(Reply::text(n.to_string()))
}

pub fn get(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    validate_select(t, &q, false)?;
    let id = t
        .find_user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    let user = t.users.get(&id).ok_or_else(|| GraphError::not_found(key))?;
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/$entity", select_context(call, "users", &q))),
    );
    body.extend(project(user, q.select.as_deref()));
    Ok(Reply::ok(Value::Object(body)))
}

/// Checks and applies client-written properties; returns the names whose value changed.
fn apply_properties(
    t: &Tenant,
    user: &mut Obj,
    input: &Obj,
    creating: bool,
) -> Result<BTreeSet<String>, GraphError> {
    let mut changed = BTreeSet::new();
    for (name, value) in input {
        if name.starts_with("@odata.") {
            continue;
        }
        if props::is_extension_name(name) {
            let ext = t.extension(name).ok_or_else(|| undeclared(name))?;
            let targets_users = ext
                .get("targetObjects")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("User")));
            let data_type = str_prop(ext, "dataType").unwrap_or("String");
            if !targets_users || !props::extension_value_fits(data_type, value) {
                return Err(invalid_value(name));
            }
        } else if let Some(kind) = props::writable_kind(name) {
            if !props::value_fits(kind, value) {
                return Err(invalid_value(name));
            }
            if let Some(type_name) = shapes::user_property_type(name) {
                match value {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            shapes::check(type_name, item, &format!("{name}[{i}]"))?;
                        }
                    }
                    other => shapes::check(type_name, other, name)?,
                }
            }
            if let (Some(max), Some(s)) = (props::max_length(name), value.as_str())
                && s.chars().count() > max
            {
                return Err(invalid_value(name));
            }
            if let (Some(allowed), Some(s)) = (props::allowed_values(name), value.as_str())
                && !allowed.iter().any(|a| a.eq_ignore_ascii_case(s))
            {
                return Err(invalid_value(name));
            }
        } else if props::is_user_property(name) {
            return Err(GraphError::bad_request(format!(
                "Property '{name}' is read-only and cannot be set."
            )));
        } else {
            return Err(undeclared(name));
        }
        if name == "displayName" && value.as_str().is_none_or(|s| s.trim().is_empty()) {
            return Err(invalid_value(name));
        }
        if name == "passwordProfile" {
            // Never stored or returned; only its presence and shape matter.
            if creating
                && value
                    .get("password")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                return Err(invalid_value(name));
            }
            continue;
        }
        if name == "userPrincipalName" {
            let upn = value.as_str().ok_or_else(|| invalid_value(name))?;
            check_upn(t, upn)?;
        }
        if value.is_null() && props::is_extension_name(name) {
            if user.remove(name).is_some() {
                changed.insert(name.clone());
            }
            continue;
        }
        let value = if NON_NULL_COLLECTIONS.contains(&name.as_str()) && value.is_null() {
            json!([])
        } else {
            value.clone()
        };
        if user.get(name) != Some(&value) {
            user.insert(name.clone(), value);
            changed.insert(name.clone());
        }
    }
    if changed.contains("mail") {
        sync_proxy_addresses(user);
        changed.insert("proxyAddresses".into());
    }
    Ok(changed)
}

fn check_upn(t: &Tenant, upn: &str) -> Result<(), GraphError> {
    let domain = upn.rsplit_once('@').map(|(_, d)| d.to_lowercase());
    let local_ok = upn
        .split_once('@')
        .is_some_and(|(l, _)| !l.is_empty() && !l.contains(' '));
    let verified = domain.is_some_and(|d| t.domains.iter().any(|v| v.to_lowercase() == d));
    if !local_ok || !verified {
        return Err(GraphError::bad_request(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        ));
    }
    Ok(())
}

fn undeclared(name: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Property '{name}' does not exist as a declared property or extension property."
    ))
}

fn invalid_value(name: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Invalid value specified for property '{name}' of resource 'User'."
    ))
}

/// Scans every user: only call it for properties that were set or changed.
fn check_unique(
    t: &Tenant,
    user: &Obj,
    except: Option<&str>,
    changed: &BTreeSet<String>,
) -> Result<(), GraphError> {
    for prop in ["userPrincipalName", "mail"] {
        if !changed.contains(prop) {
            continue;
        }
        if let Some(v) = str_prop(user, prop)
            && t.value_taken(prop, v, except)
        {
            return Err(GraphError::conflict(prop));
        }
    }
    Ok(())
}

pub fn create(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(WRITE)?;
    let input = call.json_object()?;
    for required in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "passwordProfile",
        "userPrincipalName",
    ] {
        if input.get(required).is_none_or(Value::is_null) {
            return Err(GraphError::bad_request(format!(
                "Property '{required}' is required when creating the object."
            )));
        }
    }
    let id = new_id();
    let mut user = new_user(&id, call.now);
    let set = apply_properties(t, &mut user, &input, true)?;
    check_unique(t, &user, None, &set)?;
    t.put_user(&id, user.clone());
    t.change_log.record(call.now, &id, ChangeKind::Created);
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("users/$entity")),
    );
    body.extend(project(&user, None));
    Ok(Reply::created(Value::Object(body)))
}

pub fn update(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(WRITE)?;
    let id = t
        .find_user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    let input = call.json_object()?;
    let mut user = t
        .users
        .get(&id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(key))?;
    let changed = apply_properties(t, &mut user, &input, false)?;
    check_unique(t, &user, Some(&id), &changed)?;
    if !changed.is_empty() {
        t.put_user(&id, user);
        t.change_log.record(
            call.now,
            &id,
            ChangeKind::Updated {
                properties: changed,
            },
        );
    }
    Ok(Reply::no_content())
}

pub fn delete(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(DELETE)?;
    let id = t
        .find_user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    let mut user = t.take_user(&id).ok_or_else(|| GraphError::not_found(key))?;
    user.insert("deletedDateTime".into(), json!(super::clock::iso(call.now)));
    t.deleted_users.insert(
        id.clone(),
        DeletedUser {
            user,
            deleted_at: call.now,
        },
    );
    t.change_log.record(call.now, &id, ChangeKind::SoftDeleted);
    super::group_log::member_object_changed(t, &id, call.now);
    Ok(Reply::no_content())
}

pub fn get_manager(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(READ)?;
    let id = t
        .find_user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    let manager = t
        .managers
        .get(&id)
        .and_then(|m| t.users.get(m))
        .ok_or_else(|| GraphError::not_found("manager"))?;
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("directoryObjects/$entity")),
    );
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    body.extend(project(manager, None));
    Ok(Reply::ok(Value::Object(body)))
}

/// `GET /users/{id}/directReports`: the live users whose manager is this user, as
/// directoryObjects (`$select`, `$top` and paging as for group members).
pub fn direct_reports(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    let id = t
        .find_user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    let items: Vec<Value> = t
        .managers
        .iter()
        .filter(|(_, manager)| **manager == id)
        .filter_map(|(report, _)| super::groups::member_object(t, report, q.select.as_deref()))
        .collect();
    super::groups::list_page(
        call,
        &q,
        &format!("users/{id}/directReports"),
        "directoryObjects",
        items,
    )
}

pub fn set_manager(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(WRITE)?;
    let id = t
        .find_user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    let manager_id = reference_id(&call.json_object()?)?;
    if !t.users.contains_key(&manager_id) {
        return Err(GraphError::not_found(&manager_id));
    }
    if manager_id == id {
        return Err(GraphError::bad_request(
            "A user cannot be their own manager.",
        ));
    }
    if t.managers.get(&id) != Some(&manager_id) {
        t.managers.insert(id.clone(), manager_id);
        t.change_log.record(
            call.now,
            &id,
            ChangeKind::Updated {
                properties: ["manager".to_string()].into(),
            },
        );
    }
    Ok(Reply::no_content())
}

pub fn remove_manager(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(WRITE)?;
    let id = t
        .find_user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    if t.managers.remove(&id).is_none() {
        return Err(GraphError::not_found("manager"));
    }
    t.change_log.record(
        call.now,
        &id,
        ChangeKind::Updated {
            properties: ["manager".to_string()].into(),
        },
    );
    Ok(Reply::no_content())
}
