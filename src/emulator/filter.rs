//! `$filter`: a parser for the OData subset directory objects support (comparisons, `in`,
//! `startswith`/`endswith`, `any` lambdas, `and`/`or`/`not`) and an evaluator over JSON objects.
//! Directory string comparisons are case-insensitive, as in Entra.

use std::cmp::Ordering;

use serde_json::Value;

use super::errors::GraphError;
use super::model::Obj;

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    /// An unquoted literal that is not a number: a GUID or a date/time (`2024-01-01T00:00:00Z`).
    Bare(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        path: Vec<String>,
        op: CmpOp,
        value: Lit,
    },
    In {
        path: Vec<String>,
        values: Vec<Lit>,
    },
    Func {
        func: Func,
        path: Vec<String>,
        value: String,
    },
    Any {
        path: Vec<String>,
        var: String,
        body: Box<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Bare(String),
    Num(f64),
    Open,
    Close,
    Comma,
    Colon,
}

fn syntax(msg: impl Into<String>) -> GraphError {
    GraphError::bad_request(format!("Invalid filter clause: {}", msg.into()))
}

fn tokenize(input: &str) -> Result<Vec<Tok>, GraphError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax("unterminated string literal")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | ':'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match text.parse::<f64>() {
                    Ok(n) => out.push(Tok::Num(n)),
                    // Unquoted GUIDs and dates are literals too.
                    Err(_) => out.push(Tok::Bare(text)),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '/' | '.'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(syntax(format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

pub fn parse(input: &str) -> Result<Expr, GraphError> {
    let toks = tokenize(input)?;
    if toks.is_empty() {
        return Err(syntax("empty expression"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(syntax("unexpected trailing tokens"));
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, tok: Tok) -> Result<(), GraphError> {
        match self.next() {
            Some(t) if t == tok => Ok(()),
            _ => Err(syntax(format!("expected {tok:?}"))),
        }
    }

    fn or(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, GraphError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax("expression nested too deeply"));
        }
        let result = if self.keyword("not") {
            self.pos += 1;
            self.unary().map(|e| Expr::Not(Box::new(e)))
        } else {
            self.primary()
        };
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Expr, GraphError> {
        match self.next() {
            Some(Tok::Open) => {
                let e = self.or()?;
                self.expect(Tok::Close)?;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                let lower = name.to_ascii_lowercase();
                if self.peek() == Some(&Tok::Open) {
                    if lower == "startswith" || lower == "endswith" {
                        return self.function(if lower == "startswith" {
                            Func::StartsWith
                        } else {
                            Func::EndsWith
                        });
                    }
                    if let Some(base) = lower.strip_suffix("/any") {
                        let path = split_path(&name[..base.len()]);
                        return self.lambda(path);
                    }
                    return Err(GraphError::unsupported_query());
                }
                let path = split_path(&name);
                let op = match self.next() {
                    Some(Tok::Ident(op)) => op.to_ascii_lowercase(),
                    _ => return Err(syntax(format!("expected an operator after '{name}'"))),
                };
                if op == "in" {
                    self.expect(Tok::Open)?;
                    let mut values = vec![self.literal()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                        values.push(self.literal()?);
                    }
                    self.expect(Tok::Close)?;
                    return Ok(Expr::In { path, values });
                }
                let op = match op.as_str() {
                    "eq" => CmpOp::Eq,
                    "ne" => CmpOp::Ne,
                    "gt" => CmpOp::Gt,
                    "ge" => CmpOp::Ge,
                    "lt" => CmpOp::Lt,
                    "le" => CmpOp::Le,
                    "has" => return Err(GraphError::unsupported_query()),
                    other => return Err(syntax(format!("unknown operator '{other}'"))),
                };
                let value = self.literal()?;
                Ok(Expr::Cmp { path, op, value })
            }
            _ => Err(syntax("expected a property, function or '('")),
        }
    }

    fn function(&mut self, func: Func) -> Result<Expr, GraphError> {
        self.expect(Tok::Open)?;
        let path = match self.next() {
            Some(Tok::Ident(p)) => split_path(&p),
            _ => return Err(syntax("expected a property as the first argument")),
        };
        self.expect(Tok::Comma)?;
        let value = match self.next() {
            Some(Tok::Str(s)) => s,
            _ => return Err(syntax("expected a string as the second argument")),
        };
        self.expect(Tok::Close)?;
        Ok(Expr::Func { func, path, value })
    }

    fn lambda(&mut self, path: Vec<String>) -> Result<Expr, GraphError> {
        self.expect(Tok::Open)?;
        let var = match self.next() {
            Some(Tok::Ident(v)) => v,
            _ => return Err(syntax("expected a lambda variable")),
        };
        self.expect(Tok::Colon)?;
        let body = self.or()?;
        self.expect(Tok::Close)?;
        Ok(Expr::Any {
            path,
            var,
            body: Box::new(body),
        })
    }

    fn literal(&mut self) -> Result<Lit, GraphError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Bare(s)) => Ok(Lit::Bare(s)),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(Tok::Ident(s)) if s == "true" => Ok(Lit::Bool(true)),
            Some(Tok::Ident(s)) if s == "false" => Ok(Lit::Bool(false)),
            Some(Tok::Ident(s)) if s == "null" => Ok(Lit::Null),
            _ => Err(syntax("expected a literal")),
        }
    }
}

fn split_path(p: &str) -> Vec<String> {
    p.split('/').map(str::to_string).collect()
}

/// What a filter needs from the server: top-level properties it reads, and whether it is an
/// advanced query (`ne`, `not`, `endswith` need `ConsistencyLevel: eventual` + `$count=true`).
#[derive(Debug, Default, PartialEq)]
pub struct Analysis {
    pub properties: Vec<String>,
    /// Properties compared with `gt`/`ge`/`lt`/`le`.
    pub ranged: Vec<String>,
    pub advanced: bool,
}

pub fn analyze(expr: &Expr) -> Analysis {
    let mut a = Analysis::default();
    walk(expr, None, &mut a);
    a
}

fn walk(expr: &Expr, var: Option<&str>, a: &mut Analysis) {
    let note = |path: &[String], a: &mut Analysis| {
        if let Some(first) = path.first()
            && Some(first.as_str()) != var
        {
            a.properties.push(first.clone());
        }
    };
    match expr {
        Expr::And(l, r) | Expr::Or(l, r) => {
            walk(l, var, a);
            walk(r, var, a);
        }
        Expr::Not(e) => {
            a.advanced = true;
            walk(e, var, a);
        }
        Expr::Cmp { path, op, .. } => {
            if *op == CmpOp::Ne {
                a.advanced = true;
            }
            if matches!(op, CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le)
                && let Some(first) = path.first()
            {
                a.ranged.push(first.clone());
            }
            note(path, a);
        }
        Expr::In { path, .. } => note(path, a),
        Expr::Func { func, path, .. } => {
            if *func == Func::EndsWith {
                a.advanced = true;
            }
            note(path, a);
        }
        Expr::Any { path, var: v, body } => {
            note(path, a);
            walk(body, Some(v), a);
        }
    }
}

pub fn eval(expr: &Expr, obj: &Obj) -> bool {
    eval_in(expr, obj, None)
}

/// Reads `path` from `root`, or from `element` when the path starts with the lambda variable.
fn resolve(root: &Obj, lambda: Option<(&str, &Value)>, path: &[String]) -> Value {
    let mut cur: Option<&Value> = match (lambda, path.first()) {
        (Some((v, elem)), Some(first)) if first == v => Some(elem),
        (_, Some(first)) => root.get(first.as_str()),
        (_, None) => None,
    };
    for seg in &path[1.min(path.len())..] {
        cur = cur
            .and_then(|c| c.as_object())
            .and_then(|o| o.get(seg.as_str()));
    }
    cur.cloned().unwrap_or(Value::Null)
}

/// Evaluates against `root`; inside a lambda, paths starting with the variable read `element`.
fn eval_in(expr: &Expr, root: &Obj, lambda: Option<(&str, &Value)>) -> bool {
    let resolve = |path: &[String]| resolve(root, lambda, path);
    match expr {
        Expr::And(l, r) => eval_in(l, root, lambda) && eval_in(r, root, lambda),
        Expr::Or(l, r) => eval_in(l, root, lambda) || eval_in(r, root, lambda),
        Expr::Not(e) => !eval_in(e, root, lambda),
        Expr::Cmp { path, op, value } => {
            let v = resolve(path);
            match &v {
                // A comparison on a string collection matches when any element matches.
                Value::Array(items) if *op == CmpOp::Eq => {
                    items.iter().any(|i| compare(i, *op, value))
                }
                Value::Array(items) if *op == CmpOp::Ne => {
                    !items.iter().any(|i| compare(i, CmpOp::Eq, value))
                }
                _ => compare(&v, *op, value),
            }
        }
        Expr::In { path, values } => {
            let v = resolve(path);
            values.iter().any(|lit| match &v {
                Value::Array(items) => items.iter().any(|i| compare(i, CmpOp::Eq, lit)),
                other => compare(other, CmpOp::Eq, lit),
            })
        }
        Expr::Func { func, path, value } => {
            let needle = value.to_lowercase();
            let hay = |s: &str| {
                let s = s.to_lowercase();
                match func {
                    Func::StartsWith => s.starts_with(&needle),
                    Func::EndsWith => s.ends_with(&needle),
                }
            };
            match resolve(path) {
                Value::String(s) => hay(&s),
                Value::Array(items) => items.iter().filter_map(Value::as_str).any(hay),
                _ => false,
            }
        }
        Expr::Any { path, var, body } => match resolve(path) {
            Value::Array(items) => items
                .iter()
                .any(|item| eval_in(body, root, Some((var.as_str(), item)))),
            _ => false,
        },
    }
}

fn compare(v: &Value, op: CmpOp, lit: &Lit) -> bool {
    let ord = match (v, lit) {
        (Value::Null, Lit::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Lit::Null) => None,
        (Value::String(s), Lit::Str(l) | Lit::Bare(l)) => {
            Some(s.to_lowercase().cmp(&l.to_lowercase()))
        }
        (Value::Bool(b), Lit::Bool(l)) => Some(b.cmp(l)),
        (Value::Number(n), Lit::Num(l)) => n.as_f64().and_then(|f| f.partial_cmp(l)),
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Ne, None) => true,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (_, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Obj {
        json!({
            "userType": "Member",
            "mail": "Adele@Contoso.com",
            "creationType": null,
            "accountEnabled": true,
            "otherMails": ["a@b.com"],
            "identities": [{"signInType": "userPrincipalName", "issuer": "contoso.com"}],
            "extension_abc_anchor": "t/1"
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn m(f: &str) -> bool {
        eval(&parse(f).unwrap_or_else(|e| panic!("{f}: {e:?}")), &user())
    }

    #[test]
    fn evaluates_the_sync_filters() {
        assert!(m("userType eq 'member'"));
        assert!(m("userType eq 'Member' and accountEnabled eq true"));
        assert!(m("creationType eq null"));
        assert!(!m("creationType eq 'Invitation'"));
        assert!(m("startswith(mail,'adele')"));
        assert!(m("endswith(mail,'@contoso.com')"));
        assert!(m("userType in ('Guest','Member')"));
        assert!(m("not(userType eq 'Guest')"));
        assert!(m("userType ne 'Guest' or mail eq 'x'"));
        assert!(m("otherMails eq 'A@B.com'"));
        assert!(m("identities/any(c:c/issuer eq 'contoso.com')"));
        assert!(m("extension_abc_anchor eq 't/1'"));
        assert!(m(
            "(userType eq 'Guest' or userType eq 'Member') and mail ne null"
        ));
    }

    #[test]
    fn analysis_flags_advanced_operators() {
        let a = analyze(
            &parse("userType ne 'Guest' and mail eq 'x'").unwrap_or_else(|e| panic!("{e:?}")),
        );
        assert!(a.advanced);
        assert_eq!(a.properties, vec!["userType", "mail"]);
        let b = analyze(
            &parse("identities/any(c:c/issuer eq 'x')").unwrap_or_else(|e| panic!("{e:?}")),
        );
        assert_eq!(b.properties, vec!["identities"]);
        assert!(!b.advanced);
    }

    #[test]
    fn rejects_malformed_filters_without_panicking() {
        for bad in [
            "",
            "userType",
            "userType eq",
            "userType eq 'x",
            "(userType eq 'x'",
            "eq 'x'",
            "a eq 'b' c",
            "userType foo 'x'",
            "startswith(mail)",
            "x in ()",
            "a eq 'b' and",
            "@",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}a eq 'b'{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in ".{0,80}") {
            let _ = parse(&s).map(|e| eval(&e, &user()));
        }
    }
}
