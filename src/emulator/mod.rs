//! A Microsoft Graph v1.0 emulator for several tenants on one loopback port. Shares no code with
//! `graph` or `engine`, so that a misreading of Graph in one cannot hide in the other.
//!
//! Run it in-process with [`spawn`]; the CLI (`ctsync emulator`) is a thin wrapper.

// Handlers return `Result<Reply, GraphError>`; the error carries the whole Graph envelope and is
// only built on the error path, so boxing it would buy nothing but noise.
#![allow(clippy::result_large_err)]

mod applications;
mod auth;
mod batch;
mod build;
mod call;
mod clock;
mod control;
mod deleted_groups;
mod deleted_items;
mod delta;
mod dispatch;
mod errors;
mod faults;
mod filter;
mod filter_rules;
pub mod generate;
mod group_delta;
mod group_log;
mod groups;
mod index;
mod invitations;
pub mod model;
mod odata;
mod persist;
mod policy;
mod props;
pub mod seed;
mod server;
mod service_principals;
mod shapes;
mod throttle;
mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use errors::EmulatorError;
pub use model::Directory;
pub use seed::Seed;
pub use server::{RequestRecord, WriteRecord};

/// How to run the emulator. `Default` = 127.0.0.1:0, no state file, real time, throttling on.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    pub listen: SocketAddr,
    /// Persist the directory here (JSON, atomic writes) and reload it on start.
    pub state_file: Option<PathBuf>,
    /// Virtual seconds per real second.
    pub time_scale: f64,
    pub throttling: bool,
    /// Access-token lifetime on the emulator clock.
    pub token_lifetime: chrono::Duration,
    /// Default page size of collections (`$top` overrides, up to 999).
    pub page_size: usize,
    pub delta_page_size: usize,
    /// Delta tokens older than this (emulator clock) need a resync (Graph: 7 days).
    pub delta_token_retention: chrono::Duration,
    /// How an expired delta token is answered: 400 (default) or 410 Gone with `Location`.
    pub expired_delta_status: u16,
    /// Soft-deleted users are purged after this (Graph: 30 days).
    pub soft_delete_retention: chrono::Duration,
    /// How often a changed directory is written to `state_file` (at least; see `persist`).
    pub save_interval: Duration,
    /// Added to every Graph request before it is served (real Graph answers in 50–300 ms;
    /// loopback hides what sequential client code costs). Changeable at run time.
    pub latency: Duration,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
            time_scale: 1.0,
            throttling: true,
            token_lifetime: chrono::Duration::seconds(3599),
            page_size: 100,
            delta_page_size: 100,
            delta_token_retention: chrono::Duration::days(7),
            expired_delta_status: 400,
            soft_delete_retention: chrono::Duration::days(30),
            save_interval: Duration::from_millis(500),
            latency: Duration::ZERO,
        }
    }
}

/// A running emulator. Dropping it without [`EmulatorHandle::shutdown`] stops serving when the
/// runtime ends but does not save state.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    emulator: Arc<server::Emulator>,
    cancel: CancellationToken,
    server: Mutex<Option<JoinHandle<()>>>,
    saver: Mutex<Option<JoinHandle<()>>>,
    state_file: Option<PathBuf>,
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: Graph at `{base}/v1.0`, tokens at `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn base_url(&self) -> String {
        self.emulator.base_url.clone()
    }

    /// Every successful Graph write so far, in order.
    pub fn writes(&self) -> Vec<server::WriteRecord> {
        server::lock(&self.emulator.writes).clone()
    }

    /// Starts (or stops) recording every Graph round trip, for [`EmulatorHandle::requests`].
    pub fn record_requests(&self, on: bool) {
        self.emulator
            .recording_requests
            .store(on, Ordering::Release);
    }

    /// The Graph round trips recorded so far, in order (a `$batch` counts once).
    pub fn requests(&self) -> Vec<server::RequestRecord> {
        server::lock(&self.emulator.requests).clone()
    }

    /// A copy of the whole directory (what `/_emulator/export` returns).
    pub fn directory(&self) -> Directory {
        server::lock(&self.emulator.dir).clone()
    }

    /// Runs `f` on the live directory (for test setup that bypasses Graph).
    pub fn with_directory<R>(&self, f: impl FnOnce(&mut Directory) -> R) -> R {
        let mut dir = server::lock(&self.emulator.dir);
        let r = f(&mut dir);
        // `f` may have edited users directly.
        dir.reindex();
        self.emulator.mark_dirty();
        r
    }

    /// Moves the emulator clock forward (purges soft-deleted users whose time has come).
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.emulator.clock.advance(by);
        let mut dir = server::lock(&self.emulator.dir);
        self.emulator.upkeep(&mut dir);
    }

    pub fn set_throttling(&self, enabled: bool) {
        self.emulator.throttling.store(enabled, Ordering::Release);
    }

    /// How expired delta tokens are answered from now on: 410 (Gone + `Location`) or 400.
    pub fn set_expired_delta_status(&self, status: u16) {
        server::lock(&self.emulator.settings).expired_delta_status = if status == 410 {
            axum::http::StatusCode::GONE
        } else {
            axum::http::StatusCode::BAD_REQUEST
        };
    }

    /// Sets the latency added to every Graph request (`PUT /_emulator/latency` does the same).
    pub fn set_latency(&self, latency: Duration) {
        self.emulator.set_latency(latency);
    }

    /// Stops serving, waits for in-flight requests, and saves state if a state file is set.
    pub async fn shutdown(self) -> Result<(), EmulatorError> {
        self.cancel.cancel();
        let server = server::lock(&self.server).take();
        if let Some(h) = server {
            let _ = h.await;
        }
        let saver = server::lock(&self.saver).take();
        if let Some(h) = saver {
            let _ = h.await;
        }
        if let Some(path) = &self.state_file {
            persist::save(&self.emulator, path)?;
        }
        Ok(())
    }
}

/// Starts the emulator on `options.listen` with the directory from `options.state_file` when
/// it exists, otherwise from `seed`.
pub async fn spawn(seed: Seed, options: EmulatorOptions) -> Result<EmulatorHandle, EmulatorError> {
    let loaded = match &options.state_file {
        Some(path) if path.exists() => Some(persist::load(path)?),
        _ => None,
    };
    let start = loaded
        .as_ref()
        .and_then(|d| d.saved_at)
        .unwrap_or_else(chrono::Utc::now);
    let dir = match loaded {
        Some(d) => d,
        None => build::directory_from_seed(&seed, start)?,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: options.listen.to_string(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind {
            addr: options.listen.to_string(),
            source,
        })?;
    let emulator = Arc::new(server::Emulator {
        dir: Mutex::new(dir),
        clock: clock::Clock::new(start, options.time_scale),
        tokens: Mutex::default(),
        throttle: Mutex::default(),
        throttling: AtomicBool::new(options.throttling),
        latency_us: AtomicU64::new(u64::try_from(options.latency.as_micros()).unwrap_or(u64::MAX)),
        faults: Mutex::default(),
        dirty: AtomicBool::new(false),
        settings: Mutex::new(call::Settings {
            page_size: options.page_size.clamp(1, 999),
            delta_page_size: options.delta_page_size.max(1),
            delta_token_retention: options.delta_token_retention,
            expired_delta_status: if options.expired_delta_status == 410 {
                axum::http::StatusCode::GONE
            } else {
                axum::http::StatusCode::BAD_REQUEST
            },
            soft_delete_retention: options.soft_delete_retention,
        }),
        token_lifetime: options.token_lifetime,
        base_url: format!("http://{addr}"),
        writes: Mutex::default(),
        requests: Mutex::default(),
        recording_requests: AtomicBool::new(false),
    });
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(server::token))
        .merge(control::router())
        .fallback(server::fallback)
        .with_state(emulator.clone());
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    // Small responses (204s) must not wait for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "emulator server stopped");
        }
    });
    let saver = options.state_file.clone().map(|path| {
        let emu = emulator.clone();
        let stop = cancel.clone();
        let every = options.save_interval;
        tokio::spawn(async move {
            let mut wait = every;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {
                        if !emu.dirty.swap(false, Ordering::AcqRel) {
                            continue;
                        }
                        let started = std::time::Instant::now();
                        let (e2, p2) = (emu.clone(), path.clone());
                        let saved = tokio::task::spawn_blocking(move || persist::save(&e2, &p2)).await;
                        if !matches!(saved, Ok(Ok(()))) {
                            match saved {
                                Ok(Err(e)) => tracing::error!(error = %e, "cannot save emulator state"),
                                Err(e) => tracing::error!(error = %e, "emulator state saver failed"),
                                Ok(Ok(())) => {}
                            }
                            emu.mark_dirty();
                        }
                        wait = every.max(started.elapsed() * persist::SAVE_SPACING);
                    }
                }
            }
        })
    });
    tracing::info!(addr = %addr, "emulator listening");
    Ok(EmulatorHandle {
        addr,
        emulator,
        cancel,
        server: Mutex::new(Some(server)),
        saver: Mutex::new(saver),
        state_file: options.state_file,
    })
}
