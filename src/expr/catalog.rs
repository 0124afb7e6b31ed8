//! The function catalogue: names, parameters and what each parameter must be. Used by the
//! type checker, for "did you mean" suggestions, and by `ctsync expr --functions`.

/// What the checker can verify about an argument before run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Any value.
    Any,
    /// An integer (a number literal, or a string literal holding one).
    Number,
    /// A DateAdd/DateDiff interval code (`"yyyy"`, `"m"`, `"d"`, `"ww"`, ...).
    Interval,
    /// `vbTextCompare` / `vbBinaryCompare` (or 1 / 0).
    CompareType,
    /// A .NET regular expression.
    Regex,
    /// A .NET date/time format string.
    DateFormat,
    /// .NET `DateTimeStyles` names, comma-separated.
    DateTimeStyles,
    /// A text encoding name (`UTF8`, `Unicode`, ...).
    Encoding,
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Signature {
    pub name: &'static str,
    pub params: &'static [Param],
    /// The last parameter may repeat (`Join`, `Coalesce`, `Switch` pairs, ...).
    pub variadic: bool,
    /// Fewest arguments accepted (positions, including empty ones).
    pub min_args: usize,
    /// Documented only in the Cloud Sync reference, not for app provisioning / CTS.
    pub cloud_sync_only: bool,
}

impl Signature {
    pub fn max_args(&self) -> Option<usize> {
        (!self.variadic).then_some(self.params.len())
    }

    /// The parameter at argument position `index` (the last one repeats when variadic).
    pub fn param(&self, index: usize) -> Option<&'static Param> {
        match self.params.get(index) {
            Some(p) => Some(p),
            None if self.variadic => self.params.last(),
            None => None,
        }
    }

    pub fn usage(&self) -> String {
        let names: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if p.required {
                    p.name.to_string()
                } else {
                    format!("[{}]", p.name)
                }
            })
            .collect();
        let tail = if self.variadic { ", ..." } else { "" };
        format!("{}({}{tail})", self.name, names.join(", "))
    }
}

const fn req(name: &'static str, kind: ParamKind) -> Param {
    Param {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: ParamKind) -> Param {
    Param {
        name,
        kind,
        required: false,
    }
}

const fn sig(name: &'static str, params: &'static [Param], min_args: usize) -> Signature {
    Signature {
        name,
        params,
        variadic: false,
        min_args,
        cloud_sync_only: false,
    }
}

const fn variadic(name: &'static str, params: &'static [Param], min_args: usize) -> Signature {
    Signature {
        name,
        params,
        variadic: true,
        min_args,
        cloud_sync_only: false,
    }
}

const fn cloud(s: Signature) -> Signature {
    Signature {
        cloud_sync_only: true,
        ..s
    }
}

use ParamKind::*;

/// Every function Entra's app-provisioning reference lists (43), then the Cloud Sync extras.
pub const FUNCTIONS: &[Signature] = &[
    sig("Append", &[req("source", Any), req("suffix", Any)], 2),
    sig(
        "AppRoleAssignmentsComplex",
        &[req("appRoleAssignments", Any)],
        1,
    ),
    sig("BitAnd", &[req("value1", Number), req("value2", Number)], 2),
    sig("CBool", &[req("expression", Any)], 1),
    sig("CDate", &[req("expression", Any)], 1),
    variadic("Coalesce", &[req("source", Any)], 1),
    sig("ConvertToBase64", &[req("source", Any)], 1),
    sig("ConvertToUTF8Hex", &[req("source", Any)], 1),
    sig("Count", &[req("attribute", Any)], 1),
    sig("CStr", &[req("value", Any)], 1),
    sig(
        "DateAdd",
        &[
            req("interval", Interval),
            req("value", Number),
            req("dateTime", Any),
        ],
        3,
    ),
    sig(
        "DateDiff",
        &[
            req("interval", Interval),
            req("date1", Any),
            req("date2", Any),
        ],
        3,
    ),
    sig("DateFromNum", &[req("value", Number)], 1),
    sig(
        "FormatDateTime",
        &[
            req("source", Any),
            opt("dateTimeStyles", DateTimeStyles),
            req("inputFormat", DateFormat),
            req("outputFormat", DateFormat),
        ],
        3,
    ),
    sig("Guid", &[], 0),
    sig("IgnoreFlowIfNullOrEmpty", &[req("expression", Any)], 1),
    sig(
        "IIF",
        &[
            req("condition", Any),
            req("valueIfTrue", Any),
            req("valueIfFalse", Any),
        ],
        3,
    ),
    sig(
        "InStr",
        &[
            req("value1", Any),
            req("value2", Any),
            opt("start", Number),
            opt("compareType", CompareType),
        ],
        2,
    ),
    sig("IsNull", &[req("expression", Any)], 1),
    sig("IsNullOrEmpty", &[req("expression", Any)], 1),
    sig("IsPresent", &[req("expression", Any)], 1),
    sig("IsString", &[req("expression", Any)], 1),
    sig("Item", &[req("attribute", Any), req("index", Number)], 2),
    variadic("Join", &[req("separator", Any), req("source", Any)], 2),
    sig("Left", &[req("string", Any), req("numChars", Number)], 2),
    sig(
        "Mid",
        &[
            req("source", Any),
            req("start", Number),
            opt("length", Number),
        ],
        2,
    ),
    sig("NormalizeDiacritics", &[req("source", Any)], 1),
    sig("Not", &[req("source", Any)], 1),
    sig("Now", &[], 0),
    sig("NumFromDate", &[req("value", Any)], 1),
    sig(
        "PCase",
        &[req("source", Any), opt("wordSeparators", Any)],
        1,
    ),
    sig(
        "RandomString",
        &[
            req("length", Number),
            opt("minimumNumbers", Number),
            opt("minimumSpecialCharacters", Number),
            opt("minimumCapital", Number),
            opt("minimumLowerCase", Number),
            opt("charactersToAvoid", Any),
        ],
        1,
    ),
    sig("Redact", &[req("value", Any)], 1),
    sig("RemoveDuplicates", &[req("attribute", Any)], 1),
    sig(
        "Replace",
        &[
            req("source", Any),
            opt("oldValue", Any),
            opt("regexPattern", Regex),
            opt("regexGroupName", Any),
            opt("replacementValue", Any),
            opt("replacementAttributeName", Any),
            opt("template", Any),
        ],
        2,
    ),
    variadic("SelectUniqueValue", &[req("uniqueValueRule", Any)], 2),
    sig(
        "SingleAppRoleAssignment",
        &[req("appRoleAssignments", Any)],
        1,
    ),
    sig("Split", &[req("source", Any), req("delimiter", Any)], 2),
    sig("StripSpaces", &[req("source", Any)], 1),
    variadic(
        "Switch",
        &[
            req("source", Any),
            opt("defaultValue", Any),
            req("key", Any),
            req("value", Any),
        ],
        4,
    ),
    sig("ToLower", &[req("source", Any), opt("culture", Any)], 1),
    sig("ToUpper", &[req("source", Any), opt("culture", Any)], 1),
    sig(
        "Word",
        &[
            req("string", Any),
            req("wordNumber", Number),
            req("delimiters", Any),
        ],
        3,
    ),
    // Cloud Sync reference only; accepted so expressions copied from there still work.
    cloud(sig(
        "ConvertFromBase64",
        &[req("source", Any), opt("encoding", Encoding)],
        1,
    )),
    cloud(sig(
        "Contains",
        &[
            req("attribute", Any),
            req("value", Any),
            opt("compareType", CompareType),
        ],
        2,
    )),
    cloud(sig("CRef", &[req("dn", Any)], 1)),
    cloud(sig(
        "DNComponent",
        &[req("dn", Any), req("component", Number)],
        2,
    )),
    cloud(sig("Error", &[req("message", Any)], 1)),
    cloud(sig("StringFromSid", &[req("objectSid", Any)], 1)),
    cloud(sig("Trim", &[req("source", Any)], 1)),
];

/// Names usable without brackets: VBA compare modes, booleans and encoding names.
pub const KNOWN_IDENTIFIERS: &[&str] = &[
    "vbBinaryCompare",
    "vbTextCompare",
    "vbDatabaseCompare",
    "True",
    "False",
    "UTF8",
    "UTF7",
    "UTF16",
    "UTF32",
    "Unicode",
    "BigEndianUnicode",
    "ASCII",
    "Default",
];

pub fn lookup(name: &str) -> Option<&'static Signature> {
    FUNCTIONS.iter().find(|s| s.name == name)
}

/// The known function closest to `name`: same name in another case first, then the smallest
/// edit distance if it is small enough to be a typo.
pub fn closest_function(name: &str) -> Option<&'static str> {
    closest(name, FUNCTIONS.iter().map(|s| s.name))
}

pub fn closest(name: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'static str)> = None;
    for candidate in candidates {
        let distance = if candidate.to_lowercase() == lower {
            0
        } else {
            edit_distance(&lower, &candidate.to_lowercase())
        };
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    let limit = (name.chars().count() / 3).max(2);
    best.filter(|(d, _)| *d <= limit).map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_43_documented_functions() {
        let documented = FUNCTIONS.iter().filter(|s| !s.cloud_sync_only).count();
        assert_eq!(documented, 43);
        for s in FUNCTIONS {
            assert!(s.min_args <= s.params.len() || s.variadic, "{}", s.name);
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest_function("Jion"), Some("Join"));
        assert_eq!(closest_function("toLower"), Some("ToLower"));
        assert_eq!(closest_function("Iif"), Some("IIF"));
        assert_eq!(
            closest_function("NormaliseDiacritics"),
            Some("NormalizeDiacritics")
        );
        assert_eq!(closest_function("Frobnicate"), None);
    }
}
