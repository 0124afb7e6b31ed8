//! Recursive-descent parser: tokens → [`Node`] tree with spans.
//!
//! Grammar (VBA-like; comparisons do not chain and there is no AND/OR, as in Entra):
//! ```text
//! expr     := concat (cmp concat)?
//! concat   := primary ("&" primary)*
//! primary  := STRING | "-"? DIGITS | HEX | ATTRIBUTE | NAME ( "(" args? ")" )? | "(" expr ")"
//! args     := arg? ("," arg?)*        -- an empty arg is an omitted positional argument
//! ```

use super::ast::{Node, NodeKind, Span};
use super::error::ParseError;
use super::lexer::{Tok, Token, tokenize};

/// Entra rejects attribute-mapping expressions longer than this (known-issues doc).
pub const MAX_EXPRESSION_CHARS: usize = 10_000;

/// Deeper nesting than any real mapping needs; bounds recursion in parser, checker, printer
/// and evaluator so hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 64;

pub fn parse(src: &str) -> Result<Node, ParseError> {
    let chars = src.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        let cut = src
            .char_indices()
            .nth(MAX_EXPRESSION_CHARS)
            .map_or(src.len(), |(i, _)| i);
        return Err(ParseError::at(
            src,
            Span::new(cut, src.len()),
            format!(
                "expression is {chars} characters long; Entra allows at most {MAX_EXPRESSION_CHARS}"
            ),
        ));
    }
    let tokens = tokenize(src)?;
    let mut parser = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
    };
    if parser.peek() == &Tok::Eof {
        return Err(ParseError::at(
            src,
            parser.span(),
            "empty expression: expected a function call, attribute or constant",
        ));
    }
    let node = parser.expr()?;
    match parser.peek() {
        Tok::Eof => Ok(node),
        Tok::Comma => Err(parser.error_here(
            "unexpected `,` outside a function call: the whole expression must be one value",
        )),
        Tok::RParen => Err(parser.error_here("unmatched `)`")),
        other => {
            let what = other.describe();
            Err(parser.error_here(format!("expected the end of the expression, found {what}")))
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn span(&self) -> Span {
        self.tokens[self.pos.min(self.tokens.len() - 1)].span
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.pos.min(self.tokens.len() - 1)].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, self.span(), message)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!(
                "expression nests more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node, ParseError> {
        self.enter()?;
        let left = self.concat()?;
        let node = if let Tok::Cmp(op) = *self.peek() {
            self.advance();
            let right = self.concat()?;
            if let Tok::Cmp(second) = self.peek() {
                return Err(self.error_here(format!(
                    "comparisons cannot be chained: put parentheses around one side of `{}`",
                    second.symbol()
                )));
            }
            let span = left.span.to(right.span);
            Node::new(
                NodeKind::Compare {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
                span,
            )
        } else {
            left
        };
        self.depth -= 1;
        Ok(node)
    }

    fn concat(&mut self) -> Result<Node, ParseError> {
        let mut left = self.primary()?;
        let depth_before = self.depth;
        while self.peek() == &Tok::Amp {
            // A chain `a & b & c` becomes a left-deep tree; count it as nesting.
            self.enter()?;
            self.advance();
            let right = self.primary()?;
            let span = left.span.to(right.span);
            left = Node::new(NodeKind::Concat(Box::new(left), Box::new(right)), span);
        }
        self.depth = depth_before;
        Ok(left)
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let token = self.advance();
        let span = token.span;
        match token.tok {
            Tok::Str(s) => Ok(Node::new(NodeKind::Str(s), span)),
            Tok::Hex(v) => Ok(Node::new(NodeKind::Hex(v), span)),
            Tok::Attribute(a) => Ok(Node::new(NodeKind::Attribute(a), span)),
            Tok::Digits(d) => self.integer(&d, false, span),
            Tok::Minus => {
                let next = self.advance();
                match next.tok {
                    Tok::Digits(d) => self.integer(&d, true, span.to(next.span)),
                    other => Err(ParseError::at(
                        self.src,
                        next.span,
                        format!("expected a number after `-`, found {}", other.describe()),
                    )),
                }
            }
            Tok::Ident(name) => {
                if self.peek() == &Tok::LParen {
                    self.call(name, span)
                } else {
                    Ok(Node::new(NodeKind::Ident(name), span))
                }
            }
            Tok::LParen => {
                let inner = self.expr()?;
                if self.peek() != &Tok::RParen {
                    let found = self.peek().describe();
                    return Err(self.error_here(format!("expected `)`, found {found}")));
                }
                self.advance();
                Ok(inner)
            }
            other => Err(ParseError::at(
                self.src,
                span,
                format!(
                    "expected a function call, attribute `[name]`, string or number, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn integer(&self, digits: &str, negative: bool, span: Span) -> Result<Node, ParseError> {
        let magnitude: i128 = digits.parse().unwrap_or(i128::MAX);
        let value = if negative { -magnitude } else { magnitude };
        let value = i64::try_from(value).map_err(|_| {
            ParseError::at(self.src, span, "number does not fit in a 64-bit integer")
        })?;
        Ok(Node::new(NodeKind::Int(value), span))
    }

    fn call(&mut self, name: String, name_span: Span) -> Result<Node, ParseError> {
        self.enter()?;
        let open = self.advance();
        let mut args = Vec::new();
        if self.peek() == &Tok::RParen {
            let close = self.advance();
            self.depth -= 1;
            return Ok(Node::new(
                NodeKind::Call { name, args },
                name_span.to(close.span),
            ));
        }
        loop {
            match self.peek() {
                Tok::Comma | Tok::RParen => args.push(None),
                Tok::Eof => {
                    return Err(ParseError::at(
                        self.src,
                        open.span,
                        format!("unclosed `(` of `{name}`: expected `)`"),
                    ));
                }
                _ => args.push(Some(self.expr()?)),
            }
            match self.peek() {
                Tok::Comma => {
                    self.advance();
                }
                Tok::RParen => break,
                Tok::Eof => {
                    return Err(ParseError::at(
                        self.src,
                        open.span,
                        format!("unclosed `(` of `{name}`: expected `)`"),
                    ));
                }
                other => {
                    let found = other.describe();
                    return Err(self.error_here(format!(
                        "expected `,` or `)` after an argument of `{name}`, found {found}"
                    )));
                }
            }
        }
        let close = self.advance();
        self.depth -= 1;
        Ok(Node::new(
            NodeKind::Call { name, args },
            name_span.to(close.span),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Vec<Option<NodeKind>>) -> NodeKind {
        NodeKind::Call {
            name: name.into(),
            args: args
                .into_iter()
                .map(|a| a.map(|k| Node::new(k, Span::default())))
                .collect(),
        }
    }

    #[test]
    fn empty_positional_arguments_are_kept() {
        let node = parse(r#"Replace([mail], "@contoso.com", , ,"", ,)"#).unwrap();
        assert_eq!(
            node.kind,
            call(
                "Replace",
                vec![
                    Some(NodeKind::Attribute("mail".into())),
                    Some(NodeKind::Str("@contoso.com".into())),
                    None,
                    None,
                    Some(NodeKind::Str(String::new())),
                    None,
                    None,
                ]
            )
        );
    }

    #[test]
    fn negative_numbers_hex_and_comparisons() {
        let node = parse(r#"IIF(DateAdd("d", -10, Now()) > &H1F, "a", "b")"#).unwrap();
        let printed = node.to_string();
        assert_eq!(printed, r#"IIF(DateAdd("d", -10, Now()) > &H1F, "a", "b")"#);
        assert_eq!(parse(&printed).unwrap(), node);
    }

    #[test]
    fn multi_line_expressions_parse() {
        let src = "Switch([Active], , \n  \"1\", \"x\",\n  \"0\", \"False\")";
        assert!(parse(src).is_ok());
    }

    #[test]
    fn syntax_errors_say_what_was_expected_and_where() {
        let err = parse("Join(\"@\", [a] \"b\")").unwrap_err();
        assert!(
            err.message.contains("expected `,` or `)`"),
            "{}",
            err.message
        );
        assert_eq!(err.column, 15);
        let err = parse("Join(\"@\", [a]").unwrap_err();
        assert!(err.message.contains("unclosed `(`"));
        assert_eq!(err.column, 5);
        let err = parse("[a] = [b] = [c]").unwrap_err();
        assert!(err.message.contains("chained"));
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(parse("[a], [b]").is_err());
    }

    #[test]
    fn length_and_depth_limits() {
        let long = format!("\"{}\"", "a".repeat(MAX_EXPRESSION_CHARS));
        let err = parse(&long).unwrap_err();
        assert!(err.message.contains("10000"), "{}", err.message);
        let deep = format!("{}[a]{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep).unwrap_err().message.contains("nests"));
        let ok = format!("{}[a]{}", "(".repeat(20), ")".repeat(20));
        assert!(parse(&ok).is_ok());
    }
}
