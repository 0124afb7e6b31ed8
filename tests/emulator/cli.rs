use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn cli_logs_its_address_serves_and_saves_state_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/config/emulator/seed.yaml");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            seed,
            "--state",
        ])
        .arg(&state)
        .args(["--time-scale", "60", "--no-throttle"])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut base = None;
    while let Some(line) = lines.next_line().await.expect("read log") {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(url) = v["base_url"].as_str() {
            base = Some(url.to_string());
            break;
        }
    }
    let base = base.expect("a JSON log line with the bound address");
    let health: Value = reqwest::get(format!("{base}/_emulator/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let clock: Value = reqwest::get(format!("{base}/_emulator/clock"))
        .await
        .expect("clock")
        .json()
        .await
        .expect("json");
    assert_eq!(clock["timeScale"], 60.0);
    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().await.expect("exits");
    assert!(status.success(), "{status}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state written"))
            .expect("state json");
    assert!(saved["tenants"]["7e2c4b1a-2222-4d6e-9f0a-1b2c3d4e5f02"]["users"].is_object());
}

#[tokio::test]
async fn cli_rejects_a_bad_seed_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("bad.yaml");
    std::fs::write(&seed, "tenants: [{id: x}]").expect("write");
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .stderr(Stdio::null())
        .status()
        .await
        .expect("binary runs");
    assert_eq!(status.code(), Some(2));
}

/// `config/emulator/README.md`'s walkthrough: the shipped pair validates as it is, and a
/// `run --once` with it (only the port changed, to the test emulator's) creates Adele in
/// Fabrikam and leaves Megan (a nested-group member) out.
#[tokio::test]
async fn the_seed_walkthrough_pair_validates_and_runs_once() {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/config/emulator");
    let pair = format!("{folder}/pair.yaml");
    let validate = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
        .args(["validate", "--config", &pair])
        .output()
        .await
        .expect("validate runs");
    let stdout = String::from_utf8_lossy(&validate.stdout);
    assert!(validate.status.success(), "{stdout}");
    assert!(stdout.contains("ok: 1 pair(s)"), "{stdout}");

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--seed"])
        .arg(format!("{folder}/seed.yaml"))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("emulator starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut base = None;
    while let Some(line) = lines.next_line().await.expect("read log") {
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let Some(url) = v["base_url"].as_str()
        {
            base = Some(url.to_string());
            break;
        }
    }
    let base = base.expect("a JSON log line with the bound address");
    // Keep reading the emulator's log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(&pair).expect("pair.yaml");
    assert_eq!(text.matches("http://127.0.0.1:8090").count(), 2, "{text}");
    std::fs::write(
        dir.path().join("pair.yaml"),
        text.replace("http://127.0.0.1:8090", &base),
    )
    .expect("write pair");
    std::fs::copy(
        format!("{folder}/emulator-secret.txt"),
        dir.path().join("emulator-secret.txt"),
    )
    .expect("copy secret");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
        .args(["run", "--once", "--config"])
        .arg(dir.path().join("pair.yaml"))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .output()
        .await
        .expect("run --once runs");
    let log = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{log}");

    let export: Value = reqwest::get(format!("{base}/_emulator/export"))
        .await
        .expect("export")
        .json()
        .await
        .expect("json");
    let fabrikam = &export["tenants"]["7e2c4b1a-2222-4d6e-9f0a-1b2c3d4e5f02"]["users"];
    let upns: Vec<&str> = fabrikam
        .as_object()
        .expect("users by id")
        .values()
        .filter_map(|u| u["userPrincipalName"].as_str())
        .collect();
    assert!(
        upns.contains(&"adele_contoso.com#EXT#@fabrikam.onmicrosoft.com"),
        "{upns:?}"
    );
    assert!(!upns.iter().any(|u| u.starts_with("megan")), "{upns:?}");

    // The walkthrough's step 3: the out-of-scope verdict says which assignment and why.
    let why = |upn: &'static str| {
        let dir = dir.path().to_owned();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
                .args([
                    "provision",
                    "--pair",
                    "contoso-to-fabrikam",
                    "--dry-run",
                    "--user",
                    upn,
                ])
                .arg("--config")
                .arg(dir.join("pair.yaml"))
                .arg("--state")
                .arg(dir.join("state.db"))
                .output()
                .await
                .expect("provision runs");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
    };
    let megan = why("megan@contoso.com").await;
    assert!(megan.contains("2. scope: OutOfScope"), "{megan}");
    assert!(
        megan.contains("why: member of a nested group inside assigned group")
            && megan.contains("only direct members of an assigned group count"),
        "{megan}"
    );
    let dana = why("disabled@contoso.com").await;
    assert!(dana.contains("why: not assigned"), "{dana}");
    assert!(dana.contains("why: accountEnabled is false"), "{dana}");
}
