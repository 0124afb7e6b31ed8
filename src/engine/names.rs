//! Gathers the names of the users a plan touches, so every plan line and provisioning-log line
//! names people, not only anchors and object ids. Names come from what the cycle already read
//! (source users, the target read of full cycles, the display names last exported); a target
//! user the cycle did not read is looked up by id, only for the entries that produce a log line
//! (Entra's provisioning logs, too, read the target of each change).

use crate::plan::{Action, Anchor, ManagedUser, NameBook, Plan, TargetUser, UserNames};

use super::action_log::loggable_skip;
use super::read::Attributes;
use super::runtime::PairRuntime;

fn text(attrs: &Attributes, key: &str) -> Option<String> {
    attrs
        .get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The book of what was read.
pub(super) fn read_names<'a>(
    rt: &PairRuntime,
    source_users: impl Iterator<Item = (&'a String, &'a Attributes)>,
    target_users: &[TargetUser],
    managed: &[ManagedUser],
) -> NameBook {
    let mut book = NameBook::default();
    let tenant = &rt.pair.source.tenant_id;
    for (id, attrs) in source_users {
        book.add_source(
            &Anchor::new(tenant, id),
            UserNames {
                user_principal_name: text(attrs, "userPrincipalName"),
                display_name: text(attrs, "displayName"),
                target_user_principal_name: None,
            },
        );
    }
    for user in target_users {
        let s = |k: &str| user.attributes.get(k).and_then(|v| v.as_str());
        book.add_target(&user.id, s("userPrincipalName"), s("displayName"));
    }
    // The display name ctsync last wrote is the source's, as of that export.
    for m in managed {
        if let Some(name) = m.last_exported.get("displayName").and_then(|v| v.as_str()) {
            book.add_source(
                &m.anchor,
                UserNames {
                    display_name: Some(name.to_owned()),
                    ..UserNames::default()
                },
            );
        }
    }
    book
}

/// Does this entry produce a provisioning-log line?
fn logged(action: Action, reason: crate::plan::Reason) -> bool {
    action != Action::Skip || loggable_skip(reason)
}

/// Looks up the target users the book cannot name yet (one `GET /users/{id}` each; a
/// soft-deleted or vanished one stays unnamed on that side), then annotates the plan.
pub(super) async fn annotate(rt: &PairRuntime, plan: &mut Plan, mut book: NameBook) {
    let mut wanted: Vec<String> = plan
        .entries()
        .iter()
        .filter(|e| logged(e.action, e.reason))
        .filter_map(|e| e.target_id.clone())
        .collect();
    for m in plan.manager_updates() {
        wanted.extend(m.target_id.clone());
        wanted.extend(m.new_manager_target_id.clone());
    }
    wanted.sort();
    wanted.dedup();
    for id in wanted {
        if book.knows_target(&id) {
            continue;
        }
        match rt.target.get_user(&id, &[]).await {
            Ok(Some(user)) => book.add_target(
                &id,
                user.user_principal_name.as_deref(),
                user.display_name.as_deref(),
            ),
            Ok(None) => {}
            // Names are for people: a failed lookup leaves the name out, never fails the cycle.
            Err(e) => {
                tracing::debug!(target_id = %id, error = %e, "target user name lookup failed")
            }
        }
    }
    plan.annotate_names(&book);
}
