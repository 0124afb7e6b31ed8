//! Conformance with Microsoft's verbatim examples (`../shared/conformance/graph-examples/`):
//! for each example the emulator serves, send the request behind it and check the response has
//! the same property names and JSON types (ignoring `@odata.*` annotations; `null` on either side
//! matches any type, as every compared property is nullable). Then check user, invitation,
//! policy and deletedItems payloads against the CSDL subset.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ctsync::emulator::EmulatorOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::common::*;

/// Examples outside the emulator's surface, and why.
const OUT_OF_SURFACE: &[(&str, &str)] = &[
    (
        "batch-request.json",
        "a request body, not a response; it shapes the batch sent for batch-response.json",
    ),
    (
        "cts-provisioning-log-excerpt.json",
        "provisioning logs (auditLogs) are what ctsync produces itself, not a Graph API it calls",
    ),
    (
        "provisioning-log.json",
        "auditLogs/provisioning: produced by ctsync, not served by the emulator",
    ),
    (
        "provisioning-log-error.json",
        "auditLogs/provisioning: produced by ctsync, not served by the emulator",
    ),
    (
        "cts-synchronizationJob-create-response.json",
        "synchronization jobs are Entra's CTS engine, which ctsync replaces",
    ),
    (
        "cts-synchronizationJob-get.json",
        "synchronization jobs are Entra's CTS engine, which ctsync replaces",
    ),
    (
        "synchronizationJob-get-quarantine.json",
        "synchronization jobs are Entra's CTS engine, which ctsync replaces",
    ),
    (
        "synchronizationSchema-get.json",
        "synchronization schema: ctsync has its own mapping configuration",
    ),
    (
        "objectMapping-example.json",
        "synchronization schema: ctsync has its own mapping configuration",
    ),
    (
        "provisionOnDemand-response.json",
        "provisionOnDemand is a synchronization-job action; ctsync has its own",
    ),
    (
        "provisionOnDemand-group-response.json",
        "provisionOnDemand is a synchronization-job action; ctsync has its own",
    ),
];

fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CTSYNC_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"));
    dir.is_dir().then_some(dir)
}

fn load(dir: &std::path::Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join("graph-examples").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Same property names both ways.
    Exact,
    /// Every example property is in the response (the doc marks the example truncated).
    Subset,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn props(o: &Map<String, Value>, ignore: &[&str]) -> BTreeSet<String> {
    o.keys()
        .filter(|k| {
            !k.starts_with("@odata.") && !k.starts_with('_') && !ignore.contains(&k.as_str())
        })
        .cloned()
        .collect()
}

/// Differences between the shape of `actual` and `example`, as readable paths.
fn shape_diff(
    example: &Value,
    actual: &Value,
    mode: Mode,
    ignore: &[&str],
    path: &str,
    out: &mut Vec<String>,
) {
    match (example, actual) {
        // A null in the example says nothing about the type; a null in the response is a
        // nullable scalar's right, but not where Microsoft shows an object or an array.
        (Value::Null, _) => {}
        (Value::Object(_) | Value::Array(_), Value::Null) => out.push(format!(
            "{path}: {} in the example, null in the response",
            kind(example)
        )),
        (_, Value::Null) => {}
        (Value::Object(e), Value::Object(a)) => {
            let (ek, ak) = (props(e, ignore), props(a, ignore));
            for missing in ek.difference(&ak) {
                out.push(format!("{path}/{missing}: missing from the response"));
            }
            if mode == Mode::Exact {
                for extra in ak.difference(&ek) {
                    out.push(format!("{path}/{extra}: not in the example"));
                }
            }
            for k in ek.intersection(&ak) {
                shape_diff(&e[k], &a[k], mode, ignore, &format!("{path}/{k}"), out);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.is_empty() {
                return;
            }
            // Each response element must have the shape of some example element.
            for (i, item) in a.iter().enumerate() {
                let fits = e.iter().any(|ex| {
                    let mut d = Vec::new();
                    shape_diff(ex, item, mode, ignore, "", &mut d);
                    d.is_empty()
                });
                if !fits {
                    let mut d = Vec::new();
                    shape_diff(&e[0], item, mode, ignore, &format!("{path}[{i}]"), &mut d);
                    out.push(format!("{path}[{i}] matches no example element: {d:?}"));
                }
            }
        }
        (e, a) if kind(e) != kind(a) => out.push(format!(
            "{path}: {} in the example, {} in the response",
            kind(e),
            kind(a)
        )),
        _ => {}
    }
}

fn check(name: &str, example: &Value, actual: &Value, mode: Mode, ignore: &[&str]) {
    let mut diff = Vec::new();
    shape_diff(example, actual, mode, ignore, "", &mut diff);
    assert!(
        diff.is_empty(),
        "{name} differs from the emulator's response:\n{}\nresponse: {actual:#}",
        diff.join("\n")
    );
}

#[tokio::test]
async fn responses_have_the_shape_of_microsofts_examples() {
    let Some(dir) = conformance_dir() else {
        println!("skipped: conformance dir not found");
        return;
    };
    let env = start_with(EmulatorOptions {
        throttling: false,
        delta_page_size: 1,
        ..EmulatorOptions::default()
    })
    .await;
    let t = env.token(TARGET).await;
    let reader = env.token_for(TARGET, READER_APP, READER_SECRET).await;
    let cid = [("client-request-id", "e70c5c1b-8b47-68c0-3171-3d22f5e0bd54")];
    let covered: std::cell::RefCell<BTreeSet<&str>> = std::cell::RefCell::default();
    let cmp = |name: &'static str, actual: &Value, mode: Mode, ignore: &[&str]| {
        let example = load(&dir, name);
        // Graph now always sends `innerError.client-request-id`; older examples lack it.
        let mut ignore = ignore.to_vec();
        let inner = &example["error"]["innerError"];
        if inner.is_object() && inner.get("client-request-id").is_none() {
            ignore.push("client-request-id");
        }
        check(name, &example, actual, mode, &ignore);
        covered.borrow_mut().insert(name);
    };

    // Users.
    let full = json!({
        "accountEnabled": true, "displayName": "Adele Vance", "givenName": "Adele", "surname": "Vance",
        "mailNickname": "AdeleV", "userPrincipalName": "AdeleV@fabrikam.onmicrosoft.com", "mail": "AdeleV@fabrikam.onmicrosoft.com",
        "jobTitle": "Product Marketing Manager", "mobilePhone": "+1 425 555 0109", "officeLocation": "18/2111",
        "preferredLanguage": "en-US", "businessPhones": ["+1 425 555 0109"], "passwordProfile": {"password": "x-Pa55word"},
    });
    let (s, created) = env.post(&t, "/users", full).await;
    assert_eq!(s, StatusCode::CREATED);
    cmp("user-create-response.json", &created, Mode::Exact, &[]);
    let adele = created["id"].as_str().expect("id").to_string();
    let (_, list) = env.get(&t, "/users").await;
    cmp("users-list.json", &list, Mode::Exact, &[]);
    // The doc example shows mailNickname, which is not in the default set: select the example's properties.
    let (_, _, counted) = env
        .send(&t, Method::GET, "/users?$filter=startswith(displayName,'a')&$orderby=displayName&$count=true&$top=1&$select=displayName,mail,mailNickname,userPrincipalName", None, &[("ConsistencyLevel", "eventual")])
        .await;
    cmp("users-list-count-eventual.json", &counted, Mode::Exact, &[]);
    let (s, inv) = env
        .post(&t, "/invitations", json!({
            "invitedUserEmailAddress": "admin@contoso.com", "inviteRedirectUrl": "https://myapp.contoso.com",
            "invitedUserMessageInfo": {"messageLanguage": null, "customizedMessageBody": null, "ccRecipients": [{"emailAddress": {"name": null, "address": null}}]},
        }))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    cmp("invitation-response.json", &inv, Mode::Exact, &[]);
    let (_, _, b2b) = env
        .send(&t, Method::GET, "/users?$select=id,displayName,mail,identities&$filter=endsWith(userPrincipalName,'%23EXT%23@fabrikam.onmicrosoft.com')&$count=true", None, &[("ConsistencyLevel", "eventual")])
        .await;
    assert_eq!(b2b["@odata.count"], 1, "{b2b}");
    cmp("users-list-b2b-select.json", &b2b, Mode::Exact, &[]);

    // Delta.
    let (_, page) = env
        .get(&t, &format!("/users/delta?$filter=id eq '{adele}'"))
        .await;
    cmp("users-delta-page.json", &page, Mode::Exact, &[]);
    let (_, other) = env
        .post(
            &t,
            "/users",
            new_user("patti@fabrikam.com", "Patti Fernandez"),
        )
        .await;
    let patti = other["id"].as_str().expect("id").to_string();
    env.patch(
        &t,
        &format!("/users/{patti}"),
        json!({"givenName": "Patti", "surname": "Fernandez"}),
    )
    .await;
    let select = "$select=displayName,givenName,surname";
    let ids = format!("$filter=id eq '{adele}' or id eq '{patti}'");
    let mut url = format!("/users/delta?{select}&{ids}");
    let link = loop {
        let (_, body) = env.get(&t, &url).await;
        cmp(
            "users-delta-initial-with-removed.json",
            &body,
            Mode::Exact,
            &[],
        );
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => {
                cmp(
                    "users-delta-final-page-deltaLink.json",
                    &body,
                    Mode::Exact,
                    &[],
                );
                break body["@odata.deltaLink"]
                    .as_str()
                    .expect("deltaLink")
                    .to_string();
            }
        }
    };
    let (_, none) = env.get(&t, &link).await;
    cmp("users-delta-nochanges.json", &none, Mode::Exact, &[]);
    env.patch(
        &t,
        &format!("/users/{adele}"),
        json!({"displayName": "MOD Administrator", "givenName": "MOD", "surname": "Administrator"}),
    )
    .await;
    env.delete(&t, &format!("/users/{patti}")).await;
    let mut changes = Vec::new();
    let mut url = link;
    let link = loop {
        let (_, body) = env.get(&t, &url).await;
        changes.extend(body["value"].as_array().cloned().unwrap_or_default());
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => {
                break body["@odata.deltaLink"]
                    .as_str()
                    .expect("deltaLink")
                    .to_string();
            }
        }
    };
    cmp(
        "users-delta-changes-softdeleted.json",
        &json!({"value": changes}),
        Mode::Exact,
        &[],
    );
    assert_eq!(
        changes.len(),
        2,
        "one update and one soft delete: {changes:?}"
    );
    let (_, link_m) = env
        .get(
            &t,
            "/users/delta?$deltatoken=latest&$select=displayName,jobTitle,mobilePhone",
        )
        .await;
    env.patch(
        &t,
        &format!("/users/{adele}"),
        json!({"displayName": "Vance Adele", "jobTitle": "Senior Product Marketing Manager"}),
    )
    .await;
    let (_, _, minimal) = env
        .send(
            &t,
            Method::GET,
            link_m["@odata.deltaLink"].as_str().expect("link"),
            None,
            &[("Prefer", "return=minimal")],
        )
        .await;
    // The doc example omits `id`, which Graph always returns in delta (user-delta.md).
    cmp("users-delta-minimal.json", &minimal, Mode::Subset, &[]);
    assert!(link.contains("$deltatoken="));

    // Groups and service principals.
    let (_, g) = env.post(&t, "/groups", json!({"displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true})).await;
    let gid = g["id"].as_str().expect("id").to_string();
    env.post(
        &t,
        &format!("/groups/{gid}/members/$ref"),
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{adele}")}),
    )
    .await;
    let (_, tm) = env
        .get(
            &t,
            &format!("/groups/{gid}/transitiveMembers?$select=id,mail"),
        )
        .await;
    cmp("group-transitiveMembers.json", &tm, Mode::Exact, &[]);
    check_groups(&env, &t, &adele, &cmp).await;
    let sp = env.handle.directory().tenants[TARGET]
        .service_principal_by_app(SYNC_APP)
        .expect("sp")
        .id
        .clone();
    let (s, a) = env
        .post(&t, &format!("/servicePrincipals/{sp}/appRoleAssignedTo"), json!({"principalId": adele, "resourceId": sp, "appRoleId": "00000000-0000-0000-0000-000000000000"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    cmp(
        "appRoleAssignedTo-create-response.json",
        &a,
        Mode::Exact,
        &[],
    );
    let (_, al) = env
        .get(&t, &format!("/servicePrincipals/{sp}/appRoleAssignedTo"))
        .await;
    cmp("appRoleAssignedTo-list.json", &al, Mode::Exact, &[]);

    // Deleted items: the doc example restores a group; compare what a restored user shares with it.
    let (_, restored) = env
        .post(
            &t,
            &format!("/directory/deletedItems/{patti}/restore"),
            json!({}),
        )
        .await;
    let ex = load(&dir, "deletedItems-restore-response.json");
    let shared = ["@odata.type", "id", "displayName", "mail"];
    let pick = |v: &Value| {
        Value::Object(
            shared
                .iter()
                .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
                .collect(),
        )
    };
    assert_eq!(restored["@odata.type"], "#microsoft.graph.user");
    check(
        "deletedItems-restore-response.json",
        &pick(&ex),
        &pick(&restored),
        Mode::Exact,
        &[],
    );
    covered
        .borrow_mut()
        .insert("deletedItems-restore-response.json");

    // Policies.
    let (s, p) = env
        .post(
            &t,
            "/policies/crossTenantAccessPolicy/partners",
            json!({"tenantId": "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // crossCloudMeetingConfiguration is in the doc response but not in the v1.0 CSDL.
    cmp(
        "cts-partner-create-response.json",
        &p,
        Mode::Exact,
        &[
            "crossCloudMeetingConfiguration",
            "isInMultiTenantOrganization",
        ],
    );
    // Configure what the example shows configured (a null in the response where the example
    // has an object is a difference), through PATCH, which also checks the nested shapes.
    let example = load(&dir, "crossTenantAccessPolicy-partner-get.json");
    let configured: Map<String, Value> = example
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| v.is_object() && !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (s, body) = env
        .patch(
            &t,
            "/policies/crossTenantAccessPolicy/partners/9c5d131d-b1c3-4fc4-9e3f-c6557947d551",
            Value::Object(configured),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let (_, pg) = env
        .get(
            &t,
            "/policies/crossTenantAccessPolicy/partners/9c5d131d-b1c3-4fc4-9e3f-c6557947d551",
        )
        .await;
    cmp(
        "crossTenantAccessPolicy-partner-get.json",
        &pg,
        Mode::Subset,
        &[],
    );
    let (_, sync) = env
        .get(
            &t,
            &format!("/policies/crossTenantAccessPolicy/partners/{SOURCE}/identitySynchronization"),
        )
        .await;
    cmp("identitySynchronization-get.json", &sync, Mode::Exact, &[]);

    // Batch (the doc's items 1 and 2 address /me, which app-only tokens do not have).
    let group = gid.clone();
    let (s, batch) = env
        .post(&reader, "/$batch", json!({"requests": [
            {"id": "3", "method": "DELETE", "url": format!("/groups/{group}")},
            {"id": "4", "url": "/users", "method": "PUT", "body": {}, "headers": {"Content-Type": "application/json"}},
            {"id": "5", "url": "users?$select=id,displayName,userPrincipalName&$filter=city eq null&$count=true", "method": "GET", "headers": {"ConsistencyLevel": "eventual"}},
        ]}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let ex = load(&dir, "batch-response.json");
    for id in ["3", "4", "5"] {
        let e = ex["responses"]
            .as_array()
            .and_then(|r| r.iter().find(|i| i["id"] == id))
            .expect("example item");
        let a = batch["responses"]
            .as_array()
            .and_then(|r| r.iter().find(|i| i["id"] == id))
            .expect("response item");
        assert_eq!(e["status"], a["status"], "batch item {id}");
        // Response header names are not properties; compare the item and body shapes.
        let strip = |v: &Value| json!({"id": v["id"], "status": v["status"], "body": v["body"]});
        check(
            "batch-response.json",
            &strip(e),
            &strip(a),
            Mode::Exact,
            &["client-request-id"],
        );
    }
    covered.borrow_mut().insert("batch-response.json");

    // Errors (send client-request-id when the example's innerError has one).
    let (_, _, e) = env
        .send(
            &reader,
            Method::POST,
            "/users",
            Some(new_user("z@fabrikam.com", "Z")),
            &cid,
        )
        .await;
    cmp(
        "error-authorization-requestdenied.json",
        &e,
        Mode::Exact,
        &[],
    );
    let (_, e) = env
        .post(&t, "/users", new_user("patti@fabrikam.com", "Again"))
        .await;
    cmp("error-conflict-upn.json", &e, Mode::Exact, &[]);
    let (_, _, e) = env.send(&t, Method::GET, "/users/$count", None, &cid).await;
    cmp(
        "error-count-without-consistencylevel.json",
        &e,
        Mode::Exact,
        &[],
    );
    let (s, _, e) = env
        .send(
            &t,
            Method::GET,
            "/users?$filter=id ge '39807bd1-3dde-48f3-8165-81ddd4e46de0'&$count=true",
            None,
            &[cid[0], ("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    cmp("error-filter-not-indexed.json", &e, Mode::Exact, &[]);
    let (s, _, e) = env
        .send(
            &t,
            Method::DELETE,
            &format!("/groups/{gid}/members/{patti}/$ref"),
            None,
            &cid,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    cmp("error-notfound-404.json", &e, Mode::Exact, &[]);
    let (s, e) = env.get(&t, "/users?$select=skills").await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    cmp("error-notimplemented-501.json", &e, Mode::Exact, &[]);
    let (_, _, e) = env.send(&t, Method::PUT, "/users", None, &cid).await;
    cmp("error-request-badrequest-405.json", &e, Mode::Exact, &[]);
    let (_, _, e) = env
        .send(
            &t,
            Method::GET,
            "/users?$filter=endsWith(mail,'@outlook.com')",
            None,
            &cid,
        )
        .await;
    cmp("error-unsupported-query.json", &e, Mode::Exact, &[]);

    // Tokens.
    let resp = env
        .token_response(
            TARGET,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    cmp(
        "oauth-token-response.json",
        &resp.json::<Value>().await.expect("json"),
        Mode::Exact,
        &[],
    );
    let resp = env
        .token_response(
            TARGET,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_APP),
                ("client_secret", SECRET),
                ("scope", "https://foo.microsoft.com/.default"),
            ],
        )
        .await;
    cmp(
        "oauth-token-error.json",
        &resp.json::<Value>().await.expect("json"),
        Mode::Exact,
        &[],
    );

    // Throttling: a nearly frozen clock so the invitation limit is reached on any machine.
    let slow = start_with(EmulatorOptions {
        time_scale: 0.01,
        ..EmulatorOptions::default()
    })
    .await;
    let st = slow.token(TARGET).await;
    let mut throttled = None;
    for i in 0..200 {
        let (s, e) = slow.post(&st, "/invitations", json!({"invitedUserEmailAddress": format!("t{i}@x.example"), "inviteRedirectUrl": "https://x.example"})).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(e);
            break;
        }
    }
    cmp(
        "error-throttled-429.json",
        &throttled.expect("throttled"),
        Mode::Exact,
        &[],
    );

    // Directory extension registration (the doc's request: jobGroup, String, multi-valued).
    let (s, ext) = env
        .post(
            &t,
            &format!("/applications/{TARGET_APP_OBJECT}/extensionProperties"),
            json!({"name": "jobGroup", "dataType": "String", "isMultiValued": true, "targetObjects": ["User"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ext}");
    cmp(
        "extensionProperty-create-response.json",
        &ext,
        Mode::Exact,
        &[],
    );

    let all: Vec<String> = std::fs::read_dir(dir.join("graph-examples"))
        .expect("examples dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .collect();
    let covered = covered.borrow();
    for name in &all {
        let out = OUT_OF_SURFACE.iter().any(|(n, _)| n == name);
        assert!(
            covered.contains(name.as_str()) || out,
            "{name} is neither compared nor listed as out of the emulator's surface"
        );
        assert!(
            !(covered.contains(name.as_str()) && out),
            "{name} is both compared and listed as out of surface"
        );
    }
}

/// Every property of `value` (recursively through complex types) must be declared by `type_name`
/// (or its base types) in the CSDL subset, with a compatible JSON type.
fn csdl_check(types: &Value, type_name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = value.as_object() else { return };
    let mut declared: Map<String, Value> = Map::new();
    let mut navigation: BTreeSet<String> = BTreeSet::new();
    let mut t = Some(type_name.to_string());
    while let Some(name) = t {
        let def = &types[&name];
        if let Some(p) = def["properties"].as_object() {
            declared.extend(p.clone());
        }
        if let Some(n) = def["navigation"].as_object() {
            navigation.extend(n.keys().cloned());
        }
        t = def["baseType"]
            .as_str()
            .map(|b| b.trim_start_matches("graph.").to_string());
    }
    for (k, v) in obj {
        if k.starts_with("@odata.") || k.starts_with("extension_") {
            continue;
        }
        if navigation.contains(k) {
            continue;
        }
        let Some(decl) = declared.get(k).and_then(Value::as_str) else {
            out.push(format!("{path}/{k}: not declared by {type_name}"));
            continue;
        };
        let not_null = decl.ends_with("NOT NULL");
        let decl = decl.trim_end_matches(" NOT NULL");
        if v.is_null() {
            if not_null {
                out.push(format!("{path}/{k}: null but declared NOT NULL"));
            }
            continue;
        }
        let (collection, inner) = match decl
            .strip_prefix("Collection(")
            .and_then(|d| d.strip_suffix(')'))
        {
            Some(i) => (true, i),
            None => (false, decl),
        };
        let items: Vec<&Value> = if collection {
            match v.as_array() {
                Some(a) => a.iter().collect(),
                None => {
                    out.push(format!("{path}/{k}: declared {decl}, not an array"));
                    continue;
                }
            }
        } else {
            vec![v]
        };
        for item in items {
            let ok = match inner {
                "Edm.String" | "Edm.DateTimeOffset" | "Edm.Guid" | "Edm.Binary" => item.is_string(),
                "Edm.Boolean" => item.is_boolean(),
                "Edm.Int32" | "Edm.Int64" => item.is_number(),
                other => {
                    let complex = other.trim_start_matches("graph.");
                    if types[complex]["kind"] == "EnumType" {
                        item.is_string()
                    } else {
                        csdl_check(types, complex, item, &format!("{path}/{k}"), out);
                        item.is_object() || item.is_null()
                    }
                }
            };
            if !ok {
                out.push(format!("{path}/{k}: declared {decl}, got {item}"));
            }
        }
    }
}

#[tokio::test]
async fn payloads_use_only_properties_the_csdl_declares() {
    let Some(dir) = conformance_dir() else {
        println!("skipped: conformance dir not found");
        return;
    };
    let csdl: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("graph-v1-csdl-subset.json")).expect("csdl"),
    )
    .expect("csdl json");
    let types = &csdl["types"];
    let env = start().await;
    let t = env.token(TARGET).await;
    let mut payloads: Vec<(&str, Value)> = Vec::new();
    let (_, inv) = env.post(&t, "/invitations", json!({"invitedUserEmailAddress": "megan@contoso.com", "inviteRedirectUrl": "https://myapps.microsoft.com", "invitedUserType": "Member"})).await;
    let uid = inv["invitedUser"]["id"].as_str().expect("id").to_string();
    payloads.push(("invitation", inv));
    let (_, u) = env
        .post(&t, "/users", new_user("c@fabrikam.com", "C"))
        .await;
    payloads.push(("user", u.clone()));
    // Every property the user type declares that the directory stores.
    let everything: Vec<&str> = types["user"]["properties"]
        .as_object()
        .expect("user properties")
        .keys()
        .map(String::as_str)
        .filter(|p| {
            ![
                "aboutMe",
                "birthday",
                "hireDate",
                "interests",
                "mailboxSettings",
                "mySite",
                "pastProjects",
                "preferredName",
                "print",
                "responsibilities",
                "schools",
                "skills",
            ]
            .contains(p)
        })
        .collect();
    let select = everything.join(",");
    let (s, full) = env.get(&t, &format!("/users/{uid}?$select={select}")).await;
    assert_eq!(s, StatusCode::OK, "{full}");
    payloads.push(("user", full));
    let (_, list) = env.get(&t, &format!("/users?$select={select}")).await;
    for u in list["value"].as_array().expect("value") {
        payloads.push(("user", u.clone()));
    }
    env.delete(&t, &format!("/users/{uid}")).await;
    let (_, deleted) = env
        .get(&t, "/directory/deletedItems/microsoft.graph.user")
        .await;
    for u in deleted["value"].as_array().expect("value") {
        payloads.push(("user", u.clone()));
    }
    let (_, restored) = env
        .post(
            &t,
            &format!("/directory/deletedItems/{uid}/restore"),
            json!({}),
        )
        .await;
    payloads.push(("user", restored));
    let (_, partners) = env
        .get(&t, "/policies/crossTenantAccessPolicy/partners")
        .await;
    for p in partners["value"].as_array().expect("value") {
        payloads.push(("crossTenantAccessPolicyConfigurationPartner", p.clone()));
    }
    let (_, sync) = env
        .get(
            &t,
            &format!("/policies/crossTenantAccessPolicy/partners/{SOURCE}/identitySynchronization"),
        )
        .await;
    payloads.push(("crossTenantIdentitySyncPolicyPartner", sync));
    let (_, a) = env
        .get(
            &env.token(SOURCE).await,
            &format!("/servicePrincipals/{SYNC_SP}/appRoleAssignedTo"),
        )
        .await;
    payloads.push(("appRoleAssignment", a["value"][0].clone()));
    let (_, e) = env
        .get(
            &t,
            &format!("/applications/{TARGET_APP_OBJECT}/extensionProperties"),
        )
        .await;
    payloads.push(("extensionProperty", e["value"][0].clone()));
    // The invitation's `invitedUser` is a navigation property; the rest must be declared.
    let mut problems = Vec::new();
    for (type_name, p) in &payloads {
        csdl_check(types, type_name, p, type_name, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And the whole stored directory: every user property the emulator keeps is declared.
    for tenant in env.handle.directory().tenants.values() {
        for u in tenant.users.values() {
            csdl_check(
                types,
                "user",
                &Value::Object(u.clone()),
                "directory user",
                &mut problems,
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Compares a response with a named example and marks the example covered.
type Compare<'a> = dyn Fn(&'static str, &Value, Mode, &[&str]) + 'a;

/// Group shapes: create, get, list with `$select`, members, delta (initial and changes), the
/// multiple-members PATCH body, the duplicate-member error and deleted groups.
async fn check_groups(env: &Env, t: &str, adele: &str, cmp: &Compare<'_>) {
    let Some(dir) = conformance_dir() else {
        return;
    };
    let (s, created) = env
        .post(
            t,
            "/groups",
            json!({"displayName": "Operations group", "description": "Group with designated owner and members",
                "mailEnabled": false, "mailNickname": "operations2019", "securityEnabled": true, "groupTypes": []}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    cmp("group-create-response.json", &created, Mode::Exact, &[]);
    let gid = created["id"].as_str().expect("id").to_string();
    let (_, got) = env.get(t, &format!("/groups/{gid}")).await;
    cmp("group-get.json", &got, Mode::Exact, &[]);
    let (_, _, listed) = env
        .send(
            t,
            Method::GET,
            "/groups?$count=true&$select=id,displayName",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    cmp("groups-list-select.json", &listed, Mode::Exact, &[]);
    // The doc's multiple-members body, with its placeholders filled in.
    let body = load(&dir, "group-members-add-multiple-request.json");
    let placeholders = body["members@odata.bind"].as_array().map_or(0, Vec::len);
    let mut ids = vec![adele.to_string()];
    for i in 1..placeholders {
        let (_, u) = env
            .post(
                t,
                "/users",
                new_user(&format!("bulk{i}@fabrikam.com"), "Bulk"),
            )
            .await;
        ids.push(u["id"].as_str().expect("id").to_string());
    }
    let binds: Vec<String> = body["members@odata.bind"]
        .as_array()
        .expect("binds")
        .iter()
        .zip(&ids)
        .map(|(url, id)| url.as_str().expect("url").replace("{id}", id))
        .collect();
    let (_, delta_start) = env
        .get(
            t,
            &format!("/groups/delta?$select=displayName,description,members&$filter=id eq '{gid}'"),
        )
        .await;
    let (s, err) = env
        .patch(
            t,
            &format!("/groups/{gid}"),
            json!({"members@odata.bind": binds}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{err}");
    cmp(
        "group-members-add-multiple-request.json",
        &json!({"members@odata.bind": binds}),
        Mode::Exact,
        &[],
    );
    let (_, members) = env
        .get(t, &format!("/groups/{gid}/members?$select=id,mail"))
        .await;
    cmp("group-members-list.json", &members, Mode::Exact, &[]);
    let (s, _, dup) = env
        .send(
            t,
            Method::POST,
            &format!("/groups/{gid}/members/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{adele}")})),
            &[("client-request-id", "1064c860-10b6-4c37-827b-00196731c901")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    cmp("error-member-already-exists.json", &dup, Mode::Exact, &[]);
    // Delta: the initial page (the group had no members yet) and a change round.
    let (_, initial) = env
        .get(t, "/groups/delta?$select=displayName,description,members")
        .await;
    cmp("group-delta-initial.json", &initial, Mode::Exact, &[]);
    cmp(
        "groups-delta-members-initial.json",
        &initial,
        Mode::Exact,
        &[],
    );
    let mut page = delta_start;
    let link = loop {
        if let Some(l) = page["@odata.deltaLink"].as_str() {
            break l.to_string();
        }
        let next = page["@odata.nextLink"]
            .as_str()
            .expect("nextLink")
            .to_string();
        page = env.get(t, &next).await.1;
    };
    env.send(
        t,
        Method::DELETE,
        &format!("/groups/{gid}/members/{adele}/$ref"),
        None,
        &[],
    )
    .await;
    let (_, changes) = env.get(t, &link).await;
    cmp(
        "groups-delta-members-changes.json",
        &changes,
        Mode::Exact,
        &[],
    );
    assert!(
        changes["value"][0]["members@delta"]
            .as_array()
            .expect("members@delta")
            .iter()
            .any(|m| m["@removed"]["reason"] == "deleted")
    );
    assert_eq!(
        env.delete(t, &format!("/groups/{gid}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, deleted) = env
        .get(t, "/directory/deletedItems/microsoft.graph.group")
        .await;
    cmp("deletedItems-list-groups.json", &deleted, Mode::Subset, &[]);
}
