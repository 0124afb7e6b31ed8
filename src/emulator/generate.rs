//! Generated tenants for scale tests and benchmarks: N users with realistic attributes, a
//! manager hierarchy, security groups, a share of disabled users and several departments (so
//! a scoping filter leaves some out). Deterministic for a given `seed`, so runs compare.
//!
//! `ctsync emulator --generate users=100000,groups=500` and in-process
//! `Generate::users(100_000).apply_to(&mut seed)` build the same tenant.

use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::errors::EmulatorError;
use super::seed::{GroupSeed, Seed, TenantSeed, UserSeed};

/// What to generate, and into which tenant of the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Generate {
    /// Tenant id; `None` = the first tenant of the seed.
    pub tenant: Option<String>,
    pub users: usize,
    /// Security groups; each generated user is a direct member of one (round robin).
    pub groups: usize,
    /// Percent of users with `accountEnabled: false`.
    pub disabled_percent: u32,
    /// Give every user but the roots a manager (a tree with `span` reports per manager).
    pub managers: bool,
    pub span: usize,
    /// UPN/mail domain; `None` = the tenant's last verified domain.
    pub domain: Option<String>,
    /// Random seed (attributes, departments, disabled users).
    pub seed: u64,
}

impl Default for Generate {
    fn default() -> Self {
        Generate {
            tenant: None,
            users: 0,
            groups: 0,
            disabled_percent: 5,
            managers: true,
            span: 8,
            domain: None,
            seed: 1,
        }
    }
}

/// Departments users are spread over (a sync scoped to `Sales` leaves ~70 % out of scope).
pub const DEPARTMENTS: &[&str] = &[
    "Sales",
    "Marketing",
    "Engineering",
    "Finance",
    "Operations",
    "Legal",
    "Support",
];
const GIVEN: &[&str] = &[
    "Adele",
    "Alex",
    "Diego",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Sørina",
    "Zoë",
];
const SURNAMES: &[&str] = &[
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Cerveny",
    "Sundberg",
    "Lauer",
    "Sherman",
    "Gu",
    "Holgersen",
    "Robinson",
    "Bowen",
    "Hunter",
    "Wilke",
    "Fernandez",
    "Gupta",
    "Ødegård",
];
const TITLES: &[&str] = &[
    "Analyst",
    "Engineer",
    "Manager",
    "Director",
    "Specialist",
    "Consultant",
];
const CITIES: &[(&str, &str)] = &[
    ("Seattle", "US"),
    ("Berlin", "DE"),
    ("Oslo", "NO"),
    ("Paris", "FR"),
    ("Tokyo", "JP"),
];

impl Generate {
    pub fn users(n: usize) -> Generate {
        Generate {
            users: n,
            groups: (n / 200).max(1),
            ..Generate::default()
        }
    }

    /// Adds the generated users and groups to the chosen tenant of `seed`.
    pub fn apply_to(&self, seed: &mut Seed) -> Result<(), EmulatorError> {
        let tenant = match &self.tenant {
            Some(id) => seed
                .tenants
                .iter_mut()
                .find(|t| t.id.eq_ignore_ascii_case(id))
                .ok_or_else(|| {
                    EmulatorError::Seed(format!("--generate: no tenant {id} in the seed"))
                })?,
            None => seed.tenants.first_mut().ok_or_else(|| {
                EmulatorError::Seed("--generate: the seed has no tenant".to_string())
            })?,
        };
        self.fill(tenant)
    }

    fn fill(&self, tenant: &mut TenantSeed) -> Result<(), EmulatorError> {
        let domain = match &self.domain {
            Some(d) => d.clone(),
            None => tenant.domains.last().cloned().ok_or_else(|| {
                EmulatorError::Seed(format!("tenant {} has no domain", tenant.id))
            })?,
        };
        let mut rng = StdRng::seed_from_u64(self.seed);
        let prefix = (self.seed & 0xffff_ffff) as u32;
        let upn = |i: usize| format!("gen{i:07}@{domain}");
        let span = self.span.max(1);
        tenant.users.reserve(self.users);
        for i in 0..self.users {
            let given = GIVEN[rng.random_range(0..GIVEN.len())];
            let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
            let (city, country) = CITIES[rng.random_range(0..CITIES.len())];
            let department = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
            let disabled = rng.random_range(0..100) < self.disabled_percent;
            let mut p = Map::new();
            p.insert(
                "id".into(),
                json!(format!("{prefix:08x}-0000-4000-8000-{i:012x}")),
            );
            p.insert("userPrincipalName".into(), json!(upn(i)));
            p.insert("mail".into(), json!(upn(i)));
            p.insert("mailNickname".into(), json!(format!("gen{i:07}")));
            p.insert(
                "displayName".into(),
                json!(format!("{given} {surname} {i}")),
            );
            p.insert("givenName".into(), json!(given));
            p.insert("surname".into(), json!(surname));
            p.insert("department".into(), json!(department));
            p.insert(
                "jobTitle".into(),
                json!(TITLES[rng.random_range(0..TITLES.len())]),
            );
            p.insert("employeeId".into(), json!(format!("E{i:07}")));
            p.insert("companyName".into(), json!(tenant.display_name.clone()));
            p.insert("city".into(), json!(city));
            p.insert("country".into(), json!(country));
            p.insert("usageLocation".into(), json!(country));
            p.insert("accountEnabled".into(), Value::Bool(!disabled));
            p.insert("userType".into(), json!("Member"));
            let manager = (self.managers && i > 0).then(|| upn((i - 1) / span));
            tenant.users.push(UserSeed {
                manager,
                properties: p,
            });
        }
        let groups = if self.users == 0 { 0 } else { self.groups };
        for g in 0..groups {
            let members = (g..self.users).step_by(groups).map(upn).collect();
            tenant.groups.push(GroupSeed {
                id: Some(format!("{prefix:08x}-0000-4000-9000-{g:012x}")),
                display_name: format!("Generated Group {g}"),
                description: Some(format!("generated, {} members", self.users / groups)),
                members,
                security_enabled: true,
                ..GroupSeed::default()
            });
        }
        Ok(())
    }
}

impl FromStr for Generate {
    type Err = String;

    /// `users=100000,groups=500,disabled=5,managers=true,span=8,tenant=ID,domain=D,seed=1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut g = Generate::default();
        let mut groups = None;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected key=value"))?;
            let num = || {
                v.replace('_', "")
                    .parse::<usize>()
                    .map_err(|_| format!("`{k}={v}`: expected a whole number"))
            };
            match k {
                "users" => g.users = num()?,
                "groups" => groups = Some(num()?),
                "disabled" => {
                    let n = num()?;
                    if n > 100 {
                        return Err(format!("`disabled={v}`: a percentage, 0 to 100"));
                    }
                    g.disabled_percent = n as u32;
                }
                "span" => g.span = num()?.max(1),
                "seed" => g.seed = num()? as u64,
                "managers" => {
                    g.managers = v
                        .parse()
                        .map_err(|_| format!("`managers={v}`: expected true or false"))?
                }
                "tenant" => g.tenant = Some(v.to_string()),
                "domain" => g.domain = Some(v.to_string()),
                other => {
                    return Err(format!(
                        "unknown key `{other}` (users, groups, disabled, managers, span, tenant, domain, seed)"
                    ));
                }
            }
        }
        if g.users == 0 {
            return Err("users=N is required (N > 0)".to_string());
        }
        g.groups = groups.unwrap_or((g.users / 200).max(1));
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Seed {
        Seed {
            tenants: vec![TenantSeed {
                id: "t".into(),
                display_name: Some("Contoso".into()),
                domains: vec!["contoso.onmicrosoft.com".into(), "contoso.com".into()],
                ..TenantSeed::default()
            }],
            ..Seed::default()
        }
    }

    #[test]
    fn parses_the_cli_form_and_rejects_nonsense() {
        let g: Generate = "users=1_000,groups=3,disabled=10,managers=false,seed=9"
            .parse()
            .expect("parses");
        assert_eq!((g.users, g.groups, g.disabled_percent), (1000, 3, 10));
        assert!(!g.managers);
        for bad in [
            "",
            "groups=3",
            "users=x",
            "users=5,bogus=1",
            "users=5,disabled=101",
            "users",
        ] {
            assert!(bad.parse::<Generate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn builds_a_tenant_with_managers_groups_and_disabled_users() {
        let mut s = seed();
        Generate {
            users: 1000,
            groups: 4,
            disabled_percent: 10,
            ..Generate::default()
        }
        .apply_to(&mut s)
        .expect("generates");
        let dir =
            crate::emulator::build::directory_from_seed(&s, chrono::Utc::now()).expect("builds");
        let t = &dir.tenants["t"];
        assert_eq!(t.users.len(), 1000);
        assert_eq!(t.managers.len(), 999);
        assert_eq!(t.groups.len(), 4);
        assert_eq!(
            t.groups.values().map(|g| g.members.len()).sum::<usize>(),
            1000
        );
        let disabled = t
            .users
            .values()
            .filter(|u| u["accountEnabled"] == json!(false))
            .count();
        assert!((50..=150).contains(&disabled), "{disabled}");
        assert!(t.find_user_id("GEN0000999@contoso.com").is_some());
    }

    #[test]
    fn an_unknown_tenant_is_an_error() {
        let mut s = seed();
        let g = Generate {
            tenant: Some("nope".into()),
            ..Generate::users(3)
        };
        assert!(g.apply_to(&mut s).is_err());
    }
}
