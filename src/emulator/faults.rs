//! Fault injection: per-tenant random errors and latency, and "fail the next N requests whose
//! path matches". Set through `/_emulator/faults`.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::errors::GraphError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantFaults {
    /// Probability (0..=1) that a request fails.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_status")]
    pub error_status: u16,
    #[serde(default = "default_code")]
    pub error_code: String,
    /// Added to every request of the tenant.
    #[serde(default)]
    pub latency_ms: u64,
}

fn default_status() -> u16 {
    503
}

fn default_code() -> String {
    "serviceNotAvailable".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailRule {
    /// Only requests for this tenant (any tenant when absent).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Only this HTTP method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the path after `/v1.0` (e.g. `/users/`, `/invitations`).
    pub path_contains: String,
    pub count: u32,
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default = "default_code")]
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
    /// Seconds to put in `Retry-After`.
    #[serde(default)]
    pub retry_after: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Faults {
    pub tenants: HashMap<String, TenantFaults>,
    pub rules: Vec<FailRule>,
}

impl TenantFaults {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("errorRate must be between 0 and 1".into());
        }
        StatusCode::from_u16(self.error_status)
            .map_err(|_| "errorStatus is not an HTTP status".to_string())?;
        Ok(())
    }
}

impl FailRule {
    pub fn validate(&self) -> Result<(), String> {
        StatusCode::from_u16(self.status)
            .map_err(|_| "status is not an HTTP status".to_string())?;
        if self.retry_after.is_some_and(|r| !r.is_finite() || r < 0.0) {
            return Err("retryAfter must be a non-negative number".into());
        }
        Ok(())
    }
}

fn error(status: u16, code: &str, message: Option<&str>, retry_after: Option<f64>) -> GraphError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut e = GraphError::new(
        status,
        code,
        message.unwrap_or("Injected fault: the service is unavailable."),
    );
    if let Some(r) = retry_after {
        e.headers.push(("Retry-After".into(), format!("{r}")));
    }
    e
}

impl Faults {
    /// Latency to add and the error to answer with, if any, for one request.
    pub fn decide(&mut self, tenant: &str, method: &str, path: &str) -> (u64, Option<GraphError>) {
        let latency = self.tenants.get(tenant).map(|f| f.latency_ms).unwrap_or(0);
        let hit = self.rules.iter_mut().find(|r| {
            r.count > 0
                && r.tenant.as_deref().is_none_or(|t| t == tenant)
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path.contains(&r.path_contains)
        });
        if let Some(rule) = hit {
            rule.count -= 1;
            let e = error(
                rule.status,
                &rule.code,
                rule.message.as_deref(),
                rule.retry_after,
            );
            self.rules.retain(|r| r.count > 0);
            return (latency, Some(e));
        }
        if let Some(f) = self.tenants.get(tenant)
            && f.error_rate > 0.0
            && rand::random::<f64>() < f.error_rate
        {
            return (
                latency,
                Some(error(f.error_status, &f.error_code, None, None)),
            );
        }
        (latency, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_n_counts_down_and_matches_the_path() {
        let mut f = Faults::default();
        f.rules.push(FailRule {
            tenant: None,
            method: Some("PATCH".into()),
            path_contains: "/users/".into(),
            count: 2,
            status: 500,
            code: "generalException".into(),
            message: None,
            retry_after: None,
        });
        assert!(f.decide("t", "GET", "/users/x").1.is_none());
        assert!(f.decide("t", "PATCH", "/groups/x").1.is_none());
        assert_eq!(
            f.decide("t", "PATCH", "/users/x")
                .1
                .map(|e| e.status.as_u16()),
            Some(500)
        );
        assert!(f.decide("t", "PATCH", "/users/x").1.is_some());
        assert!(f.decide("t", "PATCH", "/users/x").1.is_none());
    }

    #[test]
    fn error_rate_one_always_fails() {
        let mut f = Faults::default();
        f.tenants.insert(
            "t".into(),
            TenantFaults {
                error_rate: 1.0,
                error_status: 503,
                error_code: "serviceNotAvailable".into(),
                latency_ms: 7,
            },
        );
        let (latency, e) = f.decide("t", "GET", "/users");
        assert_eq!(latency, 7);
        assert_eq!(e.map(|e| e.code), Some("serviceNotAvailable".to_string()));
    }
}
