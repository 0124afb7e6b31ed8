//! The group plan as text for people (names first, ids after) and as JSON.

use std::fmt::Write;

use super::model::{GroupAction, GroupPlan};

impl GroupPlan {
    /// One line per group with a write or a reason, then its member changes.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "groups: {} create, {} adopt, {} update, {} restore, {} delete, {} staged, {} disputed, {} skipped; members +{} -{}",
            self.count(GroupAction::Create),
            self.count(GroupAction::Adopt),
            self.count(GroupAction::Update),
            self.count(GroupAction::Restore),
            self.count(GroupAction::Delete),
            self.count(GroupAction::StagedDelete),
            self.count(GroupAction::Disputed),
            self.count(GroupAction::Skip),
            self.member_adds(),
            self.member_removals(),
        );
        if let Some(reason) = &self.blocked {
            let _ = writeln!(out, "  blocked: {reason}");
        }
        if self.guard.triggered {
            let _ = writeln!(
                out,
                "  deletion guard: {} group deletes + {} member removals >= {}{}",
                self.guard.deletes,
                self.guard.member_removals,
                self.guard.threshold,
                if self.guard.forced {
                    " (approved)"
                } else {
                    ": staged"
                }
            );
        }
        for e in &self.entries {
            let quiet =
                e.action == GroupAction::NoChange && e.reason.is_none() && e.drift.is_none();
            if quiet {
                continue;
            }
            let _ = write!(out, "  {:<12} {}", e.action.as_str(), e.display_name);
            if let Some(t) = &e.target_id {
                let _ = write!(out, " -> {t}");
            }
            let _ = write!(out, " (source {})", e.source_id);
            if let Some(r) = e.reason {
                let _ = write!(out, ": {}", r.describe());
            }
            out.push('\n');
            for (k, v) in &e.changes {
                let _ = writeln!(out, "      {k} = {v}");
            }
            for m in &e.add_members {
                let _ = writeln!(out, "      + {} ({})", m.name, m.target_user_id);
            }
            for m in &e.remove_members {
                let _ = writeln!(out, "      - {} ({})", m.name, m.target_user_id);
            }
            if let Some(d) = &e.drift {
                let verb = if d.corrected { "corrected" } else { "reported" };
                for m in &d.added_in_target {
                    let _ = writeln!(out, "      drift ({verb}): {} added in the target", m.name);
                }
                for m in &d.removed_in_target {
                    let _ = writeln!(
                        out,
                        "      drift ({verb}): {} removed in the target",
                        m.name
                    );
                }
            }
            if !e.candidates.is_empty() {
                let _ = writeln!(out, "      candidates: {}", e.candidates.join(", "));
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
