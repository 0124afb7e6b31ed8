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

async fn new_group(env: &Env, t: &str, name: &str) -> String {
    let (s, g) = env
        .post(
            t,
            "/groups",
            json!({"displayName": name, "mailEnabled": false, "mailNickname": name.replace(' ', ""), "securityEnabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    g["id"].as_str().expect("id").to_string()
}

async fn new_users(env: &Env, t: &str, n: usize, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        let (s, u) = env
            .post(
                t,
                "/users",
                new_user(
                    &format!("{prefix}{i}@fabrikam.com"),
                    &format!("{prefix} {i}"),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        out.push(u["id"].as_str().expect("id").to_string());
    }
    out
}

fn bind(ids: &[String]) -> Value {
    json!(
        ids.iter()
            .map(|id| format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}"))
            .collect::<Vec<_>>()
    )
}

/// Follows a delta round to its deltaLink; returns the items and the deltaLink.
async fn delta_round(env: &Env, t: &str, start: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut url = start.to_string();
    loop {
        let (s, page) = env.get(t, &url).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        items.extend(page["value"].as_array().expect("value").iter().cloned());
        if let Some(next) = page["@odata.nextLink"].as_str() {
            url = next.to_string();
        } else {
            return (
                items,
                page["@odata.deltaLink"]
                    .as_str()
                    .expect("deltaLink")
                    .to_string(),
            );
        }
    }
}

/// Members of `gid` in a round, merged over every item of that group: (added, removed).
fn member_changes(items: &[Value], gid: &str) -> (Vec<String>, Vec<String>) {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for item in items.iter().filter(|i| i["id"] == gid) {
        for m in item["members@delta"].as_array().into_iter().flatten() {
            let id = m["id"].as_str().expect("member id").to_string();
            if m.get("@removed").is_some() {
                removed.push(id);
            } else {
                added.push(id);
            }
        }
    }
    added.sort();
    removed.sort();
    (added, removed)
}

#[tokio::test]
async fn group_delta_reports_members_added_removed_and_deleted() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let gid = new_group(&env, &t, "Delta Team").await;
    let users = new_users(&env, &t, 3, "d").await;
    let (s, _) = env
        .patch(
            &t,
            &format!("/groups/{gid}"),
            json!({"members@odata.bind": bind(&users[..2])}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (items, link) = delta_round(
        &env,
        &t,
        "/groups/delta?$select=displayName,description,members",
    )
    .await;
    let mut expected = users[..2].to_vec();
    expected.sort();
    assert_eq!(member_changes(&items, &gid), (expected, vec![]));
    assert!(
        items
            .iter()
            .any(|i| i["id"] == gid && i["displayName"] == "Delta Team")
    );
    // Quiet: nothing changed, nothing reported.
    let (items, link) = delta_round(&env, &t, &link).await;
    assert!(items.is_empty(), "{items:?}");
    // Add one, remove one by $ref, soft-delete a member user.
    let r = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", users[2])});
    assert_eq!(
        env.post(&t, &format!("/groups/{gid}/members/$ref"), r)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, _, _) = env
        .send(
            &t,
            Method::DELETE,
            &format!("/groups/{gid}/members/{}/$ref", users[0]),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    env.delete(&t, &format!("/users/{}", users[1])).await;
    let (items, link) = delta_round(&env, &t, &link).await;
    let mut removed = vec![users[0].clone(), users[1].clone()];
    removed.sort();
    assert_eq!(
        member_changes(&items, &gid),
        (vec![users[2].clone()], removed)
    );
    let gone = items
        .iter()
        .flat_map(|i| i["members@delta"].as_array().cloned().unwrap_or_default())
        .find(|m| m["id"] == users[0].as_str())
        .expect("removed member");
    assert_eq!(gone["@removed"]["reason"], "deleted");
    // Rename, then soft delete: the group shows as removed with reason `changed`.
    env.patch(
        &t,
        &format!("/groups/{gid}"),
        json!({"displayName": "Delta Team 2"}),
    )
    .await;
    let (items, link) = delta_round(&env, &t, &link).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["displayName"], "Delta Team 2");
    assert_eq!(
        env.delete(&t, &format!("/groups/{gid}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (items, link) = delta_round(&env, &t, &link).await;
    assert_eq!(
        items,
        vec![json!({"id": gid, "@removed": {"reason": "changed"}})]
    );
    // Restored: the whole group comes back with its members.
    let (s, _) = env
        .post(
            &t,
            &format!("/directory/deletedItems/{gid}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (items, _) = delta_round(&env, &t, &link).await;
    assert_eq!(
        member_changes(&items, &gid),
        (vec![users[2].clone()], vec![])
    );
}

#[tokio::test]
async fn group_delta_splits_big_groups_over_items_and_filters_by_id_only() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let gid = new_group(&env, &t, "Big").await;
    let users = new_users(&env, &t, 45, "b").await;
    for chunk in users.chunks(20) {
        let (s, body) = env
            .patch(
                &t,
                &format!("/groups/{gid}"),
                json!({"members@odata.bind": bind(chunk)}),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    }
    let (items, _) = delta_round(
        &env,
        &t,
        &format!("/groups/delta?$select=displayName,members&$filter=id eq '{gid}'"),
    )
    .await;
    let of_group: Vec<&Value> = items.iter().filter(|i| i["id"] == gid.as_str()).collect();
    assert!(
        of_group.len() >= 3,
        "members spread over several items: {}",
        of_group.len()
    );
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(member_changes(&items, &gid).0, expected);
    let (s, err) = env
        .get(&t, "/groups/delta?$filter=displayName eq 'Big'")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    let (s, err) = env.get(&t, "/groups/delta?$select=displayName,nope").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
}

#[tokio::test]
async fn group_create_refuses_what_graph_refuses() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let base = json!({"displayName": "X", "mailNickname": "x", "mailEnabled": false, "securityEnabled": true});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, status) in [
        (with("mailEnabled", json!(true)), StatusCode::BAD_REQUEST),
        (
            {
                let mut b = with("mailEnabled", json!(true));
                b["securityEnabled"] = json!(false);
                b
            },
            StatusCode::BAD_REQUEST,
        ),
        (
            with("isAssignableToRole", json!(true)),
            StatusCode::FORBIDDEN,
        ),
        (
            with("mailNickname", json!("has space")),
            StatusCode::BAD_REQUEST,
        ),
        (
            with("mailNickname", json!("a".repeat(65))),
            StatusCode::BAD_REQUEST,
        ),
        (with("displayName", json!("")), StatusCode::BAD_REQUEST),
        (with("visibilty", json!("Private")), StatusCode::BAD_REQUEST),
    ] {
        let (s, err) = env.post(&t, "/groups", body.clone()).await;
        assert_eq!(s, status, "{body} → {err}");
    }
    let (_, list) = env.get(&t, "/groups?$filter=displayName eq 'X'").await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(0));
    // A plain security group is Private unless told otherwise; at most 20 binds at creation.
    let users = new_users(&env, &t, 21, "c").await;
    let (s, _) = env
        .post(&t, "/groups", with("members@odata.bind", bind(&users)))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, g) = env
        .post(
            &t,
            "/groups",
            with("members@odata.bind", bind(&users[..20])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["visibility"], "Private");
    assert_eq!(g["securityEnabled"], true);
    let gid = g["id"].as_str().expect("id");
    let (_, members) = env
        .get(&t, &format!("/groups/{gid}/members?$top=999"))
        .await;
    assert_eq!(members["value"].as_array().map(Vec::len), Some(20));
}

#[tokio::test]
async fn group_patch_binds_all_or_nothing() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let gid = new_group(&env, &t, "Patch Team").await;
    let users = new_users(&env, &t, 22, "p").await;
    let path = format!("/groups/{gid}");
    // 21 binds: refused, nothing added.
    let (s, _) = env
        .patch(&t, &path, json!({"members@odata.bind": bind(&users[..21])}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(ids(&env.get(&t, &format!("{path}/members")).await.1).is_empty());
    assert_eq!(
        env.patch(&t, &path, json!({"members@odata.bind": bind(&users[..1])}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // One already a member: the whole batch fails with Graph's message, nothing added.
    let (s, err) = env
        .patch(&t, &path, json!({"members@odata.bind": bind(&users[..3])}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already exist")),
        "{err}"
    );
    // The same reference twice in one write.
    let twice = vec![users[4].clone(), users[4].clone()];
    assert_eq!(
        env.patch(&t, &path, json!({"members@odata.bind": bind(&twice)}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        ids(&env.get(&t, &format!("{path}/members")).await.1),
        vec![users[0].clone()]
    );
    // Properties: writable ones change; unknown and create-only ones are refused.
    assert_eq!(
        env.patch(
            &t,
            &path,
            json!({"displayName": "Renamed", "description": "d"})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.get(&t, &path).await.1["displayName"], "Renamed");
    for body in [
        json!({"securityEnabled": false}),
        json!({"colour": "red"}),
        json!({"mailNickname": "a b"}),
    ] {
        assert_eq!(
            env.patch(&t, &path, body.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
}

#[tokio::test]
async fn deleted_groups_are_restorable_with_their_members() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let gid = new_group(&env, &t, "Soft").await;
    let users = new_users(&env, &t, 2, "s").await;
    env.patch(
        &t,
        &format!("/groups/{gid}"),
        json!({"members@odata.bind": bind(&users)}),
    )
    .await;
    assert_eq!(
        env.delete(&t, &format!("/groups/{gid}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.get(&t, &format!("/groups/{gid}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, deleted) = env
        .get(&t, "/directory/deletedItems/microsoft.graph.group")
        .await;
    assert_eq!(s, StatusCode::OK);
    let item = deleted["value"]
        .as_array()
        .expect("value")
        .iter()
        .find(|g| g["id"] == gid.as_str())
        .expect("deleted group listed")
        .clone();
    // Graph's known bug: soft-deleted security groups say securityEnabled false.
    assert_eq!(item["securityEnabled"], false);
    assert_eq!(item["groupTypes"], json!([]));
    assert!(item["deletedDateTime"].is_string());
    let (s, restored) = env
        .post(
            &t,
            &format!("/directory/deletedItems/{gid}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{restored}");
    assert_eq!(restored["id"], gid.as_str());
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(
        ids(&env.get(&t, &format!("/groups/{gid}/members")).await.1),
        expected
    );
    // Hard delete from deleted items: gone for good.
    env.delete(&t, &format!("/groups/{gid}")).await;
    assert_eq!(
        env.delete(&t, &format!("/directory/deletedItems/{gid}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.post(
            &t,
            &format!("/directory/deletedItems/{gid}/restore"),
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn group_sync_inbound_is_served_on_beta_and_refused_on_v1() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let path =
        format!("/policies/crossTenantAccessPolicy/partners/{SOURCE}/identitySynchronization");
    let beta = env.url(&format!("/beta{path}"));
    let (_, before) = env.get(&t, &beta).await;
    assert!(before.get("groupSyncInbound").is_none(), "{before}");
    // v1.0 has no such property (crossTenantIdentitySyncPolicyPartner v1.0): 400 to write it,
    // 400 to select it.
    let (status, body) = env
        .patch(
            &t,
            &path,
            json!({"groupSyncInbound": {"isSyncAllowed": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("'groupSyncInbound'")),
        "{body}"
    );
    assert_eq!(
        env.patch(
            &t,
            &beta,
            json!({"groupSyncInbound": {"isSyncAllowed": true}})
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, after) = env.get(&t, &beta).await;
    assert_eq!(after["groupSyncInbound"]["isSyncAllowed"], true);
    assert_eq!(after["userSyncInbound"]["isSyncAllowed"], true);
    assert!(
        after["@odata.context"]
            .as_str()
            .is_some_and(|c| c.contains("/beta/$metadata")),
        "{after}"
    );
    // On v1.0 the object has no groupSyncInbound, and selecting it is a 400.
    let (status, v1) = env.get(&t, &path).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert!(v1.get("groupSyncInbound").is_none(), "{v1}");
    let (status, body) = env
        .get(&t, &format!("{path}?$select=tenantId,groupSyncInbound"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, selected) = env
        .get(&t, &format!("{beta}?$select=groupSyncInbound"))
        .await;
    assert_eq!(status, StatusCode::OK, "{selected}");
    assert_eq!(selected["groupSyncInbound"]["isSyncAllowed"], true);
    assert!(selected.get("userSyncInbound").is_none(), "{selected}");
    for bad in [
        json!({"groupSyncInbound": {"isSyncAllowed": "yes"}}),
        json!({"groupSyncInbound": {"isSyncAlowed": true}}),
    ] {
        assert_eq!(
            env.patch(&t, &beta, bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // A beta `$batch` runs its items on beta.
    let (status, body) = env
        .post(
            &t,
            &env.url("/beta/$batch"),
            json!({"requests": [{"id": "1", "method": "GET",
                "url": format!("{path}?$select=groupSyncInbound")}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["responses"][0]["status"], 200, "{body}");
}
