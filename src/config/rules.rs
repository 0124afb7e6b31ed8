//! Rules the schema cannot express: one credential per tenant, secrets by reference, scope
//! consistency, filter values, mapping sources, durations, endpoints. They read the YAML tree
//! (not the typed document) so they also run on documents with structural problems, and each
//! reports at the position of the value it is about. A value of the wrong type is the
//! schema's to report: rules treat it as present and say nothing more about it.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use super::model::{self, *};
use super::tree::{Node, Pos, Value};
use crate::mapping::{self, AttributeMappingSpec, MappingField};
use crate::scope::{CompiledFilters, ScopingFilter};

/// A rule violation before the file name is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleProblem {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

/// Delta tokens of directory objects live 7 days (delta-query-overview.md): a longer interval
/// would force a full resync every cycle.
const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

struct Ctx<'a> {
    doc: &'a Node,
    /// The file's text, to place positions found inside a scalar (expression errors).
    text: &'a str,
    problems: Vec<RuleProblem>,
}

impl<'a> Ctx<'a> {
    fn node(&self, path: &[&str]) -> Option<&'a Node> {
        self.doc.find(path)
    }

    /// A present, non-null value.
    fn has(&self, path: &[&str]) -> bool {
        self.node(path).is_some_and(|n| n.value != Value::Null)
    }

    fn str(&self, path: &[&str]) -> Option<&'a str> {
        match &self.node(path)?.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    fn items(&self, path: &[&str]) -> &'a [Node] {
        match self.node(path).map(|n| &n.value) {
            Some(Value::Seq(items)) => items,
            _ => &[],
        }
    }

    /// Position of the node at `path` (or of its deepest existing ancestor).
    fn at(&self, path: &[&str]) -> Pos {
        self.doc.locate(path).0
    }

    /// Position of the key `path.last()` itself (for "remove this field" problems).
    fn key_at(&self, path: &[&str]) -> Pos {
        match path.split_last() {
            Some((last, parent)) => self
                .node(parent)
                .and_then(|n| n.key_pos(last))
                .unwrap_or_else(|| self.at(path)),
            None => self.doc.pos,
        }
    }

    fn report(&mut self, pos: Pos, message: impl Into<String>, hint: &str) {
        self.problems.push(RuleProblem {
            pos,
            message: message.into(),
            hint: Some(hint.to_owned()),
        });
    }
}

fn str_of(node: &Node) -> Option<&str> {
    match &node.value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Checks one document; returns every rule violation.
pub fn check(doc: &Node, text: &str) -> Vec<RuleProblem> {
    let mut cx = Ctx {
        doc,
        text,
        problems: Vec::new(),
    };
    for side in ["source", "target"] {
        credentials(&mut cx, side);
    }
    if let (Some(s), Some(t)) = (
        cx.str(&["spec", "source", "tenantId"]),
        cx.str(&["spec", "target", "tenantId"]),
    ) && s.eq_ignore_ascii_case(t)
    {
        let pos = cx.at(&["spec", "target", "tenantId"]);
        cx.report(
            pos,
            "source and target are the same tenant",
            "a pair synchronizes one tenant into another; use two different tenant ids",
        );
    }
    for side in ["source", "target"] {
        if let Some(id) = cx.str(&["spec", side, "tenantId"])
            && is_nil_guid(id)
        {
            let pos = cx.at(&["spec", side, "tenantId"]);
            cx.report(
                pos,
                format!("{side} tenantId is the all-zero GUID, which is no tenant"),
                "use the tenant's directory id (Entra admin center: Overview → Tenant ID)",
            );
        }
    }
    scope(&mut cx);
    mappings(&mut cx);
    groups(&mut cx);
    for field in ["interval", "fullSyncInterval"] {
        if let Some(text) = cx.str(&["spec", field])
            && let Err((message, hint)) = parse_interval(text)
        {
            let pos = cx.at(&["spec", field]);
            cx.report(pos, message, hint);
        }
    }
    for field in ["writeWindow", "invitationWindow"] {
        if let Some(text) = cx.str(&["spec", "graph", "quotas", field])
            && let Err((message, hint)) = parse_quota_window(text)
        {
            let pos = cx.at(&["spec", "graph", "quotas", field]);
            cx.report(pos, message, hint);
        }
    }
    for field in ["authority", "baseUrl"] {
        if let Some(v) = cx.str(&["spec", "graph", field])
            && let Err((message, hint)) = check_endpoint(v)
        {
            let pos = cx.at(&["spec", "graph", field]);
            cx.report(pos, message, hint);
        }
    }
    cx.problems
}

fn credentials(cx: &mut Ctx<'_>, side: &str) {
    let base = ["spec", side, "credentials"];
    if cx
        .node(&base)
        .is_none_or(|n| !matches!(n.value, Value::Map(_)))
    {
        return;
    }
    let secret = [&base[..], &["clientSecret"]].concat();
    let federated = [&base[..], &["federatedTokenFile"]].concat();
    match (cx.has(&secret), cx.has(&federated)) {
        (false, false) => {
            let pos = cx.key_at(&base);
            cx.report(
                pos,
                format!("`spec.{side}.credentials` has no credential"),
                "add clientSecret: { env: VARIABLE } (or { file: path }), or federatedTokenFile: path",
            );
        }
        (true, true) => {
            let pos = cx.key_at(&federated);
            cx.report(
                pos,
                format!("`spec.{side}.credentials` sets both clientSecret and federatedTokenFile"),
                "keep exactly one of them",
            );
        }
        (true, false) if matches!(cx.node(&secret).map(|n| &n.value), Some(Value::Map(_))) => {
            let env = [&secret[..], &["env"]].concat();
            let file = [&secret[..], &["file"]].concat();
            match (cx.has(&env), cx.has(&file)) {
                (false, false) => {
                    let pos = cx.key_at(&secret);
                    cx.report(
                        pos,
                        format!("`spec.{side}.credentials.clientSecret` names no source"),
                        "write { env: VARIABLE } or { file: path }",
                    );
                }
                (true, true) => {
                    let pos = cx.key_at(&file);
                    cx.report(
                        pos,
                        format!("`spec.{side}.credentials.clientSecret` sets both env and file"),
                        "keep exactly one of them",
                    );
                }
                _ => {}
            }
        }
        _ => {}
    }
}

fn scope(cx: &mut Ctx<'_>) {
    let base = ["spec", "scope"];
    let assigned = ["servicePrincipalId", "users", "groups"];
    let present = |cx: &Ctx<'_>, field: &str| {
        let path = [&base[..], &[field]].concat();
        match cx.node(&path).map(|n| &n.value) {
            Some(Value::Seq(items)) => !items.is_empty(),
            Some(Value::Null) | None => false,
            Some(_) => true,
        }
    };
    match cx.str(&["spec", "scope", "mode"]) {
        Some("assigned") if !assigned.iter().any(|f| present(cx, f)) => {
            let pos = cx.at(&["spec", "scope", "mode"]);
            cx.report(
                pos,
                "scope mode `assigned` but nothing is assigned",
                "add servicePrincipalId (read assignments from Entra), users or groups; or use mode: all",
            );
        }
        Some("all") => {
            for field in assigned {
                if present(cx, field) {
                    let pos = cx.key_at(&["spec", "scope", field]);
                    cx.report(
                        pos,
                        format!("`{field}` has no effect with scope mode `all`"),
                        &format!("remove `{field}`, or use mode: assigned"),
                    );
                }
            }
        }
        _ => {}
    }
    for field in ["users", "groups"] {
        let mut seen = HashSet::new();
        for item in cx.items(&["spec", "scope", field]) {
            if let Some(id) = str_of(item)
                && !seen.insert(id.to_ascii_lowercase())
            {
                cx.report(
                    item.pos,
                    format!("`{id}` is listed twice in `spec.scope.{field}`"),
                    "remove the duplicate",
                );
            }
        }
    }
    filters(cx);
}

/// Scoping filters, checked by the scope module's own compiler so config and sync agree.
fn filters(cx: &mut Ctx<'_>) {
    let Some(node) = cx.node(&["spec", "scope", "filters"]) else {
        return;
    };
    // A list the schema rejects cannot be read here; the schema has reported it.
    let Ok(list) = serde_json::from_value::<Vec<ScopingFilter>>(node.to_json()) else {
        return;
    };
    let Err(errors) = CompiledFilters::compile(&list) else {
        return;
    };
    // An empty `clauses` list is the schema's `minItems` problem, already reported.
    for e in errors
        .into_iter()
        .filter(|e| !e.message.contains("at least one clause"))
    {
        let (fi, ci) = (e.filter_index.to_string(), e.clause_index.to_string());
        let clause = ["spec", "scope", "filters", &fi, "clauses", &ci];
        let about_value = !e.message.contains("attribute") && !e.message.contains("needs a value");
        let (field, hint) = if e.message.contains("needs a value") {
            ("", "add `value: ...`")
        } else if !about_value {
            (
                "attribute",
                "filter on a single-valued, non-reference source attribute such as department",
            )
        } else if e.message.contains("takes no value") {
            ("value", "remove `value`")
        } else {
            ("value", "fix the value")
        };
        let value_path = [&clause[..], &["value"]].concat();
        let pos = match field {
            "attribute" => cx.at(&[&clause[..], &["attribute"]].concat()),
            "value" if e.message.contains("takes no value") => cx.key_at(&value_path),
            "value" if cx.node(&value_path).is_some() => cx.at(&value_path),
            _ => cx.at(&clause),
        };
        let message = format!(
            "scoping filter '{}', clause `{} {}`: {}",
            e.filter_title, e.attribute, e.operator, e.message
        );
        cx.report(pos, message, hint);
    }
}

/// `00000000-0000-0000-0000-000000000000`: matches the GUID pattern, names nothing.
fn is_nil_guid(id: &str) -> bool {
    uuid::Uuid::parse_str(id.trim()).is_ok_and(|u| u.is_nil())
}

/// A mapping target must be a property of Graph's `user` (or `manager`, or a directory
/// extension, which the target registers): Graph answers anything else with a 400 on every
/// write, so a typo would fail every user of the pair.
fn unknown_user_targets(cx: &mut Ctx<'_>) {
    for (idx, m) in cx.items(&["spec", "mappings"]).iter().enumerate() {
        let Some(target) = m.get("target").and_then(str_of).map(str::trim) else {
            continue;
        };
        if target.is_empty() || target.starts_with("extension_") || mapping::is_user_target(target)
        {
            continue;
        }
        let idx = idx.to_string();
        let pos = cx.at(&["spec", "mappings", idx.as_str(), "target"]);
        let hint = match super::schema::closest(target, mapping::USER_TARGETS.iter().copied()) {
            Some(near) => format!(
                "did you mean `{near}`? a target is a Graph user property, `manager`, or a directory extension (extension_<appId>_<name>)"
            ),
            None => "a target is a Graph user property (displayName, department, ...), `manager`, or a directory extension (extension_<appId>_<name>)".to_owned(),
        };
        cx.report(
            pos,
            format!("mapping target `{target}` is not a Microsoft Graph user property or a directory extension"),
            &hint,
        );
    }
}

/// Mappings, checked by the mapping module's own compiler (kinds, duplicates, expression
/// syntax, attribute names), plus the pair-level matching rules.
fn mappings(cx: &mut Ctx<'_>) {
    unknown_user_targets(cx);
    let mut targets = HashSet::new();
    let mut has_priority = false;
    for m in cx.items(&["spec", "mappings"]) {
        if let Some(t) = m.get("target").and_then(str_of) {
            targets.insert(t.trim().to_ascii_lowercase());
        }
        has_priority |= m
            .get("matchingPriority")
            .is_some_and(|p| p.value != Value::Null);
    }
    if let Some(node) = cx.node(&["spec", "mappings"])
        && let Ok(list) = serde_json::from_value::<Vec<AttributeMappingSpec>>(node.to_json())
        && let Err(errors) = mapping::compile(&list)
    {
        for e in errors {
            let idx = e.index.to_string();
            let field = e.field.to_string();
            let path = ["spec", "mappings", idx.as_str(), field.as_str()];
            let mut pos = cx.at(&path);
            if let Some(pe) = &e.parse_error
                && let Some(inner) = position_inside_scalar(cx.text, pos, pe.line, pe.column)
            {
                pos = inner;
            }
            let hint = match e.field {
                _ if e.message.contains("give only one") => {
                    "keep exactly one of source, constant, expression"
                }
                MappingField::Expression => {
                    "fix the expression (Entra's expression language; the position is inside the expression)"
                }
                MappingField::Target if e.message.contains("is required") => {
                    "add one of: source: givenName | constant: Member | expression: Join(\" \", [givenName], [surname])"
                }
                MappingField::Target => {
                    "map each target attribute once, to an attribute the target accepts"
                }
                MappingField::MatchingPriority => {
                    "give each matching attribute its own priority (1 is tried first)"
                }
                MappingField::Constant | MappingField::Default => {
                    "write a value of the target attribute's type"
                }
                MappingField::Source => "name a source user attribute, e.g. givenName",
                _ => "see the mapping fields in config/syncpair.schema.json",
            };
            cx.report(
                pos,
                format!("mapping for `{}`: {}", e.target, e.message),
                hint,
            );
        }
    }
    if cx.node(&["spec", "matchingAttributes"]).is_some() {
        if has_priority {
            let pos = cx.key_at(&["spec", "matchingAttributes"]);
            cx.report(
                pos,
                "matchingAttributes and mapping matchingPriority are both set",
                "use one way to choose matching attributes",
            );
        }
        if cx.has(&["spec", "mappings"]) {
            for a in cx.items(&["spec", "matchingAttributes"]) {
                if let Some(name) = str_of(a)
                    && !targets.contains(&name.to_ascii_lowercase())
                {
                    cx.report(
                        a.pos,
                        format!("matching attribute `{name}` is not a target of any mapping"),
                        "match only on attributes the pair writes; add a mapping for it or remove it",
                    );
                }
            }
        }
    }
}

/// `spec.groups`: needs scope mode `assigned`; group mappings compile in the mapping language
/// and write only group attributes; matching attributes are mapped targets.
fn groups(cx: &mut Ctx<'_>) {
    let enabled = cx
        .node(&["spec", "groups", "enabled"])
        .is_some_and(|n| matches!(n.value, Value::Bool(true)));
    if enabled && cx.str(&["spec", "scope", "mode"]) == Some("all") {
        let pos = cx.key_at(&["spec", "groups"]);
        cx.report(
            pos,
            "group sync needs scope mode `assigned`: with mode `all` no group is assigned to the pair",
            "set spec.scope.mode: assigned and list the groups to sync in spec.scope.groups (or assign them to servicePrincipalId)",
        );
    }
    let mut targets: HashSet<String> = model::GROUP_TARGETS
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect();
    if let Some(node) = cx.node(&["spec", "groups", "mappings"])
        && let Ok(list) = serde_json::from_value::<Vec<AttributeMappingSpec>>(node.to_json())
    {
        targets.clear();
        for (i, m) in list.iter().enumerate() {
            let t = m.target.trim();
            targets.insert(t.to_ascii_lowercase());
            if !t.is_empty()
                && !model::GROUP_TARGETS
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(t))
            {
                let idx = i.to_string();
                let pos = cx.at(&["spec", "groups", "mappings", idx.as_str(), "target"]);
                cx.report(
                    pos,
                    format!("group mapping target `{t}` is not a group attribute ctsync writes"),
                    "map displayName, description or mailNickname (the target is a static security group)",
                );
            }
        }
        if let Err(errors) = mapping::compile(&list) {
            for e in errors {
                let idx = e.index.to_string();
                let field = e.field.to_string();
                let pos = cx.at(&["spec", "groups", "mappings", idx.as_str(), field.as_str()]);
                cx.report(
                    pos,
                    format!("group mapping for `{}`: {}", e.target, e.message),
                    "fix the mapping (same language as user mappings; the source is the source group)",
                );
            }
        }
    }
    for a in cx.items(&["spec", "groups", "matchingAttributes"]) {
        if let Some(name) = str_of(a)
            && !targets.contains(&name.to_ascii_lowercase())
        {
            cx.report(
                a.pos,
                format!("group matching attribute `{name}` is not a target of any group mapping"),
                "match on a mapped group attribute, e.g. displayName or mailNickname",
            );
        }
    }
}

/// Where a position inside a scalar's text lands in the file, for a scalar written on one
/// line (plain or quoted without escapes before the spot). `None` for block scalars, escapes
/// and multi-line values: the scalar's own position is reported then.
fn position_inside_scalar(text: &str, scalar: Pos, line: usize, column: usize) -> Option<Pos> {
    if line != 1 || column == 0 {
        return None;
    }
    let source_line = text
        .lines()
        .nth(usize::try_from(scalar.line).ok()?.checked_sub(1)?)?;
    let rest: Vec<char> = source_line
        .chars()
        .skip(usize::try_from(scalar.column).ok()?.checked_sub(1)?)
        .collect();
    let (quote, body) = match rest.first() {
        Some(q @ ('"' | '\'')) => (Some(*q), &rest[1..]),
        Some('|' | '>') | None => return None,
        Some(_) => (None, &rest[..]),
    };
    let before = body.get(..column - 1)?;
    let escaped = match quote {
        Some('"') => before.contains(&'\\'),
        Some(_) => before.contains(&'\''),
        None => false,
    };
    if escaped {
        return None;
    }
    let offset = u64::try_from(column - 1).ok()? + u64::from(quote.is_some());
    Some(Pos {
        line: scalar.line,
        column: scalar.column + offset,
    })
}

/// Parses `spec.interval`, or explains what is wrong and how to fix it.
pub fn parse_interval(text: &str) -> Result<Duration, (String, &'static str)> {
    match humantime::parse_duration(text) {
        Ok(d) if d < Duration::from_secs(1) => Err((
            format!("interval `{text}` is shorter than one second"),
            "use at least 1s; Entra runs every 40m",
        )),
        Ok(d) if d > MAX_INTERVAL => Err((
            format!("interval `{text}` is longer than 7 days"),
            "delta tokens expire after 7 days, so every cycle would be a full resync; use 7d or less",
        )),
        Ok(d) => Ok(d),
        Err(e) => Err((
            format!("interval `{text}` is not a duration: {e}"),
            "write a duration such as 40m, 1h 30m or 90s",
        )),
    }
}

/// Parses a `spec.graph.quotas` window, or explains what is wrong and how to fix it.
pub fn parse_quota_window(text: &str) -> Result<Duration, (String, &'static str)> {
    match humantime::parse_duration(text) {
        Ok(d) if d < Duration::from_millis(1) => Err((
            format!("quota window `{text}` is shorter than a millisecond"),
            "Graph's windows are 150s (writes) and 5s (invitations)",
        )),
        Ok(d) if d > Duration::from_secs(24 * 3600) => Err((
            format!("quota window `{text}` is longer than a day"),
            "Graph's windows are 150s (writes) and 5s (invitations)",
        )),
        Ok(d) => Ok(d),
        Err(e) => Err((
            format!("quota window `{text}` is not a duration: {e}"),
            "write a duration such as 150s or 5s",
        )),
    }
}

/// The pair's quotas: Graph's published numbers unless `spec.graph.quotas` overrides them.
fn quotas(spec: Option<&GraphQuotasSpec>) -> Result<GraphQuotas, String> {
    let mut quotas = GraphQuotas::default();
    let Some(spec) = spec else {
        return Ok(quotas);
    };
    if let Some(n) = spec.writes.and_then(NonZeroU32::new) {
        quotas.writes.writes = n;
    }
    if let Some(text) = &spec.write_window {
        quotas.writes.per = parse_quota_window(text).map_err(|(m, _)| m)?;
    }
    if let Some(n) = spec.invitations.and_then(NonZeroU32::new) {
        quotas.invitations.invitations = n;
    }
    if let Some(text) = &spec.invitation_window {
        quotas.invitations.per = parse_quota_window(text).map_err(|(m, _)| m)?;
    }
    Ok(quotas)
}

/// Checks a `spec.graph` endpoint: a bare http(s) origin, plain http only on loopback.
pub fn check_endpoint(v: &str) -> Result<(), (String, &'static str)> {
    match url::Url::parse(v) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Err((
            format!("`{v}` is not an http(s) URL"),
            "write e.g. https://graph.microsoft.us",
        )),
        Ok(u) if u.scheme() == "http" && !is_loopback(&u) => Err((
            format!("`{v}` would send tokens over plain http"),
            "use https; plain http is only allowed for loopback (the emulator)",
        )),
        Ok(u)
            if u.query().is_some()
                || u.fragment().is_some()
                || !u.path().trim_end_matches('/').is_empty() =>
        {
            Err((
                format!("`{v}` must be a bare origin (scheme, host, port)"),
                "drop the path and query, e.g. https://graph.microsoft.com",
            ))
        }
        Ok(_) => Ok(()),
        Err(e) => Err((
            format!("`{v}` is not a URL: {e}"),
            "write e.g. https://login.microsoftonline.us",
        )),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Builds the pair from a document that passed the schema and [`check`].
pub fn build(file: &Path, doc_node: &Node, doc: &SyncPairDocument) -> Result<SyncPair, String> {
    let spec = &doc.spec;
    let tenant = |t: &TenantSpec| -> Result<Tenant, String> {
        let c = &t.credentials;
        let source = match (&c.client_secret, &c.federated_token_file) {
            (
                Some(SecretRefSpec {
                    env: Some(v),
                    file: None,
                }),
                None,
            ) => CredentialSource::SecretEnv(v.clone()),
            (
                Some(SecretRefSpec {
                    env: None,
                    file: Some(f),
                }),
                None,
            ) => CredentialSource::SecretFile(relative_to(file, f)),
            (None, Some(f)) => CredentialSource::FederatedTokenFile(relative_to(file, f)),
            _ => return Err("credentials not checked".into()),
        };
        Ok(Tenant {
            tenant_id: t.tenant_id.to_ascii_lowercase(),
            credentials: Credentials {
                client_id: c.client_id.to_ascii_lowercase(),
                source,
            },
        })
    };
    let interval = match &spec.interval {
        Some(text) => parse_interval(text).map_err(|(m, _)| m)?,
        None => DEFAULT_INTERVAL,
    };
    let full_sync_interval = match &spec.full_sync_interval {
        Some(text) => parse_interval(text).map_err(|(m, _)| m)?,
        None => DEFAULT_FULL_SYNC_INTERVAL,
    };
    let defaults = GraphEndpoints::default();
    let trim = |v: &Option<String>, d: String| {
        v.as_deref()
            .map(|s| s.trim_end_matches('/').to_owned())
            .unwrap_or(d)
    };
    let matching_attributes = match &spec.matching_attributes {
        Some(attrs) => attrs.clone(),
        None => {
            let mut by_priority: Vec<(u32, String)> = spec
                .mappings
                .iter()
                .flatten()
                .filter_map(|m| m.matching_priority.map(|p| (p, m.target.clone())))
                .collect();
            by_priority.sort();
            by_priority.into_iter().map(|(_, t)| t).collect()
        }
    };
    Ok(SyncPair {
        name: doc.metadata.name.clone(),
        labels: doc.metadata.labels.clone(),
        origin: Origin {
            file: file.to_owned(),
            line: doc_node.pos.line,
        },
        source: tenant(&spec.source)?,
        target: tenant(&spec.target)?,
        scope: Scope {
            mode: spec.scope.mode,
            service_principal_id: spec
                .scope
                .service_principal_id
                .as_ref()
                .map(|s| s.to_ascii_lowercase()),
            users: spec.scope.users.clone(),
            groups: spec.scope.groups.clone(),
            filters: spec.scope.filters.clone(),
        },
        mappings: spec.mappings.clone(),
        matching_attributes,
        anchor_attribute: spec.anchor_attribute.clone(),
        deprovision: spec.deprovision,
        deletion_guard: spec.deletion_guard,
        quarantine: spec.quarantine,
        interval,
        full_sync_interval,
        drift_correction: spec.drift_correction,
        actions: spec.actions,
        graph: GraphEndpoints {
            authority: trim(&spec.graph.authority, defaults.authority),
            base_url: trim(&spec.graph.base_url, defaults.base_url),
        },
        groups: spec
            .groups
            .as_ref()
            .filter(|g| g.enabled)
            .map(|g| GroupSync {
                flatten: g.flatten,
                mappings: g.mappings.clone(),
                anchor_attribute: g.anchor_attribute.clone(),
                matching_attributes: if g.matching_attributes.is_empty() {
                    let mut by_priority: Vec<(u32, String)> = g
                        .mappings
                        .iter()
                        .flatten()
                        .filter_map(|m| {
                            m.matching_priority
                                .filter(|p| *p > 0)
                                .map(|p| (p, m.target.clone()))
                        })
                        .collect();
                    by_priority.sort();
                    by_priority.into_iter().map(|(_, t)| t).collect()
                } else {
                    g.matching_attributes.clone()
                },
                deprovision: g.deprovision,
                deletion_guard: g.deletion_guard,
            }),
        quotas: quotas(spec.graph.quotas.as_ref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u64, column: u64) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn positions_inside_one_line_scalars() {
        let text = "a: 1\n    - { target: t, expression: 'Join(\" \", [a])' }\n    expression: Foo(]\n    expression: |\n";
        // Quoted: column 1 of the expression is one after the quote.
        assert_eq!(
            position_inside_scalar(text, at(2, 32), 1, 1),
            Some(at(2, 33))
        );
        assert_eq!(
            position_inside_scalar(text, at(2, 32), 1, 11),
            Some(at(2, 43))
        );
        // Plain.
        assert_eq!(
            position_inside_scalar(text, at(3, 17), 1, 5),
            Some(at(3, 21))
        );
        // Block scalars and later lines of the expression fall back to the scalar.
        assert_eq!(position_inside_scalar(text, at(4, 17), 1, 1), None);
        assert_eq!(position_inside_scalar(text, at(3, 17), 2, 1), None);
        // Past the end of the line.
        assert_eq!(position_inside_scalar(text, at(3, 17), 1, 40), None);
    }
}
