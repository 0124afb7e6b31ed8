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

/// Resource-unit cost of a request (GET users 2, members 3, transitiveMembers 5, other GET 1;
/// writes 1 RU + 1 write; `$select` −1, `$expand` +1, `$top` < 20 −1, minimum 1).
pub fn cost(method: &Method, segments: &[String], raw_query: Option<&str>) -> Cost {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let write = *method != Method::GET && *method != Method::HEAD;
    let mut ru: i64 = if write {
        1
    } else {
        match segs.as_slice() {
            ["users"] | ["users", ..] => 2,
            ["groups", _, "members"] => 3,
            ["groups", _, "transitiveMembers"] => 5,
            [s, _, "appRoleAssignments" | "appRoleAssignedTo"]
                if s.starts_with("servicePrincipals") =>
            {
                2
            }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    ResourceUnits,
    Writes,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: DateTime<Utc>,
    used: u32,
}

#[derive(Debug, Default)]
pub struct Throttle {
    app_tenant: HashMap<(String, String, Bucket), Window>,
    tenant_invitations: HashMap<String, Window>,
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

pub fn ru_limit(size: SizeClass) -> u32 {
    match size {
        SizeClass::S => 3_500,
        SizeClass::M => 5_000,
        SizeClass::L => 8_000,
    }
}

fn current(w: Option<&Window>, now: DateTime<Utc>, len: Duration) -> Window {
    match w {
        Some(w) if now < w.start + len => *w,
        _ => Window {
            start: now,
            used: 0,
        },
    }
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
        let ru_len = Duration::seconds(RU_WINDOW);
        let w_len = Duration::seconds(WRITE_WINDOW);
        let i_len = Duration::seconds(INVITE_WINDOW);
        let ru_key = (tenant.to_string(), app.to_string(), Bucket::ResourceUnits);
        let w_key = (tenant.to_string(), app.to_string(), Bucket::Writes);
        let mut ru = current(self.app_tenant.get(&ru_key), now, ru_len);
        let mut wr = current(self.app_tenant.get(&w_key), now, w_len);
        let mut inv = current(self.tenant_invitations.get(tenant), now, i_len);
        let ru_max = ru_limit(size);
        let scope = |kind: &str| format!("Tenant_Application/{kind}/{app}/{tenant}");
        if cost.invitation && inv.used + 1 > INVITE_LIMIT {
            return Verdict::Throttled {
                retry_after: inv.start + i_len - now,
                scope: format!("Tenant/Write/{app}/{tenant}"),
                information: "WriteLimitExceeded",
            };
        }
        if cost.write && wr.used + 1 > WRITE_LIMIT {
            return Verdict::Throttled {
                retry_after: wr.start + w_len - now,
                scope: scope("Write"),
                information: "WriteLimitExceeded",
            };
        }
        if ru.used + cost.resource_units > ru_max {
            return Verdict::Throttled {
                retry_after: ru.start + ru_len - now,
                scope: scope(if cost.write { "ReadWrite" } else { "Read" }),
                information: "ResourceUnitLimitExceeded",
            };
        }
        ru.used += cost.resource_units;
        let mut pct = f64::from(ru.used) / f64::from(ru_max);
        if cost.write {
            wr.used += 1;
            pct = pct.max(f64::from(wr.used) / f64::from(WRITE_LIMIT));
            self.app_tenant.insert(w_key, wr);
        }
        if cost.invitation {
            inv.used += 1;
            pct = pct.max(f64::from(inv.used) / f64::from(INVITE_LIMIT));
            self.tenant_invitations.insert(tenant.to_string(), inv);
        }
        self.app_tenant.insert(ru_key, ru);
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

    #[test]
    fn costs_follow_the_published_table() {
        assert_eq!(cost(&Method::GET, &segs("users"), None).resource_units, 2);
        assert_eq!(
            cost(&Method::GET, &segs("users"), Some("$select=id")).resource_units,
            1
        );
        assert_eq!(
            cost(
                &Method::GET,
                &segs("groups/x/transitiveMembers"),
                Some("$top=5")
            )
            .resource_units,
            4
        );
        let w = cost(&Method::PATCH, &segs("users/x"), None);
        assert_eq!((w.resource_units, w.write, w.invitation), (1, true, false));
        assert!(cost(&Method::POST, &segs("invitations"), None).invitation);
    }

    #[test]
    fn write_quota_throttles_until_the_window_ends() {
        let mut t = Throttle::default();
        let now = Utc::now();
        let write = Cost {
            resource_units: 1,
            write: true,
            invitation: false,
        };
        for _ in 0..WRITE_LIMIT {
            assert!(matches!(
                t.check("t", "a", SizeClass::L, write, now),
                Verdict::Allowed { .. }
            ));
        }
        match t.check("t", "a", SizeClass::L, write, now + Duration::seconds(100)) {
            Verdict::Throttled {
                retry_after,
                information,
                ..
            } => {
                assert_eq!(retry_after, Duration::seconds(50));
                assert_eq!(information, "WriteLimitExceeded");
            }
            other => panic!("expected throttling, got {other:?}"),
        }
        assert!(matches!(
            t.check(
                "t",
                "a",
                SizeClass::L,
                write,
                now + Duration::seconds(WRITE_WINDOW)
            ),
            Verdict::Allowed { .. }
        ));
        // Another app in the same tenant has its own quota.
        assert!(matches!(
            t.check("t", "b", SizeClass::L, write, now),
            Verdict::Allowed { .. }
        ));
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
            assert!(matches!(
                t.check("t", app, SizeClass::L, inv, now),
                Verdict::Allowed { .. }
            ));
        }
        assert!(matches!(
            t.check("t", "c", SizeClass::L, inv, now),
            Verdict::Throttled { .. }
        ));
    }
}
