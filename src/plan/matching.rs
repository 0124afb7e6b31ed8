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
    fn candidates(&self) -> Vec<&'a TargetUser> {
        self.targets_by_id
            .values()
            .copied()
            .filter(|t| {
                t.anchor.is_none()
                    && t.is_b2b()
                    && !t.deleted
                    && !self.claims.contains_key(t.id.as_str())
            })
            .collect()
    }

    /// Matches every seeker against the candidates; a candidate picked by two seekers is
    /// disputed for both (neither is written).
    pub(super) fn match_all(
        &self,
        seekers: &[(&'a Anchor, &'a SourceUser)],
    ) -> BTreeMap<&'a Anchor, MatchOutcome<'a>> {
        let candidates = self.candidates();
        let mut outcomes: BTreeMap<&Anchor, MatchOutcome> = seekers
            .iter()
            .map(|(anchor, user)| (*anchor, match_one(user, &candidates)))
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

/// Matching attributes are tried in precedence order; the first that selects anyone decides
/// (Entra: "stop at first match").
fn match_one<'a>(user: &SourceUser, candidates: &[&'a TargetUser]) -> MatchOutcome<'a> {
    for wanted in &user.matching {
        if is_blank(&wanted.value) {
            continue;
        }
        let mut hits = candidates
            .iter()
            .filter(|t| {
                t.attributes
                    .get(&wanted.attribute)
                    .is_some_and(|have| values_match(have, &wanted.value))
            })
            .copied();
        match (hits.next(), hits.next()) {
            (None, _) => continue,
            (Some(only), None) => return MatchOutcome::Unique(only),
            (Some(_), Some(_)) => return MatchOutcome::Disputed,
        }
    }
    MatchOutcome::NoCandidate
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Graph's `$filter eq` on directory strings is case-insensitive; a multi-valued target
/// attribute matches when any value does.
fn values_match(have: &Value, wanted: &Value) -> bool {
    match (have, wanted) {
        (Value::String(a), Value::String(b)) => a.to_lowercase() == b.to_lowercase(),
        (Value::Array(items), _) => items.iter().any(|item| values_match(item, wanted)),
        _ => have == wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_match_case_insensitively_and_inside_arrays() {
        assert!(values_match(&json!("A@x.test"), &json!("a@X.test")));
        assert!(values_match(&json!(["b@x", "A@x"]), &json!("a@x")));
        assert!(!values_match(&json!("a@x"), &json!("a@y")));
        assert!(!values_match(&json!(1), &json!("1")));
    }

    #[test]
    fn blank_values_never_match() {
        assert!(is_blank(&json!("")));
        assert!(is_blank(&Value::Null));
        assert!(!is_blank(&json!("x")));
    }
}
