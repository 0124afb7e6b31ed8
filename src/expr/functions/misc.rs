//! Booleans, bits, identifiers and random values. Randomness comes only from
//! `EvalContext::random`, so tests and `--seed` runs are reproducible.

use base64::Engine;

use super::super::EvalContext;
use super::super::value::Value;
use super::{Result, arg, int_arg};
use crate::expr::error::EvalError;

pub fn bit_and(args: &[Option<Value>]) -> Result<Value> {
    let a = int_arg("BitAnd", "value1", args, 0)?;
    let b = int_arg("BitAnd", "value2", args, 1)?;
    Ok(match (a, b) {
        (Some(a), Some(b)) => Value::Int(a & b),
        _ => Value::Null,
    })
}

/// True for a non-zero number or "True"; null is False (VBA `CBool(Nothing)`).
pub fn cbool(args: &[Option<Value>]) -> Result<Value> {
    let v = arg(args, 0);
    if v.is_null() {
        return Ok(Value::Bool(false));
    }
    v.as_bool().map(Value::Bool).ok_or_else(|| {
        EvalError::invalid(
            "CBool",
            format!("cannot convert \"{}\" to a boolean", v.text_or_empty()),
        )
    })
}

/// "If source value is True, returns False. Otherwise, returns True."
pub fn not(args: &[Option<Value>]) -> Result<Value> {
    Ok(Value::Bool(arg(args, 0).as_bool() != Some(true)))
}

/// A version-4 GUID in .NET's default "D" format (lower-case hex).
pub fn guid(ctx: &mut EvalContext<'_>) -> Value {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(ctx.random)().to_le_bytes());
    bytes[8..].copy_from_slice(&(ctx.random)().to_le_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    Value::String(id.hyphenated().to_string())
}

pub fn is_string(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Bool(_) | Value::Int(_))
}

/// Cloud Sync `DNComponent(dn, n)`: the value of the n-th RDN (1-based) of a distinguished
/// name; commas escaped with `\` do not split.
pub fn dn_component(args: &[Option<Value>]) -> Result<Value> {
    let n = int_arg("DNComponent", "component", args, 1)?.unwrap_or(0);
    let Some(dn) = arg(args, 0).text() else {
        return Ok(Value::Null);
    };
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' => {
                current.push(c);
                escaped = true;
            }
            ',' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    if n < 1 || n as u64 > parts.len() as u64 {
        return Ok(Value::Null);
    }
    let rdn = &parts[(n - 1) as usize];
    let value = rdn.split_once('=').map_or(rdn.as_str(), |(_, v)| v);
    Ok(Value::String(value.trim().to_string()))
}

/// Cloud Sync `StringFromSid`: a binary security identifier (base64 in Graph JSON) as
/// `S-1-5-21-…`. A value that already reads `S-…` is returned as is.
pub fn string_from_sid(args: &[Option<Value>]) -> Result<Value> {
    super::map_text(arg(args, 0), &mut |s| {
        if s.starts_with("S-") {
            return Ok(Value::String(s.to_string()));
        }
        let invalid = || EvalError::invalid("StringFromSid", "value is not a binary SID");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| invalid())?;
        if bytes.len() < 8 {
            return Err(invalid());
        }
        let count = usize::from(bytes[1]);
        if bytes.len() != 8 + 4 * count {
            return Err(invalid());
        }
        let authority = bytes[2..8]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let mut out = format!("S-{}-{authority}", bytes[0]);
        for chunk in bytes[8..].chunks_exact(4) {
            let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            out.push_str(&format!("-{sub}"));
        }
        Ok(Value::String(out))
    })
}

const DIGITS: &str = "0123456789";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
/// Special characters allowed by Windows password complexity rules (the set Entra's
/// RandomString reference links to).
const SPECIAL: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";
const MAX_RANDOM_LENGTH: i64 = 256;

/// Uniform index below `n` from a random u64 (multiply-shift; bias below 2^-50 for n ≤ 256).
fn pick(ctx: &mut EvalContext<'_>, n: usize) -> usize {
    (((ctx.random)() as u128 * n as u128) >> 64) as usize
}

pub fn random_string(args: &[Option<Value>], ctx: &mut EvalContext<'_>) -> Result<Value> {
    let number = |i: usize, name: &str| -> Result<i64> {
        let n = int_arg("RandomString", name, args, i)?.unwrap_or(0);
        if n < 0 {
            return Err(EvalError::invalid(
                "RandomString",
                format!("{name} must not be negative"),
            ));
        }
        Ok(n)
    };
    let length = number(0, "Length")?;
    let minimums = [
        number(1, "MinimumNumbers")?,
        number(2, "MinimumSpecialCharacters")?,
        number(3, "MinimumCapital")?,
        number(4, "MinimumLowerCase")?,
    ];
    if length > MAX_RANDOM_LENGTH {
        return Err(EvalError::invalid(
            "RandomString",
            format!("Length is at most {MAX_RANDOM_LENGTH}, got {length}"),
        ));
    }
    let required: i64 = minimums.iter().sum();
    if required > length {
        return Err(EvalError::invalid(
            "RandomString",
            format!("Length {length} is less than the sum of the minimums ({required})"),
        ));
    }
    let avoid: Vec<char> = arg(args, 5).text_or_empty().chars().collect();
    let classes: Vec<Vec<char>> = [DIGITS, SPECIAL, UPPER, LOWER]
        .iter()
        .map(|set| set.chars().filter(|c| !avoid.contains(c)).collect())
        .collect();
    let mut chars: Vec<char> = Vec::with_capacity(length as usize);
    for (class, minimum) in classes.iter().zip(minimums) {
        if minimum > 0 && class.is_empty() {
            return Err(EvalError::invalid(
                "RandomString",
                "CharactersToAvoid removes every character of a required class",
            ));
        }
        for _ in 0..minimum {
            chars.push(class[pick(ctx, class.len())]);
        }
    }
    let all: Vec<char> = classes.concat();
    if all.is_empty() && (chars.len() as i64) < length {
        return Err(EvalError::invalid(
            "RandomString",
            "CharactersToAvoid removes every allowed character",
        ));
    }
    while (chars.len() as i64) < length {
        chars.push(all[pick(ctx, all.len())]);
    }
    // Fisher–Yates, so the required characters are not always first.
    for i in (1..chars.len()).rev() {
        let j = pick(ctx, i + 1);
        chars.swap(i, j);
    }
    Ok(Value::String(chars.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn with_ctx<T>(f: impl FnOnce(&mut EvalContext<'_>) -> T) -> T {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let unique = |_: &str| true;
        let mut ctx = EvalContext {
            now: Utc::now(),
            random: &mut random,
            is_unique: &unique,
        };
        f(&mut ctx)
    }

    fn int(i: i64) -> Option<Value> {
        Some(Value::Int(i))
    }

    #[test]
    fn bits_and_booleans() {
        assert_eq!(bit_and(&[int(0xF), int(0xF7)]).unwrap(), Value::Int(7));
        assert_eq!(cbool(&[int(2)]).unwrap(), Value::Bool(true));
        assert_eq!(cbool(&[Some(Value::Null)]).unwrap(), Value::Bool(false));
        assert!(cbool(&[Some(Value::String("x".into()))]).is_err());
        assert_eq!(
            not(&[Some(Value::String("True".into()))]).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(
            not(&[Some(Value::String("maybe".into()))]).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn guid_is_v4_lowercase() {
        let g = with_ctx(guid);
        let Value::String(g) = g else { panic!() };
        let re = regex::Regex::new(
            "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        )
        .unwrap();
        assert!(re.is_match(&g), "{g}");
    }

    #[test]
    fn random_string_meets_minimums() {
        for _ in 0..20 {
            let v = with_ctx(|ctx| {
                random_string(
                    &[
                        int(10),
                        int(2),
                        int(2),
                        int(2),
                        int(1),
                        Some(Value::String("?,".into())),
                    ],
                    ctx,
                )
            })
            .unwrap();
            let Value::String(s) = v else { panic!() };
            assert_eq!(s.chars().count(), 10);
            assert!(s.chars().filter(char::is_ascii_digit).count() >= 2);
            assert!(s.chars().filter(char::is_ascii_uppercase).count() >= 2);
            assert!(s.chars().filter(|c| SPECIAL.contains(*c)).count() >= 2);
            assert!(!s.contains('?') && !s.contains(','));
        }
        assert!(with_ctx(|ctx| random_string(&[int(257)], ctx)).is_err());
        assert!(with_ctx(|ctx| random_string(&[int(3), int(2), int(2)], ctx)).is_err());
    }

    #[test]
    fn sids() {
        // S-1-5-21-1004336348-1177238915-682003330-512
        let bytes: Vec<u8> = [1u8, 5, 0, 0, 0, 0, 0, 5]
            .into_iter()
            .chain(21u32.to_le_bytes())
            .chain(1_004_336_348u32.to_le_bytes())
            .chain(1_177_238_915u32.to_le_bytes())
            .chain(682_003_330u32.to_le_bytes())
            .chain(512u32.to_le_bytes())
            .collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(
            string_from_sid(&[Some(Value::String(b64))]).unwrap(),
            Value::String("S-1-5-21-1004336348-1177238915-682003330-512".into())
        );
        assert!(string_from_sid(&[Some(Value::String("AAAA".into()))]).is_err());
    }

    #[test]
    fn dn_components() {
        let dn = Some(Value::String(r"cn=Doe\, John,ou=Users,dc=contoso".into()));
        assert_eq!(
            dn_component(&[dn.clone(), int(1)]).unwrap(),
            Value::String(r"Doe\, John".into())
        );
        assert_eq!(
            dn_component(&[dn.clone(), int(2)]).unwrap(),
            Value::String("Users".into())
        );
        assert_eq!(dn_component(&[dn, int(9)]).unwrap(), Value::Null);
    }
}
