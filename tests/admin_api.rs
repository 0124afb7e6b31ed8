//! The admin API over loopback HTTP, in front of a running daemon syncing the Graph emulator:
//! authentication, job control observed through the daemon's cycle and status streams,
//! provisioning logs, the plan, `/metrics` through a strict text-format parser, the status page,
//! the control CLI, and a secret canary that must never come out.

// The sync tests' world; this binary uses only part of it.
#[allow(dead_code)]
#[path = "sync/world.rs"]
mod world;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctsync::api::{AdminApi, AdminOptions};
use ctsync::engine::{CycleKind, CycleReport, Daemon, DaemonHandle, JobState, JobStatus};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use world::*;

/// Longest a test waits for an event (a hang guard, never an assertion on speed).
const PATIENCE: Duration = Duration::from_secs(60);
const TOKEN: &str = "admin-token-0123456789";
const PAIR: &str = "contoso-to-fabrikam";

struct Running {
    handle: DaemonHandle,
    shutdown: CancellationToken,
    cycles: broadcast::Receiver<CycleReport>,
    statuses: broadcast::Receiver<(String, JobStatus)>,
    http: reqwest::Client,
}

/// A daemon for `config` with an hour's interval: after the first cycle, cycles run only when
/// a test asks.
fn daemon(world: &World, config: &Path) -> (Daemon, Running) {
    let daemon = world.daemon(config);
    let handle = daemon.handle();
    let running = Running {
        cycles: handle.subscribe_cycles(),
        statuses: handle.subscribe_status(),
        handle,
        shutdown: CancellationToken::new(),
        http: reqwest::Client::new(),
    };
    (daemon, running)
}

impl Running {
    /// Starts an admin API for this daemon on an ephemeral loopback port; returns its base URL.
    async fn api(&self, token: Option<&str>, open_reads: bool) -> String {
        let api = AdminApi::new(
            self.handle.clone(),
            AdminOptions {
                token: token.map(|t| SecretString::from(t.to_owned())),
                open_reads,
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(api.serve(listener, self.shutdown.clone()));
        base
    }

    fn run(&self, daemon: Daemon) {
        tokio::spawn(daemon.run(self.shutdown.clone()));
    }

    async fn next_cycle(&mut self, pair: &str) -> CycleReport {
        let wait = async {
            loop {
                match self.cycles.recv().await {
                    Ok(report) if report.pair == pair => return report,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("cycle stream ended: {e}"),
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("the awaited cycle never came")
    }

    async fn status_where(&mut self, pair: &str, wanted: impl Fn(&JobStatus) -> bool) -> JobStatus {
        let wait = async {
            loop {
                match self.statuses.recv().await {
                    Ok((p, s)) if p == pair && wanted(&s) => return s,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("status stream ended: {e}"),
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("the awaited status never came")
    }

    fn drain(&mut self) {
        while self.statuses.try_recv().is_ok() {}
        while self.cycles.try_recv().is_ok() {}
    }

    async fn get(&self, url: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut request = self.http.get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.expect("GET");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    async fn post(
        &self,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut request = self.http.post(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.expect("POST");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }
}

fn error_code(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    value["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_owned()
}

async fn sales_world(aliases: &[&str]) -> World {
    let users = aliases
        .iter()
        .map(|a| user(a, "contoso.com", json!({"department": "Sales"})))
        .collect();
    World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, users)],
    ))
    .await
}

const SCOPE: &str = "  scope:
    mode: all
";

#[tokio::test]
async fn mutations_need_the_token_and_reads_are_closed_unless_opened() {
    let world = sales_world(&["adele"]).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let (daemon, mut running) = daemon(&world, &file);
    let closed = running.api(Some(TOKEN), false).await;
    let open = running.api(Some(TOKEN), true).await;
    let tokenless = running.api(None, false).await;
    // Not ready until every job has loaded its state, which needs the daemon running.
    let (status, body) = running.get(&format!("{closed}/readyz"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "NotReady");
    running.run(daemon);
    running.next_cycle(PAIR).await;

    // Probes are always open.
    for base in [&closed, &open, &tokenless] {
        assert_eq!(
            running.get(&format!("{base}/healthz"), None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            running.get(&format!("{base}/readyz"), None).await.0,
            StatusCode::OK
        );
    }

    // Reads: closed without the token, open when configured.
    for path in ["/v1/jobs", "/metrics", "/", &format!("/v1/jobs/{PAIR}")] {
        let (status, body) = running.get(&format!("{closed}{path}"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(error_code(&body), "Unauthorized");
        let (status, _) = running.get(&format!("{closed}{path}"), Some("wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            running.get(&format!("{closed}{path}"), Some(TOKEN)).await.0,
            StatusCode::OK,
            "{path}"
        );
        assert_eq!(
            running.get(&format!("{open}{path}"), None).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
    let (status, body) = running.get(&format!("{tokenless}/v1/jobs"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "AdminTokenNotConfigured");

    // Mutations: refused without the token and with a wrong one, even where reads are open.
    running.drain();
    for base in [&closed, &open] {
        let url = format!("{base}/v1/jobs/{PAIR}/pause");
        let (status, body) = running.post(&url, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(error_code(&body), "Unauthorized");
        let (status, body) = running
            .post(&url, Some("admin-token-0123456788"), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(error_code(&body), "InvalidToken");
    }
    let (status, body) = running
        .post(
            &format!("{tokenless}/v1/jobs/{PAIR}/pause"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "AdminTokenNotConfigured");
    assert!(body.contains("--admin-token-file"), "{body}");
    // None of the refused calls reached the job: nothing was saved since.
    assert!(running.statuses.try_recv().is_err());
    assert_eq!(
        running.handle.status(PAIR).await.expect("pair").code,
        JobState::Active
    );

    // The right token goes through.
    let (status, body) = running
        .post(&format!("{closed}/v1/jobs/{PAIR}/pause"), Some(TOKEN), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    running
        .status_where(PAIR, |s| s.code == JobState::Paused)
        .await;

    // Unknown pairs and endpoints.
    let (status, body) = running
        .post(&format!("{closed}/v1/jobs/nope/pause"), Some(TOKEN), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "PairNotFound");
    let (status, body) = running.get(&format!("{open}/v1/jobs/nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "PairNotFound");
    assert_eq!(
        running.get(&format!("{open}/v2/what"), None).await.0,
        StatusCode::NOT_FOUND
    );
    running.shutdown.cancel();
}

#[tokio::test]
async fn pause_start_run_now_and_restart_through_the_api() {
    let world = sales_world(&["adele", "bob"]).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let (daemon, mut running) = daemon(&world, &file);
    let base = running.api(Some(TOKEN), false).await;
    running.run(daemon);
    let first = running.next_cycle(PAIR).await;
    assert_eq!(first.counts["create"], 2, "{first:?}");
    let job = |body: &str| -> Value { serde_json::from_str(body).expect("json") };

    // Pause: run-now is then ignored, and no cycle runs.
    running.drain();
    let url = |action: &str| format!("{base}/v1/jobs/{PAIR}/{action}");
    assert_eq!(
        running.post(&url("pause"), Some(TOKEN), None).await.0,
        StatusCode::NO_CONTENT
    );
    running
        .status_where(PAIR, |s| s.code == JobState::Paused)
        .await;
    assert_eq!(
        running.post(&url("run-now"), Some(TOKEN), None).await.0,
        StatusCode::NO_CONTENT
    );
    // Commands are handled in order: once this pause is saved, the run-now was handled.
    assert_eq!(
        running.post(&url("pause"), Some(TOKEN), None).await.0,
        StatusCode::NO_CONTENT
    );
    running
        .status_where(PAIR, |s| s.code == JobState::Paused)
        .await;
    assert!(
        running.cycles.try_recv().is_err(),
        "a paused job ran a cycle"
    );
    let (_, body) = running
        .get(&format!("{base}/v1/jobs/{PAIR}"), Some(TOKEN))
        .await;
    let paused = job(&body);
    assert_eq!(paused["status"]["code"], "Paused");
    assert_eq!(paused["schedule"]["state"], "Paused");
    // The interval in force is the test daemon's override (an hour); the pair file's default
    // 40 minutes is shown beside it.
    assert_eq!(paused["schedule"]["interval"], "PT1H");
    assert_eq!(paused["schedule"]["configuredInterval"], "PT40M");
    assert_eq!(
        paused["status"]["lastExecution"]["activityIdentifier"],
        json!(first.cycle_id)
    );

    // Start: cycles again.
    assert_eq!(
        running.post(&url("start"), Some(TOKEN), None).await.0,
        StatusCode::NO_CONTENT
    );
    let resumed = running.next_cycle(PAIR).await;
    assert_eq!(resumed.kind, CycleKind::Incremental);

    // Run-now: an incremental cycle that picks up a source change.
    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(CONTOSO, &adele, json!({"jobTitle": "Director"}))
        .await;
    running.drain();
    assert_eq!(
        running.post(&url("run-now"), Some(TOKEN), None).await.0,
        StatusCode::NO_CONTENT
    );
    let report = running.next_cycle(PAIR).await;
    assert_eq!(report.kind, CycleKind::Incremental);
    assert_eq!(report.counts["update"], 1, "{report:?}");
    let status = running
        .status_where(PAIR, |s| {
            s.last_execution.as_ref().map(|e| &e.activity_identifier) == Some(&report.cycle_id)
        })
        .await;
    assert_eq!(status.code, JobState::Active);
    let (_, body) = running.get(&format!("{base}/v1/jobs"), Some(TOKEN)).await;
    let jobs = job(&body);
    assert_eq!(jobs["value"][0]["id"], PAIR);
    assert_eq!(jobs["value"][0]["sourceTenantId"], CONTOSO);
    assert_eq!(
        jobs["value"][0]["status"]["lastExecution"]["activityIdentifier"],
        json!(report.cycle_id)
    );

    // Restart with Graph's criteria: Watermark makes the next cycle a full one.
    running.drain();
    let (status, body) = running
        .post(
            &url("restart"),
            Some(TOKEN),
            Some(json!({"criteria": {"resetScope": "Watermark, Escrows"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(running.next_cycle(PAIR).await.kind, CycleKind::Initial);
    let (status, body) = running
        .post(
            &url("restart"),
            Some(TOKEN),
            Some(json!({"criteria": {"resetScope": "Everything"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The rejected value is described, never echoed back.
    assert!(!body.contains("Everything"), "{body}");
    assert!(body.contains("not one of Watermark"), "{body}");
    let (status, _) = running
        .post(
            &url("restart"),
            Some(TOKEN),
            Some(json!({"criteria": {"resetScope": "ConnectorDataStore"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Provisioning logs, filtered like Graph's.
    let logs = |query: &str| format!("{base}/v1/jobs/{PAIR}/provisioningLogs?{query}");
    let (status, body) = running
        .get(&logs("action=create&status=success"), Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = job(&body)["value"].as_array().expect("value").clone();
    assert_eq!(created.len(), 2, "{body}");
    assert!(created.iter().all(|e| e["provisioningAction"] == "create"
        && e["provisioningStatusInfo"]["status"] == "success"
        && e["jobId"] == PAIR));
    let (_, body) = running.get(&logs("action=update"), Some(TOKEN)).await;
    let updates = job(&body)["value"].as_array().expect("value").clone();
    assert_eq!(updates.len(), 1, "{body}");
    assert!(
        updates[0]["modifiedProperties"]
            .as_array()
            .expect("modified")
            .iter()
            .any(|p| p["displayName"] == "jobTitle" && p["newValue"] == "Director")
    );
    let (_, body) = running
        .get(&logs("since=2999-01-01T00:00:00Z"), Some(TOKEN))
        .await;
    assert_eq!(job(&body)["value"], json!([]));
    for bad in ["status=bogus", "action=explode", "since=yesterday"] {
        let (status, body) = running.get(&logs(bad), Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // The next plan: nothing to do for either user.
    let (status, body) = running
        .get(&format!("{base}/v1/jobs/{PAIR}/plan"), Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(job(&body)["pair"], PAIR);
    let (status, text) = running
        .get(
            &format!("{base}/v1/jobs/{PAIR}/plan?format=text"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(PAIR), "{text}");

    // On-demand provisioning: the user is already in sync.
    let (status, body) = running
        .post(
            &url("provisionOnDemand"),
            Some(TOKEN),
            Some(json!({"userId": "bob@contoso.com", "dryRun": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = job(&body);
    assert_eq!(report["userPrincipalName"], "bob@contoso.com");
    assert_eq!(report["dryRun"], true);
    let (status, body) = running
        .post(
            &url("provisionOnDemand"),
            Some(TOKEN),
            Some(json!({"userId": "nobody@contoso.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = running
        .post(&url("provisionOnDemand"), Some(TOKEN), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    running.shutdown.cancel();
}

/// A sample of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict parser of the Prometheus / OpenMetrics text format: every sample belongs to a
/// family declared by `# TYPE` before it, with a suffix its type allows; label values use only
/// the format's escapes; `# EOF` ends the text; histogram buckets are cumulative and `+Inf`
/// equals `_count`.
fn parse_metrics(text: &str) -> Result<Vec<Sample>, String> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let lines = text.lines().enumerate();
    let mut saw_eof = false;
    for (n, line) in lines {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if saw_eof {
            return Err(err("text after # EOF"));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let keyword = parts.next().unwrap_or("");
            let name = parts
                .next()
                .ok_or_else(|| err("descriptor without a name"))?;
            valid_name(name).map_err(|m| err(&m))?;
            match keyword {
                "TYPE" => {
                    let kind = parts.next().ok_or_else(|| err("TYPE without a type"))?;
                    if ![
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "info",
                        "stateset",
                        "unknown",
                        "gaugehistogram",
                    ]
                    .contains(&kind)
                    {
                        return Err(err("unknown type"));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(err("family declared twice"));
                    }
                }
                "HELP" | "UNIT" => {}
                _ => return Err(err("unknown descriptor")),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(err("stray line"));
        }
        let (name, labels, rest) = parse_sample_head(line).map_err(|m| err(&m))?;
        let family = types
            .iter()
            .find(|(f, kind)| {
                let suffixes: &[&str] = match kind.as_str() {
                    "counter" => &["_total", "_created"],
                    "histogram" => &["_bucket", "_sum", "_count", "_created"],
                    _ => &[""],
                };
                suffixes.iter().any(|s| name == format!("{f}{s}"))
            })
            .ok_or_else(|| err("sample of an undeclared family"))?;
        if family.1 == "histogram" && name.ends_with("_bucket") && !labels.contains_key("le") {
            return Err(err("bucket without le"));
        }
        let mut fields = rest.split(' ');
        let value = fields.next().ok_or_else(|| err("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| err("value is not a number"))?,
        };
        if let Some(ts) = fields.next() {
            ts.parse::<f64>().map_err(|_| err("bad timestamp"))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields"));
        }
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    if !saw_eof {
        return Err("no # EOF".into());
    }
    check_histograms(&types, &samples)?;
    Ok(samples)
}

fn valid_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

fn parse_sample_head(line: &str) -> Result<(String, BTreeMap<String, String>, &str), String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    valid_name(name)?;
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let consumed;
        loop {
            // A label name, `=`, a quoted value, then `,` or `}`.
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            if inner[start..].starts_with('}') {
                consumed = Some(start + 1);
                break;
            }
            let eq = inner[start..].find('=').ok_or("label without =")? + start;
            let label = &inner[start..eq];
            valid_name(label)?;
            if !inner[eq + 1..].starts_with('"') {
                return Err("unquoted label value".into());
            }
            while chars.peek().is_some_and(|(i, _)| *i <= eq + 1) {
                chars.next();
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")? {
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => return Err(format!("invalid escape \\{other}")),
                    },
                    (_, '"') => break,
                    (_, '\n') => return Err("newline in label value".into()),
                    (_, c) => value.push(c),
                }
            }
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} repeated"));
            }
            match chars.next().ok_or("unterminated labels")? {
                (_, ',') => {}
                (i, '}') => {
                    consumed = Some(i + 1);
                    break;
                }
                (_, c) => return Err(format!("unexpected {c:?} after a label")),
            }
        }
        rest = &inner[consumed.ok_or("unterminated labels")?..];
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    Ok((name.to_owned(), labels, rest))
}

/// A series' labels without `le`.
type LabelKey = Vec<(String, String)>;

fn check_histograms(types: &BTreeMap<String, String>, samples: &[Sample]) -> Result<(), String> {
    for (family, kind) in types {
        if kind != "histogram" {
            continue;
        }
        let mut series: BTreeMap<LabelKey, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts: BTreeMap<LabelKey, f64> = BTreeMap::new();
        for s in samples {
            let key: LabelKey = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if s.name == format!("{family}_bucket") {
                let le = &s.labels["le"];
                // Bounds people read: `0.25`, not `0.30000000000000004`.
                let decimals = le.split_once('.').map_or(0, |(_, f)| f.len());
                if decimals > 3 {
                    return Err(format!(
                        "{family}: bucket label le=\"{le}\" is not a clean decimal"
                    ));
                }
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().map_err(|_| format!("bad le {le}"))?
                };
                series.entry(key).or_default().push((bound, s.value));
            } else if s.name == format!("{family}_count") {
                counts.insert(key, s.value);
            }
        }
        for (key, buckets) in &series {
            let sorted = buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
            if !sorted {
                return Err(format!("{family}{key:?}: buckets not cumulative"));
            }
            let last = buckets.last().ok_or("empty histogram")?;
            if last.0 != f64::INFINITY || Some(&last.1) != counts.get(key) {
                return Err(format!("{family}{key:?}: +Inf bucket is not the count"));
            }
        }
    }
    Ok(())
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn the_metrics_parser_rejects_malformed_text() {
    let good = "# TYPE a counter\na_total{x=\"1\"} 2\n# EOF\n";
    assert_eq!(parse_metrics(good).expect("good").len(), 1);
    for bad in [
        "a_total 1\n# EOF\n",                              // undeclared
        "# TYPE a counter\na 1\n# EOF\n",                  // counter without _total
        "# TYPE a counter\na_total{x=1} 1\n# EOF\n",       // unquoted
        "# TYPE a counter\na_total{x=\"\\q\"} 1\n# EOF\n", // bad escape
        "# TYPE a counter\na_total one\n# EOF\n",          // not a number
        "# TYPE a counter\na_total 1\n",                   // no EOF
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n# EOF\n",
        "# TYPE h histogram\nh_bucket{le=\"0.30000000000000004\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n# EOF\n",
    ] {
        assert!(parse_metrics(bad).is_err(), "accepted {bad:?}");
    }
}

#[tokio::test]
async fn metrics_parse_and_count_cycles_actions_and_graph_requests() {
    let world = sales_world(&["adele", "bob"]).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let (daemon, mut running) = daemon(&world, &file);
    let base = running.api(Some(TOKEN), true).await;
    running.run(daemon);
    running.next_cycle(PAIR).await;
    running.drain();
    running
        .post(&format!("{base}/v1/jobs/{PAIR}/run-now"), Some(TOKEN), None)
        .await;
    let second = running.next_cycle(PAIR).await;
    // The feed counts a cycle when it is reported; wait until this one shows.
    let samples = {
        let wait = async {
            loop {
                let response = running
                    .http
                    .get(format!("{base}/metrics"))
                    .send()
                    .await
                    .expect("GET");
                assert_eq!(response.status(), StatusCode::OK);
                let content_type = response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(
                    content_type.starts_with("application/openmetrics-text"),
                    "{content_type}"
                );
                let text = response.text().await.expect("body");
                let samples = parse_metrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                let incremental = value_of(
                    &samples,
                    "ctsync_cycles_total",
                    &[
                        ("pair", PAIR),
                        ("kind", "incremental"),
                        ("result", "succeeded"),
                    ],
                );
                if incremental == Some(1.0) {
                    return samples;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("metrics never showed the cycle")
    };
    assert_eq!(second.kind, CycleKind::Incremental);
    let pair = [("pair", PAIR)];
    assert_eq!(
        value_of(
            &samples,
            "ctsync_cycles_total",
            &[("pair", PAIR), ("kind", "initial"), ("result", "succeeded")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(
            &samples,
            "ctsync_actions_total",
            &[("pair", PAIR), ("action", "create"), ("result", "success")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value_of(&samples, "ctsync_cycle_duration_seconds_count", &pair),
        Some(2.0)
    );
    assert_eq!(
        value_of(&samples, "ctsync_job_quarantined", &pair),
        Some(0.0)
    );
    assert_eq!(
        value_of(
            &samples,
            "ctsync_job_state",
            &[("pair", PAIR), ("state", "Active")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(
            &samples,
            "ctsync_job_state",
            &[("pair", PAIR), ("state", "Quarantine")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value_of(
            &samples,
            "ctsync_escrows",
            &[("pair", PAIR), ("kind", "object")]
        ),
        Some(0.0)
    );
    let last = value_of(
        &samples,
        "ctsync_last_successful_cycle_timestamp_seconds",
        &pair,
    )
    .expect("last success");
    let ended = second.started.timestamp() as f64;
    assert!(last >= ended, "{last} < {ended}");
    for tenant in [CONTOSO, FABRIKAM] {
        let requests = value_of(
            &samples,
            "ctsync_graph_requests_total",
            &[("tenant", tenant)],
        )
        .unwrap_or_else(|| panic!("no requests for {tenant}"));
        assert!(requests > 0.0, "{tenant}");
        assert_eq!(
            value_of(
                &samples,
                "ctsync_graph_throttled_requests_total",
                &[("tenant", tenant)]
            ),
            Some(0.0)
        );
    }

    // Graph counters only grow between scrapes.
    let text = running.get(&format!("{base}/metrics"), None).await.1;
    let again = parse_metrics(&text).expect("parse");
    let before = value_of(
        &samples,
        "ctsync_graph_requests_total",
        &[("tenant", CONTOSO)],
    )
    .unwrap();
    let after = value_of(
        &again,
        "ctsync_graph_requests_total",
        &[("tenant", CONTOSO)],
    )
    .unwrap();
    assert!(after >= before);

    // The status page renders the job, its status and its cycles.
    let (status, html) = running.get(&format!("{base}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains(&format!("<h2>{PAIR}</h2>")), "{html}");
    assert!(html.contains(">Active</strong>"), "{html}");
    assert!(html.contains("Not quarantined."), "{html}");
    assert!(html.contains("create 2"), "{html}");
    assert!(html.contains("Last cycles"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    running.shutdown.cancel();
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_canary_never_comes_out() {
    // The good pair's secret works; the bad pair's is rejected, so it goes down error paths.
    const CANARY: &str = "canary-7f3c9d1e-SECRET-b41a";
    const BAD_CANARY: &str = "canary-0d5e2a77-WRONG-c9e3";
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this test binary's only global subscriber");

    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, vec![user("adele", "contoso.com", json!({}))])],
    );
    seed["apps"][0]["clientSecrets"] = json!([CANARY]);
    let world = World::start(to_seed(seed)).await;
    std::fs::write(world.dir.path().join("secret.txt"), CANARY).unwrap();
    std::fs::write(world.dir.path().join("bad-secret.txt"), BAD_CANARY).unwrap();
    world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let bad = world.pair_file("bad-pair", FABRIKAM, CONTOSO, SCOPE);
    let text = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("secret.txt", "bad-secret.txt");
    std::fs::write(&bad, text).unwrap();
    let config = world.dir.path().to_path_buf();

    let (daemon, mut running) = daemon(&world, &config);
    let base = running.api(Some(TOKEN), true).await;
    running.run(daemon);
    let report = running.next_cycle(PAIR).await;
    assert_eq!(report.counts["create"], 1, "{report:?}");
    let failed = running
        .status_where("bad-pair", |s| {
            s.last_execution
                .as_ref()
                .is_some_and(|e| e.state == "Failed")
        })
        .await;
    assert_eq!(failed.code, JobState::Quarantine, "{failed:?}");

    // The failed cycle and the quarantine show in the metrics once the feed has seen them.
    let wait = async {
        loop {
            let text = running.get(&format!("{base}/metrics"), None).await.1;
            let samples = parse_metrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let failed = value_of(
                &samples,
                "ctsync_cycles_total",
                &[("pair", "bad-pair"), ("kind", "none"), ("result", "failed")],
            );
            if failed.is_some_and(|n| n >= 1.0) {
                return samples;
            }
            tokio::task::yield_now().await;
        }
    };
    let samples = tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the failed cycle never showed in the metrics");
    assert_eq!(
        value_of(&samples, "ctsync_job_quarantined", &[("pair", "bad-pair")]),
        Some(1.0)
    );
    assert_eq!(
        value_of(&samples, "ctsync_job_quarantined", &[("pair", PAIR)]),
        Some(0.0)
    );

    let mut outputs = Vec::new();
    for path in [
        "/".to_owned(),
        "/v1/jobs".to_owned(),
        "/metrics".to_owned(),
        format!("/v1/jobs/{PAIR}"),
        "/v1/jobs/bad-pair".to_owned(),
        format!("/v1/jobs/{PAIR}/provisioningLogs"),
        "/v1/jobs/bad-pair/provisioningLogs".to_owned(),
        format!("/v1/jobs/{PAIR}/plan"),
        "/v1/jobs/bad-pair/plan".to_owned(),
    ] {
        let (status, body) = running.get(&format!("{base}{path}"), None).await;
        outputs.push((path, status, body));
    }
    let (status, body) = running
        .post(
            &format!("{base}/v1/jobs/bad-pair/provisionOnDemand"),
            Some(TOKEN),
            Some(json!({"userId": "adele@contoso.com"})),
        )
        .await;
    outputs.push(("provisionOnDemand".into(), status, body));

    // What was served is real: the job, its failure, the created user's log entry.
    let jobs = &outputs[1].2;
    assert!(jobs.contains(PAIR) && jobs.contains("bad-pair"), "{jobs}");
    assert!(outputs[4].2.contains("Quarantine"), "{}", outputs[4].2);
    assert!(
        outputs[0]
            .2
            .contains("Quarantined: EncounteredQuarantineException"),
        "{}",
        outputs[0].2
    );
    assert!(outputs[5].2.contains("\"create\""), "{}", outputs[5].2);
    for (path, _, body) in &outputs {
        assert!(
            !body.contains(TOKEN),
            "{path} echoes the admin token: {body}"
        );
        assert!(!body.contains(CANARY), "{path} leaks the secret: {body}");
        assert!(
            !body.contains(BAD_CANARY),
            "{path} leaks the rejected secret: {body}"
        );
    }
    let statuses = [
        running.handle.status(PAIR).await,
        running.handle.status("bad-pair").await,
    ];
    let statuses = serde_json::to_string(&statuses).unwrap();
    assert!(!statuses.contains(CANARY) && !statuses.contains(BAD_CANARY));

    running.shutdown.cancel();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The logs were captured (the cycle summary and the failure are there) and carry no secret.
    assert!(logs.contains("cycle finished"), "nothing captured");
    assert!(logs.contains("cycle failed"), "the failure was not logged");
    assert!(!logs.contains(CANARY), "the logs leak the secret");
    assert!(
        !logs.contains(BAD_CANARY),
        "the logs leak the rejected secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_cli_talks_to_the_admin_api() {
    let world = sales_world(&["adele"]).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let (daemon, mut running) = daemon(&world, &file);
    let base = running.api(Some(TOKEN), false).await;
    running.run(daemon);
    running.next_cycle(PAIR).await;
    let token_file = world.dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();

    let cli = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            assert_cmd::Command::cargo_bin("ctsync")
                .unwrap()
                .env_remove("CTSYNC_ADMIN_TOKEN")
                .env_remove("CTSYNC_ADMIN_URL")
                .args(args)
                .output()
                .unwrap()
        })
    };
    let with = |words: &[&str], token: bool| -> Vec<String> {
        let mut v: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        v.extend(["--admin-url".into(), base.clone()]);
        if token {
            v.extend(["--token-file".into(), token_file.display().to_string()]);
        }
        v
    };

    // The container HEALTHCHECK: alive without a token; a closed port is unhealthy.
    let out = cli(with(&["health"], false)).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = cli(vec![
        "health".into(),
        "--admin-url".into(),
        "http://127.0.0.1:9".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    let out = cli(with(&["pause", "--pair", PAIR], false)).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );

    running.drain();
    let out = cli(with(&["pause", "--pair", PAIR], true)).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    running
        .status_where(PAIR, |s| s.code == JobState::Paused)
        .await;

    let out = cli(with(&["status", "--format", "json"], true))
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed["value"][0]["status"]["code"], "Paused");
    let out = cli(with(&["status", "--pair", PAIR], true)).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("{PAIR}: Paused")), "{text}");
    // The interval in force (the daemon's override), not only the pair file's.
    assert!(
        text.contains("  schedule: every PT1H (set by run --interval; the pair file says PT40M)"),
        "{text}"
    );

    let out = cli(with(&["start", "--pair", PAIR], true)).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    running.next_cycle(PAIR).await;
    let out = cli(with(&["run-now", "--pair", PAIR], true)).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    running.next_cycle(PAIR).await;
    let out = cli(with(
        &["restart", "--pair", PAIR, "--reset-scope", "Watermark"],
        true,
    ))
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(running.next_cycle(PAIR).await.kind, CycleKind::Initial);
    let out = cli(with(&["restart", "--pair", "nope"], true))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PairNotFound"),
        "{out:?}"
    );
    running.shutdown.cancel();
}

/// Kills the daemon process on every exit path of the test.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctsync_run_serves_the_admin_api_with_its_token_file() {
    let world = sales_world(&["adele"]).await;
    world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let token_file = world.dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    // A free loopback port: bound, read, released for the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let _daemon = Child(
        std::process::Command::new(assert_cmd::cargo::cargo_bin!("ctsync"))
            .args(["run", "--no-reload", "--interval", "1h", "--config"])
            .arg(world.dir.path().join(format!("{PAIR}.yaml")))
            .arg("--state")
            .arg(world.dir.path().join("daemon.db"))
            .args(["--admin-listen", &format!("127.0.0.1:{port}")])
            .arg("--admin-token-file")
            .arg(&token_file)
            .env_remove("CTSYNC_ADMIN_TOKEN_FILE")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ctsync run starts"),
    );
    let http = reqwest::Client::new();
    // Wait until the daemon has synced adele (the status says so).
    let job = async {
        loop {
            if let Ok(response) = http
                .get(format!("{base}/v1/jobs/{PAIR}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                && response.status() == StatusCode::OK
            {
                let job: Value = response.json().await.expect("json");
                if job["status"]["lastExecution"].is_object() {
                    return job;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let job = tokio::time::timeout(PATIENCE, job)
        .await
        .expect("the daemon never synced");
    assert_eq!(job["status"]["code"], "Active", "{job}");
    assert_eq!(job["status"]["lastExecution"]["countExported"], 1, "{job}");
    assert!(world.b2b_user(FABRIKAM, "adele").await.is_some());
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    // Reads are closed (no --open-reads), and the token file's token is the one accepted.
    let closed = http
        .get(format!("{base}/v1/jobs"))
        .send()
        .await
        .expect("GET");
    assert_eq!(closed.status(), StatusCode::UNAUTHORIZED);
    let refused = http
        .post(format!("{base}/v1/jobs/{PAIR}/pause"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let paused = http
        .post(format!("{base}/v1/jobs/{PAIR}/pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    assert_eq!(paused.status(), StatusCode::NO_CONTENT);
}

/// The status page is locked down (CSP, no sniffing), a failure shows its code under "error"
/// and Graph's message under "reason", and a rejected body never comes back in the answer.
#[tokio::test]
async fn the_status_page_is_locked_down_and_rejected_bodies_are_not_echoed() {
    let world = sales_world(&["adele"]).await;
    // Every invitation into Fabrikam fails: the create is a logged failure.
    let rule = json!({"tenant": FABRIKAM, "method": "POST", "pathContains": "/invitations",
        "count": 1000, "status": 400, "code": "InjectedInvitationFault",
        "message": "Invitations are switched off for this test."});
    let response = reqwest::Client::new()
        .post(format!(
            "{}/_emulator/faults/fail-next",
            world.emulator.base_url()
        ))
        .json(&rule)
        .send()
        .await
        .expect("emulator control");
    assert!(response.status().is_success());
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let (daemon, mut running) = daemon(&world, &file);
    let base = running.api(Some(TOKEN), false).await;
    running.run(daemon);
    let report = running.next_cycle(PAIR).await;
    assert!(report.failed > 0, "{report:?}");

    let response = running
        .http
        .get(format!("{base}/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET /");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp:?}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp:?}");
    assert!(!csp.contains("script-src"), "{csp:?}");
    assert_eq!(
        headers
            .get("x-content-type-options")
            .map(|v| v.to_str().ok()),
        Some(Some("nosniff"))
    );
    let html = response.text().await.expect("page");
    let header_row = "<th>user</th><th>error</th><th>reason</th>";
    assert!(html.contains(header_row), "{html}");
    let row = html
        .lines()
        .find(|l| l.contains("InjectedInvitationFault"))
        .unwrap_or_else(|| panic!("no failure row in {html}"));
    let cells: Vec<&str> = row
        .split("<td>")
        .skip(1)
        .map(|c| c.split("</td>").next().unwrap_or_default())
        .collect();
    assert_eq!(cells.len(), 5, "{row}");
    assert_eq!(cells[3], "InjectedInvitationFault", "error column: {row}");
    assert!(
        cells[4].contains("Invitations are switched off for this test."),
        "reason column: {row}"
    );

    // JSON answers carry the same headers.
    let response = running
        .http
        .post(format!("{base}/v1/jobs/{PAIR}/provisionOnDemand"))
        .bearer_auth(TOKEN)
        .body(r#"{"userId": 7, "note": "<script>alert(1)</script>"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response
            .headers()
            .get("x-content-type-options")
            .map(|v| v.to_str().ok()),
        Some(Some("nosniff"))
    );
    let body = response.text().await.expect("body");
    assert_eq!(error_code(&body), "BadRequest");
    assert!(!body.contains("script"), "{body}");
    assert!(
        body.contains("expected fields and types (line 1, column"),
        "{body}"
    );
    for rejected in [
        r#"{"userId": "<img src=x onerror=alert(1)>""#,
        "<script>alert(1)</script>",
    ] {
        let (status, body) = {
            let response = running
                .http
                .post(format!("{base}/v1/jobs/{PAIR}/restart"))
                .bearer_auth(TOKEN)
                .body(rejected)
                .send()
                .await
                .expect("POST");
            (response.status(), response.text().await.expect("body"))
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("is not valid JSON"), "{body}");
        assert!(!body.contains("alert") && !body.contains('<'), "{body}");
    }
    running.shutdown.cancel();
}

/// One writer per pair: on-demand provisioning is a message to the pair's job, carried out
/// between cycles. Here a cycle is held at its source read (a 429 with `Retry-After: 4`) when
/// the provisioning arrives: the answer comes only after that cycle finished, and finds the
/// user already updated by it. Run beside the cycle (the old way), the provisioning would
/// answer first and write the change itself.
#[tokio::test]
async fn on_demand_provisioning_waits_for_the_cycle_in_flight() {
    let world = sales_world(&["adele"]).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SCOPE);
    let (daemon, mut running) = daemon(&world, &file);
    let base = running.api(Some(TOKEN), false).await;
    running.run(daemon);
    assert_eq!(running.next_cycle(PAIR).await.counts["create"], 1);

    let adele = world.source_id(CONTOSO, "adele@contoso.com").await;
    world
        .patch(CONTOSO, &adele, json!({"jobTitle": "Director"}))
        .await;
    // The next source delta read is throttled once, holding the cycle for four seconds.
    let rule = json!({"tenant": CONTOSO, "method": "GET", "pathContains": "/users/delta",
        "count": 1, "status": 429, "code": "TooManyRequests", "retryAfter": 4});
    let response = running
        .http
        .post(format!(
            "{}/_emulator/faults/fail-next",
            world.emulator.base_url()
        ))
        .json(&rule)
        .send()
        .await
        .expect("emulator control");
    assert!(response.status().is_success());

    running.drain();
    let url = |action: &str| format!("{base}/v1/jobs/{PAIR}/{action}");
    assert_eq!(
        running.post(&url("run-now"), Some(TOKEN), None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = running
        .post(
            &url("provisionOnDemand"),
            Some(TOKEN),
            Some(json!({"userId": "adele@contoso.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The cycle had finished (its report is out) before the provisioning answered …
    let cycle = running
        .cycles
        .try_recv()
        .expect("the cycle in flight finished before on-demand provisioning ran");
    assert_eq!(cycle.counts.get("update"), Some(&1), "{cycle:?}");
    // … and the provisioning found the change already made: it wrote nothing itself.
    let report: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(report["userPrincipalName"], "adele@contoso.com");
    assert_ne!(report["entry"]["action"], "update", "{report:#}");
    assert!(
        report["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .all(|row| row["changed"] == false),
        "{report:#}"
    );
    let target = world.b2b_user(FABRIKAM, "adele").await.expect("adele");
    assert_eq!(target.job_title.as_deref(), Some("Director"));
    running.shutdown.cancel();
}

/// Group sync through the admin API: each group action is in the provisioning log with the
/// group's and the members' names, and `provisionOnDemand` with a `groupId` goes through the
/// job (dry run first: nothing written).
#[tokio::test]
async fn group_actions_are_logged_and_a_group_is_provisioned_on_demand() {
    const SALES: &str = "9b000000-0000-4000-8000-000000000001";
    let mut seed = seed_json(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(
            CONTOSO,
            vec![
                user("adele", "contoso.com", json!({})),
                user("bob", "contoso.com", json!({})),
            ],
        )],
    );
    seed["tenants"][0]["groups"] = json!([{"id": SALES, "displayName": "Sales",
        "members": ["adele@contoso.com", "bob@contoso.com"]}]);
    seed["tenants"][1]["partners"][0]["identitySynchronization"]["groupSyncInbound"] =
        json!({"isSyncAllowed": true});
    let world = World::start(to_seed(seed)).await;
    let spec = format!(
        "  scope:\n    mode: assigned\n    groups: [{SALES}]\n  groups:\n    enabled: true\n"
    );
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, &spec);
    let (daemon, mut running) = daemon(&world, &file);
    let base = running.api(Some(TOKEN), false).await;
    running.run(daemon);
    let first = running.next_cycle(PAIR).await;
    assert_eq!(first.groups.expect("groups").counts["create"], 1);
    let json = |body: &str| -> Value { serde_json::from_str(body).expect("json") };

    let (status, body) = running
        .get(
            &format!("{base}/v1/jobs/{PAIR}/provisioningLogs?action=create"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value = json(&body)["value"].as_array().expect("value").clone();
    let group = value
        .iter()
        .find(|e| e["sourceIdentity"]["identityType"] == "Group")
        .unwrap_or_else(|| panic!("a group create in {body}"));
    assert_eq!(group["sourceIdentity"]["displayName"], "Sales");
    assert_eq!(group["targetIdentity"]["displayName"], "Sales");
    assert_eq!(
        group["targetSystem"]["details"]["membersAdded"],
        json!(["adele", "bob"])
    );

    // bob leaves the source group; the group is provisioned on demand, first as a dry run.
    let bob = world.source_id(CONTOSO, "bob@contoso.com").await;
    world
        .admin(CONTOSO)
        .remove_group_member(SALES, &bob)
        .await
        .expect("leave");
    let url = format!("{base}/v1/jobs/{PAIR}/provisionOnDemand");
    let writes = world.emulator.writes().len();
    let (status, body) = running
        .post(
            &url,
            Some(TOKEN),
            Some(json!({"groupId": "Sales", "dryRun": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = json(&body);
    assert_eq!(report["entry"]["action"], "update", "{report:#}");
    assert!(
        report["members"]
            .as_array()
            .expect("members")
            .iter()
            .any(|m| m["displayName"] == "bob" && m["action"] == "removed"),
        "{report:#}"
    );
    assert_eq!(world.emulator.writes().len(), writes, "a dry run wrote");
    let (status, body) = running
        .post(&url, Some(TOKEN), Some(json!({"groupId": SALES})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["succeeded"], true, "{body}");
    assert!(world.emulator.writes().len() > writes);
    for bad in [
        json!({"groupId": "Sales", "userId": "adele@contoso.com"}),
        json!({}),
    ] {
        let (status, body) = running.post(&url, Some(TOKEN), Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, body) = running
        .post(&url, Some(TOKEN), Some(json!({"groupId": "No Such Group"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    running.shutdown.cancel();
}

/// The plan preview of the API shows the cycle the job will run, as `ctsync plan` does:
/// incremental after a cycle, and the full reconcile once `fullSyncInterval` has passed.
#[tokio::test]
async fn the_plan_preview_shows_the_full_reconcile_when_it_is_due() {
    let world = sales_world(&["adele"]).await;
    let spec = "  scope:\n    mode: all\n  fullSyncInterval: 2s\n";
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, spec);
    let (daemon, mut running) = daemon(&world, &file);
    let base = running.api(Some(TOKEN), false).await;
    running.run(daemon);
    // The cycle report is sent once the status (with its full read) is saved.
    running.next_cycle(PAIR).await;
    let plan = format!("{base}/v1/jobs/{PAIR}/plan");
    let (status, body) = running.get(&plan, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(value["cycle"], "incremental", "{body}");

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, body) = running.get(&plan, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(value["cycle"], "full", "{body}");
    running.shutdown.cancel();
}
