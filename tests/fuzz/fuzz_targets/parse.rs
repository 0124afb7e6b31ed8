//! Fuzzes the expression parser: arbitrary text must never panic in parse, render, print,
//! re-parse or evaluate, and print→parse must give back the same tree.
//!
//! The pure `expr` module is compiled in directly rather than through the `ctsync` crate, so
//! the fuzz build does not have to build the daemon (tokio, axum, SQLite) under sanitizers.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../../src/expr/mod.rs"]
mod expr;

use chrono::{TimeZone, Utc};
use expr::{EvalContext, Expression, Value};
use libfuzzer_sys::fuzz_target;

struct Attributes;

impl expr::AttributeSource for Attributes {
    fn attribute(&self, name: &str) -> Value {
        match name.len() % 4 {
            0 => Value::Null,
            1 => Value::String(name.to_string()),
            2 => Value::Multi(vec![Value::String(name.into()), Value::String(String::new())]),
            _ => Value::String("2021-08-25T17:41:18Z".into()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match Expression::parse(source) {
        Err(e) => {
            let _ = e.render(source);
        }
        Ok(parsed) => {
            let printed = parsed.canonical();
            let reparsed = Expression::parse(&printed)
                .unwrap_or_else(|e| panic!("printed form does not parse: {printed:?}: {e}"));
            assert_eq!(parsed.root(), reparsed.root(), "round trip changed {printed:?}");
            let mut state = 1u64;
            let mut random = move || {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                state
            };
            let unique = |candidate: &str| candidate.len().is_multiple_of(2);
            let mut ctx = EvalContext {
                now: Utc.with_ymd_and_hms(2021, 7, 2, 15, 33, 38).unwrap(),
                random: &mut random,
                is_unique: &unique,
            };
            let _ = parsed.evaluate(&Attributes, &mut ctx);
        }
    }
});
