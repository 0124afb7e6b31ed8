//! `/servicePrincipals` and `appRoleAssignedTo` (who is assigned to an app: the sync scope).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::call::{Call, Outcome, Reply};
use super::errors::GraphError;
use super::filter;
use super::model::{Obj, ServicePrincipal, Tenant, str_prop};

pub const READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub const ASSIGN: &[&str] = &[
    "AppRoleAssignment.ReadWrite.All",
    "Application.ReadWrite.All",
    "Directory.ReadWrite.All",
];

pub fn project(sp: &ServicePrincipal) -> Obj {
    let roles: Vec<Value> = sp
        .app_roles
        .iter()
        .map(|r| {
            json!({"id": r.id, "value": r.value, "displayName": r.value, "description": r.value,
                   "allowedMemberTypes": ["User"], "isEnabled": true, "origin": "Application"})
        })
        .collect();
    let mut o = Obj::new();
    o.insert("id".into(), json!(sp.id));
    o.insert("deletedDateTime".into(), Value::Null);
    o.insert("accountEnabled".into(), json!(true));
    o.insert("appId".into(), json!(sp.app_id));
    o.insert("displayName".into(), json!(sp.display_name));
    o.insert("servicePrincipalType".into(), json!("Application"));
    o.insert("appRoles".into(), Value::Array(roles));
    o
}

/// Resolves `{id}` or the `(appId='...')` key form.
pub fn resolve(t: &Tenant, key: &str) -> Result<String, GraphError> {
    if let Some(app_id) = key
        .strip_prefix("(appId='")
        .and_then(|k| k.strip_suffix("')"))
    {
        return t
            .service_principal_by_app(app_id)
            .map(|sp| sp.id.clone())
            .ok_or_else(|| GraphError::not_found(app_id));
    }
    if t.service_principals.contains_key(key) {
        Ok(key.to_string())
    } else {
        Err(GraphError::not_found(key))
    }
}

pub fn list(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    let value: Vec<Value> = t
        .service_principals
        .values()
        .map(project)
        .filter(|o| q.filter.as_ref().is_none_or(|f| filter::eval(f, o)))
        .map(Value::Object)
        .collect();
    Ok(Reply::ok(
        json!({"@odata.context": call.context("servicePrincipals"), "value": value}),
    ))
}

pub fn get(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(READ)?;
    let id = resolve(t, key)?;
    let sp = t
        .service_principals
        .get(&id)
        .ok_or_else(|| GraphError::not_found(key))?;
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("servicePrincipals/$entity")),
    );
    body.extend(project(sp));
    Ok(Reply::ok(Value::Object(body)))
}

/// A new `appRoleAssignment` of `principal` to `sp`; `None` if the principal does not exist.
pub fn assignment_object(
    t: &Tenant,
    sp: &ServicePrincipal,
    principal: &str,
    role: &str,
    now: DateTime<Utc>,
) -> Option<Obj> {
    let kind = t.object_kind(principal)?;
    let name = match kind {
        super::model::ObjectKind::User => t
            .users
            .get(principal)
            .and_then(|u| str_prop(u, "displayName")),
        super::model::ObjectKind::Group => t
            .groups
            .get(principal)
            .and_then(|g| str_prop(&g.props, "displayName")),
        super::model::ObjectKind::ServicePrincipal => t
            .service_principals
            .get(principal)
            .map(|s| s.display_name.as_str()),
    };
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    let id = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    let mut o = Obj::new();
    o.insert("id".into(), json!(id));
    o.insert("deletedDateTime".into(), Value::Null);
    o.insert("appRoleId".into(), json!(role));
    o.insert("createdDateTime".into(), json!(super::clock::iso(now)));
    o.insert("principalDisplayName".into(), json!(name));
    o.insert("principalId".into(), json!(principal));
    o.insert("principalType".into(), json!(kind.principal_type()));
    o.insert("resourceDisplayName".into(), json!(sp.display_name));
    o.insert("resourceId".into(), json!(sp.id));
    Some(o)
}

pub fn assigned_to(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    let id = resolve(t, key)?;
    let value: Vec<Value> = t
        .assignments
        .values()
        .filter(|a| str_prop(a, "resourceId") == Some(id.as_str()))
        .filter(|a| str_prop(a, "principalId").is_some_and(|p| t.object_kind(p).is_some()))
        .filter(|a| q.filter.as_ref().is_none_or(|f| filter::eval(f, a)))
        .cloned()
        .map(Value::Object)
        .collect();
    Ok(Reply::ok(json!({
        "@odata.context": call.context(&format!("servicePrincipals('{id}')/appRoleAssignedTo")),
        "value": value,
    })))
}

pub fn assign(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(ASSIGN)?;
    let id = resolve(t, key)?;
    let input = call.json_object()?;
    let field = |name: &str| -> Result<String, GraphError> {
        input
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                GraphError::bad_request(format!(
                    "Invalid value specified for property '{name}' of resource 'AppRoleAssignment'."
                ))
            })
    };
    let principal = field("principalId")?;
    let resource = field("resourceId")?;
    let role = field("appRoleId")?;
    let sp = t
        .service_principals
        .get(&id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(key))?;
    if resource != sp.id {
        return Err(GraphError::bad_request(
            "The resourceId does not match the service principal in the URL.",
        ));
    }
    if role != uuid::Uuid::nil().to_string() && !sp.app_roles.iter().any(|r| r.id == role) {
        return Err(GraphError::bad_request(
            "Permission being assigned was not found on application",
        ));
    }
    let duplicate = t.assignments.values().any(|a| {
        str_prop(a, "resourceId") == Some(sp.id.as_str())
            && str_prop(a, "principalId") == Some(principal.as_str())
            && str_prop(a, "appRoleId") == Some(role.as_str())
    });
    if duplicate {
        return Err(GraphError::bad_request(
            "Permission being assigned already exists on the object",
        ));
    }
    let a = assignment_object(t, &sp, &principal, &role, call.now)
        .ok_or_else(|| GraphError::not_found(&principal))?;
    let aid = str_prop(&a, "id").unwrap_or_default().to_string();
    t.assignments.insert(aid, a.clone());
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context(&format!(
            "servicePrincipals('{}')/appRoleAssignedTo/$entity",
            sp.id
        ))),
    );
    body.extend(a);
    Ok(Reply::created(Value::Object(body)))
}

pub fn unassign(t: &mut Tenant, call: &Call, key: &str, assignment: &str) -> Outcome {
    call.require(ASSIGN)?;
    let id = resolve(t, key)?;
    match t.assignments.get(assignment) {
        Some(a) if str_prop(a, "resourceId") == Some(id.as_str()) => {
            t.assignments.remove(assignment);
            Ok(Reply::no_content())
        }
        _ => Err(GraphError::not_found(assignment)),
    }
}
