//! Shared fixture: a two-tenant world and a small Graph client.

use ctsync::emulator::{EmulatorHandle, EmulatorOptions, Seed, spawn};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const SOURCE: &str = "11111111-0000-0000-0000-000000000001";
pub const TARGET: &str = "22222222-0000-0000-0000-000000000002";
pub const SYNC_APP: &str = "aaaaaaaa-1111-1111-1111-111111111111";
pub const READER_APP: &str = "bbbbbbbb-2222-2222-2222-222222222222";
pub const SECRET: &str = "sync-secret";
pub const READER_SECRET: &str = "reader-secret";
pub const SYNC_SP: &str = "cccccccc-3333-3333-3333-333333333333";
pub const TARGET_APP_OBJECT: &str = "dddddddd-4444-4444-4444-444444444444";
pub const MSIAM_ROLE: &str = "eeeeeeee-5555-5555-5555-555555555555";

pub fn seed_yaml() -> String {
    format!(
        r#"
apps:
  - appId: {SYNC_APP}
    displayName: ctsync
    clientSecrets: [{SECRET}]
    federatedCredentials:
      - issuer: https://kubernetes.default.svc
        subject: system:serviceaccount:ctsync:ctsync
  - appId: {READER_APP}
    clientSecrets: [{READER_SECRET}]
tenants:
  - id: {SOURCE}
    displayName: Contoso
    domains: [contoso.onmicrosoft.com, contoso.com]
    servicePrincipals:
      - appId: {SYNC_APP}
        id: {SYNC_SP}
        permissions: [User.ReadWrite.All, Group.Read.All, Application.ReadWrite.All, AppRoleAssignment.ReadWrite.All, Policy.ReadWrite.CrossTenantAccess, User.DeleteRestore.All]
        appRoles: [{{id: {MSIAM_ROLE}, value: msiam_access}}]
      - appId: {READER_APP}
        permissions: [User.Read.All]
    users:
      - id: 00000000-aaaa-0000-0000-000000000001
        userPrincipalName: adele@contoso.com
        displayName: Adele Vance
        givenName: Adele
        surname: Vance
        mail: adele@contoso.com
        department: Sales
        jobTitle: Retail Manager
      - id: 00000000-aaaa-0000-0000-000000000002
        userPrincipalName: megan@contoso.com
        displayName: Megan Bowen
        mail: megan@contoso.com
        department: Marketing
        manager: adele@contoso.com
      - userPrincipalName: guest_fabrikam.com#EXT#@contoso.onmicrosoft.com
        displayName: A Guest
        userType: Guest
        creationType: Invitation
        mail: guest@fabrikam.com
    groups:
      - displayName: Sync Scope
        members: [adele@contoso.com, Nested]
      - displayName: Nested
        members: [megan@contoso.com]
    appRoleAssignments:
      - appId: {SYNC_APP}
        principal: Sync Scope
    partners:
      - tenantId: {TARGET}
        automaticUserConsentSettings: {{outboundAllowed: true}}
  - id: {TARGET}
    displayName: Fabrikam
    domains: [fabrikam.onmicrosoft.com, fabrikam.com]
    servicePrincipals:
      - appId: {SYNC_APP}
        permissions: [User.ReadWrite.All, User.Invite.All, User.DeleteRestore.All, Application.ReadWrite.All, Group.ReadWrite.All, AppRoleAssignment.ReadWrite.All, Policy.ReadWrite.CrossTenantAccess]
      - appId: {READER_APP}
        permissions: [User.Read.All]
    applications:
      - appId: {SYNC_APP}
        id: {TARGET_APP_OBJECT}
        extensionProperties: [{{name: ctsyncAnchor}}]
    users:
      - userPrincipalName: admin@fabrikam.onmicrosoft.com
        displayName: Fabrikam Admin
    partners:
      - tenantId: {SOURCE}
        automaticUserConsentSettings: {{inboundAllowed: true}}
        identitySynchronization: {{displayName: Contoso, userSyncInbound: {{isSyncAllowed: true}}}}
"#
    )
}

pub struct Env {
    pub handle: EmulatorHandle,
    pub http: reqwest::Client,
}

pub async fn start() -> Env {
    start_with(EmulatorOptions {
        throttling: false,
        ..EmulatorOptions::default()
    })
    .await
}

pub async fn start_with(options: EmulatorOptions) -> Env {
    let seed = Seed::from_yaml(&seed_yaml()).expect("fixture seed parses");
    let handle = spawn(seed, options).await.expect("emulator starts");
    Env {
        handle,
        http: reqwest::Client::new(),
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    pub async fn token_response(&self, tenant: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(form)
            .send()
            .await
            .expect("token request sent")
    }

    pub async fn token_for(&self, tenant: &str, app: &str, secret: &str) -> String {
        let resp = self
            .token_response(
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", app),
                    ("client_secret", secret),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn token(&self, tenant: &str) -> String {
        self.token_for(tenant, SYNC_APP, SECRET).await
    }

    /// Sends a Graph request; `path` is relative to `/v1.0` or an absolute link.
    pub async fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(&format!("/v1.0{path}"))
        };
        let mut req = self.http.request(method, url).bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, body)
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(token, Method::GET, path, None, &[]).await;
        (s, b)
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self.send(token, Method::POST, path, Some(body), &[]).await;
        (s, b)
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self.send(token, Method::PATCH, path, Some(body), &[]).await;
        (s, b)
    }

    pub async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(token, Method::DELETE, path, None, &[]).await;
        (s, b)
    }

    pub async fn control(&self, method: Method, path: &str, body: Value) -> StatusCode {
        self.http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control request sent")
            .status()
    }
}

pub fn new_user(upn: &str, name: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": name,
        "mailNickname": upn.split('@').next().unwrap_or(upn),
        "userPrincipalName": upn,
        "passwordProfile": {"password": "P@ssw0rd!", "forceChangePasswordNextSignIn": false},
    })
}

/// Asserts a Graph error envelope with `code` and a request id.
pub fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"].is_string(), "body: {body}");
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "body: {body}"
    );
    assert!(
        body["error"]["innerError"]["date"].is_string(),
        "body: {body}"
    );
}
