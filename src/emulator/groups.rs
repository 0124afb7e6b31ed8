//! `/groups`, direct `members` (with `$ref` add/remove) and `transitiveMembers`.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Value, json};

use super::call::{Call, Outcome, Reply, page, reference_id};
use super::errors::GraphError;
use super::filter;
use super::group_log::{DeletedGroup, GroupChangeKind, member_object_changed};
use super::model::{Group, Obj, ObjectKind, Tenant, new_id};
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

/// Graph's default group properties (group-get.md, group-post-groups.md), in its order.
pub const GROUP_DEFAULT: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
];

/// A new group's properties before the caller's values: every default property, with the
/// values Graph gives a cloud security group (collections empty, never null).
pub fn initial_props(id: &str, now: chrono::DateTime<chrono::Utc>) -> Obj {
    let mut props: Obj = GROUP_DEFAULT
        .iter()
        .map(|p| (p.to_string(), Value::Null))
        .collect();
    let stamp = json!(super::clock::iso(now));
    for list in [
        "groupTypes",
        "proxyAddresses",
        "resourceBehaviorOptions",
        "resourceProvisioningOptions",
        "onPremisesProvisioningErrors",
    ] {
        props.insert(list.into(), json!([]));
    }
    props.insert("id".into(), json!(id));
    props.insert("createdDateTime".into(), stamp.clone());
    props.insert("renewedDateTime".into(), stamp);
    props.insert("isAssignableToRole".into(), json!(false));
    // A security group created through Graph without a visibility is Private.
    props.insert("visibility".into(), json!("Private"));
    // S-1-12-1 + the object id as four 32-bit words, as Entra derives cloud SIDs.
    let words: Vec<String> = uuid::Uuid::parse_str(id)
        .map(|u| {
            u.as_bytes()
                .chunks(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
                .collect()
        })
        .unwrap_or_default();
    props.insert(
        "securityIdentifier".into(),
        json!(format!("S-1-12-1-{}", words.join("-"))),
    );
    props
}

/// Every property the emulator keeps on groups (what `$select` may name).
pub const GROUP_PROPS: &[&str] = GROUP_DEFAULT;

pub fn project_group(g: &Group, select: Option<&[String]>) -> Obj {
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

pub(super) fn list_page(
    call: &Call,
    q: &Query,
    path: &str,
    context: &str,
    items: Vec<Value>,
) -> Outcome {
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

/// Writable on `POST /groups` and `PATCH /groups/{id}` (what group sync and its tests use).
const CREATE_PROPS: &[&str] = &[
    "displayName",
    "description",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
    "visibility",
    "isAssignableToRole",
];
const UPDATE_PROPS: &[&str] = &["displayName", "description", "mailNickname", "visibility"];
/// Graph binds at most 20 relationships (owners plus members) in one create or update.
pub const MAX_BINDS: usize = 20;
const ROLE_ASSIGNABLE_WRITE: &[&str] = &["RoleManagement.ReadWrite.Directory"];

fn invalid_value(property: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Invalid value specified for property '{property}' of resource 'Group'."
    ))
}

/// `mailNickname`: at most 64 ASCII characters, none of `@ () \ [] " ; : . <> ,` or space.
fn valid_mail_nickname(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() && !"@()\\[]\";:.<>, ".contains(c))
}

/// A directory extension registered for groups (`targetObjects` holds `Group`) with a value of
/// its type.
fn check_extension(t: &Tenant, name: &str, v: &Value) -> Result<(), GraphError> {
    let ext = t.extension(name).ok_or_else(|| {
        GraphError::bad_request(format!(
            "Property '{name}' does not exist as a declared property or extension property."
        ))
    })?;
    let for_groups = ext
        .get("targetObjects")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("Group")));
    let data_type = ext
        .get("dataType")
        .and_then(Value::as_str)
        .unwrap_or("String");
    if for_groups && super::props::extension_value_fits(data_type, v) {
        Ok(())
    } else {
        Err(invalid_value(name))
    }
}

/// Checks one writable property's type and constraints.
fn check_prop(name: &str, v: &Value) -> Result<(), GraphError> {
    let ok = match name {
        "displayName" => v
            .as_str()
            .is_some_and(|s| !s.trim().is_empty() && s.chars().count() <= 256),
        "description" => v.is_null() || v.as_str().is_some_and(|s| s.chars().count() <= 1024),
        "mailNickname" => v.as_str().is_some_and(valid_mail_nickname),
        "mailEnabled" | "securityEnabled" | "isAssignableToRole" => v.is_boolean(),
        "groupTypes" => v.as_array().is_some_and(|a| {
            a.iter()
                .all(|t| matches!(t.as_str(), Some("Unified" | "DynamicMembership")))
        }),
        "visibility" => {
            v.is_null() || matches!(v.as_str(), Some("Public" | "Private" | "HiddenMembership"))
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(invalid_value(name)) }
}

/// Resolves `members@odata.bind` URLs to existing directory objects: at most [`MAX_BINDS`],
/// each once, none already a member of `existing`.
fn bound_members(
    t: &Tenant,
    urls: &Value,
    existing: Option<&BTreeSet<String>>,
) -> Result<Vec<String>, GraphError> {
    let urls = urls.as_array().ok_or_else(GraphError::unreadable_body)?;
    if urls.len() > MAX_BINDS {
        return Err(GraphError::bad_request(format!(
            "The request exceeds the limit of {MAX_BINDS} members and owners that can be added in a single request."
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(urls.len());
    for url in urls {
        let mut o = Obj::new();
        o.insert("@odata.id".into(), url.clone());
        let mid = reference_id(&o)?;
        if t.object_kind(&mid).is_none() {
            return Err(GraphError::not_found(&mid));
        }
        if out.contains(&mid) {
            return Err(GraphError::bad_request(
                "The reference 'members' can only be present once as an add/remove change.",
            ));
        }
        out.push(mid);
    }
    if let Some(existing) = existing
        && out.iter().any(|m| existing.contains(m))
    {
        return Err(already_member());
    }
    Ok(out)
}

fn already_member() -> GraphError {
    GraphError::bad_request(
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
}

fn is_dynamic(g: &Group) -> bool {
    g.props
        .get("groupTypes")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|t| t == "DynamicMembership"))
}

pub fn create(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(WRITE)?;
    let input = call.json_object()?;
    for required in [
        "displayName",
        "mailEnabled",
        "mailNickname",
        "securityEnabled",
    ] {
        match input.get(required) {
            Some(v) => check_prop(required, v)?,
            None => return Err(invalid_value(required)),
        }
    }
    let mut members = Vec::new();
    for (k, v) in &input {
        match k.as_str() {
            "members@odata.bind" => members = bound_members(t, v, None)?,
            k if CREATE_PROPS.contains(&k) => check_prop(k, v)?,
            k if super::props::is_extension_name(k) => check_extension(t, k, v)?,
            other => {
                return Err(GraphError::bad_request(format!(
                    "Property '{other}' does not exist as a declared property or extension property."
                )));
            }
        }
    }
    let flag = |name: &str| input.get(name).and_then(Value::as_bool).unwrap_or(false);
    let unified = input
        .get("groupTypes")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|t| t == "Unified"));
    // Graph manages mail-enabled security groups and distribution lists through Exchange only.
    if flag("mailEnabled") && !unified {
        return Err(GraphError::bad_request(
            "Cannot Create a mail-enabled security groups and or distribution list.",
        ));
    }
    if !flag("mailEnabled") && !flag("securityEnabled") {
        return Err(invalid_value("securityEnabled"));
    }
    if flag("isAssignableToRole") {
        // Role-assignable groups need RoleManagement.ReadWrite.Directory on top of Group.Create.
        call.require(ROLE_ASSIGNABLE_WRITE)?;
    }
    let id = new_id();
    let mut props = initial_props(&id, call.now);
    for (k, v) in &input {
        let writable = CREATE_PROPS.contains(&k.as_str()) || super::props::is_extension_name(k);
        if writable && !v.is_null() {
            props.insert(k.clone(), v.clone());
        }
    }
    let group = Group {
        props,
        members: members.into_iter().collect(),
    };
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("groups/$entity")),
    );
    body.extend(project_group(&group, None));
    t.groups.insert(id.clone(), group);
    t.group_log.record(call.now, &id, GroupChangeKind::Created);
    Ok(Reply::created(Value::Object(body)))
}

/// `PATCH /groups/{id}`: properties and/or `members@odata.bind` (all or nothing).
pub fn update(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    let input = call.json_object()?;
    let binds = input.get("members@odata.bind");
    if input.keys().any(|k| k != "members@odata.bind") {
        call.require(WRITE)?;
    } else {
        call.require(MEMBER_WRITE)?;
    }
    let g = t.groups.get(id).ok_or_else(|| GraphError::not_found(id))?;
    for (k, v) in &input {
        match k.as_str() {
            "members@odata.bind" => {}
            k if UPDATE_PROPS.contains(&k) => check_prop(k, v)?,
            k if super::props::is_extension_name(k) => check_extension(t, k, v)?,
            k if CREATE_PROPS.contains(&k) => {
                return Err(GraphError::bad_request(format!(
                    "Property '{k}' is read-only and cannot be set."
                )));
            }
            other => {
                return Err(GraphError::bad_request(format!(
                    "Property '{other}' does not exist as a declared property or extension property."
                )));
            }
        }
    }
    let added = match binds {
        Some(urls) => {
            if is_dynamic(g) {
                return Err(dynamic_members());
            }
            let added = bound_members(t, urls, Some(&g.members))?;
            if added.contains(&id.to_string()) {
                return Err(GraphError::bad_request(
                    "A group cannot be a member of itself.",
                ));
            }
            added
        }
        None => Vec::new(),
    };
    let g = t
        .groups
        .get_mut(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut changed = BTreeSet::new();
    for (k, v) in &input {
        let writable = UPDATE_PROPS.contains(&k.as_str()) || super::props::is_extension_name(k);
        if writable && g.props.get(k) != Some(v) {
            g.props.insert(k.clone(), v.clone());
            changed.insert(k.clone());
        }
    }
    g.members.extend(added.iter().cloned());
    if !changed.is_empty() {
        t.group_log.record(
            call.now,
            id,
            GroupChangeKind::Updated {
                properties: changed,
            },
        );
    }
    if !added.is_empty() {
        t.group_log.record(
            call.now,
            id,
            GroupChangeKind::Members {
                members: added.into_iter().collect(),
            },
        );
    }
    Ok(Reply::no_content())
}

fn dynamic_members() -> GraphError {
    GraphError::bad_request(
        "Insufficient privileges to complete the operation: members of a group with dynamic membership cannot be changed.",
    )
}

/// `DELETE /groups/{id}`: security and Microsoft 365 groups go to deleted items for 30 days
/// with their memberships; nested in other groups, they stop showing as members meanwhile.
pub fn delete(t: &mut Tenant, call: &Call, id: &str) -> Outcome {
    call.require(WRITE)?;
    let mut group = t
        .groups
        .remove(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    group
        .props
        .insert("deletedDateTime".into(), json!(super::clock::iso(call.now)));
    t.deleted_groups.insert(
        id.to_string(),
        DeletedGroup {
            group,
            deleted_at: call.now,
        },
    );
    t.group_log
        .record(call.now, id, GroupChangeKind::SoftDeleted);
    member_object_changed(t, id, call.now);
    Ok(Reply::no_content())
}
/// A member as a `directoryObject` with its `@odata.type`.
pub(super) fn member_object(t: &Tenant, id: &str, select: Option<&[String]>) -> Option<Value> {
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
    if is_dynamic(group) {
        return Err(dynamic_members());
    }
    if !group.members.insert(member.clone()) {
        return Err(already_member());
    }
    t.group_log.record(
        call.now,
        id,
        GroupChangeKind::Members {
            members: [member].into(),
        },
    );
    Ok(Reply::no_content())
}

pub fn remove_member(t: &mut Tenant, call: &Call, id: &str, member: &str) -> Outcome {
    call.require(MEMBER_WRITE)?;
    let group = t
        .groups
        .get_mut(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    if is_dynamic(group) {
        return Err(dynamic_members());
    }
    if !group.members.remove(member) {
        return Err(GraphError::not_found(member));
    }
    t.group_log.record(
        call.now,
        id,
        GroupChangeKind::Members {
            members: [member.to_string()].into(),
        },
    );
    Ok(Reply::no_content())
}
