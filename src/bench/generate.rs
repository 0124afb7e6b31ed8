//! The bench's world: a source tenant of N generated users (realistic attributes, departments
//! and groups, a management chain, a share disabled and a share out of scope) and an empty
//! target, both granting the sync app what it needs and allowing sync between them.
//!
//! Users get fixed object ids and refer to their manager and groups by id, so building the
//! directory does not search users by name.

use serde_json::{Value, json};

use crate::emulator::Seed;

pub const APP: &str = "b3c4e000-0000-4000-8000-000000000001";
pub const SECRET: &str = "bench-secret-value";
pub const SOURCE: &str = "5c000000-0000-4000-8000-00000000000a";
pub const TARGET: &str = "7a000000-0000-4000-8000-00000000000b";
pub const SOURCE_DOMAIN: &str = "contoso-bench.onmicrosoft.com";
pub const TARGET_DOMAIN: &str = "fabrikam-bench.onmicrosoft.com";

/// Departments; users of the last one are out of scope (the pair's scoping filter).
pub const DEPARTMENTS: [&str; 9] = [
    "Sales",
    "Engineering",
    "Finance",
    "Marketing",
    "Operations",
    "Legal",
    "Support",
    "Research",
    OUT_OF_SCOPE_DEPARTMENT,
];
pub const OUT_OF_SCOPE_DEPARTMENT: &str = "Contractors";
const CITIES: [(&str, &str, &str); 6] = [
    ("Seattle", "United States", "US"),
    ("London", "United Kingdom", "GB"),
    ("Paris", "France", "FR"),
    ("Munich", "Germany", "DE"),
    ("Toronto", "Canada", "CA"),
    ("Sydney", "Australia", "AU"),
];
const GIVEN: [&str; 12] = [
    "Adele", "Alex", "Diego", "Grady", "Isaiah", "Johanna", "Lee", "Lidia", "Lynne", "Megan",
    "Nestor", "Patti",
];
const SURNAMES: [&str; 10] = [
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Langer",
    "Lauer",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
];
const TITLES: [&str; 6] = [
    "Analyst",
    "Engineer",
    "Account Executive",
    "Consultant",
    "Specialist",
    "Manager",
];
/// Reports per manager: a management chain about log₈(N) deep.
const SPAN: usize = 8;

/// The object id of generated source user `i`.
pub fn user_id(i: usize) -> String {
    format!("00000000-0000-4000-a000-{i:012}")
}

fn group_id(i: usize) -> String {
    format!("00000000-0000-4000-b000-{i:012}")
}

/// The department of user `i`: one user in 33 is a contractor (out of scope).
pub fn department(i: usize) -> &'static str {
    if i % 33 == 32 {
        OUT_OF_SCOPE_DEPARTMENT
    } else {
        DEPARTMENTS[i % (DEPARTMENTS.len() - 1)]
    }
}

/// User `i` is disabled in the source: one in 50.
pub fn disabled(i: usize) -> bool {
    i % 50 == 49
}

/// The properties of generated source user `i` (without id and manager).
pub fn user_properties(i: usize) -> serde_json::Map<String, Value> {
    let given = GIVEN[i % GIVEN.len()];
    let surname = SURNAMES[(i / GIVEN.len()) % SURNAMES.len()];
    let alias = format!("{}.{}{i}", given.to_lowercase(), surname.to_lowercase());
    let (city, country, code) = CITIES[i % CITIES.len()];
    let department = department(i);
    let value = json!({
        "userPrincipalName": format!("{alias}@{SOURCE_DOMAIN}"),
        "mail": format!("{alias}@{SOURCE_DOMAIN}"),
        "mailNickname": alias,
        "displayName": format!("{given} {surname} ({i})"),
        "givenName": given,
        "surname": surname,
        "jobTitle": format!("{} {}", department, TITLES[i % TITLES.len()]),
        "department": department,
        "companyName": "Contoso",
        "officeLocation": format!("{}/{}", i % 40 + 1, i % 7 + 1),
        "city": city,
        "country": country,
        "usageLocation": code,
        "employeeId": format!("E{i:07}"),
        "mobilePhone": format!("+1 555 {:04} {:03}", i % 10_000, i % 997),
        "accountEnabled": !disabled(i),
        "userType": "Member",
    });
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The manager of user `i` (user 0 has none).
pub fn manager_of(i: usize) -> Option<usize> {
    (i > 0).then(|| (i - 1) / SPAN)
}

fn tenant(id: &str, domain: &str, other: &str, users: Vec<Value>, groups: Vec<Value>) -> Value {
    json!({
        "id": id,
        "displayName": domain,
        "domains": [domain],
        "servicePrincipals": [{
            "appId": APP,
            "id": format!("5b000000-0000-4000-8000-{}", &id[24..]),
            "permissions": ["User.ReadWrite.All", "User.Invite.All", "Group.Read.All",
                "Application.ReadWrite.All", "Policy.Read.All",
                "Policy.ReadWrite.CrossTenantAccess", "Directory.Read.All"],
        }],
        "applications": [{
            "appId": APP,
            "extensionProperties": [{"name": "ctsyncAnchor"}],
        }],
        "users": users,
        "groups": groups,
        "partners": [{
            "tenantId": other,
            "automaticUserConsentSettings": {"inboundAllowed": true, "outboundAllowed": true},
            "identitySynchronization": {"userSyncInbound": {"isSyncAllowed": true}},
        }],
    })
}

/// The seed: `users` generated source users, one group per department, an empty target.
pub fn seed(users: usize) -> Result<Seed, serde_json::Error> {
    let mut list = Vec::with_capacity(users);
    for i in 0..users {
        let mut props = user_properties(i);
        props.insert("id".into(), Value::String(user_id(i)));
        if let Some(m) = manager_of(i) {
            props.insert("manager".into(), Value::String(user_id(m)));
        }
        list.push(Value::Object(props));
    }
    let groups: Vec<Value> = DEPARTMENTS
        .iter()
        .enumerate()
        .map(|(g, name)| {
            let members: Vec<String> = (0..users)
                .filter(|i| department(*i) == *name)
                .map(user_id)
                .collect();
            json!({"id": group_id(g), "displayName": format!("{name} team"), "members": members})
        })
        .collect();
    serde_json::from_value(json!({
        "apps": [{"appId": APP, "displayName": "ctsync bench", "clientSecrets": [SECRET]}],
        "tenants": [
            tenant(SOURCE, SOURCE_DOMAIN, TARGET, list, groups),
            tenant(TARGET, TARGET_DOMAIN, SOURCE, Vec::new(), Vec::new()),
        ],
    }))
}

/// How many generated users the pair provisions: internal members outside the contractors.
pub fn in_scope(users: usize) -> usize {
    (0..users)
        .filter(|i| department(*i) != OUT_OF_SCOPE_DEPARTMENT)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_seed_builds_with_managers_groups_and_exclusions() {
        let seed = seed(200).expect("seed");
        let source = &seed.tenants[0];
        assert_eq!(source.users.len(), 200);
        assert_eq!(
            source.users[9].manager.as_deref(),
            Some(user_id(1).as_str())
        );
        assert!(
            source
                .users
                .iter()
                .any(|u| u.properties["accountEnabled"] == false)
        );
        assert!(in_scope(200) < 200 && in_scope(200) > 180);
        assert_eq!(source.groups.len(), DEPARTMENTS.len());
        let upns: std::collections::BTreeSet<_> = source
            .users
            .iter()
            .map(|u| {
                u.properties["userPrincipalName"]
                    .as_str()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(upns.len(), 200, "userPrincipalNames are unique");
    }
}
