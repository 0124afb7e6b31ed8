//! Rules the schema cannot express: one credential per tenant, secrets by reference, scope
//! consistency, filter values, mapping sources, durations, endpoints. Each rule reports at the
//! YAML position of the value it is about.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use super::model::*;
use super::tree::{Node, Pos};

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

const UNARY_OPERATORS: [&str; 4] = ["IS NULL", "IS NOT NULL", "IS TRUE", "IS FALSE"];
const INTEGER_OPERATORS: [&str; 4] = ["Greater_Than", "Greater_Than_OR_EQUALS", "&", "!&"];

struct Ctx<'a> {
    doc: &'a Node,
    problems: Vec<RuleProblem>,
}

impl Ctx<'_> {
    /// Position of the node at `path` (or of its deepest existing ancestor).
    fn at(&self, path: &[&str]) -> Pos {
        self.doc.locate(path).0
    }

    /// Position of the key `path.last()` itself (for "remove this field" problems).
    fn key_at(&self, path: &[&str]) -> Pos {
        match path.split_last() {
            Some((last, parent)) => self
                .doc
                .find(parent)
                .and_then(|n| n.key_pos(last))
                .unwrap_or_else(|| self.at(path)),
            None => self.doc.pos,
        }
    }

    fn report(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.problems.push(RuleProblem {
            pos,
            message: message.into(),
            hint: hint.into(),
        });
    }
}

/// Checks one structurally valid document and builds the pair; problems are returned instead
/// when there are any.
pub fn check(
    file: &Path,
    doc_node: &Node,
    doc: &SyncPairDocument,
) -> Result<SyncPair, Vec<RuleProblem>> {
    let mut cx = Ctx {
        doc: doc_node,
        problems: Vec::new(),
    };
    let spec = &doc.spec;
    let source = tenant(&mut cx, file, "source", &spec.source);
    let target = tenant(&mut cx, file, "target", &spec.target);
    if spec
        .source
        .tenant_id
        .eq_ignore_ascii_case(&spec.target.tenant_id)
    {
        let pos = cx.at(&["spec", "target", "tenantId"]);
        cx.report(
            pos,
            "source and target are the same tenant",
            Some(
                "a pair synchronizes one tenant into another; use two different tenant ids"
                    .to_owned(),
            ),
        );
    }
    scope(&mut cx, &spec.scope);
    let matching = mappings(&mut cx, spec);
    let interval = interval(&mut cx, spec.interval.as_deref());
    let graph = endpoints(&mut cx, &spec.graph);
    if !cx.problems.is_empty() {
        return Err(cx.problems);
    }
    // Both are Some when no problem was reported (each helper reports when it returns None).
    let (Some(source), Some(target), Some(interval), Some(graph)) =
        (source, target, interval, graph)
    else {
        return Err(vec![RuleProblem {
            pos: doc_node.pos,
            message: "internal error: invalid pair without a reported problem".into(),
            hint: None,
        }]);
    };
    Ok(SyncPair {
        name: doc.metadata.name.clone(),
        labels: doc.metadata.labels.clone(),
        origin: Origin {
            file: file.to_owned(),
            line: doc_node.pos.line,
        },
        source,
        target,
        scope: Scope {
            mode: spec.scope.mode,
            service_principal_id: spec.scope.service_principal_id.clone(),
            users: spec.scope.users.clone(),
            groups: spec.scope.groups.clone(),
            filters: spec.scope.filters.clone(),
        },
        mappings: spec.mappings.clone(),
        matching_attributes: matching,
        anchor_attribute: spec.anchor_attribute.clone(),
        deprovision: spec.deprovision,
        deletion_guard: spec.deletion_guard,
        interval,
        drift_correction: spec.drift_correction,
        actions: spec.actions,
        graph,
    })
}

fn tenant(cx: &mut Ctx<'_>, file: &Path, side: &str, t: &TenantSpec) -> Option<Tenant> {
    let c = &t.credentials;
    let base = ["spec", side, "credentials"];
    let source = match (&c.client_secret, &c.federated_token_file) {
        (None, None) => {
            let pos = cx.at(&base);
            cx.report(
                pos,
                format!("`spec.{side}.credentials` has no credential"),
                Some("add clientSecret: { env: VARIABLE } (or { file: path }), or federatedTokenFile: path".to_owned()),
            );
            None
        }
        (Some(_), Some(_)) => {
            let pos = cx.key_at(&["spec", side, "credentials", "federatedTokenFile"]);
            cx.report(
                pos,
                format!("`spec.{side}.credentials` sets both clientSecret and federatedTokenFile"),
                Some("keep exactly one of them".to_owned()),
            );
            None
        }
        (Some(secret), None) => {
            let path = ["spec", side, "credentials", "clientSecret"];
            match (&secret.env, &secret.file) {
                (Some(env), None) => Some(CredentialSource::SecretEnv(env.clone())),
                (None, Some(f)) => Some(CredentialSource::SecretFile(relative_to(file, f))),
                (None, None) => {
                    let pos = cx.at(&path);
                    cx.report(
                        pos,
                        format!("`spec.{side}.credentials.clientSecret` names no source"),
                        Some("write { env: VARIABLE } or { file: path }".to_owned()),
                    );
                    None
                }
                (Some(_), Some(_)) => {
                    let pos = cx.key_at(&["spec", side, "credentials", "clientSecret", "file"]);
                    cx.report(
                        pos,
                        format!("`spec.{side}.credentials.clientSecret` sets both env and file"),
                        Some("keep exactly one of them".to_owned()),
                    );
                    None
                }
            }
        }
        (None, Some(f)) => Some(CredentialSource::FederatedTokenFile(relative_to(file, f))),
    };
    source.map(|source| Tenant {
        tenant_id: t.tenant_id.to_ascii_lowercase(),
        credentials: Credentials {
            client_id: c.client_id.to_ascii_lowercase(),
            source,
        },
    })
}

fn scope(cx: &mut Ctx<'_>, s: &ScopeSpec) {
    match s.mode {
        ScopeMode::Assigned => {
            if s.service_principal_id.is_none() && s.users.is_empty() && s.groups.is_empty() {
                let pos = cx.at(&["spec", "scope", "mode"]);
                cx.report(
                    pos,
                    "scope mode `assigned` but nothing is assigned",
                    Some("add servicePrincipalId (read assignments from Entra), users or groups; or use mode: all".to_owned()),
                );
            }
        }
        ScopeMode::All => {
            for field in ["servicePrincipalId", "users", "groups"] {
                let present = match field {
                    "servicePrincipalId" => s.service_principal_id.is_some(),
                    "users" => !s.users.is_empty(),
                    _ => !s.groups.is_empty(),
                };
                if present {
                    let pos = cx.key_at(&["spec", "scope", field]);
                    cx.report(
                        pos,
                        format!("`{field}` has no effect with scope mode `all`"),
                        Some(format!("remove `{field}`, or use mode: assigned")),
                    );
                }
            }
        }
    }
    for (field, list) in [("users", &s.users), ("groups", &s.groups)] {
        let mut seen = HashSet::new();
        for (i, id) in list.iter().enumerate() {
            if !seen.insert(id.to_ascii_lowercase()) {
                let idx = i.to_string();
                let pos = cx.at(&["spec", "scope", field, &idx]);
                cx.report(
                    pos,
                    format!("`{id}` is listed twice in `spec.scope.{field}`"),
                    Some("remove the duplicate".to_owned()),
                );
            }
        }
    }
    for (fi, filter) in s.filters.iter().enumerate() {
        for (ci, clause) in filter.clauses.iter().enumerate() {
            let (fi, ci) = (fi.to_string(), ci.to_string());
            let path = ["spec", "scope", "filters", &fi, "clauses", &ci];
            let op = clause.operator.as_str();
            let unary = UNARY_OPERATORS.contains(&op);
            match (&clause.value, unary) {
                (Some(_), true) => {
                    let pos = cx.key_at(&[&path[..], &["value"]].concat());
                    cx.report(
                        pos,
                        format!("operator `{op}` takes no value"),
                        Some("remove `value`".to_owned()),
                    );
                }
                (None, false) => {
                    let pos = cx.at(&path);
                    cx.report(
                        pos,
                        format!("operator `{op}` needs a value"),
                        Some("add `value: ...`".to_owned()),
                    );
                }
                (Some(v), false)
                    if INTEGER_OPERATORS.contains(&op) && v.trim().parse::<i64>().is_err() =>
                {
                    let pos = cx.at(&[&path[..], &["value"]].concat());
                    cx.report(
                        pos,
                        format!("operator `{op}` compares integers, but `{v}` is not one"),
                        Some("write a whole number, e.g. value: \"10\"".to_owned()),
                    );
                }
                (Some(v), false) if op.ends_with("REGEX MATCH") => {
                    if let Err(e) = regex::Regex::new(v) {
                        let pos = cx.at(&[&path[..], &["value"]].concat());
                        let first = e.to_string();
                        let first = first.lines().last().unwrap_or("invalid").trim().to_owned();
                        cx.report(
                            pos,
                            format!("invalid regular expression: {first}"),
                            Some("fix the pattern (.NET-style regex syntax)".to_owned()),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// Checks mappings and returns the matching attributes in precedence order.
fn mappings(cx: &mut Ctx<'_>, spec: &SyncPairSpec) -> Vec<String> {
    let mut by_priority: BTreeMap<u32, String> = BTreeMap::new();
    if let Some(list) = &spec.mappings {
        let mut targets = HashSet::new();
        for (i, m) in list.iter().enumerate() {
            let idx = i.to_string();
            let kinds = [&m.source, &m.constant, &m.expression]
                .iter()
                .filter(|k| k.is_some())
                .count();
            if kinds != 1 {
                let pos = cx.at(&["spec", "mappings", &idx]);
                cx.report(
                    pos,
                    format!(
                        "mapping for `{}` must have exactly one of source, constant, expression (found {kinds})",
                        m.target
                    ),
                    Some("keep one: source: givenName | constant: Member | expression: Join(\" \", [givenName], [surname])".to_owned()),
                );
            }
            if !targets.insert(m.target.to_ascii_lowercase()) {
                let pos = cx.at(&["spec", "mappings", &idx, "target"]);
                cx.report(
                    pos,
                    format!("target attribute `{}` is mapped twice", m.target),
                    Some("keep one mapping per target attribute".to_owned()),
                );
            }
            if let Some(p) = m.matching_priority {
                if let Some(other) = by_priority.get(&p) {
                    let pos = cx.at(&["spec", "mappings", &idx, "matchingPriority"]);
                    cx.report(
                        pos,
                        format!("matchingPriority {p} is already used by `{other}`"),
                        Some(
                            "give each matching attribute its own priority (1 is tried first)"
                                .to_owned(),
                        ),
                    );
                } else {
                    by_priority.insert(p, m.target.clone());
                }
            }
        }
        if let Some(attrs) = &spec.matching_attributes {
            for (i, a) in attrs.iter().enumerate() {
                if !targets.contains(&a.to_ascii_lowercase()) {
                    let idx = i.to_string();
                    let pos = cx.at(&["spec", "matchingAttributes", &idx]);
                    cx.report(
                        pos,
                        format!("matching attribute `{a}` is not a target of any mapping"),
                        Some("match only on attributes the pair writes; add a mapping for it or remove it".to_owned()),
                    );
                }
            }
        }
    }
    match &spec.matching_attributes {
        Some(attrs) => {
            if !by_priority.is_empty() {
                let pos = cx.key_at(&["spec", "matchingAttributes"]);
                cx.report(
                    pos,
                    "matchingAttributes and mapping matchingPriority are both set",
                    Some("use one way to choose matching attributes".to_owned()),
                );
            }
            attrs.clone()
        }
        None => by_priority.into_values().collect(),
    }
}

fn interval(cx: &mut Ctx<'_>, written: Option<&str>) -> Option<Duration> {
    let Some(text) = written else {
        return Some(DEFAULT_INTERVAL);
    };
    let pos = cx.at(&["spec", "interval"]);
    match humantime::parse_duration(text) {
        Ok(d) if d < Duration::from_secs(1) => {
            cx.report(
                pos,
                format!("interval `{text}` is shorter than one second"),
                Some("use at least 1s; Entra runs every 40m".to_owned()),
            );
            None
        }
        Ok(d) if d > MAX_INTERVAL => {
            cx.report(
                pos,
                format!("interval `{text}` is longer than 7 days"),
                Some("delta tokens expire after 7 days, so every cycle would be a full resync; use 7d or less".to_owned()),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            cx.report(
                pos,
                format!("interval `{text}` is not a duration: {e}"),
                Some("write a duration such as 40m, 1h 30m or 90s".to_owned()),
            );
            None
        }
    }
}

fn endpoints(cx: &mut Ctx<'_>, g: &GraphEndpointsSpec) -> Option<GraphEndpoints> {
    let defaults = GraphEndpoints::default();
    let mut ok = true;
    let mut check = |field: &str, value: &Option<String>, default: String| -> String {
        let Some(v) = value else { return default };
        let pos = cx.at(&["spec", "graph", field]);
        match url::Url::parse(v) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                ok = false;
                cx.report(
                    pos,
                    format!("`{v}` is not an http(s) URL"),
                    Some("write e.g. https://graph.microsoft.us".to_owned()),
                );
            }
            Ok(u) if u.scheme() == "http" && !is_loopback(&u) => {
                ok = false;
                cx.report(
                    pos,
                    format!("`{v}` would send tokens over plain http"),
                    Some(
                        "use https; plain http is only allowed for loopback (the emulator)"
                            .to_owned(),
                    ),
                );
            }
            Ok(u)
                if u.query().is_some()
                    || u.fragment().is_some()
                    || !u.path().trim_end_matches('/').is_empty() =>
            {
                ok = false;
                cx.report(
                    pos,
                    format!("`{v}` must be a bare origin (scheme, host, port)"),
                    Some("drop the path and query, e.g. https://graph.microsoft.com".to_owned()),
                );
            }
            Ok(_) => {}
            Err(e) => {
                ok = false;
                cx.report(
                    pos,
                    format!("`{v}` is not a URL: {e}"),
                    Some("write e.g. https://login.microsoftonline.us".to_owned()),
                );
            }
        }
        v.trim_end_matches('/').to_owned()
    };
    let authority = check("authority", &g.authority, defaults.authority);
    let base_url = check("baseUrl", &g.base_url, defaults.base_url);
    ok.then_some(GraphEndpoints {
        authority,
        base_url,
    })
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
