//! `/applications` and directory extension properties (`extension_{appId}_{name}`).

use serde_json::{Value, json};

use super::build::extension_property;
use super::call::{Call, Outcome, Reply};
use super::errors::GraphError;
use super::model::{Application, Obj, Tenant, str_prop};
use super::seed::ExtensionPropertySeed;

pub const READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub const WRITE: &[&str] = &[
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.ReadWrite.All",
];

const DATA_TYPES: &[&str] = &[
    "Binary",
    "Boolean",
    "DateTime",
    "Integer",
    "LargeInteger",
    "String",
];
const TARGETS: &[&str] = &[
    "User",
    "Group",
    "AdministrativeUnit",
    "Application",
    "Device",
    "Organization",
];

fn project(a: &Application) -> Obj {
    let mut o = Obj::new();
    o.insert("id".into(), json!(a.id));
    o.insert("deletedDateTime".into(), Value::Null);
    o.insert("appId".into(), json!(a.app_id));
    o.insert("displayName".into(), json!(a.display_name));
    o
}

fn resolve(t: &Tenant, key: &str) -> Result<String, GraphError> {
    if let Some(app_id) = key
        .strip_prefix("(appId='")
        .and_then(|k| k.strip_suffix("')"))
    {
        return t
            .applications
            .values()
            .find(|a| a.app_id == app_id)
            .map(|a| a.id.clone())
            .ok_or_else(|| GraphError::not_found(app_id));
    }
    t.applications
        .contains_key(key)
        .then(|| key.to_string())
        .ok_or_else(|| GraphError::not_found(key))
}

pub fn list(t: &mut Tenant, call: &Call) -> Outcome {
    call.require(READ)?;
    let q = call.query()?;
    let value: Vec<Value> = t
        .applications
        .values()
        .map(project)
        .filter(|o| q.filter.as_ref().is_none_or(|f| super::filter::eval(f, o)))
        .map(Value::Object)
        .collect();
    Ok(Reply::ok(
        json!({"@odata.context": call.context("applications"), "value": value}),
    ))
}

pub fn get(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(READ)?;
    let id = resolve(t, key)?;
    let a = t
        .applications
        .get(&id)
        .ok_or_else(|| GraphError::not_found(key))?;
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context("applications/$entity")),
    );
    body.extend(project(a));
    Ok(Reply::ok(Value::Object(body)))
}

pub fn list_extensions(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(READ)?;
    let id = resolve(t, key)?;
    let a = t
        .applications
        .get(&id)
        .ok_or_else(|| GraphError::not_found(key))?;
    Ok(Reply::ok(json!({
        "@odata.context": call.context(&format!("applications('{id}')/extensionProperties")),
        "value": a.extension_properties,
    })))
}

pub fn create_extension(t: &mut Tenant, call: &Call, key: &str) -> Outcome {
    call.require(WRITE)?;
    let id = resolve(t, key)?;
    let input = call.json_object()?;
    let name = input
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| {
            GraphError::bad_request(
                "Invalid value specified for property 'name' of resource 'ExtensionProperty'.",
            )
        })?;
    let data_type = input
        .get("dataType")
        .and_then(Value::as_str)
        .unwrap_or("String");
    if !DATA_TYPES.contains(&data_type) {
        return Err(GraphError::bad_request(
            "Invalid value specified for property 'dataType' of resource 'ExtensionProperty'.",
        ));
    }
    let targets: Vec<String> = match input.get("targetObjects") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().filter(|s| TARGETS.contains(s)).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| GraphError::bad_request("Invalid value specified for property 'targetObjects' of resource 'ExtensionProperty'."))?,
        _ => {
            return Err(GraphError::bad_request("Invalid value specified for property 'targetObjects' of resource 'ExtensionProperty'."));
        }
    };
    let app = t
        .applications
        .get(&id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(key))?;
    let ep = extension_property(
        &app,
        &ExtensionPropertySeed {
            name: name.to_string(),
            data_type: data_type.to_string(),
            target_objects: targets,
        },
    );
    let full_name = str_prop(&ep, "name").unwrap_or_default().to_string();
    if t.extension(&full_name).is_some() {
        return Err(GraphError::conflict("name"));
    }
    if let Some(a) = t.applications.get_mut(&id) {
        a.extension_properties.push(ep.clone());
    }
    let mut body = Obj::new();
    body.insert(
        "@odata.context".into(),
        json!(call.context(&format!("applications('{id}')/extensionProperties/$entity"))),
    );
    body.extend(ep);
    Ok(Reply::created(Value::Object(body)))
}

pub fn delete_extension(t: &mut Tenant, call: &Call, key: &str, ext_id: &str) -> Outcome {
    call.require(WRITE)?;
    let id = resolve(t, key)?;
    let a = t
        .applications
        .get_mut(&id)
        .ok_or_else(|| GraphError::not_found(key))?;
    let before = a.extension_properties.len();
    a.extension_properties
        .retain(|e| str_prop(e, "id") != Some(ext_id));
    if a.extension_properties.len() == before {
        return Err(GraphError::not_found(ext_id));
    }
    Ok(Reply::no_content())
}
