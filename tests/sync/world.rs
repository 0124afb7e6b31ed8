//! A two- or three-tenant world in the emulator, the pair files that sync it, and helpers to
//! act as each tenant's admin through Graph.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ctsync::emulator::{self, EmulatorHandle, EmulatorOptions, Seed};
use ctsync::engine::{CycleOptions, CycleReport, PairRuntime, run_cycle};
use ctsync::graph::{ClientCredential, GraphClient, GraphSettings, User};
use ctsync::store::SqliteStore;
use secrecy::SecretString;
use serde_json::{Value, json};

pub const APP: &str = "5c0ffee0-0000-4000-8000-000000000001";
pub const SECRET: &str = "test-secret-value";
pub const CONTOSO: &str = "c0000000-0000-4000-8000-000000000001";
pub const FABRIKAM: &str = "f0000000-0000-4000-8000-000000000002";
pub const NORTHWIND: &str = "d0000000-0000-4000-8000-000000000003";

pub fn anchor_attribute() -> String {
    format!("extension_{}_ctsyncAnchor", APP.replace('-', ""))
}

/// The seed: each tenant has the sync app's service principal with the permissions sync needs,
/// the app's application object with the anchor extension, and partner policies allowing sync
/// between every pair of tenants.
pub fn seed(tenants: &[(&str, &str)], users: &[(&str, Vec<Value>)]) -> Seed {
    to_seed(seed_json(tenants, users))
}

pub fn to_seed(seed: Value) -> Seed {
    serde_json::from_value(seed).expect("test seed is valid")
}

/// The seed as JSON, for tests that add groups, assignments or target users.
pub fn seed_json(tenants: &[(&str, &str)], users: &[(&str, Vec<Value>)]) -> Value {
    let mut list = Vec::new();
    for (id, domain) in tenants {
        let partners: Vec<Value> = tenants
            .iter()
            .filter(|(other, _)| other != id)
            .map(|(other, _)| {
                json!({
                    "tenantId": other,
                    "automaticUserConsentSettings": {"inboundAllowed": true, "outboundAllowed": true},
                    "identitySynchronization": {"userSyncInbound": {"isSyncAllowed": true}},
                })
            })
            .collect();
        let tenant_users: Vec<Value> = users
            .iter()
            .filter(|(t, _)| t == id)
            .flat_map(|(_, u)| u.clone())
            .collect();
        list.push(json!({
            "id": id,
            "domains": [domain],
            "sizeClass": "S",
            "servicePrincipals": [{
                "appId": APP,
                "id": service_principal(id),
                "permissions": ["User.ReadWrite.All", "User.Invite.All", "Group.Read.All",
                    "Application.ReadWrite.All", "Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess", "Directory.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All"],
            }],
            "applications": [{
                "appId": APP,
                "extensionProperties": [{"name": "ctsyncAnchor"}],
            }],
            "users": tenant_users,
            "partners": partners,
        }));
    }
    json!({
        "apps": [{"appId": APP, "clientSecrets": [SECRET]}],
        "tenants": list,
    })
}

/// The service principal id the seed gives the sync app in `tenant`.
pub fn service_principal(tenant: &str) -> String {
    format!("5b000000-0000-4000-8000-{}", &tenant[24..])
}

pub fn user(alias: &str, domain: &str, extra: Value) -> Value {
    let mut u = json!({
        "userPrincipalName": format!("{alias}@{domain}"),
        "displayName": alias,
        "mailNickname": alias,
        "mail": format!("{alias}@{domain}"),
        "accountEnabled": true,
        "userType": "Member",
    });
    if let (Value::Object(base), Value::Object(more)) = (&mut u, extra) {
        base.extend(more);
    }
    u
}

pub struct World {
    pub emulator: EmulatorHandle,
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
}

impl World {
    pub async fn start(seed: Seed) -> World {
        let options = EmulatorOptions {
            throttling: false,
            ..EmulatorOptions::default()
        };
        let emulator = emulator::spawn(seed, options)
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("secret.txt"), SECRET).expect("secret file");
        let store = Arc::new(SqliteStore::open(dir.path().join("state.db")).expect("store"));
        World {
            emulator,
            dir,
            store,
        }
    }

    /// Writes a pair file; `spec_extra` is YAML appended under `spec:` (indented by the caller).
    pub fn pair_file(&self, name: &str, source: &str, target: &str, spec_extra: &str) -> PathBuf {
        let base = self.emulator.base_url();
        let text = format!(
            "apiVersion: ctsync.io/v1
kind: SyncPair
metadata:
  name: {name}
spec:
  source:
    tenantId: {source}
    credentials:
      clientId: {APP}
      clientSecret: {{ file: secret.txt }}
  target:
    tenantId: {target}
    credentials:
      clientId: {APP}
      clientSecret: {{ file: secret.txt }}
  graph:
    authority: {base}
    baseUrl: {base}
{spec_extra}"
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("pair file");
        path
    }

    pub fn runtime(&self, file: &Path, name: &str) -> PairRuntime {
        let topology = ctsync::config::load(file).unwrap_or_else(|e| panic!("config: {e}"));
        let pair = topology
            .pair(name)
            .unwrap_or_else(|| panic!("no pair {name}"))
            .clone();
        PairRuntime::new(pair).expect("runtime")
    }

    /// A daemon for every pair in `config` (a file or a directory), over this world's store,
    /// with an hour's interval: after the first cycle, cycles run only when a test asks.
    #[allow(dead_code)] // not every test binary that includes this file runs a daemon
    pub fn daemon(&self, config: &Path) -> ctsync::engine::Daemon {
        let topology = ctsync::config::load(config).unwrap_or_else(|e| panic!("config: {e}"));
        let runtimes = topology
            .pairs
            .into_iter()
            .map(|p| PairRuntime::new(p).expect("runtime"))
            .collect();
        ctsync::engine::Daemon::new(
            runtimes,
            self.store.clone() as Arc<dyn ctsync::store::StateStore>,
            ctsync::engine::DaemonOptions {
                once: false,
                interval_override: Some(std::time::Duration::from_secs(3600)),
                ..Default::default()
            },
        )
    }

    /// The `ctsync run` binary for `config` over `state`, without the admin API, with an hour's
    /// interval (add `--once` to stop after one cycle).
    #[allow(dead_code)]
    pub fn run_command(config: &Path, state: &Path) -> std::process::Command {
        let mut command = Self::command("run", config, state);
        command.args(["--interval", "1h", "--admin-listen", "none"]);
        command
    }

    /// `ctsync <subcommand> --config CONFIG --state STATE`; add the subcommand's arguments.
    #[allow(dead_code)]
    pub fn command(subcommand: &str, config: &Path, state: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("ctsync"));
        command
            .arg(subcommand)
            .arg("--config")
            .arg(config)
            .arg("--state")
            .arg(state);
        command
    }

    /// Runs a command to its end off the async runtime, so the in-process emulator keeps
    /// serving while the test waits for it.
    #[allow(dead_code)]
    pub async fn output(mut command: std::process::Command) -> std::process::Output {
        tokio::task::spawn_blocking(move || command.output().expect("ctsync runs"))
            .await
            .expect("joined")
    }

    pub async fn cycle(&self, rt: &PairRuntime) -> CycleReport {
        run_cycle(rt, self.store.as_ref(), &CycleOptions::default())
            .await
            .unwrap_or_else(|e| panic!("cycle failed: {e}"))
    }

    pub fn admin(&self, tenant: &str) -> GraphClient {
        let base = self.emulator.base_url();
        GraphClient::new(
            tenant,
            APP,
            ClientCredential::Secret(SecretString::from(SECRET.to_owned())),
            GraphSettings {
                authority: base.clone(),
                base_url: base,
                ..GraphSettings::default()
            },
        )
        .expect("admin client")
    }

    /// Every B2B user of `tenant` with the anchor and the attributes the tests look at.
    pub async fn b2b_users(&self, tenant: &str) -> Vec<User> {
        let anchor = anchor_attribute();
        self.admin(tenant)
            .list_users(Some("creationType eq 'Invitation'"), &[anchor.as_str()])
            .await
            .expect("list target users")
    }

    pub async fn b2b_user(&self, tenant: &str, alias: &str) -> Option<User> {
        self.b2b_users(tenant).await.into_iter().find(|u| {
            u.user_principal_name
                .as_deref()
                .is_some_and(|upn| upn.starts_with(&format!("{alias}_")))
        })
    }

    pub async fn source_id(&self, tenant: &str, upn: &str) -> String {
        self.admin(tenant)
            .get_user(upn, &[])
            .await
            .expect("get user")
            .unwrap_or_else(|| panic!("no user {upn}"))
            .id
    }

    /// A raw Graph call as `tenant`'s admin; panics unless it succeeds.
    pub async fn call(
        &self,
        tenant: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) {
        self.admin(tenant)
            .send(method.clone(), path, &[], body.as_ref(), 1)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    }

    /// The target user with this id, live or soft-deleted (`deleted` tells which).
    pub async fn target_user_by_id(&self, tenant: &str, id: &str) -> Option<(User, bool)> {
        let admin = self.admin(tenant);
        let anchor = anchor_attribute();
        if let Some(u) = admin.get_user(id, &[anchor.as_str()]).await.expect("get") {
            return Some((u, false));
        }
        admin
            .deleted_users(None, &[anchor.as_str()])
            .await
            .expect("deleted items")
            .into_iter()
            .find(|u| u.id == id)
            .map(|u| (u, true))
    }

    /// Makes the next requests matching `rule` fail (the emulator's
    /// `/_emulator/faults/fail-next`: `tenant`, `method`, `pathContains`, `count`, `status`, …).
    pub async fn fail_next(&self, rule: Value) {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/_emulator/faults/fail-next",
                self.emulator.base_url()
            ))
            .json(&rule)
            .send()
            .await
            .expect("emulator control");
        assert!(response.status().is_success(), "{:?}", response.status());
    }

    /// Removes every injected fault.
    pub async fn clear_faults(&self) {
        reqwest::Client::new()
            .delete(format!("{}/_emulator/faults", self.emulator.base_url()))
            .send()
            .await
            .expect("emulator control");
    }

    pub async fn patch(&self, tenant: &str, id: &str, body: Value) {
        let Value::Object(map) = body else {
            panic!("patch body must be an object")
        };
        self.admin(tenant)
            .update_user(id, &map)
            .await
            .expect("patch user");
    }
}
