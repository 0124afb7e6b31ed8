//! `Replace`, whose behaviour depends on which arguments are given, and the .NET-compatible
//! regex helpers it needs (pattern compilation, `$` substitutions).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::{Captures, Regex};

use super::super::value::Value;
use super::{Result, arg, given, map_text};
use crate::expr::error::EvalError;

const SOURCE: usize = 0;
const OLD_VALUE: usize = 1;
const REGEX_PATTERN: usize = 2;
const REGEX_GROUP_NAME: usize = 3;
const REPLACEMENT_VALUE: usize = 4;
const REPLACEMENT_ATTRIBUTE: usize = 5;
const TEMPLATE: usize = 6;

/// The documented modes, chosen by which arguments are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// oldValue + replacementValue: replace every occurrence in source.
    OldValue,
    /// oldValue + template: replace every occurrence of oldValue in template by source.
    Template,
    /// regexPattern + replacementValue (may use `${group}`).
    Regex,
    /// regexPattern + regexGroupName + replacementValue: replace the group's matches.
    RegexGroup,
    /// regexPattern + regexGroupName + replacementAttributeName: source if it has a value,
    /// else the group's match in the replacement attribute.
    RegexFromAttribute,
}

impl Mode {
    pub fn from_presence(given: &dyn Fn(usize) -> bool) -> Option<Mode> {
        if given(OLD_VALUE) {
            if given(REPLACEMENT_VALUE) {
                Some(Mode::OldValue)
            } else if given(TEMPLATE) {
                Some(Mode::Template)
            } else {
                None
            }
        } else if given(REGEX_PATTERN) {
            if given(REGEX_GROUP_NAME) && given(REPLACEMENT_ATTRIBUTE) {
                Some(Mode::RegexFromAttribute)
            } else if given(REGEX_GROUP_NAME) && given(REPLACEMENT_VALUE) {
                Some(Mode::RegexGroup)
            } else if given(REPLACEMENT_VALUE) {
                Some(Mode::Regex)
            } else {
                None
            }
        } else {
            None
        }
    }
}

/// Compiles a .NET pattern. The syntax Entra's examples use (classes, named groups
/// `(?<name>…)`, anchors, quantifiers) is shared; .NET-only features such as lookaround and
/// backreferences are reported as errors.
pub fn compile_regex(pattern: &str) -> std::result::Result<Regex, String> {
    Regex::new(pattern).map_err(|e| match e {
        regex::Error::Syntax(msg) => msg
            .lines()
            .last()
            .unwrap_or("invalid pattern")
            .trim_start_matches("error: ")
            .to_string(),
        other => other.to_string(),
    })
}

/// Compiled patterns by source text: a mapping evaluates the same pattern for every user,
/// and compiling dominates the cost of a regex Replace. Bounded; cleared when full.
fn cached_regex(pattern: &str) -> std::result::Result<Regex, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    const CAPACITY: usize = 256;
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
    let mut map = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(re) = map.get(pattern) {
        return Ok(re.clone());
    }
    let re = compile_regex(pattern)?;
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(pattern.to_string(), re.clone());
    Ok(re)
}

fn regex_arg(args: &[Option<Value>]) -> Result<Regex> {
    let pattern = arg(args, REGEX_PATTERN).text_or_empty();
    cached_regex(&pattern)
        .map_err(|e| EvalError::invalid("Replace", format!("invalid regexPattern: {e}")))
}

pub fn replace(args: &[Option<Value>]) -> Result<Value> {
    let present = |i: usize| given(args, i);
    let Some(mode) = Mode::from_presence(&present) else {
        return Err(EvalError::invalid(
            "Replace",
            "needs oldValue with replacementValue or template, or regexPattern with replacementValue or replacementAttributeName",
        ));
    };
    let text_of = |i: usize| arg(args, i).text_or_empty().into_owned();
    match mode {
        Mode::OldValue => {
            let old = text_of(OLD_VALUE);
            let new = text_of(REPLACEMENT_VALUE);
            map_text(arg(args, SOURCE), &mut |s| {
                Ok(Value::String(if old.is_empty() {
                    s.to_string()
                } else {
                    s.replace(&old, &new)
                }))
            })
        }
        Mode::Template => {
            let old = text_of(OLD_VALUE);
            let template = text_of(TEMPLATE);
            map_text(arg(args, SOURCE), &mut |s| {
                Ok(Value::String(if old.is_empty() {
                    template.clone()
                } else {
                    template.replace(&old, s)
                }))
            })
        }
        Mode::Regex => {
            let re = regex_arg(args)?;
            let replacement = text_of(REPLACEMENT_VALUE);
            map_text(arg(args, SOURCE), &mut |s| {
                Ok(Value::String(
                    re.replace_all(s, |caps: &Captures<'_>| {
                        expand_dotnet(&re, caps, &replacement, s)
                    })
                    .into_owned(),
                ))
            })
        }
        Mode::RegexGroup => {
            let re = regex_arg(args)?;
            let group = text_of(REGEX_GROUP_NAME);
            let replacement = text_of(REPLACEMENT_VALUE);
            map_text(arg(args, SOURCE), &mut |s| {
                Ok(Value::String(replace_group(&re, &group, &replacement, s)))
            })
        }
        Mode::RegexFromAttribute => {
            let source = arg(args, SOURCE);
            if !source.is_null_or_empty() {
                return Ok(source.clone());
            }
            let re = regex_arg(args)?;
            let group = text_of(REGEX_GROUP_NAME);
            let Some(fallback) = arg(args, REPLACEMENT_ATTRIBUTE).text() else {
                return Ok(Value::Null);
            };
            Ok(re
                .captures(&fallback)
                .and_then(|caps| group_match(&caps, &group))
                .map_or(Value::Null, |m| Value::String(m.to_string())))
        }
    }
}

fn group_match<'h>(caps: &Captures<'h>, group: &str) -> Option<&'h str> {
    match group.parse::<usize>() {
        Ok(i) => caps.get(i),
        Err(_) => caps.name(group),
    }
    .map(|m| m.as_str())
}

/// Replaces only the text matched by `group` in every match, keeping the rest.
fn replace_group(re: &Regex, group: &str, replacement: &str, s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let m = match group.parse::<usize>() {
            Ok(i) => caps.get(i),
            Err(_) => caps.name(group),
        };
        if let Some(m) = m
            && m.start() >= last
        {
            out.push_str(&s[last..m.start()]);
            out.push_str(replacement);
            last = m.end();
        }
    }
    out.push_str(&s[last..]);
    out
}

/// .NET substitutions: `$n`, `${name}`, `$$`, `$&`, `` $` ``, `$'`, `$+`, `$_`. A `$` that
/// starts none of these is literal, as in .NET.
fn expand_dotnet(re: &Regex, caps: &Captures<'_>, replacement: &str, input: &str) -> String {
    let mut out = String::new();
    let mut rest = replacement;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let whole = caps.get(0).map_or(0..0, |m| m.range());
        let mut consumed = 1;
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                consumed = 2;
            }
            Some('&') => {
                out.push_str(&input[whole.clone()]);
                consumed = 2;
            }
            Some('`') => {
                out.push_str(&input[..whole.start]);
                consumed = 2;
            }
            Some('\'') => {
                out.push_str(&input[whole.end..]);
                consumed = 2;
            }
            Some('_') => {
                out.push_str(input);
                consumed = 2;
            }
            Some('+') => {
                let last = (1..caps.len()).rev().find_map(|i| caps.get(i));
                out.push_str(last.map_or("", |m| m.as_str()));
                consumed = 2;
            }
            Some('{') => match after.find('}') {
                Some(close) => {
                    let name = &after[1..close];
                    let known = match name.parse::<usize>() {
                        Ok(i) => i < caps.len(),
                        Err(_) => re.capture_names().flatten().any(|n| n == name),
                    };
                    if known {
                        out.push_str(group_match(caps, name).unwrap_or(""));
                        consumed = close + 2;
                    } else {
                        out.push('$');
                    }
                }
                None => out.push('$'),
            },
            Some(c) if c.is_ascii_digit() => {
                // Longest run of digits that names an existing group.
                let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
                let mut taken = None;
                for len in (1..=digits.len()).rev() {
                    if let Ok(i) = digits[..len].parse::<usize>()
                        && i < caps.len()
                    {
                        taken = Some((i, len));
                        break;
                    }
                }
                match taken {
                    Some((i, len)) => {
                        out.push_str(caps.get(i).map_or("", |m| m.as_str()));
                        consumed = len + 1;
                    }
                    None => out.push('$'),
                }
            }
            _ => out.push('$'),
        }
        rest = &rest[(pos + consumed).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<Value> {
        Some(Value::String(v.into()))
    }
    fn st(v: &str) -> Value {
        Value::String(v.into())
    }
    fn run(args: Vec<Option<Value>>) -> Value {
        replace(&args).unwrap()
    }

    #[test]
    fn old_value_and_template_modes() {
        assert_eq!(
            run(vec![
                s("Senior Product Developer"),
                s("Product Developer"),
                None,
                None,
                s("Software Engineer"),
                None,
                None
            ]),
            st("Senior Software Engineer")
        );
        assert_eq!(
            run(vec![s("ABCabc"), s("abc"), None, None, s("X"), None, None]),
            st("ABCX")
        );
        assert_eq!(
            run(vec![
                s("jsmith"),
                s("<username>"),
                None,
                None,
                None,
                None,
                s("<username>@contoso.com")
            ]),
            st("jsmith@contoso.com")
        );
    }

    #[test]
    fn regex_modes() {
        let phone = r"\+(?<isdCode>\d* )(?<phoneNumber>\d{10})";
        assert_eq!(
            run(vec![
                s("+91 9998887777"),
                None,
                s(phone),
                None,
                s("${phoneNumber}"),
                None,
                None
            ]),
            st("9998887777")
        );
        assert_eq!(
            run(vec![
                s("+1 (999) 888-7777"),
                None,
                s(r"[()\s-]+"),
                None,
                s(""),
                None,
                None
            ]),
            st("+19998887777")
        );
        assert_eq!(
            run(vec![
                s("545 Tremont Street"),
                None,
                s(r"(?<streetNumber>^\d*)"),
                s("streetNumber"),
                s("888"),
                None,
                None
            ]),
            st("888 Tremont Street")
        );
        assert_eq!(
            run(vec![
                s("jsmith@contoso.com"),
                None,
                s("(?<Suffix>@(.)*)"),
                s("Suffix"),
                s(""),
                None,
                None
            ]),
            st("jsmith")
        );
        assert_eq!(
            run(vec![
                s(""),
                None,
                s(phone),
                s("phoneNumber"),
                None,
                s("+91 8887779999"),
                None
            ]),
            st("8887779999")
        );
        assert_eq!(
            run(vec![
                s("+1 5550001111"),
                None,
                s(phone),
                s("phoneNumber"),
                None,
                s("+91 8887779999"),
                None
            ]),
            st("+1 5550001111")
        );
        assert_eq!(
            run(vec![
                s("john_doe72"),
                None,
                s("[a-zA-Z_]*"),
                None,
                s(""),
                None,
                None
            ]),
            st("72")
        );
    }

    #[test]
    fn dotnet_substitutions() {
        assert_eq!(
            run(vec![
                s("ab"),
                None,
                s("(a)(b)"),
                None,
                s("$2$1-$$-$&-$3-${x}"),
                None,
                None
            ]),
            st("ba-$-ab-$3-${x}")
        );
    }

    #[test]
    fn null_source_stays_null() {
        assert_eq!(
            run(vec![
                Some(Value::Null),
                s("a"),
                None,
                None,
                s("b"),
                None,
                None
            ]),
            Value::Null
        );
    }
}
