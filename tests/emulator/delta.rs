use ctsync::emulator::EmulatorOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// Follows nextLinks to the deltaLink; returns all items and the deltaLink.
async fn round(env: &Env, t: &str, first: &str) -> (Vec<Value>, String, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut url = first.to_string();
    loop {
        let (s, body) = env.get(t, &url).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        pages += 1;
        items.extend(body["value"].as_array().cloned().unwrap_or_default());
        if let Some(next) = body["@odata.nextLink"].as_str() {
            url = next.to_string();
        } else {
            let link = body["@odata.deltaLink"]
                .as_str()
                .expect("deltaLink on the last page");
            return (items, link.to_string(), pages);
        }
    }
}

#[tokio::test]
async fn delta_reports_creates_updates_soft_deletes_and_restores() {
    let env = start_with(EmulatorOptions {
        throttling: false,
        delta_page_size: 2,
        ..EmulatorOptions::default()
    })
    .await;
    let t = env.token(SOURCE).await;
    let (initial, link, pages) =
        round(&env, &t, "/users/delta?$select=displayName,department,mail").await;
    assert_eq!(initial.len(), 3);
    assert_eq!(pages, 2, "3 users in pages of 2");
    assert!(
        initial
            .iter()
            .all(|u| u["id"].is_string() && u.get("userPrincipalName").is_none())
    );

    let (no_changes, link, _) = round(&env, &t, &link).await;
    assert!(no_changes.is_empty());

    let (_, created) = env
        .post(&t, "/users", new_user("new@contoso.com", "New Person"))
        .await;
    let new_id = created["id"].as_str().expect("id").to_string();
    let adele = "00000000-aaaa-0000-0000-000000000001";
    let megan = "00000000-aaaa-0000-0000-000000000002";
    env.patch(
        &t,
        &format!("/users/{adele}"),
        json!({"department": "Field Sales"}),
    )
    .await;
    // A change to an unselected property does not surface the user.
    env.patch(&t, &format!("/users/{megan}"), json!({"jobTitle": "Lead"}))
        .await;
    let (changes, link, _) = round(&env, &t, &link).await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    let new = changes
        .iter()
        .find(|c| c["id"] == new_id.as_str())
        .expect("created user");
    assert_eq!(new["displayName"], "New Person");
    let upd = changes
        .iter()
        .find(|c| c["id"] == adele)
        .expect("updated user");
    assert_eq!(upd["department"], "Field Sales");

    // Prefer: return=minimal returns only the changed properties.
    env.patch(
        &t,
        &format!("/users/{adele}"),
        json!({"department": "Sales"}),
    )
    .await;
    let (_, _, minimal) = env
        .send(
            &t,
            Method::GET,
            &link,
            None,
            &[("Prefer", "return=minimal")],
        )
        .await;
    assert_eq!(
        minimal["value"],
        json!([{"department": "Sales", "id": adele}])
    );
    let link = minimal["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();

    assert_eq!(
        env.delete(&t, &format!("/users/{megan}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (changes, link, _) = round(&env, &t, &link).await;
    assert_eq!(
        changes,
        vec![json!({"id": megan, "@removed": {"reason": "changed"}})]
    );

    let (s, restored) = env
        .post(
            &t,
            &format!("/directory/deletedItems/{megan}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(restored["id"], megan);
    let (changes, link, _) = round(&env, &t, &link).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["id"], megan);
    assert_eq!(changes[0]["displayName"], "Megan Bowen");
    assert!(changes[0].get("@removed").is_none());

    env.delete(&t, &format!("/users/{new_id}")).await;
    assert_eq!(
        env.delete(&t, &format!("/directory/deletedItems/{new_id}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (changes, _, _) = round(&env, &t, &link).await;
    assert_eq!(
        changes,
        vec![json!({"id": new_id, "@removed": {"reason": "deleted"}})]
    );
}

#[tokio::test]
async fn latest_token_bad_tokens_and_expired_tokens() {
    let env = start().await;
    let t = env.token(SOURCE).await;
    let (s, body) = env
        .get(&t, "/users/delta?$deltatoken=latest&$select=displayName")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["value"], json!([]));
    let link = body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();
    for bad in [
        "/users/delta?$deltatoken=garbage",
        "/users/delta?$skiptoken=%%%",
    ] {
        // Default: 400 syncStateNotFound without a Location (the directory behaviour).
        let (s, headers, err) = env.send(&t, Method::GET, bad, None, &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_graph_error(&err, "syncStateNotFound");
        assert!(headers.get("location").is_none());
        // Switched: 410 Gone with the restart URL.
        assert_eq!(
            env.control(
                Method::PUT,
                "/_emulator/delta",
                json!({"expiredTokenStatus": 410})
            )
            .await,
            StatusCode::NO_CONTENT
        );
        let (s, headers, err) = env.send(&t, Method::GET, bad, None, &[]).await;
        assert_eq!(s, StatusCode::GONE, "{bad}");
        assert_graph_error(&err, "syncStateNotFound");
        assert!(
            headers
                .get("location")
                .and_then(|l| l.to_str().ok())
                .is_some_and(|l| l.contains("/users/delta"))
        );
        env.handle.set_expired_delta_status(400);
    }
    assert_eq!(
        env.control(
            Method::PUT,
            "/_emulator/delta",
            json!({"expiredTokenStatus": 404})
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    // A token from another tenant is not valid here.
    let other = env.token(TARGET).await;
    assert_eq!(env.get(&other, &link).await.0, StatusCode::BAD_REQUEST);
    // Tokens expire after 7 days on the emulator clock.
    assert_eq!(env.get(&t, &link).await.0, StatusCode::OK);
    env.handle.advance_clock(chrono::Duration::days(8));
    let t = env.token(SOURCE).await;
    let (s, err) = env.get(&t, &link).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&err, "syncStateNotFound");
    let (s, _) = env.get(&t, "/users/delta?$top=5").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
