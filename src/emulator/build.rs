//! Turns a [`Seed`] into a [`Directory`], resolving references (managers, members, assignments).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::clock::iso;
use super::errors::EmulatorError;
use super::model::{
    AppCredentials, AppRole, Application, Directory, Group, Obj, Partner, ServicePrincipal, Tenant,
    new_id, str_prop,
};
use super::seed::{ExtensionPropertySeed, Seed, TenantSeed};

pub fn directory_from_seed(seed: &Seed, now: DateTime<Utc>) -> Result<Directory, EmulatorError> {
    let mut dir = Directory::default();
    for app in &seed.apps {
        dir.apps.insert(
            app.app_id.clone(),
            AppCredentials {
                app_id: app.app_id.clone(),
                display_name: app
                    .display_name
                    .clone()
                    .unwrap_or_else(|| app.app_id.clone()),
                client_secrets: app.client_secrets.clone(),
                federated_credentials: app.federated_credentials.clone(),
            },
        );
    }
    for ts in &seed.tenants {
        if dir.tenants.contains_key(&ts.id) {
            return Err(EmulatorError::Seed(format!(
                "tenant {} appears twice",
                ts.id
            )));
        }
        let tenant = tenant_from_seed(ts, &dir, now)?;
        dir.tenants.insert(ts.id.clone(), tenant);
    }
    Ok(dir)
}

/// A fresh user object with the properties Graph always maintains.
pub fn new_user(id: &str, now: DateTime<Utc>) -> Obj {
    let mut u = Obj::new();
    u.insert("id".into(), json!(id));
    u.insert("createdDateTime".into(), json!(iso(now)));
    u.insert("accountEnabled".into(), json!(true));
    u.insert("userType".into(), json!("Member"));
    u.insert("creationType".into(), Value::Null);
    u.insert("businessPhones".into(), json!([]));
    u.insert("otherMails".into(), json!([]));
    u.insert("proxyAddresses".into(), json!([]));
    u
}

/// `proxyAddresses` follows `mail` (user.md: "mail updates proxyAddresses").
pub fn sync_proxy_addresses(user: &mut Obj) {
    let proxies = match str_prop(user, "mail") {
        Some(mail) => json!([format!("SMTP:{mail}")]),
        None => json!([]),
    };
    user.insert("proxyAddresses".into(), proxies);
}

pub fn extension_property(app: &Application, seed: &ExtensionPropertySeed) -> Obj {
    let name = format!("extension_{}_{}", app.app_id.replace('-', ""), seed.name);
    let mut o = Obj::new();
    o.insert("id".into(), json!(new_id()));
    o.insert("deletedDateTime".into(), Value::Null);
    o.insert("appDisplayName".into(), json!(app.display_name));
    o.insert("dataType".into(), json!(seed.data_type));
    o.insert("isMultiValued".into(), json!(false));
    o.insert("isSyncedFromOnPremises".into(), json!(false));
    o.insert("name".into(), json!(name));
    o.insert("targetObjects".into(), json!(seed.target_objects));
    o
}

fn tenant_from_seed(
    ts: &TenantSeed,
    dir: &Directory,
    now: DateTime<Utc>,
) -> Result<Tenant, EmulatorError> {
    let err = |m: String| EmulatorError::Seed(format!("tenant {}: {m}", ts.id));
    if ts.domains.is_empty() {
        return Err(err("needs at least one domain".into()));
    }
    let mut t = Tenant {
        id: ts.id.clone(),
        display_name: ts
            .display_name
            .clone()
            .unwrap_or_else(|| ts.domains[0].clone()),
        domains: ts.domains.clone(),
        size_class: ts.size_class,
        guest_invites_allowed: ts.guest_invites_allowed,
        ..Tenant::default()
    };
    for sp in &ts.service_principals {
        let id = sp.id.clone().unwrap_or_else(new_id);
        let display_name = sp
            .display_name
            .clone()
            .or_else(|| dir.apps.get(&sp.app_id).map(|a| a.display_name.clone()))
            .unwrap_or_else(|| sp.app_id.clone());
        t.service_principals.insert(
            id.clone(),
            ServicePrincipal {
                id,
                app_id: sp.app_id.clone(),
                display_name,
                permissions: sp.permissions.iter().cloned().collect(),
                app_roles: sp
                    .app_roles
                    .iter()
                    .map(|r| AppRole {
                        id: r.id.clone(),
                        value: r.value.clone(),
                    })
                    .collect(),
            },
        );
    }
    for a in &ts.applications {
        let mut app = Application {
            id: a.id.clone().unwrap_or_else(new_id),
            app_id: a.app_id.clone(),
            display_name: a
                .display_name
                .clone()
                .or_else(|| dir.apps.get(&a.app_id).map(|c| c.display_name.clone()))
                .unwrap_or_else(|| a.app_id.clone()),
            extension_properties: Vec::new(),
        };
        for e in &a.extension_properties {
            let ep = extension_property(&app, e);
            app.extension_properties.push(ep);
        }
        t.applications.insert(app.id.clone(), app);
    }
    for us in &ts.users {
        let id = us
            .properties
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(new_id);
        let mut user = new_user(&id, now);
        for (k, v) in &us.properties {
            user.insert(k.clone(), v.clone());
        }
        let upn = str_prop(&user, "userPrincipalName")
            .ok_or_else(|| err(format!("user {id} has no userPrincipalName")))?
            .to_string();
        if t.value_taken("userPrincipalName", &upn, None) {
            return Err(err(format!("duplicate userPrincipalName {upn}")));
        }
        if !user.contains_key("displayName") {
            user.insert("displayName".into(), json!(upn));
        }
        if !user.contains_key("proxyAddresses") || user.get("proxyAddresses") == Some(&json!([])) {
            sync_proxy_addresses(&mut user);
        }
        t.put_user(&id, user);
    }
    for us in &ts.users {
        if let Some(manager) = &us.manager {
            let upn = str_prop(&us.properties, "userPrincipalName").unwrap_or_default();
            let user_id = t
                .find_user_id(upn)
                .ok_or_else(|| err(format!("user {upn} missing")))?;
            let manager_id = t
                .find_user_id(manager)
                .ok_or_else(|| err(format!("manager {manager} of {upn} is not a seeded user")))?;
            t.managers.insert(user_id, manager_id);
        }
    }
    for gs in &ts.groups {
        let id = gs.id.clone().unwrap_or_else(new_id);
        let mut props = super::groups::initial_props(&id, now);
        props.insert("displayName".into(), json!(gs.display_name));
        props.insert("description".into(), json!(gs.description));
        props.insert("groupTypes".into(), json!(gs.group_types));
        props.insert("mailEnabled".into(), json!(gs.mail_enabled));
        props.insert(
            "mailNickname".into(),
            json!(
                gs.mail_nickname
                    .clone()
                    .unwrap_or_else(|| gs.display_name.replace(' ', ""))
            ),
        );
        props.insert("securityEnabled".into(), json!(gs.security_enabled));
        props.insert("isAssignableToRole".into(), json!(gs.is_assignable_to_role));
        props.insert("membershipRule".into(), json!(gs.membership_rule));
        if gs.membership_rule.is_some() {
            props.insert("membershipRuleProcessingState".into(), json!("On"));
        }
        props.insert("createdDateTime".into(), json!(iso(now)));
        t.groups.insert(
            id,
            Group {
                props,
                members: BTreeSet::new(),
            },
        );
    }
    for gs in &ts.groups {
        let gid = resolve_group(&t, gs.id.as_deref().unwrap_or(&gs.display_name))
            .ok_or_else(|| err(format!("group {} missing", gs.display_name)))?;
        for m in &gs.members {
            let member = t
                .find_user_id(m)
                .or_else(|| resolve_group(&t, m))
                .ok_or_else(|| {
                    err(format!(
                        "member {m} of group {} is neither a user nor a group",
                        gs.display_name
                    ))
                })?;
            if let Some(g) = t.groups.get_mut(&gid) {
                g.members.insert(member);
            }
        }
    }
    for a in &ts.app_role_assignments {
        let sp = t
            .service_principal_by_app(&a.app_id)
            .ok_or_else(|| {
                err(format!(
                    "assignment to app {} without a service principal",
                    a.app_id
                ))
            })?
            .clone();
        let principal = t
            .find_user_id(&a.principal)
            .or_else(|| resolve_group(&t, &a.principal))
            .ok_or_else(|| err(format!("assignment principal {} not found", a.principal)))?;
        let role = a
            .app_role_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::nil().to_string());
        let assignment =
            super::service_principals::assignment_object(&t, &sp, &principal, &role, now)
                .ok_or_else(|| err(format!("assignment principal {} not found", a.principal)))?;
        t.assignments.insert(
            str_prop(&assignment, "id").unwrap_or_default().to_string(),
            assignment,
        );
    }
    for p in &ts.partners {
        let mut config = super::policy::default_partner(&p.tenant_id);
        for (k, v) in &p.properties {
            if k != "tenantId" {
                config.insert(k.clone(), v.clone());
            }
        }
        let identity_sync = p.identity_synchronization.as_ref().map(|s| {
            let mut o = Obj::new();
            o.insert("tenantId".into(), json!(p.tenant_id));
            o.insert(
                "displayName".into(),
                s.get("displayName").cloned().unwrap_or(Value::Null),
            );
            o.insert(
                "userSyncInbound".into(),
                s.get("userSyncInbound")
                    .cloned()
                    .unwrap_or(json!({"isSyncAllowed": false})),
            );
            // Beta-only `groupSyncInbound`: kept only when the seed sets it; served on /beta (policy.rs).
            if let Some(g) = s.get("groupSyncInbound") {
                o.insert("groupSyncInbound".into(), g.clone());
            }
            o
        });
        t.partners.insert(
            p.tenant_id.clone(),
            Partner {
                config,
                identity_sync,
            },
        );
    }
    Ok(t)
}

fn resolve_group(t: &Tenant, key: &str) -> Option<String> {
    if t.groups.contains_key(key) {
        return Some(key.to_string());
    }
    t.groups
        .iter()
        .find(|(_, g)| str_prop(&g.props, "displayName") == Some(key))
        .map(|(id, _)| id.clone())
}
