//! Date functions. Dates travel between functions as strings, exactly as Entra renders
//! them (`M/d/yyyy h:mm:ss tt`, UTC), and are re-parsed by the next function.
//! DateAdd/DateDiff follow VB.NET's `DateAdd`/`DateDiff`, whose interval codes Entra uses.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime};

use super::super::EvalContext;
use super::super::dotnet::{self, DateFormat, DotNetDateTime, Kind, Styles};
use super::super::value::Value;
use super::{Result, arg, int_arg, map_text};
use crate::expr::error::EvalError;

/// Interval codes (VB.NET): year, quarter, month, day of year, day, weekday, week, hour,
/// minute, second. Entra documents yyyy, m, d, ww, h, n, s.
pub const INTERVALS: &[&str] = &["yyyy", "q", "m", "y", "d", "w", "ww", "h", "n", "s"];

/// 100-ns ticks between 1601-01-01 (Windows FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET_SECONDS: i64 = 11_644_473_600;

fn parse_date(function: &str, v: &Value) -> Result<Option<NaiveDateTime>> {
    match v.text() {
        None => Ok(None),
        Some(t) => dotnet::parse_lenient(&t)
            .map(Some)
            .map_err(|e| EvalError::invalid(function, e)),
    }
}

fn interval(function: &str, v: &Value) -> Result<&'static str> {
    let text = v.text_or_empty();
    INTERVALS
        .iter()
        .find(|i| **i == text)
        .copied()
        .ok_or_else(|| {
            EvalError::invalid(
                function,
                format!(
                    "interval must be one of {}, got \"{text}\"",
                    INTERVALS.join(", ")
                ),
            )
        })
}

pub fn now(ctx: &EvalContext<'_>) -> Value {
    Value::String(dotnet::format_general(ctx.now.naive_utc()))
}

pub fn cdate(args: &[Option<Value>]) -> Result<Value> {
    map_text(arg(args, 0), &mut |s| {
        let at = dotnet::parse_lenient(s).map_err(|e| EvalError::invalid("CDate", e))?;
        Ok(Value::String(dotnet::format_general(at)))
    })
}

fn out_of_range(function: &str) -> EvalError {
    EvalError::invalid(
        function,
        "the result is outside the supported dates (years 1–9999)",
    )
}

fn add_months(at: NaiveDateTime, months: i64) -> Option<NaiveDateTime> {
    let magnitude = u32::try_from(months.unsigned_abs()).ok()?;
    if months >= 0 {
        at.checked_add_months(Months::new(magnitude))
    } else {
        at.checked_sub_months(Months::new(magnitude))
    }
}

pub fn date_add(args: &[Option<Value>]) -> Result<Value> {
    let code = interval("DateAdd", arg(args, 0))?;
    let Some(n) = int_arg("DateAdd", "value", args, 1)? else {
        return Ok(Value::Null);
    };
    let Some(at) = parse_date("DateAdd", arg(args, 2))? else {
        return Ok(Value::Null);
    };
    let seconds = |unit: i64| n.checked_mul(unit).and_then(Duration::try_seconds);
    let result = match code {
        "yyyy" => n.checked_mul(12).and_then(|m| add_months(at, m)),
        "q" => n.checked_mul(3).and_then(|m| add_months(at, m)),
        "m" => add_months(at, n),
        "y" | "d" | "w" => seconds(86_400).and_then(|d| at.checked_add_signed(d)),
        "ww" => seconds(7 * 86_400).and_then(|d| at.checked_add_signed(d)),
        "h" => seconds(3_600).and_then(|d| at.checked_add_signed(d)),
        "n" => seconds(60).and_then(|d| at.checked_add_signed(d)),
        _ => seconds(1).and_then(|d| at.checked_add_signed(d)),
    }
    .filter(|r| (1..=9999).contains(&r.year()))
    .ok_or_else(|| out_of_range("DateAdd"))?;
    Ok(Value::String(dotnet::format_general(result)))
}

fn week_start(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_sunday()))
}

/// VB.NET `DateDiff`: calendar boundaries for years, quarters, months and (Sunday-based)
/// weeks; elapsed time truncated toward zero for days, hours, minutes and seconds.
pub fn date_diff(args: &[Option<Value>]) -> Result<Value> {
    let code = interval("DateDiff", arg(args, 0))?;
    let (Some(d1), Some(d2)) = (
        parse_date("DateDiff", arg(args, 1))?,
        parse_date("DateDiff", arg(args, 2))?,
    ) else {
        return Ok(Value::Null);
    };
    let elapsed = d2 - d1;
    let years = i64::from(d2.year() - d1.year());
    let result = match code {
        "yyyy" => years,
        "q" => years * 4 + i64::from(d2.month0() / 3) - i64::from(d1.month0() / 3),
        "m" => years * 12 + i64::from(d2.month()) - i64::from(d1.month()),
        "y" | "d" => elapsed.num_days(),
        "w" => elapsed.num_days() / 7,
        "ww" => (week_start(d2.date()) - week_start(d1.date())).num_days() / 7,
        "h" => elapsed.num_hours(),
        "n" => elapsed.num_minutes(),
        _ => elapsed.num_seconds(),
    };
    Ok(Value::Int(result))
}

fn filetime_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1601, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MIN)
}

/// AD integer dates (FILETIME: 100-ns ticks since 1601-01-01 UTC) → Entra's date string.
pub fn date_from_num(args: &[Option<Value>]) -> Result<Value> {
    let Some(ticks) = int_arg("DateFromNum", "value", args, 0)? else {
        return Ok(Value::Null);
    };
    let at = Duration::try_seconds(ticks.div_euclid(10_000_000))
        .and_then(|s| filetime_epoch().checked_add_signed(s))
        .and_then(|t| {
            t.checked_add_signed(Duration::nanoseconds(ticks.rem_euclid(10_000_000) * 100))
        })
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| out_of_range("DateFromNum"))?;
    Ok(Value::String(dotnet::format_general(at)))
}

/// ISO 8601 date string → AD integer date (FILETIME ticks).
pub fn num_from_date(args: &[Option<Value>]) -> Result<Value> {
    let Some(at) = parse_date("NumFromDate", arg(args, 0))? else {
        return Ok(Value::Null);
    };
    let utc = at.and_utc();
    let seconds = utc.timestamp() + FILETIME_UNIX_OFFSET_SECONDS;
    if seconds < 0 {
        return Err(EvalError::invalid(
            "NumFromDate",
            "dates before 1601-01-01 have no AD representation",
        ));
    }
    Ok(Value::Int(
        seconds * 10_000_000 + i64::from(utc.timestamp_subsec_nanos() / 100),
    ))
}

/// FormatDateTime(source, dateTimeStyles, inputFormat, outputFormat), or the older
/// three-argument form FormatDateTime(source, inputFormat, outputFormat).
pub fn format_date_time(args: &[Option<Value>], ctx: &EvalContext<'_>) -> Result<Value> {
    let (styles_arg, input_arg, output_arg) = if args.len() == 3 {
        (None, arg(args, 1), arg(args, 2))
    } else {
        (Some(arg(args, 1)), arg(args, 2), arg(args, 3))
    };
    let styles = match styles_arg.and_then(Value::text) {
        Some(t) => Styles::parse(&t)
            .map_err(|e| EvalError::invalid("FormatDateTime", format!("dateTimeStyles {e}")))?,
        None => Styles::entra_default(),
    };
    let compile = |v: &Value, which: &str| {
        DateFormat::parse(&v.text_or_empty()).map_err(|e| {
            EvalError::invalid(
                "FormatDateTime",
                format!("{which} is not a valid format: {e}"),
            )
        })
    };
    let input = compile(input_arg, "inputFormat")?;
    let output = compile(output_arg, "outputFormat")?;
    let today = ctx.now.date_naive();
    map_text(arg(args, 0), &mut |s| {
        let parsed: DotNetDateTime = input.parse_exact(s, styles, today).map_err(|e| {
            EvalError::invalid(
                "FormatDateTime",
                format!("\"{s}\" does not match the input format: {e}"),
            )
        })?;
        let parsed = if styles.adjust_to_universal && parsed.kind != Kind::Utc {
            DotNetDateTime {
                kind: Kind::Utc,
                ..parsed
            }
        } else {
            parsed
        };
        Ok(Value::String(output.format(&parsed)))
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn s(v: &str) -> Option<Value> {
        Some(Value::String(v.into()))
    }
    fn st(v: &str) -> Value {
        Value::String(v.into())
    }

    fn with_ctx<T>(f: impl FnOnce(&mut EvalContext<'_>) -> T) -> T {
        let mut random = || 4u64;
        let unique = |_: &str| true;
        let mut ctx = EvalContext {
            now: Utc.with_ymd_and_hms(2021, 7, 2, 15, 33, 38).unwrap(),
            random: &mut random,
            is_unique: &unique,
        };
        f(&mut ctx)
    }

    #[test]
    fn now_and_cdate() {
        assert_eq!(with_ctx(|ctx| now(ctx)), st("7/2/2021 3:33:38 PM"));
        assert_eq!(
            cdate(&[s("2020-03-16-07:00")]).unwrap(),
            st("3/16/2020 7:00:00 AM")
        );
        assert_eq!(cdate(&[Some(Value::Null)]).unwrap(), Value::Null);
        assert!(cdate(&[s("yesterday")]).is_err());
    }

    #[test]
    fn date_add_documented_table() {
        let add = |i: &str, n: i64| {
            date_add(&[s(i), Some(Value::Int(n)), s("3/16/2012 7:00:00 AM")]).unwrap()
        };
        assert_eq!(add("d", 7), st("3/23/2012 7:00:00 AM"));
        assert_eq!(add("d", -10), st("3/6/2012 7:00:00 AM"));
        assert_eq!(add("ww", 2), st("3/30/2012 7:00:00 AM"));
        assert_eq!(add("m", 10), st("1/16/2013 7:00:00 AM"));
        assert_eq!(add("yyyy", 2), st("3/16/2014 7:00:00 AM"));
        assert_eq!(add("h", 20), st("3/17/2012 3:00:00 AM"));
        assert_eq!(
            date_add(&[s("m"), Some(Value::Int(1)), s("2021-01-31")]).unwrap(),
            st("2/28/2021 12:00:00 AM")
        );
        assert!(date_add(&[s("yyyy"), Some(Value::Int(9000)), s("2021-01-31")]).is_err());
    }

    #[test]
    fn date_diff_documented_table() {
        let diff = |i: &str, a: &str, b: &str| date_diff(&[s(i), s(a), s(b)]).unwrap();
        let now = "8/25/2021 5:41:18 PM";
        assert_eq!(
            diff("d", "2021-08-18+08:00", "2021-08-31+08:00"),
            Value::Int(13)
        );
        assert_eq!(diff("d", now, "2012-03-16-07:00"), Value::Int(-3449));
        assert_eq!(diff("ww", now, "2012-03-16-07:00"), Value::Int(-493));
        assert_eq!(diff("m", now, "2012-03-16-07:00"), Value::Int(-113));
        assert_eq!(diff("yyyy", now, "2012-03-16-07:00"), Value::Int(-9));
        assert_eq!(
            diff("d", "2021-08-31+08:00", "2021-08-31+08:00"),
            Value::Int(0)
        );
        assert_eq!(diff("h", "2021-08-24", "2021-08-25"), Value::Int(24));
        assert_eq!(diff("n", "2021-08-24", "2021-08-25"), Value::Int(1440));
        assert_eq!(diff("s", "2021-08-24", "2021-08-25"), Value::Int(86400));
        assert_eq!(diff("yyyy", "2021-12-31", "2022-01-01"), Value::Int(1));
    }

    #[test]
    fn filetime_round_trip() {
        assert_eq!(
            date_from_num(&[Some(Value::Int(129_699_324_000_000_000))]).unwrap(),
            st("1/1/2012 11:00:00 PM")
        );
        assert_eq!(
            num_from_date(&[s("2020-12-31 23:59:59-08:00")]).unwrap(),
            Value::Int(132_539_615_990_000_000)
        );
        assert!(date_from_num(&[Some(Value::Int(i64::MAX))]).is_err());
    }

    #[test]
    fn format_date_time_forms() {
        let run = |args: Vec<Option<Value>>| with_ctx(|ctx| format_date_time(&args, ctx));
        assert_eq!(
            run(vec![
                s("20150123105347.1Z"),
                None,
                s("yyyyMMddHHmmss.fZ"),
                s("yyyy-MM-dd")
            ])
            .unwrap(),
            st("2015-01-23")
        );
        assert_eq!(
            run(vec![
                s("2020-12-31-08:00"),
                None,
                s("yyyy-MM-ddzzz"),
                s("yyyy-MM-dd")
            ])
            .unwrap(),
            st("2020-12-31")
        );
        assert_eq!(
            run(vec![
                s("12/31/2020 07:00:00 PM"),
                s("M/d/yyyy hh:mm:ss tt"),
                s("yyyy-MM-ddTHH:mm")
            ])
            .unwrap(),
            st("2020-12-31T19:00")
        );
        assert!(run(vec![s("garbage"), None, s("yyyy"), s("yyyy")]).is_err());
        assert_eq!(
            run(vec![Some(Value::Null), None, s("yyyy"), s("yyyy")]).unwrap(),
            Value::Null
        );
    }
}
