//! Tree-walking evaluator. Functions that decide which arguments to evaluate (IIF, Switch,
//! Coalesce, SelectUniqueValue, IgnoreFlowIfNullOrEmpty, Error) are handled here; all others
//! get their evaluated arguments from `functions::call`.

use std::cmp::Ordering;

use super::ast::{CmpOp, Node, NodeKind};
use super::error::{EvalError, EvalErrorKind};
use super::functions;
use super::value::{AttributeSource, Value};
use super::{EvalContext, Outcome};

/// Why evaluation stopped early.
pub(crate) enum Flow {
    /// `IgnoreFlowIfNullOrEmpty` fired somewhere: the attribute is not written.
    Ignore,
    Fail(EvalError),
}

impl From<EvalError> for Flow {
    fn from(e: EvalError) -> Flow {
        Flow::Fail(e)
    }
}

pub fn evaluate(
    root: &Node,
    attributes: &dyn AttributeSource,
    ctx: &mut EvalContext<'_>,
) -> Result<Outcome, EvalError> {
    let mut evaluator = Evaluator { attributes, ctx };
    match evaluator.eval(root) {
        Ok(v) => Ok(Outcome::Value(v)),
        Err(Flow::Ignore) => Ok(Outcome::Ignore),
        Err(Flow::Fail(e)) => Err(e),
    }
}

struct Evaluator<'a, 'c> {
    attributes: &'a dyn AttributeSource,
    ctx: &'a mut EvalContext<'c>,
}

impl Evaluator<'_, '_> {
    fn eval(&mut self, node: &Node) -> Result<Value, Flow> {
        match &node.kind {
            NodeKind::Str(s) => Ok(Value::String(s.clone())),
            NodeKind::Int(i) | NodeKind::Hex(i) => Ok(Value::Int(*i)),
            NodeKind::Attribute(name) => Ok(self.attributes.attribute(name)),
            NodeKind::Ident(name) => Ok(match name.as_str() {
                "True" => Value::Bool(true),
                "False" => Value::Bool(false),
                other => Value::String(other.to_string()),
            }),
            NodeKind::Compare { op, left, right } => {
                let l = self.eval(left)?;
                let r = self.eval(right)?;
                Ok(Value::Bool(compare(*op, &l, &r)))
            }
            NodeKind::Concat(left, right) => {
                let l = self.eval(left)?;
                let r = self.eval(right)?;
                if l.is_null() && r.is_null() {
                    return Ok(Value::Null);
                }
                Ok(Value::String(format!(
                    "{}{}",
                    l.text_or_empty(),
                    r.text_or_empty()
                )))
            }
            NodeKind::Call { name, args } => self.call(name, args),
        }
    }

    fn arg(&mut self, args: &[Option<Node>], i: usize) -> Result<Option<Value>, Flow> {
        match args.get(i) {
            Some(Some(node)) => Ok(Some(self.eval(node)?)),
            _ => Ok(None),
        }
    }

    fn call(&mut self, name: &str, args: &[Option<Node>]) -> Result<Value, Flow> {
        match name {
            "IIF" => self.iif(args),
            "Switch" => self.switch(args),
            "Coalesce" => {
                for i in 0..args.len() {
                    if let Some(v) = self.arg(args, i)?
                        && !v.is_null()
                    {
                        return Ok(v);
                    }
                }
                Ok(Value::Null)
            }
            "SelectUniqueValue" => self.select_unique_value(args),
            "IgnoreFlowIfNullOrEmpty" => {
                let v = self.arg(args, 0)?.unwrap_or(Value::Null);
                if v.is_null_or_empty() {
                    Err(Flow::Ignore)
                } else {
                    Ok(v)
                }
            }
            "Error" => {
                let message = self.arg(args, 0)?.unwrap_or(Value::Null);
                Err(Flow::Fail(EvalError {
                    function: "Error".into(),
                    message: message.text_or_empty().into_owned(),
                    kind: EvalErrorKind::Raised,
                }))
            }
            _ => {
                let mut values = Vec::with_capacity(args.len());
                for i in 0..args.len() {
                    values.push(self.arg(args, i)?);
                }
                Ok(functions::call(name, &values, self.ctx)?)
            }
        }
    }

    /// Entra documents that "if the source attribute used within the IIF function is empty
    /// or null, the condition check fails", listing `IIF([country]="","Other",[country])` as
    /// unsupported. We apply that to comparisons: when a comparison in the condition reads an
    /// attribute that is null or empty, the IIF yields no value (null). Function conditions
    /// such as `IsPresent([x])` evaluate normally, as Microsoft's Cloud Sync example
    /// `IIF(IsPresent([accountName]),[accountName],Error(...))` and the HR troubleshooting
    /// guide (use IIF with IsNullOrEmpty for null values) rely on.
    fn iif(&mut self, args: &[Option<Node>]) -> Result<Value, Flow> {
        let Some(Some(condition)) = args.first() else {
            return Ok(Value::Null);
        };
        let mut source_missing = false;
        condition.walk(&mut |n| {
            if let NodeKind::Compare { left, right, .. } = &n.kind {
                for operand in [left, right] {
                    operand.walk(&mut |m| {
                        if let NodeKind::Attribute(name) = &m.kind
                            && self.attributes.attribute(name).is_null_or_empty()
                        {
                            source_missing = true;
                        }
                    });
                }
            }
        });
        if source_missing {
            return Ok(Value::Null);
        }
        let value = self.eval(condition)?;
        let truth = value.as_bool().ok_or_else(|| {
            EvalError::invalid(
                "IIF",
                format!(
                    "condition must evaluate to True or False, got \"{}\"",
                    value.text_or_empty()
                ),
            )
        })?;
        Ok(self
            .arg(args, if truth { 1 } else { 2 })?
            .unwrap_or(Value::Null))
    }

    /// Case-sensitive match of the source against each key; a null source matches the `""`
    /// key (Entra's documented workaround `Switch([country],[country],"","Other")` relies on
    /// this for empty *or null* values).
    fn switch(&mut self, args: &[Option<Node>]) -> Result<Value, Flow> {
        let source = self.arg(args, 0)?.unwrap_or(Value::Null);
        let source = source.text_or_empty().into_owned();
        let mut i = 2;
        while i + 1 < args.len() {
            let key = self.arg(args, i)?.unwrap_or(Value::Null);
            if key.text_or_empty() == source {
                return Ok(self.arg(args, i + 1)?.unwrap_or(Value::Null));
            }
            i += 2;
        }
        Ok(self.arg(args, 1)?.unwrap_or(Value::Null))
    }

    fn select_unique_value(&mut self, args: &[Option<Node>]) -> Result<Value, Flow> {
        let mut tried = Vec::new();
        for i in 0..args.len() {
            let Some(candidate) = self.arg(args, i)? else {
                continue;
            };
            let Some(text) = candidate.text() else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            if (self.ctx.is_unique)(&text) {
                return Ok(Value::String(text.into_owned()));
            }
            tried.push(text.into_owned());
        }
        Err(Flow::Fail(EvalError {
            function: "SelectUniqueValue".into(),
            message: format!(
                "every candidate already exists in the target ({}); the entry is escrowed",
                tried.join(", ")
            ),
            kind: EvalErrorKind::NoUniqueValue,
        }))
    }
}

/// VBA-style comparison. Null equals only null and is never ordered. Numbers compare
/// numerically when either side is a number (or both sides of `<`/`>` look like numbers);
/// booleans compare with boolean strings; everything else compares as case-sensitive
/// ordinal strings, like Switch.
pub(crate) fn compare(op: CmpOp, l: &Value, r: &Value) -> bool {
    if l.is_null() || r.is_null() {
        let both = l.is_null() && r.is_null();
        return match op {
            CmpOp::Eq => both,
            CmpOp::Ne => !both,
            _ => false,
        };
    }
    let ordering = order(op, l, r);
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    }
}

fn order(op: CmpOp, l: &Value, r: &Value) -> Ordering {
    let numeric_context = matches!(l, Value::Int(_))
        || matches!(r, Value::Int(_))
        || !matches!(op, CmpOp::Eq | CmpOp::Ne);
    if numeric_context && let (Some(a), Some(b)) = (l.as_int(), r.as_int()) {
        return a.cmp(&b);
    }
    if (matches!(l, Value::Bool(_)) || matches!(r, Value::Bool(_)))
        && let (Some(a), Some(b)) = (l.as_bool(), r.as_bool())
    {
        return a.cmp(&b);
    }
    l.text_or_empty().cmp(&r.text_or_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_vba() {
        let s = |t: &str| Value::String(t.into());
        assert!(compare(CmpOp::Eq, &s("USA"), &s("USA")));
        assert!(!compare(CmpOp::Eq, &s("usa"), &s("USA")));
        assert!(!compare(CmpOp::Eq, &s("01"), &s("1")));
        assert!(compare(CmpOp::Eq, &Value::Int(1), &s("01")));
        assert!(compare(CmpOp::Gt, &s("10"), &s("9")));
        assert!(compare(CmpOp::Gt, &s("b"), &s("a")));
        assert!(compare(CmpOp::Eq, &Value::Bool(true), &s("true")));
        assert!(!compare(CmpOp::Eq, &Value::Null, &s("")));
        assert!(compare(CmpOp::Ne, &Value::Null, &s("")));
        assert!(!compare(CmpOp::Lt, &Value::Null, &s("a")));
    }
}
