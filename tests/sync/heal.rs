//! Every cycle heals: a crash at any step boundary, a lost state file or a blocked cycle leave
//! nothing behind that the next cycles do not repair. Black box where it can be: the `ctsync`
//! binary against the emulator, the target checked through Graph and the store opened after
//! the binary exited.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ctsync::engine::CycleOptions;
use ctsync::engine::killpoint::Step;
use ctsync::plan::Anchor;
use ctsync::store::{CreateIntent, SqliteStore, StateStore, StoreWrite};
use serde_json::{Value, json};

use super::world::*;

/// Mappings without a manager: a re-link then needs no write at all.
const PLAIN_MAPPINGS: &str = "  scope: { mode: all }
  mappings:
    - { target: mail, source: mail, matchingPriority: 1 }
    - { target: displayName, source: displayName }
    - { target: jobTitle, source: jobTitle }
    - { target: accountEnabled, source: accountEnabled }
    - { target: userType, constant: Member, apply: onCreate }
";

fn people(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            user(
                &format!("p{i:02}"),
                "contoso.com",
                json!({"jobTitle": "Rep"}),
            )
        })
        .collect()
}

async fn two_tenants(users: Vec<Value>) -> World {
    World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, users)],
    ))
    .await
}

/// `ctsync run --once` over `state`; `kill_at` sets `CTSYNC_KILL_AT`. Returns whether it
/// exited successfully (an abort at the kill point is not).
async fn run_once(file: &Path, state: &Path, kill_at: Option<String>) -> (bool, String) {
    let mut command = World::run_command(file, state);
    command.arg("--once").env("RUST_LOG", "warn");
    if let Some(point) = kill_at {
        command.env("CTSYNC_KILL_AT", point);
    }
    let output = World::output(command).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn run_ok(file: &Path, state: &Path) {
    let (ok, stderr) = run_once(file, state, None).await;
    assert!(ok, "ctsync run --once failed:\n{stderr}");
}

/// Makes every write to `tenant` fail with a 400 (an escrowed failure): a tripwire for "this
/// cycle writes nothing to the target".
async fn forbid_writes(world: &World, tenant: &str) {
    for method in ["POST", "PATCH", "PUT", "DELETE"] {
        world
            .fail_next(
                json!({"tenant": tenant, "method": method, "pathContains": "/",
                "count": 100000, "status": 400, "code": "TripwireWrite"}),
            )
            .await;
    }
}

fn anchor_of(user: &ctsync::graph::User) -> Option<String> {
    user.extensions
        .get(&anchor_attribute())
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// What the target and the store must hold when every source user in `live` (alias → job
/// title) is synced and every alias in `gone` was deleted in the source: exactly one live,
/// anchored B2B user per live alias with its title; no live user for the others; the store
/// linking exactly the live anchors (the gone ones marked soft-deleted by us, if linked), no
/// open intent, a watermark. Returns the violations (empty = converged).
async fn violations(
    world: &World,
    pair: &str,
    state: &Path,
    live: &[(String, String)],
    gone: &[String],
    source_ids: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let users = world.b2b_users(FABRIKAM).await;
    for (alias, title) in live {
        let matching: Vec<_> = users
            .iter()
            .filter(|u| {
                u.user_principal_name
                    .as_deref()
                    .is_some_and(|upn| upn.starts_with(&format!("{alias}_")))
            })
            .collect();
        let want_anchor = format!("{CONTOSO}/{}", source_ids[alias]);
        match matching.as_slice() {
            [one] => {
                if anchor_of(one).as_deref() != Some(want_anchor.as_str()) {
                    problems.push(format!("{alias}: anchor {:?}", anchor_of(one)));
                }
                let full = world
                    .admin(FABRIKAM)
                    .get_user(&one.id, &["jobTitle"])
                    .await
                    .expect("get")
                    .expect("exists");
                if full.job_title.as_deref() != Some(title.as_str()) {
                    problems.push(format!("{alias}: jobTitle {:?} != {title}", full.job_title));
                }
            }
            other => problems.push(format!("{alias}: {} live target users", other.len())),
        }
    }
    for alias in gone {
        if users.iter().any(|u| {
            u.user_principal_name
                .as_deref()
                .is_some_and(|upn| upn.starts_with(&format!("{alias}_")))
        }) {
            problems.push(format!(
                "{alias}: deleted in the source but live in the target"
            ));
        }
    }
    let store = SqliteStore::open(state).expect("store opens");
    let managed = store.managed_users(pair).await.expect("managed");
    for (alias, _) in live {
        let anchor = Anchor::new(CONTOSO, &source_ids[alias]);
        match managed.iter().find(|m| m.anchor == anchor) {
            Some(m) if m.soft_deleted_by_us_at.is_none() => {}
            Some(_) => problems.push(format!("{alias}: store says soft-deleted")),
            None => problems.push(format!("{alias}: no link in the store")),
        }
    }
    for alias in gone {
        let anchor = Anchor::new(CONTOSO, &source_ids[alias]);
        if let Some(m) = managed.iter().find(|m| m.anchor == anchor)
            && m.soft_deleted_by_us_at.is_none()
        {
            problems.push(format!("{alias}: gone but linked as live"));
        }
    }
    let intents = store.create_intents(pair).await.expect("intents");
    if !intents.is_empty() {
        problems.push(format!("{} open create intents", intents.len()));
    }
    if store.watermark(pair).await.expect("watermark").is_none() {
        problems.push("no watermark".into());
    }
    problems
}

async fn ids(world: &World, aliases: &[String]) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    for alias in aliases {
        map.insert(
            alias.clone(),
            world
                .source_id(CONTOSO, &format!("{alias}@contoso.com"))
                .await,
        );
    }
    map
}

/// Failure 1: a kill -9 after the PATCH of an initial cycle leaves a target user with our
/// anchor and only its create intent in the store. The next initial cycle must link it, so a
/// later source delete reaches the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_anchored_before_a_crash_is_linked_on_restart_and_its_delete_arrives() {
    let world = two_tenants(people(3)).await;
    let file = world.pair_file("heal", CONTOSO, FABRIKAM, PLAIN_MAPPINGS);
    let state = world.dir.path().join("run.db");
    run_ok(&file, &state).await;
    let victim = world.source_id(CONTOSO, "p01@contoso.com").await;
    let anchor = Anchor::new(CONTOSO, &victim);
    {
        // What the crash left: the user carries the anchor, the store has its intent only and
        // no watermark (the initial cycle never finished).
        let store = SqliteStore::open(&state).expect("store");
        store
            .commit(
                "heal",
                vec![
                    StoreWrite::RemoveManaged {
                        anchor: anchor.clone(),
                    },
                    StoreWrite::RecordCreateIntent(CreateIntent {
                        anchor: anchor.clone(),
                        intent_id: "crashed".into(),
                        invited_address: "p01@contoso.com".into(),
                        recorded_at: chrono::Utc::now(),
                    }),
                ],
            )
            .await
            .expect("commit");
        store.clear_watermark("heal").await.expect("clear");
    }
    run_ok(&file, &state).await;
    {
        let store = SqliteStore::open(&state).expect("store");
        assert!(
            store.managed_user("heal", &anchor).await.unwrap().is_some(),
            "the user found by anchor is linked"
        );
        assert!(store.create_intents("heal").await.unwrap().is_empty());
    }
    let target = world.b2b_user(FABRIKAM, "p01").await.expect("p01 synced");
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{victim}"),
            None,
        )
        .await;
    run_ok(&file, &state).await;
    let (_, deleted) = world
        .target_user_by_id(FABRIKAM, &target.id)
        .await
        .expect("still restorable");
    assert!(deleted, "the source delete reached the target");
}

/// Failure 2 and the full reconcile: the state file is lost mid-life. The next (full) cycle
/// re-links every user by anchor without writing to the target; later source edits and
/// deletes reach the target again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_state_file_is_healed_by_re_linking_without_writing_to_the_target() {
    let world = two_tenants(people(4)).await;
    let file = world.pair_file("heal", CONTOSO, FABRIKAM, PLAIN_MAPPINGS);
    let state = world.dir.path().join("run.db");
    run_ok(&file, &state).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }
    forbid_writes(&world, FABRIKAM).await;
    run_ok(&file, &state).await;
    world.clear_faults().await;
    {
        let store = SqliteStore::open(&state).expect("store");
        let managed = store.managed_users("heal").await.unwrap();
        assert_eq!(managed.len(), 4, "everyone re-linked: {managed:?}");
        assert!(
            store.escrows("heal").await.unwrap().is_empty(),
            "no write was tried"
        );
    }
    let edited = world.source_id(CONTOSO, "p02@contoso.com").await;
    world
        .patch(CONTOSO, &edited, json!({"jobTitle": "Lead"}))
        .await;
    let deleted = world.source_id(CONTOSO, "p03@contoso.com").await;
    let p03 = world.b2b_user(FABRIKAM, "p03").await.expect("p03");
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{deleted}"),
            None,
        )
        .await;
    run_ok(&file, &state).await;
    let p02 = world.b2b_user(FABRIKAM, "p02").await.expect("p02");
    let p02 = world
        .admin(FABRIKAM)
        .get_user(&p02.id, &["jobTitle"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p02.job_title.as_deref(), Some("Lead"));
    let (_, gone) = world.target_user_by_id(FABRIKAM, &p03.id).await.unwrap();
    assert!(gone, "the delete reached the target");
}

/// Failure 2 with the default mappings (manager included): a lost state file must not make
/// every cycle fail (`FOREIGN KEY constraint failed` on the manager's exported value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_state_file_with_a_manager_mapping_does_not_fail_every_cycle() {
    let mut users = people(2);
    users[1]["manager"] = json!("p00@contoso.com");
    let world = two_tenants(users).await;
    let file = world.pair_file("heal", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let state = world.dir.path().join("run.db");
    run_ok(&file, &state).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }
    run_ok(&file, &state).await;
    run_ok(&file, &state).await;
    let store = SqliteStore::open(&state).expect("store");
    assert_eq!(store.managed_users("heal").await.unwrap().len(), 2);
    let status = store.status("heal").await.unwrap().expect("status");
    assert_eq!(
        status["countSuccessiveCompleteFailures"],
        json!(0),
        "{status}"
    );
}

/// The target's manager of `user` (a B2B user found by alias), `None` when it has none.
async fn target_manager(world: &World, alias: &str) -> Option<String> {
    let user = world
        .b2b_user(FABRIKAM, alias)
        .await
        .expect("in the target");
    match world
        .admin(FABRIKAM)
        .send_json::<Value>(
            reqwest::Method::GET,
            &format!("users/{}/manager", user.id),
            None,
        )
        .await
    {
        Ok(manager) => manager["id"].as_str().map(str::to_owned),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("GET manager of {alias}: {e}"),
    }
}

/// A lost state file with a manager mapping: the full reconcile re-links everyone and leaves
/// every manager reference right, whatever changed meanwhile — a manager changed in the source
/// (p02), one removed by hand in the target (p03), one removed in the source (p04) — with no
/// failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_link_after_a_lost_state_file_sets_the_managers_right() {
    let mut users = people(5);
    for u in &mut users[2..] {
        u["manager"] = json!("p00@contoso.com");
    }
    let world = two_tenants(users).await;
    let file = world.pair_file("heal", CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let state = world.dir.path().join("run.db");
    run_ok(&file, &state).await;
    let p00 = world.b2b_user(FABRIKAM, "p00").await.expect("p00").id;
    let p01 = world.b2b_user(FABRIKAM, "p01").await.expect("p01").id;
    for alias in ["p02", "p03", "p04"] {
        assert_eq!(
            target_manager(&world, alias).await.as_deref(),
            Some(p00.as_str())
        );
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }

    let source = |alias: &'static str| {
        let world = &world;
        async move {
            world
                .source_id(CONTOSO, &format!("{alias}@contoso.com"))
                .await
        }
    };
    let (s01, s02, s04) = (
        source("p01").await,
        source("p02").await,
        source("p04").await,
    );
    world
        .call(
            CONTOSO,
            reqwest::Method::PUT,
            &format!("users/{s02}/manager/$ref"),
            Some(json!({"@odata.id": format!("{}/v1.0/users/{s01}", world.emulator.base_url())})),
        )
        .await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{s04}/manager/$ref"),
            None,
        )
        .await;
    let t03 = world.b2b_user(FABRIKAM, "p03").await.expect("p03").id;
    world
        .call(
            FABRIKAM,
            reqwest::Method::DELETE,
            &format!("users/{t03}/manager/$ref"),
            None,
        )
        .await;

    run_ok(&file, &state).await;
    assert_eq!(
        target_manager(&world, "p02").await.as_deref(),
        Some(p01.as_str()),
        "changed in the source"
    );
    assert_eq!(
        target_manager(&world, "p03").await.as_deref(),
        Some(p00.as_str()),
        "removed in the target"
    );
    assert_eq!(
        target_manager(&world, "p04").await,
        None,
        "removed in the source"
    );
    {
        let store = SqliteStore::open(&state).expect("store");
        assert_eq!(store.managed_users("heal").await.unwrap().len(), 5);
        assert!(store.escrows("heal").await.unwrap().is_empty());
        let status = store.status("heal").await.unwrap().expect("status");
        assert_eq!(
            status["countSuccessiveCompleteFailures"],
            json!(0),
            "{status}"
        );
    }
    // And it stays right: the next cycle changes nothing.
    run_ok(&file, &state).await;
    assert_eq!(
        target_manager(&world, "p02").await.as_deref(),
        Some(p01.as_str())
    );
    assert_eq!(
        target_manager(&world, "p03").await.as_deref(),
        Some(p00.as_str())
    );
    assert_eq!(target_manager(&world, "p04").await, None);
}

/// Failure 3: changes made while the target has inbound sync off arrive once it is on again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_inbound_sync_was_off_arrive_when_it_is_on_again() {
    let world = two_tenants(people(3)).await;
    let file = world.pair_file("heal", CONTOSO, FABRIKAM, PLAIN_MAPPINGS);
    let state = world.dir.path().join("run.db");
    run_ok(&file, &state).await;
    let policy =
        format!("policies/crossTenantAccessPolicy/partners/{CONTOSO}/identitySynchronization");
    world
        .call(
            FABRIKAM,
            reqwest::Method::PATCH,
            &policy,
            Some(json!({"userSyncInbound": {"isSyncAllowed": false}})),
        )
        .await;
    let edited = world.source_id(CONTOSO, "p00@contoso.com").await;
    world
        .patch(CONTOSO, &edited, json!({"jobTitle": "Lead"}))
        .await;
    let deleted = world.source_id(CONTOSO, "p01@contoso.com").await;
    let p01 = world.b2b_user(FABRIKAM, "p01").await.expect("p01");
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{deleted}"),
            None,
        )
        .await;
    run_ok(&file, &state).await; // blocked: writes nothing
    assert!(!world.target_user_by_id(FABRIKAM, &p01.id).await.unwrap().1);
    world
        .call(
            FABRIKAM,
            reqwest::Method::PATCH,
            &policy,
            Some(json!({"userSyncInbound": {"isSyncAllowed": true}})),
        )
        .await;
    run_ok(&file, &state).await;
    let p00 = world.b2b_user(FABRIKAM, "p00").await.expect("p00");
    let p00 = world
        .admin(FABRIKAM)
        .get_user(&p00.id, &["jobTitle"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p00.job_title.as_deref(), Some("Lead"), "the edit arrived");
    assert!(
        world.target_user_by_id(FABRIKAM, &p01.id).await.unwrap().1,
        "the delete arrived"
    );
}

/// Which cycle of a kill trial the kill lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// The first cycle: every user created.
    Initial,
    /// After a clean initial cycle: a create (late enters scope), two edits, a delete.
    Incremental,
}

/// The kill scenario: `n` people in scope plus `late`, who enters scope in the incremental
/// phase; `p00` and `p01` are edited and `p{n-1}` deleted then.
struct KillScenario {
    people: usize,
}

impl KillScenario {
    fn aliases(&self) -> Vec<String> {
        (0..self.people)
            .map(|i| format!("p{i:02}"))
            .chain(["late".to_owned()])
            .collect()
    }

    fn deleted(&self) -> String {
        format!("p{:02}", self.people - 1)
    }

    async fn world(&self) -> (World, PathBuf, PathBuf) {
        let mut users = people(self.people);
        for u in &mut users {
            u["department"] = json!("Sales");
        }
        users.push(user(
            "late",
            "contoso.com",
            json!({"jobTitle": "Rep", "department": "Hold"}),
        ));
        let world = two_tenants(users).await;
        let mappings = PLAIN_MAPPINGS.replace(
            "  scope: { mode: all }\n",
            "  scope:
    mode: all
    filters:
      - title: not held
        clauses:
          - { attribute: department, operator: EQUALS, value: Sales }
",
        );
        let file = world.pair_file("kill", CONTOSO, FABRIKAM, &mappings);
        let state = world.dir.path().join("run.db");
        (world, file, state)
    }

    /// The source changes the incremental phase carries.
    async fn change_source(&self, world: &World, source_ids: &BTreeMap<String, String>) {
        world
            .patch(CONTOSO, &source_ids["late"], json!({"department": "Sales"}))
            .await;
        for alias in ["p00", "p01"] {
            world
                .patch(CONTOSO, &source_ids[alias], json!({"jobTitle": "Lead"}))
                .await;
        }
        world
            .call(
                CONTOSO,
                reqwest::Method::DELETE,
                &format!("users/{}", source_ids[&self.deleted()]),
                None,
            )
            .await;
    }

    /// What target and store must hold after `phase` (and its restart).
    fn expected(&self, phase: Phase) -> (Vec<(String, String)>, Vec<String>) {
        match phase {
            Phase::Initial => (
                (0..self.people)
                    .map(|i| (format!("p{i:02}"), "Rep".to_owned()))
                    .collect(),
                Vec::new(),
            ),
            Phase::Incremental => {
                let deleted = self.deleted();
                let live = self
                    .aliases()
                    .into_iter()
                    .filter(|a| *a != deleted)
                    .map(|a| {
                        let title = if a == "p00" || a == "p01" {
                            "Lead"
                        } else {
                            "Rep"
                        };
                        (a, title.to_owned())
                    })
                    .collect();
                (live, vec![deleted])
            }
        }
    }

    /// How many times each step boundary is reached in each phase, counted by running the
    /// scenario once with `CTSYNC_KILL_AT=count` (the binary logs every boundary it reaches).
    async fn boundaries(&self) -> BTreeMap<(Phase, &'static str), usize> {
        let (world, file, state) = self.world().await;
        let count = |stderr: &str, phase: Phase, out: &mut BTreeMap<_, usize>| {
            for step in Step::ALL {
                let quoted = format!("\"{}\"", step.as_str());
                let n = stderr
                    .lines()
                    .filter(|l| l.contains("killPointReached") && l.contains(&quoted))
                    .count();
                out.insert((phase, step.as_str()), n);
            }
        };
        let mut out = BTreeMap::new();
        let (ok, stderr) = run_once(&file, &state, Some("count".into())).await;
        assert!(ok, "counting run failed:\n{stderr}");
        count(&stderr, Phase::Initial, &mut out);
        let source_ids = ids(&world, &self.aliases()).await;
        self.change_source(&world, &source_ids).await;
        let (ok, stderr) = run_once(&file, &state, Some("count".into())).await;
        assert!(ok, "counting run failed:\n{stderr}");
        count(&stderr, Phase::Incremental, &mut out);
        out
    }

    /// One trial: the binary is killed at the `nth` time `step` is reached in `phase`, then
    /// restarted; target (through Graph) and store must then be exactly right. Returns whether
    /// the kill happened, and the violations.
    async fn trial(&self, phase: Phase, step: Step, nth: usize) -> (bool, Vec<String>) {
        let (world, file, state) = self.world().await;
        let source_ids = ids(&world, &self.aliases()).await;
        let point = format!("{}:{nth}", step.as_str());
        if phase == Phase::Incremental {
            run_ok(&file, &state).await;
            self.change_source(&world, &source_ids).await;
        }
        let (ok, stderr) = run_once(&file, &state, Some(point.clone())).await;
        // Killed at the point, not any other failed exit (1: a pair failed, 3: staged deletes).
        let killed = !ok && stderr.contains("CTSYNC_KILL_AT reached");
        run_ok(&file, &state).await;
        let (live, gone) = self.expected(phase);
        let problems = violations(&world, "kill", &state, &live, &gone, &source_ids)
            .await
            .into_iter()
            .map(|p| format!("{phase:?} {point}: {p}"))
            .collect();
        (killed, problems)
    }
}

/// `count` boundaries sampled down to at most `limit`: always the first and the last, the rest
/// evenly between.
fn sample(count: usize, limit: usize) -> Vec<usize> {
    if count <= limit {
        return (1..=count).collect();
    }
    if limit <= 1 {
        return vec![1];
    }
    let mut picked: Vec<usize> = (0..limit)
        .map(|i| 1 + i * (count - 1) / (limit - 1))
        .collect();
    picked.dedup();
    picked
}

/// The deterministic kill points: each trial kills the binary at one boundary that the cycle
/// really reaches (the boundaries are counted first, `CTSYNC_KILL_AT=count`), restarts it and
/// checks target and store exactly. A trial whose kill did not happen fails the test.
/// `CTSYNC_KILL_TRIALS` = most boundaries tried per (step, phase) (default 2; `all` = every
/// one); `CTSYNC_KILL_PEOPLE` = users in the scenario (default 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_step_boundary_a_restart_converges_exactly() {
    let limit = match std::env::var("CTSYNC_KILL_TRIALS").ok().as_deref() {
        Some("all") => usize::MAX,
        Some(n) => n.parse().expect("CTSYNC_KILL_TRIALS: a number or `all`"),
        None => 2,
    };
    let people: usize = std::env::var("CTSYNC_KILL_PEOPLE")
        .ok()
        .map(|v| v.parse().expect("CTSYNC_KILL_PEOPLE: a number"))
        .unwrap_or(5);
    assert!(
        people >= 3,
        "the scenario edits two users and deletes a third"
    );
    let scenario = KillScenario { people };
    let boundaries = scenario.boundaries().await;
    let mut trials = 0;
    let mut kills = BTreeMap::<&str, usize>::new();
    let mut not_killed = Vec::new();
    let mut all = Vec::new();
    for phase in [Phase::Initial, Phase::Incremental] {
        for step in Step::ALL {
            let count = boundaries[&(phase, step.as_str())];
            assert!(count > 0, "{phase:?}: {} is never reached", step.as_str());
            for nth in sample(count, limit) {
                let (killed, problems) = scenario.trial(phase, step, nth).await;
                trials += 1;
                if killed {
                    *kills.entry(step.as_str()).or_default() += 1;
                } else {
                    not_killed.push(format!("{phase:?} {}:{nth}", step.as_str()));
                }
                all.extend(problems);
            }
        }
    }
    let total: usize = kills.values().sum();
    eprintln!(
        "kill trials: {trials} trials, {total} kills {kills:?}, {} not killed, {} violations; \
         boundaries per (phase, step): {boundaries:?}",
        not_killed.len(),
        all.len()
    );
    assert!(
        not_killed.is_empty(),
        "trials whose kill never happened: {not_killed:?}"
    );
    assert!(all.is_empty(), "violations:\n{}", all.join("\n"));
}

#[test]
fn kill_samples_keep_the_first_and_last_boundary() {
    assert_eq!(sample(3, 5), vec![1, 2, 3]);
    assert_eq!(sample(10, 2), vec![1, 10]);
    assert_eq!(sample(10, 4), vec![1, 4, 7, 10]);
    assert_eq!(sample(7, 1), vec![1]);
}

/// Failure 7: a token endpoint that echoes the posted form in `error_description` must not get
/// the client secret into the log, the job status or the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_echoing_the_form_never_gets_the_secret_persisted_or_logged() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let echo = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                let mut read = 0;
                // Headers and a small form body arrive in a few reads.
                for _ in 0..4 {
                    match tokio::time::timeout(
                        std::time::Duration::from_millis(200),
                        socket.read(&mut buffer[read..]),
                    )
                    .await
                    {
                        Ok(Ok(n)) if n > 0 => read += n,
                        _ => break,
                    }
                }
                let request = String::from_utf8_lossy(&buffer[..read]).into_owned();
                let body = request.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
                let answer = json!({"error": "invalid_request",
                    "error_description": format!("AADSTS900144: malformed request: {body}")})
                .to_string();
                let response = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    let world = two_tenants(people(1)).await;
    let file = world.pair_file("leak", CONTOSO, FABRIKAM, PLAIN_MAPPINGS);
    let text = std::fs::read_to_string(&file).expect("pair file").replace(
        &format!("authority: {}", world.emulator.base_url()),
        &format!("authority: {echo}"),
    );
    std::fs::write(&file, text).expect("pair file");
    let state = world.dir.path().join("run.db");
    let (ok, stderr) = run_once(&file, &state, None).await;
    assert!(!ok, "the token request fails");
    assert!(stderr.contains("client_secret=[REDACTED]"), "{stderr}");
    assert!(!stderr.contains(SECRET), "secret in the log:\n{stderr}");
    let store = SqliteStore::open(&state).expect("store");
    let status = store.status("leak").await.unwrap().expect("status saved");
    assert!(!status.to_string().contains(SECRET), "{status}");
    drop(store);
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", state.display())) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(SECRET), "secret in the store file{suffix}");
        }
    }
}

/// Failure 5: a throttling burst that outlasts the client's retries is not the users' fault:
/// nothing is escrowed, the cycle keeps its watermark, and the very next cycle finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_burst_is_retried_by_the_next_cycle_not_escrowed_for_40_minutes() {
    let world = two_tenants(people(4)).await;
    let file = world.pair_file("burst", CONTOSO, FABRIKAM, PLAIN_MAPPINGS);
    let rt = world.runtime(&file, "burst");
    let rule = json!({"tenant": FABRIKAM, "method": "PATCH", "pathContains": "/users/",
        "count": 1000, "status": 429, "code": "TooManyRequests", "retryAfter": 0.01});
    reqwest::Client::new()
        .post(format!(
            "{}/_emulator/faults/fail-next",
            world.emulator.base_url()
        ))
        .json(&rule)
        .send()
        .await
        .expect("emulator control");
    let throttled = world.cycle(&rt).await;
    assert_eq!(throttled.deferred, 4, "{throttled:?}");
    assert_eq!(throttled.failed, 0, "throttling is not an escrow failure");
    assert!(!throttled.watermark_saved);
    assert!(world.store.escrows("burst").await.unwrap().is_empty());
    world.clear_faults().await;

    let next = world.cycle(&rt).await;
    assert_eq!((next.failed, next.deferred), (0, 0), "{next:?}");
    let users = world.b2b_users(FABRIKAM).await;
    assert_eq!(users.len(), 4);
    assert!(
        users.iter().all(|u| anchor_of(u).is_some()),
        "every user anchored"
    );
    assert!(
        world
            .store
            .create_intents("burst")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(world.store.managed_users("burst").await.unwrap().len(), 4);
}

async fn logged_reasons(state: &Path, pair: &str) -> Vec<(String, String)> {
    let store = SqliteStore::open(state).expect("store");
    store
        .provisioning_log(pair, &ctsync::store::LogQuery::default())
        .await
        .expect("log")
        .into_iter()
        .map(|e| {
            (
                e.source_identity.display_name.clone(),
                e.target_system.details["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// The full reconcile runs every `fullSyncInterval` (shown in status): it reads the target in
/// full and reports a hand edit as drift (Entra leaves it); with `driftCorrection` it is
/// corrected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_reconcile_reports_drift_and_drift_correction_corrects_it() {
    let world = two_tenants(people(2)).await;
    let spec = format!("{PLAIN_MAPPINGS}  fullSyncInterval: 2s\n");
    let file = world.pair_file("drift", CONTOSO, FABRIKAM, &spec);
    let state = world.dir.path().join("run.db");
    run_ok(&file, &state).await;
    let p00 = world.b2b_user(FABRIKAM, "p00").await.expect("p00");
    world
        .patch(FABRIKAM, &p00.id, json!({"jobTitle": "Edited by hand"}))
        .await;
    // Before the full reconcile is due: incremental, the target is not read.
    run_ok(&file, &state).await;
    assert!(
        !logged_reasons(&state, "drift")
            .await
            .iter()
            .any(|(_, r)| r == "DriftDetected")
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    run_ok(&file, &state).await;
    let reasons = logged_reasons(&state, "drift").await;
    assert!(
        reasons
            .iter()
            .any(|(who, r)| r == "DriftDetected" && who.starts_with("p00")),
        "{reasons:?}"
    );
    let title = |world: &World, id: String| {
        let admin = world.admin(FABRIKAM);
        async move {
            admin
                .get_user(&id, &["jobTitle"])
                .await
                .unwrap()
                .unwrap()
                .job_title
        }
    };
    assert_eq!(
        title(&world, p00.id.clone()).await.as_deref(),
        Some("Edited by hand"),
        "reported, not corrected"
    );
    let status = SqliteStore::open(&state)
        .expect("store")
        .status("drift")
        .await
        .unwrap()
        .expect("status");
    assert_eq!(status["fullSync"]["intervalSeconds"], json!(2), "{status}");
    assert!(status["fullSync"]["next"].is_string());

    let spec = format!("{PLAIN_MAPPINGS}  fullSyncInterval: 2s\n  driftCorrection: true\n");
    world.pair_file("drift", CONTOSO, FABRIKAM, &spec);
    // Corrected by the next full reconcile.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    run_ok(&file, &state).await;
    assert_eq!(title(&world, p00.id.clone()).await.as_deref(), Some("Rep"));
}

/// `SelectUniqueValue` in on-demand provisioning is checked against the target like a
/// cycle's: the value another target user holds is passed over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_unique_value_in_on_demand_provisioning_skips_values_the_target_holds() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("adele", "contoso.com", json!({"jobTitle": "Rep"}))],
        )],
    );
    seed["tenants"][1]["users"] = json!([user("adele", "fabrikam.com", json!({}))]);
    let world = World::start(to_seed(seed)).await;
    let spec = "  scope: { mode: all }
  mappings:
    - { target: displayName, source: displayName }
    - { target: mailNickname, expression: 'SelectUniqueValue([mailNickname], Append([mailNickname], \"2\"), Append([mailNickname], \"3\"))' }
    - { target: userType, constant: Member, apply: onCreate }
";
    let file = world.pair_file("unique", CONTOSO, FABRIKAM, spec);
    let rt = world.runtime(&file, "unique");
    let store = world.store.as_ref();
    let preview = ctsync::engine::provision_on_demand(&rt, store, "adele@contoso.com", true)
        .await
        .expect("dry run");
    let row = preview
        .attributes
        .iter()
        .find(|r| r.target == "mailNickname")
        .expect("mailNickname row");
    assert_eq!(row.new_target_value, Some(json!("adele2")), "{row:?}");
    let applied = ctsync::engine::provision_on_demand(&rt, store, "adele@contoso.com", false)
        .await
        .expect("provisioned");
    assert_eq!(applied.succeeded, Some(true), "{applied:?}");
    let synced = world.b2b_user(FABRIKAM, "adele").await.expect("synced");
    let synced = world
        .admin(FABRIKAM)
        .get_user(&synced.id, &["mailNickname"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(synced.mail_nickname.as_deref(), Some("adele2"));
}

/// `SelectUniqueValue` is checked against the target: a value another target user holds is
/// passed over, and the user's own value stays its own on the next full cycle (no flapping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_unique_value_skips_values_the_target_already_holds() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("adele", "contoso.com", json!({"jobTitle": "Rep"}))],
        )],
    );
    seed["tenants"][1]["users"] = json!([user("adele", "fabrikam.com", json!({}))]);
    let world = World::start(to_seed(seed)).await;
    let spec = "  scope: { mode: all }
  mappings:
    - { target: displayName, source: displayName }
    - { target: mailNickname, expression: 'SelectUniqueValue([mailNickname], Append([mailNickname], \"2\"), Append([mailNickname], \"3\"))' }
    - { target: userType, constant: Member, apply: onCreate }
";
    let file = world.pair_file("unique", CONTOSO, FABRIKAM, spec);
    let rt = world.runtime(&file, "unique");
    let first = world.cycle(&rt).await;
    assert_eq!(first.failed, 0, "{first:?}");
    let synced = world.b2b_user(FABRIKAM, "adele").await.expect("synced");
    let synced = world
        .admin(FABRIKAM)
        .get_user(&synced.id, &["mailNickname"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(synced.mail_nickname.as_deref(), Some("adele2"));
    let full = CycleOptions {
        full: true,
        ..CycleOptions::default()
    };
    let again = ctsync::engine::compute_plan(&rt, world.store.as_ref(), &full)
        .await
        .expect("plan");
    assert!(again.plan.is_noop(), "{}", again.plan.to_text());
}
