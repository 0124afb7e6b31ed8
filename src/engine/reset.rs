//! Graph's `synchronizationJobRestartCriteria.resetScope` (reference §4.3): a comma-separated
//! set of what a restart resets.

use serde::{Deserialize, Serialize};

/// What a restart resets. `Default` resets nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetScope {
    /// Forget the watermark: the next cycle evaluates every source user again.
    pub watermark: bool,
    /// Forget escrowed failures: they are no longer retried.
    pub escrows: bool,
    /// Lift the quarantine (and re-enable a job disabled by it).
    pub quarantine_state: bool,
    /// Let the deletes the deletion guard staged through, in the next cycle only.
    pub force_deletes: bool,
}

/// A `resetScope` value ctsync does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetScopeError {
    #[error(
        "unknown resetScope value {0:?} (expected Watermark, Escrows, QuarantineState, ForceDeletes, Full or None)"
    )]
    Unknown(String),
    /// Graph says "do not use"; ctsync keeps its links (the anchor makes them recoverable).
    #[error("resetScope ConnectorDataStore is not supported: ctsync never drops its links")]
    ConnectorDataStore,
}

impl ResetScope {
    /// `Full`: every option.
    pub fn full() -> ResetScope {
        ResetScope {
            watermark: true,
            escrows: true,
            quarantine_state: true,
            force_deletes: true,
        }
    }

    /// An empty `resetScope`, as the portal's Restart: QuarantineState, Watermark, Escrows.
    pub fn portal() -> ResetScope {
        ResetScope {
            watermark: true,
            escrows: true,
            quarantine_state: true,
            force_deletes: false,
        }
    }

    /// Parses Graph's comma-separated flags, case-insensitively; empty = [`Self::portal`].
    pub fn parse(text: &str) -> Result<ResetScope, ResetScopeError> {
        let parts: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return Ok(ResetScope::portal());
        }
        let mut scope = ResetScope::default();
        for part in parts {
            match part.to_ascii_lowercase().as_str() {
                "none" => {}
                "watermark" => scope.watermark = true,
                "escrows" => scope.escrows = true,
                "quarantinestate" => scope.quarantine_state = true,
                "forcedeletes" => scope.force_deletes = true,
                "full" => scope = ResetScope::full(),
                "connectordatastore" => return Err(ResetScopeError::ConnectorDataStore),
                _ => return Err(ResetScopeError::Unknown(part.to_owned())),
            }
        }
        Ok(scope)
    }
}

impl std::fmt::Display for ResetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [
            (self.watermark, "Watermark"),
            (self.escrows, "Escrows"),
            (self.quarantine_state, "QuarantineState"),
            (self.force_deletes, "ForceDeletes"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            f.write_str("None")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_flags() {
        assert_eq!(ResetScope::parse("").unwrap(), ResetScope::portal());
        assert_eq!(ResetScope::parse("Full").unwrap(), ResetScope::full());
        assert_eq!(
            ResetScope::parse("Watermark, escrows").unwrap(),
            ResetScope {
                watermark: true,
                escrows: true,
                ..ResetScope::default()
            }
        );
        assert_eq!(
            ResetScope::parse("ForceDeletes").unwrap().to_string(),
            "ForceDeletes"
        );
        assert_eq!(ResetScope::parse("None").unwrap(), ResetScope::default());
        assert_eq!(
            ResetScope::parse("Watermark,Bogus"),
            Err(ResetScopeError::Unknown("Bogus".into()))
        );
        assert_eq!(
            ResetScope::parse("ConnectorDataStore"),
            Err(ResetScopeError::ConnectorDataStore)
        );
    }
}
