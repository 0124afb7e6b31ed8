//! A running daemon over a [`World`], and ways to wait for what it reports.

use std::path::Path;

use std::time::Duration;

use ctsync::engine::daemon::DaemonSummary;
use ctsync::engine::{CycleReport, DaemonHandle, JobCommand, JobStatus};

use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::world::*;

/// Longest a test waits for an event before it fails (a hang guard, never an assertion on speed).
const PATIENCE: Duration = Duration::from_secs(60);

pub struct Running {
    pub handle: DaemonHandle,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<DaemonSummary>,
    pub statuses: broadcast::Receiver<(String, JobStatus)>,
    pub cycles: broadcast::Receiver<CycleReport>,
}

/// Starts a daemon for every pair in `config` (a file or a directory). The interval is an hour:
/// cycles after the first run only when a test asks (or on the quarantine schedule).
pub fn start(world: &World, config: &Path) -> Running {
    let daemon = world.daemon(config);
    let handle = daemon.handle();
    // Subscribed before the jobs start, so no event is missed.
    let statuses = handle.subscribe_status();
    let cycles = handle.subscribe_cycles();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(daemon.run(shutdown.clone()));
    Running {
        handle,
        shutdown,
        task,
        statuses,
        cycles,
    }
}

impl Running {
    /// The next saved status of `pair` that satisfies `wanted`.
    pub async fn status_where(
        &mut self,
        pair: &str,
        wanted: impl Fn(&JobStatus) -> bool,
    ) -> JobStatus {
        let wait = async {
            loop {
                match self.statuses.recv().await {
                    Ok((p, status)) if p == pair && wanted(&status) => return status,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("status stream ended: {e}"),
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("the awaited status never came")
    }

    /// The next finished cycle of `pair`.
    pub async fn cycle(&mut self, pair: &str) -> CycleReport {
        let wait = async {
            loop {
                match self.cycles.recv().await {
                    Ok(report) if report.pair == pair => return report,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("cycle stream ended: {e}"),
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("the awaited cycle never came")
    }

    /// Sends a command; what it did shows in the statuses and cycles that follow.
    pub async fn command(&mut self, pair: &str, command: JobCommand) {
        self.drain();
        self.handle.send(pair, command).await.expect("command sent");
    }

    /// Sends a restart with a Graph `resetScope` string.
    pub async fn restart(
        &mut self,
        pair: &str,
        reset_scope: &str,
    ) -> Result<(), ctsync::engine::daemon::RestartError> {
        self.drain();
        self.handle.restart(pair, reset_scope).await
    }

    /// Forgets events already reported, so waits see only what follows the next command.
    fn drain(&mut self) {
        while self.statuses.try_recv().is_ok() {}
        while self.cycles.try_recv().is_ok() {}
    }

    /// Runs a cycle now and waits for its status.
    pub async fn run_now(&mut self, pair: &str) -> JobStatus {
        let before = self.handle.status(pair).await.expect("pair").last_execution;
        self.command(pair, JobCommand::RunNow).await;
        self.status_where(pair, |s| s.last_execution != before)
            .await
    }

    pub async fn stop(self) -> DaemonSummary {
        self.shutdown.cancel();
        self.task.await.expect("daemon task")
    }
}

/// A call to the emulator's test control API.
pub async fn control(world: &World, method: reqwest::Method, path: &str, body: Option<Value>) {
    let url = format!("{}{path}", world.emulator.base_url());
    let mut request = reqwest::Client::new().request(method.clone(), &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("emulator control");
    assert!(
        response.status().is_success(),
        "{method} {path}: {}",
        response.status()
    );
}

/// Fails the next `count` requests whose path contains `path_contains` with a 400.
pub async fn fail_next(world: &World, method: &str, path_contains: &str, count: u32) {
    control(
        world,
        reqwest::Method::POST,
        "/_emulator/faults/fail-next",
        Some(json!({
            "method": method,
            "pathContains": path_contains,
            "count": count,
            "status": 400,
            "code": "Request_BadRequest",
            "message": "injected failure",
        })),
    )
    .await;
}

/// Revokes the sync app's secret and every token issued so far.
pub async fn revoke_credentials(world: &World) {
    control(
        world,
        reqwest::Method::PUT,
        &format!("/_emulator/apps/{APP}/secrets"),
        Some(json!({"clientSecrets": []})),
    )
    .await;
    control(world, reqwest::Method::DELETE, "/_emulator/tokens", None).await;
}

pub async fn restore_credentials(world: &World) {
    control(
        world,
        reqwest::Method::PUT,
        &format!("/_emulator/apps/{APP}/secrets"),
        Some(json!({"clientSecrets": [SECRET]})),
    )
    .await;
}

/// Contoso users, all in Sales unless `extra` says otherwise.
pub fn sales(aliases: &[&str]) -> Vec<Value> {
    aliases
        .iter()
        .map(|a| user(a, "contoso.com", json!({"department": "Sales"})))
        .collect()
}

pub const SALES_SCOPE: &str = "  scope:
    mode: all
    filters:
      - title: Sales only
        clauses:
          - { attribute: department, operator: EQUALS, value: Sales }
";

pub const PAIR: &str = "contoso-to-fabrikam";

pub async fn two_tenants(users: Vec<Value>) -> World {
    World::start(seed(
        &[(CONTOSO, "contoso.com"), (FABRIKAM, "fabrikam.com")],
        &[(CONTOSO, users)],
    ))
    .await
}
