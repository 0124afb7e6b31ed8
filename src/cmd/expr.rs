//! `ctsync expr`: evaluate a mapping expression against attributes given on the command
//! line, like Entra's expression builder; or many at once with `--batch` (JSON in, JSON out).

use std::collections::HashSet;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use ctsync::expr::{self, EvalContext, EvalErrorKind, Expression, Outcome, Value};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use serde_json::{Map, Value as Json, json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ctsync expr 'Join(\"@\", [mailNickname], \"contoso.com\")' --attr mailNickname=jdoe
  ctsync expr 'Count([proxyAddresses])' --attr-json '{\"proxyAddresses\":[\"a\",\"b\"]}'
  echo '[{\"expression\":\"ToUpper([x])\",\"inputs\":{\"x\":\"a\"}}]' | ctsync expr --batch")]
pub struct Args {
    /// The expression to evaluate.
    #[arg(required_unless_present_any = ["batch", "functions"])]
    expression: Option<String>,
    /// An attribute value, NAME=VALUE; repeat a name for a multi-valued attribute.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    attrs: Vec<String>,
    /// Attributes as a JSON object: arrays are multi-valued, `null` is null.
    #[arg(long = "attr-json", value_name = "JSON")]
    attr_json: Vec<String>,
    /// What Now() returns (RFC 3339 or M/d/yyyy h:mm:ss tt, UTC); default: the clock.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// A value that already exists in the target, for SelectUniqueValue (repeatable).
    #[arg(long = "existing", value_name = "VALUE")]
    existing: Vec<String>,
    /// Seed for Guid() and RandomString(), for reproducible output.
    #[arg(long)]
    seed: Option<u64>,
    /// Print the result as JSON, as Entra renders it.
    #[arg(long)]
    json: bool,
    /// Read a JSON array of {"expression", "inputs"} on stdin; write [{"value"} | {"error"}].
    #[arg(long, conflicts_with_all = ["expression", "attrs", "attr_json"])]
    batch: bool,
    /// List every function with its parameters.
    #[arg(long, conflicts_with_all = ["expression", "batch"])]
    functions: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.functions {
        print_functions();
        return Ok(ExitCode::SUCCESS);
    }
    if args.batch {
        return batch(&args);
    }
    single(&args)
}

fn print_functions() {
    for sig in expr::FUNCTIONS {
        let note = if sig.cloud_sync_only {
            "   (Cloud Sync reference only)"
        } else {
            ""
        };
        println!("{}{note}", sig.usage());
    }
}

fn parse_now(text: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    match text {
        None => Ok(Utc::now()),
        Some(t) => match DateTime::parse_from_rfc3339(t) {
            Ok(at) => Ok(at.with_timezone(&Utc)),
            Err(_) => expr::parse_utc(t).map_err(|e| anyhow::anyhow!("--now: {e}")),
        },
    }
}

/// Runs one expression with the given clock, seed and existing target values.
fn evaluate(
    expression: &Expression,
    attributes: &Map<String, Json>,
    now: DateTime<Utc>,
    seed: Option<u64>,
    existing: &HashSet<String>,
) -> Result<Outcome, expr::EvalError> {
    let mut rng = match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_rng(&mut rand::rng()),
    };
    let mut random = move || rng.next_u64();
    // Entra's uniqueness checks (UPN, mail) ignore case.
    let is_unique = |candidate: &str| !existing.contains(&candidate.to_lowercase());
    let mut ctx = EvalContext {
        now,
        random: &mut random,
        is_unique: &is_unique,
    };
    expression.evaluate(attributes, &mut ctx)
}

fn single(args: &Args) -> anyhow::Result<ExitCode> {
    let Some(source) = args.expression.as_deref() else {
        bail!("an expression is required");
    };
    let expression = match Expression::parse(source) {
        Ok(e) => e,
        Err(err) => {
            eprint!("{}", err.render(source));
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let mut attributes = Map::new();
    for pair in &args.attrs {
        let Some((name, value)) = pair.split_once('=') else {
            eprintln!("ctsync expr: --attr expects NAME=VALUE, got `{pair}`");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        };
        let value = Json::String(value.to_string());
        match attributes.get_mut(name) {
            Some(Json::Array(values)) => values.push(value),
            Some(first) => *first = Json::Array(vec![first.take(), value]),
            None => {
                attributes.insert(name.to_string(), value);
            }
        }
    }
    for text in &args.attr_json {
        match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(obj)) => attributes.extend(obj),
            _ => {
                eprintln!("ctsync expr: --attr-json expects a JSON object, got `{text}`");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
        }
    }
    let now = match parse_now(args.now.as_deref()) {
        Ok(now) => now,
        Err(e) => {
            eprintln!("ctsync expr: {e:#}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let existing: HashSet<String> = args.existing.iter().map(|v| v.to_lowercase()).collect();
    match evaluate(&expression, &attributes, now, args.seed, &existing) {
        Ok(Outcome::Value(value)) => {
            if args.json {
                println!("{}", value.to_entra_json());
            } else {
                match &value {
                    Value::Null | Value::Multi(_) => println!("{}", value.to_entra_json()),
                    scalar => println!("{}", scalar.text_or_empty()),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Outcome::Ignore) => {
            if args.json {
                println!("{}", json!({"ignoreFlow": true}));
            }
            eprintln!("(IgnoreFlowIfNullOrEmpty: the target attribute would not be written)");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One `--batch` item → its result object.
fn batch_item(item: &Json, default_now: DateTime<Utc>, default_seed: Option<u64>) -> Json {
    let Some(source) = item.get("expression").and_then(Json::as_str) else {
        return json!({"error": "item has no \"expression\" string"});
    };
    let inputs = item
        .get("inputs")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    let expression = match Expression::parse(source) {
        Ok(e) => e,
        Err(err) => {
            return json!({"error": err.to_string(), "line": err.line, "column": err.column});
        }
    };
    let now_text = inputs
        .get("__now_utc")
        .or_else(|| item.get("now"))
        .and_then(Json::as_str);
    let now = match now_text {
        Some(t) => match parse_now(Some(t)) {
            Ok(now) => now,
            Err(e) => return json!({"error": format!("{e:#}")}),
        },
        None => default_now,
    };
    let seed = inputs
        .get("__random_seed")
        .or_else(|| item.get("seed"))
        .and_then(Json::as_u64)
        .or(default_seed);
    let existing: HashSet<String> = inputs
        .get("__target_existing_values")
        .or_else(|| item.get("existingValues"))
        .and_then(Json::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let attributes: Map<String, Json> = inputs
        .into_iter()
        .filter(|(name, _)| !name.starts_with("__"))
        .collect();
    match evaluate(&expression, &attributes, now, seed, &existing) {
        Ok(Outcome::Value(value)) => json!({"value": value.to_entra_json()}),
        // The vector files write a dropped attribute as {"ignoreFlow": true}; give it both as
        // the value and as a flag so either reading works.
        Ok(Outcome::Ignore) => json!({"value": {"ignoreFlow": true}, "ignoreFlow": true}),
        Err(err) if err.kind == EvalErrorKind::NoUniqueValue => {
            json!({"value": {"escrow": true}, "escrow": true, "message": err.to_string()})
        }
        Err(err) => json!({"error": err.message, "function": err.function}),
    }
}

fn batch(args: &Args) -> anyhow::Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading stdin")?;
    let items: Vec<Json> = match serde_json::from_str(&input) {
        Ok(Json::Array(items)) => items,
        Ok(_) => {
            eprintln!("ctsync expr --batch: stdin must be a JSON array");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
        Err(e) => {
            eprintln!("ctsync expr --batch: stdin is not valid JSON: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let now = match parse_now(args.now.as_deref()) {
        Ok(now) => now,
        Err(e) => {
            eprintln!("ctsync expr: {e:#}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let results: Vec<Json> = items
        .iter()
        .map(|item| batch_item(item, now, args.seed))
        .collect();
    println!("{}", Json::Array(results));
    Ok(ExitCode::SUCCESS)
}
