use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn bad_input_gets_graph_errors_never_a_500() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let cases: Vec<(Method, &str, Option<serde_json::Value>, u16, &str)> = vec![
        (
            Method::GET,
            "/users?$bogus=1",
            None,
            400,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            "/users?$top=1000",
            None,
            400,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            "/users?$skip=2",
            None,
            400,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            "/users?$filter=userType eq",
            None,
            400,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            "/users?$filter=nope eq 'x'",
            None,
            400,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            "/users?$select=nope",
            None,
            400,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            "/users?$select=skills",
            None,
            501,
            "NotImplemented",
        ),
        (
            Method::GET,
            "/users?$skiptoken=zzz",
            None,
            400,
            "Request_BadRequest",
        ),
        (
            Method::GET,
            "/users/does-not-exist",
            None,
            404,
            "Request_ResourceNotFound",
        ),
        (Method::PUT, "/users", None, 405, "Request_BadRequest"),
        (Method::GET, "/nothingHere", None, 400, "BadRequest"),
        (Method::GET, "/users/x/nothingHere", None, 400, "BadRequest"),
        (
            Method::POST,
            "/users",
            Some(json!({"displayName": "x"})),
            400,
            "Request_BadRequest",
        ),
        (Method::POST, "/users", Some(json!([1])), 400, "BadRequest"),
        (
            Method::PATCH,
            "/users/admin@fabrikam.onmicrosoft.com",
            Some(json!({"accountEnabled": "yes"})),
            400,
            "Request_BadRequest",
        ),
        (
            Method::PATCH,
            "/users/admin@fabrikam.onmicrosoft.com",
            Some(json!({"creationType": "Invitation"})),
            400,
            "Request_BadRequest",
        ),
        (
            Method::PATCH,
            "/users/admin@fabrikam.onmicrosoft.com",
            Some(json!({"noSuchThing": 1})),
            400,
            "Request_BadRequest",
        ),
        (
            Method::PATCH,
            "/users/admin@fabrikam.onmicrosoft.com",
            Some(json!({"displayName": ""})),
            400,
            "Request_BadRequest",
        ),
        (
            Method::PATCH,
            "/users/admin@fabrikam.onmicrosoft.com",
            Some(json!({"department": "x".repeat(65)})),
            400,
            "Request_BadRequest",
        ),
        (
            Method::POST,
            "/groups",
            Some(json!({"displayName": 5})),
            400,
            "Request_BadRequest",
        ),
        (
            Method::POST,
            "/policies/crossTenantAccessPolicy/partners",
            Some(json!({"tenantId": "not-a-guid"})),
            400,
            "Request_BadRequest",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (s, headers, err) = env
            .send(
                &t,
                method.clone(),
                path,
                body,
                &[("client-request-id", "abc-123")],
            )
            .await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {err}");
        assert_graph_error(&err, code);
        assert_eq!(err["error"]["innerError"]["client-request-id"], "abc-123");
        assert_eq!(
            headers
                .get("client-request-id")
                .and_then(|v| v.to_str().ok()),
            Some("abc-123")
        );
        assert!(headers.get("request-id").is_some());
    }
    // A raw non-JSON body.
    let resp = env
        .http
        .post(env.url("/v1.0/users"))
        .bearer_auth(&t)
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Outside /v1.0 and /beta.
    let resp = env
        .http
        .get(env.url("/v2.0/users"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn no_path_method_body_combination_yields_a_500() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let paths = [
        "/users",
        "/users/%ZZ",
        "/users/admin@fabrikam.onmicrosoft.com",
        "/users/admin@fabrikam.onmicrosoft.com/manager/$ref",
        "/users/delta?$skiptoken=eyJ0IjoxfQ",
        "/users/delta?$deltatoken=",
        "/groups//members",
        "/groups/x/members/$ref",
        "/servicePrincipals(appId='",
        "/servicePrincipals(appId='x')/appRoleAssignedTo",
        "/applications/x/extensionProperties",
        "/directory/deletedItems/x/restore",
        "/policies/crossTenantAccessPolicy/partners/x/identitySynchronization",
        "/invitations",
        "/$batch",
        "/",
    ];
    let bodies = [
        None,
        Some("{}"),
        Some("[]"),
        Some("null"),
        Some("garbage"),
        Some(r#"{"requests":[{"id":"1","method":"GET","url":"/users/%ZZ"}]}"#),
    ];
    for path in paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ] {
            for body in bodies {
                let mut req = env
                    .http
                    .request(method.clone(), env.url(&format!("/v1.0{path}")))
                    .bearer_auth(&t);
                if let Some(b) = body {
                    req = req.header("Content-Type", "application/json").body(b);
                }
                let resp = req.send().await.expect("sent");
                let status = resp.status();
                assert!(
                    status.as_u16() < 500 || status == StatusCode::NOT_IMPLEMENTED,
                    "{method} {path} {body:?}: {status}"
                );
                if status.is_client_error() {
                    let v: serde_json::Value = resp.json().await.expect("error body is JSON");
                    assert!(
                        v["error"]["code"].is_string(),
                        "{method} {path} {body:?}: {v}"
                    );
                }
            }
        }
    }
}
