//! The bench's world: the emulator on a runtime of its own, the pair file, the store, the
//! daemon, and the source admin who makes the changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::generate::{self, APP, SECRET, SOURCE, TARGET};
use super::{
    BenchError, BenchOptions, CYCLE_TIMEOUT, ClientCounts, Mismatch, Phases, Probe, QuotaMode,
    SoakReport,
};
use crate::emulator::{self, EmulatorHandle, EmulatorOptions};
use crate::engine::{
    CycleOptions, CycleReport, Daemon, DaemonHandle, DaemonOptions, JobCommand, PairRuntime,
    compute_plan,
};
use crate::graph::{ClientCredential, GraphClient, GraphSettings, WriteQuota};
use crate::store::{SqliteStore, StateStore};

const PAIR: &str = "bench";

pub struct BenchWorld {
    emulator: Arc<EmulatorHandle>,
    emulator_stop: Option<tokio::sync::oneshot::Sender<()>>,
    emulator_thread: Option<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    pair_file: std::path::PathBuf,
    /// The clients whose counters the current phase reads (source, target).
    clients: Mutex<Option<(GraphClient, GraphClient)>>,
    admin: GraphClient,
}

fn setup<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> BenchError + '_ {
    move |e| BenchError::Setup(format!("{what}: {e}"))
}

impl BenchWorld {
    pub async fn start(options: &BenchOptions) -> Result<BenchWorld, BenchError> {
        let seed = generate::seed(options.users).map_err(setup("generated seed"))?;
        let emulator_options = EmulatorOptions {
            time_scale: options.time_scale,
            throttling: options.quota == QuotaMode::Graph,
            // An hour in real time, as in Graph: the client renews tokens by the wall clock.
            token_lifetime: chrono::Duration::seconds((3599.0 * options.time_scale) as i64),
            ..EmulatorOptions::default()
        };
        // The emulator's own runtime, on threads named so the bench can tell its CPU time from
        // the client's. Threads stay alive so no CPU time leaves with an exited thread.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(super::process::EMULATOR_THREAD.into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(super::process::EMULATOR_THREAD)
                    .thread_keep_alive(std::time::Duration::from_secs(86_400))
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match emulator::spawn(seed, emulator_options).await {
                        Ok(handle) => {
                            let handle = Arc::new(handle);
                            let _ = ready_tx.send(Ok(handle.clone()));
                            let _ = stop_rx.await;
                            if let Ok(handle) = Arc::try_unwrap(handle) {
                                let _ = handle.shutdown().await;
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                        }
                    }
                });
            })
            .map_err(setup("emulator thread"))?;
        let emulator = ready_rx
            .await
            .map_err(setup("emulator"))?
            .map_err(setup("emulator"))?;
        let base = emulator.base_url();
        // Latency is Graph's, in virtual time like the quota windows: a time-scaled run keeps
        // the ratio of round-trip time to quota window, so its ratios stay true.
        let latency_ms = (options.latency_ms as f64 / options.time_scale).round() as u64;
        if latency_ms > 0 {
            let http = reqwest::Client::new();
            for tenant in [SOURCE, TARGET] {
                http.put(format!("{base}/_emulator/tenants/{tenant}/faults"))
                    .json(&json!({"latencyMs": latency_ms}))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(setup("emulator latency"))?;
            }
        }
        let dir = tempfile::tempdir().map_err(setup("temporary directory"))?;
        std::fs::write(dir.path().join("secret.txt"), SECRET).map_err(setup("secret file"))?;
        let pair_file = dir.path().join("bench.yaml");
        std::fs::write(&pair_file, pair_yaml(&base, options)).map_err(setup("pair file"))?;
        let store =
            Arc::new(SqliteStore::open(dir.path().join("state.db")).map_err(setup("store"))?);
        let admin = GraphClient::new(
            SOURCE,
            APP,
            ClientCredential::Secret(SECRET.to_owned().into()),
            GraphSettings {
                authority: base.clone(),
                base_url: base,
                // The source admin's writes are paced like the daemon's: Graph's quota on the
                // scaled clock, or none. Unscaled, a long soak stalled for a 150 s real window
                // every 3,000 changes.
                write_quota: admin_write_quota(options),
                ..GraphSettings::default()
            },
        )
        .map_err(setup("admin client"))?;
        Ok(BenchWorld {
            emulator,
            emulator_stop: Some(stop_tx),
            emulator_thread: Some(thread),
            dir,
            store,
            pair_file,
            clients: Mutex::new(None),
            admin,
        })
    }

    fn runtime(&self) -> Result<PairRuntime, BenchError> {
        let topology = crate::config::load(&self.pair_file).map_err(|e| {
            BenchError::Setup(format!(
                "pair file: {}",
                e.problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        let pair = topology
            .pair(PAIR)
            .cloned()
            .ok_or_else(|| BenchError::Setup("the pair file has no bench pair".into()))?;
        PairRuntime::new(pair).map_err(setup("runtime"))
    }

    fn watch(&self, rt: &PairRuntime) {
        *self.clients.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((rt.source.clone(), rt.target.clone()));
    }

    pub(super) fn counts(&self) -> (ClientCounts, ClientCounts) {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let read = |c: &GraphClient| {
            let stats = c.stats();
            ClientCounts {
                requests: stats.requests,
                writes: c.writes_sent(),
                invitations: c.invitations_sent(),
                throttled: stats.throttled,
                token_requests: c.tokens_issued(),
                by_endpoint: c.requests_by_endpoint(),
            }
        };
        match clients.as_ref() {
            Some((s, t)) => (read(s), read(t)),
            None => Default::default(),
        }
    }

    /// Target users that carry the pair's anchor.
    pub(super) fn target_user_count(&self) -> usize {
        let anchor = format!("extension_{}_ctsyncAnchor", APP.replace('-', ""));
        self.emulator.with_directory(|dir| {
            dir.tenants.get(TARGET).map_or(0, |t| {
                t.users
                    .values()
                    .filter(|u| u.get(&anchor).is_some_and(|v| !v.is_null()))
                    .count()
            })
        })
    }

    /// The target holds a user for every enabled in-scope source user, and none for a user
    /// out of scope or deleted (a user disabled after it was created stays, disabled).
    fn target_matches(&self) -> bool {
        self.target_mismatch().is_none()
    }

    /// How the target differs from the source (see [`BenchWorld::target_matches`]), if it does.
    fn target_mismatch(&self) -> Option<Mismatch> {
        let anchor = format!("extension_{}_ctsyncAnchor", APP.replace('-', ""));
        self.emulator.with_directory(|dir| {
            let (Some(source), Some(target)) = (dir.tenants.get(SOURCE), dir.tenants.get(TARGET))
            else {
                return Some(Mismatch::default());
            };
            let in_scope: BTreeMap<&str, bool> = source
                .users
                .iter()
                .filter(|(_, u)| {
                    u.get("userType").and_then(Value::as_str) == Some("Member")
                        && u.get("department").and_then(Value::as_str)
                            != Some(generate::OUT_OF_SCOPE_DEPARTMENT)
                })
                .map(|(id, u)| {
                    let enabled = u.get("accountEnabled").and_then(Value::as_bool) != Some(false);
                    (id.as_str(), enabled)
                })
                .collect();
            let linked: BTreeSet<&str> = target
                .users
                .values()
                .filter_map(|u| u.get(&anchor).and_then(Value::as_str))
                .filter_map(|a| a.rsplit_once('/').map(|(_, id)| id))
                .collect();
            let mismatch = Mismatch {
                extra: linked
                    .iter()
                    .filter(|id| !in_scope.contains_key(*id))
                    .count(),
                missing: in_scope
                    .iter()
                    .filter(|(id, enabled)| **enabled && !linked.contains(*id))
                    .count(),
            };
            (mismatch.extra + mismatch.missing > 0).then_some(mismatch)
        })
    }

    pub(super) async fn run_phases(&self, options: &BenchOptions) -> Result<Phases, BenchError> {
        let mut phases = Vec::new();
        // `ctsync plan` on a fresh state: its own runtime and clients, like the command.
        {
            let rt = self.runtime()?;
            self.watch(&rt);
            let probe = Probe::start("plan", self);
            let planned = compute_plan(&rt, self.store.as_ref(), &CycleOptions::default())
                .await
                .map_err(|e| BenchError::Phase {
                    phase: "plan".into(),
                    message: e.to_string(),
                })?;
            let actions = crate::plan::Action::ALL
                .iter()
                .map(|a| (a.as_str().to_owned(), planned.plan.count(*a)))
                .collect();
            drop(planned);
            phases.push(probe.finish(self, options, actions));
        }
        if options.plan_only {
            return Ok(Phases {
                phases,
                target_matches: None,
                soak: None,
            });
        }

        let daemon = Daemon::new(
            vec![self.runtime()?],
            self.store.clone() as Arc<dyn StateStore>,
            DaemonOptions {
                once: false,
                interval_override: Some(std::time::Duration::from_secs(86_400)),
                ..DaemonOptions::default()
            },
        );
        let handle = daemon.handle();
        if let Some(rt) = handle.runtime(PAIR) {
            self.watch(&rt);
        }
        let mut cycles = handle.subscribe_cycles();
        let mut statuses = handle.subscribe_status();
        let shutdown = CancellationToken::new();
        let probe = Probe::start("initial", self);
        let running = tokio::spawn(daemon.run(shutdown.clone()));
        let result = async {
            let report = next_cycle("initial", &mut cycles, &mut statuses).await?;
            phases.push(probe.finish(self, options, report.counts.clone()));
            let mut matches = self.target_matches();

            self.make_changes(options, 0).await?;
            let probe = Probe::start("incremental", self);
            let report = cycle_now(&handle, "incremental", &mut cycles, &mut statuses).await?;
            phases.push(probe.finish(self, options, report.counts.clone()));
            matches &= self.target_matches();

            let probe = Probe::start("quiet", self);
            let report = cycle_now(&handle, "quiet", &mut cycles, &mut statuses).await?;
            phases.push(probe.finish(self, options, report.counts.clone()));

            let soak = if options.soak_rounds > 0 {
                Some(
                    self.soak(&handle, options, &mut cycles, &mut statuses)
                        .await?,
                )
            } else {
                None
            };
            Ok::<_, BenchError>((matches, soak))
        }
        .await;
        shutdown.cancel();
        let _ = running.await;
        let (matches, soak) = result?;
        Ok(Phases {
            phases,
            target_matches: Some(matches),
            soak,
        })
    }

    /// `changes` source changes through Graph, sixteen at a time: title and department
    /// updates, renames, manager moves, disables, leavers (deleted) and joiners (created).
    /// `round` (the soak's) spreads the changes over other users each time: they are picked
    /// among the source's live users, and joiners get numbers no earlier round used.
    async fn make_changes(&self, options: &BenchOptions, round: usize) -> Result<(), BenchError> {
        let changes = options.changes;
        let ids: Vec<String> = self.emulator.with_directory(|dir| {
            dir.tenants
                .get(SOURCE)
                .map(|t| t.users.keys().cloned().collect())
                .unwrap_or_default()
        });
        let live = ids.len();
        if live == 0 {
            return Err(BenchError::Phase {
                phase: "changes".into(),
                message: "the source has no user left to change".into(),
            });
        }
        let stride = (live / changes.max(1)).max(1);
        // A different offset each round, so no user is picked twice in a row.
        let offset = stride / 2 + round.wrapping_mul(7919);
        let admin = &self.admin;
        let ids = &ids;
        let results: Vec<Result<(), String>> = futures::stream::iter(0..changes)
            .map(|k| {
                let i = (k * stride + offset) % live;
                let id = ids[i].clone();
                async move {
                    let (method, path, body) = match k % 10 {
                        0..=3 => (
                            reqwest::Method::PATCH,
                            format!("users/{id}"),
                            Some(json!({"jobTitle": format!("Senior title {round}.{k}")})),
                        ),
                        4 => (
                            reqwest::Method::PATCH,
                            format!("users/{id}"),
                            Some(json!({"displayName": format!("Renamed {round}.{k}"), "surname": format!("Renamed{k}")})),
                        ),
                        5 => (
                            reqwest::Method::PATCH,
                            format!("users/{id}"),
                            Some(json!({"department": "Research", "officeLocation": "HQ/1"})),
                        ),
                        6 => (
                            reqwest::Method::PUT,
                            format!("users/{id}/manager/$ref"),
                            Some(json!({"@odata.id": format!(
                                "{}/v1.0/users/{}",
                                admin.api_root().trim_end_matches("/v1.0"),
                                // Half a stride away: never a user this round changes
                                // (deletes) itself, and never the user itself.
                                ids[(i + (stride / 2).max(1)) % live]
                            )})),
                        ),
                        7 => (
                            reqwest::Method::PATCH,
                            format!("users/{id}"),
                            Some(json!({"accountEnabled": false})),
                        ),
                        8 => {
                            let mut props = generate::user_properties(options.users + round * changes + k);
                            props.insert(
                                "passwordProfile".into(),
                                json!({"password": "Bench-Pa55word!", "forceChangePasswordNextSignIn": false}),
                            );
                            (reqwest::Method::POST, "users".to_owned(), Some(Value::Object(props)))
                        }
                        _ => (reqwest::Method::DELETE, format!("users/{id}"), None),
                    };
                    admin
                        .send(method.clone(), &path, &[], body.as_ref(), 1)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{method} {path}: {e}"))
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(BenchError::Phase {
                phase: "changes".into(),
                message: format!(
                    "{} of {changes} source changes failed, e.g. {first}",
                    failures.len()
                ),
            }),
        }
    }

    /// The soak: `rounds` rounds of `changes` source changes and one daemon cycle each,
    /// resident memory sampled after every cycle; then the target is compared with the source.
    async fn soak(
        &self,
        handle: &DaemonHandle,
        options: &BenchOptions,
        cycles: &mut tokio::sync::broadcast::Receiver<CycleReport>,
        statuses: &mut tokio::sync::broadcast::Receiver<(String, crate::engine::JobStatus)>,
    ) -> Result<SoakReport, BenchError> {
        let started = std::time::Instant::now();
        let before = super::process::sample();
        let (source_before, target_before) = self.counts();
        let mut rss = Vec::with_capacity(options.soak_rounds);
        let mut failed = 0;
        let mut written = 0;
        for round in 1..=options.soak_rounds {
            self.make_changes(options, round).await?;
            let report = cycle_now(handle, "soak", cycles, statuses).await?;
            failed += report.failed;
            written += report.succeeded;
            rss.push(super::process::sample().rss_bytes);
        }
        let after = super::process::sample();
        let (source_after, target_after) = self.counts();
        let source = source_after.minus(&source_before);
        let target = target_after.minus(&target_before);
        let mismatch = self.target_mismatch();
        Ok(SoakReport::new(
            options,
            rss,
            started.elapsed(),
            after
                .client_cpu
                .saturating_sub(before.client_cpu)
                .as_secs_f64(),
            source.requests + target.requests,
            source.throttled + target.throttled,
            written,
            failed,
            mismatch,
        ))
    }

    pub(super) async fn stop(mut self) {
        if let Some(stop) = self.emulator_stop.take() {
            let _ = stop.send(());
        }
        // The emulator thread owns the last handle once ours is gone.
        drop(self.emulator);
        if let Some(thread) = self.emulator_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        drop(self.dir);
    }
}

/// Waits for the next cycle of the pair; a failed cycle (a status with a new failure) ends
/// the phase with its reason.
async fn next_cycle(
    phase: &str,
    cycles: &mut tokio::sync::broadcast::Receiver<CycleReport>,
    statuses: &mut tokio::sync::broadcast::Receiver<(String, crate::engine::JobStatus)>,
) -> Result<CycleReport, BenchError> {
    let failure = |message: String| BenchError::Phase {
        phase: phase.to_owned(),
        message,
    };
    let wait = async {
        loop {
            tokio::select! {
                report = cycles.recv() => match report {
                    Ok(report) => return Ok(report),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(e) => return Err(failure(format!("the daemon stopped: {e}"))),
                },
                status = statuses.recv() => match status {
                    Ok((_, status)) if status.count_successive_complete_failures > 0 => {
                        return Err(failure(format!(
                            "cycle failed: {}",
                            status.reason.unwrap_or_else(|| "unknown".into())
                        )));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(e) => return Err(failure(format!("the daemon stopped: {e}"))),
                },
            }
        }
    };
    tokio::time::timeout(CYCLE_TIMEOUT, wait)
        .await
        .map_err(|_| failure("no cycle finished in 6 hours".into()))?
}

async fn cycle_now(
    handle: &DaemonHandle,
    phase: &str,
    cycles: &mut tokio::sync::broadcast::Receiver<CycleReport>,
    statuses: &mut tokio::sync::broadcast::Receiver<(String, crate::engine::JobStatus)>,
) -> Result<CycleReport, BenchError> {
    handle
        .send(PAIR, JobCommand::RunNow)
        .await
        .map_err(|e| BenchError::Phase {
            phase: phase.to_owned(),
            message: e.to_string(),
        })?;
    next_cycle(phase, cycles, statuses).await
}

/// The pair: every internal member except the contractors, Entra's default mappings, the
/// quotas scaled with the emulator's clock (or out of the way with `--quota off`).
fn pair_yaml(base: &str, options: &BenchOptions) -> String {
    let scale = options.time_scale;
    let (writes, write_window, invitations, invitation_window) = match options.quota {
        QuotaMode::Graph => (3000, 150.0 / scale, 150, 5.0 / scale),
        QuotaMode::Off => (1_000_000, 1.0, 1_000_000, 1.0),
    };
    let window = |secs: f64| format!("{}ms", (secs * 1000.0).round().max(1.0) as u64);
    format!(
        "apiVersion: ctsync.io/v1
kind: SyncPair
metadata:
  name: {PAIR}
spec:
  source:
    tenantId: {SOURCE}
    credentials:
      clientId: {APP}
      clientSecret: {{ file: secret.txt }}
  target:
    tenantId: {TARGET}
    credentials:
      clientId: {APP}
      clientSecret: {{ file: secret.txt }}
  scope:
    mode: all
    filters:
      - title: Not contractors
        clauses:
          - {{ attribute: department, operator: NOT EQUALS, value: {out} }}
  deletionGuard:
    threshold: 100000
  graph:
    authority: {base}
    baseUrl: {base}
    quotas:
      writes: {writes}
      writeWindow: {ww}
      invitations: {invitations}
      invitationWindow: {iw}
",
        out = generate::OUT_OF_SCOPE_DEPARTMENT,
        ww = window(write_window),
        iw = window(invitation_window),
    )
}

/// The source admin's write pacing: [`pair_yaml`]'s quota for the daemon, applied to the admin.
fn admin_write_quota(options: &BenchOptions) -> WriteQuota {
    let (writes, window) = match options.quota {
        QuotaMode::Graph => (3000, 150.0 / options.time_scale),
        QuotaMode::Off => (1_000_000, 1.0),
    };
    WriteQuota {
        writes: std::num::NonZeroU32::new(writes).unwrap_or(std::num::NonZeroU32::MIN),
        per: std::time::Duration::from_secs_f64(window.max(0.001)),
    }
}
