//! How both backends spell the values they keep as text.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{StoreError, StoreResult};
use crate::plan::Anchor;

/// RFC 3339 UTC with nanoseconds: fixed width, so text order is time order, and exact (Graph's
/// instants carry 100 ns ticks; PostgreSQL's `timestamptz` would keep only microseconds).
pub(super) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(super) fn parse_ts(text: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {text:?}: {e}")))
}

pub(super) fn parse_anchor(text: &str) -> StoreResult<Anchor> {
    Anchor::parse(text).ok_or_else(|| StoreError::Corrupt(format!("anchor {text:?}")))
}
