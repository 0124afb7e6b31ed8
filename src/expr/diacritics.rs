//! Entra's NormalizeDiacritics table, verbatim from the function reference: each group of
//! characters (some are a base letter plus combining marks) and what it becomes. Characters
//! not in the table are left as they are.

use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

const TABLE: &[(&[&str], &str)] = &[
    (
        &[
            "ä", "à", "â", "ã", "å", "á", "ą", "ă", "ā", "ā́", "ā̀", "ā̂", "ā̃", "ǟ", "ā̈", "ǡ", "a̱",
            "å̄",
        ],
        "a",
    ),
    (
        &[
            "Ä", "À", "Â", "Ã", "Å", "Á", "Ą", "Ă", "Ā", "Ā́", "Ā̀", "Ā̂", "Ā̃", "Ǟ", "Ā̈", "Ǡ", "A̱",
            "Å̄",
        ],
        "A",
    ),
    (&["æ", "ǣ"], "ae"),
    (&["Æ", "Ǣ"], "AE"),
    (&["ç", "č", "ć", "c̄", "c̱"], "c"),
    (&["Ç", "Č", "Ć", "C̄", "C̱"], "C"),
    (&["ď", "d̄", "ḏ"], "d"),
    (&["Ď", "D̄", "Ḏ"], "D"),
    (
        &[
            "ë", "è", "é", "ê", "ę", "ě", "ė", "ē", "ḗ", "ḕ", "ē̂", "ē̃", "ê̄", "e̱", "ë̄", "e̊̄",
        ],
        "e",
    ),
    (
        &[
            "Ë", "È", "É", "Ê", "Ę", "Ě", "Ė", "Ē", "Ḗ", "Ḕ", "Ē̂", "Ē̃", "Ê̄", "E̱", "Ë̄", "E̊̄",
        ],
        "E",
    ),
    (&["ğ", "ḡ", "g̱"], "g"),
    (&["Ğ", "Ḡ", "G̱"], "G"),
    (
        &["ï", "î", "ì", "í", "ı", "ī", "ī́", "ī̀", "ī̂", "ī̃", "i̱"],
        "i",
    ),
    (
        &["Ï", "Î", "Ì", "Í", "İ", "Ī", "Ī́", "Ī̀", "Ī̂", "Ī̃", "I̱"],
        "I",
    ),
    (&["ľ", "ł", "l̄", "ḹ", "ḻ"], "l"),
    (&["Ł", "Ľ", "L̄", "Ḹ", "Ḻ"], "L"),
    (&["ñ", "ń", "ň", "n̄", "ṉ"], "n"),
    (&["Ñ", "Ń", "Ň", "N̄", "Ṉ"], "N"),
    (
        &[
            "ö", "ò", "ő", "õ", "ô", "ó", "ō", "ṓ", "ṑ", "ō̂", "ō̃", "ȫ", "ō̈", "ǭ", "ȭ", "ȱ", "o̱",
        ],
        "o",
    ),
    (
        &[
            "Ö", "Ò", "Ő", "Õ", "Ô", "Ó", "Ō", "Ṓ", "Ṑ", "Ō̂", "Ō̃", "Ȫ", "Ō̈", "Ǭ", "Ȭ", "Ȱ", "O̱",
        ],
        "O",
    ),
    (&["ø", "ø̄", "œ̄"], "oe"),
    (&["Ø", "Ø̄", "Œ̄"], "OE"),
    (&["ř", "r̄", "ṟ", "ṝ"], "r"),
    (&["Ř", "R̄", "Ṟ", "Ṝ"], "R"),
    (&["ß"], "ss"),
    (&["š", "ś", "ș", "ş", "s̄", "s̱"], "s"),
    (&["Š", "Ś", "Ș", "Ş", "S̄", "S̱"], "S"),
    (&["ť", "ț", "t̄", "ṯ"], "t"),
    (&["Ť", "Ț", "T̄", "Ṯ"], "T"),
    (
        &[
            "ü", "ù", "û", "ú", "ů", "ű", "ū", "ū́", "ū̀", "ū̂", "ū̃", "u̇̄", "ǖ", "ṻ", "ṳ̄", "u̱",
        ],
        "u",
    ),
    (
        &[
            "Ü", "Ù", "Û", "Ú", "Ů", "Ű", "Ū", "Ū́", "Ū̀", "Ū̂", "Ū̃", "U̇̄", "Ǖ", "Ṻ", "Ṳ̄", "U̱",
        ],
        "U",
    ),
    (&["ÿ", "ý", "ȳ", "ȳ́", "ȳ̀", "ȳ̃", "y̱"], "y"),
    (&["Ÿ", "Ý", "Ȳ", "Ȳ́", "Ȳ̀", "Ȳ̃", "Y̱"], "Y"),
    (&["ź", "ž", "ż", "z̄", "ẕ"], "z"),
    (&["Ź", "Ž", "Ż", "Z̄", "Ẕ"], "Z"),
];

/// Table entries in NFC, longest first so that `ā́` wins over `ā`.
fn entries() -> &'static [(String, &'static str)] {
    static ENTRIES: OnceLock<Vec<(String, &'static str)>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut entries: Vec<(String, &'static str)> = TABLE
            .iter()
            .flat_map(|(from, to)| from.iter().map(move |f| (f.nfc().collect::<String>(), *to)))
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.chars().count()));
        entries
    })
}

/// Replaces every table entry in `s`; input is compared in NFC so decomposed and
/// precomposed spellings of the same letter both match.
pub fn normalize(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let nfc: String = s.nfc().collect();
    let entries = entries();
    let mut out = String::with_capacity(nfc.len());
    let mut rest = nfc.as_str();
    'outer: while let Some(c) = rest.chars().next() {
        // Entries start with a non-ASCII letter or with an ASCII letter plus combining marks.
        let next_is_non_ascii = rest[c.len_utf8()..]
            .chars()
            .next()
            .is_some_and(|n| !n.is_ascii());
        if !c.is_ascii() || next_is_non_ascii {
            for (from, to) in entries {
                if rest.starts_with(from.as_str()) {
                    out.push_str(to);
                    rest = &rest[from.len()..];
                    continue 'outer;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        assert_eq!(normalize("Zoë"), "Zoe");
        assert_eq!(normalize("Straße"), "Strasse");
        assert_eq!(normalize("Ærøskøbing"), "AEroeskoebing");
    }

    #[test]
    fn combining_sequences_and_decomposed_input() {
        assert_eq!(normalize("a\u{304}\u{301}"), "a");
        assert_eq!(normalize("e\u{301}"), "e");
        assert_eq!(normalize("a\u{331}b"), "ab");
        assert_eq!(normalize("Œ\u{304}"), "OE");
        assert_eq!(normalize("İstanbul Łódź"), "Istanbul Lodz");
    }

    #[test]
    fn characters_outside_the_table_stay() {
        assert_eq!(normalize("œ Ð 東京"), "œ Ð 東京");
        assert_eq!(normalize("plain"), "plain");
    }
}
