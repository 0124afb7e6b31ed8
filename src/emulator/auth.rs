//! The token endpoint (client credentials with a secret or a federated client assertion) and
//! the server-side token table. Tokens are opaque random strings; what they grant (tenant, app,
//! permissions, expiry) stays on the server. Client assertions are decoded but their signatures
//! are NOT verified: the emulator checks `iss`/`sub`/`aud` against the app's federated
//! credentials only, which is enough to exercise the flow and never meant as security.

use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::errors::OAuthError;
use super::model::Directory;

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone)]
pub struct Grant {
    pub tenant_id: String,
    pub app_id: String,
    pub permissions: BTreeSet<String>,
    pub expires: DateTime<Utc>,
}

fn bad(error: &'static str, code: u32, msg: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, error, code, msg)
}

fn client(code: u32, msg: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", code, msg)
}

/// Checks a token request and returns what the new token grants.
pub fn authorize(
    dir: &Directory,
    tenant_key: &str,
    form: &HashMap<String, String>,
    basic_auth: Option<&str>,
    now: DateTime<Utc>,
    lifetime: chrono::Duration,
) -> Result<Grant, OAuthError> {
    let tenant = dir
        .tenants
        .values()
        .find(|t| t.id.eq_ignore_ascii_case(tenant_key) || t.domains.iter().any(|d| d.eq_ignore_ascii_case(tenant_key)))
        .ok_or_else(|| bad("invalid_request", 90002, format!("Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")))?;
    match form.get("grant_type").map(String::as_str) {
        None => {
            return Err(bad(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            ));
        }
        Some("client_credentials") => {}
        Some(other) => {
            return Err(bad(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ));
        }
    }
    let (basic_id, basic_secret) = match basic_auth.and_then(decode_basic) {
        Some((i, s)) => (Some(i), Some(s)),
        None => (None, None),
    };
    let client_id = form.get("client_id").cloned().or(basic_id).ok_or_else(|| {
        bad(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    })?;
    match form.get("scope").map(String::as_str) {
        Some(GRAPH_SCOPE) => {}
        Some(other) => {
            return Err(bad(
                "invalid_scope",
                70011,
                format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope {other} is not valid."
                ),
            ));
        }
        None => {
            return Err(bad(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            ));
        }
    }
    let not_found = || {
        bad(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                tenant.display_name
            ),
        )
    };
    let app = dir.apps.get(&client_id).ok_or_else(not_found)?;
    let sp = tenant
        .service_principal_by_app(&client_id)
        .ok_or_else(not_found)?;
    let secret = form.get("client_secret").cloned().or(basic_secret);
    if let Some(secret) = secret {
        if !app.client_secrets.iter().any(|s| s == &secret) {
            return Err(client(
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
            ));
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
            return Err(bad(
                "invalid_request",
                50027,
                "Invalid client_assertion_type.",
            ));
        }
        let claims = decode_jwt_payload(assertion).ok_or_else(|| {
            bad(
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            )
        })?;
        let claim = |n: &str| {
            claims
                .get(n)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let auds: Vec<String> = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64)
            && exp < now.timestamp()
        {
            return Err(bad(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            ));
        }
        let matched = app.federated_credentials.iter().any(|fc| {
            fc.issuer == claim("iss")
                && fc.subject == claim("sub")
                && auds.iter().any(|a| fc.audiences.contains(a))
        });
        if !matched {
            return Err(bad(
                "invalid_request",
                70021,
                "No matching federated identity record found for presented assertion.",
            ));
        }
    } else {
        return Err(client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    Ok(Grant {
        tenant_id: tenant.id.clone(),
        app_id: client_id,
        permissions: sp.permissions.clone(),
        expires: now + lifetime,
    })
}

fn decode_basic(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let text = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.to_string())
    };
    Some((dec(id)?, dec(secret)?))
}

fn decode_jwt_payload(jwt: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = jwt.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(o) => Some(o),
        _ => None,
    }
}

/// A fresh opaque access token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::build::directory_from_seed;
    use crate::emulator::seed::Seed;

    fn dir() -> Directory {
        let seed = Seed::from_yaml(
            r#"
apps:
  - appId: app-1
    clientSecrets: [good]
    federatedCredentials: [{issuer: "https://k8s", subject: "system:serviceaccount:ns:sa"}]
tenants:
  - id: t1
    domains: [one.onmicrosoft.com]
    servicePrincipals: [{appId: app-1, permissions: [User.Read.All]}]
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        directory_from_seed(&seed, Utc::now()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn try_auth(pairs: &[(&str, &str)]) -> Result<Grant, OAuthError> {
        authorize(
            &dir(),
            "one.onmicrosoft.com",
            &form(pairs),
            None,
            Utc::now(),
            chrono::Duration::hours(1),
        )
    }

    const BASE: [(&str, &str); 3] = [
        ("grant_type", "client_credentials"),
        ("client_id", "app-1"),
        ("scope", GRAPH_SCOPE),
    ];

    #[test]
    fn secret_grants_the_tenant_permissions() {
        let mut f = BASE.to_vec();
        f.push(("client_secret", "good"));
        let g = try_auth(&f).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(g.tenant_id, "t1");
        assert!(g.permissions.contains("User.Read.All"));
        f.pop();
        f.push(("client_secret", "bad"));
        assert_eq!(try_auth(&f).map(|_| ()).unwrap_err().aadsts, 7000215);
    }

    #[test]
    fn federated_assertion_must_match_a_credential() {
        let jwt = |payload: &str| format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload));
        let good = jwt(
            r#"{"iss":"https://k8s","sub":"system:serviceaccount:ns:sa","aud":"api://AzureADTokenExchange"}"#,
        );
        let wrong =
            jwt(r#"{"iss":"https://k8s","sub":"other","aud":"api://AzureADTokenExchange"}"#);
        let mut f = BASE.to_vec();
        f.push(("client_assertion_type", JWT_BEARER));
        f.push(("client_assertion", &good));
        assert!(try_auth(&f).is_ok());
        f.pop();
        f.push(("client_assertion", &wrong));
        assert_eq!(try_auth(&f).map(|_| ()).unwrap_err().aadsts, 70021);
        f.pop();
        f.push(("client_assertion", "not-a-jwt"));
        assert_eq!(try_auth(&f).map(|_| ()).unwrap_err().aadsts, 50027);
    }

    #[test]
    fn scope_and_tenant_are_checked() {
        let f = [
            ("grant_type", "client_credentials"),
            ("client_id", "app-1"),
            ("scope", "https://foo/.default"),
            ("client_secret", "good"),
        ];
        assert_eq!(try_auth(&f).map(|_| ()).unwrap_err().error, "invalid_scope");
        let e = authorize(
            &dir(),
            "nope",
            &form(&f),
            None,
            Utc::now(),
            chrono::Duration::hours(1),
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(e.aadsts, 90002);
    }
}
