//! SQLite schema and its migrations, versioned by `PRAGMA user_version`.

use rusqlite::{Connection, Transaction};

use super::StoreError;

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`. Append only: a shipped
/// migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema. Timestamps are RFC 3339 UTC text with fixed precision, so text order is
    // time order.
    "
    CREATE TABLE watermarks (
        pair        TEXT PRIMARY KEY,
        delta_link  TEXT NOT NULL,
        saved_at    TEXT NOT NULL
    );
    CREATE TABLE managed_users (
        pair                        TEXT NOT NULL,
        anchor                      TEXT NOT NULL,
        target_id                   TEXT NOT NULL,
        disabled_before_scope_exit  INTEGER NOT NULL DEFAULT 0,
        soft_deleted_by_us_at       TEXT,
        PRIMARY KEY (pair, anchor)
    );
    CREATE INDEX managed_users_target ON managed_users (pair, target_id);
    CREATE TABLE exported_values (
        pair       TEXT NOT NULL,
        anchor     TEXT NOT NULL,
        attribute  TEXT NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (pair, anchor, attribute),
        FOREIGN KEY (pair, anchor) REFERENCES managed_users (pair, anchor) ON DELETE CASCADE
    );
    CREATE TABLE create_intents (
        pair             TEXT NOT NULL,
        anchor           TEXT NOT NULL,
        intent_id        TEXT NOT NULL,
        invited_address  TEXT NOT NULL,
        recorded_at      TEXT NOT NULL,
        PRIMARY KEY (pair, anchor)
    );
    CREATE TABLE escrows (
        pair             TEXT NOT NULL,
        anchor           TEXT NOT NULL,
        reference        INTEGER NOT NULL,
        action           TEXT NOT NULL,
        attempts         INTEGER NOT NULL,
        first_failed_at  TEXT NOT NULL,
        last_failed_at   TEXT NOT NULL,
        next_retry_at    TEXT NOT NULL,
        error_code       TEXT NOT NULL,
        error_message    TEXT NOT NULL,
        PRIMARY KEY (pair, anchor, reference)
    );
    CREATE TABLE job_status (
        pair    TEXT PRIMARY KEY,
        status  TEXT NOT NULL
    );
    CREATE TABLE provisioning_log (
        seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
        pair                TEXT NOT NULL,
        id                  TEXT NOT NULL,
        activity_date_time  TEXT NOT NULL,
        action              TEXT NOT NULL,
        status              TEXT NOT NULL,
        entry               TEXT NOT NULL,
        UNIQUE (pair, id)
    );
    CREATE INDEX provisioning_log_time ON provisioning_log (pair, activity_date_time, seq);
    ",
    // 2: group sync. A link's state (target id, exported values, maintained members, flags) is
    // one JSON document: it is always read and written whole.
    "
    CREATE TABLE group_links (
        pair       TEXT NOT NULL,
        source_id  TEXT NOT NULL,
        target_id  TEXT NOT NULL,
        state      TEXT NOT NULL,
        PRIMARY KEY (pair, source_id)
    );
    CREATE TABLE group_watermarks (
        pair        TEXT PRIMARY KEY,
        delta_link  TEXT NOT NULL,
        saved_at    TEXT NOT NULL
    );
    ",
    // 3: incremental cycles read only what changed: the reports of a manager (by the manager's
    // anchor, kept as a JSON string under `manager`) and the count of live links.
    "
    CREATE INDEX exported_values_manager ON exported_values (pair, value)
        WHERE attribute = 'manager';
    CREATE INDEX managed_users_live ON managed_users (pair, soft_deleted_by_us_at);
    ",
];

/// The schema version this build writes.
pub(super) fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the database to [`current_version`]; a no-op when it is already there. Each step and
/// its version bump commit together, so an interrupted migration is redone, never half-applied.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let supported = current_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if version <= found {
            continue;
        }
        let tx = conn.transaction()?;
        apply(&tx, sql, version)?;
        tx.commit()?;
    }
    Ok(())
}

fn apply(tx: &Transaction<'_>, sql: &str, version: i64) -> Result<(), StoreError> {
    tx.execute_batch(sql)?;
    // PRAGMA takes no bound parameters; `version` is an integer we computed.
    tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
    Ok(())
}
