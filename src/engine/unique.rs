//! `SelectUniqueValue` checked against the target: a candidate is unique when no target user
//! other than the source user's own linked one holds it in an attribute a `SelectUniqueValue`
//! mapping writes, and no other source user of this cycle chose it first. Candidates are
//! learnt by evaluating the mappings, checked with `$filter` (`attr eq 'value'`), and the
//! mappings evaluated again until every candidate asked about is known (a few rounds at most).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::mapping::{MappingKind, MappingSet};

use super::EngineError;
use super::read::graph_error;
use super::runtime::PairRuntime;

/// Rounds of evaluate → check before the remaining unknown candidates are taken as unique.
pub(super) const MAX_ROUNDS: usize = 4;

/// Target user attributes written by a mapping that uses `SelectUniqueValue`.
pub(super) fn attributes(rt: &PairRuntime) -> Vec<String> {
    attributes_of(&rt.mappings)
}

/// Target attributes `mappings` write with `SelectUniqueValue`.
pub(super) fn attributes_of(mappings: &MappingSet) -> Vec<String> {
    mappings
        .mappings()
        .iter()
        .filter(|m| match &m.kind {
            MappingKind::Expression { expression, .. } => expression
                .canonical()
                .to_ascii_lowercase()
                .contains("selectuniquevalue("),
            _ => false,
        })
        .map(|m| m.target.clone())
        .collect()
}

/// Which target objects a candidate must be unique among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Objects {
    Users,
    Groups,
}

/// What is known about candidates so far.
#[derive(Debug, Default)]
pub(super) struct Oracle {
    /// Lower-cased candidate → target ids holding it (checked against the target).
    holders: BTreeMap<String, BTreeSet<String>>,
    /// Lower-cased candidate → the source object id that chose it this cycle.
    chosen: RefCell<BTreeMap<String, String>>,
    /// Candidates asked about but not checked yet.
    unknown: RefCell<BTreeSet<String>>,
}

impl Oracle {
    /// The `is_unique` answer for one source user (`own_target`: its linked target user).
    pub(super) fn is_unique(
        &self,
        source_id: &str,
        own_target: Option<&str>,
        candidate: &str,
    ) -> bool {
        let key = candidate.to_lowercase();
        if self
            .chosen
            .borrow()
            .get(&key)
            .is_some_and(|by| by != source_id)
        {
            return false;
        }
        let free = match self.holders.get(&key) {
            Some(ids) => ids.iter().all(|id| Some(id.as_str()) == own_target),
            None => {
                self.unknown.borrow_mut().insert(key.clone());
                true
            }
        };
        if free {
            self.chosen.borrow_mut().insert(key, source_id.to_owned());
        }
        free
    }

    /// Starts a new evaluation round: what was chosen is forgotten, what was checked kept.
    pub(super) fn next_round(&mut self) {
        self.chosen.borrow_mut().clear();
    }

    /// Checks the unknown candidates against the target's users; false when there were none.
    pub(super) async fn check(
        &mut self,
        rt: &PairRuntime,
        attributes: &[String],
    ) -> Result<bool, EngineError> {
        self.check_among(rt, Objects::Users, attributes).await
    }

    /// Checks the unknown candidates against the target's `objects`; false when there were
    /// none.
    pub(super) async fn check_among(
        &mut self,
        rt: &PairRuntime,
        objects: Objects,
        attributes: &[String],
    ) -> Result<bool, EngineError> {
        let unknown: Vec<String> = std::mem::take(&mut *self.unknown.borrow_mut())
            .into_iter()
            .filter(|c| !self.holders.contains_key(c))
            .collect();
        if unknown.is_empty() {
            return Ok(false);
        }
        for candidate in unknown {
            let mut ids = BTreeSet::new();
            let quoted = candidate.replace('\'', "''");
            for attribute in attributes {
                let filter = format!("{attribute} eq '{quoted}'");
                let error = |e| graph_error("target", &rt.pair.target.tenant_id, e);
                match objects {
                    Objects::Users => {
                        let users = rt
                            .target
                            .list_users(Some(&filter), &["id"])
                            .await
                            .map_err(error)?;
                        ids.extend(users.into_iter().map(|u| u.id));
                    }
                    Objects::Groups => {
                        let groups = rt
                            .target
                            .list_groups(Some(&filter), &[])
                            .await
                            .map_err(error)?;
                        ids.extend(groups.into_iter().map(|g| g.id));
                    }
                }
            }
            self.holders.insert(candidate, ids);
        }
        Ok(true)
    }
}
