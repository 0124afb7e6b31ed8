//! What an administrator reads: the JSON log lines of the real `ctsync run --once` binary against
//! the Graph emulator. Every provisioning action names the user (source UPN, display name,
//! target `#EXT#` UPN), calls the action what it is (a disable is `disable`, a restore
//! `restore`), and JSON fields are JSON values.

// The sync tests' world; this binary uses only part of it.
#[allow(dead_code)]
#[path = "../sync/world.rs"]
mod world;

use std::path::Path;

use serde_json::{Value, json};
use world::*;

const PAIR: &str = "contoso-to-fabrikam";
const SCOPE: &str = "  scope:
    mode: all
    filters:
      - title: Sales only
        clauses:
          - { attribute: department, operator: EQUALS, value: Sales }
  deletionGuard: { enabled: true, threshold: 2 }
";

/// One `run --once` with JSON logs; its log lines, parsed (every line must be JSON).
async fn run_once(config: &Path, state: &Path) -> Vec<Value> {
    run_once_status(config, state, 0).await
}

/// [`run_once`], expecting exit status `code` (3: deletes were staged).
async fn run_once_status(config: &Path, state: &Path, code: i32) -> Vec<Value> {
    run_once_with(config, state, code, &[]).await
}

/// [`run_once_status`] with more arguments for `run`.
async fn run_once_with(
    config: &Path,
    state: &Path,
    code: i32,
    extra: &'static [&'static str],
) -> Vec<Value> {
    let mut command = World::run_command(config, state);
    command
        .args(["--once", "--log-format", "json"])
        .args(extra)
        .env("RUST_LOG", "info");
    let out = World::output(command).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    stderr
        .lines()
        .filter(|l| !l.starts_with("ctsync: the deletion guard staged"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn actions(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["event"] == "provisioningAction")
        .collect()
}

/// The one action line about `alias`, with `action`; its names are all there.
fn named<'a>(lines: &'a [Value], action: &str, alias: &str) -> &'a Value {
    let found: Vec<&Value> = actions(lines)
        .into_iter()
        .filter(|l| l["action"] == action && l["display_name"] == alias)
        .collect();
    assert_eq!(found.len(), 1, "one {action} line for {alias}: {lines:#?}");
    let line = found[0];
    assert_eq!(
        line["user_principal_name"],
        json!(format!("{alias}@contoso.com")),
        "{line}"
    );
    let target = line["target_user_principal_name"].as_str().unwrap_or("");
    assert!(
        target.starts_with(&format!("{alias}_contoso.com#EXT#@")),
        "target UPN of {alias}: {line}"
    );
    line
}

#[tokio::test]
async fn every_action_line_names_the_user_and_json_fields_are_json() {
    let sales = json!({"department": "Sales"});
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![
                user("adele", "contoso.com", sales.clone()),
                user("lynne", "contoso.com", sales.clone()),
                user("megan", "contoso.com", sales.clone()),
                user("grady", "contoso.com", sales.clone()),
                user("isaiah", "contoso.com", sales.clone()),
                user("joni", "contoso.com", sales.clone()),
            ],
        )],
    ))
    .await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let state = world.dir.path().join("run-state.db");

    // 1. Initial cycle: creates, each with the names and its attributes.
    let lines = run_once(&file, &state).await;
    let create = named(&lines, "create", "adele");
    assert!(create["modified_properties"].is_array(), "nested: {create}");
    assert_eq!(
        create["attribute_count"],
        json!(create["modified_properties"].as_array().map(Vec::len))
    );
    assert!(create.get("module").is_some() && create.get("target").is_none());
    let summary = lines
        .iter()
        .find(|l| l["event"] == "cycleSummary")
        .expect("summary");
    assert_eq!(summary["counts"]["create"], json!(6), "{summary}");

    // 2. Update, disable, manager change, and a source delete (the user is gone from the
    //    source: its names come from the target).
    let id = |upn: &'static str| world.source_id(CONTOSO, upn);
    let (adele, megan, grady, lynne) = (
        id("adele@contoso.com").await,
        id("megan@contoso.com").await,
        id("grady@contoso.com").await,
        id("lynne@contoso.com").await,
    );
    world
        .patch(CONTOSO, &adele, json!({"jobTitle": "Director"}))
        .await;
    world
        .patch(CONTOSO, &megan, json!({"accountEnabled": false}))
        .await;
    world
        .call(
            CONTOSO,
            reqwest::Method::PUT,
            &format!("users/{grady}/manager/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{adele}")})),
        )
        .await;
    world
        .call(
            CONTOSO,
            reqwest::Method::DELETE,
            &format!("users/{lynne}"),
            None,
        )
        .await;
    let lines = run_once(&file, &state).await;
    let update = named(&lines, "update", "adele");
    assert_eq!(
        update["modified_properties"],
        json!([{"displayName": "jobTitle", "oldValue": null, "newValue": "Director"}])
    );
    let disable = named(&lines, "disable", "megan");
    assert!(
        disable["modified_properties"]
            .as_array()
            .expect("nested")
            .iter()
            .any(|p| p["displayName"] == "accountEnabled" && p["newValue"] == "false"),
        "{disable}"
    );
    named(&lines, "delete", "lynne");
    let manager = actions(&lines)
        .into_iter()
        .find(|l| l["plan_action"] == "managerUpdate")
        .expect("manager line");
    assert_eq!(manager["display_name"], "grady", "{manager}");
    assert_eq!(manager["manager"], "adele <adele@contoso.com>", "{manager}");
    assert_eq!(
        manager["modified_properties"][0]["newValue"],
        "adele <adele@contoso.com>"
    );
    let summary = lines
        .iter()
        .find(|l| l["event"] == "cycleSummary")
        .expect("summary");
    assert_eq!(summary["counts"]["disable"], json!(1), "{summary}");
    assert_eq!(summary["counts"]["update"], json!(1), "{summary}");

    // 3. Restore: back in the source, the soft-deleted target user comes back.
    world
        .call(
            CONTOSO,
            reqwest::Method::POST,
            &format!("directory/deletedItems/{lynne}/restore"),
            None,
        )
        .await;
    let lines = run_once(&file, &state).await;
    let restore = named(&lines, "restore", "lynne");
    assert!(restore["modified_properties"].is_array(), "{restore}");

    // 4. Two removals reach the guard's threshold: staged, each naming its user.
    for upn in ["isaiah@contoso.com", "joni@contoso.com"] {
        let id = world.source_id(CONTOSO, upn).await;
        world
            .call(
                CONTOSO,
                reqwest::Method::DELETE,
                &format!("users/{id}"),
                None,
            )
            .await;
    }
    let lines = run_once_status(&file, &state, 3).await;
    let staged = named(&lines, "stagedDelete", "isaiah");
    assert_eq!(staged["intended_action"], "softDelete", "{staged}");
    named(&lines, "stagedDelete", "joni");
}

/// `run --once` exits 3 when the guard stages deletes; `run --once --approve-deletes` then lets
/// exactly that set through (and logs each approval by name). Deletes its own cycle stages are
/// not approved by it: it exits 3 again.
#[tokio::test]
async fn a_one_shot_run_approves_the_staged_deletes_and_only_those() {
    let sales = json!({"department": "Sales"});
    let aliases = ["adele", "bob", "carol", "dan", "erin"];
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            aliases
                .iter()
                .map(|a| user(a, "contoso.com", sales.clone()))
                .collect(),
        )],
    ))
    .await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let state = world.dir.path().join("approve-state.db");
    run_once(&file, &state).await;
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 5);
    let delete_source = |upn: &'static str| {
        let world = &world;
        async move {
            let id = world.source_id(CONTOSO, upn).await;
            world
                .call(
                    CONTOSO,
                    reqwest::Method::DELETE,
                    &format!("users/{id}"),
                    None,
                )
                .await;
        }
    };
    delete_source("bob@contoso.com").await;
    delete_source("carol@contoso.com").await;
    let lines = run_once_status(&file, &state, 3).await;
    named(&lines, "stagedDelete", "bob");
    assert_eq!(
        world.b2b_users(FABRIKAM).await.len(),
        5,
        "nothing deleted yet"
    );

    // Approved in a one-shot run: both go, each approval named; exit 0.
    let lines = run_once_with(&file, &state, 0, &["--approve-deletes"]).await;
    let approved: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "staged removal approved")
        .collect();
    assert_eq!(approved.len(), 2, "{lines:#?}");
    assert!(
        approved
            .iter()
            .any(|l| l["user_principal_name"] == "bob@contoso.com"),
        "{approved:?}"
    );
    named(&lines, "delete", "bob");
    named(&lines, "delete", "carol");
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 3);

    // Nothing staged before this run: its own staged deletes wait for a person (exit 3).
    delete_source("dan@contoso.com").await;
    delete_source("erin@contoso.com").await;
    let lines = run_once_with(&file, &state, 3, &["--approve-deletes"]).await;
    named(&lines, "stagedDelete", "dan");
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 3);
}

/// The emulator binary on a fresh loopback port, with its directory in `state` (loaded when
/// the file exists, else seeded from `seed`); returns it with its base URL.
async fn emulator_binary(seed: &Path, state: &Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("ctsync"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--seed"])
        .arg(seed)
        .arg("--state")
        .arg(state)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("emulator starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Some(line) = lines.next_line().await.expect("emulator log") {
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let Some(url) = v["base_url"].as_str()
        {
            let base = url.to_owned();
            // Keep draining its log so it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, base);
        }
    }
    panic!("the emulator never logged its address");
}

/// Stops the emulator binary with SIGTERM, which saves its state.
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(killed.success());
    assert!(child.wait().await.expect("exits").success());
}

/// The Graph endpoint moves (the emulator comes back on another port, so `graph.baseUrl`
/// changes): the stored delta link points at the old one, which the client refuses to follow.
/// The next run reads in full instead and says why; its new watermark works incrementally.
#[tokio::test]
async fn a_watermark_from_another_endpoint_starts_a_full_cycle() {
    let seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("adele", "contoso.com", json!({"department": "Sales"}))],
        )],
    );
    // The in-process emulator is not used; the world gives the pair file and its secret.
    let world = World::start(to_seed(seed.clone())).await;
    let seed_file = world.dir.path().join("seed.json");
    std::fs::write(&seed_file, seed.to_string()).expect("seed");
    let directory = world.dir.path().join("directory.json");
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let template = std::fs::read_to_string(&file).expect("pair file");
    let point_at = |base: &str| {
        std::fs::write(&file, template.replace(&world.emulator.base_url(), base))
            .expect("pair file");
    };
    let state = world.dir.path().join("moved-state.db");
    let cycle_kind = |lines: &[Value]| {
        lines
            .iter()
            .find(|l| l["event"] == "cycleSummary")
            .map(|l| l["kind"].clone())
            .unwrap_or_else(|| panic!("no cycle summary: {lines:#?}"))
    };

    let (emulator, old_base) = emulator_binary(&seed_file, &directory).await;
    point_at(&old_base);
    assert_eq!(cycle_kind(&run_once(&file, &state).await), "Initial");
    stop(emulator).await;

    let (_emulator, new_base) = emulator_binary(&seed_file, &directory).await;
    assert_ne!(old_base, new_base);
    point_at(&new_base);
    let lines = run_once(&file, &state).await;
    let why = lines
        .iter()
        .find(|l| l["event"] == "watermarkFromAnotherEndpoint")
        .unwrap_or_else(|| panic!("no line says why: {lines:#?}"));
    assert_eq!(why["stored_origin"], json!(old_base), "{why}");
    assert_eq!(why["graph_origin"], json!(new_base), "{why}");
    assert_eq!(cycle_kind(&lines), "Initial", "{lines:#?}");
    let summary = lines
        .iter()
        .find(|l| l["event"] == "cycleSummary")
        .expect("summary");
    assert_eq!(
        summary["counts"]["create"],
        json!(0),
        "linked already: {summary}"
    );

    let lines = run_once(&file, &state).await;
    assert_eq!(cycle_kind(&lines), "Incremental", "{lines:#?}");
    assert!(
        !lines
            .iter()
            .any(|l| l["event"] == "watermarkFromAnotherEndpoint"),
        "{lines:#?}"
    );
}

/// Long work shows progress: a cycle logs its start, then how far the source read and the apply
/// are every N users (`CTSYNC_PROGRESS_EVERY_USERS`, here 2); `plan` writes the read's progress
/// on stderr too.
#[tokio::test]
async fn a_cycle_and_a_plan_log_their_progress() {
    let sales = json!({"department": "Sales"});
    let users = ["adele", "bob", "carol", "dan", "erin"]
        .iter()
        .map(|a| user(a, "contoso.com", sales.clone()))
        .collect();
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, users)],
    ))
    .await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let state = world.dir.path().join("progress-state.db");
    let json_lines = |out: &std::process::Output| -> Vec<Value> {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    };
    let progress = |lines: &[Value], phase: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["event"] == "cycleProgress" && l["phase"] == phase)
            .cloned()
            .collect()
    };

    let mut command = World::command("plan", &file, &state);
    command
        .args(["--log-format", "json"])
        .env("CTSYNC_PROGRESS_EVERY_USERS", "2");
    let plan = World::output(command).await;
    assert!(plan.status.success(), "{plan:?}");
    let lines = json_lines(&plan);
    let read = progress(&lines, "read");
    assert!(!read.is_empty(), "plan shows no read progress: {lines:#?}");
    assert_eq!(
        read.last().map(|l| l["done"].clone()),
        Some(json!(5)),
        "{read:#?}"
    );
    assert_eq!(read[0]["pair"], PAIR);

    let mut command = World::run_command(&file, &state);
    command
        .args(["--once", "--log-format", "json"])
        .env("CTSYNC_PROGRESS_EVERY_USERS", "2");
    let run = World::output(command).await;
    assert!(run.status.success(), "{run:?}");
    let lines = json_lines(&run);
    let started = lines
        .iter()
        .position(|l| l["event"] == "cycleStarted")
        .unwrap_or_else(|| panic!("no start line: {lines:#?}"));
    assert_eq!(lines[started]["pair"], PAIR);
    let apply = progress(&lines, "apply");
    assert!(!apply.is_empty(), "no apply progress: {lines:#?}");
    let last = apply.last().expect("apply line");
    assert_eq!(
        (last["done"].clone(), last["total"].clone()),
        (json!(5), json!(5)),
        "{last}"
    );
    assert_eq!(last["message"], "apply: 5 of 5 users", "{last}");
    let first_progress = lines
        .iter()
        .position(|l| l["event"] == "cycleProgress")
        .expect("progress");
    assert!(started < first_progress, "the start comes first");
}

/// `provision --dry-run` writes nothing: no Graph write (its preflight does not register the
/// anchor extension, as a real run's would), no state file; and it still shows the create.
#[tokio::test]
async fn a_provisioning_dry_run_makes_no_write() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("adele", "contoso.com", json!({"department": "Sales"}))],
        )],
    );
    seed["tenants"][1]["applications"][0]["extensionProperties"] = json!([]);
    let world = World::start(to_seed(seed)).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let state = world.dir.path().join("dry-run-state.db");
    let writes_before = world.emulator.writes().len();
    let mut command = World::command("provision", &file, &state);
    command.args(["--pair", PAIR, "--user", "adele@contoso.com", "--dry-run"]);
    let out = World::output(command).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("action: create"), "{stdout}");
    let writes: Vec<String> = world
        .emulator
        .writes()
        .iter()
        .skip(writes_before)
        .map(|w| format!("{} {} {}", w.method, w.tenant, w.path))
        .collect();
    assert!(writes.is_empty(), "a dry run wrote to Graph: {writes:?}");
    assert!(!state.exists(), "a dry run created {}", state.display());
}

/// `ctsync plan` writes nothing: no state file appears, the directory is unchanged (the anchor
/// extension a first cycle would register stays unregistered), and the header says which kind
/// of cycle comes next.
#[tokio::test]
async fn plan_writes_nothing_and_says_which_cycle_comes_next() {
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![user("adele", "contoso.com", json!({"department": "Sales"}))],
        )],
    );
    seed["tenants"][1]["applications"][0]["extensionProperties"] = json!([]);
    let world = World::start(to_seed(seed)).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let state = world.dir.path().join("never-created.db");
    let before = serde_json::to_value(world.emulator.directory()).expect("directory");

    let plan = |extra: &'static [&'static str]| {
        let mut command = World::command("plan", &file, &state);
        command.args(extra);
        World::output(command)
    };
    let out = plan(&[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("next cycle: initial"), "{stdout}");
    assert!(stdout.contains("adele@contoso.com"), "{stdout}");
    assert!(stderr.contains("no state at"), "{stderr}");
    assert!(!state.exists(), "plan created {}", state.display());
    let after = serde_json::to_value(world.emulator.directory()).expect("directory");
    assert!(
        before == after,
        "plan changed the directory (the anchor extension was registered?)"
    );

    // With state: after a real cycle the next one is incremental, and --full says full.
    let mut command = World::run_command(&file, &state);
    command.arg("--once");
    let ran = World::output(command).await;
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let out = plan(&[]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("next cycle: incremental"),
        "{out:?}"
    );
    let out = plan(&["--full", "--format", "json"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(json[0]["cycle"], "full", "{json}");
}

/// `ctsync plan` says "full" when the periodic full reconcile is due (`fullSyncInterval` has
/// passed since the last full cycle), as the daemon will run it, not "incremental" (within
/// the interval it says "incremental": `plan_writes_nothing_and_says_which_cycle_comes_next`).
#[tokio::test]
async fn plan_says_full_when_the_full_reconcile_is_due() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, vec![user("adele", "contoso.com", json!({}))])],
    ))
    .await;
    let spec = "  scope: { mode: all }\n  fullSyncInterval: 2s\n";
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, spec);
    let state = world.dir.path().join("state.db");
    let run = |args: &'static [&'static str], plan: bool| {
        let mut command = if plan {
            World::command("plan", &file, &state)
        } else {
            World::run_command(&file, &state)
        };
        command.args(args);
        World::output(command)
    };
    let ran = run(&["--once"], false).await;
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );

    // Once the interval has passed (the status's fullSync.next is the cycle's start + 2 s):
    // the next cycle is the full reconcile, in text and in JSON.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let out = run(&[], true).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("next cycle: full (the full reconcile is due"),
        "{stdout}"
    );
    let out = run(&["--format", "json"], true).await;
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(json[0]["cycle"], "full", "{json}");
}

/// `provision --user` for someone the source does not have says so in words.
#[tokio::test]
async fn provision_of_an_unknown_user_says_it_was_not_found() {
    let world = World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, vec![user("adele", "contoso.com", json!({}))])],
    ))
    .await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, "  scope: { mode: all }\n");
    let state = world.dir.path().join("state.db");
    let mut command = World::command("provision", &file, &state);
    command.args(["--pair", PAIR, "--user", "nobody@contoso.com", "--dry-run"]);
    let out = World::output(command).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("user nobody@contoso.com was not found in the source tenant"),
        "{stderr}"
    );
    assert!(!stderr.contains("preflight failed"), "{stderr}");
}
