//! PostgreSQL implementation of [`StateStore`] (tokio-postgres behind a deadpool pool), for
//! installations that run several replicas on a database they already operate.
//!
//! Every `commit` is one transaction on one pooled connection. Reads that combine tables are one
//! statement, so they see one snapshot. The connection string is a secret: it is held in a
//! `SecretString`, and no error of this module carries it (tokio-postgres redacts the password
//! in its `Config` debug output, and connection errors name neither user nor password).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio_postgres::types::Json;

use super::codec::{parse_anchor, parse_ts, ts};
use super::log::{LogQuery, ProvisioningLogEntry};
use super::pg_schema;
use super::types::{CreateIntent, Escrow, EscrowError, GroupState, StoreWrite, Watermark};
use super::{StateStore, StoreError, StoreResult};
use crate::plan::groups::GroupLinkState;
use crate::plan::{Action, Anchor, ManagedUser};

/// Connections per replica: a job holds one only for the length of one call.
const POOL_SIZE: usize = 8;
/// How long a call waits for a connection (pool full, or the server unreachable) before it
/// fails with [`StoreError::Unavailable`], so a job notices an outage instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Server-side limits on every session. A replica frozen inside a transaction (SIGSTOP, a
/// stalled node, a partition) would otherwise keep its row locks for as long as it is frozen,
/// and the replica that took its lease over would block on them — every reader queued behind
/// it. The server ends such a transaction after `IDLE_IN_TRANSACTION_TIMEOUT` (ctsync's own
/// transactions last milliseconds), and no statement waits longer than `LOCK_TIMEOUT` for a
/// lock: it fails, and the job retries on its next cycle.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(5);
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to connect.
#[derive(Clone)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string (`postgres://user:pass@host:5432/db?sslmode=require`).
    pub url: SecretString,
    /// A schema to keep ctsync's tables in (created when missing); None = the server's
    /// `search_path` (usually `public`).
    pub schema: Option<String>,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &"[redacted]")
            .field("schema", &self.schema)
            .finish()
    }
}

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Host, port and database, without credentials: for logs and status.
    location: Arc<str>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A schema name safe to put in SQL unquoted-equivalent form.
fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// TLS with libpq's meaning of `sslmode`: `prefer` (the default) and `require` encrypt without
/// checking the server's certificate, `verify-ca` and `verify-full` check it against the
/// platform's trust store (like the Graph client) and the host name. tokio-postgres knows only
/// disable/prefer/require, so the verifying modes are read here and passed on as `require`.
fn tls(verify: bool) -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("cannot set up TLS for PostgreSQL: {e}")))?;
    let config = if verify {
        builder
            .with_platform_verifier()
            .map_err(|e| StoreError::Config(format!("cannot set up TLS for PostgreSQL: {e}")))?
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `sslmode=prefer|require`: the channel is encrypted and the handshake signatures are checked,
/// the certificate chain is not (libpq does the same without a root certificate file).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Rewrites `sslmode=verify-ca|verify-full` (URL or key=value form) to `require`; true when
/// one was found, so the caller verifies the certificate itself.
fn take_verify_mode(url: &str) -> (String, bool) {
    let mut verify = false;
    let mut out = url.to_owned();
    for mode in ["verify-full", "verify-ca"] {
        let needle = format!("sslmode={mode}");
        if out.contains(&needle) {
            verify = true;
            out = out.replace(&needle, "sslmode=require");
        }
    }
    (out, verify)
}

impl PostgresStore {
    /// Parses the connection string, connects, creates the schema if asked and migrates.
    pub async fn connect(options: &PostgresOptions) -> StoreResult<Self> {
        let store = Self::pool_only(options)?;
        let mut client = store.client().await?;
        if let Some(schema) = &options.schema {
            // Validated by `pool_only`: lowercase letters, digits and underscores.
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
        pg_schema::migrate(&mut client).await?;
        Ok(store)
    }

    /// The pool alone, without touching the server.
    fn pool_only(options: &PostgresOptions) -> StoreResult<Self> {
        let (url, verify) = take_verify_mode(options.url.expose_secret());
        let url = SecretString::from(url);
        let mut config: tokio_postgres::Config = url.expose_secret().parse().map_err(|e| {
            StoreError::Config(format!("the PostgreSQL connection string is invalid: {e}"))
        })?;
        let mut opts = config.get_options().unwrap_or_default().to_owned();
        if let Some(schema) = &options.schema {
            if !valid_schema(schema) {
                return Err(StoreError::Config(format!(
                    "schema name {schema:?}: use lowercase letters, digits and underscores"
                )));
            }
            opts.push_str(&format!(" -c search_path={schema}"));
        }
        opts.push_str(&format!(
            " -c idle_in_transaction_session_timeout={} -c lock_timeout={}",
            IDLE_IN_TRANSACTION_TIMEOUT.as_millis(),
            LOCK_TIMEOUT.as_millis()
        ));
        config.options(opts.trim());
        if config.get_application_name().is_none() {
            config.application_name("ctsync");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let location = describe(&config);
        let manager = Manager::from_config(
            config,
            tls(verify)?,
            ManagerConfig {
                // A connection ended by a server restart or `pg_terminate_backend` is found
                // before use, not by the job's next write.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build the connection pool: {e}")))?;
        Ok(Self {
            pool,
            location: location.into(),
        })
    }

    /// `host:port/database` without credentials.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The highest migration applied.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        pg_schema::version(&self.client().await?).await
    }

    /// Re-runs the migrations (a no-op on an up-to-date schema).
    pub async fn migrate(&self) -> StoreResult<()> {
        pg_schema::migrate(&mut self.client().await?).await
    }

    pub(super) async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::from(e),
            other => StoreError::Unavailable(other.to_string()),
        })
    }
}

/// `host:port/dbname` from a parsed config, for messages.
pub(super) fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    format!("{host}:{port}/{db}")
}

fn u32_of(value: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value}")))
}

pub(super) async fn apply_write(
    tx: &deadpool_postgres::Transaction<'_>,
    pair: &str,
    write: StoreWrite,
) -> StoreResult<()> {
    match write {
        StoreWrite::PutManaged(m) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO managed_users
                         (pair, anchor, target_id, disabled_before_scope_exit, soft_deleted_by_us_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (pair, anchor) DO UPDATE SET
                         target_id = excluded.target_id,
                         disabled_before_scope_exit = excluded.disabled_before_scope_exit,
                         soft_deleted_by_us_at = excluded.soft_deleted_by_us_at",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &pair,
                    &m.anchor.as_str(),
                    &m.target_id,
                    &m.disabled_before_scope_exit,
                    &m.soft_deleted_by_us_at.map(ts),
                ],
            )
            .await?;
            let stmt = tx
                .prepare_cached("DELETE FROM exported_values WHERE pair = $1 AND anchor = $2")
                .await?;
            tx.execute(&stmt, &[&pair, &m.anchor.as_str()]).await?;
            for (attribute, value) in &m.last_exported {
                put_exported(tx, pair, &m.anchor, attribute, value).await?;
            }
        }
        StoreWrite::SetExported {
            anchor,
            attribute,
            value: Some(value),
        } => put_exported(tx, pair, &anchor, &attribute, &value).await?,
        StoreWrite::SetExported {
            anchor,
            attribute,
            value: None,
        } => {
            let stmt = tx
                .prepare_cached(
                    "DELETE FROM exported_values
                     WHERE pair = $1 AND anchor = $2 AND attribute = $3",
                )
                .await?;
            tx.execute(&stmt, &[&pair, &anchor.as_str(), &attribute])
                .await?;
        }
        StoreWrite::SetSoftDeleted { anchor, at } => {
            let stmt = tx
                .prepare_cached(
                    "UPDATE managed_users SET soft_deleted_by_us_at = $3
                     WHERE pair = $1 AND anchor = $2",
                )
                .await?;
            tx.execute(&stmt, &[&pair, &anchor.as_str(), &at.map(ts)])
                .await?;
        }
        StoreWrite::SetDisabledBeforeScopeExit { anchor, value } => {
            let stmt = tx
                .prepare_cached(
                    "UPDATE managed_users SET disabled_before_scope_exit = $3
                     WHERE pair = $1 AND anchor = $2",
                )
                .await?;
            tx.execute(&stmt, &[&pair, &anchor.as_str(), &value])
                .await?;
        }
        StoreWrite::RemoveManaged { anchor } => {
            // Exported values go with the link (ON DELETE CASCADE).
            let stmt = tx
                .prepare_cached("DELETE FROM managed_users WHERE pair = $1 AND anchor = $2")
                .await?;
            tx.execute(&stmt, &[&pair, &anchor.as_str()]).await?;
        }
        StoreWrite::RecordCreateIntent(intent) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO create_intents
                         (pair, anchor, intent_id, invited_address, recorded_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (pair, anchor) DO UPDATE SET
                         intent_id = excluded.intent_id,
                         invited_address = excluded.invited_address,
                         recorded_at = excluded.recorded_at",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &pair,
                    &intent.anchor.as_str(),
                    &intent.intent_id,
                    &intent.invited_address,
                    &ts(intent.recorded_at),
                ],
            )
            .await?;
        }
        StoreWrite::ResolveCreateIntent { anchor } => {
            let stmt = tx
                .prepare_cached("DELETE FROM create_intents WHERE pair = $1 AND anchor = $2")
                .await?;
            tx.execute(&stmt, &[&pair, &anchor.as_str()]).await?;
        }
        StoreWrite::PutEscrow(e) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO escrows (pair, anchor, reference, action, attempts,
                                          first_failed_at, last_failed_at, next_retry_at,
                                          error_code, error_message)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (pair, anchor, reference) DO UPDATE SET
                         action = excluded.action,
                         attempts = excluded.attempts,
                         first_failed_at = excluded.first_failed_at,
                         last_failed_at = excluded.last_failed_at,
                         next_retry_at = excluded.next_retry_at,
                         error_code = excluded.error_code,
                         error_message = excluded.error_message",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &pair,
                    &e.anchor.as_str(),
                    &e.reference,
                    &e.action.as_str(),
                    &i64::from(e.attempts),
                    &ts(e.first_failed_at),
                    &ts(e.last_failed_at),
                    &ts(e.next_retry_at),
                    &e.last_error.code,
                    &e.last_error.message,
                ],
            )
            .await?;
        }
        StoreWrite::RemoveEscrow { anchor, reference } => {
            let stmt = tx
                .prepare_cached(
                    "DELETE FROM escrows WHERE pair = $1 AND anchor = $2 AND reference = $3",
                )
                .await?;
            tx.execute(&stmt, &[&pair, &anchor.as_str(), &reference])
                .await?;
        }
        StoreWrite::ClearEscrows => {
            let stmt = tx
                .prepare_cached("DELETE FROM escrows WHERE pair = $1")
                .await?;
            tx.execute(&stmt, &[&pair]).await?;
        }
        StoreWrite::AppendLog(entry) => {
            // Entries are immutable: replaying one (same id) after a crash keeps the first.
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO provisioning_log
                         (pair, id, activity_date_time, action, status, entry)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (pair, id) DO NOTHING",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &pair,
                    &entry.id,
                    &ts(entry.activity_date_time),
                    &entry.provisioning_action.as_str(),
                    &entry.provisioning_status_info.status.as_str(),
                    &Json(&*entry),
                ],
            )
            .await?;
        }
        StoreWrite::PutStatus(status) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO job_status (pair, status) VALUES ($1, $2)
                     ON CONFLICT (pair) DO UPDATE SET status = excluded.status",
                )
                .await?;
            tx.execute(&stmt, &[&pair, &Json(&status)]).await?;
        }
        StoreWrite::PutGroupLink(link) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO group_links (pair, source_id, target_id, state) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (pair, source_id) DO UPDATE
                     SET target_id = excluded.target_id, state = excluded.state",
                )
                .await?;
            tx.execute(
                &stmt,
                &[&pair, &link.source_id, &link.target_id, &Json(&link)],
            )
            .await?;
        }
        StoreWrite::SaveGroupWatermark(w) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO group_watermarks (pair, delta_link, saved_at) VALUES ($1, $2, $3)
                     ON CONFLICT (pair) DO UPDATE
                     SET delta_link = excluded.delta_link, saved_at = excluded.saved_at",
                )
                .await?;
            tx.execute(&stmt, &[&pair, &w.delta_link, &ts(w.saved_at)])
                .await?;
        }
    }
    Ok(())
}

async fn put_exported(
    tx: &deadpool_postgres::Transaction<'_>,
    pair: &str,
    anchor: &Anchor,
    attribute: &str,
    value: &Value,
) -> StoreResult<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO exported_values (pair, anchor, attribute, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (pair, anchor, attribute) DO UPDATE SET value = excluded.value",
        )
        .await?;
    tx.execute(&stmt, &[&pair, &anchor.as_str(), &attribute, &Json(value)])
        .await?;
    Ok(())
}

impl PostgresStore {
    /// Every managed user of `pair`, or (with `only`) those among the given anchors.
    async fn read_managed(
        &self,
        pair: &str,
        only: Option<&[Anchor]>,
    ) -> StoreResult<Vec<ManagedUser>> {
        let client = self.client().await?;
        // One statement: the links and their values come from one snapshot.
        let stmt = client
            .prepare_cached(
                "SELECT m.anchor, m.target_id, m.disabled_before_scope_exit,
                        m.soft_deleted_by_us_at, e.attribute, e.value
                 FROM managed_users m
                 LEFT JOIN exported_values e ON e.pair = m.pair AND e.anchor = m.anchor
                 WHERE m.pair = $1 AND ($2::text[] IS NULL OR m.anchor = ANY($2))
                 ORDER BY m.anchor, e.attribute",
            )
            .await?;
        let filter: Option<Vec<&str>> = only.map(|a| a.iter().map(Anchor::as_str).collect());
        let rows = client.query(&stmt, &[&pair, &filter]).await?;
        let mut out: Vec<ManagedUser> = Vec::new();
        for row in rows {
            let anchor: &str = row.try_get(0)?;
            if out.last().is_none_or(|m| m.anchor.as_str() != anchor) {
                let soft: Option<&str> = row.try_get(3)?;
                out.push(ManagedUser {
                    anchor: parse_anchor(anchor)?,
                    target_id: row.try_get(1)?,
                    last_exported: BTreeMap::new(),
                    disabled_before_scope_exit: row.try_get(2)?,
                    soft_deleted_by_us_at: soft.map(parse_ts).transpose()?,
                });
            }
            let attribute: Option<String> = row.try_get(4)?;
            let value: Option<Json<Value>> = row.try_get(5)?;
            if let (Some(attribute), Some(Json(value)), Some(user)) =
                (attribute, value, out.last_mut())
            {
                user.last_exported.insert(attribute, value);
            }
        }
        Ok(out)
    }

    async fn read_log(
        &self,
        pair: &str,
        query: &LogQuery,
    ) -> StoreResult<Vec<ProvisioningLogEntry>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT entry FROM provisioning_log
                 WHERE pair = $1
                   AND ($2::text IS NULL OR activity_date_time >= $2)
                   AND ($3::text IS NULL OR action = $3)
                   AND ($4::text IS NULL OR status = $4)
                 ORDER BY activity_date_time, seq
                 LIMIT $5",
            )
            .await?;
        let limit = i64::from(query.limit.unwrap_or(LogQuery::DEFAULT_LIMIT));
        let rows = client
            .query(
                &stmt,
                &[
                    &pair,
                    &query.since.map(ts),
                    &query.action.map(|a| a.as_str()),
                    &query.status.map(|s| s.as_str()),
                    &limit,
                ],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let Json(entry): Json<ProvisioningLogEntry> = row.try_get(0)?;
                Ok(entry)
            })
            .collect()
    }
}

impl StateStore for PostgresStore {
    fn commit_fenced<'a>(
        &'a self,
        pair: &'a str,
        fence: &'a super::Fence,
        writes: Vec<StoreWrite>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.fenced_commit(pair, fence, writes))
    }

    fn save_watermark_fenced<'a>(
        &'a self,
        pair: &'a str,
        fence: &'a super::Fence,
        watermark: &'a Watermark,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.fenced_watermark(pair, fence, Some(watermark)))
    }

    fn clear_watermark_fenced<'a>(
        &'a self,
        pair: &'a str,
        fence: &'a super::Fence,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.fenced_watermark(pair, fence, None))
    }

    fn commit<'a>(
        &'a self,
        pair: &'a str,
        writes: Vec<StoreWrite>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            for write in writes {
                apply_write(&tx, pair, write).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Watermark>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT delta_link, saved_at FROM watermarks WHERE pair = $1",
                    &[&pair],
                )
                .await?;
            row.map(|r| {
                Ok(Watermark {
                    delta_link: r.try_get(0)?,
                    saved_at: parse_ts(r.try_get(1)?)?,
                })
            })
            .transpose()
        })
    }

    fn save_watermark<'a>(
        &'a self,
        pair: &'a str,
        watermark: &'a Watermark,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO watermarks (pair, delta_link, saved_at) VALUES ($1, $2, $3)
                     ON CONFLICT (pair) DO UPDATE SET
                         delta_link = excluded.delta_link, saved_at = excluded.saved_at",
                    &[&pair, &watermark.delta_link, &ts(watermark.saved_at)],
                )
                .await?;
            Ok(())
        })
    }

    fn clear_watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute("DELETE FROM watermarks WHERE pair = $1", &[&pair])
                .await?;
            Ok(())
        })
    }

    fn managed_users<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        Box::pin(self.read_managed(pair, None))
    }

    fn managed_user<'a>(
        &'a self,
        pair: &'a str,
        anchor: &'a Anchor,
    ) -> BoxFuture<'a, StoreResult<Option<ManagedUser>>> {
        Box::pin(async move {
            Ok(self
                .read_managed(pair, Some(std::slice::from_ref(anchor)))
                .await?
                .into_iter()
                .next())
        })
    }

    fn managed_users_among<'a>(
        &'a self,
        pair: &'a str,
        anchors: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        Box::pin(async move {
            if anchors.is_empty() {
                return Ok(Vec::new());
            }
            self.read_managed(pair, Some(anchors)).await
        })
    }

    fn reports_of<'a>(
        &'a self,
        pair: &'a str,
        managers: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        Box::pin(async move {
            if managers.is_empty() {
                return Ok(Vec::new());
            }
            let client = self.client().await?;
            // The partial index's condition names the attribute literally:
            // `plan::MANAGER_ATTRIBUTE` (the store suite writes the reports under that constant).
            let stmt = client
                .prepare_cached(
                    "SELECT DISTINCT anchor FROM exported_values
                     WHERE pair = $1 AND attribute = 'manager' AND (value #>> '{}') = ANY($2)
                     ORDER BY anchor",
                )
                .await?;
            let managers: Vec<&str> = managers.iter().map(Anchor::as_str).collect();
            let rows = client.query(&stmt, &[&pair, &managers]).await?;
            rows.iter()
                .map(|row| parse_anchor(row.try_get(0)?))
                .collect()
        })
    }

    fn managed_anchors<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("SELECT anchor FROM managed_users WHERE pair = $1 ORDER BY anchor")
                .await?;
            let rows = client.query(&stmt, &[&pair]).await?;
            rows.iter()
                .map(|row| parse_anchor(row.try_get(0)?))
                .collect()
        })
    }

    fn live_managed_count<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<usize>> {
        Box::pin(async move {
            let client = self.client().await?;
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM managed_users
                     WHERE pair = $1 AND soft_deleted_by_us_at IS NULL",
                    &[&pair],
                )
                .await?
                .try_get(0)?;
            usize::try_from(n).map_err(|e| StoreError::Corrupt(format!("count {n}: {e}")))
        })
    }

    fn create_intents<'a>(
        &'a self,
        pair: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<CreateIntent>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT anchor, intent_id, invited_address, recorded_at FROM create_intents
                     WHERE pair = $1 ORDER BY anchor",
                    &[&pair],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(CreateIntent {
                        anchor: parse_anchor(r.try_get(0)?)?,
                        intent_id: r.try_get(1)?,
                        invited_address: r.try_get(2)?,
                        recorded_at: parse_ts(r.try_get(3)?)?,
                    })
                })
                .collect()
        })
    }

    fn escrows<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Escrow>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT anchor, reference, action, attempts, first_failed_at, last_failed_at,
                            next_retry_at, error_code, error_message
                     FROM escrows WHERE pair = $1 ORDER BY anchor, reference",
                    &[&pair],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let action: &str = r.try_get(2)?;
                    Ok(Escrow {
                        anchor: parse_anchor(r.try_get(0)?)?,
                        reference: r.try_get(1)?,
                        action: Action::parse(action).ok_or_else(|| {
                            StoreError::Corrupt(format!("escrow action {action:?}"))
                        })?,
                        attempts: u32_of(r.try_get(3)?, "escrow attempts")?,
                        first_failed_at: parse_ts(r.try_get(4)?)?,
                        last_failed_at: parse_ts(r.try_get(5)?)?,
                        next_retry_at: parse_ts(r.try_get(6)?)?,
                        last_error: EscrowError {
                            code: r.try_get(7)?,
                            message: r.try_get(8)?,
                        },
                    })
                })
                .collect()
        })
    }

    fn group_state<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<GroupState>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT state FROM group_links WHERE pair = $1 ORDER BY source_id",
                    &[&pair],
                )
                .await?;
            let links = rows
                .iter()
                .map(|r| {
                    let Json(link): Json<GroupLinkState> = r.try_get(0)?;
                    Ok(link)
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let watermark = client
                .query_opt(
                    "SELECT delta_link, saved_at FROM group_watermarks WHERE pair = $1",
                    &[&pair],
                )
                .await?
                .map(|r| {
                    Ok::<_, StoreError>(Watermark {
                        delta_link: r.try_get(0)?,
                        saved_at: parse_ts(r.try_get(1)?)?,
                    })
                })
                .transpose()?;
            Ok(GroupState { links, watermark })
        })
    }

    fn status<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT status FROM job_status WHERE pair = $1", &[&pair])
                .await?;
            row.map(|r| {
                let Json(value): Json<Value> = r.try_get(0)?;
                Ok(value)
            })
            .transpose()
        })
    }

    fn provisioning_log<'a>(
        &'a self,
        pair: &'a str,
        query: &'a LogQuery,
    ) -> BoxFuture<'a, StoreResult<Vec<ProvisioningLogEntry>>> {
        Box::pin(self.read_log(pair, query))
    }

    fn prune_log<'a>(
        &'a self,
        pair: &'a str,
        before: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            let client = self.client().await?;
            Ok(client
                .execute(
                    "DELETE FROM provisioning_log WHERE pair = $1 AND activity_date_time < $2",
                    &[&pair, &ts(before)],
                )
                .await?)
        })
    }

    fn pairs(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client.query(super::sqlite::PAIRS_SQL, &[]).await?;
            rows.iter()
                .map(|r| Ok(r.try_get::<_, String>(0)?))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_ssl_modes_are_read_here() {
        assert_eq!(
            take_verify_mode("postgres://h/db?sslmode=verify-full"),
            ("postgres://h/db?sslmode=require".to_owned(), true)
        );
        assert_eq!(
            take_verify_mode("host=h sslmode=verify-ca"),
            ("host=h sslmode=require".to_owned(), true)
        );
        assert_eq!(
            take_verify_mode("postgres://h/db?sslmode=require"),
            ("postgres://h/db?sslmode=require".to_owned(), false)
        );
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(valid_schema("ctsync_test_1"));
        assert!(!valid_schema("Public"));
        assert!(!valid_schema("a;drop"));
        assert!(!valid_schema(""));
        assert!(!valid_schema("1abc"));
    }

    #[test]
    fn a_bad_connection_string_never_echoes_the_password() {
        for url in [
            "postgres://ctsync:CanaryPassw0rd@db.example:notaport/ctsync",
            "postgres://ctsync:CanaryPassw0rd@db.example:5432/ctsync?bogus=1",
            "host=db.example password=CanaryPassw0rd port=x",
        ] {
            let err = PostgresStore::pool_only(&PostgresOptions {
                url: SecretString::from(url),
                schema: None,
            })
            .unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("CanaryPassw0rd"), "{text}");
            assert!(text.contains("connection string is invalid"), "{text}");
        }
    }

    /// A replica frozen inside a transaction must not keep its locks: the server ends the
    /// transaction, so the replica that took the lease over is never blocked for long.
    #[tokio::test]
    async fn a_transaction_left_open_is_ended_by_the_server() {
        let Some(h) = crate::store::harness::Harness::postgres("frozen_transaction") else {
            return;
        };
        let crate::store::harness::Harness::Postgres { url, schema } = &h else {
            unreachable!("a postgres harness")
        };
        let store = PostgresStore::connect(&PostgresOptions {
            url: SecretString::from(url.clone()),
            schema: Some(schema.clone()),
        })
        .await
        .unwrap();
        let client = store.client().await.unwrap();
        let shown = client
            .query_one("SHOW idle_in_transaction_session_timeout", &[])
            .await
            .unwrap();
        assert_eq!(shown.get::<_, String>(0), "5s");
        client.batch_execute("BEGIN; SELECT 1").await.unwrap();
        tokio::time::sleep(IDLE_IN_TRANSACTION_TIMEOUT + Duration::from_secs(1)).await;
        assert!(
            client.batch_execute("COMMIT").await.is_err(),
            "the server ended the idle transaction and its session"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_without_the_password() {
        // Port 1 on loopback: nothing listens there.
        let err = PostgresStore::connect(&PostgresOptions {
            url: SecretString::from("postgres://ctsync:CanaryPassw0rd@127.0.0.1:1/ctsync"),
            schema: None,
        })
        .await
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("CanaryPassw0rd"), "{text}");
        assert!(err.is_unavailable(), "{text}");
    }
}
