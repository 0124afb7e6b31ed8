//! Prometheus metrics. Events (finished cycles, failed ones) are counted as the daemon reports
//! them; gauges that describe the present (escrows, quarantine, job state, last success) and
//! Graph's request counters are read from the daemon and the store at scrape time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::engine::{CycleKind, CycleReport, DaemonHandle, JobState, JobStatus};
use crate::graph::{GraphClient, RequestStats};
use crate::store::LogQuery;

/// How many finished cycles per pair the status page keeps.
const RECENT_CYCLES: usize = 5;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CycleLabels {
    pair: String,
    kind: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    pair: String,
    action: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupActionLabels {
    pair: String,
    /// A group plan action (create, adopt, update, restore, delete, stagedDelete, skip, disputed)
    /// or `memberAdded` / `memberRemoved`.
    action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabels {
    pair: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EscrowLabels {
    pair: String,
    /// `object` or `reference` (Entra counts reference failures apart).
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    pair: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

type DurationFamily = Family<PairLabels, Histogram, fn() -> Histogram>;

/// 50 ms … 3 h: an incremental cycle with nothing to do up to a large initial sync. Written out
/// rather than computed: `exponential_buckets(0.05, 3.0, …)` gives labels such as
/// `le="0.15000000000000002"`, which people read and dashboards copy.
const CYCLE_SECONDS_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 10800.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(CYCLE_SECONDS_BUCKETS.iter().copied())
}

/// Every metric the admin API serves, and what the status page keeps of recent cycles.
pub struct Metrics {
    registry: Registry,
    cycles: Family<CycleLabels, Counter>,
    actions: Family<ActionLabels, Counter>,
    group_actions: Family<GroupActionLabels, Counter>,
    group_sync_blocked: Family<PairLabels, Gauge>,
    cycle_duration: DurationFamily,
    last_success: Family<PairLabels, Gauge<f64, AtomicU64>>,
    escrows: Family<EscrowLabels, Gauge>,
    quarantined: Family<PairLabels, Gauge>,
    job_state: Family<StateLabels, Gauge>,
    graph_requests: Family<TenantLabels, Counter>,
    graph_throttled: Family<TenantLabels, Counter>,
    /// Shared store only: leases this replica holds, live replicas, and counters of takeovers
    /// and fencing refusals (set from the replica's own counts at scrape time).
    leases_held: Gauge,
    live_replicas: Gauge,
    takeovers: Counter,
    fencing_refusals: Counter,
    replica_seen: Mutex<(u64, u64)>,
    /// Last counter values seen per Graph client (by identity), so counters only grow even when
    /// hot reload swaps a pair's clients.
    graph_seen: Mutex<HashMap<usize, (String, RequestStats)>>,
    /// Serializes scrapes: each refreshes the gauges, then encodes.
    scrape: tokio::sync::Mutex<()>,
    recent: Mutex<BTreeMap<String, VecDeque<CycleReport>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ctsync");
        let cycles = Family::<CycleLabels, Counter>::default();
        registry.register(
            "cycles",
            "Cycles that ended, by pair, kind (initial, incremental; none when the cycle failed \
             before reading) and result (succeeded, entryLevelErrors, failed)",
            cycles.clone(),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Provisioning actions tried, by pair, action and result (provisioning log spelling)",
            actions.clone(),
        );
        let group_actions = Family::<GroupActionLabels, Counter>::default();
        registry.register(
            "group_actions",
            "Group sync: planned group actions and membership changes, by pair and action",
            group_actions.clone(),
        );
        let group_sync_blocked = Family::<PairLabels, Gauge>::default();
        registry.register(
            "group_sync_blocked",
            "1 when the last cycle wrote no group because the target refuses group sync",
            group_sync_blocked.clone(),
        );
        let cycle_duration: DurationFamily = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "cycle_duration",
            "Duration of finished cycles",
            Unit::Seconds,
            cycle_duration.clone(),
        );
        let last_success = Family::<PairLabels, Gauge<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "last_successful_cycle_timestamp",
            "When the pair's last successful cycle ended (Unix time)",
            Unit::Seconds,
            last_success.clone(),
        );
        let escrows = Family::<EscrowLabels, Gauge>::default();
        registry.register(
            "escrows",
            "Failed actions waiting to be retried",
            escrows.clone(),
        );
        let quarantined = Family::<PairLabels, Gauge>::default();
        registry.register(
            "job_quarantined",
            "1 while the pair's job is quarantined",
            quarantined.clone(),
        );
        let job_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "job_state",
            "The job's synchronizationStatus code: 1 for the current one, 0 for the others",
            job_state.clone(),
        );
        let graph_requests = Family::<TenantLabels, Counter>::default();
        registry.register(
            "graph_requests",
            "HTTP requests sent to Microsoft Graph, by tenant (retries count)",
            graph_requests.clone(),
        );
        let graph_throttled = Family::<TenantLabels, Counter>::default();
        registry.register(
            "graph_throttled_requests",
            "Graph responses with status 429, by tenant",
            graph_throttled.clone(),
        );
        let leases_held = Gauge::default();
        registry.register(
            "leases_held",
            "Pair leases this replica holds (shared store)",
            leases_held.clone(),
        );
        let live_replicas = Gauge::default();
        registry.register(
            "live_replicas",
            "Replicas that renewed their presence within one lease duration (shared store)",
            live_replicas.clone(),
        );
        let takeovers = Counter::default();
        registry.register(
            "lease_takeovers",
            "Leases this replica took over after another replica's lease expired",
            takeovers.clone(),
        );
        let fencing_refusals = Counter::default();
        registry.register(
            "fencing_refusals",
            "Store writes of this replica refused because its lease may have passed on",
            fencing_refusals.clone(),
        );
        Metrics {
            registry,
            leases_held,
            live_replicas,
            takeovers,
            fencing_refusals,
            replica_seen: Mutex::new((0, 0)),
            cycles,
            actions,
            group_actions,
            group_sync_blocked,
            cycle_duration,
            last_success,
            escrows,
            quarantined,
            job_state,
            graph_requests,
            graph_throttled,
            graph_seen: Mutex::new(HashMap::new()),
            scrape: tokio::sync::Mutex::new(()),
            recent: Mutex::new(BTreeMap::new()),
        }
    }

    /// The last few finished cycles of `pair`, newest first.
    pub fn recent_cycles(&self, pair: &str) -> Vec<CycleReport> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(pair)
            .map(|q| q.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Counts a finished cycle; `actions` are its provisioning log's (action, result) pairs.
    pub fn record_cycle(&self, report: &CycleReport, actions: &[(String, String)]) {
        let result = if report.failed > 0 {
            "entryLevelErrors"
        } else {
            "succeeded"
        };
        self.cycles
            .get_or_create(&CycleLabels {
                pair: report.pair.clone(),
                kind: kind_label(report.kind).into(),
                result: result.into(),
            })
            .inc();
        self.cycle_duration
            .get_or_create(&PairLabels {
                pair: report.pair.clone(),
            })
            .observe(report.duration_ms as f64 / 1000.0);
        for (action, result) in actions {
            self.actions
                .get_or_create(&ActionLabels {
                    pair: report.pair.clone(),
                    action: action.clone(),
                    result: result.clone(),
                })
                .inc();
        }
        if let Some(g) = &report.groups {
            let pair = PairLabels {
                pair: report.pair.clone(),
            };
            self.group_sync_blocked
                .get_or_create(&pair)
                .set(i64::from(g.blocked.is_some()));
            let counts = g
                .counts
                .iter()
                .filter(|(a, _)| a.as_str() != "noChange")
                .map(|(a, n)| (a.as_str(), *n))
                .chain([
                    ("memberAdded", g.member_adds),
                    ("memberRemoved", g.member_removals),
                ]);
            for (action, n) in counts.filter(|(_, n)| *n > 0) {
                self.group_actions
                    .get_or_create(&GroupActionLabels {
                        pair: report.pair.clone(),
                        action: action.to_owned(),
                    })
                    .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            }
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let queue = recent.entry(report.pair.clone()).or_default();
        queue.push_back(report.clone());
        while queue.len() > RECENT_CYCLES {
            queue.pop_front();
        }
    }

    /// Counts a cycle that could not run (preflight, credentials, a read that failed).
    pub fn record_failed_cycle(&self, pair: &str) {
        self.cycles
            .get_or_create(&CycleLabels {
                pair: pair.to_owned(),
                kind: "none".into(),
                result: "failed".into(),
            })
            .inc();
    }

    /// Refreshes the scrape-time metrics and renders everything in the text format.
    pub async fn render(&self, handle: &DaemonHandle) -> Result<String, std::fmt::Error> {
        let _one_at_a_time = self.scrape.lock().await;
        self.refresh(handle).await;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    async fn refresh(&self, handle: &DaemonHandle) {
        if let Some(replica) = handle.replica() {
            use std::sync::atomic::Ordering;
            self.leases_held
                .set(i64::try_from(handle.guards().len()).unwrap_or(i64::MAX));
            self.live_replicas
                .set(i64::try_from(replica.live_replicas()).unwrap_or(i64::MAX));
            let takeovers = replica.takeovers.load(Ordering::Relaxed);
            let refusals = replica.fencing_refusals(handle);
            let mut seen = self
                .replica_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.takeovers.inc_by(takeovers.saturating_sub(seen.0));
            self.fencing_refusals
                .inc_by(refusals.saturating_sub(seen.1));
            *seen = (takeovers.max(seen.0), refusals.max(seen.1));
        }
        let pairs = handle.pairs();
        // Removed pairs disappear from the gauges.
        self.escrows.clear();
        self.quarantined.clear();
        self.job_state.clear();
        self.last_success.clear();
        for pair in &pairs {
            let status = handle.status(pair).await.unwrap_or_default();
            self.set_status(pair, &status);
            match handle.escrows(pair).await {
                Ok(escrows) => {
                    let references = escrows.iter().filter(|e| e.reference).count();
                    for (kind, n) in [
                        ("object", escrows.len() - references),
                        ("reference", references),
                    ] {
                        self.escrows
                            .get_or_create(&EscrowLabels {
                                pair: pair.clone(),
                                kind: kind.into(),
                            })
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                }
                Err(e) => tracing::warn!(pair = %pair, error = %e, "metrics: cannot read escrows"),
            }
        }
        let mut clients = Vec::new();
        for pair in &pairs {
            if let Some(rt) = handle.runtime(pair) {
                clients.push(rt.source.clone());
                clients.push(rt.target.clone());
            }
        }
        self.count_graph(&clients);
    }

    fn set_status(&self, pair: &str, status: &JobStatus) {
        let labels = PairLabels {
            pair: pair.to_owned(),
        };
        self.quarantined
            .get_or_create(&labels)
            .set(i64::from(status.code == JobState::Quarantine));
        for state in [
            JobState::NotRun,
            JobState::Active,
            JobState::Paused,
            JobState::Quarantine,
            JobState::Disabled,
        ] {
            self.job_state
                .get_or_create(&StateLabels {
                    pair: pair.to_owned(),
                    state: format!("{state:?}"),
                })
                .set(i64::from(status.code == state));
        }
        if let Some(execution) = &status.last_successful_execution {
            let seconds = execution.time_ended.timestamp_millis() as f64 / 1000.0;
            self.last_success.get_or_create(&labels).set(seconds);
        }
    }

    /// Adds what each Graph client did since the last scrape. Pairs share pooled clients, so
    /// clients are told apart by identity, not by pair.
    fn count_graph(&self, clients: &[GraphClient]) {
        let mut seen = self.graph_seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut live = HashMap::new();
        for client in clients {
            let key = Arc::as_ptr(&client.inner) as usize;
            if live.contains_key(&key) {
                continue;
            }
            let now = client.stats();
            let tenant = client.tenant_id().to_owned();
            let before = match seen.get(&key) {
                Some((t, s)) if *t == tenant && s.requests <= now.requests => *s,
                // A client not seen before (or a new one at a freed address).
                _ => RequestStats::default(),
            };
            let labels = TenantLabels {
                tenant: tenant.clone(),
            };
            self.graph_requests
                .get_or_create(&labels)
                .inc_by(now.requests - before.requests);
            self.graph_throttled
                .get_or_create(&labels)
                .inc_by(now.throttled.saturating_sub(before.throttled));
            live.insert(key, (tenant, now));
        }
        *seen = live;
    }
}

fn kind_label(kind: CycleKind) -> &'static str {
    match kind {
        CycleKind::Initial => "initial",
        CycleKind::Incremental => "incremental",
    }
}

/// The daemon's event streams, subscribed before its jobs start so no cycle is missed.
pub struct Feed {
    cycles: broadcast::Receiver<CycleReport>,
    statuses: broadcast::Receiver<(String, JobStatus)>,
}

impl Feed {
    pub fn subscribe(handle: &DaemonHandle) -> Feed {
        Feed {
            cycles: handle.subscribe_cycles(),
            statuses: handle.subscribe_status(),
        }
    }

    /// Feeds `metrics` until shutdown or until the daemon is gone.
    pub async fn run(
        mut self,
        metrics: Arc<Metrics>,
        handle: DaemonHandle,
        shutdown: CancellationToken,
    ) {
        // Failed executions already counted, by pair: statuses are saved many times.
        let mut failed_seen: HashMap<String, String> = HashMap::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                cycle = self.cycles.recv() => match cycle {
                    Ok(report) => {
                        let actions = cycle_actions(&handle, &report).await;
                        metrics.record_cycle(&report, &actions);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "metrics fell behind the cycle stream");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                status = self.statuses.recv() => match status {
                    Ok((pair, status)) => {
                        let Some(execution) = &status.last_execution else { continue };
                        if execution.state != "Failed" {
                            continue;
                        }
                        let id = &execution.activity_identifier;
                        if failed_seen.get(&pair) != Some(id) {
                            failed_seen.insert(pair.clone(), id.clone());
                            metrics.record_failed_cycle(&pair);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "metrics fell behind the status stream");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// The (action, result) of every provisioning log entry of the cycle.
async fn cycle_actions(handle: &DaemonHandle, report: &CycleReport) -> Vec<(String, String)> {
    let query = LogQuery {
        since: Some(report.started),
        action: None,
        status: None,
        limit: Some(u32::MAX),
    };
    match handle.provisioning_log(&report.pair, &query).await {
        Ok(entries) => entries
            .iter()
            .filter(|e| e.cycle_id == report.cycle_id)
            .map(|e| {
                (
                    e.provisioning_action.as_str().to_owned(),
                    e.provisioning_status_info.status.as_str().to_owned(),
                )
            })
            .collect(),
        Err(e) => {
            tracing::warn!(pair = %report.pair, error = %e, "metrics: cannot read the cycle's log");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_pass_feeds_group_metrics() {
        let m = Metrics::new();
        let report: CycleReport = serde_json::from_value(serde_json::json!({
            "pair": "p", "cycleId": "c", "kind": "incremental", "started": "2026-01-01T00:00:00Z",
            "durationMs": 5, "counts": {}, "succeeded": 0, "failed": 0, "managerUpdates": 0,
            "guardTriggered": false, "blocked": null, "graphRequests": 1, "throttledRequests": 0,
            "groups": {"evaluated": true, "counts": {"create": 1, "noChange": 2}, "memberAdds": 3,
                "memberRemovals": 0, "drift": 0, "succeeded": 1, "failed": 0, "blocked": null,
                "guardTriggered": false, "watermarkSaved": true}
        }))
        .expect("report");
        m.record_cycle(&report, &[]);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).expect("encode");
        assert!(
            out.contains("ctsync_group_actions_total{pair=\"p\",action=\"create\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("ctsync_group_actions_total{pair=\"p\",action=\"memberAdded\"} 3"),
            "{out}"
        );
        assert!(!out.contains("action=\"noChange\""), "{out}");
        assert!(
            out.contains("ctsync_group_sync_blocked{pair=\"p\"} 0"),
            "{out}"
        );
    }
}
