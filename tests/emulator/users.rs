use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn list_returns_the_default_property_set_without_select() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    let (s, body) = env.get(&t, "/users").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("/v1.0/$metadata#users"))
    );
    let first = body["value"][0].as_object().expect("user");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "businessPhones",
            "displayName",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName"
        ]
    );
    assert!(
        first.get("department").is_none(),
        "department is returned only on $select"
    );
}

#[tokio::test]
async fn select_filter_count_and_paging() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    for i in 0..25 {
        let (s, _) = env
            .post(
                &t,
                "/users",
                new_user(&format!("bulk{i:02}@contoso.com"), &format!("Bulk {i}")),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (_, body) = env
        .get(
            &t,
            "/users?$select=id,userType,creationType&$filter=userType eq 'Member'&$top=10",
        )
        .await;
    assert!(
        body["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("#users(id,userType,creationType)"))
    );
    assert!(
        body.get("@odata.count").is_none(),
        "$count without ConsistencyLevel is ignored"
    );
    let mut seen = 0;
    let mut page = body;
    loop {
        for u in page["value"].as_array().expect("value") {
            assert_eq!(u["userType"], "Member");
            assert_eq!(u.as_object().map(|o| o.len()), Some(3));
            seen += 1;
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken=") && next.contains("$select="));
                page = env.get(&t, next).await.1;
            }
            None => break,
        }
    }
    assert_eq!(seen, 27, "2 seeded members + 25 created");
    let (_, _, counted) = env
        .send(
            &t,
            Method::GET,
            "/users?$filter=userType eq 'Guest'&$count=true",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(counted["@odata.count"], 1);
    let (s, _, n) = env
        .send(
            &t,
            Method::GET,
            "/users/$count",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!((s, n), (StatusCode::OK, json!(28)));
    let (s, err) = env.get(&t, "/users/$count").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        err["error"]["message"],
        "$count is not currently supported."
    );
}

#[tokio::test]
async fn advanced_filters_need_consistency_level() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    let path = "/users?$filter=endsWith(mail,'@fabrikam.com')&$count=true&$select=mail";
    let (s, err) = env.get(&t, path).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&err, "Request_UnsupportedQuery");
    let (s, _, body) = env
        .send(
            &t,
            Method::GET,
            path,
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["value"], json!([{"mail": "guest@fabrikam.com"}]));
    for (f, expect) in [
        ("startswith(userPrincipalName,'adele')", 1),
        ("userType in ('Guest','Member')", 3),
        ("creationType eq 'Invitation'", 1),
        (
            "mail eq 'ADELE@contoso.com' or mail eq 'megan@contoso.com'",
            2,
        ),
        ("userType eq 'Member' and department eq 'Sales'", 1),
    ] {
        let (s, body) = env
            .get(&t, &format!("/users?$filter={}", urlencode(f)))
            .await;
        assert_eq!(s, StatusCode::OK, "{f}: {body}");
        assert_eq!(body["value"].as_array().map(Vec::len), Some(expect), "{f}");
    }
    // `$orderby` alone is a default capability; with `$filter` it needs the advanced headers.
    let (s, ordered) = env
        .get(&t, "/users?$orderby=displayName desc&$select=displayName")
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = ordered["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|u| u["displayName"].as_str())
        .collect();
    assert_eq!(names, vec!["Megan Bowen", "Adele Vance", "A Guest"]);
    let (s, _) = env
        .get(
            &t,
            "/users?$orderby=displayName&$filter=userType eq 'Member'",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, err) = env.get(&t, "/users?$filter=aboutMe eq 'x'").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        err["error"]["message"],
        "The request uses a filter property that is not indexed"
    );
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn create_update_get_and_uniqueness() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (s, created) = env
        .post(&t, "/users", new_user("nina@fabrikam.com", "Nina"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["id"].as_str().expect("id").to_string();
    assert!(created.get("passwordProfile").is_none());
    let (s, body) = env
        .patch(
            &t,
            &format!("/users/{id}"),
            json!({"department": "R&D", "accountEnabled": false, "mail": "nina@fabrikam.com"}),
        )
        .await;
    assert_eq!((s, body), (StatusCode::NO_CONTENT, Value::Null));
    let (_, got) = env
        .get(
            &t,
            &format!(
                "/users/{id}?$select=department,accountEnabled,proxyAddresses,userType,creationType"
            ),
        )
        .await;
    assert_eq!(got["department"], "R&D");
    assert_eq!(got["accountEnabled"], false);
    assert_eq!(got["proxyAddresses"], json!(["SMTP:nina@fabrikam.com"]));
    assert_eq!(got["creationType"], Value::Null);
    // By UPN too.
    assert_eq!(
        env.get(&t, "/users/nina@fabrikam.com").await.0,
        StatusCode::OK
    );
    let (s, err) = env
        .post(&t, "/users", new_user("NINA@fabrikam.com", "Dup"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&err, "Request_BadRequest");
    assert_eq!(
        err["error"]["details"][0],
        json!({"target": "userPrincipalName", "code": "ObjectConflict"})
    );
    let (_, other) = env
        .post(&t, "/users", new_user("other@fabrikam.com", "Other"))
        .await;
    let (s, err) = env
        .patch(
            &t,
            &format!("/users/{}", other["id"].as_str().expect("id")),
            json!({"mail": "Nina@fabrikam.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["details"][0]["target"], "mail");
    let (s, err) = env
        .post(&t, "/users", new_user("x@unverified.example", "X"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("verified domain"))
    );
}

#[tokio::test]
async fn manager_reference_put_get_delete() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    let (s, m) = env.get(&t, "/users/megan@contoso.com/manager").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m["userPrincipalName"], "adele@contoso.com");
    assert_eq!(m["@odata.type"], "#microsoft.graph.user");
    let (s, _, _) = env
        .send(
            &t,
            Method::DELETE,
            "/users/megan@contoso.com/manager/$ref",
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        env.get(&t, "/users/megan@contoso.com/manager").await.0,
        StatusCode::NOT_FOUND
    );
    let body = json!({"@odata.id": "https://graph.microsoft.com/v1.0/users/00000000-aaaa-0000-0000-000000000001"});
    let (s, _, _) = env
        .send(
            &t,
            Method::PUT,
            "/users/megan@contoso.com/manager/$ref",
            Some(body),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let bad = json!({"@odata.id": "https://graph.microsoft.com/v1.0/users/does-not-exist"});
    let (s, _, err) = env
        .send(
            &t,
            Method::PUT,
            "/users/megan@contoso.com/manager/$ref",
            Some(bad),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&err, "Request_ResourceNotFound");
}

#[tokio::test]
async fn direct_reports_list_the_users_a_manager_manages() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    let (s, m) = env.get(&t, "/users/megan@contoso.com/manager").await;
    assert_eq!(s, StatusCode::OK);
    let manager_id = m["id"].as_str().unwrap().to_owned();
    let megan = env.get(&t, "/users/megan@contoso.com?$select=id").await.1["id"].clone();
    let (s, page) = env
        .get(&t, &format!("/users/{manager_id}/directReports?$select=id"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("#directoryObjects")),
        "{page}"
    );
    let ids: Vec<&Value> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["id"])
        .collect();
    assert!(ids.contains(&&megan), "{page}");
    // Megan leaves Adele's reports when her manager reference is removed.
    let (s, _, _) = env
        .send(
            &t,
            Method::DELETE,
            "/users/megan@contoso.com/manager/$ref",
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, page) = env
        .get(&t, &format!("/users/{manager_id}/directReports?$select=id"))
        .await;
    assert!(
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["id"] != megan),
        "{page}"
    );
    let (s, _) = env.get(&t, "/users/nobody@contoso.com/directReports").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn directory_extensions_are_registered_then_written_selected_and_filtered() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let ext_name = format!("extension_{}_ctsyncAnchor", SYNC_APP.replace('-', ""));
    let (_, exts) = env
        .get(
            &t,
            &format!("/applications/{TARGET_APP_OBJECT}/extensionProperties"),
        )
        .await;
    assert_eq!(exts["value"][0]["name"], ext_name.as_str());
    let (s, created) = env
        .post(
            &t,
            &format!("/applications/{TARGET_APP_OBJECT}/extensionProperties"),
            json!({"name": "costCenter", "dataType": "Integer", "targetObjects": ["User"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let cost = created["name"].as_str().expect("name").to_string();
    assert_eq!(
        cost,
        format!("extension_{}_costCenter", SYNC_APP.replace('-', ""))
    );
    let (_, u) = env
        .post(&t, "/users", new_user("ext@fabrikam.com", "Ext"))
        .await;
    let id = u["id"].as_str().expect("id");
    let (s, _) = env
        .patch(
            &t,
            &format!("/users/{id}"),
            json!({ext_name.clone(): format!("{SOURCE}/x1"), cost.clone(): 42}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, err) = env
        .patch(
            &t,
            &format!("/users/{id}"),
            json!({cost.clone(): "not a number"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    let (s, err) = env
        .patch(
            &t,
            &format!("/users/{id}"),
            json!({"extension_0000_unregistered": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    let (_, got) = env.get(&t, &format!("/users/{id}")).await;
    assert!(got.get(&ext_name).is_none(), "extensions only on $select");
    let (_, got) = env
        .get(&t, &format!("/users/{id}?$select=id,{ext_name},{cost}"))
        .await;
    assert_eq!(got[&ext_name], format!("{SOURCE}/x1"));
    assert_eq!(got[&cost], 42);
    let (_, found) = env
        .get(
            &t,
            &format!(
                "/users?$filter={}",
                urlencode(&format!("{ext_name} eq '{SOURCE}/x1'"))
            ),
        )
        .await;
    assert_eq!(found["value"].as_array().map(Vec::len), Some(1));
    let (s, _) = env
        .patch(&t, &format!("/users/{id}"), json!({ext_name.clone(): null}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, got) = env
        .get(&t, &format!("/users/{id}?$select=id,{ext_name}"))
        .await;
    assert!(got.get(&ext_name).is_none());
}
