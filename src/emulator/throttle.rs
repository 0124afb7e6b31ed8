//! Throttling by Graph's published identity-and-access model (throttling-limits.md): resource
//! units per app+tenant per 10 s by tenant size, writes per app+tenant per 150 s, and the
//! tenant-wide invitation limit. Windows run on the emulator clock, so a time scale shrinks
//! them in real time.

use std::collections::HashMap;

use axum::http::Method;
use chrono::{DateTime, Duration, Utc};

use super::seed::SizeClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub resource_units: u32,
    pub write: bool,
    pub invitation: bool,
}

/// Resource-unit cost of a request, per throttling-limits.md: GET `users` (the collection) 2,
/// `applications` and `applications/{id}/extensionProperties` 2, `groups/{id}/members` 3,
/// `groups/{id}/transitiveMembers` 5, `servicePrincipals/{id}/appRoleAssignments` 2, any other
/// GET 1 (so `users/{id}` is 1); writes 1 RU + 1 write; `$select` −1, `$expand` +1,
/// `$top` < 20 −1, minimum 1.
pub fn cost(method: &Method, segments: &[String], raw_query: Option<&str>) -> Cost {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let write = *method != Method::GET && *method != Method::HEAD;
    let mut ru: i64 = if write {
        1
    } else {
        match segs.as_slice() {
            ["users"] => 2,
            ["applications"] => 2,
            [s, _, "extensionProperties"] if s.starts_with("applications") => 2,
            [s, "extensionProperties"] if s.starts_with("applications(") => 2,
            ["groups", _, "members"] => 3,
            ["groups", _, "transitiveMembers"] => 5,
            [s, _, "appRoleAssignments"] if s.starts_with("servicePrincipals") => 2,
            _ => 1,
        }
    };
    if !write {
        let query: Vec<(String, String)> = raw_query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let has = |n: &str| query.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if has("$select") {
            ru -= 1;
        }
        if has("$expand") {
            ru += 1;
        }
        let small_top = query
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("$top") && v.parse::<u32>().is_ok_and(|n| n < 20));
        if small_top {
            ru -= 1;
        }
    }
    Cost {
        resource_units: ru.max(1) as u32,
        write,
        invitation: write && segs.as_slice() == ["invitations"],
    }
}

/// What a bucket limits, and over which scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// Resource units per app + tenant (size class).
    AppTenantUnits(String, String),
    /// Writes per app + tenant.
    AppTenantWrites(String, String),
    /// Resource units per app across all tenants.
    AppUnits(String),
    /// Writes per app across all tenants.
    AppWrites(String),
    /// Writes per tenant across all apps.
    TenantWrites(String),
    /// Invitations per tenant across all apps.
    TenantInvitations(String),
}

/// A token bucket: `capacity` tokens refilled at `capacity / window` per second. A request
/// made while the bucket cannot pay is refused *and still counted* (the balance goes negative,
/// down to −capacity), so retrying before `Retry-After` pushes the recovery further out, as
/// Graph does ("requests made while throttled still count").
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    updated: DateTime<Utc>,
}

impl TokenBucket {
    fn refill(&mut self, capacity: f64, window: Duration, now: DateTime<Utc>) {
        let elapsed = (now - self.updated).num_milliseconds().max(0) as f64 / 1000.0;
        let rate = capacity / window.num_seconds().max(1) as f64;
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.updated = now.max(self.updated);
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    buckets: HashMap<Key, TokenBucket>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allowed {
        resource_units: u32,
        /// Highest share of any quota now used, when above 0.8 (for `x-ms-throttle-limit-percentage`).
        limit_percentage: Option<f64>,
    },
    Throttled {
        retry_after: Duration,
        scope: String,
        information: &'static str,
    },
}

pub const RU_WINDOW: i64 = 10;
pub const WRITE_WINDOW: i64 = 150;
pub const WRITE_LIMIT: u32 = 3_000;
pub const INVITE_WINDOW: i64 = 5;
pub const INVITE_LIMIT: u32 = 150;
/// Per app across all tenants (throttling-limits.md).
pub const APP_RU_WINDOW: i64 = 20;
pub const APP_RU_LIMIT: u32 = 150_000;
pub const APP_WRITE_WINDOW: i64 = 300;
pub const APP_WRITE_LIMIT: u32 = 70_000;
/// Per tenant across all apps.
pub const TENANT_WRITE_WINDOW: i64 = 300;
pub const TENANT_WRITE_LIMIT: u32 = 18_000;

pub fn ru_limit(size: SizeClass) -> u32 {
    match size {
        SizeClass::S => 3_500,
        SizeClass::M => 5_000,
        SizeClass::L => 8_000,
    }
}

/// One limit a request is subject to.
struct Limit {
    key: Key,
    capacity: u32,
    window: i64,
    cost: u32,
    scope: String,
    information: &'static str,
}

impl Throttle {
    pub fn check(
        &mut self,
        tenant: &str,
        app: &str,
        size: SizeClass,
        cost: Cost,
        now: DateTime<Utc>,
    ) -> Verdict {
        let kind = if cost.write { "ReadWrite" } else { "Read" };
        let (t, a) = (tenant.to_string(), app.to_string());
        let mut limits = vec![
            Limit {
                key: Key::AppTenantUnits(t.clone(), a.clone()),
                capacity: ru_limit(size),
                window: RU_WINDOW,
                cost: cost.resource_units,
                scope: format!("Tenant_Application/{kind}/{app}/{tenant}"),
                information: "ResourceUnitLimitExceeded",
            },
            Limit {
                key: Key::AppUnits(a.clone()),
                capacity: APP_RU_LIMIT,
                window: APP_RU_WINDOW,
                cost: cost.resource_units,
                scope: format!("Application/{kind}/{app}"),
                information: "ResourceUnitLimitExceeded",
            },
        ];
        if cost.write {
            limits.push(Limit {
                key: Key::AppTenantWrites(t.clone(), a.clone()),
                capacity: WRITE_LIMIT,
                window: WRITE_WINDOW,
                cost: 1,
                scope: format!("Tenant_Application/Write/{app}/{tenant}"),
                information: "WriteLimitExceeded",
            });
            limits.push(Limit {
                key: Key::AppWrites(a.clone()),
                capacity: APP_WRITE_LIMIT,
                window: APP_WRITE_WINDOW,
                cost: 1,
                scope: format!("Application/Write/{app}"),
                information: "WriteLimitExceeded",
            });
            limits.push(Limit {
                key: Key::TenantWrites(t.clone()),
                capacity: TENANT_WRITE_LIMIT,
                window: TENANT_WRITE_WINDOW,
                cost: 1,
                scope: format!("Tenant/Write/{tenant}"),
                information: "WriteLimitExceeded",
            });
        }
        if cost.invitation {
            limits.push(Limit {
                key: Key::TenantInvitations(t),
                capacity: INVITE_LIMIT,
                window: INVITE_WINDOW,
                cost: 1,
                scope: format!("Tenant/Write/{app}/{tenant}"),
                information: "WriteLimitExceeded",
            });
        }
        // Refill, and find the limits that cannot pay now.
        let mut refused: Vec<usize> = Vec::new();
        for (i, l) in limits.iter().enumerate() {
            let capacity = f64::from(l.capacity);
            let b = self.buckets.entry(l.key.clone()).or_insert(TokenBucket {
                tokens: capacity,
                updated: now,
            });
            b.refill(capacity, Duration::seconds(l.window), now);
            if b.tokens < f64::from(l.cost) {
                refused.push(i);
            }
        }
        if !refused.is_empty() {
            // Counted although refused: the deficit grows with every early retry.
            let mut worst: Option<(f64, usize)> = None;
            for i in refused {
                let l = &limits[i];
                let capacity = f64::from(l.capacity);
                let rate = capacity / l.window as f64;
                if let Some(b) = self.buckets.get_mut(&l.key) {
                    b.tokens = (b.tokens - f64::from(l.cost)).max(-capacity);
                    let wait = (f64::from(l.cost) - b.tokens) / rate;
                    if worst.is_none_or(|(w, _)| wait > w) {
                        worst = Some((wait, i));
                    }
                }
            }
            let (wait, i) = worst.unwrap_or((1.0, 0));
            let l = &limits[i];
            return Verdict::Throttled {
                retry_after: Duration::milliseconds((wait * 1000.0).ceil() as i64),
                scope: l.scope.clone(),
                information: l.information,
            };
        }
        let mut pct: f64 = 0.0;
        for l in &limits {
            if let Some(b) = self.buckets.get_mut(&l.key) {
                b.tokens -= f64::from(l.cost);
                pct = pct.max(1.0 - b.tokens / f64::from(l.capacity));
            }
        }
        Verdict::Allowed {
            resource_units: cost.resource_units,
            limit_percentage: (pct > 0.8).then_some(pct),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(str::to_string).collect()
    }

    fn ru(method: Method, path: &str, q: Option<&str>) -> u32 {
        cost(&method, &segs(path), q).resource_units
    }

    #[test]
    fn costs_follow_the_published_table() {
        assert_eq!(ru(Method::GET, "users", None), 2);
        assert_eq!(ru(Method::GET, "users", Some("$select=id")), 1);
        assert_eq!(ru(Method::GET, "users/x", None), 1, "documented 1, not 2");
        assert_eq!(ru(Method::GET, "applications", None), 2, "documented 2");
        assert_eq!(
            ru(Method::GET, "applications/x/extensionProperties", None),
            2
        );
        assert_eq!(ru(Method::GET, "applications/x", None), 1);
        assert_eq!(
            ru(Method::GET, "servicePrincipals/x/appRoleAssignedTo", None),
            1
        );
        assert_eq!(
            ru(Method::GET, "servicePrincipals/x/appRoleAssignments", None),
            2
        );
        assert_eq!(
            ru(Method::GET, "groups/x/transitiveMembers", Some("$top=5")),
            4
        );
        let w = cost(&Method::PATCH, &segs("users/x"), None);
        assert_eq!((w.resource_units, w.write, w.invitation), (1, true, false));
        assert!(cost(&Method::POST, &segs("invitations"), None).invitation);
    }

    const WRITE: Cost = Cost {
        resource_units: 1,
        write: true,
        invitation: false,
    };

    fn allowed(v: &Verdict) -> bool {
        matches!(v, Verdict::Allowed { .. })
    }

    #[test]
    fn the_write_bucket_allows_its_capacity_then_refills_at_its_rate() {
        let mut t = Throttle::default();
        let now = Utc::now();
        for _ in 0..WRITE_LIMIT {
            assert!(allowed(&t.check("t", "a", SizeClass::L, WRITE, now)));
        }
        match t.check("t", "a", SizeClass::L, WRITE, now) {
            Verdict::Throttled {
                retry_after,
                information,
                scope,
            } => {
                // One write short, refilled at 20/s, and the refused request counted: 0.1 s.
                assert_eq!(retry_after, Duration::milliseconds(100));
                assert_eq!(information, "WriteLimitExceeded");
                assert_eq!(scope, "Tenant_Application/Write/a/t");
            }
            other => panic!("expected throttling, got {other:?}"),
        }
        // Waiting Retry-After is enough.
        assert!(allowed(&t.check(
            "t",
            "a",
            SizeClass::L,
            WRITE,
            now + Duration::milliseconds(100)
        )));
        // Another app in the same tenant has its own app+tenant quota.
        assert!(allowed(&t.check("t", "b", SizeClass::L, WRITE, now)));
    }

    #[test]
    fn retrying_while_throttled_extends_the_throttle() {
        let mut t = Throttle::default();
        let now = Utc::now();
        for _ in 0..WRITE_LIMIT {
            t.check("t", "a", SizeClass::L, WRITE, now);
        }
        let mut last = Duration::zero();
        for _ in 0..20 {
            match t.check("t", "a", SizeClass::L, WRITE, now) {
                Verdict::Throttled { retry_after, .. } => {
                    assert!(retry_after > last, "{retry_after} after {last}");
                    last = retry_after;
                }
                other => panic!("expected throttling, got {other:?}"),
            }
        }
        assert_eq!(
            last,
            Duration::milliseconds(1050),
            "20 refused writes, one to pay, at 20/s"
        );
        assert!(!allowed(&t.check(
            "t",
            "a",
            SizeClass::L,
            WRITE,
            now + Duration::milliseconds(500)
        )));
    }

    #[test]
    fn invitation_limit_is_tenant_wide() {
        let mut t = Throttle::default();
        let now = Utc::now();
        let inv = Cost {
            resource_units: 1,
            write: true,
            invitation: true,
        };
        for i in 0..INVITE_LIMIT {
            let app = if i % 2 == 0 { "a" } else { "b" };
            assert!(allowed(&t.check("t", app, SizeClass::L, inv, now)));
        }
        assert!(!allowed(&t.check("t", "c", SizeClass::L, inv, now)));
    }

    #[test]
    fn tenant_writes_across_apps_and_app_writes_across_tenants_are_limited() {
        let mut t = Throttle::default();
        let now = Utc::now();
        // 18,000 writes per tenant per 5 min, whatever the app (7 apps × 2,571 stay under
        // each app+tenant quota of 3,000).
        let mut n = 0;
        'outer: for app in 0..7 {
            for _ in 0..2_572 {
                if n == TENANT_WRITE_LIMIT {
                    break 'outer;
                }
                assert!(allowed(&t.check(
                    "t",
                    &format!("app{app}"),
                    SizeClass::L,
                    WRITE,
                    now
                )));
                n += 1;
            }
        }
        match t.check("t", "fresh", SizeClass::L, WRITE, now) {
            Verdict::Throttled { scope, .. } => assert_eq!(scope, "Tenant/Write/t"),
            other => panic!("expected the tenant-wide limit, got {other:?}"),
        }
        // 70,000 writes per app per 5 min, whatever the tenant.
        let mut t = Throttle::default();
        for i in 0..APP_WRITE_LIMIT {
            let tenant = format!("t{}", i / 2_500);
            assert!(allowed(&t.check(&tenant, "a", SizeClass::L, WRITE, now)));
        }
        match t.check("another", "a", SizeClass::L, WRITE, now) {
            Verdict::Throttled { scope, .. } => assert_eq!(scope, "Application/Write/a"),
            other => panic!("expected the app-wide limit, got {other:?}"),
        }
    }

    #[test]
    fn app_resource_units_across_tenants_are_limited() {
        let mut t = Throttle::default();
        let now = Utc::now();
        let read = Cost {
            resource_units: 5,
            write: false,
            invitation: false,
        };
        for i in 0..(APP_RU_LIMIT / 5) {
            let tenant = format!("t{}", i / 1_500);
            assert!(allowed(&t.check(&tenant, "a", SizeClass::L, read, now)));
        }
        match t.check("another", "a", SizeClass::L, read, now) {
            Verdict::Throttled {
                scope, information, ..
            } => {
                assert_eq!(scope, "Application/Read/a");
                assert_eq!(information, "ResourceUnitLimitExceeded");
            }
            other => panic!("expected the app-wide limit, got {other:?}"),
        }
    }
}
