//! Bearer-token checks. Mutations always need the token; reads need it unless the operator
//! opened them. With no token configured every mutation is refused (a daemon must never be
//! controllable by whoever reaches its port).

use axum::http::{HeaderMap, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Who may do what on the admin API.
#[derive(Clone, Default)]
pub struct AccessPolicy {
    token: Option<SecretString>,
    open_reads: bool,
}

impl std::fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicy")
            .field("token_configured", &self.token.is_some())
            .field("open_reads", &self.open_reads)
            .finish()
    }
}

/// Whether a request reads or changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Mutate,
}

impl AccessPolicy {
    /// An empty token counts as none: it would match any empty header.
    pub fn new(token: Option<SecretString>, open_reads: bool) -> AccessPolicy {
        // Token files usually end with a newline; the token is what is between.
        let token = token
            .map(|t| t.expose_secret().trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(SecretString::from);
        AccessPolicy { token, open_reads }
    }

    pub fn check(&self, access: Access, headers: &HeaderMap) -> Result<(), ApiError> {
        if access == Access::Read && self.open_reads {
            return Ok(());
        }
        let Some(expected) = &self.token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "AdminTokenNotConfigured",
                match access {
                    Access::Mutate => {
                        "no admin token is configured, so changes through the admin API are \
                         refused; start the daemon with --admin-token-file or \
                         CTSYNC_ADMIN_TOKEN_FILE"
                    }
                    Access::Read => {
                        "no admin token is configured and reads are not open; start the daemon \
                         with --admin-token-file (or --open-reads)"
                    }
                },
            ));
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        match presented {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "this call needs an 'Authorization: Bearer <token>' header",
            )),
            Some(given) if tokens_equal(given, expected.expose_secret()) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidToken",
                "the bearer token is not the admin token",
            )),
        }
    }
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares in time independent of where the tokens differ (length still shows, which a
/// random token of fixed length does not mind).
fn tokens_equal(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    fn policy(token: Option<&str>, open_reads: bool) -> AccessPolicy {
        AccessPolicy::new(token.map(|t| SecretString::from(t.to_owned())), open_reads)
    }

    #[test]
    fn mutations_need_the_exact_token() {
        let p = policy(Some("s3cret"), true);
        assert_eq!(
            p.check(Access::Mutate, &headers(None)).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            p.check(Access::Mutate, &headers(Some("Bearer nope")))
                .unwrap_err()
                .code,
            "InvalidToken"
        );
        assert!(
            p.check(Access::Mutate, &headers(Some("Bearer s3cret!")))
                .is_err()
        );
        assert!(
            p.check(Access::Mutate, &headers(Some("Basic s3cret")))
                .is_err()
        );
        assert!(
            p.check(Access::Mutate, &headers(Some("bearer s3cret")))
                .is_ok()
        );
    }

    #[test]
    fn no_token_refuses_mutations_with_403_and_reads_follow_open_reads() {
        let closed = policy(None, false);
        let err = closed
            .check(Access::Mutate, &headers(Some("Bearer x")))
            .unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(err.message.contains("--admin-token-file"));
        assert!(closed.check(Access::Read, &headers(None)).is_err());
        assert!(
            policy(None, true)
                .check(Access::Read, &headers(None))
                .is_ok()
        );
        // A blank token file is no token at all.
        assert_eq!(
            policy(Some("  \n"), false)
                .check(Access::Mutate, &headers(Some("Bearer ")))
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn reads_need_the_token_unless_opened() {
        let p = policy(Some("t"), false);
        assert!(p.check(Access::Read, &headers(None)).is_err());
        assert!(p.check(Access::Read, &headers(Some("Bearer t"))).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let text = format!("{:?}", policy(Some("canary-token-123"), false));
        assert!(!text.contains("canary-token-123"), "{text}");
    }
}
