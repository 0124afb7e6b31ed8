//! A YAML document as a tree that remembers where every node and key came from, so every
//! problem can be reported at its line and column, and several problems per document can be
//! found (serde stops at the first).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Keys in file order with their own positions.
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub pos: Pos,
    pub name: String,
}

impl Node {
    /// The value under `key` of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key of `key` in a mapping node (to point at a key rather than its value).
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(k, _)| k.pos),
            _ => None,
        }
    }

    /// The node at a path of keys and sequence indices, if it exists.
    pub fn find(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, seg| match &node.value {
            Value::Map(_) => node.get(seg),
            Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }

    /// Follows a path of keys and sequence indices (`["spec", "mappings", "2", "target"]`),
    /// returning the deepest node reached and whether the whole path exists.
    pub fn locate(&self, path: &[&str]) -> (Pos, bool) {
        let mut node = self;
        for seg in path {
            let next = match &node.value {
                Value::Map(_) => node.get(seg),
                Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return (node.pos, false),
            }
        }
        (node.pos, true)
    }

    /// The node as JSON (for typed deserialization once the structure is known to be right).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short name of the node's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// What serde-saphyr builds; converted to [`Node`] right away.
struct Raw(Value);

struct RawVisitor;

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos {
        line: s.referenced.line(),
        column: s.referenced.column(),
    }
}

fn node(s: Spanned<Raw>) -> Node {
    Node {
        pos: pos(&s),
        value: s.value.0,
    }
}

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw(Value::Int(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        Ok(Raw(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(v as f64),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw(Value::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw(Value::String(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(node(item));
        }
        Ok(Raw(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Spanned<Raw>>()?;
            entries.push((
                Key {
                    pos: pos(&key),
                    name: key.value.0,
                },
                node(value),
            ));
        }
        Ok(Raw(Value::Map(entries)))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// A mapping key as text (`1: x` becomes the key `"1"`).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        let raw = Raw::deserialize(d)?;
        Ok(KeyText(match raw.0 {
            Value::String(s) => s,
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_owned(),
            Value::Seq(_) | Value::Map(_) => "<complex key>".to_owned(),
        }))
    }
}

/// A YAML syntax (or resource budget) error.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

/// Parses every document of a YAML stream (documents separated by `---`). Empty documents are
/// skipped. Tags other than YAML's own (`!custom`) are refused: a pair file is plain data, and a
/// tag that was silently dropped would make the file mean something other than it says.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.reject_unsupported_tags = true;
    options.reject_tagged_field_names = true;
    match serde_saphyr::from_multiple_with_options::<Spanned<Raw>>(text, options) {
        Ok(docs) => Ok(docs.into_iter().map(node).collect()),
        Err(err) => {
            let pos = err
                .location()
                .map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                })
                .unwrap_or(Pos { line: 1, column: 1 });
            let message = err.without_snippet().to_string();
            let message = tidy_message(message.lines().next().unwrap_or("invalid YAML"));
            Err(explain(text, pos, message))
        }
    }
}

/// Adds a hint to the parser's message and, for an unclosed `{` or `[`, moves the position
/// from where the parser gave up (the next line, or later) to the bracket itself.
fn explain(text: &str, pos: Pos, message: String) -> SyntaxError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("tag") {
        return SyntaxError {
            pos,
            message,
            hint: Some(
                "remove the tag (`!name`): pair files are plain YAML data, without custom tags"
                    .into(),
            ),
        };
    }
    // The parser names the flow collection, or trips over the next line's `key:` inside it.
    let flow = lower.contains("flow mapping") || lower.contains("flow sequence");
    if let Some((open, at)) = unclosed_bracket(text, pos)
        && (flow || at.line < pos.line)
    {
        let close = if open == '{' { '}' } else { ']' };
        return SyntaxError {
            pos: at,
            message: format!(
                "this `{open}` is not closed (the parser gave up at line {}, column {}: {message})",
                pos.line, pos.column
            ),
            hint: Some(format!(
                "add the missing `{close}` on this line, or write the value in block style"
            )),
        };
    }
    SyntaxError {
        pos,
        message,
        hint: None,
    }
}

/// The innermost `{` or `[` still open when the scan reaches `until`, skipping quoted text and
/// comments. A plain scalar may hold a bracket, so this is used only when the parser itself
/// says a flow collection is unfinished.
fn unclosed_bracket(text: &str, until: Pos) -> Option<(char, Pos)> {
    let mut stack: Vec<(char, Pos)> = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        let line_no = line_idx as u64 + 1;
        if line_no > until.line {
            break;
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        let mut chars = line.chars().enumerate().peekable();
        while let Some((col_idx, c)) = chars.next() {
            let column = col_idx as u64 + 1;
            if line_no == until.line && column >= until.column {
                break;
            }
            match quote {
                Some('\'') if c == '\'' => {
                    // '' is an escaped quote inside a single-quoted scalar.
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '\'' | '"' => quote = Some(c),
                    '#' if prev.is_whitespace() => break,
                    '{' | '[' => stack.push((
                        c,
                        Pos {
                            line: line_no,
                            column,
                        },
                    )),
                    '}' | ']' => {
                        stack.pop();
                    }
                    _ => {}
                },
            }
            prev = c;
        }
    }
    stack.pop()
}

/// Drops the parser's own position suffix (we print the position in front) and its advice
/// about parser options, which users cannot set.
fn tidy_message(message: &str) -> String {
    let mut m = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    if let Some(idx) = m.rfind(" at line ") {
        let tail = &m[idx + " at line ".len()..];
        if tail.contains(", column ")
            && tail
                .chars()
                .all(|c| c.is_ascii_digit() || ", column".contains(c))
        {
            m.truncate(idx);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_nodes_and_later_documents() {
        let docs = parse_documents("a: 1\nb:\n  - x\n  - {c: yes}\n---\nz: 2.5\n").unwrap();
        assert_eq!(docs.len(), 2);
        let a = &docs[0];
        assert_eq!(a.get("a").unwrap().pos, Pos { line: 1, column: 4 });
        assert_eq!(
            a.locate(&["b", "1", "c"]),
            (Pos { line: 4, column: 9 }, true)
        );
        assert_eq!(a.key_pos("b"), Some(Pos { line: 2, column: 1 }));
        assert_eq!(docs[1].get("z").unwrap().pos, Pos { line: 6, column: 4 });
        assert_eq!(docs[1].get("z").unwrap().value, Value::Float(2.5));
        assert_eq!(a.locate(&["b", "9"]), (Pos { line: 3, column: 3 }, false));
    }

    #[test]
    fn an_unclosed_brace_is_reported_on_its_own_line() {
        let text = "a: 1\nb: { c: 'x }', d: \"{\" # {\nc: 3\n";
        let err = parse_documents(text).unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, column: 4 }, "{err:?}");
        assert!(err.message.contains("`{` is not closed"), "{err:?}");
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, column: 4 }, "{err:?}");
    }

    #[test]
    fn custom_tags_are_refused() {
        let err = parse_documents("kind: !custom SyncPair\n").unwrap_err();
        assert_eq!(err.pos.line, 1, "{err:?}");
        assert!(err.hint.as_deref().unwrap_or("").contains("tag"), "{err:?}");
        // YAML's own tags are plain data.
        assert!(parse_documents("a: !!str 1\n").is_ok());
    }

    #[test]
    fn syntax_and_duplicate_key_errors_have_positions() {
        let err = parse_documents("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(err.pos.line >= 2, "{err:?}");
        let err = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2, "{err:?}");
    }
}
