use std::time::Duration;

use ctsync::emulator::EmulatorOptions;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn an_invitation_burst_is_throttled_and_retry_after_is_honoured() {
    // Real time: the tenant-wide invitation limit is 150 per 5 s.
    let env = start_with(EmulatorOptions::default()).await;
    let t = env.token(TARGET).await;
    let invite = |i: usize| json!({"invitedUserEmailAddress": format!("burst{i}@partner.example"), "inviteRedirectUrl": "https://myapps.microsoft.com"});
    let mut first_429 = None;
    let mut sent = 0;
    for i in 0..400 {
        let (s, headers, body) = env
            .send(&t, Method::POST, "/invitations", Some(invite(i)), &[])
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            first_429 = Some((headers, body));
            break;
        }
        assert_eq!(s, StatusCode::CREATED);
        sent += 1;
    }
    let (headers, body) = first_429.expect("the invitation limit throttles a burst");
    assert!(
        sent >= 150,
        "{sent} invitations went through before throttling"
    );
    assert_graph_error(&body, "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["status"], "429");
    assert_eq!(body["error"]["message"], "Please retry again later.");
    let retry: f64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0.0 && retry <= 5.0, "{retry}");
    tokio::time::sleep(Duration::from_secs_f64(retry)).await;
    let (s, _, _) = env
        .send(&t, Method::POST, "/invitations", Some(invite(9999)), &[])
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "after waiting Retry-After the invitation goes through"
    );
}

#[tokio::test]
async fn the_write_quota_is_3000_per_150_seconds_per_app_and_tenant() {
    // A nearly frozen clock makes the window outlast the burst on any machine.
    let env = start_with(EmulatorOptions {
        time_scale: 0.01,
        ..EmulatorOptions::default()
    })
    .await;
    let t = env.token(TARGET).await;
    let (_, u) = env
        .post(&t, "/users", new_user("burst@fabrikam.com", "Burst"))
        .await;
    let path = format!("/users/{}", u["id"].as_str().expect("id"));
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (env, t, path) = (&env, t.clone(), path.clone());
            async move {
                let mut ok = 0;
                for i in 0..400 {
                    let (s, _, _) = env
                        .send(
                            &t,
                            Method::PATCH,
                            &path,
                            Some(json!({"jobTitle": format!("w{w}-{i}")})),
                            &[],
                        )
                        .await;
                    if s == StatusCode::NO_CONTENT {
                        ok += 1;
                    }
                }
                ok
            }
        })
        .collect();
    let ok: usize = futures::future::join_all(tasks).await.into_iter().sum();
    assert_eq!(
        ok + 1,
        3_000,
        "exactly the quota of writes (one was the create) went through"
    );
    let (s, headers, _) = env
        .send(
            &t,
            Method::PATCH,
            &path,
            Some(json!({"jobTitle": "x"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        headers
            .get("x-ms-throttle-scope")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|s| s.starts_with("Tenant_Application/Write/"))
    );
    assert_eq!(
        headers
            .get("x-ms-throttle-information")
            .and_then(|v| v.to_str().ok()),
        Some("WriteLimitExceeded")
    );
    // Reads only spend resource units, which are not exhausted.
    assert_eq!(env.get(&t, "/users?$select=id").await.0, StatusCode::OK);
    env.handle.advance_clock(chrono::Duration::seconds(150));
    assert_eq!(
        env.patch(&t, &path, json!({"jobTitle": "later"})).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn throttling_can_be_turned_off_and_reports_resource_units() {
    let env = start_with(EmulatorOptions::default()).await;
    let t = env.token(SOURCE).await;
    let (_, headers, _) = env.send(&t, Method::GET, "/users", None, &[]).await;
    assert_eq!(
        headers
            .get("x-ms-resource-unit")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let (_, headers, _) = env
        .send(&t, Method::GET, "/users?$select=id", None, &[])
        .await;
    assert_eq!(
        headers
            .get("x-ms-resource-unit")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(
        env.control(
            Method::PUT,
            "/_emulator/throttling",
            json!({"enabled": false})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    // 3,500 RU / 10 s for a small tenant: 2,000 list calls at 2 RU would exceed it.
    for _ in 0..2_000 {
        assert_eq!(env.get(&t, "/users").await.0, StatusCode::OK);
    }
}
