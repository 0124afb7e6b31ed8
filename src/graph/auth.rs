//! OAuth2 client-credentials tokens for Graph: client secret or a federated assertion read from a
//! token file (workload identity), cached per (tenant, client) and renewed before expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::config::ClientCredential;

use super::error::GraphError;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct CachedToken {
    token: SecretString,
    /// When the token stops being used (expiry minus the refresh margin).
    renew_at: Instant,
}

/// Issues access tokens for one (tenant, client) and caches them.
pub struct TokenProvider {
    tenant_id: String,
    client_id: String,
    credential: ClientCredential,
    token_url: String,
    scope: String,
    refresh_margin: Duration,
    http: reqwest::Client,
    cache: Mutex<Option<CachedToken>>,
    issued: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    pub(crate) fn new(
        tenant_id: String,
        client_id: String,
        credential: ClientCredential,
        token_url: String,
        scope: String,
        refresh_margin: Duration,
        http: reqwest::Client,
    ) -> Arc<TokenProvider> {
        Arc::new(TokenProvider {
            tenant_id,
            client_id,
            credential,
            token_url,
            scope,
            refresh_margin,
            http,
            cache: Mutex::new(None),
            issued: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many tokens the token endpoint has issued to this provider.
    pub fn tokens_issued(&self) -> u64 {
        self.issued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A valid access token, from the cache unless it is within the refresh margin of expiry.
    /// Concurrent callers wait for one request instead of each asking the endpoint.
    pub async fn token(&self) -> Result<SecretString, GraphError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        let (token, lifetime) = self.request_token().await?;
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A token shorter-lived than the margin is used once and renewed on the next call.
        let usable = lifetime.saturating_sub(self.refresh_margin);
        *cache = Some(CachedToken {
            token: token.clone(),
            renew_at: Instant::now() + usable,
        });
        tracing::debug!(
            tenant_id = %self.tenant_id,
            client_id = %self.client_id,
            lifetime_secs = lifetime.as_secs(),
            "graph token acquired"
        );
        Ok(token)
    }

    /// Drops the cached token (after a 401, the token was revoked or the clock lied).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn request_token(&self) -> Result<(SecretString, Duration), GraphError> {
        let token_url =
            TokenUrl::new(self.token_url.clone()).map_err(|e| GraphError::TokenRequest {
                tenant_id: self.tenant_id.clone(),
                message: format!("bad token URL {}: {e}", self.token_url),
            })?;
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        let scope = Scope::new(self.scope.clone());
        let http = self.http.clone();
        let adapter = move |req: oauth2::HttpRequest| {
            let http = http.clone();
            async move { send_oauth_request(&http, req).await }
        };
        // Every secret the request carries: scrubbed from whatever the endpoint answers.
        let mut secrets: Vec<SecretString> = Vec::new();
        let result = match &self.credential {
            ClientCredential::Secret(secret) => {
                secrets.push(secret.clone());
                let client =
                    client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
                client
                    .exchange_client_credentials()
                    .add_scope(scope)
                    .request_async(&adapter)
                    .await
            }
            ClientCredential::FederatedTokenFile(path) => {
                let assertion = read_assertion(path).await?;
                secrets.push(assertion.clone());
                client
                    .exchange_client_credentials()
                    .add_scope(scope)
                    .add_extra_param("client_assertion_type", JWT_BEARER)
                    .add_extra_param("client_assertion", assertion.expose_secret().to_owned())
                    .request_async(&adapter)
                    .await
            }
        };
        match result {
            Ok(resp) => {
                let lifetime = resp.expires_in().unwrap_or(Duration::from_secs(3599));
                Ok((
                    SecretString::from(resp.access_token().secret().to_owned()),
                    lifetime,
                ))
            }
            Err(RequestTokenError::ServerResponse(err)) => Err(GraphError::TokenRejected {
                tenant_id: self.tenant_id.clone(),
                error: scrub(err.error().as_ref(), &secrets),
                description: scrub(err.error_description().map_or("", String::as_str), &secrets),
            }),
            Err(RequestTokenError::Request(err)) => Err(GraphError::TokenRequest {
                tenant_id: self.tenant_id.clone(),
                message: scrub(&format!("POST {}: {err}", self.token_url), &secrets),
            }),
            Err(RequestTokenError::Parse(err, _body)) => Err(GraphError::TokenRequest {
                tenant_id: self.tenant_id.clone(),
                // The body may hold a token: only the parse error's path/message is kept.
                message: format!("unparsable token response: {}", err.path()),
            }),
            Err(RequestTokenError::Other(msg)) => Err(GraphError::TokenRequest {
                tenant_id: self.tenant_id.clone(),
                message: scrub(&msg, &secrets),
            }),
        }
    }
}

/// Upstream text with every known secret removed: the secret as it is, form-encoded and
/// percent-encoded, and the value of any `client_secret=` / `client_assertion=` parameter (a
/// token endpoint may echo the posted form in `error_description`).
pub(crate) fn scrub(text: &str, secrets: &[SecretString]) -> String {
    const REDACTED: &str = "[REDACTED]";
    let mut out = text.to_owned();
    for secret in secrets {
        let raw = secret.expose_secret();
        if raw.is_empty() {
            continue;
        }
        let form: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
        let percent = form.replace('+', "%20");
        for variant in [raw.to_owned(), form, percent] {
            if !variant.is_empty() {
                out = out.replace(&variant, REDACTED);
            }
        }
    }
    for name in ["client_secret", "client_assertion"] {
        let mut from = 0;
        while let Some(found) = out[from..].find(&format!("{name}=")) {
            let start = from + found + name.len() + 1;
            let end = out[start..]
                .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'')
                .map_or(out.len(), |i| start + i);
            out.replace_range(start..end, REDACTED);
            from = start + REDACTED.len();
        }
    }
    out
}

async fn read_assertion(path: &std::path::Path) -> Result<SecretString, GraphError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) if !text.trim().is_empty() => Ok(SecretString::from(text.trim().to_owned())),
        Ok(_) => Err(GraphError::FederatedTokenFile {
            path: path.display().to_string(),
            message: "the file is empty".into(),
        }),
        Err(e) => Err(GraphError::FederatedTokenFile {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// Transport error of the oauth2 adapter; holds no request data.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthTransportError(String);

/// Runs an `oauth2` request over reqwest 0.13 (oauth2 5 only ships a reqwest 0.12 client).
async fn send_oauth_request(
    http: &reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, OAuthTransportError> {
    let (parts, body) = req.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| OAuthTransportError(crate::graph::error::with_causes(&e.without_url())))?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| OAuthTransportError(e.without_url().to_string()))?;
    out.body(bytes.to_vec())
        .map_err(|e| OAuthTransportError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_secret_in_every_spelling_and_any_posted_secret_parameter() {
        let secrets = [SecretString::from("s3cr3t+/=value".to_owned())];
        let echoed = "bad request: grant_type=client_credentials&client_secret=s3cr3t%2B%2F%3Dvalue&scope=x \
                      raw s3cr3t+/=value, client_assertion=eyJhbGciOi.abc.def end";
        let clean = scrub(echoed, &secrets);
        assert!(!clean.contains("s3cr3t"), "{clean}");
        assert!(!clean.contains("eyJhbGciOi"), "{clean}");
        assert!(
            clean.contains("client_secret=[REDACTED]&scope=x"),
            "{clean}"
        );
        assert_eq!(
            scrub("nothing secret here", &secrets),
            "nothing secret here"
        );
    }
}
