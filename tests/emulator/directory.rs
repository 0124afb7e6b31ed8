use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn soft_delete_restore_keeps_the_object_id() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (_, u) = env
        .post(&t, "/users", new_user("temp@fabrikam.com", "Temp"))
        .await;
    let id = u["id"].as_str().expect("id").to_string();
    assert_eq!(
        env.delete(&t, &format!("/users/{id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.get(&t, &format!("/users/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, list) = env
        .get(&t, "/directory/deletedItems/microsoft.graph.user")
        .await;
    assert_eq!(s, StatusCode::OK);
    let item = list["value"]
        .as_array()
        .and_then(|v| v.iter().find(|i| i["id"] == id.as_str()))
        .expect("deleted user listed")
        .clone();
    assert!(item["deletedDateTime"].is_string());
    assert_eq!(
        item["userPrincipalName"],
        format!("{}temp@fabrikam.com", id.replace('-', ""))
    );
    // The UPN is free while the user is deleted; restoring then conflicts.
    let (_, other) = env
        .post(&t, "/users", new_user("temp@fabrikam.com", "Usurper"))
        .await;
    let (s, err) = env
        .post(
            &t,
            &format!("/directory/deletedItems/{id}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["details"][0]["code"], "ObjectConflict");
    let (s, restored) = env
        .post(
            &t,
            &format!("/directory/deletedItems/{id}/restore"),
            json!({"newUserPrincipalName": "temp2@fabrikam.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{restored}");
    assert_eq!(restored["@odata.type"], "#microsoft.graph.user");
    assert_eq!(restored["id"], id.as_str());
    assert_eq!(restored["userPrincipalName"], "temp2@fabrikam.com");
    assert_eq!(env.get(&t, &format!("/users/{id}")).await.0, StatusCode::OK);
    assert!(other["id"].is_string());
    assert_eq!(
        env.get(&t, "/directory/deletedItems").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn soft_deleted_users_are_purged_after_30_days_of_emulator_time() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (_, u) = env
        .post(&t, "/users", new_user("gone@fabrikam.com", "Gone"))
        .await;
    let id = u["id"].as_str().expect("id").to_string();
    env.delete(&t, &format!("/users/{id}")).await;
    env.handle.advance_clock(chrono::Duration::days(29));
    let t = env.token(TARGET).await;
    assert_eq!(
        env.get(&t, &format!("/directory/deletedItems/{id}"))
            .await
            .0,
        StatusCode::OK
    );
    // Through the control API this time.
    assert_eq!(
        env.control(
            reqwest::Method::POST,
            "/_emulator/clock/advance",
            json!({"days": 1.5})
        )
        .await,
        StatusCode::OK
    );
    let t = env.token(TARGET).await;
    let (s, err) = env.get(&t, &format!("/directory/deletedItems/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&err, "Request_ResourceNotFound");
    assert_eq!(
        env.post(
            &t,
            &format!("/directory/deletedItems/{id}/restore"),
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert!(
        !env.handle.directory().tenants[TARGET]
            .deleted_users
            .contains_key(&id)
    );
}
