//! Ties source users to target users: anchors (store links and target-side anchor values) and
//! adoption of pre-existing B2B users by the configured matching attributes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::input::{ManagedUser, PlanInput, SourceUser, TargetUser};
use super::model::Anchor;

/// How an anchor is tied to a target user.
#[derive(Debug, Clone, Copy)]
pub(super) enum Link<'a> {
    Unlinked,
    Linked {
        target_id: &'a str,
        managed: Option<&'a ManagedUser>,
        target: Option<&'a TargetUser>,
    },
    /// Two anchors claim one target user, or one anchor is carried by two target users.
    Conflict,
}

/// Result of looking for a pre-existing B2B user to adopt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum MatchOutcome<'a> {
    NoCandidate,
    Unique(&'a TargetUser),
    /// Several candidates, or the one candidate is claimed by another source user too.
    Disputed,
}

/// Indexes over the input, built once per plan.
pub(super) struct Links<'a> {
    managed: BTreeMap<&'a Anchor, &'a ManagedUser>,
    targets_by_id: BTreeMap<&'a str, &'a TargetUser>,
    targets_by_anchor: BTreeMap<&'a Anchor, Vec<&'a TargetUser>>,
    /// Every anchor that claims a target id, through the store or the target's anchor value.
    claims: BTreeMap<&'a str, BTreeSet<&'a Anchor>>,
}

impl<'a> Links<'a> {
    pub(super) fn new(input: &'a PlanInput) -> Self {
        let managed: BTreeMap<&Anchor, &ManagedUser> =
            input.managed.iter().map(|m| (&m.anchor, m)).collect();
        let targets_by_id: BTreeMap<&str, &TargetUser> = input
            .target_users
            .iter()
            .map(|t| (t.id.as_str(), t))
            .collect();
        let mut targets_by_anchor: BTreeMap<&Anchor, Vec<&TargetUser>> = BTreeMap::new();
        let mut claims: BTreeMap<&str, BTreeSet<&Anchor>> = BTreeMap::new();
        for target in targets_by_id.values() {
            if let Some(anchor) = &target.anchor {
                targets_by_anchor.entry(anchor).or_default().push(target);
                claims.entry(target.id.as_str()).or_default().insert(anchor);
            }
        }
        for m in managed.values() {
            claims
                .entry(m.target_id.as_str())
                .or_default()
                .insert(&m.anchor);
        }
        Self {
            managed,
            targets_by_id,
            targets_by_anchor,
            claims,
        }
    }

    pub(super) fn managed(&self, anchor: &Anchor) -> Option<&'a ManagedUser> {
        self.managed.get(anchor).copied()
    }

    /// Anchors ctsync manages: linked in the store or carried by a target user.
    pub(super) fn managed_anchors(&self) -> BTreeSet<&'a Anchor> {
        self.managed
            .keys()
            .copied()
            .chain(self.targets_by_anchor.keys().copied())
            .collect()
    }

    pub(super) fn link(&self, anchor: &Anchor) -> Link<'a> {
        let (target_id, managed) = match self.managed.get(anchor) {
            Some(m) => (m.target_id.as_str(), Some(*m)),
            None => match self.targets_by_anchor.get(anchor).map(Vec::as_slice) {
                None | Some([]) => return Link::Unlinked,
                Some([only]) => (only.id.as_str(), None),
                Some(_) => return Link::Conflict,
            },
        };
        if self.claims.get(target_id).is_some_and(|c| c.len() > 1) {
            return Link::Conflict;
        }
        Link::Linked {
            target_id,
            managed,
            target: self.targets_by_id.get(target_id).copied(),
        }
    }

    /// Unanchored, live B2B users no anchor claims: the only users adoption may pick.
    fn candidates(&self) -> impl Iterator<Item = &'a TargetUser> + '_ {
        self.targets_by_id.values().copied().filter(|t| {
            t.anchor.is_none()
                && t.is_b2b()
                && !t.deleted
                && !self.claims.contains_key(t.id.as_str())
        })
    }

    /// Matches every seeker against the candidates; a candidate picked by two seekers is
    /// disputed for both (neither is written).
    pub(super) fn match_all(
        &self,
        seekers: &[(&'a Anchor, &'a SourceUser)],
    ) -> BTreeMap<&'a Anchor, MatchOutcome<'a>> {
        let index = CandidateIndex::new(self.candidates());
        let mut outcomes: BTreeMap<&Anchor, MatchOutcome> = seekers
            .iter()
            .map(|(anchor, user)| (*anchor, index.match_one(user)))
            .collect();
        let mut picks: BTreeMap<&str, usize> = BTreeMap::new();
        for outcome in outcomes.values() {
            if let MatchOutcome::Unique(t) = outcome {
                *picks.entry(t.id.as_str()).or_insert(0) += 1;
            }
        }
        for outcome in outcomes.values_mut() {
            if let MatchOutcome::Unique(t) = outcome
                && picks.get(t.id.as_str()).is_some_and(|n| *n > 1)
            {
                *outcome = MatchOutcome::Disputed;
            }
        }
        outcomes
    }
}

/// Candidates by (attribute, comparable value), so an initial cycle with many unlinked users
/// and many B2B users costs a lookup per matching attribute, not a scan.
struct CandidateIndex<'a> {
    by_value: BTreeMap<(&'a str, String), BTreeSet<&'a str>>,
    by_id: BTreeMap<&'a str, &'a TargetUser>,
}

impl<'a> CandidateIndex<'a> {
    fn new(candidates: impl Iterator<Item = &'a TargetUser>) -> Self {
        let mut by_value: BTreeMap<(&str, String), BTreeSet<&str>> = BTreeMap::new();
        let mut by_id = BTreeMap::new();
        for t in candidates {
            by_id.insert(t.id.as_str(), t);
            for (attribute, value) in &t.attributes {
                // A multi-valued target attribute matches when any of its values does.
                let values = match value {
                    Value::Array(items) => items.iter().collect(),
                    single => vec![single],
                };
                for key in values.into_iter().filter_map(match_key) {
                    by_value
                        .entry((attribute.as_str(), key))
                        .or_default()
                        .insert(t.id.as_str());
                }
            }
        }
        Self { by_value, by_id }
    }

    /// Matching attributes are tried in precedence order; the first that selects anyone decides
    /// (Entra: "stop at first match").
    fn match_one(&self, user: &SourceUser) -> MatchOutcome<'a> {
        for wanted in &user.matching {
            let Some(key) = match_key(&wanted.value) else {
                continue;
            };
            let hits = self.by_value.get(&(wanted.attribute.as_str(), key));
            match hits.map(|ids| ids.iter().collect::<Vec<_>>()).as_deref() {
                None | Some([]) => continue,
                Some([only]) => {
                    return self
                        .by_id
                        .get(*only)
                        .map_or(MatchOutcome::NoCandidate, |t| MatchOutcome::Unique(t));
                }
                Some(_) => return MatchOutcome::Disputed,
            }
        }
        MatchOutcome::NoCandidate
    }
}

/// The comparable form of a matching value: Graph's `$filter eq` on directory strings is
/// case-insensitive; other values compare as JSON. Blank values never match.
fn match_key(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(format!("s:{}", s.to_lowercase())),
        other => Some(format!("j:{other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_compare_case_insensitively_other_values_as_json() {
        assert_eq!(match_key(&json!("A@x.test")), match_key(&json!("a@X.test")));
        assert_ne!(match_key(&json!("a@x")), match_key(&json!("a@y")));
        assert_ne!(match_key(&json!(1)), match_key(&json!("1")));
        assert_eq!(match_key(&json!(true)), match_key(&json!(true)));
    }

    #[test]
    fn blank_values_never_match() {
        assert_eq!(match_key(&json!("")), None);
        assert_eq!(match_key(&Value::Null), None);
    }
}
