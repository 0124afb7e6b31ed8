//! The function library, one module per family. `call` receives evaluated arguments;
//! `None` is an omitted positional argument.

pub(crate) mod dates;
mod misc;
mod multi;
pub(crate) mod replace;
mod strings;

use super::EvalContext;
use super::error::EvalError;
use super::value::Value;

type Result<T> = std::result::Result<T, EvalError>;

static NULL: Value = Value::Null;

/// Argument `i`, with an omitted or missing argument as null.
fn arg(args: &[Option<Value>], i: usize) -> &Value {
    args.get(i).and_then(Option::as_ref).unwrap_or(&NULL)
}

/// Whether argument `i` was given (even if it evaluated to null).
fn given(args: &[Option<Value>], i: usize) -> bool {
    args.get(i).is_some_and(Option::is_some)
}

/// An integer argument, with a clear error when it is not one.
fn int_arg(function: &str, param: &str, args: &[Option<Value>], i: usize) -> Result<Option<i64>> {
    let v = arg(args, i);
    if v.is_null() {
        return Ok(None);
    }
    v.as_int().map(Some).ok_or_else(|| {
        EvalError::invalid(
            function,
            format!(
                "{param} must be a whole number, got \"{}\"",
                v.text_or_empty()
            ),
        )
    })
}

/// Applies a string transformation to a value: null stays null, a multi-valued value is
/// transformed value by value (so `ToLower([proxyAddresses])` lowers every address).
fn map_text(v: &Value, f: &mut dyn FnMut(&str) -> Result<Value>) -> Result<Value> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Multi(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(map_text(item, f)?);
            }
            Ok(Value::Multi(out))
        }
        scalar => f(&scalar.text_or_empty()),
    }
}

pub fn call(name: &str, args: &[Option<Value>], ctx: &mut EvalContext<'_>) -> Result<Value> {
    match name {
        // strings
        "Append" => strings::append(args),
        "ConvertToBase64" => strings::convert_to_base64(args),
        "ConvertToUTF8Hex" => strings::convert_to_utf8_hex(args),
        "ConvertFromBase64" => strings::convert_from_base64(args),
        "CStr" => strings::cstr(args),
        "InStr" => strings::instr(args),
        "Left" => strings::left(args),
        "Mid" => strings::mid(args),
        "NormalizeDiacritics" => strings::normalize_diacritics(args),
        "PCase" => strings::pcase(args),
        "StripSpaces" => strings::strip_spaces(args),
        "ToLower" => strings::to_lower(args),
        "ToUpper" => strings::to_upper(args),
        "Trim" => strings::trim(args),
        "Word" => strings::word(args),
        // regex / replace
        "Replace" => replace::replace(args),
        // multi-valued
        "Count" => multi::count(args),
        "Item" => multi::item(args),
        "Join" => multi::join(args),
        "RemoveDuplicates" => multi::remove_duplicates(args),
        "Split" => multi::split(args),
        "Contains" => multi::contains(args),
        "AppRoleAssignmentsComplex" => multi::app_role_assignments_complex(args),
        "SingleAppRoleAssignment" => multi::single_app_role_assignment(args),
        // dates
        "CDate" => dates::cdate(args),
        "DateAdd" => dates::date_add(args),
        "DateDiff" => dates::date_diff(args),
        "DateFromNum" => dates::date_from_num(args),
        "FormatDateTime" => dates::format_date_time(args, ctx),
        "Now" => Ok(dates::now(ctx)),
        "NumFromDate" => dates::num_from_date(args),
        // misc
        "BitAnd" => misc::bit_and(args),
        "CBool" => misc::cbool(args),
        "Not" => misc::not(args),
        "Guid" => Ok(misc::guid(ctx)),
        "RandomString" => misc::random_string(args, ctx),
        "IsNull" => Ok(Value::Bool(arg(args, 0).is_null())),
        "IsNullOrEmpty" => Ok(Value::Bool(arg(args, 0).is_null_or_empty())),
        "IsPresent" => Ok(Value::Bool(!arg(args, 0).is_null_or_empty())),
        "IsString" => Ok(Value::Bool(misc::is_string(arg(args, 0)))),
        "Redact" | "CRef" => Ok(arg(args, 0).clone()),
        "DNComponent" => misc::dn_component(args),
        "StringFromSid" => misc::string_from_sid(args),
        other => Err(EvalError::invalid(other, "unknown function")),
    }
}
