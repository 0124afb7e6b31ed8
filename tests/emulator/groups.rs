use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn ids(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn members_and_transitive_members_of_nested_groups() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    let (_, groups) = env
        .get(&t, "/groups?$filter=displayName eq 'Sync Scope'")
        .await;
    let gid = groups["value"][0]["id"]
        .as_str()
        .expect("group id")
        .to_string();
    let (_, direct) = env.get(&t, &format!("/groups/{gid}/members")).await;
    assert_eq!(direct["value"].as_array().map(Vec::len), Some(2));
    let types: Vec<&str> = direct["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(|m| m["@odata.type"].as_str())
        .collect();
    assert!(types.contains(&"#microsoft.graph.user") && types.contains(&"#microsoft.graph.group"));
    let (_, transitive) = env
        .get(
            &t,
            &format!("/groups/{gid}/transitiveMembers?$select=id,mail"),
        )
        .await;
    let users: Vec<&Value> = transitive["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.user")
        .collect();
    assert_eq!(users.len(), 2, "adele directly, megan through Nested");
    assert!(users.iter().any(|u| u["mail"] == "megan@contoso.com"));
}

#[tokio::test]
async fn groups_and_memberships_can_be_built_through_graph() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (s, g) = env.post(&t, "/groups", json!({"displayName": "Team", "mailEnabled": false, "mailNickname": "team", "securityEnabled": true})).await;
    assert_eq!(s, StatusCode::CREATED);
    let gid = g["id"].as_str().expect("id").to_string();
    let (_, u) = env
        .post(&t, "/users", new_user("m1@fabrikam.com", "M1"))
        .await;
    let uid = u["id"].as_str().expect("id").to_string();
    let r =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{uid}")});
    let (s, _) = env
        .post(&t, &format!("/groups/{gid}/members/$ref"), r.clone())
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, err) = env
        .post(&t, &format!("/groups/{gid}/members/$ref"), r)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&err, "Request_BadRequest");
    assert_eq!(
        ids(&env.get(&t, &format!("/groups/{gid}/members")).await.1),
        vec![uid.clone()]
    );
    // Soft-deleted users drop out of member lists and come back on restore.
    env.delete(&t, &format!("/users/{uid}")).await;
    assert!(ids(&env.get(&t, &format!("/groups/{gid}/members")).await.1).is_empty());
    env.post(
        &t,
        &format!("/directory/deletedItems/{uid}/restore"),
        json!({}),
    )
    .await;
    assert_eq!(
        ids(&env.get(&t, &format!("/groups/{gid}/members")).await.1),
        vec![uid.clone()]
    );
    let (s, _, _) = env
        .send(
            &t,
            Method::DELETE,
            &format!("/groups/{gid}/members/{uid}/$ref"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, err) = env
        .send(
            &t,
            Method::DELETE,
            &format!("/groups/{gid}/members/{uid}/$ref"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&err, "Request_ResourceNotFound");
}

#[tokio::test]
async fn app_role_assignments_list_create_delete() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    let (s, list) = env
        .get(
            &t,
            &format!("/servicePrincipals/{SYNC_SP}/appRoleAssignedTo"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["value"][0]["principalType"], "Group");
    assert_eq!(list["value"][0]["principalDisplayName"], "Sync Scope");
    // The appId key form addresses the same service principal.
    let (_, by_app) = env
        .get(
            &t,
            &format!("/servicePrincipals(appId='{SYNC_APP}')/appRoleAssignedTo"),
        )
        .await;
    assert_eq!(by_app["value"], list["value"]);
    let body = json!({"principalId": "00000000-aaaa-0000-0000-000000000002", "resourceId": SYNC_SP, "appRoleId": MSIAM_ROLE});
    let (s, a) = env
        .post(
            &t,
            &format!("/servicePrincipals/{SYNC_SP}/appRoleAssignedTo"),
            body.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["principalType"], "User");
    assert_eq!(a["resourceId"], SYNC_SP);
    assert_eq!(
        env.post(
            &t,
            &format!("/servicePrincipals/{SYNC_SP}/appRoleAssignedTo"),
            body
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let aid = a["id"].as_str().expect("id");
    assert_eq!(
        env.delete(
            &t,
            &format!("/servicePrincipals/{SYNC_SP}/appRoleAssignedTo/{aid}")
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = env
        .get(
            &t,
            &format!("/servicePrincipals/{SYNC_SP}/appRoleAssignedTo"),
        )
        .await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    let (_, sps) = env
        .get(
            &t,
            &format!("/servicePrincipals?$filter=appId eq '{SYNC_APP}'"),
        )
        .await;
    assert_eq!(sps["value"][0]["id"], SYNC_SP);
}
