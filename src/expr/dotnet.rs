//! .NET date/time formatting and exact parsing (`DateTime.ToString(format)`,
//! `DateTime.ParseExact(s, format, en-US, styles)`), for FormatDateTime, CDate, DateAdd and
//! friends. Entra's hosts run in UTC with the en-US culture (Now() renders as
//! `M/d/yyyy h:mm:ss tt`), so "local" time is UTC here and names are English.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// .NET `DateTimeKind`. `Local` means the host's zone, which is UTC on Entra's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unspecified,
    Utc,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DotNetDateTime {
    pub at: NaiveDateTime,
    pub kind: Kind,
}

/// `M/d/yyyy h:mm:ss tt`: how Entra renders DateTime results (Now, CDate, DateAdd).
pub const GENERAL_FORMAT: &str = "M/d/yyyy h:mm:ss tt";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Day(usize),
    Month(usize),
    Year(usize),
    Hour12(usize),
    Hour24(usize),
    Minute(usize),
    Second(usize),
    Fraction { digits: usize, trim: bool },
    AmPm(usize),
    Offset(usize),
    K,
    Era,
    Literal(String),
}

/// A compiled .NET date/time format string (custom, or a one-letter standard format).
#[derive(Debug, Clone, PartialEq)]
pub struct DateFormat {
    items: Vec<Item>,
}

/// en-US patterns behind the one-letter standard formats.
fn standard_pattern(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "M/d/yyyy",
        'D' => "dddd, MMMM d, yyyy",
        'f' => "dddd, MMMM d, yyyy h:mm tt",
        'F' | 'U' => "dddd, MMMM d, yyyy h:mm:ss tt",
        'g' => "M/d/yyyy h:mm tt",
        'G' => GENERAL_FORMAT,
        'm' | 'M' => "MMMM d",
        'o' | 'O' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        'r' | 'R' => "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        's' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        't' => "h:mm tt",
        'T' => "h:mm:ss tt",
        'u' => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        'y' | 'Y' => "MMMM yyyy",
        _ => return None,
    })
}

impl DateFormat {
    pub fn parse(format: &str) -> Result<DateFormat, String> {
        if format.is_empty() {
            return Err("the format is empty".into());
        }
        let mut chars = format.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return match standard_pattern(c) {
                Some(pattern) => DateFormat::parse_custom(pattern),
                None => Err(format!(
                    "`{c}` is not a standard format; use `%{c}` for a single custom specifier"
                )),
            };
        }
        DateFormat::parse_custom(format)
    }

    fn parse_custom(format: &str) -> Result<DateFormat, String> {
        let chars: Vec<char> = format.chars().collect();
        let mut items = Vec::new();
        let mut i = 0;
        let mut literal = String::new();
        let flush = |literal: &mut String, items: &mut Vec<Item>| {
            if !literal.is_empty() {
                items.push(Item::Literal(std::mem::take(literal)));
            }
        };
        while i < chars.len() {
            let c = chars[i];
            let run = chars[i..].iter().take_while(|&&x| x == c).count();
            let item = match c {
                'd' => Some(Item::Day(run.min(4))),
                'M' => Some(Item::Month(run.min(4))),
                'y' => Some(Item::Year(run)),
                'h' => Some(Item::Hour12(run.min(2))),
                'H' => Some(Item::Hour24(run.min(2))),
                'm' => Some(Item::Minute(run.min(2))),
                's' => Some(Item::Second(run.min(2))),
                'f' | 'F' if run > 7 => {
                    return Err(format!("more than seven `{c}` specifiers"));
                }
                'f' => Some(Item::Fraction {
                    digits: run,
                    trim: false,
                }),
                'F' => Some(Item::Fraction {
                    digits: run,
                    trim: true,
                }),
                't' => Some(Item::AmPm(run.min(2))),
                'z' => Some(Item::Offset(run.min(3))),
                'g' => Some(Item::Era),
                _ => None,
            };
            if let Some(item) = item {
                flush(&mut literal, &mut items);
                items.push(item);
                i += run;
                continue;
            }
            match c {
                'K' => {
                    flush(&mut literal, &mut items);
                    items.push(Item::K);
                }
                '\'' | '"' => {
                    let mut j = i + 1;
                    loop {
                        match chars.get(j) {
                            None => {
                                return Err(format!("unterminated quoted text starting with {c}"));
                            }
                            Some(&q) if q == c => break,
                            Some('\\') => {
                                j += 1;
                                match chars.get(j) {
                                    Some(&e) => literal.push(e),
                                    None => return Err("`\\` at the end of the format".into()),
                                }
                            }
                            Some(&other) => literal.push(other),
                        }
                        j += 1;
                    }
                    i = j;
                }
                '\\' => {
                    i += 1;
                    match chars.get(i) {
                        Some(&e) => literal.push(e),
                        None => return Err("`\\` at the end of the format".into()),
                    }
                }
                '%' => {
                    if matches!(chars.get(i + 1), None | Some('%')) {
                        return Err("`%` must be followed by a format specifier".into());
                    }
                }
                other => literal.push(other),
            }
            i += 1;
        }
        flush(&mut literal, &mut items);
        Ok(DateFormat { items })
    }

    pub fn format(&self, value: &DotNetDateTime) -> String {
        let at = value.at;
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Day(1) => out.push_str(&at.day().to_string()),
                Item::Day(2) => out.push_str(&format!("{:02}", at.day())),
                Item::Day(3) => {
                    out.push_str(&DAYS[at.weekday().num_days_from_sunday() as usize][..3])
                }
                Item::Day(_) => out.push_str(DAYS[at.weekday().num_days_from_sunday() as usize]),
                Item::Month(1) => out.push_str(&at.month().to_string()),
                Item::Month(2) => out.push_str(&format!("{:02}", at.month())),
                Item::Month(3) => out.push_str(&MONTHS[at.month0() as usize][..3]),
                Item::Month(_) => out.push_str(MONTHS[at.month0() as usize]),
                Item::Year(1) => out.push_str(&(at.year() % 100).to_string()),
                Item::Year(2) => out.push_str(&format!("{:02}", at.year() % 100)),
                Item::Year(n) => out.push_str(&format!("{:0width$}", at.year(), width = *n)),
                Item::Hour12(n) => {
                    let h = match at.hour() % 12 {
                        0 => 12,
                        h => h,
                    };
                    push_number(&mut out, h, *n);
                }
                Item::Hour24(n) => push_number(&mut out, at.hour(), *n),
                Item::Minute(n) => push_number(&mut out, at.minute(), *n),
                Item::Second(n) => push_number(&mut out, at.second(), *n),
                Item::Fraction { digits, trim } => {
                    let ticks = format!("{:07}", at.nanosecond().min(999_999_999) / 100);
                    let mut frac = ticks[..*digits].to_string();
                    if *trim {
                        frac = frac.trim_end_matches('0').to_string();
                        if frac.is_empty() && out.ends_with('.') {
                            out.pop();
                        }
                    }
                    out.push_str(&frac);
                }
                Item::AmPm(n) => {
                    let designator = if at.hour() < 12 { "AM" } else { "PM" };
                    out.push_str(if *n == 1 {
                        &designator[..1]
                    } else {
                        designator
                    });
                }
                // Every zone here is UTC (see module docs), so the offset is always zero.
                Item::Offset(1) => out.push_str("+0"),
                Item::Offset(2) => out.push_str("+00"),
                Item::Offset(_) => out.push_str("+00:00"),
                Item::K => match value.kind {
                    Kind::Unspecified => {}
                    Kind::Utc => out.push('Z'),
                    Kind::Local => out.push_str("+00:00"),
                },
                Item::Era => out.push_str("A.D."),
                Item::Literal(text) => out.push_str(text),
            }
        }
        out
    }

    /// `DateTime.ParseExact(input, format, en-US, styles)`. `today` fills a date that the
    /// format leaves out entirely, as .NET does with the current date.
    pub fn parse_exact(
        &self,
        input: &str,
        styles: Styles,
        today: NaiveDate,
    ) -> Result<DotNetDateTime, String> {
        let mut s = input;
        if styles.allow_leading_white {
            s = s.trim_start();
        }
        if styles.allow_trailing_white {
            s = s.trim_end();
        }
        let mut p = Parsed::default();
        let mut rest = s;
        for (i, item) in self.items.iter().enumerate() {
            // As in .NET, a `.` before `F` specifiers may be absent along with the fraction.
            if let Item::Literal(text) = item
                && text.ends_with('.')
                && matches!(
                    self.items.get(i + 1),
                    Some(Item::Fraction { trim: true, .. })
                )
                && !rest
                    .strip_prefix(&text[..text.len() - 1])
                    .unwrap_or(rest)
                    .starts_with('.')
            {
                let without_dot = Item::Literal(text[..text.len() - 1].to_string());
                rest = p.item(&without_dot, rest, styles)?;
                continue;
            }
            rest = p.item(item, rest, styles)?;
        }
        if !rest.is_empty() {
            return Err(format!("unexpected text \"{rest}\""));
        }
        p.build(styles, today)
    }
}

fn push_number(out: &mut String, n: u32, width: usize) {
    if width >= 2 {
        out.push_str(&format!("{n:02}"));
    } else {
        out.push_str(&n.to_string());
    }
}

/// .NET `DateTimeStyles` flags that change parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Styles {
    pub allow_leading_white: bool,
    pub allow_trailing_white: bool,
    pub allow_inner_white: bool,
    pub no_current_date_default: bool,
    pub adjust_to_universal: bool,
    pub assume_local: bool,
    pub assume_universal: bool,
    pub roundtrip_kind: bool,
}

impl Styles {
    /// FormatDateTime's default: RoundtripKind, AllowLeadingWhite, AllowTrailingWhite.
    pub fn entra_default() -> Styles {
        Styles {
            allow_leading_white: true,
            allow_trailing_white: true,
            roundtrip_kind: true,
            ..Styles::default()
        }
    }

    /// Names separated by commas, `|` or spaces, optionally prefixed `DateTimeStyles.`.
    pub fn parse(text: &str) -> Result<Styles, String> {
        let mut styles = Styles::default();
        let mut any = false;
        for name in text.split([',', '|', ' ']).filter(|n| !n.trim().is_empty()) {
            any = true;
            let name = name.trim();
            let name = name.strip_prefix("DateTimeStyles.").unwrap_or(name);
            match name.to_ascii_lowercase().as_str() {
                "none" => {}
                "allowleadingwhite" => styles.allow_leading_white = true,
                "allowtrailingwhite" => styles.allow_trailing_white = true,
                "allowinnerwhite" => styles.allow_inner_white = true,
                "allowwhitespaces" => {
                    styles.allow_leading_white = true;
                    styles.allow_trailing_white = true;
                    styles.allow_inner_white = true;
                }
                "nocurrentdatedefault" => styles.no_current_date_default = true,
                "adjusttouniversal" => styles.adjust_to_universal = true,
                "assumelocal" => styles.assume_local = true,
                "assumeuniversal" => styles.assume_universal = true,
                "roundtripkind" => styles.roundtrip_kind = true,
                _ => {
                    return Err(format!(
                        "has an unknown DateTimeStyles value \"{name}\" (known: None, AllowLeadingWhite, AllowTrailingWhite, AllowInnerWhite, AllowWhiteSpaces, NoCurrentDateDefault, AdjustToUniversal, AssumeLocal, AssumeUniversal, RoundtripKind)"
                    ));
                }
            }
        }
        if !any {
            return Ok(Styles::entra_default());
        }
        if styles.roundtrip_kind
            && (styles.adjust_to_universal || styles.assume_local || styles.assume_universal)
        {
            return Err("combines RoundtripKind with AdjustToUniversal, AssumeLocal or AssumeUniversal, which .NET rejects".into());
        }
        if styles.assume_local && styles.assume_universal {
            return Err("combines AssumeLocal with AssumeUniversal, which .NET rejects".into());
        }
        Ok(styles)
    }
}

#[derive(Default)]
struct Parsed {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    hour12: Option<u32>,
    hour24: Option<u32>,
    minute: Option<u32>,
    second: Option<u32>,
    nanos: u32,
    pm: Option<bool>,
    offset_seconds: Option<i32>,
    zulu: bool,
    weekday: Option<u32>,
}

fn digits(s: &str, min: usize, max: usize) -> Result<(u32, &str), String> {
    let count = s.chars().take(max).take_while(char::is_ascii_digit).count();
    if count < min {
        return Err(format!("expected {min} digit(s) at \"{s}\""));
    }
    let value = s[..count].parse::<u32>().map_err(|e| e.to_string())?;
    Ok((value, &s[count..]))
}

fn name<'a>(s: &'a str, names: &[&str], abbreviated: bool) -> Result<(u32, &'a str), String> {
    for (i, full) in names.iter().enumerate() {
        let candidate = if abbreviated { &full[..3] } else { full };
        if s.len() >= candidate.len()
            && s.is_char_boundary(candidate.len())
            && s[..candidate.len()].eq_ignore_ascii_case(candidate)
        {
            return Ok((i as u32, &s[candidate.len()..]));
        }
    }
    Err(format!("expected a name at \"{s}\""))
}

fn offset(s: &str) -> Result<(i32, &str), String> {
    let sign = match s.chars().next() {
        Some('+') => 1,
        Some('-') => -1,
        _ => return Err(format!("expected a time zone offset at \"{s}\"")),
    };
    let (hours, rest) = digits(&s[1..], 1, 2)?;
    let (minutes, rest) = if let Some(after) = rest.strip_prefix(':') {
        digits(after, 2, 2)?
    } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
        digits(rest, 2, 2)?
    } else {
        (0, rest)
    };
    if hours > 14 || minutes > 59 {
        return Err("time zone offset out of range".into());
    }
    Ok((sign * (hours * 3600 + minutes * 60) as i32, rest))
}

impl Parsed {
    fn item<'a>(&mut self, item: &Item, s: &'a str, styles: Styles) -> Result<&'a str, String> {
        let s = if styles.allow_inner_white {
            s.trim_start()
        } else {
            s
        };
        Ok(match item {
            Item::Day(n @ (1 | 2)) => {
                let (v, rest) = digits(s, *n, 2)?;
                self.day = Some(v);
                rest
            }
            Item::Day(n) => {
                let (v, rest) = name(s, &DAYS, *n == 3)?;
                self.weekday = Some(v);
                rest
            }
            Item::Month(n @ (1 | 2)) => {
                let (v, rest) = digits(s, *n, 2)?;
                self.month = Some(v);
                rest
            }
            Item::Month(n) => {
                let (v, rest) = name(s, &MONTHS, *n == 3)?;
                self.month = Some(v + 1);
                rest
            }
            Item::Year(n) => {
                let (min, max) = match n {
                    1 => (1, 2),
                    2 => (2, 2),
                    3 => (3, 4),
                    n => (*n, *n),
                };
                let (v, rest) = digits(s, min, max)?;
                let consumed = s.len() - rest.len();
                let year = if consumed <= 2 {
                    // .NET's TwoDigitYearMax for the Gregorian calendar is 2049.
                    if v <= 49 { 2000 + v } else { 1900 + v }
                } else {
                    v
                };
                self.year = Some(year as i32);
                rest
            }
            Item::Hour12(n) => {
                let (v, rest) = digits(s, *n, 2)?;
                self.hour12 = Some(v);
                rest
            }
            Item::Hour24(n) => {
                let (v, rest) = digits(s, *n, 2)?;
                self.hour24 = Some(v);
                rest
            }
            Item::Minute(n) => {
                let (v, rest) = digits(s, *n, 2)?;
                self.minute = Some(v);
                rest
            }
            Item::Second(n) => {
                let (v, rest) = digits(s, *n, 2)?;
                self.second = Some(v);
                rest
            }
            Item::Fraction { digits: n, trim } => {
                let min = if *trim { 0 } else { *n };
                let count = s.chars().take(*n).take_while(char::is_ascii_digit).count();
                if count < min {
                    return Err(format!("expected {n} fraction digit(s) at \"{s}\""));
                }
                if count > 0 {
                    let scaled = format!("{:0<9}", &s[..count]);
                    self.nanos = scaled.parse::<u32>().map_err(|e| e.to_string())?;
                }
                &s[count..]
            }
            Item::AmPm(n) => {
                let (am, pm) = if *n == 1 { ("A", "P") } else { ("AM", "PM") };
                let len = am.len();
                let head = s.get(..len).unwrap_or("");
                if head.eq_ignore_ascii_case(am) {
                    self.pm = Some(false);
                } else if head.eq_ignore_ascii_case(pm) {
                    self.pm = Some(true);
                } else {
                    return Err(format!("expected {am} or {pm} at \"{s}\""));
                }
                &s[len..]
            }
            Item::Offset(_) => {
                let (o, rest) = offset(s)?;
                self.offset_seconds = Some(o);
                rest
            }
            Item::K => {
                if let Some(rest) = s.strip_prefix('Z').or_else(|| s.strip_prefix('z')) {
                    self.zulu = true;
                    rest
                } else if s.starts_with(['+', '-']) {
                    let (o, rest) = offset(s)?;
                    self.offset_seconds = Some(o);
                    rest
                } else {
                    s
                }
            }
            Item::Era => {
                let head = s.get(..4).unwrap_or("");
                if head.eq_ignore_ascii_case("A.D.") {
                    &s[4..]
                } else if s.get(..2).is_some_and(|h| h.eq_ignore_ascii_case("AD")) {
                    &s[2..]
                } else {
                    s
                }
            }
            Item::Literal(text) => {
                let mut rest = s;
                for c in text.chars() {
                    if c.is_whitespace() {
                        let trimmed = rest.trim_start();
                        if trimmed.len() == rest.len() && !styles.allow_inner_white {
                            return Err(format!("expected a space at \"{rest}\""));
                        }
                        rest = trimmed;
                    } else if let Some(after) = rest.strip_prefix(c) {
                        rest = after;
                    } else {
                        return Err(format!("expected \"{c}\" at \"{rest}\""));
                    }
                }
                rest
            }
        })
    }

    fn build(self, styles: Styles, today: NaiveDate) -> Result<DotNetDateTime, String> {
        let no_date = self.year.is_none() && self.month.is_none() && self.day.is_none();
        let base = if no_date && !styles.no_current_date_default {
            today
        } else {
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN)
        };
        let year = self
            .year
            .unwrap_or(if no_date { base.year() } else { today.year() });
        let month = self.month.unwrap_or(base.month());
        let day = self.day.unwrap_or(base.day());
        if !(1..=9999).contains(&year) {
            return Err(format!("year {year} is outside 1–9999"));
        }
        let date = NaiveDate::from_ymd_opt(year, month, day)
            .ok_or_else(|| format!("{year}-{month:02}-{day:02} is not a valid date"))?;
        if let Some(weekday) = self.weekday
            && date.weekday().num_days_from_sunday() != weekday
        {
            return Err(format!("{date} is not a {}", DAYS[weekday as usize]));
        }
        let hour = match (self.hour12, self.hour24, self.pm) {
            (Some(h), _, _) if !(1..=12).contains(&h) => {
                return Err(format!("hour {h} is outside 1–12"));
            }
            (Some(h), _, Some(true)) => h % 12 + 12,
            (Some(h), _, _) => h % 12,
            (None, Some(h), Some(true)) if h < 12 => h + 12,
            (None, Some(h), _) => h,
            (None, None, _) => 0,
        };
        let time = NaiveTime::from_hms_nano_opt(
            hour,
            self.minute.unwrap_or(0),
            self.second.unwrap_or(0),
            self.nanos,
        )
        .ok_or_else(|| "time of day out of range".to_string())?;
        let mut at = date.and_time(time);
        let kind = if self.zulu {
            if styles.roundtrip_kind || styles.adjust_to_universal {
                Kind::Utc
            } else {
                Kind::Local
            }
        } else if let Some(offset) = self.offset_seconds {
            at = at
                .checked_sub_signed(Duration::seconds(i64::from(offset)))
                .ok_or("date out of range")?;
            if styles.adjust_to_universal {
                Kind::Utc
            } else {
                Kind::Local
            }
        } else if styles.assume_universal || styles.assume_local {
            if styles.adjust_to_universal {
                Kind::Utc
            } else {
                Kind::Local
            }
        } else {
            Kind::Unspecified
        };
        if !(1..=9999).contains(&at.year()) {
            return Err("date out of range".into());
        }
        Ok(DotNetDateTime { at, kind })
    }
}

/// Formats `DateTime.Parse` accepts that Entra inputs use: ISO 8601 with or without time
/// and offset (`2020-03-16-07:00`), en-US `M/d/yyyy h:mm:ss tt`, AD generalized time,
/// RFC 1123 and long en-US dates.
const LENIENT_FORMATS: &[&str] = &[
    "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
    "yyyy-MM-dd'T'HH:mmK",
    "yyyy-MM-dd HH:mm:ss.FFFFFFFK",
    "yyyy-MM-dd HH:mmK",
    "yyyy-MM-ddK",
    "M/d/yyyy h:mm:ss.FFFFFFF tt",
    "M/d/yyyy h:mm tt",
    "M/d/yyyy H:mm:ss.FFFFFFFK",
    "M/d/yyyy H:mmK",
    "M/d/yyyy",
    "yyyy/M/d H:mm:ss.FFFFFFFK",
    "yyyy/M/d",
    "yyyyMMddHHmmss.FFFFFFFK",
    "yyyyMMddHHmmssK",
    "yyyyMMdd",
    "ddd, d MMM yyyy H:mm:ss 'GMT'",
    "dddd, MMMM d, yyyy h:mm:ss tt",
    "dddd, MMMM d, yyyy",
    "MMMM d, yyyy h:mm:ss tt",
    "MMMM d, yyyy",
    "MMM d, yyyy",
    "d MMMM yyyy",
    "d MMM yyyy",
];

/// `DateTime.Parse` as CDate uses it, converted to UTC (unspecified times are taken as
/// UTC, the host zone).
pub fn parse_lenient(input: &str) -> Result<NaiveDateTime, String> {
    let styles = Styles {
        allow_leading_white: true,
        allow_trailing_white: true,
        roundtrip_kind: true,
        ..Styles::default()
    };
    let epoch = NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN);
    for pattern in LENIENT_FORMATS {
        let Ok(format) = DateFormat::parse(pattern) else {
            continue;
        };
        if let Ok(parsed) = format.parse_exact(input, styles, epoch) {
            return Ok(parsed.at);
        }
    }
    Err(format!("\"{input}\" is not a recognized date/time"))
}

/// Renders a UTC date as Entra does (`M/d/yyyy h:mm:ss tt`).
pub fn format_general(at: NaiveDateTime) -> String {
    let value = DotNetDateTime {
        at,
        kind: Kind::Utc,
    };
    match DateFormat::parse(GENERAL_FORMAT) {
        Ok(format) => format.format(&value),
        // The constant above is a valid pattern; fall back to ISO rather than panic.
        Err(_) => at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    fn fmt(pattern: &str, at: &str, kind: Kind) -> String {
        DateFormat::parse(pattern)
            .unwrap()
            .format(&DotNetDateTime { at: dt(at), kind })
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 5, 6).unwrap()
    }

    #[test]
    fn custom_formatting() {
        let at = "2009-06-15 13:45:30.6175420";
        assert_eq!(
            fmt("M/d/yyyy h:mm:ss tt", at, Kind::Utc),
            "6/15/2009 1:45:30 PM"
        );
        assert_eq!(fmt("dd MMM yyyy HH:mm", at, Kind::Utc), "15 Jun 2009 13:45");
        assert_eq!(fmt("dddd, MMMM d", at, Kind::Utc), "Monday, June 15");
        assert_eq!(fmt("yy y yyyyy", at, Kind::Utc), "09 9 02009");
        assert_eq!(fmt("fff FFFF ffffff", at, Kind::Utc), "617 6175 617542");
        assert_eq!(fmt("ss.FFF", "2009-06-15 13:45:30", Kind::Utc), "30");
        assert_eq!(fmt("hh:mm t", "2009-06-15 00:05:00", Kind::Utc), "12:05 A");
        assert_eq!(
            fmt("'Date:' yyyy\\-MM \"x\"%d", at, Kind::Utc),
            "Date: 2009-06 x15"
        );
        assert_eq!(fmt("K|zzz|zz|z", at, Kind::Utc), "Z|+00:00|+00|+0");
        assert_eq!(fmt("%K", at, Kind::Unspecified), "");
        assert_eq!(fmt("%K", at, Kind::Local), "+00:00");
        assert_eq!(fmt("o", at, Kind::Utc), "2009-06-15T13:45:30.6175420Z");
        assert_eq!(fmt("s", at, Kind::Utc), "2009-06-15T13:45:30");
        assert_eq!(fmt("d", at, Kind::Utc), "6/15/2009");
        assert_eq!(fmt("G", at, Kind::Utc), "6/15/2009 1:45:30 PM");
        assert_eq!(fmt("r", at, Kind::Utc), "Mon, 15 Jun 2009 13:45:30 GMT");
        assert_eq!(fmt("%d", at, Kind::Utc), "15");
    }

    #[test]
    fn invalid_formats() {
        assert!(DateFormat::parse("yyyy'").is_err());
        assert!(DateFormat::parse("yyyy\\").is_err());
        assert!(DateFormat::parse("ffffffff").is_err());
        assert!(DateFormat::parse("x").is_err());
        assert!(DateFormat::parse("").is_err());
    }

    #[test]
    fn exact_parsing() {
        let p = |fmt: &str, s: &str| {
            DateFormat::parse(fmt)
                .unwrap()
                .parse_exact(s, Styles::entra_default(), today())
        };
        let v = p("yyyyMMddHHmmss.fZ", "20150123105347.1Z").unwrap();
        assert_eq!(v.at, dt("2015-01-23 10:53:47.1"));
        assert_eq!(v.kind, Kind::Unspecified);
        let v = p("yyyy-MM-ddzzz", "2020-12-31-08:00").unwrap();
        assert_eq!(v.at, dt("2020-12-31 08:00:00"));
        assert_eq!(v.kind, Kind::Local);
        let v = p("M/d/yyyy hh:mm:ss tt", " 3/4/2021 07:05:09 PM ").unwrap();
        assert_eq!(v.at, dt("2021-03-04 19:05:09"));
        let v = p("yyyy-MM-dd'T'HH:mm:ssK", "2021-03-04T01:02:03Z").unwrap();
        assert_eq!(v.kind, Kind::Utc);
        let v = p("HH:mm", "10:30").unwrap();
        assert_eq!(v.at, dt("2024-05-06 10:30:00"));
        assert!(p("dd/MM/yyyy", "1/2/2020").is_err());
        assert!(p("yyyy-MM-dd", "2021-02-30").is_err());
        assert!(p("yyyy-MM-dd", "2021-02-03x").is_err());
        assert!(p("dddd yyyy-MM-dd", "Monday 2024-05-07").is_err());
        assert!(p("dddd yyyy-MM-dd", "Tuesday 2024-05-07").is_ok());
    }

    #[test]
    fn styles() {
        assert_eq!(Styles::parse("").unwrap(), Styles::entra_default());
        let s = Styles::parse("AdjustToUniversal, AssumeUniversal").unwrap();
        assert!(s.adjust_to_universal && s.assume_universal);
        assert!(Styles::parse("RoundtripKind|AssumeLocal").is_err());
        assert!(Styles::parse("Bogus").is_err());
    }

    #[test]
    fn lenient_parsing_and_general_format() {
        let utc = |s: &str| format_general(parse_lenient(s).unwrap());
        assert_eq!(utc("2020-03-16-07:00"), "3/16/2020 7:00:00 AM");
        assert_eq!(utc("2021-06-30+08:00"), "6/29/2021 4:00:00 PM");
        assert_eq!(utc("2009-06-15T01:45:30-07:00"), "6/15/2009 8:45:30 AM");
        assert_eq!(utc("8/25/2021 5:41:18 PM"), "8/25/2021 5:41:18 PM");
        assert_eq!(utc("2021-08-24"), "8/24/2021 12:00:00 AM");
        assert_eq!(utc("2021-07-02T15:33:38Z"), "7/2/2021 3:33:38 PM");
        assert_eq!(
            utc("2021-07-02T15:33:38.1234567+00:00"),
            "7/2/2021 3:33:38 PM"
        );
        assert_eq!(utc("20150123105347.0Z"), "1/23/2015 10:53:47 AM");
        assert_eq!(utc("Mon, 15 Jun 2009 13:45:30 GMT"), "6/15/2009 1:45:30 PM");
        assert_eq!(utc("June 15, 2009"), "6/15/2009 12:00:00 AM");
        assert!(parse_lenient("not a date").is_err());
        assert!(parse_lenient("2021-13-01").is_err());
    }
}
