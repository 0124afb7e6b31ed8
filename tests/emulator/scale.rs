//! The emulator at scale: generated tenants, JSON seeds, delta paging over a large tenant, the
//! latency knob, and the compact state file. Throughput itself is shown by
//! `cargo bench --bench emulator`, not asserted here.

use std::process::Stdio;

use ctsync::emulator::generate::Generate;
use ctsync::emulator::{EmulatorOptions, Seed, spawn};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{self, Env, SOURCE, TARGET};

async fn generated(users: usize, options: EmulatorOptions) -> Env {
    let mut seed = Seed::from_yaml(&common::seed_yaml()).expect("fixture seed parses");
    Generate {
        tenant: Some(SOURCE.to_string()),
        ..Generate::users(users)
    }
    .apply_to(&mut seed)
    .expect("generates");
    let handle = spawn(seed, options).await.expect("emulator starts");
    Env {
        handle,
        http: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn a_generated_tenant_serves_lookups_by_upn_and_pages_delta_to_the_end() {
    let env = generated(
        5_000,
        EmulatorOptions {
            throttling: false,
            delta_page_size: 999,
            ..EmulatorOptions::default()
        },
    )
    .await;
    let token = env.token(SOURCE).await;
    let (status, user) = env
        .get(
            &token,
            "/users/GEN0004999@contoso.com?$select=id,department,accountEnabled",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert!(user["department"].is_string());
    let (status, manager) = env
        .get(&token, "/users/gen0004999@contoso.com/manager")
        .await;
    assert_eq!(status, StatusCode::OK, "{manager}");
    // Listing pages by id: every user exactly once, with and without a filter.
    for (query, expected) in [("", 5_003), ("&$filter=accountEnabled eq true", 0)] {
        let mut next = format!("/users?$select=id,accountEnabled&$top=999{query}");
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let (status, page) = env.get(&token, &next).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for u in page["value"].as_array().expect("value") {
                assert!(
                    seen.insert(u["id"].as_str().expect("id").to_string()),
                    "duplicate {u}"
                );
            }
            match page["@odata.nextLink"].as_str() {
                Some(n) => next = n.to_string(),
                None => break,
            }
        }
        if expected > 0 {
            assert_eq!(seen.len(), expected);
        } else {
            assert!(
                seen.len() > 4_000 && seen.len() < 5_003,
                "{} enabled",
                seen.len()
            );
        }
    }
    // The full delta round returns every user exactly once.
    let mut next = "/users/delta?$select=id,userPrincipalName,jobTitle".to_string();
    let mut seen = std::collections::BTreeSet::new();
    let mut pages = 0;
    let delta_link = loop {
        let (status, page) = env.get(&token, &next).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for u in page["value"].as_array().expect("value") {
            assert!(
                seen.insert(u["id"].as_str().expect("id").to_string()),
                "duplicate {u}"
            );
        }
        if let Some(n) = page["@odata.nextLink"].as_str() {
            next = n.to_string();
        } else {
            break page["@odata.deltaLink"]
                .as_str()
                .expect("deltaLink")
                .to_string();
        }
    };
    assert_eq!(seen.len(), 5_000 + 3, "generated + seeded users");
    assert_eq!(pages, 6);
    // A later round reports only what changed.
    let (status, _) = env
        .patch(
            &token,
            "/users/gen0000007@contoso.com",
            json!({"jobTitle": "Boss"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = env.get(&token, &delta_link).await;
    assert_eq!(page["value"].as_array().map(Vec::len), Some(1), "{page}");
    env.handle.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn uniqueness_holds_in_a_generated_tenant_and_after_direct_edits() {
    let env = generated(
        2_000,
        EmulatorOptions {
            throttling: false,
            ..EmulatorOptions::default()
        },
    )
    .await;
    let token = env.token(SOURCE).await;
    let (status, body) = env
        .post(
            &token,
            "/users",
            common::new_user("GEN0001234@contoso.com", "Dup"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"][0]["code"], "ObjectConflict");
    // Tests may edit the directory directly; lookups follow.
    let id = env.handle.with_directory(|d| {
        let t = d.tenants.get_mut(SOURCE).expect("source");
        let id = t.find_user_id("gen0000001@contoso.com").expect("user");
        if let Some(u) = t.users.get_mut(&id) {
            u.insert("userPrincipalName".into(), json!("renamed@contoso.com"));
        }
        id
    });
    let (status, user) = env.get(&token, "/users/renamed@contoso.com").await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["id"], id.as_str());
    let (status, _) = env
        .post(
            &token,
            "/users",
            common::new_user("gen0000001@contoso.com", "Reuse"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    env.handle.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn latency_is_added_to_every_graph_request_and_can_be_changed() {
    let env = generated(
        10,
        EmulatorOptions {
            throttling: false,
            ..EmulatorOptions::default()
        },
    )
    .await;
    let token = env.token(TARGET).await;
    assert_eq!(
        env.control(Method::PUT, "/_emulator/latency", json!({"ms": -1}))
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        env.control(Method::PUT, "/_emulator/latency", json!({"ms": 300}))
            .await,
        StatusCode::NO_CONTENT
    );
    // A lower bound only: the request cannot be answered before the added latency passed.
    let started = std::time::Instant::now();
    let (status, _) = env.get(&token, "/users?$select=id").await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    env.handle.set_latency(std::time::Duration::ZERO);
    env.handle.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn cli_loads_a_json_seed_generates_users_and_writes_compact_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed: Seed = Seed::from_yaml(&common::seed_yaml()).expect("seed");
    let seed_path = dir.path().join("seed.json");
    std::fs::write(&seed_path, serde_json::to_vec(&seed).expect("json")).expect("write");
    let state = dir.path().join("state.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--no-throttle",
            "--seed",
        ])
        .arg(&seed_path)
        .args([
            "--generate",
            &format!("users=3000,groups=3,tenant={TARGET}"),
            "--state",
        ])
        .arg(&state)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
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
    let export: Value = reqwest::get(format!("{base}/_emulator/export"))
        .await
        .expect("export")
        .json()
        .await
        .expect("json");
    let target = &export["tenants"][TARGET];
    assert_eq!(target["users"].as_object().map(|u| u.len()), Some(3001));
    assert_eq!(target["groups"].as_object().map(|g| g.len()), Some(3));
    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(killed.success());
    assert!(child.wait().await.expect("exits").success());
    let text = std::fs::read_to_string(&state).expect("state written");
    assert!(
        !text.contains("\n  "),
        "state is compact JSON, not pretty-printed"
    );
    let saved: Value = serde_json::from_str(&text).expect("state json");
    assert_eq!(
        saved["tenants"][TARGET]["users"]
            .as_object()
            .map(|u| u.len()),
        Some(3001)
    );
}

#[tokio::test]
async fn cli_rejects_a_bad_generate_spec_with_exit_code_2() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/config/emulator/seed.yaml");
    for spec in ["users=abc", "groups=3", "users=10,tenant=nope"] {
        let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_ctsync"))
            .args([
                "emulator",
                "--listen",
                "127.0.0.1:0",
                "--seed",
                seed,
                "--generate",
                spec,
            ])
            .stderr(Stdio::null())
            .status()
            .await
            .expect("binary runs");
        assert_eq!(status.code(), Some(2), "{spec}");
    }
}
