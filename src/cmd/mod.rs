//! One module per subcommand: its clap `Args` and an async `run` returning the exit code.
//! Usage and configuration errors exit with status 2.

pub mod bench;
pub mod control;
pub mod demo;
pub mod emulator;
pub mod expr;
pub mod filter;
pub mod migrate_store;
pub mod plan;
pub mod provision;
pub mod run;
pub mod store;
pub mod validate;

/// Exit status for usage and configuration errors.
pub const EXIT_USAGE: u8 = 2;

/// Exit status of `run --once` when the deletion guard staged deletes (distinct from a failure).
pub const EXIT_STAGED_DELETES: u8 = 3;

/// Cancels `token` on SIGINT or SIGTERM.
pub async fn shutdown_on_signal(token: tokio_util::sync::CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}
