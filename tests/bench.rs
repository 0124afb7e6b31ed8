//! `ctsync bench` runs end to end on a small tenant and reports every field the README
//! documents. Figures are not asserted (performance is shown by running the bench, not by
//! timed tests); what is asserted is that the run is real: the creates happened, the target
//! matches the source, and the counters add up.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin("ctsync"))
        .args(["--log-format", "json", "bench"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("ctsync bench runs")
}

#[test]
fn a_small_bench_runs_every_phase_and_reports_its_fields() {
    let out = bench(&[
        "--users",
        "60",
        "--changes",
        "10",
        "--time-scale",
        "100",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(report["targetMatches"], true, "{report:#}");
    assert_eq!(report["options"]["users"], 60);
    let phases = report["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["plan", "initial", "incremental", "quiet"]);
    for phase in phases {
        for field in [
            "wallSeconds",
            "usersChanged",
            "usersPerSecond",
            "created",
            "writes",
            "writeRequests",
            "writesPerSecond",
            "writeQuotaRatio",
            "invitations",
            "invitationQuotaRatio",
            "requests",
            "throttled",
            "cpuSeconds",
            "emulatorCpuSeconds",
            "rssStartBytes",
            "peakRssBytes",
            "rssGrowthBytes",
            "actions",
        ] {
            assert!(phase.get(field).is_some(), "{field} missing in {phase:#}");
        }
        for side in ["source", "target"] {
            assert!(phase[side]["byEndpoint"].is_object(), "{side} in {phase:#}");
            assert!(phase[side]["requests"].is_u64());
        }
    }
    let plan = &phases[0];
    let initial = &phases[1];
    let in_scope = report["expectedInScope"].as_u64().expect("expectedInScope");
    // The plan creates every enabled in-scope user; the initial cycle does it, one invitation
    // per created user, and writes nothing in the plan phase.
    assert_eq!(plan["writes"], 0);
    assert!(plan["created"].as_u64() > Some(in_scope / 2));
    assert_eq!(initial["created"], plan["created"]);
    assert_eq!(initial["invitations"], initial["created"]);
    // Creates go out in `$batch` requests of 20: far fewer round trips than users.
    assert!(initial["target"]["byEndpoint"]["POST $batch"].as_u64() > Some(0));
    let per_user = initial["requestsPerCreatedUser"]
        .as_f64()
        .expect("per user");
    assert!(per_user > 0.0 && per_user < 1.0, "{per_user}");
    assert!(initial["writes"].as_u64() > initial["writeRequests"].as_u64());
    let requests: u64 = ["source", "target"]
        .iter()
        .map(|s| {
            initial[s]["byEndpoint"]
                .as_object()
                .expect("byEndpoint")
                .values()
                .filter_map(Value::as_u64)
                .sum::<u64>()
        })
        .sum();
    assert_eq!(initial["requests"].as_u64(), Some(requests));
    assert_eq!(initial["targetUsersAfter"], initial["created"]);
    // The incremental cycle carries the changes; the quiet one writes nothing.
    assert!(phases[2]["usersChanged"].as_u64() > Some(0));
    assert_eq!(phases[3]["writes"], 0);
    assert_eq!(phases[3]["usersChanged"], 0);
}

#[test]
fn bad_bench_options_are_usage_errors() {
    let out = bench(&["--users", "5", "--changes", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--changes 10 exceeds --users 5"));
    let out = bench(&["--users", "5", "--time-scale", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The soak runs rounds of churn through the daemon and checks the target against the source
/// at the end; its report has one memory sample per round. (Memory figures are not asserted:
/// the soak is measured by running it, see README.)
#[test]
fn a_small_soak_churns_through_the_daemon_and_the_target_still_matches() {
    let out = bench(&[
        "--users",
        "80",
        "--changes",
        "20",
        "--time-scale",
        "100",
        "--soak",
        "--soak-rounds",
        "4",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench --soak failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let soak = &report["soak"];
    assert_eq!(soak["rounds"], 4, "{soak:#}");
    assert_eq!(soak["changesPerRound"], 20, "{soak:#}");
    assert_eq!(soak["targetMatches"], true, "{soak:#}");
    assert!(soak.get("mismatch").is_none(), "{soak:#}");
    assert_eq!(soak["failed"], 0, "{soak:#}");
    // Every round wrote something (each carries updates, joiners and leavers).
    assert!(soak["written"].as_u64() >= Some(4), "{soak:#}");
    let samples = soak["rssBytes"].as_array().expect("rssBytes");
    assert_eq!(samples.len(), 4, "{soak:#}");
    assert!(samples.iter().all(|s| s.as_u64() > Some(0)), "{soak:#}");
    assert!(soak["requests"].as_u64() > Some(0), "{soak:#}");
}

#[test]
fn a_soak_with_plan_only_is_a_usage_error() {
    let out = bench(&["--users", "10", "--changes", "1", "--plan-only", "--soak"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plan-only"));
}
