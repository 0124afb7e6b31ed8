//! Text and JSON renderings of a plan (`ctsync plan`, the admin API, snapshot tests).

use std::fmt::{self, Write as _};

use serde_json::Value;

use super::model::{Action, Plan, PlanEntry};

impl Plan {
    /// Pretty JSON; serde keeps field order, maps are sorted, so the bytes are deterministic.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys into a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Human-readable rendering: header, counts, guard, then one block per writing or held
    /// entry and one line per plain skip.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // Writing into a String never fails.
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> fmt::Result {
        writeln!(
            out,
            "plan for pair {} at {}",
            self.pair,
            self.computed_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )?;
        let counts: Vec<String> = Action::ALL
            .iter()
            .map(|a| format!("{a} {}", self.count(*a)))
            .collect();
        writeln!(out, "counts: {}", counts.join(", "))?;
        if let Some(block) = self.blocked {
            writeln!(
                out,
                "blocked: {}: nothing is written this cycle",
                block.as_str()
            )?;
        }
        let g = &self.guard;
        let share = g
            .percentage
            .map(|p| format!(" or {p}% of {} managed", g.managed))
            .unwrap_or_default();
        let mut verdict = match (g.enabled, g.triggered) {
            (false, _) => "off".to_owned(),
            (true, false) => "not triggered".to_owned(),
            (true, true) => "TooManyDeletes, removals staged".to_owned(),
        };
        if g.approved > 0 {
            let _ = write!(verdict, "; {} approved removals go through", g.approved);
        }
        writeln!(
            out,
            "deletion guard: {verdict} ({} deletes + {} disables; threshold {}{share})",
            g.deletes, g.disables, g.threshold
        )?;
        for entry in &self.entries {
            write_entry(out, entry)?;
        }
        if !self.manager_updates.is_empty() {
            writeln!(out, "manager references:")?;
            for m in &self.manager_updates {
                let old = m
                    .old_manager
                    .as_ref()
                    .map_or("(none)".into(), |a| a.to_string());
                let new = m
                    .new_manager
                    .as_ref()
                    .map_or("(none)".into(), |a| a.to_string());
                writeln!(out, "  {}: {old} -> {new}", m.anchor)?;
            }
        }
        Ok(())
    }
}

fn write_entry(out: &mut String, e: &PlanEntry) -> fmt::Result {
    write!(out, "{:<12} {}", e.action.as_str(), e.anchor)?;
    if let Some(upn) = &e.user_principal_name {
        write!(out, " {upn}")?;
    }
    if let Some(id) = &e.target_id {
        write!(out, " -> {id}")?;
    }
    write!(out, " [{}] {}", e.situation, e.reason)?;
    if let Some(intended) = e.intended {
        write!(out, " (held: {intended})")?;
    }
    if let Some(intent) = &e.resumes_intent {
        write!(out, " (resumes intent {intent})")?;
    }
    writeln!(out)?;
    for change in &e.changes {
        let old = change.old.as_ref().map_or("(none)".into(), compact);
        writeln!(
            out,
            "    {}: {old} -> {}",
            change.attribute,
            compact(&change.new)
        )?;
    }
    Ok(())
}

fn compact(value: &Value) -> String {
    value.to_string()
}
