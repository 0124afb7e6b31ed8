use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn invite(email: &str) -> Value {
    json!({
        "invitedUserEmailAddress": email,
        "inviteRedirectUrl": "https://myapps.microsoft.com",
        "invitedUserType": "Member",
        "sendInvitationMessage": false,
    })
}

#[tokio::test]
async fn invitation_creates_a_b2b_user_and_reinviting_returns_it() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let (s, inv) = env
        .post(&t, "/invitations", invite("adele@contoso.com"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["invitedUserType"], "Member");
    assert_eq!(inv["sendInvitationMessage"], false);
    let uid = inv["invitedUser"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    assert_ne!(
        inv["id"], inv["invitedUser"]["id"],
        "invitation id is not the user id"
    );
    let (_, user) = env.get(&t, &format!("/users/{uid}?$select=userPrincipalName,userType,creationType,externalUserState,mail,showInAddressList,identities")).await;
    assert_eq!(
        user["userPrincipalName"],
        "adele_contoso.com#EXT#@fabrikam.onmicrosoft.com"
    );
    assert_eq!(user["userType"], "Member");
    assert_eq!(user["creationType"], "Invitation");
    assert_eq!(user["mail"], "adele@contoso.com");
    assert_eq!(user["showInAddressList"], false);
    // Contoso allows outbound and Fabrikam inbound automatic redemption: no consent prompt.
    assert_eq!(user["externalUserState"], "Accepted");
    assert_eq!(inv["status"], "Completed");
    // The `#` in the UPN must be percent-encoded in the URL.
    assert_eq!(
        env.get(
            &t,
            "/users/adele_contoso.com%23EXT%23@fabrikam.onmicrosoft.com"
        )
        .await
        .0,
        StatusCode::OK
    );
    let (s, again) = env
        .post(&t, "/invitations", invite("ADELE@contoso.com"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(again["invitedUser"]["id"], uid.as_str());
    let (_, _, found) = env
        .send(
            &t,
            Method::GET,
            "/users?$filter=creationType eq 'Invitation'&$count=true",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(found["@odata.count"], 1);
}

#[tokio::test]
async fn consent_and_blocking_follow_cross_tenant_access_settings() {
    let env = start().await;
    let t = env.token(TARGET).await;
    // Outside any emulated tenant: an ordinary pending invitation.
    let (_, inv) = env
        .post(&t, "/invitations", invite("someone@example.org"))
        .await;
    assert_eq!(inv["status"], "PendingAcceptance");
    // The source withdraws outbound automatic redemption: consent is needed again.
    let (s, _) = env
        .patch(
            &env.token(SOURCE).await,
            &format!("/policies/crossTenantAccessPolicy/partners/{TARGET}"),
            json!({"automaticUserConsentSettings": {"outboundAllowed": false}}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, inv) = env
        .post(&t, "/invitations", invite("megan@contoso.com"))
        .await;
    assert_eq!(inv["status"], "PendingAcceptance");
    // The target blocks B2B collaboration from the source.
    let block = json!({"b2bCollaborationInbound": {"usersAndGroups": {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]}}});
    env.patch(
        &t,
        &format!("/policies/crossTenantAccessPolicy/partners/{SOURCE}"),
        block,
    )
    .await;
    let (s, err) = env
        .post(&t, "/invitations", invite("new@contoso.com"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_graph_error(&err, "Authorization_RequestDenied");
}

#[tokio::test]
async fn invitation_bodies_are_validated() {
    let env = start().await;
    let t = env.token(TARGET).await;
    for bad in [
        json!({"inviteRedirectUrl": "https://x.example"}),
        json!({"invitedUserEmailAddress": "a,b@contoso.com", "inviteRedirectUrl": "https://x.example"}),
        json!({"invitedUserEmailAddress": "a@contoso.com"}),
        json!({"invitedUserEmailAddress": "a@contoso.com", "inviteRedirectUrl": "https://x.example", "invitedUserType": "Admin"}),
        json!({"invitedUserEmailAddress": "a@contoso.com", "inviteRedirectUrl": "https://x.example", "bogus": 1}),
        json!([1, 2]),
    ] {
        let (s, err) = env.post(&t, "/invitations", bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(err["error"]["code"].is_string());
    }
}
