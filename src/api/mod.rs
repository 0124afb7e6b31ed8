//! Admin HTTP API (axum): health, readiness, metrics, jobs and their control, provisioning
//! logs, the next plan, and a read-only HTML status page.
//!
//! Bound to loopback by default. Mutations always need the bearer token (refused with 403 when
//! none is configured); reads need it unless opened; `/healthz` and `/readyz` are always open
//! for probes. The token is a `SecretString` and is never logged or echoed.

mod auth;
mod error;
mod jobs;
mod metrics;
mod page;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::engine::DaemonHandle;

pub use auth::{Access, AccessPolicy};
pub use error::ApiError;
pub use metrics::{Feed, Metrics};

/// How the admin API lets people in.
#[derive(Clone, Default)]
pub struct AdminOptions {
    /// The bearer token; `None` refuses every mutation.
    pub token: Option<SecretString>,
    /// Serve reads (jobs, logs, plan, metrics, the page) without the token.
    pub open_reads: bool,
}

pub(crate) struct AppState {
    pub(crate) handle: DaemonHandle,
    pub(crate) policy: AccessPolicy,
    pub(crate) metrics: Arc<Metrics>,
}

/// The status page is self-contained (one inline style sheet, no scripts, no images, no
/// forms): the policy lets nothing else load, and no one may frame it. On JSON it costs nothing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Sent with every response: the CSP above, and no content sniffing (a JSON error must never
/// be rendered as HTML).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The admin API of one daemon. Build it before the daemon runs, so its metrics see every
/// cycle from the first.
pub struct AdminApi {
    state: Arc<AppState>,
    feed: Mutex<Option<Feed>>,
}

impl AdminApi {
    pub fn new(handle: DaemonHandle, options: AdminOptions) -> AdminApi {
        let feed = Feed::subscribe(&handle);
        AdminApi {
            state: Arc::new(AppState {
                handle,
                policy: AccessPolicy::new(options.token, options.open_reads),
                metrics: Arc::new(Metrics::new()),
            }),
            feed: Mutex::new(Some(feed)),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(page::index))
            .route("/healthz", get(jobs::healthz))
            .route("/readyz", get(jobs::readyz))
            .route("/metrics", get(jobs::metrics))
            .route("/v1/jobs", get(jobs::list))
            .route("/v1/jobs/{pair}", get(jobs::get_job))
            .route("/v1/jobs/{pair}/pause", post(jobs::pause))
            .route("/v1/jobs/{pair}/start", post(jobs::start))
            .route("/v1/jobs/{pair}/run-now", post(jobs::run_now))
            .route("/v1/jobs/{pair}/restart", post(jobs::restart))
            .route(
                "/v1/jobs/{pair}/provisionOnDemand",
                post(jobs::provision_on_demand),
            )
            .route(
                "/v1/jobs/{pair}/provisioningLogs",
                get(jobs::provisioning_logs),
            )
            .route("/v1/jobs/{pair}/plan", get(jobs::plan))
            .fallback(jobs::not_found)
            .layer(axum::middleware::map_response(security_headers))
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(self.state.clone())
    }

    /// Serves on `listener` (and feeds the metrics) until `shutdown`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let feed = self.feed.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(feed) = feed {
            tokio::spawn(feed.run(
                self.state.metrics.clone(),
                self.state.handle.clone(),
                shutdown.clone(),
            ));
        }
        let router = self.router();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(address = %addr, "admin API listening");
        }
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}
