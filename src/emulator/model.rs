//! The directory: tenants and their objects, held as Graph-shaped JSON where Graph is open
//! (users, groups, policies) and as typed records where the emulator adds behaviour.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::index::{Field, UserIndex};
use super::seed::{FederatedCredentialSeed, SizeClass};

pub type Obj = Map<String, Value>;

/// The whole emulated world: what `--state` persists and `/_emulator/export` returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub apps: BTreeMap<String, AppCredentials>,
    pub tenants: BTreeMap<String, Tenant>,
    /// Virtual time of the last save, so a reload resumes the clock where it stopped.
    #[serde(default)]
    pub saved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppCredentials {
    pub app_id: String,
    pub display_name: String,
    pub client_secrets: Vec<String>,
    pub federated_credentials: Vec<FederatedCredentialSeed>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    pub domains: Vec<String>,
    pub size_class: Option<SizeClass>,
    pub guest_invites_allowed: bool,
    /// Active users by object id.
    pub users: BTreeMap<String, Obj>,
    /// Soft-deleted users by object id.
    pub deleted_users: BTreeMap<String, DeletedUser>,
    /// user id → manager id.
    pub managers: BTreeMap<String, String>,
    pub groups: BTreeMap<String, Group>,
    /// Soft-deleted groups by object id.
    #[serde(default)]
    pub deleted_groups: BTreeMap<String, super::group_log::DeletedGroup>,
    /// What happened to groups and their memberships (positions of `groups/delta` tokens).
    #[serde(default)]
    pub group_log: super::group_log::GroupLog,
    pub service_principals: BTreeMap<String, ServicePrincipal>,
    pub applications: BTreeMap<String, Application>,
    pub assignments: BTreeMap<String, Obj>,
    /// Partner tenant id → configuration.
    pub partners: BTreeMap<String, Partner>,
    pub change_log: ChangeLog,
    /// Who holds which UPN/mail/address among `users`; derived, rebuilt by [`Tenant::reindex`].
    #[serde(skip)]
    pub index: UserIndex,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUser {
    pub user: Obj,
    pub deleted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub props: Obj,
    /// Direct members: user or group ids.
    pub members: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    pub permissions: BTreeSet<String>,
    pub app_roles: Vec<AppRole>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    /// Registered `extensionProperty` objects (Graph shape).
    pub extension_properties: Vec<Obj>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    pub config: Obj,
    pub identity_sync: Option<Obj>,
}

/// What happened to a user, in the order it happened; delta tokens are positions in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeLog {
    /// Sequence number the next change gets.
    pub next_seq: u64,
    /// Changes with `seq < floor` were pruned; tokens before it need a resync.
    pub floor: u64,
    pub entries: VecDeque<Change>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub user_id: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ChangeKind {
    Created,
    Updated { properties: BTreeSet<String> },
    SoftDeleted,
    Restored,
    HardDeleted,
}

impl ChangeLog {
    pub fn record(&mut self, at: DateTime<Utc>, user_id: &str, kind: ChangeKind) {
        self.next_seq += 1;
        self.entries.push_back(Change {
            seq: self.next_seq,
            at,
            user_id: user_id.to_string(),
            kind,
        });
    }

    /// The position a new delta token points at.
    pub fn head(&self) -> u64 {
        self.next_seq
    }

    /// Drops entries older than `keep_after`; tokens pointing before them must resync.
    pub fn prune(&mut self, keep_after: DateTime<Utc>) {
        while let Some(first) = self.entries.front() {
            if first.at >= keep_after {
                break;
            }
            self.floor = first.seq;
            self.entries.pop_front();
        }
    }
}

impl Directory {
    /// Rebuilds every tenant's derived index.
    pub fn reindex(&mut self) {
        for t in self.tenants.values_mut() {
            t.reindex();
        }
    }
}

impl Tenant {
    pub fn initial_domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or("")
    }

    pub fn effective_size_class(&self) -> SizeClass {
        self.size_class.unwrap_or(match self.users.len() {
            0..50 => SizeClass::S,
            50..=500 => SizeClass::M,
            _ => SizeClass::L,
        })
    }

    /// Resolves `/users/{id | userPrincipalName}` among active users.
    pub fn find_user_id(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        self.index.holders(Field::Upn, key).next().cloned()
    }

    /// Another active user already holds `value` in `property` (case-insensitive)?
    pub fn value_taken(&self, property: &str, value: &str, except: Option<&str>) -> bool {
        match Field::for_property(property) {
            Some(field) => self
                .index
                .holders(field, value)
                .any(|id| Some(id.as_str()) != except),
            None => self.users.iter().any(|(id, u)| {
                Some(id.as_str()) != except
                    && str_prop(u, property).is_some_and(|v| same_ignoring_case(v, value))
            }),
        }
    }

    /// Inserts or replaces an active user, keeping the index current.
    pub fn put_user(&mut self, id: &str, user: Obj) {
        if let Some(old) = self.users.get(id) {
            self.index.remove(id, old);
        }
        self.index.add(id, &user);
        self.users.insert(id.to_string(), user);
    }

    /// Removes an active user, keeping the index current.
    pub fn take_user(&mut self, id: &str) -> Option<Obj> {
        let user = self.users.remove(id)?;
        self.index.remove(id, &user);
        Some(user)
    }

    /// Rebuilds the index from `users` (after loading, or after code that edited `users` directly).
    pub fn reindex(&mut self) {
        self.index.clear();
        for (id, u) in &self.users {
            self.index.add(id, u);
        }
    }

    /// Every registered directory extension name → its data type.
    pub fn extension(&self, name: &str) -> Option<&Obj> {
        self.applications
            .values()
            .flat_map(|a| a.extension_properties.iter())
            .find(|e| str_prop(e, "name") == Some(name))
    }

    pub fn service_principal_by_app(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .values()
            .find(|sp| sp.app_id == app_id)
    }

    pub fn object_kind(&self, id: &str) -> Option<ObjectKind> {
        if self.users.contains_key(id) {
            Some(ObjectKind::User)
        } else if self.groups.contains_key(id) {
            Some(ObjectKind::Group)
        } else if self.service_principals.contains_key(id) {
            Some(ObjectKind::ServicePrincipal)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Group,
    ServicePrincipal,
}

impl ObjectKind {
    pub fn odata_type(self) -> &'static str {
        match self {
            ObjectKind::User => "#microsoft.graph.user",
            ObjectKind::Group => "#microsoft.graph.group",
            ObjectKind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
        }
    }

    pub fn principal_type(self) -> &'static str {
        match self {
            ObjectKind::User => "User",
            ObjectKind::Group => "Group",
            ObjectKind::ServicePrincipal => "ServicePrincipal",
        }
    }
}

/// Case-insensitive equality without allocating (directory values compare case-insensitively).
pub fn same_ignoring_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

pub fn str_prop<'a>(obj: &'a Obj, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_comparison_handles_ascii_and_unicode() {
        assert!(same_ignoring_case("Adele@Contoso.com", "adele@contoso.COM"));
        assert!(!same_ignoring_case("adele@contoso.com", "adele@contoso.co"));
        assert!(same_ignoring_case("ÄRGER@x.de", "ärger@x.de"));
        assert!(!same_ignoring_case("ärger@x.de", "arger@x.de"));
    }

    #[test]
    fn prune_moves_the_floor() {
        let mut log = ChangeLog::default();
        let t0 = Utc::now();
        log.record(t0, "a", ChangeKind::Created);
        log.record(t0 + chrono::Duration::days(8), "b", ChangeKind::Created);
        log.prune(t0 + chrono::Duration::days(1));
        assert_eq!(log.floor, 1);
        assert_eq!(log.entries.len(), 1);
        assert_eq!(log.head(), 2);
    }
}
