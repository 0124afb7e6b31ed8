//! String functions. Null in, null out, except where Entra documents otherwise (`Left` and
//! `Word` return `""` for a null string). Positions and lengths count characters.

use base64::Engine;

use super::super::diacritics;
use super::super::value::Value;
use super::{Result, arg, given, int_arg, map_text};
use crate::expr::error::EvalError;

fn text(v: &str) -> Result<Value> {
    Ok(Value::String(v.to_string()))
}

pub fn append(args: &[Option<Value>]) -> Result<Value> {
    let suffix = arg(args, 1).text_or_empty().into_owned();
    map_text(arg(args, 0), &mut |s| {
        Ok(Value::String(format!("{s}{suffix}")))
    })
}

/// Base64 of the UTF-16LE bytes (.NET `Encoding.Unicode`), as Entra documents.
pub fn convert_to_base64(args: &[Option<Value>]) -> Result<Value> {
    map_text(arg(args, 0), &mut |s| {
        let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        text(&base64::engine::general_purpose::STANDARD.encode(bytes))
    })
}

pub fn convert_to_utf8_hex(args: &[Option<Value>]) -> Result<Value> {
    map_text(arg(args, 0), &mut |s| {
        text(&s.bytes().map(|b| format!("{b:02X}")).collect::<String>())
    })
}

/// Cloud Sync's inverse of ConvertToBase64; the encoding defaults to UTF-16LE (`Unicode`).
pub fn convert_from_base64(args: &[Option<Value>]) -> Result<Value> {
    let encoding = arg(args, 1).text_or_empty().to_ascii_lowercase();
    map_text(arg(args, 0), &mut |s| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| EvalError::invalid("ConvertFromBase64", format!("invalid base64: {e}")))?;
        let decoded = match encoding.as_str() {
            "utf8" | "utf-8" | "ascii" | "default" => String::from_utf8(bytes).ok(),
            "" | "unicode" | "utf16" | "utf-16" => utf16(&bytes, u16::from_le_bytes),
            "bigendianunicode" => utf16(&bytes, u16::from_be_bytes),
            other => {
                return Err(EvalError::invalid(
                    "ConvertFromBase64",
                    format!("unsupported encoding \"{other}\""),
                ));
            }
        };
        decoded.map(Value::String).ok_or_else(|| {
            EvalError::invalid("ConvertFromBase64", "decoded bytes are not valid text")
        })
    })
}

fn utf16(bytes: &[u8], read: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| read([c[0], c[1]])).collect();
    String::from_utf16(&units).ok()
}

pub fn cstr(args: &[Option<Value>]) -> Result<Value> {
    map_text(arg(args, 0), &mut text)
}

/// VBA `InStr`: 1-based position of the first occurrence at or after `start`, 0 when absent.
pub fn instr(args: &[Option<Value>]) -> Result<Value> {
    let haystack = arg(args, 0);
    let needle = arg(args, 1);
    if haystack.is_null() || needle.is_null() {
        return Ok(Value::Null);
    }
    let start = int_arg("InStr", "start", args, 2)?.unwrap_or(1);
    if start < 1 {
        return Err(EvalError::invalid("InStr", "start must be 1 or more"));
    }
    let text_compare = compare_is_text(arg(args, 3));
    let fold = |s: &str| -> Vec<char> {
        if text_compare {
            s.chars().map(simple_lower).collect()
        } else {
            s.chars().collect()
        }
    };
    let hay = fold(&haystack.text_or_empty());
    let pat = fold(&needle.text_or_empty());
    let from = usize::try_from(start - 1).unwrap_or(usize::MAX);
    if from > hay.len() {
        return Ok(Value::Int(0));
    }
    if pat.is_empty() {
        return Ok(Value::Int(start));
    }
    let found = hay[from..]
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .map_or(0, |p| (p + from + 1) as i64);
    Ok(Value::Int(found))
}

/// `vbTextCompare` (or 1) compares case-insensitively; anything else is binary.
pub(super) fn compare_is_text(v: &Value) -> bool {
    match v {
        Value::Int(i) => *i == 1,
        other => other
            .text()
            .is_some_and(|t| t.eq_ignore_ascii_case("vbTextCompare") || t.trim() == "1"),
    }
}

pub fn left(args: &[Option<Value>]) -> Result<Value> {
    let n = int_arg("Left", "numChars", args, 1)?.unwrap_or(0);
    let source = arg(args, 0);
    if source.is_null() {
        return text("");
    }
    map_text(source, &mut |s| {
        if n < 0 {
            text(s)
        } else {
            text(&s.chars().take(n as usize).collect::<String>())
        }
    })
}

pub fn mid(args: &[Option<Value>]) -> Result<Value> {
    let start = int_arg("Mid", "start", args, 1)?.unwrap_or(1);
    let length = int_arg("Mid", "length", args, 2)?;
    if start < 1 {
        return Err(EvalError::invalid("Mid", "start must be 1 or more"));
    }
    if length.is_some_and(|l| l < 0) {
        return Err(EvalError::invalid("Mid", "length must not be negative"));
    }
    map_text(arg(args, 0), &mut |s| {
        let skipped = s.chars().skip((start - 1) as usize);
        text(&match length {
            Some(l) => skipped.take(l as usize).collect::<String>(),
            None => skipped.collect(),
        })
    })
}

pub fn normalize_diacritics(args: &[Option<Value>]) -> Result<Value> {
    map_text(arg(args, 0), &mut |s| text(&diacritics::normalize(s)))
}

pub fn strip_spaces(args: &[Option<Value>]) -> Result<Value> {
    map_text(arg(args, 0), &mut |s| text(&s.replace(' ', "")))
}

pub fn trim(args: &[Option<Value>]) -> Result<Value> {
    map_text(arg(args, 0), &mut |s| text(s.trim()))
}

/// Turkish and Azerbaijani dotted/dotless i; every other culture uses invariant casing.
fn is_turkic(culture: &Value) -> bool {
    culture.text().is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c == "tr" || c == "az" || c.starts_with("tr-") || c.starts_with("az-")
    })
}

/// .NET casing maps one UTF-16 unit to one: where Unicode's full mapping would change the
/// length (`ß` → `SS`, `İ` → `i̇`), the simple mapping applies.
fn simple_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn simple_upper(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

pub fn to_lower(args: &[Option<Value>]) -> Result<Value> {
    let turkic = is_turkic(arg(args, 1));
    map_text(arg(args, 0), &mut |s| {
        text(
            &s.chars()
                .map(|c| match c {
                    'I' if turkic => 'ı',
                    c => simple_lower(c),
                })
                .collect::<String>(),
        )
    })
}

pub fn to_upper(args: &[Option<Value>]) -> Result<Value> {
    let turkic = is_turkic(arg(args, 1));
    map_text(arg(args, 0), &mut |s| {
        text(
            &s.chars()
                .map(|c| match c {
                    'i' if turkic => 'İ',
                    c => simple_upper(c),
                })
                .collect::<String>(),
        )
    })
}

/// Word(String, WordNumber, Delimiters): words are the non-empty runs between any of the
/// delimiter characters.
pub fn word(args: &[Option<Value>]) -> Result<Value> {
    let number = int_arg("Word", "wordNumber", args, 1)?.unwrap_or(0);
    let delimiters: Vec<char> = arg(args, 2).text_or_empty().chars().collect();
    let source = arg(args, 0);
    if source.is_null() || number < 1 {
        return text("");
    }
    map_text(source, &mut |s| {
        let word = s
            .split(|c| delimiters.contains(&c))
            .filter(|w| !w.is_empty())
            .nth((number - 1) as usize)
            .unwrap_or("");
        text(word)
    })
}

/// PCase: with separators, every run between the given characters becomes "Xxxx"; without,
/// .NET `TextInfo.ToTitleCase` on the lower-cased string (so all-caps words are not kept as
/// acronyms, matching Entra's documented "PABLO GONSALVES (SECOND)" → "Pablo Gonsalves
/// (Second)").
pub fn pcase(args: &[Option<Value>]) -> Result<Value> {
    let separators: Option<Vec<char>> =
        given(args, 1).then(|| arg(args, 1).text_or_empty().chars().collect());
    map_text(arg(args, 0), &mut |s| {
        text(&match &separators {
            Some(seps) => pcase_with(s, seps),
            None => to_title_case(s),
        })
    })
}

fn pcase_with(s: &str, separators: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word_start = true;
    for c in s.chars() {
        if separators.contains(&c) {
            out.push(c);
            word_start = true;
        } else if word_start {
            out.push(simple_upper(c));
            word_start = false;
        } else {
            out.push(simple_lower(c));
        }
    }
    out
}

fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A
        | 0x064B..=0x065F | 0x0E31..=0x0E3A | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// The Unicode categories `ToTitleCase` treats as word separators: whitespace, controls,
/// format characters, punctuation and symbols. Letters, marks and numbers continue a word.
fn is_title_separator(c: char) -> bool {
    !(c.is_alphanumeric() || is_combining_mark(c) || c == '\'')
}

fn to_title_case(s: &str) -> String {
    let lower: Vec<char> = s.chars().map(simple_lower).collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < lower.len() {
        let c = lower[i];
        if c.is_alphabetic() {
            out.push(simple_upper(c));
            i += 1;
            while i < lower.len() && !is_title_separator(lower[i]) {
                out.push(lower[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<Value> {
        Some(Value::String(v.into()))
    }
    fn i(v: i64) -> Option<Value> {
        Some(Value::Int(v))
    }
    fn out(r: Result<Value>) -> Value {
        r.unwrap()
    }
    fn st(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn append_and_null() {
        assert_eq!(out(append(&[s("a"), s(".test")])), st("a.test"));
        assert_eq!(out(append(&[Some(Value::Null), s("x")])), Value::Null);
    }

    #[test]
    fn encodings() {
        assert_eq!(
            out(convert_to_base64(&[s("Hello world!")])),
            st("SABlAGwAbABvACAAdwBvAHIAbABkACEA")
        );
        assert_eq!(
            out(convert_to_utf8_hex(&[s("Hello world!")])),
            st("48656C6C6F20776F726C6421")
        );
        assert_eq!(
            out(convert_from_base64(&[s(
                "SABlAGwAbABvACAAdwBvAHIAbABkACEA"
            )])),
            st("Hello world!")
        );
        assert_eq!(
            out(convert_from_base64(&[s("SGVsbG8gd29ybGQh"), s("UTF8")])),
            st("Hello world!")
        );
        assert!(convert_from_base64(&[s("***")]).is_err());
    }

    #[test]
    fn instr_positions() {
        assert_eq!(
            out(instr(&[s("The quick brown fox"), s("quick")])),
            Value::Int(5)
        );
        assert_eq!(
            out(instr(&[s("The quick brown fox"), s("slow")])),
            Value::Int(0)
        );
        assert_eq!(
            out(instr(&[s("repEated"), s("e"), i(3), s("vbBinaryCompare")])),
            Value::Int(7)
        );
        assert_eq!(
            out(instr(&[s("repEated"), s("e"), i(3), s("vbTextCompare")])),
            Value::Int(4)
        );
        assert!(instr(&[s("a"), s("a"), i(0)]).is_err());
    }

    #[test]
    fn left_mid_word() {
        assert_eq!(out(left(&[s("John Doe"), i(3)])), st("Joh"));
        assert_eq!(out(left(&[s("John"), i(-1)])), st("John"));
        assert_eq!(out(left(&[s("John"), i(0)])), st(""));
        assert_eq!(out(left(&[Some(Value::Null), i(3)])), st(""));
        assert_eq!(
            out(mid(&[s("johns@contoso.com"), i(1), i(8)])),
            st("johns@co")
        );
        assert_eq!(out(mid(&[s("abc"), i(2), i(10)])), st("bc"));
        assert_eq!(out(mid(&[s("abc"), i(5), i(1)])), st(""));
        assert_eq!(out(mid(&[s("SMTP:a@b"), i(6)])), st("a@b"));
        assert_eq!(
            out(word(&[s("The quick brown fox"), i(3), s(" ")])),
            st("brown")
        );
        assert_eq!(
            out(word(&[
                s("This,string!has&many separators"),
                i(3),
                s(",!&#")
            ])),
            st("has")
        );
        assert_eq!(out(word(&[s("a b"), i(5), s(" ")])), st(""));
    }

    #[test]
    fn casing() {
        assert_eq!(out(to_upper(&[s("straße")])), st("STRAßE"));
        assert_eq!(out(to_lower(&[s("İI")])), st("ii"));
        assert_eq!(out(to_lower(&[s("İI"), s("tr-TR")])), st("iı"));
        assert_eq!(out(to_upper(&[s("i"), s("tr-TR")])), st("İ"));
        assert_eq!(
            out(to_lower(&[Some(Value::Multi(vec![st("A"), st("B")]))])),
            Value::Multi(vec![st("a"), st("b")])
        );
    }

    #[test]
    fn pcase_variants() {
        assert_eq!(
            out(pcase(&[s("PABLO GONSALVES (SECOND)")])),
            st("Pablo Gonsalves (Second)")
        );
        assert_eq!(
            out(pcase(&[s("PINTO-DE'SILVA"), s(" '-")])),
            st("Pinto-De'Silva")
        );
        assert_eq!(
            out(pcase(&[s("o'neil mc-donald_x")])),
            st("O'neil Mc-Donald_X")
        );
        assert_eq!(out(pcase(&[s("3rd élan")])), st("3Rd Élan"));
    }

    #[test]
    fn strip_trim_cstr() {
        assert_eq!(out(strip_spaces(&[s("John  Smith ")])), st("JohnSmith"));
        assert_eq!(out(trim(&[s(" Test ")])), st("Test"));
        assert_eq!(out(cstr(&[Some(Value::Bool(true))])), st("True"));
        assert_eq!(out(cstr(&[i(42)])), st("42"));
    }
}
