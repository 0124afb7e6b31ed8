//! Scoping filters: Entra's clause operators, compiled once per configuration, evaluated per user
//! with an explanation of every clause.
//!
//! Semantics (reference §2.1–§2.2, Microsoft doc "define-conditional-rules-for-provisioning-user-
//! accounts"):
//! - clauses inside a filter are ANDed, filters are ORed, no filters = in scope;
//! - "Scoping filters will return false if the value is null / empty": every operator is false on a
//!   null, absent or empty value, except `IS NULL` (true) — `NOT EQUALS`, `NOT REGEX MATCH` and `!&`
//!   included;
//! - string comparisons are ordinal and case sensitive (`EQUALS`, `NOT EQUALS`, `Includes`,
//!   `REGEX MATCH` are documented as case sensitive; `ENDS_WITH`, `&`, `!&` follow them);
//! - regexes are unanchored (.NET `Regex.IsMatch`);
//! - the `Greater_Than` family compares integers; a non-integer attribute makes the clause false;
//! - "Filtering is not supported for multi-valued attributes": known multi-valued, reference and
//!   date attributes are rejected when the filters are compiled, and a multi-valued value met at
//!   run time makes the clause false.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::mapping::SourceAttributes;

/// One scoping filter as a pair's YAML holds it: its clauses are ANDed; a pair's filters are ORed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopingFilter {
    pub title: String,
    pub clauses: Vec<FilterClause>,
}

/// One condition on one source attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterClause {
    pub attribute: String,
    pub operator: FilterOperator,
    /// The operand; absent for the unary operators (`IS TRUE`, `IS NULL`, ...).
    #[serde(default)]
    pub value: Option<String>,
}

/// Entra's scoping operators, spelled exactly as the portal and Graph spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterOperator {
    #[serde(rename = "EQUALS")]
    Equals,
    #[serde(rename = "NOT EQUALS")]
    NotEquals,
    #[serde(rename = "IS TRUE")]
    IsTrue,
    #[serde(rename = "IS FALSE")]
    IsFalse,
    #[serde(rename = "IS NULL")]
    IsNull,
    #[serde(rename = "IS NOT NULL")]
    IsNotNull,
    #[serde(rename = "REGEX MATCH")]
    RegexMatch,
    #[serde(rename = "NOT REGEX MATCH")]
    NotRegexMatch,
    #[serde(rename = "Greater_Than")]
    GreaterThan,
    #[serde(rename = "Greater_Than_OR_EQUALS")]
    GreaterThanOrEquals,
    /// Not documented by Microsoft (reference §2.2); implemented as the mirror of `Greater_Than`.
    #[serde(rename = "Less_Than")]
    LessThan,
    #[serde(rename = "Less_Than_OR_EQUALS")]
    LessThanOrEquals,
    #[serde(rename = "Includes")]
    Includes,
    /// "true if the evaluated attribute exists in the input string value": read literally, the
    /// attribute's value occurs inside the clause value (e.g. `b` & `abc` → true).
    #[serde(rename = "&")]
    ExistsIn,
    #[serde(rename = "!&")]
    NotExistsIn,
    #[serde(rename = "ENDS_WITH")]
    EndsWith,
}

impl FilterOperator {
    pub const ALL: [FilterOperator; 16] = [
        FilterOperator::Equals,
        FilterOperator::NotEquals,
        FilterOperator::IsTrue,
        FilterOperator::IsFalse,
        FilterOperator::IsNull,
        FilterOperator::IsNotNull,
        FilterOperator::RegexMatch,
        FilterOperator::NotRegexMatch,
        FilterOperator::GreaterThan,
        FilterOperator::GreaterThanOrEquals,
        FilterOperator::LessThan,
        FilterOperator::LessThanOrEquals,
        FilterOperator::Includes,
        FilterOperator::ExistsIn,
        FilterOperator::NotExistsIn,
        FilterOperator::EndsWith,
    ];

    /// The exact label Entra uses.
    pub fn label(self) -> &'static str {
        match self {
            FilterOperator::Equals => "EQUALS",
            FilterOperator::NotEquals => "NOT EQUALS",
            FilterOperator::IsTrue => "IS TRUE",
            FilterOperator::IsFalse => "IS FALSE",
            FilterOperator::IsNull => "IS NULL",
            FilterOperator::IsNotNull => "IS NOT NULL",
            FilterOperator::RegexMatch => "REGEX MATCH",
            FilterOperator::NotRegexMatch => "NOT REGEX MATCH",
            FilterOperator::GreaterThan => "Greater_Than",
            FilterOperator::GreaterThanOrEquals => "Greater_Than_OR_EQUALS",
            FilterOperator::LessThan => "Less_Than",
            FilterOperator::LessThanOrEquals => "Less_Than_OR_EQUALS",
            FilterOperator::Includes => "Includes",
            FilterOperator::ExistsIn => "&",
            FilterOperator::NotExistsIn => "!&",
            FilterOperator::EndsWith => "ENDS_WITH",
        }
    }

    /// Same as [`FilterOperator::label`] (the spelling `config` reports in messages).
    pub fn as_str(self) -> &'static str {
        self.label()
    }

    /// Unary operators take no value.
    pub fn is_unary(self) -> bool {
        matches!(
            self,
            FilterOperator::IsTrue
                | FilterOperator::IsFalse
                | FilterOperator::IsNull
                | FilterOperator::IsNotNull
        )
    }
}

impl fmt::Display for FilterOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A filter that cannot be compiled, located by filter and clause (both 0-based).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("scoping filter {} ('{filter_title}'), clause {} ({attribute} {operator}): {message}", .filter_index + 1, .clause_index + 1)]
pub struct FilterError {
    pub filter_index: usize,
    pub filter_title: String,
    pub clause_index: usize,
    pub attribute: String,
    pub operator: FilterOperator,
    pub message: String,
}

/// Attributes Entra does not accept in scoping filters (Microsoft "known issues": reference,
/// multi-valued and date-typed attributes, `userType`, `appRoleAssignments`).
fn unsupported_attribute(name: &str) -> Option<&'static str> {
    const REFERENCE_OR_SPECIAL: &[&str] =
        &["manager", "appRoleAssignments", "userType", "memberOf"];
    const MULTI_VALUED: &[&str] = &[
        "proxyAddresses",
        "otherMails",
        "businessPhones",
        "imAddresses",
        "identities",
        "assignedLicenses",
        "assignedPlans",
        "provisionedPlans",
        "schools",
        "skills",
        "interests",
        "pastProjects",
        "responsibilities",
    ];
    const DATES: &[&str] = &[
        "createdDateTime",
        "deletedDateTime",
        "employeeHireDate",
        "employeeLeaveDateTime",
        "externalUserStateChangeDateTime",
        "lastPasswordChangeDateTime",
        "onPremisesLastSyncDateTime",
        "refreshTokensValidFromDateTime",
        "signInSessionsValidFromDateTime",
        "birthday",
        "hireDate",
    ];
    let is = |list: &[&str]| list.iter().any(|a| a.eq_ignore_ascii_case(name));
    if is(REFERENCE_OR_SPECIAL) {
        Some("this attribute is not supported in scoping filters (Entra known issue)")
    } else if is(MULTI_VALUED) {
        Some("filtering is not supported for multi-valued attributes")
    } else if is(DATES) {
        Some("date-typed attributes are not supported in scoping filters")
    } else {
        None
    }
}

#[derive(Debug, Clone)]
enum Operand {
    None,
    Text(String),
    Integer(i64),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct CompiledClause {
    clause: FilterClause,
    operand: Operand,
    rendered: String,
}

#[derive(Debug, Clone)]
struct CompiledFilter {
    title: String,
    clauses: Vec<CompiledClause>,
}

/// A pair's scoping filters, validated and with regexes compiled. Build once per configuration.
#[derive(Debug, Clone, Default)]
pub struct CompiledFilters {
    filters: Vec<CompiledFilter>,
}

impl CompiledFilters {
    /// Validates every clause; reports every problem, not just the first.
    pub fn compile(filters: &[ScopingFilter]) -> Result<CompiledFilters, Vec<FilterError>> {
        let mut errors = Vec::new();
        let mut compiled = Vec::with_capacity(filters.len());
        for (filter_index, filter) in filters.iter().enumerate() {
            let mut clauses = Vec::with_capacity(filter.clauses.len());
            if filter.clauses.is_empty() {
                errors.push(FilterError {
                    filter_index,
                    filter_title: filter.title.clone(),
                    clause_index: 0,
                    attribute: String::new(),
                    operator: FilterOperator::Equals,
                    message: "a scoping filter needs at least one clause".into(),
                });
            }
            for (clause_index, clause) in filter.clauses.iter().enumerate() {
                let error = |message: String| FilterError {
                    filter_index,
                    filter_title: filter.title.clone(),
                    clause_index,
                    attribute: clause.attribute.clone(),
                    operator: clause.operator,
                    message,
                };
                match compile_clause(clause) {
                    Ok(operand) => clauses.push(CompiledClause {
                        rendered: render_clause(&filter.title, clause),
                        clause: clause.clone(),
                        operand,
                    }),
                    Err(message) => errors.push(error(message)),
                }
            }
            compiled.push(CompiledFilter {
                title: filter.title.clone(),
                clauses,
            });
        }
        if errors.is_empty() {
            Ok(CompiledFilters { filters: compiled })
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Evaluates every filter and every clause (no short cut, so the explanation is complete).
    pub fn evaluate(&self, user: &SourceAttributes<'_>) -> FiltersExplanation {
        let filters: Vec<FilterExplanation> = self
            .filters
            .iter()
            .map(|filter| {
                let clauses: Vec<ClauseExplanation> = filter
                    .clauses
                    .iter()
                    .map(|c| evaluate_clause(c, user))
                    .collect();
                FilterExplanation {
                    title: filter.title.clone(),
                    passed: clauses.iter().all(|c| c.passed),
                    clauses,
                }
            })
            .collect();
        let passed = filters.is_empty() || filters.iter().any(|f| f.passed);
        FiltersExplanation { passed, filters }
    }
}

fn compile_clause(clause: &FilterClause) -> Result<Operand, String> {
    if clause.attribute.trim().is_empty() {
        return Err("the attribute name is empty".into());
    }
    if let Some(why) = unsupported_attribute(&clause.attribute) {
        return Err(why.into());
    }
    let op = clause.operator;
    let value = clause.value.as_deref();
    if op.is_unary() {
        return match value {
            None | Some("") => Ok(Operand::None),
            Some(v) => Err(format!("{op} takes no value (got '{v}')")),
        };
    }
    let Some(value) = value else {
        return Err(format!("{op} needs a value"));
    };
    match op {
        FilterOperator::RegexMatch | FilterOperator::NotRegexMatch => Regex::new(value)
            .map(Operand::Regex)
            .map_err(|e| format!("the regular expression does not compile: {e}")),
        FilterOperator::GreaterThan
        | FilterOperator::GreaterThanOrEquals
        | FilterOperator::LessThan
        | FilterOperator::LessThanOrEquals => value
            .trim()
            .parse::<i64>()
            .map(Operand::Integer)
            .map_err(|_| format!("{op} needs an integer value (got '{value}')")),
        _ => Ok(Operand::Text(value.to_owned())),
    }
}

/// Entra's log rendering: `<title>.<attribute> <OPERATOR> '<value>'` (unary operators: no value).
fn render_clause(title: &str, clause: &FilterClause) -> String {
    match &clause.value {
        Some(v) if !clause.operator.is_unary() => {
            format!("{title}.{} {} '{v}'", clause.attribute, clause.operator)
        }
        _ => format!("{title}.{} {}", clause.attribute, clause.operator),
    }
}

/// The explanation of one scoping decision: every filter and clause with its result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FiltersExplanation {
    /// True when no filter is configured or any filter passed.
    pub passed: bool,
    pub filters: Vec<FilterExplanation>,
}

impl FiltersExplanation {
    /// Entra's `ScopeEvaluationResult`: rendered clause → result.
    pub fn scope_evaluation_result(&self) -> BTreeMap<String, bool> {
        self.filters
            .iter()
            .flat_map(|f| f.clauses.iter())
            .map(|c| (c.rendered.clone(), c.passed))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterExplanation {
    pub title: String,
    pub passed: bool,
    pub clauses: Vec<ClauseExplanation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseExplanation {
    /// `<title>.<attribute> <OPERATOR> '<value>'`.
    pub rendered: String,
    pub attribute: String,
    pub operator: FilterOperator,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The user's value for the attribute (null when absent).
    pub actual: serde_json::Value,
    pub passed: bool,
    /// Why the clause is false when that is not plain from the values (null rule, type mismatch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An attribute value as scoping sees it.
enum Scalar<'a> {
    /// Null, absent, empty string or empty collection.
    Empty,
    Text(std::borrow::Cow<'a, str>),
    Bool(bool),
    Unsupported(&'static str),
}

fn scalar(value: Option<&serde_json::Value>) -> Scalar<'_> {
    use serde_json::Value as J;
    match value {
        None | Some(J::Null) => Scalar::Empty,
        Some(J::String(s)) if s.is_empty() => Scalar::Empty,
        Some(J::String(s)) => Scalar::Text(s.as_str().into()),
        Some(J::Bool(b)) => Scalar::Bool(*b),
        Some(J::Number(n)) => Scalar::Text(n.to_string().into()),
        Some(J::Array(items)) if items.is_empty() => Scalar::Empty,
        Some(J::Array(_)) => {
            Scalar::Unsupported("filtering is not supported for multi-valued attributes")
        }
        Some(J::Object(_)) => Scalar::Unsupported("the attribute is a complex value"),
    }
}

/// .NET `Boolean.TryParse`: case-insensitive `true`/`false`, surrounding white space allowed.
fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// .NET `Boolean.ToString()`.
fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn evaluate_clause(compiled: &CompiledClause, user: &SourceAttributes<'_>) -> ClauseExplanation {
    let clause = &compiled.clause;
    let raw = user.json(&clause.attribute);
    let (passed, note) = clause_result(clause.operator, &compiled.operand, scalar(raw.as_deref()));
    ClauseExplanation {
        rendered: compiled.rendered.clone(),
        attribute: clause.attribute.clone(),
        operator: clause.operator,
        value: clause.value.clone(),
        actual: raw
            .map(|v| v.into_owned())
            .unwrap_or(serde_json::Value::Null),
        passed,
        note,
    }
}

fn clause_result(
    op: FilterOperator,
    operand: &Operand,
    value: Scalar<'_>,
) -> (bool, Option<String>) {
    use FilterOperator as Op;
    let text = match value {
        Scalar::Unsupported(why) => return (false, Some(why.into())),
        Scalar::Empty => {
            return match op {
                Op::IsNull => (true, None),
                Op::IsNotNull => (false, None),
                _ => (
                    false,
                    Some("the value is null or empty, so the clause is false".into()),
                ),
            };
        }
        Scalar::Bool(b) => {
            match (op, operand) {
                (Op::IsTrue, _) => return (b, None),
                (Op::IsFalse, _) => return (!b, None),
                // .NET compares a Boolean attribute with the parsed operand.
                (Op::Equals | Op::NotEquals, Operand::Text(v)) => {
                    if let Some(expected) = parse_bool(v) {
                        return ((b == expected) == (op == Op::Equals), None);
                    }
                }
                _ => {}
            }
            std::borrow::Cow::Borrowed(bool_text(b))
        }
        Scalar::Text(t) => t,
    };
    let text = text.as_ref();
    match (op, operand) {
        (Op::IsNull, _) => (false, None),
        (Op::IsNotNull, _) => (true, None),
        (Op::IsTrue | Op::IsFalse, _) => match parse_bool(text) {
            Some(b) => (b == (op == Op::IsTrue), None),
            None => (false, Some(format!("'{text}' is not a Boolean"))),
        },
        (Op::Equals, Operand::Text(v)) => (text == v, None),
        (Op::NotEquals, Operand::Text(v)) => (text != v, None),
        (Op::Includes, Operand::Text(v)) => (text.contains(v.as_str()), None),
        (Op::EndsWith, Operand::Text(v)) => (text.ends_with(v.as_str()), None),
        (Op::ExistsIn, Operand::Text(v)) => (v.contains(text), None),
        (Op::NotExistsIn, Operand::Text(v)) => (!v.contains(text), None),
        (Op::RegexMatch, Operand::Regex(r)) => (r.is_match(text), None),
        (Op::NotRegexMatch, Operand::Regex(r)) => (!r.is_match(text), None),
        (
            Op::GreaterThan | Op::GreaterThanOrEquals | Op::LessThan | Op::LessThanOrEquals,
            Operand::Integer(bound),
        ) => match text.trim().parse::<i64>() {
            Ok(n) => (
                match op {
                    Op::GreaterThan => n > *bound,
                    Op::GreaterThanOrEquals => n >= *bound,
                    Op::LessThan => n < *bound,
                    _ => n <= *bound,
                },
                None,
            ),
            Err(_) => (false, Some(format!("'{text}' is not an integer"))),
        },
        // `compile_clause` pairs every operator with its operand kind; no other pairing is built.
        _ => (false, Some("operator and operand do not fit".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(attribute: &str, op: &str, value: Option<&str>, user: serde_json::Value) -> bool {
        let clause: FilterClause = serde_json::from_value(json!({
            "attribute": attribute, "operator": op, "value": value,
        }))
        .expect("operator label parses");
        let filters = CompiledFilters::compile(&[ScopingFilter {
            title: "t".into(),
            clauses: vec![clause],
        }])
        .expect("compiles");
        let map = user.as_object().expect("object").clone();
        filters.evaluate(&SourceAttributes::new(&map)).passed
    }

    #[test]
    fn every_label_round_trips() {
        for op in FilterOperator::ALL {
            let json = serde_json::to_value(op).expect("serializes");
            assert_eq!(json, json!(op.label()));
            let back: FilterOperator = serde_json::from_value(json).expect("parses");
            assert_eq!(back, op);
        }
        assert!(serde_json::from_value::<FilterOperator>(json!("equals")).is_err());
    }

    #[test]
    fn equals_is_case_sensitive_and_false_on_null() {
        assert!(check(
            "department",
            "EQUALS",
            Some("Sales"),
            json!({"department": "Sales"})
        ));
        assert!(!check(
            "department",
            "EQUALS",
            Some("Sales"),
            json!({"department": "sales"})
        ));
        assert!(!check("department", "EQUALS", Some("Sales"), json!({})));
        assert!(!check(
            "department",
            "EQUALS",
            Some(""),
            json!({"department": ""})
        ));
    }

    #[test]
    fn not_equals_is_false_on_null() {
        assert!(check(
            "department",
            "NOT EQUALS",
            Some("Sales"),
            json!({"department": "HR"})
        ));
        assert!(check(
            "department",
            "NOT EQUALS",
            Some("Sales"),
            json!({"department": "sales"})
        ));
        assert!(!check(
            "department",
            "NOT EQUALS",
            Some("Sales"),
            json!({"department": "Sales"})
        ));
        assert!(!check(
            "department",
            "NOT EQUALS",
            Some("Sales"),
            json!({"department": null})
        ));
        assert!(!check("department", "NOT EQUALS", Some("Sales"), json!({})));
    }

    #[test]
    fn equals_on_a_boolean_compares_booleans() {
        assert!(check(
            "accountEnabled",
            "EQUALS",
            Some("true"),
            json!({"accountEnabled": true})
        ));
        assert!(check(
            "accountEnabled",
            "EQUALS",
            Some("False"),
            json!({"accountEnabled": false})
        ));
        assert!(!check(
            "accountEnabled",
            "EQUALS",
            Some("true"),
            json!({"accountEnabled": false})
        ));
        assert!(check(
            "accountEnabled",
            "NOT EQUALS",
            Some("true"),
            json!({"accountEnabled": false})
        ));
    }

    #[test]
    fn is_true_and_is_false() {
        assert!(check(
            "accountEnabled",
            "IS TRUE",
            None,
            json!({"accountEnabled": true})
        ));
        assert!(!check(
            "accountEnabled",
            "IS TRUE",
            None,
            json!({"accountEnabled": false})
        ));
        assert!(!check(
            "accountEnabled",
            "IS TRUE",
            None,
            json!({"accountEnabled": null})
        ));
        assert!(check(
            "accountEnabled",
            "IS FALSE",
            None,
            json!({"accountEnabled": false})
        ));
        assert!(!check(
            "accountEnabled",
            "IS FALSE",
            None,
            json!({"accountEnabled": true})
        ));
        assert!(!check("accountEnabled", "IS FALSE", None, json!({})));
        // String-typed extension values: parsed like .NET Boolean.TryParse.
        assert!(check(
            "extension_x",
            "IS TRUE",
            None,
            json!({"extension_x": "True"})
        ));
        assert!(!check(
            "extension_x",
            "IS TRUE",
            None,
            json!({"extension_x": "yes"})
        ));
    }

    #[test]
    fn is_null_and_is_not_null_treat_empty_as_null() {
        for empty in [
            json!({}),
            json!({"jobTitle": null}),
            json!({"jobTitle": ""}),
        ] {
            assert!(check("jobTitle", "IS NULL", None, empty.clone()));
            assert!(!check("jobTitle", "IS NOT NULL", None, empty));
        }
        assert!(!check(
            "jobTitle",
            "IS NULL",
            None,
            json!({"jobTitle": "Engineer"})
        ));
        assert!(check(
            "jobTitle",
            "IS NOT NULL",
            None,
            json!({"jobTitle": "Engineer"})
        ));
    }

    #[test]
    fn regex_is_unanchored_and_case_sensitive() {
        let upn = |u: &str| json!({ "userPrincipalName": u });
        assert!(check(
            "userPrincipalName",
            "REGEX MATCH",
            Some(r".*\@domain.com"),
            upn("a@domain.com")
        ));
        assert!(!check(
            "userPrincipalName",
            "REGEX MATCH",
            Some(r".*\@domain.com"),
            upn("a@DOMAIN.com")
        ));
        assert!(check(
            "x",
            "REGEX MATCH",
            Some("([1-9][0-9])"),
            json!({"x": "100"})
        ));
        assert!(!check(
            "x",
            "REGEX MATCH",
            Some("([1-9][0-9])"),
            json!({"x": "5"})
        ));
    }

    #[test]
    fn not_regex_match_is_false_on_null() {
        assert!(check(
            "upn",
            "NOT REGEX MATCH",
            Some("@domain"),
            json!({"upn": "a@other"})
        ));
        assert!(!check(
            "upn",
            "NOT REGEX MATCH",
            Some("@domain"),
            json!({"upn": "a@domain"})
        ));
        assert!(!check(
            "upn",
            "NOT REGEX MATCH",
            Some("@domain"),
            json!({"upn": null})
        ));
        assert!(!check(
            "upn",
            "NOT REGEX MATCH",
            Some("@domain"),
            json!({"upn": ""})
        ));
    }

    #[test]
    fn integer_comparisons() {
        let v = |x: serde_json::Value| json!({ "n": x });
        assert!(check("n", "Greater_Than", Some("5"), v(json!("10"))));
        assert!(!check("n", "Greater_Than", Some("5"), v(json!("5"))));
        assert!(check("n", "Greater_Than", Some("5"), v(json!(6))));
        assert!(check(
            "n",
            "Greater_Than_OR_EQUALS",
            Some("5"),
            v(json!("5"))
        ));
        assert!(!check(
            "n",
            "Greater_Than_OR_EQUALS",
            Some("5"),
            v(json!("4"))
        ));
        assert!(check("n", "Less_Than", Some("5"), v(json!("4"))));
        assert!(!check("n", "Less_Than", Some("5"), v(json!("5"))));
        assert!(check("n", "Less_Than_OR_EQUALS", Some("5"), v(json!("5"))));
        assert!(!check("n", "Less_Than_OR_EQUALS", Some("5"), v(json!("6"))));
        // A non-integer attribute never passes; nor does null.
        assert!(!check("n", "Greater_Than", Some("5"), v(json!("ten"))));
        assert!(!check("n", "Less_Than", Some("5"), v(json!("4.5"))));
        assert!(!check("n", "Less_Than", Some("5"), json!({})));
        // String comparison would say "10" < "5"; integers say otherwise.
        assert!(!check("n", "Less_Than", Some("5"), v(json!("10"))));
    }

    #[test]
    fn includes_ends_with_and_exists_in() {
        let m = |x: &str| json!({ "mail": x });
        assert!(check(
            "mail",
            "Includes",
            Some("contoso"),
            m("a@contoso.com")
        ));
        assert!(!check(
            "mail",
            "Includes",
            Some("Contoso"),
            m("a@contoso.com")
        ));
        assert!(check(
            "mail",
            "ENDS_WITH",
            Some("@contoso.com"),
            m("a@contoso.com")
        ));
        assert!(!check(
            "mail",
            "ENDS_WITH",
            Some("@contoso.com"),
            m("a@contoso.org")
        ));
        assert!(!check(
            "mail",
            "ENDS_WITH",
            Some("@contoso.com"),
            m("a@CONTOSO.COM")
        ));
        assert!(check("code", "&", Some("abc"), json!({"code": "b"})));
        assert!(!check("code", "&", Some("abc"), json!({"code": "d"})));
        assert!(check("code", "!&", Some("abc"), json!({"code": "d"})));
        assert!(!check("code", "!&", Some("abc"), json!({"code": "b"})));
        assert!(!check("code", "!&", Some("abc"), json!({})));
    }

    #[test]
    fn multi_valued_values_never_pass() {
        assert!(!check(
            "ext",
            "Includes",
            Some("a"),
            json!({"ext": ["a", "b"]})
        ));
        assert!(!check("ext", "IS NOT NULL", None, json!({"ext": ["a"]})));
        assert!(check("ext", "IS NULL", None, json!({"ext": []})));
    }

    #[test]
    fn clauses_and_filters_or() {
        let filters: Vec<ScopingFilter> = serde_json::from_value(json!([
            {"title": "A", "clauses": [
                {"attribute": "department", "operator": "EQUALS", "value": "Sales"},
                {"attribute": "country", "operator": "EQUALS", "value": "FR"}]},
            {"title": "B", "clauses": [
                {"attribute": "department", "operator": "EQUALS", "value": "Legal"}]}
        ]))
        .expect("parses");
        let compiled = CompiledFilters::compile(&filters).expect("compiles");
        let eval = |u: serde_json::Value| {
            let map = u.as_object().expect("object").clone();
            compiled.evaluate(&SourceAttributes::new(&map))
        };
        assert!(eval(json!({"department": "Sales", "country": "FR"})).passed);
        assert!(!eval(json!({"department": "Sales", "country": "DE"})).passed);
        let legal = eval(json!({"department": "Legal"}));
        assert!(legal.passed);
        assert!(!legal.filters[0].passed && legal.filters[1].passed);
        assert_eq!(
            legal.scope_evaluation_result(),
            BTreeMap::from([
                ("A.department EQUALS 'Sales'".to_string(), false),
                ("A.country EQUALS 'FR'".to_string(), false),
                ("B.department EQUALS 'Legal'".to_string(), true),
            ])
        );
        assert!(
            CompiledFilters::compile(&[])
                .expect("empty")
                .evaluate(&SourceAttributes::new(&Default::default()))
                .passed
        );
    }

    #[test]
    fn compile_errors_name_filter_and_clause() {
        let filters: Vec<ScopingFilter> = serde_json::from_value(json!([
            {"title": "ok", "clauses": [{"attribute": "department", "operator": "EQUALS", "value": "x"}]},
            {"title": "bad", "clauses": [
                {"attribute": "department", "operator": "EQUALS", "value": "x"},
                {"attribute": "upn", "operator": "REGEX MATCH", "value": "(unclosed"},
                {"attribute": "n", "operator": "Greater_Than", "value": "five"},
                {"attribute": "n", "operator": "IS NULL", "value": "x"},
                {"attribute": "n", "operator": "EQUALS"},
                {"attribute": "manager", "operator": "EQUALS", "value": "x"},
                {"attribute": "proxyAddresses", "operator": "Includes", "value": "x"}]}
        ]))
        .expect("parses");
        let errors = CompiledFilters::compile(&filters).expect_err("invalid");
        let located: Vec<(usize, usize)> = errors
            .iter()
            .map(|e| (e.filter_index, e.clause_index))
            .collect();
        assert_eq!(
            located,
            vec![(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6)]
        );
        let first = errors[0].to_string();
        assert!(
            first.starts_with("scoping filter 2 ('bad'), clause 2 (upn REGEX MATCH)"),
            "{first}"
        );
        assert!(first.contains("regular expression"), "{first}");
    }

    #[test]
    fn renders_like_entra_logs() {
        let clause = FilterClause {
            attribute: "department".into(),
            operator: FilterOperator::Equals,
            value: Some("Marketing".into()),
        };
        assert_eq!(
            render_clause("Marketing department filter", &clause),
            "Marketing department filter.department EQUALS 'Marketing'"
        );
        let unary = FilterClause {
            attribute: "jobTitle".into(),
            operator: FilterOperator::IsNotNull,
            value: None,
        };
        assert_eq!(render_clause("T", &unary), "T.jobTitle IS NOT NULL");
    }
}
