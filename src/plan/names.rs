//! Who a plan entry is about, as an administrator reads it: the source user's UPN and display
//! name and the target (B2B) user's UPN. The planner decides with anchors and object ids; the
//! engine gathers names from what it read into a [`NameBook`] and annotates the plan with it, so
//! every plan line, provisioning-log line and staged delete names a person.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::Anchor;

/// The names of one user, each as far as known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserNames {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_principal_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub display_name: Option<String>,
    /// The B2B user's UPN in the target (`…#EXT#@…`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_user_principal_name: Option<String>,
}

impl UserNames {
    pub fn is_empty(&self) -> bool {
        self.user_principal_name.is_none()
            && self.display_name.is_none()
            && self.target_user_principal_name.is_none()
    }

    /// True when every name is known.
    pub fn is_complete(&self) -> bool {
        self.user_principal_name.is_some()
            && self.display_name.is_some()
            && self.target_user_principal_name.is_some()
    }

    /// Fills the names still missing from `other`.
    pub fn fill_from(&mut self, other: &UserNames) {
        fill(&mut self.user_principal_name, &other.user_principal_name);
        fill(&mut self.display_name, &other.display_name);
        fill(
            &mut self.target_user_principal_name,
            &other.target_user_principal_name,
        );
    }

    /// `Adele Vance <adele.vance@contoso.com>`, or whichever part is known.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

fn fill(slot: &mut Option<String>, from: &Option<String>) {
    if slot.as_deref().is_none_or(str::is_empty)
        && let Some(v) = from.as_deref().filter(|v| !v.is_empty())
    {
        *slot = Some(v.to_owned());
    }
}

impl fmt::Display for UserNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.display_name, &self.user_principal_name) {
            (Some(name), Some(upn)) => write!(f, "{name} <{upn}>"),
            (Some(name), None) => f.write_str(name),
            (None, Some(upn)) => f.write_str(upn),
            (None, None) => match &self.target_user_principal_name {
                Some(upn) => f.write_str(upn),
                None => f.write_str("(unnamed)"),
            },
        }
    }
}

/// The address a B2B user was invited with, from its UPN: `adele.vance_contoso.com#EXT#@x` →
/// `adele.vance@contoso.com`. ctsync invites with the source UPN, so this names a source user
/// whose source object is gone (a hard delete leaves nothing to read). Domains cannot hold `_`,
/// so the last one is the `@`. A numeric suffix Graph adds on collisions is kept out.
pub fn invited_address(b2b_upn: &str) -> Option<String> {
    let (alias, _) = b2b_upn.split_once("#EXT#")?;
    let (local, domain) = alias.rsplit_once('_')?;
    let domain = domain.trim_end_matches(|c: char| c.is_ascii_digit());
    (!local.is_empty() && domain.contains('.')).then(|| format!("{local}@{domain}"))
}

/// Names by anchor (what the source says) and by target object id (what the target says).
#[derive(Debug, Clone, Default)]
pub struct NameBook {
    by_anchor: BTreeMap<Anchor, UserNames>,
    by_target: BTreeMap<String, UserNames>,
}

impl NameBook {
    /// Source-side names of `anchor` (a read source user, or a display name last exported).
    pub fn add_source(&mut self, anchor: &Anchor, names: UserNames) {
        self.by_anchor
            .entry(anchor.clone())
            .or_default()
            .fill_from(&names);
    }

    /// Target-side names of the user with object id `target_id`.
    pub fn add_target(&mut self, target_id: &str, upn: Option<&str>, display_name: Option<&str>) {
        self.by_target
            .entry(target_id.to_owned())
            .or_default()
            .fill_from(&UserNames {
                user_principal_name: None,
                display_name: display_name.map(str::to_owned),
                target_user_principal_name: upn.map(str::to_owned),
            });
    }

    pub fn knows_target(&self, target_id: &str) -> bool {
        self.by_target
            .get(target_id)
            .is_some_and(|n| n.target_user_principal_name.is_some())
    }

    /// Everything known about one user: the source's names first, then the target's, then the
    /// source UPN recovered from the B2B UPN.
    pub fn lookup(&self, anchor: &Anchor, target_id: Option<&str>) -> UserNames {
        let mut names = self.by_anchor.get(anchor).cloned().unwrap_or_default();
        if let Some(target) = target_id.and_then(|id| self.by_target.get(id)) {
            names.fill_from(target);
        }
        if names.user_principal_name.is_none() {
            names.user_principal_name = names
                .target_user_principal_name
                .as_deref()
                .and_then(invited_address);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invited_address_comes_back_from_the_b2b_upn() {
        assert_eq!(
            invited_address("adele.vance_contoso.com#EXT#@fabrikam.onmicrosoft.com").as_deref(),
            Some("adele.vance@contoso.com")
        );
        assert_eq!(
            invited_address("first_last_contoso.com2#EXT#@fabrikam.onmicrosoft.com").as_deref(),
            Some("first_last@contoso.com")
        );
        assert_eq!(invited_address("adele@contoso.com"), None);
    }

    #[test]
    fn source_names_come_first_and_the_target_fills_the_rest() {
        let anchor = Anchor::new("t", "u1");
        let mut book = NameBook::default();
        book.add_target(
            "x1",
            Some("lynne_contoso.com#EXT#@fabrikam.onmicrosoft.com"),
            Some("Lynne R."),
        );
        let names = book.lookup(&anchor, Some("x1"));
        assert_eq!(names.display_name.as_deref(), Some("Lynne R."));
        assert_eq!(
            names.user_principal_name.as_deref(),
            Some("lynne@contoso.com")
        );
        book.add_source(
            &anchor,
            UserNames {
                user_principal_name: Some("lynne.robbins@contoso.com".into()),
                display_name: Some("Lynne Robbins".into()),
                target_user_principal_name: None,
            },
        );
        let names = book.lookup(&anchor, Some("x1"));
        assert_eq!(names.label(), "Lynne Robbins <lynne.robbins@contoso.com>");
        assert!(names.is_complete());
    }
}
