use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

const OTHER: &str = "33333333-0000-0000-0000-000000000003";

#[tokio::test]
async fn partner_create_get_patch_delete() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let base = "/policies/crossTenantAccessPolicy/partners";
    let (s, created) = env.post(&t, base, json!({"tenantId": OTHER})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(created["tenantId"], OTHER);
    assert_eq!(
        created["automaticUserConsentSettings"],
        json!({"inboundAllowed": null, "outboundAllowed": null})
    );
    let (s, err) = env.post(&t, base, json!({"tenantId": OTHER})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_graph_error(&err, "Request_MultipleObjectsWithSameKeyValue");
    let (s, _) = env
        .patch(
            &t,
            &format!("{base}/{OTHER}"),
            json!({"automaticUserConsentSettings": {"inboundAllowed": true}, "inboundTrust": null}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, got) = env.get(&t, &format!("{base}/{OTHER}")).await;
    assert_eq!(
        got["automaticUserConsentSettings"],
        json!({"inboundAllowed": true, "outboundAllowed": null})
    );
    let (s, _) = env
        .patch(&t, &format!("{base}/{OTHER}"), json!({"notAProperty": 1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        env.delete(&t, &format!("{base}/{OTHER}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.get(&t, &format!("{base}/{OTHER}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn identity_synchronization_put_get_patch_delete() {
    let env = start().await;
    let t = env.token(TARGET).await;
    let base = "/policies/crossTenantAccessPolicy/partners";
    let (_, got) = env
        .get(&t, &format!("{base}/{SOURCE}/identitySynchronization"))
        .await;
    assert_eq!(got["userSyncInbound"]["isSyncAllowed"], true);
    assert_eq!(got["tenantId"], SOURCE);
    let sync = json!({"displayName": "Contoso", "userSyncInbound": {"isSyncAllowed": true}});
    let (s, _, err) = env
        .send(
            &t,
            Method::PUT,
            &format!("{base}/{SOURCE}/identitySynchronization"),
            Some(sync.clone()),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_graph_error(&err, "Request_MultipleObjectsWithSameKeyValue");
    let (s, _) = env
        .patch(
            &t,
            &format!("{base}/{SOURCE}/identitySynchronization"),
            json!({"userSyncInbound": {"isSyncAllowed": false}}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, got) = env
        .get(&t, &format!("{base}/{SOURCE}/identitySynchronization"))
        .await;
    assert_eq!(got["userSyncInbound"]["isSyncAllowed"], false);
    assert_eq!(
        env.delete(&t, &format!("{base}/{SOURCE}/identitySynchronization"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, err) = env
        .patch(
            &t,
            &format!("{base}/{SOURCE}/identitySynchronization"),
            json!({"userSyncInbound": {"isSyncAllowed": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&err, "Directory_ObjectNotFound");
    let (s, _, _) = env
        .send(
            &t,
            Method::PUT,
            &format!("{base}/{SOURCE}/identitySynchronization"),
            Some(sync),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // The control API can set a whole policy (e.g. to model a target turning sync off).
    let status = env
        .control(
            Method::PUT,
            &format!("/_emulator/tenants/{TARGET}/partners/{SOURCE}"),
            json!({"identitySynchronization": {"userSyncInbound": {"isSyncAllowed": false}}}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = env
        .get(&t, &format!("{base}/{SOURCE}/identitySynchronization"))
        .await;
    assert_eq!(got["userSyncInbound"]["isSyncAllowed"], false);
}
