use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn secret_grant_issues_a_bearer_token_for_that_tenant_only() {
    let env = start().await;
    let resp = env
        .token_response(
            "contoso.onmicrosoft.com",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 3000));
    let token = body["access_token"].as_str().expect("token");
    // The token is for the source tenant: it sees source users, not target users.
    let (s, users) = env.get(token, "/users?$select=userPrincipalName").await;
    assert_eq!(s, StatusCode::OK);
    let upns: Vec<&str> = users["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|u| u["userPrincipalName"].as_str())
        .collect();
    assert!(upns.contains(&"adele@contoso.com"));
    assert!(!upns.contains(&"admin@fabrikam.onmicrosoft.com"));
}

/// (tenant, form, status, OAuth error, AADSTS code)
type TokenCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, u64);

#[tokio::test]
async fn token_errors_are_aadsts_objects() {
    let env = start().await;
    let cases: Vec<TokenCase> = vec![
        (
            SOURCE,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_APP),
                ("client_secret", "wrong"),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            401,
            "invalid_client",
            7000215,
        ),
        (
            SOURCE,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_APP),
                ("client_secret", SECRET),
                ("scope", "https://foo.microsoft.com/.default"),
            ],
            400,
            "invalid_scope",
            70011,
        ),
        (
            "nope.example",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "invalid_request",
            90002,
        ),
        (
            SOURCE,
            vec![
                ("grant_type", "password"),
                ("client_id", SYNC_APP),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            SOURCE,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "unknown-app"),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            SOURCE,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", SYNC_APP),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            401,
            "invalid_client",
            7000218,
        ),
    ];
    for (tenant, form, status, error, code) in cases {
        let resp = env.token_response(tenant, &form).await;
        assert_eq!(resp.status().as_u16(), status, "{form:?}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], error);
        assert_eq!(body["error_codes"][0], code);
        assert!(body["error_description"].as_str().is_some_and(|d| {
            d.starts_with(&format!("AADSTS{code}: ")) && d.contains("\r\nTrace ID: ")
        }));
        assert!(
            body["trace_id"].is_string()
                && body["correlation_id"].is_string()
                && body["timestamp"].is_string()
        );
    }
}

#[tokio::test]
async fn federated_client_assertion_is_matched_against_the_app_credentials() {
    let env = start().await;
    let jwt = |claims: Value| {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };
    let good = jwt(
        json!({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:ctsync:ctsync", "aud": ["api://AzureADTokenExchange"]}),
    );
    let bad_sub = jwt(
        json!({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:other:x", "aud": "api://AzureADTokenExchange"}),
    );
    let bad_aud = jwt(
        json!({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:ctsync:ctsync", "aud": "api://other"}),
    );
    let form = |a: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", SYNC_APP.to_string()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", a.to_string()),
            ("scope", "https://graph.microsoft.com/.default".to_string()),
        ]
    };
    let send = |a: String| {
        let f = form(&a);
        let env = &env;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.token_response(TARGET, &pairs).await
        }
    };
    assert_eq!(send(good).await.status(), StatusCode::OK);
    for bad in [bad_sub, bad_aud, "garbage".to_string()] {
        let resp = send(bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().await.expect("json");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with("AADSTS"))
        );
    }
}

#[tokio::test]
async fn expired_missing_and_unknown_tokens_get_401() {
    let env = start().await;
    let token = env.token(SOURCE).await;
    assert_eq!(env.get(&token, "/users").await.0, StatusCode::OK);
    let (s, body) = env.get("not-a-token", "/users").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");
    let resp = env
        .http
        .get(env.url("/v1.0/users"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    env.handle.advance_clock(chrono::Duration::hours(2));
    let (s, body) = env.get(&token, "/users").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_graph_error(&body, "InvalidAuthenticationToken");
}

#[tokio::test]
async fn missing_permission_is_authorization_request_denied() {
    let env = start().await;
    let reader = env.token_for(TARGET, READER_APP, READER_SECRET).await;
    assert_eq!(env.get(&reader, "/users").await.0, StatusCode::OK);
    for (method, path, body) in [
        (
            Method::POST,
            "/users",
            Some(new_user("x@fabrikam.com", "X")),
        ),
        (
            Method::POST,
            "/invitations",
            Some(
                json!({"invitedUserEmailAddress": "a@contoso.com", "inviteRedirectUrl": "https://myapps.microsoft.com"}),
            ),
        ),
        (Method::GET, "/groups", None),
        (
            Method::GET,
            "/policies/crossTenantAccessPolicy/partners",
            None,
        ),
        (Method::GET, "/servicePrincipals", None),
    ] {
        let (s, _, b) = env.send(&reader, method, path, body, &[]).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_graph_error(&b, "Authorization_RequestDenied");
        assert_eq!(
            b["error"]["message"],
            "Insufficient privileges to complete the operation."
        );
    }
}

#[tokio::test]
async fn control_api_revokes_secrets_and_changes_permissions() {
    let env = start().await;
    assert_eq!(
        env.control(
            Method::PUT,
            &format!("/_emulator/apps/{READER_APP}/secrets"),
            json!({"clientSecrets": ["rotated"]})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let resp = env
        .token_response(
            TARGET,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", READER_APP),
                ("client_secret", READER_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        env.control(
            Method::PUT,
            &format!("/_emulator/tenants/{TARGET}/apps/{READER_APP}/permissions"),
            json!({"permissions": ["Group.Read.All"]})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let token = env.token_for(TARGET, READER_APP, "rotated").await;
    assert_eq!(env.get(&token, "/groups").await.0, StatusCode::OK);
    assert_eq!(env.get(&token, "/users").await.0, StatusCode::FORBIDDEN);
}
