//! `/groups`, direct `members` (with `$ref` add/remove) and `transitiveMembers`.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Value, json};

use super::call::{Call, Outcome, Reply, page, reference_id};
use super::errors::GraphError;
use super::filter;
use super::model::{Group, Obj, ObjectKind, Tenant, new_id, str_prop};
use super::odata::{Query, decode_token, encode_token};
use super::users;

pub const READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub const WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
pub const MEMBER_WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

const GROUP_DEFAULT: &[&str] = &[
    "id",
    "deletedDateTime",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
];

fn project_group(g: &Group, select: Option<&[String]>) -> Obj {
    let names: Vec<&str> = match select {
        Some(s) => s.iter().map(String::as_str).collect(),
        None => GROUP_DEFAULT.to_vec(),
    };
    names
        .into_iter()
        .map(|n| {
            (
                n.to_string(),
                g.props.get(n).cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn list_page(call: &Call, q: &Query, path: &str, context: &str, items: Vec<Value>) -> Outcome {
    let offset = match &q.skiptoken {
        Some(tok) => decode_token::<usize>(tok)
            .ok_or_else(|| GraphError::bad_request("Invalid skip token."))?,
        None => 0,
    };
    let (page_items, next) = page(&items, offset, q.top.unwrap_or(call.settings.page_size));
    let mut body = Obj::new();
    body.insert("@odata.context".into(), json!(call.context(context)));
    if q.count && call.eventual() && q.skiptoken.is_none() {
        body.insert("@odata.count".into(), json!(items.len()));
    }
    if let Some(n) = next {
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/{path}?{}",
                call.graph_base,
                q.next_link_query(&encode_token(&n))
            )),
        );
    }
    body.insert("value".into(), Value::Array(page_items));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn list(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    let items: Vec<Value> = t
        .groups
        .values()
        .filter(|g| q.filter.as_ref().is_none_or(|f| filter::eval(f, &g.props)))
        .map(|g| Value::Object(project_group(g, q.select.as_deref())))
        .collect();
    list_page(call, &q, "groups", "groups", items)
}

pub fn get(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    let g = t.groups.get(id).ok_or_else(|| GraphError::not_found(id))?;
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("groups/$entity")),
    );
    body.extend(project_group(g, q.select.as_deref()));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn create(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(WRITE)?;
    let input = call.json_object()?;
    for (required, is_ok) in [
        (
            "displayName",
            input.get("displayName").is_some_and(Value::is_string),
        ),
        (
            "mailEnabled",
            input.get("mailEnabled").is_some_and(Value::is_boolean),
        ),
        (
            "mailNickname",
            input.get("mailNickname").is_some_and(Value::is_string),
        ),
        (
            "securityEnabled",
            input.get("securityEnabled").is_some_and(Value::is_boolean),
        ),
    ] {
        if !is_ok {
            return Err(GraphError::bad_request(format!(
                "Invalid value specified for property '{required}' of resource 'Group'."
            )));
        }
    }
    let id = new_id();
    let mut props = Obj::new();
    props.insert("id".into(), json!(id));
    props.insert("deletedDateTime".into(), Value::Null);
    props.insert("createdDateTime".into(), json!(super::clock::iso(call.now)));
    props.insert("groupTypes".into(), json!([]));
    props.insert("description".into(), Value::Null);
    props.insert("mail".into(), Value::Null);
    let mut members = BTreeSet::new();
    for (k, v) in &input {
        match k.as_str() {
            "displayName" | "mailEnabled" | "mailNickname" | "securityEnabled" | "description"
            | "groupTypes" | "visibility" => {
                props.insert(k.clone(), v.clone());
            }
            "members@odata.bind" => {
                for url in v.as_array().ok_or_else(GraphError::unreadable_body)? {
                    let mut o = Obj::new();
                    o.insert("@odata.id".into(), url.clone());
                    let mid = reference_id(&o)?;
                    if t.object_kind(&mid).is_none() {
                        return Err(GraphError::not_found(&mid));
                    }
                    members.insert(mid);
                }
            }
            other => {
                return Err(GraphError::bad_request(format!(
                    "Property '{other}' does not exist as a declared property or extension property."
                )));
            }
        }
    }
    let group = Group { props, members };
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("groups/$entity")),
    );
    body.extend(project_group(&group, None));
    t.groups.insert(id, group);
    Ok(Reply::created(Value::Object(body)))
}

pub fn delete(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    call.require(WRITE)?;
    // Security groups are never soft-deleted; the emulator hard-deletes every group.
    t.groups
        .remove(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    for g in t.groups.values_mut() {
        g.members.remove(id);
    }
    t.assignments
        .retain(|_, a| str_prop(a, "principalId") != Some(id));
    Ok(Reply::no_content())
}

/// A member as a `directoryObject` with its `@odata.type`.
fn member_object(t: &Tenant, id: &str, select: Option<&[String]>) -> Option<Value> {
    let (kind, mut obj) = match t.object_kind(id)? {
        ObjectKind::User => (ObjectKind::User, users::project(t.users.get(id)?, select)),
        ObjectKind::Group => (ObjectKind::Group, project_group(t.groups.get(id)?, select)),
        ObjectKind::ServicePrincipal => {
            let sp = t.service_principals.get(id)?;
            (
                ObjectKind::ServicePrincipal,
                super::service_principals::project(sp),
            )
        }
    };
    obj.insert("id".into(), json!(id));
    let mut out = Obj::new();
    out.insert("@odata.type".into(), json!(kind.odata_type()));
    out.extend(obj);
    Some(Value::Object(out))
}

pub fn members(t: &mut Tenant, call: &Call, id: &str, transitive: bool) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    let g = t.groups.get(id).ok_or_else(|| GraphError::not_found(id))?;
    let ids: Vec<String> = if transitive {
        transitive_members(t, id)
    } else {
        g.members.iter().cloned().collect()
    };
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|m| member_object(t, m, q.select.as_deref()))
        .filter(|v| match (&q.filter, v.as_object()) {
            (Some(f), Some(o)) => filter::eval(f, o),
            _ => true,
        })
        .collect();
    let nav = if transitive {
        "transitiveMembers"
    } else {
        "members"
    };
    list_page(
        call,
        &q,
        &format!("groups/{id}/{nav}"),
        "directoryObjects",
        items,
    )
}

/// Every object reachable through nested membership (nested groups included), each once.
pub fn transitive_members(t: &Tenant, id: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut queue: VecDeque<String> = VecDeque::from([id.to_string()]);
    while let Some(gid) = queue.pop_front() {
        let Some(g) = t.groups.get(&gid) else {
            continue;
        };
        for m in &g.members {
            if m != id && seen.insert(m.clone()) {
                out.push(m.clone());
                if t.groups.contains_key(m) {
                    queue.push_back(m.clone());
                }
            }
        }
    }
    out
}

pub fn add_member(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    call.require(MEMBER_WRITE)?;
    let member = reference_id(&call.json_object()?)?;
    if !t.groups.contains_key(id) {
        return Err(GraphError::not_found(id));
    }
    if t.object_kind(&member).is_none() {
        return Err(GraphError::not_found(&member));
    }
    if member == id {
        return Err(GraphError::bad_request(
            "A group cannot be a member of itself.",
        ));
    }
    let group = t
        .groups
        .get_mut(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    if !group.members.insert(member) {
        return Err(GraphError::bad_request(
            "One or more added object references already exist for the following modified properties: 'members'.",
        ));
    }
    Ok(Reply::no_content())
}

pub fn remove_member(t: &mut Tenant, call: &Call, id: &str, member: &str) -> Outcome {
    call.require(MEMBER_WRITE)?;
    let group = t
        .groups
        .get_mut(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    if !group.members.remove(member) {
        return Err(GraphError::not_found(id));
    }
    Ok(Reply::no_content())
}
