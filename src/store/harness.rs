//! Test harness: a fresh, empty store of either backend, so one set of tests runs against both.
//! PostgreSQL tests use their own schema in `CTSYNC_TEST_POSTGRES_URL` (dropped afterwards) and
//! report a skip when the variable is unset.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;

use super::{PostgresOptions, PostgresStore, SqliteStore, StateStore, StoreResult};

pub(crate) const POSTGRES_URL_VAR: &str = "CTSYNC_TEST_POSTGRES_URL";

pub(crate) enum Harness {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

/// A schema name unique to this test run and test.
pub(crate) fn unique_schema(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = format!("ct_{}_{nanos:x}_{test}", std::process::id());
    name.truncate(63);
    name.to_ascii_lowercase()
}

impl Harness {
    pub(crate) fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        Harness::Sqlite { _dir: dir, path }
    }

    /// None (and a visible note) when no test database is configured.
    pub(crate) fn postgres(test: &str) -> Option<Self> {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => Some(Harness::Postgres {
                url,
                schema: unique_schema(test),
            }),
            _ => {
                eprintln!("SKIPPED {test} on PostgreSQL: {POSTGRES_URL_VAR} is not set");
                None
            }
        }
    }

    fn options(url: &str, schema: &str) -> PostgresOptions {
        PostgresOptions {
            url: SecretString::from(url.to_owned()),
            schema: Some(schema.to_owned()),
        }
    }

    pub(crate) async fn try_open(&self) -> StoreResult<Arc<dyn StateStore>> {
        Ok(match self {
            Harness::Sqlite { path, .. } => Arc::new(SqliteStore::open(path)?),
            Harness::Postgres { url, schema } => {
                Arc::new(PostgresStore::connect(&Self::options(url, schema)).await?)
            }
        })
    }

    pub(crate) async fn open(&self) -> Arc<dyn StateStore> {
        self.try_open().await.expect("open the store")
    }

    pub(crate) async fn schema_version(&self) -> i64 {
        match self {
            Harness::Sqlite { path, .. } => SqliteStore::open(path).unwrap().schema_version().await,
            Harness::Postgres { url, schema } => {
                PostgresStore::connect(&Self::options(url, schema))
                    .await
                    .unwrap()
                    .schema_version()
                    .await
            }
        }
        .unwrap()
    }

    pub(crate) async fn migrate(&self) {
        match self {
            Harness::Sqlite { path, .. } => SqliteStore::open(path).unwrap().migrate().await,
            Harness::Postgres { url, schema } => {
                PostgresStore::connect(&Self::options(url, schema))
                    .await
                    .unwrap()
                    .migrate()
                    .await
            }
        }
        .unwrap()
    }

    /// Pretends a newer build migrated the store.
    pub(crate) async fn set_schema_version(&self, version: i64) {
        match self {
            Harness::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(&format!("PRAGMA user_version = {version}"))
                    .unwrap();
            }
            Harness::Postgres { url, schema } => {
                let store = PostgresStore::connect(&Self::options(url, schema))
                    .await
                    .unwrap();
                store
                    .client()
                    .await
                    .unwrap()
                    .execute(
                        "INSERT INTO ctsync_schema_migrations (version) VALUES ($1)",
                        &[&version],
                    )
                    .await
                    .unwrap();
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let Harness::Postgres { url, schema } = self else {
            return;
        };
        // Best effort, on a thread of its own: Drop cannot await, and the test's runtime may
        // be shutting down.
        let (url, schema) = (url.clone(), schema.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Runs each listed `async fn name(h: Harness)` once per backend: `sqlite::name` and
/// `postgres::name` (the latter reports a skip without a test database).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::store::harness::Harness::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(h) = $crate::store::harness::Harness::postgres(stringify!($name)) {
                        super::$name(h).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
