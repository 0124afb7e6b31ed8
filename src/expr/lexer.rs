//! Tokens of Entra's expression syntax: string constants with backslash escapes,
//! `[attribute]` references, integers, VBA `&H` hex literals, names and punctuation.

use super::ast::{CmpOp, Span};
use super::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Str(String),
    /// Digits only; the sign is a separate `Minus` token.
    Digits(String),
    Hex(i64),
    Attribute(String),
    Ident(String),
    LParen,
    RParen,
    Comma,
    Minus,
    Amp,
    Cmp(CmpOp),
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Str(_) => "a string".into(),
            Tok::Digits(d) => format!("number `{d}`"),
            Tok::Hex(_) => "a hex number".into(),
            Tok::Attribute(a) => format!("attribute `[{a}]`"),
            Tok::Ident(name) => format!("`{name}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Amp => "`&`".into(),
            Tok::Cmp(op) => format!("`{}`", op.symbol()),
            Tok::Eof => "the end of the expression".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, skip: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(skip)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.tokens.push(Token {
            tok,
            span: Span::new(start, self.pos),
        });
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                c if c.is_whitespace() => {
                    self.bump();
                }
                '"' => self.string(start)?,
                '[' => self.attribute(start)?,
                '0'..='9' => {
                    while matches!(self.peek(), Some('0'..='9')) {
                        self.bump();
                    }
                    if self.peek() == Some('.') && matches!(self.peek_at(1), Some('0'..='9')) {
                        return Err(ParseError::at(
                            self.src,
                            Span::new(start, self.pos + 1),
                            "decimal numbers are not supported: use whole numbers or a string",
                        ));
                    }
                    let digits = self.src[start..self.pos].to_string();
                    self.push(Tok::Digits(digits), start);
                }
                '&' => {
                    self.bump();
                    if matches!(self.peek(), Some('H' | 'h'))
                        && self.peek_at(1).is_some_and(|c| c.is_ascii_hexdigit())
                    {
                        self.bump();
                        let digits_start = self.pos;
                        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                            self.bump();
                        }
                        let digits = &self.src[digits_start..self.pos];
                        let value = i64::from_str_radix(digits, 16).map_err(|_| {
                            ParseError::at(
                                self.src,
                                Span::new(start, self.pos),
                                "hex number is too large (at most &H7FFFFFFFFFFFFFFF)",
                            )
                        })?;
                        self.push(Tok::Hex(value), start);
                    } else {
                        self.push(Tok::Amp, start);
                    }
                }
                'A'..='Z' | 'a'..='z' | '_' => {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.bump();
                    }
                    let name = self.src[start..self.pos].to_string();
                    self.push(Tok::Ident(name), start);
                }
                '(' | ')' | ',' | '-' | '=' => {
                    self.bump();
                    let tok = match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        '-' => Tok::Minus,
                        _ => Tok::Cmp(CmpOp::Eq),
                    };
                    self.push(tok, start);
                }
                '<' | '>' => {
                    self.bump();
                    let op = match (c, self.peek()) {
                        ('<', Some('>')) => Some(CmpOp::Ne),
                        ('<', Some('=')) => Some(CmpOp::Le),
                        ('>', Some('=')) => Some(CmpOp::Ge),
                        _ => None,
                    };
                    let op = match op {
                        Some(op) => {
                            self.bump();
                            op
                        }
                        None if c == '<' => CmpOp::Lt,
                        None => CmpOp::Gt,
                    };
                    self.push(Tok::Cmp(op), start);
                }
                '!' if self.peek_at(1) == Some('=') => {
                    return Err(ParseError::at(
                        self.src,
                        Span::new(start, start + 2),
                        "unexpected `!=`: the not-equal operator is `<>`",
                    ));
                }
                other => {
                    let hint = match other {
                        '\u{201C}' | '\u{201D}' => {
                            ": curly quotes are not string delimiters, use straight quotes `\"`"
                        }
                        '\'' => ": string constants use double quotes `\"`",
                        _ => "",
                    };
                    return Err(ParseError::at(
                        self.src,
                        Span::new(start, start + other.len_utf8()),
                        format!("unexpected character `{other}`{hint}"),
                    ));
                }
            }
        }
        let end = self.src.len();
        self.tokens.push(Token {
            tok: Tok::Eof,
            span: Span::new(end, end),
        });
        Ok(())
    }

    /// `"..."` where `\"` is a quote and `\\` a backslash; any other backslash is kept
    /// as written, so regex patterns like `"\d"` still mean what their author intended.
    fn string(&mut self, start: usize) -> Result<(), ParseError> {
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(ParseError::at(
                        self.src,
                        Span::new(start, start + 1),
                        "unterminated string: expected a closing `\"`",
                    ));
                }
                Some('"') => break,
                Some('\\') => match self.peek() {
                    Some(c @ ('"' | '\\')) => {
                        self.bump();
                        text.push(c);
                    }
                    _ => text.push('\\'),
                },
                Some(c) => text.push(c),
            }
        }
        self.push(Tok::Str(text), start);
        Ok(())
    }

    fn attribute(&mut self, start: usize) -> Result<(), ParseError> {
        self.bump();
        let name_start = self.pos;
        loop {
            match self.peek() {
                Some(']') => break,
                Some('[' | '\n' | '"' | '(' | ')' | ',') | None => {
                    return Err(ParseError::at(
                        self.src,
                        Span::new(start, self.pos.max(start + 1)),
                        "unterminated attribute reference: expected `]`",
                    ));
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
        let name = self.src[name_start..self.pos].trim().to_string();
        self.bump();
        if name.is_empty() {
            return Err(ParseError::at(
                self.src,
                Span::new(start, self.pos),
                "empty attribute reference `[]`: expected an attribute name",
            ));
        }
        self.push(Tok::Attribute(name), start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_resolve_entra_escapes() {
        assert_eq!(
            toks(r#""Company name: \"Contoso\"" "a\\b" "\d""#),
            vec![
                Tok::Str("Company name: \"Contoso\"".into()),
                Tok::Str("a\\b".into()),
                Tok::Str("\\d".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn hex_operators_and_attributes() {
        assert_eq!(
            toks("BitAnd(&HF, &hF7) [a b] <> <= >= & -1"),
            vec![
                Tok::Ident("BitAnd".into()),
                Tok::LParen,
                Tok::Hex(15),
                Tok::Comma,
                Tok::Hex(0xF7),
                Tok::RParen,
                Tok::Attribute("a b".into()),
                Tok::Cmp(CmpOp::Ne),
                Tok::Cmp(CmpOp::Le),
                Tok::Cmp(CmpOp::Ge),
                Tok::Amp,
                Tok::Minus,
                Tok::Digits("1".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = tokenize("Join(\"a, [b])").unwrap_err();
        assert_eq!((err.line, err.column), (1, 6));
        let err = tokenize("Join([mail, \"x\")").unwrap_err();
        assert!(err.message.contains("expected `]`"), "{}", err.message);
        let err = tokenize("IIF([a] != \"b\")").unwrap_err();
        assert!(err.message.contains("<>"));
    }
}
