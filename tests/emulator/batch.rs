use ctsync::emulator::EmulatorOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn by_id(body: &Value, id: &str) -> Value {
    body["responses"]
        .as_array()
        .and_then(|r| r.iter().find(|i| i["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn batch_runs_items_with_depends_on_and_fails_dependants_with_424() {
    let env = start().await;
    let t = env.token(TARGET).await;
    // Fully sequential: one dependsOn chain.
    let body = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": new_user("b1@fabrikam.com", "B1")},
        {"id": "2", "method": "GET", "url": "/users/b1@fabrikam.com?$select=displayName", "dependsOn": ["1"]},
        {"id": "3", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": new_user("b1@fabrikam.com", "Dup"), "dependsOn": ["2"]},
        {"id": "4", "method": "PATCH", "url": "/users/b1@fabrikam.com", "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "x"}, "dependsOn": ["3"]},
    ]});
    let (s, resp) = env.post(&t, "/$batch", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_id(&resp, "1")["status"], 201);
    assert_eq!(by_id(&resp, "2")["status"], 200);
    assert_eq!(by_id(&resp, "2")["body"]["displayName"], "B1");
    assert_eq!(by_id(&resp, "3")["status"], 400);
    assert_eq!(
        by_id(&resp, "3")["body"]["error"]["details"][0]["code"],
        "ObjectConflict"
    );
    assert_eq!(by_id(&resp, "4")["status"], 424);
    // Fully parallel.
    let body = json!({"requests": [
        {"id": "5", "method": "GET", "url": "users?$select=id&$top=1"},
        {"id": "6", "method": "PUT", "url": "/users"},
    ]});
    let (s, resp) = env.post(&t, "/$batch", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_id(&resp, "5")["status"], 200);
    assert!(by_id(&resp, "5")["headers"]["x-ms-resource-unit"].is_string());
    assert_eq!(by_id(&resp, "6")["status"], 405);
    let (_, got) = env.get(&t, "/users/b1@fabrikam.com?$select=jobTitle").await;
    assert_eq!(
        got["jobTitle"],
        serde_json::Value::Null,
        "the dependant of a failed request did not run"
    );
}

#[tokio::test]
async fn malformed_batches_are_400() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    for bad in [
        json!({"requests": many}),
        json!({"nope": []}),
        json!({"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]}]}),
    ] {
        let (s, err) = env.post(&t, "/$batch", bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(err["error"]["code"].is_string());
    }
}

#[tokio::test]
async fn throttled_batch_items_get_their_own_429_and_retry_after() {
    // The emulator clock at 1/100 of real time: the invitation window refills at 0.3 per real
    // second, so how long the batches take on a loaded machine cannot keep them under the limit.
    let env = start_with(EmulatorOptions {
        time_scale: 0.01,
        ..EmulatorOptions::default()
    })
    .await;
    let t = env.token(TARGET).await;
    let requests: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "POST", "url": "/invitations", "headers": {"Content-Type": "application/json"},
                        "body": {"invitedUserEmailAddress": format!("p{i}@partner.example"), "inviteRedirectUrl": "https://myapps.microsoft.com"}}))
        .collect();
    let mut throttled = None;
    // 150 invitations per 5 s per tenant: the 8th batch of 20 must see per-item 429s.
    for _ in 0..8 {
        let (s, resp) = env.post(&t, "/$batch", json!({"requests": requests})).await;
        assert_eq!(s, StatusCode::OK);
        if let Some(item) = resp["responses"]
            .as_array()
            .and_then(|r| r.iter().find(|i| i["status"] == 429))
        {
            throttled = Some(item.clone());
            break;
        }
    }
    let item = throttled.expect("some batch item was throttled");
    assert_graph_error(&item["body"], "TooManyRequests");
    let retry: f64 = item["headers"]["Retry-After"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in the item");
    // At most the 5 s window, in real seconds: 5 s on the emulator clock is 500 s at this scale.
    assert!(retry > 0.0 && retry <= 500.0, "{retry}");
}
