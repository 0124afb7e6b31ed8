//! Moves every pair's state from one store to another (`ctsync migrate-store`): an existing
//! SQLite installation onto PostgreSQL. Through the trait only, so any pair of backends works.

use super::log::LogQuery;
use super::types::StoreWrite;
use super::{StateStore, StoreError, StoreResult};

/// What was copied for one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedPair {
    pub pair: String,
    pub managed_users: usize,
    pub create_intents: usize,
    pub escrows: usize,
    pub log_entries: usize,
    pub watermark: bool,
    pub group_links: usize,
}

/// Copies every pair of `from` into `to`, one transaction per pair, the watermark last (as the
/// engine records it), so an interrupted copy never leaves a watermark ahead of its records.
/// Refuses a target that already holds any pair: merging two installations is not a move.
pub async fn copy_store(
    from: &dyn StateStore,
    to: &dyn StateStore,
) -> StoreResult<Vec<MigratedPair>> {
    let existing = to.pairs().await?;
    if !existing.is_empty() {
        return Err(StoreError::Config(format!(
            "the target store already holds pairs ({}); migrate into an empty store",
            existing.join(", ")
        )));
    }
    let mut report = Vec::new();
    for pair in from.pairs().await? {
        let managed = from.managed_users(&pair).await?;
        let intents = from.create_intents(&pair).await?;
        let escrows = from.escrows(&pair).await?;
        let log = from
            .provisioning_log(
                &pair,
                &LogQuery {
                    limit: Some(u32::MAX),
                    ..LogQuery::default()
                },
            )
            .await?;
        let status = from.status(&pair).await?;
        let watermark = from.watermark(&pair).await?;
        let groups = from.group_state(&pair).await?;
        let counts = MigratedPair {
            pair: pair.clone(),
            managed_users: managed.len(),
            create_intents: intents.len(),
            escrows: escrows.len(),
            log_entries: log.len(),
            watermark: watermark.is_some(),
            group_links: groups.links.len(),
        };
        let mut writes: Vec<StoreWrite> = Vec::new();
        writes.extend(managed.into_iter().map(StoreWrite::PutManaged));
        writes.extend(intents.into_iter().map(StoreWrite::RecordCreateIntent));
        writes.extend(escrows.into_iter().map(StoreWrite::PutEscrow));
        writes.extend(
            log.into_iter()
                .map(|entry| StoreWrite::AppendLog(Box::new(entry))),
        );
        writes.extend(status.map(StoreWrite::PutStatus));
        // Group sync: links with the rest, the group watermark last like the users' one.
        let groups = from.group_state(&pair).await?;
        writes.extend(groups.links.into_iter().map(StoreWrite::PutGroupLink));
        to.commit(&pair, writes).await?;
        if let Some(w) = groups.watermark {
            to.commit(&pair, vec![StoreWrite::SaveGroupWatermark(w)])
                .await?;
        }
        if let Some(watermark) = watermark {
            to.save_watermark(&pair, &watermark).await?;
        }
        report.push(counts);
    }
    Ok(report)
}
