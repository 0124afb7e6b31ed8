//! The syntax tree and its canonical printer. Printing then re-parsing yields an equal tree
//! (spans are ignored by equality), which the property tests check.

use std::fmt;

/// Byte offsets into the expression source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Infix comparison operators (VBA spelling), allowed in IIF conditions and CBool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    /// For a call, the span starts at the function name.
    pub span: Span,
}

/// Equality ignores spans so that print→parse round trips compare equal.
impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.kind == other.kind
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `"text"` with escapes resolved.
    Str(String),
    /// Decimal integer literal, possibly negative.
    Int(i64),
    /// VBA hex literal `&HFF`.
    Hex(i64),
    /// `[attributeName]`.
    Attribute(String),
    /// A bare name such as `vbTextCompare`, `True` or `UTF8`.
    Ident(String),
    /// `Name(arg, , arg)`: `None` is an empty positional argument.
    Call {
        name: String,
        args: Vec<Option<Node>>,
    },
    Compare {
        op: CmpOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `a & b` string concatenation (Cloud Sync syntax).
    Concat(Box<Node>, Box<Node>),
}

impl Node {
    pub fn new(kind: NodeKind, span: Span) -> Node {
        Node { kind, span }
    }

    /// The span of a call's function name.
    pub fn name_span(&self) -> Span {
        match &self.kind {
            NodeKind::Call { name, .. } => Span::new(self.span.start, self.span.start + name.len()),
            _ => self.span,
        }
    }

    /// Visits this node and every descendant, parents first.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Node)) {
        visit(self);
        match &self.kind {
            NodeKind::Call { args, .. } => {
                for arg in args.iter().flatten() {
                    arg.walk(visit);
                }
            }
            NodeKind::Compare { left, right, .. } | NodeKind::Concat(left, right) => {
                left.walk(visit);
                right.walk(visit);
            }
            _ => {}
        }
    }
}

/// Writes a string literal with Entra's escaping (`\"` and `\\`).
pub fn write_string_literal(f: &mut impl fmt::Write, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

fn needs_parens_in_operand(node: &Node) -> bool {
    matches!(node.kind, NodeKind::Compare { .. } | NodeKind::Concat(..))
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NodeKind::Str(s) => write_string_literal(f, s),
            NodeKind::Int(i) => write!(f, "{i}"),
            NodeKind::Hex(i) => write!(f, "&H{i:X}"),
            NodeKind::Attribute(a) => write!(f, "[{a}]"),
            NodeKind::Ident(name) => f.write_str(name),
            NodeKind::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(arg) = arg {
                        write!(f, "{arg}")?;
                    }
                }
                f.write_str(")")
            }
            NodeKind::Compare { op, left, right } => {
                write_operand(f, left, needs_parens_in_operand(left))?;
                write!(f, " {} ", op.symbol())?;
                write_operand(f, right, needs_parens_in_operand(right))
            }
            NodeKind::Concat(left, right) => {
                // Concatenation is left-associative: only a comparison needs parentheses on
                // the left, anything compound does on the right.
                let left_parens = matches!(left.kind, NodeKind::Compare { .. });
                write_operand(f, left, left_parens)?;
                f.write_str(" & ")?;
                write_operand(f, right, needs_parens_in_operand(right))
            }
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, node: &Node, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({node})")
    } else {
        write!(f, "{node}")
    }
}
