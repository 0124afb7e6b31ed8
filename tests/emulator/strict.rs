//! Requests real Graph refuses, which the emulator used to accept (issue 8). Each test fails
//! against the lenient behaviour it names.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TARGET, assert_graph_error, new_user, start};

fn invite(email: &str) -> Value {
    json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com", "invitedUserType": "Member"})
}

/// Old: 201 and a second user holding the same address.
#[tokio::test]
async fn an_invitation_for_an_address_an_internal_user_holds_is_refused() {
    let env = start().await;
    let t = env.token(TARGET).await;
    // An internal user of the target holds pat@partner.example as mail, another as other mail,
    // another as a proxy address (through mail), another as UPN-like address on a foreign domain.
    let mut u = new_user("pat@fabrikam.com", "Pat");
    u["mail"] = json!("pat@partner.example");
    u["otherMails"] = json!(["pat.home@partner.example"]);
    let (s, body) = env.post(&t, "/users", u).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    for email in ["pat@partner.example", "PAT.HOME@partner.example"] {
        let before = env.handle.directory().tenants[TARGET].users.len();
        let (s, err) = env.post(&t, "/invitations", invite(email)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{email}: {err}");
        assert_graph_error(&err, "BadRequest");
        assert_eq!(env.handle.directory().tenants[TARGET].users.len(), before);
    }
    // An address on one of the target's own verified domains.
    let (s, err) = env
        .post(&t, "/invitations", invite("someone@fabrikam.com"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    // The UPN of an internal user.
    let (s, _) = env
        .post(&t, "/invitations", invite("admin@fabrikam.onmicrosoft.com"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// A re-invite after the B2B user was soft-deleted creates a new user; restoring the old one
/// then conflicts on the UPN (and, with a new UPN, on the proxy address unless reconciled).
#[tokio::test]
async fn a_reinvite_after_soft_delete_makes_the_restore_conflict() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (s, first) = env
        .post(&t, "/invitations", invite("lee@partner.example"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let old = first["invitedUser"]["id"].as_str().expect("id").to_string();
    // Re-invite of a live B2B user returns that user.
    let (_, again) = env
        .post(&t, "/invitations", invite("lee@partner.example"))
        .await;
    assert_eq!(again["invitedUser"]["id"], old.as_str());
    let (s, _) = env.delete(&t, &format!("/users/{old}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, second) = env
        .post(&t, "/invitations", invite("lee@partner.example"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let new = second["invitedUser"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_ne!(new, old);
    let restore = format!("/directory/deletedItems/{old}/restore");
    let (s, err) = env.post(&t, &restore, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["details"][0]["target"], "userPrincipalName");
    let (s, err) = env
        .post(&t, &restore, json!({"newUserPrincipalName": "lee_partner.example_old#EXT#@fabrikam.onmicrosoft.com"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["details"][0]["target"], "proxyAddresses");
    let (s, restored) = env
        .post(
            &t,
            &restore,
            json!({"newUserPrincipalName": "lee_partner.example_old#EXT#@fabrikam.onmicrosoft.com", "autoReconcileProxyConflict": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{restored}");
}

async fn filter_status(
    env: &crate::common::Env,
    t: &str,
    filter: &str,
    advanced: bool,
) -> (StatusCode, Value) {
    let enc: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    let (path, headers): (String, Vec<(&str, &str)>) = if advanced {
        (
            format!("/users?$filter={enc}&$count=true"),
            vec![("ConsistencyLevel", "eventual")],
        )
    } else {
        (format!("/users?$filter={enc}"), vec![])
    };
    let (s, _, b) = env.send(t, Method::GET, &path, None, &headers).await;
    (s, b)
}

/// Old: wrong literal types returned an empty list, collections matched without any(), `in`
/// took any number of values, gt/lt worked on displayName, identities matched on issuer alone.
#[tokio::test]
async fn filters_graph_rejects_are_400() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let fifteen: Vec<String> = (0..15).map(|i| format!("'v{i}'")).collect();
    let sixteen: Vec<String> = (0..16).map(|i| format!("'v{i}'")).collect();
    for f in [
        "accountEnabled eq 'true'".to_string(),
        "employeeId eq 1001".to_string(),
        "otherMails eq 'a@b.example'".to_string(),
        "proxyAddresses eq 'SMTP:a@b.example'".to_string(),
        format!("userType in ({})", sixteen.join(",")),
        "displayName gt 'A'".to_string(),
        "displayName lt 'Z'".to_string(),
        "identities/any(c:c/issuer eq 'fabrikam.onmicrosoft.com')".to_string(),
        "extension_bogus_x eq 'a'".to_string(),
    ] {
        let (s, body) = filter_status(&env, &t, &f, true).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{f}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    for f in [
        format!("userType in ({})", fifteen.join(",")),
        "otherMails/any(x:x eq 'a@b.example')".to_string(),
        "identities/any(c:c/issuerAssignedId eq 'a@b.example' and c/issuer eq 'fabrikam.onmicrosoft.com')".to_string(),
        "accountEnabled eq true".to_string(),
    ] {
        let (s, body) = filter_status(&env, &t, &f, false).await;
        assert_eq!(s, StatusCode::OK, "{f}: {body}");
    }
}

/// Old: `ne`, `not`, `endsWith`, `eq null` and advanced-only properties worked without
/// `ConsistencyLevel: eventual` + `$count=true`; `$orderby` on any property.
#[tokio::test]
async fn advanced_queries_need_the_advanced_headers() {
    let env = start().await;
    let t = env.token(TARGET).await;
    for f in [
        "userType ne 'Guest'",
        "not(userType eq 'Guest')",
        "endswith(mail,'@fabrikam.com')",
        "userType eq null",
        "companyName eq 'Fabrikam'",
        "showInAddressList eq false",
    ] {
        let (s, body) = filter_status(&env, &t, f, false).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{f}: {body}");
        assert_graph_error(&body, "Request_UnsupportedQuery");
        let (s, body) = filter_status(&env, &t, f, true).await;
        assert_eq!(s, StatusCode::OK, "{f}: {body}");
    }
    let (s, _) = env.get(&t, "/users?$orderby=displayName").await;
    assert_eq!(s, StatusCode::OK, "displayName is a default $orderby");
    let (s, _) = env.get(&t, "/users?$orderby=mail").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = env.get(&t, "/users?$orderby=createdDateTime").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = env
        .send(
            &t,
            Method::GET,
            "/users?$orderby=createdDateTime&$count=true",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // directory/deletedItems follows the same rules.
    let base = "/directory/deletedItems/microsoft.graph.user";
    let (s, _) = env
        .get(&t, &format!("{base}?$filter=userType ne 'Guest'"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = env
        .get(&t, &format!("{base}?$orderby=deletedDateTime"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = env
        .send(
            &t,
            Method::GET,
            &format!("{base}?$orderby=deletedDateTime&$count=true"),
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

/// Old: a write without `Content-Type: application/json` was read as JSON anyway.
#[tokio::test]
async fn a_write_without_a_json_content_type_is_400() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let body = new_user("ct@fabrikam.com", "CT").to_string();
    for ct in [None, Some("text/plain")] {
        let mut req = env
            .http
            .post(env.url("/v1.0/users"))
            .bearer_auth(&t)
            .body(body.clone());
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        let resp = req.send().await.expect("sent");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{ct:?}");
    }
    let resp = env
        .http
        .post(env.url("/v1.0/users"))
        .bearer_auth(&t)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// Old: unknown nested properties were stored silently.
#[tokio::test]
async fn unknown_nested_properties_are_400() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let partner = format!(
        "/policies/crossTenantAccessPolicy/partners/{}",
        crate::common::SOURCE
    );
    let (s, err) = env
        .patch(
            &t,
            &partner,
            json!({"inboundTrust": {"isMfaAcepted": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("isMfaAcepted")
    );
    let (s, _) = env
        .patch(
            &t,
            &partner,
            json!({"inboundTrust": {"isMfaAccepted": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = env
        .patch(
            &t,
            &format!("{partner}/identitySynchronization"),
            json!({"userSyncInbound": {"isSyncAlowed": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let mut u = new_user("nested@fabrikam.com", "Nested");
    u["passwordProfile"]["forceChangePasswordNextSignin"] = json!(true);
    let (s, _) = env.post(&t, "/users", u).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = env
        .patch(
            &t,
            "/users/admin@fabrikam.onmicrosoft.com",
            json!({"employeeOrgData": {"division": "x", "costcenter": "y"}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Old: any string for `ageGroup` and `consentProvidedForMinor`, and `imAddresses` writable.
#[tokio::test]
async fn age_group_and_consent_take_only_their_documented_values_and_im_addresses_is_read_only() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let admin = "/users/admin@fabrikam.onmicrosoft.com";
    for body in [
        json!({"ageGroup": "teenager"}),
        json!({"consentProvidedForMinor": "maybe"}),
        json!({"imAddresses": ["sip:admin@fabrikam.com"]}),
    ] {
        let (s, err) = env.patch(&t, admin, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {err}");
    }
    let (s, err) = env
        .patch(
            &t,
            admin,
            json!({"ageGroup": "notAdult", "consentProvidedForMinor": "granted"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{err}");
    let (s, user) = env
        .get(
            &t,
            &format!("{admin}?$select=ageGroup,consentProvidedForMinor,imAddresses"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{user}");
    assert_eq!(user["ageGroup"], "notAdult");
    assert_eq!(user["consentProvidedForMinor"], "granted");
}

/// Old: 404 for an unknown segment; `$select` of any `extension_*` name; delta `$filter` with
/// anything on `id` and any number of ids.
#[tokio::test]
async fn routing_select_and_delta_filter_are_strict() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (s, err) = env.get(&t, "/userz").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    assert_graph_error(&err, "BadRequest");
    let app = crate::common::SYNC_APP.replace('-', "");
    let (s, _) = env
        .get(
            &t,
            &format!("/users?$select=id,extension_{app}_ctsyncAnchor"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "a registered extension");
    for bad in [
        format!("extension_{app}_notRegistered"),
        format!("extension_{}_ctsyncAnchor", crate::common::SYNC_APP),
    ] {
        let (s, err) = env.get(&t, &format!("/users?$select=id,{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {err}");
    }
    let ids: Vec<String> = (0..51)
        .map(|i| format!("id eq '00000000-0000-0000-0000-{i:012}'"))
        .collect();
    let f: String = url::form_urlencoded::byte_serialize(ids.join(" or ").as_bytes()).collect();
    let (s, _) = env.get(&t, &format!("/users/delta?$filter={f}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "51 ids");
    let f: String =
        url::form_urlencoded::byte_serialize(ids[..50].join(" or ").as_bytes()).collect();
    let (s, body) = env.get(&t, &format!("/users/delta?$filter={f}")).await;
    assert_eq!(s, StatusCode::OK, "50 ids: {body}");
    for bad in ["id ne '1'", "id eq '1' and id eq '2'", "startswith(id,'1')"] {
        let f: String = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        let (s, _) = env.get(&t, &format!("/users/delta?$filter={f}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Old: no `client-request-id` in `innerError` when the client sent none; no challenge on 401.
#[tokio::test]
async fn error_envelopes_carry_client_request_id_and_401_a_challenge() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (s, headers, err) = env
        .send(&t, Method::GET, "/users/nobody@fabrikam.com", None, &[])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let inner = &err["error"]["innerError"];
    assert_eq!(inner["client-request-id"], inner["request-id"], "{err}");
    assert_eq!(
        headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok()),
        inner["request-id"].as_str()
    );
    let (s, headers, _) = env
        .send("not-a-token", Method::GET, "/users", None, &[])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let challenge = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("authorization_uri="), "{challenge}");
}

/// Old: a batch mixing dependent and independent items ran; responses came back in request
/// order (so a client matching them by position passed).
#[tokio::test]
async fn batch_is_fully_sequential_or_fully_parallel_and_answers_out_of_order() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let get = |id: &str, deps: &[&str]| json!({"id": id, "method": "GET", "url": "/users?$select=id&$top=1", "dependsOn": deps});
    for mixed in [
        json!({"requests": [get("1", &[]), get("2", &["1"]), get("3", &[])]}),
        json!({"requests": [get("1", &[]), get("2", &["1"]), get("3", &["1"])]}),
    ] {
        let (s, err) = env.post(&t, "/$batch", mixed).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("fully sequential")
        );
    }
    // A chain in any listing order is sequential.
    let (s, body) = env
        .post(
            &t,
            "/$batch",
            json!({"requests": [get("3", &["2"]), get("1", &[]), get("2", &["1"])]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["responses"].as_array().map(Vec::len), Some(3));
    // A parallel batch of 10: never in request order, every id answered once.
    let ids: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    let requests: Vec<Value> = ids.iter().map(|i| get(i, &[])).collect();
    for _ in 0..5 {
        let (s, body) = env
            .post(&t, "/$batch", json!({"requests": requests.clone()}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let got: Vec<String> = body["responses"]
            .as_array()
            .expect("responses")
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_ne!(got, ids, "responses must not come back in request order");
        let mut sorted = got.clone();
        sorted.sort_by_key(|i| i.parse::<u32>().unwrap_or(0));
        assert_eq!(sorted, ids);
    }
}

/// Old: fixed windows — a client hammering while throttled recovered as fast as one that
/// waited; `GET /users/{id}` cost 2 RU, `GET /applications` 1.
#[tokio::test]
async fn retrying_while_throttled_extends_the_throttle_and_costs_follow_the_table() {
    // A nearly frozen clock: only `advance_clock` moves time.
    let scale = 0.0001;
    let env = crate::common::start_with(ctsync::emulator::EmulatorOptions {
        time_scale: scale,
        ..ctsync::emulator::EmulatorOptions::default()
    })
    .await;
    let t = env.token(TARGET).await;
    for i in 0..150 {
        let (s, _) = env
            .post(&t, "/invitations", invite(&format!("b{i}@partner.example")))
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let retry_after = |h: &reqwest::header::HeaderMap| -> f64 {
        h.get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After")
    };
    let mut last = 0.0;
    for i in 0..5 {
        let (s, h, _) = env
            .send(
                &t,
                Method::POST,
                "/invitations",
                Some(invite(&format!("r{i}@partner.example"))),
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        let ra = retry_after(&h);
        assert!(
            ra > last,
            "each early retry pushes Retry-After out: {ra} after {last}"
        );
        last = ra;
    }
    // Waiting the last Retry-After (in emulator time) is enough.
    env.handle.advance_clock(chrono::Duration::milliseconds(
        (last * scale * 1000.0).ceil() as i64 + 1,
    ));
    let (s, _) = env
        .post(&t, "/invitations", invite("after@partner.example"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Resource-unit costs.
    let ru = |h: &reqwest::header::HeaderMap| {
        h.get("x-ms-resource-unit")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (_, h, _) = env
        .send(
            &t,
            Method::GET,
            "/users/admin@fabrikam.onmicrosoft.com",
            None,
            &[],
        )
        .await;
    assert_eq!(ru(&h).as_deref(), Some("1"));
    let (_, h, _) = env.send(&t, Method::GET, "/users", None, &[]).await;
    assert_eq!(ru(&h).as_deref(), Some("2"));
    let (_, h, _) = env.send(&t, Method::GET, "/applications", None, &[]).await;
    assert_eq!(ru(&h).as_deref(), Some("2"));
}
