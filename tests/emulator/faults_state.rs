use ctsync::emulator::EmulatorOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn fail_next_and_error_rate_faults() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let rule = json!({"pathContains": "/invitations", "count": 2, "status": 503, "code": "serviceNotAvailable", "retryAfter": 0.5});
    assert_eq!(
        env.control(Method::POST, "/_emulator/faults/fail-next", rule)
            .await,
        StatusCode::NO_CONTENT
    );
    let inv = json!({"invitedUserEmailAddress": "f@contoso.com", "inviteRedirectUrl": "https://myapps.microsoft.com"});
    for _ in 0..2 {
        let (s, headers, err) = env
            .send(&t, Method::POST, "/invitations", Some(inv.clone()), &[])
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_graph_error(&err, "serviceNotAvailable");
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("0.5")
        );
    }
    assert_eq!(
        env.post(&t, "/invitations", inv).await.0,
        StatusCode::CREATED
    );
    let status = env.control(Method::PUT, &format!("/_emulator/tenants/{TARGET}/faults"), json!({"errorRate": 1.0, "errorStatus": 500, "errorCode": "generalException", "latencyMs": 5})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (s, err) = env.get(&t, "/users").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_graph_error(&err, "generalException");
    // Other tenants are unaffected.
    assert_eq!(
        env.get(&env.token(SOURCE).await, "/users").await.0,
        StatusCode::OK
    );
    assert_eq!(
        env.control(Method::DELETE, "/_emulator/faults", json!({}))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.get(&t, "/users").await.0, StatusCode::OK);
    assert_eq!(
        env.control(
            Method::PUT,
            &format!("/_emulator/tenants/{TARGET}/faults"),
            json!({"errorRate": 7})
        )
        .await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn export_returns_the_directory() {
    let env = start().await;
    let resp = env
        .http
        .get(env.url("/_emulator/export"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    let dir: Value = resp.json().await.expect("json");
    assert!(
        dir["tenants"][SOURCE]["users"]
            .as_object()
            .is_some_and(|u| u.len() == 3)
    );
    assert!(dir["tenants"][TARGET]["partners"][SOURCE].is_object());
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let options = || EmulatorOptions {
        throttling: false,
        state_file: Some(state.clone()),
        ..EmulatorOptions::default()
    };
    let env = start_with(options()).await;
    let t = env.token(TARGET).await;
    let (_, u) = env
        .post(&t, "/users", new_user("keep@fabrikam.com", "Keep"))
        .await;
    let id = u["id"].as_str().expect("id").to_string();
    env.delete(&t, &format!("/users/{id}")).await;
    let (_, delta) = env.get(&t, "/users/delta?$deltatoken=latest").await;
    let link = delta["@odata.deltaLink"]
        .as_str()
        .expect("link")
        .to_string();
    env.handle.shutdown().await.expect("saved");
    assert!(state.exists());

    let env = start_with(options()).await;
    let t = env.token(TARGET).await;
    assert_eq!(
        env.get(&t, &format!("/directory/deletedItems/{id}"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        env.post(
            &t,
            &format!("/directory/deletedItems/{id}/restore"),
            json!({})
        )
        .await
        .0,
        StatusCode::OK
    );
    // Delta tokens from before the restart still work (same change log), on the new port.
    let link = link.split("/v1.0").nth(1).expect("path").to_string();
    let (s, changes) = env.get(&t, &link).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(changes["value"][0]["id"], id.as_str());
    env.handle.shutdown().await.expect("saved");
}
