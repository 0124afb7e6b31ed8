//! SQLite implementation of [`StateStore`] (rusqlite, bundled SQLite).
//!
//! One connection behind a mutex: SQLite serializes writers anyway, and a cycle's writes are
//! small. Every call runs on tokio's blocking pool so the async runtime never waits on disk.
//! WAL mode lets a second process (`ctsync status`) read while the daemon writes;
//! `synchronous = FULL` makes a committed transaction survive power loss, not only a crash.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};
use serde_json::Value;

use super::codec::{parse_anchor, parse_ts, ts};
use super::log::{LogQuery, ProvisioningLogEntry};
use super::schema;
use super::types::{CreateIntent, Escrow, EscrowError, GroupState, StoreWrite, Watermark};
use super::{StateStore, StoreError, StoreResult};
use crate::plan::groups::GroupLinkState;
use crate::plan::{Action, Anchor, ManagedUser};

/// How long a writer waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it. Blocking: call it at
    /// startup or from a blocking task.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        Self::init(conn, true)
    }

    /// A private in-memory database (tests, `ctsync plan` without a state file).
    pub fn open_in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory()?, false)
    }

    fn init(mut conn: Connection, file: bool) -> StoreResult<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if file {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Corrupt(format!(
                    "could not switch the journal to WAL (got {mode})"
                )));
            }
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        self.run(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
    }

    /// Re-runs the migrations (a no-op on an up-to-date database).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.run(schema::migrate).await
    }

    /// The journal mode SQLite reports (`wal` for a file store).
    pub async fn journal_mode(&self) -> StoreResult<String> {
        self.run(|conn| Ok(conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .await
    }

    fn run<T, F>(&self, work: F) -> BoxFuture<'static, StoreResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        Box::pin(async move {
            // Polled outside a tokio runtime, `spawn_blocking` would panic: say so instead.
            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|e| StoreError::Task(format!("the store needs a tokio runtime: {e}")))?;
            runtime
                .spawn_blocking(move || {
                    let mut guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
                    work(&mut guard)
                })
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
        })
    }
}

fn apply_write(tx: &Transaction<'_>, pair: &str, write: StoreWrite) -> StoreResult<()> {
    match write {
        StoreWrite::PutManaged(m) => {
            tx.execute(
                "INSERT INTO managed_users
                     (pair, anchor, target_id, disabled_before_scope_exit, soft_deleted_by_us_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (pair, anchor) DO UPDATE SET
                     target_id = excluded.target_id,
                     disabled_before_scope_exit = excluded.disabled_before_scope_exit,
                     soft_deleted_by_us_at = excluded.soft_deleted_by_us_at",
                params![
                    pair,
                    m.anchor.as_str(),
                    m.target_id,
                    m.disabled_before_scope_exit,
                    m.soft_deleted_by_us_at.map(ts)
                ],
            )?;
            tx.execute(
                "DELETE FROM exported_values WHERE pair = ?1 AND anchor = ?2",
                params![pair, m.anchor.as_str()],
            )?;
            for (attribute, value) in &m.last_exported {
                put_exported(tx, pair, &m.anchor, attribute, value)?;
            }
        }
        StoreWrite::SetExported {
            anchor,
            attribute,
            value: Some(value),
        } => put_exported(tx, pair, &anchor, &attribute, &value)?,
        StoreWrite::SetExported {
            anchor,
            attribute,
            value: None,
        } => {
            tx.execute(
                "DELETE FROM exported_values WHERE pair = ?1 AND anchor = ?2 AND attribute = ?3",
                params![pair, anchor.as_str(), attribute],
            )?;
        }
        StoreWrite::SetSoftDeleted { anchor, at } => {
            tx.execute(
                "UPDATE managed_users SET soft_deleted_by_us_at = ?3 WHERE pair = ?1 AND anchor = ?2",
                params![pair, anchor.as_str(), at.map(ts)],
            )?;
        }
        StoreWrite::SetDisabledBeforeScopeExit { anchor, value } => {
            tx.execute(
                "UPDATE managed_users SET disabled_before_scope_exit = ?3
                 WHERE pair = ?1 AND anchor = ?2",
                params![pair, anchor.as_str(), value],
            )?;
        }
        StoreWrite::RemoveManaged { anchor } => {
            tx.execute(
                "DELETE FROM exported_values WHERE pair = ?1 AND anchor = ?2",
                params![pair, anchor.as_str()],
            )?;
            tx.execute(
                "DELETE FROM managed_users WHERE pair = ?1 AND anchor = ?2",
                params![pair, anchor.as_str()],
            )?;
        }
        StoreWrite::RecordCreateIntent(intent) => {
            tx.execute(
                "INSERT INTO create_intents (pair, anchor, intent_id, invited_address, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (pair, anchor) DO UPDATE SET
                     intent_id = excluded.intent_id,
                     invited_address = excluded.invited_address,
                     recorded_at = excluded.recorded_at",
                params![
                    pair,
                    intent.anchor.as_str(),
                    intent.intent_id,
                    intent.invited_address,
                    ts(intent.recorded_at)
                ],
            )?;
        }
        StoreWrite::ResolveCreateIntent { anchor } => {
            tx.execute(
                "DELETE FROM create_intents WHERE pair = ?1 AND anchor = ?2",
                params![pair, anchor.as_str()],
            )?;
        }
        StoreWrite::PutEscrow(e) => {
            tx.execute(
                "INSERT INTO escrows (pair, anchor, reference, action, attempts, first_failed_at,
                                      last_failed_at, next_retry_at, error_code, error_message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (pair, anchor, reference) DO UPDATE SET
                     action = excluded.action,
                     attempts = excluded.attempts,
                     first_failed_at = excluded.first_failed_at,
                     last_failed_at = excluded.last_failed_at,
                     next_retry_at = excluded.next_retry_at,
                     error_code = excluded.error_code,
                     error_message = excluded.error_message",
                params![
                    pair,
                    e.anchor.as_str(),
                    e.reference,
                    e.action.as_str(),
                    e.attempts,
                    ts(e.first_failed_at),
                    ts(e.last_failed_at),
                    ts(e.next_retry_at),
                    e.last_error.code,
                    e.last_error.message
                ],
            )?;
        }
        StoreWrite::RemoveEscrow { anchor, reference } => {
            tx.execute(
                "DELETE FROM escrows WHERE pair = ?1 AND anchor = ?2 AND reference = ?3",
                params![pair, anchor.as_str(), reference],
            )?;
        }
        StoreWrite::ClearEscrows => {
            tx.execute("DELETE FROM escrows WHERE pair = ?1", params![pair])?;
        }
        StoreWrite::AppendLog(entry) => {
            // Entries are immutable: replaying one (same id) after a crash keeps the first.
            tx.execute(
                "INSERT INTO provisioning_log (pair, id, activity_date_time, action, status, entry)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (pair, id) DO NOTHING",
                params![
                    pair,
                    entry.id,
                    ts(entry.activity_date_time),
                    entry.provisioning_action.as_str(),
                    entry.provisioning_status_info.status.as_str(),
                    serde_json::to_string(&entry)?
                ],
            )?;
        }
        StoreWrite::PutStatus(status) => {
            tx.execute(
                "INSERT INTO job_status (pair, status) VALUES (?1, ?2)
                 ON CONFLICT (pair) DO UPDATE SET status = excluded.status",
                params![pair, serde_json::to_string(&status)?],
            )?;
        }
        StoreWrite::PutGroupLink(link) => {
            tx.execute(
                "INSERT INTO group_links (pair, source_id, target_id, state) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pair, source_id) DO UPDATE
                 SET target_id = excluded.target_id, state = excluded.state",
                params![
                    pair,
                    link.source_id,
                    link.target_id,
                    serde_json::to_string(&link)?
                ],
            )?;
        }
        StoreWrite::SaveGroupWatermark(w) => {
            tx.execute(
                "INSERT INTO group_watermarks (pair, delta_link, saved_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pair) DO UPDATE
                 SET delta_link = excluded.delta_link, saved_at = excluded.saved_at",
                params![pair, w.delta_link, ts(w.saved_at)],
            )?;
        }
    }
    Ok(())
}

fn put_exported(
    tx: &Transaction<'_>,
    pair: &str,
    anchor: &Anchor,
    attribute: &str,
    value: &Value,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO exported_values (pair, anchor, attribute, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (pair, anchor, attribute) DO UPDATE SET value = excluded.value",
        params![
            pair,
            anchor.as_str(),
            attribute,
            serde_json::to_string(value)?
        ],
    )?;
    Ok(())
}

struct ManagedRow {
    anchor: String,
    target_id: String,
    disabled_before_scope_exit: bool,
    soft_deleted_by_us_at: Option<String>,
}

fn read_managed(conn: &Connection, pair: &str) -> StoreResult<Vec<ManagedUser>> {
    let mut stmt = conn.prepare_cached(
        "SELECT anchor, target_id, disabled_before_scope_exit, soft_deleted_by_us_at
         FROM managed_users WHERE pair = ?1 ORDER BY anchor",
    )?;
    let rows = stmt
        .query_map(params![pair], |r| {
            Ok(ManagedRow {
                anchor: r.get(0)?,
                target_id: r.get(1)?,
                disabled_before_scope_exit: r.get(2)?,
                soft_deleted_by_us_at: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let mut values: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut stmt = conn
        .prepare_cached("SELECT anchor, attribute, value FROM exported_values WHERE pair = ?1")?;
    let mut cursor = stmt.query(params![pair])?;
    while let Some(r) = cursor.next()? {
        let anchor: String = r.get(0)?;
        let attribute: String = r.get(1)?;
        let text: String = r.get(2)?;
        values
            .entry(anchor)
            .or_default()
            .insert(attribute, serde_json::from_str(&text)?);
    }

    rows.into_iter()
        .map(|row| {
            let last_exported = values.remove(&row.anchor).unwrap_or_default();
            managed_from_row(row, last_exported)
        })
        .collect()
}

fn managed_from_row(
    row: ManagedRow,
    last_exported: BTreeMap<String, Value>,
) -> StoreResult<ManagedUser> {
    Ok(ManagedUser {
        anchor: parse_anchor(&row.anchor)?,
        last_exported,
        target_id: row.target_id,
        disabled_before_scope_exit: row.disabled_before_scope_exit,
        soft_deleted_by_us_at: row
            .soft_deleted_by_us_at
            .as_deref()
            .map(parse_ts)
            .transpose()?,
    })
}

/// The managed users among `anchors`, one primary-key lookup each, in one read transaction
/// (the links and their values come from one snapshot).
fn read_managed_among(
    conn: &mut Connection,
    pair: &str,
    anchors: &[Anchor],
) -> StoreResult<Vec<ManagedUser>> {
    let mut wanted: Vec<&str> = anchors.iter().map(Anchor::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let tx = conn.transaction()?;
    let mut out = Vec::new();
    {
        let mut link = tx.prepare_cached(
            "SELECT anchor, target_id, disabled_before_scope_exit, soft_deleted_by_us_at
             FROM managed_users WHERE pair = ?1 AND anchor = ?2",
        )?;
        let mut exported = tx.prepare_cached(
            "SELECT attribute, value FROM exported_values WHERE pair = ?1 AND anchor = ?2",
        )?;
        for anchor in wanted {
            let row = link
                .query_row(params![pair, anchor], |r| {
                    Ok(ManagedRow {
                        anchor: r.get(0)?,
                        target_id: r.get(1)?,
                        disabled_before_scope_exit: r.get(2)?,
                        soft_deleted_by_us_at: r.get(3)?,
                    })
                })
                .optional()?;
            let Some(row) = row else { continue };
            let mut values = BTreeMap::new();
            let mut cursor = exported.query(params![pair, anchor])?;
            while let Some(r) = cursor.next()? {
                let attribute: String = r.get(0)?;
                let text: String = r.get(1)?;
                values.insert(attribute, serde_json::from_str(&text)?);
            }
            out.push(managed_from_row(row, values)?);
        }
    }
    tx.commit()?;
    Ok(out)
}

/// The reports of `managers`: one lookup each in the partial index on the `manager` values
/// (stored as JSON text, so the anchor is looked up in its JSON form).
fn read_reports(conn: &Connection, pair: &str, managers: &[Anchor]) -> StoreResult<Vec<Anchor>> {
    // The index's condition names the attribute literally: `plan::MANAGER_ATTRIBUTE` (the
    // store suite writes the reports under that constant, so a rename fails there).
    let mut stmt = conn.prepare_cached(
        "SELECT anchor FROM exported_values
         WHERE pair = ?1 AND attribute = 'manager' AND value = ?2",
    )?;
    let mut reports = Vec::new();
    for manager in managers {
        let json = serde_json::to_string(manager.as_str())?;
        let mut cursor = stmt.query(params![pair, json])?;
        while let Some(r) = cursor.next()? {
            let anchor: String = r.get(0)?;
            reports.push(parse_anchor(&anchor)?);
        }
    }
    reports.sort();
    reports.dedup();
    Ok(reports)
}

fn read_log(
    conn: &Connection,
    pair: &str,
    query: &LogQuery,
) -> StoreResult<Vec<ProvisioningLogEntry>> {
    let limit = query.limit.unwrap_or(LogQuery::DEFAULT_LIMIT);
    let mut stmt = conn.prepare_cached(
        "SELECT entry FROM provisioning_log
         WHERE pair = ?1
           AND (?2 IS NULL OR activity_date_time >= ?2)
           AND (?3 IS NULL OR action = ?3)
           AND (?4 IS NULL OR status = ?4)
         ORDER BY activity_date_time, seq
         LIMIT ?5",
    )?;
    let args: [rusqlite::types::Value; 5] = [
        pair.to_owned().into(),
        query.since.map(ts).into(),
        query.action.map(|a| a.as_str().to_owned()).into(),
        query.status.map(|s| s.as_str().to_owned()).into(),
        i64::from(limit).into(),
    ];
    let texts = stmt
        .query_map(params_from_iter(args), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    texts
        .iter()
        .map(|t| serde_json::from_str(t).map_err(StoreError::from))
        .collect()
}

impl StateStore for SqliteStore {
    fn commit<'a>(
        &'a self,
        pair: &'a str,
        writes: Vec<StoreWrite>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            for write in writes {
                apply_write(&tx, &pair, write)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Watermark>>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT delta_link, saved_at FROM watermarks WHERE pair = ?1",
                    params![pair],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(delta_link, saved_at)| {
                Ok(Watermark {
                    delta_link,
                    saved_at: parse_ts(&saved_at)?,
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
        let pair = pair.to_owned();
        let watermark = watermark.clone();
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO watermarks (pair, delta_link, saved_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pair) DO UPDATE SET
                     delta_link = excluded.delta_link, saved_at = excluded.saved_at",
                params![pair, watermark.delta_link, ts(watermark.saved_at)],
            )?;
            Ok(())
        })
    }

    fn clear_watermark<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            conn.execute("DELETE FROM watermarks WHERE pair = ?1", params![pair])?;
            Ok(())
        })
    }

    fn managed_users<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        let pair = pair.to_owned();
        self.run(move |conn| read_managed(conn, &pair))
    }

    fn managed_user<'a>(
        &'a self,
        pair: &'a str,
        anchor: &'a Anchor,
    ) -> BoxFuture<'a, StoreResult<Option<ManagedUser>>> {
        let pair = pair.to_owned();
        let anchor = anchor.clone();
        self.run(move |conn| {
            Ok(
                read_managed_among(conn, &pair, std::slice::from_ref(&anchor))?
                    .into_iter()
                    .next(),
            )
        })
    }

    fn managed_users_among<'a>(
        &'a self,
        pair: &'a str,
        anchors: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<ManagedUser>>> {
        let pair = pair.to_owned();
        let anchors = anchors.to_vec();
        self.run(move |conn| read_managed_among(conn, &pair, &anchors))
    }

    fn reports_of<'a>(
        &'a self,
        pair: &'a str,
        managers: &'a [Anchor],
    ) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        let pair = pair.to_owned();
        let managers = managers.to_vec();
        self.run(move |conn| read_reports(conn, &pair, &managers))
    }

    fn managed_anchors<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Anchor>>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT anchor FROM managed_users WHERE pair = ?1 ORDER BY anchor",
            )?;
            let texts = stmt
                .query_map(params![pair], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            texts.iter().map(|t| parse_anchor(t)).collect()
        })
    }

    fn live_managed_count<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<usize>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM managed_users
                 WHERE pair = ?1 AND soft_deleted_by_us_at IS NULL",
                params![pair],
                |r| r.get(0),
            )?;
            usize::try_from(n).map_err(|e| StoreError::Corrupt(format!("count {n}: {e}")))
        })
    }

    fn create_intents<'a>(
        &'a self,
        pair: &'a str,
    ) -> BoxFuture<'a, StoreResult<Vec<CreateIntent>>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT anchor, intent_id, invited_address, recorded_at FROM create_intents
                 WHERE pair = ?1 ORDER BY anchor",
            )?;
            let rows = stmt
                .query_map(params![pair], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(anchor, intent_id, invited_address, recorded_at)| {
                    Ok(CreateIntent {
                        anchor: parse_anchor(&anchor)?,
                        intent_id,
                        invited_address,
                        recorded_at: parse_ts(&recorded_at)?,
                    })
                })
                .collect()
        })
    }

    fn escrows<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Vec<Escrow>>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT anchor, reference, action, attempts, first_failed_at, last_failed_at,
                        next_retry_at, error_code, error_message
                 FROM escrows WHERE pair = ?1 ORDER BY anchor, reference",
            )?;
            let mut cursor = stmt.query(params![pair])?;
            let mut out = Vec::new();
            while let Some(r) = cursor.next()? {
                let action: String = r.get(2)?;
                out.push(Escrow {
                    anchor: parse_anchor(&r.get::<_, String>(0)?)?,
                    reference: r.get(1)?,
                    action: Action::parse(&action)
                        .ok_or_else(|| StoreError::Corrupt(format!("escrow action {action:?}")))?,
                    attempts: r.get(3)?,
                    first_failed_at: parse_ts(&r.get::<_, String>(4)?)?,
                    last_failed_at: parse_ts(&r.get::<_, String>(5)?)?,
                    next_retry_at: parse_ts(&r.get::<_, String>(6)?)?,
                    last_error: EscrowError {
                        code: r.get(7)?,
                        message: r.get(8)?,
                    },
                });
            }
            Ok(out)
        })
    }

    fn status<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let text: Option<String> = conn
                .query_row(
                    "SELECT status FROM job_status WHERE pair = ?1",
                    params![pair],
                    |r| r.get(0),
                )
                .optional()?;
            text.map(|t| serde_json::from_str(&t).map_err(StoreError::from))
                .transpose()
        })
    }

    fn provisioning_log<'a>(
        &'a self,
        pair: &'a str,
        query: &'a LogQuery,
    ) -> BoxFuture<'a, StoreResult<Vec<ProvisioningLogEntry>>> {
        let pair = pair.to_owned();
        let query = query.clone();
        self.run(move |conn| read_log(conn, &pair, &query))
    }

    fn prune_log<'a>(
        &'a self,
        pair: &'a str,
        before: DateTime<Utc>,
    ) -> BoxFuture<'a, StoreResult<u64>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let gone = conn.execute(
                "DELETE FROM provisioning_log WHERE pair = ?1 AND activity_date_time < ?2",
                params![pair, ts(before)],
            )?;
            Ok(u64::try_from(gone).unwrap_or(u64::MAX))
        })
    }

    fn group_state<'a>(&'a self, pair: &'a str) -> BoxFuture<'a, StoreResult<GroupState>> {
        let pair = pair.to_owned();
        self.run(move |conn| {
            let mut stmt =
                conn.prepare("SELECT state FROM group_links WHERE pair = ?1 ORDER BY source_id")?;
            let links = stmt
                .query_map(params![pair], |r| r.get::<_, String>(0))?
                .map(|text| Ok(serde_json::from_str(&text?)?))
                .collect::<StoreResult<Vec<GroupLinkState>>>()?;
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT delta_link, saved_at FROM group_watermarks WHERE pair = ?1",
                    params![pair],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let watermark = row
                .map(|(delta_link, saved_at)| {
                    Ok::<_, StoreError>(Watermark {
                        delta_link,
                        saved_at: parse_ts(&saved_at)?,
                    })
                })
                .transpose()?;
            Ok(GroupState { links, watermark })
        })
    }

    fn pairs(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(PAIRS_SQL)?;
            let pairs = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(pairs)
        })
    }
}

/// Pairs with any record, in byte order (both backends use the same statement).
pub(super) const PAIRS_SQL: &str = "
    SELECT pair FROM watermarks UNION SELECT pair FROM managed_users
    UNION SELECT pair FROM create_intents UNION SELECT pair FROM escrows
    UNION SELECT pair FROM job_status UNION SELECT pair FROM provisioning_log
    UNION SELECT pair FROM group_links UNION SELECT pair FROM group_watermarks
    ORDER BY 1";
