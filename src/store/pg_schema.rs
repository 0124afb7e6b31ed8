//! PostgreSQL schema and its migrations, versioned in `ctsync_schema_migrations`.
//!
//! The record tables mirror the SQLite schema (`schema.rs`) so both backends keep the same
//! values the same way: timestamps as fixed-width RFC 3339 text (exact to the nanosecond; text
//! order is time order because keys and timestamps use the `"C"` collation, which also makes
//! `ORDER BY anchor` the byte order the SQLite store and the planner use), JSON as `json` (kept
//! verbatim, key order included — `jsonb` would reorder keys of the status blob).

use deadpool_postgres::Client;

use super::{StoreError, StoreResult};

/// Any constant: the advisory lock that serializes replicas migrating the same schema at once
/// (held by the migrating transaction only).
const MIGRATION_LOCK: i64 = 0x6374_7379_6e63_0001;

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`. Append only: a shipped
/// migration is never edited.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the records of every pair (same tables as SQLite's migration 1).
    r#"
    CREATE TABLE watermarks (
        pair        TEXT COLLATE "C" PRIMARY KEY,
        delta_link  TEXT NOT NULL,
        saved_at    TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE managed_users (
        pair                        TEXT COLLATE "C" NOT NULL,
        anchor                      TEXT COLLATE "C" NOT NULL,
        target_id                   TEXT NOT NULL,
        disabled_before_scope_exit  BOOLEAN NOT NULL DEFAULT FALSE,
        soft_deleted_by_us_at       TEXT COLLATE "C",
        PRIMARY KEY (pair, anchor)
    );
    CREATE INDEX managed_users_target ON managed_users (pair, target_id);
    CREATE TABLE exported_values (
        pair       TEXT COLLATE "C" NOT NULL,
        anchor     TEXT COLLATE "C" NOT NULL,
        attribute  TEXT COLLATE "C" NOT NULL,
        value      JSON NOT NULL,
        PRIMARY KEY (pair, anchor, attribute),
        FOREIGN KEY (pair, anchor) REFERENCES managed_users (pair, anchor) ON DELETE CASCADE
    );
    CREATE TABLE create_intents (
        pair             TEXT COLLATE "C" NOT NULL,
        anchor           TEXT COLLATE "C" NOT NULL,
        intent_id        TEXT NOT NULL,
        invited_address  TEXT NOT NULL,
        recorded_at      TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (pair, anchor)
    );
    CREATE TABLE escrows (
        pair             TEXT COLLATE "C" NOT NULL,
        anchor           TEXT COLLATE "C" NOT NULL,
        reference        BOOLEAN NOT NULL,
        action           TEXT NOT NULL,
        attempts         BIGINT NOT NULL,
        first_failed_at  TEXT COLLATE "C" NOT NULL,
        last_failed_at   TEXT COLLATE "C" NOT NULL,
        next_retry_at    TEXT COLLATE "C" NOT NULL,
        error_code       TEXT NOT NULL,
        error_message    TEXT NOT NULL,
        PRIMARY KEY (pair, anchor, reference)
    );
    CREATE TABLE job_status (
        pair    TEXT COLLATE "C" PRIMARY KEY,
        status  JSON NOT NULL
    );
    CREATE TABLE provisioning_log (
        seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        pair                TEXT COLLATE "C" NOT NULL,
        id                  TEXT COLLATE "C" NOT NULL,
        activity_date_time  TEXT COLLATE "C" NOT NULL,
        action              TEXT NOT NULL,
        status              TEXT NOT NULL,
        entry               JSON NOT NULL,
        UNIQUE (pair, id)
    );
    CREATE INDEX provisioning_log_time ON provisioning_log (pair, activity_date_time, seq);
    "#,
    // 2: leases per pair (times on the database's clock), their history (one row per epoch:
    // who held it from when until when), the replicas seen, fencing refusals, and commands
    // queued for whichever replica holds a pair.
    r#"
    CREATE TABLE pair_leases (
        pair         TEXT COLLATE "C" PRIMARY KEY,
        holder       TEXT,
        epoch        BIGINT NOT NULL DEFAULT 0,
        acquired_at  TIMESTAMPTZ,
        renewed_at   TIMESTAMPTZ,
        expires_at   TIMESTAMPTZ
    );
    CREATE TABLE lease_history (
        pair             TEXT COLLATE "C" NOT NULL,
        epoch            BIGINT NOT NULL,
        holder           TEXT NOT NULL,
        acquired_at      TIMESTAMPTZ NOT NULL,
        valid_until      TIMESTAMPTZ NOT NULL,
        ended            TEXT,
        previous_holder  TEXT,
        PRIMARY KEY (pair, epoch)
    );
    CREATE TABLE replicas (
        id          TEXT PRIMARY KEY,
        started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        last_seen   TIMESTAMPTZ NOT NULL DEFAULT now(),
        info        JSON NOT NULL
    );
    CREATE TABLE fencing_refusals (
        seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at             TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        pair           TEXT COLLATE "C" NOT NULL,
        holder         TEXT NOT NULL,
        epoch          BIGINT NOT NULL,
        current_holder TEXT,
        current_epoch  BIGINT
    );
    CREATE TABLE job_commands (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        pair        TEXT COLLATE "C" NOT NULL,
        command     JSON NOT NULL,
        queued_at   TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    "#,
    // 3: group sync (same tables as SQLite's migration 2).
    r#"
    CREATE TABLE group_links (
        pair       TEXT COLLATE "C" NOT NULL,
        source_id  TEXT COLLATE "C" NOT NULL,
        target_id  TEXT NOT NULL,
        state      JSON NOT NULL,
        PRIMARY KEY (pair, source_id)
    );
    CREATE TABLE group_watermarks (
        pair        TEXT COLLATE "C" PRIMARY KEY,
        delta_link  TEXT NOT NULL,
        saved_at    TEXT COLLATE "C" NOT NULL
    );
    "#,
    // 4: incremental cycles read only what changed (same purpose as SQLite's migration 3): the
    // reports of a manager, by the manager's anchor (the JSON string under `manager`, as text),
    // and the count of live links.
    r#"
    CREATE INDEX exported_values_manager ON exported_values (pair, (value #>> '{}'))
        WHERE attribute = 'manager';
    CREATE INDEX managed_users_live ON managed_users (pair) WHERE soft_deleted_by_us_at IS NULL;
    "#,
];

/// The schema version this build writes.
pub(super) fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the schema to [`current_version`]; a no-op when it is already there. Each step and its
/// version row commit together under an advisory transaction lock, so replicas starting at the
/// same time migrate once, and an interrupted migration is redone, never half-applied.
pub(super) async fn migrate(client: &mut Client) -> StoreResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS ctsync_schema_migrations (
                 version     BIGINT PRIMARY KEY,
                 applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let supported = current_version();
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let found: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM ctsync_schema_migrations",
                &[],
            )
            .await?
            .get(0);
        if found > supported {
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        if version <= found {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO ctsync_schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The highest migration applied.
pub(super) async fn version(client: &Client) -> StoreResult<i64> {
    Ok(client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM ctsync_schema_migrations",
            &[],
        )
        .await?
        .get(0))
}
