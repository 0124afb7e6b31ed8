//! The store options every command that reads or writes state shares: `--state FILE` (SQLite,
//! the embedded default) or `--store LOCATION` / `--store-file FILE` for a shared PostgreSQL
//! database. The connection string may carry a password, so it is only ever shown through
//! `StoreSpec::describe`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ctsync::store::{LeaseStore, StateStore, StoreSpec};

#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The store: `sqlite:FILE` or `postgres://USER@HOST:PORT/DB` (takes precedence over
    /// --state). Prefer --store-file or the environment for a connection string with a
    /// password.
    #[arg(long, env = "CTSYNC_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// A file holding the store location (e.g. a mounted Kubernetes Secret).
    #[arg(long, env = "CTSYNC_STORE_FILE", conflicts_with = "store")]
    pub store_file: Option<PathBuf>,
    /// PostgreSQL schema for ctsync's tables (created when missing); default: the server's
    /// search_path.
    #[arg(long, env = "CTSYNC_STORE_SCHEMA")]
    pub store_schema: Option<String>,
}

impl StoreArgs {
    /// Where the state lives; `state` is the SQLite file used when no store is named.
    pub fn spec(&self, state: &Path) -> Result<StoreSpec, String> {
        let text = match (&self.store, &self.store_file) {
            (Some(text), _) => text.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read store file {}: {e}", file.display()))?,
            (None, None) => {
                if self.store_schema.is_some() {
                    return Err("--store-schema needs a PostgreSQL --store".into());
                }
                return Ok(StoreSpec::Sqlite(state.to_path_buf()));
            }
        };
        StoreSpec::parse(&text, self.store_schema.clone()).map_err(|e| e.to_string())
    }

    /// Opens the store. A bad location exits 2; an unreachable or unreadable store is an error.
    pub async fn open(
        &self,
        state: &Path,
    ) -> anyhow::Result<Result<(StoreSpec, Arc<dyn StateStore>), ExitCode>> {
        Ok(self
            .open_with_leases(state)
            .await?
            .map(|(spec, store, _)| (spec, store)))
    }

    /// Opens the store for a command that only reads (`plan`, `provision --dry-run`): without
    /// a SQLite file there is no state to read, and none is created (opening SQLite would
    /// create the file); an empty in-memory store stands in, and `command` says so on stderr.
    pub async fn open_for_reading(
        &self,
        state: &Path,
        command: &str,
    ) -> anyhow::Result<Result<Arc<dyn StateStore>, ExitCode>> {
        if let Ok(StoreSpec::Sqlite(path)) = self.spec(state)
            && !path.exists()
        {
            eprintln!(
                "ctsync {command}: no state at {}: as before the first (initial) cycle, \
                 without creating the file",
                path.display()
            );
            return Ok(Ok(Arc::new(ctsync::store::SqliteStore::open_in_memory()?)));
        }
        Ok(self.open(state).await?.map(|(_spec, store)| store))
    }

    /// [`StoreArgs::open`], with the lease table of a shared store.
    pub async fn open_with_leases(
        &self,
        state: &Path,
    ) -> anyhow::Result<
        Result<(StoreSpec, Arc<dyn StateStore>, Option<Arc<dyn LeaseStore>>), ExitCode>,
    > {
        let spec = match self.spec(state) {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("ctsync: {e}");
                return Ok(Err(ExitCode::from(super::EXIT_USAGE)));
            }
        };
        match spec.open_with_leases().await {
            Ok((store, leases)) => Ok(Ok((spec, store, leases))),
            Err(ctsync::store::StoreError::Config(e)) => {
                eprintln!("ctsync: store {}: {e}", spec.describe());
                Ok(Err(ExitCode::from(super::EXIT_USAGE)))
            }
            Err(e) => Err(anyhow::anyhow!(
                "cannot open store {}: {e}",
                spec.describe()
            )),
        }
    }
}
