use chrono::Duration as ChronoDuration;
use ctsync::engine::{JobCommand, JobState, QuarantineReason};
use ctsync::store::StateStore;

use crate::harness::*;
use crate::world::*;

#[tokio::test]
async fn revoked_credentials_quarantine_at_once_and_a_successful_retry_lifts_it() {
    let world = two_tenants(sales(&["adele"])).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let mut daemon = start(&world, &file);
    let first = daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    assert_eq!(first.code, JobState::Active);
    assert!(first.quarantine.is_none());

    revoke_credentials(&world).await;
    let quarantined = daemon.run_now(PAIR).await;
    assert_eq!(quarantined.code, JobState::Quarantine);
    assert_eq!(quarantined.count_successive_complete_failures, 1);
    let q = quarantined.quarantine.clone().expect("quarantined");
    assert_eq!(q.reason, QuarantineReason::EncounteredQuarantineException);
    assert_eq!(q.series_count, 0);
    assert_eq!(q.current_began, q.series_began);
    assert_eq!(q.next_attempt, q.series_began + ChronoDuration::hours(6));
    assert!(!q.error.code.is_empty());
    assert_eq!(
        quarantined.reason.as_deref(),
        Some("EncounteredQuarantineException")
    );
    let execution = quarantined.last_execution.clone().expect("execution");
    assert_eq!(execution.state, "Failed");
    // Persisted as Graph shapes it.
    let stored = world.store.status(PAIR).await.unwrap().expect("saved");
    assert_eq!(stored["code"], "Quarantine");
    assert_eq!(
        stored["quarantine"]["reason"],
        "EncounteredQuarantineException"
    );
    assert!(stored["quarantine"]["seriesBegan"].is_string());

    // A retry that fails again continues the series on Entra's schedule (12 h after the
    // first failure).
    let again = daemon.run_now(PAIR).await;
    let q2 = again.quarantine.expect("still quarantined");
    assert_eq!(q2.series_count, 1);
    assert_eq!(q2.series_began, q.series_began);
    assert_eq!(q2.next_attempt, q.series_began + ChronoDuration::hours(12));
    assert_eq!(again.count_successive_complete_failures, 2);

    // Fixed: the next retry succeeds and lifts the quarantine by itself.
    restore_credentials(&world).await;
    let lifted = daemon.run_now(PAIR).await;
    assert_eq!(lifted.code, JobState::Active);
    assert!(lifted.quarantine.is_none());
    assert_eq!(lifted.count_successive_complete_failures, 0);
    assert_eq!(lifted.reason, None);
    daemon.stop().await;
}

#[tokio::test]
async fn start_clears_a_quarantine_and_restart_quarantine_state_lifts_it() {
    let world = two_tenants(sales(&["adele"])).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let mut daemon = start(&world, &file);
    daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    revoke_credentials(&world).await;
    daemon.run_now(PAIR).await;
    restore_credentials(&world).await;
    daemon.command(PAIR, JobCommand::Start).await;
    let started = daemon.status_where(PAIR, |s| s.quarantine.is_none()).await;
    assert_ne!(started.code, JobState::Quarantine);

    revoke_credentials(&world).await;
    daemon.run_now(PAIR).await;
    restore_credentials(&world).await;
    daemon
        .restart(PAIR, "QuarantineState")
        .await
        .expect("restart");
    let lifted = daemon.status_where(PAIR, |s| s.quarantine.is_none()).await;
    assert_ne!(lifted.code, JobState::Quarantine);
    // The cycle the restart ran succeeded and stayed out of quarantine.
    let after = daemon
        .status_where(PAIR, |s| {
            s.last_execution
                .as_ref()
                .is_some_and(|e| e.state != "Failed")
        })
        .await;
    assert_eq!(after.code, JobState::Active);
    daemon.stop().await;
}

/// A small tenant: evaluate from 2 failures; every delay scaled down 10,000 times
/// (6 h → ~2 s, escrow retry 40 min → ~0.24 s).
const SMALL_TENANT: &str = "  quarantine:\n    minFailures: 2\n    timeScale: 0.0001\n";

#[tokio::test]
async fn a_high_failure_rate_quarantines_and_the_retry_schedule_lifts_it_after_recovery() {
    let marketing = ["adele", "bob", "carol"]
        .iter()
        .map(|a| {
            user(
                a,
                "contoso.com",
                serde_json::json!({"department": "Marketing"}),
            )
        })
        .collect();
    let world = two_tenants(marketing).await;
    let file = world.pair_file(
        PAIR,
        CONTOSO,
        FABRIKAM,
        &format!("{SALES_SCOPE}{SMALL_TENANT}"),
    );
    let mut daemon = start(&world, &file);
    daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    // Three users come into scope and every invitation fails.
    for alias in ["adele", "bob", "carol"] {
        let id = world
            .source_id(CONTOSO, &format!("{alias}@contoso.com"))
            .await;
        world
            .patch(CONTOSO, &id, serde_json::json!({"department": "Sales"}))
            .await;
    }
    fail_next(&world, "POST", "/invitations", 3).await;
    let quarantined = daemon.run_now(PAIR).await;
    let q = quarantined.quarantine.clone().expect("quarantined");
    assert_eq!(
        q.reason,
        QuarantineReason::EncounteredEscrowProportionThreshold
    );
    assert_eq!(quarantined.code, JobState::Quarantine);
    assert!(!quarantined.escrows_pruned);
    let execution = quarantined.last_execution.expect("execution");
    assert_eq!(execution.count_escrowed, 3);
    assert_eq!(execution.state, "EntryLevelErrors");
    assert_eq!(world.store.escrows(PAIR).await.unwrap().len(), 3);
    assert!(world.b2b_users(FABRIKAM).await.is_empty());

    // The faults are used up; the scheduled retry (no command) re-reads the escrowed users,
    // creates them and lifts the quarantine.
    let lifted = daemon.status_where(PAIR, |s| s.quarantine.is_none()).await;
    assert_eq!(lifted.code, JobState::Active);
    assert!(world.store.escrows(PAIR).await.unwrap().is_empty());
    assert_eq!(world.b2b_users(FABRIKAM).await.len(), 3);
    daemon.stop().await;
}

#[tokio::test]
async fn an_initial_cycle_over_the_threshold_prunes_its_escrows_and_pauses_as_graph_documents() {
    let world = two_tenants(sales(&["adele", "bob", "carol"])).await;
    let file = world.pair_file(
        PAIR,
        CONTOSO,
        FABRIKAM,
        &format!("{SALES_SCOPE}{SMALL_TENANT}"),
    );
    fail_next(&world, "POST", "/invitations", 3).await;
    let mut daemon = start(&world, &file);
    let pruned = daemon.status_where(PAIR, |s| s.escrows_pruned).await;
    assert_eq!(pruned.code, JobState::Paused);
    assert!(pruned.quarantine.is_none());
    assert_eq!(
        pruned.reason.as_deref(),
        Some("EncounteredEscrowProportionThreshold")
    );
    assert_eq!(pruned.last_execution.expect("ran").count_escrowed, 3);
    assert!(world.store.escrows(PAIR).await.unwrap().is_empty());
    // The failures stay in the provisioning log.
    let failures = world
        .store
        .provisioning_log(
            PAIR,
            &ctsync::store::LogQuery {
                status: Some(ctsync::store::ProvisioningResult::Failure),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failures.len(), 3);
    // Errors fixed, the portal's restart re-evaluates everyone.
    daemon.restart(PAIR, "").await.expect("restart");
    let report = daemon.cycle(PAIR).await;
    assert_eq!(report.counts["create"], 3, "{report:?}");
    let status = daemon.handle.status(PAIR).await.expect("pair");
    assert!(!status.escrows_pruned);
    assert_eq!(status.code, JobState::Active);
    daemon.stop().await;
}

#[tokio::test]
async fn a_quarantine_that_never_recovers_disables_the_job_after_four_weeks() {
    let world = two_tenants(sales(&["adele"])).await;
    // Four weeks scaled to ~2.4 s; retries follow the schedule without any command.
    let file = world.pair_file(
        PAIR,
        CONTOSO,
        FABRIKAM,
        &format!("{SALES_SCOPE}  quarantine:\n    timeScale: 0.000001\n"),
    );
    revoke_credentials(&world).await;
    let mut daemon = start(&world, &file);
    let disabled = daemon
        .status_where(PAIR, |s| s.code == JobState::Disabled)
        .await;
    let q = disabled.quarantine.expect("still reported");
    assert!(q.series_count >= 3, "{q:?}");
    // Start re-enables it once the cause is fixed.
    restore_credentials(&world).await;
    daemon.command(PAIR, JobCommand::Start).await;
    let active = daemon
        .status_where(PAIR, |s| {
            s.code == JobState::Active
                && s.last_execution
                    .as_ref()
                    .is_some_and(|e| e.state != "Failed")
        })
        .await;
    assert!(active.quarantine.is_none());
    assert!(world.b2b_user(FABRIKAM, "adele").await.is_some());
    daemon.stop().await;
}

/// A TCP proxy to the emulator's token endpoint that can be "unplugged": while down it accepts connections and
/// drops them at once, as a network blip does.
struct Blip {
    url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn blip_proxy(world: &World) -> Blip {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = world.emulator.addr();
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                drop(inbound);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Blip { url, up }
}

/// Failure 6: one network blip while the job starts is not a quarantine. The error names the
/// URL and the cause; the job retries soon; only a failure that persists across several cycles
/// quarantines.
#[tokio::test]
async fn a_network_blip_is_retried_soon_and_only_a_persistent_one_quarantines() {
    let world = two_tenants(sales(&["adele"])).await;
    let proxy = blip_proxy(&world).await;
    let file = world.pair_file(PAIR, CONTOSO, FABRIKAM, SALES_SCOPE);
    let text = std::fs::read_to_string(&file).expect("pair file").replace(
        &format!("authority: {}", world.emulator.base_url()),
        &format!("authority: {}", proxy.url),
    );
    std::fs::write(&file, text).expect("pair file");
    let mut daemon = start(&world, &file);
    let first = daemon
        .status_where(PAIR, |s| s.last_execution.is_some())
        .await;
    assert!(
        first.quarantine.is_none(),
        "one blip quarantined: {first:?}"
    );
    assert_ne!(first.code, JobState::Quarantine);
    let error = first
        .last_execution
        .expect("execution")
        .error
        .expect("error");
    assert!(
        error.message.contains(&proxy.url) && error.message.contains("token"),
        "the error names the URL: {}",
        error.message
    );

    // The network is back: the retry succeeds.
    proxy.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let healed = daemon.run_now(PAIR).await;
    assert!(healed.quarantine.is_none());
    assert_eq!(healed.count_successive_complete_failures, 0, "{healed:?}");

    // A failure that persists across cycles does quarantine.
    // (Each restart of the daemon starts without a cached token, as after a deploy.)
    proxy.up.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut last = healed;
    for round in 0..3 {
        daemon.stop().await;
        daemon = start(&world, &file);
        let before = last.last_execution.clone();
        last = daemon
            .status_where(PAIR, |s| s.last_execution != before)
            .await;
        assert_eq!(
            last.count_successive_complete_failures,
            round + 1,
            "{last:?}"
        );
        if round < 2 {
            assert!(last.quarantine.is_none(), "{last:?}");
        }
    }
    let q = last
        .quarantine
        .clone()
        .unwrap_or_else(|| panic!("persistent failure quarantines: {last:?}"));
    assert_eq!(q.reason, QuarantineReason::EncounteredQuarantineException);
    daemon.stop().await;
}
