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
