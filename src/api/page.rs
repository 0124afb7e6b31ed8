//! The read-only HTML status page: server-rendered, no scripts, every value escaped.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use chrono::{Duration, Utc};

use crate::engine::JobStatus;
use crate::store::{LogQuery, ProvisioningLogEntry, ProvisioningResult};

use super::AppState;
use super::auth::Access;
use super::error::ApiError;

/// How far back the page looks for failures, and how many it shows per pair.
const FAILURE_WINDOW_DAYS: i64 = 7;
const FAILURES_SHOWN: usize = 10;

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) async fn index(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    state.policy.check(Access::Read, &headers)?;
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>ctsync status</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}\
         .Quarantine,.Disabled{color:#b00}.Paused{color:#a60}.Active{color:#070}</style>\
         </head><body><h1>ctsync jobs</h1>\n",
    );
    if let Some(problem) = state.handle.store_problem() {
        html.push_str(&format!(
            "<p class=\"Quarantine\">Jobs paused: {}</p>\n",
            escape(&problem)
        ));
    }
    if let Some(replica) = state.handle.replica() {
        lease_section(&mut html, &replica).await;
    }
    let pairs = state.handle.pairs();
    if pairs.is_empty() {
        html.push_str("<p>No jobs.</p>\n");
    }
    let since = Utc::now() - Duration::days(FAILURE_WINDOW_DAYS);
    for pair in pairs {
        let Some(status) = state.handle.status(&pair).await else {
            continue;
        };
        let failures = state
            .handle
            .provisioning_log(
                &pair,
                &LogQuery {
                    since: Some(since),
                    status: Some(ProvisioningResult::Failure),
                    ..LogQuery::default()
                },
            )
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(pair = %pair, error = %e, "status page: cannot read the log");
                Vec::new()
            });
        let mut cycles = state.metrics.recent_cycles(&pair);
        if cycles.is_empty()
            && let Some(last) = &status.last_cycle
        {
            cycles.push(last.clone());
        }
        job_section(&mut html, &pair, &status, &cycles, &failures);
    }
    html.push_str("</body></html>\n");
    Ok(Html(html))
}

/// Several replicas: which replica holds which pair, from the store's lease table.
async fn lease_section(html: &mut String, replica: &crate::engine::replica::ReplicaState) {
    html.push_str(&format!(
        "<section><h2>Leases</h2><p>This replica: <strong>{}</strong>; live replicas: {}</p>\n",
        escape(&replica.id),
        replica.live_replicas()
    ));
    match replica.lease_table().await {
        Ok(table) => {
            html.push_str(
                "<table><tr><th>pair</th><th>held by</th><th>epoch</th><th>expires</th></tr>\n",
            );
            for lease in table {
                html.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(&lease.pair),
                    escape(lease.holder.as_deref().unwrap_or("(nobody)")),
                    lease.epoch,
                    escape(&lease.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default())
                ));
            }
            html.push_str("</table></section>\n");
        }
        Err(e) => html.push_str(&format!(
            "<p>Cannot read the lease table: {}</p></section>\n",
            escape(&e.to_string())
        )),
    }
}

fn job_section(
    html: &mut String,
    pair: &str,
    status: &JobStatus,
    cycles: &[crate::engine::CycleReport],
    failures: &[ProvisioningLogEntry],
) {
    let code = format!("{:?}", status.code);
    // Writing into a String cannot fail.
    let _ = writeln!(
        html,
        "<section><h2>{}</h2><p>Status: <strong class=\"{}\">{}</strong>{}</p>",
        escape(pair),
        escape(&code),
        escape(&code),
        status
            .reason
            .as_deref()
            .map(|r| format!(" — reason: {}", escape(r)))
            .unwrap_or_default()
    );
    if let Some(execution) = &status.last_execution {
        let _ = writeln!(
            html,
            "<p>Last execution: {} ({}){}</p>",
            escape(&execution.time_ended.to_rfc3339()),
            escape(&execution.state),
            execution
                .error
                .as_ref()
                .map(|e| format!(" — {}: {}", escape(&e.code), escape(&e.message)))
                .unwrap_or_default()
        );
    }
    match &status.quarantine {
        Some(q) => {
            let _ = writeln!(
                html,
                "<p class=\"Quarantine\">Quarantined: {} since {} (series began {}, {} \
                 re-evaluations); next attempt {}; error {}: {}</p>",
                escape(q.reason.as_str()),
                escape(&q.current_began.to_rfc3339()),
                escape(&q.series_began.to_rfc3339()),
                q.series_count,
                escape(&q.next_attempt.to_rfc3339()),
                escape(&q.error.code),
                escape(&q.error.message)
            );
        }
        None => html.push_str("<p>Not quarantined.</p>\n"),
    }
    if let Some(staged) = &status.staged_deletes {
        let _ = writeln!(
            html,
            "<p class=\"Paused\">Deletion guard: {} deletes and {} disables staged (threshold \
             {}); approve with restart ForceDeletes.</p>",
            staged.deletes, staged.disables, staged.threshold
        );
    }
    if cycles.is_empty() {
        html.push_str("<p>No cycle has finished yet.</p>\n");
    } else {
        html.push_str(
            "<table><caption>Last cycles</caption><tr><th>started</th><th>kind</th>\
             <th>counts</th><th>succeeded</th><th>failed</th><th>duration</th>\
             <th>groups</th></tr>\n",
        );
        for c in cycles {
            let counts: Vec<String> = c
                .counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(a, n)| format!("{a} {n}"))
                .collect();
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td>\
                 <td>{}</td></tr>",
                escape(&c.started.to_rfc3339()),
                escape(&format!("{:?}", c.kind)),
                escape(&counts.join(", ")),
                c.succeeded,
                c.failed,
                c.duration_ms,
                escape(&group_summary(c.groups.as_ref()))
            );
        }
        html.push_str("</table>\n");
    }
    if failures.is_empty() {
        html.push_str("<p>No failures in the last 7 days.</p>\n");
    } else {
        html.push_str(
            "<table><caption>Latest failures</caption><tr><th>time</th><th>action</th>\
             <th>user</th><th>error</th><th>reason</th></tr>\n",
        );
        for entry in failures.iter().rev().take(FAILURES_SHOWN) {
            let error = entry.provisioning_status_info.error_information.as_ref();
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&entry.activity_date_time.to_rfc3339()),
                escape(entry.provisioning_action.as_str()),
                escape(&entry.source_identity.display_name),
                escape(error.and_then(|e| e.error_code.as_deref()).unwrap_or("")),
                escape(error.and_then(|e| e.reason.as_deref()).unwrap_or(""))
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</section>\n");
}

/// One cell for a cycle's group pass: what it did, or why it wrote nothing.
fn group_summary(groups: Option<&crate::engine::groups::GroupPassReport>) -> String {
    let Some(g) = groups else {
        return "-".into();
    };
    if let Some(reason) = &g.blocked {
        return format!("blocked: {reason}");
    }
    if !g.evaluated {
        return "no change".into();
    }
    let mut parts: Vec<String> = g
        .counts
        .iter()
        .filter(|(a, n)| **n > 0 && a.as_str() != "noChange")
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    parts.push(format!("members +{} -{}", g.member_adds, g.member_removals));
    if g.drift > 0 {
        parts.push(format!("drift {}", g.drift));
    }
    if g.failed > 0 {
        parts.push(format!("failed {}", g.failed));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralizes_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn a_job_with_a_hostile_name_and_reason_renders_escaped() {
        let status = JobStatus {
            reason: Some("<b>bad</b>".into()),
            ..JobStatus::default()
        };
        let mut html = String::new();
        job_section(&mut html, "<img src=x>", &status, &[], &[]);
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>bad"), "{html}");
        assert!(html.contains("&lt;img src=x&gt;"));
        assert!(html.contains("NotRun"));
        assert!(html.contains("Not quarantined."));
    }

    #[test]
    fn the_group_cell_says_what_the_group_pass_did_or_why_not() {
        use crate::engine::groups::GroupPassReport;
        assert_eq!(group_summary(None), "-");
        let quiet = GroupPassReport::default();
        assert_eq!(group_summary(Some(&quiet)), "no change");
        let blocked = GroupPassReport {
            blocked: Some("the target does not allow group sync".into()),
            ..GroupPassReport::default()
        };
        assert!(group_summary(Some(&blocked)).starts_with("blocked: "));
        let busy = GroupPassReport {
            evaluated: true,
            counts: [("create".to_string(), 1), ("noChange".to_string(), 3)].into(),
            member_adds: 2,
            member_removals: 1,
            drift: 1,
            ..GroupPassReport::default()
        };
        assert_eq!(
            group_summary(Some(&busy)),
            "create 1, members +2 -1, drift 1"
        );
    }
}
