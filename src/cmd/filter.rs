//! `ctsync filter --batch`: evaluate scoping for users given as JSON on stdin, like Entra's
//! on-demand "Determine if user is in scope" step.
//!
//! Input: one request object or an array of them:
//! `{"filters": [{"title", "clauses": [{"attribute", "operator", "value"}]}], "user": {...}}`.
//! Output (same shape: object or array, same order): `{"inScope": bool, "explanation": {...}}`, or
//! `{"error": "..."}` for a request that cannot be evaluated (then the exit status is 2).
//!
//! Without assignment context a request evaluates the scoping filters only (Entra's "Scoping
//! filter evaluation passed"). With context — `scope` (`assigned`/`SyncAssigned`, `all`/`SyncAll`),
//! `assignment` (`direct`, `directMemberOfAssignedGroup`, `nestedMemberOfAssignedGroup`, `none`),
//! `isInternal`, `previouslyProvisioned`, given beside `user` or inside it as the conformance
//! vectors do — it makes the full decision: membership, assignment, activity and filters. A user
//! disabled in the source is then in scope only when previously provisioned (it is disabled in
//! the target, not created).

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use ctsync::mapping::SourceAttributes;
use ctsync::scope::{
    self, Assignment, CompiledFilters, Disposition, ExternalReason, Membership, ScopeSetting,
    ScopingFilter,
};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read requests as JSON from stdin and write results as JSON to stdout.
    #[arg(long)]
    batch: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.batch {
        eprintln!(
            "ctsync filter: use --batch and give requests on stdin, e.g.\n  \
             echo '{{\"filters\": [], \"user\": {{}}}}' | ctsync filter --batch"
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading stdin")?;
    let parsed: Json = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ctsync filter: stdin is not valid JSON: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let (requests, is_array) = match parsed {
        Json::Array(items) => (items, true),
        other => (vec![other], false),
    };
    let mut failed = false;
    let mut results = Vec::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        match evaluate(request) {
            Ok(result) => results.push(result),
            Err(message) => {
                failed = true;
                if is_array {
                    eprintln!("ctsync filter: request {index}: {message}");
                } else {
                    eprintln!("ctsync filter: {message}");
                }
                results.push(json!({ "error": message }));
            }
        }
    }
    let output = if is_array {
        Json::Array(results)
    } else {
        results.pop().unwrap_or(Json::Null)
    };
    println!("{output}");
    Ok(if failed {
        ExitCode::from(super::EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    filters: Vec<ScopingFilter>,
    #[serde(default)]
    user: Map<String, Json>,
    #[serde(flatten)]
    context: ScopeContext,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeContext {
    scope: Option<String>,
    assignment: Option<String>,
    is_internal: Option<bool>,
    previously_provisioned: Option<bool>,
}

impl ScopeContext {
    fn is_empty(&self) -> bool {
        self.scope.is_none()
            && self.assignment.is_none()
            && self.is_internal.is_none()
            && self.previously_provisioned.is_none()
    }

    /// Fields missing at the top level are taken from the user object (the vector convention).
    fn or_from_user(self, user: &Map<String, Json>) -> ScopeContext {
        let text = |k: &str| user.get(k).and_then(Json::as_str).map(str::to_owned);
        let flag = |k: &str| user.get(k).and_then(Json::as_bool);
        ScopeContext {
            scope: self.scope.or_else(|| text("scope")),
            assignment: self.assignment.or_else(|| text("assignment")),
            is_internal: self.is_internal.or_else(|| flag("isInternal")),
            previously_provisioned: self
                .previously_provisioned
                .or_else(|| flag("previouslyProvisioned")),
        }
    }
}

fn scope_setting(text: Option<&str>) -> Result<ScopeSetting, String> {
    match text {
        None => Ok(ScopeSetting::Assigned),
        Some(s) if s.eq_ignore_ascii_case("assigned") || s.eq_ignore_ascii_case("SyncAssigned") => {
            Ok(ScopeSetting::Assigned)
        }
        Some(s) if s.eq_ignore_ascii_case("all") || s.eq_ignore_ascii_case("SyncAll") => {
            Ok(ScopeSetting::All)
        }
        Some(s) => Err(format!(
            "unknown scope '{s}' (expected assigned, all, SyncAssigned or SyncAll)"
        )),
    }
}

fn assignment(text: Option<&str>, setting: ScopeSetting) -> Result<Assignment, String> {
    match text {
        // With `all`, assignment does not matter; with `assigned`, none was stated.
        None => Ok(Assignment::None),
        Some("direct") => Ok(Assignment::Direct),
        Some("directMemberOfAssignedGroup") => Ok(Assignment::ViaGroup {
            group_id: "(assigned group)".into(),
        }),
        // Assignment does not cascade to nested groups.
        Some("nestedMemberOfAssignedGroup" | "none") => Ok(Assignment::None),
        Some(other) => Err(format!(
            "unknown assignment '{other}' (expected direct, directMemberOfAssignedGroup, \
             nestedMemberOfAssignedGroup or none; scope is {setting:?})"
        )),
    }
}

fn evaluate(request: Json) -> Result<Json, String> {
    let request: Request =
        serde_json::from_value(request).map_err(|e| format!("invalid request: {e}"))?;
    let filters = CompiledFilters::compile(&request.filters).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let user = SourceAttributes::new(&request.user);
    let context = request.context.or_from_user(&request.user);
    if context.is_empty() {
        let explanation = filters.evaluate(&user);
        return Ok(json!({
            "inScope": explanation.passed,
            "explanation": {
                "scopeEvaluationResult": explanation.scope_evaluation_result(),
                "filters": explanation,
            },
        }));
    }
    let setting = scope_setting(context.scope.as_deref())?;
    let assignment = assignment(context.assignment.as_deref(), setting)?;
    let membership = match context.is_internal {
        Some(false) => Membership::External(ExternalReason::Declared),
        // Declared internal: only userType can still make the user a guest.
        Some(true) => {
            let guest = user
                .json("userType")
                .is_some_and(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("Guest")));
            if guest {
                Membership::InternalGuest
            } else {
                Membership::InternalMember
            }
        }
        None => Membership::of(&user),
    };
    let decision = scope::decide(setting, assignment, membership, &user, &filters);
    let previously_provisioned = context.previously_provisioned.unwrap_or(false);
    let in_scope = match decision.disposition {
        Disposition::Provision => true,
        Disposition::Disable => previously_provisioned,
        Disposition::OutOfScope => false,
    };
    let mut explanation =
        serde_json::to_value(&decision).map_err(|e| format!("cannot render the decision: {e}"))?;
    if let Json::Object(map) = &mut explanation {
        map.insert(
            "previouslyProvisioned".into(),
            previously_provisioned.into(),
        );
    }
    Ok(json!({ "inScope": in_scope, "explanation": explanation }))
}
