//! Which store to open: `sqlite:FILE` (or a bare path) for the embedded default,
//! `postgres://…` / `postgresql://…` (or libpq `key=value` text) for a shared database.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{PostgresOptions, PostgresStore, SqliteStore, StateStore, StoreError, StoreResult};

/// A store location as the operator wrote it. The PostgreSQL connection string is a secret
/// (it may carry a password): [`StoreSpec::describe`] is what logs and errors show.
#[derive(Clone)]
pub enum StoreSpec {
    Sqlite(PathBuf),
    Postgres(PostgresOptions),
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StoreSpec {
    /// Parses a store location. `schema` (PostgreSQL only) keeps ctsync's tables in that
    /// schema.
    pub fn parse(text: &str, schema: Option<String>) -> StoreResult<Self> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(StoreError::Config(
                "the store location is empty: give sqlite:FILE or postgres://…".into(),
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("postgres://")
            || lower.starts_with("postgresql://")
            || lower.starts_with("host=")
            || lower.contains(" host=")
        {
            return Ok(StoreSpec::Postgres(PostgresOptions {
                url: SecretString::from(trimmed.to_owned()),
                schema,
            }));
        }
        if schema.is_some() {
            return Err(StoreError::Config(
                "a store schema applies to PostgreSQL only, not to a SQLite file".into(),
            ));
        }
        let path = trimmed.strip_prefix("sqlite:").unwrap_or(trimmed);
        if path.is_empty() {
            return Err(StoreError::Config("sqlite: needs a file name".into()));
        }
        Ok(StoreSpec::Sqlite(PathBuf::from(path)))
    }

    /// The location without credentials: `sqlite:FILE` or `postgres://HOST:PORT/DB`.
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Sqlite(path) => format!("sqlite:{}", path.display()),
            StoreSpec::Postgres(options) => {
                let location = options
                    .url
                    .expose_secret()
                    .parse::<tokio_postgres::Config>()
                    .map(|c| super::postgres::describe(&c))
                    .unwrap_or_else(|_| "(unparsable connection string)".into());
                match &options.schema {
                    Some(schema) => format!("postgres://{location} (schema {schema})"),
                    None => format!("postgres://{location}"),
                }
            }
        }
    }

    /// True for a store several replicas can share.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreSpec::Postgres(_))
    }

    /// Opens the store and, for a shared one, its lease table (same database).
    pub async fn open_with_leases(
        &self,
    ) -> StoreResult<(Arc<dyn StateStore>, Option<Arc<dyn super::LeaseStore>>)> {
        match self {
            StoreSpec::Postgres(options) => {
                let store = Arc::new(PostgresStore::connect(options).await?);
                Ok((store.clone(), Some(store)))
            }
            StoreSpec::Sqlite(_) => Ok((self.open().await?, None)),
        }
    }

    /// Opens (creating and migrating as needed) the store.
    pub async fn open(&self) -> StoreResult<Arc<dyn StateStore>> {
        Ok(match self {
            StoreSpec::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(path))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))??;
                Arc::new(store)
            }
            StoreSpec::Postgres(options) => Arc::new(PostgresStore::connect(options).await?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_describe_without_the_password() {
        let pg =
            StoreSpec::parse("postgres://ctsync:S3cretPw@db.internal:6432/sync", None).unwrap();
        assert!(pg.is_shared());
        assert_eq!(pg.describe(), "postgres://db.internal:6432/sync");
        assert!(!format!("{pg:?}").contains("S3cretPw"));
        let kv = StoreSpec::parse(
            "host=db.internal password=S3cretPw dbname=sync",
            Some("ctsync".into()),
        )
        .unwrap();
        assert_eq!(
            kv.describe(),
            "postgres://db.internal:5432/sync (schema ctsync)"
        );
        let file = StoreSpec::parse("sqlite:/var/lib/ctsync/state.db", None).unwrap();
        assert_eq!(file.describe(), "sqlite:/var/lib/ctsync/state.db");
        assert!(!file.is_shared());
        assert_eq!(
            StoreSpec::parse("state.db", None).unwrap().describe(),
            "sqlite:state.db"
        );
        assert!(StoreSpec::parse("  ", None).is_err());
        assert!(StoreSpec::parse("state.db", Some("x".into())).is_err());
    }
}
