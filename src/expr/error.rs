//! Parse and evaluation errors, and the caret diagnostic shown to people.

use super::ast::Span;

/// A syntax or type error found before evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct ParseError {
    pub message: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Byte range in the source that the error is about (may be empty at the end).
    pub span: std::ops::Range<usize>,
    /// e.g. the closest known function name for an unknown one.
    pub help: Option<String>,
}

impl ParseError {
    pub(crate) fn at(source: &str, span: Span, message: impl Into<String>) -> ParseError {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let (line, column) = line_column(source, start);
        ParseError {
            message: message.into(),
            line,
            column,
            span: start..end,
            help: None,
        }
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> ParseError {
        self.help = Some(help.into());
        self
    }

    /// A compiler-style diagnostic: the message, the offending line, and carets under the
    /// columns the error is about.
    ///
    /// ```text
    /// error: unknown function `Jion`
    ///  --> line 1, column 1
    ///   |
    /// 1 | Jion("@", [mailNickname], "contoso.com")
    ///   | ^^^^
    ///   = help: did you mean `Join`?
    /// ```
    pub fn render(&self, source: &str) -> String {
        let line_text = source.lines().nth(self.line - 1).unwrap_or("");
        let line_text = line_text.trim_end_matches('\r');
        let line_no = self.line.to_string();
        let gutter = " ".repeat(line_no.len());
        // Width of the marked text, limited to this line, at least one caret.
        let marked: usize = source
            .get(self.span.clone())
            .map(|s| s.lines().next().unwrap_or("").chars().count())
            .unwrap_or(0)
            .max(1);
        let prefix: String = line_text
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let mut out = format!(
            "error: {}\n{gutter}--> line {}, column {}\n{gutter} |\n{line_no} | {line_text}\n{gutter} | {prefix}{}\n",
            self.message,
            self.line,
            self.column,
            "^".repeat(marked)
        );
        if let Some(help) = &self.help {
            out.push_str(&format!("{gutter} = help: {help}\n"));
        }
        out
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// 1-based line and character column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Why an evaluation failed; lets callers tell an escrow apart from a broken expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// An argument had a value the function cannot use (bad date, index out of range, ...).
    InvalidArgument,
    /// `SelectUniqueValue`: every candidate already exists in the target; Entra escrows the
    /// entry.
    NoUniqueValue,
    /// The expression raised it on purpose (Cloud Sync's `Error("...")`).
    Raised,
}

/// A failure at evaluation time (bad argument value, index out of range, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{function}: {message}")]
pub struct EvalError {
    pub function: String,
    pub message: String,
    pub kind: EvalErrorKind,
}

impl EvalError {
    pub(crate) fn invalid(function: &str, message: impl Into<String>) -> EvalError {
        EvalError {
            function: function.to_string(),
            message: message.into(),
            kind: EvalErrorKind::InvalidArgument,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_puts_carets_under_the_span() {
        let src = "Join(\"@\",\n  Jion([a]))";
        let err = ParseError::at(src, Span::new(12, 16), "unknown function `Jion`")
            .with_help("did you mean `Join`?");
        assert_eq!((err.line, err.column), (2, 3));
        assert_eq!(
            err.render(src),
            "error: unknown function `Jion`\n --> line 2, column 3\n  |\n2 |   Jion([a]))\n  |   ^^^^\n  = help: did you mean `Join`?\n"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let src = "Join(\"é\", ?)";
        let err = ParseError::at(src, Span::new(11, 12), "x");
        assert_eq!(err.column, 11);
    }
}
