//! What `$filter` and `$orderby` on users (and deleted users) may use, per Microsoft's table of
//! filter support by property (`includes/filter-directory-objects.md`, pulled into
//! `concepts/aad-advanced-queries.md`): each operator is supported by default, only as an
//! advanced query (`ConsistencyLevel: eventual` + `$count=true`), or not at all. Also the
//! literal types, `any()` on collections, the 15-clause limit and the `identities` rule.
//! Choices where the docs are silent are listed in `config/emulator/README.md`.

use super::errors::GraphError;
use super::filter::{CmpOp, Expr, Func, Lit};
use super::model::Tenant;
use super::odata::Query;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cap {
    No,
    Default,
    Advanced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    DateTime,
    /// A string collection: only inside `any()`.
    Strings,
    /// `identities`: only `any(c:c/issuerAssignedId eq '…' and c/issuer eq '…')`.
    Identities,
    /// `onPremisesExtensionAttributes/extensionAttributeN`.
    ExtensionAttributes,
}

/// Columns of the table: eq, ne, NOT, ge, le, in, startsWith, null values.
struct Caps([Cap; 8]);

const EQ: usize = 0;
const NE: usize = 1;
const NOT: usize = 2;
const GE: usize = 3;
const LE: usize = 4;
const IN: usize = 5;
const STARTS: usize = 6;
const NULL: usize = 7;

/// `D` default, `A` advanced, `_` not supported; eight columns as above.
fn row(kind: Kind, spec: &str) -> (Kind, Caps) {
    let mut caps = [Cap::No; 8];
    for (i, c) in spec.chars().take(8).enumerate() {
        caps[i] = match c {
            'D' => Cap::Default,
            'A' => Cap::Advanced,
            _ => Cap::No,
        };
    }
    // "All properties that support the eq operator also support the ne or not operators"
    // (as advanced queries), and "in is supported by default whenever eq is".
    if caps[EQ] != Cap::No && caps[NOT] == Cap::No {
        caps[NOT] = Cap::Advanced;
    }
    if caps[EQ] == Cap::Default && caps[IN] == Cap::No {
        caps[IN] = Cap::Default;
    }
    (kind, Caps(caps))
}

fn user_property(name: &str) -> Option<(Kind, Caps)> {
    use Kind::*;
    Some(match name {
        "accountEnabled" => row(Bool, "DAAAAD__"),
        "ageGroup" => row(Str, "DAA__D__"),
        "businessPhones" => row(Strings, "D_A_____"),
        "city" => row(Str, "DAAD_DDA"),
        "companyName" => row(Str, "AAAAAAAA"),
        "consentProvidedForMinor" => row(Str, "DAA__D__"),
        "country" => row(Str, "DAADDDDA"),
        "createdDateTime" => row(DateTime, "DAADDA__"),
        "creationType" => row(Str, "DAA__D__"),
        "department" => row(Str, "DAADDDDA"),
        "displayName" => row(Str, "DAA__DDA"),
        "employeeHireDate" => row(DateTime, "AA_AAA__"),
        "employeeId" => row(Str, "DA__A_DA"),
        "employeeType" => row(Str, "AA_AAAA_"),
        // Not in the table; user.md: eq, ne, not, in.
        "externalUserState" => row(Str, "DAA__D__"),
        "givenName" => row(Str, "DA_DDDDA"),
        "id" => row(Str, "DAA_____"),
        "identities" => row(Identities, "D_______"),
        "imAddresses" => row(Strings, "DAADD_D_"),
        "jobTitle" => row(Str, "DA_DDD_A"),
        "mail" => row(Str, "DA_DDDD_"),
        "mailNickname" => row(Str, "DA_DDDDA"),
        "mobilePhone" => row(Str, "AA_AAAAA"),
        "officeLocation" => row(Str, "AA_AAAAA"),
        "onPremisesExtensionAttributes" => row(ExtensionAttributes, "AA_AAA__"),
        "onPremisesImmutableId" => row(Str, "AA_AAA__"),
        "onPremisesSyncEnabled" => row(Bool, "DA_AAD__"),
        "otherMails" => row(Strings, "DA_DDDD_"),
        "passwordPolicies" => row(Str, "AA_____A"),
        "postalCode" => row(Str, "AAAAAAAA"),
        "preferredLanguage" => row(Str, "AAAAAAAA"),
        "proxyAddresses" => row(Strings, "DA_DD_DA"),
        "showInAddressList" => row(Bool, "AA_AAA__"),
        "state" => row(Str, "DA_DDDDA"),
        "streetAddress" => row(Str, "AAAAAAAA"),
        "surname" => row(Str, "DA_DDDDA"),
        "usageLocation" => row(Str, "DA_DDDD_"),
        "userPrincipalName" => row(Str, "DA__DDD_"),
        "userType" => row(Str, "DAA__D_A"),
        // Only on `directory/deletedItems`.
        "deletedDateTime" => row(DateTime, "DAADDA__"),
        _ => return None,
    })
}

/// `endsWith` is an advanced query on these four, unsupported elsewhere.
const ENDS_WITH: &[&str] = &["mail", "otherMails", "userPrincipalName", "proxyAddresses"];

/// Graph counts `in` values and `or` branches together: at most 15.
pub const MAX_OR_CLAUSES: usize = 15;

fn unsupported_clause(property: &str) -> GraphError {
    GraphError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        format!(
            "Unsupported or invalid query filter clause specified for property '{property}' of resource 'User'."
        ),
    )
}

fn incompatible(expected: &str, found: &str, op: &str) -> GraphError {
    GraphError::bad_request(format!(
        "A binary operator with incompatible types was detected. Found operand types '{expected}' and '{found}' for operator kind '{op}'."
    ))
}

fn lit_type(l: &Lit) -> &'static str {
    match l {
        Lit::Str(_) => "Edm.String",
        Lit::Bare(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => "Edm.DateTimeOffset",
        Lit::Bare(_) => "Edm.Guid",
        Lit::Num(_) => "Edm.Int32",
        Lit::Bool(_) => "Edm.Boolean",
        Lit::Null => "null",
    }
}

fn kind_type(k: Kind) -> &'static str {
    match k {
        Kind::Bool => "Edm.Boolean",
        Kind::DateTime => "Edm.DateTimeOffset",
        _ => "Edm.String",
    }
}

fn fits(kind: Kind, lit: &Lit) -> bool {
    match (kind, lit) {
        (_, Lit::Null) => true,
        (Kind::Bool, Lit::Bool(_)) => true,
        (Kind::DateTime, Lit::Bare(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        (Kind::Str | Kind::Strings | Kind::ExtensionAttributes, Lit::Str(_)) => true,
        _ => false,
    }
}

fn op_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "Equal",
        CmpOp::Ne => "NotEqual",
        CmpOp::Gt => "GreaterThan",
        CmpOp::Ge => "GreaterThanOrEqual",
        CmpOp::Lt => "LessThan",
        CmpOp::Le => "LessThanOrEqual",
    }
}

struct Walk<'a> {
    tenant: &'a Tenant,
    advanced: bool,
    or_clauses: usize,
    deleted_items: bool,
}

impl Walk<'_> {
    fn need(&mut self, cap: Cap, property: &str) -> Result<(), GraphError> {
        match cap {
            Cap::No => Err(unsupported_clause(property)),
            Cap::Advanced => {
                self.advanced = true;
                Ok(())
            }
            Cap::Default => Ok(()),
        }
    }

    /// The property a path names, with its kind and capabilities.
    fn property(&self, path: &[String]) -> Result<(String, Kind, Caps), GraphError> {
        let name = path.first().cloned().unwrap_or_default();
        if name.starts_with("extension_") {
            if self.tenant.extension(&name).is_none() {
                return Err(GraphError::unknown_property(&name, "user"));
            }
            if path.len() > 1 {
                return Err(unsupported_clause(&name));
            }
            // extensionProperty: eq, ne, not, eq null.
            return Ok((name, Kind::Str, row(Kind::Str, "DAA____D").1));
        }
        if name == "deletedDateTime" && !self.deleted_items {
            return Err(GraphError::not_indexed());
        }
        let Some((kind, caps)) = user_property(&name) else {
            return Err(if super::props::is_user_property(&name) {
                GraphError::not_indexed()
            } else {
                GraphError::unknown_property(&name, "user")
            });
        };
        let nested_ok = match kind {
            Kind::ExtensionAttributes => {
                path.len() == 2
                    && path[1]
                        .strip_prefix("extensionAttribute")
                        .and_then(|n| n.parse::<u8>().ok())
                        .is_some_and(|n| (1..=15).contains(&n))
            }
            _ => path.len() == 1,
        };
        if !nested_ok {
            return Err(unsupported_clause(&path.join("/")));
        }
        Ok((name, kind, caps))
    }

    fn scalar_only(kind: Kind, name: &str) -> Result<(), GraphError> {
        if matches!(kind, Kind::Strings | Kind::Identities) {
            return Err(GraphError::bad_request(format!(
                "Invalid filter clause: '{name}' is a collection; use a lambda, e.g. {name}/any(x:x eq 'value')."
            )));
        }
        Ok(())
    }

    fn cmp(
        &mut self,
        name: &str,
        kind: Kind,
        caps: &Caps,
        op: CmpOp,
        value: &Lit,
    ) -> Result<(), GraphError> {
        if !fits(kind, value) {
            return Err(incompatible(kind_type(kind), lit_type(value), op_name(op)));
        }
        let column = match op {
            CmpOp::Eq => EQ,
            CmpOp::Ne => NE,
            CmpOp::Gt | CmpOp::Ge => GE,
            CmpOp::Lt | CmpOp::Le => LE,
        };
        self.need(caps.0[column], name)?;
        if *value == Lit::Null {
            if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                self.need(caps.0[NULL], name)?;
            } else {
                return Err(unsupported_clause(name));
            }
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr) -> Result<(), GraphError> {
        match e {
            Expr::And(l, r) => {
                self.expr(l)?;
                self.expr(r)
            }
            Expr::Or(l, r) => {
                // Each `or` adds a branch to the clause count (the first branch counts as one).
                self.or_clauses += 1;
                self.expr(l)?;
                self.expr(r)
            }
            Expr::Not(inner) => {
                self.advanced = true;
                self.not_target(inner)?;
                self.expr(inner)
            }
            Expr::Cmp { path, op, value } => {
                let (name, kind, caps) = self.property(path)?;
                Self::scalar_only(kind, &name)?;
                self.cmp(&name, kind, &caps, *op, value)
            }
            Expr::In { path, values } => {
                let (name, kind, caps) = self.property(path)?;
                Self::scalar_only(kind, &name)?;
                self.or_clauses += values.len().saturating_sub(1);
                for v in values {
                    if !fits(kind, v) || *v == Lit::Null {
                        return Err(incompatible(kind_type(kind), lit_type(v), "In"));
                    }
                }
                self.need(caps.0[IN], &name)
            }
            Expr::Func { func, path, .. } => {
                let (name, kind, caps) = self.property(path)?;
                Self::scalar_only(kind, &name)?;
                if kind != Kind::Str && kind != Kind::ExtensionAttributes {
                    return Err(unsupported_clause(&name));
                }
                match func {
                    Func::StartsWith => self.need(caps.0[STARTS], &name),
                    Func::EndsWith if ENDS_WITH.contains(&name.as_str()) => {
                        self.need(Cap::Advanced, &name)
                    }
                    Func::EndsWith => Err(unsupported_clause(&name)),
                }
            }
            Expr::Any { path, var, body } => {
                let (name, kind, caps) = self.property(path)?;
                match kind {
                    Kind::Identities => identities_lambda(var, body, &name),
                    Kind::Strings => self.lambda(&name, var, body, &caps),
                    _ => Err(unsupported_clause(&name)),
                }
            }
        }
    }

    /// `not` needs the property's NOT column (advanced at best).
    fn not_target(&mut self, inner: &Expr) -> Result<(), GraphError> {
        let path = match inner {
            Expr::Cmp { path, .. } | Expr::In { path, .. } | Expr::Func { path, .. } => path,
            Expr::Any { path, .. } => path,
            _ => return Ok(()),
        };
        let (name, _, caps) = self.property(path)?;
        self.need(caps.0[NOT], &name)
    }

    /// Body of `coll/any(x: …)` over a string collection: comparisons of `x` itself.
    fn lambda(
        &mut self,
        name: &str,
        var: &str,
        body: &Expr,
        caps: &Caps,
    ) -> Result<(), GraphError> {
        let on_var = |p: &[String]| p.len() == 1 && p[0] == var;
        match body {
            Expr::Or(l, r) => {
                self.or_clauses += 1;
                self.lambda(name, var, l, caps)?;
                self.lambda(name, var, r, caps)
            }
            Expr::Cmp { path, op, value } if on_var(path) => {
                self.cmp(name, Kind::Strings, caps, *op, value)
            }
            Expr::In { path, values } if on_var(path) => {
                self.or_clauses += values.len().saturating_sub(1);
                if values.iter().any(|v| !matches!(v, Lit::Str(_))) {
                    return Err(incompatible("Edm.String", "Edm.Int32", "In"));
                }
                self.need(caps.0[IN], name)
            }
            Expr::Func { func, path, .. } if on_var(path) => match func {
                Func::StartsWith => self.need(caps.0[STARTS], name),
                Func::EndsWith if ENDS_WITH.contains(&name) => self.need(Cap::Advanced, name),
                Func::EndsWith => Err(unsupported_clause(name)),
            },
            _ => Err(unsupported_clause(name)),
        }
    }
}

/// `identities/any(c:c/issuerAssignedId eq '…' and c/issuer eq '…')`: both, `eq`, strings.
fn identities_lambda(var: &str, body: &Expr, name: &str) -> Result<(), GraphError> {
    let member = |e: &Expr| match e {
        Expr::Cmp {
            path,
            op: CmpOp::Eq,
            value: Lit::Str(_),
        } if path.len() == 2 && path[0] == var => Some(path[1].clone()),
        _ => None,
    };
    if let Expr::And(l, r) = body {
        let mut members = [member(l), member(r)];
        members.sort();
        if members
            == [
                Some("issuer".to_string()),
                Some("issuerAssignedId".to_string()),
            ]
        {
            return Ok(());
        }
    }
    Err(GraphError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        format!(
            "Unsupported or invalid query filter clause specified for property '{name}' of resource 'User': filter on both issuerAssignedId and issuer."
        ),
    ))
}

/// Validates `$filter` and `$orderby` of a user list (`deleted_items`: `directory/deletedItems`).
pub fn check_user_query(
    tenant: &Tenant,
    q: &Query,
    eventual: bool,
    deleted_items: bool,
) -> Result<(), GraphError> {
    let advanced_ok = eventual && q.count;
    let mut w = Walk {
        tenant,
        advanced: false,
        or_clauses: 1,
        deleted_items,
    };
    if let Some(f) = &q.filter {
        w.expr(f)?;
        if w.or_clauses > MAX_OR_CLAUSES {
            return Err(GraphError::bad_request(format!(
                "Too many child clauses specified in search filter expression containing 'OR' operators: {}. Max allowed: {MAX_OR_CLAUSES}.",
                w.or_clauses
            )));
        }
    }
    if let Some((prop, _)) = &q.orderby {
        match prop.as_str() {
            "displayName" | "userPrincipalName" => {}
            "createdDateTime" => w.advanced = true,
            "deletedDateTime" if deleted_items => w.advanced = true,
            _ => return Err(GraphError::unsupported_query()),
        }
        // `$filter` with `$orderby` is always an advanced query.
        if q.filter.is_some() {
            w.advanced = true;
        }
    }
    if w.advanced && !advanced_ok {
        return Err(GraphError::unsupported_query());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: &str, eventual: bool) -> Result<(), GraphError> {
        let mut q = Query::parse(Some(&format!(
            "$filter={}{}",
            url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>(),
            if eventual { "&$count=true" } else { "" }
        )))?;
        q.count = eventual;
        check_user_query(&Tenant::default(), &q, eventual, false)
    }

    #[test]
    fn default_filters_pass_without_the_advanced_headers() {
        for f in [
            "userType eq 'Member'",
            "accountEnabled eq false",
            "creationType eq 'Invitation'",
            "userType in ('Member','Guest')",
            "startswith(displayName,'A')",
            "otherMails/any(x:x eq 'a@b.com')",
            "proxyAddresses/any(x:startswith(x,'smtp:a'))",
            "identities/any(c:c/issuerAssignedId eq 'j@x.com' and c/issuer eq 'contoso.com')",
            "createdDateTime ge 2024-01-01T00:00:00Z",
            "id eq '00000000-aaaa-0000-0000-000000000001'",
        ] {
            assert!(check(f, false).is_ok(), "{f}: {:?}", check(f, false));
        }
    }

    #[test]
    fn refused_filters() {
        for f in [
            "accountEnabled eq 'true'",
            "employeeId eq 1001",
            "otherMails eq 'a@b.com'",
            "proxyAddresses eq 'SMTP:a@b.com'",
            "displayName gt 'A'",
            "displayName lt 'A'",
            "identities/any(c:c/issuer eq 'contoso.com')",
            "createdDateTime ge '2024-01-01T00:00:00Z'",
            "endswith(displayName,'x')",
            "jobTitle eq null and mail eq null",
            "aboutMe eq 'x'",
            "bogus eq 'x'",
        ] {
            assert!(
                check(f, true).is_err(),
                "{f} must be refused even as an advanced query"
            );
        }
        let sixteen: Vec<String> = (0..16).map(|i| format!("'u{i}'")).collect();
        assert!(check(&format!("userType in ({})", sixteen.join(",")), true).is_err());
        let fifteen: Vec<String> = (0..15).map(|i| format!("'u{i}'")).collect();
        assert!(check(&format!("userType in ({})", fifteen.join(",")), false).is_ok());
    }

    #[test]
    fn advanced_only_filters_need_the_headers() {
        for f in [
            "userType ne 'Guest'",
            "not(userType eq 'Guest')",
            "endswith(mail,'@contoso.com')",
            "userType eq null",
            "companyName eq 'Contoso'",
            "showInAddressList eq true",
            "onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
        ] {
            assert!(check(f, false).is_err(), "{f} needs the advanced headers");
            assert!(check(f, true).is_ok(), "{f}: {:?}", check(f, true));
        }
    }
}
